//! File transfer on top of [`ClientHandle`] (feature `client`): chunked, pipelined, resumable
//! uploads and downloads with SHA-256 verification, progress reports and cancellation.
//!
//! - [`upload`] hashes the file (streaming, on the blocking pool), offers it, streams chunks from
//!   the offset the server answers with — up to the server's `window` of chunks in flight — and
//!   finishes. Offering the same content again after an interruption continues from the bytes
//!   the server already has, so a retry is just calling [`upload`] again.
//! - [`download`] fetches consecutive ranges (a bounded window of `ReadFile` requests in flight)
//!   into `<name>.part` next to the destination, continues an existing `.part`, verifies the
//!   SHA-256 and only then moves the file into place — never over an existing file: a numbered
//!   name (`report (1).pdf`) is picked instead.
//! - [`ProgressSink`] receives [`Progress`] reports; [`RateMeter`] turns them into a rate and
//!   an ETA for a progress bar or a gauge.
//! - Cancelling the [`CancellationToken`] in [`TransferOptions`] stops a transfer cleanly.
//!   An upload is **not** cancelled on the server (no `CancelUpload`), so calling [`upload`]
//!   again resumes it; the server expires it if nobody does. Call
//!   [`ClientHandle::cancel_upload`] to discard it at once. A cancelled download keeps its
//!   `.part` file for the same reason.
//! - When the server answers `RateLimited` (it counts chunks and reads against the
//!   connection's request budget), a transfer waits — 250 ms doubling to 4 s — and continues
//!   from where the server is; eight setbacks in a row without progress end it.
//!
//! Names that come from the server are never used as paths as they are: [`sanitize_file_name`]
//! strips directories, control and bidirectional-override characters and bounds the length.
//!
//! ```no_run
//! # async fn demo(client: chatroom_protocol::client::Client, room: chatroom_protocol::RoomId)
//! # -> Result<(), chatroom_protocol::transfer::TransferError> {
//! use chatroom_protocol::transfer::{self, ProgressSink, TransferOptions};
//! let options = TransferOptions {
//!     progress: ProgressSink::new(|p| eprintln!("{}/{} bytes", p.done, p.total)),
//!     ..TransferOptions::default()
//! };
//! let sent = transfer::upload(&client, room, "build.tar.gz".as_ref(), &options).await?;
//! let got = transfer::download(&client, sent.file.id, "downloads/".as_ref(), &options).await?;
//! println!("saved as {}", got.path.display());
//! # Ok(()) }
//! ```

use crate::client::{ClientError, ClientHandle, PendingResponse};
use crate::frames::{ErrorCode, FileInfo, Request, Response, UploadReady};
use crate::ids::{FileId, RoomId};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The most chunks or reads kept in flight, whatever a server advertises.
pub const MAX_WINDOW: usize = 64;
/// The largest chunk sent or asked for, whatever a server advertises (frames must stay small so
/// chat keeps flowing beside a transfer).
pub const MAX_CHUNK_BYTES: u32 = 1024 * 1024;
/// How many bytes a download asks for per `ReadFile` unless told otherwise.
pub const DEFAULT_READ_CHUNK: u32 = 256 * 1024;
/// How many `ReadFile` requests a download keeps in flight unless told otherwise.
pub const DEFAULT_DOWNLOAD_WINDOW: usize = 8;
/// Longest file name produced by [`sanitize_file_name`], in bytes (room is left for a
/// ` (n)` suffix and `.part`).
pub const MAX_NAME_BYTES: usize = 200;
/// How many setbacks in a row (the server saying to slow down, or losing track of an upload)
/// a transfer rides out before it gives up; progress resets the count.
const MAX_SETBACKS: u32 = 8;
/// How many times a single request is retried when the server says to slow down.
const MAX_REQUEST_RETRIES: u32 = 3;
/// How many numbered names are tried before giving up.
const MAX_NUMBERED: u32 = 9_999;
const HASH_BUFFER: usize = 1024 * 1024;

/// What went wrong during a transfer.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A local file could not be read or written. The message names the file and the cause,
    /// so `error` is not also reported as the source (a `{:#}` chain would say it twice).
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        error: io::Error,
    },
    /// The server refused a request or the connection failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Only regular files can be uploaded.
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    /// The file was shorter than when it was hashed: it changed during the upload.
    #[error("{} changed while it was being uploaded; try again", .0.display())]
    FileChanged(PathBuf),
    /// The downloaded bytes do not match the SHA-256 the server announced; the partial file was
    /// deleted.
    #[error(
        "the downloaded file does not match its SHA-256 (expected {expected}, got {actual}); the partial download was deleted"
    )]
    HashMismatch {
        /// The announced digest, hex.
        expected: String,
        /// The digest of what arrived, hex.
        actual: String,
    },
    /// The server answered something impossible (a chunk longer than asked, an offset past the
    /// end, a file ending early).
    #[error("the server broke the transfer protocol: {0}")]
    Protocol(String),
    /// Every numbered name up to the limit exists already.
    #[error("no free file name for {name} in {}", dir.display())]
    NoFreeName {
        /// The folder.
        dir: PathBuf,
        /// The name wanted.
        name: String,
    },
    /// The transfer was cancelled; it can be resumed by starting it again.
    #[error("the transfer was cancelled")]
    Cancelled,
    /// A task of the transfer failed (a bug; the transfer can be retried).
    #[error("a transfer task failed: {0}")]
    Task(String),
}

