//! Operators' tools, in both modes: rebuilding a projection from the log (also after the
//! projection was deleted, and after the replay itself was killed).

use confab_tests::stack::eventually;
use confab_tests::{Client, Mode, Stack};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

confab_tests::conformance!(
    replay_restores_a_deleted_timeline_exactly,
    a_replay_killed_mid_way_resumes_without_loss,
    lag_drains_to_zero_once_the_projectors_catch_up,
    a_search_rebuild_swaps_in_a_fresh_index_while_search_answers,
    a_replay_starts_from_a_timestamp_or_given_offsets,
    every_metric_is_documented_and_processes_and_routes_are_measured,
);

const T: Duration = Duration::from_secs(30);

/// Two channels with `n` messages each; returns (token, channels).
async fn populate(stack: &Stack, n: usize) -> (String, Vec<String>) {
    let ws = stack.create_workspace("ops").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let chans = vec![
        stack.create_channel(&ws, "one", false, &[&alice]).await,
        stack.create_channel(&ws, "two", true, &[&alice]).await,
    ];
    let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    // read while sending, as a client must: a socket that leaves more than
    // `gateway.send_buffer` frames unread is closed as a slow consumer
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        for i in chunk {
            for (c, ch) in chans.iter().enumerate() {
                a.send_message(ch, &format!("message {i} in {c}"), &format!("{c}-{i}")).await;
            }
        }
        for _ in 0..chunk.len() * chans.len() {
            a.expect("message:ack", T).await;
        }
        let _ = a.drain(Duration::from_millis(0)).await;
    }
    (token, chans)
}

async fn snapshot(stack: &Stack, token: &str, chans: &[String], n: usize) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for ch in chans {
        out.push(
            eventually(T, "timeline complete", || async {
                let h = stack.history_all("gw0", ch, token, 200).await;
                (h.len() >= n).then_some(h)
            })
            .await,
        );
    }
    out
}

/// An embedded replay needs the data directory, which `confab serve` holds: stop it first.
fn stop_serve_if_embedded(stack: &mut Stack) {
    if stack.single_process() {
        assert!(stack.terminate("serve").success());
    }
}

fn start_serve_if_embedded(stack: &mut Stack) {
    if stack.single_process() {
        stack.restart("serve");
    }
}

