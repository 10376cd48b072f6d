//! One conformance body for both `SearchIndex` adapters: every case in `cases` runs as
//! `tantivy::<case>` (always, in a temp dir) and `opensearch::<case>` (against
//! `CONFAB_TEST_OPENSEARCH_URL`, each in its own random index; skipped with a note when the
//! variable is unset, unless `CONFAB_REQUIRE_SERVERS=1`).
//!
//! ```sh
//! cargo test -p confab-search                                   # tantivy only
//! scripts/services/opensearch.sh start /tmp/os && . /tmp/os/env
//! CONFAB_TEST_OPENSEARCH_URL=$CONFAB_OPENSEARCH_URL cargo test -p confab-search
//! ```

use std::sync::Arc;

use confab_core::ports::{SearchDoc, SearchIndex, SearchQuery, SearchResults};
use confab_search::{OpenSearchIndex, TantivyIndex};
use uuid::Uuid;

struct Harness {
    idx: Arc<dyn SearchIndex>,
    _dir: Option<tempfile::TempDir>,
    opensearch: Option<Arc<OpenSearchIndex>>,
}

impl Harness {
    fn tantivy() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let idx = Arc::new(TantivyIndex::open(dir.path()).unwrap());
        Harness { idx, _dir: Some(dir), opensearch: None }
    }

    async fn opensearch() -> Option<Harness> {
        let url = match std::env::var("CONFAB_TEST_OPENSEARCH_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                if std::env::var("CONFAB_REQUIRE_SERVERS").as_deref() == Ok("1") {
                    panic!("CONFAB_REQUIRE_SERVERS=1 but CONFAB_TEST_OPENSEARCH_URL is not set");
                }
                eprintln!("note: CONFAB_TEST_OPENSEARCH_URL not set, skipping the OpenSearch run");
                return None;
            }
        };
        let name = format!("confab-test-{}", Uuid::new_v4().simple());
        let os = Arc::new(OpenSearchIndex::new(&url, &name).unwrap());
        os.ensure().await.unwrap();
        Some(Harness { idx: os.clone(), _dir: None, opensearch: Some(os) })
    }

    async fn finish(self) {
        if let Some(os) = self.opensearch {
            os.delete_index().await.unwrap();
        }
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod tantivy {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = super::Harness::tantivy();
                    super::cases::$case(&*h.idx).await;
                    h.finish().await;
                }
            )*
        }
        mod opensearch {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(h) = super::Harness::opensearch().await else { return };
                    super::cases::$case(&*h.idx).await;
                    h.finish().await;
                }
            )*
        }
    };
}

conformance!(
    ensure_and_ping,
    stemming,
    stop_words,
    fuzziness,
    exact_beats_fuzzy,
    workspace_isolation,
    channel_filter,
    from_filter,
    date_ranges,
    has_link_and_file,
    file_names,
    threads,
    phrases_and_words,
    edit_replaces,
    get_is_realtime,
    delete_removes,
    expire_by_workspace,
    highlight,
    ordering,
    paging_and_total,
    filters_only,
    visible_without_refresh,
    truncate_all,
);

/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A workspace with two channels and two people.
struct W {
    ws: Uuid,
    ch: Uuid,
    ch2: Uuid,
    ana: Uuid,
    bob: Uuid,
}

impl W {
    fn new() -> W {
        W { ws: Uuid::new_v4(), ch: Uuid::new_v4(), ch2: Uuid::new_v4(), ana: Uuid::new_v4(), bob: Uuid::new_v4() }
    }

    fn doc(&self, text: &str, ts: i64) -> SearchDoc {
        SearchDoc {
            workspace_id: self.ws,
            channel_id: self.ch,
            message_id: Uuid::new_v4(),
            user_id: self.ana,
            text: text.to_string(),
            ts,
            thread_ts: None,
            has_link: false,
            has_file: false,
            reactions_count: 0,
            file_names: vec![],
        }
    }

    /// Free words (whitespace-separated) over both channels.
    fn q(&self, words: &str) -> SearchQuery {
        SearchQuery {
            workspace_id: self.ws,
            channels: vec![self.ch, self.ch2],
            words: words.split_whitespace().map(str::to_string).collect(),
            limit: 20,
            ..Default::default()
        }
    }

