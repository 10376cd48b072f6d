//! Fuzzes the JSON bodies of the upload API as the gateway reads them (`http::Body`, the typed
//! JSON extractor, into `files::NewUpload` for `POST /api/files` or `files::Completion` for
//! `POST /api/files/{id}/complete`), then the checks `create` runs on the fields
//! (`files::validate_file_name`, `files::normalize_content_type`) and the download header built
//! from them (`files::disposition`). The first input byte picks the body and content type.
//! Checked: rejections are typed `invalid_field`; an accepted body is a JSON object (or, as
//! serde allows, an array in field order) with the fields' types; a normalized content type
//! is lowercase, valid and a fixpoint; an accepted file name gives a valid ASCII
//! `Content-Disposition` header.
#![no_main]

use axum::extract::FromRequest;
use axum::http::{header, HeaderValue, Request};
use confab_core::files::{disposition, normalize_content_type, type_allowed, validate_file_name};
use confab_core::ErrorCode;
use confab_fuzz::block_on;
use confab_gateway::http::files::{Completion, NewUpload};
use confab_gateway::http::Body;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn request(content_type: &str, body: &[u8]) -> axum::extract::Request {
    Request::builder()
        .method("POST")
        .uri("/api/files")
        .header(header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body.to_vec()))
        .expect("a request")
}

/// The body's values for `names`: by name from an object, or by position from an array of
/// exactly that length (serde's derived structs also accept the sequence form, so
/// `["token"]` is a valid completion body; found by this target, harmless).
fn fields<'a>(v: &'a Value, names: &[&str]) -> Option<Vec<&'a Value>> {
    match v {
        Value::Object(o) => names.iter().map(|n| o.get(*n)).collect(),
        Value::Array(a) if a.len() == names.len() => Some(a.iter().collect()),
        _ => None,
    }
}

fn check_fields(name: &str, content_type: &str) {
    if let Ok(ct) = normalize_content_type(content_type) {
        assert_eq!(ct, ct.to_ascii_lowercase(), "content type not lowercased");
        assert_eq!(normalize_content_type(&ct).as_deref(), Ok(ct.as_str()), "normalizing is not a fixpoint");
        assert!(type_allowed(&ct, &["*/*".to_string()]), "*/* refused {ct:?}");
        if validate_file_name(name).is_ok() {
            let d = disposition(name, &ct);
            assert!(d.is_ascii(), "non-ASCII disposition {d:?}");
            assert!(HeaderValue::from_str(&d).is_ok(), "disposition is not a header value: {d:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let content_type = if pick & 2 == 0 { "application/json" } else { "application/json; charset=utf-8" };
    let value = serde_json::from_slice::<Value>(body).ok();
    if pick & 1 == 0 {
        match block_on(Body::<NewUpload>::from_request(request(content_type, body), &())) {
            Ok(_) => {
                let v = value.expect("an accepted body is JSON");
                let f = fields(&v, &["channel_id", "name", "size", "content_type"])
                    .unwrap_or_else(|| panic!("an accepted body is not an object or a 4-array: {v}"));
                assert!(f[0].as_str().is_some_and(|c| c.parse::<uuid::Uuid>().is_ok()), "channel_id: {v}");
                assert!(f[2].is_u64(), "size is not a u64: {v}");
                let (Some(name), Some(ct)) = (f[1].as_str(), f[3].as_str()) else {
                    panic!("an accepted body lacks name or content_type: {v}")
                };
                check_fields(name, ct);
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidField),
        }
    } else {
        match block_on(Body::<Completion>::from_request(request(content_type, body), &())) {
            Ok(_) => {
                let v = value.expect("an accepted body is JSON");
                let f = fields(&v, &["upload_token"]).unwrap_or_else(|| panic!("not an object or a 1-array: {v}"));
                assert!(f[0].is_string(), "no upload_token: {v}");
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidField),
        }
    }
    // the fields' checks on any text, not only JSON-shaped
    if let Ok(s) = std::str::from_utf8(body) {
        let (name, ct) = s.split_once('\n').unwrap_or((s, s));
        check_fields(name, ct);
    }
});
