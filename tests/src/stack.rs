//! Spawning and controlling `confab` processes.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Addresses of the real servers.
#[derive(Clone, Debug)]
pub struct Services {
    pub kafka: String,
    pub cassandra: String,
    pub redis: String,
    pub opensearch: String,
    /// S3 (MinIO): endpoint, access key, secret key, region.
    pub s3: (String, String, String, String),
    /// The single broker's log directory, when the test servers say (`CONFAB_KAFKA_DATA_DIR`):
    /// for tests that read what Kafka keeps on disk.
    pub kafka_data_dir: Option<String>,
}

impl Services {
    /// From the file named by `CONFAB_TEST_ENV` (KEY=VALUE lines), or the same keys in the
    /// environment. `None` when no servers are configured.
    pub fn from_env() -> Option<Self> {
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        if let Ok(path) = std::env::var("CONFAB_TEST_ENV") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("CONFAB_TEST_ENV={path}: {e}"));
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
        Some(Self {
            kafka: vars.get("CONFAB_KAFKA_BROKERS")?.clone(),
            cassandra: vars.get("CONFAB_CASSANDRA_NODES")?.clone(),
            redis: vars.get("CONFAB_REDIS_URL")?.clone(),
            opensearch: vars.get("CONFAB_OPENSEARCH_URL")?.clone(),
            s3: (
                vars.get("CONFAB_S3_ENDPOINT")?.clone(),
                vars.get("CONFAB_S3_ACCESS_KEY")?.clone(),
                vars.get("CONFAB_S3_SECRET_KEY")?.clone(),
                vars.get("CONFAB_S3_REGION").cloned().unwrap_or_else(|| "us-east-1".into()),
            ),
            kafka_data_dir: vars.get("CONFAB_KAFKA_DATA_DIR").cloned(),
        })
    }

    /// Like [`from_env`](Self::from_env), but fails loudly: the suite must not pass by skipping.
    pub fn required() -> Self {
        Self::from_env().expect(
            "no servers configured: run `scripts/services/all.sh start DIR` and set CONFAB_TEST_ENV=DIR/env (the test command does this)",
        )
    }
}

/// Which adapter set a [`Stack`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `confab serve` alone: one process, no servers.
    Embedded,
    /// Separate processes on real Kafka, Cassandra, Redis and `confab registry`.
    Distributed,
}

/// Whether a distributed test can run. Without servers it is skipped with a message, unless
/// `CONFAB_REQUIRE_SERVERS` is set (the test command and CI set it), where it fails.
pub fn servers_available(mode: Mode) -> bool {
    if mode == Mode::Embedded || Services::from_env().is_some() {
        return true;
    }
    if std::env::var("CONFAB_REQUIRE_SERVERS").is_ok() {
        panic!("CONFAB_REQUIRE_SERVERS is set but no servers are configured (CONFAB_TEST_ENV)");
    }
    eprintln!("skipping a distributed test: no servers configured (run scripts/test.sh)");
    false
}

pub fn confab_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CONFAB_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("debug/confab");
    assert!(p.exists(), "{} not built: run `cargo build -p confab` first (or set CONFAB_BIN)", p.display());
    p
}

