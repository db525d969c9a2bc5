//! `/edit`: changing my newest message in the current room, and edits arriving from the server.
//!
//! `/edit TEXT` replaces the text at once. `/edit` alone puts the message's text in the input
//! to be corrected: the message being edited is kept apart from the text ([`Editing`]), marked
//! above the input, so clearing the line (Ctrl-U) clears only the text; Enter saves the edit
//! and Esc cancels it.

use chatroom_protocol::{Message, MessageKind, RoomId, Seq, UnixMillis};

use super::app::{Action, App, ConnectionState, Entry, RoomState};

/// A message of mine being corrected in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Editing {
    /// Its room.
    pub room: RoomId,
    /// Its seq there.
    pub seq: Seq,
    /// When it was sent (the marker names it by its time).
    pub ts: UnixMillis,
    /// Its text before the edit.
    pub original: String,
}

impl App {
    /// A message was edited: the one held with that seq takes its new text. One not loaded yet
    /// comes with the edit when its history page does. An unread message that mentions me now
    /// and did not before counts as a mention (and one that no longer does, no more).
    pub fn message_edited(&mut self, message: Message) {
        let Some(r) = self.rooms.get(&message.room) else {
            return;
        };
        let unread = message.seq > r.summary.last_read_seq && self.is_news(&message);
        let was = match r.timeline.get(&(message.seq, 0)) {
            Some(Entry::Message(held)) => Some(self.is_mention(held)),
            _ => self.unheld_mentions_me(r),
        };
        let now = self.is_mention(&message);
        let Some(r) = self.rooms.get_mut(&message.room) else {
            return;
        };
        if unread {
            match (was, now) {
                (Some(false), true) => r.summary.mentions += 1,
                (Some(true), false) => r.summary.mentions = r.summary.mentions.saturating_sub(1),
                _ => {}
            }
        }
        if let Some(Entry::Message(held)) = r.timeline.get_mut(&(message.seq, 0)) {
            *held = message;
        }
    }

    /// Whether an unread message of `room` that is not held mentions me, as far as its counts
    /// tell: not when every mention counted is among the held messages, yes when every unread
    /// message not held is a mention, `None` when the counts cannot say.
    pub(super) fn unheld_mentions_me(&self, room: &RoomState) -> Option<bool> {
        let marker = room.summary.last_read_seq;
        let (mut news, mut mentions) = (0u32, 0u32);
        for entry in room.timeline.range((marker + 1, 0)..).map(|(_, e)| e) {
            if let Entry::Message(m) = entry
                && self.is_news(m)
            {
                news += 1;
                mentions += u32::from(self.is_mention(m));
            }
        }
        let unheld_mentions = room.summary.mentions.saturating_sub(mentions);
        let unheld_unread = room.summary.unread.saturating_sub(news);
        if unheld_mentions == 0 {
            Some(false)
        } else if unheld_mentions >= unheld_unread {
            Some(true)
        } else {
            None
        }
    }

    /// `/edit TEXT` replaces the text of my newest text message here; `/edit` alone puts that
    /// message's text in the input line to be corrected (see [`Editing`]).
    pub fn edit_last(&mut self, text: Option<String>) -> Vec<Action> {
        let editable =
            |kind: &MessageKind| matches!(kind, MessageKind::Text | MessageKind::Edited { .. });
        let Some(Message {
            room,
            seq,
            ts,
            text: old,
            ..
        }) = self.my_newest_here("edit", editable)
        else {
            return Vec::new();
        };
        match text {
            Some(text) if text == old => {
                self.flash("that is what it says already", false);
                Vec::new()
            }
            Some(text) => vec![Action::EditMessage { room, seq, text }],
            None => {
                self.input.set_text(&old);
                self.editing = Some(Editing {
                    room,
                    seq,
                    ts,
                    original: old,
                });
                Vec::new()
            }
        }
    }

    /// Enter while editing: the input's text is the message's new text, as typed (a leading
    /// slash too). An empty one, or one too long, stays to be put right; offline, it waits in
    /// the input with the edit.
    pub(super) fn submit_edit(&mut self, editing: Editing, text: String) -> Vec<Action> {
        if text.trim().is_empty() {
            self.flash(
                "the new text is empty: type it, or Esc to cancel (/delete removes a message)",
                true,
            );
            return Vec::new();
        }
        if self.too_long(&text) {
            self.input.set_text(&text);
            return Vec::new();
        }
        if text == editing.original {
            self.editing = None;
            self.flash("that is what it says already", false);
            return Vec::new();
        }
        if self.connection != ConnectionState::Connected {
            self.unsent(&text, "not connected; waiting to reconnect");
            return Vec::new();
        }
        self.editing = None;
        vec![Action::EditMessage {
            room: editing.room,
            seq: editing.seq,
            text,
        }]
    }

