//! Where a reply too long for one message is split: the first message takes as much as fits,
//! ending at the last paragraph break, else line break, else space within the limit — but
//! only one that leaves the message at least half full, so that an early break does not waste
//! a message — and else it is cut hard at the limit (between characters, never inside one).

/// The kinds of boundary, in the order they are preferred.
#[derive(Clone, Copy)]
enum Boundary {
    Paragraph,
    Line,
    Space,
}

/// Splits the first message off `text` if `text` (leading whitespace aside) holds more than
/// `max` characters (0 is read as 1): the message, at most `max` characters with no whitespace
/// at either end and never empty, and the rest, without its leading whitespace. `None` when
/// the text fits in one message.
pub(crate) fn split_off(text: &str, max: usize) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let max = max.max(1);
    // The byte index after the first `max` characters: the furthest a message may end.
    let (limit, _) = text.char_indices().nth(max)?;
    // A boundary at character `k` ends the message before it, so it may lie at `max` itself.
    let half = (max / 2).max(1);
    let mut last = [None; 3];
    let mut previous = None;
    for (k, (at, c)) in text.char_indices().enumerate().take(max + 1) {
        if k >= half && c.is_whitespace() {
            last[Boundary::Space as usize] = Some(at);
            if c == '\n' {
                last[Boundary::Line as usize] = Some(at);
                if previous == Some('\n') && k > half {
                    // The break starts at the previous newline: the message ends before it.
                    last[Boundary::Paragraph as usize] = Some(at - 1);
                }
            }
        }
        previous = Some(c);
    }
    let end = [Boundary::Paragraph, Boundary::Line, Boundary::Space]
        .into_iter()
        .find_map(|kind| last[kind as usize])
        .unwrap_or(limit);
    // Never empty: the text starts with a non-whitespace character and every end is after it.
    Some((text[..end].trim_end(), text[end..].trim_start()))
}

#[cfg(test)]
mod tests {
    use super::split_off;

    /// Splits `text` into messages of at most `max` characters, as an answer does.
    fn messages(text: &str, max: usize) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some((message, more)) = split_off(rest, max) {
            out.push(message);
            rest = more;
        }
        let last = rest.trim();
        if !last.is_empty() {
            out.push(last);
        }
        out
    }

    #[test]
    fn a_text_that_fits_is_not_split() {
        assert_eq!(split_off("", 5), None);
        assert_eq!(split_off("hello", 5), None);
        assert_eq!(
            split_off("  hello", 5),
            None,
            "leading whitespace is not counted"
        );
        assert_eq!(split_off("héllo", 5), None, "characters, not bytes");
        assert_eq!(split_off("你好世界", 4), None);
    }

    #[test]
    fn the_last_paragraph_break_wins_over_later_line_breaks_and_spaces() {
        let text = "one two three\n\nfour five\nsix seven eight";
        assert_eq!(
            split_off(text, 24),
            Some(("one two three", "four five\nsix seven eight"))
        );
        // Of two paragraph breaks within the limit, the later.
        let text = "aaaaaa\n\nbbbbbb\n\ncccccc";
        assert_eq!(split_off(text, 20), Some(("aaaaaa\n\nbbbbbb", "cccccc")));
    }

    #[test]
    fn without_a_paragraph_break_a_line_break_then_a_space() {
        let text = "one two three\nfour five six seven";
        assert_eq!(
            split_off(text, 25),
            Some(("one two three", "four five six seven"))
        );
        let text = "one two three four five";
        assert_eq!(split_off(text, 16), Some(("one two three", "four five")));
    }

    #[test]
    fn a_boundary_right_after_the_limit_makes_a_full_message() {
        assert_eq!(split_off("abcde fgh", 5), Some(("abcde", "fgh")));
        assert_eq!(split_off("abcde\n\nfgh", 5), Some(("abcde", "fgh")));
        assert_eq!(split_off("abcd\n\nfgh", 5), Some(("abcd", "fgh")));
    }

    #[test]
    fn a_long_word_is_cut_hard_at_the_limit() {
        assert_eq!(split_off("abcdefghij", 4), Some(("abcd", "efghij")));
        assert_eq!(
            messages("abcdefghij", 4),
            ["abcd", "efgh", "ij"],
            "every message full"
        );
        assert_eq!(split_off("abc", 0), Some(("a", "bc")), "0 is read as 1");
    }

    #[test]
    fn utf8_is_cut_between_characters_and_counted_in_characters() {
        assert_eq!(split_off("ééééé", 2), Some(("éé", "ééé")));
        assert_eq!(split_off("a😀b😀c", 2), Some(("a😀", "b😀c")));
        // Combining marks count as characters of their own, like the server's limit does.
        let text = "e\u{301}e\u{301}e\u{301}";
        let (message, rest) = split_off(text, 3).expect("split");
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
            split_off("第一段的内容。\n\n第二段", 10),
            Some(("第一段的内容。", "第二段"))
        );
        assert_eq!(
            split_off("你好，世界 再见世界", 8),
            Some(("你好，世界", "再见世界")),
            "an ideographic text's spaces are boundaries too"
        );
    }

    #[test]
    fn an_early_break_does_not_waste_a_message() {
        // The paragraph break would leave the message under half full: the line break is used.
        let text = "Sure!\n\nline one is long\nline two is long\nline three";
        assert_eq!(
            split_off(text, 40),
            Some(("Sure!\n\nline one is long\nline two is long", "line three"))
        );
        // Only an early space: a hard cut fills the message instead.
        let text = "See https://example.com/a/very/long/path/that/goes/on";
        assert_eq!(
            split_off(text, 20),
            Some(("See https://example.", "com/a/very/long/path/that/goes/on"))
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
}
