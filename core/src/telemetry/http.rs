//! Per-route HTTP metrics: `confab_http_request_duration_seconds{listener, method, route, status}`, a
//! histogram of the time to answer each request. `route` is the route's template
//! (`/api/channels/{channel_id}`), never the path a client sent, so the label set stays bounded.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec};
use std::sync::LazyLock;
use std::time::Instant;

static REQUESTS: LazyLock<HistogramVec> = LazyLock::new(|| {
    super::register(
        HistogramVec::new(
            HistogramOpts::new("confab_http_request_duration_seconds", "time to answer an HTTP request, by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            &["listener", "method", "route", "status"],
        )
        .expect("a valid histogram"),
    )
});

/// The method as a bounded label: the usual ones by name, anything else as `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware (`axum::middleware::from_fn_with_state(listener, track_http)`, on a router's
/// `layer` so the matched route is known): observes every request's answer time.
pub async fn track_http(State(listener): State<&'static str>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status().as_u16().to_string();
    REQUESTS.with_label_values(&[listener, method, route, &status]).observe(started.elapsed().as_secs_f64());
    response
}
