//! The two adapters behind [`confab_core::ports::SearchIndex`]:
//!
//! - [`opensearch::OpenSearchIndex`] (distributed): one OpenSearch/Elasticsearch index, the
//!   seed's mapping, `_bulk` writes routed by workspace, a `bool` query per search.
//! - [`tantivy::TantivyIndex`] (embedded): a tantivy index in a directory, written in the
//!   background and committed every 200 ms (or on `refresh`).
//!
//! Writes are visible to `search` within about a second without `refresh` (tantivy: 200 ms,
//! OpenSearch: its 1 s refresh interval); `get` sees them at once.
//!
//! Both implement the same semantics, and `tests/conformance.rs` runs one body against both:
//!
//! - **Analysis** (the seed's `message_analyzer`): Unicode word segmentation (UAX #29, the
//!   standard tokenizer's rules), lowercase, English stop words, English snowball stemming. The
//!   text is indexed twice: stemmed (`text`) and unstemmed (`text.plain`), so that a typo in a
//!   long word still matches when stemming would have changed the typed word differently
//!   (`deploymnet` stems to itself, `deployment` to `deploy`).
//! - **Words** (all must match): each word matches its analyzed tokens with fuzziness AUTO
//!   (Elasticsearch's: 0 edits for 1-2 characters, 1 for 3-5, 2 above; transpositions count one),
//!   in either field; exact terms score higher than fuzzy ones. A word that is only stop words
//!   (`the`) is ignored, but a query whose words are all stop words matches nothing.
//! - **Phrases**: analyzed, then matched as a phrase on the stemmed field (stop words leave their
//!   position, as in Lucene).
//! - **Filters**, which never change the score: workspace (always), channels (empty: no hits),
//!   authors, `after_ms <= ts < before_ms`, `has_link`, `has_file`, thread replies only.
//! - **Order**: score descending, then `ts` descending; `total` is exact; `offset + limit` is
//!   capped at [`MAX_WINDOW`] (OpenSearch's `max_result_window`).
//! - **Highlight**: HTML-escaped text (`& < > " ' /`, as Lucene's `SimpleHTMLEncoder`) with the
//!   matched terms wrapped in `<em>`/`</em>`, about [`HIGHLIGHT_CHARS`] characters; when nothing
//!   in the text matched (a query of filters only), the escaped start of the text.

pub mod opensearch;
pub mod tantivy;

pub use crate::opensearch::OpenSearchIndex;
pub use crate::tantivy::TantivyIndex;

/// Target size of a highlight fragment, in characters.
pub const HIGHLIGHT_CHARS: usize = 150;
/// The deepest result a search can page to (`offset + limit`).
pub const MAX_WINDOW: usize = 10_000;
/// At most this many index terms a fuzzy word expands to (Elasticsearch's `max_expansions`).
pub const MAX_EXPANSIONS: usize = 50;

/// Elasticsearch's `fuzziness: AUTO` for an analyzed term.
pub fn auto_fuzziness(term: &str) -> u8 {
    match term.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

/// The page to fetch: `(offset, limit)` capped to [`MAX_WINDOW`], or `None` when there is nothing
/// to fetch (only the total is wanted).
pub fn page(offset: usize, limit: usize) -> Option<(usize, usize)> {
    let limit = limit.min(MAX_WINDOW.saturating_sub(offset));
    (limit > 0).then_some((offset, limit))
}

/// Appends `s` HTML-escaped the way Lucene's `SimpleHTMLEncoder` (OpenSearch `encoder: html`)
/// does.
pub fn escape_html_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#x27;"),
            '/' => out.push_str("&#x2F;"),
            c => out.push(c),
        }
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_html_into(&mut out, s);
    out
}

/// The highlight of a hit where nothing matched: the start of the text, escaped, cut at a word
/// boundary near [`HIGHLIGHT_CHARS`].
pub fn fallback_highlight(text: &str) -> String {
    escape_html(cut_at_word(text, HIGHLIGHT_CHARS))
}

/// The longest prefix of `text` of at most `max_chars` characters that ends at a word boundary
/// (whitespace), or the hard cut when the first word alone is longer.
pub(crate) fn cut_at_word(text: &str, max_chars: usize) -> &str {
    let Some((end, _)) = text.char_indices().nth(max_chars) else {
        return text.trim_end();
    };
    let head = &text[..end];
    if text[end..].starts_with(char::is_whitespace) {
        return head.trim_end();
    }
    match head.rfind(char::is_whitespace) {
        Some(i) if i > 0 => head[..i].trim_end(),
        _ => head,
    }
}

/// Optimal string alignment distance (Damerau-Levenshtein where a transposition costs one, as
/// Lucene's fuzzy queries count), in characters.
pub(crate) fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// Lucene's fuzzy boost for a term `distance` edits away from the query term.
pub(crate) fn fuzzy_boost(query_term: &str, term: &str, distance: usize) -> f32 {
    if distance == 0 {
        return 1.0;
    }
    let len = query_term.chars().count().min(term.chars().count()).max(1);
    (1.0 - distance as f32 / len as f32).max(0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzziness_is_auto() {
        assert_eq!(auto_fuzziness("db"), 0);
        assert_eq!(auto_fuzziness("dép"), 1);
        assert_eq!(auto_fuzziness("build"), 1);
        assert_eq!(auto_fuzziness("deploy"), 2);
    }

    #[test]
    fn distances() {
        assert_eq!(osa_distance("deploymnet", "deployment"), 1);
        assert_eq!(osa_distance("deploy", "deplay"), 1);
        assert_eq!(osa_distance("kitten", "sitting"), 3);
        assert_eq!(osa_distance("", "ab"), 2);
        assert_eq!(osa_distance("ca", "abc"), 3);
    }

    #[test]
    fn pages() {
        assert_eq!(page(0, 20), Some((0, 20)));
        assert_eq!(page(9_990, 20), Some((9_990, 10)));
        assert_eq!(page(10_000, 20), None);
        assert_eq!(page(0, 0), None);
    }

    #[test]
    fn escaping_and_fallback() {
        assert_eq!(
            escape_html(r#"<a href="x">it's</a> & co"#),
            "&lt;a href=&quot;x&quot;&gt;it&#x27;s&lt;&#x2F;a&gt; &amp; co"
        );
        assert_eq!(fallback_highlight("short one  "), "short one");
        let long = "word ".repeat(40);
        let h = fallback_highlight(&long);
        assert!(h.chars().count() <= HIGHLIGHT_CHARS && h.ends_with("word"), "{h}");
        let one = "x".repeat(200);
        assert_eq!(fallback_highlight(&one).len(), HIGHLIGHT_CHARS);
    }
}
