//! Every Confab process rides out a server's outage by itself (issue 17). The filed finding:
//! with two gateways and a steady, retrying sender, a Kafka broker down for 10 s made the
//! timeline and fanout projectors exit for good. Here, while alice keeps sending (one message
//! per 100 ms, resending what was not acknowledged, as the documented client does):
//! - a Kafka broker of the stack's own (`scripts/services/kafka.sh`) is killed (`kill -9`) for
//!   10 s and started again on the same ports and data;
//! - Cassandra, OpenSearch, then Redis stop answering for 10 s (`SIGSTOP`, as a long GC pause or a
//!   network partition looks to a client), then go on (`SIGCONT`).
//! - in the replicated topology production runs (three Kafka brokers with replication 3 and
//!   `min.insync.replicas` 2; three Cassandra nodes with replication 3), one broker or node is
//!   killed (`kill -9`) for 10 s and started again: there, no process needs to turn unready.
//!
//! Then, counting at the clients and in the stores: every message acknowledged once (a retry's
//! ack names the same message), delivered once to bob on the other gateway, stored once with
//! the acknowledged id and seq, seqs gap-free, found by search; every process still running.
//! Readiness (`/readyz`) turned false during the outage where the server is needed and true
//! again after it, while liveness (`/livez`) never failed. The tests take turns: two outages
//! at once would blur what each shows.

use confab_tests::stack::eventually;
use confab_tests::{servers_available, Client, Mode, OwnServer, Stack};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// One outage at a time (the Cassandra and OpenSearch ones stop servers other tests share).
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const OUTAGE: Duration = Duration::from_secs(10);
const MESSAGES: usize = 150;

/// A shared server's process, frozen (`SIGSTOP`) and thawed (`SIGCONT`); thawed when dropped.
struct Frozen {
    pid: String,
}

impl Frozen {
    /// The server `name` (its directory in the servers' run directory) stops answering.
    fn freeze(name: &str) -> Frozen {
        let env = std::env::var("CONFAB_TEST_ENV").expect("CONFAB_TEST_ENV");
        let pid_file = std::path::Path::new(&env).parent().unwrap().join(name).join("pid");
        let pid = std::fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
        let frozen = Frozen { pid: pid.trim().to_string() };
        assert!(Command::new("kill").args(["-STOP", &frozen.pid]).status().unwrap().success(), "SIGSTOP {name}");
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid]).status();
    }
}

/// Every Confab process of a distributed stack with two gateways.
const PROCESSES: [&str; 7] = ["ingest", "timeline", "fanout", "search", "notifier", "gw0", "gw1"];

