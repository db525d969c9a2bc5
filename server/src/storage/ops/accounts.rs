//! Accounts and their sessions: creating, deleting and changing an account, granting admin, and
//! storing, using and revoking its sessions.

use chatroom_protocol::{ErrorCode, RoomId, RoomRole, UnixMillis, UserId};
use rusqlite::{OptionalExtension, params};
use std::collections::{HashMap, HashSet};

use super::{AdminGrant, Applying, Outcome, refused, rooms};
use crate::sessions::{TokenHash, ended};
use crate::storage::notices;
use crate::storage::{StorageError, UserRow, is_constraint, reads};

/// [`super::WriteOp::CreateUser`].
pub(super) fn create_user(
    cx: Applying<'_, '_>,
    name: &str,
    password_hash: &str,
    admin: AdminGrant,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    let key = crate::auth::name_key(name);
    let is_admin = match admin {
        AdminGrant::Yes => true,
        AdminGrant::No => false,
        AdminGrant::IfFirst => {
            // The AI bot's account does not count: the first person is the admin.
            let any: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE is_bot = 0)",
                [],
                |r| r.get(0),
            )?;
            !any
        }
    };
    let inserted = conn.execute(
        "INSERT INTO users (name, name_key, password_hash, is_admin, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, key, password_hash, is_admin, now],
    );
    match inserted {
        Err(e) if is_constraint(&e) => {
            return Err(refused(
                ErrorCode::UsernameTaken,
                format!("the name {name:?} is taken"),
            ));
        }
        other => other?,
    };
    let id = UserId(conn.last_insert_rowid() as u64);
    let public: Option<i64> = conn
        .query_row("SELECT id FROM rooms WHERE name_key = 'public'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(public) = public.map(|p| RoomId(p as u64)) {
        rooms::insert_member(conn, public, id, RoomRole::Member, now)?;
        notices::post(conn, posted, public, id, notices::joined(name, None), now)?;
    }
    Ok(Outcome::User(UserRow {
        id,
        name: name.to_owned(),
        name_key: key,
        is_admin,
    }))
}