    fn phrase(&self, phrase: &str) -> SearchQuery {
        SearchQuery { phrases: vec![phrase.to_string()], ..self.q("") }
    }
}

async fn put(idx: &dyn SearchIndex, docs: &[SearchDoc]) {
    idx.upsert(docs).await.unwrap();
    idx.refresh().await.unwrap();
}

async fn run(idx: &dyn SearchIndex, q: &SearchQuery) -> SearchResults {
    idx.search(q).await.unwrap_or_else(|e| panic!("search {q:?}: {e}"))
}

async fn texts(idx: &dyn SearchIndex, q: &SearchQuery) -> Vec<String> {
    let r = run(idx, q).await;
    assert!(r.total as usize >= r.hits.len(), "total {} below the {} hits returned", r.total, r.hits.len());
    r.hits.into_iter().map(|h| h.text).collect()
}

fn strip_tags(s: &str) -> String {
    s.replace("<em>", "").replace("</em>", "")
}

mod cases {
    use super::*;

    pub async fn ensure_and_ping(idx: &dyn SearchIndex) {
        idx.ensure().await.unwrap();
        idx.ensure().await.unwrap();
        idx.ping().await.unwrap();
        idx.refresh().await.unwrap();
        let w = W::new();
        assert_eq!(run(idx, &w.q("anything")).await, SearchResults { total: 0, hits: vec![] });
        idx.upsert(&[]).await.unwrap();
        idx.delete(w.ws, &[]).await.unwrap();
    }

    pub async fn stemming(idx: &dyn SearchIndex) {
        let w = W::new();
        put(idx, &[w.doc("We deployed the new build", T0), w.doc("Lunch at noon", T0 + HOUR)]).await;
        assert_eq!(texts(idx, &w.q("deploying")).await, ["We deployed the new build"]);
        assert_eq!(texts(idx, &w.q("deploys builds")).await, ["We deployed the new build"]);
        assert_eq!(texts(idx, &w.q("LUNCHES")).await, ["Lunch at noon"]);
        assert!(texts(idx, &w.q("deploying lunch")).await.is_empty(), "all words must match");
    }

    pub async fn stop_words(idx: &dyn SearchIndex) {
        let w = W::new();
        put(
            idx,
            &[
                w.doc("the build is green", T0),
                w.doc("build failed", T0 + HOUR),
                w.doc("deployed a new build", T0 + 2 * HOUR),
                w.doc("deployed new build", T0 + 3 * HOUR),
            ],
        )
        .await;
        // Stop words are not required...
        assert_eq!(run(idx, &w.q("the build")).await.total, 4);
        assert_eq!(run(idx, &w.q("build of the")).await.total, 4);
        // ...but a query of stop words only matches nothing.
        assert_eq!(run(idx, &w.q("the")).await.total, 0);
        assert_eq!(run(idx, &w.q("a the of")).await.total, 0);
        assert_eq!(run(idx, &w.phrase("to be")).await.total, 0);
        // In a phrase, a stop word keeps its place.
        assert_eq!(texts(idx, &w.phrase("deployed the new")).await, ["deployed a new build"]);
    }

    pub async fn fuzziness(idx: &dyn SearchIndex) {
        let w = W::new();
        put(
            idx,
            &[
                w.doc("deployment finished", T0),
                w.doc("payment received", T0 + HOUR),
                w.doc("db migration done", T0 + 2 * HOUR),
            ],
        )
        .await;
        assert_eq!(texts(idx, &w.q("deploymnet")).await, ["deployment finished"]);
        assert_eq!(texts(idx, &w.q("Deploymetn finsihed")).await, ["deployment finished"]);
        assert_eq!(texts(idx, &w.q("migratoin")).await, ["db migration done"]);
        assert_eq!(texts(idx, &w.q("paymnt")).await, ["payment received"]);
        // 1-2 characters: exact only; 3-5: one edit; more: two.
        assert_eq!(texts(idx, &w.q("db")).await, ["db migration done"]);
        assert!(texts(idx, &w.q("dc")).await.is_empty());
        assert_eq!(texts(idx, &w.q("dome")).await, ["db migration done"]);
        assert!(texts(idx, &w.q("dxme")).await.is_empty(), "two edits in a 4-letter word");
        assert!(texts(idx, &w.q("dexploymnett")).await.is_empty(), "three edits");
        // letters and digits make one token, and fuzziness applies to it like to any word
        put(idx, &[w.doc("probe zqvis0x here", T0 + 3 * HOUR), w.doc("probe zqvis1x there", T0 + 4 * HOUR)]).await;
        assert_eq!(texts(idx, &w.q("zqvis1x")).await, ["probe zqvis1x there", "probe zqvis0x here"]);
    }

