//! The embedded search index: tantivy in a directory.
//!
//! One [`IndexWriter`] (one indexing thread) behind a mutex. Writes (`upsert`, `delete`) only
//! buffer documents; a background thread commits every [`TantivyOptions::commit_interval`]
//! (100 ms) when something changed and reloads the reader, so writes become visible (and durable)
//! within a fraction of a second. `refresh`, `expire` and `truncate` commit at once. Dropping
//! the index commits what is pending. `flush` commits too: the search projector calls it before
//! it commits its log position (about once a second), not per batch, because every commit
//! writes new segment files. Every tantivy call runs on tokio's blocking pool.
//!
//! `get` is real time, as OpenSearch's: the writes the reader does not show yet are also kept in
//! memory, by message id, until the commit that holds them is visible.
//!
//! Schema (see the crate docs for the semantics): ids are raw keywords (`STRING`), `text` is
//! analyzed twice (stemmed with positions for phrases; `text_plain` unstemmed with frequencies
//! for typo matching), `ts` is an indexed fast `i64`, flags are indexed booleans.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::{Bound, Range};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ::tantivy as tv;
use async_trait::async_trait;
use confab_core::ports::{
    PortError, PortErrorKind, PortResult, SearchDoc, SearchHit, SearchIndex, SearchQuery, SearchResults,
};
use tv::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue};
use tv::collector::{Count, TopDocs};
use tv::directory::MmapDirectory;
use tv::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, FuzzyTermQuery, Occur, PhraseQuery,
    Query, RangeQuery, TermQuery, TermSetQuery,
};
use tv::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED, STRING,
};
use tv::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};
use tv::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument, Term};
use unicode_segmentation::{UWordBoundIndices, UnicodeSegmentation};
use uuid::Uuid;

use crate::{auto_fuzziness, cut_at_word, escape_html_into, fallback_highlight, fuzzy_boost, osa_distance, page};
use crate::{HIGHLIGHT_CHARS, MAX_EXPANSIONS};

/// The stemmed analyzer's name (the seed's `message_analyzer`).
pub const MESSAGE_ANALYZER: &str = "message_analyzer";
/// The same without stemming (`text.plain`).
pub const PLAIN_ANALYZER: &str = "message_plain";

#[derive(Debug, Clone)]
pub struct TantivyOptions {
    /// How often pending writes are committed (and become visible).
    pub commit_interval: Duration,
    /// The indexing thread's memory budget (tantivy's minimum is 15 MB).
    pub writer_memory_bytes: usize,
    /// The nice value of the index's own threads (indexing, segment updates, merges, doc store
    /// compression, the committer), 0 to 19; Linux only. Embedded mode runs them beside the
    /// async workers that carry every message to its readers, and at 2,000 msg/s the slowest 1%
    /// of deliveries were those made while indexing and merging used three times their usual
    /// CPU (`load-tests/RESULTS.md`, 2026-11-28 "what delays the slowest deliveries"). Search
    /// has a budget of a second; delivery, of 100 ms.
    pub background_nice: i32,
}

impl Default for TantivyOptions {
    fn default() -> Self {
        TantivyOptions {
            commit_interval: Duration::from_millis(100),
            writer_memory_bytes: 64 << 20,
            background_nice: 10,
        }
    }
}

