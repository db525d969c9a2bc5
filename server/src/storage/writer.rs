//! The writer thread: every change to the database goes through here.
//!
//! Callers queue a [`WriteOp`] with a completion. The thread takes everything queued (up to
//! [`MAX_BATCH`]), applies each op inside its own savepoint of one transaction — so one refused
//! op (a taken name) does not spoil the batch — commits once, and then runs the completions in
//! order. A message is therefore acknowledged and broadcast only after the fsync that makes it
//! durable, and many messages share one fsync under load.
//!
//! The thread also owns each room's next `seq`: it assigns seqs inside the transaction and only
//! publishes them once the commit succeeds, so seqs stay gapless even when a commit fails.
//! An op whose failure makes SQLite roll back the whole transaction (a full disk, an I/O error)
//! fails alone: the rest of its batch is applied again in a new transaction.
//!
//! Between batches the thread also keeps the search index current ([`super::search::Indexer`]):
//! when its queue is empty, and at least every quarter second under constant load.

use chatroom_protocol::{
    ErrorBody, ErrorCode, FileId, FileInfo, FileRef, Message, MessageId, MessageKind, RoomId,
    RoomKind, RoomRole, Seq, UnixMillis, UploadId, UserId, now_millis,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;

use super::notices::{self, Posted};
use super::search::Indexer;
use super::{
    RoomRow, StorageError, UserRow, is_constraint, kind_from_sql, kind_to_sql, message_kind_to_sql,
    role_from_sql, role_to_sql,
};
use crate::files::FileStore;

/// Most ops in one transaction.
pub const MAX_BATCH: usize = 2048;
/// Ops that may wait for the writer; senders wait beyond this (back-pressure).
const QUEUE: usize = 8192;

/// Whether a new account is an admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminGrant {
    /// A regular account.
    No,
    /// An admin.
    Yes,
    /// An admin if it is the first account ever created.
    IfFirst,
}

/// A change to the database.
#[derive(Debug)]
pub enum WriteOp {
    /// Create an account and make it a member of `public`. → [`Outcome::User`]
    CreateUser {
        /// The name as typed.
        name: String,
        /// The argon2 PHC string.
        password_hash: String,
        /// Admin or not.
        admin: AdminGrant,
    },
    /// Store a session token's hash. → [`Outcome::Done`]
    CreateSession {
        /// Whose.
        user: UserId,
        /// SHA-256 of the token.
        token_hash: Vec<u8>,
        /// The client name from `Hello`.
        device: String,
    },
    /// Forget one session. → [`Outcome::Done`]
    DeleteSession {
        /// SHA-256 of the token.
        token_hash: Vec<u8>,
    },
    /// Log out every session of an account, keeping its password. → [`Outcome::Done`]
    RevokeSessions {
        /// Whose.
        user: UserId,
    },
    /// Record when sessions were last used and forget expired ones (see
    /// [`crate::sessions`]). → [`Outcome::Done`]
    SessionUpkeep {
        /// Token hashes with their latest use.
        used: Vec<(crate::sessions::TokenHash, UnixMillis)>,
        /// Token hashes of expired sessions.
        expired: Vec<crate::sessions::TokenHash>,
    },
    /// Set a new password hash and revoke every session but `keep_session`. → [`Outcome::Done`]
    ChangePassword {
        /// Whose.
        user: UserId,
        /// The new argon2 PHC string.
        password_hash: String,
        /// The session that asked, which stays valid.
        keep_session: Option<Vec<u8>>,
    },
    /// Create a named room with `owner` as owner. → [`Outcome::Room`]
    CreateRoom {
        /// The name.
        name: String,
        /// Public or private.
        kind: RoomKind,
        /// Who created it.
        owner: UserId,
    },
    /// Add a member (refused if already one). A named room that has no owner (its last owner
    /// left with nobody to hand it to) makes its next human member the owner.
    /// → [`Outcome::Roles`] with the role the member got
    AddMember {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// As what.
        role: RoomRole,
        /// Who invites them (checked again here: a member, and in a private room a
        /// moderator or the owner, as of this transaction); `None` when they join.
        by: Option<UserId>,
    },
    /// Remove a member. An owner's room passes to the longest-standing moderator, else the
    /// longest-standing member (never a bot). → [`Outcome::Roles`] with the new owner, if any
    RemoveMember {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who removes them (a kick: checked again here, a moderator or the owner above
        /// them as of this transaction); `None` when they leave.
        by: Option<UserId>,
        /// Why they were removed, for the room's notice.
        reason: Option<String>,
    },
    /// Ban a user from a room, as `by` (checked here: a moderator or the owner, above the user
    /// if they are a member), removing them if they are in it. → [`Outcome::Banned`]
    Ban {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who bans them.
        by: UserId,
        /// Their name, kept with the ban.
        by_name: String,
        /// The reason given.
        reason: Option<String>,
    },
    /// Lift a ban, as `by` (checked here: a moderator or the owner). → [`Outcome::Done`]
    Unban {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who lifts it.
        by: UserId,
    },
    /// Mute a member of a room until `until` (or until unmuted), as `by` (checked here: a
    /// moderator or the owner, above the member). Replaces an earlier mute. → [`Outcome::Done`]
    Mute {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who mutes them.
        by: UserId,
        /// Their name, kept with the mute.
        by_name: String,
        /// The reason given.
        reason: Option<String>,
        /// When it ends by itself.
        until: Option<UnixMillis>,
    },
    /// Lift a mute that is in force, as `by` (a moderator or the owner). → [`Outcome::Done`]
    Unmute {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who lifts it.
        by: UserId,
    },
    /// Change a member's role, as `actor`, who must own the room; [`RoomRole::Owner`] hands
    /// the room over and makes `actor` a moderator. → [`Outcome::Roles`] with every change
    SetRole {
        /// The room.
        room: RoomId,
        /// Whose role.
        user: UserId,
        /// The new role.
        role: RoomRole,
        /// Who asks.
        actor: UserId,
    },
    /// Set a room's topic. → [`Outcome::Done`]
    SetTopic {
        /// The room.
        room: RoomId,
        /// The topic.
        topic: String,
        /// Who sets it (checked again here: a moderator or the owner of a named room, either
        /// member of a direct chat).
        by: UserId,
    },
    /// Rename a named room other than `public`, as `by` (checked here: its owner).
    /// → [`Outcome::Done`]
    RenameRoom {
        /// The room.
        room: RoomId,
        /// The new name (valid: checked by the caller).
        name: String,
        /// Who renames it.
        by: UserId,
    },
    /// Find or create the direct chat between two users. → [`Outcome::Direct`]
    OpenDirect {
        /// One user.
        a: UserId,
        /// The other.
        b: UserId,
    },
    /// Store a message with the next seq; the sender's read marker moves to it. → [`Outcome::Message`]
    InsertMessage {
        /// The room.
        room: RoomId,
        /// The sender.
        sender: UserId,
        /// The sender's name.
        sender_name: String,
        /// Text or system.
        kind: MessageKind,
        /// The text.
        text: String,
        /// Members mentioned, for mention counts.
        mentions: Vec<UserId>,
    },
    /// Move a read marker forward (never back, never past the newest message). → [`Outcome::ReadMarker`]
    MarkRead {
        /// The room.
        room: RoomId,
        /// Whose.
        user: UserId,
        /// Up to where.
        seq: Seq,
    },
    /// Delete an account with its sessions and memberships; its messages stay, and the rooms it
    /// owned pass on as when an owner leaves. → [`Outcome::Done`]
    DeleteUser {
        /// Who.
        user: UserId,
    },
    /// Grant or revoke server admin. → [`Outcome::Done`]
    SetAdmin {
        /// Who.
        user: UserId,
        /// Admin or not.
        admin: bool,
    },
    /// Start an upload, or find the one `user` already has for the same content, after
    /// checking the quota. → [`Outcome::Upload`]
    OpenUpload {
        /// Who uploads.
        user: UserId,
        /// Where the file will be posted.
        room: RoomId,
        /// The sanitised name.
        name: String,
        /// The declared size.
        size: u64,
        /// The declared hash.
        sha256: [u8; 32],
        /// The user's quota in bytes, 0 for none.
        quota: u64,
    },
    /// Forget an upload (cancelled, or failed verification). → [`Outcome::Done`]
    DeleteUpload {
        /// The upload.
        upload: UploadId,
    },
    /// Forget uploads untouched since `cutoff`, except `keep`, and every one in `force`.
    /// → [`Outcome::Uploads`] (the ids forgotten; the caller removes their part files)
    ExpireUploads {
        /// Rows last offered before this are stale.
        cutoff: UnixMillis,
        /// Still active in memory.
        keep: Vec<UploadId>,
        /// Expired in memory.
        force: Vec<UploadId>,
    },
    /// A verified upload: move its bytes into the blob store, post the `File` message and
    /// forget the upload. → [`Outcome::File`]
    PostFile {
        /// The upload.
        upload: UploadId,
        /// The uploader.
        user: UserId,
        /// Their name.
        user_name: String,
        /// The room.
        room: RoomId,
        /// The sanitised name.
        name: String,
        /// The size.
        size: u64,
        /// The verified hash.
        sha256: [u8; 32],
        /// The user's quota in bytes, 0 for none.
        quota: u64,
        /// The message text shown by clients that do not know file messages.
        text: String,
        /// Where the bytes go.
        store: FileStore,
    },
    /// Delete a message (its sender, or the room's owner or a moderator): it stays as a
    /// `Deleted` message with empty text; its file row goes, and after the commit the blob
    /// too if nothing else refers to it. → [`Outcome::MessageDeleted`]
    DeleteMessage {
        /// The room.
        room: RoomId,
        /// The message.
        seq: Seq,
        /// Who deletes it.
        actor: UserId,
        /// Where a blob would be removed.
        store: FileStore,
    },
    /// Replace the text of a text message, by its sender only; the mentions follow the text.
    /// → [`Outcome::Edited`]
    EditMessage {
        /// The room.
        room: RoomId,
        /// The message.
        seq: Seq,
        /// Who edits it.
        editor: UserId,
        /// The new text (checked like a new message's).
        text: String,
        /// Members the new text mentions.
        mentions: Vec<UserId>,
    },
    /// Start the AI bot's context for a room after `after_seq` (`/ai clear`). → [`Outcome::Done`]
    SetAiContextStart {
        /// The room.
        room: RoomId,
        /// Messages up to this seq are forgotten by the bot.
        after_seq: Seq,
    },
}

/// What a committed op produced.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Nothing to report.
    Done,
    /// A created account.
    User(UserRow),
    /// A created room.
    Room(RoomRow),
    /// A direct chat, and whether this op created it.
    Direct {
        /// The room.
        room: RoomRow,
        /// Created now (false: it existed).
        created: bool,
    },
    /// A stored message.
    Message(Message),
    /// The read marker after the op.
    ReadMarker(Seq),
    /// An upload's id, and whether this op created it.
    Upload {
        /// The upload.
        id: UploadId,
        /// False when the user already had this upload (a resume).
        created: bool,
    },
    /// Upload ids.
    Uploads(Vec<UploadId>),
    /// A posted file and its message.
    File {
        /// The file.
        info: FileInfo,
        /// The message that posts it.
        message: Message,
    },
    /// Room roles set by the op, as they are now: `(member, role)`.
    Roles(Vec<(UserId, RoomRole)>),
    /// A ban stored: whether the user was a member (and so was removed), and the room's new
    /// owner if the ban removed its owner.
    Banned {
        /// They were in the room.
        was_member: bool,
        /// Role changes the removal caused.
        heirs: Vec<(UserId, RoomRole)>,
    },
    /// A message was edited: as it is now, or `None` when the new text was the old one.
    Edited(Option<Message>),
    /// A message was deleted.
    MessageDeleted {
        /// The blob its file used, when no other file row referred to it at the time.
        orphan: Option<[u8; 32]>,
    },
}

