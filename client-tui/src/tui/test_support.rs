//! Fixtures for the unit tests of the commands (`/edit`, `/delete`, `/mute`, `/purge`, `/user`):
//! me (user 1) logged in, public rooms as the server lists them, messages in room 1, and a line
//! typed or a key pressed.

use chatroom_protocol::{
    HistoryPage, Message, MessageId, MessageKind, RoomId, RoomKind, RoomRole, RoomSummary, Seq,
    UserId, UserSummary,
};

use super::app::{Action, App};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Types `line` into the input and presses Enter.
pub(super) fn run(app: &mut App, line: &str) -> Vec<Action> {
    app.input.set_text(line);
    app.submit_input()
}

/// Presses `code` with no modifier.
pub(super) fn key(app: &mut App, code: KeyCode) -> Vec<Action> {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Message `seq` of room 1 from `sender` (id, name). Its time is `seq` seconds: these tests
/// never look at it.
pub(super) fn message(seq: Seq, sender: (u64, &str), kind: MessageKind, text: &str) -> Message {
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

/// Logged in as `me`, user 1, not an admin; no rooms yet.
pub(super) fn app_as_me() -> App {
    let mut app = App::new("h:1", None);
    app.logged_in(UserSummary {
        id: UserId(1),
        username: "me".into(),
        is_admin: false,
    });
    app
}

/// A public room of two members where I am `my_role`, read up to its newest message.
pub(super) fn public_room(id: u64, name: &str, latest_seq: Seq, my_role: RoomRole) -> RoomSummary {
    RoomSummary {
        id: RoomId(id),
        kind: RoomKind::Public,
        name: name.into(),
        topic: String::new(),
        member_count: 2,
        latest_seq,
        last_read_seq: latest_seq,
        unread: 0,
        mentions: 0,
        my_role: Some(my_role),
    }
}

/// Loads `messages` as the whole history of room 1.
pub(super) fn load_history(app: &mut App, messages: Vec<Message>) {
    app.history_loaded(
        HistoryPage {
            room: RoomId(1),
            messages,
            has_more: false,
        },
        false,
    );
}
