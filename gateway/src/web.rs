//! The web client: the static bundle in `web/dist` (built from `web/src` with esbuild and
//! checked in, so neither building nor running the gateway needs Node), embedded in the binary
//! and served at `/`. Paths that name no file get `index.html`, so the page can route itself.
//!
//! `CONFAB_WEB_DIR=<dir>` serves a directory from disk instead (for working on the page
//! without rebuilding the gateway).

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

#[derive(rust_embed::RustEmbed)]
#[folder = "../web/dist"]
struct Bundle;

/// The router's fallback: every request no other route takes.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    // API-looking paths that reached us are unknown routes: say so, never the page
    if method != Method::GET && method != Method::HEAD
        || path.starts_with("api/")
        || path.starts_with("admin/")
        || path.starts_with("registry/")
        || path == "ws"
        || path == "metrics"
    {
        let body =
            serde_json::json!({"error": {"code": "not_found", "message": format!("no route for {method} /{path}")}});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let wanted = if path.is_empty() { "index.html" } else { path };
    match file(wanted) {
        Some(body) => respond(wanted, body),
        // a client-side route (or a missing asset: assets have extensions)
        None if !wanted.rsplit('/').next().unwrap_or("").contains('.') => match file("index.html") {
            Some(body) => respond("index.html", body),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn file(path: &str) -> Option<Cow<'static, [u8]>> {
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return None;
    }
    match std::env::var_os("CONFAB_WEB_DIR") {
        Some(dir) => std::fs::read(std::path::Path::new(&dir).join(path)).ok().map(Cow::Owned),
        None => Bundle::get(path).map(|f| f.data),
    }
}

fn respond(path: &str, body: Cow<'static, [u8]>) -> Response {
    let ext = path.rsplit('.').next().unwrap_or("");
    let kind = match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    };
    // the page itself is revalidated every time, so a new gateway's bundle is picked up at once
    let cache = if ext == "html" { "no-cache" } else { "public, max-age=300" };
    let mut r = body.into_owned().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}
