//! A look at the brokers before a process starts its work: credentials the brokers refuse, or a
//! certificate this client does not trust, stop the start with an error naming the settings.
//! Without it the process would wait forever: librdkafka retries a refused login quietly, and
//! reads and writes just never complete. Brokers that cannot be reached are not an error here:
//! every client waits them out, and the process says so in its readiness.

use confab_core::config::Config;
use confab_core::ports::{PortError, PortErrorKind, PortResult};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::base_config;
use super::error::kind_of;

/// How long the look waits for the brokers' metadata.
const LOOK_FOR: Duration = Duration::from_secs(10);

/// Keeps the first refusal librdkafka reports through its error callback.
#[derive(Clone, Default)]
struct Refusals(Arc<Mutex<Option<String>>>);

impl ClientContext for Refusals {
    fn error(&self, error: KafkaError, reason: &str) {
        if refused(&error, reason) {
            self.0.lock().expect("refusals lock").get_or_insert_with(|| format!("{error}: {reason}"));
        } else {
            tracing::debug!(error = %error, reason, "kafka preflight");
        }
    }
}

impl ConsumerContext for Refusals {}

/// Refused credentials or authorization (fatal by [`kind_of`]), or a certificate the client
/// cannot verify.
fn refused(error: &KafkaError, reason: &str) -> bool {
    kind_of(error) == PortErrorKind::Fatal || reason.contains("certificate verify failed")
}

/// Asks the brokers for their metadata (at most [`LOOK_FOR`]); fails (fatal) if they refused
/// this process's credentials or their certificate is not trusted.
pub async fn preflight(cfg: &Config) -> PortResult<()> {
    let refusals = Refusals::default();
    let consumer: BaseConsumer<Refusals> = base_config(cfg)
        .create_with_context(refusals.clone())
        .map_err(|e| PortError::fatal(format!("kafka client configuration: {e}")))?;
    let watching = refusals.clone();
    let looked = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + LOOK_FOR;
        loop {
            // a metadata request makes the client connect and log in; librdkafka reports a
            // refusal as an event, which only a poll hands to the context
            let answer = consumer.fetch_metadata(None, Duration::from_secs(1)).map(|_| ());
            let _ = consumer.poll(Duration::ZERO);
            let refused = watching.0.lock().expect("refusals lock").is_some();
            if answer.is_ok() || refused || std::time::Instant::now() >= deadline {
                return answer;
            }
        }
    })
    .await?;
    if let Some(refusal) = refusals.0.lock().expect("refusals lock").take() {
        return Err(PortError::fatal(format!(
            "kafka refused this process ({refusal}): check kafka.properties (sasl.username, sasl.password, \
             ssl.ca.location) and the brokers' ACLs"
        )));
    }
    if let Err(e) = looked {
        tracing::warn!(error = %e, "kafka brokers not reachable yet; starting anyway and waiting for them");
    }
    Ok(())
}
