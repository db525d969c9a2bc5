//! `/edit`: changing my newest message in the current room, and edits arriving from the server.

use chatroom_protocol::{Message, MessageKind};

use super::app::{Action, App, Entry};

impl App {
    /// A message was edited: the one held with that seq takes its new text. One not loaded yet
    /// comes with the edit when its history page does.
    pub fn message_edited(&mut self, message: Message) {
        if let Some(Entry::Message(held)) = self
            .rooms
            .get_mut(&message.room)
            .and_then(|r| r.timeline.get_mut(&(message.seq, 0)))
        {
            *held = message;
        }
    }

    /// `/edit TEXT` replaces the text of my newest text message here; `/edit` alone puts that
    /// message in the input line, after `/edit `, to be corrected and sent.
    pub fn edit_last(&mut self, text: Option<String>) -> Vec<Action> {
        let editable =
            |kind: &MessageKind| matches!(kind, MessageKind::Text | MessageKind::Edited { .. });
        let Some(Message {
            room,
            seq,
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
                self.input.set_text(&format!("/edit {old}"));
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_protocol::{
        Event, HistoryPage, MessageId, RoomId, RoomKind, RoomRole, RoomSummary, Seq, UserId,
        UserSummary,
    };

    fn message(seq: Seq, sender: (u64, &str), kind: MessageKind, text: &str) -> Message {
        Message {
            id: MessageId(seq),
            room: RoomId(1),
            seq,
            sender: UserId(sender.0),
            sender_name: sender.1.into(),
            ts: seq * 1000,
            kind,
            text: text.into(),
        }
    }

    /// In `public`, with my typo (seq 1), a notice (2) and bob's answer (3).
    fn app_with_a_typo() -> App {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        app.rooms_loaded(vec![RoomSummary {
            id: RoomId(1),
            kind: RoomKind::Public,
            name: "public".into(),
            topic: String::new(),
            member_count: 2,
            latest_seq: 3,
            last_read_seq: 3,
            unread: 0,
            mentions: 0,
            my_role: Some(RoomRole::Member),
        }]);
        app.enter_room(RoomId(1));
        app.history_loaded(
            HistoryPage {
                room: RoomId(1),
                messages: vec![
                    message(1, (1, "me"), MessageKind::Text, "deploy on fryday"),
                    message(2, (1, "me"), MessageKind::System, "me set the topic"),
                    message(3, (2, "bob"), MessageKind::Text, "ok"),
                ],
                has_more: false,
            },
            false,
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
        assert_eq!(app.input.text(), "/edit deploy on fryday");
        app.input.set_text("/edit deploy on friday");
        assert_eq!(
            app.submit_input(),
            [Action::EditMessage {
                room: RoomId(1),
                seq: 1,
                text: "deploy on friday".into()
            }]
        );
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
        assert_eq!(app.input.text(), "/edit deploy on friday");
        app.input.set_text("/delete");
        assert_eq!(
            app.submit_input(),
            [Action::DeleteMessage {
                room: RoomId(1),
                seq: 1
            }]
        );
    }
}
