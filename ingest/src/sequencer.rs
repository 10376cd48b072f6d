//! The sequencer loop: read a batch of commands, decide each, commit events + replies +
//! offsets atomically. Any log error ends the session; the next session reopens the log from
//! its committed offsets with freshly loaded state, so memory never runs ahead of the log.

use confab_core::command::{Command, Outcome, Reply};
use confab_core::event::Event;
use confab_core::ports::{CommandRecord, PortErrorKind, PortResult, SequencerLog};
use confab_core::telemetry::{register, Health};
use confab_core::{Backoff, Shutdown, TimeUuidGen};
use prometheus::{Counter, CounterVec, Histogram, HistogramOpts, IntCounterVec, Opts};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use crate::state::PartitionState;

const MAX_BATCH: usize = 500;

/// A commit in flight longer than this makes ingest unready until it ends: a store it seals
/// with, or the log, is not answering, so commands wait (a healthy commit takes milliseconds).
const COMMIT_STALLED_AFTER: Duration = Duration::from_secs(1);

/// One set per process: several projectors (or sequencers) in one process share it, labelled.
static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::new);

struct Metrics {
    commands: IntCounterVec,
    batch: Histogram,
    /// Wall time the loop spends reading (waiting for and reading commands) and deciding, as
    /// `confab_ingest_busy_seconds_total{stage}`; its third stage, committing, is the sum of
    /// `commit`. The loop is serial: when decide + commit near 1 s/s, with full batches, ingest
    /// is the limit of the pipeline.
    reading: Counter,
    deciding: Counter,
    /// Time to commit one batch (in embedded mode mostly its fsync).
    commit: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let busy = register(
            CounterVec::new(
                Opts::new(
                    "confab_ingest_busy_seconds_total",
                    "wall time the sequencer loop spent reading and deciding, by stage",
                ),
                &["stage"],
            )
            .unwrap(),
        );
        Self {
            commands: register(
                IntCounterVec::new(
                    Opts::new("confab_ingest_commands_total", "commands decided, by outcome"),
                    &["outcome"],
                )
                .unwrap(),
            ),
            batch: register(
                Histogram::with_opts(
                    HistogramOpts::new("confab_ingest_batch_size", "commands per commit")
                        .buckets(vec![1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0]),
                )
                .unwrap(),
            ),
            reading: busy.with_label_values(&["read"]),
            deciding: busy.with_label_values(&["decide"]),
            commit: register(
                Histogram::with_opts(
                    HistogramOpts::new(
                        "confab_ingest_commit_seconds",
                        "time to commit one batch of events, replies and offsets",
                    )
                    .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0]),
                )
                .unwrap(),
            ),
        }
    }
}

/// Runs the sequencer until shutdown; `open` (re)opens the log for each session. A failed
/// session restarts from the committed offsets; only a fatal error (refused credentials, a
/// fenced producer: another instance took over) stops it.
pub async fn run<F, Fut>(open: F, shutdown: Shutdown, health: Health) -> PortResult<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = PortResult<Box<dyn SequencerLog>>>,
{
    let metrics: &Metrics = &METRICS;
    let ids = TimeUuidGen::new();
    // a new session reloads every partition it meets from the log: after a failure it waits
    // longer each time in a row (a failing disk or broker is not re-read every second), and
    // a session that commits resets the wait
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let result = match open().await {
            Ok(log) => {
                health.set("log", Ok(()));
                session(log, &ids, metrics, &mut backoff, &health, shutdown.clone()).await
            }
            Err(e) => Err(e),
        };
        let Err(e) = result else { return Ok(()) };
        health.set("log", Err(e.to_string()));
        if e.kind() == PortErrorKind::Fatal {
            tracing::error!(error = %e, "ingest stopped by a fatal error");
            return Err(e);
        }
        let wait = backoff.next_wait();
        tracing::error!(error = %e, wait_ms = wait.as_millis() as u64, "ingest session failed, restarting from committed offsets");
        let mut s = shutdown.clone();
        tokio::select! { _ = s.wait() => return Ok(()), _ = tokio::time::sleep(wait) => {} }
    }
}

/// What one batch of commands comes to: everything committed atomically.
#[derive(Default)]
struct Decided {
    events: Vec<(i32, Event)>,
    replies: Vec<Reply>,
    /// Per partition, the offset after the last command read.
    offsets: HashMap<i32, i64>,
}

/// One session: read a batch, decide it, commit it, until shutdown or a log error.
async fn session(
    mut log: Box<dyn SequencerLog>,
    ids: &TimeUuidGen,
    metrics: &Metrics,
    backoff: &mut Backoff,
    health: &Health,
    mut shutdown: Shutdown,
) -> PortResult<()> {
    tracing::info!("ingest session started");
    let mut partitions: HashMap<i32, PartitionState> = HashMap::new();
    loop {
        let reading = std::time::Instant::now();
        let batch = tokio::select! {
            _ = shutdown.wait() => {
                tracing::info!("ingest stopping: no commit in flight");
                return Ok(());
            }
            b = log.next_batch(MAX_BATCH) => b?,
        };
        for p in log.take_revoked() {
            partitions.remove(&p);
        }
        metrics.batch.observe(batch.len() as f64);
        let deciding = std::time::Instant::now();
        metrics.reading.inc_by(deciding.duration_since(reading).as_secs_f64());
        let decided = decide_batch(&mut *log, &mut partitions, batch, ids, metrics).await?;
        let committing = std::time::Instant::now();
        metrics.deciding.inc_by(committing.duration_since(deciding).as_secs_f64());
        commit_watched(&mut *log, decided, health).await?;
        metrics.commit.observe(committing.elapsed().as_secs_f64());
        backoff.reset();
    }
}

