//! The distributed search index: one OpenSearch (or Elasticsearch) index, through the
//! `elasticsearch` crate's transport (plain JSON over HTTP, which OpenSearch accepts).
//!
//! - Mapping: the seed's (`message_analyzer` = standard tokenizer, lowercase, stop, snowball; ids
//!   as keywords), plus `text.plain` (the same without stemming, for typos in long words), `ts`
//!   as `date` (`epoch_millis`), `thread_ts` keyword, flags boolean; `_routing` required. One
//!   shard, no replica by default (a single node; [`OpenSearchIndex::with_layout`] for a
//!   cluster), `refresh_interval` 250 ms (searchable within a second of the ack, with room).
//! - Writes: `_bulk` `index` with `_id` = message id and `routing` = workspace id (edits replace),
//!   `_bulk` `delete` (a missing document is fine), `_delete_by_query` for retention and
//!   truncation (or `_search` + `_bulk` delete on a node without the `reindex` module).
//! - `get` is OpenSearch's real-time GET: it sees writes before any refresh.
//! - Search: a `bool` query (see the crate docs), words pre-analyzed locally only to drop the ones
//!   that are stop words, highlight with `encoder: html`.

use std::time::Duration;

use async_trait::async_trait;
use confab_core::ports::{
    PortError, PortErrorKind, PortResult, SearchDoc, SearchHit, SearchIndex, SearchQuery, SearchResults,
};
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, Url};
use elasticsearch::Elasticsearch;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::tantivy::message_analyzer;
use crate::{fallback_highlight, page, HIGHLIGHT_CHARS};

/// Documents per `_bulk` request.
const BULK_DOCS: usize = 1_000;
/// Per-request timeout (bulk writes, searches).
const TIMEOUT: Duration = Duration::from_secs(30);
/// `_delete_by_query` waits for completion: allow it longer.
const LONG_TIMEOUT: Duration = Duration::from_secs(600);
fn chrono_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// How often new writes become searchable. OpenSearch's default (1 s, and no refresh at all
/// while a shard is search-idle) leaves no room for "searchable within 1 s of the ack".
const REFRESH_INTERVAL: &str = "250ms";

pub struct OpenSearchIndex {
    client: Elasticsearch,
    base_url: String,
    index: String,
    shards: u32,
    replicas: u32,
}

/// The index settings and mapping.
pub fn index_definition(shards: u32, replicas: u32) -> Value {
    json!({
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "refresh_interval": REFRESH_INTERVAL,
            "analysis": {
                "analyzer": {
                    "message_analyzer": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase", "stop", "snowball"]
                    },
                    "message_plain": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase", "stop"]
                    }
                }
            }
        },
        "mappings": {
            "dynamic": "strict",
            "_routing": { "required": true },
            "properties": {
                "workspace_id": { "type": "keyword" },
                "channel_id": { "type": "keyword" },
                "message_id": { "type": "keyword" },
                "user_id": { "type": "keyword" },
                "text": {
                    "type": "text",
                    "analyzer": "message_analyzer",
                    "fields": {
                        "plain": { "type": "text", "analyzer": "message_plain", "index_options": "freqs" }
                    }
                },
                "ts": { "type": "date", "format": "epoch_millis" },
                "thread_ts": { "type": "keyword" },
                "has_link": { "type": "boolean" },
                "has_file": { "type": "boolean" },
                "reactions_count": { "type": "integer" },
                "file_names": file_names_mapping()
            }
        }
    })
}

/// Names of attached files, analyzed like the text.
fn file_names_mapping() -> Value {
    json!({
        "type": "text",
        "analyzer": "message_analyzer",
        "fields": { "plain": { "type": "text", "analyzer": "message_plain", "index_options": "freqs" } }
    })
}

impl OpenSearchIndex {
    /// A client for `index` (lowercase, as OpenSearch requires) on the server at `base_url`
    /// (`http://127.0.0.1:9200`; credentials in the URL are used as basic auth). Connects lazily:
    /// call [`SearchIndex::ensure`] to create the index.
    pub fn new(base_url: &str, index: &str) -> PortResult<OpenSearchIndex> {
        Self::with_ca(base_url, index, None)
    }

