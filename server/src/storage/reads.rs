//! Reads: a small pool of read-only connections used on the blocking pool, and the queries.
//!
//! In WAL mode a reader sees the last committed state and never blocks the writer, so history
//! and room lists cost the writer thread nothing.

use chatroom_protocol::{
    BanInfo, FileId, FileInfo, FileRef, HistoryAnchor, HistoryPage, Message, MessageId,
    MessageKind, MuteInfo, RoomId, RoomSummary, Seq, UnixMillis, UploadId, UserId,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;

use super::{
    RoomRow, Snapshot, StorageError, UserRow, kind_from_sql, message_kind_from_sql, role_from_sql,
    sha256_from_sql,
};

/// Read-only connections, lent out one per query.
#[derive(Debug)]
pub struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadPool {
    /// Opens `size` read-only connections to the database at `path`.
    pub fn open(path: &Path, size: usize) -> Result<Self, StorageError> {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size.max(1) {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute_batch("PRAGMA query_only = ON;")?;
            idle.push(conn);
        }
        Ok(Self {
            permits: Semaphore::new(idle.len()),
            idle: Mutex::new(idle),
        })
    }

    /// Runs `query` on a pooled connection on the blocking pool.
    pub async fn run<T, F>(&self, query: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StorageError::Closed)?;
        let conn = self
            .idle
            .lock()
            .map_err(|_| StorageError::Closed)?
            .pop()
            .ok_or(StorageError::Closed)?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = query(&conn);
            (conn, result)
        })
        .await
        .map_err(|_| StorageError::Closed)?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: UserId(r.get::<_, i64>(0)? as u64),
        name: r.get(1)?,
        name_key: r.get(2)?,
        is_admin: r.get(3)?,
    })
}