pub struct Proc {
    child: Child,
    pub addr: Option<String>,
    /// A gateway's admin listener.
    pub admin_addr: Option<String>,
    args: Vec<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Stack {
    pub mode: Mode,
    pub services: Option<Services>,
    pub namespace: String,
    pub registry_url: String,
    /// Where schemas are registered (the embedded gateway's admin listener; the registry itself
    /// in distributed mode).
    pub registry_admin_url: String,
    /// The bearer token for registry writes: the admin key in embedded mode; in distributed
    /// mode `registry.write_key`, which only `confab registry` and `confab setup` are given (the
    /// other processes look their schema up and need none).
    pub registry_write_key: String,
    env: Vec<(String, String)>,
    /// Settings for one role only, `(role, key, value)`: the role is the first argument of
    /// `confab` (`setup`, `gateway`, `ingest`, `projector`, `notifier`), as a deployment gives
    /// each kind of process credentials of its own.
    role_env: Vec<(String, String, String)>,
    procs: HashMap<String, Proc>,
    /// Arguments of processes that were killed or terminated, for `restart`.
    stopped: HashMap<String, Vec<String>>,
    /// The schema registry process (distributed mode).
    registry: Option<Proc>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    pub admin_key: String,
}

/// The settings of every process, then those of `role` (which win).
fn with_role(env: &[(String, String)], role_env: &[(String, String, String)], role: &str) -> Vec<(String, String)> {
    let own = role_env.iter().filter(|(r, _, _)| r == role).map(|(_, k, v)| (k.clone(), v.clone()));
    env.iter().cloned().chain(own).collect()
}

fn spawn(env: &[(String, String)], args: &[String], log: PathBuf, wait_addr: bool) -> Proc {
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(confab_bin())
        .args(args)
        .envs(env.iter().cloned())
        .env("CONFAB_LOG", "info,rdkafka=warn,scylla=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn confab");
    let (mut addr, mut admin_addr) = (None, None);
    if wait_addr {
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!(
                "`confab {}` did not announce its address within 60 s; log:\n{}",
                args.join(" "),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("unexpected first line from confab: {line}"));
        addr = v["addr"].as_str().map(str::to_string);
        admin_addr = v["admin_addr"].as_str().map(str::to_string);
    }
    Proc { child, addr, admin_addr, args: args.to_vec() }
}

impl Stack {
    /// Starts a stack: in embedded mode one `confab serve`; in distributed mode a registry,
    /// `confab setup`, then ingest, both projectors and `gateways` gateways.
    pub async fn start(mode: Mode, gateways: usize) -> Stack {
        Self::start_with(mode, gateways, None).await
    }

    /// Like [`start`](Self::start), with the distributed mode's Redis replaced (tests that stop it).
    pub async fn start_with(mode: Mode, gateways: usize, redis_url: Option<String>) -> Stack {
        Self::start_custom(mode, gateways, redis_url, &[]).await
    }

    /// Like [`start`](Self::start), with extra `CONFAB_*` settings for every process.
    pub async fn start_custom(
        mode: Mode,
        gateways: usize,
        redis_url: Option<String>,
        extra_env: &[(&str, &str)],
    ) -> Stack {
        Self::start_with_roles(mode, gateways, redis_url, extra_env, &[]).await
    }

    /// A fresh namespace for one stack (topics, keyspace, index and bucket names derive from it).
    pub fn new_namespace() -> String {
        format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
    }