/// Runs `confab replay` to completion (the embedded mode needs `confab serve` stopped).
fn replay(stack: &Stack, args: &[&str]) -> Value {
    let mut all = vec!["replay", "--projection", "timeline"];
    all.extend_from_slice(args);
    let out = stack.confab(&all).output().expect("run confab replay");
    assert!(out.status.success(), "confab replay {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("replay timeline:"), "progress is shown: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("summary JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Runs `confab replay` on a pseudo-terminal (util-linux `script` gives it one) to completion;
/// returns what the terminal showed and the summary JSON.
fn replay_on_a_terminal(stack: &Stack, args: &[&str]) -> (String, Value) {
    let mut all = vec!["replay", "--projection", "timeline"];
    all.extend_from_slice(args);
    let replay = stack.confab(&all);
    let quoted = |word: &std::ffi::OsStr| format!("'{}'", word.to_string_lossy().replace('\'', r"'\''"));
    let words = std::iter::once(replay.get_program()).chain(replay.get_args());
    let command_line = words.map(quoted).collect::<Vec<_>>().join(" ");
    let mut script = std::process::Command::new("script");
    script.args(["--quiet", "--return", "--flush", "--command", &command_line, "/dev/null"]).stdin(Stdio::null());
    for (name, value) in replay.get_envs() {
        if let Some(value) = value {
            script.env(name, value);
        }
    }
    let out = script.output().expect("run confab replay under script");
    let terminal = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "confab replay {args:?} on a terminal failed:\n{terminal}");
    let summary = terminal.lines().map(|l| l.trim_start_matches('\r').trim()).find(|l| l.starts_with('{'));
    let summary = summary.unwrap_or_else(|| panic!("no summary JSON: {terminal:?}"));
    (terminal.clone(), serde_json::from_str(summary).unwrap())
}

async fn replay_restores_a_deleted_timeline_exactly(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let n = 150;
    let (token, chans) = populate(&stack, n).await;
    let before = snapshot(&stack, &token, &chans, n).await;
    stop_serve_if_embedded(&mut stack);
    // a first replay catches the replay group up to the end of the log
    let s = replay(&stack, &["--from", "earliest"]);
    assert_eq!(s["complete"], true);
    assert!(s["events"].as_u64().unwrap() >= 2 * n as u64, "{s}");
    // delete the projection: nothing is left to resume, so the timeline stays empty
    let s = replay(&stack, &["--truncate"]);
    assert_eq!(s["events"], 0, "{s}");
    start_serve_if_embedded(&mut stack);
    for ch in &chans {
        let (status, body) = stack.get("gw0", &format!("/api/channels/{ch}/messages"), &token).await;
        assert_eq!(status, 200);
        assert_eq!(body["messages"].as_array().unwrap().len(), 0, "the timeline was deleted");
    }
    // rebuild it from the log, as an operator at a terminal does: a bar, not lines
    stop_serve_if_embedded(&mut stack);
    let (terminal, s) = replay_on_a_terminal(&stack, &["--from", "earliest"]);
    assert_eq!((s["complete"].as_bool(), s["resumed_from"].as_i64()), (Some(true), Some(0)), "{s}");
    assert!(terminal.contains(&format!("replay timeline [{}] 100%", "#".repeat(30))), "a full bar: {terminal:?}");
    assert!(!terminal.contains("events/s, lag"), "no log lines on a terminal: {terminal:?}");
    start_serve_if_embedded(&mut stack);
    let after = snapshot(&stack, &token, &chans, n).await;
    assert_eq!(before, after, "the rebuilt timeline is identical");
}

async fn a_replay_killed_mid_way_resumes_without_loss(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let n = 300;
    let (token, chans) = populate(&stack, n).await;
    let before = snapshot(&stack, &token, &chans, n).await;
    stop_serve_if_embedded(&mut stack);
    // a throttled replay over a truncated timeline, killed after its second progress line
    let mut child = stack
        .confab(&["replay", "--projection", "timeline", "--from", "earliest", "--truncate", "--max-rate", "150"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn replay");
    let stderr = child.stderr.take().unwrap();
    let mut progress_lines = 0;
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains("events/s") {
            progress_lines += 1;
            if progress_lines == 2 {
                break;
            }
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    // resume: starts past zero, finishes the rest
    let s = replay(&stack, &[]);
    assert_eq!(s["complete"], true, "{s}");
    let resumed = s["resumed_from"].as_i64().unwrap();
    assert!(resumed > 0, "the second run resumed where the first stopped: {s}");
    assert!(s["events"].as_u64().unwrap() < (2 * n) as u64, "only the rest was replayed: {s}");
    start_serve_if_embedded(&mut stack);
    let after = snapshot(&stack, &token, &chans, n).await;
    assert_eq!(before, after, "nothing lost or doubled");
}

async fn lag_drains_to_zero_once_the_projectors_catch_up(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (_token, _chans) = populate(&stack, 100).await;
    let lag = eventually(Duration::from_secs(30), "lag 0", || async {
        let out = stack.confab(&["lag"]).env("CONFAB_GATEWAY__ADMIN_LISTEN", stack.admin_addr("gw0")).output().ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        let all_zero = v
            .as_object()
            .is_some_and(|m| m.contains_key("timeline") && m.contains_key("fanout") && m.values().all(|x| x == 0));
        all_zero.then_some(v)
    })
    .await;
    assert!(lag.get("timeline").is_some() && lag.get("fanout").is_some(), "{lag}");
    assert!(lag.get("erasure").is_some(), "the erasure projector's lag is shown: {lag}");
}

/// `/healthz` turns unhealthy while Redis is down and healthy again by itself when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_follows_a_dependency_going_down_and_coming_back() {
    if !confab_tests::servers_available(Mode::Distributed) {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let redis = |port: &str| {
        std::process::Command::new("redis-server")
            .args(["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server")
    };
    let mut r = redis(&port);
    std::thread::sleep(Duration::from_millis(300));
    let stack = Stack::start_with(Mode::Distributed, 1, Some(format!("redis://127.0.0.1:{port}/"))).await;
    let url = format!("http://{}/healthz", stack.admin_addr("gw0"));
    let health = || async {
        let resp = reqwest::get(&url).await.ok()?;
        Some((resp.status().as_u16(), resp.json::<Value>().await.ok()?))
    };
    eventually(T, "healthy", || async { health().await.filter(|(s, _)| *s == 200) }).await;
    r.kill().unwrap();
    let _ = r.wait();
    let (_, body) = eventually(T, "unhealthy", || async { health().await.filter(|(s, _)| *s == 503) }).await;
    assert_ne!(body["checks"]["fanout"], "ok", "{body}");
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    // the public /healthz says which check fails, never why (the error names servers)
    let public = format!("http://{}/healthz", stack.addr("gw0"));
    let resp = reqwest::get(&public).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let public: Value = resp.json().await.unwrap();
    assert_eq!(public["checks"]["fanout"], "failing", "{public}");
    assert!(!public.to_string().contains("127.0.0.1"), "{public}");
    let mut r = redis(&port);
    eventually(T, "healthy again", || async { health().await.filter(|(s, _)| *s == 200) }).await;
    r.kill().unwrap();
    let _ = r.wait();
}

async fn search_total(stack: &Stack, token: &str, q: &str) -> (u16, u64) {
    let (status, body) = stack.get("gw0", &format!("/api/search?q={q}"), token).await;
    (status, body["total"].as_u64().unwrap_or(0))
}

/// The distributed rebuild writes a fresh index while searches keep using the live one, then
/// swaps the alias; the embedded one (serve stopped) truncates and replays. Same results after.
async fn a_search_rebuild_swaps_in_a_fresh_index_while_search_answers(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let n = 100;
    let (token, _chans) = populate(&stack, n).await;
    eventually(T, "everything searchable", || async {
        (search_total(&stack, &token, "message").await.1 == 2 * n as u64).then_some(())
    })
    .await;
    stop_serve_if_embedded(&mut stack);
    let mut child = stack
        .confab(&["replay", "--projection", "search", "--rebuild", "--max-rate", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn replay");
    if !stack.single_process() {
        // the live index keeps answering, complete, for the whole rebuild
        let mut polls = 0;
        while child.try_wait().unwrap().is_none() {
            assert_eq!(search_total(&stack, &token, "message").await, (200, 2 * n as u64), "search during the rebuild");
            polls += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(polls >= 5, "the rebuild took long enough to be watched ({polls} polls)");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "rebuild failed:\n{}", String::from_utf8_lossy(&out.stderr));
    start_serve_if_embedded(&mut stack);
    assert_eq!(search_total(&stack, &token, "message").await, (200, 2 * n as u64), "the rebuilt index has everything");
    if !stack.single_process() {
        let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
        let fresh = summary["index"].as_str().unwrap().to_string();
        let url = confab_tests::Services::required().opensearch;
        let alias = format!("{}-messages", stack.keyspace().to_lowercase());
        let body: Value = reqwest::get(format!("{url}/{alias}/_alias")).await.unwrap().json().await.unwrap();
        let targets: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(targets, vec![&fresh], "the alias points at the fresh index alone: {body}");
        assert_eq!(summary["replaced"].as_array().unwrap().len(), 1, "{summary}");
        // and the live projector now writes into the fresh index
        let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
        let ch = &_chans[0];
        a.send_message(ch, "after the swap", "late").await;
        a.expect("message:ack", T).await;
        eventually(T, "new messages indexed after the swap", || async {
            (search_total(&stack, &token, "swap").await.1 == 1).then_some(())
        })
        .await;
    }
}

async fn a_replay_starts_from_a_timestamp_or_given_offsets(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let n = 20;
    let (token, chans) = populate(&stack, n).await;
    snapshot(&stack, &token, &chans, n).await;
    stop_serve_if_embedded(&mut stack);
    let later = (chrono::Utc::now().timestamp_millis() + 3_600_000).to_string();
    let s = replay(&stack, &["--from", &later]);
    assert_eq!(
        (s["events"].as_u64(), s["complete"].as_bool()),
        (Some(0), Some(true)),
        "nothing after a future time: {s}"
    );
    let s = replay(&stack, &["--from", "2020-01-01T00:00:00Z"]);
    assert!(s["events"].as_u64().unwrap() >= 2 * n as u64, "everything after 2020: {s}");
    // offsets: partition 0 from offset 0; partitions not named start at their beginning too
    let s = replay(&stack, &["--from", "0:0"]);
    assert!(s["events"].as_u64().unwrap() >= 2 * n as u64, "{s}");
    let out = stack.confab(&["replay", "--projection", "timeline", "--from", "yesterday"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"), "{}", String::from_utf8_lossy(&out.stderr));
    start_serve_if_embedded(&mut stack);
}

/// The fanout state lost (every Redis key of the namespace deleted, as a Redis that lost its
/// data): a resume then has nothing to replay and says where it stands; `confab replay
/// --projection fanout --from earliest` rebuilds the streams and the membership index, and a
/// resume from the start replays every message once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_fanout_state_is_rebuilt_from_the_log() {
    if !confab_tests::servers_available(Mode::Distributed) {
        return;
    }
    let stack = Stack::start(Mode::Distributed, 1).await;
    let n = 30;
    let (token, chans) = populate(&stack, n).await;
    let ch = &chans[0];
    let resume_from_start = || async {
        let mut c = Client::connect_resuming(&stack.addr("gw0"), &token).await.unwrap();
        c.send(serde_json::json!({"type": "resume", "channels": {ch: 0}})).await;
        let mut texts = Vec::new();
        loop {
            let f = c.next(T).await.expect("resume:done within the timeout");
            match f["type"].as_str() {
                Some("resume:done") => return (texts, f),
                Some("message:new") => texts.push(f["message"]["text"].as_str().unwrap().to_string()),
                _ => {}
            }
        }
    };
    let expected: Vec<String> = (0..n).map(|i| format!("message {i} in 0")).collect();
    let before = eventually(T, "the stream to hold every message", || async {
        let (texts, _) = resume_from_start().await;
        (texts == expected).then_some(texts)
    })
    .await;
    assert_eq!(before.len(), n);

    // the loss: every key of the namespace, gone
    let redis_url = stack.services.as_ref().unwrap().redis.clone();
    let mut conn = redis::Client::open(redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}:*", stack.namespace)).query_async(&mut conn).await.unwrap();
    assert!(!keys.is_empty(), "the namespace has keys");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    let (lost, _) = resume_from_start().await;
    assert!(lost.is_empty(), "nothing to replay once the stream is gone: {lost:?}");

    let out =
        stack.confab(&["replay", "--projection", "fanout", "--from", "earliest"]).output().expect("run confab replay");
    assert!(out.status.success(), "confab replay failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let (after, done) = resume_from_start().await;
    assert_eq!(after, expected, "every message once, in order, after the rebuild: {done}");
}

/// Issue 20, item 5 (in part): every metric a running Confab exports is in the operators'
/// table (docs/operators.md), and each process exports its build, its own process metrics and,
/// for gateways, a histogram per HTTP route.
async fn every_metric_is_documented_and_processes_and_routes_are_measured(mode: Mode) {
    // librdkafka's statistics every second, so each distributed process reports its brokers soon
    let stack = Stack::start_custom(mode, 1, None, &[("CONFAB_KAFKA__STATISTICS_INTERVAL_MS", "1000")]).await;
    let (token, _) = populate(&stack, 3).await;
    if !stack.single_process() {
        every_process_reports_its_kafka_brokers_up(&stack).await;
    }
    let (status, _) = stack.get("gw0", "/api/channels", &token).await;
    assert_eq!(status, 200);
    let (status, _) = stack.get("gw0", "/api/search?q=hello&limit=1", &token).await;
    assert_eq!(status, 200);

    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operators.md")).unwrap();
    let http = reqwest::Client::new();
    let mut gateway_metrics = String::new();
    for (process, addr) in stack.metrics_addrs() {
        let text = http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| name.starts_with("confab_") || name.starts_with("process_"))
            .collect();
        for name in &families {
            assert!(doc.contains(&format!("`{name}`")), "{process} exports `{name}`, missing from docs/operators.md");
        }
        for expected in ["confab_build_info", "process_cpu_seconds_total", "process_resident_memory_bytes"] {
            assert!(families.contains(&expected), "{process} exports no {expected}: {families:?}");
        }
        if process.starts_with("gw") || process == "serve" {
            gateway_metrics = text;
        }
    }
    let channels_route = gateway_metrics.lines().find(|l| {
        l.starts_with("confab_http_request_duration_seconds_count")
            && l.contains("route=\"/api/channels\"")
            && l.contains("status=\"200\"")
            && l.contains("listener=\"public\"")
    });
    assert!(channels_route.is_some(), "no histogram for GET /api/channels:\n{gateway_metrics}");
    let search_route = gateway_metrics.lines().any(|l| l.contains("route=\"/api/search\""));
    assert!(search_route, "no histogram for /api/search");
}

/// Every distributed process talks to Kafka, so each exports `confab_kafka_broker_up` (1 for its
/// broker) and a round-trip time once librdkafka has sent its first statistics report.
async fn every_process_reports_its_kafka_brokers_up(stack: &Stack) {
    let http = reqwest::Client::new();
    for (process, addr) in stack.metrics_addrs() {
        eventually(T, &format!("{process} reports its Kafka brokers"), || async {
            let text = http.get(format!("http://{addr}/metrics")).send().await.ok()?.text().await.ok()?;
            let up = text.lines().any(|l| l.starts_with("confab_kafka_broker_up{") && l.ends_with(" 1"));
            let rtt = text.lines().any(|l| l.starts_with("confab_kafka_broker_rtt_seconds{"));
            (up && rtt).then_some(())
        })
        .await;
    }
}
