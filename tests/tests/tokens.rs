//! Tokens a real deployment can use (issue 16, item 18): standard JWTs (HS256 with the token
//! secret, RS256 / EdDSA from a JWKS), a bounded lifetime, per-user revocation that closes open
//! sockets, expiry that closes them too, the token in `Sec-WebSocket-Protocol`, and commands
//! that ingest sequences only when a gateway signed them.

use confab_tests::stack::eventually;
use confab_tests::{conformance, servers_available, Client, Mode, Stack};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rdkafka::message::{Header as KafkaHeader, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const TOKEN_SECRET: &str = "tokens-test-secret-0123456789abcdef0123";
const MAX_LIFETIME_SECS: i64 = 3600;

conformance!(
    standard_jwts_are_accepted_over_http_and_websocket_and_bad_ones_refused,
    revoking_a_users_tokens_refuses_them_everywhere_and_closes_their_sockets,
    a_socket_is_closed_with_its_own_code_when_its_token_expires,
);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/jwt").join(name)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A JWT for `user` of `ws`, issued at `iat`, living `ttl` seconds, signed with `alg` (the
/// stack's secret for HS256, the fixture keys otherwise).
fn jwt(alg: Algorithm, kid: Option<&str>, ws: &str, user: &str, iat: i64, ttl: i64) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(TOKEN_SECRET.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519-private.pem")).unwrap()).unwrap(),
        _ => EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-private.pem")).unwrap()).unwrap(),
    };
    let header = Header { kid: kid.map(String::from), ..Header::new(alg) };
    encode(&header, &json!({"ws": ws, "sub": user, "iat": iat, "exp": iat + ttl}), &key).unwrap()
}

async fn start(mode: Mode, gateways: usize, jwks: &std::path::Path) -> Stack {
    let jwks = jwks.display().to_string();
    let max = MAX_LIFETIME_SECS.to_string();
    let env = [
        ("CONFAB_AUTH__TOKEN_SECRET", TOKEN_SECRET),
        ("CONFAB_AUTH__JWKS", jwks.as_str()),
        ("CONFAB_AUTH__MAX_TOKEN_LIFETIME_SECS", max.as_str()),
        ("CONFAB_AUTH__TOKEN_TTL_SECS", "600"),
    ];
    Stack::start_custom(mode, gateways, None, &env).await
}

/// A JWKS file holding only the Ed25519 key of the fixtures (the RSA key is added later).
fn ed25519_only_jwks(dir: &std::path::Path) -> PathBuf {
    let mut jwks: Value = serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
    jwks["keys"].as_array_mut().unwrap().retain(|k| k["kid"] == "ed-1");
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    path
}

async fn standard_jwts_are_accepted_over_http_and_websocket_and_bad_ones_refused(mode: Mode) {
    let keys = tempfile::tempdir().unwrap();
    let jwks = ed25519_only_jwks(keys.path());
    let stack = start(mode, 1, &jwks).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, _) = stack.create_user(&ws, "alice").await;
    let gw = stack.addr("gw0");

    let hs256 = jwt(Algorithm::HS256, None, &ws, &alice, now(), 600);
    let (status, body) = stack.get("gw0", "/api/channels", &hs256).await;
    assert_eq!(status, 200, "an HS256 JWT signed with the token secret: {body}");
    let c = Client::connect(&gw, &hs256).await.expect("HS256 over the Authorization header");
    assert_eq!(c.hello["user_id"], alice.as_str());

    let eddsa = jwt(Algorithm::EdDSA, Some("ed-1"), &ws, &alice, now(), 600);
    let c = Client::connect_subprotocol(&gw, &eddsa).await.expect("EdDSA in Sec-WebSocket-Protocol");
    assert_eq!(c.protocol.as_deref(), Some("confab"), "the server selects `confab`, never echoes the token");
    assert_eq!(c.hello["user_id"], alice.as_str());

    let refused = |token: String, why: &'static str| {
        let stack = &stack;
        async move {
            let (status, body) = stack.get("gw0", "/api/channels", &token).await;
            assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{why}: {body}");
        }
    };
    let too_long = jwt(Algorithm::HS256, None, &ws, &alice, now(), MAX_LIFETIME_SECS + 60);
    refused(too_long, "a lifetime over auth.max_token_lifetime_secs").await;
    let other_secret = encode(
        &Header::new(Algorithm::HS256),
        &json!({"ws": ws, "sub": alice, "iat": now(), "exp": now() + 600}),
        &EncodingKey::from_secret(b"someone-elses-secret-0123456789abcdef"),
    )
    .unwrap();
    refused(other_secret, "HS256 signed with another secret").await;
    let no_iat = encode(
        &Header::new(Algorithm::HS256),
        &json!({"ws": ws, "sub": alice, "exp": now() + 600}),
        &EncodingKey::from_secret(TOKEN_SECRET.as_bytes()),
    )
    .unwrap();
    refused(no_iat, "a JWT without iat").await;
    let (status, body) = stack
        .admin_post(&format!("/admin/workspaces/{ws}/users/{alice}/tokens"), json!({"ttl_secs": MAX_LIFETIME_SECS + 1}))
        .await;
    assert_eq!(status, 400, "the admin API mints nothing longer than the maximum: {body}");

    // a key the app's backend rotated in: refused until the JWKS names it, then accepted
    // without a restart (an unknown `kid` makes the gateway read the JWKS early)
    let rs256 = jwt(Algorithm::RS256, Some("rsa-1"), &ws, &alice, now(), 600);
    refused(rs256.clone(), "RS256 with a key the JWKS does not hold yet").await;
    std::fs::copy(fixture("jwks.json"), &jwks).unwrap();
    eventually(Duration::from_secs(40), "the rotated-in RS256 key to be accepted", || async {
        let (status, _) = stack.get("gw0", "/api/channels", &rs256).await;
        (status == 200).then_some(())
    })
    .await;
    let c = Client::connect_subprotocol(&gw, &rs256).await.expect("RS256 in Sec-WebSocket-Protocol");
    assert_eq!(c.hello["user_id"], alice.as_str());
}