    pub async fn exact_beats_fuzzy(idx: &dyn SearchIndex) {
        let w = W::new();
        // The misspelling is newer and rarer: the exact word must still rank first.
        put(idx, &[w.doc("deploy the app", T0), w.doc("deplay the app", T0 + 5 * HOUR)]).await;
        assert_eq!(texts(idx, &w.q("deploy")).await, ["deploy the app", "deplay the app"]);
        let r = run(idx, &w.q("deploy")).await;
        assert!(r.hits[0].score > r.hits[1].score, "{:?}", r.hits);
    }

    pub async fn workspace_isolation(idx: &dyn SearchIndex) {
        let w1 = W::new();
        // Another workspace with the very same channel id and the same words.
        let w2 = W { ws: Uuid::new_v4(), ch: w1.ch, ch2: w1.ch2, ana: w1.ana, bob: w1.bob };
        let d1 = w1.doc("quarterly planning", T0);
        let d2 = w2.doc("quarterly planning", T0 + HOUR);
        put(idx, &[d1.clone(), d2.clone()]).await;
        let r = run(idx, &w1.q("quarterly planning")).await;
        assert_eq!(r.total, 1);
        assert_eq!(r.hits[0].message_id, d1.message_id);
        let r = run(idx, &w2.q("")).await;
        assert_eq!(r.total, 1);
        assert_eq!(r.hits[0].message_id, d2.message_id);
        let none = SearchQuery { workspace_id: Uuid::new_v4(), ..w1.q("quarterly") };
        assert_eq!(run(idx, &none).await.total, 0);
    }

    pub async fn channel_filter(idx: &dyn SearchIndex) {
        let w = W::new();
        let a = w.doc("alpha report", T0);
        let b = SearchDoc { channel_id: w.ch2, ..w.doc("alpha summary", T0 + HOUR) };
        put(idx, &[a.clone(), b.clone()]).await;
        let only = |channels: Vec<Uuid>| SearchQuery { channels, ..w.q("alpha") };
        assert_eq!(run(idx, &only(vec![w.ch, w.ch2])).await.total, 2);
        let r = run(idx, &only(vec![w.ch])).await;
        assert_eq!((r.total, r.hits[0].message_id, r.hits[0].channel_id), (1, a.message_id, w.ch));
        let r = run(idx, &only(vec![w.ch2])).await;
        assert_eq!((r.total, r.hits[0].message_id, r.hits[0].channel_id), (1, b.message_id, w.ch2));
        assert_eq!(run(idx, &only(vec![Uuid::new_v4()])).await.total, 0);
        // No readable channel: nothing, not everything.
        assert_eq!(run(idx, &only(vec![])).await, SearchResults { total: 0, hits: vec![] });
        assert_eq!(run(idx, &SearchQuery { channels: vec![], ..w.q("") }).await.total, 0);
    }

    pub async fn from_filter(idx: &dyn SearchIndex) {
        let w = W::new();
        let a = w.doc("budget draft", T0);
        let b = SearchDoc { user_id: w.bob, ..w.doc("budget final", T0 + HOUR) };
        put(idx, &[a.clone(), b.clone()]).await;
        let from = |users: Vec<Uuid>| SearchQuery { from_users: users, ..w.q("budget") };
        let r = run(idx, &from(vec![w.ana])).await;
        assert_eq!((r.total, r.hits[0].user_id), (1, w.ana));
        let r = run(idx, &from(vec![w.bob])).await;
        assert_eq!((r.total, r.hits[0].message_id), (1, b.message_id));
        assert_eq!(run(idx, &from(vec![w.ana, w.bob])).await.total, 2);
        assert_eq!(run(idx, &from(vec![Uuid::new_v4()])).await.total, 0);
        assert_eq!(run(idx, &SearchQuery { from_users: vec![w.bob], ..w.q("") }).await.total, 1);
    }