type Completion = Box<dyn FnOnce(Result<Outcome, StorageError>) + Send>;

struct Job {
    op: WriteOp,
    done: Completion,
}

/// Runs on the writer thread after the completions of each batch.
pub type BatchHook = Box<dyn Fn() + Send + Sync>;

/// Runs on the writer thread for each room notice an op stored (see [`super::notices`]), right
/// before that op's completion.
pub type NoticeHook = Box<dyn Fn(&Message) + Send + Sync>;

/// The queue to the writer thread. Cloning is cheap.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    hooks: Arc<Hooks>,
}

/// What the server runs on the writer thread besides the completions.
#[derive(Default)]
struct Hooks {
    batch: OnceLock<BatchHook>,
    notice: OnceLock<NoticeHook>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.op.fmt(f)
    }
}

impl Writer {
    /// Sets what runs after the completions of every batch (once; later calls are ignored).
    /// The server flushes the batch's deferred fan-out there.
    pub fn set_batch_hook(&self, hook: BatchHook) {
        let _ = self.hooks.batch.set(hook);
    }

    /// Sets what runs for every room notice an op stored, before that op's completion (once;
    /// later calls are ignored). The server queues the notice for the room's fan-out there, so
    /// it goes out in seq order with the messages of the batch, to the members as they were
    /// before the op's own change reaches the hub.
    pub fn set_notice_hook(&self, hook: NoticeHook) {
        let _ = self.hooks.notice.set(hook);
    }

    /// Queues `op`; `done` runs on the writer thread right after the op's transaction commits
    /// (or fails). Keep `done` short and non-blocking: it delays the next batch.
    pub async fn submit(
        &self,
        op: WriteOp,
        done: impl FnOnce(Result<Outcome, StorageError>) + Send + 'static,
    ) -> Result<(), StorageError> {
        self.queue
            .send(Job {
                op,
                done: Box::new(done),
            })
            .await
            .map_err(|_| StorageError::Closed)
    }

    /// Ops waiting for the writer thread now, and how many may wait before callers do (for
    /// `/metrics`: a queue that stays long says the disk or the thread cannot keep up).
    pub fn queued(&self) -> (usize, usize) {
        let limit = self.queue.max_capacity();
        (limit - self.queue.capacity(), limit)
    }

    /// Completes when the writer thread has stopped. While this handle lives the thread stops
    /// only by dying (a panic), so the server waits on this to go down instead of answering
    /// every write with `storage is shut down`.
    pub async fn stopped(&self) {
        self.queue.closed().await;
    }

    /// Kills the writer thread the way a bug would: a panic on it (for tests of what the
    /// server does then).
    #[cfg(test)]
    pub(crate) async fn panic_for_test(&self) {
        self.submit(
            WriteOp::SessionUpkeep {
                used: Vec::new(),
                expired: Vec::new(),
            },
            |_| panic!("deliberate panic on the storage writer thread (test)"),
        )
        .await
        .expect("queued");
    }

    /// Queues `op` and waits for its outcome.
    pub async fn write(&self, op: WriteOp) -> Result<Outcome, StorageError> {
        self.write_then(op, |_| {}).await
    }

    /// Queues `op` and waits for its outcome; `on_commit` runs on the writer thread right after
    /// a successful commit, in commit order — the place to update the hub and fan out events,
    /// so that they leave in the order their rows were committed.
    pub async fn write_then(
        &self,
        op: WriteOp,
        on_commit: impl FnOnce(&Outcome) + Send + 'static,
    ) -> Result<Outcome, StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(op, move |result| {
            if let Ok(outcome) = &result {
                on_commit(outcome);
            }
            let _ = tx.send(result);
        })
        .await?;
        rx.await.map_err(|_| StorageError::Closed)?
    }
}

/// Starts the writer thread on `conn`. The thread ends once every [`Writer`] is dropped and the
/// queue is drained.
pub fn start(
    conn: Connection,
    latest_seqs: HashMap<RoomId, Seq>,
) -> Result<(Writer, std::thread::JoinHandle<()>), StorageError> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let hooks: Arc<Hooks> = Arc::default();
    let thread_hooks = Arc::clone(&hooks);
    let thread = std::thread::Builder::new()
        .name("chatroom-storage-writer".into())
        .spawn(move || writer_loop(conn, rx, latest_seqs, &thread_hooks))?;
    Ok((Writer { queue: tx, hooks }, thread))
}

