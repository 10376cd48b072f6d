//! The real provider clients against local servers that speak each provider's
//! protocol (`confab_notifier::fake`): delivery and what the service saw, invalid
//! tokens, transient failures with `Retry-After`, and expired credentials.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Version;
use confab_notifier::fake::{FakeApns, FakeFcm, FakeWebPush, Fault, RecordingFake};
use confab_notifier::keys::{ec_key_to_b64url, ec_key_to_pem, ec_public_b64url, generate_ec_key};
use confab_notifier::providers::apns::ApnsProvider;
use confab_notifier::providers::fcm::FcmProvider;
use confab_notifier::providers::webpush::{WebPushConfig, WebPushProvider};
use confab_notifier::{DeviceAddress, Notification, Priority, ProviderSet, PushProvider, SendOutcome};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

fn message() -> Notification {
    Notification::new("#general", "alice: lunch?")
        .with_data("workspace_id", "W1")
        .with_data("channel_id", "C42")
        .with_data("message_id", "M7")
        .with_collapse_key("C42")
        .with_thread_id("C42")
        .with_badge(3)
}

fn apns_token(n: u8) -> DeviceAddress {
    DeviceAddress::Apns { token: format!("{n:02x}").repeat(32) }
}

fn fcm_token(name: &str) -> DeviceAddress {
    DeviceAddress::Fcm { token: format!("{name}:APA91bH-fake_registration_token_0123456789") }
}

fn retry_after(outcome: &SendOutcome) -> Option<Duration> {
    match outcome {
        SendOutcome::Retry { after, .. } => *after,
        other => panic!("expected Retry, got {other:?}"),
    }
}

// ---------------------------------------------------------------- APNs

#[tokio::test]
async fn apns_delivers_an_alert_over_http2() {
    let fake = FakeApns::start().await;
    let apns = ApnsProvider::new(fake.config()).unwrap();

    let outcome = apns.send(&apns_token(1), &message().with_ttl(Duration::from_secs(3600))).await;
    assert_eq!(outcome, SendOutcome::Delivered);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.version, Version::HTTP_2);
    assert_eq!(r.device_token, "01".repeat(32));
    assert_eq!(r.topic.as_deref(), Some(fake.topic()));
    assert_eq!(r.push_type.as_deref(), Some("alert"));
    assert_eq!(r.priority.as_deref(), Some("10"));
    assert_eq!(r.collapse_id.as_deref(), Some("C42"));
    assert!(r.expiration.is_some());
    assert_eq!(
        r.payload,
        json!({
            "aps": {"alert": {"title": "#general", "body": "alice: lunch?"}, "badge": 3, "thread-id": "C42", "sound": "default"},
            "workspace_id": "W1", "channel_id": "C42", "message_id": "M7",
        })
    );
}

#[tokio::test]
async fn apns_reuses_one_provider_token_and_one_connection() {
    let fake = FakeApns::start().await;
    let apns = Arc::new(ApnsProvider::new(fake.config()).unwrap());
    apns.send(&apns_token(1), &message()).await; // warm the connection

    let started = Instant::now();
    let sends = (0..50u8).map(|i| {
        let apns = apns.clone();
        tokio::spawn(async move { apns.send(&apns_token(i), &message().with_priority(Priority::Normal)).await })
    });
    for send in sends.collect::<Vec<_>>() {
        assert_eq!(send.await.unwrap(), SendOutcome::Delivered);
    }
    let requests = fake.wait_for(51, WAIT).await;
    assert_eq!(requests.len(), 51);
    let slowest = requests.iter().skip(1).map(|r| r.received_at.duration_since(started)).max().unwrap();
    assert!(slowest < Duration::from_secs(1), "50 concurrent sends took {slowest:?} to reach APNs");
    assert!(requests.iter().all(|r| r.provider_token == requests[0].provider_token));
    assert!(requests.iter().all(|r| r.peer == requests[0].peer), "HTTP/2 multiplexes one connection");
    assert_eq!(requests[1].priority.as_deref(), Some("5"));
}

