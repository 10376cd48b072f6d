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

conformance!(
    the_admin_api_and_metrics_answer_only_on_the_admin_listener,
    no_public_or_empty_admin_key_is_accepted,
    the_admin_listener_answers_addresses_and_no_rebound_name,
);

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

/// DNS rebinding against the admin listener: a page whose name resolves to 127.0.0.1 reaches
/// neither the admin API nor `/metrics`; an address (what scrapers and operators use) does.
async fn the_admin_listener_answers_addresses_and_no_rebound_name(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let admin = stack.admin_addr("gw0");
    let port = admin.rsplit(':').next().unwrap();
    let http = reqwest::Client::new();
    for host in [format!("attacker.example:{port}"), "127.0.0.1.attacker.example".into()] {
        let metrics = http.get(format!("http://{admin}/metrics")).header("host", &host).send().await.unwrap();
        assert_eq!(metrics.status().as_u16(), 421, "{host}");
        let create = http
            .post(format!("http://{admin}/admin/workspaces"))
            .header("host", &host)
            .bearer_auth(&stack.admin_key)
            .json(&json!({"name": "acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(create.status().as_u16(), 421, "{host}");
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let metrics = http.get(format!("http://{admin}/metrics")).header("host", &host).send().await.unwrap();
        assert_eq!(metrics.status().as_u16(), 200, "{host}");
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
    let register = |base: String, key: &str| {
        let key = key.to_string();
        let http = http.clone();
        let schema = schema.clone();
        async move {
            let post = http.post(format!("{base}/subjects/x-value/versions")).bearer_auth(key).json(&schema);
            post.send().await.unwrap()
        }
    };
    assert_eq!(register(stack.registry_url.clone(), "").await.status().as_u16(), 405);
    let level = json!({"compatibility": "NONE"});
    let put = http.put(format!("{}/config", stack.registry_url)).json(&level).send().await.unwrap();
    assert_eq!(put.status().as_u16(), 405, "nobody flips compatibility from the public port");
    // on the admin listener, only with the admin key
    for key in ["", "wrong"] {
        assert_eq!(register(stack.registry_admin_url.clone(), key).await.status().as_u16(), 401, "{key:?}");
        let put = http.put(format!("{}/config", stack.registry_admin_url)).bearer_auth(key).json(&level);
        assert_eq!(put.send().await.unwrap().status().as_u16(), 401, "{key:?}");
    }
    let level_now: Value =
        http.get(format!("{}/config", stack.registry_url)).send().await.unwrap().json().await.unwrap();
    assert_ne!(level_now["compatibilityLevel"], "NONE", "a refused write changed nothing");
    assert_eq!(register(stack.registry_admin_url.clone(), &stack.admin_key).await.status().as_u16(), 200);
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

/// Ingest checks the gateways' signatures with the token secret: it refuses to start without
/// one, or with the public development one, rather than refusing every command as forged.
#[test]
fn distributed_ingest_refuses_to_start_without_the_token_secret() {
    let ingest = |secret: Option<&str>| {
        let mut command = Command::new(confab_tests::stack::confab_bin());
        command.arg("ingest").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("CONFAB_KAFKA__BROKERS", "127.0.0.1:1");
        if let Some(secret) = secret {
            command.env("CONFAB_AUTH__TOKEN_SECRET", secret);
        }
        let out = command.output().expect("run confab ingest");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, text) = ingest(None);
    assert!(!ok && text.contains("auth.token_secret") && text.contains("--insecure-dev"), "{text}");
    let (ok, text) = ingest(Some(confab_core::config::INSECURE_DEV_TOKEN_SECRET));
    assert!(!ok && text.contains("public development secret"), "{text}");
}

/// A `confab registry` of its own (file-backed, no other server), with `env`; its address once
/// it announces it, or its exit status and output if it exits first.
fn registry(data: &std::path::Path, env: &[(&str, &str)]) -> Result<(std::process::Child, String), String> {
    let mut child = Command::new(confab_tests::stack::confab_bin())
        .args(["registry", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn confab registry");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let announced: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
    match announced["addr"].as_str().filter(|_| announced["event"] == "listening") {
        Some(addr) => Ok((child, addr.to_string())),
        None => {
            let status = child.wait().unwrap();
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            Err(format!("{status}: {line}{err}"))
        }
    }
}

/// `confab registry` (distributed mode's): no write key, no start; with one, reads are open and
/// writes need it; and its listener has the gateway's bounds (a client trickling its headers is
/// cut off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_registry_takes_writes_only_with_its_key_and_bounds_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let refused = registry(dir.path(), &[]).expect_err("a registry without a write key must not start");
    assert!(refused.contains("registry.write_key"), "{refused}");

    let key = format!("registry-{}", uuid::Uuid::new_v4().simple());
    let env = [("CONFAB_REGISTRY__WRITE_KEY", key.as_str()), ("CONFAB_GATEWAY__HTTP_HEADER_TIMEOUT_MS", "500")];
    let (mut child, addr) = registry(dir.path(), &env).expect("registry starts");
    let http = reqwest::Client::new();
    let schema = json!({"schema": r#"{"type":"record","name":"X","fields":[{"name":"a","type":"string"}]}"#});
    let register = |key: String| {
        let post = http.post(format!("http://{addr}/subjects/x-value/versions")).bearer_auth(key).json(&schema);
        async move { post.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(register(String::new()).await, 401);
    assert_eq!(register("wrong".into()).await, 401);
    let put = http.put(format!("http://{addr}/config")).json(&json!({"compatibility": "NONE"}));
    assert_eq!(put.send().await.unwrap().status().as_u16(), 401);
    assert_eq!(register(key.clone()).await, 200);
    let subjects: Value = http.get(format!("http://{addr}/subjects")).send().await.unwrap().json().await.unwrap();
    assert_eq!(subjects, json!(["x-value"]), "reads need no key");

    // a client that never finishes its headers is closed after the header timeout
    let started = Instant::now();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /subjects HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(&mut slow, &mut buf)).await;
    assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "the slow client was not cut off within 10 s");
    assert!(started.elapsed() < Duration::from_secs(5), "cut off after {:?}", started.elapsed());
    let _ = child.kill();
    let _ = child.wait();
}

/// Every `confab_` metric named in the source of the Confab crates, quoted (`"confab_..."`).
fn metric_names_in_sources(root: &std::path::Path) -> String {
    let mut sources = String::new();
    for crate_dir in ["core", "gateway", "ingest", "projectors", "notifier", "embedded", "distributed", "confab"] {
        let out =
            Command::new("grep").args(["-rhoE", "\"confab_[a-z_]+\""]).arg(root.join(crate_dir)).output().unwrap();
        sources.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    assert!(sources.contains("\"confab_projector_dead_letters_total\""), "the source scan works");
    sources
}

/// Whether a series name in a query is a metric the sources define (a histogram's series are
/// its family's name with `_count`, `_sum` or `_bucket`).
fn is_defined(sources: &str, series: &str) -> bool {
    let family = ["_count", "_sum", "_bucket"].iter().find_map(|s| series.strip_suffix(s)).unwrap_or(series);
    sources.contains(&format!("\"{series}\"")) || sources.contains(&format!("\"{family}\""))
}

/// Every `confab_` word in a PromQL expression.
fn confab_series_in(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("confab_"))
}

/// Every metric the Grafana dashboard (`deploy/grafana/confab.json`) queries is one a Confab
/// process defines: a renamed metric cannot leave a panel empty. (scripts/check-deploy.sh
/// parses each query with promtool.)
#[test]
fn the_shipped_dashboard_queries_metrics_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources = metric_names_in_sources(&root);
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("deploy/grafana/confab.json")).unwrap()).unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for series in confab_series_in(expr) {
                assert!(
                    is_defined(&sources, series),
                    "panel {} queries {series}, which no process defines",
                    panel["title"]
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 20, "the dashboard has {queries} queries");
}

/// Every metric the shipped alert rules (`deploy/alerts.yml`) name is one a Confab process
/// defines, and each rule has an expression: a renamed metric cannot silence an alert.
#[test]
fn the_shipped_alert_rules_name_metrics_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rules = std::fs::read_to_string(root.join("deploy/alerts.yml")).unwrap();
    let sources = metric_names_in_sources(&root);
    let alerts = rules.matches("- alert:").count();
    assert!(alerts >= 5 && rules.matches("expr:").count() == alerts, "one expression per alert");
    let mut named = 0;
    for expr in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        for word in confab_series_in(expr) {
            assert!(is_defined(&sources, word), "alert names {word}, which no process defines");
            named += 1;
        }
    }
    assert!(named >= alerts, "every alert names a confab metric");
}

/// docker-compose.yml publishes no credential: every secret comes from `.env` (`${VAR:?...}`).
#[test]
fn docker_compose_publishes_no_credential() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let secret_words = ["SECRET", "KEY", "PASSWORD", "TOKEN"];
    let mut checked = 0;
    for line in compose.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim().trim_start_matches("- ");
        if !secret_words.iter().any(|w| name.to_ascii_uppercase().contains(w)) || value.trim().is_empty() {
            continue;
        }
        let value = value.trim();
        assert!(value.starts_with("${") && value.contains(":?"), "{name} has a value in the file: {value}");
        checked += 1;
    }
    assert!(checked >= 4, "the secrets were found: {checked}");
}
