//! The binary's behaviour at start: configuration is validated and a bad key is named.

use std::process::Command;

fn confab(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Command::new(confab_tests::stack::confab_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run confab");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn bad_configuration_is_refused_at_start_naming_the_key() {
    let (ok, out) = confab(&[("CONFAB_GATEWAY__LISTN", "127.0.0.1:1")], &["serve"]);
    assert!(!ok);
    assert!(out.contains("listn"), "{out}");
    let (ok, out) = confab(&[("CONFAB_KAFKA__PARTITIONS", "0")], &["serve"]);
    assert!(!ok);
    assert!(out.contains("kafka.partitions"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("confab.toml");
    std::fs::write(&file, "[redis]\nurl = \"http://nope\"\n").unwrap();
    let (ok, out) = confab(&[], &["--config", file.to_str().unwrap(), "serve"]);
    assert!(!ok);
    assert!(out.contains("redis.url"), "{out}");
}

#[test]
fn the_effective_configuration_prints_and_picks_the_mode() {
    let (ok, out) = confab(&[], &["config"]);
    assert!(ok, "{out}");
    assert!(out.contains("mode = \"embedded\""), "{out}");
    let (ok, out) = confab(&[("CONFAB_KAFKA__BROKERS", "k:9092")], &["config"]);
    assert!(ok, "{out}");
    assert!(out.contains("mode = \"distributed\""), "{out}");
}

#[test]
fn schemas_check_refuses_an_incompatible_change_naming_the_field() {
    let (ok, out) = confab(&[], &["schemas", "check"]);
    assert!(ok, "the current schema passes: {out}");
    let dir = tempfile::tempdir().unwrap();
    let current: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/avro/event.avsc")).unwrap(),
    )
    .unwrap();
    let mut broken = current.clone();
    broken["fields"].as_array_mut().unwrap().push(serde_json::json!({"name": "tenant_region", "type": "string"}));
    let file = dir.path().join("event.avsc");
    std::fs::write(&file, broken.to_string()).unwrap();
    let (ok, out) = confab(&[], &["schemas", "check", "--file", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("tenant_region"), "{out}");
    let mut compatible = current;
    compatible["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "tenant_region", "type": ["null", "string"], "default": null}));
    std::fs::write(&file, compatible.to_string()).unwrap();
    let (ok, out) = confab(&[], &["schemas", "check", "--file", file.to_str().unwrap()]);
    assert!(ok, "{out}");
}

/// `kafka.properties` reach every Kafka client as is: a setting librdkafka does not know stops
/// the process with an error naming it (no broker is needed to find out).
#[test]
fn a_kafka_property_librdkafka_refuses_is_named_at_start() {
    let (ok, out) = confab(&[("CONFAB_KAFKA__PROPERTIES__NO_SUCH_THING", "1")], &["lag"]);
    assert!(!ok, "{out}");
    assert!(out.contains("no.such.thing"), "{out}");
}

/// Crypto-shredding's keys (issue 18): a distributed process that seals or opens events or
/// commands refuses to start without the master key, naming it (it never writes plaintext
/// instead), and a reader key too short to be a secret is refused like any other.
#[test]
fn a_missing_master_key_or_a_weak_reader_key_is_refused_at_start_naming_it() {
    let secret = "a token secret of thirty-two bytes or more";
    let admin_key = "an admin key of thirty-two bytes or more";
    // a gateway seals commands (transit keys), so it needs the master key as well
    let roles: [&[&str]; 5] =
        [&["gateway"], &["ingest"], &["projector", "erasure"], &["projector", "timeline"], &["events"]];
    for role in roles {
        let env = [
            ("CONFAB_KAFKA__BROKERS", "127.0.0.1:1"),
            ("CONFAB_AUTH__TOKEN_SECRET", secret),
            ("CONFAB_AUTH__ADMIN_KEY", admin_key),
        ];
        let (ok, out) = confab(&env, role);
        assert!(!ok, "{role:?} started without a master key");
        assert!(out.contains("keys.master_key"), "{role:?}: {out}");
    }
    let (ok, out) = confab(&[("CONFAB_KEYS__READER_KEY", "too short")], &["serve"]);
    assert!(!ok);
    assert!(out.contains("keys.reader_key"), "{out}");
}

/// A first start reads well (issue 20): `confab serve --listen --data-dir` takes its address and
/// directory from the command line, dependencies' INFO lines (fjall's `lsm_tree`, tantivy) are
/// quiet, and the demo banner comes last, after every line the start logs.
#[test]
fn a_first_serve_takes_its_address_and_directory_and_ends_with_the_banner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("somewhere");
    let out_path = dir.path().join("out.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(confab_tests::stack::confab_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONFAB_GATEWAY__ADMIN_LISTEN", "127.0.0.1:0")
        .current_dir(dir.path())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("run confab serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&out_path).unwrap();
        if text.contains("schema registry (Confluent API)") || std::time::Instant::now() > deadline {
            // a moment more: anything logged after the banner would show
            std::thread::sleep(std::time::Duration::from_secs(2));
            break std::fs::read_to_string(&out_path).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("schema registry (Confluent API)"), "no banner within 60 s:\n{text}");
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(last.contains("schema registry (Confluent API)"), "the banner is not last:\n{text}");
    assert!(!text.contains("lsm_tree") && !text.contains("tantivy"), "dependency lines at start:\n{text}");
    assert!(!text.contains("WARN"), "a first start has nothing to warn about:\n{text}");
    assert!(!text.contains("127.0.0.1:8080"), "--listen was not taken:\n{text}");
    assert!(data.join("db").is_dir(), "--data-dir was not taken:\n{text}");
    let lines = text.lines().count();
    assert!(lines < 40, "a first start prints {lines} lines:\n{text}");
}