/// [`super::WriteOp::CreateSession`].
pub(super) fn create_session(
    cx: Applying<'_, '_>,
    user: UserId,
    token_hash: &[u8],
    device: &str,
    ending: &[TokenHash],
    why_ending: &str,
) -> Result<Outcome, StorageError> {
    let (conn, now) = (cx.conn, cx.now);
    let suspension: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT by_name, reason FROM suspensions WHERE user_id = ?1")?
        .query_row(params![user.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((by, reason)) = suspension {
        return Err(refused(
            ErrorCode::Forbidden,
            ended::while_suspended(&by, reason.as_deref()),
        ));
    }
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, device, created_at, last_used_at) \
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![token_hash, user.0 as i64, device, now],
    )?;
    end_tokens(conn, ending, why_ending, now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::EndSessions`].
pub(super) fn end_these_sessions(
    cx: Applying<'_, '_>,
    tokens: &[TokenHash],
    why: &str,
) -> Result<Outcome, StorageError> {
    end_tokens(cx.conn, tokens, why, cx.now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::Suspend`].
pub(super) fn suspend(
    cx: Applying<'_, '_>,
    user: UserId,
    by_name: &str,
    reason: Option<&str>,
) -> Result<Outcome, StorageError> {
    let (conn, now) = (cx.conn, cx.now);
    conn.execute(
        "INSERT OR REPLACE INTO suspensions (user_id, by_name, reason, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![user.0 as i64, by_name, reason, now],
    )?;
    let why = ended::by_suspension(by_name, reason);
    end_sessions(conn, user, None, &why, now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::Unsuspend`].
pub(super) fn unsuspend(cx: Applying<'_, '_>, user: UserId) -> Result<Outcome, StorageError> {
    let lifted = cx.conn.execute(
        "DELETE FROM suspensions WHERE user_id = ?1",
        params![user.0 as i64],
    )?;
    if lifted == 0 {
        return Err(refused(
            ErrorCode::BadRequest,
            "that account is not suspended",
        ));
    }
    Ok(Outcome::Done)
}

/// [`super::WriteOp::DeleteSession`].
pub(super) fn delete_session(
    cx: Applying<'_, '_>,
    token_hash: &[u8],
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    conn.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        params![token_hash],
    )?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::RevokeSessions`].
pub(super) fn revoke_sessions(cx: Applying<'_, '_>, user: UserId) -> Result<Outcome, StorageError> {
    end_sessions(cx.conn, user, None, ended::BY_ADMIN_LOGOUT, cx.now)?;
    Ok(Outcome::Done)
}

/// How long an ended session is remembered, for a client coming back with its token: longer
/// than a session can sit unused by default (30 days), so that whoever comes back in time to
/// have resumed hears why they cannot.
const ENDED_SESSIONS_KEPT_MS: i64 = 90 * 24 * 3600 * 1000;

/// How many of one account's ended sessions are remembered at most (the latest): a client that
/// logs in again and again without logging out, each login ending the least recently used
/// session beyond the limit, leaves this many rows rather than one per login for
/// [`ENDED_SESSIONS_KEPT_MS`].
const ENDED_SESSIONS_KEPT_PER_ACCOUNT: i64 = 1000;

/// Forgets the sessions ended too long ago, and `user`'s beyond the latest
/// [`ENDED_SESSIONS_KEPT_PER_ACCOUNT`].
fn forget_old_ends(
    conn: &rusqlite::Connection,
    user: UserId,
    now: i64,
) -> Result<(), StorageError> {
    conn.prepare_cached("DELETE FROM ended_sessions WHERE ended_at < ?1")?
        .execute(params![now.saturating_sub(ENDED_SESSIONS_KEPT_MS)])?;
    conn.prepare_cached(
        "DELETE FROM ended_sessions WHERE token_hash IN (SELECT token_hash FROM ended_sessions \
         WHERE user_id = ?1 ORDER BY ended_at DESC, token_hash LIMIT -1 OFFSET ?2)",
    )?
    .execute(params![user.0 as i64, ENDED_SESSIONS_KEPT_PER_ACCOUNT])?;
    Ok(())
}

/// Ends the sessions `tokens` that are still stored, remembering `why` for each (see
/// [`crate::storage::reads::why_session_ended`]).
fn end_tokens(
    conn: &rusqlite::Connection,
    tokens: &[TokenHash],
    why: &str,
    now: i64,
) -> Result<(), StorageError> {
    let mut remember = conn.prepare_cached(
        "INSERT OR REPLACE INTO ended_sessions (token_hash, user_id, why, ended_at) \
         SELECT token_hash, user_id, ?2, ?3 FROM sessions WHERE token_hash = ?1",
    )?;
    let mut delete =
        conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1 RETURNING user_id")?;
    let mut users = HashSet::new();
    for hash in tokens {
        remember.execute(params![hash.as_slice(), why, now])?;
        let user: Option<i64> = delete
            .query_row(params![hash.as_slice()], |r| r.get(0))
            .optional()?;
        users.extend(user);
    }
    for user in users {
        forget_old_ends(conn, UserId(user as u64), now)?;
    }
    Ok(())
}

/// Ends `user`'s sessions but `keep`, remembering `why` for each (see
/// [`crate::storage::reads::why_session_ended`]); forgets those ended too long ago.
fn end_sessions(
    conn: &rusqlite::Connection,
    user: UserId,
    keep: Option<&[u8]>,
    why: &str,
    now: i64,
) -> Result<(), StorageError> {
    conn.execute(
        "INSERT OR REPLACE INTO ended_sessions (token_hash, user_id, why, ended_at) \
         SELECT token_hash, user_id, ?3, ?4 FROM sessions \
         WHERE user_id = ?1 AND token_hash IS NOT ?2",
        params![user.0 as i64, keep, why, now],
    )?;
    conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_hash IS NOT ?2",
        params![user.0 as i64, keep],
    )?;
    forget_old_ends(conn, user, now)
}

/// [`super::WriteOp::SessionUpkeep`].
pub(super) fn upkeep_sessions(
    cx: Applying<'_, '_>,
    used: &[(TokenHash, UnixMillis)],
    expired: &[TokenHash],
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    let mut touch = conn.prepare_cached(
        "UPDATE sessions SET last_used_at = MAX(last_used_at, ?1) WHERE token_hash = ?2",
    )?;
    for (hash, at) in used {
        let at = i64::try_from(*at).unwrap_or(i64::MAX);
        touch.execute(params![at, hash.as_slice()])?;
    }
    let mut delete = conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?;
    for hash in expired {
        delete.execute(params![hash.as_slice()])?;
    }
    Ok(Outcome::Done)
}

/// [`super::WriteOp::ChangePassword`].
pub(super) fn change_password(
    cx: Applying<'_, '_>,
    user: UserId,
    password_hash: &str,
    keep_session: Option<&[u8]>,
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    let changed = conn.execute(
        "UPDATE users SET password_hash = ?1 WHERE id = ?2",
        params![password_hash, user.0 as i64],
    )?;
    if changed == 0 {
        return Err(refused(ErrorCode::UserNotFound, "no such user"));
    }
    let why = match keep_session {
        Some(_) => ended::BY_PASSWORD_CHANGE,
        None => ended::BY_PASSWORD_RESET,
    };
    end_sessions(conn, user, keep_session, why, cx.now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::DeleteUser`].
pub(super) fn delete_user(cx: Applying<'_, '_>, user: UserId) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    conn.execute(
        "DELETE FROM mentions WHERE user_id = ?1",
        params![user.0 as i64],
    )?;
    // Every room it was in: the named ones hear of it (a direct chat keeps the account's
    // name), and the running server takes it out of each.
    let rooms: Vec<(i64, bool)> = conn
        .prepare(
            "SELECT m.room_id, r.kind IN (0, 1) FROM members m JOIN rooms r ON r.id = m.room_id \
             WHERE m.user_id = ?1 ORDER BY m.room_id",
        )?
        .query_map(params![user.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let owned: Vec<i64> = conn
        .prepare("DELETE FROM members WHERE user_id = ?1 AND role = 2 RETURNING room_id")?
        .query_map(params![user.0 as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut heirs = HashMap::new();
    for room in owned {
        if let Some(heir) = rooms::hand_over(conn, RoomId(room as u64))? {
            heirs.insert(room, heir);
        }
    }
    let name = notices::name_of(conn, user)?;
    let mut left = Vec::with_capacity(rooms.len());
    for &(room, named) in &rooms {
        let heir = heirs.get(&room).copied();
        if named {
            let heir_name = heir.map(|h| notices::name_of(conn, h)).transpose()?;
            let text = notices::account_deleted(&name, heir_name.as_deref());
            notices::post(conn, posted, RoomId(room as u64), user, text, now)?;
        }
        left.push((RoomId(room as u64), heir));
    }
    // Direct chats with the account keep its name (their `name` is otherwise unused).
    conn.execute(
        "UPDATE rooms SET name = (SELECT name FROM users WHERE id = ?1) \
         WHERE kind = 2 AND (direct_key LIKE ?1 || ':%' OR direct_key LIKE '%:' || ?1)",
        params![user.0 as i64],
    )?;
    let deleted = conn.execute("DELETE FROM users WHERE id = ?1", params![user.0 as i64])?;
    if deleted == 0 {
        return Err(refused(ErrorCode::UserNotFound, "no such user"));
    }
    // The other side of each direct chat, and the chat as they see it now: renamed
    // "bob (deleted)", which their client learns without reconnecting.
    let mut renamed = Vec::new();
    for &(room, named) in &rooms {
        if named {
            continue;
        }
        let others: Vec<i64> = conn
            .prepare_cached("SELECT user_id FROM members WHERE room_id = ?1")?
            .query_map(params![room], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for other in others {
            let other = UserId(other as u64);
            if let Some(summary) = reads::room_summary(conn, other, RoomId(room as u64))? {
                renamed.push((other, summary));
            }
        }
    }
    Ok(Outcome::AccountDeleted {
        rooms: left,
        directs: renamed,
    })
}

/// [`super::WriteOp::SetAdmin`].
pub(super) fn set_admin(
    cx: Applying<'_, '_>,
    user: UserId,
    admin: bool,
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    let changed = conn.execute(
        "UPDATE users SET is_admin = ?1 WHERE id = ?2",
        params![admin, user.0 as i64],
    )?;
    if changed == 0 {
        return Err(refused(ErrorCode::UserNotFound, "no such user"));
    }
    Ok(Outcome::Done)
}