    /// Like [`start_custom`](Self::start_custom), with settings per role as well, `(role, key,
    /// value)` (see `role_env`). A `CONFAB_NAMESPACE` among `extra_env` names the stack's
    /// namespace (a server prepared for it in advance, say); otherwise it is fresh.
    pub async fn start_with_roles(
        mode: Mode,
        gateways: usize,
        redis_url: Option<String>,
        extra_env: &[(&str, &str)],
        role_env: &[(&str, &str, &str)],
    ) -> Stack {
        let namespace = match extra_env.iter().find(|(k, _)| *k == "CONFAB_NAMESPACE") {
            Some((_, ns)) => ns.to_string(),
            None => Self::new_namespace(),
        };
        let mut role_env: Vec<(String, String, String)> =
            role_env.iter().map(|(r, k, v)| (r.to_string(), k.to_string(), v.to_string())).collect();
        let registry_write_key = format!("registry-{}", uuid::Uuid::new_v4().simple());
        for role in ["setup", "registry"] {
            role_env.insert(0, (role.into(), "CONFAB_REGISTRY__WRITE_KEY".into(), registry_write_key.clone()));
        }
        let mut dir = tempfile::tempdir().expect("tempdir");
        if std::env::var("CONFAB_TEST_KEEP").is_ok() {
            // keep the processes' logs for a post mortem
            dir.disable_cleanup(true);
            eprintln!("stack dir kept: {}", dir.path().display());
        }
        // secrets of their own per stack, as a deployment has
        let admin_key = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let token_secret = format!("token-{}", uuid::Uuid::new_v4().simple());
        let common: Vec<(String, String)> = vec![
            ("CONFAB_NAMESPACE".into(), namespace.clone()),
            ("CONFAB_GATEWAY__LISTEN".into(), "127.0.0.1:0".into()),
            ("CONFAB_GATEWAY__ADMIN_LISTEN".into(), "127.0.0.1:0".into()),
            ("CONFAB_TELEMETRY__LISTEN".into(), "127.0.0.1:0".into()),
            ("CONFAB_AUTH__TOKEN_SECRET".into(), token_secret),
            ("CONFAB_AUTH__ADMIN_KEY".into(), admin_key.clone()),
            ("CONFAB_KAFKA__PARTITIONS".into(), "4".into()),
            // tests push hundreds of messages through one socket to exercise other behaviour;
            // the rate limit has its own test, which sets it explicitly (later entries win)
            ("CONFAB_GATEWAY__RATE_PER_SEC".into(), "0".into()),
            ("CONFAB_GATEWAY__USER_SEND_RATE_PER_SEC".into(), "0".into()),
            ("CONFAB_GATEWAY__WORKSPACE_SEND_RATE_PER_SEC".into(), "0".into()),
            ("CONFAB_GATEWAY__MAX_CONNECTIONS_PER_USER".into(), "100000".into()),
        ];
        // the test's own settings come last, so they win over the defaults and the servers'
        // addresses alike (a test may bring a server of its own)
        let extra: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if mode == Mode::Embedded {
            let mut env = common;
            env.extend(extra);
            env.push(("CONFAB_MODE".into(), "embedded".into()));
            env.push(("CONFAB_DATA_DIR".into(), dir.path().join("data").display().to_string()));
            env.push(("CONFAB_NO_DEMO".into(), "1".into()));
            let mut stack = Stack {
                mode,
                services: None,
                namespace,
                registry_url: String::new(),
                registry_admin_url: String::new(),
                registry_write_key: admin_key.clone(),
                env,
                role_env,
                procs: HashMap::new(),
                stopped: HashMap::new(),
                registry: None,
                dir,
                http: reqwest::Client::new(),
                admin_key,
            };
            stack.spawn("serve", &["serve"]);
            stack.registry_url = format!("http://{}/registry", stack.addr("serve"));
            stack.registry_admin_url = format!("http://{}/registry", stack.admin_addr("serve"));
            return stack;
        }
        let mut services = Services::required();
        if let Some(url) = redis_url {
            services.redis = url;
        }
        let registry = spawn(
            &[("CONFAB_REGISTRY__WRITE_KEY".into(), registry_write_key.clone())],
            &[
                "registry".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--data-dir".into(),
                dir.path().join("registry").display().to_string(),
            ],
            dir.path().join("registry.log"),
            true,
        );
        let registry_url = format!("http://{}", registry.addr.as_ref().expect("registry addr"));
        let mut env = common;
        env.extend([
            // every process that seals or opens events shares it, as a deployment's do
            ("CONFAB_KEYS__MASTER_KEY".to_string(), format!("master-{}", uuid::Uuid::new_v4().simple())),
            ("CONFAB_KAFKA__BROKERS".to_string(), services.kafka.clone()),
            ("CONFAB_CASSANDRA__NODES".into(), services.cassandra.clone()),
            ("CONFAB_CASSANDRA__KEYSPACE".into(), namespace.clone()),
            ("CONFAB_REDIS__URL".into(), services.redis.clone()),
            ("CONFAB_REGISTRY__URL".into(), registry_url.clone()),
            // the index is `<namespace>-messages`: one per test
            ("CONFAB_SEARCH__URL".into(), services.opensearch.clone()),
            // the bucket is `<namespace>-files`, made by `confab setup`: one per test
            ("CONFAB_FILES__S3_ENDPOINT".into(), services.s3.0.clone()),
            ("CONFAB_FILES__ACCESS_KEY".into(), services.s3.1.clone()),
            ("CONFAB_FILES__SECRET_KEY".into(), services.s3.2.clone()),
            ("CONFAB_FILES__REGION".into(), services.s3.3.clone()),
        ]);
        env.extend(extra);
        let setup_env = with_role(&env, &role_env, "setup");
        let setup = Command::new(confab_bin()).arg("setup").envs(setup_env).output().expect("run confab setup");
        assert!(setup.status.success(), "confab setup failed:\n{}", String::from_utf8_lossy(&setup.stderr));
        let mut stack = Stack {
            mode,
            services: Some(services),
            namespace,
            registry_admin_url: registry_url.clone(),
            registry_url,
            registry_write_key,
            env,
            role_env,
            procs: HashMap::new(),
            stopped: HashMap::new(),
            registry: Some(registry),
            dir,
            http: reqwest::Client::new(),
            admin_key,
        };
        stack.spawn("ingest", &["ingest"]);
        stack.spawn("timeline", &["projector", "timeline"]);
        stack.spawn("fanout", &["projector", "fanout"]);
        stack.spawn("search", &["projector", "search"]);
        stack.spawn("erasure", &["projector", "erasure"]);
        stack.spawn("notifier", &["notifier"]);
        for i in 0..gateways {
            stack.spawn(&format!("gw{i}"), &["gateway"]);
        }
        stack
    }

