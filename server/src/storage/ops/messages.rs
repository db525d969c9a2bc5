//! Messages: storing, editing and deleting them, moving read markers, and where the AI bot's
//! context of a room starts. Also the message row itself, which room notices use too
//! ([`insert_message_row`]).

use chatroom_protocol::{
    ErrorCode, Message, MessageId, MessageKind, RoomId, RoomKind, RoomRole, Seq, UnixMillis, UserId,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Applying, Outcome, acting_role, not_a_member, refused, require_member, room_kind};
use crate::storage::{StorageError, message_kind_to_sql};

/// [`super::WriteOp::InsertMessage`].
pub(super) fn insert(
    cx: Applying<'_, '_>,
    room: RoomId,
    sender: UserId,
    sender_name: &str,
    kind: &MessageKind,
    text: &str,
    mentions: &[UserId],
) -> Result<Outcome, StorageError> {
    let (conn, now, seqs, posted) = (cx.conn, cx.now, cx.seqs, cx.posted);
    // The hub checked membership when the request came in, but a kick or leave may
    // have committed since, in this batch or an earlier one.
    let seq = seqs.latest(room) + 1;
    if *kind == MessageKind::Text {
        // The sender has read up to their own message. No row to move means they are
        // no longer a member: the check costs no statement of its own.
        let moved = conn
            .prepare_cached(
                "UPDATE members SET last_read_seq = ?1 WHERE room_id = ?2 AND user_id = ?3",
            )?
            .execute(params![seq as i64, room.0 as i64, sender.0 as i64])?;
        if moved == 0 {
            return Err(not_a_member());
        }
    } else {
        require_member(conn, room, sender)?;
    }
    let id = insert_message_row(conn, room, seq, sender, sender_name, now, kind, text)?;
    if !mentions.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3)",
        )?;
        for user in mentions {
            stmt.execute(params![user.0 as i64, room.0 as i64, seq as i64])?;
        }
    }
    posted.took(room, seq);
    Ok(Outcome::Message(Message {
        id,
        room,
        seq,
        sender,
        sender_name: sender_name.to_owned(),
        ts: now as UnixMillis,
        kind: kind.clone(),
        text: text.to_owned(),
    }))
}

/// [`super::WriteOp::MarkRead`].
pub(super) fn mark_read(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    seq: Seq,
) -> Result<Outcome, StorageError> {
    let (conn, seqs) = (cx.conn, cx.seqs);
    let seq = seq.min(seqs.latest(room));
    conn.prepare_cached(
        "UPDATE members SET last_read_seq = MAX(last_read_seq, ?1) WHERE room_id = ?2 AND user_id = ?3",
    )?
    .execute(params![seq as i64, room.0 as i64, user.0 as i64])?;
    let marker: Option<i64> = conn
        .query_row(
            "SELECT last_read_seq FROM members WHERE room_id = ?1 AND user_id = ?2",
            params![room.0 as i64, user.0 as i64],
            |r| r.get(0),
        )
        .optional()?;
    match marker {
        Some(m) => Ok(Outcome::ReadMarker(m as Seq)),
        None => Err(refused(ErrorCode::NotMember, "not a member of that room")),
    }
}