#[tokio::test]
async fn apns_unregistered_and_malformed_tokens_are_invalid() {
    let fake = FakeApns::start().await;
    let apns = ApnsProvider::new(fake.config()).unwrap();

    fake.unregister(&"02".repeat(32));
    let outcome = apns.send(&apns_token(2), &message()).await;
    assert!(matches!(&outcome, SendOutcome::InvalidToken { reason } if reason.contains("Unregistered")), "{outcome:?}");

    // APNs answers 400 BadDeviceToken for a token that is not one.
    let short = DeviceAddress::Apns { token: "abcd".into() };
    let outcome = apns.send(&short, &message()).await;
    assert!(
        matches!(&outcome, SendOutcome::InvalidToken { reason } if reason.contains("BadDeviceToken")),
        "{outcome:?}"
    );

    // Not even hex: never sent.
    let junk = DeviceAddress::Apns { token: "../../etc".into() };
    assert!(matches!(apns.send(&junk, &message()).await, SendOutcome::InvalidToken { .. }));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn apns_unavailable_is_retried_after_what_apns_says() {
    let fake = FakeApns::start().await;
    let apns = ApnsProvider::new(fake.config()).unwrap();

    fake.fail_next(1, Fault::new(503).retry_after(Duration::from_secs(7)));
    let outcome = apns.send(&apns_token(1), &message()).await;
    assert_eq!(retry_after(&outcome), Some(Duration::from_secs(7)));
    assert!(matches!(&outcome, SendOutcome::Retry { reason, .. } if reason.contains("ServiceUnavailable")));

    fake.fail_next(1, Fault::new(429));
    assert_eq!(retry_after(&apns.send(&apns_token(1), &message()).await), None);

    assert_eq!(apns.send(&apns_token(1), &message()).await, SendOutcome::Delivered);
}

#[tokio::test]
async fn apns_expired_provider_token_is_replaced_and_the_push_resent() {
    let fake = FakeApns::start().await;
    let apns = ApnsProvider::new(fake.config()).unwrap();
    assert_eq!(apns.send(&apns_token(1), &message()).await, SendOutcome::Delivered);

    fake.expire_provider_tokens();
    assert_eq!(apns.send(&apns_token(1), &message()).await, SendOutcome::Delivered);
    assert_eq!(apns.send(&apns_token(1), &message()).await, SendOutcome::Delivered);

    let requests = fake.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 403, 200, 200]);
    assert_eq!(requests[1].provider_token, requests[0].provider_token);
    assert_ne!(requests[2].provider_token, requests[0].provider_token, "a new token was minted");
    assert_eq!(requests[3].provider_token, requests[2].provider_token, "and then reused");
}

#[tokio::test]
async fn apns_with_the_wrong_key_is_retried_not_dropped() {
    let fake = FakeApns::start().await;
    let mut config = fake.config();
    config.private_key_pem = ec_key_to_pem(&generate_ec_key());
    let apns = ApnsProvider::new(config).unwrap();
    let outcome = apns.send(&apns_token(1), &message()).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { reason, .. } if reason.contains("InvalidProviderToken")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_fake_apns_holds_clients_to_the_protocol() {
    let fake = FakeApns::start().await;
    // HTTP/1.1 is not APNs.
    let http1 = reqwest::Client::new();
    let url = format!("{}/3/device/{}", fake.url(), "01".repeat(32));
    assert_eq!(http1.post(&url).body("{}").send().await.unwrap().status(), 505);

    // A provider for another app's topic.
    let mut config = fake.config();
    config.topic = "com.example.other".into();
    let outcome = ApnsProvider::new(config).unwrap().send(&apns_token(1), &message()).await;
    assert!(matches!(&outcome, SendOutcome::Rejected { reason } if reason.contains("TopicDisallowed")), "{outcome:?}");
}

#[tokio::test]
async fn apns_oversized_payload_is_rejected_before_sending() {
    let fake = FakeApns::start().await;
    let apns = ApnsProvider::new(fake.config()).unwrap();
    let huge = Notification::new("t", "x".repeat(5000));
    assert!(matches!(apns.send(&apns_token(1), &huge).await, SendOutcome::Rejected { .. }));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn apns_unreachable_is_retried() {
    let fake = FakeApns::start().await;
    let config = fake.config();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let apns = ApnsProvider::new(config).unwrap();
    assert!(matches!(apns.send(&apns_token(1), &message()).await, SendOutcome::Retry { .. }));
}

// ---------------------------------------------------------------- FCM

#[tokio::test]
async fn fcm_delivers_with_a_service_account_access_token() {
    let fake = FakeFcm::start().await;
    let fcm = FcmProvider::new(fake.config()).unwrap();

    let device = fcm_token("d1");
    assert_eq!(fcm.send(&device, &message()).await, SendOutcome::Delivered);

    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1);
    let claims = tokens[0].claims.as_ref().expect("assertion verified");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/firebase.messaging");
    assert_eq!(claims["aud"], fake.token_uri());

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.project, fake.project_id());
    assert_eq!(r.bearer, tokens[0].issued);
    assert_eq!(Some(device.key()), r.token.as_deref());
    assert_eq!(r.message["notification"], json!({"title": "#general", "body": "alice: lunch?"}));
    assert_eq!(r.message["data"], json!({"workspace_id": "W1", "channel_id": "C42", "message_id": "M7"}));
    assert_eq!(r.message["android"]["collapse_key"], "C42");
    assert_eq!(r.message["android"]["priority"], "HIGH");
}

