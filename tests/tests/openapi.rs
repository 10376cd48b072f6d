//! The HTTP API's OpenAPI document (`GET /api/openapi.json`, generated from the handlers), in
//! both modes: it lists every route the public listener serves, and schemathesis, generating
//! requests from it against a running Confab with real data, finds no server error and no
//! answer that breaks the document (status, content type, headers, body schema).

use confab_tests::{Client, Mode, Stack};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

confab_tests::conformance!(
    the_openapi_documents_list_every_route,
    requests_axum_or_a_store_would_refuse_get_the_typed_error,
    schemathesis_finds_no_server_error_and_no_schema_violation,
);

/// Routes the public listener serves that the document leaves out, and why.
const UNDOCUMENTED: [(&str, &str); 0] = [];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(METHOD, path)` of every `.route(...)` in `source`: the path literal, and each method
/// router (`get(`, `.post(`, `routing::put(`, ...) up to the next route.
fn routes_in(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for declaration in source.split(".route(\"").skip(1) {
        let Some((path, rest)) = declaration.split_once('"') else { continue };
        let rest = rest.split([';']).next().unwrap_or(rest);
        let rest = rest.split(".route").next().unwrap_or(rest);
        for method in ["get", "post", "put", "delete", "patch"] {
            let needle = format!("{method}(");
            let found = rest
                .match_indices(&needle)
                .any(|(at, _)| at == 0 || matches!(rest.as_bytes()[at - 1], b' ' | b'(' | b'.' | b':' | b',' | b'\n'));
            if found {
                routes.insert((method.to_uppercase(), path.to_string()));
            }
        }
    }
    routes
}

/// The routes of the public listener, read from the code that declares them: the gateway's
/// router, the health probes' public router, the platform's push routes.
fn public_routes() -> BTreeSet<(String, String)> {
    let read = |path: &str| std::fs::read_to_string(repo_root().join(path)).unwrap();
    let mut routes = routes_in(&read("gateway/src/router.rs"));
    let gateway_public = routes.clone();
    let telemetry = read("core/src/telemetry.rs");
    let public_probes = telemetry.split("pub fn public_router").nth(1).unwrap().split("\npub fn").next().unwrap();
    routes.extend(routes_in(public_probes));
    routes.extend(routes_in(&read("confab/src/platform.rs")));
    routes.extend(routes_in(
        &read("gateway/src/openapi.rs").replace("PUBLIC_DOCUMENT_PATH, get(", "\"/api/openapi.json\", get("),
    ));
    // the scan itself works: what the gateway's router is known to hold
    for expected in [("GET", "/api/channels/{channel_id}/messages"), ("DELETE", "/api/files/{file_id}"), ("GET", "/ws")]
    {
        let expected = (expected.0.to_string(), expected.1.to_string());
        assert!(gateway_public.contains(&expected), "the route scan missed {expected:?}: {gateway_public:?}");
    }
    routes
}

/// The admin listener's routes: the admin router's and the admin document's.
fn admin_routes() -> BTreeSet<(String, String)> {
    let read = |path: &str| std::fs::read_to_string(repo_root().join(path)).unwrap();
    let mut routes = routes_in(&read("gateway/src/admin/mod.rs"));
    assert!(
        routes.contains(&("DELETE".to_string(), "/admin/workspaces/{ws}".to_string())),
        "the scan works: {routes:?}"
    );
    let openapi = read("gateway/src/openapi.rs").replace("ADMIN_DOCUMENT_PATH, get(", "\"/admin/openapi.json\", get(");
    routes.extend(routes_in(&openapi).into_iter().filter(|(_, path)| path.starts_with("/admin/")));
    routes
}

/// `(METHOD, path)` of every operation in an OpenAPI document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

async fn fetch_document(address: &str, path: &str) -> Value {
    let url = format!("http://{address}{path}");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

async fn the_openapi_documents_list_every_route(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let document = fetch_document(&stack.addr("gw0"), "/api/openapi.json").await;
    assert_eq!(document["openapi"], "3.1.0");
    let documented = operations(&document);
    for route in public_routes() {
        if UNDOCUMENTED.iter().any(|(path, _)| *path == route.1) {
            continue;
        }
        assert!(documented.contains(&route), "{} {} is served but missing from /api/openapi.json", route.0, route.1);
    }
    // every operation under /api/ takes the bearer token and says what its errors look like
    let history = &document["paths"]["/api/channels/{channel_id}/messages"]["get"];
    assert_eq!(history["security"][0]["user_token"], serde_json::json!([]), "{history}");
    assert_eq!(
        history["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    let limit = history["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!((limit["schema"]["minimum"].as_i64(), limit["schema"]["maximum"].as_i64()), (Some(1), Some(200)));

    let admin = fetch_document(&stack.admin_addr("gw0"), "/admin/openapi.json").await;
    let documented = operations(&admin);
    for route in admin_routes() {
        assert!(documented.contains(&route), "{} {} is served but missing from /admin/openapi.json", route.0, route.1);
    }
    let open = &admin["paths"]["/admin/keys/open"]["post"];
    assert_eq!(open["security"][0]["reader_key"], serde_json::json!([]), "data teams use the reader key: {open}");
}

/// The schemathesis the test command installs (next to `CONFAB_PYTHON`); without it the test is
/// skipped, unless servers are required.
fn schemathesis() -> Option<PathBuf> {
    let from_python = std::env::var("CONFAB_PYTHON").ok().map(|p| Path::new(&p).with_file_name("schemathesis"));
    match from_python.filter(|p| p.exists()) {
        Some(path) => Some(path),
        None if std::env::var("CONFAB_REQUIRE_SERVERS").is_ok() => {
            panic!("schemathesis is required: install it in the CONFAB_PYTHON environment (scripts/test.sh does)")
        }
        None => {
            eprintln!("skipping: no schemathesis next to CONFAB_PYTHON");
            None
        }
    }
}

/// Examples per operation and phase: enough to reach each parameter's edges and some random
/// ones, few enough that a run takes a minute or two.
const EXAMPLES_PER_OPERATION: &str = "30";

async fn schemathesis_finds_no_server_error_and_no_schema_violation(mode: Mode) {
    let Some(schemathesis) = schemathesis() else { return };
    let stack = Stack::start(mode, 1).await;
    // real data for the generated requests to find: a channel with a thread, a second user
    let ws = stack.create_workspace("fuzzed").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let (bob, _) = stack.create_user(&ws, "bob").await;
    let channel = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let mut client = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    client.send_message(&channel, "the parent of a thread", "parent").await;
    let ack = client.expect("message:ack", Duration::from_secs(30)).await;
    let parent = ack["message_id"].as_str().unwrap().to_string();
    let (status, _) = stack.get("gw0", &format!("/api/channels/{channel}/messages"), &token).await;
    assert_eq!(status, 200);

    // the channel and message every generated request names are real; everything else varies
    let parameters = [
        ("path.channel_id", channel.clone()),
        ("path.message_id", parent),
        ("query.user_ids", format!("{alice},{bob}")),
    ];
    run_schemathesis(&schemathesis, mode, &stack.addr("gw0"), "/api/openapi.json", &token, &parameters);

    // the admin API, in a workspace of its own (the generated requests delete it, too)
    let admin_ws = stack.create_workspace("administered").await;
    let (carol, _) = stack.create_user(&admin_ws, "carol").await;
    let parameters = [("path.ws", admin_ws), ("path.user", carol)];
    run_schemathesis(
        &schemathesis,
        mode,
        &stack.admin_addr("gw0"),
        "/admin/openapi.json",
        &stack.admin_key,
        &parameters,
    );
}

/// Runs schemathesis against the document at `document_path` on `address`, each request with
/// `token` and with `parameters` (`location.name`) fixed; fails on anything it finds.
fn run_schemathesis(
    schemathesis: &Path,
    mode: Mode,
    address: &str,
    document_path: &str,
    token: &str,
    parameters: &[(&str, String)],
) {
    let run_dir = tempfile::tempdir().unwrap();
    let mut config = String::from("[parameters]\n");
    for (name, value) in parameters {
        config.push_str(&format!("\"{name}\" = \"{value}\"\n"));
    }
    let config_path = run_dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config).unwrap();
    let base = format!("http://{address}");
    let output = std::process::Command::new(schemathesis)
        .current_dir(run_dir.path())
        .arg("--config-file")
        .arg(&config_path)
        .args(["run", &format!("{base}{document_path}"), "--url", &base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--max-examples", EXAMPLES_PER_OPERATION, "--seed", "20261206", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // what the document cannot state (one of cursor/after/around; a search's grammar) is a
        // 400 for data the schema allows: checked by the negative cases instead
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        // a WebSocket handshake is not something a request generator can make
        .args(["--exclude-path", "/ws"])
        .args(["--request-timeout", "20", "--no-color", "--generation-database", "none"])
        .output()
        .expect("run schemathesis");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let summary: Vec<&str> = report.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    eprintln!("schemathesis, {document_path} ({mode:?}):\n{}", summary.join("\n"));
    assert!(output.status.success(), "schemathesis found problems:\n{report}");
    assert!(report.contains("passed"), "schemathesis ran no test case:\n{report}");
}

/// What axum's extractors refuse by themselves (a plain GET to the WebSocket route, a path
/// segment that is no UUID) is answered with the documented error body, not axum's plain text;
/// a message id that is no TIMEUUID is refused before Cassandra sees it (schemathesis found it
/// answered 500 in the distributed mode).
async fn requests_axum_or_a_store_would_refuse_get_the_typed_error(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("plain").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let channel = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", stack.addr("gw0"));
    let not_a_message = uuid::Uuid::new_v4();
    let history = format!("{base}/api/channels/{channel}/messages");
    let requests = [
        http.get(format!("{history}?cursor={not_a_message}")).bearer_auth(&token),
        http.get(format!("{history}?around={not_a_message}")).bearer_auth(&token),
        http.get(format!("{history}/{not_a_message}/replies")).bearer_auth(&token),
        http.get(format!("{base}/ws")).bearer_auth(&token),
        http.get(format!("{base}/blobs/not-a-uuid/also-not?op=get&exp=1&sig=x")),
        http.put(format!("{base}/blobs/incoming/not-a-uuid/x?op=put&exp=1&sig=x")).body("bytes"),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        assert_eq!((status, content_type.as_deref()), (400, Some("application/json")), "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_field", "{body}");
    }
}
