//! Distributed mode with every server secured at once (issue 17, item 1), as on managed
//! services. Each server is one of the test's own, made by its `scripts/services/*.sh` with a
//! CA of its own:
//! - Kafka (`KAFKA_SECURITY=sasl_ssl`): SASL_SSL with SCRAM-SHA-512 only and ACLs, one user per
//!   Confab role, each allowed its own topics and nothing else (`acl_rows` in the script);
//! - Redis (`REDIS_SECURITY=tls`): TLS only, the default user off, one ACL user confined to the
//!   keys of the stack's namespace (`~<ns>:*`);
//! - Cassandra (`CASSANDRA_SECURITY=tls`): client TLS only, `PasswordAuthenticator`, a login
//!   that is no superuser;
//! - OpenSearch (`OPENSEARCH_SECURITY=tls`): the security plugin, HTTPS and basic auth.
//!
//! Shown: messages go end to end (acked once, delivered once on the other gateway, kept in
//! history, found by search); the Redis-backed parts work (presence, typing, resume, the send
//! limits); a gateway's Kafka user cannot forge events, a projector's cannot send commands, and
//! a wrong password or a plaintext client gets nothing from the broker.

use confab_tests::stack::eventually;
use confab_tests::{servers_available, Client, Mode, OwnServer, Stack};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A Kafka client of the test's own with `user`'s credentials (plaintext when `None`).
fn kafka_client(kafka: &OwnServer, user: Option<(&str, &str)>) -> ClientConfig {
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

/// Produces one record to `topic`; the error's text, or `None` when it was written.
async fn produce(config: &ClientConfig, topic: &str) -> Option<String> {
    let producer: FutureProducer = config.create().expect("a producer");
    let record = FutureRecord::to(topic).key("k").payload("forged");
    producer.send(record, Duration::from_secs(10)).await.err().map(|(e, _)| e.to_string())
}

/// `url` (`scheme://user:password@host...`) with another password (the user `confab` when it
/// names none).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, host) = match rest.split_once('@') {
        Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or("confab"), host),
        None => ("confab", rest),
    };
    format!("{scheme}://{user}:{password}@{host}")
}

