//! The writer thread: every change to the database goes through here.
//!
//! Callers queue a [`WriteOp`] with a completion. The thread takes everything queued (up to
//! [`MAX_BATCH`]), applies each op inside its own savepoint of one transaction — so one refused
//! op (a taken name) does not spoil the batch — commits once, and then runs the completions in
//! order. A message is therefore acknowledged and broadcast only after the fsync that makes it
//! durable, and many messages share one fsync under load. What each op does to the database is
//! in [`super::ops`].
//!
//! The thread also owns each room's next `seq`: it assigns seqs inside the transaction and only
//! publishes them once the commit succeeds, so seqs stay gapless even when a commit fails.
//! An op whose failure makes SQLite roll back the whole transaction (a full disk, an I/O error)
//! fails alone: the rest of its batch is applied again in a new transaction.
//!
//! Between batches the thread also keeps the search index current ([`super::search::Indexer`]):
//! when its queue is empty, at least every quarter second under constant load, and for a
//! search's [`WriteOp::CatchUpSearchIndex`], which completes only once the index holds every
//! message stored before it (so the search finds every message acknowledged before it asked).
//! One step usually does it; after a burst of messages a search waits while steps alternate
//! with the next batches, so messages keep being stored meanwhile.

use chatroom_protocol::{Message, RoomId, Seq};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;

use super::StorageError;
use super::notices::Posted;
use super::ops::{self, Outcome, WriteOp};
use super::search::Indexer;

/// Most ops in one transaction.
pub const MAX_BATCH: usize = 2048;
/// Ops that may wait for the writer; senders wait beyond this (back-pressure).
const QUEUE: usize = 8192;

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
    health: Arc<WriteHealth>,
}

/// Whether writes are being stored, as the writer thread saw its last batches: for `/health`
/// and `/metrics`.
#[derive(Debug, Default)]
struct WriteHealth {
    /// Batches in which a write failed because storage did (see
    /// [`StorageError::is_storage_failure`]).
    failed_batches: AtomicU64,
    /// Why the last batch that stored or failed to store something failed; `None` once a later
    /// batch stores a write again.
    failing: Mutex<Option<String>>,
}

