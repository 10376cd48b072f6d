//! The HTTP API's OpenAPI 3.1 documents, generated from the handlers' `#[utoipa::path]`
//! annotations: the public API at `GET /api/openapi.json` on the public listener, the admin API
//! at `GET /admin/openapi.json` on the admin listener. A platform's own public routes (the
//! VAPID key) bring their part of the document in [`crate::server::ExtraRoutes`].
//!
//! What every operation shares is added here once rather than on each handler: its bearer
//! token, and the errors any request can meet (a bad parameter, a missing or wrong token, a
//! wrong `Host`, a store that is down, a panic caught). Two tests keep the documents honest:
//! one fails when a route a listener serves is missing from its document, and schemathesis
//! checks real answers against them (both in tests/tests/openapi.rs).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::OpenApi;

use crate::http::bodies::ErrorBody;

/// Where the public document is served, on the public listener.
pub const PUBLIC_DOCUMENT_PATH: &str = "/api/openapi.json";
/// Where the admin document is served, on the admin listener.
pub const ADMIN_DOCUMENT_PATH: &str = "/admin/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab HTTP API",
        description = "The user-facing HTTP API of a Confab gateway. Errors are \
            `{\"error\": {\"code\": .., \"message\": ..}}` with a typed code. The WebSocket's frames \
            are in docs/asyncapi.yaml; the admin API is on the admin listener (/admin/openapi.json)."
    ),
    paths(
        crate::http::channels::me,
        crate::http::channels::channels,
        crate::http::channels::channel,
        crate::http::channels::users,
        crate::http::history::history,
        crate::http::history::replies,
        crate::http::history::pins,
        crate::http::search::search,
        crate::http::presence::lookup,
        crate::http::devices::register,
        crate::http::devices::list,
        crate::http::devices::remove,
        crate::http::devices::prefs,
        crate::http::devices::set_prefs,
        crate::http::files::create,
        crate::http::files::complete,
        crate::http::files::get,
        crate::http::files::delete,
        crate::http::files::blob_put,
        crate::http::files::blob_get,
        crate::ws::upgrade,
        confab_core::telemetry::livez,
        confab_core::telemetry::public_readyz,
        confab_core::telemetry::public_healthz,
        public_document_route,
    ),
    components(schemas(ErrorBody))
)]
struct PublicApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab admin API",
        description = "A gateway's admin API, on its admin listener (never the port clients use): \
            bearer `auth.admin_key`, except `/admin/keys/open` (bearer `keys.reader_key`). \
            Every action is recorded in the workspace's audit stream in the log first."
    ),
    paths(
        crate::admin::create_workspace,
        crate::admin::create_user,
        crate::admin::mint_token,
        crate::admin::revoke_tokens,
        crate::admin::create_channel,
        crate::admin::lifecycle::deactivate_user,
        crate::admin::lifecycle::reactivate_user,
        crate::admin::lifecycle::change_retention,
        crate::admin::lifecycle::delete_workspace,
        crate::admin::keys::open,
        admin_document_route,
    ),
    components(schemas(ErrorBody))
)]
struct AdminApi;

/// `GET /api/openapi.json`: this document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", body = Object)))]
async fn public_document_route(State(json): State<Arc<str>>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json.to_string())
}

/// `GET /admin/openapi.json`: this document (no token needed: it holds no secret).
#[utoipa::path(get, path = "/admin/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document of the admin API", body = Object)))]
async fn admin_document_route(State(json): State<Arc<str>>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json.to_string())
}

/// Which bearer token an operation of the public API takes, if any.
fn public_token(path: &str) -> Option<&'static str> {
    let open = [PUBLIC_DOCUMENT_PATH, "/api/push/vapid"];
    (path.starts_with("/api/") && !open.contains(&path) || path == "/ws").then_some("user_token")
}

/// Which bearer token an operation of the admin API takes, if any.
fn admin_token(path: &str) -> Option<&'static str> {
    match path {
        ADMIN_DOCUMENT_PATH => None,
        "/admin/keys/open" => Some("reader_key"),
        _ => Some("admin_key"),
    }
}

/// The whole public document: the gateway's operations and `extra` (a platform's routes).
pub fn public_document(extra: Document) -> Document {
    let mut document = PublicApi::openapi();
    document.merge(extra);
    add_shared(&mut document, &[("user_token", "a user token (a JWT or a `cfb1` token)")], public_token);
    document
}

/// The admin document.
pub fn admin_document() -> Document {
    let mut document = AdminApi::openapi();
    let schemes = [("admin_key", "`auth.admin_key`"), ("reader_key", "`keys.reader_key`: data teams")];
    add_shared(&mut document, &schemes, admin_token);
    document
}

/// `GET /api/openapi.json`, answering `document`.
pub fn public_router(document: &Document) -> Router {
    Router::new().route(PUBLIC_DOCUMENT_PATH, get(public_document_route)).with_state(as_json(document))
}

/// `GET /admin/openapi.json`, answering `document`.
pub fn admin_router(document: &Document) -> Router {
    Router::new().route(ADMIN_DOCUMENT_PATH, get(admin_document_route)).with_state(as_json(document))
}

fn as_json(document: &Document) -> Arc<str> {
    document.to_pretty_json().expect("the OpenAPI document serializes").into()
}

/// The bearer schemes, and on every operation its token and the errors any request can meet.
fn add_shared(document: &mut Document, schemes: &[(&str, &str)], token_of: fn(&str) -> Option<&'static str>) {
    let components = document.components.get_or_insert_with(Default::default);
    for (name, description) in schemes {
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(description.to_string());
        components.add_security_scheme(*name, SecurityScheme::Http(scheme));
    }
    for (path, item) in document.paths.paths.iter_mut() {
        let token = token_of(path);
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            add_shared_errors(operation, token);
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
}

fn add_shared_errors(operation: &mut Operation, token: Option<&str>) {
    let mut shared = vec![
        ("400", "`invalid_field`: a parameter or the body is not what this operation takes"),
        ("421", "`forbidden`: a `Host` this listener does not answer for"),
        ("500", "`internal`: a failure the server could not recover from; it is logged"),
        ("503", "`unavailable`: a store is unreachable, or the server is at a cap; retry"),
        ("504", "`unavailable`: ingest did not answer in time; the change may still happen"),
    ];
    if let Some(token) = token {
        operation.security = Some(vec![SecurityRequirement::new(token, Vec::<String>::new())]);
        shared.push((
            "401",
            "`unauthorized` (missing or wrong), or for a user token `token_expired`, `token_revoked`, \
             `user_deactivated` or `workspace_deleted`",
        ));
    }
    for (status, description) in shared {
        operation.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description).into());
    }
}
