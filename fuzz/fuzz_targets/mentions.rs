//! Fuzzes mention parsing (`mentions::parse`, what unread counts and the notifier call on
//! message text) against a naive reference: the users are exactly the ids of the `<@id>` /
//! `<@id|name>` tokens that close within the scan window, in order of first appearance; the
//! broadcast flags need their word in the text.
#![no_main]

use confab_core::mentions::parse;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

/// The parser's `<@...>` window (`mentions::MAX_TOKEN`).
const MAX_TOKEN: usize = 128;

/// Every `<@` position, scanned on its own (quadratic, fine for fuzz-sized inputs).
fn reference_users(text: &str) -> Vec<Uuid> {
    let bytes = text.as_bytes();
    let mut out: Vec<Uuid> = Vec::new();
    for i in 0..bytes.len().saturating_sub(1) {
        if &bytes[i..i + 2] != b"<@" {
            continue;
        }
        let start = i + 2;
        let window = &bytes[start..bytes.len().min(start + MAX_TOKEN)];
        let Some(end) = window.iter().position(|&b| b == b'>' || b == b'<') else { continue };
        if window[end] != b'>' {
            continue;
        }
        let inner = &text[start..start + end];
        if let Ok(u) = inner.split('|').next().unwrap_or("").parse::<Uuid>() {
            if !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let m = parse(text);
    assert_eq!(m.users, reference_users(text), "users of {text:?}");
    if m.channel {
        assert!(text.contains("channel") || text.contains("everyone"), "@channel without the word");
    }
    if m.here {
        assert!(text.contains("here"), "@here without the word");
    }
    let someone = Uuid::from_u128(0x5eed);
    assert_eq!(m.includes(&someone), m.channel || m.here || m.users.contains(&someone));
});