impl TransferError {
    /// The server's error code, when the server refused a request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            TransferError::Client(e) => e.code(),
            _ => None,
        }
    }

    /// Whether starting the same transfer again may succeed and continue where this one
    /// stopped (the connection dropped, a timeout, a cancel).
    pub fn is_resumable(&self) -> bool {
        matches!(
            self,
            TransferError::Cancelled
                | TransferError::Client(
                    ClientError::Closed(_) | ClientError::Io(_) | ClientError::Timeout(_)
                )
        )
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TransferError + '_ {
    move |error| TransferError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// What a transfer is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Computing the SHA-256 of a file before uploading it.
    Hashing,
    /// Sending an upload's bytes.
    Sending,
    /// Receiving a download's bytes.
    Receiving,
    /// Waiting for the server to verify and post an upload, or checking a download's hash.
    Verifying,
}

/// A progress report: `done` of `total` bytes in the current [`Phase`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub phase: Phase,
    /// Bytes done so far, counting bytes a resumed transfer already had.
    pub done: u64,
    /// The file's size.
    pub total: u64,
}

impl Progress {
    /// Done as a fraction in `0.0..=1.0` (1.0 for an empty file).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.done.min(self.total) as f64) / (self.total as f64)
        }
    }
}

/// Where progress reports go: a cheap, cloneable callback. It is called from the transfer's
/// task and, while hashing, from a blocking thread, so it must not block: update shared state,
/// `send_replace` on a `watch` channel, or `try_send` on a bounded channel (a report dropped
/// because the channel is full is fine; the next one carries the news).
#[derive(Clone, Default)]
pub struct ProgressSink(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl ProgressSink {
    /// Reports to `f`.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// Reports nowhere.
    pub fn none() -> Self {
        Self(None)
    }

    /// Delivers a report.
    pub fn report(&self, progress: Progress) {
        if let Some(f) = &self.0 {
            f(progress);
        }
    }
}

impl fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressSink(..)"
        } else {
            "ProgressSink(none)"
        })
    }
}

/// How a transfer runs.
#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Where progress goes.
    pub progress: ProgressSink,
    /// Cancel to stop the transfer; it returns [`TransferError::Cancelled`].
    pub cancel: CancellationToken,
    /// Downloads: how many `ReadFile` requests to keep in flight (1..=[`MAX_WINDOW`]).
    /// Uploads use the window the server advertises.
    pub download_window: usize,
    /// Downloads: bytes asked for per `ReadFile` (shrunk automatically if the server caps it).
    pub read_chunk: u32,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            progress: ProgressSink::none(),
            cancel: CancellationToken::new(),
            download_window: DEFAULT_DOWNLOAD_WINDOW,
            read_chunk: DEFAULT_READ_CHUNK,
        }
    }
}

/// A finished upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The stored file, as posted to the room.
    pub file: FileInfo,
    /// Bytes of content this call sent (less than the size when it resumed; 0 when the server
    /// already had the content).
    pub bytes_sent: u64,
    /// Where the server said to start.
    pub resumed_from: u64,
}

/// A finished download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// The file's details from the server.
    pub file: FileInfo,
    /// Where the verified file now is.
    pub path: PathBuf,
    /// Bytes of content this call fetched (less than the size when it resumed a `.part`).
    pub bytes_fetched: u64,
    /// How many bytes an existing `.part` file already had.
    pub resumed_from: u64,
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

// ---------------------------------------------------------------------------------------------
// Pipelining

/// Requests in flight, oldest first, each with what the caller needs to check its answer.
/// Requests are queued for the socket in the order they are sent (the server needs upload
/// chunks in order) and answered in that order; dropping one forgets it.
struct Pipeline<M> {
    slots: VecDeque<(M, PendingResponse)>,
}

