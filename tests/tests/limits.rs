//! Every resource a client can hold has a bound (issue 16): HTTP connections (a cap, and a
//! header/idle timeout against slowloris), file transfers through the gateway, and search
//! paging that cannot overflow, the embedded log's disk watermark.

use confab_tests::{Mode, Stack};
use reqwest::Method;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Whether the server closes `tcp` (EOF or reset) within `within`.
fn closed_by_server(tcp: &mut TcpStream, within: Duration) -> bool {
    tcp.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_or_idling_is_cut_off() {
    let env = [("CONFAB_GATEWAY__HTTP_HEADER_TIMEOUT_MS", "700")];
    let stack = Stack::start_custom(Mode::Embedded, 1, None, &env).await;
    let addr = stack.addr("gw0");
    // slowloris: half a request, then nothing
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").unwrap();
    let started = Instant::now();
    assert!(closed_by_server(&mut slow, Duration::from_secs(10)), "a trickling client keeps its connection");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    // a connection that never sends a byte
    let mut idle = TcpStream::connect(&addr).unwrap();
    assert!(closed_by_server(&mut idle, Duration::from_secs(10)), "an idle connection is kept forever");
    // a kept-alive connection that goes quiet after a request
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(closed_by_server(&mut kept, Duration::from_secs(10)), "an idle kept-alive connection is kept forever");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once_and_counted() {
    let env = [("CONFAB_GATEWAY__MAX_HTTP_CONNECTIONS", "2"), ("CONFAB_GATEWAY__HTTP_HEADER_TIMEOUT_MS", "60000")];
    let stack = Stack::start_custom(Mode::Embedded, 1, None, &env).await;
    let addr = stack.addr("gw0");
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(&addr).unwrap();
    assert!(closed_by_server(&mut third, Duration::from_secs(5)), "a third connection was kept past the cap");
    let metrics =
        reqwest::get(format!("http://{}/metrics", stack.admin_addr("gw0"))).await.unwrap().text().await.unwrap();
    let refused = metrics.lines().find(|l| l.starts_with("confab_gateway_http_refused_total ")).unwrap_or_default();
    assert!(refused.ends_with(" 1") || refused.ends_with(" 2"), "{refused}");
    drop(held);
    // slots come back when connections close
    let healthy = confab_tests::stack::eventually(Duration::from_secs(10), "a free slot", || async {
        let r = reqwest::get(format!("http://{addr}/healthz")).await.ok()?;
        (r.status() == 200).then_some(())
    });
    healthy.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_paging_and_queries_past_their_bounds_are_typed_errors() {
    let stack = Stack::start(Mode::Embedded, 1).await;
    let ws = stack.create_workspace("acme").await;
    let (_alice, token) = stack.create_user(&ws, "alice").await;
    let path = format!("/api/search?q=hello&limit=10&offset={}", usize::MAX);
    let (status, v) = stack.call(Method::GET, "gw0", &path, &token, None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_field")), "{v}");
    // the query itself is bounded: length, words, names to resolve
    let many_words = (0..33).map(|i| format!("w{i}")).collect::<Vec<_>>().join("+");
    let many_names = (0..11).map(|i| format!("from:u{i}")).collect::<Vec<_>>().join("+");
    for q in ["a".repeat(1001), many_words, many_names] {
        let (status, v) = stack.call(Method::GET, "gw0", &format!("/api/search?q={q}"), &token, None).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_field")), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_transfers_past_the_cap_get_503_and_a_slow_one_its_deadline() {
    let env = [("CONFAB_FILES__MAX_CONCURRENT_TRANSFERS", "1"), ("CONFAB_FILES__TRANSFER_TIMEOUT_SECS", "2")];
    let stack = Stack::start_custom(Mode::Embedded, 1, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "files", false, &[&alice]).await;
    let grant = |name: &'static str| {
        let body = serde_json::json!({"channel_id": ch, "name": name, "size": 1000, "content_type": "text/plain"});
        let (stack, token) = (&stack, &token);
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (status, v) = stack.call(Method::POST, "gw0", "/api/files", token, Some(body.clone())).await;
                if status == 201 || Instant::now() > deadline {
                    assert_eq!(status, 201, "{v}");
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (slow, other) = (grant("slow.txt").await, grant("other.txt").await);
    // a slow upload holds the only slot: send its headers and a few bytes, then stall
    let url = reqwest::Url::parse(slow["upload"]["url"].as_str().unwrap()).unwrap();
    let mut tcp = TcpStream::connect(format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())).unwrap();
    let head = format!(
        "PUT {}?{} HTTP/1.1\r\nHost: localhost\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\nabc",
        url.path(),
        url.query().unwrap()
    );
    tcp.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let put = reqwest::Client::new()
        .put(other["upload"]["url"].as_str().unwrap())
        .header("content-type", "text/plain")
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 503, "a second transfer runs past the cap");
    // the stalled one is cut off at its deadline, with a typed answer
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // and the slot is free again
    let put = reqwest::Client::new()
        .put(other["upload"]["url"].as_str().unwrap())
        .header("content-type", "text/plain")
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
}

confab_tests::conformance!(
    sends_are_limited_per_user_across_sockets_and_gateways,
    the_channel_listing_looks_at_a_bounded_page_of_channels_per_call,
);

/// `GET /api/channels` pages: each call looks at `limit` channels of the workspace; walking
/// `next_after` yields every channel the caller may see once (and no private one of others); a
/// limit out of bounds is a typed 400.
async fn the_channel_listing_looks_at_a_bounded_page_of_channels_per_call(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_t) = stack.create_user(&ws, "alice").await;
    let (bob, _) = stack.create_user(&ws, "bob").await;
    let mut visible = std::collections::BTreeSet::new();
    for i in 0..7 {
        visible.insert(stack.create_channel(&ws, &format!("public-{i}"), false, &[&bob]).await);
    }
    visible.insert(stack.create_channel(&ws, "alices-secret", true, &[&alice, &bob]).await);
    let hidden = stack.create_channel(&ws, "bobs-secret", true, &[&bob]).await;
    let walk = || async {
        let (mut seen, mut after, mut calls) = (Vec::new(), None::<String>, 0);
        loop {
            let path = match &after {
                Some(a) => format!("/api/channels?limit=3&after={a}"),
                None => "/api/channels?limit=3".to_string(),
            };
            let (status, page) = stack.get("gw0", &path, &alice_t).await;
            assert_eq!(status, 200, "{page}");
            let channels = page["channels"].as_array().unwrap();
            assert!(channels.len() <= 3, "a page holds at most its limit: {page}");
            seen.extend(channels.iter().map(|c| c["channel_id"].as_str().unwrap().to_string()));
            calls += 1;
            match page["next_after"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => return (seen, calls),
            }
        }
    };
    let (seen, calls) = confab_tests::stack::eventually(Duration::from_secs(20), "every channel listed", || async {
        let (seen, calls) = walk().await;
        (seen.len() >= visible.len()).then_some((seen, calls))
    })
    .await;
    let unique: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "each channel once: {seen:?}");
    assert_eq!(unique, visible, "exactly the visible channels");
    assert!(!unique.contains(&hidden));
    assert!(calls >= 3, "9 channels in pages of 3 take at least 3 calls: {calls}");
    for bad in ["limit=0", "limit=1001", "after=not-a-uuid"] {
        let (status, body) = stack.get("gw0", &format!("/api/channels?{bad}"), &alice_t).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["code"].is_string(), "{bad}: {body}");
    }
}

/// Answers to every `message:send` in `clients` until `n` arrived: (acks, rate_limited errors).
async fn answers(clients: &mut [confab_tests::Client], n: usize) -> (usize, usize) {
    let (mut acks, mut limited) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while acks + limited < n && Instant::now() < deadline {
        for c in clients.iter_mut() {
            while let Some(f) = c.next(Duration::from_millis(20)).await {
                match f["type"].as_str() {
                    Some("message:ack") => acks += 1,
                    Some("error") if f["code"] == "rate_limited" => limited += 1,
                    _ => {}
                }
            }
        }
    }
    (acks, limited)
}

async fn sends_are_limited_per_user_across_sockets_and_gateways(mode: Mode) {
    let env = [
        ("CONFAB_GATEWAY__USER_SEND_RATE_PER_SEC", "1"),
        ("CONFAB_GATEWAY__USER_SEND_BURST", "3"),
        ("CONFAB_GATEWAY__WORKSPACE_SEND_RATE_PER_SEC", "1"),
        ("CONFAB_GATEWAY__WORKSPACE_SEND_BURST", "5"),
    ];
    let gateways = if mode == Mode::Distributed { 2 } else { 1 };
    let stack = Stack::start_custom(mode, gateways, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_t) = stack.create_user(&ws, "alice").await;
    let (bob, bob_t) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let last = if gateways == 2 { "gw1" } else { "gw0" };
    let connect = |gw: &'static str, token: String| {
        let addr = stack.addr(gw);
        async move { confab_tests::Client::connect(&addr, &token).await.unwrap() }
    };
    // one user, two sockets (on two gateways in distributed mode), six sends at once
    let mut alice_socks = vec![connect("gw0", alice_t.clone()).await, connect(last, alice_t).await];
    for i in 0..6 {
        let frame = serde_json::json!({"type": "message:send", "channel_id": ch, "text": "hi", "client_msg_id": format!("a{i}")});
        alice_socks[i % 2].send(frame).await;
    }
    let (acks, limited) = answers(&mut alice_socks, 6).await;
    assert_eq!(acks + limited, 6);
    assert!((3..=4).contains(&acks), "the user's burst is 3 (a refill may add one): {acks} acked, {limited} limited");
    // the workspace's bucket (5) is shared: bob gets what alice left, about 2
    let mut bob_socks = vec![connect("gw0", bob_t).await];
    for i in 0..4 {
        let frame = serde_json::json!({"type": "message:send", "channel_id": ch, "text": "yo", "client_msg_id": format!("b{i}")});
        bob_socks[0].send(frame).await;
    }
    let (acks_b, limited_b) = answers(&mut bob_socks, 4).await;
    assert_eq!(acks_b + limited_b, 4);
    assert!(acks + acks_b <= 7 && limited_b >= 1, "the workspace's burst is 5: alice {acks}, bob {acks_b}");

    // not only sends: every command takes from the same buckets (here, channel creations)
    let (_carol, carol_t) = stack.create_user(&ws, "carol").await;
    let mut carol = connect("gw0", carol_t.clone()).await;
    for i in 0..6 {
        let frame =
            serde_json::json!({"type": "channel:create", "name": format!("c{i}"), "client_msg_id": format!("c{i}")});
        carol.send(frame).await;
    }
    let (mut answered, mut limited_c) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered < 6 && Instant::now() < deadline {
        if let Some(f) = carol.next(Duration::from_millis(100)).await {
            match (f["type"].as_str(), f["code"].as_str()) {
                (Some("ok"), _) => answered += 1,
                (Some("error"), Some(code)) => {
                    answered += 1;
                    limited_c += usize::from(code == "rate_limited");
                }
                _ => {}
            }
        }
    }
    assert_eq!(answered, 6, "every creation is answered");
    assert!(limited_c >= 3, "carol's burst is 3 and the workspace's is spent: {limited_c} of 6 limited");
    // an upload grant takes from them too (before anything else is checked)
    let upload = serde_json::json!({"channel_id": ch, "name": "a.txt", "size": 1, "content_type": "text/plain"});
    let mut grants_limited = 0;
    for _ in 0..5 {
        let (status, v) = stack.call(Method::POST, "gw0", "/api/files", &carol_t, Some(upload.clone())).await;
        if status == 429 {
            assert_eq!(v["error"]["code"], "rate_limited", "{v}");
            grants_limited += 1;
        }
    }
    assert!(grants_limited >= 1, "upload grants are limited like other commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_hold_more_sockets_than_the_cap() {
    let env = [("CONFAB_GATEWAY__MAX_CONNECTIONS_PER_USER", "2")];
    let stack = Stack::start_custom(Mode::Embedded, 1, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let (_alice, alice_t) = stack.create_user(&ws, "alice").await;
    let (_bob, bob_t) = stack.create_user(&ws, "bob").await;
    let addr = stack.addr("gw0");
    let a1 = confab_tests::Client::connect(&addr, &alice_t).await.unwrap();
    let _a2 = confab_tests::Client::connect(&addr, &alice_t).await.unwrap();
    let refused = confab_tests::Client::connect(&addr, &alice_t).await.err().expect("a third socket is refused");
    assert_eq!((refused.0, refused.1["error"]["code"].as_str()), (429, Some("too_many_connections")), "{refused:?}");
    let _b = confab_tests::Client::connect(&addr, &bob_t).await.expect("another user is not affected");
    drop(a1);
    confab_tests::stack::eventually(Duration::from_secs(10), "a slot for alice again", || async {
        confab_tests::Client::connect(&addr, &alice_t).await.ok().map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_count_against_the_connection_rate() {
    let env = [("CONFAB_GATEWAY__RATE_PER_SEC", "1"), ("CONFAB_GATEWAY__RATE_BURST", "3")];
    let stack = Stack::start_custom(Mode::Embedded, 1, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let (_alice, token) = stack.create_user(&ws, "alice").await;
    let mut a = confab_tests::Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    for _ in 0..6 {
        a.send(serde_json::json!({"type": "ping"})).await;
    }
    let frames = a.drain(Duration::from_millis(500)).await;
    let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
    let limited = frames.iter().filter(|f| f["type"] == "error" && f["code"] == "rate_limited").count();
    assert!(pongs <= 4 && limited >= 2, "{pongs} pongs, {limited} rate_limited: a ping is not free");
}

/// Bytes free on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

/// A nearly full disk refuses new sends with `unavailable` (before fjall would fail a write
/// and stop the database for good), and sends are taken again by themselves once space returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_refuses_sends_and_recovers_by_itself() {
    let probe = tempfile::tempdir().unwrap();
    let free = free_bytes(probe.path());
    // a filler of up to 2 GiB takes free space from half a filler above the mark to half below
    let filler_bytes = (2u64 << 30).min(free / 2);
    let mark_mb = ((free - filler_bytes / 2) >> 20).to_string();
    let env = [("CONFAB_EMBEDDED__MIN_FREE_DISK_MB", mark_mb.as_str())];
    let stack = Stack::start_custom(Mode::Embedded, 1, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let mut client = confab_tests::Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    let send = |n: u32| serde_json::json!({"type": "message:send", "channel_id": ch, "text": format!("m{n}")});
    assert_eq!(client.command(send(0), "before").await["type"], "message:ack");

    let filler = stack.dir().join("filler");
    let status = std::process::Command::new("fallocate").args(["-l", &filler_bytes.to_string()]).arg(&filler).status();
    assert!(status.unwrap().success(), "fallocate");
    let mut refused = None;
    for n in 1..40 {
        let reply = client.command(send(n), &format!("low-{n}")).await;
        if reply["type"] == "error" {
            refused = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = refused.expect("a send is refused while the disk is under the mark");
    assert_eq!(refused["code"], "unavailable", "{refused}");

    std::fs::remove_file(&filler).unwrap();
    let mut accepted = false;
    for n in 0..40 {
        let reply = client.command(send(100 + n), &format!("again-{n}")).await;
        if reply["type"] == "message:ack" {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "sends are taken again once space returns");
}
