//! Where a reply too long for one message is split: the first message takes as much as fits,
//! ending at the last paragraph break, else line break, else space within the limit — but
//! only one that leaves the message at least half full, so that an early break does not waste
//! a message — and else it is cut hard at the limit (between characters, never inside one).
//!
//! Each message must read as Markdown on its own, so a split inside a fenced code block
//! (CommonMark: a line of at least three backticks or tildes, indented at most three spaces,
//! with an optional info string such as `rust`) closes the block at the end of the message —
//! the closing line counts towards the limit — and the rest starts by opening it again with
//! the same line. Inside a block a split never falls inside a fence line, leaves at least one
//! line of code in the message, and keeps the indentation of the line the rest starts with;
//! nowhere does a split make a new fence of text that was not one (`` ``` `` mentioned in a
//! sentence). When even that cannot fit (a fence line longer than a message), the text is cut
//! as if it held no fences, so that a split always makes progress.
//!
//! The last message a reply may fill ([`cut_last`]) is cut at the same place a split would be,
//! two characters short of the limit, and marked with `…`, so it too reads as Markdown.

/// A split: the message to store and the text left for the next ones.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Split {
    /// At most `max` characters, never empty, no whitespace at either end.
    pub(crate) message: String,
    /// Without leading whitespace; it starts with the reopened fence if the split was inside
    /// a fenced code block.
    pub(crate) rest: String,
}

/// The kinds of cut, in the order they are preferred.
#[derive(Clone, Copy)]
enum Boundary {
    Paragraph,
    Line,
    Space,
    Hard,
}

/// A fenced code block's opening line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fence<'a> {
    /// '`' or '~'.
    marker: char,
    /// How many markers open it: a closing fence needs at least as many.
    len: usize,
    /// Spaces before the markers (at most three).
    indent: usize,
    /// The line without surrounding whitespace: the markers and the info string.
    opening: &'a str,
    /// Where the opening line ends in the text (its newline, or the end).
    line_end: usize,
}

impl Fence<'_> {
    /// The line that closes it, as the split writes it: `indent + len` ASCII characters.
    fn closing(&self) -> String {
        let mut line = " ".repeat(self.indent);
        line.extend(std::iter::repeat_n(self.marker, self.len));
        line
    }
}

/// What a line is to the fenced code blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineKind<'a> {
    Opens(Fence<'a>),
    Closes,
    Other,
}

impl LineKind<'_> {
    fn is_fence(&self) -> bool {
        !matches!(self, LineKind::Other)
    }
}

/// What `line` (no newline; it ends at `line_end` in the text) is, given the block `open`
/// before it.
fn line_kind<'a>(line: &'a str, line_end: usize, open: Option<&Fence>) -> LineKind<'a> {
    let unindented = line.trim_start_matches(' ');
    let indent = line.len() - unindented.len();
    let Some(marker) = unindented.chars().next().filter(|c| matches!(c, '`' | '~')) else {
        return LineKind::Other;
    };
    // Markers are ASCII: their count is their length in bytes.
    let after = unindented.trim_start_matches(marker);
    let len = unindented.len() - after.len();
    if indent > 3 || len < 3 {
        return LineKind::Other;
    }
    match open {
        Some(fence) => {
            let closes = marker == fence.marker
                && len >= fence.len
                && after.trim_matches([' ', '\t']).is_empty();
            if closes {
                LineKind::Closes
            } else {
                LineKind::Other
            }
        }
        // A backtick fence's info string holds no backtick: "```a```" is inline code.
        None if marker == '`' && after.contains('`') => LineKind::Other,
        None => LineKind::Opens(Fence {
            marker,
            len,
            indent,
            opening: unindented.trim_end(),
            line_end,
        }),
    }
}

/// The block open after a line of `kind`, given the block `open` before it.
fn open_after<'a>(open: Option<Fence<'a>>, kind: LineKind<'a>) -> Option<Fence<'a>> {
    match kind {
        LineKind::Opens(fence) => Some(fence),
        LineKind::Closes => None,
        LineKind::Other => open,
    }
}

/// Where the line that holds byte `at` ends.
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i)
}

/// A way to split the text.
#[derive(Clone, Copy)]
struct Cut<'a> {
    /// Where the message ends: after its last non-whitespace character.
    message_end: usize,
    /// Where the rest starts in the text.
    rest_start: usize,
    /// The block the split falls in: closed after the message, opened again before the rest.
    inside: Option<Fence<'a>>,
    /// Whether the rest starts a line of the text.
    at_line_break: bool,
}

