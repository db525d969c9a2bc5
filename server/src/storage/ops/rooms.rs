//! Rooms and who is in them: creating and renaming a room, setting its topic, opening a direct
//! chat, members coming, going and changing role, and handing a room on when its owner goes.

use chatroom_protocol::{ErrorCode, RoomId, RoomKind, RoomRole, RoomSummary, UserId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Applying, Outcome, acting_role, is_admin, member_role, refused, require_role, room_kind,
};
use crate::storage::{
    RoomRow, StorageError, is_constraint, kind_from_sql, kind_to_sql, role_from_sql, role_to_sql,
};
use crate::storage::{notices, reads};

/// [`super::WriteOp::CreateRoom`].
pub(super) fn create(
    cx: Applying<'_, '_>,
    name: &str,
    kind: RoomKind,
    owner: UserId,
) -> Result<Outcome, StorageError> {
    let (conn, now) = (cx.conn, cx.now);
    let inserted = conn.execute(
        "INSERT INTO rooms (kind, name, name_key, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kind_to_sql(kind), name, crate::auth::name_key(name), owner.0 as i64, now],
    );
    match inserted {
        Err(e) if is_constraint(&e) => {
            return Err(refused(
                ErrorCode::RoomNameTaken,
                format!("a room named {name:?} exists"),
            ));
        }
        other => other?,
    };
    let id = RoomId(conn.last_insert_rowid() as u64);
    insert_member(conn, id, owner, RoomRole::Owner, now)?;
    Ok(Outcome::Room {
        row: RoomRow {
            id,
            kind,
            name: name.to_owned(),
            topic: String::new(),
        },
        summary: summary_now(conn, owner, id)?,
    })
}

