//! How messages, rooms and users are printed: plain text for people, or one JSON object per line
//! for programs (`--json`).

use chatroom_protocol::transfer::{Downloaded, Uploaded, hex};
use chatroom_protocol::{
    FileInfo, FileRef, Message, MessageKind, PresenceStatus, RoomKind, RoomSummary, SentMessage,
    UnixMillis, UserPresence,
};
use serde_json::{Value, json};
use std::time::Duration;

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

/// A size for people: `512 B`, `1.5 KiB`, `12.3 MiB`, `1.02 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit >= 1 && value < 10.0 {
        format!("{value:.2} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A rate for people: `3.4 MiB/s`.
pub fn human_rate(bytes_per_sec: f64) -> String {
    format!("{}/s", human_bytes(bytes_per_sec.max(0.0) as u64))
}

/// A duration for people, rounded up (an ETA of 0.3 s reads `1s`): `42s`, `3m05s`, `1h02m`.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// A posted file in one line: `📎 report.pdf · 1.2 MiB · alice`.
pub fn file_ref_line(file: &FileRef, uploader: &str) -> String {
    format!("📎 {} · {} · {uploader}", file.name, human_bytes(file.size))
}

/// One line for a person: `[time] #room <sender> text`; a file shows as
/// `<sender> 📎 name · size · sender (file ID)`, a deleted message as `* (deleted)`.
pub fn message_line(room: &str, m: &Message) -> String {
    let body = match &m.kind {
        MessageKind::Text | MessageKind::System => m.text.clone(),
        MessageKind::File(file) => {
            format!("{} (file {})", file_ref_line(file, &m.sender_name), file.id)
        }
        MessageKind::Deleted => "(deleted)".to_string(),
    };
    let sender = match m.kind {
        MessageKind::Text | MessageKind::File(_) => format!("<{}>", m.sender_name),
        MessageKind::System | MessageKind::Deleted => "*".to_string(),
    };
    format!("[{}] #{room} {sender} {body}", utc_timestamp(m.ts))
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
        "file": match &m.kind {
            MessageKind::File(f) => json!({
                "id": f.id.0,
                "name": f.name,
                "size": f.size,
                "sha256": hex(&f.sha256),
            }),
            _ => Value::Null,
        },
    })
}

/// A stored file for a person: id, name, size, uploader, time.
pub fn file_line(f: &FileInfo) -> String {
    format!(
        "{:>6}  {:<32} {:>10}  {:<16} {}",
        f.id.0,
        f.name,
        human_bytes(f.size),
        f.uploader_name,
        utc_timestamp(f.ts)
    )
}

/// A stored file for a program.
pub fn file_json(room: &str, f: &FileInfo) -> Value {
    json!({
        "kind": "file",
        "id": f.id.0,
        "name": f.name,
        "size": f.size,
        "sha256": hex(&f.sha256),
        "room": room,
        "room_id": f.room.0,
        "seq": f.seq,
        "uploader": f.uploader_name,
        "uploader_id": f.uploader.0,
        "ts": f.ts,
    })
}

/// A finished upload for a person.
pub fn uploaded_line(room: &str, up: &Uploaded) -> String {
    let mut line = format!(
        "uploaded {} ({}) to {room} as file {}",
        up.file.name,
        human_bytes(up.file.size),
        up.file.id
    );
    if up.bytes_sent == 0 && up.file.size > 0 {
        line.push_str("; the server already had it");
    } else if up.resumed_from > 0 {
        line.push_str(&format!("; resumed at {}", human_bytes(up.resumed_from)));
    }
    line
}

/// A finished upload for a program.
pub fn uploaded_json(room: &str, up: &Uploaded) -> Value {
    let mut value = file_json(room, &up.file);
    value["kind"] = json!("uploaded");
    value["bytes_sent"] = json!(up.bytes_sent);
    value["resumed_from"] = json!(up.resumed_from);
    value
}

/// A finished download for a program.
pub fn downloaded_json(down: &Downloaded) -> Value {
    json!({
        "kind": "downloaded",
        "id": down.file.id.0,
        "name": down.file.name,
        "size": down.file.size,
        "sha256": hex(&down.file.sha256),
        "path": down.path.to_string_lossy(),
        "bytes_fetched": down.bytes_fetched,
        "resumed_from": down.resumed_from,
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
        assert!(back["file"].is_null());
    }

    #[test]
    fn files_and_deleted_messages_print() {
        let file = FileRef {
            id: chatroom_protocol::FileId(7),
            name: "report.pdf".into(),
            size: 1_572_864,
            sha256: [0xab; 32],
        };
        let mut m = Message {
            id: MessageId(9),
            room: RoomId(1),
            seq: 4,
            sender: UserId(2),
            sender_name: "alice".into(),
            ts: 0,
            kind: MessageKind::File(Box::new(file)),
            text: "report.pdf".into(),
        };
        assert_eq!(
            message_line("public", &m),
            "[1970-01-01T00:00:00Z] #public <alice> 📎 report.pdf · 1.50 MiB · alice (file 7)"
        );
        let json = message_json("public", &m);
        assert_eq!(json["kind"], "file");
        assert_eq!(json["file"]["id"], 7);
        assert_eq!(json["file"]["sha256"], "ab".repeat(32));
        m.kind = MessageKind::Deleted;
        m.text.clear();
        assert_eq!(
            message_line("public", &m),
            "[1970-01-01T00:00:00Z] #public * (deleted)"
        );
    }

    #[test]
    fn sizes_rates_and_durations_read_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.00 MiB");
        assert_eq!(human_bytes(200 * 1024 * 1024), "200.0 MiB");
        assert_eq!(human_bytes(1 << 30), "1.00 GiB");
        assert_eq!(human_rate(3.5 * 1024.0 * 1024.0), "3.50 MiB/s");
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_millis(300)), "1s");
        assert_eq!(human_duration(Duration::ZERO), "0s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h02m");
    }
}