    /// Like [`new`](Self::new), trusting the CA certificates in `ca_pem` (PEM) for an `https://`
    /// server whose certificate no public CA signed; `None`: the bundled public roots.
    pub fn with_ca(base_url: &str, index: &str, ca_pem: Option<&[u8]>) -> PortResult<OpenSearchIndex> {
        let url = Url::parse(base_url).map_err(|e| PortError::fatal(format!("opensearch url {base_url:?}: {e}")))?;
        if index.is_empty()
            || index != index.to_lowercase()
            || index.starts_with(['_', '-', '+'])
            || index.contains(['/', '\\', '*', '?', '"', '<', '>', '|', ' ', ',', '#'])
        {
            return Err(PortError::fatal(format!(
                "opensearch index name {index:?}: must be lowercase, not start with _ - +, and have no spaces or /\\*?\"<>|,#"
            )));
        }
        let mut bare = url.clone();
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(bare)).disable_proxy().timeout(TIMEOUT);
        if !url.username().is_empty() {
            let (user, password) = (url.username().to_string(), url.password().unwrap_or_default().to_string());
            builder = builder.auth(elasticsearch::auth::Credentials::Basic(user, password));
        }
        if let Some(pem) = ca_pem {
            let ca = Certificate::from_pem(pem).map_err(|e| PortError::fatal(format!("opensearch CA: {e}")))?;
            builder = builder.cert_validation(CertificateValidation::Full(ca));
        }
        let transport = builder.build().map_err(|e| PortError::fatal(format!("opensearch client: {e}")))?;
        let mut shown = url;
        let _ = shown.set_password(None);
        Ok(OpenSearchIndex {
            client: Elasticsearch::new(transport),
            base_url: shown.to_string(),
            index: index.to_string(),
            shards: 1,
            replicas: 0,
        })
    }

    /// Shards and replicas for `ensure` to create the index with (default 1 and 0: one node).
    /// Documents are routed by workspace, so a workspace's search reads one shard.
    pub fn with_layout(mut self, shards: u32, replicas: u32) -> Self {
        self.shards = shards.max(1);
        self.replicas = replicas;
        self
    }

    pub fn index_name(&self) -> &str {
        &self.index
    }

    /// Deletes the whole index (tests, or before re-creating it with a new mapping); a missing
    /// index is fine.
    /// Creates the concrete index `name` with the mapping, behind this index's name as an alias
    /// when `alias` (an existing index of that name is fine).
    async fn create_concrete(&self, name: &str, alias: bool) -> PortResult<()> {
        let mut def = index_definition(self.shards, self.replicas);
        if alias {
            def["aliases"] = json!({ self.index.clone(): { "is_write_index": true } });
        }
        let (status, body) =
            self.call(Method::Put, &format!("/{name}"), &[], Some(def.to_string()), false, TIMEOUT).await?;
        if (200..300).contains(&status) || body["error"]["type"] == "resource_already_exists_exception" {
            Ok(())
        } else {
            Err(server_error(status, &body))
        }
    }

    /// The concrete indices this name points to (itself, if it is a plain index).
    pub async fn concrete_indices(&self) -> PortResult<Vec<String>> {
        let (status, body) =
            self.call(Method::Get, &format!("/{}/_alias", self.index), &[], None, false, TIMEOUT).await?;
        match status {
            200 => Ok(body.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()),
            404 => Ok(vec![]),
            _ => Err(server_error(status, &body)),
        }
    }

    /// A fresh, empty concrete index for a rebuild of this (alias) name: written by a replay
    /// while searches keep using the alias, then swapped in with [`swap_in`](Self::swap_in).
    pub async fn rebuild_target(&self) -> PortResult<OpenSearchIndex> {
        let name = format!("{}-{}", self.index, chrono_millis());
        let fresh = OpenSearchIndex {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            index: name.clone(),
            shards: self.shards,
            replicas: self.replicas,
        };
        self.create_concrete(&name, false).await?;
        Ok(fresh)
    }

    /// Points this alias at `fresh` alone, in one atomic alias update, and deletes the indices
    /// it pointed to before. Returns their names.
    pub async fn swap_in(&self, fresh: &OpenSearchIndex) -> PortResult<Vec<String>> {
        let old: Vec<String> = self.concrete_indices().await?.into_iter().filter(|i| i != &fresh.index).collect();
        let mut actions: Vec<Value> =
            old.iter().map(|i| json!({"remove": {"index": i, "alias": self.index}})).collect();
        actions.push(json!({"add": {"index": fresh.index, "alias": self.index, "is_write_index": true}}));
        let (status, body) = self
            .call(Method::Post, "/_aliases", &[], Some(json!({ "actions": actions }).to_string()), false, TIMEOUT)
            .await?;
        if !(200..300).contains(&status) {
            return Err(server_error(status, &body));
        }
        for i in &old {
            let (status, body) = self.call(Method::Delete, &format!("/{i}"), &[], None, false, TIMEOUT).await?;
            if !(200..300).contains(&status) && status != 404 {
                return Err(server_error(status, &body));
            }
        }
        Ok(old)
    }

    /// Deletes the index, or every concrete index behind the alias.
    pub async fn delete_index(&self) -> PortResult<()> {
        let mut targets = self.concrete_indices().await?;
        if targets.is_empty() {
            targets.push(self.index.clone());
        }
        for name in targets {
            let (status, body) = self.call(Method::Delete, &format!("/{name}"), &[], None, false, TIMEOUT).await?;
            if !(200..300).contains(&status) && status != 404 {
                return Err(server_error(status, &body));
            }
        }
        Ok(())
    }

    /// One request: the status and the JSON body (`Null` when empty). Only transport failures are
    /// errors here.
    async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<String>,
        ndjson: bool,
        timeout: Duration,
    ) -> PortResult<(u16, Value)> {
        let mut headers = HeaderMap::new();
        if ndjson {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        }
        let params = (!params.is_empty()).then_some(params);
        let response = self
            .client
            .send(method, path, headers, params, body, Some(timeout))
            .await
            .map_err(|e| PortError::transient(format!("opensearch at {}: {e}", self.base_url)))?;
        let status = response.status_code().as_u16();
        let text =
            response.text().await.map_err(|e| PortError::transient(format!("opensearch at {}: {e}", self.base_url)))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// A request that must succeed (2xx).
    async fn ok(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<Value>,
        timeout: Duration,
    ) -> PortResult<Value> {
        let (status, value) = self.call(method, path, params, body.map(|b| b.to_string()), false, timeout).await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(server_error(status, &value))
        }
    }

    async fn bulk(&self, lines: String) -> PortResult<()> {
        let (status, value) = self.call(Method::Post, "/_bulk", &[], Some(lines), true, TIMEOUT).await?;
        if !(200..300).contains(&status) {
            return Err(server_error(status, &value));
        }
        if value["errors"].as_bool() == Some(true) {
            let items = value["items"].as_array().map(Vec::as_slice).unwrap_or_default();
            let failed =
                items.iter().filter_map(|i| i.as_object()?.values().next()).filter(|r| r.get("error").is_some());
            let count = failed.clone().count();
            if let Some(first) = failed.into_iter().next() {
                let status = first["status"].as_u64().unwrap_or(0) as u16;
                let e = server_error(status, first);
                return Err(e.context(format!("{count} of {} bulk items failed", items.len())));
            }
        }
        Ok(())
    }

    /// Deletes every document `query` matches (after a refresh, so that everything written so
    /// far counts, as in the embedded index) and refreshes; returns how many.
    ///
    /// `_delete_by_query` lives in OpenSearch's `reindex` module, which every distribution ships;
    /// on a node without it (a minimal test install), the documents are found with `_search` and
    /// removed with `_bulk`, a page at a time.
    async fn delete_matching(&self, query: Value, routing: Option<Uuid>) -> PortResult<u64> {
        self.refresh().await?;
        let mut params = vec![("conflicts", "proceed".to_string()), ("refresh", "true".to_string())];
        if let Some(r) = routing {
            params.push(("routing", r.to_string()));
        }
        let path = format!("/{}/_delete_by_query", self.index);
        let body = json!({ "query": query }).to_string();
        let (status, r) = self.call(Method::Post, &path, &params, Some(body), false, LONG_TIMEOUT).await?;
        if (200..300).contains(&status) {
            return Ok(r["deleted"].as_u64().unwrap_or(0));
        }
        let missing = status == 400 && r["error"].to_string().contains("no handler found");
        if !missing {
            return Err(server_error(status, &r));
        }
        let search = format!("/{}/_search", self.index);
        let routing: Vec<(&str, String)> = routing.map(|r| ("routing", r.to_string())).into_iter().collect();
        let mut deleted = 0;
        loop {
            let page = json!({ "size": BULK_DOCS, "query": query, "_source": false, "sort": ["_doc"] });
            let r = self.ok(Method::Post, &search, &routing, Some(page), TIMEOUT).await?;
            let hits = r["hits"]["hits"].as_array().cloned().unwrap_or_default();
            if hits.is_empty() {
                return Ok(deleted);
            }
            let mut lines = String::with_capacity(hits.len() * 128);
            for h in &hits {
                let action = json!({ "delete": { "_index": self.index, "_id": h["_id"], "routing": h["_routing"] } });
                lines.push_str(&action.to_string());
                lines.push('\n');
            }
            self.bulk(lines).await?;
            deleted += hits.len() as u64;
            self.refresh().await?;
        }
    }

    fn search_body(&self, q: &SearchQuery, window: Option<(usize, usize)>) -> Option<Value> {
        if q.channels.is_empty() {
            return None;
        }
        let analyzer = message_analyzer();
        let has_terms = |s: &str| {
            let mut a = analyzer.clone();
            let mut stream = a.token_stream(s);
            stream.advance()
        };
        let mut must = Vec::new();
        let words: Vec<&String> = q.words.iter().filter(|w| has_terms(w)).collect();
        if !q.words.is_empty() && words.is_empty() {
            return None; // only stop words
        }
        for word in words {
            let m = |field: &str| {
                json!({ "match": { field: {
                    "query": word, "operator": "and", "fuzziness": "AUTO", "zero_terms_query": "all"
                } } })
            };
            must.push(json!({ "bool": { "should": [m("text"), m("text.plain"), m("file_names"), m("file_names.plain")], "minimum_should_match": 1 } }));
        }
        for phrase in &q.phrases {
            if !has_terms(phrase) {
                return None;
            }
            must.push(json!({ "match_phrase": { "text": { "query": phrase } } }));
        }
        let ids = |v: &[Uuid]| v.iter().map(Uuid::to_string).collect::<Vec<_>>();
        let mut filter = vec![
            json!({ "term": { "workspace_id": q.workspace_id.to_string() } }),
            json!({ "terms": { "channel_id": ids(&q.channels) } }),
        ];
        if !q.from_users.is_empty() {
            filter.push(json!({ "terms": { "user_id": ids(&q.from_users) } }));
        }
        if q.after_ms.is_some() || q.before_ms.is_some() {
            let mut range = serde_json::Map::new();
            if let Some(a) = q.after_ms {
                range.insert("gte".into(), a.into());
            }
            if let Some(b) = q.before_ms {
                range.insert("lt".into(), b.into());
            }
            filter.push(json!({ "range": { "ts": range } }));
        }
        if q.has_link {
            filter.push(json!({ "term": { "has_link": true } }));
        }
        if q.has_file {
            filter.push(json!({ "term": { "has_file": true } }));
        }
        if q.is_thread {
            filter.push(json!({ "exists": { "field": "thread_ts" } }));
        }
        let query = json!({ "bool": { "must": must, "filter": filter } });
        let Some((from, size)) = window else {
            return Some(json!({ "size": 0, "track_total_hits": true, "query": query }));
        };
        let hl = json!({ "number_of_fragments": 1, "fragment_size": HIGHLIGHT_CHARS });
        Some(json!({
            "from": from,
            "size": size,
            "track_total_hits": true,
            "track_scores": true,
            "query": query,
            "sort": [{ "_score": { "order": "desc" } }, { "ts": { "order": "desc" } }],
            "_source": ["message_id", "channel_id", "user_id", "ts", "text", "thread_ts"],
            "highlight": {
                "encoder": "html",
                "pre_tags": ["<em>"],
                "post_tags": ["</em>"],
                "fields": { "text": hl.clone(), "text.plain": hl }
            }
        }))
    }
}