    pub async fn date_ranges(idx: &dyn SearchIndex) {
        let w = W::new();
        let jan1 = w.doc("standup notes one", T0 + 10 * HOUR);
        let jan2 = w.doc("standup notes two", T0 + DAY + 10 * HOUR);
        let jan3 = w.doc("standup notes three", T0 + 2 * DAY + 10 * HOUR);
        put(idx, &[jan1, jan2.clone(), jan3]).await;
        let range = |after: Option<i64>, before: Option<i64>| SearchQuery {
            after_ms: after,
            before_ms: before,
            ..w.q("standup")
        };
        assert_eq!(run(idx, &range(Some(T0 + DAY), None)).await.total, 2);
        assert_eq!(run(idx, &range(None, Some(T0 + DAY))).await.total, 1);
        assert_eq!(texts(idx, &range(Some(T0 + DAY), Some(T0 + 2 * DAY))).await, ["standup notes two"]);
        // Lower bound inclusive, upper exclusive.
        assert_eq!(texts(idx, &range(Some(jan2.ts), Some(jan2.ts + 1))).await, ["standup notes two"]);
        assert_eq!(run(idx, &range(Some(jan2.ts + 1), Some(jan2.ts + 2 * HOUR))).await.total, 0);
        assert_eq!(run(idx, &range(Some(T0), Some(jan2.ts))).await.total, 1);
        // From the user's syntax, in their time zone.
        let now = T0 + 30 * DAY;
        let parsed = |s: &str, tz: i32| {
            let p = confab_core::search_query::parse(s, now, tz).unwrap();
            range(p.after_ms, p.before_ms)
        };
        assert_eq!(texts(idx, &parsed("on:2026-01-02", 0)).await, ["standup notes two"]);
        assert_eq!(texts(idx, &parsed("after:2026-01-02", 0)).await, ["standup notes three"]);
        assert_eq!(texts(idx, &parsed("before:2026-01-02", 0)).await, ["standup notes one"]);
        // In UTC-10 the local 2026-01-02 runs from 10:00 UTC on the 2nd to 10:00 UTC on the 3rd.
        assert_eq!(texts(idx, &parsed("on:2026-01-02", -600)).await, ["standup notes two"]);
        // In UTC+14 it runs from 10:00 UTC on the 1st.
        assert_eq!(texts(idx, &parsed("on:2026-01-02", 14 * 60)).await, ["standup notes one"]);
        // Dates without words.
        assert_eq!(run(idx, &SearchQuery { after_ms: Some(T0 + DAY), ..w.q("") }).await.total, 2);
    }

    pub async fn has_link_and_file(idx: &dyn SearchIndex) {
        let w = W::new();
        put(
            idx,
            &[
                SearchDoc { has_link: true, ..w.doc("spec at https://example.com/x", T0) },
                SearchDoc { has_file: true, ..w.doc("spec attached", T0 + HOUR) },
                SearchDoc { has_link: true, has_file: true, ..w.doc("spec and link", T0 + 2 * HOUR) },
                w.doc("spec soon", T0 + 3 * HOUR),
            ],
        )
        .await;
        let q = |link: bool, file: bool| SearchQuery { has_link: link, has_file: file, ..w.q("spec") };
        assert_eq!(run(idx, &q(false, false)).await.total, 4);
        assert_eq!(texts(idx, &q(true, false)).await, ["spec and link", "spec at https://example.com/x"]);
        assert_eq!(texts(idx, &q(false, true)).await, ["spec and link", "spec attached"]);
        assert_eq!(texts(idx, &q(true, true)).await, ["spec and link"]);
        assert_eq!(run(idx, &SearchQuery { has_link: true, ..w.q("") }).await.total, 2);
    }