async fn revoking_a_users_tokens_refuses_them_everywhere_and_closes_their_sockets(mode: Mode) {
    let stack = start(mode, 2, &fixture("jwks.json")).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_cfb1) = stack.create_user(&ws, "alice").await;
    let (bob, bob_token) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let alice_jwt = jwt(Algorithm::EdDSA, Some("ed-1"), &ws, &alice, now(), 600);
    let mut on_gw0 = Client::connect(&stack.addr("gw0"), &alice_cfb1).await.unwrap();
    let mut on_gw1 = Client::connect_subprotocol(&stack.addr("gw1"), &alice_jwt).await.unwrap();
    let mut bob_socket = Client::connect(&stack.addr("gw1"), &bob_token).await.unwrap();

    let admin_url = format!("http://{}", stack.admin_addr("gw0"));
    let out = stack
        .confab(&["admin", "--url", &admin_url, "--admin-key", &stack.admin_key])
        .args(["revoke-tokens", "--workspace", &ws, "--user", &alice])
        .output()
        .unwrap();
    assert!(out.status.success(), "confab admin revoke-tokens: {}", String::from_utf8_lossy(&out.stderr));

    let (status, body) = stack.get("gw0", "/api/channels", &alice_cfb1).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("token_revoked")), "at once where revoked: {body}");
    assert_eq!(on_gw0.close_code(T).await, Some(4003), "alice's socket on the revoking gateway");
    assert_eq!(on_gw1.close_code(T).await, Some(4003), "alice's socket on the other gateway");
    eventually(T, "every gateway to refuse alice's JWT", || async {
        let (status, body) = stack.get("gw1", "/api/channels", &alice_jwt).await;
        (status == 401 && body["error"]["code"] == "token_revoked").then_some(())
    })
    .await;
    let refused = Client::connect_subprotocol(&stack.addr("gw1"), &alice_jwt).await.err();
    assert_eq!(
        refused.map(|(status, body)| (status, body["error"]["code"].clone())),
        Some((401, json!("token_revoked")))
    );

    // bob is untouched, and a token alice gets after the revocation works
    let ack = bob_socket.command(json!({"type": "message:send", "channel_id": ch, "text": "still here"}), "b1").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
    tokio::time::sleep(Duration::from_millis(1100)).await; // the revocation covers its own second
    let fresh = stack.token(&ws, &alice, 600).await;
    let mut again = Client::connect(&stack.addr("gw1"), &fresh).await.expect("a token issued after the revocation");
    let ack = again.command(json!({"type": "message:send", "channel_id": ch, "text": "back"}), "a1").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
}

