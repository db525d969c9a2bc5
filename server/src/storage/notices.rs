//! Room notices: the `System` messages the writer stores about what happens to a room — joins,
//! leaves, kicks, bans, mutes, role changes, topic changes — so that someone who was away reads
//! them in the history, not only as live events while they were connected.
//!
//! A notice is stored in the same transaction as the change it describes, takes the room's next
//! `seq` like any message, and is broadcast after the commit (see
//! [`super::writer::Writer::set_notice_hook`]). Notices never count as unread and mention
//! nobody: they are the room's log, not conversation. Their text is English, written here, so
//! every client (and `chatroom history`) shows the same words.

use chatroom_protocol::{Message, MessageKind, RoomId, RoomRole, Seq, UnixMillis, UserId};
use rusqlite::{Connection, OptionalExtension, params};

use super::StorageError;

/// The seqs and notices one op took: the seqs are published once the transaction commits, the
/// notices broadcast after it.
#[derive(Debug, Default)]
pub(crate) struct Posted {
    /// The newest seq taken in the first room written to: most ops write to one room at most,
    /// and a message must not cost the writer an allocation for it.
    first: Option<(RoomId, Seq)>,
    /// The same for every other room (an account deletion tells each of its rooms).
    others: Vec<(RoomId, Seq)>,
    /// The notices it stored.
    pub notices: Vec<Message>,
}

impl Posted {
    /// Records that a message took `seq` in `room`.
    pub fn took(&mut self, room: RoomId, seq: Seq) {
        let newest = match &mut self.first {
            None => {
                self.first = Some((room, seq));
                return;
            }
            Some((r, newest)) if *r == room => newest,
            Some(_) => match self.others.iter_mut().find(|(r, _)| *r == room) {
                Some((_, newest)) => newest,
                None => {
                    self.others.push((room, seq));
                    return;
                }
            },
        };
        *newest = (*newest).max(seq);
    }

    /// The newest seq taken in each room written to.
    pub fn seqs(&self) -> impl Iterator<Item = (RoomId, Seq)> + '_ {
        self.first.into_iter().chain(self.others.iter().copied())
    }
}

/// Stores a notice in `room`, sent by `actor` (whose name it reads), with the seq after the
/// room's newest message in the open transaction.
pub(crate) fn post(
    conn: &Connection,
    posted: &mut Posted,
    room: RoomId,
    actor: UserId,
    text: String,
    now: i64,
) -> Result<(), StorageError> {
    // Read from the table, not the writer's counters: the offline admin commands have none,
    // and the rows of earlier ops in this transaction are visible here.
    let seq = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE room_id = ?1")?
        .query_row(params![room.0 as i64], |r| r.get::<_, i64>(0))? as Seq;
    let sender_name = name_of(conn, actor)?;
    let id = super::ops::messages::insert_message_row(
        conn,
        room,
        seq,
        actor,
        &sender_name,
        now,
        &MessageKind::System,
        &text,
    )?;
    posted.took(room, seq);
    posted.notices.push(Message {
        id,
        room,
        seq,
        sender: actor,
        sender_name,
        ts: now as UnixMillis,
        kind: MessageKind::System,
        text,
    });
    Ok(())
}