    pub async fn file_names(idx: &dyn SearchIndex) {
        let w = W::new();
        let names_of =
            |names: &[&str]| names.iter().map(|n| confab_core::ports::file_name_terms(n)).collect::<Vec<_>>();
        let with_file = |text: &str, names: &[&str], ts| SearchDoc {
            has_file: true,
            file_names: names_of(names),
            ..w.doc(text, ts)
        };
        put(
            idx,
            &[
                with_file("", &["quarterly-report.pdf"], T0),
                with_file("see the diagrams", &["architecture.png", "Roadmap 2027.key"], T0 + HOUR),
                w.doc("the report is late", T0 + 2 * HOUR),
            ],
        )
        .await;
        // words match a file's name like the text, stemmed and fuzzy
        assert_eq!(texts(idx, &w.q("quarterly")).await, [""]);
        let mut both = texts(idx, &w.q("reports")).await;
        both.sort();
        assert_eq!(both, ["", "the report is late"]);
        assert_eq!(texts(idx, &w.q("roadmap")).await, ["see the diagrams"]);
        assert_eq!(texts(idx, &w.q("architecure")).await, ["see the diagrams"]);
        assert_eq!(texts(idx, &SearchQuery { has_file: true, ..w.q("report") }).await, [""]);
        // the names come back with the document
        let hits = run(idx, &w.q("diagrams")).await;
        let d = idx.get(w.ws, hits.hits[0].message_id).await.unwrap().unwrap();
        assert_eq!(d.file_names, names_of(&["architecture.png", "Roadmap 2027.key"]));
        assert_eq!(d.file_names[0], "architecture.png architecture png");
        assert_eq!(d.text, "see the diagrams");
    }

    pub async fn threads(idx: &dyn SearchIndex) {
        let w = W::new();
        let parent = w.doc("release plan", T0);
        let reply = SearchDoc { thread_ts: Some(parent.message_id), ..w.doc("release plan looks good", T0 + HOUR) };
        put(idx, &[parent.clone(), reply.clone()]).await;
        let r = run(idx, &w.q("release")).await;
        assert_eq!(r.total, 2);
        let by_id = |id| r.hits.iter().find(|h| h.message_id == id).unwrap().thread_ts;
        assert_eq!(by_id(parent.message_id), None);
        assert_eq!(by_id(reply.message_id), Some(parent.message_id));
        let r = run(idx, &SearchQuery { is_thread: true, ..w.q("release") }).await;
        assert_eq!(r.total, 1);
        assert_eq!((r.hits[0].message_id, r.hits[0].thread_ts), (reply.message_id, Some(parent.message_id)));
    }

    pub async fn phrases_and_words(idx: &dyn SearchIndex) {
        let w = W::new();
        put(idx, &[w.doc("read the release notes", T0), w.doc("notes about the release", T0 + HOUR)]).await;
        assert_eq!(run(idx, &w.q("release notes")).await.total, 2);
        assert_eq!(texts(idx, &w.phrase("release notes")).await, ["read the release notes"]);
        assert_eq!(
            texts(idx, &w.phrase("Releases NOTE")).await,
            ["read the release notes"],
            "phrases are analyzed too"
        );
        assert_eq!(run(idx, &w.phrase("notes")).await.total, 2, "a one-word phrase");
        assert!(texts(idx, &w.phrase("notes release")).await.is_empty(), "order matters");
        let both = SearchQuery { phrases: vec!["release notes".into()], ..w.q("read") };
        assert_eq!(texts(idx, &both).await, ["read the release notes"]);
        let both = SearchQuery { phrases: vec!["release notes".into()], ..w.q("about") };
        assert!(texts(idx, &both).await.is_empty());
        let two = SearchQuery { phrases: vec!["the release".into(), "about the".into()], ..w.q("") };
        assert_eq!(texts(idx, &two).await, ["notes about the release"]);
    }

    pub async fn edit_replaces(idx: &dyn SearchIndex) {
        let w = W::new();
        let original = w.doc("original banana", T0);
        put(idx, std::slice::from_ref(&original)).await;
        assert_eq!(run(idx, &w.q("banana")).await.total, 1);
        let edited = SearchDoc { text: "changed cherry".into(), reactions_count: 3, ..original.clone() };
        put(idx, std::slice::from_ref(&edited)).await;
        assert_eq!(run(idx, &w.q("banana")).await.total, 0);
        let r = run(idx, &w.q("cherry")).await;
        assert_eq!((r.total, r.hits[0].message_id, r.hits[0].ts), (1, original.message_id, T0));
        assert_eq!(run(idx, &w.q("")).await.total, 1);
        // Upserting the same version again, and twice in one batch, is idempotent.
        let last = SearchDoc { text: "final durian".into(), ..original.clone() };
        put(idx, &[edited.clone(), last.clone()]).await;
        put(idx, &[last]).await;
        assert_eq!(texts(idx, &w.q("")).await, ["final durian"]);
    }

