//! The built-in assistant: fully offline, and honest about what it is. It understands a few
//! commands and answers them from the room's own messages and members:
//!
//! - `help` — what it can do;
//! - `summary [N]` — an extractive summary of the last N messages (see [`crate::summary`]);
//! - `who` — who is online here;
//! - `stats` — the room's activity;
//!
//! and for anything else it says plainly that it is not a language model and how the server's
//! operator can connect one.

use crate::prompt::{Presence, Prompt};
use crate::summary::summarise;

/// What the built-in assistant understands, for `@ai help`.
pub const COMMANDS_HELP: &str = "I am the built-in assistant (offline, no language model). I understand: \
`summary [N]` (the gist of the last N messages), `who` (who is online here), \
`stats` (this room's activity).";

/// How the operator connects a real model, for questions the assistant cannot answer.
pub const CONNECT_HELP: &str = "I am the built-in assistant: I work offline and cannot answer \
free questions. I can do `summary [N]`, `who` and `stats`. To get real answers, the server's \
operator can connect any OpenAI-compatible model, e.g. a LAN Ollama: `chatroom-server \
--ai-backend openai --ai-endpoint http://HOST:11434/v1 --ai-model llama3.2` (or llama.cpp's \
server, vLLM, or a hosted API with CHATROOM_AI_API_KEY).";

/// Default number of messages `summary` covers.
pub const DEFAULT_SUMMARY: usize = 20;

/// The offline assistant.
#[derive(Clone, Debug, Default)]
pub struct Builtin;

impl Builtin {
    /// The whole answer to `prompt`, in pieces (paragraphs) to stream.
    pub fn answer(&self, prompt: &Prompt) -> Vec<String> {
        let text = self.answer_text(prompt);
        // Stream by line so the reply grows as a real one would, without pretending to think.
        let mut pieces = Vec::new();
        let mut lines = text.split_inclusive('\n').peekable();
        while let Some(line) = lines.next() {
            pieces.push(line.to_string());
            if lines.peek().is_none() {
                break;
            }
        }
        pieces
    }