/// What an HTTP status from OpenSearch means for the caller: a busy, restarting or overloaded
/// cluster (429, 5xx) is transient; a missing index or document not found; a version clash a
/// conflict; refused credentials fatal; any other refusal invalid.
fn kind_of_status(status: u16) -> PortErrorKind {
    match status {
        404 => PortErrorKind::NotFound,
        409 => PortErrorKind::Conflict,
        401 | 403 => PortErrorKind::Fatal,
        429 | 500..=599 => PortErrorKind::Transient,
        _ => PortErrorKind::Invalid,
    }
}

/// `opensearch 400: mapper_parsing_exception: failed to parse ...`, short.
fn server_error(status: u16, body: &Value) -> PortError {
    let e = &body["error"];
    let (ty, reason) = match e {
        Value::Object(_) => (e["type"].as_str().unwrap_or(""), e["reason"].as_str().unwrap_or("")),
        Value::String(s) => ("", s.as_str()),
        _ => ("", body.as_str().unwrap_or("")),
    };
    let mut msg = match (ty, reason) {
        ("", "") => format!("opensearch {status}"),
        ("", r) => format!("opensearch {status}: {r}"),
        (t, "") => format!("opensearch {status}: {t}"),
        (t, r) => format!("opensearch {status}: {t}: {r}"),
    };
    if msg.len() > 300 {
        let cut = (0..=300).rev().find(|i| msg.is_char_boundary(*i)).unwrap_or(0);
        msg.truncate(cut);
        msg.push('…');
    }
    PortError::new(kind_of_status(status), msg)
}