/// Lowers the calling thread's scheduling priority to `nice` (Linux: the nice value is per
/// thread, and threads it spawns inherit it). Elsewhere, or when refused, it stays as it is.
fn lower_this_thread(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // SAFETY: plain syscall; `who = 0` is the calling thread on Linux
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice.min(19)) };
        if rc != 0 {
            tracing::debug!(nice, error = %std::io::Error::last_os_error(), "search index threads keep their priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Lucene's standard tokenizer, closely: Unicode word boundaries (UAX #29), keeping the segments
/// that hold a letter, a digit or an emoji (ideographs come out one per token, `don't`,
/// `example.com` and `3.14` stay whole).
#[derive(Clone, Default)]
pub struct StandardTokenizer {
    token: Token,
}

pub struct StandardTokenStream<'a> {
    words: UWordBoundIndices<'a>,
    token: &'a mut Token,
}

impl Tokenizer for StandardTokenizer {
    type TokenStream<'a> = StandardTokenStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> StandardTokenStream<'a> {
        self.token.reset();
        StandardTokenStream { words: text.split_word_bound_indices(), token: &mut self.token }
    }
}

fn is_word(segment: &str) -> bool {
    segment.chars().any(|c| {
        c.is_alphanumeric() || ('\u{1F300}'..='\u{1FAFF}').contains(&c) || ('\u{2600}'..='\u{27BF}').contains(&c)
    })
}

impl TokenStream for StandardTokenStream<'_> {
    fn advance(&mut self) -> bool {
        for (offset, segment) in self.words.by_ref() {
            if is_word(segment) {
                self.token.text.clear();
                self.token.text.push_str(segment);
                self.token.offset_from = offset;
                self.token.offset_to = offset + segment.len();
                self.token.position = self.token.position.wrapping_add(1);
                return true;
            }
        }
        false
    }
    fn token(&self) -> &Token {
        self.token
    }
    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

fn english_stop_words() -> StopWordFilter {
    StopWordFilter::new(Language::English).expect("tantivy's stopwords feature is on")
}

/// Standard tokenizer, lowercase, English stop words, English snowball stemming.
pub fn message_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(StandardTokenizer::default())
        .filter(RemoveLongFilter::limit(256))
        .filter(LowerCaser)
        .filter(english_stop_words())
        .filter(Stemmer::new(Language::English))
        .build()
}

/// [`message_analyzer`] without the stemming.
pub fn plain_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(StandardTokenizer::default())
        .filter(RemoveLongFilter::limit(256))
        .filter(LowerCaser)
        .filter(english_stop_words())
        .build()
}

#[derive(Clone, Copy)]
struct Fields {
    workspace_id: Field,
    channel_id: Field,
    message_id: Field,
    user_id: Field,
    text: Field,
    text_plain: Field,
    ts: Field,
    thread_ts: Field,
    has_link: Field,
    has_file: Field,
    is_thread: Field,
    reactions_count: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let keyword = STRING | STORED;
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(MESSAGE_ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let text_plain = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(PLAIN_ANALYZER).set_index_option(IndexRecordOption::WithFreqs),
    );
    let f = Fields {
        workspace_id: b.add_text_field("workspace_id", keyword.clone()),
        channel_id: b.add_text_field("channel_id", keyword.clone()),
        message_id: b.add_text_field("message_id", keyword.clone()),
        user_id: b.add_text_field("user_id", keyword.clone()),
        text: b.add_text_field("text", text),
        text_plain: b.add_text_field("text_plain", text_plain),
        ts: b.add_i64_field("ts", INDEXED | FAST | STORED),
        thread_ts: b.add_text_field("thread_ts", keyword),
        has_link: b.add_bool_field("has_link", INDEXED | STORED),
        has_file: b.add_bool_field("has_file", INDEXED | STORED),
        is_thread: b.add_bool_field("is_thread", INDEXED),
        reactions_count: b.add_i64_field("reactions_count", FAST | STORED),
    };
    (b.build(), f)
}

struct Inner {
    path: PathBuf,
    f: Fields,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    /// Writes since the last commit.
    dirty: AtomicBool,
    /// Serializes commits (commit, reload, forget `committing`).
    commit_lock: Mutex<()>,
    /// For a real-time `get`, as OpenSearch's: the writes the reader does not show yet, by
    /// message id (`None`: deleted) ...
    pending: Mutex<HashMap<Uuid, Option<SearchDoc>>>,
    /// ... and those of the commit in progress, until the reader is reloaded.
    committing: Mutex<HashMap<Uuid, Option<SearchDoc>>>,
    /// The last background commit's failure, for `ping`.
    last_error: Mutex<Option<String>>,
    stemmed: TextAnalyzer,
    plain: TextAnalyzer,
}

