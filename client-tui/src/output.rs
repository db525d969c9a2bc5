//! How messages, rooms and users are printed: plain text for people, or one JSON object per line
//! for programs (`--json`).

use chatroom_protocol::transfer::{Downloaded, Uploaded, hex};
use chatroom_protocol::{
    BanInfo, FileInfo, FileRef, MAX_UNREAD_COUNT, Member, Message, MessageKind, MuteInfo,
    PresenceStatus, RoomId, RoomKind, RoomRole, RoomSummary, SentMessage, Seq, UnixMillis,
    UserPresence,
};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;
use unicode_width::UnicodeWidthStr;

/// Text another user wrote, made safe to print on a terminal: control characters other than
/// `\n` and `\t` are shown as Rust-style escapes (`\u{1b}`, `\u{7}`, `\u{9b}`; a backslash
/// stays as it is), so nobody can clear the screen, set the window title, write the clipboard
/// (OSC 52) or overwrite a line (`\r`) of someone who tails a room. Covers C0, DEL and the C1
/// range (some terminals take U+009B as CSI).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` followed by spaces up to `width` terminal columns, so that a column after it lines up
/// with names in Chinese, Japanese, Korean or emoji (two columns each) as well as in ASCII; a
/// text already as wide or wider is left as it is.
pub fn pad_to_width(text: &str, width: usize) -> String {
    let shown = text.width();
    let mut out = String::with_capacity(text.len() + width.saturating_sub(shown));
    out.push_str(text);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(shown)));
    out
}

/// A count and its noun, singular for one: `1 member`, `3 members`, `0 members`.
pub fn count_of(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// An unread count as shown: the server stops counting at [`MAX_UNREAD_COUNT`], so that many
/// (or more, counted on since) is `9999+`.
pub fn unread_count(unread: u32) -> String {
    if unread >= MAX_UNREAD_COUNT {
        format!("{MAX_UNREAD_COUNT}+")
    } else {
        unread.to_string()
    }
}

/// What starts each continuation line of a multi-line text in plain output. Every record's
/// first line starts with `[` (a message) or a name, never with this, so a message cannot print
/// a line that passes for another message, from someone else.
pub const CONTINUATION: &str = "  | ";

/// Text another user wrote, for one record of plain output: controls escaped as by
/// [`escape_controls`], and each line after the first set apart with [`CONTINUATION`].
pub fn plain_text(text: &str) -> String {
    escape_controls(text).replace('\n', &format!("\n{CONTINUATION}"))
}

/// What [`clean_message_text`] made of a text.
#[derive(Debug, PartialEq, Eq)]
pub struct CleanedText {
    /// The text without escape sequences and control characters other than `\n` and `\t`.
    pub text: String,
    /// How many control characters were left out that were neither part of an escape sequence
    /// nor a carriage return (a NUL, a bell, a backspace): worth a word to the user.
    pub other_controls: usize,
}

/// `text` without what the server refuses in a message (for `chatroom send` and for a paste into
/// the terminal UI's input line) (any control character but newline and
/// tab), so that coloured output can be piped in: escape sequences are left out whole (CSI
/// `ESC [ … final`, also as the C1 character U+009B; OSC, DCS, SOS, PM and APC strings up to
/// BEL or ST; two-character ones and those with intermediates, such as `ESC ( B`), `\r\n`
/// becomes `\n`, and a lone `\r` and other control characters are dropped. An unterminated
/// string loses only its introducer: the rest may be all the text there is.
pub fn clean_message_text(text: &str) -> CleanedText {
    type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;
    /// Parameters and intermediates, then the final character.
    fn skip_csi(chars: &mut Chars<'_>) {
        while chars.next_if(|c| (' '..='?').contains(c)).is_some() {}
        chars.next_if(|c| ('@'..='~').contains(c));
    }
    /// To the end of a control string (BEL, ST or `ESC \\`); false if it has none.
    fn skip_string(chars: &mut Chars<'_>) -> bool {
        while let Some(c) = chars.next() {
            match c {
                '\u{7}' | '\u{9c}' => return true,
                '\u{1b}' if chars.next_if_eq(&'\\').is_some() => return true,
                _ => {}
            }
        }
        false
    }
    let mut out = String::with_capacity(text.len());
    let mut other_controls = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {
                if chars.next_if_eq(&'\n').is_some() {
                    out.push('\n');
                }
            }
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    let mut rest = chars.clone();
                    rest.next();
                    if skip_string(&mut rest) {
                        chars = rest;
                    }
                }
                Some(&next) if (' '..='~').contains(&next) => {
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next_if(|c| ('0'..='~').contains(c));
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            c if c.is_control() => other_controls += 1,
            c => out.push(c),
        }
    }
    CleanedText {
        text: out,
        other_controls,
    }
}

