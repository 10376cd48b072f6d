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

fn print_progress(name: &str, p: Progress) {
    let pct = if p.total == 0 { 100.0 } else { p.applied as f64 * 100.0 / p.total as f64 };
    let eta = p.eta().map(|d| format!("{:.1} s", d.as_secs_f64())).unwrap_or_else(|| "-".into());
    eprintln!(
        "replay {name}: {}/{} events ({pct:.0}%), {:.0} events/s, lag {}, eta {eta}",
        p.applied,
        p.total,
        p.rate(),
        p.remaining()
    );
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
    let progress = |p| print_progress(name.as_str(), p);
    Ok(match name {
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
    })
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
    let progress = |p| print_progress("search", p);
    let group = "search-rebuild";
    let Some(source) = platform.replay_source(group, ReplayFrom::Earliest).await? else { return Ok(()) };
    let first: Summary = replay(source, &projection, max_rate, shutdown.clone(), progress).await?;
    anyhow::ensure!(first.complete, "rebuild interrupted before the swap; the live index is untouched (run it again)");
    fresh.refresh().await.context("refreshing the fresh index")?;
    let old = live.swap_in(&fresh).await.context("swapping the alias")?;
    eprintln!("replay search: alias now on {}; dropped {}", fresh.index_name(), old.join(", "));
    let Some(source) = platform.replay_source(group, ReplayFrom::Resume).await? else { return Ok(()) };
    let rest: Summary = replay(source, &projection, max_rate, shutdown, progress).await?;
    let events = first.events + rest.events;
    let summary = serde_json::json!({"rebuilt": true, "index": fresh.index_name(), "replaced": old, "events": events, "complete": rest.complete});
    println!("{summary}");
    anyhow::ensure!(rest.complete, "caught up only partly after the swap; the live projector carries on");
    Ok(())
}