    pub async fn get_is_realtime(idx: &dyn SearchIndex) {
        let w = W::new();
        let d = SearchDoc {
            thread_ts: Some(Uuid::new_v4()),
            has_link: true,
            has_file: true,
            reactions_count: 2,
            ..w.doc("first words", T0)
        };
        assert_eq!(idx.get(w.ws, d.message_id).await.unwrap(), None);
        // No refresh in between: as the search projector does for an edit right after a post.
        idx.upsert(std::slice::from_ref(&d)).await.unwrap();
        assert_eq!(idx.get(w.ws, d.message_id).await.unwrap(), Some(d.clone()));
        let edited = SearchDoc { text: "second words".into(), has_link: false, ..d.clone() };
        idx.upsert(std::slice::from_ref(&edited)).await.unwrap();
        assert_eq!(idx.get(w.ws, d.message_id).await.unwrap(), Some(edited.clone()));
        idx.refresh().await.unwrap();
        assert_eq!(idx.get(w.ws, d.message_id).await.unwrap(), Some(edited.clone()));
        assert_eq!(texts(idx, &w.q("words")).await, ["second words"]);
        // Another workspace never sees it; a missing id is `None`.
        assert_eq!(idx.get(Uuid::new_v4(), d.message_id).await.unwrap(), None);
        assert_eq!(idx.get(w.ws, Uuid::new_v4()).await.unwrap(), None);
        // A plain post, committed, then read back.
        let plain = w.doc("plain words", T0 + HOUR);
        put(idx, std::slice::from_ref(&plain)).await;
        assert_eq!(idx.get(w.ws, plain.message_id).await.unwrap(), Some(plain.clone()));
        // Deleted: gone at once.
        idx.delete(w.ws, &[d.message_id]).await.unwrap();
        assert_eq!(idx.get(w.ws, d.message_id).await.unwrap(), None);
        idx.refresh().await.unwrap();
        assert_eq!(idx.get(w.ws, d.message_id).await.unwrap(), None);
        assert_eq!(idx.get(w.ws, plain.message_id).await.unwrap(), Some(plain));
    }

    pub async fn delete_removes(idx: &dyn SearchIndex) {
        let w = W::new();
        let a = w.doc("obsolete memo", T0);
        let b = w.doc("current memo", T0 + HOUR);
        put(idx, &[a.clone(), b.clone()]).await;
        idx.delete(w.ws, &[a.message_id, Uuid::new_v4()]).await.unwrap();
        idx.refresh().await.unwrap();
        assert_eq!(texts(idx, &w.q("memo")).await, ["current memo"]);
        assert_eq!(run(idx, &w.q("obsolete")).await.total, 0);
        idx.delete(w.ws, &[a.message_id]).await.unwrap(); // again: fine
        idx.refresh().await.unwrap();
        assert_eq!(run(idx, &w.q("")).await.total, 1);
    }

    pub async fn expire_by_workspace(idx: &dyn SearchIndex) {
        let w1 = W::new();
        let w2 = W::new();
        put(
            idx,
            &[
                w1.doc("old news", T0),
                w1.doc("old news", T0 + DAY),
                w1.doc("fresh news", T0 + 2 * DAY),
                w2.doc("old news elsewhere", T0),
            ],
        )
        .await;
        // Not refreshed: expire still sees it.
        idx.upsert(&[w1.doc("older news", T0 - DAY)]).await.unwrap();
        assert_eq!(idx.expire(w1.ws, T0 + DAY + 1).await.unwrap(), 3);
        idx.refresh().await.unwrap();
        assert_eq!(texts(idx, &w1.q("")).await, ["fresh news"]);
        assert_eq!(run(idx, &w2.q("")).await.total, 1, "other workspaces keep theirs");
        assert_eq!(idx.expire(w1.ws, T0 + DAY + 1).await.unwrap(), 0);
    }