#[tokio::test]
async fn fcm_caches_the_access_token_until_it_expires() {
    let fake = FakeFcm::start().await;
    fake.set_access_token_ttl(Duration::from_secs(4));
    let fcm = FcmProvider::new(fake.config()).unwrap();
    for _ in 0..3 {
        assert_eq!(fcm.send(&fcm_token("d1"), &message()).await, SendOutcome::Delivered);
    }
    assert_eq!(fake.token_requests().len(), 1, "one token for three sends");

    // Refreshed ahead of expiry (halfway through a short-lived token).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(fcm.send(&fcm_token("d1"), &message()).await, SendOutcome::Delivered);
    assert_eq!(fake.token_requests().len(), 2);
    assert!(fake.requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn fcm_unregistered_and_malformed_tokens_are_invalid() {
    let fake = FakeFcm::start().await;
    let fcm = FcmProvider::new(fake.config()).unwrap();

    let gone = fcm_token("gone");
    fake.unregister(gone.key());
    let outcome = fcm.send(&gone, &message()).await;
    assert!(matches!(&outcome, SendOutcome::InvalidToken { reason } if reason.contains("UNREGISTERED")), "{outcome:?}");

    let malformed = DeviceAddress::Fcm { token: "not a token".into() };
    let outcome = fcm.send(&malformed, &message()).await;
    assert!(
        matches!(&outcome, SendOutcome::InvalidToken { reason } if reason.contains("INVALID_ARGUMENT")),
        "{outcome:?}"
    );

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [404, 400]);
}

#[tokio::test]
async fn fcm_unavailable_is_retried_after_what_fcm_says() {
    let fake = FakeFcm::start().await;
    let fcm = FcmProvider::new(fake.config()).unwrap();

    fake.fail_next(1, Fault::new(503).retry_after(Duration::from_secs(9)));
    let outcome = fcm.send(&fcm_token("d1"), &message()).await;
    assert_eq!(retry_after(&outcome), Some(Duration::from_secs(9)));

    fake.fail_next(1, Fault::new(429).retry_after(Duration::from_secs(30)));
    assert_eq!(retry_after(&fcm.send(&fcm_token("d1"), &message()).await), Some(Duration::from_secs(30)));

    assert_eq!(fcm.send(&fcm_token("d1"), &message()).await, SendOutcome::Delivered);
}

#[tokio::test]
async fn fcm_revoked_access_token_is_replaced_and_the_push_resent() {
    let fake = FakeFcm::start().await;
    let fcm = FcmProvider::new(fake.config()).unwrap();
    assert_eq!(fcm.send(&fcm_token("d1"), &message()).await, SendOutcome::Delivered);

    fake.revoke_access_tokens();
    assert_eq!(fcm.send(&fcm_token("d1"), &message()).await, SendOutcome::Delivered);

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200]);
    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0].issued, tokens[1].issued);
}

#[tokio::test]
async fn fcm_token_endpoint_trouble_is_retried() {
    let fake = FakeFcm::start().await;
    let fcm = FcmProvider::new(fake.config()).unwrap();
    fake.fail_next_token_requests(1, Fault::new(503).retry_after(Duration::from_secs(4)));
    let outcome = fcm.send(&fcm_token("d1"), &message()).await;
    assert_eq!(retry_after(&outcome), Some(Duration::from_secs(4)));
    assert!(fake.requests().is_empty(), "nothing sent without a token");
    assert_eq!(fcm.send(&fcm_token("d1"), &message()).await, SendOutcome::Delivered);
}

