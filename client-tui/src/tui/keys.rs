//! Key bindings: turns a key press into state changes and [`Action`]s.

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};

use super::app::{Action, App, LoginField, PasswdField, PasswdForm, Screen};
use super::editor::LineEditor;

/// Rows a mouse-wheel step scrolls.
const WHEEL_ROWS: isize = 3;

fn edit(editor: &mut LineEditor, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Char('a') if ctrl => editor.home(),
        KeyCode::Char('e') if ctrl => editor.end(),
        KeyCode::Char('w') if ctrl => editor.delete_word_before(),
        KeyCode::Char('u') if ctrl => editor.delete_to_start(),
        KeyCode::Char('k') if ctrl => editor.delete_to_end(),
        KeyCode::Char('b') if ctrl => editor.left(),
        KeyCode::Char('f') if ctrl => editor.right(),
        KeyCode::Char('b') if alt => editor.word_left(),
        KeyCode::Char('f') if alt => editor.word_right(),
        KeyCode::Backspace if alt => editor.delete_word_before(),
        KeyCode::Left if ctrl || alt => editor.word_left(),
        KeyCode::Right if ctrl || alt => editor.word_right(),
        KeyCode::Char(c) if !ctrl && !alt => editor.insert(c),
        KeyCode::Backspace => editor.backspace(),
        KeyCode::Delete => editor.delete(),
        KeyCode::Left => editor.left(),
        KeyCode::Right => editor.right(),
        KeyCode::Home => editor.home(),
        KeyCode::End => editor.end(),
        _ => return false,
    }
    true
}

/// The field `by` places after `at` among `fields` (before it when negative), round the end.
/// `text` without the line breaks it ends with, nor the whitespace-only lines among them: a
/// block copied from a terminal or an editor usually takes its last line break along, which
/// is not part of what was meant. Line breaks inside the text stay.
fn without_trailing_blank_lines(text: &str) -> &str {
    let mut end = text.len();
    while let Some(line_break) = text[..end].rfind('\n') {
        if !text[line_break + 1..end].trim().is_empty() {
            break;
        }
        end = line_break;
    }
    &text[..end]
}

fn step<T: Copy + PartialEq>(fields: &[T], at: T, by: isize) -> T {
    let i = fields.iter().position(|&f| f == at).unwrap_or(0) as isize;
    fields[(i + by).rem_euclid(fields.len() as isize) as usize]
}