    pub async fn highlight(idx: &dyn SearchIndex) {
        let w = W::new();
        let long = format!(
            "{} The deployment of the payment service failed twice. {}",
            "Lots of unrelated words about weather and lunch plans. ".repeat(4),
            "More unrelated chatter follows here. ".repeat(4)
        );
        put(
            idx,
            &[
                w.doc("We deployed the new build to production", T0),
                w.doc("<b>fixing</b> & 'co'", T0 + HOUR),
                w.doc(&long, T0 + 2 * HOUR),
            ],
        )
        .await;
        let r = run(idx, &SearchQuery { channels: vec![w.ch], ..w.q("deploying production") }).await;
        let h = &r.hits[0].highlight;
        assert!(h.contains("<em>deployed</em>") && h.contains("<em>production</em>"), "{h}");
        assert_eq!(strip_tags(h), "We deployed the new build to production");
        // Fuzzy matches are highlighted too.
        let r = run(idx, &w.q("paymnet")).await;
        assert!(r.hits[0].highlight.contains("<em>payment</em>"), "{}", r.hits[0].highlight);
        // Long text: a fragment around the match, about 150 characters.
        let frag = strip_tags(&r.hits[0].highlight);
        assert!(frag.contains("payment") && frag.chars().count() <= 200, "{frag}");
        assert!(frag.chars().count() < long.chars().count());
        // Escaped HTML around the tags.
        let r = run(idx, &w.q("fixes")).await;
        assert_eq!(r.hits[0].highlight, "&lt;b&gt;<em>fixing</em>&lt;&#x2F;b&gt; &amp; &#x27;co&#x27;");
        // Nothing matched in the text (filters only): the start of the text.
        let r = run(idx, &SearchQuery { channels: vec![w.ch], ..w.q("") }).await;
        let fallback = &r.hits.iter().find(|h| h.text.starts_with("<b>")).unwrap().highlight;
        assert_eq!(fallback, "&lt;b&gt;fixing&lt;&#x2F;b&gt; &amp; &#x27;co&#x27;");
        let fallback = &r.hits.iter().find(|h| h.text.starts_with("Lots")).unwrap().highlight;
        assert!(fallback.starts_with("Lots of unrelated") && fallback.chars().count() <= 150, "{fallback}");
        // Phrases.
        let r = run(idx, &w.phrase("new build")).await;
        assert!(r.hits[0].highlight.contains("<em>new</em> <em>build</em>"), "{}", r.hits[0].highlight);
    }

    pub async fn ordering(idx: &dyn SearchIndex) {
        let w = W::new();
        put(
            idx,
            &[
                w.doc("standup notes", T0),
                w.doc("standup notes", T0 + 2 * HOUR),
                w.doc("standup notes", T0 + HOUR),
                // Relevance first: the older message matches better.
                w.doc("incident incident", T0),
                w.doc("incident report with many more words about other things", T0 + 3 * HOUR),
            ],
        )
        .await;
        let r = run(idx, &w.q("standup")).await;
        let ts: Vec<i64> = r.hits.iter().map(|h| h.ts).collect();
        assert_eq!(ts, [T0 + 2 * HOUR, T0 + HOUR, T0], "equal scores: newest first");
        let r = run(idx, &w.q("incident")).await;
        assert_eq!(r.hits[0].text, "incident incident");
        assert!(r.hits[0].score > r.hits[1].score);
        let r = run(idx, &w.q("")).await;
        let ts: Vec<i64> = r.hits.iter().map(|h| h.ts).collect();
        let mut sorted = ts.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(ts, sorted, "filters only: newest first");
    }

    pub async fn paging_and_total(idx: &dyn SearchIndex) {
        let w = W::new();
        let docs: Vec<SearchDoc> = (0..5).map(|i| w.doc(&format!("retro notes {i}"), T0 + i * HOUR)).collect();
        put(idx, &docs).await;
        let page = |offset, limit| SearchQuery { offset, limit, ..w.q("retro") };
        let ts = |r: SearchResults| (r.total, r.hits.iter().map(|h| (h.ts - T0) / HOUR).collect::<Vec<_>>());
        assert_eq!(ts(run(idx, &page(0, 2)).await), (5, vec![4, 3]));
        assert_eq!(ts(run(idx, &page(2, 2)).await), (5, vec![2, 1]));
        assert_eq!(ts(run(idx, &page(4, 2)).await), (5, vec![0]));
        assert_eq!(ts(run(idx, &page(5, 2)).await), (5, vec![]));
        assert_eq!(ts(run(idx, &page(0, 0)).await), (5, vec![]), "limit 0: the total only");
        assert_eq!(ts(run(idx, &page(0, 100)).await), (5, vec![4, 3, 2, 1, 0]));
        assert_eq!(ts(run(idx, &page(20_000, 10)).await), (5, vec![]));
    }