impl<M> Pipeline<M> {
    fn new() -> Self {
        Self {
            slots: VecDeque::new(),
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// Queues `body` for sending.
    async fn send(
        &mut self,
        handle: &ClientHandle,
        cancel: &CancellationToken,
        meta: M,
        body: Request,
    ) -> Result<(), TransferError> {
        let pending = cancellable(cancel, handle.send_request(body)).await??;
        self.slots.push_back((meta, pending));
        Ok(())
    }

    /// Waits for the answer to the oldest request. `None` when nothing is in flight.
    async fn next(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<Option<(M, Response)>, TransferError> {
        let Some((meta, pending)) = self.slots.pop_front() else {
            return Ok(None);
        };
        let response = cancellable(cancel, pending.response()).await??;
        Ok(Some((meta, response)))
    }

    fn clear(&mut self) {
        self.slots.clear();
    }
}

/// How long to wait after the `n`th rate limit in a row: 250 ms, doubling up to 4 s.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(250u64 << n.saturating_sub(1).min(4))
}

/// Runs a request, waiting and trying again (a few times) while the server answers
/// [`ErrorCode::RateLimited`].
async fn patiently<T, Fut>(
    cancel: &CancellationToken,
    mut request: impl FnMut() -> Fut,
) -> Result<T, TransferError>
where
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut attempt = 0;
    loop {
        match cancellable(cancel, request()).await? {
            Err(e) if e.code() == Some(ErrorCode::RateLimited) && attempt < MAX_REQUEST_RETRIES => {
                attempt += 1;
                cancellable(cancel, tokio::time::sleep(backoff(attempt))).await?;
            }
            other => return other.map_err(TransferError::from),
        }
    }
}

/// A bounded description of an unexpected response, for an error message.
fn describe(response: &Response) -> String {
    let mut text = format!("{response:?}");
    if text.len() > 120 {
        let mut cut = 120;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Runs `work` unless `cancel` fires first.
async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl Future<Output = T>,
) -> Result<T, TransferError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(TransferError::Cancelled),
        value = work => Ok(value),
    }
}

// ---------------------------------------------------------------------------------------------
// Upload

/// Hashes a file on the blocking pool, reporting [`Phase::Hashing`] progress. Returns the size
/// actually read and the SHA-256.
pub async fn hash_file(
    path: &Path,
    options: &TransferOptions,
) -> Result<(u64, [u8; 32]), TransferError> {
    let owned = path.to_path_buf();
    let progress = options.progress.clone();
    let cancel = options.cancel.clone();
    let task = tokio::task::spawn_blocking(move || -> Result<(u64, [u8; 32]), TransferError> {
        let mut file = std::fs::File::open(&owned).map_err(io_error(&owned))?;
        let total = file.metadata().map_err(io_error(&owned))?.len();
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; HASH_BUFFER];
        let mut done = 0u64;
        progress.report(Progress {
            phase: Phase::Hashing,
            done,
            total,
        });
        loop {
            if cancel.is_cancelled() {
                return Err(TransferError::Cancelled);
            }
            let n = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&owned)(e)),
            };
            hasher.update(&buffer[..n]);
            done += n as u64;
            progress.report(Progress {
                phase: Phase::Hashing,
                done,
                total: total.max(done),
            });
        }
        Ok((done, hasher.finalize().into()))
    });
    task.await.map_err(|e| TransferError::Task(e.to_string()))?
}

/// Uploads the file at `path` to `room` (a room or a direct chat) and returns the posted file.
///
/// Resumes automatically: if the server already has part of this content (the same size and
/// SHA-256 offered before, by this or another connection), only the rest is sent; if it has all
/// of it, nothing is. On [`TransferError::Cancelled`] or a lost connection nothing is discarded
/// on the server, so calling this again continues the upload.
pub async fn upload(
    handle: &ClientHandle,
    room: RoomId,
    path: &Path,
    options: &TransferOptions,
) -> Result<Uploaded, TransferError> {
    let meta = tokio::fs::metadata(path).await.map_err(io_error(path))?;
    if !meta.is_file() {
        return Err(TransferError::NotAFile(path.to_path_buf()));
    }
    let name = path
        .file_name()
        .map(|n| sanitize_file_name(&n.to_string_lossy()))
        .ok_or_else(|| TransferError::NotAFile(path.to_path_buf()))?;
    let (size, sha256) = hash_file(path, options).await?;
    let cancel = &options.cancel;
    let offer = || patiently(cancel, || handle.offer_upload(room, &name, size, sha256));

    let mut ready = offer().await?;
    let resumed_from = ready.offset;
    let mut file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
    let mut bytes_sent = 0u64;
    let (mut setbacks, mut sent_at_setback) = (0, 0);
    loop {
        match send_chunks(
            handle,
            &mut file,
            path,
            size,
            &ready,
            options,
            &mut bytes_sent,
        )
        .await
        {
            Ok(()) => break,
            // The server said to slow down, or lost the upload (it expired, or chunks after a
            // refused one were out of order): wait if asked to, then ask where to continue
            // from. Bounded: a run of setbacks without progress ends the upload.
            Err(TransferError::Client(e))
                if matches!(
                    e.code(),
                    Some(ErrorCode::BadChunk | ErrorCode::UploadNotFound | ErrorCode::RateLimited)
                ) =>
            {
                if bytes_sent > sent_at_setback {
                    (setbacks, sent_at_setback) = (0, bytes_sent);
                }
                setbacks += 1;
                if setbacks > MAX_SETBACKS {
                    return Err(e.into());
                }
                if e.code() == Some(ErrorCode::RateLimited) {
                    cancellable(cancel, tokio::time::sleep(backoff(setbacks))).await?;
                }
                ready = offer().await?;
            }
            Err(e) => return Err(e),
        }
    }
    options.progress.report(Progress {
        phase: Phase::Verifying,
        done: size,
        total: size,
    });
    let file = patiently(cancel, || handle.finish_upload(ready.upload)).await?;
    Ok(Uploaded {
        file,
        bytes_sent,
        resumed_from,
    })
}

