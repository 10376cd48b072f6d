//! The at-least-once projector loop shared by every projection: receive a batch, apply it
//! (retrying with backoff, never skipping), and only then acknowledge its offsets. A transient
//! failure of the log or of the store (a broker or node restarting) is waited out with backoff
//! and jitter while health reports it; only a fatal or invalid error from the log stops the
//! projector. A record that can never be decoded is written to the dead letters (and counted)
//! before the projector goes past it; one that cannot be decoded yet is never returned (see
//! `EventRecord`).

use confab_core::event::Event;
use confab_core::ports::{DeadRecord, EventRecord, EventSource, PortError, PortErrorKind, PortResult};
use confab_core::telemetry::{register, Health};
use confab_core::{Backoff, Shutdown};
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use std::time::{Duration, Instant};

use crate::Projection;

const MAX_BATCH: usize = 500;
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// An apply attempt running longer than this makes the projector report not ready.
const STALLED_AFTER: Duration = Duration::from_secs(5);

/// One set per process: several projectors (or sequencers) in one process share it, labelled.
static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::new);

struct Metrics {
    events: IntCounterVec,
    dead_letters: IntCounterVec,
    failures: IntCounterVec,
    log_failures: IntCounterVec,
    lag: IntGaugeVec,
}

fn counter(name: &str, help: &str) -> IntCounterVec {
    register(IntCounterVec::new(Opts::new(name, help), &["projector"]).expect("valid metric"))
}