    pub async fn filters_only(idx: &dyn SearchIndex) {
        let w = W::new();
        let docs = [w.doc("first", T0), SearchDoc { user_id: w.bob, ..w.doc("second", T0 + HOUR) }];
        put(idx, &docs).await;
        let r = run(idx, &w.q("")).await;
        assert_eq!(r.total, 2);
        assert_eq!(r.hits.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["second", "first"]);
        let hit = &r.hits[1];
        assert_eq!(
            (hit.message_id, hit.channel_id, hit.user_id, hit.ts, hit.thread_ts),
            (docs[0].message_id, w.ch, w.ana, T0, None)
        );
    }

    pub async fn visible_without_refresh(idx: &dyn SearchIndex) {
        let w = W::new();
        idx.upsert(&[w.doc("eventually visible", T0)]).await.unwrap();
        let start = std::time::Instant::now();
        loop {
            if run(idx, &w.q("eventually")).await.total == 1 {
                break;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(3), "not visible after 3 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        eprintln!("visible after {:?}", start.elapsed());
    }

    pub async fn truncate_all(idx: &dyn SearchIndex) {
        let w1 = W::new();
        let w2 = W::new();
        put(idx, &[w1.doc("keep nothing", T0), w2.doc("keep nothing", T0)]).await;
        idx.truncate().await.unwrap();
        idx.refresh().await.unwrap();
        assert_eq!(run(idx, &w1.q("")).await.total, 0);
        assert_eq!(run(idx, &w2.q("")).await.total, 0);
        put(idx, &[w1.doc("after truncate", T0)]).await;
        assert_eq!(run(idx, &w1.q("truncate")).await.total, 1);
    }
}

/// What only the embedded index has: a directory.
mod tantivy_only {
    use super::*;

    #[tokio::test]
    async fn reopen_keeps_documents_and_drop_commits() {
        let dir = tempfile::tempdir().unwrap();
        let w = W::new();
        {
            let idx = TantivyIndex::open(dir.path()).unwrap();
            put(&idx, &[w.doc("durable words", T0)]).await;
            // Pending, not refreshed: the drop commits it.
            idx.upsert(&[w.doc("pending words", T0 + HOUR)]).await.unwrap();
        }
        let idx = TantivyIndex::open(dir.path()).unwrap();
        assert_eq!(texts(&idx, &w.q("words")).await, ["pending words", "durable words"]);
    }

    /// With a committer busy all the time, a reopen right after the drop used to find the
    /// writer lock still held (the committer's thread held the last reference).
    #[tokio::test]
    async fn reopening_right_after_a_drop_never_finds_the_writer_lock_held() {
        let dir = tempfile::tempdir().unwrap();
        let w = W::new();
        let opts = confab_search::tantivy::TantivyOptions {
            commit_interval: std::time::Duration::from_millis(1),
            ..Default::default()
        };
        for n in 0..40 {
            let idx = TantivyIndex::open_with(dir.path(), opts.clone()).unwrap_or_else(|e| panic!("open {n}: {e}"));
            idx.upsert(&[w.doc(&format!("words {n}"), T0 + n)]).await.unwrap();
            // drop while the committer is (likely) in the middle of committing that
            tokio::time::sleep(std::time::Duration::from_millis(1 + n as u64 % 4)).await;
        }
    }

    #[tokio::test]
    async fn one_writer_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _idx = TantivyIndex::open(dir.path()).unwrap();
        let e = TantivyIndex::open(dir.path()).err().expect("second open must fail");
        assert!(e.to_string().contains(&dir.path().display().to_string()), "{e}");
        assert_eq!(e.kind(), confab_core::ports::PortErrorKind::Fatal, "another process holds the index: stop");
    }
}
