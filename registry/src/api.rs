//! The Confluent Schema Registry REST API (the subset serializers, deserializers and operators
//! use). Errors use Confluent's `{"error_code": .., "message": ..}` shape and codes.

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use crate::compat::Level;
use crate::store::{RegistryError, SchemaStore};

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            RegistryError::SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            RegistryError::VersionNotFound(..) => (StatusCode::NOT_FOUND, 40402),
            RegistryError::SchemaNotFound(_) | RegistryError::SchemaNotInSubject(_) => (StatusCode::NOT_FOUND, 40403),
            RegistryError::InvalidSchema(_) | RegistryError::UnsupportedType(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42201)
            }
            RegistryError::Incompatible { .. } => (StatusCode::CONFLICT, 409),
            RegistryError::BadRequest(_) => (StatusCode::BAD_REQUEST, 400),
            RegistryError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "registry failure");
        }
        let body = json!({"error_code": code, "message": self.to_string()});
        (status, [(axum::http::header::CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")], Json(body))
            .into_response()
    }
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

impl SchemaBody {
    fn avro(&self) -> Result<&str, RegistryError> {
        match self.schema_type.as_deref() {
            None | Some("AVRO") => Ok(&self.schema),
            Some(other) => Err(RegistryError::UnsupportedType(other.into())),
        }
    }
}

/// A JSON body whose rejection is a Confluent-shaped error, like every other failure here.
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = RegistryError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, RegistryError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e| RegistryError::BadRequest(e.body_text()))
    }
}

type Store = Arc<SchemaStore>;

fn ok(v: serde_json::Value) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")], Json(v)).into_response()
}

async fn register(
    State(s): State<Store>,
    Path(subject): Path<String>,
    Body(b): Body<SchemaBody>,
) -> Result<Response, RegistryError> {
    let r = s.register(&subject, b.avro()?).await?;
    tracing::info!(subject = %subject, id = r.id, version = r.version, "schema registered");
    Ok(ok(json!({"id": r.id})))
}

async fn lookup(
    State(s): State<Store>,
    Path(subject): Path<String>,
    Body(b): Body<SchemaBody>,
) -> Result<Response, RegistryError> {
    s.refresh().await?;
    let r = s.lookup(&subject, b.avro()?)?;
    Ok(ok(json!({"subject": r.subject, "id": r.id, "version": r.version, "schema": r.schema})))
}

async fn schema_by_id(State(s): State<Store>, Path(id): Path<u32>) -> Result<Response, RegistryError> {
    s.refresh().await?;
    Ok(ok(json!({"schema": s.schema(id)?})))
}

async fn subjects(State(s): State<Store>) -> Result<Response, RegistryError> {
    s.refresh().await?;
    Ok(ok(json!(s.subjects())))
}

async fn versions(State(s): State<Store>, Path(subject): Path<String>) -> Result<Response, RegistryError> {
    s.refresh().await?;
    Ok(ok(json!(s.versions(&subject)?)))
}

async fn version(
    State(s): State<Store>,
    Path((subject, v)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    s.refresh().await?;
    let r = s.version(&subject, &v)?;
    Ok(ok(json!({"subject": r.subject, "id": r.id, "version": r.version, "schema": r.schema})))
}

async fn compatibility(
    State(s): State<Store>,
    Path((subject, v)): Path<(String, String)>,
    Body(b): Body<SchemaBody>,
) -> Result<Response, RegistryError> {
    s.refresh().await?;
    let problems = s.check(&subject, b.avro()?, &v)?;
    Ok(ok(json!({"is_compatible": problems.is_empty(), "messages": problems})))
}

#[derive(Deserialize)]
struct LevelBody {
    compatibility: Level,
}

async fn get_config(State(s): State<Store>) -> Result<Response, RegistryError> {
    s.refresh().await?;
    Ok(ok(json!({"compatibilityLevel": s.level(None)})))
}

async fn put_config(State(s): State<Store>, Body(b): Body<LevelBody>) -> Result<Response, RegistryError> {
    s.set_level(None, b.compatibility).await?;
    Ok(ok(json!({"compatibility": b.compatibility})))
}

async fn get_subject_config(State(s): State<Store>, Path(subject): Path<String>) -> Result<Response, RegistryError> {
    s.refresh().await?;
    Ok(ok(json!({"compatibilityLevel": s.level(Some(&subject))})))
}

async fn put_subject_config(
    State(s): State<Store>,
    Path(subject): Path<String>,
    Body(b): Body<LevelBody>,
) -> Result<Response, RegistryError> {
    s.set_level(Some(&subject), b.compatibility).await?;
    Ok(ok(json!({"compatibility": b.compatibility})))
}

/// The whole API: reads for anyone, registration and compatibility settings for `writes`.
/// Confluent clients send `application/vnd.schemaregistry.v1+json`; the JSON extractor accepts
/// any `+json` content type.
pub fn router(store: Arc<SchemaStore>, writes: WriteAccess) -> Router {
    let write_routes = Router::new()
        .route("/subjects/{subject}/versions", post(register))
        .route("/config", put(put_config))
        .route("/config/{subject}", put(put_subject_config))
        .with_state(store.clone());
    let write_routes = match writes {
        WriteAccess::Key(key) => write_routes.route_layer(from_fn_with_state(Arc::new(key), require_write_key)),
        WriteAccess::Open => write_routes,
    };
    read_router(store).merge(write_routes)
}

/// Who may register schemas and change compatibility.
#[derive(Debug, Clone)]
pub enum WriteAccess {
    /// A caller with `Authorization: Bearer <key>` (Confluent clients: `bearer.auth.token`); an
    /// empty key admits nobody.
    Key(String),
    /// Anyone who reaches the listener (`confab registry --insecure-dev` only).
    Open,
}

/// Middleware: a write without the key is refused with 401 (Confluent's 40101), before the
/// store is touched.
async fn require_write_key(State(key): State<Arc<String>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if confab_core::auth::key_matches(given, &key) {
        return next.run(request).await;
    }
    let body = json!({"error_code": 40101, "message": "registering schemas and changing compatibility need the registry's write key"});
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")], Json(body))
        .into_response()
}

/// What anyone may do: read subjects, versions, schemas and settings, and ask whether a schema
/// is registered or compatible (both change nothing). Registering and changing compatibility
/// are only on [`router`], which is served on a private listener.
pub fn read_router(store: Arc<SchemaStore>) -> Router {
    Router::new()
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(compatibility))
        .route("/config", get(get_config))
        .route("/config/{subject}", get(get_subject_config))
        .with_state(store)
}
