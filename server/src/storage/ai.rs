//! What the AI bot keeps in the database: its account (marked `is_bot`, with no usable
//! password), and per room the point its context starts from after `/ai clear`; and the read
//! of a room's recent messages that becomes its context.

use chatroom_protocol::{RoomId, Seq, UserId, now_millis};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StorageError, UserRow};

/// Stored as the bot's password hash: not a PHC string, so no password ever verifies.
const NO_PASSWORD: &str = "!bot: no password";

/// Finds or creates the bot's account `name` (a member of `public` when created). Returns
/// `None` when a person already holds the name: the bot then stays off rather than take over
/// their account.
pub fn ensure_bot_account(conn: &Connection, name: &str) -> Result<Option<UserRow>, StorageError> {
    let key = crate::auth::name_key(name);
    let existing: Option<(i64, String, bool, bool)> = conn
        .query_row(
            "SELECT id, name, is_admin, is_bot FROM users WHERE name_key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    match existing {
        Some((id, name, is_admin, true)) => Ok(Some(UserRow {
            id: UserId(id as u64),
            name,
            name_key: key,
            is_admin,
        })),
        Some((_, _, _, false)) => Ok(None),
        None => {
            let now = now_millis() as i64;
            conn.execute(
                "INSERT INTO users (name, name_key, password_hash, is_admin, created_at, is_bot) \
                 VALUES (?1, ?2, ?3, 0, ?4, 1)",
                params![name, key, NO_PASSWORD, now],
            )?;
            let id = conn.last_insert_rowid();
            conn.execute(
                "INSERT OR IGNORE INTO members (room_id, user_id, role, joined_at) \
                 SELECT id, ?1, 0, ?2 FROM rooms WHERE name_key = 'public'",
                params![id, now],
            )?;
            tracing::info!(%name, "AI bot account created");
            Ok(Some(UserRow {
                id: UserId(id as u64),
                name: name.to_string(),
                name_key: key,
                is_admin: false,
            }))
        }
    }
}

/// Whether an account is a bot's.
pub fn is_bot(conn: &Connection, user: UserId) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached("SELECT is_bot FROM users WHERE id = ?1")?
        .query_row(params![user.0 as i64], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// A message as context for the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextRow {
    /// Its seq.
    pub seq: Seq,
    /// Who wrote it.
    pub sender: UserId,
    /// Their name.
    pub sender_name: String,
    /// When.
    pub ts: u64,
    /// The text.
    pub text: String,
}

/// The bot's context for `room` before `before_seq`: at most `limit` text messages after the
/// room's `/ai clear` point, newest kept first within `char_budget` characters; oldest first.
pub fn context(
    conn: &Connection,
    room: RoomId,
    before_seq: Seq,
    limit: u32,
    char_budget: usize,
) -> Result<Vec<ContextRow>, StorageError> {
    let start: i64 = conn
        .prepare_cached("SELECT after_seq FROM ai_context_starts WHERE room_id = ?1")?
        .query_row(params![room.0 as i64], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, sender_id, sender_name, ts, text FROM messages \
         WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 AND kind = 0 \
         ORDER BY seq DESC LIMIT ?4",
    )?;
    let before = i64::try_from(before_seq).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![room.0 as i64, start, before, i64::from(limit)])?;
    let mut out = Vec::new();
    let mut used = 0usize;
    while let Some(r) = rows.next()? {
        let text: String = r.get(4)?;
        used += text.chars().count();
        if used > char_budget {
            break;
        }
        out.push(ContextRow {
            seq: r.get::<_, i64>(0)? as Seq,
            sender: UserId(r.get::<_, i64>(1)? as u64),
            sender_name: r.get(2)?,
            ts: r.get::<_, i64>(3)? as u64,
            text,
        });
    }
    out.reverse();
    Ok(out)
}
