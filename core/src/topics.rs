//! The names of the log's three streams in a deployment's namespace. Kafka topics in
//! distributed mode; in embedded mode the events topic's name is still the schema registry
//! subject (`<ns>.events-value`), so data teams see the same subject in both modes.

/// `<ns>.commands` (gateway -> ingest), `<ns>.events` (the log of record, Avro) and
/// `<ns>.replies` (ingest -> gateways): one partition count and one key for all three.
#[derive(Debug, Clone)]
pub struct Topics {
    pub commands: String,
    pub events: String,
    pub replies: String,
    /// Event records no projector could decode, kept for operators (see `EventSource::dead_letter`).
    pub dead_letter: String,
}

impl Topics {
    pub fn new(namespace: &str) -> Self {
        Self {
            commands: format!("{namespace}.commands"),
            events: format!("{namespace}.events"),
            replies: format!("{namespace}.replies"),
            dead_letter: format!("{namespace}.events.dead-letter"),
        }
    }
}