/// Commits a decided batch; while it is in flight for longer than [`COMMIT_STALLED_AFTER`]
/// the `commit` check fails, so `/readyz` tells the operator (and a load balancer) that
/// commands are waiting.
async fn commit_watched(log: &mut dyn SequencerLog, decided: Decided, health: &Health) -> PortResult<()> {
    let commit = log.commit(decided.events, decided.replies, decided.offsets.into_iter().collect());
    tokio::pin!(commit);
    let result = tokio::select! {
        result = &mut commit => result,
        _ = tokio::time::sleep(COMMIT_STALLED_AFTER) => {
            health.set("commit", Err(format!("a commit has been in flight for over {COMMIT_STALLED_AFTER:?}")));
            commit.await
        }
    };
    // a failed commit ends the session, which fails the `log` check until the next one opens
    health.set("commit", Ok(()));
    result
}

/// Decides every command of a batch in order, loading a partition's state from the log the
/// first time one of its commands comes.
async fn decide_batch(
    log: &mut dyn SequencerLog,
    partitions: &mut HashMap<i32, PartitionState>,
    batch: Vec<CommandRecord>,
    ids: &TimeUuidGen,
    metrics: &Metrics,
) -> PortResult<Decided> {
    let mut decided = Decided::default();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for rec in batch {
        decided.offsets.insert(rec.partition, rec.offset + 1);
        let state = match partitions.entry(rec.partition) {
            Entry::Occupied(loaded) => loaded.into_mut(),
            Entry::Vacant(new) => new.insert(load_partition(log, rec.partition).await?),
        };
        let cmd = match rec.command {
            Ok(cmd) => cmd,
            Err(unaccepted) => {
                metrics.commands.with_label_values(&[unaccepted.label()]).inc();
                tracing::warn!(
                    partition = rec.partition,
                    offset = rec.offset,
                    reason = unaccepted.label(),
                    "skipping a command"
                );
                continue;
            }
        };
        let (event, outcome) = state.decide(&cmd, ids, now_ms);
        metrics.commands.with_label_values(&[outcome_label(&outcome)]).inc();
        decided.events.extend(event.map(|e| (rec.partition, e)));
        decided.replies.push(reply(&cmd, outcome));
    }
    Ok(decided)
}

/// A partition's state, rebuilt from every event committed to it.
async fn load_partition(log: &mut dyn SequencerLog, partition: i32) -> PortResult<PartitionState> {
    let started = std::time::Instant::now();
    let mut state = PartitionState::default();
    let history = log.load_partition(partition).await?;
    for e in &history {
        state.apply(e);
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let (events, streams) = (history.len(), state.channels.len());
    // an empty partition (a new deployment's) is not news
    if events == 0 {
        tracing::debug!(partition, events, streams, elapsed_ms, "partition state loaded");
    } else {
        tracing::info!(partition, events, streams, elapsed_ms, "partition state loaded");
    }
    Ok(state)
}

fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Posted { duplicate: true, .. } => "duplicate",
        Outcome::Posted { .. } => "posted",
        Outcome::Done { .. } => "done",
        Outcome::Rejected { .. } => "rejected",
    }
}

/// The answer to the gateway that sent `cmd`.
fn reply(cmd: &Command, outcome: Outcome) -> Reply {
    Reply {
        reply_to: cmd.reply_to.clone(),
        command_id: cmd.command_id,
        workspace_id: cmd.workspace_id,
        channel_id: cmd.channel_id,
        client_msg_id: cmd.client_msg_id.clone(),
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Arc;
    use tokio::sync::Notify;

    /// A log whose commits wait until the test releases them (a frozen key store).
    struct HeldCommits(Arc<Notify>);

    #[async_trait]
    impl SequencerLog for HeldCommits {
        async fn next_batch(&mut self, _max: usize) -> PortResult<Vec<CommandRecord>> {
            std::future::pending().await
        }
        async fn load_partition(&mut self, _partition: i32) -> PortResult<Vec<Event>> {
            Ok(Vec::new())
        }
        async fn commit(&mut self, _: Vec<(i32, Event)>, _: Vec<Reply>, _: Vec<(i32, i64)>) -> PortResult<()> {
            self.0.notified().await;
            Ok(())
        }
        fn take_revoked(&mut self) -> Vec<i32> {
            Vec::new()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_in_flight_too_long_makes_ingest_unready_until_it_ends() {
        let release = Arc::new(Notify::new());
        let health = Health::default();
        let mut log = HeldCommits(release.clone());
        let watched = {
            let health = health.clone();
            tokio::spawn(async move { commit_watched(&mut log, Decided::default(), &health).await })
        };
        tokio::time::sleep(COMMIT_STALLED_AFTER / 2).await;
        assert!(health.report(false).0, "a commit that has only begun is normal");
        tokio::time::sleep(COMMIT_STALLED_AFTER).await;
        assert!(!health.report(false).0, "a stalled commit makes ingest unready");
        release.notify_one();
        watched.await.unwrap().unwrap();
        assert!(health.report(false).0, "ready again once the commit is done");
    }
}
