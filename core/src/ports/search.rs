//! The search port: the search projector writes it and the HTTP search endpoint reads it (the
//! query language users type is parsed by `crate::search_query`).
//!
//! Two adapters implement [`SearchIndex`]: OpenSearch (distributed, `confab-search::opensearch`)
//! and tantivy (embedded, `confab-search::tantivy`). Both use the seed's analysis (standard
//! tokenizer, lowercase, stop words, snowball stemming; ids as keywords), and the same
//! conformance tests run against both.

use async_trait::async_trait;
use uuid::Uuid;

use super::PortResult;

/// One message as the index holds it. Upserting the same `message_id` replaces the document
/// (edits); deleted messages are removed, not hidden.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchDoc {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub user_id: Uuid,
    pub text: String,
    /// Unix milliseconds the message was posted.
    pub ts: i64,
    /// Set on thread replies: the parent's message id.
    pub thread_ts: Option<Uuid>,
    pub has_link: bool,
    pub has_file: bool,
    pub reactions_count: i32,
    /// Names of the files the message carries, as [`file_name_terms`] gives them: words
    /// match them as they match the text.
    pub file_names: Vec<String>,
}

/// A file name as the index takes it: whole, then split at dots, dashes and underscores (the
/// standard tokenizer keeps `report.pdf` as one word, so `report` alone would not find it).
pub fn file_name_terms(name: &str) -> String {
    let split: String = name.chars().map(|c| if matches!(c, '.' | '-' | '_') { ' ' } else { c }).collect();
    if split == name {
        name.to_string()
    } else {
        format!("{name} {split}")
    }
}

/// A query after parsing and after the caller resolved names to ids and applied permissions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Always applied: a query never crosses workspaces.
    pub workspace_id: Uuid,
    /// Always applied: the channels the searcher may read (narrowed by `in:`). Empty: no hits.
    pub channels: Vec<Uuid>,
    /// Free words, matched with fuzziness AUTO on the analyzed text (all words must match).
    pub words: Vec<String>,
    /// Quoted phrases, matched as phrases.
    pub phrases: Vec<String>,
    /// `from:` authors (any of them).
    pub from_users: Vec<Uuid>,
    /// Inclusive lower / exclusive upper bounds on `ts`, Unix milliseconds.
    pub after_ms: Option<i64>,
    pub before_ms: Option<i64>,
    pub has_link: bool,
    pub has_file: bool,
    /// Only thread replies.
    pub is_thread: bool,
    pub limit: usize,
    pub offset: usize,
}

/// One result: sorted by score, then newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub user_id: Uuid,
    pub ts: i64,
    pub text: String,
    pub thread_ts: Option<Uuid>,
    pub score: f32,
    /// The best fragment of the text (about 150 characters), HTML-escaped, matched terms wrapped
    /// in `<em>`/`</em>`: safe to insert as HTML.
    pub highlight: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    pub total: u64,
    pub hits: Vec<SearchHit>,
}

#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// Creates the index (mapping, analyzers) if it does not exist.
    async fn ensure(&self) -> PortResult<()>;
    /// Inserts or replaces documents by `message_id`; idempotent.
    async fn upsert(&self, docs: &[SearchDoc]) -> PortResult<()>;
    /// The document of one message, if indexed (edits rewrite it with the new text).
    async fn get(&self, workspace_id: Uuid, message_id: Uuid) -> PortResult<Option<SearchDoc>>;
    /// Removes documents (deleted messages); removing a missing one is not an error.
    async fn delete(&self, workspace_id: Uuid, message_ids: &[Uuid]) -> PortResult<()>;
    /// Removes a workspace's documents older than `before_ms` (retention).
    async fn expire(&self, workspace_id: Uuid, before_ms: i64) -> PortResult<u64>;
    /// Makes everything written so far durable (the projector calls it before acknowledging
    /// its position in the log). Adapters whose writes are durable on return do nothing.
    async fn flush(&self) -> PortResult<()> {
        Ok(())
    }
    /// Makes everything written so far visible to `search` (tests, replays; the adapters
    /// otherwise refresh on their own within a second).
    async fn refresh(&self) -> PortResult<()>;
    async fn search(&self, q: &SearchQuery) -> PortResult<SearchResults>;
    /// Drops every document (rebuild from the log).
    async fn truncate(&self) -> PortResult<()>;
    async fn ping(&self) -> PortResult<()>;
}
