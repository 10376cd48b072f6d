//! Subjects, versions and schema ids. A schema (by canonical form) keeps one global id across
//! subjects. State is written through to a JSON file with an atomic rename (one instance), or
//! kept as a log of changes that any number of instances share and apply in the same order
//! ([`SchemaLog`]; Kafka in distributed mode).

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use confab_core::ports::{PortError, PortErrorKind, PortResult, SchemaSource};

use crate::compat::{self, Level};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {1} not found for subject '{0}'.")]
    VersionNotFound(String, String),
    #[error("Schema {0} not found")]
    SchemaNotFound(u32),
    #[error("Schema not found under subject '{0}'")]
    SchemaNotInSubject(String),
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {details}")]
    Incompatible { subject: String, details: String },
    #[error("Unsupported schema type {0}; this registry serves AVRO only")]
    UnsupportedType(String),
    #[error("Invalid request: {0}")]
    BadRequest(String),
    #[error("cannot persist registry state: {0}")]
    Io(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub version: u32,
    pub id: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// id -> schema text as first registered
    schemas: BTreeMap<u32, String>,
    subjects: BTreeMap<String, Vec<Version>>,
    global_level: Option<Level>,
    subject_levels: BTreeMap<String, Level>,
}

pub struct SchemaStore {
    state: Mutex<State>,
    path: Option<PathBuf>,
    /// The log every instance shares, when there are several (distributed mode).
    shared: Option<Shared>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

fn parse(text: &str) -> Result<Schema, RegistryError> {
    Schema::parse_str(text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

impl State {
    fn level(&self, subject: Option<&str>) -> Level {
        subject.and_then(|sub| self.subject_levels.get(sub).copied()).or(self.global_level).unwrap_or(Level::Backward)
    }

    /// Applies one change; a registration answers with what it registered (or found).
    fn apply(&mut self, change: &Change) -> Result<Option<Registered>, RegistryError> {
        match change {
            Change::Register { subject, schema } => self.register(subject, schema).map(Some),
            Change::SetLevel { subject: Some(sub), level } => {
                self.subject_levels.insert(sub.clone(), *level);
                Ok(None)
            }
            Change::SetLevel { subject: None, level } => {
                self.global_level = Some(*level);
                Ok(None)
            }
        }
    }

    fn register(&mut self, subject: &str, text: &str) -> Result<Registered, RegistryError> {
        let schema = parse(text)?;
        let canonical = schema.canonical_form();
        let level = self.level(Some(subject));
        let existing_id = self
            .schemas
            .iter()
            .find(|(_, t)| parse(t).map(|p| p.canonical_form() == canonical).unwrap_or(false))
            .map(|(id, _)| *id);
        if let Some(id) = existing_id {
            if let Some(v) = self.subjects.get(subject).and_then(|vs| vs.iter().find(|v| v.id == id)) {
                let schema = self.schemas[&id].clone();
                return Ok(Registered { subject: subject.into(), version: v.version, id, schema });
            }
        }
        let earlier: Vec<Schema> = self
            .subjects
            .get(subject)
            .map(|vs| vs.iter().filter_map(|v| parse(&self.schemas[&v.id]).ok()).collect())
            .unwrap_or_default();
        let problems = compat::check(level, &schema, &earlier);
        if !problems.is_empty() {
            return Err(RegistryError::Incompatible { subject: subject.into(), details: problems.join("; ") });
        }
        let id = existing_id.unwrap_or_else(|| self.schemas.keys().next_back().copied().unwrap_or(0) + 1);
        self.schemas.entry(id).or_insert_with(|| text.to_string());
        let versions = self.subjects.entry(subject.to_string()).or_default();
        let version = versions.last().map(|v| v.version + 1).unwrap_or(1);
        versions.push(Version { version, id });
        Ok(Registered { subject: subject.into(), version, id, schema: text.to_string() })
    }
}

/// A change to the registry's state, as a shared log keeps it (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Register { subject: String, schema: String },
    SetLevel { subject: Option<String>, level: Level },
}

/// An ordered log of changes every registry instance reads in the same order (Kafka:
/// `<ns>._schemas`, one partition). Every instance applies every change in log order with the
/// same rules, so ids, versions and refusals come out the same everywhere, whichever instance
/// took the request.
#[async_trait::async_trait]
pub trait SchemaLog: Send + Sync {
    /// Appends a change; returns its offset.
    async fn append(&self, change: Vec<u8>) -> PortResult<i64>;
    /// The offset the next append will get.
    async fn end(&self) -> PortResult<i64>;
    /// Changes from offset `from` on (at most `max`, possibly none yet), with their offsets.
    async fn read(&self, from: i64, max: usize) -> PortResult<Vec<(i64, Vec<u8>)>>;
}

/// The outcome of applying one change of the log.
type Outcome = Result<Option<Registered>, RegistryError>;

/// The shared log and how far this instance has applied it.
struct Shared {
    log: std::sync::Arc<dyn SchemaLog>,
    /// The next offset to apply; held while catching up, so changes apply once, in order.
    next: tokio::sync::Mutex<i64>,
    /// Outcomes of the latest changes applied (at most [`OUTCOMES_KEPT`]): a request that
    /// appended a change takes its own from here, whichever catch-up applied it (a read may
    /// have caught up past it between the append and the request's own catch-up).
    outcomes: Mutex<BTreeMap<i64, Outcome>>,
}

/// How long catching up may wait for a change the log said it holds.
const CATCH_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);
/// Outcomes kept for the requests that appended them.
const OUTCOMES_KEPT: i64 = 1024;

impl SchemaStore {
    /// A store whose state is the shared `log` (it starts empty and catches up on first use).
    pub fn shared(log: std::sync::Arc<dyn SchemaLog>) -> Self {
        let shared = Shared { log, next: tokio::sync::Mutex::new(0), outcomes: Mutex::default() };
        Self { state: Mutex::new(State::default()), path: None, shared: Some(shared) }
    }

