//! The input line: a small line editor with a cursor, word-wise editing, and input history.
//!
//! Positions are in `char`s, not bytes, so CJK text and emoji edit as whole characters.
//! Newlines (Alt-Enter) are ordinary characters of the buffer.

/// Most remembered inputs.
const HISTORY_LIMIT: usize = 500;

/// The editable input line.
#[derive(Clone, Debug, Default)]
pub struct LineEditor {
    chars: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// While browsing history: the index shown, and the unsent line to come back to.
    browsing: Option<(usize, Vec<char>)>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl LineEditor {
    /// An empty editor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The text.
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// The cursor position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether the line is empty.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Replaces the text, cursor at the end.
    pub fn set_text(&mut self, text: &str) {
        self.chars = text.chars().collect();
        self.cursor = self.chars.len();
    }

    /// Inserts a character at the cursor.
    pub fn insert(&mut self, c: char) {
        self.browsing = None;
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
    }

    /// Inserts text at the cursor (a paste).
    pub fn insert_str(&mut self, text: &str) {
        for c in text.chars() {
            self.insert(c);
        }
    }

    /// Deletes the character before the cursor (Backspace).
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    /// Deletes the character under the cursor (Delete).
    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    /// Moves left one character.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Moves right one character.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    /// To the start (Ctrl-A, Home).
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// To the end (Ctrl-E, End).
    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    fn word_start_before(&self, from: usize) -> usize {
        let mut i = from;
        while i > 0 && !is_word(self.chars[i - 1]) {
            i -= 1;
        }
        while i > 0 && is_word(self.chars[i - 1]) {
            i -= 1;
        }
        i
    }

    fn word_end_after(&self, from: usize) -> usize {
        let mut i = from;
        let n = self.chars.len();
        while i < n && !is_word(self.chars[i]) {
            i += 1;
        }
        while i < n && is_word(self.chars[i]) {
            i += 1;
        }
        i
    }

    /// Back one word (Alt-B).
    pub fn word_left(&mut self) {
        self.cursor = self.word_start_before(self.cursor);
    }

    /// Forward one word (Alt-F).
    pub fn word_right(&mut self) {
        self.cursor = self.word_end_after(self.cursor);
    }

    /// Deletes the word before the cursor (Ctrl-W).
    pub fn delete_word_before(&mut self) {
        let start = self.word_start_before(self.cursor);
        self.chars.drain(start..self.cursor);
        self.cursor = start;
    }

    /// Deletes from the start to the cursor (Ctrl-U).
    pub fn delete_to_start(&mut self) {
        self.chars.drain(..self.cursor);
        self.cursor = 0;
    }

    /// Deletes from the cursor to the end (Ctrl-K).
    pub fn delete_to_end(&mut self) {
        self.chars.truncate(self.cursor);
    }

    /// Takes the line for sending: clears the editor and remembers the line in the history.
    pub fn submit(&mut self) -> String {
        let text = self.text();
        self.chars.clear();
        self.cursor = 0;
        self.browsing = None;
        if !text.trim().is_empty() && self.history.last() != Some(&text) {
            self.history.push(text.clone());
            if self.history.len() > HISTORY_LIMIT {
                self.history.remove(0);
            }
        }
        text
    }

    /// The previous history entry (Up).
    pub fn history_prev(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let index = match &self.browsing {
            None => {
                self.browsing = Some((self.history.len() - 1, self.chars.clone()));
                self.history.len() - 1
            }
            Some((0, _)) => return,
            Some((i, draft)) => {
                let i = i - 1;
                self.browsing = Some((i, draft.clone()));
                i
            }
        };
        self.chars = self.history[index].chars().collect();
        self.cursor = self.chars.len();
    }

    /// The next history entry, or back to the unsent line (Down).
    pub fn history_next(&mut self) {
        let Some((i, draft)) = self.browsing.take() else {
            return;
        };
        if i + 1 < self.history.len() {
            self.chars = self.history[i + 1].chars().collect();
            self.browsing = Some((i + 1, draft));
        } else {
            self.chars = draft;
        }
        self.cursor = self.chars.len();
    }

    /// The word being typed at the cursor (for completion) and where it starts.
    pub fn current_word(&self) -> (usize, String) {
        let mut start = self.cursor;
        while start > 0 && !self.chars[start - 1].is_whitespace() {
            start -= 1;
        }
        (start, self.chars[start..self.cursor].iter().collect())
    }

    /// Replaces the word at the cursor (from `start`) with `replacement`.
    pub fn replace_word(&mut self, start: usize, replacement: &str) {
        self.chars.splice(start..self.cursor, replacement.chars());
        self.cursor = start + replacement.chars().count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor(text: &str) -> LineEditor {
        let mut e = LineEditor::new();
        e.insert_str(text);
        e
    }

    #[test]
    fn edits_whole_characters_of_any_width() {
        let mut e = editor("你好👋");
        e.left();
        e.backspace();
        assert_eq!(e.text(), "你👋");
        e.insert('们');
        assert_eq!((e.text().as_str(), e.cursor()), ("你们👋", 2));
        e.end();
        e.backspace();
        assert_eq!(e.text(), "你们");
    }

    #[test]
    fn word_movement_and_deletion() {
        let mut e = editor("hello big world");
        e.word_left();
        assert_eq!(e.cursor(), 10);
        e.word_left();
        assert_eq!(e.cursor(), 6);
        e.word_right();
        assert_eq!(e.cursor(), 9);
        e.end();
        e.delete_word_before();
        assert_eq!(e.text(), "hello big ");
        e.delete_word_before();
        assert_eq!(e.text(), "hello ");
    }

    #[test]
    fn kill_to_start_and_end() {
        let mut e = editor("abc def");
        e.home();
        e.right();
        e.right();
        e.delete_to_end();
        assert_eq!(e.text(), "ab");
        e.insert_str("XY");
        e.left();
        e.delete_to_start();
        assert_eq!((e.text().as_str(), e.cursor()), ("Y", 0));
        e.delete();
        assert!(e.is_empty());
    }

    #[test]
    fn history_browses_back_and_returns_to_the_draft() {
        let mut e = LineEditor::new();
        for line in ["first", "second"] {
            e.insert_str(line);
            e.submit();
        }
        e.insert_str("draft");
        e.history_prev();
        assert_eq!(e.text(), "second");
        e.history_prev();
        assert_eq!(e.text(), "first");
        e.history_prev();
        assert_eq!(e.text(), "first", "stays at the oldest");
        e.history_next();
        assert_eq!(e.text(), "second");
        e.history_next();
        assert_eq!(e.text(), "draft");
    }

    #[test]
    fn blank_and_repeated_lines_are_not_remembered_twice() {
        let mut e = LineEditor::new();
        for line in ["same", "same", "  "] {
            e.insert_str(line);
            e.submit();
        }
        e.history_prev();
        assert_eq!(e.text(), "same");
        e.history_prev();
        assert_eq!(e.text(), "same");
        e.history_next();
        assert_eq!(e.text(), "");
    }

    #[test]
    fn the_word_at_the_cursor_can_be_replaced() {
        let mut e = editor("hi @ali");
        let (start, word) = e.current_word();
        assert_eq!((start, word.as_str()), (3, "@ali"));
        e.replace_word(start, "@alice ");
        assert_eq!(e.text(), "hi @alice ");
    }
}
