//! Model text made fit for a chat room: no control characters other than newline and tab.
//!
//! A model can emit anything, and a room's stored text may hold no control characters besides
//! `\n` and `\t` (the same rule as for people's messages): ESC above all would reach other
//! members' terminals as a command. [`ControlFilter`] cleans a reply as it streams, delta by
//! delta, so an escape sequence split across deltas is still removed whole:
//!
//! - a CSI sequence (`ESC [` or the 8-bit `U+009B`, its parameter and intermediate bytes, and
//!   its final byte) is dropped entirely, so `ESC[2J` leaves nothing behind;
//! - `ESC` followed by any other character drops the `ESC` and, if that character is a
//!   two-character escape's final (`ESC 7`, `ESC c`, `ESC ]`, …), that character too;
//! - every other control character (C0, DEL, C1) is dropped; `\n` and `\t` stay.

/// Where the filter is within an escape sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Ordinary text.
    #[default]
    Text,
    /// Just after an `ESC`.
    Escape,
    /// Inside a CSI sequence, before its final byte.
    Csi,
}

/// Removes control characters (and the escape sequences they start) from streamed text.
#[derive(Clone, Debug, Default)]
pub struct ControlFilter {
    state: State,
}

impl ControlFilter {
    /// A filter at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cleaned form of the next piece of the text.
    pub fn push(&mut self, piece: &str) -> String {
        let mut out = String::with_capacity(piece.len());
        for c in piece.chars() {
            match self.state {
                State::Text => self.text(c, &mut out),
                State::Escape => match c {
                    '[' => self.state = State::Csi,
                    '\u{1b}' => {}
                    // The final character of a two-character escape (Fp, Fe, Fs ranges).
                    '0'..='~' => self.state = State::Text,
                    c => {
                        self.state = State::Text;
                        self.text(c, &mut out);
                    }
                },
                State::Csi => match c {
                    // Parameter and intermediate bytes.
                    ' '..='?' => {}
                    // The final byte.
                    '@'..='~' => self.state = State::Text,
                    // Not a well-formed sequence: it ends here, and `c` is text again.
                    c => {
                        self.state = State::Text;
                        self.text(c, &mut out);
                    }
                },
            }
        }
        out
    }

    /// `c` outside a sequence (it may start one).
    fn text(&mut self, c: char, out: &mut String) {
        match c {
            '\u{1b}' => self.state = State::Escape,
            '\u{9b}' => self.state = State::Csi,
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// `text` without control characters other than `\n` and `\t` (escape sequences removed).
pub fn clean(text: &str) -> String {
    ControlFilter::new().push(text)
}

/// Whether `text` is fit for a room: no control character other than `\n` and `\t`.
pub fn is_clean(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_control_characters_are_removed() {
        assert_eq!(clean("\u{1b}[2J hi\u{7}"), " hi");
        assert_eq!(clean("a\u{1b}[1;31mred\u{1b}[0m b"), "ared b");
        assert_eq!(clean("\u{9b}31mx"), "x");
        assert_eq!(clean("save\u{1b}7 and\u{1b}8 restore"), "save and restore");
        assert_eq!(clean("del\u{7f} nul\u{0} cr\r\n"), "del nul cr\n");
        assert_eq!(clean("line\n\tindented"), "line\n\tindented");
        assert_eq!(clean("c1\u{85}\u{90}"), "c1");
        assert_eq!(clean("中文 ✓ émoji 🙂"), "中文 ✓ émoji 🙂");
        // A lone ESC before ordinary punctuation or a broken CSI: the rest is text.
        assert_eq!(clean("\u{1b}\u{7}x"), "x");
        assert_eq!(clean("\u{1b}[12é"), "é");
        assert!(is_clean(&clean("\u{1b}]0;title\u{7}\u{1b}\\ok")));
    }

    #[test]
    fn a_sequence_split_across_pieces_is_removed_whole() {
        let text = "one \u{1b}[38;5;196mtwo\u{1b}[0m three\u{7}";
        let expected = clean(text);
        assert_eq!(expected, "one two three");
        let chars: Vec<char> = text.chars().collect();
        for split in 0..=chars.len() {
            let (a, b): (String, String) = (
                chars[..split].iter().collect(),
                chars[split..].iter().collect(),
            );
            let mut f = ControlFilter::new();
            let mut out = f.push(&a);
            out.push_str(&f.push(&b));
            assert_eq!(out, expected, "split at {split}");
        }
    }
}
