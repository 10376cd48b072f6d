//! The Cassandra adapter: the [`Store`](confab_core::ports::Store) port (the timeline and the
//! directory) with the design seed's table shape. Every key starts with `workspace_id`.
//!
//! - `schema`: the tables `confab setup` creates, and connecting; `store`: the port;
//!   `devices`: push devices and preferences (half of the notifier's store, see `crate::notify`);
//!   `rows`: rows to port types; `error`: what a driver error means; `storage_ledger`: the
//!   bytes each workspace's files take, kept with lightweight transactions; `tls`: client-to-node
//!   TLS; `keys`: crypto-shredding's key store; `workspace_deletion`: removing a workspace.

mod devices;
mod error;
mod keys;
mod rows;
mod schema;
mod storage_ledger;
mod store;
mod tls;
mod workspace_deletion;

pub use devices::CassandraDevices;
pub use keys::CassandraKeys;
pub use schema::{connect, migrate, schema};
pub use store::CassandraStore;
