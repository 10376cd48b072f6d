//! Fuzzes the search language parser (`search_query::parse`, what `GET /api/search` calls on
//! `q` with the searcher's clock and `tz`). The first 8 input bytes pick the time zone offset
//! and the clock; the rest is the query. Checked: an accepted query is not empty, its words
//! and phrases carry text, names are trimmed and deduplicated, and whitespace around the query
//! changes nothing.
#![no_main]

use confab_core::search_query::parse;
use libfuzzer_sys::fuzz_target;

fn unique(v: &[String]) -> bool {
    v.iter().enumerate().all(|(i, s)| !v[..i].contains(s))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let tz = i32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    // a clock between 2020 and a century later, as a gateway's would be
    let now = 1_577_836_800_000 + u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as i64 * 1_000;
    let Ok(q) = std::str::from_utf8(&data[8..]) else { return };
    let parsed = parse(q, now, tz);
    assert_eq!(parse(&format!(" \t{q} \n"), now, tz), parsed, "surrounding whitespace changed the result");
    let Ok(p) = parsed else { return };
    assert!(!p.is_empty(), "an accepted query is empty");
    for w in &p.words {
        assert!(w.chars().any(char::is_alphanumeric) && !w.chars().any(char::is_whitespace), "word {w:?}");
    }
    for ph in &p.phrases {
        assert!(ph.chars().any(char::is_alphanumeric), "phrase {ph:?}");
        assert_eq!(ph.split_whitespace().collect::<Vec<_>>().join(" "), *ph, "phrase whitespace {ph:?}");
    }
    for name in p.in_channels.iter().chain(&p.from_users) {
        assert!(!name.is_empty() && name.trim() == name, "name {name:?}");
    }
    assert!(unique(&p.phrases) && unique(&p.in_channels) && unique(&p.from_users), "repeats in {p:?}");
});