/// Streams the chunks of an upload from `ready.offset` to the end, with up to the server's
/// window in flight.
async fn send_chunks(
    handle: &ClientHandle,
    file: &mut tokio::fs::File,
    path: &Path,
    size: u64,
    ready: &UploadReady,
    options: &TransferOptions,
    bytes_sent: &mut u64,
) -> Result<(), TransferError> {
    if ready.offset > size {
        return Err(TransferError::Protocol(format!(
            "upload offset {} is past the file's size {size}",
            ready.offset
        )));
    }
    if ready.max_chunk_bytes == 0 {
        return Err(TransferError::Protocol(
            "the server accepts chunks of 0 bytes".into(),
        ));
    }
    let chunk = u64::from(ready.max_chunk_bytes.min(MAX_CHUNK_BYTES));
    let window = usize::try_from(ready.window)
        .unwrap_or(MAX_WINDOW)
        .clamp(1, MAX_WINDOW);
    file.seek(SeekFrom::Start(ready.offset))
        .await
        .map_err(io_error(path))?;
    let mut next = ready.offset;
    let mut acked = ready.offset;
    let report = |done| {
        options.progress.report(Progress {
            phase: Phase::Sending,
            done,
            total: size,
        })
    };
    report(acked);
    let mut pipeline: Pipeline<(u64, u64)> = Pipeline::new();
    while acked < size {
        while pipeline.len() < window && next < size {
            let len = chunk.min(size - next);
            // `len` ≤ MAX_CHUNK_BYTES, so it fits in usize.
            let mut data = vec![0u8; len as usize];
            match file.read_exact(&mut data).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(TransferError::FileChanged(path.to_path_buf()));
                }
                Err(e) => return Err(io_error(path)(e)),
            }
            let body = Request::UploadChunk {
                upload: ready.upload,
                offset: next,
                data,
            };
            pipeline
                .send(handle, &options.cancel, (next, len), body)
                .await?;
            next += len;
        }
        let Some(((offset, len), response)) = pipeline.next(&options.cancel).await? else {
            break;
        };
        let Response::ChunkStored { received, .. } = response else {
            return Err(TransferError::Protocol(format!(
                "a chunk was answered with {}",
                describe(&response)
            )));
        };
        if received != offset + len {
            return Err(TransferError::Protocol(format!(
                "after the chunk at {offset}+{len} the server reports {received} bytes"
            )));
        }
        acked = received;
        *bytes_sent += len;
        report(acked);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Download

/// Downloads file `file` to `dest` and returns where it ended up.
///
/// `dest` is a folder (an existing directory, or any path ending in a separator; created if
/// missing) — the file then keeps the server's name, sanitised — or a file path. Either way an
/// existing file is never overwritten: `name (1).ext`, `name (2).ext`, … is used instead.
/// Bytes arrive in `<name>.part` beside it; an existing `.part` is continued. The SHA-256 is
/// checked before the file is moved into place; on a mismatch the `.part` is deleted and
/// [`TransferError::HashMismatch`] returned — except when the mismatch followed a resume (the
/// `.part` may have been left by a different file of the same name): then the download starts
/// over from zero, once.
pub async fn download(
    handle: &ClientHandle,
    file: FileId,
    dest: &Path,
    options: &TransferOptions,
) -> Result<Downloaded, TransferError> {
    let info = patiently(&options.cancel, || handle.file_info(file)).await?;
    let (dir, wanted) = destination(dest, &info.name).await?;
    let mut fresh = false;
    loop {
        let (part_path, part) = {
            let (dir, wanted) = (dir.clone(), wanted.clone());
            blocking(move || open_part(&dir, &wanted)).await?
        };
        let existing = part.metadata().map_err(io_error(&part_path))?.len();
        let resume = if fresh || existing > info.size {
            0
        } else {
            existing
        };
        match fetch(handle, &info, &part_path, part, resume, options).await {
            Err(TransferError::HashMismatch { .. }) if resume > 0 => fresh = true,
            Err(e) => return Err(e),
            Ok(bytes_fetched) => {
                let (dir, wanted) = (dir.clone(), wanted.clone());
                let path = blocking(move || place(&part_path, &dir, &wanted)).await?;
                return Ok(Downloaded {
                    file: info,
                    path,
                    bytes_fetched,
                    resumed_from: resume,
                });
            }
        }
    }
}