fn writer_loop(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    mut seqs: HashMap<RoomId, Seq>,
    hooks: &Hooks,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(64);
    let mut index = Indexer::new();
    // Only to wait for the queue with a deadline (the indexer's): no I/O driver, no threads.
    let waiting = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            tracing::warn!(error = %e, "no timer for the search indexer; it indexes between batches only");
            None
        }
    };
    loop {
        let next = match (index.idle_wait(Instant::now()), &waiting) {
            (Some(wait), Some(runtime)) => {
                match runtime.block_on(async {
                    // Built in here: a timer needs the runtime's context to be made.
                    tokio::time::timeout(wait, queue.recv()).await
                }) {
                    Ok(next) => next,
                    Err(_idle) => {
                        index.step(&mut conn);
                        continue;
                    }
                }
            }
            _ => queue.blocking_recv(),
        };
        let Some(first) = next else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (results, notices) = run_batch(&mut conn, &batch, &mut seqs);
        index.stored(
            results.iter().filter(|r| stored_a_message(r)).count()
                + notices.iter().map(Vec::len).sum::<usize>(),
        );
        for ((job, result), notices) in batch.drain(..).zip(results).zip(notices) {
            if let Some(hook) = hooks.notice.get() {
                for notice in &notices {
                    hook(notice);
                }
            }
            (job.done)(result);
        }
        if let Some(hook) = hooks.batch.get() {
            hook();
        }
        if index.overdue(Instant::now()) {
            index.step(&mut conn);
        }
    }
    tracing::debug!("storage writer stopped");
}

/// Whether an op's result is a new message (which the search index has yet to take in).
fn stored_a_message(result: &Result<Outcome, StorageError>) -> bool {
    matches!(result, Ok(Outcome::Message(_) | Outcome::File { .. }))
}

/// Transactions one batch may begin: the first, and one more after each op that lost one.
const BATCH_ATTEMPTS: usize = 4;

/// The outcome of each op of a batch, and the notices each stored.
type BatchResults = (Vec<Result<Outcome, StorageError>>, Vec<Vec<Message>>);

fn run_batch(
    conn: &mut Connection,
    batch: &[Job],
    seqs: &mut HashMap<RoomId, Seq>,
) -> BatchResults {
    // An op whose failure made SQLite roll back the whole transaction (disk full, an I/O
    // error, a trigger's RAISE(ROLLBACK)) takes every earlier op of the batch with it, and
    // anything run after it would run outside any transaction, each statement committing on
    // its own. So the op is failed, and the rest of the batch starts again in a new
    // transaction — without it, and with the seqs as committed.
    let mut lost: Vec<Option<StorageError>> = batch.iter().map(|_| None).collect();
    for _ in 0..BATCH_ATTEMPTS {
        match attempt_batch(conn, batch, seqs, &mut lost) {
            Attempt::Done(results, notices) => {
                remove_orphan_blobs(conn, batch, &results);
                return (results, notices);
            }
            Attempt::Failed(msg) => return (failed(lost, &msg), none_posted(batch)),
            Attempt::Lost => {}
        }
    }
    tracing::error!(
        attempts = BATCH_ATTEMPTS,
        "the transaction kept being rolled back; failing the rest of the batch"
    );
    (
        failed(lost, "the transaction was rolled back repeatedly"),
        none_posted(batch),
    )
}

/// No notices for any op of `batch` (none of it was stored).
fn none_posted(batch: &[Job]) -> Vec<Vec<Message>> {
    batch.iter().map(|_| Vec::new()).collect()
}

enum Attempt {
    /// Committed (the ops in `lost` were not run): the outcome of every op, and its notices.
    Done(Vec<Result<Outcome, StorageError>>, Vec<Vec<Message>>),
    /// An op lost the transaction; it is now in `lost`.
    Lost,
    /// The transaction could not begin or commit: nothing of it was stored.
    Failed(String),
}

/// One transaction over the ops of `batch` not in `lost`.
fn attempt_batch(
    conn: &mut Connection,
    batch: &[Job],
    seqs: &mut HashMap<RoomId, Seq>,
    lost: &mut [Option<StorageError>],
) -> Attempt {
    let mut pending = SeqCounters {
        committed: seqs,
        pending: HashMap::new(),
    };
    // IMMEDIATE: the write lock is taken at BEGIN, where SQLite waits for it (busy timeout).
    // A deferred transaction would take it at its first write, and if a read came first (a
    // membership check) SQLite could not wait there: with another connection writing
    // (`sqlite3` by hand, say) every op of the batch would fail at once with SQLITE_BUSY.
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(error = %msg, "cannot begin a transaction");
            return Attempt::Failed(msg);
        }
    };
    let mut results = Vec::with_capacity(batch.len());
    let mut notices = Vec::with_capacity(batch.len());
    for (job, lost) in batch.iter().zip(lost.iter_mut()) {
        if lost.is_some() {
            // A placeholder: the op's own error replaces it below.
            results.push(Err(StorageError::Closed));
            notices.push(Vec::new());
            continue;
        }
        let result = apply_in_savepoint(&tx, &job.op, &mut pending);
        if tx.is_autocommit() {
            let error = match result {
                Err(e) => e,
                Ok(_) => StorageError::CommitFailed("the transaction was rolled back".into()),
            };
            tracing::error!(error = %error, ops = batch.len(), "a write rolled back its batch's transaction; retrying the rest");
            *lost = Some(error);
            // Dropping `tx` does nothing more: SQLite has already rolled it back.
            return Attempt::Lost;
        }
        let (result, posted) = match result {
            Ok((outcome, posted)) => (Ok(outcome), posted),
            Err(e) => (Err(e), Vec::new()),
        };
        results.push(result);
        notices.push(posted);
    }
    match tx.commit() {
        Ok(()) => {
            let SeqCounters { committed, pending } = pending;
            committed.extend(pending);
            for (result, lost) in results.iter_mut().zip(lost.iter_mut()) {
                if let Some(error) = lost.take() {
                    *result = Err(error);
                }
            }
            Attempt::Done(results, notices)
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(error = %msg, ops = batch.len(), "batch commit failed");
            Attempt::Failed(msg)
        }
    }
}

/// The results of a batch none of which was stored: the ops that lost a transaction keep
/// their own error, the others fail with `msg`.
fn failed(lost: Vec<Option<StorageError>>, msg: &str) -> Vec<Result<Outcome, StorageError>> {
    lost.into_iter()
        .map(|lost| Err(lost.unwrap_or_else(|| StorageError::CommitFailed(msg.to_owned()))))
        .collect()
}

/// After a commit, removes the blobs that deleted file messages left without a file row. It
/// runs here, on the writer thread, because posting a file (which may reuse a blob) happens
/// here too: a blob is checked and removed with no post in between.
fn remove_orphan_blobs(
    conn: &Connection,
    batch: &[Job],
    results: &[Result<Outcome, StorageError>],
) {
    for (job, result) in batch.iter().zip(results) {
        let (
            WriteOp::DeleteMessage { store, .. },
            Ok(Outcome::MessageDeleted { orphan: Some(sha) }),
        ) = (&job.op, result)
        else {
            continue;
        };
        let still_used = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = ?1)",
                params![sha.as_slice()],
                |r| r.get::<_, bool>(0),
            )
            .unwrap_or(true);
        if !still_used && let Err(e) = store.remove_blob(sha) {
            tracing::warn!(error = %e, "cannot remove an unused file");
        }
    }
}

/// Committed seqs plus the ones assigned in the open transaction.
pub(crate) struct SeqCounters<'a> {
    committed: &'a mut HashMap<RoomId, Seq>,
    pending: HashMap<RoomId, Seq>,
}

impl SeqCounters<'_> {
    fn latest(&self, room: RoomId) -> Seq {
        self.pending
            .get(&room)
            .or_else(|| self.committed.get(&room))
            .copied()
            .unwrap_or(0)
    }
}

/// Applies `op` in a savepoint; on success its seqs join the transaction's, and its notices
/// come back with the outcome.
fn apply_in_savepoint(
    tx: &Transaction<'_>,
    op: &WriteOp,
    seqs: &mut SeqCounters<'_>,
) -> Result<(Outcome, Vec<Message>), StorageError> {
    let mut posted = Posted::default();
    let outcome = in_savepoint(tx, |conn| apply(conn, op, seqs, &mut posted))?;
    seqs.pending.extend(posted.seqs());
    Ok((outcome, posted.notices))
}

