//! A schema registry outage delays events but never drops them (issue 16, item 12), on the
//! real stack: Kafka, Cassandra, Redis, OpenSearch and `confab registry`, which these tests stop
//! and start again. Only a record that can never be decoded is passed, after it is kept in
//! `<ns>.events.dead-letter`.
//!
//! The registry matters only for schemas a process has not seen: each registers the event
//! schema at start and decodes its own writes from memory. So the events here are written by
//! "a newer ingest": the next version of the schema (one optional field more), registered
//! while the registry is up, then used while it is down.

use apache_avro::types::Value as Avro;
use confab_core::event::{Event, Payload};
use confab_tests::stack::eventually;
use confab_tests::{servers_available, Client, Mode, Stack};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const T: Duration = Duration::from_secs(30);

/// The event schema with one optional field more: what a newer build would register.
fn next_schema_version() -> String {
    let mut schema: Value = serde_json::from_str(confab_core::avro::EVENT_SCHEMA).unwrap();
    let note = json!({"name": "trace_id", "type": ["null", "string"], "default": null});
    schema["fields"].as_array_mut().unwrap().push(note);
    schema.to_string()
}

async fn register(stack: &Stack, schema: &str) -> u32 {
    let subject = format!("{}.events-value", stack.namespace);
    let url = format!("{}/subjects/{subject}/versions", stack.registry_admin_url);
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(&stack.registry_write_key)
        .json(&json!({ "schema": schema }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["id"].as_u64().unwrap_or_else(|| panic!("registering: {body}")) as u32
}

/// `event` in the Confluent framing under schema `id` (the next version's text).
fn encode_next_version(event: &Event, schema: &str, id: u32) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    let Avro::Record(mut fields) = confab_core::avro::to_value(event) else { panic!("an event is a record") };
    fields.push(("trace_id".into(), Avro::Union(0, Box::new(Avro::Null))));
    let mut framed = vec![0u8];
    framed.extend_from_slice(&id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema).build().unwrap();
    writer.write_value(&mut framed, Avro::Record(fields)).unwrap();
    framed
}

fn kafka(stack: &Stack) -> String {
    stack.services.as_ref().unwrap().kafka.clone()
}

/// The partition of the events topic that holds `key`'s events (ingest wrote its creation).
fn partition_of(stack: &Stack, key: &str) -> i32 {
    let m = confab_tests::kafka::first_record(stack, "events", T, key, |m| m.key() == Some(key.as_bytes()));
    m.partition()
}

async fn produce(stack: &Stack, topic: &str, partition: i32, key: &str, payload: &[u8]) {
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", kafka(stack)).create().unwrap();
    let record = FutureRecord::to(topic).partition(partition).key(key).payload(payload);
    producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
}

/// The next message of a channel as a newer ingest would write it.
fn next_message(ws: Uuid, ch: Uuid, author: Uuid, seq: i64, text: &str) -> Event {
    let now = chrono::Utc::now().timestamp_millis();
    Event {
        event_id: Uuid::new_v4(),
        workspace_id: ws,
        channel_id: ch,
        actor_id: author,
        occurred_at: now,
        seq,
        schema_version: confab_core::avro::SCHEMA_VERSION,
        payload: Payload::MessagePosted {
            message_id: confab_core::TimeUuidGen::new().next(now),
            client_msg_id: format!("newer-{seq}"),
            text: text.into(),
            thread_ts: None,
            also_in_channel: false,
            thread: None,
            attachments: vec![],
        },
        sealing: Default::default(),
    }
}

async fn texts(stack: &Stack, ch: &str, token: &str) -> Vec<(i64, String)> {
    let history = stack.history_all("gw0", ch, token, 100).await;
    history.iter().map(|m| (m["seq"].as_i64().unwrap(), m["text"].as_str().unwrap().to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_delays_events_but_never_drops_them() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let mut stack = Stack::start(Mode::Distributed, 1).await;
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let bob = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0, &bob.0]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let mut b = Client::connect(&stack.addr("gw0"), &bob.1).await.unwrap();
    let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": "before"}), "m1").await;
    assert_eq!(ack["seq"], 2, "{ack}");
    b.expect_where("before, live", T, |f| f["message"]["text"] == "before").await;

    // 1. projectors meet an event whose schema they must fetch while the registry is down
    let schema = next_schema_version();
    let id = register(&stack, &schema).await;
    let (wsid, chid, author) = (ws.parse().unwrap(), ch.parse().unwrap(), alice.0.parse().unwrap());
    let key = confab_core::command::channel_key(&wsid, &chid);
    let partition = partition_of(&stack, &key);
    stack.stop_registry();
    let newer = next_message(wsid, chid, author, 3, "written by a newer ingest");
    let topic = format!("{}.events", stack.namespace);
    produce(&stack, &topic, partition, &key, &encode_next_version(&newer, &schema, id)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(texts(&stack, &ch, &alice.1).await, [(2, "before".to_string())], "applied without its schema?");
    stack.start_registry();
    let live = b.expect_where("the newer event, live", T, |f| f["type"] == "message:new").await;
    assert_eq!(live["message"]["text"], "written by a newer ingest");
    let want = [(2, "before".to_string()), (3, "written by a newer ingest".to_string())];
    eventually(T, "the newer event in history", || async {
        (texts(&stack, &ch, &alice.1).await == want).then_some(())
    })
    .await;

    // 2. ingest, restarted, loads the partition while the registry is down: it must wait, not
    //    rebuild its state without the newer event (that would hand seq 3 out again). A channel
    //    in another partition proves the new ingest is up (schema registered) before the outage
    let elsewhere = channel_in_another_partition(&stack, &ws, &alice.0, partition).await;
    stack.kill("ingest");
    stack.restart("ingest");
    let ack = a.command(json!({"type": "message:send", "channel_id": elsewhere, "text": "up?"}), "up").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
    stack.stop_registry();
    a.send(json!({"type": "message:send", "channel_id": ch, "text": "after", "client_msg_id": "m2"})).await;
    assert!(
        a.drain(Duration::from_secs(4)).await.iter().all(|f| f["type"] != "message:ack"),
        "acked without its state"
    );
    stack.start_registry();
    let ack = a.expect("message:ack", T).await;
    assert_eq!(ack["seq"], 4, "the seq after the newer event: {ack}");

    // 3. a record that can never be decoded is kept as a dead letter and passed
    produce(&stack, &topic, partition, &key, b"\x00\x00\x0f\x42\x40 not an event").await;
    let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": "later"}), "m3").await;
    assert_eq!(ack["seq"], 5, "{ack}");
    let all = [
        (2, "before".to_string()),
        (3, "written by a newer ingest".to_string()),
        (4, "after".to_string()),
        (5, "later".to_string()),
    ];
    eventually(T, "every message once", || async { (texts(&stack, &ch, &alice.1).await == all).then_some(()) }).await;
    let seen: Vec<i64> =
        b.drain(Duration::from_secs(1)).await.iter().filter_map(|f| f["message"]["seq"].as_i64()).collect();
    assert_eq!(seen, [4, 5], "bob got each once");
    let readers = dead_letter_readers(&stack, &["timeline", "fanout", "search", "erasure", "notifier"]);
    for projector in ["timeline", "fanout", "search", "erasure"] {
        assert!(readers.iter().any(|r| r == projector), "{projector} kept no dead letter: {readers:?}");
    }
}

/// A new channel whose events are in a partition other than `partition`.
async fn channel_in_another_partition(stack: &Stack, ws: &str, member: &str, partition: i32) -> String {
    for i in 0..20 {
        let ch = stack.create_channel(ws, &format!("other-{i}"), false, &[member]).await;
        let key = confab_core::command::channel_key(&ws.parse().unwrap(), &ch.parse().unwrap());
        if partition_of(stack, &key) != partition {
            return ch;
        }
    }
    panic!("20 channels, all in partition {partition}");
}

/// The `reader` header of the records in the dead-letter topic, until every one of `expected`
/// has been seen (or 15 s have passed).
fn dead_letter_readers(stack: &Stack, expected: &[&str]) -> Vec<String> {
    let topic = format!("{}.events.dead-letter", stack.namespace);
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka(stack))
        .set("group.id", format!("{}-dead-letters", stack.namespace))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut readers = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline && !expected.iter().all(|e| readers.iter().any(|r| r == e)) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let reader = m.headers().and_then(|h| h.iter().find(|h| h.key == "reader").and_then(|h| h.value));
            readers.push(String::from_utf8_lossy(reader.unwrap_or_default()).into_owned());
        }
    }
    readers
}