impl WriteHealth {
    fn failing(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // Only ever holds a string: a panic elsewhere cannot leave it half-written.
        self.failing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in what a batch did: a write failing for a storage reason marks storage as
    /// failing; a write stored with none failing marks it as working again.
    fn record(&self, batch: &[Job], results: &[Result<Outcome, StorageError>]) {
        let failure = results.iter().find_map(|r| match r {
            Err(e) if e.is_storage_failure() => Some(e),
            _ => None,
        });
        if let Some(error) = failure {
            self.failed_batches.fetch_add(1, Ordering::Relaxed);
            let reason = error.to_string();
            // Said once when it starts (a failed op alone, a read-only file say, is not
            // logged elsewhere), not for every batch while it lasts.
            if self.failing().replace(reason.clone()).is_none() {
                tracing::error!(error = %reason, "storage writes are failing; users are told to try again later");
            }
        } else if batch
            .iter()
            .zip(results)
            .any(|(job, r)| r.is_ok() && job.op.writes())
            && self.failing().take().is_some()
        {
            tracing::info!("storage writes work again");
        }
    }
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

    /// Batches since start in which a write failed because storage did (a full disk, a
    /// read-only database file, an I/O error).
    pub fn failed_batches(&self) -> u64 {
        self.health.failed_batches.load(Ordering::Relaxed)
    }

    /// Why writes are failing, while they are: the error of the latest batch, until a later one
    /// stores a write again.
    pub fn failing(&self) -> Option<String> {
        self.health.failing().clone()
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
    let health: Arc<WriteHealth> = Arc::default();
    let (thread_hooks, thread_health) = (Arc::clone(&hooks), Arc::clone(&health));
    let thread = std::thread::Builder::new()
        .name("chatroom-storage-writer".into())
        .spawn(move || writer_loop(conn, rx, latest_seqs, &thread_hooks, &thread_health))?;
    Ok((
        Writer {
            queue: tx,
            hooks,
            health,
        },
        thread,
    ))
}

fn writer_loop(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    mut seqs: HashMap<RoomId, Seq>,
    hooks: &Hooks,
    health: &WriteHealth,
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
    // Searches whose catch-up found more waiting than one step takes in: each is completed
    // once the index holds the newest message stored when it asked.
    let mut searches: Vec<WaitingSearch> = Vec::new();
    loop {
        let next = if !searches.is_empty() {
            // Index between batches, and all the time the queue is empty, until they are served.
            match queue.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Empty) => {
                    catch_up_for(&mut searches, &mut index, &mut conn);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        } else {
            match (index.idle_wait(Instant::now()), &waiting) {
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
            }
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
        health.record(&batch, &results);
        index.stored(
            results.iter().filter(|r| stored_a_message(r)).count()
                + notices.iter().map(Vec::len).sum::<usize>(),
        );
        // A search is waiting for the index to hold what was acknowledged before it asked.
        let searching = batch
            .iter()
            .any(|job| matches!(job.op, WriteOp::CatchUpSearchIndex));
        let newest = if searching {
            if index.due(Instant::now()) {
                index.step(&mut conn);
            }
            newest_message(&conn)
        } else {
            0
        };
        for ((job, result), notices) in batch.drain(..).zip(results).zip(notices) {
            if let Some(hook) = hooks.notice.get() {
                for notice in &notices {
                    hook(notice);
                }
            }
            if matches!(job.op, WriteOp::CatchUpSearchIndex)
                && result.is_ok()
                && !index.serves(newest)
            {
                searches.push(WaitingSearch {
                    up_to: newest,
                    asked: Instant::now(),
                    done: job.done,
                });
                continue;
            }
            (job.done)(result);
        }
        if let Some(hook) = hooks.batch.get() {
            hook();
        }
        if !searches.is_empty() {
            catch_up_for(&mut searches, &mut index, &mut conn);
        } else if index.overdue(Instant::now()) {
            index.step(&mut conn);
        }
    }
    // Stopping: a search still waiting finds what the index holds.
    for search in searches {
        (search.done)(Ok(Outcome::Done));
    }
    tracing::debug!("storage writer stopped");
}

/// Longest a search waits for the index. The indexer takes in ~90 000 messages a second on
/// the reference machine, so only a backlog of hundreds of thousands (a database whose index
/// is being rebuilt) makes a search answer from the index as it is, rather than wait for a
/// client's request timeout.
const SEARCH_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A search waiting for the index to take in every message up to `up_to`.
struct WaitingSearch {
    up_to: i64,
    asked: Instant,
    done: Completion,
}

/// One step of the indexer, then the searches it now serves (or that waited long enough) are
/// completed.
fn catch_up_for(searches: &mut Vec<WaitingSearch>, index: &mut Indexer, conn: &mut Connection) {
    index.step(conn);
    let (served, waiting): (Vec<_>, Vec<_>) =
        std::mem::take(searches).into_iter().partition(|search| {
            index.serves(search.up_to) || search.asked.elapsed() >= SEARCH_WAIT_LIMIT
        });
    *searches = waiting;
    for search in served {
        (search.done)(Ok(Outcome::Done));
    }
}

/// The newest message's id (0 with none, or if it cannot be read: the search then goes on
/// with what the index holds).
fn newest_message(conn: &Connection) -> i64 {
    conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the newest message id for a search");
            0
        })
}

/// Whether an op's result is a new or edited message (which the search index has yet to take
/// in: an edit to CJK text is indexed again by the indexer).
fn stored_a_message(result: &Result<Outcome, StorageError>) -> bool {
    matches!(
        result,
        Ok(Outcome::Message(_) | Outcome::File { .. } | Outcome::Edited(Some(_)))
    )
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
        let (store, orphans) = match (&job.op, result) {
            (
                WriteOp::DeleteMessage { store, .. },
                Ok(Outcome::MessageDeleted {
                    orphan: Some(sha), ..
                }),
            ) => (store, std::slice::from_ref(sha)),
            (
                WriteOp::DeleteMessagesBy { store, .. },
                Ok(Outcome::MessagesDeleted { orphans, .. }),
            ) => (store, orphans.as_slice()),
            _ => continue,
        };
        for sha in orphans {
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
}

/// Committed seqs plus the ones assigned in the open transaction.
pub(crate) struct SeqCounters<'a> {
    pub(super) committed: &'a mut HashMap<RoomId, Seq>,
    pub(super) pending: HashMap<RoomId, Seq>,
}

impl SeqCounters<'_> {
    pub(super) fn latest(&self, room: RoomId) -> Seq {
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
    let outcome = in_savepoint(tx, |conn| ops::apply(conn, op, seqs, &mut posted))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ops::{apply_offline, refused};
    use chatroom_protocol::{ErrorCode, MessageKind, RoomRole, UserId};
    use rusqlite::OptionalExtension;

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
            matches!(&joined, Outcome::Joined { role: RoomRole::Owner, summary }
                if summary.my_role == Some(RoomRole::Owner) && summary.id == RoomId(3)),
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

    /// Holds the writer thread inside a completion until the returned sender sends, so that
    /// what is queued meanwhile waits, in order, behind it.
    async fn hold(writer: &Writer) -> std::sync::mpsc::Sender<()> {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let nothing = WriteOp::SessionUpkeep {
            used: Vec::new(),
            expired: Vec::new(),
        };
        writer
            .submit(nothing, move |_| {
                let _ = entered_tx.send(());
                let _ = released.recv();
            })
            .await
            .expect("queued");
        tokio::task::spawn_blocking(move || entered.recv())
            .await
            .expect("join")
            .expect("the thread holds");
        release
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
        let release = hold(&writer).await;
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

    #[tokio::test]
    async fn a_search_after_a_burst_completes_once_the_index_holds_every_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chat.db");
        let mut conn = Connection::open(&path).expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', 'x', 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (1, 1, 0, 0);",
        )
        .expect("rows");
        let (writer, thread) = start(conn, HashMap::new()).expect("starts");
        // The thread is held inside a completion while a burst of three steps' worth of
        // messages, and then a search, queue up behind it.
        let release = hold(&writer).await;
        let burst = Indexer::STEP_ROWS * 3 + 10;
        for n in 0..burst {
            let Job { op, .. } = message(&format!("burst {n}"));
            writer.submit(op, |_| {}).await.expect("queued");
        }
        let (searched_tx, searched) = tokio::sync::oneshot::channel();
        writer
            .submit(WriteOp::CatchUpSearchIndex, move |result| {
                let _ = searched_tx.send(result.is_ok());
            })
            .await
            .expect("queued");
        release.send(()).expect("release");
        assert!(searched.await.expect("completed"), "the catch-up succeeds");
        let reader = Connection::open(&path).expect("opens");
        let (newest, indexed): (i64, i64) = reader
            .query_row(
                "SELECT (SELECT MAX(id) FROM messages), indexed_up_to FROM search_index",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("reads");
        assert_eq!(indexed, newest, "the search finds the burst's last message");
        drop(writer);
        thread.join().expect("the thread ends");
    }

    #[test]
    fn a_search_waits_for_the_index_only_so_long() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', 'x', 0);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text)
                 SELECT 1, i, 1, 'alice', 0, 0, 'note ' || i FROM n;",
        )
        .expect("rows");
        let newest: i64 = conn
            .query_row("SELECT MAX(id) FROM messages", [], |r| r.get(0))
            .expect("newest");
        let answered = Arc::new(Mutex::new(Vec::new()));
        let search = |name: &'static str, waited: std::time::Duration| {
            let answered = answered.clone();
            WaitingSearch {
                up_to: newest,
                asked: Instant::now() - waited,
                done: Box::new(move |r| {
                    if let Ok(mut a) = answered.lock() {
                        a.push((name, r.is_ok()));
                    }
                }),
            }
        };
        let mut searches = vec![
            search("just asked", std::time::Duration::ZERO),
            search("waited too long", SEARCH_WAIT_LIMIT),
        ];
        let mut index = Indexer::new();
        // One step takes in 2048 of the 3000: only the search that waited long enough goes on.
        catch_up_for(&mut searches, &mut index, &mut conn);
        assert_eq!(*answered.lock().expect("lock"), [("waited too long", true)]);
        catch_up_for(&mut searches, &mut index, &mut conn);
        assert_eq!(
            *answered.lock().expect("lock"),
            [("waited too long", true), ("just asked", true)]
        );
        assert!(searches.is_empty());
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
