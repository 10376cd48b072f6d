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

pub fn parse(text: &str) -> Mentions {
    let mut users = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<@") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find('>') {
            // `<@id|display name>` is allowed too
            let inner = rest[..end].split('|').next().unwrap_or("");
            if let Ok(u) = inner.parse::<Uuid>() {
                if !users.contains(&u) {
                    users.push(u);
                }
            }
        }
    }
    Mentions {
        users,
        channel: broadcast(text, "channel") || broadcast(text, "everyone"),
        here: broadcast(text, "here"),
    }
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
}
