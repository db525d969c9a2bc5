//! `/delete`: my newest message in the current room, or `/delete NAME`, NAME's newest message
//! there (what the room's owner, its moderators and admins may do), each once confirmed.
//!
//! The message is picked as `/edit` picks mine, the newest one loaded, and shown above the
//! input ([`Deleting`]) as [`super::confirms`] asks: `y` deletes it; `n`, Enter, Esc, typing
//! instead or switching rooms leave it. With nothing to delete, it says so
//! and asks nothing. Whether I may is the server's to say: its refusal shows as the error.

use chatroom_protocol::{Message, MessageKind, RoomId, Seq, UnixMillis};

use super::app::{Action, App, Entry};
use super::confirms::Confirming;

/// A message picked by `/delete` (mine) or `/delete NAME`, waiting for Enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleting {
    /// Its room.
    pub room: RoomId,
    /// Its seq there.
    pub seq: Seq,
    /// Who sent it, as the message names them.
    pub sender: String,
    /// Whether I sent it (`/delete`, or `/delete` with my own name).
    pub mine: bool,
    /// When it was sent.
    pub ts: UnixMillis,
    /// What it says (for a file, its name and size), to be sure it is the right one.
    pub text: String,
}

impl Deleting {
    /// Whose message it is, as a line about it says: `your` or `bob's`.
    pub fn whose(&self) -> String {
        if self.mine {
            "your".to_string()
        } else {
            format!("{}'s", self.sender)
        }
    }
}

/// What `/delete` removes: text and files, never a room notice or what is gone already.
fn deletable(kind: &MessageKind) -> bool {
    matches!(
        kind,
        MessageKind::Text | MessageKind::Edited { .. } | MessageKind::File(_)
    )
}

impl App {
    /// `/delete`: picks my newest message loaded in the current room and asks for Enter.
    pub fn delete_last(&mut self) -> Vec<Action> {
        if let Some(message) = self.my_newest_here("delete", deletable) {
            self.ask_to_delete(message);
        }
        Vec::new()
    }

    /// `/delete NAME` (or `@NAME`): picks NAME's newest message loaded in the current room and
    /// asks for Enter.
    pub fn delete_theirs(&mut self, name: &str) -> Vec<Action> {
        let name = name.trim_start_matches('@');
        let Some(room) = self.current_room() else {
            self.flash("you are in no room", true);
            return Vec::new();
        };
        let wanted = name.to_lowercase();
        let found = room.timeline.values().rev().find_map(|e| match e {
            Entry::Message(m) if m.sender_name.to_lowercase() == wanted && deletable(&m.kind) => {
                Some(m.clone())
            }
            _ => None,
        });
        let Some(message) = found else {
            let older = if room.has_older {
                " among the messages loaded (PgUp loads older ones)"
            } else {
                ""
            };
            self.flash(format!("{name} has no message here to delete{older}"), true);
            return Vec::new();
        };
        self.ask_to_delete(message);
        Vec::new()
    }

    /// Shows `message` above the input, waiting for Enter or Esc.
    fn ask_to_delete(&mut self, message: Message) {
        let Message {
            room,
            seq,
            sender,
            sender_name,
            ts,
            kind,
            text,
            ..
        } = message;
        let text = match kind {
            MessageKind::File(file) => super::ui::file_label(&file),
            _ => text,
        };
        let mine = self.me.as_ref().is_some_and(|me| me.id == sender);
        self.ask(Confirming::Delete(Deleting {
            room,
            seq,
            sender: sender_name,
            mine,
            ts,
            text,
        }));
    }

