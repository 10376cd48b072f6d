//! Harness for end-to-end tests: runs real `confab` processes, either `confab serve` alone
//! (embedded mode) or the distributed processes against real servers.
//!
//! The servers come from `scripts/services/all.sh start RUN_DIR`; point the tests at them with
//! `CONFAB_TEST_ENV=RUN_DIR/env` (the test command does). Every [`Stack`] gets its own namespace
//! (topics, consumer groups, Redis keys), Cassandra keyspace and registry, so tests run in
//! parallel on one set of servers. Processes are killed when the stack drops.

pub mod client;
pub mod stack;

pub use client::Client;
pub use stack::{servers_available, Mode, Services, Stack};
