//! File sharing (issue 8), written once and run against both adapter sets: the embedded
//! mode's directory with gateway-signed URLs, and the distributed mode's real S3 server
//! (MinIO). Every transfer is a real HTTP `PUT`/`GET` of the URLs the API hands out.

use confab_tests::files::{complete, grant, put, share};
use confab_tests::stack::eventually;
use confab_tests::{conformance, Client, Mode, Stack};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

conformance!(
    files_are_uploaded_attached_found_downloaded_and_revoked,
    bad_uploads_are_refused_and_nothing_is_kept,
    an_upload_never_completed_is_deleted_once_it_can_no_longer_be_completed,
    a_workspace_holds_no_more_files_than_its_storage_quota,
);

/// `GET /api/files/{id}` for `token`, retried while the timeline has not recorded it yet.
async fn file_info(stack: &Stack, token: &str, file: &str, query: &str) -> (u16, Value) {
    let path = format!("/api/files/{file}{query}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = stack.call(Method::GET, "gw0", &path, token, None).await;
        if status != 404 || std::time::Instant::now() >= deadline {
            return (status, v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fetches a URL; returns (status, content type, body bytes).
async fn fetch(url: &str) -> (u16, String, Vec<u8>) {
    let r = reqwest::Client::new().get(url).send().await.expect("download");
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, r.bytes().await.expect("body").to_vec())
}

/// The URL with one query parameter's value changed.
fn with_param(url: &str, key: &str, f: impl Fn(&str) -> String) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| if k == key { (k.into_owned(), f(&v)) } else { (k.into_owned(), v.into_owned()) })
        .collect();
    assert!(pairs.iter().any(|(k, _)| k == key), "{url} has no {key}");
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// The signature parameter of either kind of URL (S3's SigV4 or the gateway's own).
fn sig_param(url: &str) -> &'static str {
    if url.contains("X-Amz-Signature=") {
        "X-Amz-Signature"
    } else {
        "sig"
    }
}

async fn files_are_uploaded_attached_found_downloaded_and_revoked(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let gw = stack.addr("gw0");
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_t) = stack.create_user(&ws, "alice").await;
    let (bob, bob_t) = stack.create_user(&ws, "bob").await;
    let (_carol, carol_t) = stack.create_user(&ws, "carol").await;
    let other = stack.create_workspace("rival").await;
    let (_dave, dave_t) = stack.create_user(&other, "dave").await;
    let ch = stack.create_channel(&ws, "design", true, &[&alice, &bob]).await;
    let mut a = Client::connect(&gw, &alice_t).await.unwrap();
    let mut b = Client::connect(&gw, &bob_t).await.unwrap();

    // upload: the bytes go straight to the URL; completing shares the file in the channel
    let pdf: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let file = share(&stack, &alice_t, &ch, "Q3 quarterly-report.pdf", &pdf, "application/pdf").await;
    let shared = b.expect_where("file:shared", T, |f| f["type"] == "file:shared").await;
    assert_eq!(shared["file"]["file_id"], file);
    assert_eq!(shared["file"]["size"], pdf.len());
    assert_eq!(shared["user_id"], alice);

    // a message carries it: live, in history, in search (has:file and the file's name)
    let ack = a
        .command(
            json!({"type": "message:send", "channel_id": ch, "text": "numbers attached", "file_ids": [file]}),
            "m1",
        )
        .await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
    let new = b
        .expect_where("the message with the file", T, |f| {
            f["type"] == "message:new" && f["message"]["text"] == "numbers attached"
        })
        .await;
    let att = &new["message"]["attachments"][0];
    assert_eq!(
        (att["file_id"].as_str(), att["name"].as_str(), att["content_type"].as_str()),
        (Some(file.as_str()), Some("Q3 quarterly-report.pdf"), Some("application/pdf"))
    );
    // a message of files only needs no text
    let image = share(&stack, &bob_t, &ch, "whiteboard.png", b"\x89PNG\r\n\x1a\nfake", "image/png").await;
    let ack = b.command(json!({"type": "message:send", "channel_id": ch, "text": "", "file_ids": [image]}), "m2").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
    let history = eventually(T, "both messages in history", || async {
        let h = stack.history_all("gw0", &ch, &bob_t, 50).await;
        (h.len() == 2).then_some(h)
    })
    .await;
    assert_eq!(history[0]["attachments"][0]["name"], "Q3 quarterly-report.pdf");
    assert_eq!(history[1]["attachments"][0]["name"], "whiteboard.png");
    for (q, want) in [("quarterly", "numbers attached"), ("has:file numbers", "numbers attached"), ("whiteboard", "")] {
        eventually(T, &format!("search {q:?}"), || async {
            let (status, body) =
                stack.get("gw0", &format!("/api/search?q={}", q.replace(' ', "+").replace(':', "%3A")), &bob_t).await;
            assert_eq!(status, 200, "{body}");
            let texts: Vec<&str> =
                body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
            if texts != [want] {
                eprintln!("search {q}: {body}");
            }
            (texts == [want]).then_some(())
        })
        .await;
    }

    // download: a member gets a short-lived URL to exactly these bytes
    let (status, info) = file_info(&stack, &bob_t, &file, "").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        (info["name"].as_str(), info["size"].as_u64()),
        (Some("Q3 quarterly-report.pdf"), Some(pdf.len() as u64))
    );
    let url = info["url"].as_str().unwrap().to_string();
    let (status, ct, body) = fetch(&url).await;
    assert_eq!((status, ct.as_str()), (200, "application/pdf"));
    assert!(body == pdf, "downloaded bytes differ");

    // nobody outside the channel gets a URL: a non-member, another workspace
    for (who, token) in [("carol (not a member)", &carol_t), ("dave (another workspace)", &dave_t)] {
        let (status, v) = stack.call(Method::GET, "gw0", &format!("/api/files/{file}"), token, None).await;
        assert_eq!((status, v["error"]["code"].as_str()), (404, Some("file_not_found")), "{who}: {v}");
    }
    // a URL names one object: pointing it at another file or workspace breaks the signature
    let (other_ws_url, other_file_url) = (url.replace(&ws, &other), url.replace(&file, &image));
    for (what, u) in [("another workspace", other_ws_url), ("another file", other_file_url)] {
        assert_eq!(fetch(&u).await.0, 403, "URL moved to {what}");
    }
    // a tampered signature, a stretched expiry, an expired URL: refused
    let tampered = with_param(&url, sig_param(&url), |s| {
        format!("{}{}", &s[..s.len() - 2], if s.ends_with("aa") { "bb" } else { "aa" })
    });
    assert_eq!(fetch(&tampered).await.0, 403, "tampered signature");
    let exp_key = if url.contains("X-Amz-Expires") { "X-Amz-Expires" } else { "exp" };
    let stretched = with_param(&url, exp_key, |v| (v.parse::<i64>().unwrap() + 3600).to_string());
    assert_eq!(fetch(&stretched).await.0, 403, "stretched expiry");
    let (status, short) = file_info(&stack, &bob_t, &file, "?expires_in=1").await;
    assert_eq!(status, 200, "{short}");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(fetch(short["url"].as_str().unwrap()).await.0, 403, "expired URL");
    let (status, v) =
        stack.call(Method::GET, "gw0", &format!("/api/files/{file}?expires_in=999999"), &bob_t, None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_field")), "{v}");

    // deleting the message revokes its files: no new URLs, and issued ones stop working
    let (_, before) = file_info(&stack, &bob_t, &file, "").await;
    let message_id = history[0]["message_id"].as_str().unwrap();
    let ok = a.command(json!({"type": "message:delete", "channel_id": ch, "message_id": message_id}), "d1").await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let deleted = b.expect_where("message:deleted", T, |f| f["type"] == "message:deleted").await;
    assert_eq!(deleted["file_ids"], json!([file]), "the frame names the files deleted with it");
    eventually(T, "the file to be revoked", || async {
        let (status, v) = stack.call(Method::GET, "gw0", &format!("/api/files/{file}"), &bob_t, None).await;
        (status == 410 && v["error"]["code"] == "file_deleted").then_some(())
    })
    .await;
    eventually(T, "an issued URL to stop working", || async {
        (fetch(before["url"].as_str().unwrap()).await.0 != 200).then_some(())
    })
    .await;
    let err =
        a.command(json!({"type": "message:send", "channel_id": ch, "text": "again", "file_ids": [file]}), "m3").await;
    assert_eq!((err["type"].as_str(), err["code"].as_str()), (Some("error"), Some("file_deleted")), "{err}");
    // a file is attached once (its message's deletion deletes it)
    let err =
        a.command(json!({"type": "message:send", "channel_id": ch, "text": "again", "file_ids": [image]}), "m4").await;
    assert_eq!(err["code"], "conflict", "{err}");

    // deleting a file: the uploader only; then it is gone for everyone
    let (status, v) = stack.call(Method::DELETE, "gw0", &format!("/api/files/{image}"), &alice_t, None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("forbidden")), "{v}");
    let (_, img) = file_info(&stack, &alice_t, &image, "").await;
    let (status, v) = stack.call(Method::DELETE, "gw0", &format!("/api/files/{image}"), &bob_t, None).await;
    assert_eq!(status, 200, "{v}");
    let gone = a.expect_where("file:deleted", T, |f| f["type"] == "file:deleted").await;
    assert_eq!(gone["file_id"], image);
    eventually(T, "the image's URL to stop working", || async {
        (fetch(img["url"].as_str().unwrap()).await.0 != 200).then_some(())
    })
    .await;
    let (status, _) = stack.call(Method::GET, "gw0", &format!("/api/files/{image}"), &alice_t, None).await;
    assert_eq!(status, 410);
    // history says so: the message that carried it marks the attachment deleted
    let h = stack.history_all("gw0", &ch, &alice_t, 50).await;
    let carrier = h.iter().find(|m| m["attachments"][0]["file_id"] == image.as_str()).expect("the image's message");
    assert_eq!(carrier["attachments"][0]["deleted"], true, "{carrier}");
}