impl<'a> Cut<'a> {
    /// The cut after `message_end` (`message_chars` characters; its line starts at
    /// `line_start`) inside the block `inside`, if it is one a message may end at.
    fn new(
        text: &'a str,
        line_start: usize,
        message_end: usize,
        message_chars: usize,
        inside: Option<Fence<'a>>,
        max: usize,
    ) -> Option<Self> {
        let gap = &text[message_end..];
        let gap = &gap[..gap.len() - gap.trim_start().len()];
        let mut rest_start = message_end + gap.len();
        let last_newline = gap.rfind('\n').map(|i| message_end + i);
        if let Some(fence) = &inside {
            // At least one line of code in the message, and room to close the block.
            if message_end <= fence.line_end || message_chars + 1 + fence.indent + fence.len > max {
                return None;
            }
            // The rest's first line of code keeps its indentation.
            if let Some(newline) = last_newline {
                rest_start = newline + 1;
            }
        }
        // A line the split runs through must be no fence in either piece, and the rest's first
        // line must be the same to the fences as it was in the text: no fence made of a
        // mention of one, or of a line indented too far to be one. Only a piece starting with
        // a marker can be a fence: the common case looks no further.
        let may_be_fence = |piece: &str| piece.trim_start_matches(' ').starts_with(['`', '~']);
        let kind = |piece: &'a str, end| line_kind(piece, end, inside.as_ref());
        if may_be_fence(&text[rest_start..]) {
            let rest_line_start = last_newline.map_or(line_start, |newline| newline + 1);
            let end = line_end(text, rest_start);
            let was = kind(&text[rest_line_start..end], end);
            if kind(&text[rest_start..end], end).is_fence() != was.is_fence() {
                return None;
            }
        }
        if last_newline.is_none() {
            let message_last = &text[line_start..message_end];
            if may_be_fence(message_last) && kind(message_last, message_end).is_fence() {
                return None;
            }
        }
        Some(Self {
            message_end,
            rest_start,
            inside,
            at_line_break: last_newline.is_some(),
        })
    }

    /// The message and the rest.
    fn split(self, text: &str) -> Split {
        let mut message = text[..self.message_end].to_string();
        let mut rest = &text[self.rest_start..];
        let Some(fence) = self.inside else {
            return Split {
                message,
                rest: rest.to_string(),
            };
        };
        message.push('\n');
        message.push_str(&fence.closing());
        let end = line_end(rest, 0);
        if line_kind(&rest[..end], end, Some(&fence)) == LineKind::Closes {
            // The block ends where the rest would start: the message's closing line is its.
            rest = rest[end..].trim_start();
            return Split {
                message,
                rest: rest.to_string(),
            };
        }
        Split {
            message,
            rest: format!("{}\n{rest}", fence.opening),
        }
    }
}

/// Splits the first message off `text` if `text` (leading whitespace aside) holds more than
/// `max` characters (0 is read as 1): see [`Split`]. `None` when the text fits in one message.
/// The rest is always shorter than `text`, so splitting again and again ends.
pub(crate) fn split_off(text: &str, max: usize) -> Option<Split> {
    let text = text.trim_start();
    let max = max.max(1);
    // The byte index after the first `max` characters: the furthest a message may end.
    let (limit, _) = text.char_indices().nth(max)?;
    Some(match best_cut(text, max) {
        Some(cut) => cut.split(text),
        // No cut respects the fences (one is longer than a message): cut as plain text.
        // Never empty: the text starts with a non-whitespace character.
        None => Split {
            message: text[..limit].trim_end().to_string(),
            rest: text[limit..].trim_start().to_string(),
        },
    })
}

/// The last message a reply may fill: `text` (trimmed) if it fits in `max` characters, else
/// cut where [`split_off`] would split it, with room for a mark that shows the cut: `…` at
/// the end of the text, or on a line of its own after a fence line (the one that closes a
/// code block the cut falls in, say). When no cut respects the fences, the first `max - 1`
/// characters and `…`.
pub(crate) fn cut_last(text: &str, max: usize) -> String {
    let text = text.trim();
    let max = max.max(1);
    if text.chars().count() <= max {
        return text.to_string();
    }
    // Two characters for the mark, at most: "\n…" after a closed block.
    if let Some(cut) = (max > 2).then(|| best_cut(text, max - 2)).flatten() {
        let mut message = cut.split(text).message;
        // After a fence line (one the cut closes a block with, or one the text had) the mark
        // goes on a line of its own: on the fence line it would make it open a block.
        let last_line = message.rsplit('\n').next().unwrap_or_default();
        if last_line.trim_start_matches(' ').starts_with(['`', '~']) {
            message.push('\n');
        }
        message.push('…');
        return message;
    }
    let mut message: String = text.chars().take(max - 1).collect();
    message.truncate(message.trim_end().len());
    message.push('…');
    message
}

