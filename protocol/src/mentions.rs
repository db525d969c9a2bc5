//! `@name` mentions in message text, found the way the server finds them: the server counts a
//! room's unread mentions with these rules, so a client that highlights or a bot that answers
//! mentions with them agrees with it.
//!
//! A user name is 1–32 Unicode letters, digits, `_`, `-` or `.`, compared ignoring case.
//! `email@host` is an address, not a mention; a trailing `.` is punctuation (`thanks @bob.`);
//! `@bob2` and `@bob.smith` are other people, not bob.

/// Whether `c` may appear in a user name.
pub fn is_username_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// One `@name` mention in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mention<'a> {
    /// Byte offset of the `@`.
    pub at: usize,
    /// The name as written (without the `@`).
    pub name: &'a str,
}

impl Mention<'_> {
    /// Byte offset just past the name.
    pub fn end(&self) -> usize {
        self.at + 1 + self.name.len()
    }
}

/// The `@name` mentions in `text`, in order.
pub fn mentions(text: &str) -> impl Iterator<Item = Mention<'_>> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(found) = text[from..].find('@') {
            let at = from + found;
            let glued = text[..at].chars().next_back().is_some_and(is_username_char);
            let after = &text[at + 1..];
            let end = after
                .char_indices()
                .find(|&(_, c)| !is_username_char(c))
                .map_or(after.len(), |(i, _)| i);
            from = at + 1 + end;
            let name = after[..end].trim_end_matches('.');
            if !name.is_empty() && !glued {
                return Some(Mention { at, name });
            }
        }
        None
    })
}

/// Whether `text` mentions `username` (ignoring case), as the server counts mentions.
pub fn mentions_user(text: &str, username: &str) -> bool {
    let wanted = username.to_lowercase();
    mentions(text).any(|m| m.name.to_lowercase() == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_written_after_an_at_sign() {
        let names: Vec<_> = mentions("hi @Bob and @张伟, thanks @bob. email@x @ all")
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["Bob", "张伟", "bob"]);
        let first = mentions("hi @Bob!").next().expect("one");
        assert_eq!((first.at, first.end()), (3, 7));
    }

    #[test]
    fn a_user_is_mentioned_by_their_whole_name_only() {
        assert!(mentions_user("thanks @ECHO-bot.", "echo-bot"));
        assert!(mentions_user("(@echo-bot)", "Echo-Bot"));
        assert!(!mentions_user("@echo-bot2 hi", "echo-bot"));
        assert!(!mentions_user("@echo-bot.smith hi", "echo-bot"));
        assert!(!mentions_user("mail echo@echo-bot.org", "echo-bot"));
        assert!(!mentions_user("no mention", "echo-bot"));
    }
}