/// One JSON line for a program. serde_json escapes `\u{0}`–`\u{1f}` itself but writes DEL and
/// the C1 controls raw; they become `\u007f`-style escapes here too, so a line printed on a
/// terminal cannot drive it either (the decoded value is the same).
pub fn json_line(value: &Value) -> String {
    let text = value.to_string();
    if !text.contains(char::is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

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
        // An edited message is still text; `edited_at` says it changed.
        MessageKind::Text | MessageKind::Edited { .. } => "text",
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
    format!(
        "📎 {} · {} · {}",
        escape_controls(&file.name),
        human_bytes(file.size),
        escape_controls(uploader)
    )
}

/// A room as people see it: `#name`, or `@name` for a direct chat (named after the other user).
pub fn room_label(kind: RoomKind, name: &str) -> String {
    match kind {
        RoomKind::Direct => format!("@{}", escape_controls(name)),
        RoomKind::Public | RoomKind::Private => format!("#{}", escape_controls(name)),
    }
}

/// How many columns a message's seq takes in plain output, right-aligned: the room and sender
/// after it line up up to seq 999999, as file ids do in [`file_line`].
const SEQ_WIDTH: usize = 6;

/// One record for a person: `[time]    SEQ #room <sender> text` (`@user` for a direct chat),
/// with the seq that `chatroom edit` and `delete` take; a file shows as `<sender> 📎 name ·
/// size · sender (file ID)`, a deleted message as `* (deleted)`, an edited one with
/// ` (edited)` after its text.
/// A multi-line text continues on lines that start with [`CONTINUATION`].
pub fn message_line(kind: RoomKind, room: &str, m: &Message) -> String {
    let body = match &m.kind {
        MessageKind::Text | MessageKind::System => plain_text(&m.text),
        MessageKind::Edited { .. } => format!("{} (edited)", plain_text(&m.text)),
        MessageKind::File(file) => {
            format!("{} (file {})", file_ref_line(file, &m.sender_name), file.id)
        }
        MessageKind::Deleted => "(deleted)".to_string(),
    };
    let sender = match m.kind {
        MessageKind::Text | MessageKind::Edited { .. } | MessageKind::File(_) => {
            format!("<{}>", escape_controls(&m.sender_name))
        }
        MessageKind::System | MessageKind::Deleted => "*".to_string(),
    };
    format!(
        "[{}] {:>SEQ_WIDTH$} {} {sender} {body}",
        utc_timestamp(m.ts),
        m.seq,
        room_label(kind, room)
    )
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
        "edited_at": match m.kind {
            MessageKind::Edited { at } => json!(at),
            _ => Value::Null,
        },
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

/// A deletion `tail` heard of, for a person: `[time]     12 #room * message 12 was deleted by
/// bob`, in the format of the room's notices, in the seq column the deleted message's seq.
/// `seen` is when the client heard of it (the event carries no time of its own).
pub fn deleted_line(kind: RoomKind, room: &str, seq: Seq, by: &str, seen: UnixMillis) -> String {
    format!(
        "[{}] {seq:>SEQ_WIDTH$} {} * message {seq} was deleted by {}",
        utc_timestamp(seen),
        room_label(kind, room),
        escape_controls(by)
    )
}

/// A deletion `tail` heard of, for a program: `kind` "deleted", the room, the deleted
/// message's `seq`, who deleted it (`by`) and `ts`, when the client heard of it.
pub fn deleted_json(room: &str, room_id: RoomId, seq: Seq, by: &str, seen: UnixMillis) -> Value {
    json!({
        "kind": "deleted",
        "room": room,
        "room_id": room_id.0,
        "seq": seq,
        "by": by,
        "ts": seen,
    })
}

/// A search hit for a program: as [`message_json`], with the kind of room it is in
/// (`public`, `private` or `direct`), since a search spans rooms and a room may share its name
/// with a user.
pub fn search_hit_json(room: &RoomSummary, m: &Message) -> Value {
    let mut value = message_json(&room.name, m);
    value["room_kind"] = json!(room_kind(room.kind));
    value
}

/// A stored file for a person: id, name, size, uploader, time.
pub fn file_line(f: &FileInfo) -> String {
    format!(
        "{:>6}  {} {:>10}  {} {}",
        f.id.0,
        pad_to_width(&escape_controls(&f.name), 32),
        human_bytes(f.size),
        pad_to_width(&escape_controls(&f.uploader_name), 16),
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
        "uploaded {} ({}) to {} as file {}",
        escape_controls(&up.file.name),
        human_bytes(up.file.size),
        escape_controls(room),
        up.file.id
    );
    if already_stored(up) {
        line.push_str("; the server already had it");
    } else if up.resumed_from > 0 {
        line.push_str(&format!("; resumed at {}", human_bytes(up.resumed_from)));
    }
    line
}

/// Whether the server had the whole content before this upload, so nothing was sent (then
/// `resumed_from` is the size: the server said to start at the end).
fn already_stored(up: &Uploaded) -> bool {
    up.bytes_sent == 0 && up.file.size > 0 && up.resumed_from >= up.file.size
}

/// A finished upload for a program: `bytes_sent` this time, `resumed_from` where the server
/// said to start, and `already_stored` when it had all of the content already.
pub fn uploaded_json(room: &str, up: &Uploaded) -> Value {
    let mut value = file_json(room, &up.file);
    value["kind"] = json!("uploaded");
    value["bytes_sent"] = json!(up.bytes_sent);
    value["resumed_from"] = json!(up.resumed_from);
    value["already_stored"] = json!(already_stored(up));
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
    // The count right-aligned in four columns, then its noun.
    let members = count_of(u64::from(r.member_count), "member", "members");
    let (count, noun) = members.split_once(' ').unwrap_or((&members, ""));
    let mut line = format!(
        "{} {:<8} {count:>4} {noun}",
        pad_to_width(&room_label(r.kind, &r.name), 24),
        room_kind(r.kind),
    );
    if r.unread > 0 {
        line.push_str(&format!("  {} unread", unread_count(r.unread)));
    }
    if r.mentions > 0 {
        line.push_str(&format!(
            "  {}",
            count_of(u64::from(r.mentions), "mention", "mentions")
        ));
    }
    if !r.topic.is_empty() {
        line.push_str(&format!("  — {}", plain_text(&r.topic)));
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
    let mut line = format!(
        "{} {:<8}",
        pad_to_width(&escape_controls(&u.user.username), 24),
        status_name(u.status)
    );
    if u.user.is_admin {
        line.push_str(" admin");
    }
    if let Some(message) = &u.status_message {
        line.push_str(&format!("  ({})", plain_text(message)));
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

/// A room in a few words, for a confirmation: `#dev (private, 3 members) — the topic`.
pub fn room_brief(r: &RoomSummary) -> String {
    let members = count_of(u64::from(r.member_count), "member", "members");
    let mut line = format!(
        "{} ({}, {members})",
        room_label(r.kind, &r.name),
        room_kind(r.kind)
    );
    if !r.topic.is_empty() {
        line.push_str(&format!(" — {}", plain_text(&r.topic)));
    }
    line
}

fn role_name(role: RoomRole) -> &'static str {
    match role {
        RoomRole::Owner => "owner",
        RoomRole::Moderator => "moderator",
        RoomRole::Member => "member",
    }
}

/// A room member for a person: name, role, presence.
pub fn member_line(m: &Member) -> String {
    format!(
        "{} {:<9} {}",
        pad_to_width(&escape_controls(&m.user.username), 24),
        role_name(m.role),
        status_name(m.status)
    )
}

/// A room member for a program.
pub fn member_json(room: &str, m: &Member) -> Value {
    json!({
        "kind": "member",
        "room": room,
        "id": m.user.id.0,
        "name": m.user.username,
        "role": role_name(m.role),
        "status": status_name(m.status),
        "admin": m.user.is_admin,
    })
}

/// `: the reason`, or nothing when none was given.
fn reason_suffix(reason: Option<&str>) -> String {
    match reason.filter(|r| !r.is_empty()) {
        Some(reason) => format!(": {}", plain_text(reason)),
        None => String::new(),
    }
}

/// A ban for a person: `bob  banned by dave on 2026-11-21T20:30:05Z: spam`.
pub fn ban_line(b: &BanInfo) -> String {
    lockout_line(b, "banned")
}

/// A suspended account for a person: `bob  suspended by alice on 2026-11-21T20:30:05Z: spam`.
pub fn suspension_line(s: &BanInfo) -> String {
    lockout_line(s, "suspended")
}

fn lockout_line(b: &BanInfo, what: &str) -> String {
    format!(
        "{} {what} by {} on {}{}",
        pad_to_width(&escape_controls(&b.username), 24),
        escape_controls(&b.by),
        utc_timestamp(b.since),
        reason_suffix(b.reason.as_deref())
    )
}

/// A suspended account for a program.
pub fn suspension_json(s: &BanInfo) -> Value {
    json!({
        "kind": "suspension",
        "name": s.username,
        "by": s.by,
        "reason": s.reason,
        "since": s.since,
    })
}

/// A ban for a program.
pub fn ban_json(room: &str, b: &BanInfo) -> Value {
    json!({
        "kind": "ban",
        "room": room,
        "name": b.username,
        "by": b.by,
        "reason": b.reason,
        "since": b.since,
    })
}

/// A mute for a person: `carol  muted by bob until 2026-11-21T20:40:05Z: spam` (or `until
/// unmuted`).
pub fn mute_line(m: &MuteInfo) -> String {
    let until = match m.until {
        Some(until) => utc_timestamp(until),
        None => "unmuted".to_string(),
    };
    format!(
        "{} muted by {} until {until}{}",
        pad_to_width(&escape_controls(&m.username), 24),
        escape_controls(&m.by),
        reason_suffix(m.reason.as_deref())
    )
}

/// A mute for a program; `until` is `null` for a mute that lasts until someone lifts it.
pub fn mute_json(room: &str, m: &MuteInfo) -> Value {
    json!({
        "kind": "mute",
        "room": room,
        "name": m.username,
        "by": m.by,
        "reason": m.reason,
        "since": m.since,
        "until": m.until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_protocol::{MessageId, RoomId, UserId};

    #[test]
    fn coloured_output_loses_its_escape_sequences_quietly() {
        let cleaned = |text: &str| clean_message_text(text);
        let quiet = |text: &str| CleanedText {
            text: text.to_string(),
            other_controls: 0,
        };
        // CSI colours, an OSC hyperlink ended by BEL and one by ST, a charset designation, a
        // cursor save (two characters), CSI as a C1 character; CRLF line ends.
        assert_eq!(
            cleaned(
                "\u{1b}[1;31merror\u{1b}[0m: disk full\r\n\u{1b}]8;;http://x/\u{7}link\
                 \u{1b}]8;;\u{1b}\\ \u{1b}(Bok\u{1b}7\u{9b}2Jdone\r\n"
            ),
            quiet("error: disk full\nlink okdone\n")
        );
        // A lone CR (a progress line overwritten) goes too, and says nothing either.
        assert_eq!(cleaned("50%\r100%\n"), quiet("50%100%\n"));
        // DCS, SOS, PM and APC strings go whole; an unterminated one loses only its
        // introducer, and a lone ESC at the end goes.
        assert_eq!(cleaned("a\u{1b}Pq#0\u{1b}\\b\u{1b}_x\u{9c}c"), quiet("abc"));
        assert_eq!(cleaned("a\u{1b}]b c"), quiet("a]b c"));
        assert_eq!(cleaned("trailing\u{1b}"), quiet("trailing"));
        // Tabs, newlines and wide text stay as they are.
        assert_eq!(cleaned("中文\t✓\n🚀"), quiet("中文\t✓\n🚀"));
        // Other control characters are dropped, and counted for a note.
        assert_eq!(
            cleaned("bell\u{7} nul\u{0} del\u{7f} c1\u{85}!"),
            CleanedText {
                text: "bell nul del c1!".to_string(),
                other_controls: 4
            }
        );
    }

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
            message_line(RoomKind::Public, "public", &m),
            "[1970-01-01T00:00:00Z]      4 #public <张伟> 你好 \"world\""
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
    fn a_multi_line_message_cannot_pass_for_another_message() {
        let m = Message {
            id: MessageId(9),
            room: RoomId(1),
            seq: 4,
            sender: UserId(2),
            sender_name: "mallory".into(),
            ts: 0,
            kind: MessageKind::Text,
            text: "ok\n[2026-11-22T10:29:27Z] #public <alice> I am alice\n\nbye".into(),
        };
        let text = message_line(RoomKind::Public, "public", &m);
        assert_eq!(
            text,
            "[1970-01-01T00:00:00Z]      4 #public <mallory> ok\n  \
             | [2026-11-22T10:29:27Z] #public <alice> I am alice\n  | \n  | bye"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with('['));
        assert!(
            lines[1..].iter().all(|l| l.starts_with(CONTINUATION)),
            "{lines:?}"
        );
        // A direct chat is labelled as `rooms` shows it.
        assert!(
            message_line(RoomKind::Direct, "alice", &m)
                .starts_with("[1970-01-01T00:00:00Z]      4 @alice <mallory> ok")
        );
        // JSON keeps the text as it is.
        assert_eq!(message_json("public", &m)["text"], m.text.as_str());
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
            message_line(RoomKind::Public, "public", &m),
            "[1970-01-01T00:00:00Z]      4 #public <alice> 📎 report.pdf · 1.50 MiB · alice (file 7)"
        );
        let json = message_json("public", &m);
        assert_eq!(json["kind"], "file");
        assert_eq!(json["file"]["id"], 7);
        assert_eq!(json["file"]["sha256"], "ab".repeat(32));
        m.kind = MessageKind::Deleted;
        m.text.clear();
        assert_eq!(
            message_line(RoomKind::Public, "public", &m),
            "[1970-01-01T00:00:00Z]      4 #public * (deleted)"
        );
    }

    #[test]
    fn control_characters_from_other_users_cannot_drive_the_terminal() {
        let evil = "hi\x1b]52;c;ZXZpbA==\x07\x1b[2J\rfake\u{9b}31m\x7f\nsecond\tline \\n";
        let m = Message {
            id: MessageId(9),
            room: RoomId(1),
            seq: 4,
            sender: UserId(2),
            sender_name: "bob\x1b[8m".into(),
            ts: 0,
            kind: MessageKind::Text,
            text: evil.into(),
        };
        let line = message_line(RoomKind::Public, "pub\x1blic", &m);
        assert_eq!(
            line,
            "[1970-01-01T00:00:00Z]      4 #pub\\u{1b}lic <bob\\u{1b}[8m> \
             hi\\u{1b}]52;c;ZXZpbA==\\u{7}\\u{1b}[2J\\u{d}fake\\u{9b}31m\\u{7f}\n  | second\tline \\n"
        );
        assert!(!line.contains(|c: char| c.is_control() && c != '\n' && c != '\t'));

        let room = RoomSummary {
            id: RoomId(1),
            kind: RoomKind::Public,
            name: "ops".into(),
            topic: "\x1b]0;owned\x07".into(),
            member_count: 2,
            latest_seq: 0,
            last_read_seq: 0,
            unread: 0,
            mentions: 0,
            my_role: None,
        };
        assert!(room_line(&room).ends_with("— \\u{1b}]0;owned\\u{7}"));
        let user = UserPresence {
            user: chatroom_protocol::UserSummary {
                id: UserId(2),
                username: "bob".into(),
                is_admin: false,
            },
            status: PresenceStatus::Away,
            status_message: Some("\x1b[2Jlunch".into()),
        };
        assert!(user_line(&user).ends_with("(\\u{1b}[2Jlunch)"));
        let file = FileRef {
            id: chatroom_protocol::FileId(7),
            name: "a\x1b[2J.txt".into(),
            size: 1,
            sha256: [0; 32],
        };
        assert_eq!(
            file_ref_line(&file, "bob"),
            "📎 a\\u{1b}[2J.txt · 1 B · bob"
        );

        // JSON: every control character escaped, DEL and C1 too; the value decodes unchanged.
        let json = json_line(&message_json("public", &m));
        assert!(!json.contains(char::is_control), "{json}");
        let back: Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(back["text"], evil);
    }

    #[test]
    fn members_bans_and_mutes_print_for_people_and_programs() {
        let bob = Member {
            user: chatroom_protocol::UserSummary {
                id: UserId(2),
                username: "bob".into(),
                is_admin: false,
            },
            role: RoomRole::Moderator,
            status: PresenceStatus::Online,
        };
        assert_eq!(
            member_line(&bob).split_whitespace().collect::<Vec<_>>(),
            ["bob", "moderator", "online"]
        );
        assert_eq!(member_json("dev", &bob)["role"], "moderator");
        let mute = MuteInfo {
            username: "carol".into(),
            by: "bob".into(),
            reason: Some("spam\x1b[2J".into()),
            since: 0,
            until: Some(600_000),
        };
        assert!(
            mute_line(&mute).ends_with("muted by bob until 1970-01-01T00:10:00Z: spam\\u{1b}[2J"),
            "{}",
            mute_line(&mute)
        );
        assert_eq!(mute_json("dev", &mute)["until"], 600_000);
        let forever = MuteInfo {
            until: None,
            reason: None,
            ..mute
        };
        assert!(mute_line(&forever).ends_with("muted by bob until unmuted"));
        assert!(mute_json("dev", &forever)["until"].is_null());
        let ban = BanInfo {
            username: "dave".into(),
            by: "bob".into(),
            reason: None,
            since: 0,
        };
        assert!(ban_line(&ban).ends_with("banned by bob on 1970-01-01T00:00:00Z"));
        assert_eq!(ban_json("dev", &ban)["name"], "dave");
    }

    fn summary(kind: RoomKind, name: &str, members: u32, mentions: u32) -> RoomSummary {
        RoomSummary {
            id: RoomId(1),
            kind,
            name: name.into(),
            topic: String::new(),
            member_count: members,
            latest_seq: 0,
            last_read_seq: 0,
            unread: mentions,
            mentions,
            my_role: None,
        }
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(count_of(1, "member", "members"), "1 member");
        assert_eq!(count_of(0, "member", "members"), "0 members");
        assert_eq!(count_of(2, "mention", "mentions"), "2 mentions");
        let lonely = room_line(&summary(RoomKind::Public, "solo", 1, 1));
        assert!(
            lonely.contains("   1 member  1 unread  1 mention"),
            "{lonely}"
        );
        assert!(!lonely.contains("members") && !lonely.contains("mentions"));
        let busy = room_line(&summary(RoomKind::Public, "dev", 12, 3));
        assert!(
            busy.contains("  12 members  3 unread  3 mentions"),
            "{busy}"
        );
    }

    #[test]
    fn columns_line_up_by_display_width_with_wide_names() {
        assert_eq!(pad_to_width("ab", 4), "ab  ");
        assert_eq!(pad_to_width("名前", 6), "名前  ", "two columns a character");
        assert_eq!(pad_to_width("🚀x", 4), "🚀x ");
        assert_eq!(pad_to_width("toolong", 3), "toolong");
        // What comes after the name starts in the same terminal column on every line.
        let column_of = |line: &str, after: &str| {
            line.find(after)
                .map(|at| line[..at].width())
                .unwrap_or_else(|| panic!("{after:?} in {line:?}"))
        };
        let rooms: Vec<String> = ["🚀rocket", "public", "中文房间"]
            .iter()
            .map(|name| room_line(&summary(RoomKind::Public, name, 2, 0)))
            .collect();
        let kinds: Vec<usize> = rooms.iter().map(|l| column_of(l, " public ")).collect();
        assert_eq!(kinds, [24; 3], "{rooms:#?}");
        let file = |name: &str, uploader: &str| FileInfo {
            id: chatroom_protocol::FileId(7),
            room: RoomId(1),
            seq: 3,
            name: name.into(),
            size: 1024,
            sha256: [0; 32],
            uploader: UserId(2),
            uploader_name: uploader.into(),
            ts: 0,
        };
        let files = [
            file_line(&file("we ird 名前.txt", "张伟")),
            file_line(&file("plain.txt", "bob")),
        ];
        let sizes: Vec<usize> = files.iter().map(|l| column_of(l, "1.0 KiB")).collect();
        assert_eq!(sizes[0], sizes[1], "{files:#?}");
        let times: Vec<usize> = files.iter().map(|l| column_of(l, "1970-")).collect();
        assert_eq!(times[0], times[1], "{files:#?}");
        let users = [
            ("张伟", PresenceStatus::Online),
            ("bob", PresenceStatus::Away),
        ]
        .map(|(name, status)| UserPresence {
            user: chatroom_protocol::UserSummary {
                id: UserId(2),
                username: name.into(),
                is_admin: false,
            },
            status,
            status_message: None,
        });
        assert_eq!(
            column_of(&user_line(&users[0]), "online"),
            column_of(&user_line(&users[1]), "away")
        );
    }

    #[test]
    fn a_deletion_prints_like_a_notice() {
        assert_eq!(
            deleted_line(RoomKind::Public, "dev", 12, "bob\x1b[2J", 0),
            "[1970-01-01T00:00:00Z]     12 #dev * message 12 was deleted by bob\\u{1b}[2J"
        );
        assert!(
            deleted_line(RoomKind::Direct, "bob", 3, "bob", 0)
                .starts_with("[1970-01-01T00:00:00Z]      3 @bob * message 3")
        );
        let json = deleted_json("dev", RoomId(4), 12, "bob", 5);
        assert_eq!(
            json,
            json!({"kind": "deleted", "room": "dev", "room_id": 4, "seq": 12, "by": "bob", "ts": 5})
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