    fn answer_text(&self, prompt: &Prompt) -> String {
        let question = prompt.question.trim();
        let mut words = question.split_whitespace();
        let command = words
            .next()
            .unwrap_or("")
            .trim_end_matches(['?', '!', '.', ':'])
            .to_lowercase();
        let arg = words.next();
        match command.as_str() {
            "" | "help" => COMMANDS_HELP.to_string(),
            "summary" | "summarise" | "summarize" | "tldr" => {
                let n = arg
                    .and_then(|a| a.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(DEFAULT_SUMMARY);
                summary(prompt, n)
            }
            "who" => who(prompt),
            "stats" => stats(prompt),
            _ => CONNECT_HELP.to_string(),
        }
    }
}

fn summary(prompt: &Prompt, n: usize) -> String {
    let window: Vec<_> = prompt
        .history
        .iter()
        .filter(|m| !m.from_bot)
        .collect::<Vec<_>>();
    let start = window.len().saturating_sub(n);
    let window = &window[start..];
    if window.is_empty() {
        return "There is nothing to summarise yet.".to_string();
    }
    let s = summarise(window, 5.min(window.len().div_ceil(3)).max(1), 6);
    let mut out = format!(
        "Summary of the last {} message{}:\n",
        s.messages,
        plural(s.messages)
    );
    let speakers: Vec<String> = s
        .speakers
        .iter()
        .map(|(name, count)| format!("{name} ({count})"))
        .collect();
    out.push_str(&format!("• Who spoke: {}\n", speakers.join(", ")));
    if !s.key_messages.is_empty() {
        out.push_str("• Key messages:\n");
        for (sender, text) in &s.key_messages {
            let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push_str(&format!(
                "  – {sender}: {}\n",
                crate::truncate_chars(&one_line, 160)
            ));
        }
    }
    if s.topics.is_empty() {
        out.push_str("• No topic came up more than once.");
    } else {
        out.push_str(&format!("• Recurring topics: {}", s.topics.join(", ")));
    }
    out
}

fn who(prompt: &Prompt) -> String {
    let names = |p: Presence| -> Vec<String> {
        let mut v: Vec<String> = prompt
            .room
            .members
            .iter()
            .filter(|m| m.presence == p)
            .map(|m| m.name.clone())
            .collect();
        v.sort_by_key(|n| n.to_lowercase());
        v
    };
    let (online, away, offline) = (
        names(Presence::Online),
        names(Presence::Away),
        names(Presence::Offline),
    );
    let mut out = format!("Online here ({}): {}", online.len(), online.join(", "));
    if !away.is_empty() {
        out.push_str(&format!("\nAway ({}): {}", away.len(), away.join(", ")));
    }
    if !offline.is_empty() {
        out.push_str(&format!(
            "\nOffline ({}): {}",
            offline.len(),
            offline.join(", ")
        ));
    }
    out
}

fn stats(prompt: &Prompt) -> String {
    let room = &prompt.room;
    let online = room
        .members
        .iter()
        .filter(|m| m.presence != Presence::Offline)
        .count();
    let mut out = format!(
        "{}: {} message{} in all; {} member{} ({} online).",
        if room.direct {
            "This chat".to_string()
        } else {
            format!("#{}", room.name)
        },
        room.total_messages,
        plural(room.total_messages as usize),
        room.members.len(),
        plural(room.members.len()),
        online
    );
    let recent: Vec<_> = prompt.history.iter().filter(|m| !m.from_bot).collect();
    if let (Some(first), Some(last)) = (recent.first(), recent.last()) {
        let s = summarise(&recent, 0, 0);
        let top: Vec<String> = s
            .speakers
            .iter()
            .take(5)
            .map(|(n, c)| format!("{n} {c}"))
            .collect();
        let span_min = last.ts.saturating_sub(first.ts) / 60_000;
        let avg =
            recent.iter().map(|m| m.text.chars().count()).sum::<usize>() / recent.len().max(1);
        out.push_str(&format!(
            "\nOf the last {} message{} (over {}): most active {}; {} characters on average.",
            recent.len(),
            plural(recent.len()),
            duration(span_min),
            top.join(", "),
            avg
        ));
    }
    out
}

fn duration(minutes: u64) -> String {
    match minutes {
        0 => "less than a minute".to_string(),
        1..=59 => format!("{minutes} min"),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::{ContextMessage, MemberFact, RoomFacts};

    fn prompt(question: &str) -> Prompt {
        let history = [
            ("alice", "the release is blocked on the flaky network test"),
            ("bob", "I will fix the flaky network test"),
            ("carol", "lunch?"),
            ("alice", "release on Friday then"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (s, t))| ContextMessage {
            sender: (*s).into(),
            text: (*t).into(),
            ts: i as u64 * 120_000,
            from_bot: false,
        })
        .collect();
        Prompt {
            question: question.into(),
            history,
            room: RoomFacts {
                name: "dev".into(),
                direct: false,
                members: vec![
                    MemberFact {
                        name: "bob".into(),
                        presence: Presence::Online,
                    },
                    MemberFact {
                        name: "alice".into(),
                        presence: Presence::Online,
                    },
                    MemberFact {
                        name: "carol".into(),
                        presence: Presence::Offline,
                    },
                ],
                total_messages: 40,
            },
            ..Prompt::default()
        }
    }

    fn answer(question: &str) -> String {
        Builtin.answer(&prompt(question)).concat()
    }

    #[test]
    fn summary_names_speakers_key_messages_and_topics() {
        let text = answer("summary 10");
        assert!(text.starts_with("Summary of the last 4 messages"), "{text}");
        assert!(text.contains("Who spoke: alice (2), bob (1), carol (1)"));
        assert!(text.contains("flaky"));
        assert!(text.contains("Recurring topics:"));
        let two = answer("summary 2");
        assert!(two.starts_with("Summary of the last 2 messages"), "{two}");
    }

    #[test]
    fn who_and_stats_come_from_the_room() {
        assert_eq!(
            answer("who"),
            "Online here (2): alice, bob\nOffline (1): carol"
        );
        let stats = answer("stats");
        assert!(
            stats.starts_with("#dev: 40 messages in all; 3 members (2 online)."),
            "{stats}"
        );
        assert!(stats.contains("over 6 min"), "{stats}");
    }

    #[test]
    fn free_questions_get_an_honest_answer() {
        let text = answer("what is the meaning of life?");
        assert!(text.contains("cannot answer free questions"));
        assert!(text.contains("--ai-backend openai"));
        assert_eq!(answer("help"), COMMANDS_HELP);
    }

    #[test]
    fn answers_stream_line_by_line() {
        let pieces = Builtin.answer(&prompt("who"));
        assert_eq!(pieces.len(), 2);
        assert!(pieces[0].ends_with('\n'));
    }
}