    /// Esc while editing: the message stays as it was, and the input is emptied.
    pub fn cancel_edit(&mut self) -> bool {
        if self.editing.take().is_none() {
            return false;
        }
        self.input.set_text("");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::test_support::{app_as_me, load_history, message, public_room};
    use chatroom_protocol::{Event, RoomRole};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    /// In `public`, with my typo (seq 1), a notice (2) and bob's answer (3).
    fn app_with_a_typo() -> App {
        let mut app = app_as_me();
        app.rooms_loaded(vec![public_room(1, "public", 3, RoomRole::Member)]);
        app.enter_room(RoomId(1));
        load_history(
            &mut app,
            vec![
                message(1, (1, "me"), MessageKind::Text, "deploy on fryday"),
                message(2, (1, "me"), MessageKind::System, "me set the topic"),
                message(3, (2, "bob"), MessageKind::Text, "ok"),
            ],
        );
        app
    }

    fn text_of(app: &App, seq: Seq) -> (MessageKind, String) {
        match app.rooms[&RoomId(1)].timeline.get(&(seq, 0)) {
            Some(Entry::Message(m)) => (m.kind.clone(), m.text.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn edit_alone_loads_my_newest_text_message_to_correct_and_send() {
        let mut app = app_with_a_typo();
        app.input.set_text("/edit");
        assert_eq!(app.submit_input(), []);
        assert_eq!(app.input.text(), "deploy on fryday", "the text alone");
        assert_eq!(
            app.editing.as_ref().map(|e| (e.room, e.seq)),
            Some((RoomId(1), 1))
        );
        app.input.set_text("deploy on friday");
        assert_eq!(
            app.submit_input(),
            [Action::EditMessage {
                room: RoomId(1),
                seq: 1,
                text: "deploy on friday".into()
            }]
        );
        assert_eq!(app.editing, None, "done");
        app.input.set_text("a new message");
        assert_eq!(
            app.submit_input(),
            [Action::Send {
                room: RoomId(1),
                text: "a new message".into()
            }]
        );
    }

    fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Action> {
        app.on_key(KeyEvent::new(code, modifiers))
    }

    /// Ctrl-U clears the text, never the edit: what is typed next and sent is the new text of
    /// the message being edited, not a new message.
    #[test]
    fn clearing_the_line_while_editing_keeps_the_edit() {
        let mut app = app_with_a_typo();
        app.input.set_text("/edit");
        app.submit_input();
        key(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
        assert_eq!(app.input.text(), "");
        assert!(app.editing.is_some());
        for c in "ship it friday".chars() {
            key(&mut app, KeyCode::Char(c), KeyModifiers::NONE);
        }
        assert_eq!(
            key(&mut app, KeyCode::Enter, KeyModifiers::NONE),
            [Action::EditMessage {
                room: RoomId(1),
                seq: 1,
                text: "ship it friday".into()
            }]
        );
    }

    #[test]
    fn esc_cancels_an_edit_and_an_empty_one_is_not_sent() {
        let mut app = app_with_a_typo();
        app.input.set_text("/edit");
        app.submit_input();
        app.input.set_text("   ");
        assert_eq!(app.submit_input(), [], "an empty text is no edit");
        assert!(app.editing.is_some(), "still editing");
        assert!(
            app.flash
                .as_ref()
                .is_some_and(|(t, e)| *e && t.contains("Esc"))
        );
        app.input.set_text("deploy on fri");
        assert!(key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
        assert_eq!(
            (app.editing.clone(), app.input.text()),
            (None, String::new())
        );
        app.input.set_text("deploy on fri");
        assert_eq!(
            app.submit_input(),
            [Action::Send {
                room: RoomId(1),
                text: "deploy on fri".into()
            }],
            "after Esc, a line is a message again"
        );
        // Offline, the edit waits in the input.
        app.input.set_text("/edit");
        app.submit_input();
        app.disconnected("lost".into(), 0);
        app.input.set_text("deploy on friday");
        assert_eq!(app.submit_input(), []);
        assert_eq!(app.input.text(), "deploy on friday");
        assert!(app.editing.is_some());
    }

    #[test]
    fn nothing_to_edit_or_nothing_changed_sends_nothing() {
        let mut app = app_with_a_typo();
        app.input.set_text("/edit deploy on fryday");
        assert_eq!(app.submit_input(), [], "the same text");
        app.message_deleted(RoomId(1), 1);
        app.input.set_text("/edit anything");
        assert_eq!(
            app.submit_input(),
            [],
            "bob's and notices are not mine to edit"
        );
        assert!(
            app.flash
                .as_ref()
                .is_some_and(|(text, error)| *error && text.contains("no message here")),
            "{:?}",
            app.flash
        );
    }

    #[test]
    fn an_edit_from_the_server_replaces_the_held_message() {
        let mut app = app_with_a_typo();
        let edited = message(
            1,
            (1, "me"),
            MessageKind::Edited { at: 5000 },
            "deploy on friday",
        );
        app.on_event(Event::MessageEdited(edited.clone()));
        assert_eq!(text_of(&app, 1), (edited.kind, edited.text));
        assert_eq!(text_of(&app, 3).1, "ok", "others untouched");
        // An edit of a message not loaded adds nothing.
        app.on_event(Event::MessageEdited(message(
            9,
            (2, "bob"),
            MessageKind::Edited { at: 1 },
            "later",
        )));
        assert!(!app.rooms[&RoomId(1)].timeline.contains_key(&(9, 0)));
    }

    #[test]
    fn a_mention_added_by_an_edit_is_highlighted() {
        let mut app = app_with_a_typo();
        let edited = message(3, (2, "bob"), MessageKind::Edited { at: 5000 }, "ok @me");
        assert!(app.is_mention(&edited));
        app.on_event(Event::MessageEdited(edited));
        assert!(!app.is_mention(&message(3, (2, "bob"), MessageKind::Text, "ok")));
    }

    #[test]
    fn an_edited_message_is_still_mine_to_edit_again_or_delete() {
        let mut app = app_with_a_typo();
        app.on_event(Event::MessageEdited(message(
            1,
            (1, "me"),
            MessageKind::Edited { at: 5000 },
            "deploy on friday",
        )));
        app.input.set_text("/edit");
        assert_eq!(app.submit_input(), []);
        assert_eq!(app.input.text(), "deploy on friday");
        key(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        app.input.set_text("/delete");
        assert_eq!(app.submit_input(), [], "asked first");
        assert_eq!(
            key(&mut app, KeyCode::Char('y'), KeyModifiers::NONE),
            [Action::DeleteMessage {
                room: RoomId(1),
                seq: 1
            }]
        );
    }
}