/// An account's name; empty if it is gone (a notice is still worth storing).
pub(crate) fn name_of(conn: &Connection, user: UserId) -> Result<String, StorageError> {
    Ok(conn
        .prepare_cached("SELECT name FROM users WHERE id = ?1")?
        .query_row(params![user.0 as i64], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// `alice joined`, or `bob added alice`.
pub(crate) fn joined(who: &str, by: Option<&str>) -> String {
    match by {
        Some(by) => format!("{by} added {who}"),
        None => format!("{who} joined"),
    }
}

/// `alice left`, or `bob removed alice: reason`; then who owns the room now, if that changed.
pub(crate) fn left(
    who: &str,
    by: Option<&str>,
    reason: Option<&str>,
    heir: Option<&str>,
) -> String {
    let mut text = match by {
        Some(by) => format!("{by} removed {who}"),
        None => format!("{who} left"),
    };
    push_reason(&mut text, reason);
    push_heir(&mut text, heir);
    text
}

/// `bob banned alice: reason`.
pub(crate) fn banned(who: &str, by: &str, reason: Option<&str>) -> String {
    let mut text = format!("{by} banned {who}");
    push_reason(&mut text, reason);
    text
}

/// `bob lifted the ban on alice`.
pub(crate) fn unbanned(who: &str, by: &str) -> String {
    format!("{by} lifted the ban on {who}")
}

/// `bob muted alice for 10 min: reason`, or `… until unmuted`.
pub(crate) fn muted(
    who: &str,
    by: &str,
    until: Option<UnixMillis>,
    now: UnixMillis,
    reason: Option<&str>,
) -> String {
    let mut text = match until {
        Some(until) => format!("{by} muted {who} for {}", for_how_long(until, now)),
        None => format!("{by} muted {who} until unmuted"),
    };
    push_reason(&mut text, reason);
    text
}

/// `bob unmuted alice`.
pub(crate) fn unmuted(who: &str, by: &str) -> String {
    format!("{by} unmuted {who}")
}

/// `bob made alice a moderator`, or `bob handed the room to alice`.
pub(crate) fn role_set(who: &str, by: &str, role: RoomRole) -> String {
    match role {
        RoomRole::Owner => format!("{by} handed the room to {who}"),
        RoomRole::Moderator => format!("{by} made {who} a moderator"),
        RoomRole::Member => format!("{by} made {who} a member"),
    }
}

/// `alice renamed the room from old to new`.
pub(crate) fn renamed(by: &str, old: &str, new: &str) -> String {
    format!("{by} renamed the room from {old} to {new}")
}

/// `bob set the topic: …`, or `bob cleared the topic`.
pub(crate) fn topic_set(by: &str, topic: &str) -> String {
    if topic.is_empty() {
        format!("{by} cleared the topic")
    } else {
        format!("{by} set the topic: {topic}")
    }
}

/// `alice's account was deleted`; then who owns the room now, if that changed.
pub(crate) fn account_deleted(who: &str, heir: Option<&str>) -> String {
    let mut text = format!("{who}'s account was deleted");
    push_heir(&mut text, heir);
    text
}

fn push_reason(text: &mut String, reason: Option<&str>) {
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        text.push_str(": ");
        text.push_str(reason);
    }
}

fn push_heir(text: &mut String, heir: Option<&str>) {
    if let Some(heir) = heir {
        text.push_str("; ");
        text.push_str(heir);
        text.push_str(" is now the owner");
    }
}

/// How long until `until`, for people: `42 s`, `5 min`, `3 h 20 min`, `2 days`.
pub(crate) fn for_how_long(until: UnixMillis, now: UnixMillis) -> String {
    chatroom_protocol::duration_words(until.saturating_sub(now).div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_seq_of_each_room_is_kept() {
        let mut posted = Posted::default();
        assert_eq!(posted.seqs().count(), 0);
        posted.took(RoomId(1), 5);
        posted.took(RoomId(2), 3);
        posted.took(RoomId(1), 4);
        posted.took(RoomId(2), 7);
        posted.took(RoomId(3), 1);
        assert_eq!(
            posted.seqs().collect::<Vec<_>>(),
            [(RoomId(1), 5), (RoomId(2), 7), (RoomId(3), 1)]
        );
    }

    #[test]
    fn how_long_reads_like_people_say_it() {
        let now = 1_000_000;
        let after = |secs: u64| for_how_long(now + secs * 1000, now);
        assert_eq!(for_how_long(now + 1, now), "1 s");
        assert_eq!(after(59), "59 s");
        assert_eq!(after(60), "1 min");
        assert_eq!(after(61), "1 min 1 s");
        assert_eq!(after(90), "1 min 30 s");
        assert_eq!(after(599), "9 min 59 s");
        assert_eq!(after(601), "11 min");
        assert_eq!(after(3600), "1 h");
        assert_eq!(after(3600 + 20 * 60), "1 h 20 min");
        assert_eq!(after(3659), "1 h 1 min", "rounded up, as above an hour");
        assert_eq!(after(86_399), "1 day");
        assert_eq!(after(86_400), "1 day");
        assert_eq!(after(3 * 86_400 - 5), "3 days");
        assert_eq!(after(36 * 3600), "1 day 12 h", "not rounded to 2 days");
        assert_eq!(after(2 * 86_400 + 1), "2 days 1 h");
        assert_eq!(for_how_long(now - 5, now), "0 s");
    }

    #[test]
    fn notices_name_who_did_what_and_why() {
        assert_eq!(joined("alice", None), "alice joined");
        assert_eq!(joined("alice", Some("bob")), "bob added alice");
        assert_eq!(left("alice", None, None, None), "alice left");
        assert_eq!(
            left("alice", None, None, Some("carol")),
            "alice left; carol is now the owner"
        );
        assert_eq!(
            left("alice", Some("bob"), Some("spam"), None),
            "bob removed alice: spam"
        );
        assert_eq!(
            left("alice", Some("bob"), Some(""), None),
            "bob removed alice"
        );
        assert_eq!(banned("alice", "bob", None), "bob banned alice");
        assert_eq!(unbanned("alice", "bob"), "bob lifted the ban on alice");
        assert_eq!(
            muted("alice", "bob", Some(10 * 60_000), 0, Some("calm down")),
            "bob muted alice for 10 min: calm down"
        );
        assert_eq!(
            muted("alice", "bob", None, 0, None),
            "bob muted alice until unmuted"
        );
        assert_eq!(unmuted("alice", "bob"), "bob unmuted alice");
        assert_eq!(
            role_set("alice", "bob", RoomRole::Owner),
            "bob handed the room to alice"
        );
        assert_eq!(
            role_set("alice", "bob", RoomRole::Moderator),
            "bob made alice a moderator"
        );
        assert_eq!(
            role_set("alice", "bob", RoomRole::Member),
            "bob made alice a member"
        );
        assert_eq!(topic_set("bob", "ship it"), "bob set the topic: ship it");
        assert_eq!(
            renamed("alice", "dev", "backend"),
            "alice renamed the room from dev to backend"
        );
        assert_eq!(topic_set("bob", ""), "bob cleared the topic");
        assert_eq!(
            account_deleted("alice", Some("carol")),
            "alice's account was deleted; carol is now the owner"
        );
    }
}
