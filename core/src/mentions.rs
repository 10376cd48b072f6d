//! Mentions in message text, Slack's way: `<@USER_ID>` names one user, `@channel` (or
//! `<!channel>`) everyone in the channel, `@here` (or `<!here>`) everyone in it who is online.

use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mentions {
    /// Users named with `<@id>`, in order of first appearance, without repeats.
    pub users: Vec<Uuid>,
    pub channel: bool,
    pub here: bool,
}

impl Mentions {
    /// Whether `user` is mentioned (by name, `@channel` or `@here`).
    pub fn includes(&self, user: &Uuid) -> bool {
        self.channel || self.here || self.users.contains(user)
    }
}

fn broadcast(text: &str, word: &str) -> bool {
    if text.contains(&format!("<!{word}>")) {
        return true;
    }
    let at = format!("@{word}");
    text.match_indices(&at).any(|(i, _)| {
        let before_ok = text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric() && c != '<');
        let after_ok = text[i + at.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '-');
        before_ok && after_ok
    })
}

/// The longest `<@...>` token looked at: a user id and a display name (`<@id|name>`).
const MAX_TOKEN: usize = 128;

/// Parses `text` in time linear in its length: a `<@` looks for its `>` within [`MAX_TOKEN`]
/// bytes only.
pub fn parse(text: &str) -> Mentions {
    parse_counted(text).0
}

/// [`parse`], and how many bytes the user-mention scan examined (what its tests bound).
fn parse_counted(text: &str) -> (Mentions, usize) {
    let (mut users, mut seen) = (Vec::new(), std::collections::HashSet::new());
    let bytes = text.as_bytes();
    let (mut at, mut examined) = (0, 0);
    while let Some(i) = find(&bytes[at..], b"<@") {
        let start = at + i + 2;
        examined += i + 2;
        let window = &bytes[start..bytes.len().min(start + MAX_TOKEN)];
        let Some(end) = window.iter().position(|&b| b == b'>' || b == b'<') else {
            examined += window.len();
            at = start;
            continue;
        };
        examined += end + 1;
        at = start + end;
        if window[end] == b'>' {
            // `<@id|display name>` is allowed too
            let inner = &text[start..start + end];
            if let Ok(u) = inner.split('|').next().unwrap_or("").parse::<Uuid>() {
                if seen.insert(u) {
                    users.push(u);
                }
            }
        }
    }
    let mentions = Mentions {
        users,
        channel: broadcast(text, "channel") || broadcast(text, "everyone"),
        here: broadcast(text, "here"),
    };
    (mentions, examined)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_users_and_broadcasts() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let m = parse(&format!("hey <@{a}> and <@{b}|bob>, <@{a}> again; <@nope>"));
        assert_eq!(m.users, vec![a, b]);
        assert!(!m.channel && !m.here);
        assert!(parse("ping @channel now").channel);
        assert!(parse("<!here> standup").here);
        assert!(parse("@here").here);
        assert!(!parse("mail me@channel.com").channel, "an address is not a mention");
        assert!(!parse("@herence").here);
        assert!(parse("@here, anyone?").includes(&a));
        assert!(!parse("nobody").includes(&a));
    }

    #[test]
    fn hostile_text_is_scanned_in_linear_time() {
        let id = Uuid::new_v4();
        for text in [
            "<@".repeat(20_000),
            format!("<@{}", "x".repeat(39_998)),
            format!("{}<@{id}>", "<@".repeat(10_000)),
            "<@<@>".repeat(8_000),
        ] {
            let (m, examined) = parse_counted(&text);
            assert!(examined <= 2 * text.len() + MAX_TOKEN, "{examined} bytes examined for {}", text.len());
            assert!(m.users.len() <= 1);
        }
        assert_eq!(parse(&format!("{}<@{id}>", "<@".repeat(100))).users, vec![id], "a mention after noise");
    }
}
