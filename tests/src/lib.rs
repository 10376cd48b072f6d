//! Harness for end-to-end tests: runs real `confab` processes, either `confab serve` alone
//! (embedded mode) or the distributed processes against real servers.
//!
//! The servers come from `scripts/services/all.sh start RUN_DIR`; point the tests at them with
//! `CONFAB_TEST_ENV=RUN_DIR/env` (the test command does). Every [`Stack`] gets its own namespace
//! (topics, consumer groups, Redis keys), Cassandra keyspace and registry, so tests run in
//! parallel on one set of servers. Processes are killed when the stack drops.

pub mod asyncapi;
pub mod client;
pub mod files;
pub mod kafka;
pub mod own_server;
pub mod stack;

pub use client::Client;
pub use own_server::OwnServer;
pub use stack::{servers_available, Mode, Services, Stack};

/// Generates `embedded::<name>` and `distributed::<name>` tests from `async fn <name>(Mode)`
/// bodies in the calling file: each behaviour is written once and runs against both adapter
/// sets (the distributed run is skipped without servers unless `CONFAB_REQUIRE_SERVERS=1`).
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Mode::Embedded).await
                }
            )*
        }
        mod distributed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::servers_available($crate::Mode::Distributed) {
                        super::$name($crate::Mode::Distributed).await
                    }
                }
            )*
        }
    };
}