/// `GET` a telemetry path of a process's private listener; its status (0 when unreachable).
async fn probe(stack: &Stack, process: &str, path: &str) -> u16 {
    let addr = if process.starts_with("gw") { stack.admin_addr(process) } else { stack.addr(process) };
    match reqwest::Client::new().get(format!("http://{addr}{path}")).timeout(Duration::from_secs(2)).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

fn record_ack(f: &Value, acked: &mut HashMap<String, (Value, Value)>, duplicate_acks: &mut usize) {
    if f["type"] != "message:ack" {
        return;
    }
    let key = f["client_msg_id"].as_str().unwrap().to_string();
    let named = (f["message_id"].clone(), f["seq"].clone());
    match acked.get(&key) {
        // a retried send is acknowledged again: with the same message, never another
        Some(first) => {
            assert_eq!(first, &named, "a retry of {key} named another message");
            *duplicate_acks += 1;
        }
        None => {
            acked.insert(key, named);
        }
    }
}

/// What one run saw (printed through `Debug` in the test's output).
#[derive(Debug)]
#[allow(dead_code)]
struct Report {
    acked: usize,
    acks_of_retries: usize,
    delivered_to_bob: usize,
    in_history: usize,
    found_by_search: u64,
    unready: Vec<&'static str>,
    /// The longest time between two new acknowledgements while the sender ran: how long sends
    /// stalled (a server's failover, or its outage).
    longest_ack_gap: Duration,
}

/// Drives alice's steady, retrying sends through an outage (`begin` after 2 s, `end` 10 s
/// later) and checks everything the module's header promises; `needed` are the processes that
/// must turn unready meanwhile.
async fn through_an_outage(
    stack: &mut Stack,
    mut begin: impl FnMut(),
    mut end: impl FnMut(),
    needed: &[&str],
) -> Report {
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_token) = stack.create_user(&ws, "alice").await;
    let (bob, bob_token) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice_token).await.unwrap();
    let mut b = Client::connect(&stack.addr("gw1"), &bob_token).await.unwrap();
    for p in PROCESSES {
        assert_eq!(probe(stack, p, "/readyz").await, 200, "{p} ready before the outage");
    }

    let mut acked: HashMap<String, (Value, Value)> = HashMap::new();
    let mut acks_of_retries = 0;
    let mut delivered: Vec<Value> = Vec::new();
    let (mut began_at, mut ended) = (None, false);
    let mut unready: Vec<&'static str> = Vec::new();
    let (mut last_ack_at, mut longest_ack_gap) = (Instant::now(), Duration::ZERO);
    for i in 0..MESSAGES {
        if i == 20 {
            begin();
            began_at = Some(Instant::now());
        }
        if let Some(at) = began_at.filter(|_| !ended) {
            // readiness follows the outage within a few seconds; liveness never fails
            if at.elapsed() >= Duration::from_secs(3) {
                for p in PROCESSES {
                    if !unready.contains(&p) && probe(stack, p, "/readyz").await == 503 {
                        unready.push(p);
                    }
                    assert_eq!(probe(stack, p, "/livez").await, 200, "{p} is alive during the outage");
                }
            }
            if at.elapsed() >= OUTAGE {
                end();
                ended = true;
            }
        }
        assert!(a.try_send_message(&ch, &format!("m{i}"), &format!("k{i}")).await, "alice's socket stays open");
        let acked_before = acked.len();
        while let Some(f) = a.next(Duration::ZERO).await {
            record_ack(&f, &mut acked, &mut acks_of_retries);
        }
        if acked.len() > acked_before {
            longest_ack_gap = longest_ack_gap.max(last_ack_at.elapsed());
            last_ack_at = Instant::now();
        }
        while let Some(f) = b.next(Duration::ZERO).await {
            delivered.push(f);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "the outage ended within the run");

    // what was not acknowledged is sent again, as the documented client does
    let deadline = Instant::now() + Duration::from_secs(90);
    while acked.len() < MESSAGES && Instant::now() < deadline {
        while let Some(f) = a.next(Duration::from_secs(3)).await {
            record_ack(&f, &mut acked, &mut acks_of_retries);
        }
        for i in (0..MESSAGES).filter(|i| !acked.contains_key(&format!("k{i}"))) {
            a.try_send_message(&ch, &format!("m{i}"), &format!("k{i}")).await;
        }
    }
    assert_eq!(acked.len(), MESSAGES, "every send acknowledged after retries; ingest log:\n{}", stack.log("ingest"));

    // every process rode it out
    for p in PROCESSES {
        assert!(stack.running(p), "{p} exited during the outage; its log:\n{}", stack.log(p));
    }
    for p in needed {
        assert!(unready.contains(p), "{p} stayed ready through the outage (unready: {unready:?})");
    }

    // bob, on the other gateway, gets each message once
    let news = |frames: &[Value]| -> Vec<String> {
        frames
            .iter()
            .filter(|f| f["type"] == "message:new" && f["message"]["user_id"] == alice.as_str())
            .map(|f| f["message"]["client_msg_id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while news(&delivered).iter().collect::<HashSet<_>>().len() < MESSAGES && Instant::now() < deadline {
        while let Some(f) = b.next(Duration::from_millis(500)).await {
            delivered.push(f);
        }
    }
    let got = news(&delivered);
    let distinct: HashSet<&String> = got.iter().collect();
    if distinct.len() != MESSAGES {
        // what the path to bob said meanwhile: the fanout projector's and bob's gateway's logs
        let tail = |p: &str| {
            stack.log(p).lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        panic!(
            "every message reaches bob (lost: {}); fanout log:\n{}\ngw1 log:\n{}",
            MESSAGES - distinct.len(),
            tail("fanout"),
            tail("gw1")
        );
    }
    assert_eq!(got.len(), MESSAGES, "no message reaches bob twice");

    // the store holds each once, as acknowledged, gap-free
    let history = eventually(Duration::from_secs(60), "history to hold every message", || async {
        let h = stack.history_all("gw0", &ch, &alice_token, 100).await;
        (h.len() >= MESSAGES).then_some(h)
    })
    .await;
    assert_eq!(history.len(), MESSAGES, "no doubled messages in history");
    for m in &history {
        let (id, seq) = &acked[m["client_msg_id"].as_str().unwrap()];
        assert_eq!((&m["message_id"], &m["seq"]), (id, seq), "the ack names the stored message");
    }
    let mut seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    seqs.sort();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + MESSAGES as i64).collect::<Vec<_>>(), "gap-free seqs");

    // and the index holds each once
    let search = "/api/search?q=in:%23general+from:alice&limit=1";
    let found_by_search = eventually(Duration::from_secs(60), "search to find every message", || async {
        let (status, v) = stack.get("gw0", search, &alice_token).await;
        let total = v["total"].as_u64().unwrap_or(0);
        (status == 200 && total >= MESSAGES as u64).then_some(total)
    })
    .await;
    assert_eq!(found_by_search, MESSAGES as u64, "no doubled documents in the index");
    for p in PROCESSES {
        let ready = eventually(Duration::from_secs(30), "ready again", || async {
            (probe(stack, p, "/readyz").await == 200).then_some(())
        });
        ready.await;
    }
    Report {
        acked: acked.len(),
        acks_of_retries,
        delivered_to_bob: got.len(),
        in_history: history.len(),
        found_by_search,
        unready,
        longest_ack_gap,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_broker_killed_for_ten_seconds_loses_and_doubles_nothing() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let kafka = OwnServer::kafka();
    let brokers = kafka.brokers();
    let mut stack =
        Stack::start_custom(Mode::Distributed, 2, None, &[("CONFAB_KAFKA__BROKERS", brokers.as_str())]).await;
    let report = through_an_outage(&mut stack, || kafka.kill_kafka(), || kafka.start_again(), &PROCESSES).await;
    eprintln!("kafka broker killed for 10 s: {report:?}");
}

/// A shared server frozen (`SIGSTOP`) for 10 s under the steady sender, then thawed; `needed`
/// are the processes that must turn unready meanwhile.
async fn a_frozen_server_loses_and_doubles_nothing(server: &str, needed: &[&str]) {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut stack = Stack::start(Mode::Distributed, 2).await;
    let frozen = RefCell::new(None);
    let report = through_an_outage(
        &mut stack,
        || *frozen.borrow_mut() = Some(Frozen::freeze(server)),
        || *frozen.borrow_mut() = None,
        needed,
    )
    .await;
    eprintln!("{server} stopped for 10 s: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_not_answering_for_ten_seconds_loses_and_doubles_nothing() {
    // gateways seal each command, and ingest each event, under keys they store in Cassandra
    // first, so while Cassandra is away no message is accepted (the client's retries carry them
    // over), the projectors have nothing new to write, and ingest, which checks the key store
    // for its readiness, is unready though no command reaches it
    a_frozen_server_loses_and_doubles_nothing("cassandra", &["ingest", "gw0", "gw1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_not_answering_for_ten_seconds_loses_and_doubles_nothing() {
    a_frozen_server_loses_and_doubles_nothing("opensearch", &["search"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_not_answering_for_ten_seconds_loses_and_doubles_nothing() {
    a_frozen_server_loses_and_doubles_nothing("redis", &["fanout", "gw0", "gw1"]).await;
}

/// Production runs three Kafka brokers (replication 3, `min.insync.replicas` 2): one killed
/// (`kill -9`) for 10 s under the steady sender loses and doubles nothing, and no process needs
/// to turn unready; the partitions it led move to the others. The broker killed is the one
/// coordinating ingest's consumer group, so ingest must find its group a new coordinator as
/// well as new leaders (when it fences ingest's static membership, ingest joins again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_kafka_brokers_killed_loses_and_doubles_nothing() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let kafka = tokio::task::block_in_place(|| OwnServer::replicated("kafka"));
    let brokers = kafka.brokers();
    let env = [
        ("CONFAB_KAFKA__BROKERS", brokers.as_str()),
        ("CONFAB_KAFKA__REPLICATION_FACTOR", "3"),
        ("CONFAB_KAFKA__MIN_INSYNC_REPLICAS", "2"),
    ];
    let mut stack = Stack::start_custom(Mode::Distributed, 2, None, &env).await;
    let ingest_group = format!("{}-ingest", stack.namespace);
    let node = tokio::task::block_in_place(|| kafka.kafka_coordinator(&ingest_group));
    let report = through_an_outage(&mut stack, || kafka.kill_node(node), || kafka.start_node(node), &[]).await;
    eprintln!("one of three kafka brokers killed for 10 s: {report:?}");
}

/// Production runs three Cassandra nodes (replication 3, `LOCAL_QUORUM`): one killed for 10 s
/// under the steady sender loses and doubles nothing; history answers throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_cassandra_nodes_killed_loses_and_doubles_nothing() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let cassandra = tokio::task::block_in_place(|| OwnServer::replicated("cassandra"));
    let nodes = cassandra.setting("CONFAB_CASSANDRA_NODES");
    let env = [("CONFAB_CASSANDRA__NODES", nodes.as_str()), ("CONFAB_CASSANDRA__REPLICATION_FACTOR", "3")];
    let mut stack = Stack::start_custom(Mode::Distributed, 2, None, &env).await;
    let report = through_an_outage(&mut stack, || cassandra.kill_node(2), || cassandra.start_node(2), &[]).await;
    eprintln!("one of three cassandra nodes killed for 10 s: {report:?}");
}