fn parse_uuid(v: &Value) -> Option<Uuid> {
    v.as_str().and_then(|s| Uuid::parse_str(s).ok())
}

fn hit_of(h: &Value) -> SearchHit {
    let src = &h["_source"];
    let text = src["text"].as_str().unwrap_or_default().to_string();
    let fragment = |field: &str| h["highlight"][field][0].as_str().map(str::to_string);
    let ems = |s: &Option<String>| s.as_deref().map_or(0, |s| s.matches("<em>").count());
    let (stemmed, plain) = (fragment("text"), fragment("text.plain"));
    let highlight = if ems(&plain) > ems(&stemmed) { plain } else { stemmed.or(plain) };
    let ts = src["ts"].as_i64().or_else(|| src["ts"].as_str().and_then(|s| s.parse().ok())).unwrap_or_default();
    let score = h["_score"].as_f64().or_else(|| h["sort"][0].as_f64()).unwrap_or(0.0) as f32;
    SearchHit {
        message_id: parse_uuid(&src["message_id"]).or_else(|| parse_uuid(&h["_id"])).unwrap_or_default(),
        channel_id: parse_uuid(&src["channel_id"]).unwrap_or_default(),
        user_id: parse_uuid(&src["user_id"]).unwrap_or_default(),
        ts,
        thread_ts: parse_uuid(&src["thread_ts"]),
        score,
        highlight: highlight.unwrap_or_else(|| fallback_highlight(&text)),
        text,
    }
}