/// The best place to end a first message of at most `max` (≥ 1) characters of `text` (no
/// leading whitespace, longer than `max`); `None` when no place respects the fences.
fn best_cut(text: &str, max: usize) -> Option<Cut<'_>> {
    // A boundary at character `k` ends the message before it, so it may lie at `max` itself.
    let half = (max / 2).max(1);
    let mut best: [Option<Cut>; 4] = [None; 4];
    // The last cut between two lines of a block, however early: see below.
    let mut code_line: Option<Cut> = None;
    let mut previous = None;
    // The block open before the current line, the line's kind and where its indentation ends.
    let mut open: Option<Fence> = None;
    let mut kind = LineKind::Other;
    let mut line_start = 0;
    let mut indented_to = 0;
    // The text before the current character without trailing whitespace: bytes, characters.
    let (mut message_end, mut message_chars) = (0, 0);
    for (k, (at, c)) in text.char_indices().enumerate().take(max + 1) {
        if at == line_start {
            let end = line_end(text, at);
            let line = &text[at..end];
            kind = line_kind(line, end, open.as_ref());
            indented_to = at + line.len() - line.trim_start_matches([' ', '\t']).len();
        }
        // The block a message ending before this character is in; never inside a fence line.
        let inside = if c == '\n' {
            Some(open_after(open, kind))
        } else if at <= indented_to || !kind.is_fence() {
            Some(open)
        } else {
            None
        };
        let cut = inside
            .filter(|_| k > 0)
            .and_then(|inside| Cut::new(text, line_start, message_end, message_chars, inside, max));
        if let Some(cut) = cut {
            if cut.inside.is_some() && cut.at_line_break {
                code_line = Some(cut);
            }
            best[Boundary::Hard as usize] = Some(cut);
            if k >= half && c.is_whitespace() {
                best[Boundary::Space as usize] = Some(cut);
                if c == '\n' {
                    best[Boundary::Line as usize] = Some(cut);
                    // A break of two newlines at `k - 1` and `k` starts at `k - 1`.
                    if previous == Some('\n') && k > half {
                        best[Boundary::Paragraph as usize] = Some(cut);
                    }
                }
            }
        }
        if c == '\n' {
            open = open_after(open, kind);
            line_start = at + 1;
        }
        if !c.is_whitespace() {
            message_end = at + c.len_utf8();
            message_chars = k + 1;
        }
        previous = Some(c);
    }
    [
        Boundary::Paragraph,
        Boundary::Line,
        Boundary::Space,
        Boundary::Hard,
    ]
    .into_iter()
    .find_map(|kind| best[kind as usize])
    .map(|cut| match code_line {
        // A line of code cut in two is copied wrong: rather a shorter message, if the block
        // has a line break to split at.
        Some(line) if !cut.at_line_break && cut.inside.is_some() && line.inside == cut.inside => {
            line
        }
        _ => cut,
    })
}

#[cfg(test)]
mod tests {
    use super::{LineKind, cut_last, open_after, split_off};
    use proptest::prelude::*;

    /// The message and the rest, if `text` is split.
    fn cut(text: &str, max: usize) -> Option<(String, String)> {
        split_off(text, max).map(|split| (split.message, split.rest))
    }

    fn pair(message: &str, rest: &str) -> Option<(String, String)> {
        Some((message.to_string(), rest.to_string()))
    }

    /// Splits `text` into messages of at most `max` characters, as an answer does, checking
    /// that every split leaves less than it was given (so that this loop ends).
    fn messages(text: &str, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text.to_string();
        while let Some(split) = split_off(&rest, max) {
            assert!(
                split.rest.chars().count() < rest.trim_start().chars().count(),
                "{max}: no progress from {rest:?} to {split:?}"
            );
            out.push(split.message);
            rest = split.rest;
        }
        let last = rest.trim();
        if !last.is_empty() {
            out.push(last.to_string());
        }
        out
    }

