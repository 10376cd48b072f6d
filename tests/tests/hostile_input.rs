//! Input built to deceive or to cost (issue 16, items 7, 11 and 17), on both adapter sets: names
//! that hide or reverse characters are refused wherever people name things, a channel creation
//! names a bounded number of members, each looked up once, and a workspace's retention is one
//! the store can keep (Cassandra's TTL is at most 20 years: a longer one stalled the timeline).

use confab_tests::{conformance, Client, Mode, Stack};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

conformance!(
    names_that_hide_or_reverse_characters_are_refused_everywhere,
    a_channel_creation_names_a_bounded_set_of_known_members,
    a_retention_the_store_cannot_keep_is_refused_and_the_longest_one_works,
);

/// Names that look like something they are not.
const DECEPTIVE: [&str; 4] = ["general\u{200B}", "invoice\u{202E}fdp.exe", "a\u{2066}b", "\u{3164}"];

async fn names_that_hide_or_reverse_characters_are_refused_everywhere(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    for name in DECEPTIVE {
        let (status, v) = stack.admin_post("/admin/workspaces", json!({"name": name})).await;
        assert_eq!(status, 400, "workspace {name:?}: {v}");
        let (status, v) = stack.admin_post(&format!("/admin/workspaces/{ws}/users"), json!({"name": name})).await;
        assert_eq!(status, 400, "user {name:?}: {v}");
        let body = json!({"name": name, "members": [alice.0]});
        let (status, v) = stack.admin_post(&format!("/admin/workspaces/{ws}/channels"), body).await;
        assert_eq!(status, 400, "channel {name:?}: {v}");
        let e = a.command(json!({"type": "channel:create", "name": name}), "c").await;
        assert_eq!(e["code"], "invalid_field", "channel:create {name:?}: {e}");
        let e = a.command(json!({"type": "channel:rename", "channel_id": ch, "name": name}), "r").await;
        assert_eq!(e["code"], "invalid_field", "channel:rename {name:?}: {e}");
        let file = json!({"channel_id": ch, "name": name, "size": 3, "content_type": "text/plain"});
        let (status, v) = stack.call(Method::POST, "gw0", "/api/files", &alice.1, Some(file)).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_field")), "file {name:?}: {v}");
    }
    // ordinary names in any script still pass
    let ok = a.command(json!({"type": "channel:create", "name": "Équipe 営業 🚀"}), "ok").await;
    assert_eq!(ok["type"], "ok", "{ok}");
}

async fn a_channel_creation_names_a_bounded_set_of_known_members(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let bob = stack.create_user(&ws, "bob").await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let many: Vec<String> = (0..1_001).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let e = a.command(json!({"type": "channel:create", "name": "big", "members": many}), "big").await;
    assert_eq!(e["code"], "invalid_field", "{e}");
    // an unknown member among known ones is named; a member named thrice is one member
    let stranger = uuid::Uuid::new_v4().to_string();
    let members = json!([bob.0, bob.0, stranger]);
    let e = a.command(json!({"type": "channel:create", "name": "x", "members": members}), "unknown").await;
    assert_eq!(e["code"], "user_not_found", "{e}");
    assert!(e["message"].as_str().unwrap().contains(&stranger), "{e}");
    let members = json!([bob.0, bob.0, bob.0]);
    let ok = a.command(json!({"type": "channel:create", "name": "pair", "members": members}), "pair").await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let created = a.expect("channel:created", T).await;
    assert_eq!(created["member_count"], 2, "{created}");
    let body = json!({"name": "admin-made", "members": [alice.0, stranger]});
    let (status, v) = stack.admin_post(&format!("/admin/workspaces/{ws}/channels"), body).await;
    assert_eq!(status, 400, "{v}");
    let _: Value = v;
}

async fn a_retention_the_store_cannot_keep_is_refused_and_the_longest_one_works(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    for body in [
        json!({"name": "forever-and-a-day", "retention_days": 7_301}),
        json!({"name": "too-long", "retention_secs": 630_720_001u64}),
        json!({"name": "overflow", "retention_days": u32::MAX}),
    ] {
        let (status, v) = stack.admin_post("/admin/workspaces", body.clone()).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_field")), "{body}: {v}");
    }
    let (status, v) =
        stack.admin_post("/admin/workspaces", json!({"name": "twenty-years", "retention_days": 7_300})).await;
    assert_eq!(status, 201, "{v}");
    let ws = v["workspace_id"].as_str().unwrap().to_string();
    let alice = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": "kept 20 years"}), "k").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
    confab_tests::stack::eventually(T, "the message stored with the longest TTL", || async {
        let history = stack.history_all("gw0", &ch, &alice.1, 10).await;
        history.iter().any(|m| m["text"] == "kept 20 years").then_some(())
    })
    .await;
}
