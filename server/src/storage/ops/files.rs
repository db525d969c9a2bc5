//! Files: uploads in progress (their quota, expiry and cancellation) and posting a verified
//! upload as a file message.

use chatroom_protocol::{
    ErrorCode, FileId, FileInfo, FileRef, Message, MessageId, MessageKind, RoomId, UnixMillis,
    UploadId, UserId,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Applying, Outcome, refused, require_member};
use crate::files::{FileStore, human_size};
use crate::storage::StorageError;

/// The fields of a [`super::WriteOp::PostFile`], passed as one argument: ten are too many for
/// an argument list.
pub(super) struct PostFile<'a> {
    pub(super) upload: UploadId,
    pub(super) user: UserId,
    pub(super) user_name: &'a str,
    pub(super) room: RoomId,
    pub(super) name: &'a str,
    pub(super) size: u64,
    pub(super) sha256: &'a [u8; 32],
    pub(super) quota: u64,
    pub(super) text: &'a str,
    pub(super) store: &'a FileStore,
}

/// [`super::WriteOp::OpenUpload`].
pub(super) fn open_upload(
    cx: Applying<'_, '_>,
    user: UserId,
    room: RoomId,
    name: &str,
    size: u64,
    sha256: &[u8; 32],
    quota: u64,
) -> Result<Outcome, StorageError> {
    let (conn, now) = (cx.conn, cx.now);
    let existing: Option<i64> = conn
        .query_row(
            "SELECT id FROM uploads \
             WHERE user_id = ?1 AND room_id = ?2 AND sha256 = ?3 AND size = ?4",
            params![user.0 as i64, room.0 as i64, sha256.as_slice(), size as i64],
            |r| r.get(0),
        )
        .optional()?;
    check_quota(conn, user, size, existing, quota)?;
    match existing {
        Some(id) => {
            conn.execute(
                "UPDATE uploads SET name = ?1, updated_at = ?2 WHERE id = ?3",
                params![name, now, id],
            )?;
            Ok(Outcome::Upload {
                id: UploadId(id as u64),
                created: false,
            })
        }
        None => {
            conn.execute(
                "INSERT INTO uploads (user_id, room_id, name, size, sha256, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    user.0 as i64,
                    room.0 as i64,
                    name,
                    size as i64,
                    sha256.as_slice(),
                    now
                ],
            )?;
            Ok(Outcome::Upload {
                id: UploadId(conn.last_insert_rowid() as u64),
                created: true,
            })
        }
    }
}

/// [`super::WriteOp::DeleteUpload`].
pub(super) fn delete_upload(
    cx: Applying<'_, '_>,
    upload: UploadId,
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    conn.execute(
        "DELETE FROM uploads WHERE id = ?1",
        params![upload.0 as i64],
    )?;
    Ok(Outcome::Done)
}

/// [`super::WriteOp::ExpireUploads`].
pub(super) fn expire_uploads(
    cx: Applying<'_, '_>,
    cutoff: UnixMillis,
    keep: &[UploadId],
    force: &[UploadId],
) -> Result<Outcome, StorageError> {
    let conn = cx.conn;
    let mut expired = Vec::new();
    {
        let mut stmt = conn.prepare_cached("SELECT id FROM uploads WHERE updated_at < ?1")?;
        let rows = stmt.query_map(params![cutoff as i64], |r| r.get::<_, i64>(0))?;
        for id in rows {
            let id = UploadId(id? as u64);
            if !keep.contains(&id) {
                expired.push(id);
            }
        }
    }
    for id in force {
        if !expired.contains(id) {
            expired.push(*id);
        }
    }
    let mut stmt = conn.prepare_cached("DELETE FROM uploads WHERE id = ?1")?;
    for id in &expired {
        stmt.execute(params![id.0 as i64])?;
    }
    Ok(Outcome::Uploads(expired))
}

/// [`super::WriteOp::PostFile`].
pub(super) fn post(cx: Applying<'_, '_>, post: PostFile<'_>) -> Result<Outcome, StorageError> {
    let (conn, now, seqs, posted) = (cx.conn, cx.now, cx.seqs, cx.posted);
    require_member(conn, post.room, post.user)?;
    check_quota(
        conn,
        post.user,
        post.size,
        Some(post.upload.0 as i64),
        post.quota,
    )?;
    post.store
        .commit_part(post.upload, post.sha256)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                refused(
                    ErrorCode::UploadNotFound,
                    "the upload's bytes are gone; offer the file again",
                )
            } else {
                StorageError::Io(e)
            }
        })?;
    let seq = seqs.latest(post.room) + 1;
    conn.prepare_cached(
        "INSERT INTO files (room_id, seq, name, size, sha256, uploader_id, uploader_name, ts) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        post.room.0 as i64,
        seq as i64,
        post.name,
        post.size as i64,
        post.sha256.as_slice(),
        post.user.0 as i64,
        post.user_name,
        now
    ])?;
    let file = FileId(conn.last_insert_rowid() as u64);
    conn.prepare_cached(
        "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text, file_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, 2, ?6, ?7)",
    )?
    .execute(params![
        post.room.0 as i64,
        seq as i64,
        post.user.0 as i64,
        post.user_name,
        now,
        post.text,
        file.0 as i64
    ])?;
    let id = MessageId(conn.last_insert_rowid() as u64);
    conn.prepare_cached(
        "UPDATE members SET last_read_seq = ?1 WHERE room_id = ?2 AND user_id = ?3",
    )?
    .execute(params![seq as i64, post.room.0 as i64, post.user.0 as i64])?;
    conn.execute(
        "DELETE FROM uploads WHERE id = ?1",
        params![post.upload.0 as i64],
    )?;
    posted.took(post.room, seq);
    let info = FileInfo {
        id: file,
        room: post.room,
        seq,
        name: post.name.to_owned(),
        size: post.size,
        sha256: *post.sha256,
        uploader: post.user,
        uploader_name: post.user_name.to_owned(),
        ts: now as UnixMillis,
    };
    let message = Message {
        id,
        room: post.room,
        seq,
        sender: post.user,
        sender_name: post.user_name.to_owned(),
        ts: now as UnixMillis,
        kind: MessageKind::File(Box::new(FileRef {
            id: file,
            name: post.name.to_owned(),
            size: post.size,
            sha256: *post.sha256,
        })),
        text: post.text.to_owned(),
    };
    Ok(Outcome::File { info, message })
}

/// Refuses an upload of `size` bytes that would take `user` over `quota` (0: no quota),
/// counting their stored files and their other uploads in progress (not `this_upload`).
fn check_quota(
    conn: &Connection,
    user: UserId,
    size: u64,
    this_upload: Option<i64>,
    quota: u64,
) -> Result<(), StorageError> {
    if quota == 0 {
        return Ok(());
    }
    let used: i64 = conn.query_row(
        "SELECT (SELECT COALESCE(SUM(size), 0) FROM files WHERE uploader_id = ?1) + \
                (SELECT COALESCE(SUM(size), 0) FROM uploads WHERE user_id = ?1 AND id IS NOT ?2)",
        params![user.0 as i64, this_upload],
        |r| r.get(0),
    )?;
    let used = used.max(0) as u64;
    if used.saturating_add(size) > quota {
        return Err(refused(
            ErrorCode::QuotaExceeded,
            format!(
                "this file ({}) would take you over your quota: {} of {} used",
                human_size(size),
                human_size(used),
                human_size(quota)
            ),
        ));
    }
    Ok(())
}
