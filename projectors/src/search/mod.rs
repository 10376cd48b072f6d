//! Search projector: owns the search index (OpenSearch in the distributed mode, tantivy in the
//! embedded one) behind [`SearchIndex`](confab_core::ports::SearchIndex). Posts are upserted by
//! `message_id`, edits replace the text, deletes remove the document (the text is gone from
//! search, not hidden), so replays rewrite the same documents. A workspace's retention is
//! enforced by a periodic purge here and by a time filter on every query.

mod apply;

pub use apply::{has_link, SearchProjection};
