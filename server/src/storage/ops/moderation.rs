//! Bans and mutes: a room's moderators and owner keeping a user out of it, or quiet in it.

use chatroom_protocol::{ErrorCode, RoomId, RoomKind, RoomRole, UnixMillis, UserId};
use rusqlite::params;

use super::{Applying, Outcome, acting_role, is_admin, refused, require_role, room_kind, rooms};
use crate::storage::StorageError;
use crate::storage::notices;

/// [`super::WriteOp::Ban`].
pub(super) fn ban(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    by: UserId,
    by_name: &str,
    reason: Option<&str>,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    if room_kind(conn, room)? == RoomKind::Direct {
        return Err(refused(ErrorCode::Forbidden, "a direct chat has no bans"));
    }
    let mine = require_role(
        conn,
        room,
        by,
        RoomRole::Moderator,
        "only the owner or a moderator may ban",
    )?;
    if user == by {
        return Err(refused(ErrorCode::BadRequest, "you cannot ban yourself"));
    }
    // A server admin is judged by the role they act with, and is not banned from a room they
    // are not in either: nobody below them may lock them out of `public`.
    let theirs = acting_role(conn, room, user)?;
    if theirs.is_some_and(|theirs| theirs >= mine)
        || (theirs.is_none() && is_admin(conn, user)? && !is_admin(conn, by)?)
    {
        return Err(refused(
            ErrorCode::Forbidden,
            "you may only ban members below your own role",
        ));
    }
    conn.execute(
        "INSERT OR REPLACE INTO bans (room_id, user_id, by_name, reason, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![room.0 as i64, user.0 as i64, by_name, reason, now],
    )?;
    let removed = rooms::remove_membership(conn, room, user)?;
    let who = notices::name_of(conn, user)?;
    let text = notices::banned(&who, by_name, reason);
    notices::post(conn, posted, room, by, text, now)?;
    Ok(Outcome::Banned {
        was_member: removed.is_some(),
        heirs: removed.unwrap_or_default(),
    })
}

/// [`super::WriteOp::Unban`].
pub(super) fn unban(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    by: UserId,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    require_role(
        conn,
        room,
        by,
        RoomRole::Moderator,
        "only the owner or a moderator may lift a ban",
    )?;
    let lifted = conn.execute(
        "DELETE FROM bans WHERE room_id = ?1 AND user_id = ?2",
        params![room.0 as i64, user.0 as i64],
    )?;
    if lifted == 0 {
        return Err(refused(ErrorCode::BadRequest, "they are not banned here"));
    }
    let text = notices::unbanned(&notices::name_of(conn, user)?, &notices::name_of(conn, by)?);
    notices::post(conn, posted, room, by, text, now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::Mute`].
pub(super) fn mute(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    by: UserId,
    by_name: &str,
    reason: Option<&str>,
    until: Option<UnixMillis>,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    if room_kind(conn, room)? == RoomKind::Direct {
        return Err(refused(ErrorCode::Forbidden, "a direct chat has no mutes"));
    }
    let mine = require_role(
        conn,
        room,
        by,
        RoomRole::Moderator,
        "only the owner or a moderator may mute",
    )?;
    if user == by {
        return Err(refused(ErrorCode::BadRequest, "you cannot mute yourself"));
    }
    let Some(theirs) = acting_role(conn, room, user)? else {
        return Err(refused(ErrorCode::NotMember, "they are not in this room"));
    };
    if theirs >= mine {
        return Err(refused(
            ErrorCode::Forbidden,
            "you may only mute members below your own role",
        ));
    }
    conn.execute(
        "INSERT OR REPLACE INTO mutes (room_id, user_id, by_name, reason, created_at, until) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            room.0 as i64,
            user.0 as i64,
            by_name,
            reason,
            now,
            until.map(|t| t as i64)
        ],
    )?;
    let who = notices::name_of(conn, user)?;
    let text = notices::muted(&who, by_name, until, now as UnixMillis, reason);
    notices::post(conn, posted, room, by, text, now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::Unmute`].
pub(super) fn unmute(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    by: UserId,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    let mine = require_role(
        conn,
        room,
        by,
        RoomRole::Moderator,
        "only the owner or a moderator may unmute",
    )?;
    // The rules of `mute`, so a mute holds against those it was meant to hold against: a
    // moderator muted by the owner neither lifts it nor has a fellow moderator lift it. Two
    // ways out: a room passes to its longest-serving member, who may be muted, and nobody is
    // left above its owner to lift it; and someone who left stays muted, which anyone who may
    // mute lifts (NotMember would leave the mute listed and unliftable).
    if user == by {
        if mine != RoomRole::Owner {
            return Err(refused(
                ErrorCode::BadRequest,
                "you cannot lift your own mute",
            ));
        }
    } else if acting_role(conn, room, user)?.is_some_and(|theirs| theirs >= mine) {
        return Err(refused(
            ErrorCode::Forbidden,
            "you may only unmute members below your own role",
        ));
    }
    let lifted = conn.execute(
        "DELETE FROM mutes WHERE room_id = ?1 AND user_id = ?2 \
         AND (until IS NULL OR until > ?3)",
        params![room.0 as i64, user.0 as i64, now],
    )?;
    // One that ran out is gone as well, but lifting it is not news.
    conn.execute(
        "DELETE FROM mutes WHERE room_id = ?1 AND user_id = ?2",
        params![room.0 as i64, user.0 as i64],
    )?;
    if lifted == 0 {
        return Err(refused(ErrorCode::BadRequest, "they are not muted here"));
    }
    let text = notices::unmuted(&notices::name_of(conn, user)?, &notices::name_of(conn, by)?);
    notices::post(conn, posted, room, by, text, now)?;
    Ok(Outcome::Done)
}