async fn a_socket_is_closed_with_its_own_code_when_its_token_expires(mode: Mode) {
    let stack = start(mode, 1, &fixture("jwks.json")).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, _) = stack.create_user(&ws, "alice").await;
    let short_cfb1 = stack.token(&ws, &alice, 3).await;
    let short_jwt = jwt(Algorithm::RS256, Some("rsa-1"), &ws, &alice, now(), 3);
    let long = stack.token(&ws, &alice, 600).await;
    let mut a = Client::connect(&stack.addr("gw0"), &short_cfb1).await.unwrap();
    let mut b = Client::connect_subprotocol(&stack.addr("gw0"), &short_jwt).await.unwrap();
    let mut c = Client::connect(&stack.addr("gw0"), &long).await.unwrap();
    assert_eq!(a.close_code(T).await, Some(4001), "a cfb1 token's expiry closes its socket");
    assert_eq!(b.close_code(T).await, Some(4001), "a JWT's expiry closes its socket");
    c.ping().await;
    assert!(c.closed.is_none(), "a socket whose token is still good stays open");
}

fn kafka(stack: &Stack) -> String {
    stack.services.as_ref().unwrap().kafka.clone()
}

/// The record of `<ns>.commands` whose payload contains `marker`: (partition, key, payload,
/// headers).
fn command_record(stack: &Stack, marker: &str) -> (i32, Vec<u8>, Vec<u8>, OwnedHeaders) {
    let m = confab_tests::kafka::first_record(stack, "commands", T, marker, |m| {
        String::from_utf8_lossy(m.payload().unwrap_or_default()).contains(marker)
    });
    let headers = m.headers().cloned().unwrap_or_else(OwnedHeaders::new);
    (m.partition(), m.key().unwrap().to_vec(), m.payload().unwrap_or_default().to_vec(), headers)
}

async fn ingest_metric(stack: &Stack, outcome: &str) -> u64 {
    let text = reqwest::get(format!("http://{}/metrics", stack.addr("ingest"))).await.unwrap().text().await.unwrap();
    let prefix = format!("confab_ingest_commands_total{{outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.trim().parse().unwrap()).unwrap_or(0)
}

/// Someone who can write the commands topic but is no gateway posts as bob: without a
/// signature, and with alice's signature on a payload changed to bob's. Neither is sequenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_not_signed_by_a_gateway_is_never_sequenced() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let stack = start(Mode::Distributed, 1, &fixture("jwks.json")).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_token) = stack.create_user(&ws, "alice").await;
    let (bob, bob_token) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice_token).await.unwrap();
    let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": "signed by a gateway"}), "s1").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");

    let (partition, key, payload, headers) = command_record(&stack, "\"client_msg_id\":\"s1\"");
    assert!(headers.iter().any(|h| h.key == "confab-sig-v1"), "gateways sign what they write");
    let payload = String::from_utf8(payload).unwrap();
    assert!(!payload.contains("signed by a gateway"), "the text is sealed in the commands log: {payload}");
    let as_bob = payload.replace(&alice, &bob);
    let forged_unsigned = as_bob.replace("\"s1\"", "\"f1\"");
    let forged_resigned = as_bob.replace("\"s1\"", "\"f2\"");
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", kafka(&stack)).create().unwrap();
    let topic = format!("{}.commands", stack.namespace);
    let bogus = OwnedHeaders::new().insert(KafkaHeader { key: "confab-sig-v1", value: Some(&[0u8; 32][..]) });
    for (payload, headers) in
        [(forged_unsigned, OwnedHeaders::new()), (forged_resigned.clone(), headers), (forged_resigned, bogus)]
    {
        let record = FutureRecord::to(&topic).partition(partition).key(&key).payload(&payload).headers(headers);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
    }
    // the same partition, later: once this is acked, ingest has read the forged records
    let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": "after them"}), "s2").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");

    // the ack comes from ingest; the timeline projector writes history a moment later
    let history = eventually(T, "history to hold both real messages", || async {
        let h = stack.history_all("gw0", &ch, &bob_token, 100).await;
        (h.len() >= 2).then_some(h)
    })
    .await;
    let texts: Vec<(&str, &str)> =
        history.iter().map(|m| (m["user_id"].as_str().unwrap(), m["text"].as_str().unwrap())).collect();
    assert_eq!(texts, [(alice.as_str(), "signed by a gateway"), (alice.as_str(), "after them")]);
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs[1], seqs[0] + 1, "no seq was spent on a forged command: {seqs:?}");
    assert_eq!(ingest_metric(&stack, "forged").await, 3);
}
