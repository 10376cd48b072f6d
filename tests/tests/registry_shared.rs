//! Several schema registries serve one state (issue 17, "no single instance of anything"):
//! `confab registry --shared` keeps its changes in Kafka (`<ns>._schemas`), and every instance
//! applies them in the same order. Two instances answer alike for what either registered; of
//! two versions registered at once on different instances that fit the subject but not each
//! other, exactly one is accepted, the same one everywhere; a compatibility setting holds
//! everywhere; an instance started later rebuilds everything from the topic and goes on
//! numbering from it.

use confab_tests::{servers_available, Mode, Stack};
use serde_json::{json, Value};

const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
const X: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":1}]}"#;
const Y: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string","default":"x"}]}"#;

/// The write key of the stack under test (`registry.write_key`), which writes need.
static WRITE_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn call(addr: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("http://{addr}{path}"));
    if let Some(key) = WRITE_KEY.get() {
        req = req.bearer_auth(key);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/vnd.schemaregistry.v1+json").body(b.to_string());
    }
    let r = req.send().await.expect("registry answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn register(addr: &str, subject: &str, schema: &str) -> (u16, Value) {
    let path = format!("/subjects/{subject}/versions");
    call(addr, reqwest::Method::POST, &path, Some(json!({"schema": schema}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_sharing_a_kafka_log_serve_one_state() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let mut stack = Stack::start(Mode::Distributed, 1).await;
    let args = ["registry", "--listen", "127.0.0.1:0", "--shared"];
    stack.spawn_with_env("registry-a", &args, &[]);
    stack.spawn_with_env("registry-b", &args, &[]);
    let (a, b) = (stack.addr("registry-a"), stack.addr("registry-b"));
    let (status, refused) = register(&a, "t-value", V1).await;
    assert_eq!((status, &refused["error_code"]), (401, &json!(40101)), "no write without the key: {refused}");
    WRITE_KEY.set(stack.registry_write_key.clone()).unwrap();

    let (status, first) = register(&a, "t-value", V1).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_u64().unwrap();
    let (status, by_id) = call(&b, reqwest::Method::GET, &format!("/schemas/ids/{id}"), None).await;
    assert_eq!((status, by_id["schema"].as_str()), (200, Some(V1)), "the other instance serves it");

    // X and Y each fit V1, not each other: registered at once on the two instances
    let ((sx, vx), (sy, vy)) = tokio::join!(register(&a, "t-value", X), register(&b, "t-value", Y));
    let mut statuses = [sx, sy];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "exactly one accepted: {vx} {vy}");
    let accepted = if sx == 200 { X } else { Y };
    for addr in [&a, &b] {
        let (_, versions) = call(addr, reqwest::Method::GET, "/subjects/t-value/versions", None).await;
        assert_eq!(versions, json!([1, 2]), "{addr}");
        let (_, latest) = call(addr, reqwest::Method::GET, "/subjects/t-value/versions/latest", None).await;
        assert_eq!(latest["schema"], accepted, "{addr}");
    }

    // a compatibility setting made on one instance holds on the other
    let (status, _) = call(&b, reqwest::Method::PUT, "/config/t-value", Some(json!({"compatibility": "NONE"}))).await;
    assert_eq!(status, 200);
    let (_, level) = call(&a, reqwest::Method::GET, "/config/t-value", None).await;
    assert_eq!(level["compatibilityLevel"], "NONE");

    // an instance started later, and one restarted, rebuild it all from the topic
    stack.kill("registry-a");
    stack.spawn_with_env("registry-c", &args, &[]);
    let c = stack.addr("registry-c");
    let (_, subjects) = call(&c, reqwest::Method::GET, "/subjects", None).await;
    assert_eq!(subjects, json!(["t-value"]));
    let (_, latest) = call(&c, reqwest::Method::GET, "/subjects/t-value/versions/latest", None).await;
    assert_eq!((latest["version"].as_u64(), latest["schema"].as_str()), (Some(2), Some(accepted)));
    let (status, v3) = register(&c, "t-value", r#"{"type":"string"}"#).await;
    assert_eq!((status, v3["id"].as_u64()), (200, Some(3)), "ids go on from the shared state: {v3}");
}
