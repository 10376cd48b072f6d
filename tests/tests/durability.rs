//! What the API has answered is durable (issue 16, item 16): workspaces, users, push devices and
//! preferences. Embedded: each such write is fsynced before its answer, seen in the process's
//! system calls (a `kill -9` cannot show it: the page cache survives the process; only a power
//! loss would not). Distributed: push registrations live in Cassandra, so a Redis restart
//! (Redis keeps nothing on disk here) loses none of them.

use confab_tests::{servers_available, Mode, Stack};
use reqwest::Method;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `strace` attached to `pid`, recording syncs and socket writes with timestamps.
struct Trace {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Trace {
    fn attach(pid: u32, out: std::path::PathBuf) -> Trace {
        let child = Command::new("strace")
            .args(["-f", "-tt", "-e", "trace=fsync,fdatasync,writev,sendto,write", "-o"])
            .arg(&out)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strace (scripts/test.sh installs it)");
        // attaching to every thread takes a moment
        std::thread::sleep(Duration::from_millis(1500));
        Trace { child, out }
    }

    /// Detaches and returns the trace's lines.
    fn finish(mut self) -> Vec<String> {
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.out).unwrap().lines().map(str::to_string).collect()
    }
}

/// For each HTTP answer in the trace, whether a sync came after the answer before it.
fn synced_before_each_answer(lines: &[String]) -> Vec<bool> {
    let mut out = Vec::new();
    let mut synced = false;
    for line in lines {
        if line.contains("fsync(") || line.contains("fdatasync(") {
            synced = true;
        } else if line.contains("HTTP/1.1 20") {
            out.push(synced);
            synced = false;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_directory_write_is_on_disk_before_its_answer() {
    let stack = Stack::start(Mode::Embedded, 1).await;
    let ws = stack.create_workspace("warm-up").await;
    let _ = stack.create_user(&ws, "warm-up").await;
    let trace =
        Trace::attach(stack.pid("serve"), std::env::temp_dir().join(format!("confab-trace-{}", uuid::Uuid::new_v4())));
    let ws = stack.create_workspace("acme").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, token) = stack.create_user(&ws, "alice").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let device = json!({"platform": "fcm", "token": "device-token"});
    let (status, v) = stack.call(Method::POST, "gw0", "/api/devices", &token, Some(device)).await;
    assert_eq!(status, 201, "{v}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let prefs = json!({"level": "all", "muted_channels": []});
    let (status, v) = stack.call(Method::PUT, "gw0", "/api/notifications", &token, Some(prefs)).await;
    assert!(status < 300, "{status}: {v}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = trace.finish();
    let answers = synced_before_each_answer(&lines);
    assert_eq!(answers, [true, true, true, true], "workspace, user, device, preferences; trace:\n{}", lines.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_registrations_survive_a_redis_restart() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let redis = |port: &str| {
        Command::new("redis-server")
            .args(["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server")
    };
    let mut r = redis(&port);
    std::thread::sleep(Duration::from_millis(300));
    let stack = Stack::start_with(Mode::Distributed, 1, Some(format!("redis://127.0.0.1:{port}/"))).await;
    let ws = stack.create_workspace("acme").await;
    let (_, token) = stack.create_user(&ws, "alice").await;
    let device = json!({"platform": "apns", "token": "a1b2c3"});
    let (status, v) = stack.call(Method::POST, "gw0", "/api/devices", &token, Some(device)).await;
    assert_eq!(status, 201, "{v}");
    let prefs = json!({"level": "nothing", "muted_channels": []});
    let (status, v) = stack.call(Method::PUT, "gw0", "/api/notifications", &token, Some(prefs)).await;
    assert!(status < 300, "{status}: {v}");
    // Redis restarts empty
    r.kill().unwrap();
    let _ = r.wait();
    let mut r = redis(&port);
    let devices = confab_tests::stack::eventually(Duration::from_secs(20), "the gateway to answer again", || async {
        let (status, v) = stack.get("gw0", "/api/devices", &token).await;
        (status == 200).then_some(v)
    })
    .await;
    assert_eq!(devices["devices"].as_array().map(Vec::len), Some(1), "lost with Redis: {devices}");
    let (_, prefs): (u16, Value) = stack.get("gw0", "/api/notifications", &token).await;
    assert_eq!(prefs["level"], "nothing", "{prefs}");
    r.kill().unwrap();
    let _ = r.wait();
}