/// Runs `write` inside a savepoint of the open transaction: if it fails, what it wrote is
/// undone and the transaction goes on. The savepoint statements are prepared once and cached —
/// rusqlite's `savepoint()` parses `SAVEPOINT` and `RELEASE` afresh each time, which perf put
/// at about a quarter of the writer thread's CPU when batches are large.
fn in_savepoint<T>(
    conn: &Connection,
    write: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    let written = write(conn).and_then(|value| {
        conn.prepare_cached("RELEASE op")?.execute([])?;
        Ok(value)
    });
    // When SQLite rolled back the whole transaction there is no savepoint left to undo.
    if written.is_err() && !conn.is_autocommit() {
        let undone = conn
            .prepare_cached("ROLLBACK TO op")
            .and_then(|mut s| s.execute([]))
            .and_then(|_| conn.prepare_cached("RELEASE op")?.execute([]));
        if let Err(e) = undone {
            tracing::error!(error = %e, "cannot roll back a failed write");
        }
    }
    written
}

fn refused(code: ErrorCode, message: impl Into<String>) -> StorageError {
    StorageError::Refused(ErrorBody::new(code, message))
}

fn apply(
    conn: &Connection,
    op: &WriteOp,
    seqs: &SeqCounters<'_>,
    posted: &mut Posted,
) -> Result<Outcome, StorageError> {
    let now = now_millis() as i64;
    match op {
        WriteOp::CreateUser {
            name,
            password_hash,
            admin,
        } => {
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
                add_member(conn, public, id, RoomRole::Member, now)?;
                notices::post(conn, posted, public, id, notices::joined(name, None), now)?;
            }
            Ok(Outcome::User(UserRow {
                id,
                name: name.clone(),
                name_key: key,
                is_admin,
            }))
        }
        WriteOp::CreateSession {
            user,
            token_hash,
            device,
        } => {
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, device, created_at, last_used_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![token_hash, user.0 as i64, device, now],
            )?;
            Ok(Outcome::Done)
        }
        WriteOp::DeleteSession { token_hash } => {
            conn.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                params![token_hash],
            )?;
            Ok(Outcome::Done)
        }
        WriteOp::RevokeSessions { user } => {
            conn.execute(
                "DELETE FROM sessions WHERE user_id = ?1",
                params![user.0 as i64],
            )?;
            Ok(Outcome::Done)
        }
        WriteOp::SessionUpkeep { used, expired } => {
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
        WriteOp::ChangePassword {
            user,
            password_hash,
            keep_session,
        } => {
            let changed = conn.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![password_hash, user.0 as i64],
            )?;
            if changed == 0 {
                return Err(refused(ErrorCode::UserNotFound, "no such user"));
            }
            conn.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND token_hash IS NOT ?2",
                params![user.0 as i64, keep_session],
            )?;
            Ok(Outcome::Done)
        }
        WriteOp::CreateRoom { name, kind, owner } => {
            let inserted = conn.execute(
                "INSERT INTO rooms (kind, name, name_key, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind_to_sql(*kind), name, crate::auth::name_key(name), owner.0 as i64, now],
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
            add_member(conn, id, *owner, RoomRole::Owner, now)?;
            Ok(Outcome::Room(RoomRow {
                id,
                kind: *kind,
                name: name.clone(),
                topic: String::new(),
            }))
        }
        WriteOp::AddMember {
            room,
            user,
            role,
            by,
        } => {
            if let Some(by) = by {
                let needed = if room_kind(conn, *room)? == RoomKind::Public {
                    RoomRole::Member
                } else {
                    RoomRole::Moderator
                };
                require_role(
                    conn,
                    *room,
                    *by,
                    needed,
                    "only the owner or a moderator may invite to a private room",
                )?;
            }
            if is_banned(conn, *room, *user)? {
                return Err(refused(
                    ErrorCode::Forbidden,
                    if by.is_some() {
                        "they are banned from this room; a moderator must unban them first"
                    } else {
                        "you are banned from this room"
                    },
                ));
            }
            let role = if needs_owner(conn, *room)? && !super::ai::is_bot(conn, *user)? {
                RoomRole::Owner
            } else {
                *role
            };
            let added = conn.execute(
                "INSERT OR IGNORE INTO members (room_id, user_id, role, last_read_seq, joined_at) \
                 VALUES (?1, ?2, ?3, 0, ?4)",
                params![room.0 as i64, user.0 as i64, role_to_sql(role), now],
            )?;
            if added == 0 {
                return Err(refused(ErrorCode::AlreadyMember, "already a member"));
            }
            let who = notices::name_of(conn, *user)?;
            let (actor, text) = match by {
                Some(by) => (
                    *by,
                    notices::joined(&who, Some(&notices::name_of(conn, *by)?)),
                ),
                None => (*user, notices::joined(&who, None)),
            };
            notices::post(conn, posted, *room, actor, text, now)?;
            Ok(Outcome::Roles(vec![(*user, role)]))
        }
        WriteOp::RemoveMember {
            room,
            user,
            by,
            reason,
        } => {
            if let Some(by) = by {
                let mine = require_role(
                    conn,
                    *room,
                    *by,
                    RoomRole::Moderator,
                    "only the owner or a moderator may remove members",
                )?;
                if member_role(conn, *room, *user)?.is_some_and(|theirs| theirs >= mine) {
                    return Err(refused(
                        ErrorCode::Forbidden,
                        "you may only remove members below your own role",
                    ));
                }
            }
            let Some(changes) = remove_membership(conn, *room, *user)? else {
                return Err(refused(ErrorCode::NotMember, "not a member of that room"));
            };
            let who = notices::name_of(conn, *user)?;
            let heir = heir_name(conn, &changes)?;
            let text = match by {
                Some(by) => notices::left(
                    &who,
                    Some(&notices::name_of(conn, *by)?),
                    reason.as_deref(),
                    heir.as_deref(),
                ),
                None => notices::left(&who, None, None, heir.as_deref()),
            };
            notices::post(conn, posted, *room, by.unwrap_or(*user), text, now)?;
            Ok(Outcome::Roles(changes))
        }
        WriteOp::Ban {
            room,
            user,
            by,
            by_name,
            reason,
        } => {
            if room_kind(conn, *room)? == RoomKind::Direct {
                return Err(refused(ErrorCode::Forbidden, "a direct chat has no bans"));
            }
            let mine = require_role(
                conn,
                *room,
                *by,
                RoomRole::Moderator,
                "only the owner or a moderator may ban",
            )?;
            if user == by {
                return Err(refused(ErrorCode::BadRequest, "you cannot ban yourself"));
            }
            if member_role(conn, *room, *user)?.is_some_and(|theirs| theirs >= mine) {
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
            let removed = remove_membership(conn, *room, *user)?;
            let who = notices::name_of(conn, *user)?;
            let text = notices::banned(&who, by_name, reason.as_deref());
            notices::post(conn, posted, *room, *by, text, now)?;
            Ok(Outcome::Banned {
                was_member: removed.is_some(),
                heirs: removed.unwrap_or_default(),
            })
        }
        WriteOp::Unban { room, user, by } => {
            require_role(
                conn,
                *room,
                *by,
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
            let text = notices::unbanned(
                &notices::name_of(conn, *user)?,
                &notices::name_of(conn, *by)?,
            );
            notices::post(conn, posted, *room, *by, text, now)?;
            Ok(Outcome::Done)
        }
        WriteOp::Mute {
            room,
            user,
            by,
            by_name,
            reason,
            until,
        } => {
            if room_kind(conn, *room)? == RoomKind::Direct {
                return Err(refused(ErrorCode::Forbidden, "a direct chat has no mutes"));
            }
            let mine = require_role(
                conn,
                *room,
                *by,
                RoomRole::Moderator,
                "only the owner or a moderator may mute",
            )?;
            if user == by {
                return Err(refused(ErrorCode::BadRequest, "you cannot mute yourself"));
            }
            let Some(theirs) = member_role(conn, *room, *user)? else {
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
            let who = notices::name_of(conn, *user)?;
            let text = notices::muted(&who, by_name, *until, now as UnixMillis, reason.as_deref());
            notices::post(conn, posted, *room, *by, text, now)?;
            Ok(Outcome::Done)
        }
        WriteOp::Unmute { room, user, by } => {
            require_role(
                conn,
                *room,
                *by,
                RoomRole::Moderator,
                "only the owner or a moderator may unmute",
            )?;
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
            let text = notices::unmuted(
                &notices::name_of(conn, *user)?,
                &notices::name_of(conn, *by)?,
            );
            notices::post(conn, posted, *room, *by, text, now)?;
            Ok(Outcome::Done)
        }
        WriteOp::SetRole {
            room,
            user,
            role,
            actor,
        } => {
            let role_of = |who: UserId| member_role(conn, *room, who);
            if role_of(*actor)? != Some(RoomRole::Owner) {
                return Err(refused(
                    ErrorCode::Forbidden,
                    "only the room's owner may change roles",
                ));
            }
            if role_of(*user)?.is_none() {
                return Err(refused(ErrorCode::NotMember, "not a member of that room"));
            }
            if user == actor {
                return Err(refused(
                    ErrorCode::BadRequest,
                    "you own this room: give the owner role to someone else to hand it over",
                ));
            }
            if *role == RoomRole::Owner && super::ai::is_bot(conn, *user)? {
                return Err(refused(ErrorCode::Forbidden, "a bot cannot own a room"));
            }
            let set = |who: UserId, role: RoomRole| {
                conn.execute(
                    "UPDATE members SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
                    params![room.0 as i64, who.0 as i64, role_to_sql(role)],
                )
            };
            set(*user, *role)?;
            let mut changes = vec![(*user, *role)];
            if *role == RoomRole::Owner {
                set(*actor, RoomRole::Moderator)?;
                changes.push((*actor, RoomRole::Moderator));
            }
            let text = notices::role_set(
                &notices::name_of(conn, *user)?,
                &notices::name_of(conn, *actor)?,
                *role,
            );
            notices::post(conn, posted, *room, *actor, text, now)?;
            Ok(Outcome::Roles(changes))
        }
        WriteOp::SetTopic { room, topic, by } => {
            let needed = if room_kind(conn, *room)? == RoomKind::Direct {
                RoomRole::Member
            } else {
                RoomRole::Moderator
            };
            require_role(
                conn,
                *room,
                *by,
                needed,
                "only the owner or a moderator may set the topic",
            )?;
            conn.execute(
                "UPDATE rooms SET topic = ?1 WHERE id = ?2",
                params![topic, room.0 as i64],
            )?;
            let text = notices::topic_set(&notices::name_of(conn, *by)?, topic);
            notices::post(conn, posted, *room, *by, text, now)?;
            Ok(Outcome::Done)
        }
        WriteOp::RenameRoom { room, name, by } => {
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
                *room,
                *by,
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
                &notices::name_of(conn, *by)?,
                old.as_deref().unwrap_or_default(),
                name,
            );
            notices::post(conn, posted, *room, *by, text, now)?;
            Ok(Outcome::Done)
        }
        WriteOp::OpenDirect { a, b } => {
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
                    add_member(conn, id, *lo, RoomRole::Member, now)?;
                    if lo != hi {
                        add_member(conn, id, *hi, RoomRole::Member, now)?;
                    }
                    (id, String::new(), true)
                }
            };
            Ok(Outcome::Direct {
                room: RoomRow {
                    id,
                    kind: RoomKind::Direct,
                    name: String::new(),
                    topic,
                },
                created,
            })
        }
        WriteOp::InsertMessage {
            room,
            sender,
            sender_name,
            kind,
            text,
            mentions,
        } => {
            // The hub checked membership when the request came in, but a kick or leave may
            // have committed since, in this batch or an earlier one.
            let seq = seqs.latest(*room) + 1;
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
                require_member(conn, *room, *sender)?;
            }
            let id = insert_message_row(conn, *room, seq, *sender, sender_name, now, kind, text)?;
            if !mentions.is_empty() {
                let mut stmt = conn.prepare_cached(
                    "INSERT OR IGNORE INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3)",
                )?;
                for user in mentions {
                    stmt.execute(params![user.0 as i64, room.0 as i64, seq as i64])?;
                }
            }
            posted.took(*room, seq);
            Ok(Outcome::Message(Message {
                id,
                room: *room,
                seq,
                sender: *sender,
                sender_name: sender_name.clone(),
                ts: now as UnixMillis,
                kind: kind.clone(),
                text: text.clone(),
            }))
        }
        WriteOp::MarkRead { room, user, seq } => {
            let seq = (*seq).min(seqs.latest(*room));
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
        WriteOp::DeleteUser { user } => {
            conn.execute(
                "DELETE FROM mentions WHERE user_id = ?1",
                params![user.0 as i64],
            )?;
            // The named rooms it was in hear of it (a direct chat keeps the account's name).
            let rooms: Vec<i64> = conn
                .prepare(
                    "SELECT m.room_id FROM members m JOIN rooms r ON r.id = m.room_id \
                     WHERE m.user_id = ?1 AND r.kind IN (0, 1) ORDER BY m.room_id",
                )?
                .query_map(params![user.0 as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let owned: Vec<i64> = conn
                .prepare("DELETE FROM members WHERE user_id = ?1 AND role = 2 RETURNING room_id")?
                .query_map(params![user.0 as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut heirs = HashMap::new();
            for room in owned {
                if let Some(heir) = hand_over(conn, RoomId(room as u64))? {
                    heirs.insert(room, notices::name_of(conn, heir)?);
                }
            }
            let name = notices::name_of(conn, *user)?;
            for room in rooms {
                let text = notices::account_deleted(&name, heirs.get(&room).map(String::as_str));
                notices::post(conn, posted, RoomId(room as u64), *user, text, now)?;
            }
            // Direct chats with the account keep its name (their `name` is otherwise unused).
            conn.execute(
                "UPDATE rooms SET name = (SELECT name FROM users WHERE id = ?1) \
                 WHERE kind = 2 AND (direct_key LIKE ?1 || ':%' OR direct_key LIKE '%:' || ?1)",
                params![user.0 as i64],
            )?;
            let deleted =
                conn.execute("DELETE FROM users WHERE id = ?1", params![user.0 as i64])?;
            if deleted == 0 {
                return Err(refused(ErrorCode::UserNotFound, "no such user"));
            }
            Ok(Outcome::Done)
        }
        WriteOp::SetAdmin { user, admin } => {
            let changed = conn.execute(
                "UPDATE users SET is_admin = ?1 WHERE id = ?2",
                params![admin, user.0 as i64],
            )?;
            if changed == 0 {
                return Err(refused(ErrorCode::UserNotFound, "no such user"));
            }
            Ok(Outcome::Done)
        }
        WriteOp::OpenUpload {
            user,
            room,
            name,
            size,
            sha256,
            quota,
        } => {
            let existing: Option<i64> = conn
                .query_row(
                    "SELECT id FROM uploads \
                     WHERE user_id = ?1 AND room_id = ?2 AND sha256 = ?3 AND size = ?4",
                    params![
                        user.0 as i64,
                        room.0 as i64,
                        sha256.as_slice(),
                        *size as i64
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            check_quota(conn, *user, *size, existing, *quota)?;
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
                            *size as i64,
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
        WriteOp::DeleteUpload { upload } => {
            conn.execute(
                "DELETE FROM uploads WHERE id = ?1",
                params![upload.0 as i64],
            )?;
            Ok(Outcome::Done)
        }
        WriteOp::ExpireUploads {
            cutoff,
            keep,
            force,
        } => {
            let mut expired = Vec::new();
            {
                let mut stmt =
                    conn.prepare_cached("SELECT id FROM uploads WHERE updated_at < ?1")?;
                let rows = stmt.query_map(params![*cutoff as i64], |r| r.get::<_, i64>(0))?;
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
        WriteOp::PostFile {
            upload,
            user,
            user_name,
            room,
            name,
            size,
            sha256,
            quota,
            text,
            store,
        } => {
            require_member(conn, *room, *user)?;
            check_quota(conn, *user, *size, Some(upload.0 as i64), *quota)?;
            store.commit_part(*upload, sha256).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    refused(
                        ErrorCode::UploadNotFound,
                        "the upload's bytes are gone; offer the file again",
                    )
                } else {
                    StorageError::Io(e)
                }
            })?;
            let seq = seqs.latest(*room) + 1;
            conn.prepare_cached(
                "INSERT INTO files (room_id, seq, name, size, sha256, uploader_id, uploader_name, ts) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                room.0 as i64,
                seq as i64,
                name,
                *size as i64,
                sha256.as_slice(),
                user.0 as i64,
                user_name,
                now
            ])?;
            let file = FileId(conn.last_insert_rowid() as u64);
            conn.prepare_cached(
                "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text, file_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 2, ?6, ?7)",
            )?
            .execute(params![
                room.0 as i64,
                seq as i64,
                user.0 as i64,
                user_name,
                now,
                text,
                file.0 as i64
            ])?;
            let id = MessageId(conn.last_insert_rowid() as u64);
            conn.prepare_cached(
                "UPDATE members SET last_read_seq = ?1 WHERE room_id = ?2 AND user_id = ?3",
            )?
            .execute(params![seq as i64, room.0 as i64, user.0 as i64])?;
            conn.execute(
                "DELETE FROM uploads WHERE id = ?1",
                params![upload.0 as i64],
            )?;
            posted.took(*room, seq);
            let info = FileInfo {
                id: file,
                room: *room,
                seq,
                name: name.clone(),
                size: *size,
                sha256: *sha256,
                uploader: *user,
                uploader_name: user_name.clone(),
                ts: now as UnixMillis,
            };
            let message = Message {
                id,
                room: *room,
                seq,
                sender: *user,
                sender_name: user_name.clone(),
                ts: now as UnixMillis,
                kind: MessageKind::File(Box::new(FileRef {
                    id: file,
                    name: name.clone(),
                    size: *size,
                    sha256: *sha256,
                })),
                text: text.clone(),
            };
            Ok(Outcome::File { info, message })
        }
        WriteOp::DeleteMessage {
            room,
            seq,
            actor,
            store: _,
        } => {
            let row: Option<(i64, i64, Option<i64>)> = conn
                .query_row(
                    "SELECT sender_id, kind, file_id FROM messages WHERE room_id = ?1 AND seq = ?2",
                    params![room.0 as i64, *seq as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((sender, kind, file)) = row else {
                return Err(refused(ErrorCode::BadRequest, "no such message"));
            };
            let role: Option<i64> = conn
                .query_row(
                    "SELECT role FROM members WHERE room_id = ?1 AND user_id = ?2",
                    params![room.0 as i64, actor.0 as i64],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(role) = role.map(role_from_sql) else {
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
            let mut orphan = None;
            if let Some(file) = file {
                let sha: Option<Vec<u8>> = conn
                    .query_row(
                        "DELETE FROM files WHERE id = ?1 RETURNING sha256",
                        params![file],
                        |r| r.get(0),
                    )
                    .optional()?;
                orphan = sha.and_then(super::sha256_from_sql);
            }
            conn.execute(
                "UPDATE messages SET kind = 3, text = '', file_id = NULL WHERE room_id = ?1 AND seq = ?2",
                params![room.0 as i64, *seq as i64],
            )?;
            conn.execute(
                "DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2",
                params![room.0 as i64, *seq as i64],
            )?;
            Ok(Outcome::MessageDeleted { orphan })
        }
        WriteOp::EditMessage {
            room,
            seq,
            editor,
            text,
            mentions,
        } => {
            let at = now as UnixMillis;
            let Some(mut message) = conn
                .query_row(
                    &format!(
                        "SELECT {} FROM messages m LEFT JOIN files f ON f.id = m.file_id \
                         WHERE m.room_id = ?1 AND m.seq = ?2",
                        super::reads::MESSAGE_COLUMNS
                    ),
                    params![room.0 as i64, *seq as i64],
                    super::reads::message_from_row,
                )
                .optional()?
            else {
                return Err(refused(ErrorCode::BadRequest, "no such message"));
            };
            require_member(conn, *room, *editor)?;
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
            if message.sender != *editor {
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
                params![text, now, room.0 as i64, *seq as i64],
            )?;
            conn.execute(
                "DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2",
                params![room.0 as i64, *seq as i64],
            )?;
            let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3)",
            )?;
            for user in mentions {
                stmt.execute(params![user.0 as i64, room.0 as i64, *seq as i64])?;
            }
            message.kind = MessageKind::Edited { at };
            message.text = text.clone();
            Ok(Outcome::Edited(Some(message)))
        }
        WriteOp::SetAiContextStart { room, after_seq } => {
            conn.execute(
                "INSERT INTO ai_context_starts (room_id, after_seq) VALUES (?1, ?2) \
                 ON CONFLICT (room_id) DO UPDATE SET after_seq = MAX(after_seq, excluded.after_seq)",
                params![room.0 as i64, *after_seq as i64],
            )?;
            Ok(Outcome::Done)
        }
    }
}

/// Refuses the op unless `user` is (still) a member of `room`.
fn require_member(conn: &Connection, room: RoomId, user: UserId) -> Result<(), StorageError> {
    let member: Option<i64> = conn
        .prepare_cached("SELECT role FROM members WHERE room_id = ?1 AND user_id = ?2")?
        .query_row(params![room.0 as i64, user.0 as i64], |r| r.get(0))
        .optional()?;
    match member {
        Some(_) => Ok(()),
        None => Err(not_a_member()),
    }
}

fn not_a_member() -> StorageError {
    refused(
        ErrorCode::NotMember,
        "you are no longer a member of that room",
    )
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
                "this file ({size} bytes) would take you over your quota: {used} of {quota} bytes used"
            ),
        ));
    }
    Ok(())
}

/// `user`'s role in `room`, `None` when not a member.
fn member_role(
    conn: &Connection,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomRole>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT role FROM members WHERE room_id = ?1 AND user_id = ?2")?
        .query_row(params![room.0 as i64, user.0 as i64], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .map(role_from_sql))
}

/// `actor`'s role in `room`, refused unless they are a member with at least `needed`. The
/// request was checked against the hub, but a role change may have been committed since.
fn require_role(
    conn: &Connection,
    room: RoomId,
    actor: UserId,
    needed: RoomRole,
    refusal: &str,
) -> Result<RoomRole, StorageError> {
    match member_role(conn, room, actor)? {
        None => Err(refused(
            ErrorCode::NotMember,
            "you are not a member of that room",
        )),
        Some(role) if role < needed => Err(refused(ErrorCode::Forbidden, refusal)),
        Some(role) => Ok(role),
    }
}

/// Inserts a message row (a post, or a room notice) with `seq`; its id.
// One argument per column: a struct for them would only rename them.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_message_row(
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
fn remove_membership(
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

/// What kind of room `room` is.
fn room_kind(conn: &Connection, room: RoomId) -> Result<RoomKind, StorageError> {
    conn.prepare_cached("SELECT kind FROM rooms WHERE id = ?1")?
        .query_row(params![room.0 as i64], |r| r.get(0))
        .optional()?
        .map(kind_from_sql)
        .ok_or_else(|| refused(ErrorCode::RoomNotFound, "no such room"))
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
fn hand_over(conn: &Connection, room: RoomId) -> Result<Option<UserId>, StorageError> {
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

fn add_member(
    conn: &Connection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    now: i64,
) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO members (room_id, user_id, role, last_read_seq, joined_at) VALUES (?1, ?2, ?3, 0, ?4)",
        params![room.0 as i64, user.0 as i64, role_to_sql(role), now],
    )?;
    Ok(())
}

/// Applies one op directly on `conn` in its own transaction, for the offline admin commands
/// (the server is not running, so there is no writer thread and no seq to keep).
pub fn apply_offline(conn: &mut Connection, op: &WriteOp) -> Result<Outcome, StorageError> {
    let mut latest = HashMap::new();
    let seqs = SeqCounters {
        committed: &mut latest,
        pending: HashMap::new(),
    };
    let tx = conn.transaction()?;
    let mut posted = Posted::default();
    let outcome = apply(&tx, op, &seqs, &mut posted)?;
    tx.commit()?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_undone_and_the_transaction_goes_on() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)")
            .expect("creates");
        let tx = conn.transaction().expect("begins");
        // Twice: the cached savepoint statements must work again after a rollback.
        for base in [0, 10] {
            let insert = |c: &Connection, n: i64| c.execute("INSERT INTO t VALUES (?1)", [n]);
            in_savepoint(&tx, |c| Ok(insert(c, base + 1)?)).expect("the first write");
            let failed = in_savepoint(&tx, |c| {
                insert(c, base + 2)?;
                Err::<(), _>(refused(ErrorCode::RoomNotFound, "refused after writing"))
            });
            assert!(
                matches!(failed, Err(StorageError::Refused(_))),
                "{failed:?}"
            );
            in_savepoint(&tx, |c| Ok(insert(c, base + 3)?)).expect("the third write");
        }
        tx.commit().expect("commits");
        let mut stmt = conn
            .prepare("SELECT n FROM t ORDER BY n")
            .expect("prepares");
        let rows: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(rows, [1, 3, 11, 13]);
    }

    fn message(text: &str) -> Job {
        Job {
            op: WriteOp::InsertMessage {
                room: RoomId(1),
                sender: UserId(1),
                sender_name: "alice".into(),
                kind: MessageKind::Text,
                text: text.into(),
                mentions: Vec::new(),
            },
            done: Box::new(|_| {}),
        }
    }

    fn stored(conn: &Connection) -> Vec<(i64, String)> {
        let mut stmt = conn
            .prepare("SELECT seq, text FROM messages ORDER BY seq")
            .expect("prepares");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("reads")
    }

    #[test]
    fn a_kick_invite_or_topic_is_checked_against_roles_changed_earlier_in_the_batch() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        // ops (2) is private: olga owns it, mike moderates, bob is a member; xena is outside.
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES
                 (1, 'olga', 'olga', '-', 0), (2, 'mike', 'mike', '-', 0),
                 (3, 'bob', 'bob', '-', 0), (4, 'xena', 'xena', '-', 0);
             INSERT INTO rooms (id, kind, name, name_key, created_by, created_at)
                 VALUES (2, 1, 'ops', 'ops', 1, 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES
                 (2, 1, 2, 0), (2, 2, 1, 1), (2, 3, 0, 2);",
        )
        .expect("the room");
        let job = |op| Job {
            op,
            done: Box::new(|_| {}),
        };
        let set_role = |user: u64, role| {
            job(WriteOp::SetRole {
                room: RoomId(2),
                user: UserId(user),
                role,
                actor: UserId(1),
            })
        };
        let forbidden = |result: &Result<Outcome, StorageError>| matches!(result, Err(StorageError::Refused(e)) if e.code == ErrorCode::Forbidden);
        let mut seqs = HashMap::new();

        // Bob is handed the room while mike kicks or bans him, and olga renames it: all three
        // come too late.
        let batch = [
            set_role(3, RoomRole::Owner),
            job(WriteOp::RemoveMember {
                room: RoomId(2),
                user: UserId(3),
                by: Some(UserId(2)),
                reason: None,
            }),
            job(WriteOp::Ban {
                room: RoomId(2),
                user: UserId(3),
                by: UserId(2),
                by_name: "mike".into(),
                reason: None,
            }),
            job(WriteOp::RenameRoom {
                room: RoomId(2),
                name: "olgas".into(),
                by: UserId(1),
            }),
        ];
        let (results, _) = run_batch(&mut conn, &batch, &mut seqs);
        assert!(
            results[0].is_ok()
                && forbidden(&results[1])
                && forbidden(&results[2])
                && forbidden(&results[3]),
            "{results:?}"
        );
        let bans: i64 = conn
            .query_row("SELECT COUNT(*) FROM bans", [], |r| r.get(0))
            .expect("count");
        assert_eq!(bans, 0, "a refused ban leaves no row");

        // Mike is demoted (by bob, the owner now) while he invites and sets the topic.
        let batch = [
            job(WriteOp::SetRole {
                room: RoomId(2),
                user: UserId(2),
                role: RoomRole::Member,
                actor: UserId(3),
            }),
            job(WriteOp::AddMember {
                room: RoomId(2),
                user: UserId(4),
                role: RoomRole::Member,
                by: Some(UserId(2)),
            }),
            job(WriteOp::SetTopic {
                room: RoomId(2),
                topic: "mine now".into(),
                by: UserId(2),
            }),
        ];
        let (results, _) = run_batch(&mut conn, &batch, &mut seqs);
        assert!(
            results[0].is_ok() && forbidden(&results[1]) && forbidden(&results[2]),
            "{results:?}"
        );
        let members: i64 = conn
            .query_row("SELECT COUNT(*) FROM members WHERE room_id = 2", [], |r| {
                r.get(0)
            })
            .expect("count");
        assert_eq!(members, 3, "bob is still there, xena never came in");
    }

    #[tokio::test]
    async fn a_writer_thread_that_dies_is_seen_to_stop() {
        let conn = Connection::open_in_memory().expect("opens");
        let (writer, thread) = start(conn, HashMap::new()).expect("starts");
        let stopped = writer.stopped();
        tokio::pin!(stopped);
        assert!(
            poll_once(stopped.as_mut()).await.is_none(),
            "a live writer has not stopped"
        );
        writer.panic_for_test().await;
        tokio::time::timeout(std::time::Duration::from_secs(10), stopped)
            .await
            .expect("seen to stop");
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("join");
        assert!(joined.is_err(), "it died of the panic");
    }

    /// Polls `f` once: `Some` if it is ready.
    async fn poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[test]
    fn only_text_messages_can_be_edited_and_an_edit_keeps_seq_and_time() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES
                 (1, 'alice', 'alice', '-', 0);
             INSERT INTO rooms (id, kind, name, name_key, created_by, created_at)
                 VALUES (2, 0, 'dev', 'dev', 1, 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (2, 1, 2, 0);
             INSERT INTO files (id, room_id, seq, name, size, sha256, uploader_id,
                                uploader_name, ts)
                 VALUES (5, 2, 3, 'a.txt', 1, zeroblob(32), 1, 'alice', 9);
             INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text, file_id)
                 VALUES (2, 1, 1, 'alice', 7, 0, 'helo', NULL),
                        (2, 2, 1, 'alice', 8, 1, 'alice set the topic', NULL),
                        (2, 3, 1, 'alice', 9, 2, 'a file', 5);",
        )
        .expect("the room");
        let edit = |seq: Seq| Job {
            op: WriteOp::EditMessage {
                room: RoomId(2),
                seq,
                editor: UserId(1),
                text: "hello".into(),
                mentions: Vec::new(),
            },
            done: Box::new(|_| {}),
        };
        let (results, _) = run_batch(&mut conn, &[edit(1), edit(2), edit(3)], &mut HashMap::new());
        let Ok(Outcome::Edited(Some(message))) = &results[0] else {
            panic!("{results:?}");
        };
        assert_eq!(
            (message.seq, message.ts, message.text.as_str()),
            (1, 7, "hello")
        );
        assert!(
            matches!(message.kind, MessageKind::Edited { at } if at > 0),
            "{message:?}"
        );
        for refused in &results[1..] {
            assert!(
                matches!(refused, Err(StorageError::Refused(e)) if e.code == ErrorCode::Forbidden),
                "{refused:?}"
            );
        }
        assert_eq!(
            stored(&conn),
            [
                (1, "hello".to_string()),
                (2, "alice set the topic".to_string()),
                (3, "a file".to_string())
            ]
        );
    }

    #[test]
    fn deleting_an_owner_passes_their_rooms_on_to_a_person() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        // alice owns ops (2) and lobby (3); in ops the bot was there before bob, in lobby
        // only the bot is left.
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at, is_bot) VALUES
                 (1, 'alice', 'alice', '-', 0, 0), (2, 'bob', 'bob', '-', 0, 0),
                 (3, 'ai', 'ai', '!', 0, 1);
             INSERT INTO rooms (id, kind, name, name_key, created_by, created_at) VALUES
                 (2, 1, 'ops', 'ops', 1, 0), (3, 0, 'lobby', 'lobby', 1, 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES
                 (2, 1, 2, 0), (2, 3, 0, 1), (2, 2, 0, 2), (3, 1, 2, 0), (3, 3, 0, 1);",
        )
        .expect("rooms");
        apply_offline(&mut conn, &WriteOp::DeleteUser { user: UserId(1) }).expect("deleted");
        let owner = |room: i64| -> Option<i64> {
            conn.query_row(
                "SELECT user_id FROM members WHERE room_id = ?1 AND role = 2",
                [room],
                |r| r.get(0),
            )
            .optional()
            .expect("query")
        };
        assert_eq!(owner(2), Some(2), "bob, not the bot that came first");
        assert_eq!(owner(3), None, "nobody but the bot is left");
        // The next person to join lobby owns it; a bot would not.
        let joined = apply_offline(
            &mut conn,
            &WriteOp::AddMember {
                room: RoomId(3),
                user: UserId(2),
                role: RoomRole::Member,
                by: None,
            },
        )
        .expect("joined");
        assert!(
            matches!(&joined, Outcome::Roles(r) if r == &[(UserId(2), RoomRole::Owner)]),
            "{joined:?}"
        );
    }

    #[test]
    fn a_message_from_someone_removed_earlier_in_the_batch_is_refused() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', '-', 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (1, 1, 0, 0);",
        )
        .expect("alice in room 1");
        let mut seqs = HashMap::new();
        let remove = Job {
            op: WriteOp::RemoveMember {
                room: RoomId(1),
                user: UserId(1),
                by: None,
                reason: None,
            },
            done: Box::new(|_| {}),
        };
        let batch = [message("before"), remove, message("after")];
        let (results, notices) = run_batch(&mut conn, &batch, &mut seqs);
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        assert!(
            matches!(&results[2], Err(StorageError::Refused(e)) if e.code == ErrorCode::NotMember),
            "{results:?}"
        );
        // The leave is the room's notice, with the seq after the message before it.
        assert_eq!(
            stored(&conn),
            [(1, "before".into()), (2, "alice left".into())]
        );
        assert!(
            notices[0].is_empty() && notices[2].is_empty(),
            "{notices:?}"
        );
        assert!(
            matches!(&notices[1][..], [n] if n.seq == 2 && n.kind == MessageKind::System && n.sender == UserId(1)),
            "{notices:?}"
        );
        assert_eq!(seqs.get(&RoomId(1)), Some(&2));
    }

    #[tokio::test]
    async fn the_queue_depth_counts_the_ops_waiting_for_the_thread() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        let (writer, thread) = start(conn, HashMap::new()).expect("starts");
        let upkeep = || WriteOp::SessionUpkeep {
            used: Vec::new(),
            expired: Vec::new(),
        };
        assert_eq!(writer.queued(), (0, QUEUE));
        // The thread is held inside a completion while three more ops queue up.
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        writer
            .submit(upkeep(), move |_| {
                let _ = entered_tx.send(());
                let _ = released.recv();
            })
            .await
            .expect("queued");
        tokio::task::spawn_blocking(move || entered.recv())
            .await
            .expect("join")
            .expect("the thread holds");
        for _ in 0..3 {
            writer.submit(upkeep(), |_| {}).await.expect("queued");
        }
        assert_eq!(writer.queued(), (3, QUEUE));
        release.send(()).expect("release");
        writer.write(upkeep()).await.expect("a round trip");
        assert_eq!(writer.queued(), (0, QUEUE));
        drop(writer);
        thread.join().expect("the thread ends");
    }

    #[test]
    fn notices_take_seqs_between_messages_and_vanish_with_a_refused_op() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', '-', 0), (2, 'bob', 'bob', '-', 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (1, 1, 0, 0);",
        )
        .expect("alice in room 1");
        let job = |op| Job {
            op,
            done: Box::new(|_| {}),
        };
        let join = |user: u64| {
            job(WriteOp::AddMember {
                room: RoomId(1),
                user: UserId(user),
                role: RoomRole::Member,
                by: None,
            })
        };
        let topic = |by: u64| {
            job(WriteOp::SetTopic {
                room: RoomId(1),
                topic: "ship it".into(),
                by: UserId(by),
            })
        };
        let mut seqs = HashMap::new();
        // Bob joins between two messages; his second join and alice's topic (she is no
        // moderator of public) are refused, and leave neither a row nor a seq behind.
        let batch = [message("one"), join(2), join(2), topic(1), message("two")];
        let (results, notices) = run_batch(&mut conn, &batch, &mut seqs);
        assert!(
            results[0].is_ok() && results[1].is_ok() && results[4].is_ok(),
            "{results:?}"
        );
        assert!(results[2].is_err() && results[3].is_err(), "{results:?}");
        assert_eq!(
            stored(&conn),
            [
                (1, "one".into()),
                (2, "bob joined".into()),
                (3, "two".into())
            ]
        );
        assert_eq!(
            notices.iter().map(Vec::len).collect::<Vec<_>>(),
            [0, 1, 0, 0, 0]
        );
        assert_eq!(seqs.get(&RoomId(1)), Some(&3));

        // Notices are no one's unread news.
        let unread: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE room_id = 1 AND kind != 1",
                [],
                |r| r.get(0),
            )
            .expect("counts");
        assert_eq!(unread, 2);
    }

    #[test]
    fn an_offline_account_deletion_tells_its_rooms_after_their_newest_message() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', '-', 0), (2, 'bob', 'bob', '-', 0);
             INSERT INTO rooms (id, kind, name, name_key, created_at) VALUES (2, 0, 'dev', 'dev', 0);
             INSERT INTO members (room_id, user_id, role, joined_at)
                 VALUES (1, 1, 0, 0), (1, 2, 0, 0), (2, 1, 2, 0), (2, 2, 0, 1);
             INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text)
                 VALUES (2, 1, 2, 'bob', 0, 0, 'hi'), (2, 2, 1, 'alice', 0, 0, 'hello');",
        )
        .expect("alice owns dev, bob is in it");
        apply_offline(&mut conn, &WriteOp::DeleteUser { user: UserId(1) }).expect("deleted");
        let mut rows = stored(&conn); // public's notice and dev's first message share seq 1
        rows.sort();
        assert_eq!(
            rows,
            [
                (1, "alice's account was deleted".into()),
                (1, "hi".into()),
                (2, "hello".into()),
                (
                    3,
                    "alice's account was deleted; bob is now the owner".into()
                ),
            ]
        );
    }

    #[test]
    fn writes_that_roll_back_the_transaction_fail_alone_a_few_times_then_the_batch_fails() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', '-', 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (1, 1, 0, 0);
             CREATE TRIGGER inject_failure BEFORE INSERT ON messages WHEN NEW.text LIKE 'boom%'
             BEGIN SELECT RAISE(ROLLBACK, 'injected'); END;",
        )
        .expect("alice in room 1, and the trigger");
        let mut seqs = HashMap::new();

        // Two failing writes: each fails alone, the others are stored, gapless.
        let batch: Vec<Job> = ["a", "boom 1", "b", "boom 2", "c"]
            .into_iter()
            .map(message)
            .collect();
        let (results, _) = run_batch(&mut conn, &batch, &mut seqs);
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, true, false, true]);
        assert_eq!(
            stored(&conn),
            [(1, "a".into()), (2, "b".into()), (3, "c".into())]
        );
        assert_eq!(seqs.get(&RoomId(1)), Some(&3));

        // More than the attempts allow: nothing of the batch is stored, the seqs stay.
        let batch: Vec<Job> = ["d", "boom 1", "boom 2", "boom 3", "boom 4", "e"]
            .into_iter()
            .map(message)
            .collect();
        let (results, _) = run_batch(&mut conn, &batch, &mut seqs);
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert_eq!(stored(&conn).len(), 3);
        assert_eq!(seqs.get(&RoomId(1)), Some(&3));
        assert!(conn.is_autocommit(), "no transaction is left open");

        let (results, _) = run_batch(&mut conn, &[message("f")], &mut seqs);
        assert!(
            matches!(&results[..], [Ok(Outcome::Message(m))] if m.seq == 4),
            "{results:?}"
        );
    }
}