/// The tantivy adapter. Not `Clone`: share it in an `Arc`. Dropping it stops the background
/// committer, waits for it, and commits what is pending, so the directory's writer lock is free
/// once the drop returns.
pub struct TantivyIndex {
    inner: Arc<Inner>,
    /// Taken on drop: wakes the committer, which then exits.
    stop: Option<mpsc::Sender<()>>,
    committer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TantivyIndex {
    fn drop(&mut self) {
        drop(self.stop.take());
        // a commit in progress holds the index: wait for it, or the last reference (and the
        // writer lock with it) would go away on the committer's thread, after this returns
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a tantivy error means for the caller: I/O (a full or failing disk) is transient;
/// another process holding the index, or an index written with another schema, is fatal; the
/// rest (a bad query or document) is invalid.
fn kind_of(e: &tv::TantivyError) -> PortErrorKind {
    match e {
        tv::TantivyError::IoError(_) | tv::TantivyError::OpenWriteError(_) => PortErrorKind::Transient,
        tv::TantivyError::LockFailure(..)
        | tv::TantivyError::OpenDirectoryError(_)
        | tv::TantivyError::OpenReadError(_)
        | tv::TantivyError::SchemaError(_)
        | tv::TantivyError::IndexAlreadyExists
        | tv::TantivyError::DataCorruption(_)
        | tv::TantivyError::Poisoned => PortErrorKind::Fatal,
        _ => PortErrorKind::Invalid,
    }
}

fn port_err(e: tv::TantivyError) -> PortError {
    PortError::new(kind_of(&e), format!("tantivy: {e}"))
}

impl TantivyIndex {
    /// Opens the index in `dir`, creating it (and the directory) if needed. Fails when another
    /// process holds the index's writer lock, or when the index was written with another schema
    /// (delete the directory and replay the log to rebuild it).
    pub fn open(dir: impl AsRef<Path>) -> PortResult<TantivyIndex> {
        Self::open_with(dir, TantivyOptions::default())
    }

    pub fn open_with(dir: impl AsRef<Path>, opts: TantivyOptions) -> PortResult<TantivyIndex> {
        let path = dir.as_ref().to_path_buf();
        let ctx = |e: &dyn std::fmt::Display| PortError::fatal(format!("tantivy index at {}: {e}", path.display()));
        std::fs::create_dir_all(&path).map_err(|e| ctx(&e))?;
        let (schema, f) = schema();
        let dir = MmapDirectory::open(&path).map_err(|e| ctx(&e))?;
        let index = Index::open_or_create(dir, schema).map_err(|e| ctx(&e))?;
        index.tokenizers().register(MESSAGE_ANALYZER, message_analyzer());
        index.tokenizers().register(PLAIN_ANALYZER, plain_analyzer());
        // made on a thread of its own at the lowered priority, which every thread tantivy
        // spawns for the writer inherits
        let (nice, budget, idx) = (opts.background_nice, opts.writer_memory_bytes.max(15 << 20), index.clone());
        let writer: IndexWriter = std::thread::Builder::new()
            .name("tantivy-open".into())
            .spawn(move || {
                lower_this_thread(nice);
                idx.writer_with_num_threads(1, budget)
            })
            .map_err(|e| ctx(&e))?
            .join()
            .map_err(|_| PortError::fatal(format!("tantivy index at {}: opening the writer panicked", path.display())))?
            .map_err(|e| ctx(&e))?;
        let reader: IndexReader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(|e| ctx(&e))?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            f,
            reader,
            writer: Mutex::new(writer),
            dirty: AtomicBool::new(false),
            commit_lock: Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            committing: Mutex::new(HashMap::new()),
            last_error: Mutex::new(None),
            stemmed: message_analyzer(),
            plain: plain_analyzer(),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let weak = Arc::downgrade(&inner);
        let interval = opts.commit_interval;
        let committer = std::thread::Builder::new()
            .name("tantivy-commit".into())
            .spawn(move || {
                lower_this_thread(nice);
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    let result = inner.commit();
                    let mut last = lock(&inner.last_error);
                    match result {
                        Ok(()) => *last = None,
                        Err(e) => {
                            if last.is_none() {
                                tracing::warn!(path = %inner.path.display(), error = %e, "search index commit failed");
                            }
                            *last = Some(e.to_string());
                        }
                    }
                }
            })
            .map_err(|e| ctx(&e))?;
        Ok(TantivyIndex { inner, stop: Some(stop), committer: Some(committer) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> tv::Result<T> + Send + 'static,
    ) -> PortResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await?.map_err(port_err)
    }
}

#[async_trait]
impl SearchIndex for TantivyIndex {
    async fn ensure(&self) -> PortResult<()> {
        Ok(()) // created by `open`
    }

    async fn upsert(&self, docs: &[SearchDoc]) -> PortResult<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let f = self.inner.f;
        let docs: Vec<(SearchDoc, Term, TantivyDocument)> =
            docs.iter().map(|d| (d.clone(), id_term(f.message_id, d.message_id), to_doc(f, d))).collect();
        self.blocking(move |inner| {
            let w = lock(&inner.writer);
            inner.dirty.store(true, Ordering::SeqCst);
            let mut pending = lock(&inner.pending);
            for (doc, id, tdoc) in docs {
                w.delete_term(id);
                w.add_document(tdoc)?;
                pending.insert(doc.message_id, Some(doc));
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, workspace_id: Uuid, message_id: Uuid) -> PortResult<Option<SearchDoc>> {
        self.blocking(move |inner| inner.get(workspace_id, message_id)).await
    }

    async fn delete(&self, _workspace_id: Uuid, message_ids: &[Uuid]) -> PortResult<()> {
        if message_ids.is_empty() {
            return Ok(());
        }
        let ids = message_ids.to_vec();
        self.blocking(move |inner| {
            let w = lock(&inner.writer);
            inner.dirty.store(true, Ordering::SeqCst);
            let mut pending = lock(&inner.pending);
            for id in ids {
                w.delete_term(id_term(inner.f.message_id, id));
                pending.insert(id, None);
            }
            Ok(())
        })
        .await
    }

    async fn expire(&self, workspace_id: Uuid, before_ms: i64) -> PortResult<u64> {
        self.blocking(move |inner| {
            inner.commit()?; // count what is really there
            let f = inner.f;
            let old = BooleanQuery::new(vec![
                (
                    Occur::Must,
                    Box::new(TermQuery::new(id_term(f.workspace_id, workspace_id), IndexRecordOption::Basic)),
                ),
                (
                    Occur::Must,
                    Box::new(RangeQuery::new(Bound::Unbounded, Bound::Excluded(Term::from_field_i64(f.ts, before_ms)))),
                ),
            ]);
            let n = inner.reader.searcher().search(&old, &Count)? as u64;
            if n > 0 {
                {
                    let w = lock(&inner.writer);
                    inner.dirty.store(true, Ordering::SeqCst);
                    w.delete_query(Box::new(old))?;
                }
                inner.commit()?;
            }
            Ok(n)
        })
        .await
    }

    async fn flush(&self) -> PortResult<()> {
        // durable before the projector moves its log position past these writes
        self.blocking(|inner| inner.commit()).await
    }

    async fn refresh(&self) -> PortResult<()> {
        self.blocking(|inner| inner.commit()).await
    }

    async fn search(&self, q: &SearchQuery) -> PortResult<SearchResults> {
        let q = q.clone();
        self.blocking(move |inner| inner.search(&q)).await
    }

    async fn truncate(&self) -> PortResult<()> {
        self.blocking(|inner| {
            {
                let w = lock(&inner.writer);
                inner.dirty.store(true, Ordering::SeqCst);
                w.delete_all_documents()?;
                lock(&inner.pending).clear();
            }
            inner.commit()
        })
        .await
    }

    async fn ping(&self) -> PortResult<()> {
        match lock(&self.inner.last_error).as_ref() {
            Some(e) => Err(PortError::transient(format!("tantivy: last commit failed: {e}"))),
            None => Ok(()),
        }
    }
}

fn id_term(field: Field, id: Uuid) -> Term {
    Term::from_field_text(field, &id.to_string())
}

fn to_doc(f: Fields, d: &SearchDoc) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.workspace_id, d.workspace_id.to_string());
    doc.add_text(f.channel_id, d.channel_id.to_string());
    doc.add_text(f.message_id, d.message_id.to_string());
    doc.add_text(f.user_id, d.user_id.to_string());
    // file names are further values of the text fields: words match them like the text
    // (the stored first value stays the message's text)
    doc.add_text(f.text, &d.text);
    doc.add_text(f.text_plain, &d.text);
    for name in &d.file_names {
        doc.add_text(f.text, name);
        doc.add_text(f.text_plain, name);
    }
    doc.add_i64(f.ts, d.ts);
    if let Some(t) = d.thread_ts {
        doc.add_text(f.thread_ts, t.to_string());
    }
    doc.add_bool(f.has_link, d.has_link);
    doc.add_bool(f.has_file, d.has_file);
    doc.add_bool(f.is_thread, d.thread_ts.is_some());
    doc.add_i64(f.reactions_count, d.reactions_count as i64);
    doc
}

fn from_doc(f: Fields, doc: &TantivyDocument) -> SearchDoc {
    let text = |field| doc.get_first(field).and_then(|v| v.as_str().map(str::to_string));
    let uuid = |field| text(field).and_then(|s| Uuid::parse_str(&s).ok());
    let flag = |field| doc.get_first(field).and_then(|v| v.as_bool()).unwrap_or(false);
    SearchDoc {
        workspace_id: uuid(f.workspace_id).unwrap_or_default(),
        channel_id: uuid(f.channel_id).unwrap_or_default(),
        message_id: uuid(f.message_id).unwrap_or_default(),
        user_id: uuid(f.user_id).unwrap_or_default(),
        text: text(f.text).unwrap_or_default(),
        ts: doc.get_first(f.ts).and_then(|v| v.as_i64()).unwrap_or_default(),
        thread_ts: uuid(f.thread_ts),
        has_link: flag(f.has_link),
        has_file: flag(f.has_file),
        reactions_count: doc.get_first(f.reactions_count).and_then(|v| v.as_i64()).unwrap_or_default() as i32,
        file_names: doc.get_all(f.text).skip(1).filter_map(|v| v.as_str().map(str::to_string)).collect(),
    }
}

/// Tokens of `text` under `analyzer`: (position, term).
fn analyze(analyzer: &TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut a = analyzer.clone();
    let mut stream = a.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        let t = stream.token();
        out.push((t.position, t.text.clone()));
    }
    out
}

/// BM25 statistics where the terms a fuzzy word expanded to share one document frequency (the
/// largest), as Lucene's `top_terms_blended_freqs` rewrite does: a rare misspelling in the index
/// does not outscore the common exact word.
struct Blended<'a> {
    searcher: &'a Searcher,
    doc_freq: HashMap<Term, u64>,
}

impl Bm25StatisticsProvider for Blended<'_> {
    fn total_num_tokens(&self, field: Field) -> tv::Result<u64> {
        Bm25StatisticsProvider::total_num_tokens(self.searcher, field)
    }
    fn total_num_docs(&self) -> tv::Result<u64> {
        Bm25StatisticsProvider::total_num_docs(self.searcher)
    }
    fn doc_freq(&self, term: &Term) -> tv::Result<u64> {
        match self.doc_freq.get(term) {
            Some(n) => Ok(*n),
            None => self.searcher.doc_freq(term),
        }
    }
}