    /// The block open at the end of `text`, as its opening line.
    fn open_at_end(text: &str) -> Option<String> {
        let mut open = None;
        let mut start = 0;
        for line in text.split('\n') {
            let end = start + line.len();
            open = open_after(open, super::line_kind(line, end, open.as_ref()));
            start = end + 1;
        }
        open.map(|fence| fence.opening.to_string())
    }

    /// The non-whitespace characters of `text` outside fence lines, each with the opening
    /// line of the block it is in: what a reader sees, and as what.
    fn shown(text: &str) -> Vec<(char, Option<String>)> {
        let mut out = Vec::new();
        let mut open = None;
        let mut start = 0;
        for line in text.split('\n') {
            let end = start + line.len();
            let kind = super::line_kind(line, end, open.as_ref());
            if kind == LineKind::Other {
                let block = open.map(|fence: super::Fence| fence.opening.to_string());
                out.extend(
                    line.chars()
                        .filter(|c| !c.is_whitespace())
                        .map(|c| (c, block.clone())),
                );
            }
            open = open_after(open, kind);
            start = end + 1;
        }
        out
    }

    /// What every split must keep: messages within the limit, never empty, trimmed, each
    /// but the last with its blocks closed, and together showing the text as it was.
    fn check_messages(text: &str, max: usize) -> Vec<String> {
        let parts = messages(text, max);
        for (i, part) in parts.iter().enumerate() {
            assert!(!part.is_empty(), "{max}: {parts:#?}");
            assert!(part.chars().count() <= max, "{max}: {parts:#?}");
            assert_eq!(part.trim(), part, "{max}: {parts:#?}");
            if i + 1 < parts.len() {
                assert_eq!(open_at_end(part), None, "{max}: {i} open: {parts:#?}");
            }
        }
        if let Some(last) = parts.last() {
            assert_eq!(
                open_at_end(last).is_some(),
                open_at_end(text).is_some(),
                "{max}: {parts:#?}"
            );
        }
        let shown_apart: Vec<_> = parts.iter().flat_map(|part| shown(part)).collect();
        assert_eq!(shown_apart, shown(text), "{max}: {parts:#?}");
        parts
    }

    #[test]
    fn a_text_that_fits_is_not_split() {
        assert_eq!(cut("", 5), None);
        assert_eq!(cut("hello", 5), None);
        assert_eq!(cut("  hello", 5), None, "leading whitespace is not counted");
        assert_eq!(cut("héllo", 5), None, "characters, not bytes");
        assert_eq!(cut("你好世界", 4), None);
        assert_eq!(cut("```\ncode", 8), None, "a fence alone does not split");
    }

    #[test]
    fn the_last_paragraph_break_wins_over_later_line_breaks_and_spaces() {
        let text = "one two three\n\nfour five\nsix seven eight";
        assert_eq!(
            cut(text, 24),
            pair("one two three", "four five\nsix seven eight")
        );
        // Of two paragraph breaks within the limit, the later.
        let text = "aaaaaa\n\nbbbbbb\n\ncccccc";
        assert_eq!(cut(text, 20), pair("aaaaaa\n\nbbbbbb", "cccccc"));
    }

    #[test]
    fn without_a_paragraph_break_a_line_break_then_a_space() {
        let text = "one two three\nfour five six seven";
        assert_eq!(cut(text, 25), pair("one two three", "four five six seven"));
        let text = "one two three four five";
        assert_eq!(cut(text, 16), pair("one two three", "four five"));
    }

    #[test]
    fn a_boundary_right_after_the_limit_makes_a_full_message() {
        assert_eq!(cut("abcde fgh", 5), pair("abcde", "fgh"));
        assert_eq!(cut("abcde\n\nfgh", 5), pair("abcde", "fgh"));
        assert_eq!(cut("abcd\n\nfgh", 5), pair("abcd", "fgh"));
    }

    #[test]
    fn a_long_word_is_cut_hard_at_the_limit() {
        assert_eq!(cut("abcdefghij", 4), pair("abcd", "efghij"));
        assert_eq!(
            messages("abcdefghij", 4),
            ["abcd", "efgh", "ij"],
            "every message full"
        );
        assert_eq!(cut("abc", 0), pair("a", "bc"), "0 is read as 1");
    }