impl Metrics {
    fn new() -> Self {
        Self {
            events: counter("confab_projector_events_total", "events applied"),
            dead_letters: counter(
                "confab_projector_dead_letters_total",
                "records that can never be decoded, written to the dead letters and passed",
            ),
            failures: counter("confab_projector_apply_failures_total", "failed batch applications (retried)"),
            log_failures: counter(
                "confab_projector_log_failures_total",
                "transient failures reading or committing the log (retried)",
            ),
            lag: register(
                IntGaugeVec::new(
                    Opts::new("confab_projector_lag", "events not yet applied, summed over assigned partitions"),
                    &["projector"],
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// What the loop keeps between batches.
struct Run<'a, P: Projection> {
    projection: &'a P,
    source: Box<dyn EventSource>,
    shutdown: Shutdown,
    health: Health,
    last_commit: Instant,
    log_backoff: Backoff,
}

/// Runs `projection` over `source` until shutdown, then commits the acknowledged positions.
pub async fn run<P: Projection>(
    source: Box<dyn EventSource>,
    projection: P,
    shutdown: Shutdown,
    health: Health,
) -> PortResult<()> {
    let log_backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut run = Run { projection: &projection, source, shutdown, health, last_commit: Instant::now(), log_backoff };
    run.refresh_lag().await;
    tracing::info!(projector = projection.name(), "projector started");
    loop {
        let batch = tokio::select! {
            _ = run.shutdown.wait() => break,
            // wake at least every second when idle, to commit and refresh the lag gauge
            b = run.source.next_batch(MAX_BATCH, Some(COMMIT_EVERY)) => b,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                run.log_failed(e, "reading events").await?;
                continue;
            }
        };
        // an empty batch says nothing about the log: a consumer waits quietly for a broker that
        // is away, so readiness follows the adapter's own look at the log
        run.health.set("log", if batch.is_empty() { run.source.reachable() } else { Ok(()) });
        run.log_backoff.reset();
        if !batch.is_empty() && !run.apply(batch).await? {
            break;
        }
        if run.last_commit.elapsed() >= COMMIT_EVERY {
            run.commit(false).await?;
        }
    }
    run.commit(true).await?;
    tracing::info!(projector = projection.name(), "projector stopped, positions committed");
    Ok(())
}

impl<P: Projection> Run<'_, P> {
    /// Applies a batch until it succeeds and acknowledges it; false if shutdown came first.
    async fn apply(&mut self, batch: Vec<EventRecord>) -> PortResult<bool> {
        let name = self.projection.name();
        let Some((events, sources)) = self.decoded(batch).await else { return Ok(false) };
        if !self.apply_until_done(&events, &sources).await? {
            return Ok(false);
        }
        METRICS.events.with_label_values(&[name]).inc_by(events.len() as u64);
        self.source.ack_returned()?;
        Ok(true)
    }

    /// The batch's events and where each was read, once every record that can never be decoded
    /// is in the dead letters; `None` if shutdown came first.
    async fn decoded(&mut self, batch: Vec<EventRecord>) -> Option<(Vec<Event>, Vec<(i32, i64)>)> {
        let mut events = Vec::with_capacity(batch.len());
        let mut sources = Vec::with_capacity(batch.len());
        for rec in batch {
            match rec.event {
                Ok(e) => {
                    events.push(e);
                    sources.push((rec.partition, rec.offset));
                }
                Err(dead) => {
                    if !self.dead_letter(rec.partition, rec.offset, &dead).await {
                        return None;
                    }
                }
            }
        }
        Some((events, sources))
    }

    /// Writes a dead letter, retrying until it is stored; false if shutdown came first.
    async fn dead_letter(&mut self, partition: i32, offset: i64, record: &DeadRecord) -> bool {
        let name = self.projection.name();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.source.dead_letter(partition, offset, record).await {
                Ok(()) => {
                    METRICS.dead_letters.with_label_values(&[name]).inc();
                    tracing::error!(projector = name, partition, offset, error = %record.error, "moved to the dead letters");
                    return true;
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(projector = name, partition, offset, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot write a dead letter, retrying");
                    if !self.pause(wait).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Applies a batch: a transient failure is retried with backoff, never skipping; a batch
    /// refused for good is applied event by event, so only an event that can never be applied
    /// goes to the dead letters and the others, of every workspace, are applied. A fatal refusal
    /// (the store refused our credentials or configuration) is no fault of the events: it stops
    /// the projector with nothing acknowledged, so they are applied after the operator's fix.
    /// Ok(false) if shutdown came first.
    async fn apply_until_done(&mut self, events: &[Event], sources: &[(i32, i64)]) -> PortResult<bool> {
        match self.apply_retrying(events).await {
            Some(Ok(())) => Ok(true),
            None => Ok(false),
            Some(Err(e)) if e.kind() == PortErrorKind::Fatal => Err(self.stopped_by_store(e)),
            Some(Err(refused)) if events.len() == 1 => Ok(self.dead_event(&events[0], sources[0], refused).await),
            Some(Err(_)) => {
                for (event, source) in events.iter().zip(sources) {
                    match self.apply_retrying(std::slice::from_ref(event)).await {
                        Some(Ok(())) => {}
                        None => return Ok(false),
                        Some(Err(e)) if e.kind() == PortErrorKind::Fatal => return Err(self.stopped_by_store(e)),
                        Some(Err(refused)) => {
                            if !self.dead_event(event, *source, refused).await {
                                return Ok(false);
                            }
                        }
                    }
                }
                Ok(true)
            }
        }
    }

    /// The error that stops the projector when its store refuses it for good.
    fn stopped_by_store(&self, e: PortError) -> PortError {
        self.health.set("store", Err(e.to_string()));
        tracing::error!(projector = self.projection.name(), error = %e, "projector stopped: its store refuses it for good");
        e.context("applying")
    }

    /// Applies until it succeeds or fails for good (`Some(Err)`); `None` if shutdown came first.
    async fn apply_retrying(&mut self, events: &[Event]) -> Option<Result<(), PortError>> {
        let name = self.projection.name();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let e = match Self::apply_watched(self.projection, &self.health, events).await {
                Ok(()) => {
                    self.health.set("store", Ok(()));
                    return Some(Ok(()));
                }
                Err(e) if !e.is_transient() => return Some(Err(e)),
                Err(e) => e,
            };
            METRICS.failures.with_label_values(&[name]).inc();
            self.health.set("store", Err(e.to_string()));
            let wait = backoff.next_wait();
            tracing::warn!(projector = name, error = %e, kind = %e.kind(), retry_in_ms = wait.as_millis() as u64, "apply failed, retrying");
            if !self.pause(wait).await {
                return None;
            }
        }
    }

    /// One apply attempt; past [`STALLED_AFTER`] the projector reports not ready (a store that
    /// stopped answering hangs a write until the driver's timeout, without an error) and goes
    /// on waiting: the write may still land, and abandoning it would only redo it.
    async fn apply_watched(projection: &P, health: &Health, events: &[Event]) -> PortResult<()> {
        let attempt = projection.apply(events);
        tokio::pin!(attempt);
        tokio::select! {
            result = &mut attempt => result,
            _ = tokio::time::sleep(STALLED_AFTER) => {
                let secs = STALLED_AFTER.as_secs();
                tracing::warn!(projector = projection.name(), events = events.len(), secs, "apply stalled; not ready until it ends");
                health.set("store", Err(format!("applying a batch has taken over {secs} s")));
                attempt.await
            }
        }
    }

    /// An event the projection refused for good, to the dead letters (described: the event
    /// stays in the log at its source).
    async fn dead_event(&mut self, event: &Event, (partition, offset): (i32, i64), refused: PortError) -> bool {
        let error = refused.context("applying");
        let record = DeadRecord { payload: format!("{event:?}").into_bytes(), error };
        self.dead_letter(partition, offset, &record).await
    }

    /// Sleeps `wait`; false if shutdown came first.
    async fn pause(&mut self, wait: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.wait() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Flushes the projection and commits the acknowledged positions. `wait`: on shutdown.
    async fn commit(&mut self, wait: bool) -> PortResult<()> {
        let committed = crate::flush_then_commit(self.projection, &mut self.source, wait).await;
        self.last_commit = Instant::now();
        match committed {
            Ok(()) => {
                self.refresh_lag().await;
                Ok(())
            }
            // the positions are committed again later; until then a restart re-applies a few
            Err(e) if e.is_transient() && !wait => {
                METRICS.log_failures.with_label_values(&[self.projection.name()]).inc();
                tracing::warn!(projector = self.projection.name(), error = %e, "committing positions failed, will retry");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A failure of the log: transient ones are waited out (health says so meanwhile); any
    /// other stops the projector.
    async fn log_failed(&mut self, e: PortError, doing: &str) -> PortResult<()> {
        if !e.is_transient() {
            tracing::error!(projector = self.projection.name(), error = %e, kind = %e.kind(), doing, "projector stopped");
            return Err(e);
        }
        METRICS.log_failures.with_label_values(&[self.projection.name()]).inc();
        self.health.set("log", Err(e.to_string()));
        let wait = self.log_backoff.next_wait();
        tracing::warn!(projector = self.projection.name(), error = %e, doing, retry_in_ms = wait.as_millis() as u64, "log unavailable, retrying");
        tokio::select! {
            _ = self.shutdown.wait() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        Ok(())
    }

    async fn refresh_lag(&mut self) {
        if let Some(lag) = self.source.lag().await {
            METRICS.lag.with_label_values(&[self.projection.name()]).set(lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use confab_core::ports::PortErrorKind;
    use std::sync::{Arc, Mutex};

    /// (partition, offset, payload) of a dead letter written.
    type DeadLetter = (i32, i64, Vec<u8>);

    /// A log whose first reads fail as a broker outage would, then returns one event (after an
    /// undecodable record, with `poison`); its dead letters fail `dead_letter_failures` times.
    #[derive(Default)]
    struct FlakyLog {
        failures_left: usize,
        kind: Option<PortErrorKind>,
        served: bool,
        acked: Arc<Mutex<usize>>,
        poison: bool,
        /// Events served after the poison (1 when 0).
        events: usize,
        dead_letter_failures: usize,
        dead_letters: Arc<Mutex<Vec<DeadLetter>>>,
    }

    #[async_trait]
    impl EventSource for FlakyLog {
        async fn next_batch(&mut self, _max: usize, wait: Option<Duration>) -> PortResult<Vec<EventRecord>> {
            if self.failures_left > 0 {
                self.failures_left -= 1;
                return Err(PortError::new(self.kind.unwrap_or(PortErrorKind::Transient), "BrokerTransportFailure"));
            }
            if self.served {
                tokio::time::sleep(wait.unwrap_or_default()).await;
                return Ok(vec![]);
            }
            self.served = true;
            let mut batch = Vec::new();
            if self.poison {
                let garbage = DeadRecord { error: PortError::invalid("not Avro"), payload: b"garbage".to_vec() };
                batch.push(EventRecord { partition: 0, offset: 0, event: Err(garbage) });
            }
            for offset in 1..=self.events.max(1) as i64 {
                let mut event = sample_event();
                event.seq = offset;
                batch.push(EventRecord { partition: 0, offset, event: Ok(event) });
            }
            Ok(batch)
        }
        async fn positions(&mut self) -> PortResult<Vec<(i32, i64)>> {
            Ok(vec![])
        }
        async fn end_offsets(&mut self) -> PortResult<Vec<(i32, i64)>> {
            Ok(vec![])
        }
        fn ack_returned(&mut self) -> PortResult<()> {
            *self.acked.lock().unwrap() += 1;
            Ok(())
        }
        async fn commit(&mut self, _wait: bool) -> PortResult<()> {
            Ok(())
        }
        async fn lag(&mut self) -> Option<i64> {
            None
        }
        async fn dead_letter(&mut self, partition: i32, offset: i64, record: &DeadRecord) -> PortResult<()> {
            if self.dead_letter_failures > 0 {
                self.dead_letter_failures -= 1;
                return Err(PortError::transient("dead-letter topic leader not available"));
            }
            self.dead_letters.lock().unwrap().push((partition, offset, record.payload.clone()));
            Ok(())
        }
    }

    fn sample_event() -> Event {
        Event {
            event_id: uuid::Uuid::new_v4(),
            workspace_id: uuid::Uuid::new_v4(),
            channel_id: uuid::Uuid::new_v4(),
            actor_id: uuid::Uuid::new_v4(),
            occurred_at: 0,
            seq: 1,
            schema_version: confab_core::avro::SCHEMA_VERSION,
            payload: confab_core::event::Payload::ChannelRenamed { name: "n".into() },
            sealing: Default::default(),
        }
    }

    /// Counts what it applied.
    struct Counting(Arc<Mutex<usize>>);

    impl Projection for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
            *self.0.lock().unwrap() += events.len();
            Ok(())
        }
        async fn check(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_log_outage_is_waited_out_and_the_event_after_it_is_applied() {
        let (applied, acked) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
        let log = FlakyLog { failures_left: 5, acked: acked.clone(), ..FlakyLog::default() };
        let (trigger, shutdown) = Shutdown::new();
        let health = Health::default();
        let task = tokio::spawn(run(Box::new(log), Counting(applied.clone()), shutdown, health.clone()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while *applied.lock().unwrap() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!task.is_finished(), "the projector must not exit on a transient log error");
        assert_eq!((*applied.lock().unwrap(), *acked.lock().unwrap()), (1, 1));
        assert!(health.report(false).0, "healthy again once the log answers");
        trigger.trigger();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_fatal_log_error_stops_the_projector() {
        let log = FlakyLog { failures_left: 1, kind: Some(PortErrorKind::Fatal), ..FlakyLog::default() };
        let (_trigger, shutdown) = Shutdown::new();
        let result = run(Box::new(log), Counting(Arc::new(Mutex::new(0))), shutdown, Health::default()).await;
        assert_eq!(result.unwrap_err().kind(), PortErrorKind::Fatal);
    }

    #[tokio::test]
    async fn an_undecodable_record_goes_to_the_dead_letters_before_the_projector_passes_it() {
        let (applied, acked) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
        let dead_letters = Arc::new(Mutex::new(Vec::new()));
        let log = FlakyLog {
            poison: true,
            dead_letter_failures: 3,
            acked: acked.clone(),
            dead_letters: dead_letters.clone(),
            ..FlakyLog::default()
        };
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(run(Box::new(log), Counting(applied.clone()), shutdown, Health::default()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while *acked.lock().unwrap() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(*dead_letters.lock().unwrap(), [(0, 0, b"garbage".to_vec())], "kept once, after 3 failed writes");
        assert_eq!((*applied.lock().unwrap(), *acked.lock().unwrap()), (1, 1), "the event after it is applied");
        trigger.trigger();
        task.await.unwrap().unwrap();
    }

    /// Refuses every write as a store that refused our credentials would.
    struct RefusedCredentials;

    impl Projection for RefusedCredentials {
        fn name(&self) -> &'static str {
            "refused-credentials"
        }
        async fn apply(&self, _events: &[Event]) -> Result<(), PortError> {
            Err(PortError::fatal("opensearch 401: security_exception: authentication failed"))
        }
        async fn check(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_store_refusing_our_credentials_stops_the_projector_and_dead_letters_nothing() {
        let (acked, dead_letters) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(Vec::new())));
        let log =
            FlakyLog { events: 3, acked: acked.clone(), dead_letters: dead_letters.clone(), ..FlakyLog::default() };
        let (_trigger, shutdown) = Shutdown::new();
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            run(Box::new(log), RefusedCredentials, shutdown, Health::default()),
        )
        .await
        .expect("the projector stops instead of retrying");
        assert_eq!(result.unwrap_err().kind(), PortErrorKind::Fatal);
        assert!(dead_letters.lock().unwrap().is_empty(), "no event is blamed for the store's refusal");
        assert_eq!(*acked.lock().unwrap(), 0, "nothing is acknowledged: the events are applied after the fix");
    }

    /// Refuses for good any batch holding the event with seq `refused` (an invalid write).
    struct Refusing {
        refused: i64,
        applied: Arc<Mutex<Vec<i64>>>,
    }

    impl Projection for Refusing {
        fn name(&self) -> &'static str {
            "refusing"
        }
        async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
            if events.iter().any(|e| e.seq == self.refused) {
                return Err(PortError::invalid("TTL must be at most 630720000"));
            }
            self.applied.lock().unwrap().extend(events.iter().map(|e| e.seq));
            Ok(())
        }
        async fn check(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_event_that_can_never_be_applied_goes_to_the_dead_letters_and_the_others_are_applied() {
        let (applied, acked, dead_letters) =
            (Arc::default(), Arc::new(Mutex::new(0)), Arc::new(Mutex::new(Vec::new())));
        let log =
            FlakyLog { events: 3, acked: acked.clone(), dead_letters: dead_letters.clone(), ..FlakyLog::default() };
        let projection = Refusing { refused: 2, applied: Arc::clone(&applied) };
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(run(Box::new(log), projection, shutdown, Health::default()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while *acked.lock().unwrap() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(*applied.lock().unwrap(), [1, 3], "the projector did not stall on the refused event");
        let dead = dead_letters.lock().unwrap().clone();
        assert_eq!(dead.iter().map(|(p, o, _)| (*p, *o)).collect::<Vec<_>>(), [(0, 2)]);
        assert!(String::from_utf8_lossy(&dead[0].2).contains("seq: 2"), "the event described");
        trigger.trigger();
        task.await.unwrap().unwrap();
    }
}
