//! Local servers that speak each push provider's protocol, for tests (feature
//! `test-support`): [`FakeApns`], [`FakeFcm`], [`FakeWebPush`].
//!
//! Each listens on 127.0.0.1 on a free port, generates its own keys at start (the
//! client is configured from what the fake hands out: `.p8` PEM, service account
//! JSON, a browser subscription), checks the credentials and the payload the way
//! the real service does, answers with the real service's statuses and error
//! bodies, and records every request it got, with the `Instant` it arrived, so a
//! test can measure from a send's ack to the provider. A fake can be told to fail
//! the next requests (`fail_next`), that a device is gone (`unregister`), or that
//! the credentials it saw so far expired.
//!
//! A fake stops when dropped.

pub mod apns;
pub mod fcm;
pub mod webpush;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::{oneshot, watch};

pub use apns::{ApnsRequest, FakeApns};
pub use fcm::{FakeFcm, FcmRequest, TokenRequest};
pub use webpush::{FakeWebPush, WebPushRequest};

/// An answer a fake was told to give instead of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    /// The provider's error code (APNs `reason`, FCM `errorCode`); empty for the
    /// status's default.
    pub reason: String,
    pub retry_after: Option<Duration>,
}

impl Fault {
    pub fn new(status: u16) -> Self {
        Fault { status, reason: String::new(), retry_after: None }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

/// Faults queued for the next requests, oldest first.
#[derive(Default)]
pub(crate) struct Faults(Mutex<VecDeque<Fault>>);

impl Faults {
    pub(crate) fn push(&self, times: usize, fault: Fault) {
        let mut queue = self.0.lock().expect("faults lock");
        queue.extend(std::iter::repeat_n(fault, times));
    }

    pub(crate) fn next(&self) -> Option<Fault> {
        self.0.lock().expect("faults lock").pop_front()
    }
}

/// What every fake shares: the requests it got and the faults queued for the next ones, with
/// the same three methods on each (`use confab_notifier::fake::RecordingFake`).
pub struct Recording<T> {
    pub(crate) requests: Recorder<T>,
    pub(crate) faults: Faults,
}

impl<T: Clone> Recording<T> {
    pub(crate) fn new() -> Self {
        Recording { requests: Recorder::new(), faults: Faults::default() }
    }

    pub(crate) fn record(&self, request: T) {
        self.requests.record(request);
    }
}

pub trait RecordingFake {
    type Request: Clone + Send;

    fn recording(&self) -> &Recording<Self::Request>;

    /// The next `times` requests that pass authentication answer `fault` (an empty `reason`
    /// is the status's own provider reason).
    fn fail_next(&self, times: usize, fault: Fault) {
        self.recording().faults.push(times, fault);
    }

    /// Every request so far, in arrival order.
    fn requests(&self) -> Vec<Self::Request> {
        self.recording().requests.all()
    }

    /// Waits for at least `n` requests (or `timeout`) and returns them all.
    fn wait_for(&self, n: usize, timeout: Duration) -> impl std::future::Future<Output = Vec<Self::Request>> + Send
    where
        Self: Sync,
    {
        async move { self.recording().requests.wait_for(n, timeout).await }
    }
}

/// A request as a fake reads it: when it arrived, its head, and its body (up to `limit`
/// bytes; a larger or broken body reads as empty, which the fake then refuses).
pub(crate) async fn read_request(
    request: axum::extract::Request,
    limit: usize,
) -> (std::time::Instant, axum::http::request::Parts, axum::body::Bytes) {
    let received_at = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, limit).await.unwrap_or_default();
    (received_at, parts, body)
}

/// Every request a fake got, in arrival order, and a way to wait for more.
pub(crate) struct Recorder<T> {
    items: Mutex<Vec<T>>,
    count: watch::Sender<usize>,
}

impl<T: Clone> Recorder<T> {
    pub(crate) fn new() -> Self {
        Recorder { items: Mutex::new(Vec::new()), count: watch::channel(0).0 }
    }

    pub(crate) fn record(&self, item: T) {
        let mut items = self.items.lock().expect("recorder lock");
        items.push(item);
        self.count.send_replace(items.len());
    }

    pub(crate) fn all(&self) -> Vec<T> {
        self.items.lock().expect("recorder lock").clone()
    }

    /// Waits until at least `n` requests were recorded or `timeout` passed, and
    /// returns all recorded so far (fewer than `n` on time-out).
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<T> {
        let mut count = self.count.subscribe();
        let _ = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        self.all()
    }
}

/// A running server; stops when dropped.
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Server {
    pub(crate) async fn bind() -> std::io::Result<(tokio::net::TcpListener, String)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok((listener, url))
    }

    /// Serves `router` on `listener`: HTTP/1.1, and HTTP/2 with prior knowledge (h2c).
    pub(crate) fn serve(listener: tokio::net::TcpListener, router: Router) -> Server {
        let addr = listener.local_addr().expect("bound listener");
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, service).with_graceful_shutdown(async {
                let _ = stop.await;
            });
            if let Err(error) = served.await {
                tracing::warn!(%error, "fake push service stopped");
            }
        });
        Server { addr, shutdown: Some(shutdown) }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A response with a JSON body and, when given, `Retry-After`.
pub(crate) fn json_response(status: u16, body: serde_json::Value, retry_after: Option<Duration>) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(after) = retry_after {
        headers.insert("retry-after", HeaderValue::from(after.as_secs()));
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, headers, axum::Json(body)).into_response()
}

/// A header's value as text.
pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}