    #[test]
    fn utf8_is_cut_between_characters_and_counted_in_characters() {
        assert_eq!(cut("ééééé", 2), pair("éé", "ééé"));
        assert_eq!(cut("a😀b😀c", 2), pair("a😀", "b😀c"));
        // Combining marks count as characters of their own, like the server's limit does.
        let text = "e\u{301}e\u{301}e\u{301}";
        let (message, rest) = cut(text, 3).expect("split");
        assert_eq!(message.chars().count(), 3);
        assert_eq!(format!("{message}{rest}"), text);
    }

    #[test]
    fn cjk_text_without_spaces_is_cut_by_characters_and_at_its_line_breaks() {
        assert_eq!(
            messages("你好世界你好世界你好", 4),
            ["你好世界", "你好世界", "你好"]
        );
        assert_eq!(
            cut("第一段的内容。\n\n第二段", 10),
            pair("第一段的内容。", "第二段")
        );
        assert_eq!(
            cut("你好，世界 再见世界", 8),
            pair("你好，世界", "再见世界"),
            "an ideographic text's spaces are boundaries too"
        );
    }

    #[test]
    fn an_early_break_does_not_waste_a_message() {
        // The paragraph break would leave the message under half full: the line break is used.
        let text = "Sure!\n\nline one is long\nline two is long\nline three";
        assert_eq!(
            cut(text, 40),
            pair("Sure!\n\nline one is long\nline two is long", "line three")
        );
        // Only an early space: a hard cut fills the message instead.
        let text = "See https://example.com/a/very/long/path/that/goes/on";
        assert_eq!(
            cut(text, 20),
            pair("See https://example.", "com/a/very/long/path/that/goes/on")
        );
    }

    #[test]
    fn a_paragraph_longer_than_the_limit_is_split_inside_it() {
        let paragraph = "word ".repeat(30);
        let text = format!("{}\n\nEnd.", paragraph.trim_end());
        let parts = messages(&text, 40);
        assert_eq!(parts.len(), 4, "{parts:?}");
        for part in &parts {
            assert!(part.chars().count() <= 40, "{part:?}");
        }
        // Split at its spaces, never inside a word.
        let words: Vec<&str> = parts.iter().flat_map(|p| p.split_whitespace()).collect();
        assert_eq!(words.len(), 31, "{parts:?}");
        assert!(words[..30].iter().all(|w| *w == "word"), "{parts:?}");
        assert_eq!(
            parts[0],
            "word ".repeat(8).trim_end(),
            "as many words as fit"
        );
    }

    #[test]
    fn messages_stay_within_the_limit_and_keep_every_word_in_order() {
        let texts = [
            "The quick brown fox\njumps over the lazy dog.\n\nAgain: the quick brown fox.",
            "fn main() {\n    println!(\"hello\");\n}\n\n- one\n- two\n- three\n",
            "你好世界。这是一个很长的句子，没有空格。\n第二行。\n\n第三段 with English.",
            "  leading and trailing whitespace   \n\n\n  and blank lines  \n\n",
            "ääääääääääääääääää öööööööööööööö üüüü",
        ];
        for text in texts {
            for max in 1..=30 {
                let parts = messages(text, max);
                for part in &parts {
                    assert!(!part.is_empty(), "{max}: {parts:?}");
                    assert!(part.chars().count() <= max, "{max}: {parts:?}");
                    assert_eq!(part.trim(), *part, "{max}: {parts:?}");
                }
                let joined: String = parts.concat();
                let kept: String = joined.split_whitespace().collect();
                let all: String = text.split_whitespace().collect();
                assert_eq!(kept, all, "{max}: {parts:?}");
            }
        }
    }

    // ---- fenced code blocks ----

    const CODE: &str = "Here it is:\n\n```rust\nfn main() {\n    let port = 8080;\n    \
        println!(\"{port}\");\n}\n```\n\nThat prints the port.";

    #[test]
    fn a_split_inside_a_code_block_closes_it_and_opens_it_again() {
        // 40 characters reach into `println!`: the last line break that leaves room for the
        // closing line is after `8080;`.
        assert_eq!(
            cut(CODE, 40),
            pair(
                "Here it is:\n\n```rust\nfn main() {\n```",
                "```rust\n    let port = 8080;\n    println!(\"{port}\");\n}\n```\n\n\
                 That prints the port."
            )
        );
        assert_eq!(
            check_messages(CODE, 40),
            [
                "Here it is:\n\n```rust\nfn main() {\n```",
                "```rust\n    let port = 8080;\n```",
                "```rust\n    println!(\"{port}\");\n}\n```",
                "That prints the port.",
            ]
        );
    }