    /// Applies what other instances appended up to now (nothing to do without a shared log);
    /// reads call it first, so a read sees every change made before it, on any instance.
    pub async fn refresh(&self) -> Result<(), RegistryError> {
        let Some(shared) = &self.shared else { return Ok(()) };
        let end = shared.log.end().await.map_err(|e| RegistryError::Io(e.to_string()))?;
        self.catch_up(shared, end).await
    }

    async fn append_and_apply(&self, shared: &Shared, change: &Change) -> Outcome {
        let bytes = serde_json::to_vec(change).expect("change serializes");
        let offset = shared.log.append(bytes).await.map_err(|e| RegistryError::Io(e.to_string()))?;
        self.catch_up(shared, offset + 1).await?;
        let outcome = shared.outcomes.lock().expect("outcomes lock").remove(&offset);
        // only gone if over a thousand changes landed meanwhile: the change was applied, its
        // answer is lost; the client may ask again (a registration answers the same)
        outcome.unwrap_or_else(|| {
            Err(RegistryError::Io(format!("the outcome of change {offset} was not kept; ask again")))
        })
    }

    /// Applies the log up to (not including) `end`, keeping each change's outcome.
    async fn catch_up(&self, shared: &Shared, end: i64) -> Result<(), RegistryError> {
        let mut next = shared.next.lock().await;
        let deadline = tokio::time::Instant::now() + CATCH_UP_WITHIN;
        while *next < end {
            let changes = shared.log.read(*next, 500).await.map_err(|e| RegistryError::Io(e.to_string()))?;
            if changes.is_empty() && tokio::time::Instant::now() > deadline {
                return Err(RegistryError::Io(format!("the schema log did not deliver offset {} in time", *next)));
            }
            for (offset, bytes) in changes {
                let outcome = match serde_json::from_slice::<Change>(&bytes) {
                    Ok(change) => self.state.lock().expect("registry lock").apply(&change),
                    Err(e) => Err(RegistryError::BadRequest(format!("unreadable change at offset {offset}: {e}"))),
                };
                if let Err(e) = &outcome {
                    tracing::debug!(offset, error = %e, "schema log change refused");
                }
                let mut outcomes = shared.outcomes.lock().expect("outcomes lock");
                outcomes.insert(offset, outcome);
                outcomes.retain(|o, _| *o > offset - OUTCOMES_KEPT);
                *next = offset + 1;
            }
        }
        Ok(())
    }

