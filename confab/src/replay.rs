//! `confab replay`: rebuild a projection from the events log, with progress on stderr and a JSON
//! summary on stdout. Replays use their own consumer group (`replay-<projection>`), so a live
//! projector keeps running meanwhile (distributed mode) and an interrupted replay resumes where
//! it stopped; `--from earliest` starts over. The embedded mode's `confab serve` must be
//! stopped first (the data directory is locked while it runs).

use anyhow::Context;
use confab_core::config::{Config, Mode};
use confab_core::ports::{EventSource, ReplayFrom, SearchIndex};
use confab_core::telemetry::Health;
use confab_core::Shutdown;
use confab_projectors::replay::{replay, Progress, Summary};
use confab_projectors::{fanout::FanoutProjection, search::SearchProjection};
use std::io::IsTerminal;
use std::sync::Arc;

use crate::distributed::DistributedPlatform;
use crate::embedded::EmbeddedPlatform;
use crate::platform::{timeline_projection, Component, Platform};

/// What `confab replay` was asked for.
pub struct ReplayRequest {
    pub projection: Component,
    pub from: ReplayFrom,
    pub truncate: bool,
    pub rebuild: bool,
    pub max_rate: Option<u64>,
}

/// Shows a replay's progress on stderr: on a terminal one bar redrawn in place, otherwise (logs,
/// pipes) one line per report, about one a second.
struct ProgressDisplay {
    projection: &'static str,
    on_terminal: bool,
    bar_drawn: bool,
}

/// Characters in the bar between its brackets.
const BAR_WIDTH: usize = 30;

impl ProgressDisplay {
    fn new(projection: &'static str) -> Self {
        Self { projection, on_terminal: std::io::stderr().is_terminal(), bar_drawn: false }
    }

    fn show(&mut self, progress: Progress) {
        if self.on_terminal {
            // `\r` back to the line's start, `\x1b[K` clears what a longer previous line left
            eprint!("\r{}\x1b[K", progress_bar(self.projection, &progress));
            self.bar_drawn = true;
        } else {
            eprintln!("{}", progress_line(self.projection, &progress));
        }
    }

    /// Ends the bar's line, so what follows starts on a line of its own.
    fn finish(&mut self) {
        if std::mem::take(&mut self.bar_drawn) {
            eprintln!();
        }
    }
}

fn eta_text(progress: &Progress) -> String {
    progress.eta().map(|d| format!("{:.1} s", d.as_secs_f64())).unwrap_or_else(|| "-".into())
}

/// One progress line for logs: `replay timeline: 300 events, 320/640 offsets (50%), 150 events/s, lag 320, eta 2.0 s`.
fn progress_line(projection: &str, progress: &Progress) -> String {
    format!(
        "replay {projection}: {} events, {}/{} offsets ({:.0}%), {:.0} events/s, lag {}, eta {}",
        progress.applied,
        progress.read,
        progress.total,
        progress.fraction_read() * 100.0,
        progress.rate(),
        progress.remaining(),
        eta_text(progress)
    )
}

/// The terminal's bar: `replay timeline [###############---------------]  50% 320/640 offsets, 300 events, 150 events/s, eta 2.0 s`.
fn progress_bar(projection: &str, progress: &Progress) -> String {
    let fraction = progress.fraction_read();
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    format!(
        "replay {projection} [{}{}] {:3.0}% {}/{} offsets, {} events, {:.0} events/s, eta {}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        fraction * 100.0,
        progress.read,
        progress.total,
        progress.applied,
        progress.rate(),
        eta_text(progress)
    )
}

pub async fn run(cfg: Config, req: ReplayRequest, shutdown: Shutdown) -> anyhow::Result<()> {
    let name = req.projection;
    anyhow::ensure!(
        matches!(name, Component::Timeline | Component::Fanout | Component::Search),
        "a replay rebuilds the timeline, fanout or search projection"
    );
    anyhow::ensure!(!req.rebuild || name == Component::Search, "--rebuild is for the search projection");
    if req.rebuild && cfg.mode == Mode::Distributed {
        return rebuild_search(cfg, req.max_rate, shutdown).await;
    }
    // an embedded rebuild is a truncate and a replay of the whole log (serve is stopped anyway)
    let (from, truncate) = if req.rebuild { (ReplayFrom::Earliest, true) } else { (req.from, req.truncate) };
    let platform: Arc<dyn Platform> = match cfg.mode {
        Mode::Distributed => Arc::new(DistributedPlatform::new(cfg.clone(), shutdown.clone(), Health::default())),
        _ => Arc::new(EmbeddedPlatform::open(&crate::embedded::prepare(cfg.clone())?).await?),
    };
    let Some(source) = platform.replay_source(name.as_str(), from).await? else { return Ok(()) };
    let summary = replay_into(&*platform, name, source, truncate, req.max_rate, shutdown).await?;
    println!("{}", serde_json::to_string(&summary)?);
    anyhow::ensure!(summary.complete, "replay interrupted; run it again to resume");
    Ok(())
}