/// [`super::WriteOp::DeleteMessage`].
pub(super) fn delete(
    cx: Applying<'_, '_>,
    room: RoomId,
    seq: Seq,
    actor: UserId,
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    let row: Option<(i64, String, i64, Option<i64>)> = conn
        .query_row(
            "SELECT sender_id, sender_name, kind, file_id FROM messages \
             WHERE room_id = ?1 AND seq = ?2",
            params![room.0 as i64, seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((sender, sender_name, kind, file)) = row else {
        return Err(refused(ErrorCode::BadRequest, "no such message"));
    };
    let Some(role) = acting_role(conn, room, actor)? else {
        return Err(refused(ErrorCode::NotMember, "not a member of that room"));
    };
    if sender != actor.0 as i64 && role < RoomRole::Moderator {
        return Err(refused(
            ErrorCode::Forbidden,
            "only its sender, the room's owner or a moderator may delete a message",
        ));
    }
    if kind == 1 {
        return Err(refused(ErrorCode::Forbidden, "notices cannot be deleted"));
    }
    let orphan = erase(conn, room, seq, file)?;
    let of_other = (sender != actor.0 as i64).then_some(sender_name);
    Ok(Outcome::MessageDeleted { orphan, of_other })
}

/// Empties one message: kind `Deleted`, no text, no file, no mentions. Returns the blob of the
/// file row it removed (`file`), for the writer to remove once nothing else uses it.
fn erase(
    conn: &Connection,
    room: RoomId,
    seq: Seq,
    file: Option<i64>,
) -> Result<Option<[u8; 32]>, StorageError> {
    let mut orphan = None;
    if let Some(file) = file {
        let sha: Option<Vec<u8>> = conn
            .prepare_cached("DELETE FROM files WHERE id = ?1 RETURNING sha256")?
            .query_row(params![file], |r| r.get(0))
            .optional()?;
        orphan = sha.and_then(crate::storage::sha256_from_sql);
    }
    conn.prepare_cached(
        "UPDATE messages SET kind = 3, text = '', file_id = NULL WHERE room_id = ?1 AND seq = ?2",
    )?
    .execute(params![room.0 as i64, seq as i64])?;
    conn.prepare_cached("DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2")?
        .execute(params![room.0 as i64, seq as i64])?;
    Ok(orphan)
}

/// [`super::WriteOp::DeleteMessagesBy`].
pub(super) fn delete_by(
    cx: Applying<'_, '_>,
    room: RoomId,
    sender: UserId,
    since: UnixMillis,
    actor: UserId,
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    let refusal = "only the owner or a moderator of a named room may delete someone's messages";
    let Some(role) = acting_role(conn, room, actor)? else {
        return Err(refused(ErrorCode::NotMember, "not a member of that room"));
    };
    if role < RoomRole::Moderator || room_kind(conn, room)? == RoomKind::Direct {
        return Err(refused(ErrorCode::Forbidden, refusal));
    }
    if sender != actor
        && let Some(theirs) = acting_role(conn, room, sender)?
        && theirs >= role
    {
        return Err(refused(
            ErrorCode::Forbidden,
            "you may only delete the messages of members below your own role",
        ));
    }
    // Notices (1) are the room's record, and deleted messages (3) are gone already.
    let mut stmt = conn.prepare_cached(
        "SELECT seq, file_id FROM messages \
         WHERE room_id = ?1 AND sender_id = ?2 AND ts >= ?3 AND kind NOT IN (1, 3) \
         ORDER BY seq DESC LIMIT ?4",
    )?;
    let found: Vec<(Seq, Option<i64>)> = stmt
        .query_map(
            params![
                room.0 as i64,
                sender.0 as i64,
                i64::try_from(since).unwrap_or(i64::MAX),
                i64::from(chatroom_protocol::MAX_DELETED_AT_ONCE)
            ],
            |r| Ok((r.get::<_, i64>(0)? as Seq, r.get(1)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut orphans = Vec::new();
    for &(seq, file) in &found {
        orphans.extend(erase(conn, room, seq, file)?);
    }
    Ok(Outcome::MessagesDeleted {
        seqs: found.into_iter().map(|(seq, _)| seq).collect(),
        orphans,
    })
}

/// [`super::WriteOp::EditMessage`].
pub(super) fn edit(
    cx: Applying<'_, '_>,
    room: RoomId,
    seq: Seq,
    editor: UserId,
    text: &str,
    mentions: &[UserId],
) -> Result<Outcome, StorageError> {
    let (conn, now) = (cx.conn, cx.now);
    let at = now as UnixMillis;
    let Some(mut message) = conn
        .query_row(
            &format!(
                "SELECT {} FROM messages m LEFT JOIN files f ON f.id = m.file_id \
                 WHERE m.room_id = ?1 AND m.seq = ?2",
                crate::storage::reads::MESSAGE_COLUMNS
            ),
            params![room.0 as i64, seq as i64],
            crate::storage::reads::message_from_row,
        )
        .optional()?
    else {
        return Err(refused(ErrorCode::BadRequest, "no such message"));
    };
    require_member(conn, room, editor)?;
    match message.kind {
        MessageKind::Text | MessageKind::Edited { .. } => {}
        MessageKind::Deleted => {
            return Err(refused(ErrorCode::BadRequest, "that message was deleted"));
        }
        MessageKind::System | MessageKind::File(_) => {
            return Err(refused(
                ErrorCode::Forbidden,
                "only text messages can be edited",
            ));
        }
    }
    if message.sender != editor {
        return Err(refused(
            ErrorCode::Forbidden,
            "only its sender may edit a message",
        ));
    }
    if message.text == *text {
        return Ok(Outcome::Edited(None));
    }
    conn.execute(
        "UPDATE messages SET text = ?1, edited_at = ?2 WHERE room_id = ?3 AND seq = ?4",
        params![text, now, room.0 as i64, seq as i64],
    )?;
    conn.execute(
        "DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2",
        params![room.0 as i64, seq as i64],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3)",
    )?;
    for user in mentions {
        stmt.execute(params![user.0 as i64, room.0 as i64, seq as i64])?;
    }
    message.kind = MessageKind::Edited { at };
    message.text = text.to_owned();
    Ok(Outcome::Edited(Some(message)))
}

/// [`super::WriteOp::SetAiContextStart`].
pub(super) fn set_ai_context_start(
    cx: Applying<'_, '_>,
    room: RoomId,
    after_seq: Seq,
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    conn.execute(
        "INSERT INTO ai_context_starts (room_id, after_seq) VALUES (?1, ?2) \
         ON CONFLICT (room_id) DO UPDATE SET after_seq = MAX(after_seq, excluded.after_seq)",
        params![room.0 as i64, after_seq as i64],
    )?;
    Ok(Outcome::Done)
}

/// Inserts a message row (a post, or a room notice) with `seq`; its id.
// One argument per column: a struct for them would only rename them.
#[allow(clippy::too_many_arguments)]
pub(in crate::storage) fn insert_message_row(
    conn: &Connection,
    room: RoomId,
    seq: Seq,
    sender: UserId,
    sender_name: &str,
    now: i64,
    kind: &MessageKind,
    text: &str,
) -> Result<MessageId, StorageError> {
    conn.prepare_cached(
        "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        room.0 as i64,
        seq as i64,
        sender.0 as i64,
        sender_name,
        now,
        message_kind_to_sql(kind),
        text
    ])?;
    Ok(MessageId(conn.last_insert_rowid() as u64))
}