    #[test]
    fn the_closing_line_counts_towards_the_limit() {
        // The line break after `8080;` is at 53: with the closing line, a message of 57.
        let (message, _) = cut(CODE, 56).expect("split");
        assert_eq!(message, "Here it is:\n\n```rust\nfn main() {\n```");
        let (message, rest) = cut(CODE, 57).expect("split");
        assert_eq!(
            message,
            "Here it is:\n\n```rust\nfn main() {\n    let port = 8080;\n```"
        );
        assert_eq!(message.chars().count(), 57);
        assert!(rest.starts_with("```rust\n    println!"), "{rest:?}");
    }

    #[test]
    fn a_split_before_a_closing_fence_does_not_open_an_empty_block() {
        // The closing fence (longer than the one written) is past the limit: the message
        // ends with the line before it, and the rest does not start with the block again.
        let text = "```\nabc def\n`````\nand after it";
        assert_eq!(cut(text, 15), pair("```\nabc def\n```", "and after it"));
        let text = "```\nabc def\n\n\n```";
        assert_eq!(cut(text, 15), pair("```\nabc def\n```", ""));
    }

    #[test]
    fn the_rest_keeps_the_indentation_of_its_first_line_of_code() {
        let text = "```py\ndef f():\n    return 1\n```";
        assert_eq!(
            cut(text, 20),
            pair("```py\ndef f():\n```", "```py\n    return 1\n```")
        );
    }

    #[test]
    fn a_code_line_longer_than_a_message_is_cut_at_a_space_then_hard() {
        let text = "```\nlet total = first + second + third;\n```";
        assert_eq!(
            cut(text, 30),
            pair("```\nlet total = first +\n```", "```\nsecond + third;\n```")
        );
        let text = "```\nabcdefghijklmnopqrstuvwxyz\n```";
        assert_eq!(
            cut(text, 12),
            pair("```\nabcd\n```", "```\nefghijklmnopqrstuvwxyz\n```")
        );
    }

    #[test]
    fn inside_a_block_an_early_line_break_wins_over_a_later_space() {
        let text = "```rust\n    let port = 8080;\n    println!(\"port {port}\");\n}\n```";
        // The space after `"port` would fill the message better, but cut a line of code.
        assert_eq!(
            cut(text, 60),
            pair(
                "```rust\n    let port = 8080;\n```",
                "```rust\n    println!(\"port {port}\");\n}\n```"
            )
        );
        // Outside the block the half-full rule holds: the space, not the early line break.
        let text = "```\nab\n```\nsome words in a sentence";
        assert_eq!(
            cut(text, 24),
            pair("```\nab\n```\nsome words in", "a sentence")
        );
    }

    #[test]
    fn tildes_info_strings_and_longer_fences_are_reopened_as_they_were() {
        let text = "~~~ text title=\"a b\"\none\ntwo\nthree\n~~~";
        let (message, rest) = cut(text, 30).expect("split");
        assert_eq!(message, "~~~ text title=\"a b\"\none\n~~~");
        assert_eq!(rest, "~~~ text title=\"a b\"\ntwo\nthree\n~~~");
        // Four backticks: the three-backtick lines inside are code, not its end.
        let text = "````md\n```rust\nlet a = 1;\n```\nmore text\n````";
        assert_eq!(
            check_messages(text, 30),
            [
                "````md\n```rust\nlet a = 1;\n````",
                "````md\n```\nmore text\n````",
            ]
        );
        // A tilde line does not close a backtick block, nor a shorter run a longer one.
        let text = "````\none\n~~~~\n```\ntwo three four\n````";
        let parts = check_messages(text, 24);
        assert_eq!(parts[0], "````\none\n~~~~\n```\n````", "{parts:?}");
    }

    #[test]
    fn a_fence_indented_up_to_three_spaces_is_one_and_four_is_not() {
        let text = "Do:\n   ```\nabc def\nghi jkl\n   ```";
        assert_eq!(
            cut(text, 26),
            pair("Do:\n   ```\nabc def\n   ```", "```\nghi jkl\n   ```"),
            "closed with its indentation, reopened without (no leading whitespace)"
        );
        let text = "Do:\n    ```\nabc def\nghi jkl";
        assert_eq!(cut(text, 20), pair("Do:\n    ```\nabc def", "ghi jkl"));
    }

