//! A server of a test's own, started by its `scripts/services/<name>.sh` in a directory of its
//! own and stopped when dropped: for tests that stop the server, or need it configured
//! differently from the shared one (secured, say).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct OwnServer {
    script: PathBuf,
    run_dir: tempfile::TempDir,
    script_env: Vec<(String, String)>,
}

impl OwnServer {
    /// Starts `scripts/services/<service>.sh` with `script_env` (its knobs).
    pub fn start(service: &str, script_env: &[(&str, &str)]) -> OwnServer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../scripts/services/{service}.sh"));
        let script_env = script_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut run_dir = tempfile::tempdir().unwrap();
        if std::env::var("CONFAB_TEST_KEEP").is_ok() {
            // keep the server's logs for a post mortem, as the stack keeps its processes'
            run_dir.disable_cleanup(true);
            eprintln!("{service} dir kept: {}", run_dir.path().display());
        }
        let server = OwnServer { script, run_dir, script_env };
        server.start_again();
        server
    }

    /// A plaintext Kafka broker, as the shared one.
    pub fn kafka() -> OwnServer {
        Self::start("kafka", &[])
    }

    /// A Kafka broker that takes SASL_SSL (SCRAM-SHA-512) only, with a CA of its own, one user
    /// per Confab role and ACLs that give each role what it needs in `namespace`, nothing else.
    pub fn kafka_secured(namespace: &str) -> OwnServer {
        Self::start("kafka", &[("KAFKA_SECURITY", "sasl_ssl"), ("KAFKA_ACL_NAMESPACE", namespace)])
    }

    /// A Redis on TLS only, with a CA of its own and one ACL user confined to `namespace:*`.
    pub fn redis_secured(namespace: &str) -> OwnServer {
        Self::start("redis", &[("REDIS_SECURITY", "tls"), ("REDIS_ACL_NAMESPACE", namespace)])
    }

    /// A cluster of three replicated nodes of `service` (`kafka` or `cassandra`), as production
    /// runs it: one node can be lost (`kill_node`) and brought back (`start_node`).
    pub fn replicated(service: &str) -> OwnServer {
        let knob = format!("{}_NODES", service.to_uppercase());
        Self::start(service, &[(knob.as_str(), "3")])
    }

    /// Starts the server (again: on the ports and data of the previous start).
    pub fn start_again(&self) {
        self.script_command(&["start"]);
    }

    /// `kill -9` node `n` (1 to 3) of a replicated cluster; returns once its port is closed.
    pub fn kill_node(&self, n: u32) {
        self.script_command(&["kill", &n.to_string()]);
    }

    /// Starts node `n` of a replicated cluster again, on its ports and data.
    pub fn start_node(&self, n: u32) {
        self.script_command(&["start-node", &n.to_string()]);
    }

    /// The node (1 to 3) of a replicated Kafka cluster that coordinates consumer group `group`.
    pub fn kafka_coordinator(&self, group: &str) -> u32 {
        let printed = self.script_command(&["coordinator", group]);
        printed.trim().parse().unwrap_or_else(|_| panic!("coordinator of {group}: {printed:?}"))
    }

    /// Runs `<script> <command> RUN_DIR [args]` and returns what it printed; panics with its
    /// output if it fails.
    fn script_command(&self, command: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(&self.script)
            .arg(command[0])
            .arg(self.run_dir.path())
            .args(&command[1..])
            .envs(self.script_env.iter().cloned())
            .output()
            .unwrap();
        let shown = format!("{} {}", self.script.display(), command.join(" "));
        assert!(out.status.success(), "{shown}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A line `KEY=value` the script wrote to its env file (`CONFAB_KAFKA_BROKERS`,
    /// `CONFAB_KAFKA_CA`, `CONFAB_REDIS_URL`, ...); the latest one when there are several.
    pub fn setting(&self, key: &str) -> String {
        let env = std::fs::read_to_string(self.run_dir.path().join("env")).unwrap();
        let prefix = format!("{key}=");
        let found = env.lines().rev().find_map(|l| l.strip_prefix(prefix.as_str()));
        found.unwrap_or_else(|| panic!("{} wrote no {key}", self.script.display())).to_string()
    }

    /// The Kafka broker's address.
    pub fn brokers(&self) -> String {
        self.setting("CONFAB_KAFKA_BROKERS")
    }

    /// `kill -9` the server whose pid is in `<run_dir>/<pid_file>`; returns once `port` is closed.
    pub fn kill(&self, pid_file: &str, port: u16) {
        let pid = std::fs::read_to_string(self.run_dir.path().join(pid_file)).unwrap();
        let status = Command::new("kill").args(["-KILL", pid.trim()]).status().unwrap();
        assert!(status.success(), "kill -9 the server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "the server still listens after kill -9");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` the Kafka broker.
    pub fn kill_kafka(&self) {
        let port: u16 = self.brokers().rsplit(':').next().unwrap().parse().unwrap();
        self.kill("kafka/pid", port);
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).arg("stop").arg(self.run_dir.path()).output();
    }
}