#[tokio::test]
async fn fcm_refuses_an_assertion_signed_by_another_key() {
    let fake = FakeFcm::start().await;
    let other = FakeFcm::start().await;
    // The other fake's key, this fake's identity and endpoints.
    let mut config = fake.config();
    config.service_account.private_key = other.config().service_account.private_key;
    let fcm = FcmProvider::new(config).unwrap();
    let outcome = fcm.send(&fcm_token("d1"), &message()).await;
    assert!(matches!(&outcome, SendOutcome::Retry { reason, .. } if reason.contains("invalid_grant")), "{outcome:?}");
    assert_eq!(fake.token_requests()[0].status, 400);
}

// ---------------------------------------------------------------- Web Push

fn vapid() -> (String, String) {
    let key = generate_ec_key();
    (ec_key_to_b64url(&key), ec_public_b64url(key.verifying_key()))
}

/// A provider for the fake push service, which listens on loopback over plain http.
fn web_push(private_key: &str) -> WebPushProvider {
    let config =
        WebPushConfig::new(private_key, "mailto:push@confab.example").allow_http(true).allow_private_networks(true);
    WebPushProvider::new(config).unwrap()
}

#[tokio::test]
async fn web_push_delivers_a_message_the_browser_can_decrypt() {
    let fake = FakeWebPush::start().await;
    let (private, public) = vapid();
    let provider = web_push(&private);
    let device = fake.subscribe(&public).unwrap();

    let n = message().with_ttl(Duration::from_secs(600));
    assert_eq!(provider.send(&device, &n).await, SendOutcome::Delivered);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.status, 201);
    assert_eq!(r.endpoint, device.key());
    assert_eq!(
        r.json(),
        json!({
            "title": "#general", "body": "alice: lunch?", "tag": "C42", "badge": 3,
            "data": {"workspace_id": "W1", "channel_id": "C42", "message_id": "M7"},
        })
    );
    assert_eq!(r.ttl.as_deref(), Some("600"));
    assert_eq!(r.urgency.as_deref(), Some("high"));
    assert_eq!(r.topic.as_deref(), Some("C42"));
    assert_eq!(r.content_encoding.as_deref(), Some("aes128gcm"));
    let claims = r.vapid_claims.as_ref().expect("VAPID verified");
    assert_eq!(claims["aud"], fake.url());
    assert_eq!(claims["sub"], "mailto:push@confab.example");
}

#[tokio::test]
async fn web_push_gone_and_unknown_subscriptions_are_invalid() {
    let fake = FakeWebPush::start().await;
    let (private, public) = vapid();
    let provider = web_push(&private);

    let device = fake.subscribe(&public).unwrap();
    fake.unsubscribe(device.key());
    let outcome = provider.send(&device, &message()).await;
    assert!(matches!(&outcome, SendOutcome::InvalidToken { reason } if reason.contains("410")), "{outcome:?}");

    let DeviceAddress::WebPush { p256dh, auth, .. } = fake.subscribe(&public).unwrap() else { unreachable!() };
    let unknown = DeviceAddress::WebPush { endpoint: format!("{}/push/nobody", fake.url()), p256dh, auth };
    let outcome = provider.send(&unknown, &message()).await;
    assert!(matches!(&outcome, SendOutcome::InvalidToken { reason } if reason.contains("404")), "{outcome:?}");
}

#[tokio::test]
async fn web_push_overload_is_retried_after_what_the_service_says() {
    let fake = FakeWebPush::start().await;
    let (private, public) = vapid();
    let provider = web_push(&private);
    let device = fake.subscribe(&public).unwrap();

    fake.fail_next(1, Fault::new(429).retry_after(Duration::from_secs(12)));
    assert_eq!(retry_after(&provider.send(&device, &message()).await), Some(Duration::from_secs(12)));
    fake.fail_next(1, Fault::new(503));
    assert_eq!(retry_after(&provider.send(&device, &message()).await), None);
    assert_eq!(provider.send(&device, &message()).await, SendOutcome::Delivered);
}

#[tokio::test]
async fn web_push_refused_vapid_token_is_replaced_and_the_push_resent() {
    let fake = FakeWebPush::start().await;
    let (private, public) = vapid();
    let provider = web_push(&private);
    let device = fake.subscribe(&public).unwrap();
    assert_eq!(provider.send(&device, &message()).await, SendOutcome::Delivered);

    fake.expire_vapid_tokens();
    assert_eq!(provider.send(&device, &message()).await, SendOutcome::Delivered);

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 401, 201]);
}