    #[test]
    fn backticks_inside_a_line_are_not_a_fence() {
        // A sentence mentioning the markers: nothing is closed or reopened.
        let text = "Wrap code in ``` or ~~~ lines, one before and one after it.";
        let (message, rest) = cut(text, 30).expect("split");
        assert_eq!(message, "Wrap code in ``` or ~~~ lines,");
        assert_eq!(rest, "one before and one after it.");
        // "```a```" on a line of its own is inline code too.
        let text = "```a```\nbb cc dd ee";
        assert_eq!(cut(text, 12), pair("```a```", "bb cc dd ee"));
    }

    #[test]
    fn a_split_never_makes_a_fence_of_a_mention() {
        // At 16 the space before "```" would start the rest with a fence: the earlier
        // space is taken.
        let text = "Type then the ``` marker again";
        assert_eq!(cut(text, 16), pair("Type then", "the ``` marker again"));
        // No space left but that one: cut hard, where no piece is a fence.
        let text = "Then type ``` to start";
        assert_eq!(cut(text, 12), pair("Then type ``", "` to start"));
        // Nor may the message end with a fence made of the start of a line of code.
        // (The space after "~~~" would end the message with a line closing the block.)
        let text = "~~~\n~~~ abcdefgh\n~~~";
        let parts = check_messages(text, 14);
        assert_eq!(parts, ["~~~\n~~~ ab\n~~~", "~~~\ncdefgh\n~~~"]);
        // Inside a block, a line of code must not become its end.
        let text = "```\nab cd ```\nef\n```";
        let (message, rest) = cut(text, 14).expect("split");
        assert!(!rest.starts_with("```\n```"), "{message:?} {rest:?}");
        // Nor a line indented too far to be a fence one once its indentation is trimmed:
        // rather a hard cut.
        let text = "abcdefghij\n    ```\nmore";
        assert_eq!(cut(text, 14), pair("abcdefghi", "j\n    ```\nmore"));
    }

    #[test]
    fn a_fence_line_is_never_split() {
        let text = "ab\n```rust title=\"main.rs\"\nfn main() {}\n```";
        let (message, _) = cut(text, 24).expect("split");
        assert_eq!(message, "ab", "the split falls before the fence line");
        // Not even in its run of markers, where both pieces would be fences still, but
        // another one.
        let text = "ab\n`````rust\nxy\n`````";
        assert_eq!(cut(text, 10), pair("ab", "`````rust\nxy\n`````"));
    }

    #[test]
    fn fence_lines_longer_than_a_message_still_make_progress() {
        let texts = [
            "```rust\nfn main() {}\n```",
            "intro\n```rust title=\"a long file name.rs\"\nlet a = 1;\nlet b = 2;\n```\nafter",
            "   ~~~~ text\n  indented code\n~~~~\n\n```\n```\n````\n`` ```\n```",
            "a```b\n```c\nd```\n~~~\n```\n~~~\ntext ``` text\n```",
            "````\n```\n````\n```",
            "```\n\n\n\n```\n\n```x\n",
        ];
        for text in texts {
            for max in 0..=24 {
                // `messages` checks each split leaves less than it was given.
                for part in messages(text, max) {
                    assert!(!part.is_empty(), "{max}: {text:?}");
                    assert!(part.chars().count() <= max.max(1), "{max}: {text:?}");
                    assert_eq!(part.trim(), part, "{max}: {text:?}");
                }
            }
        }
    }

    #[test]
    fn fenced_texts_keep_every_character_and_balanced_blocks_for_any_limit() {
        let texts = [
            CODE,
            "Intro.\n\n```\na b c d e f\ng h i j\n```\nOutro and more words\n~~~sh\nls -l\n~~~",
            "- item\n\n   ```toml\n   [ai]\n   enabled = true\n   ```\n- next item",
            "````md\n```rust\nlet a = 1;\n```\ntext `code` ``` mention\n````",
        ];
        for text in texts {
            for max in 24..=80 {
                check_messages(text, max);
            }
        }
    }