/// Runs blocking file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TransferError> + Send + 'static,
) -> Result<T, TransferError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TransferError::Task(e.to_string()))?
}

/// Works out the folder and the file name a download should end up with.
async fn destination(dest: &Path, server_name: &str) -> Result<(PathBuf, String), TransferError> {
    let text = dest.as_os_str().to_string_lossy();
    let dir_syntax = text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
    let is_dir = dir_syntax
        || tokio::fs::metadata(dest)
            .await
            .map(|m| m.is_dir())
            .unwrap_or(false);
    if is_dir {
        tokio::fs::create_dir_all(dest)
            .await
            .map_err(io_error(dest))?;
        return Ok((dest.to_path_buf(), sanitize_file_name(server_name)));
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| sanitize_file_name(server_name));
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// Opens (creating) the `.part` file for `name` in `dir` and locks it, so that two downloads
/// to the same name never share one: the second gets `name (1).part`.
fn open_part(dir: &Path, name: &str) -> Result<(PathBuf, std::fs::File), TransferError> {
    for n in 0..=MAX_NUMBERED {
        let path = dir.join(format!("{}.part", numbered_name(name, n)));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        match file.try_lock() {
            Ok(()) => return Ok((path, file)),
            Err(std::fs::TryLockError::WouldBlock) => continue,
            // A file system without locks: go on unlocked.
            Err(std::fs::TryLockError::Error(_)) => return Ok((path, file)),
        }
    }
    Err(TransferError::NoFreeName {
        dir: dir.to_path_buf(),
        name: name.to_string(),
    })
}

/// Fetches `info` from `resume` on into the `.part` file and checks the hash of the whole.
/// Returns the bytes fetched. A mismatch deletes the part.
async fn fetch(
    handle: &ClientHandle,
    info: &FileInfo,
    part_path: &Path,
    part: std::fs::File,
    resume: u64,
    options: &TransferOptions,
) -> Result<u64, TransferError> {
    let window = options.download_window.clamp(1, MAX_WINDOW);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(window);
    let writer = {
        let path = part_path.to_path_buf();
        tokio::task::spawn_blocking(move || write_part(part, &path, resume, rx))
    };
    let received = receive(handle, info, resume, window, &tx, options).await;
    // Whatever happened, let the writer finish what it was given, so the `.part` holds a clean
    // prefix of the file for the next attempt.
    drop(tx);
    let written = writer
        .await
        .map_err(|e| TransferError::Task(e.to_string()))?;
    // A failed writer is why receiving stopped, so its error is the one to tell.
    let (file, digest) = written?;
    let fetched = received?;
    options.progress.report(Progress {
        phase: Phase::Verifying,
        done: info.size,
        total: info.size,
    });
    drop(file);
    if digest != info.sha256 {
        let path = part_path.to_path_buf();
        blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&path)(e)),
            _ => Ok(()),
        })
        .await?;
        return Err(TransferError::HashMismatch {
            expected: hex(&info.sha256),
            actual: hex(&digest),
        });
    }
    Ok(fetched)
}

/// The writer thread of a download: hashes what the `.part` already has, then appends and
/// hashes every chunk it is given, in order. Returns the file and the digest of its content.
fn write_part(
    mut file: std::fs::File,
    path: &Path,
    resume: u64,
    mut chunks: mpsc::Receiver<Vec<u8>>,
) -> Result<(std::fs::File, [u8; 32]), TransferError> {
    let mut hasher = Sha256::new();
    file.set_len(resume).map_err(io_error(path))?;
    file.seek(SeekFrom::Start(0)).map_err(io_error(path))?;
    let mut buffer = vec![0u8; HASH_BUFFER];
    let mut left = resume;
    while left > 0 {
        let want = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        match file.read(&mut buffer[..want]) {
            Ok(0) => {
                return Err(io_error(path)(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the partial download shrank while it was read",
                )));
            }
            Ok(n) => {
                hasher.update(&buffer[..n]);
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path)(e)),
        }
    }
    drop(buffer);
    file.seek(SeekFrom::Start(resume)).map_err(io_error(path))?;
    let mut out = io::BufWriter::with_capacity(HASH_BUFFER, &file);
    while let Some(chunk) = chunks.blocking_recv() {
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(io_error(path))?;
    }
    out.flush().map_err(io_error(path))?;
    drop(out);
    file.sync_data().map_err(io_error(path))?;
    Ok((file, hasher.finalize().into()))
}