    /// True when every component shares one process (killing any kills all).
    pub fn single_process(&self) -> bool {
        self.mode == Mode::Embedded
    }

    /// The process that hosts a component.
    fn host(&self, name: &str) -> String {
        match self.mode {
            Mode::Embedded => "serve".into(),
            Mode::Distributed => name.into(),
        }
    }

    /// Stops the schema registry (`kill -9`; distributed mode).
    pub fn stop_registry(&mut self) {
        let registry = self.registry.take().expect("a registry process (distributed mode)");
        drop(registry);
    }

    /// Starts the schema registry again, on the same address and data directory.
    pub fn start_registry(&mut self) {
        assert!(self.registry.is_none(), "the registry is running");
        let addr = self.registry_url.trim_start_matches("http://").to_string();
        let data = self.dir.path().join("registry").display().to_string();
        let args = ["registry".into(), "--listen".into(), addr, "--data-dir".into(), data];
        let n = self.procs.len();
        let key = [("CONFAB_REGISTRY__WRITE_KEY".to_string(), self.registry_write_key.clone())];
        self.registry = Some(spawn(&key, &args, self.dir.path().join(format!("registry-{n}.log")), true));
    }

    /// Starts (or restarts) a named process with `confab <args>`.
    pub fn spawn(&mut self, name: &str, args: &[&str]) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let n = self.procs.len();
        let env = with_role(&self.env, &self.role_env, &args[0]);
        let p = spawn(&env, &args, self.dir.path().join(format!("{name}-{n}.log")), true);
        self.procs.insert(name.to_string(), p);
    }

    /// Starts another process with `confab <args>` and settings of its own (a second replica
    /// needs its own `CONFAB_KAFKA__INSTANCE_ID`, say).
    pub fn spawn_with_env(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut all = with_role(&self.env, &self.role_env, args[0].as_str());
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let n = self.procs.len();
        let p = spawn(&all, &args, self.dir.path().join(format!("{name}-{n}.log")), true);
        self.procs.insert(name.to_string(), p);
    }

