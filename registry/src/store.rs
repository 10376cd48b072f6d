//! Subjects, versions and schema ids. A schema (by canonical form) keeps one global id across
//! subjects. State is written through to a JSON file with an atomic rename.

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

impl SchemaStore {
    /// Opens the store at `path` (created on first write), or in memory when `None`.
    pub fn open(path: Option<PathBuf>) -> Result<Self, RegistryError> {
        let state = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p).map_err(|e| RegistryError::Io(e.to_string()))?;
                serde_json::from_str(&text).map_err(|e| RegistryError::Io(e.to_string()))?
            }
            _ => State::default(),
        };
        Ok(Self { state: Mutex::new(state), path })
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
        let s = self.state.lock().expect("registry lock");
        subject.and_then(|sub| s.subject_levels.get(sub).copied()).or(s.global_level).unwrap_or(Level::Backward)
    }

    pub fn set_level(&self, subject: Option<&str>, level: Level) -> Result<(), RegistryError> {
        let mut s = self.state.lock().expect("registry lock");
        match subject {
            Some(sub) => {
                s.subject_levels.insert(sub.to_string(), level);
            }
            None => s.global_level = Some(level),
        }
        self.persist(&s)
    }

    /// Registers `text` under `subject` after the compatibility check; an already registered
    /// schema returns its existing id and version.
    pub fn register(&self, subject: &str, text: &str) -> Result<Registered, RegistryError> {
        let schema = parse(text)?;
        let canonical = schema.canonical_form();
        let level = self.level(Some(subject));
        let mut s = self.state.lock().expect("registry lock");
        let existing_id = s
            .schemas
            .iter()
            .find(|(_, t)| parse(t).map(|p| p.canonical_form() == canonical).unwrap_or(false))
            .map(|(id, _)| *id);
        if let Some(id) = existing_id {
            if let Some(v) = s.subjects.get(subject).and_then(|vs| vs.iter().find(|v| v.id == id)) {
                return Ok(Registered {
                    subject: subject.into(),
                    version: v.version,
                    id,
                    schema: s.schemas[&id].clone(),
                });
            }
        }
        let earlier: Vec<Schema> = s
            .subjects
            .get(subject)
            .map(|vs| vs.iter().filter_map(|v| parse(&s.schemas[&v.id]).ok()).collect())
            .unwrap_or_default();
        let problems = compat::check(level, &schema, &earlier);
        if !problems.is_empty() {
            return Err(RegistryError::Incompatible { subject: subject.into(), details: problems.join("; ") });
        }
        let id = existing_id.unwrap_or_else(|| s.schemas.keys().next_back().copied().unwrap_or(0) + 1);
        s.schemas.entry(id).or_insert_with(|| text.to_string());
        let versions = s.subjects.entry(subject.to_string()).or_default();
        let version = versions.last().map(|v| v.version + 1).unwrap_or(1);
        versions.push(Version { version, id });
        self.persist(&s)?;
        Ok(Registered { subject: subject.into(), version, id, schema: text.to_string() })
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
        Ok(SchemaStore::register(self, subject, schema)?.id)
    }
    async fn schema(&self, id: u32) -> PortResult<String> {
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

    #[test]
    fn registers_versions_dedups_and_refuses_incompatible() {
        let dir = std::env::temp_dir().join(format!("confab-registry-{}", uuid_like()));
        let path = dir.join("registry.json");
        let store = SchemaStore::open(Some(path.clone())).unwrap();
        let r1 = store.register("t-value", V1).unwrap();
        assert_eq!((r1.id, r1.version), (1, 1));
        assert_eq!(store.register("t-value", V1).unwrap().id, 1);
        let r2 = store.register("t-value", V2).unwrap();
        assert_eq!((r2.id, r2.version), (2, 2));
        // same schema under another subject keeps its id
        assert_eq!(store.register("u-value", V1).unwrap().id, 1);
        let err = store.register("t-value", BAD).unwrap_err().to_string();
        assert!(err.contains("incompatible") && err.contains('c'), "{err}");
        // survives a restart
        let reopened = SchemaStore::open(Some(path)).unwrap();
        assert_eq!(reopened.versions("t-value").unwrap(), vec![1, 2]);
        assert_eq!(reopened.version("t-value", "latest").unwrap().id, 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn uuid_like() -> String {
        format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        )
    }
}
