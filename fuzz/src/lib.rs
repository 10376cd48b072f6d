//! Helpers the fuzz targets share: an in-memory schema registry and an event codec built on
//! it (as the sequencer and projectors build theirs), and a way to run the codec's async
//! decode without a runtime (it never waits once the registry is in memory).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use confab_core::avro::{EventCodec, EVENT_SCHEMA};
use confab_core::ports::{PortError, PortResult, SchemaSource};

/// The id this build's schema is registered under in [`Registry`].
pub const CURRENT_ID: u32 = 7;
/// The id of the v3 history schema (an older writer) in [`Registry`].
pub const V3_ID: u32 = 3;
pub const V3_SCHEMA: &str = include_str!("../../schemas/avro/history/event.v3.avsc");

/// A schema registry in memory: this build's schema and the v3 one; any other id is unknown.
pub struct Registry;

#[async_trait::async_trait]
impl SchemaSource for Registry {
    async fn register(&self, _subject: &str, _schema: &str) -> PortResult<u32> {
        Ok(CURRENT_ID)
    }
    async fn schema(&self, id: u32) -> PortResult<String> {
        match id {
            CURRENT_ID => Ok(EVENT_SCHEMA.to_string()),
            V3_ID => Ok(V3_SCHEMA.to_string()),
            _ => Err(PortError::not_found(format!("no schema {id}"))),
        }
    }
}

/// One codec per process (building it parses the schema; the fuzzer calls us millions of times).
pub fn codec() -> &'static EventCodec {
    static CODEC: OnceLock<EventCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        block_on(EventCodec::register_with(Arc::new(Registry), "fuzz.events")).expect("the codec registers")
    })
}

/// Runs a future that completes without waiting on I/O.
pub fn block_on<F: Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}
