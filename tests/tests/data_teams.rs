//! What data teams rely on: the events topic holds Avro records in the Confluent wire format,
//! registered under `<topic>-value`, readable by a stock Confluent deserializer, and the
//! registry refuses incompatible schema changes with a message naming the field.

use apache_avro::types::Value as Avro;
use confab_tests::stack::eventually;
use confab_tests::{servers_available, Client, Mode, Stack};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_confluent_avro_readable_by_a_stock_deserializer() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let stack = Stack::start(Mode::Distributed, 1).await;
    let ws = stack.create_workspace("data").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "analytics", false, &[&alice]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    a.send_message(&ch, "quarterly numbers", "dt-1").await;
    let ack = a.expect("message:ack", Duration::from_secs(20)).await;

    let topic = format!("{}.events", stack.namespace);
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.services.as_ref().unwrap().kafka)
        .set("group.id", format!("{}-data-team", stack.namespace))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let decoder = AvroDecoder::new(SrSettings::new(stack.registry_url.clone()));
    let mut kinds = Vec::new();
    let mut posted = None;
    while posted.is_none() {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("events arrive").unwrap();
        let bytes = msg.payload().unwrap();
        assert_eq!(bytes[0], 0, "Confluent magic byte");
        let decoded = decoder.decode(Some(bytes)).await.expect("stock decoder reads the record");
        if msg.key() == Some(format!("{ws}:{ws}").as_bytes()) {
            continue; // the workspace's audit stream (admin actions), on a partition of its own
        }
        assert_eq!(msg.key(), Some(format!("{ws}:{ch}").as_bytes()), "key is workspace:channel");
        let Avro::Record(fields) = decoded.value else { panic!("not a record") };
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("workspace_id"), Avro::String(ws.clone()));
        let Avro::Union(_, payload) = get("payload") else { panic!("payload is a union") };
        let Avro::Record(p) = *payload else { panic!("payload is a record") };
        let names: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        kinds.push(names.join(","));
        if names.contains(&"message_id") {
            posted = Some((get("seq"), p, get("sealed"), get("event_id")));
        }
    }
    let (seq, p, sealed, event_id) = posted.unwrap();
    assert_eq!(kinds[0], "name,is_private,members,kind", "the channel's creation comes first");
    assert_eq!(seq, Avro::Long(2));
    // the text is sealed (crypto-shredding): blank in the payload, in one box under its own key
    assert!(p.contains(&("text".into(), Avro::String(String::new()))));
    let Avro::Array(boxes) = sealed else { panic!("sealed is an array") };
    let Avro::Record(b) = &boxes[0] else { panic!("a sealed box is a record") };
    let field = |n: &str| b.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    assert_eq!((boxes.len(), field("field"), field("key_id")), (1, Avro::String("text".into()), event_id));
    let Avro::Bytes(ciphertext) = field("ciphertext") else { panic!("ciphertext is bytes") };
    assert!(!ciphertext.windows(9).any(|w| w == b"quarterly"));
    assert!(p.contains(&("message_id".into(), Avro::String(ack["message_id"].as_str().unwrap().into()))));

    // the registry: subject per topic, compatible evolution accepted, breaking change refused
    let http = reqwest::Client::new();
    let subjects: serde_json::Value =
        http.get(format!("{}/subjects", stack.registry_url)).send().await.unwrap().json().await.unwrap();
    assert!(subjects.as_array().unwrap().contains(&json!(format!("{topic}-value"))));
    let current: serde_json::Value = http
        .get(format!("{}/subjects/{topic}-value/versions/latest", stack.registry_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(current["schema"].as_str().unwrap()).unwrap();
    schema["fields"].as_array_mut().unwrap().push(json!({"name": "tenant_region", "type": "string"}));
    let check = |s: serde_json::Value| {
        let http = http.clone();
        let url = format!("{}/compatibility/subjects/{topic}-value/versions/latest", stack.registry_url);
        async move {
            http.post(url)
                .json(&json!({"schema": s.to_string()}))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let verdict = check(schema.clone()).await;
    assert_eq!(verdict["is_compatible"], false);
    assert!(verdict["messages"].to_string().contains("tenant_region"), "{verdict}");
    let resp = http
        .post(format!("{}/subjects/{topic}-value/versions", stack.registry_admin_url))
        .bearer_auth(&stack.registry_write_key)
        .json(&json!({"schema": schema.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    schema["fields"].as_array_mut().unwrap().pop();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "tenant_region", "type": ["null", "string"], "default": null}));
    assert_eq!(check(schema).await["is_compatible"], true);
}

/// The embedded mode serves the same Confluent registry API, with the events schema registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_serves_a_confluent_registry() {
    let stack = Stack::start(Mode::Embedded, 1).await;
    let http = reqwest::Client::new();
    let subject = format!("{}.events-value", stack.namespace);
    let subjects: serde_json::Value =
        http.get(format!("{}/subjects", stack.registry_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(subjects, json!([subject]));
    let latest: serde_json::Value = http
        .get(format!("{}/subjects/{subject}/versions/latest", stack.registry_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = latest["id"].as_u64().unwrap();
    let by_id: serde_json::Value =
        http.get(format!("{}/schemas/ids/{id}", stack.registry_url)).send().await.unwrap().json().await.unwrap();
    let schema: serde_json::Value = serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema["name"], "Event");
    // a malformed body gets a Confluent-shaped error
    let resp = http
        .post(format!("{}/subjects/{subject}/versions", stack.registry_admin_url))
        .bearer_auth(&stack.registry_write_key)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error_code"], 400, "{v}");
}

/// The README's worked example: Confluent's own Python client and Avro deserializer read the
/// events topic through Confab's registry. Needs a Python with `confluent-kafka[avro]`
/// (`CONFAB_PYTHON`; the test command provides one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluents_python_client_reads_the_events() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let Some(python) = python() else { return };
    const READER_KEY: &str = "the data team's reader key, 32 bytes or more";
    let stack = Stack::start_custom(Mode::Distributed, 1, None, &[("CONFAB_KEYS__READER_KEY", READER_KEY)]).await;
    let ws = stack.create_workspace("py").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "analytics", false, &[&alice]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        a.send_message(&ch, &format!("numbers {i}"), &format!("py-{i}")).await;
        ids.push(a.expect("message:ack", Duration::from_secs(20)).await["message_id"].clone());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/python/read_events.py");
    let out = tokio::process::Command::new(&python)
        .args(["-u", script, "--brokers", &stack.services.as_ref().unwrap().kafka, "--registry", &stack.registry_url])
        .args(["--topic", &format!("{}.events", stack.namespace), "--max", "7", "--idle", "20"])
        .output()
        .await
        .expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // the workspace's audit stream: what the admin did, readable by the same stock client
    let (audit, events): (Vec<_>, Vec<_>) = all.into_iter().partition(|e| e["key"] == format!("{ws}:{ws}"));
    let actions: Vec<&str> = audit.iter().map(|e| e["value"]["payload"]["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["workspace_created", "user_created", "channel_created"], "{audit:?}");
    assert_eq!(events.len(), 4, "channel created + 3 messages: {events:?}");
    assert_eq!(events[0]["key"], format!("{ws}:{ch}"));
    assert_eq!(events[0]["value"]["payload"]["name"], "analytics");
    // texts are sealed (crypto-shredding): blank in the payload, one box each
    let texts: Vec<&str> = events[1..].iter().map(|e| e["value"]["payload"]["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["", "", ""]);
    for e in &events[1..] {
        let sealed = e["value"]["sealed"].as_array().expect("the sealed boxes");
        assert_eq!(
            (sealed.len(), &sealed[0]["field"], &sealed[0]["key_id"]),
            (1, &json!("text"), &e["value"]["event_id"])
        );
    }
    let seqs: Vec<i64> = events.iter().map(|e| e["value"]["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);

    // the same reader opens the texts through a gateway with the reader key; a deleted
    // message's text reads as redacted (its key was destroyed), never as an error
    let ack = a.command(json!({"type": "message:delete", "channel_id": ch, "message_id": ids[1]}), "py-del").await;
    assert_eq!(ack["type"], "ok", "{ack}");
    let admin = format!("http://{}", stack.admin_addr("gw0"));
    let opened = eventually(Duration::from_secs(30), "the deleted text to read as redacted", || {
        let (python, admin, topic) = (&python, &admin, format!("{}.events", stack.namespace));
        let (kafka, registry) = (&stack.services.as_ref().unwrap().kafka, &stack.registry_url);
        async move {
            let group = format!("opened-{}", uuid::Uuid::new_v4().simple());
            let out = tokio::process::Command::new(python)
                .args(["-u", script, "--brokers", kafka, "--registry", registry, "--topic", &topic])
                .args([
                    "--group",
                    &group,
                    "--max",
                    "8",
                    "--idle",
                    "20",
                    "--open-url",
                    admin,
                    "--reader-key",
                    READER_KEY,
                ])
                .output()
                .await
                .expect("run python");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let posted: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["value"].clone())
                .filter(|v| v["payload"]["client_msg_id"].is_string())
                .collect();
            (posted.len() == 3 && posted[1]["redacted"] == json!(["text"])).then_some(posted)
        }
    })
    .await;
    let texts: Vec<&str> = opened.iter().map(|v| v["payload"]["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["numbers 0", "", "numbers 2"], "{opened:?}");
    assert!(opened.iter().all(|v| v["sealed"] == json!([])));

    // the endpoint wants the reader key, not the admin key, and bounds its work
    let http = reqwest::Client::new();
    let open = |key: &str, body: serde_json::Value| {
        http.post(format!("{admin}/admin/keys/open")).bearer_auth(key).json(&body).send()
    };
    let one = json!({"workspace_id": ws, "boxes": []});
    assert_eq!(open(&stack.admin_key, one.clone()).await.unwrap().status().as_u16(), 401);
    assert_eq!(open(READER_KEY, one).await.unwrap().status().as_u16(), 200);
    let box_ = json!({"key_id": ids[0], "field": "text", "nonce": "AAAA", "ciphertext": "AAAA"});
    let many = json!({"workspace_id": ws, "boxes": vec![box_.clone(); 1001]});
    assert_eq!(open(READER_KEY, many).await.unwrap().status().as_u16(), 400);
    let bad = json!({"workspace_id": ws, "boxes": [{"key_id": ids[0], "field": "text", "nonce": "!!", "ciphertext": "AAAA"}]});
    assert_eq!(open(READER_KEY, bad).await.unwrap().status().as_u16(), 400);
}

/// Issue 20, item 6: the events land in a Parquet file (DuckDB, `examples/python/land_parquet.py`)
/// across every schema version: a topic holding events written under v1 to v4 (as a deployment
/// that started at v1 holds them) lands in one table with today's events, each decoded with the
/// schema it was written with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_lands_in_parquet_across_every_schema_version() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let Some(python) = python() else { return };
    let stack = Stack::start(Mode::Distributed, 1).await;
    let ws = stack.create_workspace("lake").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "today", false, &[&alice]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    for i in 0..2 {
        a.send_message(&ch, &format!("today {i}"), &format!("t-{i}")).await;
        a.expect("message:ack", Duration::from_secs(20)).await;
    }
    let kafka = stack.services.as_ref().unwrap().kafka.clone();
    let (events, archive) = (format!("{}.events", stack.namespace), format!("{}.archive", stack.namespace));
    let archived_channel = uuid::Uuid::new_v4().to_string();
    let run = |script: &str, args: Vec<String>| {
        let script = format!("{}/../{script}", env!("CARGO_MANIFEST_DIR"));
        let python = python.clone();
        async move {
            let out = tokio::process::Command::new(&python).arg("-u").arg(&script).args(&args).output().await;
            let out = out.expect("run python");
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).to_string()
        }
    };
    let args = |pairs: &[(&str, &str)]| -> Vec<String> {
        pairs.iter().flat_map(|(k, v)| [format!("--{k}"), v.to_string()]).collect()
    };
    run(
        "tests/python/write_history.py",
        args(&[
            ("brokers", &kafka),
            ("registry", &stack.registry_url),
            ("write-key", &stack.registry_write_key),
            ("topic", &archive),
            ("workspace", &ws),
            ("channel", &archived_channel),
            ("actor", &alice),
        ]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("events.parquet").display().to_string();
    let landed = run(
        "examples/python/land_parquet.py",
        args(&[
            ("brokers", &kafka),
            ("registry", &stack.registry_url),
            ("topic", &events),
            ("topic", &archive),
            ("out", &parquet),
            ("idle", "15"),
        ]),
    )
    .await;
    let landed: serde_json::Value = serde_json::from_str(landed.trim()).expect("the lander's summary");

    // what the Parquet file holds, read back with DuckDB
    let query = format!(
        "import duckdb, json; print(json.dumps(duckdb.sql(\"\"\"SELECT schema_version, kind, payload->>'text', \
         sealed_fields, channel_id::VARCHAR FROM '{parquet}' WHERE kind IN ('ChannelCreated', 'MessagePosted') \
         AND workspace_id = '{ws}' ORDER BY schema_version, seq\"\"\").fetchall()))"
    );
    let out = tokio::process::Command::new(&python).args(["-c", &query]).output().await.expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("rows");
    let current = confab_core::avro::SCHEMA_VERSION;
    let expected = json!([
        [1, "ChannelCreated", null, null, archived_channel],
        [1, "MessagePosted", "posted under v1", null, archived_channel],
        [2, "MessagePosted", "posted under v2", null, archived_channel],
        [3, "MessagePosted", "posted under v3", null, archived_channel],
        [4, "MessagePosted", "posted under v4", null, archived_channel],
        [current, "ChannelCreated", null, [], ch],
        // today's texts are sealed: blank, and named among the sealed fields
        [current, "MessagePosted", "", ["text"], ch],
        [current, "MessagePosted", "", ["text"], ch],
    ]);
    assert_eq!(rows, expected, "landed: {landed}");
    for version in 1..=4 {
        assert!(landed["by_schema_version"][version.to_string()].as_u64() >= Some(1), "{landed}");
    }
}

/// The Python the examples run with (`CONFAB_PYTHON`, with confluent-kafka[avro] and duckdb; the
/// test command makes one). Without it the test is skipped, unless servers are required.
fn python() -> Option<String> {
    match std::env::var("CONFAB_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var("CONFAB_REQUIRE_SERVERS").is_ok() => {
            panic!("CONFAB_PYTHON (with confluent-kafka[avro] and duckdb) is required")
        }
        Err(_) => {
            eprintln!("skipping: set CONFAB_PYTHON to a Python with confluent-kafka[avro] and duckdb");
            None
        }
    }
}