async fn bad_uploads_are_refused_and_nothing_is_kept(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let gw = stack.addr("gw0");
    let ws = stack
        .create_workspace_with(
            json!({"name": "strict", "max_file_bytes": 1000, "file_types": ["image/*", "text/plain"]}),
        )
        .await;
    let (alice, alice_t) = stack.create_user(&ws, "alice").await;
    let (bob, bob_t) = stack.create_user(&ws, "bob").await;
    let (_carol, carol_t) = stack.create_user(&ws, "carol").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let other_ch = stack.create_channel(&ws, "random", false, &[&alice, &bob]).await;
    let ask = |token: &str, channel: &str, name: &str, size: usize, ct: &str| {
        let body = json!({"channel_id": channel, "name": name, "size": size, "content_type": ct});
        let token = token.to_string();
        let stack = &stack;
        async move { stack.call(Method::POST, "gw0", "/api/files", &token, Some(body)).await }
    };
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_string();

    // the workspace's limits, checked before any URL is handed out
    let (status, v) = ask(&alice_t, &ch, "big.png", 1001, "image/png").await;
    assert_eq!((status, code(&v).as_str()), (413, "file_too_large"), "{v}");
    let (status, v) = ask(&alice_t, &ch, "setup.exe", 10, "application/x-msdownload").await;
    assert_eq!((status, code(&v).as_str()), (415, "file_type_not_allowed"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("image/*"), "says what is allowed: {v}");
    // names that could be paths, and other nonsense
    for (name, size, ct) in [
        ("../../etc/passwd", 10, "text/plain"),
        ("a/b.png", 10, "image/png"),
        ("x\u{0}.png", 10, "image/png"),
        ("", 10, "image/png"),
        ("ok.png", 0, "image/png"),
        ("ok.png", 10, "png"),
    ] {
        let (status, v) = ask(&alice_t, &ch, name, size, ct).await;
        assert_eq!((status, code(&v).as_str()), (400, "invalid_field"), "{name:?} {size} {ct}: {v}");
    }
    let (status, v) = stack
        .call(
            Method::POST,
            "gw0",
            "/api/files",
            &alice_t,
            Some(json!({"channel_id": ch, "name": "a.png", "size": 1, "content_type": "image/png", "path": "/etc"})),
        )
        .await;
    assert_eq!((status, code(&v).as_str()), (400, "invalid_field"), "unknown field: {v}");
    // only members upload into a channel
    let (status, v) = ask(&carol_t, &ch, "a.png", 10, "image/png").await;
    assert_eq!((status, code(&v).as_str()), (403, "not_a_member"), "{v}");

    // a body of another size than declared is refused by the gateway (embedded) or, as S3
    // cannot bind the size into a URL, discarded at completion (distributed): never shared
    let g = grant(&stack, &alice_t, &ch, "notes.txt", 10, "text/plain").await;
    let status = put(&g, b"twelve bytes".to_vec()).await;
    match mode {
        Mode::Embedded => assert_eq!(status, 413, "a 12-byte body on a 10-byte grant"),
        Mode::Distributed => assert_eq!(status, 200, "S3 takes the body"),
    }
    let (status, v) = complete(&stack, &alice_t, &g).await;
    assert_eq!((status, code(&v).as_str()), (409, "upload_incomplete"), "{v}");
    let (status, v) = complete(&stack, &alice_t, &g).await;
    assert_eq!((status, code(&v).as_str()), (409, "upload_incomplete"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nothing was uploaded"),
        "the wrong-sized upload is gone: {v}"
    );
    let (status, v) =
        stack.call(Method::GET, "gw0", &format!("/api/files/{}", g["file_id"].as_str().unwrap()), &alice_t, None).await;
    assert_eq!((status, code(&v).as_str()), (404, "file_not_found"), "{v}");
    // completion needs the token this upload was given, by the user it was given to
    let g = grant(&stack, &alice_t, &ch, "notes.txt", 5, "text/plain").await;
    assert_eq!(put(&g, b"hello".to_vec()).await, 200);
    let mut forged = g.clone();
    let t = g["upload_token"].as_str().unwrap();
    forged["upload_token"] = json!(format!("{}x", &t[..t.len() - 1]));
    let (status, v) = complete(&stack, &alice_t, &forged).await;
    assert_eq!((status, code(&v).as_str()), (403, "invalid_signature"), "{v}");
    let (status, v) = complete(&stack, &bob_t, &g).await;
    assert_eq!((status, code(&v).as_str()), (403, "forbidden"), "{v}");
    // an upload URL does not take another type, nor can it be turned into a download
    let mut wrong_type = g.clone();
    wrong_type["upload"]["headers"]["content-type"] = json!("text/html");
    assert!((400..500).contains(&put(&wrong_type, b"hello".to_vec()).await), "content type not bound to the URL");
    let (status, v) = complete(&stack, &alice_t, &g).await;
    assert_eq!(status, 201, "{v}");
    let file = g["file_id"].as_str().unwrap();
    let (status, info) = file_info(&stack, &bob_t, file, "").await;
    assert_eq!(status, 200, "{info}");
    // a recorded file is not overwritten through its old URL (embedded refuses; S3 URLs
    // bind the size and type, so at most bytes of the same size could be written again)
    if mode == Mode::Embedded {
        assert_eq!(put(&g, b"HELLO".to_vec()).await, 409);
    }
    assert_eq!(fetch(info["url"].as_str().unwrap()).await.2, b"hello");

    // attaching: only files shared in that channel, each once, at most ten
    let mut a = Client::connect(&gw, &alice_t).await.unwrap();
    let send = |channel: &str, files: Value| json!({"type": "message:send", "channel_id": channel, "text": "x", "file_ids": files});
    let err = a.command(send(&other_ch, json!([file])), "e1").await;
    assert_eq!(err["code"], "file_not_found", "a file from another channel: {err}");
    let err = a.command(send(&ch, json!([uuid::Uuid::new_v4()])), "e2").await;
    assert_eq!(err["code"], "file_not_found", "{err}");
    let err = a.command(send(&ch, json!([file, file])), "e3").await;
    assert_eq!(err["code"], "invalid_field", "{err}");
    let eleven: Vec<String> = (0..11).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let err = a.command(send(&ch, json!(eleven)), "e4").await;
    assert_eq!(err["code"], "invalid_field", "{err}");
    let err =
        a.command(json!({"type": "message:send", "channel_id": ch, "text": "", "client_msg_id": "e5"}), "e5").await;
    assert_eq!(err["code"], "empty_text", "no text and no files: {err}");
    let ack = a.command(send(&ch, json!([file])), "ok1").await;
    assert_eq!(ack["type"], "message:ack", "{ack}");
}

/// One counter of a gateway's `/metrics` (0 when absent).
async fn gateway_counter(stack: &Stack, line_prefix: &str) -> u64 {
    let url = format!("http://{}/metrics", stack.admin_addr("gw0"));
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(line_prefix)).map(|v| v.trim().parse::<f64>().unwrap() as u64).unwrap_or(0)
}

async fn an_upload_never_completed_is_deleted_once_it_can_no_longer_be_completed(mode: Mode) {
    let env = [
        ("CONFAB_FILES__UPLOAD_URL_TTL_SECS", "2"),
        ("CONFAB_FILES__COMPLETE_GRACE_SECS", "1"),
        ("CONFAB_FILES__INCOMPLETE_SWEEP_SECS", "1"),
    ];
    let stack = Stack::start_custom(mode, 1, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let kept = share(&stack, &token, &ch, "kept.txt", b"shared in time", "text/plain").await;
    let abandoned = grant(&stack, &token, &ch, "abandoned.txt", 9, "text/plain").await;
    assert_eq!(put(&abandoned, b"never got".to_vec()).await, 200);
    let abandoned_id = abandoned["file_id"].as_str().unwrap();
    let on_disk = stack.dir().join(format!("data/files/incoming/{ws}/{abandoned_id}"));
    let incoming = confab_core::files::incoming_key(&ws.parse().unwrap(), &abandoned_id.parse().unwrap());
    if mode == Mode::Embedded {
        assert!(on_disk.exists(), "the upload waits under incoming/: {}", on_disk.display());
    } else {
        assert_eq!(s3_size(&stack, &incoming).await, Some(9), "the upload waits in the bucket: {incoming}");
    }

    let deleted = "confab_gateway_files_total{step=\"incomplete_deleted\"} ";
    eventually(T, "the sweeper to delete the abandoned upload", || async {
        (gateway_counter(&stack, deleted).await >= 1).then_some(())
    })
    .await;
    assert_eq!(gateway_counter(&stack, deleted).await, 1, "only the abandoned upload");
    if mode == Mode::Embedded {
        assert!(!on_disk.exists(), "its bytes are gone");
    } else {
        assert_eq!(s3_size(&stack, &incoming).await, None, "its object is gone from the bucket");
    }
    let (status, v) = complete(&stack, &token, &abandoned).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("link_expired")), "{v}");
    // the file shared in time is untouched by every sweep
    let (status, info) = file_info(&stack, &token, &kept, "").await;
    assert_eq!(status, 200, "{info}");
    let (status, _, body) = fetch(info["url"].as_str().unwrap()).await;
    assert_eq!((status, body.as_slice()), (200, &b"shared in time"[..]));
}

