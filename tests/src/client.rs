//! A WebSocket client speaking Confab's protocol, for tests and benchmarks.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub hello: Value,
    buffered: VecDeque<Value>,
    /// Close frame received, if any: (code, reason).
    pub closed: Option<(u16, String)>,
    /// When [`keep_alive`](Self::keep_alive) last sent the heartbeat (or the socket opened).
    pinged: std::time::Instant,
    /// The subprotocol the server selected (`Sec-WebSocket-Protocol` of its answer).
    pub protocol: Option<String>,
}

impl Client {
    /// Connects with `Authorization: Bearer`; on refusal returns the HTTP status and JSON body.
    pub async fn connect(addr: &str, token: &str) -> Result<Client, (u16, Value)> {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        Self::connect_request(req).await
    }

    /// Connects with `?resume=1`: live events wait until this client sends `resume`.
    pub async fn connect_resuming(addr: &str, token: &str) -> Result<Client, (u16, Value)> {
        let mut req = format!("ws://{addr}/ws?resume=1").into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        Self::connect_request(req).await
    }

    /// Connects with `?token=` (how browsers authenticate).
    pub async fn connect_query(addr: &str, token: &str) -> Result<Client, (u16, Value)> {
        Self::connect_request(format!("ws://{addr}/ws?token={token}").into_client_request().unwrap()).await
    }

    /// Connects with the token in `Sec-WebSocket-Protocol` (`confab, bearer.<token>`), as
    /// browsers should: it stays out of URLs and logs.
    pub async fn connect_subprotocol(addr: &str, token: &str) -> Result<Client, (u16, Value)> {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        let offered = format!("confab, bearer.{token}");
        req.headers_mut().insert("sec-websocket-protocol", offered.parse().unwrap());
        Self::connect_request(req).await
    }

