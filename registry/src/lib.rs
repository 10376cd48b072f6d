//! A Confluent-compatible schema registry for Avro, small enough to embed.
//!
//! Confab runs it as `confab registry` in distributed mode (no Confluent/Apicurio registry
//! starts from the package registries this project can reach; see the README) and will embed
//! it in `confab serve`. Stock Confluent serializers and deserializers talk to it unchanged.
//!
//! - [`store`]: subjects, versions and globally unique schema ids, persisted to a JSON file or
//!   shared by several instances through a log of changes ([`SchemaLog`]).
//! - [`compat`]: Avro compatibility levels (BACKWARD, FORWARD, FULL and their `_TRANSITIVE` forms).
//! - [`api`]: the REST API (`/subjects`, `/schemas/ids/{id}`, `/compatibility`, `/config`).

pub mod api;
pub mod compat;
pub mod store;

pub use api::{read_router, router, WriteAccess};
pub use store::{Change, RegistryError, SchemaLog, SchemaStore};
