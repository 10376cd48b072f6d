//! What the repository ships for deployments, checked against the binary: docker-compose.yml's
//! Confab services each start with the configuration the file gives them (`confab config --for`
//! their process), every kind of process runs, the servers are the versions the tests run, and
//! the health checks (`confab probe`) ask listeners the processes serve.

use confab_tests::stack::confab_bin;
use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// docker-compose.yml with its anchors merged.
fn compose() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let mut compose: Value = serde_norway::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    for (_, service) in compose["services"].as_mapping_mut().unwrap() {
        service.apply_merge().unwrap();
    }
    compose
}

/// A value as compose gives it: `${NAME:?message}` replaced by a secret-sized stand-in, as the
/// `.env` the file asks for would.
fn interpolated(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e).expect("a closed ${...}");
        let name = rest[start + 2..end].split([':', '-']).next().unwrap();
        out.push_str(&format!("{}-{}", name.to_ascii_lowercase(), "x".repeat(40)));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A Confab service of the compose file: its name, command words and environment.
type ConfabService = (String, Vec<String>, Vec<(String, String)>);

/// The Confab services.
fn confab_services(compose: &Value) -> Vec<ConfabService> {
    let mut services = Vec::new();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        if service["image"].as_str() != Some("confab:dev") {
            continue;
        }
        let command: Vec<String> =
            service["command"].as_sequence().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
        let environment = service["environment"].as_mapping().expect("an environment mapping");
        let environment = environment
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_string(), interpolated(v.as_str().expect("string values"))))
            .collect();
        services.push((name.as_str().unwrap().to_string(), command, environment));
    }
    services
}

#[test]
fn every_compose_service_starts_with_its_configuration_and_every_process_runs() {
    let compose = compose();
    let services = confab_services(&compose);
    let mut kinds = BTreeSet::new();
    for (name, command, environment) in &services {
        let process = command[0].as_str();
        kinds.insert(if process == "projector" { format!("projector {}", command[1]) } else { process.to_string() });
        let output = Command::new(confab_bin())
            .args(["config", "--for", process])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(environment.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "service {name} ({process}) would not start: {stderr}");
        let effective: toml::Value = toml::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap();
        assert_eq!(effective["mode"].as_str(), Some("distributed"), "service {name}");
    }
    let every_kind = [
        "registry",
        "setup",
        "ingest",
        "projector timeline",
        "projector fanout",
        "projector search",
        "projector erasure",
        "notifier",
        "gateway",
    ];
    for kind in every_kind {
        assert!(kinds.contains(kind), "docker-compose.yml runs no {kind}: {kinds:?}");
    }
}