/// Everything the hub needs at start-up.
pub fn snapshot(conn: &Connection) -> Result<Snapshot, StorageError> {
    let mut snap = Snapshot::default();
    let mut stmt = conn.prepare("SELECT id, name, name_key, is_admin FROM users")?;
    snap.users = stmt
        .query_map([], user_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare("SELECT id, kind, COALESCE(name, ''), topic FROM rooms")?;
    snap.rooms = stmt
        .query_map([], |r| {
            Ok(RoomRow {
                id: RoomId(r.get::<_, i64>(0)? as u64),
                kind: kind_from_sql(r.get(1)?),
                name: r.get(2)?,
                topic: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare("SELECT room_id, user_id, role FROM members")?;
    snap.members = stmt
        .query_map([], |r| {
            Ok((
                RoomId(r.get::<_, i64>(0)? as u64),
                UserId(r.get::<_, i64>(1)? as u64),
                role_from_sql(r.get(2)?),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare("SELECT token_hash, user_id, last_used_at FROM sessions")?;
    let sessions = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            UserId(r.get::<_, i64>(1)? as u64),
            r.get::<_, i64>(2)?.max(0) as UnixMillis,
        ))
    })?;
    for session in sessions {
        let (hash, user, last_used) = session?;
        if let Some(hash) = sha256_from_sql(hash) {
            snap.sessions.push((hash, user, last_used));
        }
    }
    let mut stmt = conn.prepare("SELECT room_id, user_id, until FROM mutes")?;
    snap.mutes = stmt
        .query_map([], |r| {
            Ok((
                RoomId(r.get::<_, i64>(0)? as u64),
                UserId(r.get::<_, i64>(1)? as u64),
                r.get::<_, Option<i64>>(2)?.map(|t| t as UnixMillis),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare("SELECT room_id, MAX(seq) FROM messages GROUP BY room_id")?;
    snap.latest_seqs = stmt
        .query_map([], |r| {
            Ok((
                RoomId(r.get::<_, i64>(0)? as u64),
                r.get::<_, i64>(1)? as Seq,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(snap)
}

/// The account and password hash for a login, by name key.
pub fn user_for_login(
    conn: &Connection,
    name_key: &str,
) -> Result<Option<(UserRow, String)>, StorageError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, name_key, is_admin, password_hash FROM users WHERE name_key = ?1",
        )?
        .query_row(params![name_key], |r| Ok((user_row(r)?, r.get(4)?)))
        .optional()?)
}

/// The password hash of an account.
pub fn password_hash(conn: &Connection, user: UserId) -> Result<Option<String>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT password_hash FROM users WHERE id = ?1")?
        .query_row(params![user.0 as i64], |r| r.get(0))
        .optional()?)
}

/// Every account, by name key (for the admin command line).
pub fn all_users(conn: &Connection) -> Result<Vec<UserRow>, StorageError> {
    let mut stmt =
        conn.prepare("SELECT id, name, name_key, is_admin FROM users ORDER BY name_key")?;
    let users = stmt
        .query_map([], user_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(users)
}

/// The room-list query: one row per room with my counts. `?1` is me; the WHERE clause is added.
const SUMMARY_SELECT: &str = "
    SELECT r.id, r.kind,
        CASE WHEN r.kind = 2 THEN COALESCE((
            SELECT u.name FROM members o JOIN users u ON u.id = o.user_id
            WHERE o.room_id = r.id AND o.user_id != ?1 LIMIT 1),
            -- The other account was deleted: its name, kept at the deletion, or (deleted
            -- before that was done) the name its messages were sent under, marked so that
            -- it is not taken for a chat with a new account of the same name.
            r.name || ' (deleted)', (
            SELECT x.sender_name FROM messages x
            WHERE x.room_id = r.id AND x.sender_id != ?1 ORDER BY x.seq DESC LIMIT 1)
                || ' (deleted)', (
            -- A chat with myself.
            SELECT u.name FROM users u
            WHERE u.id = ?1 AND r.direct_key = ?1 || ':' || ?1), '') ELSE r.name END,
        r.topic,
        (SELECT COUNT(*) FROM members c WHERE c.room_id = r.id),
        COALESCE((SELECT MAX(seq) FROM messages x WHERE x.room_id = r.id), 0),
        m.role,
        COALESCE(m.last_read_seq, 0),
        CASE WHEN m.user_id IS NULL THEN 0 ELSE (
            -- Room notices (kind 1: joins, kicks, topics) are not news to count, and a
            -- deleted message (kind 3) is nothing left to read. Counted up to
            -- MAX_UNREAD_COUNT (a test checks the two agree).
            SELECT COUNT(*) FROM (SELECT 1 FROM messages x
            WHERE x.room_id = r.id AND x.seq > m.last_read_seq AND x.sender_id != ?1
                AND x.kind NOT IN (1, 3) LIMIT 9999)) END,
        CASE WHEN m.user_id IS NULL THEN 0 ELSE (
            SELECT COUNT(*) FROM mentions n
            WHERE n.user_id = ?1 AND n.room_id = r.id AND n.seq > m.last_read_seq) END
    FROM rooms r LEFT JOIN members m ON m.room_id = r.id AND m.user_id = ?1";

fn summary_row(r: &Row<'_>) -> rusqlite::Result<RoomSummary> {
    Ok(RoomSummary {
        id: RoomId(r.get::<_, i64>(0)? as u64),
        kind: kind_from_sql(r.get(1)?),
        name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        topic: r.get(3)?,
        member_count: r.get::<_, i64>(4)? as u32,
        latest_seq: r.get::<_, i64>(5)? as Seq,
        my_role: r.get::<_, Option<i64>>(6)?.map(role_from_sql),
        last_read_seq: r.get::<_, i64>(7)? as Seq,
        unread: r.get::<_, i64>(8)? as u32,
        mentions: r.get::<_, i64>(9)? as u32,
    })
}

/// The rooms and direct chats `user` is in: named rooms by name, then direct chats by name.
pub fn my_rooms(conn: &Connection, user: UserId) -> Result<Vec<RoomSummary>, StorageError> {
    let sql = format!(
        "{SUMMARY_SELECT} WHERE m.user_id IS NOT NULL ORDER BY r.kind = 2, 3 COLLATE NOCASE"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rooms = stmt
        .query_map(params![user.0 as i64], summary_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rooms)
}

/// Every public room, with `user`'s counts where they are a member.
pub fn public_rooms(conn: &Connection, user: UserId) -> Result<Vec<RoomSummary>, StorageError> {
    let sql = format!("{SUMMARY_SELECT} WHERE r.kind = 0 ORDER BY 3 COLLATE NOCASE");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rooms = stmt
        .query_map(params![user.0 as i64], summary_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rooms)
}

/// One room as `user` sees it.
pub fn room_summary(
    conn: &Connection,
    user: UserId,
    room: RoomId,
) -> Result<Option<RoomSummary>, StorageError> {
    let sql = format!("{SUMMARY_SELECT} WHERE r.id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![user.0 as i64, room.0 as i64], summary_row)
        .optional()?)
}

/// An upper bound of a message's encoded size in a history page, to keep pages under the frame
/// limit: the strings plus 64 bytes for the fixed fields and length prefixes, and as much again
/// for a file's.
pub(super) fn encoded_size_estimate(m: &Message) -> usize {
    let file = match &m.kind {
        MessageKind::File(file) => file.name.len() + 64,
        MessageKind::Edited { .. } => 16,
        _ => 0,
    };
    m.text.len() + m.sender_name.len() + 64 + file
}

/// The `FileRef` in columns `first..first + 4` (id, name, size, sha256) of a row that LEFT
/// JOINed `files`; `None` when there is no file.
fn file_ref_from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<Option<FileRef>> {
    let Some(id) = r.get::<_, Option<i64>>(first)? else {
        return Ok(None);
    };
    let Some(sha256) = sha256_from_sql(r.get(first + 3)?) else {
        return Ok(None);
    };
    Ok(Some(FileRef {
        id: FileId(id as u64),
        name: r.get(first + 1)?,
        size: r.get::<_, i64>(first + 2)? as u64,
        sha256,
    }))
}

/// The columns [`message_from_row`] reads, for a query over `messages m LEFT JOIN files f`.
pub(super) const MESSAGE_COLUMNS: &str = "m.id, m.room_id, m.seq, m.sender_id, m.sender_name, \
     m.ts, m.kind, m.text, f.id, f.name, f.size, f.sha256, m.edited_at";

/// The message in a row that starts with [`MESSAGE_COLUMNS`].
pub(super) fn message_from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId(r.get::<_, i64>(0)? as u64),
        room: RoomId(r.get::<_, i64>(1)? as u64),
        seq: r.get::<_, i64>(2)? as Seq,
        sender: UserId(r.get::<_, i64>(3)? as u64),
        sender_name: r.get(4)?,
        ts: r.get::<_, i64>(5)? as u64,
        kind: message_kind_from_sql(r.get(6)?, file_ref_from_row(r, 8)?, r.get(12)?),
        text: r.get(7)?,
    })
}

/// A page of history, oldest first, at most `limit` messages and at most `byte_budget` bytes of
/// encoded messages (a page is cut short, with `has_more`, rather than exceed the frame limit).
pub fn history(
    conn: &Connection,
    room: RoomId,
    anchor: HistoryAnchor,
    limit: u32,
    byte_budget: usize,
) -> Result<HistoryPage, StorageError> {
    let limit = limit.max(1);
    let fetch = i64::from(limit) + 1;
    let (sql, bound, ascending) = match anchor {
        HistoryAnchor::Latest => (
            "SELECT m.id, m.room_id, m.seq, m.sender_id, m.sender_name, m.ts, m.kind, m.text, \
                    f.id, f.name, f.size, f.sha256, m.edited_at \
             FROM messages m LEFT JOIN files f ON f.id = m.file_id \
             WHERE m.room_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3",
            i64::MAX,
            false,
        ),
        HistoryAnchor::Before(seq) => (
            "SELECT m.id, m.room_id, m.seq, m.sender_id, m.sender_name, m.ts, m.kind, m.text, \
                    f.id, f.name, f.size, f.sha256, m.edited_at \
             FROM messages m LEFT JOIN files f ON f.id = m.file_id \
             WHERE m.room_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3",
            i64::try_from(seq).unwrap_or(i64::MAX),
            false,
        ),
        HistoryAnchor::After(seq) => (
            "SELECT m.id, m.room_id, m.seq, m.sender_id, m.sender_name, m.ts, m.kind, m.text, \
                    f.id, f.name, f.size, f.sha256, m.edited_at \
             FROM messages m LEFT JOIN files f ON f.id = m.file_id \
             WHERE m.room_id = ?1 AND m.seq > ?2 ORDER BY m.seq ASC LIMIT ?3",
            i64::try_from(seq).unwrap_or(i64::MAX),
            true,
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![room.0 as i64, bound, fetch])?;
    let mut messages = Vec::new();
    let mut has_more = false;
    let mut bytes = 0usize;
    while let Some(r) = rows.next()? {
        if messages.len() as u32 == limit {
            has_more = true;
            break;
        }
        let m = message_from_row(r)?;
        bytes += encoded_size_estimate(&m);
        if bytes > byte_budget && !messages.is_empty() {
            has_more = true;
            break;
        }
        messages.push(m);
    }
    if !ascending {
        messages.reverse();
    }
    Ok(HistoryPage {
        room,
        messages,
        has_more,
    })
}

const FILE_COLUMNS: &str =
    "id, room_id, seq, name, size, sha256, uploader_id, uploader_name, ts FROM files";

fn file_info_from_row(r: &Row<'_>) -> rusqlite::Result<Option<FileInfo>> {
    let Some(sha256) = sha256_from_sql(r.get(5)?) else {
        return Ok(None);
    };
    Ok(Some(FileInfo {
        id: FileId(r.get::<_, i64>(0)? as u64),
        room: RoomId(r.get::<_, i64>(1)? as u64),
        seq: r.get::<_, i64>(2)? as Seq,
        name: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        sha256,
        uploader: UserId(r.get::<_, i64>(6)? as u64),
        uploader_name: r.get(7)?,
        ts: r.get::<_, i64>(8)? as u64,
    }))
}

/// A posted file.
pub fn file_info(conn: &Connection, file: FileId) -> Result<Option<FileInfo>, StorageError> {
    let sql = format!("SELECT {FILE_COLUMNS} WHERE id = ?1");
    let info = conn
        .prepare_cached(&sql)?
        .query_row(params![file.0 as i64], file_info_from_row)
        .optional()?;
    Ok(info.flatten())
}

/// The files posted in a room, newest first, at most `limit`.
pub fn list_files(
    conn: &Connection,
    room: RoomId,
    limit: u32,
) -> Result<Vec<FileInfo>, StorageError> {
    let sql = format!("SELECT {FILE_COLUMNS} WHERE room_id = ?1 ORDER BY id DESC LIMIT ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![room.0 as i64, i64::from(limit)], file_info_from_row)?;
    let mut files = Vec::new();
    for row in rows {
        if let Some(info) = row? {
            files.push(info);
        }
    }
    Ok(files)
}

/// The hash of every posted file, and the id of every upload in progress: what the start-up
/// sweep keeps on disk.
pub fn file_references(
    conn: &Connection,
) -> Result<(std::collections::HashSet<[u8; 32]>, Vec<UploadId>), StorageError> {
    let mut hashes = std::collections::HashSet::new();
    let mut stmt = conn.prepare("SELECT DISTINCT sha256 FROM files")?;
    for sha in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))? {
        if let Some(sha) = sha256_from_sql(sha?) {
            hashes.insert(sha);
        }
    }
    let mut stmt = conn.prepare("SELECT id FROM uploads")?;
    let uploads = stmt
        .query_map([], |r| r.get::<_, i64>(0))?
        .map(|id| id.map(|id| UploadId(id as u64)))
        .collect::<Result<_, _>>()?;
    Ok((hashes, uploads))
}

/// Whether `user` may already read content with this hash and size: a file with it is in a room
/// they are a member of, or they posted one. Only then may an upload skip sending the bytes,
/// or anyone could get any stored file by its hash.
pub fn can_read_content(
    conn: &Connection,
    user: UserId,
    sha256: &[u8; 32],
    size: u64,
) -> Result<bool, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM files f \
           WHERE f.sha256 = ?1 AND f.size = ?2 \
             AND (f.uploader_id = ?3 OR EXISTS (SELECT 1 FROM members m \
                    WHERE m.room_id = f.room_id AND m.user_id = ?3)))",
    )?;
    Ok(
        stmt.query_row(params![&sha256[..], size as i64, user.0 as i64], |r| {
            r.get(0)
        })?,
    )
}

/// A room's bans, newest first (at most [`MAX_LISTED`]).
pub fn bans(conn: &Connection, room: RoomId) -> Result<Vec<BanInfo>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.name, b.by_name, b.reason, b.created_at FROM bans b \
         JOIN users u ON u.id = b.user_id WHERE b.room_id = ?1 ORDER BY b.created_at DESC \
         LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![room.0 as i64, MAX_LISTED as i64], ban_info_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A [`BanInfo`] from a row of (name, by_name, reason, created_at).
fn ban_info_row(r: &Row<'_>) -> rusqlite::Result<BanInfo> {
    Ok(BanInfo {
        username: r.get(0)?,
        by: r.get(1)?,
        reason: r.get(2)?,
        since: r.get::<_, i64>(3)? as UnixMillis,
    })
}

/// Why the session with this token hash was ended by someone else, if it was (and not too
/// long ago: see `ended_sessions` in the schema).
pub fn why_session_ended(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<EndedSession>, StorageError> {
    Ok(conn
        .prepare_cached(
            "SELECT e.why, s.by_name, s.reason FROM ended_sessions e \
             LEFT JOIN suspensions s ON s.user_id = e.user_id WHERE e.token_hash = ?1",
        )?
        .query_row(params![token_hash], |r| {
            let by: Option<String> = r.get(1)?;
            let reason: Option<String> = r.get(2)?;
            Ok(EndedSession {
                why: r.get(0)?,
                suspended: by.map(|by| (by, reason)),
            })
        })
        .optional()?)
}

/// A session someone else ended ([`why_session_ended`]).
#[derive(Debug)]
pub struct EndedSession {
    /// Why it ended.
    pub why: String,
    /// Who suspended its account, and why, if the account is suspended now.
    pub suspended: Option<(String, Option<String>)>,
}

/// The suspended accounts, newest first (at most [`MAX_LISTED`]).
pub fn suspensions(conn: &Connection) -> Result<Vec<BanInfo>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.name, s.by_name, s.reason, s.created_at FROM suspensions s \
         JOIN users u ON u.id = s.user_id ORDER BY s.created_at DESC, s.rowid DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![MAX_LISTED as i64], ban_info_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The most bans, mutes or suspensions one answer lists (newest first), so that a room with a long history
/// of them cannot make an answer larger than a frame (each is well under 1 KiB).
pub const MAX_LISTED: usize = 500;

/// The mutes of a room still in force at `now`, newest first (at most [`MAX_LISTED`]).
pub fn mutes(
    conn: &Connection,
    room: RoomId,
    now: UnixMillis,
) -> Result<Vec<MuteInfo>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.name, m.by_name, m.reason, m.created_at, m.until FROM mutes m \
         JOIN users u ON u.id = m.user_id \
         WHERE m.room_id = ?1 AND (m.until IS NULL OR m.until > ?2) \
         ORDER BY m.created_at DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![room.0 as i64, now as i64, MAX_LISTED as i64], |r| {
        Ok(MuteInfo {
            username: r.get(0)?,
            by: r.get(1)?,
            reason: r.get(2)?,
            since: r.get::<_, i64>(3)? as UnixMillis,
            until: r.get::<_, Option<i64>>(4)?.map(|t| t as UnixMillis),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_protocol::codec::encode_frame;

    #[test]
    fn bans_mutes_and_suspensions_list_the_newest_and_no_more_than_a_frame_holds() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        let many = MAX_LISTED as i64 + 20;
        // Room 1 is `public`, which the schema creates.
        for id in 1..=many {
            conn.execute(
                "INSERT INTO users (id, name, name_key, password_hash, created_at) \
                 VALUES (?1, 'u' || ?1, 'u' || ?1, '-', 0)",
                params![id],
            )
            .expect("user");
            for table in ["bans", "mutes"] {
                conn.execute(
                    &format!(
                        "INSERT INTO {table} (room_id, user_id, by_name, created_at) \
                         VALUES (1, ?1, 'mod', ?1)"
                    ),
                    params![id],
                )
                .expect("row");
            }
            conn.execute(
                "INSERT INTO suspensions (user_id, by_name, created_at) VALUES (?1, 'admin', ?1)",
                params![id],
            )
            .expect("suspension");
        }
        let bans = bans(&conn, RoomId(1)).expect("bans");
        let mutes = mutes(&conn, RoomId(1), 0).expect("mutes");
        let suspensions = suspensions(&conn).expect("suspensions");
        assert_eq!(
            (bans.len(), mutes.len(), suspensions.len()),
            (MAX_LISTED, MAX_LISTED, MAX_LISTED)
        );
        let newest = format!("u{many}");
        assert_eq!(bans[0].username, newest);
        assert_eq!(mutes[0].username, newest);
        assert_eq!(suspensions[0].username, newest);
        let frame = encode_frame(
            &chatroom_protocol::Response::Mutes(mutes),
            crate::config::LimitsConfig::default().max_frame_bytes,
        );
        assert!(frame.is_ok(), "fits the default frame: {frame:?}");
    }

    #[test]
    fn unread_is_counted_up_to_the_protocol_cap_and_leaves_notices_and_my_own_out() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        // Room 1 is `public`, which the schema creates; alice read nothing there.
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', '-', 0), (2, 'bob', 'bob', '-', 0);
             INSERT INTO members (room_id, user_id, role, joined_at, last_read_seq)
                 VALUES (1, 1, 0, 0, 0), (1, 2, 0, 0, 0);",
        )
        .expect("rows");
        let post = |conn: &Connection, count: i64, sender: i64, kind: i64| {
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text)
                     SELECT 1, (SELECT COALESCE(MAX(seq), 0) FROM messages) + i, ?2, 'x', 0,
                         ?3, 'hi' FROM n",
                params![count, sender, kind],
            )
            .expect("messages");
        };
        let unread = |conn: &Connection| my_rooms(conn, UserId(1)).expect("rooms")[0].unread;
        post(&conn, 5, 2, 0);
        post(&conn, 3, 2, 1);
        post(&conn, 4, 1, 0);
        assert_eq!(unread(&conn), 5, "bob's texts; not notices, not mine");
        post(&conn, i64::from(chatroom_protocol::MAX_UNREAD_COUNT), 2, 0);
        assert_eq!(unread(&conn), chatroom_protocol::MAX_UNREAD_COUNT);
    }

    #[test]
    fn the_size_estimate_bounds_every_kind_of_message() {
        let long = "名".repeat(1000);
        let file = FileRef {
            id: FileId(u64::MAX),
            name: "n".repeat(255),
            size: u64::MAX,
            sha256: [0xff; 32],
        };
        for kind in [
            MessageKind::Text,
            MessageKind::System,
            MessageKind::Deleted,
            MessageKind::Edited { at: u64::MAX },
            MessageKind::File(Box::new(file)),
        ] {
            let m = Message {
                id: MessageId(u64::MAX),
                room: RoomId(u64::MAX),
                seq: u64::MAX,
                sender: UserId(u64::MAX),
                sender_name: "s".repeat(32),
                ts: UnixMillis::MAX,
                kind,
                text: long.clone(),
            };
            let encoded = encode_frame(&m, u32::MAX).map(|f| f.len());
            assert!(
                encoded
                    .as_ref()
                    .is_ok_and(|&n| n <= encoded_size_estimate(&m)),
                "{:?}: encoded {encoded:?}, estimated {}",
                m.kind,
                encoded_size_estimate(&m)
            );
        }
    }
}