/// Asks for consecutive ranges from `resume` to the end, a window at a time, and hands the
/// bytes to the writer in order. Returns the bytes fetched.
async fn receive(
    handle: &ClientHandle,
    info: &FileInfo,
    resume: u64,
    window: usize,
    writer: &mpsc::Sender<Vec<u8>>,
    options: &TransferOptions,
) -> Result<u64, TransferError> {
    let size = info.size;
    let mut chunk = options.read_chunk.clamp(1, MAX_CHUNK_BYTES);
    let (mut next, mut got, mut fetched) = (resume, resume, 0u64);
    let mut setbacks = 0;
    let mut pipeline: Pipeline<u32> = Pipeline::new();
    while got < size {
        while pipeline.len() < window && next < size {
            // At most `chunk`, so it fits in u32.
            let len = u64::from(chunk).min(size - next) as u32;
            let body = Request::ReadFile {
                file: info.id,
                offset: next,
                len,
            };
            pipeline.send(handle, &options.cancel, len, body).await?;
            next += u64::from(len);
        }
        let (asked, response) = match pipeline.next(&options.cancel).await {
            Ok(Some(answer)) => answer,
            Ok(None) => break,
            // Asked to slow down: drop what is in flight, wait, and ask again from here.
            Err(e) if e.code() == Some(ErrorCode::RateLimited) && setbacks < MAX_SETBACKS => {
                setbacks += 1;
                pipeline.clear();
                next = got;
                cancellable(&options.cancel, tokio::time::sleep(backoff(setbacks))).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        setbacks = 0;
        let Response::FileChunk { offset, data, .. } = response else {
            return Err(TransferError::Protocol(format!(
                "a read was answered with {}",
                describe(&response)
            )));
        };
        if offset != got {
            return Err(TransferError::Protocol(format!(
                "asked for bytes at {got}, got bytes at {offset}"
            )));
        }
        let n = data.len();
        if n == 0 {
            return Err(TransferError::Protocol(format!(
                "the file ended at byte {got} of {size}"
            )));
        }
        if n > asked as usize {
            return Err(TransferError::Protocol(format!(
                "asked for {asked} bytes at {got}, got {n}"
            )));
        }
        cancellable(&options.cancel, writer.send(data))
            .await?
            .map_err(|_| TransferError::Task("the file writer stopped".into()))?;
        got += n as u64;
        fetched += n as u64;
        options.progress.report(Progress {
            phase: Phase::Receiving,
            done: got,
            total: size,
        });
        if n < asked as usize && got < size {
            // The server caps reads below what was asked: ask again from here, in its size.
            pipeline.clear();
            next = got;
            chunk = n as u32;
        }
    }
    Ok(fetched)
}

/// Moves the verified `.part` to the first free name of `name`, `name (1)`, … in `dir`.
/// The name is claimed with `create_new` first, so a file that appeared meanwhile is never
/// replaced.
fn place(part: &Path, dir: &Path, name: &str) -> Result<PathBuf, TransferError> {
    for n in 0..=MAX_NUMBERED {
        let candidate = dir.join(numbered_name(name, n));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(placeholder) => {
                drop(placeholder);
                if let Err(e) = std::fs::rename(part, &candidate) {
                    let _ = std::fs::remove_file(&candidate);
                    return Err(io_error(&candidate)(e));
                }
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(&candidate)(e)),
        }
    }
    Err(TransferError::NoFreeName {
        dir: dir.to_path_buf(),
        name: name.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Names

/// Splits `name` into a stem and an extension (with its dot): `report.pdf` → (`report`,
/// `.pdf`), `logs.tar.gz` → (`logs`, `.tar.gz`), `.bashrc` → (`.bashrc`, ``).
fn split_extension(name: &str) -> (&str, &str) {
    let Some(dot) = name.rfind('.').filter(|&i| i > 0) else {
        return (name, "");
    };
    let (stem, ext) = name.split_at(dot);
    if ext.len() > 17 || ext.contains(' ') {
        return (name, "");
    }
    match stem.rfind('.').filter(|&i| i > 0) {
        Some(inner) if stem[inner..].eq_ignore_ascii_case(".tar") => {
            (&name[..inner], &name[inner..])
        }
        _ => (stem, ext),
    }
}

/// `name` for `n == 0`, else `name` with ` (n)` before its extension: `report (1).pdf`.
pub fn numbered_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    format!("{stem} ({n}){ext}")
}

/// Characters that reorder text on screen and could disguise a name (`invoice` U+202E `fdp.exe` shows as `invoiceexe.pdf`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A safe local file name for a name that came from elsewhere: only the last path component,
/// no control or bidirectional-override characters, no characters Windows forbids, no
/// trailing dots or spaces, no device names (`CON`, `NUL`, …), at most [`MAX_NAME_BYTES`]
/// bytes (the extension is kept when it is cut), and never empty, `.` or `..`
/// (`download` instead).
pub fn sanitize_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned
        .trim()
        .trim_end_matches(['.', ' '])
        .trim_start_matches(' ');
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        return "download".to_string();
    }
    let mut name = trimmed.to_string();
    let stem_upper = split_extension(&name)
        .0
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let reserved = matches!(stem_upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem_upper.len() == 4
            && (stem_upper.starts_with("COM") || stem_upper.starts_with("LPT"))
            && stem_upper.as_bytes()[3].is_ascii_digit());
    if reserved {
        name.insert(0, '_');
    }
    if name.len() > MAX_NAME_BYTES {
        let (stem, ext) = split_extension(&name);
        let ext = if ext.len() < 32 { ext } else { "" };
        let mut cut = MAX_NAME_BYTES - ext.len();
        while !stem.is_char_boundary(cut.min(stem.len())) {
            cut -= 1;
        }
        name = format!("{}{ext}", &stem[..cut.min(stem.len())]);
    }
    name
}

// ---------------------------------------------------------------------------------------------
// Rate and ETA

/// Turns a stream of progress samples into a transfer rate and an ETA, over a sliding window
/// of the last few seconds (so a stall shows quickly and a resumed transfer's head start does
/// not count as speed). Times are milliseconds from any fixed origin.
#[derive(Clone, Debug)]
pub struct RateMeter {
    samples: VecDeque<(u64, u64)>,
    window_ms: u64,
}

impl Default for RateMeter {
    fn default() -> Self {
        Self::new(5_000)
    }
}

impl RateMeter {
    const MAX_SAMPLES: usize = 256;

    /// A meter averaging over the last `window_ms` milliseconds.
    pub fn new(window_ms: u64) -> Self {
        Self {
            samples: VecDeque::new(),
            window_ms: window_ms.max(1),
        }
    }

    /// Records that `done` bytes were done at `now_ms`. Going backwards (a restart) resets it.
    pub fn record(&mut self, now_ms: u64, done: u64) {
        if let Some(&(t, d)) = self.samples.back()
            && (done < d || now_ms < t)
        {
            self.samples.clear();
        }
        if let Some(last) = self.samples.back_mut()
            && last.0 == now_ms
        {
            last.1 = done;
        } else {
            self.samples.push_back((now_ms, done));
        }
        // Keep one sample at or before the window's start, so the window is always covered.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(t, _)| now_ms.saturating_sub(t) >= self.window_ms)
        {
            self.samples.pop_front();
        }
        while self.samples.len() > Self::MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window, once there are two samples at least 200 ms apart.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        let (&(t0, d0), &(t1, d1)) = (self.samples.front()?, self.samples.back()?);
        let span = t1.checked_sub(t0)?;
        if span < 200 {
            return None;
        }
        Some((d1.saturating_sub(d0)) as f64 * 1000.0 / span as f64)
    }

    /// Time left to reach `total` at the current rate (zero when done; `None` while the rate is
    /// unknown or zero).
    pub fn eta(&self, total: u64) -> Option<Duration> {
        let done = self.samples.back()?.1;
        if done >= total {
            return Some(Duration::ZERO);
        }
        let rate = self.bytes_per_sec().filter(|r| *r > 0.0)?;
        let secs = (total - done) as f64 / rate;
        (secs.is_finite() && secs < 1e9).then(|| Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_error_names_the_file_and_its_cause_once() {
        let missing = io::Error::new(io::ErrorKind::NotFound, "No such file");
        let error = io_error(Path::new("/tmp/x.bin"))(missing);
        assert_eq!(error.to_string(), "/tmp/x.bin: No such file");
        assert!(
            std::error::Error::source(&error).is_none(),
            "the cause is in the message already"
        );
    }

    #[test]
    fn numbered_names_go_before_the_extension() {
        assert_eq!(numbered_name("report.pdf", 0), "report.pdf");
        assert_eq!(numbered_name("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered_name("logs.tar.gz", 2), "logs (2).tar.gz");
        assert_eq!(numbered_name("README", 3), "README (3)");
        assert_eq!(numbered_name(".bashrc", 1), ".bashrc (1)");
        assert_eq!(numbered_name("张伟的照片.jpeg", 1), "张伟的照片 (1).jpeg");
        assert_eq!(
            numbered_name("notes from the meeting.v2 final", 1),
            "notes from the meeting.v2 final (1)",
            "a 'dot' inside words is no extension"
        );
    }

    #[test]
    fn hostile_names_become_safe_file_names() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize_file_name("/abs/path/x.txt"), "x.txt");
        assert_eq!(sanitize_file_name(".."), "download");
        assert_eq!(sanitize_file_name("."), "download");
        assert_eq!(sanitize_file_name(""), "download");
        assert_eq!(sanitize_file_name("dir/"), "download");
        assert_eq!(sanitize_file_name("a\nb\tc\u{7}.txt"), "abc.txt");
        assert_eq!(
            sanitize_file_name("invoice\u{202e}fdp.exe"),
            "invoicefdp.exe"
        );
        assert_eq!(sanitize_file_name("what?<now>.txt"), "what__now_.txt");
        assert_eq!(sanitize_file_name("trailing. . "), "trailing");
        assert_eq!(sanitize_file_name("CON.txt"), "_CON.txt");
        assert_eq!(sanitize_file_name("com1"), "_com1");
        assert_eq!(sanitize_file_name("console.log"), "console.log");
        assert_eq!(sanitize_file_name(".bashrc"), ".bashrc");
        assert_eq!(sanitize_file_name("报告 2024.pdf"), "报告 2024.pdf");

        let long = format!("{}.pdf", "界".repeat(300));
        let cut = sanitize_file_name(&long);
        assert!(cut.len() <= MAX_NAME_BYTES, "{}", cut.len());
        assert!(cut.ends_with("界.pdf"), "extension kept: {cut}");
        let huge_ext = format!("x.{}", "a".repeat(400));
        assert!(sanitize_file_name(&huge_ext).len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn rate_and_eta_follow_a_sliding_window() {
        let mut meter = RateMeter::new(5_000);
        meter.record(0, 1_000_000); // a resumed head start is not speed
        assert_eq!(meter.bytes_per_sec(), None, "one sample says nothing");
        meter.record(100, 1_100_000);
        assert_eq!(meter.bytes_per_sec(), None, "too short a span");
        meter.record(1_000, 2_000_000);
        assert_eq!(meter.bytes_per_sec(), Some(1_000_000.0));
        assert_eq!(meter.eta(5_000_000), Some(Duration::from_secs(3)));
        // Ten seconds later at half the speed: the old samples fall out of the window.
        for s in 2..=11u64 {
            meter.record(s * 1_000, 2_000_000 + (s - 1) * 500_000);
        }
        let rate = meter.bytes_per_sec().expect("rate");
        assert!((rate - 500_000.0).abs() < 1.0, "{rate}");
        // A stall: no progress for the whole window means zero rate and no ETA.
        meter.record(20_000, 7_000_000);
        meter.record(26_000, 7_000_000);
        assert_eq!(meter.bytes_per_sec(), Some(0.0));
        assert_eq!(meter.eta(10_000_000), None);
        assert_eq!(meter.eta(7_000_000), Some(Duration::ZERO));
        // Going backwards (a restart from zero) starts over.
        meter.record(27_000, 0);
        assert_eq!(meter.bytes_per_sec(), None);
    }

    #[test]
    fn progress_fraction_is_bounded() {
        let p = |done, total| Progress {
            phase: Phase::Sending,
            done,
            total,
        };
        assert_eq!(p(0, 0).fraction(), 1.0);
        assert_eq!(p(50, 200).fraction(), 0.25);
        assert_eq!(p(300, 200).fraction(), 1.0);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let ms = |n| backoff(n).as_millis();
        assert_eq!((ms(1), ms(2), ms(3), ms(5)), (250, 500, 1000, 4000));
        assert_eq!(ms(50), 4000);
        assert_eq!(ms(0), 250);
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f]), "00ab0f");
    }

    #[tokio::test]
    async fn a_verified_part_never_replaces_an_existing_file() {
        let temp = tempfile_dir();
        let dir = temp.path().to_path_buf();
        std::fs::write(dir.join("report.pdf"), b"old").expect("write");
        std::fs::write(dir.join("report (1).pdf"), b"older").expect("write");
        let part = dir.join("report.pdf.part");
        std::fs::write(&part, b"new").expect("write");
        let placed = place(&part, &dir, "report.pdf").expect("placed");
        assert_eq!(placed, dir.join("report (2).pdf"));
        assert_eq!(std::fs::read(&placed).expect("read"), b"new");
        assert_eq!(std::fs::read(dir.join("report.pdf")).expect("read"), b"old");
        assert!(!part.exists());
    }

    #[tokio::test]
    async fn two_downloads_to_one_name_get_separate_parts() {
        let temp = tempfile_dir();
        let dir = temp.path().to_path_buf();
        let (first, _lock) = open_part(&dir, "a.bin").expect("first");
        let (second, _lock2) = open_part(&dir, "a.bin").expect("second");
        assert_eq!(first, dir.join("a.bin.part"));
        assert_eq!(second, dir.join("a (1).bin.part"));
    }

    #[tokio::test]
    async fn the_writer_hashes_the_resumed_prefix_and_the_new_bytes() {
        let temp = tempfile_dir();
        let dir = temp.path().to_path_buf();
        let path = dir.join("x.part");
        // A stale tail past the resume point is cut off.
        std::fs::write(&path, b"hello, garbage").expect("write");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let (tx, rx) = mpsc::channel(4);
        let writer = tokio::task::spawn_blocking({
            let path = path.clone();
            move || write_part(file, &path, 7, rx)
        });
        tx.send(b"wor".to_vec()).await.expect("send");
        tx.send(b"ld".to_vec()).await.expect("send");
        drop(tx);
        let (_file, digest) = writer.await.expect("join").expect("written");
        assert_eq!(std::fs::read(&path).expect("read"), b"hello, world");
        let expected: [u8; 32] = Sha256::digest(b"hello, world").into();
        assert_eq!(digest, expected);
    }

    fn tempfile_dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }
}