    async fn connect_request(
        req: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<Client, (u16, Value)> {
        let (ws, response) = match tokio_tungstenite::connect_async_with_config(req, None, true).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp.body().as_ref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
                return Err((status, body));
            }
            Err(e) => panic!("websocket connect failed: {e}"),
        };
        let mut c = Client {
            ws,
            hello: Value::Null,
            buffered: VecDeque::new(),
            closed: None,
            pinged: std::time::Instant::now(),
            protocol: response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        let hello = c.next(Duration::from_secs(10)).await.expect("hello frame");
        assert_eq!(hello["type"], "hello", "first frame must be hello: {hello}");
        c.hello = hello;
        Ok(c)
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string().into())).await.expect("send frame");
    }

    /// Sends a message frame; false if the socket is gone.
    pub async fn try_send_message(&mut self, channel: &str, text: &str, client_msg_id: &str) -> bool {
        let v = json!({"type": "message:send", "channel_id": channel, "text": text, "client_msg_id": client_msg_id});
        self.ws.send(Message::Text(v.to_string().into())).await.is_ok()
    }

    pub async fn send_raw(&mut self, s: String) {
        self.ws.send(Message::Text(s.into())).await.expect("send frame");
    }

    pub async fn send_binary(&mut self, b: Vec<u8>) {
        self.ws.send(Message::Binary(b.into())).await.expect("send frame");
    }

    pub async fn send_message(&mut self, channel: &str, text: &str, client_msg_id: &str) {
        self.send(json!({"type": "message:send", "channel_id": channel, "text": text, "client_msg_id": client_msg_id}))
            .await;
    }

    /// A frame that has already arrived, without waiting (not even for a timer tick); `None`
    /// if there is none (or the socket closed).
    pub fn try_next(&mut self) -> Option<Value> {
        if let Some(v) = self.buffered.pop_front() {
            return Some(v);
        }
        self.try_next_raw().map(|t| parse(&t))
    }

    /// Reads (and drops frames) until the server closes the socket, for at most `within`;
    /// returns its close code.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = std::time::Instant::now() + within;
        while self.closed.is_none() && std::time::Instant::now() < deadline {
            self.next(deadline.saturating_duration_since(std::time::Instant::now())).await;
        }
        self.closed.as_ref().map(|(code, _)| *code)
    }

    /// The next frame, or `None` after `timeout` or when the socket closed.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(v) = self.buffered.pop_front() {
            return Some(v);
        }
        self.next_raw(timeout).await.map(|t| parse(&t))
    }

    /// The next text frame unparsed (for load generators that only look for a marker), or
    /// `None` after `timeout` or when the socket closed. Frames already parsed come first.
    pub async fn next_text(&mut self, timeout: Duration) -> Option<String> {
        if let Some(v) = self.buffered.pop_front() {
            return Some(v.to_string());
        }
        self.next_raw(timeout).await.map(|t| t.as_str().to_string())
    }

    /// A text frame that has already arrived, unparsed, without waiting; `None` if there is
    /// none (or the socket closed).
    pub fn try_next_text(&mut self) -> Option<String> {
        if let Some(v) = self.buffered.pop_front() {
            return Some(v.to_string());
        }
        self.try_next_raw().map(|t| t.as_str().to_string())
    }

    fn try_next_raw(&mut self) -> Option<Utf8Bytes> {
        use futures::FutureExt;
        loop {
            let item = self.ws.next().now_or_never()?;
            match self.read(item) {
                Read::Text(t) => return Some(t),
                Read::Skip => continue,
                Read::End => return None,
            }
        }
    }

    async fn next_raw(&mut self, timeout: Duration) -> Option<Utf8Bytes> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let item = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()?;
            match self.read(item) {
                Read::Text(t) => return Some(t),
                Read::Skip => continue,
                Read::End => return None,
            }
        }
    }

    /// What one item from the socket is. The end is recorded in `closed`: the close frame's
    /// code and reason, or 1006 when the connection ended without one.
    fn read(&mut self, item: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Read {
        match item {
            Some(Ok(Message::Text(t))) => Read::Text(t),
            Some(Ok(Message::Close(f))) => {
                self.closed =
                    Some(f.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new())));
                Read::End
            }
            Some(Ok(_)) => Read::Skip,
            Some(Err(_)) | None => {
                self.closed.get_or_insert((1006, "connection lost".into()));
                Read::End
            }
        }
    }

    /// Sends the protocol's heartbeat if it has not in the last 20 s: the gateway closes a
    /// socket that sends nothing for 70 s, so a client that only listens calls this as it reads.
    /// False if the socket is gone.
    pub async fn keep_alive(&mut self) -> bool {
        if self.pinged.elapsed() < Duration::from_secs(20) {
            return true;
        }
        self.pinged = std::time::Instant::now();
        self.try_send(json!({"type": "ping"})).await
    }

    /// Sends a frame; false if the socket is gone.
    pub async fn try_send(&mut self, v: Value) -> bool {
        self.ws.send(Message::Text(v.to_string().into())).await.is_ok()
    }

    /// Waits for a frame of type `ty`, keeping other frames for later.
    pub async fn expect(&mut self, ty: &str, timeout: Duration) -> Value {
        let ty = ty.to_string();
        self.expect_where(&format!("`{ty}`"), timeout, |v| v["type"] == ty.as_str()).await
    }

    /// Sends a command frame with `client_msg_id` = `cmid` and waits for its answer (`ok`,
    /// `message:ack` or `error` carrying that id), keeping other frames for later.
    pub async fn command(&mut self, mut frame: Value, cmid: &str) -> Value {
        frame["client_msg_id"] = json!(cmid);
        self.send(frame).await;
        let cmid = cmid.to_string();
        self.expect_where(&format!("the answer to {cmid}"), Duration::from_secs(20), |v| {
            v["client_msg_id"] == cmid.as_str()
                && ["ok", "message:ack", "error"].contains(&v["type"].as_str().unwrap_or(""))
        })
        .await
    }

    /// Waits for a frame matching `pred`, keeping other frames for later.
    pub async fn expect_where(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = VecDeque::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // only read fresh frames here; the buffered ones were already checked
            let next = if let Some(v) = self.buffered.pop_front() { Some(v) } else { self.read_fresh(left).await };
            match next {
                Some(v) if pred(&v) => {
                    skipped.extend(self.buffered.drain(..));
                    self.buffered = skipped;
                    return v;
                }
                Some(v) => skipped.push_back(v),
                None => panic!("no {what} frame within {timeout:?}; got {skipped:?}"),
            }
        }
    }

    async fn read_fresh(&mut self, timeout: Duration) -> Option<Value> {
        let buffered = std::mem::take(&mut self.buffered);
        let v = self.next(timeout).await;
        self.buffered = buffered;
        v
    }

    /// Every frame until none arrives for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out: Vec<Value> = self.buffered.drain(..).collect();
        while let Some(v) = self.next(quiet).await {
            out.push(v);
        }
        out
    }

    /// Round-trips a ping: proves the connection is still usable.
    pub async fn ping(&mut self) {
        self.send(json!({"type": "ping", "id": 42})).await;
        let pong = self.expect("pong", Duration::from_secs(10)).await;
        assert_eq!(pong["id"], 42);
    }
}

/// One item read from the socket, as [`Client`]'s readers see it.
enum Read {
    Text(Utf8Bytes),
    Skip,
    End,
}

/// A server frame, checked against the WebSocket contract (`docs/asyncapi.yaml`).
fn parse(t: &Utf8Bytes) -> Value {
    let frame = serde_json::from_str(t.as_str()).expect("server frames are JSON");
    if crate::asyncapi::checking() {
        if let Err(drift) = crate::asyncapi::check_server_frame(&frame) {
            panic!("{drift}");
        }
    }
    frame
}
