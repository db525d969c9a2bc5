//! How messages, rooms and users are printed: plain text for people, or one JSON object per line
//! for programs (`--json`).

use chatroom_protocol::{
    Message, MessageKind, PresenceStatus, RoomKind, RoomSummary, SentMessage, UnixMillis,
    UserPresence,
};
use serde_json::{Value, json};

/// `2026-11-21T20:30:05Z` for a Unix time in milliseconds.
pub fn utc_timestamp(ms: UnixMillis) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn kind_name(kind: &MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::System => "system",
        MessageKind::File(_) => "file",
        MessageKind::Deleted => "deleted",
    }
}

/// One line for a person: `[time] #room <sender> text`.
pub fn message_line(room: &str, m: &Message) -> String {
    let sender = match m.kind {
        MessageKind::Text | MessageKind::File(_) => format!("<{}>", m.sender_name),
        MessageKind::System | MessageKind::Deleted => "*".to_string(),
    };
    format!("[{}] #{room} {sender} {}", utc_timestamp(m.ts), m.text)
}

/// One JSON object for a program.
pub fn message_json(room: &str, m: &Message) -> Value {
    json!({
        "kind": kind_name(&m.kind),
        "room": room,
        "room_id": m.room.0,
        "seq": m.seq,
        "id": m.id.0,
        "from": m.sender_name,
        "from_id": m.sender.0,
        "text": m.text,
        "ts": m.ts,
    })
}

/// The acknowledgement of a sent message.
pub fn sent_json(room: &str, sent: &SentMessage) -> Value {
    json!({ "kind": "sent", "room": room, "room_id": sent.room.0, "seq": sent.seq, "id": sent.id.0, "ts": sent.ts })
}

fn room_kind(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Public => "public",
        RoomKind::Private => "private",
        RoomKind::Direct => "direct",
    }
}

/// A room for a person.
pub fn room_line(r: &RoomSummary) -> String {
    let name = match r.kind {
        RoomKind::Direct => format!("@{}", r.name),
        _ => format!("#{}", r.name),
    };
    let mut line = format!(
        "{name:<24} {:<8} {:>4} members",
        room_kind(r.kind),
        r.member_count
    );
    if r.unread > 0 {
        line.push_str(&format!("  {} unread", r.unread));
    }
    if r.mentions > 0 {
        line.push_str(&format!("  {} mentions", r.mentions));
    }
    if !r.topic.is_empty() {
        line.push_str(&format!("  — {}", r.topic));
    }
    line
}

/// A room for a program.
pub fn room_json(r: &RoomSummary) -> Value {
    json!({
        "kind": "room",
        "id": r.id.0,
        "room_kind": room_kind(r.kind),
        "name": r.name,
        "topic": r.topic,
        "members": r.member_count,
        "latest_seq": r.latest_seq,
        "last_read_seq": r.last_read_seq,
        "unread": r.unread,
        "mentions": r.mentions,
    })
}

fn status_name(status: PresenceStatus) -> &'static str {
    match status {
        PresenceStatus::Online => "online",
        PresenceStatus::Away => "away",
        PresenceStatus::Offline => "offline",
    }
}

/// A user for a person.
pub fn user_line(u: &UserPresence) -> String {
    let mut line = format!("{:<24} {:<8}", u.user.username, status_name(u.status));
    if u.user.is_admin {
        line.push_str(" admin");
    }
    if let Some(message) = &u.status_message {
        line.push_str(&format!("  ({message})"));
    }
    line
}

/// A user for a program.
pub fn user_json(u: &UserPresence) -> Value {
    json!({
        "kind": "user",
        "id": u.user.id.0,
        "name": u.user.username,
        "status": status_name(u.status),
        "status_message": u.status_message,
        "admin": u.user.is_admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_protocol::{MessageId, RoomId, UserId};

    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_295_405_123), "2026-11-21T21:10:05Z");
    }

    #[test]
    fn messages_print_for_people_and_programs() {
        let m = Message {
            id: MessageId(9),
            room: RoomId(1),
            seq: 4,
            sender: UserId(2),
            sender_name: "张伟".into(),
            ts: 0,
            kind: MessageKind::Text,
            text: "你好 \"world\"".into(),
        };
        assert_eq!(
            message_line("public", &m),
            "[1970-01-01T00:00:00Z] #public <张伟> 你好 \"world\""
        );
        let json = message_json("public", &m).to_string();
        let back: Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(back["from"], "张伟");
        assert_eq!(back["seq"], 4);
        assert_eq!(back["text"], "你好 \"world\"");
        assert_eq!(back["kind"], "text");
    }
}