/// The size of object `key` in the stack's bucket (distributed mode), read with a client of
/// the test's own.
async fn s3_size(stack: &Stack, key: &str) -> Option<u64> {
    use confab_core::ports::BlobStore;
    let (endpoint, access_key, secret_key, region) = stack.services.clone().expect("distributed").s3;
    let settings = confab_distributed::S3Settings {
        endpoint,
        public_endpoint: String::new(),
        bucket: confab_core::config::FilesConfig::default().bucket_name(&stack.namespace),
        region,
        access_key,
        secret_key,
    };
    confab_distributed::S3Blobs::new(settings).unwrap().size(key).await.unwrap()
}

/// Item 10's quota: uploads that cannot fit are refused up front, completions that no longer
/// fit (others completed first) are refused and their bytes discarded, a retried completion is
/// not counted twice, and deleting a file gives its room back.
async fn a_workspace_holds_no_more_files_than_its_storage_quota(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace_with(json!({"name": "small", "storage_quota_bytes": 1000})).await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let over_quota = |status: u16, v: &Value| {
        assert_eq!((status, v["error"]["code"].as_str()), (413, Some("storage_quota_exceeded")), "{v}");
    };
    let first = share(&stack, &token, &ch, "first.txt", &[b'a'; 600], "text/plain").await;

    // 600 + 500 > 1000: refused before any URL is handed out
    let body = json!({"channel_id": ch, "name": "big.txt", "size": 500, "content_type": "text/plain"});
    let (status, v) = stack.call(Method::POST, "gw0", "/api/files", &token, Some(body)).await;
    over_quota(status, &v);

    // four uploads of 150 each fit one at a time, only two together: completed at once, two
    // are counted and two refused with their bytes discarded
    let mut grants = Vec::new();
    for n in 0..4 {
        let g = grant(&stack, &token, &ch, &format!("{n}.txt"), 150, "text/plain").await;
        assert_eq!(put(&g, vec![b'x'; 150]).await, 200);
        grants.push(g);
    }
    let answers = futures::future::join_all(grants.iter().map(|g| complete(&stack, &token, g))).await;
    let (counted, refused): (Vec<_>, Vec<_>) = grants.iter().zip(answers).partition(|(_, (status, _))| *status == 201);
    assert_eq!((counted.len(), refused.len()), (2, 2), "{:?}", refused.iter().map(|(_, a)| a).collect::<Vec<_>>());
    for (g, (status, v)) in &refused {
        over_quota(*status, v);
        if mode == Mode::Embedded {
            let id = g["file_id"].as_str().unwrap();
            assert!(!stack.dir().join(format!("data/files/{ws}/{id}")).exists(), "refused bytes are discarded");
            assert!(
                !stack.dir().join(format!("data/files/incoming/{ws}/{id}")).exists(),
                "refused bytes are discarded"
            );
        }
    }
    // completing a counted file again counts nothing: 100 bytes are still free. It answers
    // 409 once the file's record is projected, and before that the retried share's original
    // outcome (ingest records nothing twice): either way nothing more is counted
    let (status, v) = complete(&stack, &token, counted[0].0).await;
    assert!(status == 409 || status == 201, "a second completion: {status} {v}");
    share(&stack, &token, &ch, "fits.txt", &[b'c'; 100], "text/plain").await;
    let body = json!({"channel_id": ch, "name": "one.txt", "size": 1, "content_type": "text/plain"});
    let (status, v) = stack.call(Method::POST, "gw0", "/api/files", &token, Some(body)).await;
    over_quota(status, &v);

    // deleting the first file gives its 600 bytes back (once the timeline applied the delete)
    let (status, v) = stack.call(Method::DELETE, "gw0", &format!("/api/files/{first}"), &token, None).await;
    assert_eq!(status, 200, "{v}");
    let body = json!({"channel_id": ch, "name": "after.txt", "size": 600, "content_type": "text/plain"});
    eventually(T, "the deleted file's room to come back", || async {
        let (status, _) = stack.call(Method::POST, "gw0", "/api/files", &token, Some(body.clone())).await;
        (status == 201).then_some(())
    })
    .await;
    share(&stack, &token, &ch, "after.txt", &[b'd'; 600], "text/plain").await;
}

