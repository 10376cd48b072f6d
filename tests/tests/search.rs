//! Search end to end, written once and run in both modes: the search projector indexes the log
//! (tantivy embedded, OpenSearch distributed) and `GET /api/search` applies Slack's query
//! language with the searcher's permissions.

use confab_tests::stack::eventually;
use confab_tests::{conformance, Client, Mode, Stack};
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

conformance!(search_finds_what_the_searcher_may_read_with_slack_operators, edits_and_deletes_reach_the_index);

fn enc(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search(stack: &Stack, token: &str, q: &str) -> Value {
    let (status, body) = stack.get("gw0", &format!("/api/search?q={}", enc(q)), token).await;
    assert_eq!(status, 200, "search {q:?}: {body}");
    body
}

fn texts(body: &Value) -> Vec<String> {
    let mut t: Vec<String> =
        body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_string()).collect();
    t.sort();
    t
}

/// Waits until `q` returns exactly `want` (as a set) for `token`.
async fn until(stack: &Stack, token: &str, q: &str, want: &[&str]) -> Value {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    eventually(T, &format!("search {q:?} to return {want:?}"), || {
        let want = want.clone();
        async move {
            let body = search(stack, token, q).await;
            (texts(&body) == want).then_some(body)
        }
    })
    .await
}

async fn search_finds_what_the_searcher_may_read_with_slack_operators(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let bob = stack.create_user(&ws, "bob").await;
    let general = stack.create_channel(&ws, "general", false, &[&alice.0, &bob.0]).await;
    let secret = stack.create_channel(&ws, "secret", true, &[&alice.0]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let mut b = Client::connect(&stack.addr("gw0"), &bob.1).await.unwrap();
    let send = |ch: &str, text: &str| json!({"type": "message:send", "channel_id": ch, "text": text});

    let parent = a.command(send(&general, "We are deploying the new billing service today"), "s1").await;
    a.command(send(&secret, "Secret deployment plan for Friday"), "s2").await;
    b.command(send(&general, "Lunch at noon, menu at https://menu.example/today"), "s3").await;
    let mut reply = send(&general, "Deployed it, all green");
    reply["thread_ts"] = parent["message_id"].clone();
    b.command(reply, "s4").await;
    // the same words in another workspace must never show up
    let other_ws = stack.create_workspace("globex").await;
    let eve = stack.create_user(&other_ws, "eve").await;
    let other = stack.create_channel(&other_ws, "general", false, &[&eve.0]).await;
    Client::connect(&stack.addr("gw0"), &eve.1)
        .await
        .unwrap()
        .command(send(&other, "deploying billing service deployment"), "s5")
        .await;

    // stemming; permissions: bob never sees the private channel, alice does
    let body =
        until(&stack, &bob.1, "deploy", &["Deployed it, all green", "We are deploying the new billing service today"])
            .await;
    assert_eq!(body["total"], 2);
    until(
        &stack,
        &alice.1,
        "deploy",
        &[
            "Deployed it, all green",
            "Secret deployment plan for Friday",
            "We are deploying the new billing service today",
        ],
    )
    .await;
    let hit = &body["messages"].as_array().unwrap().iter().find(|m| m["thread_ts"].is_null()).unwrap().clone();
    assert_eq!(hit["channel_name"], "general");
    assert_eq!(hit["channel_id"], general.as_str());
    assert_eq!(hit["user_id"], alice.0.as_str());
    assert!(hit["highlight"].as_str().unwrap().contains("<em>"), "{hit}");

    // fuzziness AUTO, phrases, operators
    assert_eq!(texts(&search(&stack, &alice.1, "deploymnet").await), vec!["Secret deployment plan for Friday"]);
    assert_eq!(
        texts(&search(&stack, &bob.1, "\"billing service\"").await),
        vec!["We are deploying the new billing service today"]
    );
    assert!(texts(&search(&stack, &bob.1, "\"service billing\"").await).is_empty(), "a phrase keeps its word order");
    assert_eq!(texts(&search(&stack, &alice.1, "deploy in:#secret").await), vec!["Secret deployment plan for Friday"]);
    assert!(
        texts(&search(&stack, &bob.1, "deploy in:#secret").await).is_empty(),
        "in: cannot reach a channel the searcher cannot read"
    );
    assert_eq!(texts(&search(&stack, &alice.1, "deploy from:@bob").await), vec!["Deployed it, all green"]);
    assert_eq!(
        texts(&search(&stack, &bob.1, "has:link").await),
        vec!["Lunch at noon, menu at https://menu.example/today"]
    );
    assert_eq!(texts(&search(&stack, &bob.1, "is:thread").await), vec!["Deployed it, all green"]);
    assert_eq!(texts(&search(&stack, &bob.1, "deploy from:me").await), vec!["Deployed it, all green"]);
    assert!(texts(&search(&stack, &bob.1, "deploy before:2020-01-01").await).is_empty());
    assert_eq!(search(&stack, &bob.1, "deploy after:2020-01-01").await["total"], 2);
    assert!(texts(&search(&stack, &bob.1, "deploy from:@nobody").await).is_empty());
    let (status, body) = stack.get("gw0", &format!("/api/search?q={}&limit=1", enc("deploy")), &bob.1).await;
    assert_eq!((status, body["messages"].as_array().unwrap().len(), body["next_offset"].as_u64()), (200, 1, Some(1)));

    // bad input
    for q in ["/api/search?q=", "/api/search?q=deploy&limit=0", "/api/search?q=deploy&tz=5000", "/api/search"] {
        let (status, body) = stack.get("gw0", q, &bob.1).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")), "{q}: {body}");
    }
    let (status, _) = stack.get("gw0", "/api/search?q=deploy", "not-a-token").await;
    assert_eq!(status, 401);
}

async fn edits_and_deletes_reach_the_index(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let ack =
        a.command(json!({"type": "message:send", "channel_id": ch, "text": "quarterly invoices are late"}), "s1").await;
    let id = ack["message_id"].as_str().unwrap().to_string();
    until(&stack, &alice.1, "invoices", &["quarterly invoices are late"]).await;

    a.command(
        json!({"type": "message:edit", "channel_id": ch, "message_id": id, "text": "quarterly reports are late"}),
        "e1",
    )
    .await;
    until(&stack, &alice.1, "reports", &["quarterly reports are late"]).await;
    assert!(texts(&search(&stack, &alice.1, "invoices").await).is_empty(), "the old text is gone from the index");

    a.command(json!({"type": "message:delete", "channel_id": ch, "message_id": id}), "d1").await;
    until(&stack, &alice.1, "quarterly", &[]).await;
}