#[test]
fn config_for_a_process_names_the_missing_secret() {
    let run = |process: &str, env: &[(&str, &str)]| {
        Command::new(confab_bin())
            .args(["config", "--for", process])
            .env_clear()
            .env("CONFAB_KAFKA__BROKERS", "kafka:9092")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let (token_secret, admin_key, master_key) = ("t".repeat(40), "a".repeat(40), "m".repeat(40));
    let gateway =
        run("gateway", &[("CONFAB_AUTH__TOKEN_SECRET", &token_secret), ("CONFAB_AUTH__ADMIN_KEY", &admin_key)]);
    assert!(!gateway.status.success());
    let stderr = String::from_utf8_lossy(&gateway.stderr);
    assert!(stderr.contains("keys.master_key"), "names the missing key: {stderr}");
    let projector = run("projector", &[("CONFAB_KEYS__MASTER_KEY", &master_key)]);
    assert!(projector.status.success(), "{}", String::from_utf8_lossy(&projector.stderr));
    // what it prints can be pasted into a ticket: no secret in it
    let printed = String::from_utf8_lossy(&projector.stdout);
    assert!(!printed.contains(&master_key) && printed.contains("master_key = \"<redacted: 40 bytes>\""), "{printed}");
    let with_password = run(
        "projector",
        &[
            ("CONFAB_KEYS__MASTER_KEY", &master_key),
            ("CONFAB_REDIS__URL", "rediss://confab:hunter2-redis-password@redis:6380/"),
        ],
    );
    let printed = String::from_utf8_lossy(&with_password.stdout);
    assert!(!printed.contains("hunter2") && printed.contains("rediss://confab:<redacted>@redis:6380/"), "{printed}");
    let embedded = Command::new(confab_bin()).args(["config", "--for", "ingest"]).env_clear().output().unwrap();
    assert!(!embedded.status.success(), "an embedded configuration does not run a separate ingest");
}

/// The image tags of the servers are the versions scripts/services/ installs and the tests run.
#[test]
fn the_compose_servers_are_the_tested_versions() {
    let compose = compose();
    let script = |name: &str| std::fs::read_to_string(repo_root().join("scripts/services").join(name)).unwrap();
    let pinned = |text: &str, variable: &str| -> String {
        let line = text.lines().find(|l| l.starts_with(&format!("{variable}="))).unwrap();
        let value = line.split_once('=').unwrap().1;
        // `VAR="${VAR:-1.2.3}"` or `VAR=1.2.3`
        value.trim_matches('"').rsplit(":-").next().unwrap().trim_end_matches('}').to_string()
    };
    let image = |service: &str| compose["services"][service]["image"].as_str().unwrap().to_string();
    assert_eq!(image("kafka"), format!("apache/kafka:{}", pinned(&script("kafka.sh"), "KAFKA_VERSION")));
    assert_eq!(image("cassandra"), format!("cassandra:{}", pinned(&script("cassandra.sh"), "CASSANDRA_VERSION")));
    let opensearch = pinned(&script("opensearch.sh"), "OPENSEARCH_VERSION");
    assert_eq!(image("opensearch"), format!("opensearchproject/opensearch:{opensearch}"));
}

/// Each Confab service's health check is `confab probe` on a listener that service serves, and
/// `confab probe` tells an answering listener from a closed one.
#[test]
fn compose_health_checks_probe_the_listeners_the_processes_serve() {
    let compose = compose();
    for (name, command, environment) in confab_services(&compose) {
        let check = &compose["services"][name.as_str()]["healthcheck"];
        if check["disable"].as_bool() == Some(true) {
            assert_eq!(command[0], "setup", "only the one-shot setup has no health check");
            continue;
        }
        let test: Vec<&str> = check["test"].as_sequence().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
        assert_eq!(test[..3], ["CMD", "confab", "probe"], "service {name}: {test:?}");
        let port = test[3].trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_string();
        let listens = environment.iter().any(|(k, v)| k.ends_with("LISTEN") && v.ends_with(&format!(":{port}")))
            || command.windows(2).any(|w| w[0] == "--listen" && w[1].ends_with(&format!(":{port}")));
        let listener = if command[0] == "gateway" {
            environment.iter().any(|(k, v)| k == "CONFAB_GATEWAY__LISTEN" && v.ends_with(&format!(":{port}")))
        } else {
            listens
        };
        assert!(listener, "service {name} probes port {port}, which it does not listen on");
    }

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let probe = |url: &str| Command::new(confab_bin()).args(["probe", url, "--timeout-ms", "2000"]).output().unwrap();
    assert!(!probe(&format!("http://{closed}/readyz")).status.success(), "nothing listens there");
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = server.local_addr().unwrap();
    let answer = |status: &'static str| {
        let server = server.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = server.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(response.as_bytes()).unwrap();
        })
    };
    let serving = answer("200 OK");
    assert!(probe(&format!("http://{address}/readyz")).status.success());
    serving.join().unwrap();
    let unready = answer("503 Service Unavailable");
    assert!(!probe(&format!("http://{address}/readyz")).status.success(), "a 503 is not healthy");
    unready.join().unwrap();
}

/// The helm that scripts/check-deploy.sh builds (the test command runs it first); without it
/// the chart test is skipped, unless servers are required.
fn helm() -> Option<PathBuf> {
    let cache = std::env::var("CONFAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/confab"));
    let helm = cache.join("tools/helm-v4.3.2/helm");
    if helm.exists() {
        return Some(helm);
    }
    assert!(
        std::env::var("CONFAB_REQUIRE_SERVERS").is_err(),
        "{} is missing: run scripts/check-deploy.sh",
        helm.display()
    );
    eprintln!("skipping: no helm at {}", helm.display());
    None
}

/// Every container the Helm chart renders starts with the environment the chart gives it:
/// `confab config --for` its process, with each secret reference and field reference filled as
/// Kubernetes would.
#[test]
fn every_process_of_the_helm_chart_starts_with_its_configuration() {
    let Some(helm) = helm() else { return };
    let output = Command::new(helm)
        .args(["template", "confab"])
        .arg(repo_root().join("deploy/helm/confab"))
        .args(["--namespace", "chat"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rendered = String::from_utf8(output.stdout).unwrap();
    let mut processes = BTreeSet::new();
    for document in serde_norway::Deserializer::from_str(&rendered) {
        let object = <Value as serde::Deserialize>::deserialize(document).unwrap();
        if !matches!(object["kind"].as_str(), Some("Deployment" | "StatefulSet" | "Job")) {
            continue;
        }
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        for container in object["spec"]["template"]["spec"]["containers"].as_sequence().unwrap() {
            let args: Vec<&str> =
                container["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            let mut environment = Vec::new();
            for variable in container["env"].as_sequence().unwrap() {
                let key = variable["name"].as_str().unwrap().to_string();
                let value = match variable["value"].as_str() {
                    Some(value) => value.to_string(),
                    None if variable["valueFrom"]["secretKeyRef"].is_mapping() => {
                        format!("{}-{}", variable["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap(), "x".repeat(40))
                    }
                    None => format!("{name}-0"),
                };
                environment.push((key, value));
            }
            let output = Command::new(confab_bin())
                .args(["config", "--for", args[0]])
                .env_clear()
                .envs(environment)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{name} ({}) would not start: {stderr}", args[0]);
            processes.insert(args.iter().take_while(|a| !a.starts_with('-')).copied().collect::<Vec<_>>().join(" "));
        }
    }
    for process in ["setup", "gateway", "ingest", "projector timeline", "projector erasure", "notifier", "registry"] {
        assert!(processes.contains(process), "the chart runs no {process}: {processes:?}");
    }
}