/// The room as `user` sees it within this transaction. Its completion tells them of the room
/// in the same step that makes them a member in the hub, so nothing of the room reaches them
/// first; a summary read after the commit would come too late for that.
fn summary_now(conn: &Connection, user: UserId, room: RoomId) -> Result<RoomSummary, StorageError> {
    reads::room_summary(conn, user, room)?
        .ok_or_else(|| StorageError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

/// [`super::WriteOp::AddMember`].
pub(super) fn add_member(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    by: Option<UserId>,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    if let Some(by) = by {
        let needed = if room_kind(conn, room)? == RoomKind::Public {
            RoomRole::Member
        } else {
            RoomRole::Moderator
        };
        require_role(
            conn,
            room,
            by,
            needed,
            "only the owner or a moderator may invite to a private room",
        )?;
    }
    if is_banned(conn, room, user)? {
        return Err(refused(
            ErrorCode::Forbidden,
            if by.is_some() {
                "they are banned from this room; a moderator must unban them first"
            } else {
                "you are banned from this room"
            },
        ));
    }
    let role = if needs_owner(conn, room)? && !crate::storage::ai::is_bot(conn, user)? {
        RoomRole::Owner
    } else {
        role
    };
    // A newcomer starts with the room read: what was said before they came is there to
    // scroll back to, not news that they missed (leaving and coming back included).
    let added = conn.execute(
        "INSERT OR IGNORE INTO members (room_id, user_id, role, last_read_seq, joined_at) \
         VALUES (?1, ?2, ?3, \
             (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = ?1), ?4)",
        params![room.0 as i64, user.0 as i64, role_to_sql(role), now],
    )?;
    if added == 0 {
        return Err(refused(ErrorCode::AlreadyMember, "already a member"));
    }
    let who = notices::name_of(conn, user)?;
    let (actor, text) = match by {
        Some(by) => (
            by,
            notices::joined(&who, Some(&notices::name_of(conn, by)?)),
        ),
        None => (user, notices::joined(&who, None)),
    };
    notices::post(conn, posted, room, actor, text, now)?;
    Ok(Outcome::Joined {
        role,
        summary: summary_now(conn, user, room)?,
    })
}

/// [`super::WriteOp::RemoveMember`].
pub(super) fn remove_member(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    by: Option<UserId>,
    reason: Option<&str>,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    if let Some(by) = by {
        let mine = require_role(
            conn,
            room,
            by,
            RoomRole::Moderator,
            "only the owner or a moderator may remove members",
        )?;
        if acting_role(conn, room, user)?.is_some_and(|theirs| theirs >= mine) {
            return Err(refused(
                ErrorCode::Forbidden,
                "you may only remove members below your own role",
            ));
        }
    }
    let Some(changes) = remove_membership(conn, room, user)? else {
        return Err(refused(ErrorCode::NotMember, "not a member of that room"));
    };
    let who = notices::name_of(conn, user)?;
    let heir = heir_name(conn, &changes)?;
    let text = match by {
        Some(by) => notices::left(
            &who,
            Some(&notices::name_of(conn, by)?),
            reason,
            heir.as_deref(),
        ),
        None => notices::left(&who, None, None, heir.as_deref()),
    };
    notices::post(conn, posted, room, by.unwrap_or(user), text, now)?;
    Ok(Outcome::Roles(changes))
}

/// [`super::WriteOp::SetRole`].
pub(super) fn set_role(
    cx: Applying<'_, '_>,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    actor: UserId,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    let role_of = |who: UserId| member_role(conn, room, who);
    let actor_role = role_of(actor)?;
    // `public` has no owner: there, a server admin appoints and removes its moderators.
    let admin_in_public = actor_role.is_some()
        && role != RoomRole::Owner
        && is_public_room(conn, room)?
        && is_admin(conn, actor)?;
    if actor_role != Some(RoomRole::Owner) && !admin_in_public {
        return Err(refused(
            ErrorCode::Forbidden,
            "only the room's owner may change roles",
        ));
    }
    if role_of(user)?.is_none() {
        return Err(refused(ErrorCode::NotMember, "not a member of that room"));
    }
    if user == actor {
        return Err(refused(
            ErrorCode::BadRequest,
            "you own this room: give the owner role to someone else to hand it over",
        ));
    }
    if role == RoomRole::Owner && crate::storage::ai::is_bot(conn, user)? {
        return Err(refused(ErrorCode::Forbidden, "a bot cannot own a room"));
    }
    let set = |who: UserId, role: RoomRole| {
        conn.execute(
            "UPDATE members SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
            params![room.0 as i64, who.0 as i64, role_to_sql(role)],
        )
    };
    set(user, role)?;
    let mut changes = vec![(user, role)];
    if role == RoomRole::Owner {
        set(actor, RoomRole::Moderator)?;
        changes.push((actor, RoomRole::Moderator));
    }
    let text = notices::role_set(
        &notices::name_of(conn, user)?,
        &notices::name_of(conn, actor)?,
        role,
    );
    notices::post(conn, posted, room, actor, text, now)?;
    Ok(Outcome::Roles(changes))
}

/// Whether `room` is `public`, the room every account is put in.
fn is_public_room(conn: &Connection, room: RoomId) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached("SELECT name_key FROM rooms WHERE id = ?1")?
        .query_row(params![room.0 as i64], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten()
        .as_deref()
        == Some("public"))
}

/// [`super::WriteOp::SetTopic`].
pub(super) fn set_topic(
    cx: Applying<'_, '_>,
    room: RoomId,
    topic: &str,
    by: UserId,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    let needed = if room_kind(conn, room)? == RoomKind::Direct {
        RoomRole::Member
    } else {
        RoomRole::Moderator
    };
    require_role(
        conn,
        room,
        by,
        needed,
        "only the owner or a moderator may set the topic",
    )?;
    conn.execute(
        "UPDATE rooms SET topic = ?1 WHERE id = ?2",
        params![topic, room.0 as i64],
    )?;
    let text = notices::topic_set(&notices::name_of(conn, by)?, topic);
    notices::post(conn, posted, room, by, text, now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::RenameRoom`].
pub(super) fn rename(
    cx: Applying<'_, '_>,
    room: RoomId,
    name: &str,
    by: UserId,
) -> Result<Outcome, StorageError> {
    let (conn, now, posted) = (cx.conn, cx.now, cx.posted);
    let (kind, old, old_key): (i64, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT kind, name, name_key FROM rooms WHERE id = ?1",
            params![room.0 as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or_else(|| refused(ErrorCode::RoomNotFound, "no such room"))?;
    if kind_from_sql(kind) == RoomKind::Direct || old_key.as_deref() == Some("public") {
        return Err(refused(
            ErrorCode::Forbidden,
            "only a room people create can be renamed",
        ));
    }
    require_role(
        conn,
        room,
        by,
        RoomRole::Owner,
        "only the room's owner may rename it",
    )?;
    let renamed = conn.execute(
        "UPDATE rooms SET name = ?1, name_key = ?2 WHERE id = ?3",
        params![name, crate::auth::name_key(name), room.0 as i64],
    );
    match renamed {
        Err(e) if is_constraint(&e) => {
            return Err(refused(
                ErrorCode::RoomNameTaken,
                format!("a room named {name:?} exists"),
            ));
        }
        other => other?,
    };
    let text = notices::renamed(
        &notices::name_of(conn, by)?,
        old.as_deref().unwrap_or_default(),
        name,
    );
    notices::post(conn, posted, room, by, text, now)?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::OpenDirect`].
pub(super) fn open_direct(
    cx: Applying<'_, '_>,
    a: UserId,
    b: UserId,
) -> Result<Outcome, StorageError> {
    let (conn, now) = (cx.conn, cx.now);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let key = format!("{lo}:{hi}");
    let existing: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, topic FROM rooms WHERE direct_key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, topic, created) = match existing {
        Some((id, topic)) => (RoomId(id as u64), topic, false),
        None => {
            conn.execute(
                "INSERT INTO rooms (kind, direct_key, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![kind_to_sql(RoomKind::Direct), key, a.0 as i64, now],
            )?;
            let id = RoomId(conn.last_insert_rowid() as u64);
            insert_member(conn, id, lo, RoomRole::Member, now)?;
            if lo != hi {
                insert_member(conn, id, hi, RoomRole::Member, now)?;
            }
            (id, String::new(), true)
        }
    };
    let for_other = if created && a != b {
        Some(summary_now(conn, b, id)?)
    } else {
        None
    };
    Ok(Outcome::Direct {
        room: RoomRow {
            id,
            kind: RoomKind::Direct,
            name: String::new(),
            topic,
        },
        created,
        for_opener: summary_now(conn, a, id)?,
        for_other,
    })
}

/// The name of the new owner among `changes` (from [`remove_membership`]), if any.
fn heir_name(
    conn: &Connection,
    changes: &[(UserId, RoomRole)],
) -> Result<Option<String>, StorageError> {
    match changes.iter().find(|(_, role)| *role == RoomRole::Owner) {
        Some((heir, _)) => Ok(Some(notices::name_of(conn, *heir)?)),
        None => Ok(None),
    }
}

/// Removes a membership and the member's pending mentions; an owner's room passes on. `None`
/// if they were not a member, else the role changes (the new owner).
pub(super) fn remove_membership(
    conn: &Connection,
    room: RoomId,
    user: UserId,
) -> Result<Option<Vec<(UserId, RoomRole)>>, StorageError> {
    let removed: Option<i64> = conn
        .query_row(
            "DELETE FROM members WHERE room_id = ?1 AND user_id = ?2 RETURNING role",
            params![room.0 as i64, user.0 as i64],
            |r| r.get(0),
        )
        .optional()?;
    let Some(removed) = removed else {
        return Ok(None);
    };
    conn.execute(
        "DELETE FROM mentions WHERE room_id = ?1 AND user_id = ?2",
        params![room.0 as i64, user.0 as i64],
    )?;
    let mut changes = Vec::new();
    if role_from_sql(removed) == RoomRole::Owner
        && let Some(heir) = hand_over(conn, room)?
    {
        changes.push((heir, RoomRole::Owner));
    }
    Ok(Some(changes))
}

fn is_banned(conn: &Connection, room: RoomId, user: UserId) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM bans WHERE room_id = ?1 AND user_id = ?2")?
        .query_row(params![room.0 as i64, user.0 as i64], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether `room` is a named room (not the built-in `public`) without an owner.
fn needs_owner(conn: &Connection, room: RoomId) -> Result<bool, StorageError> {
    Ok(conn
        .query_row(
            "SELECT r.kind IN (0, 1) AND r.name_key IS NOT 'public' \
             AND NOT EXISTS (SELECT 1 FROM members m WHERE m.room_id = r.id AND m.role = 2) \
         FROM rooms r WHERE r.id = ?1",
            params![room.0 as i64],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false))
}

/// Makes the member who has been a moderator longest, else the member who has been there
/// longest, the owner of `room`, whose owner has just gone. Bots are passed over. Returns the
/// new owner; `None` leaves the room without one until a person joins it.
pub(super) fn hand_over(conn: &Connection, room: RoomId) -> Result<Option<UserId>, StorageError> {
    let heir: Option<i64> = conn
        .query_row(
            "SELECT m.user_id FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = ?1 AND u.is_bot = 0 \
             ORDER BY m.role DESC, m.joined_at, m.user_id LIMIT 1",
            params![room.0 as i64],
            |r| r.get(0),
        )
        .optional()?;
    let Some(heir) = heir else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE members SET role = 2 WHERE room_id = ?1 AND user_id = ?2",
        params![room.0 as i64, heir],
    )?;
    Ok(Some(UserId(heir as u64)))
}

/// Inserts a membership as is: no checks, no notice (a new account joining `public`, a room's
/// creator, the two people of a direct chat). Like any newcomer, they start with what is
/// already there read.
pub(super) fn insert_member(
    conn: &Connection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    now: i64,
) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO members (room_id, user_id, role, last_read_seq, joined_at) \
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = ?1), ?4)",
        params![room.0 as i64, user.0 as i64, role_to_sql(role), now],
    )?;
    Ok(())
}