/// Clients get links on `files.s3_public_endpoint` (here `localhost` for the servers'
/// `127.0.0.1`), signed for that host, and they work; the servers' own endpoint never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_name_the_public_s3_endpoint_when_one_is_set() {
    if !confab_tests::servers_available(Mode::Distributed) {
        return;
    }
    let private = confab_tests::Services::required().s3.0;
    let public = private.replace("127.0.0.1", "localhost");
    assert_ne!(public, private, "the test's S3 endpoint is on 127.0.0.1: {private}");
    let env = [("CONFAB_FILES__S3_PUBLIC_ENDPOINT", public.as_str())];
    let stack = Stack::start_custom(Mode::Distributed, 1, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let g = grant(&stack, &token, &ch, "notes.txt", 5, "text/plain").await;
    let upload = g["upload"]["url"].as_str().unwrap();
    assert!(upload.starts_with(&format!("{public}/")), "upload link on the public endpoint: {upload}");
    assert_eq!(put(&g, b"hello".to_vec()).await, 200, "the link is signed for the public host");
    let (status, v) = complete(&stack, &token, &g).await;
    assert_eq!(status, 201, "{v}");
    let (status, info) = file_info(&stack, &token, g["file_id"].as_str().unwrap(), "").await;
    assert_eq!(status, 200, "{info}");
    let url = info["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{public}/")) && !url.contains(&private), "download link: {url}");
    let (status, _, body) = fetch(url).await;
    assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
}

/// The peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The embedded gateway streams files through `/blobs/`: a 96 MiB upload and its download
/// raise its peak memory by far less than the file (both were buffered whole before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_stream_through_the_embedded_gateway_without_being_buffered() {
    const SIZE: usize = 96 << 20;
    let stack = Stack::start_custom(Mode::Embedded, 1, None, &[("CONFAB_FILES__MAX_BYTES", "209715200")]).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let pid = stack.pid("gw0");
    let bytes: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let before = peak_rss_kib(pid);
    let file = share(&stack, &token, &ch, "big.zip", &bytes, "application/zip").await;
    let (status, info) = file_info(&stack, &token, &file, "").await;
    assert_eq!(status, 200, "{info}");
    let resp = reqwest::get(info["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(SIZE as u64));
    let body = resp.bytes().await.unwrap();
    assert!(body == bytes, "the download is the upload, byte for byte");
    let grown_mib = (peak_rss_kib(pid).saturating_sub(before)) / 1024;
    assert!(grown_mib < 40, "peak memory grew by {grown_mib} MiB for a 96 MiB file");
}