#[tokio::test]
async fn web_push_with_a_vapid_key_other_than_the_subscriptions_is_rejected() {
    let fake = FakeWebPush::start().await;
    let (_, public) = vapid();
    let (other_private, _) = vapid();
    let device = fake.subscribe(&public).unwrap();
    let outcome = web_push(&other_private).send(&device, &message()).await;
    assert!(matches!(&outcome, SendOutcome::Rejected { reason } if reason.contains("403")), "{outcome:?}");
}

#[tokio::test]
async fn web_push_refuses_plain_http_endpoints_unless_allowed() {
    let fake = FakeWebPush::start().await;
    let (private, public) = vapid();
    let device = fake.subscribe(&public).unwrap();
    let strict = WebPushProvider::new(WebPushConfig::new(private, "mailto:push@confab.example")).unwrap();
    assert!(matches!(strict.send(&device, &message()).await, SendOutcome::InvalidToken { .. }));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn web_push_never_calls_a_private_address_a_client_registered() {
    let fake = FakeWebPush::start().await;
    let (private, public) = vapid();
    let device = fake.subscribe(&public).unwrap();
    // http allowed (so only the address decides), private networks not
    let config = WebPushConfig::new(private, "mailto:push@confab.example").allow_http(true);
    let provider = WebPushProvider::new(config).unwrap();
    let outcome = provider.send(&device, &message()).await;
    assert!(matches!(&outcome, SendOutcome::InvalidToken { reason } if reason.contains("public")), "{outcome:?}");
    let DeviceAddress::WebPush { p256dh, auth, .. } = device else { unreachable!() };
    for endpoint in ["https://169.254.169.254/latest/meta-data/", "https://[::1]/push/x", "https://localhost/push/x"] {
        let device = DeviceAddress::WebPush { endpoint: endpoint.into(), p256dh: p256dh.clone(), auth: auth.clone() };
        let outcome = provider.send(&device, &message()).await;
        assert!(matches!(&outcome, SendOutcome::InvalidToken { .. }), "{endpoint}: {outcome:?}");
    }
    assert!(fake.requests().is_empty());
}

/// A server that answers every request with a redirect to `location`.
async fn redirector(location: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push/redirect", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let _ = socket.read(&mut buf).await;
            let answer =
                format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    url
}

#[tokio::test]
async fn web_push_follows_no_redirect() {
    let fake = FakeWebPush::start().await;
    let (private, public) = vapid();
    let DeviceAddress::WebPush { endpoint, p256dh, auth } = fake.subscribe(&public).unwrap() else { unreachable!() };
    let device = DeviceAddress::WebPush { endpoint: redirector(endpoint).await, p256dh, auth };
    let outcome = web_push(&private).send(&device, &message()).await;
    assert!(matches!(&outcome, SendOutcome::Rejected { reason } if reason.contains("307")), "{outcome:?}");
    assert!(fake.requests().is_empty(), "the redirect was followed");
}

// ---------------------------------------------------------------- all three

#[tokio::test]
async fn a_provider_set_sends_each_device_through_its_platform() {
    let (apns_fake, fcm_fake, web_fake) = (FakeApns::start().await, FakeFcm::start().await, FakeWebPush::start().await);
    let (private, public) = vapid();
    let set = ProviderSet::new()
        .with(Arc::new(ApnsProvider::new(apns_fake.config()).unwrap()))
        .with(Arc::new(FcmProvider::new(fcm_fake.config()).unwrap()))
        .with(Arc::new(web_push(&private)));

    let web_device = web_fake.subscribe(&public).unwrap();
    for device in [apns_token(9), fcm_token("d9"), web_device] {
        assert_eq!(set.send(&device, &message()).await, SendOutcome::Delivered, "{device:?}");
    }
    assert_eq!(apns_fake.requests().len(), 1);
    assert_eq!(fcm_fake.requests().len(), 1);
    assert_eq!(web_fake.requests().len(), 1);

    let only_apns = ProviderSet::new().with(Arc::new(ApnsProvider::new(apns_fake.config()).unwrap()));
    assert!(matches!(only_apns.send(&fcm_token("d9"), &message()).await, SendOutcome::Rejected { .. }));
    let apns = ApnsProvider::new(apns_fake.config()).unwrap();
    assert!(matches!(apns.send(&fcm_token("d9"), &message()).await, SendOutcome::Rejected { .. }));
}