/// A setting that cannot work: what it is, the `confab` command it is given to, the process's
/// settings, and the word its error must name.
type BadSetting = (&'static str, Vec<&'static str>, Vec<(String, String)>, &'static str);

/// The four secured servers, started side by side.
struct Secured {
    kafka: OwnServer,
    redis: OwnServer,
    cassandra: OwnServer,
    opensearch: OwnServer,
}

fn start_secured_servers(namespace: &str) -> Secured {
    std::thread::scope(|s| {
        let kafka = s.spawn(|| OwnServer::kafka_secured(namespace));
        let redis = s.spawn(|| OwnServer::redis_secured(namespace));
        let cassandra = s.spawn(|| OwnServer::start("cassandra", &[("CASSANDRA_SECURITY", "tls")]));
        let opensearch = s.spawn(|| OwnServer::start("opensearch", &[("OPENSEARCH_SECURITY", "tls")]));
        Secured {
            kafka: kafka.join().expect("kafka"),
            redis: redis.join().expect("redis"),
            cassandra: cassandra.join().expect("cassandra"),
            opensearch: opensearch.join().expect("opensearch"),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_on_secured_servers_works_and_each_role_gets_only_its_own() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let namespace = Stack::new_namespace();
    let servers = tokio::task::block_in_place(|| start_secured_servers(&namespace));
    let Secured { kafka, redis, cassandra, opensearch } = &servers;
    let s = |server: &OwnServer, key: &str| server.setting(key);
    let (brokers, kafka_ca) = (kafka.brokers(), s(kafka, "CONFAB_KAFKA_CA"));
    let (cassandra_nodes, cassandra_user, cassandra_password, cassandra_ca) = (
        s(cassandra, "CONFAB_CASSANDRA_NODES"),
        s(cassandra, "CONFAB_CASSANDRA_USER"),
        s(cassandra, "CONFAB_CASSANDRA_PASSWORD"),
        s(cassandra, "CONFAB_CASSANDRA_CA"),
    );
    let (search_url, search_ca) = (s(opensearch, "CONFAB_OPENSEARCH_URL"), s(opensearch, "CONFAB_OPENSEARCH_CA"));
    let (redis_url, redis_ca) = (s(redis, "CONFAB_REDIS_URL"), s(redis, "CONFAB_REDIS_CA"));
    assert!(search_url.starts_with("https://") && redis_url.starts_with("rediss://"), "{search_url} {redis_url}");
    let every_process = [
        ("CONFAB_NAMESPACE", namespace.as_str()),
        ("CONFAB_KAFKA__BROKERS", brokers.as_str()),
        ("CONFAB_KAFKA__PROPERTIES__SECURITY_PROTOCOL", "SASL_SSL"),
        ("CONFAB_KAFKA__PROPERTIES__SASL_MECHANISMS", "SCRAM-SHA-512"),
        ("CONFAB_KAFKA__PROPERTIES__SSL_CA_LOCATION", kafka_ca.as_str()),
        ("CONFAB_REDIS__CA_FILE", redis_ca.as_str()),
        ("CONFAB_CASSANDRA__NODES", cassandra_nodes.as_str()),
        ("CONFAB_CASSANDRA__USERNAME", cassandra_user.as_str()),
        ("CONFAB_CASSANDRA__PASSWORD", cassandra_password.as_str()),
        ("CONFAB_CASSANDRA__TLS", "true"),
        ("CONFAB_CASSANDRA__CA_FILE", cassandra_ca.as_str()),
        ("CONFAB_SEARCH__URL", search_url.as_str()),
        ("CONFAB_SEARCH__CA_FILE", search_ca.as_str()),
        // the send limits are Redis scripts too: on, but far above what this test sends
        ("CONFAB_GATEWAY__USER_SEND_RATE_PER_SEC", "1000"),
        ("CONFAB_GATEWAY__WORKSPACE_SEND_RATE_PER_SEC", "1000"),
        ("CONFAB_GATEWAY__PRESENCE_BATCH_MS", "100"),
    ];
    // `confab setup` creates the topics as the Kafka administrator; the notifier reads the log
    // as the projectors do
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
    roles.push(("erasure", "CONFAB_KAFKA__PROPERTIES__SASL_USERNAME", "projector"));
    roles.push(("erasure", "CONFAB_KAFKA__PROPERTIES__SASL_PASSWORD", projector_password));
    let stack = Stack::start_with_roles(Mode::Distributed, 2, Some(redis_url), &every_process, &roles).await;

    let ws = stack.create_workspace("acme").await;
    let (alice, alice_token) = stack.create_user(&ws, "alice").await;
    let (bob, bob_token) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    // bob subscribed on the other gateway (the membership index follows the creation)
    let mut b = eventually(T, "bob subscribed to the channel", || async {
        let mut b = Client::connect_resuming(&stack.addr("gw1"), &bob_token).await.unwrap();
        b.send(json!({"type": "resume", "channels": {&ch: 0}})).await;
        let done = b.expect("resume:done", T).await;
        done["channels"].get(&ch).map(|_| b)
    })
    .await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice_token).await.unwrap();
    // presence (Lua scripts over the presence keys) and typing (the ephemeral stream)
    b.expect_where("alice online", T, |f| {
        f["type"] == "presence:change"
            && f["users"].as_array().is_some_and(|u| u.iter().any(|u| u["user_id"] == alice.as_str()))
    })
    .await;
    a.send(json!({"type": "typing:start", "channel_id": ch})).await;
    b.expect_where("alice typing", T, |f| f["type"] == "typing" && f["user_id"] == alice.as_str()).await;

    let n = 20;
    for i in 0..n {
        let ack = a
            .command(
                json!({"type": "message:send", "channel_id": ch, "text": format!("sealed {i}")}),
                &format!("s-{i}"),
            )
            .await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
    }
    let mut last_seq = 0;
    for i in 0..n {
        let f = b.expect("message:new", T).await;
        assert_eq!(f["message"]["text"], format!("sealed {i}"), "bob gets each message once, in order");
        last_seq = f["message"]["seq"].as_i64().unwrap();
    }
    assert!(b.drain(Duration::from_millis(500)).await.iter().all(|f| f["type"] != "message:new"), "no duplicates");
    let history = eventually(T, "history holds every message", || async {
        let h = stack.history_all("gw1", &ch, &bob_token, 100).await;
        (h.len() == n).then_some(h)
    })
    .await;
    assert_eq!(history[n - 1]["text"], format!("sealed {}", n - 1));
    eventually(T, "search finds every message", || async {
        let total = stack.get("gw0", "/api/search?q=sealed", &alice_token).await.1["total"].as_u64();
        (total == Some(n as u64)).then_some(())
    })
    .await;
    // a resume from before the first message replays all of them from the Redis stream
    let mut again = Client::connect_resuming(&stack.addr("gw0"), &bob_token).await.unwrap();
    again.send(json!({"type": "resume", "channels": {&ch: last_seq - n as i64}})).await;
    let mut replayed = Vec::new();
    loop {
        let f = again.next(T).await.expect("resume:done within the timeout");
        match f["type"].as_str() {
            Some("resume:done") => break,
            Some("message:new") => replayed.push(f["message"]["text"].as_str().unwrap().to_string()),
            _ => {}
        }
    }
    assert_eq!(replayed, (0..n).map(|i| format!("sealed {i}")).collect::<Vec<_>>());

    // the gateway's Kafka user writes commands, never events: a forged event is refused
    let gateway = kafka_client(kafka, Some(("gateway", &users[1].2)));
    let refused =
        produce(&gateway, &format!("{namespace}.events")).await.expect("a gateway's user cannot write events");
    assert!(refused.contains("TopicAuthorization"), "{refused}");
    // nor can a projector's user send commands
    let projector = kafka_client(kafka, Some(("projector", projector_password)));
    let refused =
        produce(&projector, &format!("{namespace}.commands")).await.expect("a projector cannot send commands");
    assert!(refused.contains("TopicAuthorization"), "{refused}");
    // a wrong password and a plaintext client get nothing
    let impostor = kafka_client(kafka, Some(("gateway", "not-the-password")));
    assert!(produce(&impostor, &format!("{namespace}.commands")).await.is_some(), "a wrong password writes nothing");
    let plaintext = kafka_client(kafka, None);
    assert!(produce(&plaintext, &format!("{namespace}.commands")).await.is_some(), "plaintext writes nothing");

    // a wrong credential or a certificate nobody vouches for stops a process at once, with an
    // error naming the setting: it never waits forever for what cannot work
    let bad_redis = with_password(&redis.setting("CONFAB_REDIS_URL"), "not-the-password");
    let bad_search = with_password(&search_url, "not-the-password");
    // (what, the projector given it, the bad setting, the word its error names); ingest's
    // Kafka password comes after, as it is the one case that is not a projector's
    let projector_cases: [(&str, &str, (&str, &str), &str); 6] = [
        ("cassandra password", "timeline", ("CONFAB_CASSANDRA__PASSWORD", "not-the-password"), "cassandra"),
        ("cassandra certificate", "timeline", ("CONFAB_CASSANDRA__CA_FILE", ""), "cassandra"),
        ("redis password", "fanout", ("CONFAB_REDIS__URL", &bad_redis), "redis"),
        ("redis certificate", "fanout", ("CONFAB_REDIS__CA_FILE", ""), "redis"),
        ("search password", "search", ("CONFAB_SEARCH__URL", &bad_search), "search"),
        ("search certificate", "search", ("CONFAB_SEARCH__CA_FILE", ""), "search"),
    ];
    let kafka_user = |user: &str, password: &str| {
        vec![
            ("CONFAB_KAFKA__PROPERTIES__SASL_USERNAME".to_string(), user.to_string()),
            ("CONFAB_KAFKA__PROPERTIES__SASL_PASSWORD".to_string(), password.to_string()),
        ]
    };
    let mut cases: Vec<BadSetting> =
        vec![("kafka password", vec!["ingest"], kafka_user("ingest", "not-the-password"), "kafka")];
    for (what, projector, (key, value), names) in projector_cases {
        let mut env = kafka_user("projector", projector_password);
        env.push((key.to_string(), value.to_string()));
        cases.push((what, vec!["projector", projector], env, names));
    }
    for (what, args, env, names) in cases {
        let mut command = stack.confab(&args);
        // info: if it does not stop, its last lines say where it waits
        command
            .envs(env)
            .env("CONFAB_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let started = std::time::Instant::now();
        let mut child = command.spawn().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        let tail: String = err.lines().rev().take(12).collect::<Vec<_>>().join("\n");
        let took = started.elapsed();
        eprintln!("{what}: {status:?} after {took:?}");
        assert!(
            status.is_some_and(|s| !s.success()),
            "a {what} that cannot work must stop `confab {}`:\n{tail}",
            args.join(" ")
        );
        assert!(err.to_lowercase().contains(names), "the error names {names}:\n{tail}");
    }
}
