//! The search language users type, as in Slack:
//!
//! ```text
//! deploy "release notes" in:#general from:@ana after:2026-01-01 has:link is:thread
//! ```
//!
//! - free words (all must match, fuzzily) and `"quoted phrases"` (matched as phrases);
//! - `in:#channel` / `in:channel` and `from:@user` / `from:user` / `from:me`, repeatable (any of them);
//! - `before:D`, `after:D`, `on:D`, `during:D`, where `D` is `YYYY-MM-DD`, `YYYY-MM`, `YYYY`,
//!   `today` or `yesterday`, in the searcher's time zone. Each `D` is a span of time (a day, a
//!   month, a year): `before:` ends before it starts, `after:` starts after it ends (as in Slack,
//!   `after:2026-01-01` means from 2026-01-02 00:00), `on:`/`during:` is the span itself. Several
//!   date filters narrow each other;
//! - `has:link`, `has:file`, `is:thread`.
//!
//! Unknown `key:value` tokens (`http://x`, `12:30`, `to:ana`) are plain words, as in Slack; a known
//! operator with a value it does not understand (`before:tomorrowish`, `has:pin`) is an error.
//! Operator names are case-insensitive; values are kept as typed (`in:` without its `#`, `from:`
//! without its `@`). A value may be quoted: `in:"#release notes"`.
//!
//! [`parse`] is pure: the caller resolves names to ids, applies permissions and fills a
//! [`crate::search::SearchQuery`].

const DAY_MS: i64 = 86_400_000;

/// The longest query, in characters (Slack-like queries are a few words; this leaves room for
/// long quoted phrases).
pub const MAX_QUERY_CHARS: usize = 1000;
/// Words and phrases in one query at most (each is a fuzzy clause for the index).
pub const MAX_QUERY_TERMS: usize = 32;
/// `in:` and `from:` names in one query at most (each is resolved against the directory).
pub const MAX_QUERY_NAMES: usize = 10;

/// A parsed query, before names are resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    /// Free words, as typed (the index analyzes them).
    pub words: Vec<String>,
    /// Quoted phrases, inner whitespace collapsed to one space.
    pub phrases: Vec<String>,
    /// `in:` channel names without `#` (deduplicated, in order). `in:@ana` is kept as `@ana`
    /// (a DM with ana, for the caller to resolve or reject).
    pub in_channels: Vec<String>,
    /// `from:` user names without `@` (deduplicated); `from:me` is `"me"`.
    pub from_users: Vec<String>,
    /// Inclusive lower bound, Unix milliseconds.
    pub after_ms: Option<i64>,
    /// Exclusive upper bound, Unix milliseconds.
    pub before_ms: Option<i64>,
    pub has_link: bool,
    pub has_file: bool,
    pub is_thread: bool,
}

impl ParsedQuery {
    /// Whether the query has no words, no phrases and no filter at all.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
            && self.phrases.is_empty()
            && self.in_channels.is_empty()
            && self.from_users.is_empty()
            && self.after_ms.is_none()
            && self.before_ms.is_none()
            && !self.has_link
            && !self.has_file
            && !self.is_thread
    }
}

/// Parses `q`. `now_ms` (Unix milliseconds) anchors `today`/`yesterday`; `tz_offset_minutes` is
/// the searcher's offset from UTC, east positive (+60 for CET, -300 for EST): dates are days in
/// that zone.
///
/// Errors are short sentences to show the user: an empty query, or a known operator with a
/// malformed value.
pub fn parse(q: &str, now_ms: i64, tz_offset_minutes: i32) -> Result<ParsedQuery, String> {
    // whitespace around the query is not part of it (found by fuzzing: a query of exactly the
    // longest length was refused once a newline followed it); bytes first, so a huge query is
    // refused without walking its characters
    let q = q.trim();
    if q.len() > 4 * MAX_QUERY_CHARS || q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!("A search is at most {MAX_QUERY_CHARS} characters."));
    }
    let mut out = ParsedQuery::default();
    let tz_ms = tz_offset_minutes as i64 * 60_000;
    for tok in lex(q) {
        match tok {
            Tok::Phrase(p) => {
                let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
                if p.chars().any(char::is_alphanumeric) {
                    push_unique(&mut out.phrases, p);
                }
            }
            Tok::Word(w) => {
                if w.chars().any(char::is_alphanumeric) {
                    out.words.push(w);
                }
            }
            Tok::Op(key, value) => apply(&mut out, &key, value, now_ms, tz_ms)?,
        }
    }
    if out.is_empty() {
        return Err("Type some words or a filter (in:, from:, before:, after:, on:, has:, is:) to search.".into());
    }
    if out.words.len() + out.phrases.len() > MAX_QUERY_TERMS {
        return Err(format!("A search has at most {MAX_QUERY_TERMS} words and phrases."));
    }
    if out.in_channels.len() + out.from_users.len() > MAX_QUERY_NAMES {
        return Err(format!("A search names at most {MAX_QUERY_NAMES} channels and people (in:, from:)."));
    }
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Phrase(String),
    /// A known operator (lowercased) and its raw value.
    Op(String, String),
}

