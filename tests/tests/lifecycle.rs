//! The admin lifecycle (issue 18, item 4), in both modes: a deactivated user is refused by
//! every gateway, also one started long after, their sockets close and their messages stay,
//! until an admin reactivates them; and every admin action is in the log's audit stream.

use confab_tests::stack::eventually;
use confab_tests::{conformance, Client, Mode, Stack};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
const TOKEN_SECRET: &str = "lifecycle-test-secret-0123456789abcdef";
/// The shortest allowed, so revocation records (kept this long) are gone before a gateway
/// restarts: the restarted one can only know of the deactivation from the directory.
const MAX_LIFETIME_SECS: i64 = 60;

conformance!(
    a_deactivated_user_is_refused_everywhere_until_reactivated_and_keeps_their_messages,
    every_admin_action_is_recorded_in_the_workspaces_audit_stream_and_reaches_no_client,
);

/// An HS256 JWT for `user` of `ws` issued now, signed with the stack's token secret.
fn jwt_now(ws: &str, user: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"ws": ws, "sub": user, "iat": now, "exp": now + MAX_LIFETIME_SECS});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(TOKEN_SECRET.as_bytes())).unwrap()
}

async fn start(mode: Mode) -> Stack {
    let max = MAX_LIFETIME_SECS.to_string();
    let env = [
        ("CONFAB_AUTH__TOKEN_SECRET", TOKEN_SECRET),
        ("CONFAB_AUTH__MAX_TOKEN_LIFETIME_SECS", max.as_str()),
        ("CONFAB_AUTH__TOKEN_TTL_SECS", max.as_str()),
    ];
    Stack::start_custom(mode, 2, None, &env).await
}

/// The error code `gw` answers a request with `token` by, once it answers at all (a gateway
/// that has just started may still be reading its deactivated users: 503).
async fn refusal(stack: &Stack, gw: &str, token: &str) -> (u16, Value) {
    eventually(T, "the gateway to check tokens", || async {
        let (status, body) = stack.get(gw, "/api/channels", token).await;
        (status != 503).then_some((status, body["error"]["code"].clone()))
    })
    .await
}

async fn a_deactivated_user_is_refused_everywhere_until_reactivated_and_keeps_their_messages(mode: Mode) {
    let mut stack = start(mode).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_token) = stack.create_user(&ws, "alice").await;
    let (bob, _) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let mut on_gw0 = Client::connect(&stack.addr("gw0"), &alice_token).await.unwrap();
    let ack = on_gw0.command(json!({"type": "message:send", "channel_id": ch, "text": "written before"}), "a1").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
    let mut on_gw1 = Client::connect(&stack.addr("gw1"), &alice_token).await.unwrap();
    let phone = json!({"platform": "fcm", "token": "alice-phone"});
    let (status, body) = stack.call(reqwest::Method::POST, "gw0", "/api/devices", &alice_token, Some(phone)).await;
    assert_eq!(status, 201, "{body}");

    let admin_url = format!("http://{}", stack.admin_addr("gw0"));
    let out = stack
        .confab(&["admin", "--url", &admin_url, "--admin-key", &stack.admin_key])
        .args(["deactivate-user", "--workspace", &ws, "--user", &alice])
        .output()
        .unwrap();
    assert!(out.status.success(), "confab admin deactivate-user: {}", String::from_utf8_lossy(&out.stderr));
    let deactivated_at = Instant::now();

    let (status, body) = stack.get("gw0", "/api/channels", &alice_token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("user_deactivated")), "at once: {body}");
    assert_eq!(on_gw0.close_code(T).await, Some(4003), "alice's socket on the deactivating gateway");
    assert_eq!(on_gw1.close_code(T).await, Some(4003), "alice's socket on the other gateway");
    eventually(T, "the other gateway to refuse a token alice gets after the deactivation", || async {
        let (status, body) = stack.get("gw1", "/api/channels", &jwt_now(&ws, &alice)).await;
        (status == 401 && body["error"]["code"] == "user_deactivated").then_some(())
    })
    .await;
    let refused = Client::connect(&stack.addr("gw1"), &jwt_now(&ws, &alice)).await.err();
    assert_eq!(
        refused.map(|(status, body)| (status, body["error"]["code"].clone())),
        Some((401, json!("user_deactivated")))
    );
    let (status, body) = stack.admin_post(&format!("/admin/workspaces/{ws}/users/{alice}/tokens"), json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("user_deactivated")), "no token minted: {body}");
    let bob_token = stack.token(&ws, &bob, MAX_LIFETIME_SECS).await;
    let history = stack.history_all("gw0", &ch, &bob_token, 50).await;
    assert!(history.iter().any(|m| m["text"] == "written before"), "alice's message stays: {history:?}");

    // a gateway started after the revocation record is gone knows from the directory
    stack.kill("gw1");
    let record_gone = Duration::from_secs(MAX_LIFETIME_SECS as u64 + 2);
    tokio::time::sleep(record_gone.saturating_sub(deactivated_at.elapsed())).await;
    stack.restart("gw1");
    let code = refusal(&stack, "gw1", &jwt_now(&ws, &alice)).await;
    assert_eq!(code, (401, json!("user_deactivated")), "a gateway started later refuses alice");

    let (status, body) = stack.admin_post(&format!("/admin/workspaces/{ws}/users/{alice}/reactivate"), json!({})).await;
    assert_eq!((status, body["deactivated"].clone()), (200, json!(false)), "{body}");
    let from_before = jwt_now(&ws, &alice);
    let (status, body) = stack.get("gw0", "/api/channels", &from_before).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_revoked")),
        "older tokens stay dead: {body}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // the revocation covers its own second
    let fresh = stack.token(&ws, &alice, MAX_LIFETIME_SECS).await;
    let mut back = eventually(T, "every gateway to accept alice again", || async {
        Client::connect(&stack.addr("gw1"), &fresh).await.ok()
    })
    .await;
    let ack = back.command(json!({"type": "message:send", "channel_id": ch, "text": "back"}), "a2").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
    let (status, body) = stack.get("gw0", "/api/devices", &fresh).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["devices"], json!([]), "the deactivation unregistered alice's phone: {body}");
}

