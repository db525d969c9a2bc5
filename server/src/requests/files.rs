//! File transfer: offer, chunks, finish and cancel of uploads; file details, reads and lists;
//! deleting messages, one or what someone posted lately (which is how a posted file is
//! removed).
//!
//! Disk work runs on the blocking pool. Uploads are checked chunk by chunk (order, size, the
//! declared total) and verified against their SHA-256 before anything is posted. A download is
//! a series of `ReadFile` requests; each answer holds one of the connection's few download
//! slots until the writer has sent it, so a client that reads slowly stalls its own requests
//! and holds no thread and no more than those few chunks of memory.

use bytes::Bytes;
use chatroom_protocol::codec::encode_frame;
use chatroom_protocol::{
    ErrorCode, Event, FileId, FileInfo, Response, RoomId, Seq, ServerFrame, UploadId, UploadReady,
    now_millis,
};
use sha2::Digest;
use std::sync::Arc;
use std::time::Instant;

use super::{Conn, internal};
use crate::error::{RequestError, RequestResult};
use crate::files::uploads::{Upload, UploadHandle};
use crate::files::{human_size, names};
use crate::storage::{Outcome, UserRow, WriteOp, reads};

/// Uploads one user may have in progress at once.
const MAX_UPLOADS_PER_USER: usize = 64;
/// Most files one `ListFiles` returns.
const MAX_LISTED_FILES: u32 = 500;

/// A frame that gives its download slot back when the writer drops it.
struct SlotFrame {
    frame: Bytes,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl AsRef<[u8]> for SlotFrame {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

fn upload_not_found() -> RequestError {
    RequestError::new(
        ErrorCode::UploadNotFound,
        "no such upload in progress; offer the file again",
    )
}

fn file_not_found() -> RequestError {
    RequestError::new(ErrorCode::FileNotFound, "no such file")
}

fn bad_chunk(message: impl Into<String>) -> RequestError {
    RequestError::new(ErrorCode::BadChunk, message)
}

fn blocking_failed(e: tokio::task::JoinError) -> RequestError {
    RequestError::Internal(format!("file task failed: {e}"))
}

/// A short human description of a file, used as the text of its message.
pub(crate) fn describe(name: &str, size: u64) -> String {
    format!("📎 {name} ({})", human_size(size))
}

impl Conn {
    pub(super) async fn offer_upload(
        &self,
        me: &UserRow,
        room: RoomId,
        name: String,
        size: u64,
        sha256: [u8; 32],
    ) -> RequestResult<Response> {
        let (view, _) = self.member_room(me, room)?;
        self.require_may_post(&view)?;
        let limits = &self.shared.config.files;
        if size > limits.max_file_bytes {
            return Err(RequestError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "the file is {}; this server takes files up to {}",
                    human_size(size),
                    human_size(limits.max_file_bytes)
                ),
            ));
        }
        if self.shared.uploads.count_for(me.id) >= MAX_UPLOADS_PER_USER {
            return Err(RequestError::new(
                ErrorCode::RateLimited,
                "too many uploads in progress; finish or cancel some first",
            ));
        }
        let name = names::sanitize(&name);
        let outcome = self
            .shared
            .storage
            .writer
            .write(WriteOp::OpenUpload {
                user: me.id,
                room,
                name: name.clone(),
                size,
                sha256,
                quota: limits.quota_bytes,
            })
            .await?;
        let Outcome::Upload { id, .. } = outcome else {
            return Err(RequestError::Internal(format!(
                "unexpected outcome {outcome:?}"
            )));
        };
        let handle = match self.shared.uploads.get(id) {
            Some(handle) => handle,
            None => self.load_upload(id, me, room, &name, size, sha256).await?,
        };
        let mut upload = handle.lock().await;
        if upload.gone {
            // Expired between the row lookup and now; a new offer starts afresh.
            return Err(upload_not_found());
        }
        upload.room = room;
        upload.name = name;
        upload.last_activity = Instant::now();
        if upload.received < size {
            let store = self.shared.files.clone();
            let stored = tokio::task::spawn_blocking(move || store.blob_len(&sha256))
                .await
                .map_err(blocking_failed)?;
            let user = me.id;
            upload.already_stored = stored == Some(size)
                && self
                    .shared
                    .storage
                    .reads
                    .run(move |c| reads::can_read_content(c, user, &sha256, size))
                    .await?;
        }
        let offset = if upload.already_stored {
            size
        } else {
            upload.received
        };
        Ok(Response::UploadReady(UploadReady {
            upload: id,
            offset,
            max_chunk_bytes: self.shared.config.chunk_bytes(),
            window: limits.window.max(1),
        }))
    }