const OPERATORS: &[&str] = &["in", "from", "before", "after", "on", "during", "has", "is"];

fn lex(q: &str) -> Vec<Tok> {
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    // Reads a quoted string starting at the `"` at `i`; an unterminated quote runs to the end.
    let read_quoted = |i: &mut usize| -> String {
        *i += 1;
        let start = *i;
        while *i < chars.len() && !is_quote(chars[*i]) {
            *i += 1;
        }
        let s: String = chars[start..*i].iter().collect();
        if *i < chars.len() {
            *i += 1; // closing quote
        }
        s
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_quote(c) {
            out.push(Tok::Phrase(read_quoted(&mut i)));
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !is_quote(chars[i]) {
            i += 1;
        }
        let tok: String = chars[start..i].iter().collect();
        match tok.split_once(':') {
            Some((key, value)) if OPERATORS.contains(&key.to_ascii_lowercase().as_str()) => {
                let key = key.to_ascii_lowercase();
                // `in:"two words"`: the value is the quoted string right after the colon.
                if value.is_empty() && i < chars.len() && is_quote(chars[i]) {
                    let v = read_quoted(&mut i);
                    out.push(Tok::Op(key, v.trim().to_string()));
                } else {
                    out.push(Tok::Op(key, value.to_string()));
                }
            }
            _ => out.push(Tok::Word(tok)),
        }
    }
    out
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”')
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn apply(out: &mut ParsedQuery, key: &str, value: String, now_ms: i64, tz_ms: i64) -> Result<(), String> {
    match key {
        "in" => {
            let name = value.strip_prefix('#').unwrap_or(&value).trim();
            if name.is_empty() {
                return Err("in: needs a channel name, like in:#general.".into());
            }
            push_unique(&mut out.in_channels, name.to_string());
        }
        "from" => {
            let name = value.strip_prefix('@').unwrap_or(&value).trim();
            if name.is_empty() {
                return Err("from: needs a person, like from:@ana or from:me.".into());
            }
            let name = if name.eq_ignore_ascii_case("me") { "me".to_string() } else { name.to_string() };
            push_unique(&mut out.from_users, name);
        }
        "before" | "after" | "on" | "during" => {
            let (start_day, end_day) = parse_span(&value, now_ms, tz_ms).ok_or_else(|| {
                format!(
                    "{key}: needs a date like 2026-01-31, a month like 2026-01, a year, \"today\" or \"yesterday\" (got \"{value}\")."
                )
            })?;
            let start = start_day * DAY_MS - tz_ms;
            let end = end_day * DAY_MS - tz_ms;
            let (lo, hi) = match key {
                "before" => (None, Some(start)),
                "after" => (Some(end), None),
                _ => (Some(start), Some(end)),
            };
            if let Some(lo) = lo {
                out.after_ms = Some(out.after_ms.map_or(lo, |a| a.max(lo)));
            }
            if let Some(hi) = hi {
                out.before_ms = Some(out.before_ms.map_or(hi, |b| b.min(hi)));
            }
        }
        "has" => match value.to_ascii_lowercase().as_str() {
            "link" | "links" => out.has_link = true,
            "file" | "files" => out.has_file = true,
            _ => return Err(format!("has: can be has:link or has:file (got \"{value}\").")),
        },
        "is" => match value.to_ascii_lowercase().as_str() {
            "thread" | "threads" => out.is_thread = true,
            _ => return Err(format!("is: can be is:thread (got \"{value}\").")),
        },
        _ => unreachable!("lex only yields known operators"),
    }
    Ok(())
}

/// The span of local days `[start, end)` a date value names (days since 1970-01-01 in the
/// searcher's zone), or `None` when it is not a date.
fn parse_span(v: &str, now_ms: i64, tz_ms: i64) -> Option<(i64, i64)> {
    let today = (now_ms + tz_ms).div_euclid(DAY_MS);
    match v.to_ascii_lowercase().as_str() {
        "today" => return Some((today, today + 1)),
        "yesterday" => return Some((today - 1, today)),
        _ => {}
    }
    let parts: Vec<&str> = v.split('-').collect();
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match parts.as_slice() {
        [y] => {
            let y = num(y, 4)?;
            Some((days_from_civil(y, 1, 1), days_from_civil(y + 1, 1, 1)))
        }
        [y, m] => {
            let (y, m) = (num(y, 4)?, num(m, 2)?);
            if !(1..=12).contains(&m) {
                return None;
            }
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            Some((days_from_civil(y, m, 1), days_from_civil(ny, nm, 1)))
        }
        [y, m, d] => {
            let (y, m, d) = (num(y, 4)?, num(m, 2)?, num(d, 2)?);
            if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
                return None;
            }
            let day = days_from_civil(y, m, d);
            Some((day, day + 1))
        }
        _ => None,
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-15T12:00:00Z
    const NOW: i64 = 1_773_576_000_000;
    /// 2026-01-01T00:00:00Z
    const JAN1: i64 = 1_767_225_600_000;

    fn p(q: &str) -> ParsedQuery {
        parse(q, NOW, 0).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    #[test]
    fn queries_are_bounded_in_length_terms_and_names() {
        let words = |n: usize| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(p(&words(MAX_QUERY_TERMS)).words.len(), MAX_QUERY_TERMS);
        assert!(parse(&words(MAX_QUERY_TERMS + 1), NOW, 0).unwrap_err().contains("at most 32 words"));
        let phrases = (0..=MAX_QUERY_TERMS).map(|i| format!("\"p{i}\"")).collect::<Vec<_>>().join(" ");
        assert!(parse(&phrases, NOW, 0).is_err());
        let names = |n: usize| (0..n).map(|i| format!("in:#c{i} from:@u{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(p(&names(MAX_QUERY_NAMES / 2)).in_channels.len(), MAX_QUERY_NAMES / 2);
        assert!(parse(&names(MAX_QUERY_NAMES / 2 + 1), NOW, 0).unwrap_err().contains("at most 10 channels"));
        assert!(p(&"a".repeat(MAX_QUERY_CHARS)).words.len() == 1);
        assert!(parse(&"a".repeat(MAX_QUERY_CHARS + 1), NOW, 0).unwrap_err().contains("at most 1000 characters"));
        // counted in characters, not bytes: 1000 three-byte characters pass
        assert!(parse(&"é".repeat(MAX_QUERY_CHARS), NOW, 0).is_ok());
        assert!(parse(&"x".repeat(1 << 20), NOW, 0).is_err());
        // whitespace around a query of the longest length does not count (fuzzing found it)
        let longest = words(MAX_QUERY_TERMS) + &" ".repeat(MAX_QUERY_CHARS - words(MAX_QUERY_TERMS).len());
        assert_eq!(parse(&format!(" \t{longest} \n"), NOW, 0), parse(&longest, NOW, 0));
        let longest = "a".repeat(MAX_QUERY_CHARS);
        assert_eq!(parse(&format!(" \t{longest} \n"), NOW, 0), parse(&longest, NOW, 0));
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 1, 1) * DAY_MS, JAN1);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn words_and_phrases() {
        let q = p(r#"deploy  "release   notes" failed "" "#);
        assert_eq!(q.words, vec!["deploy", "failed"]);
        assert_eq!(q.phrases, vec!["release notes"]);
        assert!(!q.has_link && q.in_channels.is_empty() && q.after_ms.is_none());
        // Adjacent quotes, smart quotes, an unterminated quote runs to the end.
        let q = p("a\u{201c}b c\u{201d}d \"e f");
        assert_eq!(q.words, vec!["a", "d"]);
        assert_eq!(q.phrases, vec!["b c", "e f"]);
        // Operators inside quotes are text.
        let q = p(r#""in:#general is down""#);
        assert_eq!(q.phrases, vec!["in:#general is down"]);
        assert!(q.in_channels.is_empty());
    }

    #[test]
    fn channels_and_people() {
        let q = p("in:#general in:random IN:#general from:@ana from:bob from:Me from:@ana x");
        assert_eq!(q.in_channels, vec!["general", "random"]);
        assert_eq!(q.from_users, vec!["ana", "bob", "me"]);
        assert_eq!(q.words, vec!["x"]);
        let q = p(r##"in:"#release notes" from:"@Ana Lopez""##);
        assert_eq!(q.in_channels, vec!["release notes"]);
        assert_eq!(q.from_users, vec!["Ana Lopez"]);
        assert_eq!(p("in:@ana").in_channels, vec!["@ana"]);
        assert!(parse("in:#", NOW, 0).unwrap_err().contains("in:"));
        assert!(parse("from:", NOW, 0).unwrap_err().contains("from:"));
    }

    #[test]
    fn dates_are_local_days() {
        let q = p("on:2026-01-01");
        assert_eq!((q.after_ms, q.before_ms), (Some(JAN1), Some(JAN1 + DAY_MS)));
        // after: excludes the day itself, before: too.
        let q = p("after:2026-01-01 before:2026-01-03");
        assert_eq!((q.after_ms, q.before_ms), (Some(JAN1 + DAY_MS), Some(JAN1 + 2 * DAY_MS)));
        // UTC+1: local midnight is 23:00 UTC the day before; UTC-5: 05:00 UTC.
        let q = parse("on:2026-01-01", NOW, 60).unwrap();
        assert_eq!(q.after_ms, Some(JAN1 - 3_600_000));
        let q = parse("before:2026-01-01", NOW, -300).unwrap();
        assert_eq!(q.before_ms, Some(JAN1 + 5 * 3_600_000));
        // Months and years.
        let q = p("during:2026-02");
        assert_eq!((q.after_ms, q.before_ms), (Some(JAN1 + 31 * DAY_MS), Some(JAN1 + 59 * DAY_MS)));
        let q = p("during:2026");
        assert_eq!((q.after_ms, q.before_ms), (Some(JAN1), Some(JAN1 + 365 * DAY_MS)));
        let q = p("after:2025-12");
        assert_eq!(q.after_ms, Some(JAN1));
        // Several filters narrow each other.
        let q = p("during:2026 after:2026-01-10 before:2026-06-01 before:2026-03-01");
        assert_eq!(q.after_ms, Some(JAN1 + 10 * DAY_MS));
        assert_eq!(q.before_ms, Some(JAN1 + 59 * DAY_MS));
    }

    #[test]
    fn today_and_yesterday() {
        let today = JAN1 + 73 * DAY_MS; // 2026-03-15
        let q = p("on:today");
        assert_eq!((q.after_ms, q.before_ms), (Some(today), Some(today + DAY_MS)));
        let q = p("on:Yesterday");
        assert_eq!((q.after_ms, q.before_ms), (Some(today - DAY_MS), Some(today)));
        // At 12:00 UTC it is already the 16th in UTC+13.
        let q = parse("on:today", NOW, 13 * 60).unwrap();
        assert_eq!(q.after_ms, Some(today + DAY_MS - 13 * 3_600_000));
        assert_eq!(p("after:yesterday").after_ms, Some(today));
    }

    #[test]
    fn bad_dates() {
        for q in [
            "before:2026-02-30",
            "after:2026-13-01",
            "on:26-01-01",
            "on:2026-1-1",
            "before:tomorrowish",
            "on:",
            "during:2026-01-01-01",
        ] {
            let e = parse(q, NOW, 0).unwrap_err();
            assert!(e.contains("needs a date"), "{q}: {e}");
        }
        assert!(parse("on:2024-02-29", NOW, 0).is_ok());
        assert!(parse("on:2025-02-29", NOW, 0).is_err());
    }

    #[test]
    fn has_and_is() {
        let q = p("has:link has:File is:thread");
        assert!(q.has_link && q.has_file && q.is_thread);
        assert!(q.words.is_empty());
        assert!(parse("has:pin", NOW, 0).unwrap_err().contains("has:link"));
        assert!(parse("is:saved", NOW, 0).unwrap_err().contains("is:thread"));
    }

    #[test]
    fn unknown_operators_are_words() {
        let q = p("to:ana http://example.com 12:30 :)");
        assert_eq!(q.words, vec!["to:ana", "http://example.com", "12:30"]);
    }

    #[test]
    fn empty_queries() {
        for q in ["", "   ", "\"\"", "?! -", "\" \""] {
            assert!(parse(q, NOW, 0).is_err(), "{q:?}");
        }
        assert!(parse("is:thread", NOW, 0).is_ok());
        assert!(parse("from:me", NOW, 0).is_ok());
    }
}