    /// Enter confirmed `deleting` (see [`super::confirms`]): deletes it, unless it is gone
    /// already.
    pub(super) fn delete_confirmed(&mut self, deleting: Deleting) -> Vec<Action> {
        let gone = self
            .rooms
            .get(&deleting.room)
            .and_then(|r| r.timeline.get(&(deleting.seq, 0)))
            .is_some_and(|e| matches!(e, Entry::Message(m) if m.kind == MessageKind::Deleted));
        if gone {
            self.flash(
                format!("{} message is deleted already", deleting.whose()),
                false,
            );
            return Vec::new();
        }
        vec![Action::DeleteMessage {
            room: deleting.room,
            seq: deleting.seq,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::test_support::{app_as_me, key, load_history, message, public_room};
    use chatroom_protocol::RoomRole;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    /// In `public` as a moderator, with bob's two messages, mine, and a notice.
    fn moderator_app() -> App {
        let mut app = app_as_me();
        app.rooms_loaded(vec![
            public_room(1, "public", 4, RoomRole::Moderator),
            public_room(2, "dev", 0, RoomRole::Moderator),
        ]);
        load_history(
            &mut app,
            vec![
                message(1, (2, "Bob"), MessageKind::Text, "first"),
                message(2, (2, "Bob"), MessageKind::Text, "buy cheap\nwatches"),
                message(3, (1, "me"), MessageKind::Text, "please don't"),
                message(4, (2, "Bob"), MessageKind::System, "Bob set the topic"),
            ],
        );
        app
    }

    fn submit(app: &mut App, line: &str) -> Vec<Action> {
        app.input.set_text(line);
        app.submit_input()
    }

    #[test]
    fn delete_name_picks_their_newest_message_and_y_deletes_it() {
        let mut app = moderator_app();
        assert_eq!(submit(&mut app, "/delete @bob"), [], "nothing before y");
        let deleting = app.deleting().cloned().expect("waiting for y");
        assert_eq!(
            (
                deleting.seq,
                deleting.sender.as_str(),
                deleting.text.as_str()
            ),
            (2, "Bob", "buy cheap\nwatches"),
            "bob's newest message, not the notice in his name"
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Action::DeleteMessage {
                room: RoomId(1),
                seq: 2
            }]
        );
        assert_eq!(app.confirming, None, "done");
        let again = key(&mut app, KeyCode::Char('y'));
        assert!(
            !again
                .iter()
                .any(|a| matches!(a, Action::DeleteMessage { .. })),
            "y again deletes nothing: {again:?}"
        );
        assert_eq!(app.input.text(), "y", "y again is typed");
    }

    /// Enter, what was just pressed to ask, answers no: a double Enter deletes nothing.
    #[test]
    fn enter_or_n_answers_no() {
        let mut app = moderator_app();
        for no in [KeyCode::Enter, KeyCode::Char('n'), KeyCode::Char('N')] {
            submit(&mut app, "/delete bob");
            assert!(app.deleting().is_some());
            assert_eq!(key(&mut app, no), [], "{no:?}");
            assert_eq!(app.confirming, None, "{no:?}");
            assert_eq!(app.input.text(), "", "{no:?} is not typed");
            assert_eq!(
                app.flash,
                Some(("cancelled: nothing deleted".into(), false)),
                "{no:?}"
            );
        }
        // A key that types nothing leaves the question, and Shift-Y answers it.
        submit(&mut app, "/delete bob");
        assert_eq!(key(&mut app, KeyCode::PageUp), []);
        assert!(app.deleting().is_some(), "scrolling to look first");
        let shift_y = KeyEvent::new(KeyCode::Char('Y'), KeyModifiers::SHIFT);
        assert_eq!(
            app.on_key(shift_y),
            [Action::DeleteMessage {
                room: RoomId(1),
                seq: 2
            }]
        );
    }

    /// `/delete me` picks my own newest message: it is "your message", not "me's".
    #[test]
    fn my_own_name_asks_about_your_message() {
        let mut app = moderator_app();
        submit(&mut app, "/delete me");
        let deleting = app.deleting().cloned().expect("waiting for Enter");
        assert_eq!((deleting.seq, deleting.whose().as_str()), (3, "your"));
        app.message_deleted(RoomId(1), 3);
        key(&mut app, KeyCode::Char('y'));
        assert_eq!(
            app.flash,
            Some(("your message is deleted already".into(), false))
        );
        submit(&mut app, "/delete bob");
        assert_eq!(app.deleting().map(|d| d.whose()), Some("Bob's".into()));
    }

    #[test]
    fn esc_typing_pasting_or_another_room_leaves_the_message() {
        let mut app = moderator_app();
        submit(&mut app, "/delete bob");
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.confirming, None, "Esc");
        assert_eq!(key(&mut app, KeyCode::Enter), []);

        submit(&mut app, "/delete bob");
        for c in "sorry, wrong one".chars() {
            key(&mut app, KeyCode::Char(c));
        }
        assert_eq!(app.confirming, None, "the first letter typed drops it");
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            [Action::Send {
                room: RoomId(1),
                text: "sorry, wrong one".into()
            }],
            "a line typed instead is sent as it is"
        );

        submit(&mut app, "/delete bob");
        app.on_paste("yes");
        assert_eq!(app.confirming, None, "pasting drops it");
        assert_eq!(app.input.text(), "yes");
        app.input.set_text("");

        submit(&mut app, "/delete bob");
        app.enter_room(RoomId(2));
        assert_eq!(app.confirming, None, "another room");
    }

    #[test]
    fn no_such_message_is_said_and_a_gone_one_is_not_deleted_twice() {
        let mut app = moderator_app();
        assert_eq!(submit(&mut app, "/delete carol"), []);
        assert_eq!(app.confirming, None);
        assert_eq!(
            app.flash,
            Some(("carol has no message here to delete".into(), true))
        );
        submit(&mut app, "/delete bob");
        app.message_deleted(RoomId(1), 2);
        assert_eq!(key(&mut app, KeyCode::Char('y')), [], "deleted meanwhile");
        assert_eq!(
            app.flash,
            Some(("Bob's message is deleted already".into(), false))
        );
        // Offline, y leaves it waiting.
        submit(&mut app, "/delete bob");
        assert_eq!(app.deleting().map(|d| d.seq), Some(1));
        app.disconnected("lost".into(), 0);
        assert_eq!(key(&mut app, KeyCode::Char('y')), []);
        assert!(app.deleting().is_some());
    }

    /// `/delete` alone picks my newest message and asks as `/delete NAME` does; Esc keeps it.
    #[test]
    fn delete_alone_asks_about_my_newest_message_first() {
        let mut app = moderator_app();
        assert_eq!(submit(&mut app, "/delete"), [], "nothing before y");
        let deleting = app.deleting().cloned().expect("waiting for y");
        assert_eq!(
            (
                deleting.seq,
                deleting.text.as_str(),
                deleting.whose().as_str()
            ),
            (3, "please don't", "your")
        );
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.confirming, None, "Esc keeps it");
        assert_eq!(key(&mut app, KeyCode::Enter), []);
        submit(&mut app, "/delete");
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Action::DeleteMessage {
                room: RoomId(1),
                seq: 3
            }]
        );
    }

    /// With no message of mine loaded here (bob's are), `/delete` says so and asks nothing.
    #[test]
    fn delete_alone_with_nothing_of_mine_says_so() {
        let mut app = moderator_app();
        app.message_deleted(RoomId(1), 3);
        assert_eq!(submit(&mut app, "/delete"), []);
        assert_eq!(app.confirming, None);
        assert_eq!(
            app.flash,
            Some(("you have no message here to delete".into(), true))
        );
        assert_eq!(key(&mut app, KeyCode::Enter), [], "Enter deletes nothing");
    }
}