    /// Puts an upload known to the database (from before a restart, or new) into memory,
    /// picking up whatever bytes its part file has.
    async fn load_upload(
        &self,
        id: UploadId,
        me: &UserRow,
        room: RoomId,
        name: &str,
        size: u64,
        sha256: [u8; 32],
    ) -> RequestResult<UploadHandle> {
        let (hasher, received) = self.reread_part(id, size).await?;
        Ok(self.shared.uploads.insert(Upload {
            id,
            user: me.id,
            room,
            name: name.to_owned(),
            size,
            sha256,
            received,
            hasher: Some(hasher),
            already_stored: false,
            last_activity: Instant::now(),
            gone: false,
        }))
    }

    /// What an upload's part file holds: its hash state and length, or a fresh start when it
    /// holds more than `size` bytes (which cannot be a prefix of the file).
    async fn reread_part(&self, id: UploadId, size: u64) -> RequestResult<(sha2::Sha256, u64)> {
        let store = self.shared.files.clone();
        tokio::task::spawn_blocking(move || {
            let (hasher, len) = store.rehash_part(id)?;
            if len > size {
                store.remove_part(id)?;
                return Ok((sha2::Sha256::new(), 0));
            }
            Ok::<_, std::io::Error>((hasher, len))
        })
        .await
        .map_err(blocking_failed)?
        .map_err(|e| RequestError::Internal(format!("reading an upload: {e}")))
    }

    /// My upload in progress with this id, locked: chunks of one upload are handled one at a
    /// time, in order (see `files::uploads`).
    async fn my_upload(
        &self,
        me: &UserRow,
        id: UploadId,
    ) -> RequestResult<tokio::sync::OwnedMutexGuard<Upload>> {
        let handle = self.shared.uploads.get(id).ok_or_else(upload_not_found)?;
        let upload = handle.lock_owned().await;
        if upload.gone || upload.user != me.id {
            return Err(upload_not_found());
        }
        Ok(upload)
    }

    pub(super) async fn upload_chunk(
        &self,
        me: &UserRow,
        id: UploadId,
        offset: u64,
        data: Vec<u8>,
    ) -> RequestResult<Response> {
        let mut upload = self.my_upload(me, id).await?;
        let max = self.shared.config.chunk_bytes() as usize;
        if data.len() > max {
            return Err(bad_chunk(format!(
                "a chunk may carry at most {max} bytes; this one has {}",
                data.len()
            )));
        }
        if data.is_empty() {
            return Err(bad_chunk("an empty chunk"));
        }
        if upload.already_stored {
            return Err(bad_chunk(
                "the server already has this file; finish the upload without sending bytes",
            ));
        }
        if offset != upload.received {
            return Err(bad_chunk(format!(
                "chunks must arrive in order: expected offset {}, got {offset}",
                upload.received
            )));
        }
        let end = offset.saturating_add(data.len() as u64);
        if end > upload.size {
            return Err(bad_chunk(format!(
                "this chunk ends at byte {end}, beyond the offered size {}",
                upload.size
            )));
        }
        let Some(mut hasher) = upload.hasher.take() else {
            return Err(upload_not_found());
        };
        let store = self.shared.files.clone();
        let written = tokio::task::spawn_blocking(move || {
            let result = store.write_part(id, offset, &data);
            if result.is_ok() {
                hasher.update(&data);
            }
            result.map(|()| hasher)
        })
        .await
        .map_err(blocking_failed)?;
        match written {
            Ok(hasher) => {
                upload.hasher = Some(hasher);
                upload.received = end;
                upload.last_activity = Instant::now();
                Ok(Response::ChunkStored {
                    upload: id,
                    received: end,
                })
            }
            Err(e @ crate::files::PartError::Short { .. }) => {
                // The part file lost bytes (removed or cut short): carry on from what it holds,
                // re-hashed, and tell the client, which offers again and resumes from there.
                let (hasher, received) = self.reread_part(id, upload.size).await?;
                tracing::warn!(
                    upload = id.0,
                    on_disk = received,
                    "an upload's part file was short"
                );
                upload.hasher = Some(hasher);
                upload.received = received;
                upload.last_activity = Instant::now();
                Err(bad_chunk(e.to_string()))
            }
            Err(e) => {
                // The disk refused (full?): drop the upload rather than keep a part file whose
                // hash state is unknown.
                tracing::error!(error = %e, upload = id.0, "cannot write an upload chunk");
                upload.gone = true;
                drop(upload);
                self.discard_upload(id).await;
                Err(RequestError::Internal(format!(
                    "writing an upload chunk: {e}"
                )))
            }
        }
    }