/// What a query needs besides its clauses: blended statistics and the terms to highlight.
#[derive(Default)]
struct Matching {
    doc_freq: HashMap<Term, u64>,
    highlight_stemmed: HashSet<String>,
    highlight_plain: HashSet<String>,
}

fn filter(q: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)))
}

impl Inner {
    fn commit(&self) -> tv::Result<()> {
        let _serial = lock(&self.commit_lock);
        let mut w = lock(&self.writer);
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let mut pending = lock(&self.pending);
            lock(&self.committing).extend(pending.drain());
        }
        if let Err(e) = w.commit() {
            self.dirty.store(true, Ordering::SeqCst);
            return Err(e); // `committing` stays until a commit succeeds
        }
        drop(w);
        self.reader.reload()?;
        lock(&self.committing).clear();
        Ok(())
    }

    /// Real time: what was written last, committed or not.
    fn get(&self, workspace_id: Uuid, message_id: Uuid) -> tv::Result<Option<SearchDoc>> {
        let recent = lock(&self.pending).get(&message_id).cloned();
        let recent = recent.or_else(|| lock(&self.committing).get(&message_id).cloned());
        let doc = match recent {
            Some(doc) => doc,
            None => {
                let searcher = self.reader.searcher();
                let query = TermQuery::new(id_term(self.f.message_id, message_id), IndexRecordOption::Basic);
                match searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?.first() {
                    Some((_, address)) => Some(from_doc(self.f, &searcher.doc(*address)?)),
                    None => None,
                }
            }
        };
        Ok(doc.filter(|d| d.workspace_id == workspace_id))
    }

    /// One analyzed token with fuzziness AUTO: the index terms within its edit distance (at most
    /// [`MAX_EXPANSIONS`], closest first), each boosted by closeness, sharing one document frequency.
    fn fuzzy_term(
        &self,
        searcher: &Searcher,
        field: Field,
        token: &str,
        m: &mut Matching,
    ) -> tv::Result<Box<dyn Query>> {
        let exact = Term::from_field_text(field, token);
        let highlight = if field == self.f.text { &mut m.highlight_stemmed } else { &mut m.highlight_plain };
        let distance = auto_fuzziness(token);
        if distance == 0 {
            highlight.insert(token.to_string());
            return Ok(Box::new(TermQuery::new(exact, IndexRecordOption::WithFreqs)));
        }
        let automaton = FuzzyTermQuery::new(exact, distance, true).automaton()?;
        let mut candidates = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(field)?;
            let mut stream = inverted.terms().search(&automaton).into_stream()?;
            while stream.advance() {
                if let Ok(t) = std::str::from_utf8(stream.key()) {
                    candidates.insert(t.to_string());
                }
            }
        }
        let mut candidates: Vec<(usize, String)> =
            candidates.into_iter().map(|c| (osa_distance(token, &c), c)).collect();
        candidates.sort();
        candidates.truncate(MAX_EXPANSIONS);
        if candidates.is_empty() {
            return Ok(Box::new(EmptyQuery));
        }
        let terms: Vec<(usize, String, Term)> = candidates
            .into_iter()
            .map(|(d, c)| {
                let t = Term::from_field_text(field, &c);
                (d, c, t)
            })
            .collect();
        let mut blended = 0;
        for (_, _, t) in &terms {
            blended = blended.max(searcher.doc_freq(t)?);
        }
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len());
        for (d, c, t) in terms {
            let df = m.doc_freq.entry(t.clone()).or_insert(0);
            *df = (*df).max(blended);
            let boost = fuzzy_boost(token, &c, d);
            highlight.insert(c);
            should.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)), boost)),
            ));
        }
        Ok(Box::new(BooleanQuery::new(should)))
    }

    /// All tokens of one word, fuzzily, in one field.
    fn fuzzy_word(
        &self,
        searcher: &Searcher,
        field: Field,
        tokens: &[(usize, String)],
        m: &mut Matching,
    ) -> tv::Result<Box<dyn Query>> {
        let mut must = Vec::with_capacity(tokens.len());
        for (_, t) in tokens {
            must.push((Occur::Must, self.fuzzy_term(searcher, field, t, m)?));
        }
        Ok(Box::new(BooleanQuery::new(must)))
    }

    /// The query, or `None` when it cannot match anything.
    fn build(&self, searcher: &Searcher, q: &SearchQuery, m: &mut Matching) -> tv::Result<Option<BooleanQuery>> {
        let f = self.f;
        if q.channels.is_empty() {
            return Ok(None);
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut any_word = false;
        for word in &q.words {
            let stemmed = analyze(&self.stemmed, word);
            if stemmed.is_empty() {
                continue; // only stop words
            }
            any_word = true;
            let plain = analyze(&self.plain, word);
            let either = BooleanQuery::new(vec![
                (Occur::Should, self.fuzzy_word(searcher, f.text, &stemmed, m)?),
                (Occur::Should, self.fuzzy_word(searcher, f.text_plain, &plain, m)?),
            ]);
            clauses.push((Occur::Must, Box::new(either)));
        }
        if !q.words.is_empty() && !any_word {
            return Ok(None);
        }
        for phrase in &q.phrases {
            let tokens = analyze(&self.stemmed, phrase);
            let Some((first, _)) = tokens.first() else {
                return Ok(None);
            };
            let first = *first;
            let query: Box<dyn Query> = if tokens.len() == 1 {
                Box::new(TermQuery::new(Term::from_field_text(f.text, &tokens[0].1), IndexRecordOption::WithFreqs))
            } else {
                Box::new(PhraseQuery::new_with_offset(
                    tokens.iter().map(|(p, t)| (p - first, Term::from_field_text(f.text, t))).collect(),
                ))
            };
            m.highlight_stemmed.extend(tokens.into_iter().map(|(_, t)| t));
            clauses.push((Occur::Must, query));
        }
        clauses
            .push(filter(Box::new(TermQuery::new(id_term(f.workspace_id, q.workspace_id), IndexRecordOption::Basic))));
        clauses.push(filter(Box::new(TermSetQuery::new(q.channels.iter().map(|c| id_term(f.channel_id, *c))))));
        if !q.from_users.is_empty() {
            clauses.push(filter(Box::new(TermSetQuery::new(q.from_users.iter().map(|u| id_term(f.user_id, *u))))));
        }
        if q.after_ms.is_some() || q.before_ms.is_some() {
            let lower = q.after_ms.map_or(Bound::Unbounded, |t| Bound::Included(Term::from_field_i64(f.ts, t)));
            let upper = q.before_ms.map_or(Bound::Unbounded, |t| Bound::Excluded(Term::from_field_i64(f.ts, t)));
            clauses.push(filter(Box::new(RangeQuery::new(lower, upper))));
        }
        for (on, field) in [(q.has_link, f.has_link), (q.has_file, f.has_file), (q.is_thread, f.is_thread)] {
            if on {
                clauses.push(filter(Box::new(TermQuery::new(
                    Term::from_field_bool(field, true),
                    IndexRecordOption::Basic,
                ))));
            }
        }
        Ok(Some(BooleanQuery::new(clauses)))
    }

    fn search(&self, q: &SearchQuery) -> tv::Result<SearchResults> {
        let searcher = self.reader.searcher();
        let mut m = Matching::default();
        let Some(query) = self.build(&searcher, q, &mut m)? else {
            return Ok(SearchResults { total: 0, hits: Vec::new() });
        };
        let stats = Blended { searcher: &searcher, doc_freq: std::mem::take(&mut m.doc_freq) };
        let Some((offset, limit)) = page(q.offset, q.limit) else {
            let total = searcher.search_with_statistics_provider(&query, &Count, &stats)? as u64;
            return Ok(SearchResults { total, hits: Vec::new() });
        };
        let top = TopDocs::with_limit(limit).and_offset(offset).order_by((
            (SortBySimilarityScore, Order::Desc),
            (SortByStaticFastValue::<i64>::for_field("ts"), Order::Desc),
        ));
        let (total, docs) = searcher.search_with_statistics_provider(&query, &(Count, top), &stats)?;
        let f = self.f;
        let mut hits = Vec::with_capacity(docs.len());
        for ((score, _), address) in docs {
            let doc = from_doc(f, &searcher.doc(address)?);
            hits.push(SearchHit {
                message_id: doc.message_id,
                channel_id: doc.channel_id,
                user_id: doc.user_id,
                ts: doc.ts,
                thread_ts: doc.thread_ts,
                score,
                highlight: self.highlight(&doc.text, &m),
                text: doc.text,
            });
        }
        Ok(SearchResults { total: total as u64, hits })
    }

    /// The best fragment of `text` with the matched terms in `<em>`, escaped.
    fn highlight(&self, text: &str, m: &Matching) -> String {
        let mut ranges: Vec<Range<usize>> = Vec::new();
        for (analyzer, terms) in [(&self.stemmed, &m.highlight_stemmed), (&self.plain, &m.highlight_plain)] {
            if terms.is_empty() {
                continue;
            }
            let mut a = analyzer.clone();
            let mut stream = a.token_stream(text);
            while stream.advance() {
                let t = stream.token();
                if terms.contains(&t.text) {
                    ranges.push(t.offset_from..t.offset_to);
                }
            }
        }
        if ranges.is_empty() {
            return fallback_highlight(text);
        }
        ranges.sort_by_key(|r| (r.start, r.end));
        ranges.dedup_by(|b, a| {
            // b follows a: merge overlaps
            if b.start < a.end {
                a.end = a.end.max(b.end);
                true
            } else {
                false
            }
        });
        let window = fragment(text, &ranges);
        let mut out = String::with_capacity(window.len() + 16);
        let mut at = window.start;
        for r in ranges.iter().filter(|r| r.start >= window.start && r.end <= window.end) {
            escape_html_into(&mut out, &text[at..r.start]);
            out.push_str("<em>");
            escape_html_into(&mut out, &text[r.clone()]);
            out.push_str("</em>");
            at = r.end;
        }
        escape_html_into(&mut out, &text[at..window.end]);
        out
    }
}