fn doc_of(src: &Value) -> Option<SearchDoc> {
    Some(SearchDoc {
        workspace_id: parse_uuid(&src["workspace_id"])?,
        channel_id: parse_uuid(&src["channel_id"])?,
        message_id: parse_uuid(&src["message_id"])?,
        user_id: parse_uuid(&src["user_id"])?,
        text: src["text"].as_str().unwrap_or_default().to_string(),
        ts: src["ts"].as_i64().or_else(|| src["ts"].as_str().and_then(|s| s.parse().ok())).unwrap_or_default(),
        thread_ts: parse_uuid(&src["thread_ts"]),
        has_link: src["has_link"].as_bool().unwrap_or(false),
        has_file: src["has_file"].as_bool().unwrap_or(false),
        reactions_count: src["reactions_count"].as_i64().unwrap_or(0) as i32,
        file_names: src["file_names"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
    })
}

#[async_trait]
impl SearchIndex for OpenSearchIndex {
    async fn ensure(&self) -> PortResult<()> {
        let path = format!("/{}", self.index);
        let (status, body) = self.call(Method::Head, &path, &[], None, false, TIMEOUT).await?;
        match status {
            200 => {
                // indexes made before attachments existed get the field (adding one is allowed
                // under a strict mapping, and idempotent)
                let mapping = json!({ "properties": { "file_names": file_names_mapping() } });
                let (status, body) = self
                    .call(Method::Put, &format!("{path}/_mapping"), &[], Some(mapping.to_string()), false, TIMEOUT)
                    .await?;
                return if status == 200 { Ok(()) } else { Err(server_error(status, &body)) };
            }
            404 => {}
            _ => return Err(server_error(status, &body)),
        }
        // the name is an alias over a concrete index, so a rebuild can swap in a fresh one;
        // every process that races here creates the same first index
        self.create_concrete(&format!("{}-000001", self.index), true).await
    }

    async fn upsert(&self, docs: &[SearchDoc]) -> PortResult<()> {
        for chunk in docs.chunks(BULK_DOCS) {
            let mut lines = String::with_capacity(chunk.len() * 512);
            for d in chunk {
                let action = json!({ "index": {
                    "_index": self.index, "_id": d.message_id.to_string(), "routing": d.workspace_id.to_string()
                } });
                let mut source = json!({
                    "workspace_id": d.workspace_id.to_string(),
                    "channel_id": d.channel_id.to_string(),
                    "message_id": d.message_id.to_string(),
                    "user_id": d.user_id.to_string(),
                    "text": d.text,
                    "ts": d.ts,
                    "has_link": d.has_link,
                    "has_file": d.has_file,
                    "reactions_count": d.reactions_count,
                });
                if !d.file_names.is_empty() {
                    source["file_names"] = json!(d.file_names);
                }
                if let Some(t) = d.thread_ts {
                    source["thread_ts"] = t.to_string().into();
                }
                lines.push_str(&action.to_string());
                lines.push('\n');
                lines.push_str(&source.to_string());
                lines.push('\n');
            }
            self.bulk(lines).await?;
        }
        Ok(())
    }

    async fn get(&self, workspace_id: Uuid, message_id: Uuid) -> PortResult<Option<SearchDoc>> {
        // Real time: the document as last written, refreshed or not.
        let path = format!("/{}/_doc/{message_id}", self.index);
        let params = [("routing", workspace_id.to_string())];
        let (status, body) = self.call(Method::Get, &path, &params, None, false, TIMEOUT).await?;
        match status {
            200 if body["found"] == true => {
                Ok(doc_of(&body["_source"]).filter(|d| d.workspace_id == workspace_id && d.message_id == message_id))
            }
            200 | 404 => Ok(None),
            _ => Err(server_error(status, &body)),
        }
    }

    async fn delete(&self, workspace_id: Uuid, message_ids: &[Uuid]) -> PortResult<()> {
        for chunk in message_ids.chunks(BULK_DOCS) {
            let mut lines = String::with_capacity(chunk.len() * 128);
            for id in chunk {
                let action = json!({ "delete": {
                    "_index": self.index, "_id": id.to_string(), "routing": workspace_id.to_string()
                } });
                lines.push_str(&action.to_string());
                lines.push('\n');
            }
            self.bulk(lines).await?; // a missing document is `not_found`, not an error
        }
        Ok(())
    }

    async fn expire(&self, workspace_id: Uuid, before_ms: i64) -> PortResult<u64> {
        let query = json!({ "bool": { "filter": [
            { "term": { "workspace_id": workspace_id.to_string() } },
            { "range": { "ts": { "lt": before_ms } } }
        ] } });
        self.delete_matching(query, Some(workspace_id)).await
    }

    async fn refresh(&self) -> PortResult<()> {
        self.ok(Method::Post, &format!("/{}/_refresh", self.index), &[], None, TIMEOUT).await.map(drop)
    }

    async fn search(&self, q: &SearchQuery) -> PortResult<SearchResults> {
        let window = page(q.offset, q.limit);
        let Some(body) = self.search_body(q, window) else {
            return Ok(SearchResults { total: 0, hits: Vec::new() });
        };
        let params = [("routing", q.workspace_id.to_string())];
        let r = self.ok(Method::Post, &format!("/{}/_search", self.index), &params, Some(body), TIMEOUT).await?;
        let hits = &r["hits"];
        let total = hits["total"]["value"].as_u64().or_else(|| hits["total"].as_u64()).unwrap_or(0);
        let hits = hits["hits"].as_array().map(|a| a.iter().map(hit_of).collect()).unwrap_or_default();
        Ok(SearchResults { total, hits })
    }

    async fn truncate(&self) -> PortResult<()> {
        self.delete_matching(json!({ "match_all": {} }), None).await.map(drop)
    }

    async fn ping(&self) -> PortResult<()> {
        self.ok(Method::Get, "/", &[], None, Duration::from_secs(5)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_short() {
        let body =
            json!({ "error": { "type": "mapper_parsing_exception", "reason": "x".repeat(1000) }, "status": 400 });
        let e = server_error(400, &body);
        assert_eq!(e.kind(), PortErrorKind::Invalid);
        let e = e.to_string();
        assert!(e.starts_with("opensearch 400: mapper_parsing_exception: xxx") && e.len() < 310, "{e}");
        let busy = server_error(503, &Value::Null);
        assert_eq!((busy.to_string().as_str(), busy.kind()), ("opensearch 503", PortErrorKind::Transient));
        assert_eq!(server_error(404, &Value::Null).kind(), PortErrorKind::NotFound);
    }

    #[test]
    fn names() {
        assert!(OpenSearchIndex::new("http://127.0.0.1:9200", "confab-messages").is_ok());
        assert!(OpenSearchIndex::new("http://127.0.0.1:9200", "Messages").is_err());
        assert!(OpenSearchIndex::new("http://127.0.0.1:9200", "_messages").is_err());
        assert!(OpenSearchIndex::new("not a url", "m").is_err());
    }

    #[test]
    fn queries_that_cannot_match_skip_the_server() {
        let idx = OpenSearchIndex::new("http://127.0.0.1:9", "m").unwrap();
        let base = SearchQuery { channels: vec![Uuid::new_v4()], limit: 10, ..Default::default() };
        assert!(idx.search_body(&SearchQuery { channels: vec![], ..base.clone() }, Some((0, 10))).is_none());
        assert!(idx
            .search_body(&SearchQuery { words: vec!["the".into(), "a".into()], ..base.clone() }, Some((0, 10)))
            .is_none());
        assert!(idx
            .search_body(&SearchQuery { phrases: vec!["to be".into()], ..base.clone() }, Some((0, 10)))
            .is_none());
        let body = idx
            .search_body(&SearchQuery { words: vec!["the".into(), "deploy".into()], ..base }, Some((0, 10)))
            .unwrap();
        assert_eq!(body["query"]["bool"]["must"].as_array().unwrap().len(), 1);
    }
}
