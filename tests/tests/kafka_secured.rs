//! Distributed mode on a secured Kafka (issue 17, item 1). The broker of this test
//! (`scripts/services/kafka.sh` with `KAFKA_SECURITY=sasl_ssl`) takes SASL_SSL with
//! SCRAM-SHA-512 only, presents a certificate of a CA of its own, and authorizes with ACLs: one
//! user per Confab role, each allowed its own topics and nothing else (`kafka_acls` in the
//! script holds the whole model). Every process reaches it through `[kafka.properties]` with its
//! role's credentials, as an operator configures MSK or Confluent Cloud.
//!
//! Shown here: messages go end to end (acked once, delivered once on the other gateway, kept
//! in history, found by search); a gateway's credentials cannot forge events or read the log;
//! a wrong password and a plaintext client get nothing.

use confab_tests::stack::eventually;
use confab_tests::{servers_available, Client, Mode, OwnServer, Stack};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A client of the test's own with `user`'s credentials (or plaintext when `user` is `None`).
fn client_config(kafka: &OwnServer, user: Option<(&str, &str)>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", kafka.brokers()).set("message.timeout.ms", "5000").set("socket.timeout.ms", "5000");
    if let Some((name, password)) = user {
        c.set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "SCRAM-SHA-512")
            .set("sasl.username", name)
            .set("sasl.password", password)
            .set("ssl.ca.location", kafka.setting("CONFAB_KAFKA_CA"));
    }
    c
}

/// Produces one record to `topic` and returns the error's text, or `None` when it was written.
async fn produce(config: &ClientConfig, topic: &str) -> Option<String> {
    let producer: FutureProducer = config.create().expect("a producer");
    let record = FutureRecord::to(topic).key("k").payload("forged");
    producer.send(record, Duration::from_secs(10)).await.err().map(|(e, _)| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_reaches_a_secured_broker_with_its_own_user_and_its_own_topics_only() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let namespace = Stack::new_namespace();
    let kafka = OwnServer::kafka_secured(&namespace);
    let (brokers, ca) = (kafka.brokers(), kafka.setting("CONFAB_KAFKA_CA"));
    let every_process = [
        ("CONFAB_NAMESPACE", namespace.as_str()),
        ("CONFAB_KAFKA__BROKERS", brokers.as_str()),
        ("CONFAB_KAFKA__PROPERTIES__SECURITY_PROTOCOL", "SASL_SSL"),
        ("CONFAB_KAFKA__PROPERTIES__SASL_MECHANISMS", "SCRAM-SHA-512"),
        ("CONFAB_KAFKA__PROPERTIES__SSL_CA_LOCATION", ca.as_str()),
    ];
    // `confab setup` creates the topics as the administrator; the notifier reads the log as
    // the projectors do
    let users = [("setup", "admin"), ("gateway", "gateway"), ("ingest", "ingest"), ("projector", "projector")];
    let users = users
        .map(|(role, user)| (role, user, kafka.setting(&format!("CONFAB_KAFKA_{}_PASSWORD", user.to_uppercase()))));
    let mut roles: Vec<(&str, &str, &str)> = Vec::new();
    for (role, user, password) in &users {
        roles.push((role, "CONFAB_KAFKA__PROPERTIES__SASL_USERNAME", user));
        roles.push((role, "CONFAB_KAFKA__PROPERTIES__SASL_PASSWORD", password));
    }
    let projector_password = &users[3].2;
    roles.push(("notifier", "CONFAB_KAFKA__PROPERTIES__SASL_USERNAME", "projector"));
    roles.push(("notifier", "CONFAB_KAFKA__PROPERTIES__SASL_PASSWORD", projector_password));
    let stack = Stack::start_with_roles(Mode::Distributed, 2, None, &every_process, &roles).await;

    let ws = stack.create_workspace("acme").await;
    let (alice, alice_token) = stack.create_user(&ws, "alice").await;
    let (bob, bob_token) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice_token).await.unwrap();
    let mut b = Client::connect(&stack.addr("gw1"), &bob_token).await.unwrap();
    let n = 20;
    for i in 0..n {
        let ack = a
            .command(
                serde_json::json!({"type": "message:send", "channel_id": ch, "text": format!("sealed {i}")}),
                &format!("s-{i}"),
            )
            .await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
    }
    for i in 0..n {
        let f = b.expect("message:new", T).await;
        assert_eq!(f["message"]["text"], format!("sealed {i}"), "bob gets each message once, in order");
    }
    assert!(b.drain(Duration::from_millis(500)).await.iter().all(|f| f["type"] != "message:new"), "no duplicates");
    let history = eventually(T, "history holds every message", || async {
        let h = stack.history_all("gw1", &ch, &bob_token, 100).await;
        (h.len() == n).then_some(h)
    })
    .await;
    assert_eq!(history[n - 1]["text"], format!("sealed {}", n - 1));
    eventually(T, "search finds a message", || async {
        (stack.get("gw0", "/api/search?q=sealed", &alice_token).await.1["total"].as_u64() == Some(n as u64))
            .then_some(())
    })
    .await;

    // the gateway's user writes commands, never events: a forged event is refused by the broker
    let gateway = client_config(&kafka, Some(("gateway", &users[1].2)));
    let events = format!("{namespace}.events");
    let refused = produce(&gateway, &events).await.expect("a gateway's user cannot write events");
    assert!(refused.contains("TopicAuthorization"), "{refused}");
    // nor can a projector's user write commands
    let projector = client_config(&kafka, Some(("projector", projector_password)));
    let refused =
        produce(&projector, &format!("{namespace}.commands")).await.expect("a projector cannot send commands");
    assert!(refused.contains("TopicAuthorization"), "{refused}");
    // a wrong password and a plaintext client get nothing
    let impostor = client_config(&kafka, Some(("gateway", "not-the-password")));
    assert!(produce(&impostor, &format!("{namespace}.commands")).await.is_some(), "a wrong password writes nothing");
    let plaintext = client_config(&kafka, None);
    assert!(produce(&plaintext, &format!("{namespace}.commands")).await.is_some(), "plaintext writes nothing");
}
