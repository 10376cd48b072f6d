//! `confab replay`: rebuild a projection from the events log, with progress on stderr and a JSON
//! summary on stdout. Replays use their own consumer group (`replay-<projection>`), so a live
//! projector keeps running meanwhile (distributed mode) and an interrupted replay resumes where
//! it stopped; `--from earliest` starts over.

use anyhow::Context;
use confab_core::avro::EventCodec;
use confab_core::config::{Config, Mode};
use confab_core::kafka::{KafkaEventSource, Topics};
use confab_core::ports::{EventSource, ReplayFrom, SchemaSource};
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::Health;
use confab_projectors::replay::{replay, Progress, Summary};
use confab_projectors::{fanout::FanoutProjection, search::SearchProjection};
use std::path::PathBuf;
use std::sync::Arc;

use crate::{ProjectorName, Target};

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

pub async fn run(
    cfg: Config,
    name: ProjectorName,
    from: ReplayFrom,
    truncate: bool,
    rebuild: bool,
    max_rate: Option<u64>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    anyhow::ensure!(!rebuild || matches!(name, ProjectorName::Search), "--rebuild is for the search projection");
    if rebuild && cfg.mode == Mode::Distributed {
        return rebuild_search(cfg, max_rate, shutdown).await;
    }
    // an embedded rebuild is a truncate and a replay of the whole log (serve is stopped anyway)
    let (from, truncate) = if rebuild { (ReplayFrom::Earliest, true) } else { (from, truncate) };
    let (source, target): (Box<dyn EventSource>, Target) = match cfg.mode {
        Mode::Distributed => {
            let Some(codec) = crate::distributed::codec(&cfg, &shutdown, &Health::default()).await else {
                return Ok(());
            };
            let source = KafkaEventSource::replay(&cfg, name.as_str(), codec, from)
                .await
                .context("assigning the events topic")?;
            (Box::new(source), crate::distributed::store_or_fanout(&cfg, name).await?)
        }
        _ => {
            let dir = PathBuf::from(&cfg.data_dir);
            let registry = Arc::new(
                confab_registry::SchemaStore::open(Some(dir.join("registry.json")))
                    .context("opening the schema registry")?,
            );
            let codec =
                EventCodec::register_with(registry as Arc<dyn SchemaSource>, &Topics::new(&cfg.namespace).events)
                    .await?;
            let emb = confab_embedded::Embedded::open(&dir, cfg.kafka.partitions, codec, cfg.redis.stream_max_len)
                .with_context(|| {
                    format!("opening {} (is `confab serve` running on it? stop it first)", dir.display())
                })?;
            let source = emb.log.event_source_from(&format!("replay-{}", name.as_str()), from).await?;
            let target = match name {
                ProjectorName::Timeline => {
                    Target::Store(emb.store.clone(), Some(crate::embedded::open_blobs(&dir, &cfg.auth.token_secret)?))
                }
                ProjectorName::Fanout => Target::Fanout(emb.fanout.clone()),
                ProjectorName::Search => Target::Search(crate::embedded::open_search(&dir)?, emb.store.clone()),
            };
            (source, target)
        }
    };
    let progress = |p| print_progress(name.as_str(), p);
    let summary: Summary = match target {
        Target::Store(store, blobs) => {
            if truncate {
                store.truncate_timeline().await.context("truncating the timeline")?;
                eprintln!("replay timeline: timeline truncated");
            }
            replay(source, &crate::timeline(store, blobs), max_rate, shutdown, progress).await?
        }
        Target::Fanout(fanout) => {
            anyhow::ensure!(!truncate, "--truncate is supported for the timeline and search only");
            replay(source, &FanoutProjection::new(fanout), max_rate, shutdown, progress).await?
        }
        Target::Search(index, store) => {
            index.ensure().await.context("creating the search index")?;
            if truncate {
                index.truncate().await.context("truncating the search index")?;
                eprintln!("replay search: index truncated");
            }
            replay(source, &SearchProjection::new(index, store), max_rate, shutdown, progress).await?
        }
    };
    println!("{}", serde_json::to_string(&summary)?);
    anyhow::ensure!(summary.complete, "replay interrupted; run it again to resume");
    Ok(())
}

/// A search rebuild in the distributed mode: replay the whole log into a fresh index while the
/// live one (behind the alias) keeps answering, swap the alias, then catch up with what arrived
/// meanwhile (the live projector writes through the alias, so from the swap on it writes to the
/// fresh index too; the overlap is idempotent).
async fn rebuild_search(cfg: Config, max_rate: Option<u64>, shutdown: Shutdown) -> anyhow::Result<()> {
    let Some(codec) = crate::distributed::codec(&cfg, &shutdown, &Health::default()).await else { return Ok(()) };
    let live = confab_search::OpenSearchIndex::new(&cfg.search.url, &cfg.search.index_name(&cfg.namespace))
        .context("configuring OpenSearch")?;
    live.ensure().await.context("creating the search index")?;
    let fresh = live.rebuild_target().await.context("creating the fresh index")?;
    eprintln!("replay search: rebuilding into {}", fresh.index_name());
    let store = crate::distributed::store_or_fanout(&cfg, ProjectorName::Timeline).await?;
    let Target::Store(store, _) = store else { anyhow::bail!("no store") };
    let fresh = Arc::new(fresh);
    let projection = SearchProjection::new(fresh.clone(), store);
    let progress = |p| print_progress("search", p);
    let group = "search-rebuild";
    let source = KafkaEventSource::replay(&cfg, group, codec.clone(), ReplayFrom::Earliest)
        .await
        .context("assigning the events topic")?;
    let first: Summary = replay(Box::new(source), &projection, max_rate, shutdown.clone(), progress).await?;
    anyhow::ensure!(first.complete, "rebuild interrupted before the swap; the live index is untouched (run it again)");
    use confab_core::search::SearchIndex;
    fresh.refresh().await.context("refreshing the fresh index")?;
    let old = live.swap_in(&fresh).await.context("swapping the alias")?;
    eprintln!("replay search: alias now on {}; dropped {}", fresh.index_name(), old.join(", "));
    let source =
        KafkaEventSource::replay(&cfg, group, codec, ReplayFrom::Resume).await.context("assigning the events topic")?;
    let rest: Summary = replay(Box::new(source), &projection, max_rate, shutdown, progress).await?;
    println!(
        "{}",
        serde_json::json!({"rebuilt": true, "index": fresh.index_name(), "replaced": old, "events": first.events + rest.events, "complete": rest.complete})
    );
    anyhow::ensure!(rest.complete, "caught up only partly after the swap; the live projector carries on");
    Ok(())
}