    #[test]
    fn the_last_part_fits_whole_or_is_cut_at_a_boundary_with_a_mark() {
        assert_eq!(cut_last("  short enough \n", 20), "short enough");
        // At a space, not inside a word; the mark within the limit.
        let last = cut_last("the quick brown fox jumps over the lazy dog", 20);
        assert_eq!(last, "the quick brown…");
        // A word longer than the limit is cut hard (two characters kept for the mark).
        assert_eq!(cut_last("abcdefghijklmnopqrstuvwxyz", 10), "abcdefgh…");
        assert_eq!(cut_last("abcdef", 1), "…");
    }

    #[test]
    fn a_last_part_cut_inside_a_code_block_closes_it_before_the_mark() {
        let text = "Run this:\n\n```sh\ncargo build --release\ncargo test --workspace\n```";
        let last = cut_last(text, 48);
        assert_eq!(last, "Run this:\n\n```sh\ncargo build --release\n```\n…");
        assert!(last.chars().count() <= 48);
        assert_eq!(open_at_end(&last), None);
    }

    /// Markdown-ish texts: prose (with inline markers) and fenced blocks, some indented,
    /// the last perhaps left open, with short fence lines.
    fn markdown() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            "[a-z]{1,8}",
            "[é你😀]{1,3}",
            Just("`x`".to_string()),
            Just("```".to_string()),
            Just("~~~".to_string()),
        ];
        // A line starts with a plain word: one starting with a marker would be a fence.
        let line = ("[a-z]{1,8}", prop::collection::vec(word, 0..10))
            .prop_map(|(first, words)| format!("{first} {}", words.join(" ")));
        let prose = prop::collection::vec(line.clone(), 1..4).prop_map(|lines| lines.join("\n"));
        let code_line = ("[ ]{0,6}", "[a-z(){};=]{0,30}").prop_map(|(i, c)| format!("{i}{c}"));
        let block = (
            0usize..=3,
            prop_oneof![Just('`'), Just('~')],
            3usize..=5,
            "[a-z]{0,6}",
            prop::collection::vec(code_line, 0..6),
        )
            .prop_map(|(indent, marker, len, info, lines)| {
                let fence = format!("{}{}", " ".repeat(indent), marker.to_string().repeat(len));
                let mut block = format!("{fence}{info}\n");
                for line in lines {
                    block.push_str(&line);
                    block.push('\n');
                }
                (block, fence)
            });
        let piece = prop_oneof![prose.prop_map(|p| (p, String::new())), block,];
        (prop::collection::vec(piece, 1..6), any::<bool>()).prop_map(|(pieces, leave_open)| {
            let count = pieces.len();
            let mut text = String::new();
            for (i, (body, fence)) in pieces.into_iter().enumerate() {
                text.push_str(&body);
                let left_open = leave_open && i + 1 == count;
                if !fence.is_empty() && !left_open {
                    text.push_str(&fence);
                }
                text.push_str("\n\n");
            }
            text
        })
    }

    proptest! {
        #[test]
        fn any_fenced_text_splits_into_valid_messages(text in markdown(), max in 30usize..120) {
            check_messages(&text, max);
        }

        #[test]
        fn any_last_part_is_a_first_split_with_a_mark_and_leaves_no_block_open(
            text in markdown(),
            max in 30usize..120,
        ) {
            let last = cut_last(&text, max);
            prop_assert!(last.chars().count() <= max);
            if text.trim().chars().count() <= max {
                prop_assert_eq!(last, text.trim());
            } else {
                let first = split_off(&text, max - 2).map(|split| split.message);
                let first = first.unwrap_or_default();
                let mark = if last.ends_with("\n…") { "\n…" } else { "…" };
                prop_assert_eq!(last.strip_suffix(mark), Some(first.as_str()));
                prop_assert_eq!(open_at_end(&last), None, "{:?}", last);
            }
        }

        #[test]
        fn any_fenced_text_splits_within_even_a_tiny_limit(text in markdown(), max in 0usize..30) {
            // `messages` checks that every split makes progress.
            for part in messages(&text, max) {
                prop_assert!(!part.is_empty());
                prop_assert!(part.chars().count() <= max.max(1));
                prop_assert_eq!(part.trim(), part.as_str());
            }
        }

        #[test]
        fn any_text_and_limit_split_into_messages_within_it(
            text in "[a-c `~ \n]{0,80}",
            max in 0usize..24,
        ) {
            for part in messages(&text, max) {
                prop_assert!(!part.is_empty());
                prop_assert!(part.chars().count() <= max.max(1));
                prop_assert_eq!(part.trim(), part.as_str());
            }
        }
    }
}