    /// Opens the store at `path` (created on first write), or in memory when `None`.
    pub fn open(path: Option<PathBuf>) -> Result<Self, RegistryError> {
        let state = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p).map_err(|e| RegistryError::Io(e.to_string()))?;
                serde_json::from_str(&text).map_err(|e| RegistryError::Io(e.to_string()))?
            }
            _ => State::default(),
        };
        Ok(Self { state: Mutex::new(state), path, shared: None })
    }

    fn persist(&self, state: &State) -> Result<(), RegistryError> {
        let Some(path) = &self.path else { return Ok(()) };
        let tmp = path.with_extension("tmp");
        let io = |e: std::io::Error| RegistryError::Io(e.to_string());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(&tmp, serde_json::to_vec_pretty(state).expect("state serializes")).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn level(&self, subject: Option<&str>) -> Level {
        self.state.lock().expect("registry lock").level(subject)
    }

    pub async fn set_level(&self, subject: Option<&str>, level: Level) -> Result<(), RegistryError> {
        let change = Change::SetLevel { subject: subject.map(String::from), level };
        if let Some(shared) = &self.shared {
            return self.append_and_apply(shared, &change).await.map(|_| ());
        }
        let mut s = self.state.lock().expect("registry lock");
        s.apply(&change)?;
        self.persist(&s)
    }

    /// Registers `text` under `subject` after the compatibility check; an already registered
    /// schema returns its existing id and version. With a shared log, the registration is
    /// appended to it and takes effect where it lands, for every instance alike.
    pub async fn register(&self, subject: &str, text: &str) -> Result<Registered, RegistryError> {
        parse(text)?;
        let change = Change::Register { subject: subject.to_string(), schema: text.to_string() };
        match &self.shared {
            Some(shared) => self
                .append_and_apply(shared, &change)
                .await?
                .ok_or_else(|| RegistryError::Io("a registration applied as something else".into())),
            None => {
                let mut s = self.state.lock().expect("registry lock");
                let r = s.register(subject, text)?;
                self.persist(&s)?;
                Ok(r)
            }
        }
    }

    /// Checks `text` against a subject without registering it.
    pub fn check(&self, subject: &str, text: &str, version: &str) -> Result<Vec<String>, RegistryError> {
        let schema = parse(text)?;
        let level = self.level(Some(subject));
        let s = self.state.lock().expect("registry lock");
        let Some(versions) = s.subjects.get(subject) else { return Ok(vec![]) };
        let earlier: Vec<Schema> = if version == "latest" || level == Level::None {
            versions.iter().filter_map(|v| parse(&s.schemas[&v.id]).ok()).collect()
        } else {
            let n: u32 = version.parse().map_err(|_| RegistryError::VersionNotFound(subject.into(), version.into()))?;
            let v = versions
                .iter()
                .find(|v| v.version == n)
                .ok_or_else(|| RegistryError::VersionNotFound(subject.into(), version.into()))?;
            vec![parse(&s.schemas[&v.id])?]
        };
        Ok(compat::check(level, &schema, &earlier))
    }

    pub fn schema(&self, id: u32) -> Result<String, RegistryError> {
        self.state.lock().expect("registry lock").schemas.get(&id).cloned().ok_or(RegistryError::SchemaNotFound(id))
    }

    pub fn subjects(&self) -> Vec<String> {
        self.state.lock().expect("registry lock").subjects.keys().cloned().collect()
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let s = self.state.lock().expect("registry lock");
        let vs = s.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))?;
        Ok(vs.iter().map(|v| v.version).collect())
    }

    pub fn version(&self, subject: &str, version: &str) -> Result<Registered, RegistryError> {
        let s = self.state.lock().expect("registry lock");
        let vs = s.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))?;
        let v = if version == "latest" || version == "-1" {
            vs.last()
        } else {
            version.parse::<u32>().ok().and_then(|n| vs.iter().find(|v| v.version == n))
        }
        .ok_or_else(|| RegistryError::VersionNotFound(subject.into(), version.into()))?;
        Ok(Registered { subject: subject.into(), version: v.version, id: v.id, schema: s.schemas[&v.id].clone() })
    }

    /// Finds `text` among a subject's versions.
    pub fn lookup(&self, subject: &str, text: &str) -> Result<Registered, RegistryError> {
        let canonical = parse(text)?.canonical_form();
        let s = self.state.lock().expect("registry lock");
        let vs = s.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))?;
        let v = vs
            .iter()
            .find(|v| parse(&s.schemas[&v.id]).map(|p| p.canonical_form() == canonical).unwrap_or(false))
            .ok_or_else(|| RegistryError::SchemaNotInSubject(subject.into()))?;
        Ok(Registered { subject: subject.into(), version: v.version, id: v.id, schema: s.schemas[&v.id].clone() })
    }
}

