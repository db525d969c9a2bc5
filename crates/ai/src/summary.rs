//! Extractive summaries: who spoke, the key messages ranked by term weighting, and the
//! recurring topics — computed from the messages alone, no model involved.
//!
//! Each message is a document. Terms are lowercase words of three or more letters that are not
//! stop words (a CJK run contributes its character pairs, as CJK text has no spaces). A term's
//! weight is its frequency in the window times its inverse document frequency, so a word
//! everyone repeats in passing weighs less than one a few messages keep returning to. A
//! message scores the sum of its distinct terms' weights, divided by the square root of their
//! count so that long messages do not win by length alone.

use std::collections::{HashMap, HashSet};

use crate::prompt::ContextMessage;

/// Common English words that carry no topic.
const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was",
    "one", "our", "out", "has", "have", "his", "how", "its", "let", "may", "now", "see", "she",
    "two", "way", "who", "did", "get", "got", "him", "yes", "yet", "too", "use", "this", "that",
    "with", "from", "they", "will", "would", "there", "their", "what", "about", "which", "when",
    "make", "like", "just", "your", "into", "than", "then", "them", "these", "some", "could",
    "been", "were", "said", "each", "also", "does", "done", "here", "very", "much", "well", "only",
    "over", "such", "should", "where", "after", "before", "because", "while", "still", "being",
    "those", "doing", "going", "want", "need", "know", "think", "really", "okay", "thanks",
    "thank", "please", "hello", "sure", "today", "tomorrow", "yeah", "it's", "i'm", "don't",
    "can't", "that's", "there's", "let's", "we're", "you're",
];

/// The result of summarising a window of messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// How many messages were considered.
    pub messages: usize,
    /// Senders with their message counts, most active first (then by name).
    pub speakers: Vec<(String, usize)>,
    /// The key messages (sender, text), in the order they were written.
    pub key_messages: Vec<(String, String)>,
    /// Terms that several messages share, strongest first.
    pub topics: Vec<String>,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// The terms of a text, in order, repeats kept.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = text.to_lowercase();
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        let w = word.trim_matches('\'');
        if w.chars().count() >= 3
            && !STOP_WORDS.contains(&w)
            && !w.chars().all(|c| c.is_ascii_digit())
        {
            out.push(w.to_string());
        }
        word.clear();
    };
    let flush_cjk = |cjk: &mut Vec<char>, out: &mut Vec<String>| {
        for pair in cjk.windows(2) {
            out.push(pair.iter().collect());
        }
        cjk.clear();
    };
    for c in lower.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            cjk.push(c);
        } else if c.is_alphanumeric() || c == '\'' || c == '_' || c == '-' {
            flush_cjk(&mut cjk, &mut out);
            word.push(c);
        } else {
            flush_word(&mut word, &mut out);
            flush_cjk(&mut cjk, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_cjk(&mut cjk, &mut out);
    out
}

/// Summarises `messages` (oldest first), picking at most `max_key` key messages and
/// `max_topics` topics.
pub fn summarise(messages: &[&ContextMessage], max_key: usize, max_topics: usize) -> Summary {
    let mut summary = Summary {
        messages: messages.len(),
        ..Summary::default()
    };
    if messages.is_empty() {
        return summary;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in messages {
        *counts.entry(m.sender.as_str()).or_default() += 1;
    }
    let mut speakers: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    speakers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    summary.speakers = speakers;

    let docs: Vec<Vec<String>> = messages.iter().map(|m| terms(&m.text)).collect();
    let mut tf: HashMap<&str, usize> = HashMap::new();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for doc in &docs {
        let mut seen = HashSet::new();
        for t in doc {
            *tf.entry(t.as_str()).or_default() += 1;
            if seen.insert(t.as_str()) {
                *df.entry(t.as_str()).or_default() += 1;
            }
        }
    }
    let n = docs.len() as f64;
    let weight = |t: &str| -> f64 {
        let tf = tf.get(t).copied().unwrap_or(0) as f64;
        let df = df.get(t).copied().unwrap_or(1) as f64;
        tf * (1.0 + n / df).ln()
    };

    let mut scored: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let distinct: HashSet<&str> = doc.iter().map(String::as_str).collect();
            if distinct.is_empty() {
                return (i, 0.0);
            }
            let sum: f64 = distinct.iter().map(|t| weight(t)).sum();
            (i, sum / (distinct.len() as f64).sqrt())
        })
        .filter(|(_, score)| *score > 0.0)
        .collect();
    // Highest score first; on a tie, the later message (fresher) wins.
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut picked: Vec<usize> = scored.iter().take(max_key).map(|(i, _)| *i).collect();
    picked.sort_unstable();
    summary.key_messages = picked
        .into_iter()
        .map(|i| (messages[i].sender.clone(), messages[i].text.clone()))
        .collect();

    let mut topics: Vec<(&str, usize, f64)> = df
        .iter()
        .filter(|(_, d)| **d >= 2)
        .map(|(t, d)| (*t, *d, weight(t)))
        .collect();
    topics.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| b.2.total_cmp(&a.2))
            .then_with(|| a.0.cmp(b.0))
    });
    summary.topics = topics
        .into_iter()
        .take(max_topics)
        .map(|(t, _, _)| t.to_string())
        .collect();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sender: &str, text: &str) -> ContextMessage {
        ContextMessage {
            sender: sender.into(),
            text: text.into(),
            ts: 0,
            from_bot: false,
        }
    }

    #[test]
    fn terms_drop_stop_words_and_split_cjk_into_pairs() {
        assert_eq!(
            terms("The release build is GREEN, and it's done"),
            ["release", "build", "green"]
        );
        assert_eq!(terms("今天开会"), ["今天", "天开", "开会"]);
        assert_eq!(terms("ok 42 go"), Vec::<String>::new());
    }

    #[test]
    fn key_messages_are_the_ones_about_recurring_terms() {
        let msgs = [
            m("alice", "the release is blocked on the flaky network test"),
            m("bob", "lol"),
            m("carol", "coffee anyone?"),
            m("bob", "I can fix the flaky network test after lunch"),
            m("alice", "great, then the release goes out on Friday"),
            m("dave", "nice weather"),
        ];
        let refs: Vec<&ContextMessage> = msgs.iter().collect();
        let s = summarise(&refs, 2, 3);
        assert_eq!(s.messages, 6);
        assert_eq!(s.speakers[0], ("alice".to_string(), 2));
        assert_eq!(s.speakers[1], ("bob".to_string(), 2));
        assert_eq!(s.key_messages.len(), 2);
        for (_, text) in &s.key_messages {
            assert!(
                text.contains("flaky") || text.contains("release"),
                "picked {text:?}"
            );
        }
        assert!(s.topics.contains(&"flaky".to_string()));
        assert!(s.topics.contains(&"release".to_string()));
        assert!(!s.topics.contains(&"weather".to_string()), "said once");
    }

    #[test]
    fn an_empty_window_is_an_empty_summary() {
        let s = summarise(&[], 3, 3);
        assert_eq!(s, Summary::default());
    }
}