impl App {
    /// Handles a key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d')) {
            return vec![Action::Quit];
        }
        if self.show_help {
            self.help_key(key.code);
            return Vec::new();
        }
        if let Some(form) = &mut self.passwd {
            let fields = PasswdForm::FIELDS;
            return match key.code {
                KeyCode::Esc => {
                    self.passwd = None;
                    Vec::new()
                }
                KeyCode::Tab | KeyCode::Down => {
                    form.focus = step(fields, form.focus, 1);
                    Vec::new()
                }
                KeyCode::BackTab | KeyCode::Up => {
                    form.focus = step(fields, form.focus, -1);
                    Vec::new()
                }
                KeyCode::Enter if form.focus != PasswdField::Repeat => {
                    form.focus = step(fields, form.focus, 1);
                    Vec::new()
                }
                KeyCode::Enter if form.new.text() != form.repeat.text() => {
                    form.error = Some("the new passwords differ".into());
                    form.repeat.set_text("");
                    form.focus = PasswdField::Repeat;
                    Vec::new()
                }
                KeyCode::Enter => {
                    let (old, new) = (form.old.text(), form.new.text());
                    self.passwd = None;
                    vec![Action::ChangePassword { old, new }]
                }
                _ => {
                    edit(form.focused_mut(), &key);
                    Vec::new()
                }
            };
        }
        match &mut self.screen {
            Screen::Login(form) => {
                if form.busy {
                    return Vec::new();
                }
                let last = form.fields().last().copied();
                match key.code {
                    KeyCode::Char('r') if ctrl => {
                        form.register = !form.register;
                        // The failure was the other form's: "wrong user name or password"
                        // over a new account's form reads as its own answer.
                        form.error = None;
                        if !form.register {
                            // A login has no repeated password: it goes with its field.
                            form.repeat.set_text("");
                            if form.focus == LoginField::Repeat {
                                form.focus = LoginField::Password;
                            }
                        }
                    }
                    KeyCode::Tab | KeyCode::Down => form.focus = step(form.fields(), form.focus, 1),
                    KeyCode::BackTab | KeyCode::Up => {
                        form.focus = step(form.fields(), form.focus, -1);
                    }
                    KeyCode::Enter if Some(form.focus) != last => {
                        form.focus = step(form.fields(), form.focus, 1);
                    }
                    KeyCode::Enter => {
                        let username = form.username.text().trim().to_string();
                        if username.is_empty() {
                            form.error = Some("type your user name".into());
                            form.focus = LoginField::Username;
                            return Vec::new();
                        }
                        if form.register && form.password.text() != form.repeat.text() {
                            form.error = Some("the passwords differ".into());
                            form.repeat.set_text("");
                            form.focus = LoginField::Repeat;
                            return Vec::new();
                        }
                        form.busy = true;
                        form.error = None;
                        return vec![Action::Login {
                            username,
                            password: form.password.text(),
                            register: form.register,
                        }];
                    }
                    KeyCode::Esc => return vec![Action::Quit],
                    _ => {
                        edit(form.focused_mut(), &key);
                    }
                }
                Vec::new()
            }
            Screen::Chat => self.chat_key(key),
        }
    }

    fn chat_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let page = self.viewport.1.max(2) as isize - 1;
        if key.code != KeyCode::Tab {
            // Any other key ends a completion cycle: a moved cursor would leave the remembered
            // word start behind it.
            self.end_completion();
        }
        if self.search.is_some()
            && let Some(actions) = self.search_key(&key)
        {
            return actions;
        }
        if let Some(actions) = self.confirm_key(&key) {
            return actions;
        }
        match key.code {
            KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => {
                self.input.insert('\n');
                Vec::new()
            }
            KeyCode::Enter => self.submit_input(),
            KeyCode::Tab => {
                self.complete();
                Vec::new()
            }
            KeyCode::F(1) => {
                self.open_help();
                Vec::new()
            }
            KeyCode::F(2) => {
                self.show_members = !self.show_members;
                Vec::new()
            }
            KeyCode::F(3) => {
                self.show_transfers = !self.show_transfers;
                Vec::new()
            }
            KeyCode::Char('d') if alt => self.start_download(None),
            KeyCode::Esc => {
                self.flash = None;
                self.cancel_edit();
                self.decline();
                if let Some(room) = self.current {
                    self.to_bottom(room);
                }
                Vec::new()
            }
            KeyCode::Up if alt => self.cycle_room(-1),
            KeyCode::Down if alt => self.cycle_room(1),
            KeyCode::Char('p') if ctrl => self.cycle_room(-1),
            KeyCode::Char('n') if ctrl => self.cycle_room(1),
            KeyCode::Char('a') if alt => self.next_unread(),
            KeyCode::PageUp => self.scroll_rows(page),
            KeyCode::PageDown => self.scroll_rows(-page),
            KeyCode::Up => {
                self.input.history_prev();
                Vec::new()
            }
            KeyCode::Down => {
                self.input.history_next();
                Vec::new()
            }
            _ => {
                let typed = matches!(key.code, KeyCode::Char(_)) && !ctrl && !alt;
                if edit(&mut self.input, &key) && typed {
                    self.typed()
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// A pasted text (bracketed paste): inserted where the cursor is, never submitted. In the
    /// message input its line breaks stay characters of the input, as Alt-Enter makes them
    /// (`\r\n` and `\r`, which terminals often send for a pasted line break, become `\n`),
    /// except those it ends with (see [`without_trailing_blank_lines`]), and it loses its
    /// escape sequences and any other control character but the tab, which the server would
    /// refuse in a message; a login or password field takes it without line breaks.
    pub fn on_paste(&mut self, text: &str) -> Vec<Action> {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let single_line = || text.replace('\n', "");
        if self.show_help {
            return Vec::new();
        }
        if let Some(form) = &mut self.passwd {
            form.focused_mut().insert_str(&single_line());
            return Vec::new();
        }
        match &mut self.screen {
            Screen::Login(form) => {
                if !form.busy {
                    form.focused_mut().insert_str(&single_line());
                }
                Vec::new()
            }
            Screen::Chat => {
                self.end_completion();
                // Pasting is typing: it answers a waiting question no (`confirms`).
                self.decline();
                let cleaned = crate::output::clean_message_text(&text).text;
                self.input
                    .insert_str(without_trailing_blank_lines(&cleaned));
                self.typed()
            }
        }
    }

    /// Scrolls the current room by `rows`, measuring the timeline at the current width.
    pub fn scroll_rows(&mut self, rows: isize) -> Vec<Action> {
        let total = self.current_room().map_or(0, |room| {
            super::ui::timeline_rows(self, room, self.viewport.0).len()
        });
        self.scroll(rows, total)
    }

    /// Opens the help popup at its top.
    pub fn open_help(&mut self) {
        self.show_help = true;
        self.help_scroll = 0;
    }

    /// A key while the help popup is open: it scrolls (the whole list does not fit a small
    /// terminal) or closes it.
    fn help_key(&mut self, code: KeyCode) {
        let max = super::ui::help_scroll_max(self.screen_size);
        let page = super::ui::help_page(self.screen_size).max(2) - 1;
        let at = self.help_scroll.min(max);
        self.help_scroll = match code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::F(1) | KeyCode::Char('q') => {
                self.show_help = false;
                0
            }
            KeyCode::Up | KeyCode::Char('k') => at.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => (at + 1).min(max),
            KeyCode::PageUp => at.saturating_sub(page),
            KeyCode::PageDown | KeyCode::Char(' ') => (at + page).min(max),
            KeyCode::Home => 0,
            KeyCode::End => max,
            _ => at,
        };
    }

    /// A key while the search results are shown: ↑ ↓ PgUp PgDn move the selection, Enter on
    /// an empty input opens the selected result, Esc closes the view; switching rooms closes it
    /// too. `None`: the key does what it does without the view (typing goes to the input).
    fn search_key(&mut self, key: &KeyEvent) -> Option<Vec<Action>> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let page = super::ui::search_list_rows(self.viewport).max(2) as isize - 1;
        match key.code {
            KeyCode::Esc => {
                self.close_search();
                self.flash = None;
                Some(Vec::new())
            }
            KeyCode::Up | KeyCode::Down | KeyCode::Char('a') if alt => {
                self.close_search();
                None
            }
            KeyCode::Char('p') | KeyCode::Char('n') if ctrl => {
                self.close_search();
                None
            }
            KeyCode::Up => Some(self.move_selection(-1)),
            KeyCode::Down => Some(self.move_selection(1)),
            KeyCode::PageUp => Some(self.move_selection(-page)),
            KeyCode::PageDown => Some(self.move_selection(page)),
            KeyCode::Enter if !alt && !key.modifiers.contains(KeyModifiers::SHIFT) => {
                self.input.text().is_empty().then(|| self.open_selected())
            }
            _ => None,
        }
    }

    /// Handles the mouse wheel (when mouse support is on).
    pub fn on_mouse(&mut self, mouse: MouseEvent) -> Vec<Action> {
        if self.show_help {
            match mouse.kind {
                MouseEventKind::ScrollUp => self.help_key(KeyCode::Up),
                MouseEventKind::ScrollDown => self.help_key(KeyCode::Down),
                _ => {}
            }
            return Vec::new();
        }
        if !matches!(self.screen, Screen::Chat) {
            return Vec::new();
        }
        if self.search.is_some() {
            return match mouse.kind {
                MouseEventKind::ScrollUp => self.move_selection(-WHEEL_ROWS),
                MouseEventKind::ScrollDown => self.move_selection(WHEEL_ROWS),
                _ => Vec::new(),
            };
        }
        match mouse.kind {
            MouseEventKind::ScrollUp => self.scroll_rows(WHEEL_ROWS),
            MouseEventKind::ScrollDown => self.scroll_rows(-WHEEL_ROWS),
            _ => Vec::new(),
        }
    }

    /// Opens the change-password popup.
    pub fn open_passwd(&mut self) {
        self.passwd = Some(PasswdForm::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::LoginForm;
    use chatroom_protocol::{UserId, UserSummary};

    fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Action> {
        app.on_key(KeyEvent::new(code, modifiers))
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            press(app, KeyCode::Char(c), KeyModifiers::NONE);
        }
    }

    fn login_form(app: &App) -> &LoginForm {
        let Screen::Login(form) = &app.screen else {
            panic!("not on the login screen");
        };
        form
    }

    #[test]
    fn the_login_form_submits_credentials_without_a_repeat() {
        let mut app = App::new("h:1", None);
        type_text(&mut app, "alice");
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        type_text(&mut app, "secret pw");
        assert_eq!(login_form(&app).fields().len(), 2, "no repeat field");
        let actions = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            actions,
            vec![Action::Login {
                username: "alice".into(),
                password: "secret pw".into(),
                register: false
            }]
        );
        assert!(
            press(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty(),
            "busy"
        );
    }

    #[test]
    fn registering_takes_the_password_twice() {
        let mut app = App::new("h:1", None);
        press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
        type_text(&mut app, "alice");
        press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        type_text(&mut app, "secret pw");
        assert!(
            press(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty(),
            "Enter on the password goes on to the repeat"
        );
        assert_eq!(login_form(&app).focus, LoginField::Repeat);
        app.on_paste("secret pw");
        let actions = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            actions,
            vec![Action::Login {
                username: "alice".into(),
                password: "secret pw".into(),
                register: true
            }]
        );
        assert!(login_form(&app).busy);
    }

    #[test]
    fn registering_with_differing_passwords_sends_nothing() {
        let mut app = App::new("h:1", Some("alice"));
        press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
        type_text(&mut app, "secret pw");
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        type_text(&mut app, "secret wp");
        assert!(press(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
        let form = login_form(&app);
        assert_eq!(form.error.as_deref(), Some("the passwords differ"));
        assert_eq!(form.focus, LoginField::Repeat);
        assert_eq!(form.repeat.text(), "", "the repeat is typed again");
        assert_eq!(form.password.text(), "secret pw", "the password stays");
        assert!(!form.busy);
        // Typed again, right this time.
        type_text(&mut app, "secret pw");
        assert_eq!(
            press(&mut app, KeyCode::Enter, KeyModifiers::NONE),
            vec![Action::Login {
                username: "alice".into(),
                password: "secret pw".into(),
                register: true
            }]
        );
    }

    #[test]
    fn the_repeat_field_is_there_only_when_registering() {
        let mut app = App::new("h:1", Some("alice"));
        // Logging in, the fields are user and password, round and round.
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(login_form(&app).focus, LoginField::Username);
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(login_form(&app).focus, LoginField::Password);
        // Registering, a third field follows the password; ↑ and BackTab go back.
        press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(login_form(&app).focus, LoginField::Repeat);
        type_text(&mut app, "typed");
        press(&mut app, KeyCode::BackTab, KeyModifiers::NONE);
        assert_eq!(login_form(&app).focus, LoginField::Password);
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(login_form(&app).focus, LoginField::Repeat, "round the top");
        // Back to logging in: the field goes, with what was typed in it and its focus.
        press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
        let form = login_form(&app);
        assert_eq!(form.focus, LoginField::Password);
        assert_eq!(form.repeat.text(), "");
        type_text(&mut app, "pw");
        assert_eq!(
            press(&mut app, KeyCode::Enter, KeyModifiers::NONE),
            vec![Action::Login {
                username: "alice".into(),
                password: "pw".into(),
                register: false
            }]
        );
    }

    #[test]
    fn switching_between_log_in_and_new_account_drops_the_last_failure() {
        let mut app = App::new("h:1", Some("alice"));
        app.login_failed("wrong user name or password".into());
        assert!(login_form(&app).error.is_some());
        press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
        let form = login_form(&app);
        assert!(form.register);
        assert_eq!(form.error, None);
    }

    #[test]
    fn a_failed_registration_clears_both_passwords() {
        let mut app = App::new("h:1", Some("alice"));
        press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
        type_text(&mut app, "pw");
        press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        type_text(&mut app, "pw");
        assert_eq!(press(&mut app, KeyCode::Enter, KeyModifiers::NONE).len(), 1);
        app.login_failed("a password needs at least 8 characters".into());
        let form = login_form(&app);
        assert_eq!(
            (form.password.text(), form.repeat.text()),
            ("".into(), "".into())
        );
        assert_eq!(form.focus, LoginField::Password);
    }

    #[test]
    fn passwd_with_matching_new_passwords_changes_it() {
        let mut app = crate::tui::test_support::app_as_me();
        app.open_passwd();
        type_text(&mut app, "old pw");
        press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        type_text(&mut app, "new pw");
        assert!(
            press(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty(),
            "Enter on the new password goes on to the repeat"
        );
        app.on_paste("new pw");
        assert_eq!(
            press(&mut app, KeyCode::Enter, KeyModifiers::NONE),
            vec![Action::ChangePassword {
                old: "old pw".into(),
                new: "new pw".into()
            }]
        );
        assert!(app.passwd.is_none());
    }

    #[test]
    fn passwd_with_differing_new_passwords_stays_open() {
        let mut app = crate::tui::test_support::app_as_me();
        app.open_passwd();
        type_text(&mut app, "old pw");
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        type_text(&mut app, "new pw");
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        type_text(&mut app, "new wp");
        assert!(press(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
        let form = app.passwd.as_ref().expect("still open");
        assert_eq!(form.error.as_deref(), Some("the new passwords differ"));
        assert_eq!(form.focus, PasswdField::Repeat);
        assert_eq!(form.repeat.text(), "");
        assert_eq!(
            (form.old.text(), form.new.text()),
            ("old pw".into(), "new pw".into())
        );
        // BackTab and ↑ go back a field; Esc still closes it.
        press(&mut app, KeyCode::BackTab, KeyModifiers::NONE);
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(
            app.passwd.as_ref().expect("open").focus,
            PasswdField::Current
        );
        assert!(press(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
        assert!(app.passwd.is_none());
    }

    #[test]
    fn alt_enter_makes_a_multi_line_message() {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        type_text(&mut app, "line one");
        press(&mut app, KeyCode::Enter, KeyModifiers::ALT);
        type_text(&mut app, "line two");
        assert_eq!(app.input.text(), "line one\nline two");
        press(&mut app, KeyCode::Char('w'), KeyModifiers::CONTROL);
        assert_eq!(app.input.text(), "line one\nline ");
        press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
        assert!(app.show_help);
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        assert!(!app.show_help);
        assert_eq!(
            press(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
            vec![Action::Quit]
        );
    }

    #[test]
    fn a_paste_is_inserted_with_its_line_breaks_and_never_sent() {
        let mut app = App::new("h:1", Some("alice"));
        app.on_paste("pass\nword");
        let Screen::Login(form) = &app.screen else {
            unreachable!("a new app is on the login screen");
        };
        assert_eq!(
            form.password.text(),
            "password",
            "no line break in a password"
        );
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        type_text(&mut app, "see: ");
        let actions = app.on_paste("line one\r\n/quit\rline three\n");
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::Send { .. } | Action::Quit)),
            "{actions:?}"
        );
        assert_eq!(app.input.text(), "see: line one\n/quit\nline three");
    }

    /// A paste's trailing line breaks, and blank lines among them, are left out; those inside
    /// it, its trailing spaces on a line of text, and whatever follows the cursor stay.
    #[test]
    fn a_paste_loses_the_line_breaks_it_ends_with() {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        app.on_paste("first\n\nsecond  \r\n \t\n\n\r\n");
        assert_eq!(app.input.text(), "first\n\nsecond  ");
        app.input.set_text("");
        app.on_paste("\n\n");
        assert_eq!(app.input.text(), "", "nothing but line breaks: nothing");
        type_text(&mut app, "ab");
        press(&mut app, KeyCode::Left, KeyModifiers::NONE);
        app.on_paste("x\n");
        assert_eq!(app.input.text(), "axb");
    }

    #[test]
    fn a_pasted_text_loses_its_escape_sequences_and_control_characters() {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        let pasted = "\u{1b}[1;31merror\u{1b}[0m: disk\tfull\u{7}\r\n\
                      \u{1b}]8;;http://x/\u{1b}\\link\u{1b}]8;;\u{7} \u{1b}(Bok\u{7f}\u{85}\u{9b}2Jdone\u{0}";
        app.on_paste(pasted);
        let text = app.input.text();
        assert_eq!(text, "error: disk\tfull\nlink okdone");
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "the server would refuse {text:?}"
        );
        // An unterminated string takes only its introducer with it.
        let clean = |text: &str| crate::output::clean_message_text(text).text;
        assert_eq!(clean("a\u{1b}]b c"), "a]b c");
        assert_eq!(clean("trailing\u{1b}"), "trailing");
        assert_eq!(clean("中文 ✓\u{200d}"), "中文 ✓\u{200d}");
    }

    #[test]
    fn back_at_the_bottom_by_esc_or_by_sending_marks_the_room_read() {
        use chatroom_protocol::{Event, Message, MessageId, MessageKind, RoomId, RoomKind};
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        app.rooms_loaded(vec![chatroom_protocol::RoomSummary {
            id: RoomId(1),
            kind: RoomKind::Public,
            name: "public".into(),
            topic: String::new(),
            member_count: 2,
            latest_seq: 0,
            last_read_seq: 0,
            unread: 0,
            mentions: 0,
            my_role: None,
        }]);
        let mut seq = 0;
        let mut scrolled_up_then_news = |app: &mut App| {
            seq += 1;
            app.rooms.get_mut(&RoomId(1)).expect("public").scroll = 5;
            app.on_event(Event::Message(Message {
                id: MessageId(seq),
                room: RoomId(1),
                seq,
                sender: UserId(2),
                sender_name: "bob".into(),
                ts: 0,
                kind: MessageKind::Text,
                text: "@me news".into(),
            }));
            let summary = &app.rooms[&RoomId(1)].summary;
            assert_eq!((summary.unread, summary.mentions), (1, 1));
            seq
        };
        let read = |app: &mut App, seq| {
            let summary = &app.rooms[&RoomId(1)].summary;
            assert_eq!((summary.unread, summary.mentions), (0, 0));
            assert_eq!(app.rooms[&RoomId(1)].scroll, 0);
            assert_eq!(
                app.tick(seq * 1000),
                vec![Action::MarkRead {
                    room: RoomId(1),
                    seq
                }]
            );
        };

        let seq = scrolled_up_then_news(&mut app);
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        read(&mut app, seq);

        let seq = scrolled_up_then_news(&mut app);
        type_text(&mut app, "thanks");
        press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        read(&mut app, seq);
    }

    #[test]
    fn the_help_scrolls_on_a_small_terminal() {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        app.screen_size = (80, 24);
        let max = crate::tui::ui::help_scroll_max(app.screen_size);
        assert!(max > 0, "the help does not fit 80×24");
        assert_eq!(crate::tui::ui::help_scroll_max((100, 70)), 0, "it fits");
        press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(app.help_scroll, 1);
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(app.help_scroll, 0);
        for _ in 0..10 {
            press(&mut app, KeyCode::PageDown, KeyModifiers::NONE);
        }
        assert_eq!(app.help_scroll, max, "not past the end");
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(app.help_scroll, max - 1, "one step back from the end");
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        assert!(!app.show_help);
        press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
        assert_eq!(app.help_scroll, 0, "opens at the top");
    }

    #[test]
    fn moving_the_cursor_ends_a_completion_cycle() {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        for (id, name) in [(2, "alice"), (3, "albert")] {
            app.presence.insert(
                UserId(id),
                (name.into(), chatroom_protocol::PresenceStatus::Online),
            );
        }
        type_text(&mut app, "hi @al");
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(app.input.text(), "hi @albert ");
        // The cursor goes back to the start, where the word is "": Tab has nothing to do.
        press(&mut app, KeyCode::Home, KeyModifiers::NONE);
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(app.input.text(), "hi @albert ");
        // Back at the end, a new cycle starts from the word there.
        press(&mut app, KeyCode::End, KeyModifiers::NONE);
        type_text(&mut app, "@ali");
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(app.input.text(), "hi @albert @alice ");
    }
}