/// The window of about [`HIGHLIGHT_CHARS`] characters holding the most matches: the whole text
/// when short, else a window starting at the text's start or a little before a match, cut at a
/// word boundary.
fn fragment(text: &str, ranges: &[Range<usize>]) -> Range<usize> {
    let trimmed_end = text.trim_end().len();
    if text.chars().count() <= HIGHLIGHT_CHARS {
        return 0..trimmed_end;
    }
    let window_at = |start: usize| -> Range<usize> {
        let rest = &text[start..];
        start..start + cut_at_word(rest, HIGHLIGHT_CHARS).len()
    };
    let mut best = window_at(0);
    let count = |w: &Range<usize>| ranges.iter().filter(|r| r.start >= w.start && r.end <= w.end).count();
    let mut best_count = count(&best);
    for r in ranges {
        // A little context before the match: back to a word start at most ~30 characters earlier.
        let back: usize = text[..r.start].chars().rev().take(30).map(char::len_utf8).sum();
        let lead = &text[r.start - back..r.start];
        let start = match lead.find(char::is_whitespace) {
            Some(i) => r.start - back + i + lead[i..].chars().next().map_or(0, char::len_utf8),
            None => r.start,
        };
        let w = window_at(start);
        let c = count(&w);
        if c > best_count {
            best = w;
            best_count = c;
        }
    }
    best
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.dirty.load(Ordering::SeqCst) {
            let w = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = w.commit() {
                tracing::warn!(path = %self.path.display(), error = %e, "search index: final commit failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value in a `/proc/.../stat` line: the 19th field, the 17th after `(comm)`.
    #[cfg(target_os = "linux")]
    fn nice_in(stat: &str) -> i32 {
        stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(16).unwrap().parse().unwrap()
    }

    /// The nice value of every thread of this process whose name starts with `prefix`.
    #[cfg(target_os = "linux")]
    fn nice_of(prefix: &str) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let (Ok(comm), Ok(stat)) =
                (std::fs::read_to_string(task.path().join("comm")), std::fs::read_to_string(task.path().join("stat")))
            else {
                continue; // the thread ended meanwhile
            };
            let comm = comm.trim().to_string();
            if comm.starts_with(prefix) {
                out.push((comm, nice_in(&stat)));
            }
        }
        out
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_index_threads_run_at_the_lowered_priority_and_the_callers_do_not() {
        // the only test in this binary that opens an index, so the thread names are its own
        let dir = tempfile::tempdir().unwrap();
        let opts = TantivyOptions { background_nice: 7, ..TantivyOptions::default() };
        let _idx = TantivyIndex::open_with(dir.path(), opts).unwrap();
        // a thread takes its name, and the committer lowers itself, once it runs: wait for
        // every one to show (bounded)
        let prefixes = ["thrd-tantivy", "segment_update", "merge_thread", "tantivy-commit"];
        let settled = || {
            prefixes.iter().all(|p| {
                let t = nice_of(p);
                !t.is_empty() && t.iter().all(|(_, n)| *n == 7)
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !settled() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for prefix in prefixes {
            let threads = nice_of(prefix);
            assert!(!threads.is_empty(), "no {prefix}* thread found");
            assert!(threads.iter().all(|(_, n)| *n == 7), "{threads:?}");
        }
        assert_eq!(
            nice_in(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()),
            0,
            "the thread that opened the index keeps its priority"
        );
    }

    fn terms(a: &TextAnalyzer, s: &str) -> Vec<String> {
        analyze(a, s).into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn analysis() {
        let a = message_analyzer();
        assert_eq!(
            terms(&a, "We deployed the NEW builds, didn't we?"),
            vec!["we", "deploy", "new", "build", "didn't", "we"]
        );
        assert_eq!(terms(&a, "see example.com at 3.14pm"), vec!["see", "example.com", "3.14pm"]);
        assert_eq!(terms(&a, "日本語 ok 🚀"), vec!["日", "本", "語", "ok", "🚀"]);
        assert_eq!(terms(&plain_analyzer(), "Deployments to prod"), vec!["deployments", "prod"]);
        // Stop words keep their position (phrases across them).
        let pos: Vec<usize> = analyze(&a, "release the notes").into_iter().map(|(p, _)| p).collect();
        assert_eq!(pos, vec![0, 2]);
    }

    #[test]
    fn fragments() {
        let text = format!("{} needle {}", "hay ".repeat(60), "straw ".repeat(60));
        let start = text.find("needle").unwrap();
        let w = fragment(&text, std::slice::from_ref(&(start..start + 6)));
        let frag = &text[w.clone()];
        assert!(frag.contains("needle") && frag.chars().count() <= HIGHLIGHT_CHARS, "{frag}");
        assert!(frag.starts_with("hay"), "{frag}");
        assert_eq!(fragment("short", std::slice::from_ref(&(0..5))), 0..5);
    }
}