impl From<RegistryError> for PortError {
    fn from(e: RegistryError) -> Self {
        let kind = match &e {
            RegistryError::SubjectNotFound(_)
            | RegistryError::VersionNotFound(..)
            | RegistryError::SchemaNotFound(_)
            | RegistryError::SchemaNotInSubject(_) => PortErrorKind::NotFound,
            RegistryError::Incompatible { .. } => PortErrorKind::Conflict,
            RegistryError::InvalidSchema(_) | RegistryError::UnsupportedType(_) | RegistryError::BadRequest(_) => {
                PortErrorKind::Invalid
            }
            RegistryError::Io(_) => PortErrorKind::Transient,
        };
        PortError::new(kind, e)
    }
}

/// The in-process registry as a schema source (embedded mode).
#[async_trait::async_trait]
impl SchemaSource for SchemaStore {
    async fn register(&self, subject: &str, schema: &str) -> PortResult<u32> {
        Ok(SchemaStore::register(self, subject, schema).await?.id)
    }
    async fn schema(&self, id: u32) -> PortResult<String> {
        if let Ok(text) = SchemaStore::schema(self, id) {
            return Ok(text);
        }
        self.refresh().await?;
        Ok(SchemaStore::schema(self, id)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    const V2: &str =
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":1}]}"#;
    const BAD: &str =
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"c","type":"int"}]}"#;

    #[tokio::test]
    async fn registers_versions_dedups_and_refuses_incompatible() {
        let dir = std::env::temp_dir().join(format!("confab-registry-{}", uuid_like()));
        let path = dir.join("registry.json");
        let store = SchemaStore::open(Some(path.clone())).unwrap();
        let r1 = store.register("t-value", V1).await.unwrap();
        assert_eq!((r1.id, r1.version), (1, 1));
        assert_eq!(store.register("t-value", V1).await.unwrap().id, 1);
        let r2 = store.register("t-value", V2).await.unwrap();
        assert_eq!((r2.id, r2.version), (2, 2));
        // same schema under another subject keeps its id
        assert_eq!(store.register("u-value", V1).await.unwrap().id, 1);
        let err = store.register("t-value", BAD).await.unwrap_err().to_string();
        assert!(err.contains("incompatible") && err.contains('c'), "{err}");
        // survives a restart
        let reopened = SchemaStore::open(Some(path)).unwrap();
        assert_eq!(reopened.versions("t-value").unwrap(), vec![1, 2]);
        assert_eq!(reopened.version("t-value", "latest").unwrap().id, 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A shared log in memory, as every instance of a Kafka-backed registry sees `_schemas`.
    #[derive(Default)]
    struct MemLog(std::sync::Mutex<Vec<Vec<u8>>>);

    #[async_trait::async_trait]
    impl SchemaLog for MemLog {
        async fn append(&self, change: Vec<u8>) -> PortResult<i64> {
            let mut log = self.0.lock().unwrap();
            log.push(change);
            Ok(log.len() as i64 - 1)
        }
        async fn end(&self) -> PortResult<i64> {
            Ok(self.0.lock().unwrap().len() as i64)
        }
        async fn read(&self, from: i64, max: usize) -> PortResult<Vec<(i64, Vec<u8>)>> {
            let log = self.0.lock().unwrap();
            Ok(log.iter().enumerate().skip(from as usize).take(max).map(|(i, c)| (i as i64, c.clone())).collect())
        }
    }

    const X: &str =
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":1}]}"#;
    const Y: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string","default":"x"}]}"#;

    #[tokio::test]
    async fn instances_sharing_a_log_agree_on_ids_versions_and_refusals() {
        let log = std::sync::Arc::new(MemLog::default());
        let (a, b) = (SchemaStore::shared(log.clone()), SchemaStore::shared(log.clone()));
        assert_eq!(a.register("t-value", V1).await.unwrap().id, 1);
        // X and Y each fit V1, not each other: whichever lands first wins, on both instances
        let (x, y) = tokio::join!(a.register("t-value", X), b.register("t-value", Y));
        assert!(x.is_ok() != y.is_ok(), "exactly one of two incompatible versions: {x:?} {y:?}");
        let winner = x.as_ref().or(y.as_ref()).unwrap().clone();
        assert_eq!((winner.id, winner.version), (2, 2));
        for store in [&a, &b] {
            store.refresh().await.unwrap();
            assert_eq!(store.versions("t-value").unwrap(), vec![1, 2]);
            assert_eq!(store.version("t-value", "latest").unwrap().schema, winner.schema);
        }
        // an id registered on one instance is served by the other; so is a level change
        let other = b.register("u-value", V2).await.unwrap();
        assert_eq!(SchemaSource::schema(&a, other.id).await.unwrap(), V2);
        a.set_level(Some("u-value"), Level::None).await.unwrap();
        b.refresh().await.unwrap();
        assert_eq!(b.level(Some("u-value")), Level::None);
        // a fresh instance rebuilds the same state from the log
        let c = SchemaStore::shared(log);
        c.refresh().await.unwrap();
        assert_eq!((c.subjects(), c.schema(other.id).unwrap()), (a.subjects(), V2.to_string()));
    }

    /// A log whose appends return only when the test says so, after the change is in the log.
    #[derive(Default)]
    struct GatedLog {
        log: MemLog,
        gate: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl SchemaLog for GatedLog {
        async fn append(&self, change: Vec<u8>) -> PortResult<i64> {
            let offset = self.log.append(change).await?;
            self.gate.notified().await;
            Ok(offset)
        }
        async fn end(&self) -> PortResult<i64> {
            self.log.end().await
        }
        async fn read(&self, from: i64, max: usize) -> PortResult<Vec<(i64, Vec<u8>)>> {
            self.log.read(from, max).await
        }
    }

    /// A read may apply a registration between its append and the registering request's own
    /// catch-up: the request still gets its answer (it used to panic).
    #[tokio::test]
    async fn a_registration_applied_by_a_read_first_still_gets_its_answer() {
        let log = std::sync::Arc::new(GatedLog::default());
        let store = std::sync::Arc::new(SchemaStore::shared(log.clone()));
        let registering = tokio::spawn({
            let store = store.clone();
            async move { store.register("t-value", V1).await }
        });
        while log.log.end().await.unwrap() == 0 {
            tokio::task::yield_now().await;
        }
        store.refresh().await.unwrap();
        assert_eq!(store.versions("t-value").unwrap(), vec![1], "the read applied it");
        log.gate.notify_one();
        assert_eq!(registering.await.unwrap().unwrap().id, 1);
    }

    fn uuid_like() -> String {
        format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        )
    }
}