    /// Forgets an upload everywhere: memory, its part file, its row.
    async fn discard_upload(&self, id: UploadId) {
        self.shared.uploads.remove(id);
        let store = self.shared.files.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.remove_part(id)).await {
            tracing::warn!(error = %e, upload = id.0, "cannot remove an upload's part file");
        }
        if let Err(e) = self
            .shared
            .storage
            .writer
            .write(WriteOp::DeleteUpload { upload: id })
            .await
        {
            tracing::warn!(error = %e, upload = id.0, "cannot forget an upload");
        }
    }

    pub(super) async fn finish_upload(
        &self,
        me: &UserRow,
        id: UploadId,
    ) -> RequestResult<Response> {
        let mut upload = self.my_upload(me, id).await?;
        // Muted since the offer: the upload waits (until it expires) rather than posting.
        if let Some(view) = self.shared.hub.room_view(upload.room, me.id) {
            self.require_may_post(&view)?;
        }
        let (size, sha256) = (upload.size, upload.sha256);
        if upload.already_stored {
            let store = self.shared.files.clone();
            let stored = tokio::task::spawn_blocking(move || store.blob_len(&sha256))
                .await
                .map_err(blocking_failed)?;
            if stored != Some(size) {
                // The stored copy was deleted since the offer.
                upload.already_stored = false;
                return Err(bad_chunk(
                    "the server no longer has this file; offer it again and send its bytes",
                ));
            }
        } else {
            if upload.received < size {
                return Err(bad_chunk(format!(
                    "the upload is incomplete: {} of {size} bytes received",
                    upload.received
                )));
            }
            let Some(hasher) = &upload.hasher else {
                return Err(upload_not_found());
            };
            let digest: [u8; 32] = hasher.clone().finalize().into();
            if digest != sha256 {
                upload.gone = true;
                drop(upload);
                self.discard_upload(id).await;
                return Err(RequestError::new(
                    ErrorCode::HashMismatch,
                    "the bytes received do not match the file's SHA-256; the upload was discarded",
                ));
            }
            let store = self.shared.files.clone();
            tokio::task::spawn_blocking(move || {
                if size == 0 {
                    // No chunk ever created the part file of an empty file.
                    store.write_part(id, 0, &[])?;
                }
                store.sync_part(id)
            })
            .await
            .map_err(blocking_failed)?
            .map_err(|e| RequestError::Internal(format!("syncing an upload: {e}")))?;
        }
        let room = upload.room;
        let hub = self.shared.hub.clone();
        let outcome = self
            .shared
            .storage
            .writer
            .write_then(
                WriteOp::PostFile {
                    upload: id,
                    user: me.id,
                    user_name: me.name.clone(),
                    room,
                    name: upload.name.clone(),
                    size,
                    sha256,
                    quota: self.shared.config.files.quota_bytes,
                    text: describe(&upload.name, size),
                    store: self.shared.files.clone(),
                },
                move |outcome| {
                    if let Outcome::File { message, .. } = outcome
                        && let Some(frame) = hub.encode_event(&Event::Message(message.clone()))
                    {
                        hub.defer_broadcast(room, frame);
                    }
                },
            )
            .await?;
        let Outcome::File { info, .. } = outcome else {
            return Err(RequestError::Internal(format!(
                "unexpected outcome {outcome:?}"
            )));
        };
        upload.gone = true;
        self.shared.uploads.remove(id);
        Ok(Response::File(info))
    }

    pub(super) async fn cancel_upload(
        &self,
        me: &UserRow,
        id: UploadId,
    ) -> RequestResult<Response> {
        let mut upload = self.my_upload(me, id).await?;
        upload.gone = true;
        drop(upload);
        self.discard_upload(id).await;
        Ok(Response::Done)
    }

    /// A file I may see: it exists and I am a member of its room.
    async fn visible_file(&self, me: &UserRow, file: FileId) -> RequestResult<FileInfo> {
        let info = self
            .shared
            .storage
            .reads
            .run(move |c| reads::file_info(c, file))
            .await?
            .ok_or_else(file_not_found)?;
        // Not telling a non-member whether the file exists.
        self.member_room(me, info.room)
            .map_err(|_| file_not_found())?;
        Ok(info)
    }

    pub(super) async fn file_info(&self, me: &UserRow, file: FileId) -> RequestResult<Response> {
        Ok(Response::File(self.visible_file(me, file).await?))
    }

    /// Reads a range and queues the answer itself, holding a download slot until it is sent.
    pub(super) async fn read_file(
        &self,
        me: &UserRow,
        file: FileId,
        offset: u64,
        len: u32,
    ) -> RequestResult<Option<Response>> {
        let info = self.visible_file(me, file).await?;
        let len = u64::from(len.min(self.shared.config.chunk_bytes()))
            .min(info.size.saturating_sub(offset));
        if len == 0 {
            return Ok(Some(Response::FileChunk {
                file,
                offset,
                data: Vec::new(),
            }));
        }
        let slot = Arc::clone(&self.download_slots)
            .acquire_owned()
            .await
            .map_err(|_| RequestError::Internal("download slots closed".into()))?;
        let store = self.shared.files.clone();
        let sha256 = info.sha256;
        let data =
            tokio::task::spawn_blocking(move || store.read_blob(&sha256, offset, len as usize))
                .await
                .map_err(blocking_failed)?
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        file_not_found()
                    } else {
                        RequestError::Internal(format!("reading a file: {e}"))
                    }
                })?;
        let frame = ServerFrame::Response {
            id: self.current_request,
            result: Ok(Response::FileChunk { file, offset, data }),
        };
        let frame = encode_frame(&frame, self.shared.config.limits.max_frame_bytes)
            .map_err(|e| RequestError::Internal(format!("encoding a file chunk: {e}")))?;
        self.outlet
            .push(Bytes::from_owner(SlotFrame { frame, _slot: slot }));
        Ok(None)
    }

    pub(super) async fn list_files(&self, me: &UserRow, room: RoomId) -> RequestResult<Response> {
        self.member_room(me, room)?;
        let files = self
            .shared
            .storage
            .reads
            .run(move |c| reads::list_files(c, room, MAX_LISTED_FILES))
            .await?;
        Ok(Response::Files(files))
    }

    pub(super) async fn delete_message(
        &self,
        me: &UserRow,
        room: RoomId,
        seq: Seq,
    ) -> RequestResult<Response> {
        let (view, _) = self.member_room(me, room)?;
        let hub = self.shared.hub.clone();
        let by = me.name.clone();
        let outcome = self
            .shared
            .storage
            .writer
            .write_then(
                WriteOp::DeleteMessage {
                    room,
                    seq,
                    actor: me.id,
                    store: self.shared.files.clone(),
                },
                move |_| {
                    if let Some(frame) = hub.encode_event(&Event::MessageDeleted { room, seq, by })
                    {
                        hub.defer_broadcast(room, frame);
                    }
                },
            )
            .await?;
        // Moderation is logged, as kicks and bans are; people deleting their own words are not.
        if let Outcome::MessageDeleted {
            of_other: Some(sender),
            ..
        } = outcome
        {
            tracing::info!(room = %view.row.name, seq, sender = %sender, by = %me.name, "message deleted by a moderator");
        }
        Ok(Response::Done)
    }

    pub(super) async fn delete_messages_by(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
        within_secs: u64,
    ) -> RequestResult<Response> {
        let (view, _) = self.moderated_room(
            me,
            room,
            "only the owner or a moderator of a named room may delete someone's messages",
        )?;
        if within_secs == 0 {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                "say how far back to delete: at least one second",
            ));
        }
        let sender = self.user_named(&username)?;
        let since = now_millis().saturating_sub(within_secs.saturating_mul(1000));
        let hub = self.shared.hub.clone();
        let by = me.name.clone();
        let outcome = self
            .shared
            .storage
            .writer
            .write_then(
                WriteOp::DeleteMessagesBy {
                    room,
                    sender: sender.id,
                    since,
                    actor: me.id,
                    store: self.shared.files.clone(),
                },
                move |outcome| {
                    let Outcome::MessagesDeleted { seqs, .. } = outcome else {
                        return;
                    };
                    for &seq in seqs {
                        let event = Event::MessageDeleted {
                            room,
                            seq,
                            by: by.clone(),
                        };
                        if let Some(frame) = hub.encode_event(&event) {
                            hub.defer_broadcast(room, frame);
                        }
                    }
                },
            )
            .await?;
        let count = match outcome {
            Outcome::MessagesDeleted { seqs, .. } => seqs.len(),
            other => return Err(internal(format!("unexpected outcome {other:?}"))),
        };
        tracing::info!(
            room = %view.row.name,
            sender = %sender.name,
            within_secs,
            count,
            by = %me.name,
            "messages deleted by a moderator"
        );
        Ok(Response::Deleted {
            count: u32::try_from(count).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(200 * 1024 * 1024), "200.0 MiB");
        assert_eq!(describe("a.png", 2048), "📎 a.png (2.0 KiB)");
    }
}