    /// `kill -9` a process.
    pub fn kill(&mut self, name: &str) {
        let name = &self.host(name);
        let mut p = self.procs.remove(name).unwrap_or_else(|| panic!("no process {name}"));
        let _ = p.child.kill();
        let _ = p.child.wait();
        self.stopped.insert(name.to_string(), std::mem::take(&mut p.args));
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; it can be restarted after.
    pub fn terminate(&mut self, name: &str) -> std::process::ExitStatus {
        let name = self.host(name);
        let mut p = self.procs.remove(&name).unwrap_or_else(|| panic!("no process {name}"));
        let pid = p.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = p.child.try_wait().expect("wait") {
                break st;
            }
            assert!(Instant::now() < deadline, "{name} did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        self.stopped.insert(name.clone(), std::mem::take(&mut p.args));
        status
    }

    /// Whether a process is still running (it has not exited, by itself or killed).
    pub fn running(&mut self, name: &str) -> bool {
        let name = self.host(name);
        self.procs.get_mut(&name).is_some_and(|p| p.child.try_wait().expect("wait").is_none())
    }

    /// Starts a killed process again, with the same arguments.
    pub fn restart(&mut self, name: &str) {
        let name = &self.host(name);
        let args = self.stopped.remove(name).unwrap_or_else(|| panic!("{name} was not stopped"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(name, &args);
    }

    /// The OS process id of the process hosting a component (for benchmarks' memory readings).
    pub fn pid(&self, name: &str) -> u32 {
        self.procs[&self.host(name)].child.id()
    }

    /// The stack's own directory (the embedded data directory is `data` in it).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn addr(&self, name: &str) -> String {
        self.procs[&self.host(name)].addr.clone().expect("process has an address")
    }

    /// Where each running process serves `/metrics`: a gateway's admin listener, the others'
    /// telemetry listener (the embedded mode's one process: its admin listener).
    pub fn metrics_addrs(&self) -> Vec<(String, String)> {
        let mut addrs: Vec<(String, String)> = self
            .procs
            .iter()
            .filter_map(|(name, p)| p.admin_addr.clone().or_else(|| p.addr.clone()).map(|a| (name.clone(), a)))
            .collect();
        addrs.sort();
        addrs
    }

    /// A gateway's admin listener (the admin API, `/metrics`, the detailed `/healthz`).
    pub fn admin_addr(&self, name: &str) -> String {
        self.procs[&self.host(name)].admin_addr.clone().expect("gateway has an admin address")
    }

    pub fn log(&self, name: &str) -> String {
        let name = &self.host(name);
        let mut out = String::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let f = e.file_name().to_string_lossy().to_string();
            if f.starts_with(name) {
                out += &std::fs::read_to_string(e.path()).unwrap_or_default();
            }
        }
        out
    }

    /// A `confab` command with this stack's configuration (for one-off commands like replay).
    pub fn confab(&self, args: &[&str]) -> Command {
        let mut c = Command::new(confab_bin());
        c.args(args).envs(self.env.iter().cloned()).env("CONFAB_LOG", "warn").stdin(Stdio::null());
        c
    }

    pub fn keyspace(&self) -> &str {
        &self.namespace
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.admin_post(path, body).await;
        assert!((200..300).contains(&status), "POST {path} -> {status}: {v}");
        v
    }

    /// A `POST` to the admin API of `gw0`; returns (status, body) whatever the status.
    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("http://{}{path}", self.admin_addr("gw0"));
        let resp = self.http.post(&url).bearer_auth(&self.admin_key).json(&body).send().await.expect("admin request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A `PUT` to the admin API of `gw0`; returns (status, body) whatever the status.
    pub async fn admin_put(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("http://{}{path}", self.admin_addr("gw0"));
        let resp = self.http.put(&url).bearer_auth(&self.admin_key).json(&body).send().await.expect("admin request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_workspace_with_retention(&self, name: &str, retention_secs: u32) -> String {
        self.admin("/admin/workspaces", json!({"name": name, "retention_secs": retention_secs})).await["workspace_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A workspace created with extra fields (`max_file_bytes`, `file_types`, ...).
    pub async fn create_workspace_with(&self, body: Value) -> String {
        self.admin("/admin/workspaces", body).await["workspace_id"].as_str().unwrap().to_string()
    }

    /// A request with a user token and an optional JSON body; returns (status, body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        gw: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("http://{}{path}", self.addr(gw))).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_workspace(&self, name: &str) -> String {
        self.admin("/admin/workspaces", json!({"name": name})).await["workspace_id"].as_str().unwrap().to_string()
    }

    /// Returns (user_id, token).
    pub async fn create_user(&self, ws: &str, name: &str) -> (String, String) {
        let v = self.admin(&format!("/admin/workspaces/{ws}/users"), json!({"name": name})).await;
        (v["user_id"].as_str().unwrap().to_string(), v["token"].as_str().unwrap().to_string())
    }

    pub async fn token(&self, ws: &str, user: &str, ttl_secs: i64) -> String {
        let v = self.admin(&format!("/admin/workspaces/{ws}/users/{user}/tokens"), json!({"ttl_secs": ttl_secs})).await;
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn create_channel(&self, ws: &str, name: &str, private: bool, members: &[&str]) -> String {
        let v = self
            .admin(
                &format!("/admin/workspaces/{ws}/channels"),
                json!({"name": name, "is_private": private, "members": members}),
            )
            .await;
        v["channel_id"].as_str().unwrap().to_string()
    }

    /// `GET` on a gateway with a user token; returns (status, body).
    pub async fn get(&self, gw: &str, path: &str, token: &str) -> (u16, Value) {
        let resp =
            self.http.get(format!("http://{}{path}", self.addr(gw))).bearer_auth(token).send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Every message of a channel through the history API, oldest first, following cursors.
    pub async fn history_all(&self, gw: &str, ch: &str, token: &str, page: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/channels/{ch}/messages?limit={page}&cursor={c}"),
                None => format!("/api/channels/{ch}/messages?limit={page}"),
            };
            // the membership index that authorizes history is a projection: right after a
            // channel is created or joined it may lag for a moment, so a 404 is retried briefly
            let deadline = Instant::now() + Duration::from_secs(10);
            let (status, body) = loop {
                let (status, body) = self.get(gw, &q, token).await;
                if status != 404 || Instant::now() >= deadline {
                    break (status, body);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(status, 200, "{body}");
            out.extend(body["messages"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        out.reverse();
        out
    }
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