async fn every_admin_action_is_recorded_in_the_workspaces_audit_stream_and_reaches_no_client(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("audited").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let mut watcher = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    let (bob, _) = stack.create_user(&ws, "bob").await;
    stack.token(&ws, &bob, 600).await;
    let user_path = format!("/admin/workspaces/{ws}/users/{bob}");
    for action in ["revoke-tokens", "deactivate", "reactivate"] {
        let (status, body) = stack.admin_post(&format!("{user_path}/{action}"), json!({})).await;
        assert_eq!(status, 200, "{action}: {body}");
    }
    let (status, body) =
        stack.admin_put(&format!("/admin/workspaces/{ws}/retention"), json!({"retention_days": 30})).await;
    assert_eq!(status, 200, "{body}");

    // the audit stream is no conversation: nobody can post into it, list it or hear of it
    let refused = watcher.command(json!({"type": "message:send", "channel_id": ws, "text": "hi"}), "w1").await;
    assert_eq!(refused["code"], "channel_not_found", "{refused}");
    let heard = watcher.drain(Duration::from_millis(500)).await;
    assert!(heard.iter().all(|f| f["channel_id"] != ws.as_str()), "a client heard of the audit stream: {heard:?}");
    let (status, body) = stack.get("gw0", "/api/channels", &token).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["channels"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["general"], "no channel appears for the audit stream: {body}");

    if stack.single_process() {
        assert!(stack.terminate("serve").success());
    }
    let out = stack.confab(&["events"]).output().expect("run confab events");
    assert!(out.status.success(), "confab events: {}", String::from_utf8_lossy(&out.stderr));
    let audit: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "admin_acted" && e["workspace_id"] == ws.as_str())
        .collect();
    let actions: Vec<(&str, &Value)> =
        audit.iter().map(|e| (e["action"].as_str().unwrap(), &e["subject_id"])).collect();
    let (alice, bob, ch) = (json!(alice), json!(bob), json!(ch));
    assert_eq!(
        actions,
        [
            ("workspace_created", &Value::Null),
            ("user_created", &alice),
            ("channel_created", &ch),
            ("user_created", &bob),
            ("token_minted", &bob),
            ("tokens_revoked", &bob),
            ("user_deactivated", &bob),
            ("user_reactivated", &bob),
            ("retention_changed", &Value::Null),
        ],
        "{audit:#?}"
    );
    for (i, e) in audit.iter().enumerate() {
        assert_eq!(e["channel_id"], ws.as_str(), "in the workspace's own stream: {e}");
        assert_eq!(e["seq"], i as i64 + 1, "gap-free: {e}");
        assert_eq!(e["actor_id"], uuid::Uuid::nil().to_string(), "the admin key: {e}");
    }
    assert_eq!(audit[0]["details"]["name"], "audited");
    assert_eq!(audit[8]["details"], json!({"retention_secs": "2592000", "previous_retention_secs": "0"}));
}
