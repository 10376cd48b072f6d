//! What a gateway shows to whoever can reach it (issue 16, "secrets and admin surface"): no
//! default secret works, the admin API, the registry's writes and `/metrics` are on the admin
//! listener only, the public `/healthz` names no errors, and the embedded gateway answers only
//! for its own host names.

use confab_tests::{conformance, Mode, Stack};
use serde_json::{json, Value};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

conformance!(the_admin_api_and_metrics_answer_only_on_the_admin_listener, no_public_or_empty_admin_key_is_accepted,);

async fn post(url: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new().post(url).bearer_auth(key).json(&body).send().await.expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn the_admin_api_and_metrics_answer_only_on_the_admin_listener(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (public, admin) = (stack.addr("gw0"), stack.admin_addr("gw0"));
    let body = json!({"name": "acme"});
    let (status, v) = post(&format!("http://{public}/admin/workspaces"), &stack.admin_key, body.clone()).await;
    assert_eq!(status, 404, "the admin API is not on the public listener: {v}");
    let (status, v) = post(&format!("http://{admin}/admin/workspaces"), &stack.admin_key, body).await;
    assert_eq!(status, 201, "{v}");
    let metrics = |addr: String| async move {
        let r = reqwest::get(format!("http://{addr}/metrics")).await.expect("metrics");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    let (status, text) = metrics(public.clone()).await;
    assert!(status == 404 && !text.contains("confab_gateway_connections"), "{status}: {text:.200}");
    let (status, text) = metrics(admin.clone()).await;
    assert!(status == 200 && text.contains("confab_gateway_connections"), "{status}");
    let health: Value = reqwest::get(format!("http://{public}/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
}

async fn no_public_or_empty_admin_key_is_accepted(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let url = format!("http://{}/admin/workspaces", stack.admin_addr("gw0"));
    for key in ["", "confab-dev-admin-key", confab_core::config::INSECURE_DEV_ADMIN_KEY, "wrong"] {
        let (status, v) = post(&url, key, json!({"name": "acme"})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (401, Some("unauthorized")), "key {key:?}: {v}");
    }
}

/// The embedded registry: reads are public, registering and changing compatibility are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_registry_takes_writes_on_the_admin_listener_only() {
    let stack = Stack::start(Mode::Embedded, 1).await;
    let http = reqwest::Client::new();
    let schema = json!({"schema": r#"{"type":"record","name":"X","fields":[{"name":"a","type":"string"}]}"#});
    let subjects = http.get(format!("{}/subjects", stack.registry_url)).send().await.unwrap();
    assert_eq!(subjects.status().as_u16(), 200, "reads stay public");
    let register = |base: String| {
        let http = http.clone();
        let schema = schema.clone();
        async move { http.post(format!("{base}/subjects/x-value/versions")).json(&schema).send().await.unwrap() }
    };
    assert_eq!(register(stack.registry_url.clone()).await.status().as_u16(), 405);
    let level = json!({"compatibility": "NONE"});
    let put = http.put(format!("{}/config", stack.registry_url)).json(&level).send().await.unwrap();
    assert_eq!(put.status().as_u16(), 405, "nobody flips compatibility from the public port");
    assert_eq!(register(stack.registry_admin_url.clone()).await.status().as_u16(), 200);
}

/// DNS rebinding: a page on another host name that resolves to 127.0.0.1 gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_gateway_answers_only_its_own_host_names() {
    let stack = Stack::start(Mode::Embedded, 1).await;
    let addr = stack.addr("gw0");
    let port = addr.rsplit(':').next().unwrap();
    let get = |host: String| {
        let url = format!("http://{addr}/healthz");
        async move { reqwest::Client::new().get(url).header("host", host).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(format!("localhost:{port}")).await, 200);
    assert_eq!(get(format!("127.0.0.1:{port}")).await, 200);
    assert_eq!(get(format!("attacker.example:{port}")).await, 421);
    assert_eq!(get("attacker.example".into()).await, 421);
}

/// A `confab serve` on `data` with no secrets configured, and its stdout and stderr once it
/// exits or has run for `wait`.
fn serve_briefly(data: &std::path::Path, wait: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(confab_tests::stack::confab_bin())
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONFAB_DATA_DIR", data)
        .env("CONFAB_GATEWAY__LISTEN", "127.0.0.1:0")
        .env("CONFAB_GATEWAY__ADMIN_LISTEN", "127.0.0.1:0")
        .env("CONFAB_NO_DEMO", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn confab serve");
    let deadline = Instant::now() + wait;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    (code, out)
}

#[test]
fn embedded_secrets_are_generated_private_and_an_unusable_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_, out) = serve_briefly(&data, Duration::from_secs(5));
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data.clone()), 0o700, "{out}");
    for name in ["token_secret", "admin_key"] {
        assert_eq!(mode(data.join(name)), 0o600, "{name}");
        assert!(std::fs::read_to_string(data.join(name)).unwrap().trim().len() >= 32, "{name}");
    }
    std::fs::write(data.join("admin_key"), "").unwrap();
    let (code, out) = serve_briefly(&data, Duration::from_secs(20));
    assert!(code.is_some_and(|c| c != 0), "an empty admin key file must stop the start: {out}");
    assert!(out.contains("admin_key") && out.contains("empty"), "{out}");
}

#[test]
fn a_distributed_gateway_refuses_to_start_without_secrets() {
    let out = Command::new(confab_tests::stack::confab_bin())
        .arg("gateway")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONFAB_KAFKA__BROKERS", "127.0.0.1:1")
        .output()
        .expect("run confab gateway");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("auth.token_secret") && text.contains("--insecure-dev"), "{text}");
    let out = Command::new(confab_tests::stack::confab_bin())
        .arg("gateway")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONFAB_KAFKA__BROKERS", "127.0.0.1:1")
        .env("CONFAB_AUTH__TOKEN_SECRET", confab_core::config::INSECURE_DEV_TOKEN_SECRET)
        .env("CONFAB_AUTH__ADMIN_KEY", confab_core::config::INSECURE_DEV_ADMIN_KEY)
        .output()
        .expect("run confab gateway");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("public development secret"), "{text}");
}