/// Replays `source` into the projection `name` of `platform`, truncating it first if asked.
async fn replay_into(
    platform: &dyn Platform,
    name: Component,
    source: Box<dyn EventSource>,
    truncate: bool,
    max_rate: Option<u64>,
    shutdown: Shutdown,
) -> anyhow::Result<Summary> {
    let mut display = ProgressDisplay::new(name.as_str());
    let progress = |p| display.show(p);
    let summary = match name {
        Component::Timeline => {
            let store = platform.store().await?;
            if truncate {
                store.truncate_timeline().await.context("truncating the timeline")?;
                eprintln!("replay timeline: timeline truncated");
            }
            let projection = timeline_projection(store, platform.blobs()?);
            replay(source, &projection, max_rate, shutdown, progress).await?
        }
        Component::Fanout => {
            anyhow::ensure!(!truncate, "--truncate is supported for the timeline and search only");
            replay(source, &FanoutProjection::new(platform.fanout().await?), max_rate, shutdown, progress).await?
        }
        _ => {
            let index = platform.search().await?;
            index.ensure().await.context("creating the search index")?;
            if truncate {
                index.truncate().await.context("truncating the search index")?;
                eprintln!("replay search: index truncated");
            }
            let projection = SearchProjection::new(index, platform.store().await?);
            replay(source, &projection, max_rate, shutdown, progress).await?
        }
    };
    display.finish();
    Ok(summary)
}

/// A search rebuild in the distributed mode: replay the whole log into a fresh index while the
/// live one (behind the alias) keeps answering, swap the alias, then catch up with what arrived
/// meanwhile (the live projector writes through the alias, so from the swap on it writes to the
/// fresh index too; the overlap is idempotent).
async fn rebuild_search(cfg: Config, max_rate: Option<u64>, shutdown: Shutdown) -> anyhow::Result<()> {
    let platform = DistributedPlatform::new(cfg.clone(), shutdown.clone(), Health::default());
    let live = crate::distributed::opensearch_index(&cfg)?;
    live.ensure().await.context("creating the search index")?;
    let fresh = Arc::new(live.rebuild_target().await.context("creating the fresh index")?);
    eprintln!("replay search: rebuilding into {}", fresh.index_name());
    let projection = SearchProjection::new(fresh.clone(), platform.store().await?);
    let mut display = ProgressDisplay::new("search");
    let group = "search-rebuild";
    let Some(source) = platform.replay_source(group, ReplayFrom::Earliest).await? else { return Ok(()) };
    let first: Summary = replay(source, &projection, max_rate, shutdown.clone(), |p| display.show(p)).await?;
    display.finish();
    anyhow::ensure!(first.complete, "rebuild interrupted before the swap; the live index is untouched (run it again)");
    fresh.refresh().await.context("refreshing the fresh index")?;
    let old = live.swap_in(&fresh).await.context("swapping the alias")?;
    eprintln!("replay search: alias now on {}; dropped {}", fresh.index_name(), old.join(", "));
    let Some(source) = platform.replay_source(group, ReplayFrom::Resume).await? else { return Ok(()) };
    let rest: Summary = replay(source, &projection, max_rate, shutdown, |p| display.show(p)).await?;
    display.finish();
    let events = first.events + rest.events;
    let summary = serde_json::json!({"rebuilt": true, "index": fresh.index_name(), "replaced": old, "events": events, "complete": rest.complete});
    println!("{summary}");
    anyhow::ensure!(rest.complete, "caught up only partly after the swap; the live projector carries on");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bar_fills_with_the_offsets_read_and_the_line_keeps_the_log_format() {
        // 320 of 640 offsets read, 300 of them events (the rest transaction markers)
        let half = Progress { applied: 300, read: 320, total: 640, elapsed: Duration::from_secs(2) };
        assert_eq!(
            progress_bar("timeline", &half),
            format!(
                "replay timeline [{}{}]  50% 320/640 offsets, 300 events, 150 events/s, eta 2.0 s",
                "#".repeat(15),
                "-".repeat(15)
            )
        );
        assert_eq!(
            progress_line("timeline", &half),
            "replay timeline: 300 events, 320/640 offsets (50%), 150 events/s, lag 320, eta 2.0 s"
        );
        // done: every offset read, though fewer events than offsets
        let done = Progress { applied: 306, read: 378, total: 378, elapsed: Duration::from_secs(4) };
        assert!(progress_bar("search", &done).starts_with(&format!("replay search [{}] 100% 378/378", "#".repeat(30))));
        let empty_log = Progress { applied: 0, read: 0, total: 0, elapsed: Duration::ZERO };
        assert!(progress_bar("fanout", &empty_log).contains(&format!("[{}] 100%", "#".repeat(30))));
    }
}
