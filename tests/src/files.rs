//! Sharing files through the HTTP API as a client does: ask for an upload, `PUT` the bytes to
//! the URL handed out, complete it.

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

use crate::Stack;

/// Asks for an upload; returns the answer (status 201 asserted). The membership index that
/// authorizes it is a projection: right after a channel is created it may lag for a moment, so
/// `channel_not_found` (private channel) and `not_a_member` (public one) are retried briefly.
pub async fn grant(stack: &Stack, token: &str, channel: &str, name: &str, size: usize, content_type: &str) -> Value {
    let body = json!({"channel_id": channel, "name": name, "size": size, "content_type": content_type});
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = stack.call(Method::POST, "gw0", "/api/files", token, Some(body.clone())).await;
        let lagging = matches!(v["error"]["code"].as_str(), Some("channel_not_found" | "not_a_member"));
        if lagging && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, 201, "upload grant: {v}");
        return v;
    }
}

/// `PUT`s bytes to a granted upload URL with its headers; returns the HTTP status.
pub async fn put(grant: &Value, bytes: Vec<u8>) -> u16 {
    let mut req = reqwest::Client::new().put(grant["upload"]["url"].as_str().unwrap()).body(bytes);
    for (k, v) in grant["upload"]["headers"].as_object().unwrap() {
        req = req.header(k.as_str(), v.as_str().unwrap());
    }
    req.send().await.expect("upload").status().as_u16()
}

pub async fn complete(stack: &Stack, token: &str, grant: &Value) -> (u16, Value) {
    let path = format!("/api/files/{}/complete", grant["file_id"].as_str().unwrap());
    stack.call(Method::POST, "gw0", &path, token, Some(json!({"upload_token": grant["upload_token"]}))).await
}

/// Uploads and completes a file; returns its id.
pub async fn share(stack: &Stack, token: &str, channel: &str, name: &str, bytes: &[u8], content_type: &str) -> String {
    let g = grant(stack, token, channel, name, bytes.len(), content_type).await;
    assert_eq!(put(&g, bytes.to_vec()).await, 200, "upload of {name}");
    let (status, v) = complete(stack, token, &g).await;
    assert_eq!(status, 201, "completion of {name}: {v}");
    assert_eq!(v["file"]["name"], name);
    g["file_id"].as_str().unwrap().to_string()
}
