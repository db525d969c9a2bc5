//! Rooms that show up through a live message before I know of them.
//!
//! The server tells a new member about a room (`RoomUpdated`) only after adding them, so a
//! message posted in between (someone opens a direct chat with me, or invites me, and writes
//! at once) can come first. Such a message is held, the room is fetched (one request per
//! room, for a bounded number of rooms), and once the room is known, from the fetch or from
//! the server's own announcement, the held messages go in as if they had just arrived:
//! shown, and counted unread.

use std::collections::BTreeMap;

use chatroom_protocol::{Event, Message, RoomId, RoomInfo};

use super::app::{Action, App};

/// Most rooms fetched at once because of a message; messages for more wait for the next room
/// list (after a reconnect), which has them in the history.
const MAX_ARRIVING_ROOMS: usize = 16;
/// Most messages held for one room; older ones are in its history.
const MAX_HELD_PER_ROOM: usize = 64;

/// Live messages for rooms not known yet, oldest first, by room.
#[derive(Clone, Debug, Default)]
pub struct Arrivals {
    held: BTreeMap<RoomId, Vec<Message>>,
}

impl Arrivals {
    /// Whether a room is being fetched because of a message.
    pub fn awaits(&self, room: RoomId) -> bool {
        self.held.contains_key(&room)
    }
}

impl App {
    /// A live message for a room I do not know: held, and the room fetched unless it is being
    /// fetched already.
    pub(super) fn hold_for_unknown_room(&mut self, message: Message) -> Vec<Action> {
        let room = message.room;
        if let Some(held) = self.arrivals.held.get_mut(&room) {
            if held.len() >= MAX_HELD_PER_ROOM {
                held.remove(0);
            }
            held.push(message);
            return Vec::new();
        }
        if self.arrivals.held.len() >= MAX_ARRIVING_ROOMS {
            tracing::info!(
                room = room.0,
                "too many unknown rooms at once; message not shown"
            );
            return Vec::new();
        }
        self.arrivals.held.insert(room, vec![message]);
        vec![Action::FetchRoom(room)]
    }

    /// The held messages of a room that is known now, applied as live ones.
    pub(super) fn release_held(&mut self, room: RoomId) -> Vec<Action> {
        let Some(held) = self.arrivals.held.remove(&room) else {
            return Vec::new();
        };
        held.into_iter()
            .flat_map(|message| self.on_event(Event::Message(message)))
            .collect()
    }

    /// A room fetched because of a message arrived: it is added with its members and the held
    /// messages, unless the server's announcement added it first (then its members are news).
    pub fn room_fetched(&mut self, info: RoomInfo) -> Vec<Action> {
        let id = info.room.id;
        if !self.rooms.contains_key(&id) && !self.arrivals.awaits(id) {
            // Asked for on a connection since lost: the room list after the reconnect decides.
            return Vec::new();
        }
        let mut actions = Vec::new();
        if !self.rooms.contains_key(&id) {
            actions.extend(self.on_event(Event::RoomUpdated(info.room)));
        }
        self.members_loaded(id, info.members);
        actions.extend(self.release_held(id));
        actions
    }

    /// A room could not be fetched (I am no longer in it, or the connection went): its held
    /// messages go; its history has them.
    pub fn room_fetch_failed(&mut self, room: RoomId) {
        if self.arrivals.held.remove(&room).is_some() {
            tracing::info!(room = room.0, "cannot fetch a room a message came from");
        }
    }

    /// The connection dropped: the room list after the reconnect has every room.
    pub(super) fn forget_arrivals(&mut self) {
        self.arrivals.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::test_support::{app_as_me, message, public_room};
    use chatroom_protocol::{MessageKind, RoomKind, RoomRole};

    fn in_public() -> App {
        let mut app = app_as_me();
        app.rooms_loaded(vec![public_room(1, "public", 0, RoomRole::Member)]);
        app
    }

    fn direct_with_bob(latest_seq: u64, unread: u32) -> RoomInfo {
        let mut room = public_room(7, "bob", latest_seq, RoomRole::Member);
        room.kind = RoomKind::Direct;
        room.unread = unread;
        room.last_read_seq = latest_seq - u64::from(unread);
        RoomInfo {
            room,
            members: Vec::new(),
        }
    }

    fn from_bob(seq: u64, text: &str) -> Message {
        Message {
            room: RoomId(7),
            ..message(seq, (2, "bob"), MessageKind::Text, text)
        }
    }

    #[test]
    fn a_message_for_an_unknown_room_fetches_it_once_and_lands_there_unread() {
        let mut app = in_public();
        assert_eq!(
            app.on_event(Event::Message(from_bob(1, "hi"))),
            [Action::FetchRoom(RoomId(7))]
        );
        assert_eq!(
            app.on_event(Event::Message(from_bob(2, "you there?"))),
            [],
            "asked for once"
        );
        // The server's answer counts the first message; the second came after it.
        app.room_fetched(direct_with_bob(1, 1));
        let room = &app.rooms[&RoomId(7)];
        assert_eq!(room.timeline.len(), 2);
        assert_eq!((room.summary.unread, room.summary.latest_seq), (2, 2));
        assert_eq!(app.current, Some(RoomId(1)), "I stay where I am");
        // The server's announcement, taken before bob wrote and overtaken by his messages,
        // does not set the counts back.
        app.on_event(Event::RoomUpdated(direct_with_bob(0, 0).room));
        let room = &app.rooms[&RoomId(7)];
        assert_eq!((room.summary.unread, room.summary.latest_seq), (2, 2));
    }

    #[test]
    fn the_servers_announcement_first_lets_the_held_messages_in() {
        let mut app = in_public();
        app.on_event(Event::Message(from_bob(1, "hi")));
        app.on_event(Event::RoomUpdated(direct_with_bob(0, 0).room));
        assert_eq!(app.rooms[&RoomId(7)].summary.unread, 1);
        // The fetch's answer, later, adds nothing twice.
        app.room_fetched(direct_with_bob(1, 1));
        let room = &app.rooms[&RoomId(7)];
        assert_eq!((room.timeline.len(), room.summary.unread), (1, 1));
    }

    #[test]
    fn held_messages_and_rooms_are_bounded_and_a_lost_connection_forgets_them() {
        let mut app = in_public();
        for seq in 1..=(MAX_HELD_PER_ROOM as u64 + 5) {
            app.on_event(Event::Message(from_bob(seq, "spam")));
        }
        assert_eq!(app.arrivals.held[&RoomId(7)].len(), MAX_HELD_PER_ROOM);
        assert_eq!(app.arrivals.held[&RoomId(7)][0].seq, 6, "the oldest go");
        for room in 100..200 {
            let actions = app.on_event(Event::Message(Message {
                room: RoomId(room),
                ..from_bob(1, "x")
            }));
            assert!(actions.len() <= 1);
        }
        assert_eq!(app.arrivals.held.len(), MAX_ARRIVING_ROOMS);
        app.room_fetch_failed(RoomId(100));
        assert!(!app.arrivals.awaits(RoomId(100)));
        app.disconnected("lost".into(), 0);
        assert!(!app.arrivals.awaits(RoomId(7)));
        app.room_fetched(direct_with_bob(1, 1));
        assert!(
            !app.rooms.contains_key(&RoomId(7)),
            "an answer from before the drop waits for the new room list"
        );
    }
}
