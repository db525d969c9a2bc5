//! Persistence in one SQLite file.
//!
//! - [`writer`]: one thread owns the read-write connection and applies [`WriteOp`]s in batches
//!   (group commit: whatever is queued goes into one transaction, one fsync). Each op's
//!   completion runs on that thread right after the commit, in commit order — which is where the
//!   server broadcasts, so events leave in the order their rows were committed.
//! - [`ops`]: what each [`WriteOp`] does to the database, one module per area (accounts, rooms,
//!   moderation, messages, files); the writer applies them, and so do the offline admin commands.
//! - [`reads`]: a few read-only connections, used off the async threads, for history, room
//!   lists and logins.
//! - [`schema`]: the tables and migrations.
//! - [`search`]: full-text search of messages and the writer's indexer that keeps it current.
//! - [`notices`]: the `System` messages stored about joins, kicks, bans, mutes, roles, topics.
//! - [`ai`]: the AI bot's account, context reads and `/ai clear` points.
//!
//! WAL mode, `synchronous=FULL` unless configured otherwise, foreign keys on. Every statement
//! binds its inputs as parameters; no SQL is built from input.

pub mod ai;
pub mod notices;
pub mod ops;
pub mod reads;
pub mod schema;
pub mod search;
pub mod writer;

use chatroom_protocol::{
    ErrorBody, FileRef, MessageKind, RoomId, RoomKind, RoomRole, Seq, UnixMillis, UserId,
};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, SyncMode};
pub use ops::{Outcome, WriteOp};
pub use reads::ReadPool;
pub use writer::Writer;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The operation broke a rule (a taken name, a missing room): said to the client as is.
    #[error("{0}")]
    Refused(ErrorBody),
    /// The database is of a schema this build cannot use.
    #[error("{0}")]
    Schema(String),
    /// A file operation of the storage failed (moving an upload into the file store, say).
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory could not be created.
    #[error("cannot create the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened or set up.
    #[error("cannot open the database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The writer thread or the read pool is gone (the server is shutting down).
    #[error("storage is shut down")]
    Closed,
    /// A batch failed to commit; nothing in it was stored.
    #[error("commit failed: {0}")]
    CommitFailed(String),
}

impl StorageError {
    /// Whether the error is the storage failing rather than the op: a full disk, a read-only
    /// or unreadable database file, an I/O error, a lock held too long by another process.
    /// Writes fail this way until the cause is fixed; nothing about the op itself was wrong.
    pub fn is_storage_failure(&self) -> bool {
        use rusqlite::ErrorCode as Code;
        match self {
            StorageError::CommitFailed(_) | StorageError::Io(_) => true,
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                Code::DiskFull
                    | Code::ReadOnly
                    | Code::SystemIoFailure
                    | Code::CannotOpen
                    | Code::DatabaseBusy
                    | Code::DatabaseLocked
                    | Code::DatabaseCorrupt
                    | Code::NotADatabase
            ),
            _ => false,
        }
    }
}

/// A user row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// The id.
    pub id: UserId,
    /// The name as registered.
    pub name: String,
    /// The lowercase key names are unique by.
    pub name_key: String,
    /// A server admin.
    pub is_admin: bool,
}

/// A room row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    /// The id.
    pub id: RoomId,
    /// Public, private or direct.
    pub kind: RoomKind,
    /// The name; empty for direct chats.
    pub name: String,
    /// The topic.
    pub topic: String,
}

/// Everything the in-memory hub is built from at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every account.
    pub users: Vec<UserRow>,
    /// Every room.
    pub rooms: Vec<RoomRow>,
    /// Every membership with its role.
    pub members: Vec<(RoomId, UserId, RoomRole)>,
    /// Every mute, with when it ends (`None`: until unmuted); ones that ran out included.
    pub mutes: Vec<(RoomId, UserId, Option<UnixMillis>)>,
    /// The newest seq of every room that has messages.
    pub latest_seqs: HashMap<RoomId, Seq>,
    /// The AI bot's account, when the bot is on (see [`ai::ensure_bot_account`]).
    pub bot: Option<UserRow>,
    /// Every stored session: the SHA-256 of its token, its account and its last use.
    pub sessions: Vec<([u8; 32], UserId, UnixMillis)>,
}

/// The storage layer: the writer thread's queue and the read pool.
#[derive(Clone, Debug)]
pub struct Storage {
    /// Applies writes with group commit.
    pub writer: Writer,
    /// Runs reads off the async threads.
    pub reads: Arc<ReadPool>,
}

/// Opens (creating and migrating if needed) the database in `config.data_dir`, starts the
/// writer thread, and returns the storage with the snapshot to build the hub from.
pub fn open(
    config: &Config,
) -> Result<(Storage, Snapshot, std::thread::JoinHandle<()>), StorageError> {
    create_data_dir(&config.data_dir).map_err(|source| StorageError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let path = config.database_path();
    let mut conn = open_read_write(&path, config.synchronous)?;
    schema::migrate(&mut conn)?;
    let bot = if config.ai.backend == crate::config::AiBackendKind::Off {
        None
    } else {
        let bot = ai::ensure_bot_account(&conn, &config.ai.name)?;
        if bot.is_none() {
            tracing::error!(
                name = %config.ai.name,
                "a person holds the AI bot's name; the bot stays off (choose another --ai-name)"
            );
        }
        bot
    };
    let mut snapshot = reads::snapshot(&conn)?;
    snapshot.bot = bot;
    let reads = Arc::new(ReadPool::open(&path, 4).map_err(|e| naming(&path, e))?);
    let (writer, thread) = writer::start(conn, snapshot.latest_seqs.clone())?;
    Ok((Storage { writer, reads }, snapshot, thread))
}

/// Creates a data directory (and missing parents) readable by its owner only: it holds every
/// direct message. An existing one is left as it is.
pub fn create_data_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// The read-write connection with the server's pragmas; also used by the offline admin commands.
pub fn open_read_write(path: &Path, sync: SyncMode) -> Result<Connection, StorageError> {
    open_read_write_at(path, sync).map_err(|e| naming(path, e))
}

/// A SQLite failure to open `path`, said with the path.
fn naming(path: &Path, e: StorageError) -> StorageError {
    match e {
        StorageError::Sqlite(source) => StorageError::Open {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    }
}

fn open_read_write_at(path: &Path, sync: SyncMode) -> Result<Connection, StorageError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Schema(format!(
            "could not switch the database {} to WAL mode (got {mode})",
            path.display()
        )));
    }
    let sync = match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
    ))?;
    Ok(conn)
}

pub(crate) fn kind_to_sql(kind: RoomKind) -> i64 {
    match kind {
        RoomKind::Public => 0,
        RoomKind::Private => 1,
        RoomKind::Direct => 2,
    }
}

pub(crate) fn kind_from_sql(v: i64) -> RoomKind {
    match v {
        0 => RoomKind::Public,
        1 => RoomKind::Private,
        _ => RoomKind::Direct,
    }
}

pub(crate) fn role_to_sql(role: RoomRole) -> i64 {
    match role {
        RoomRole::Member => 0,
        RoomRole::Moderator => 1,
        RoomRole::Owner => 2,
    }
}

pub(crate) fn role_from_sql(v: i64) -> RoomRole {
    match v {
        2 => RoomRole::Owner,
        1 => RoomRole::Moderator,
        _ => RoomRole::Member,
    }
}

pub(crate) fn message_kind_to_sql(kind: &MessageKind) -> i64 {
    match kind {
        // An edit is a text message with its `edited_at` set.
        MessageKind::Text | MessageKind::Edited { .. } => 0,
        MessageKind::System => 1,
        MessageKind::File(_) => 2,
        MessageKind::Deleted => 3,
    }
}

/// A message kind from its column and, for a file message, the joined `files` row (a file
/// message whose file row is gone reads as deleted).
pub(crate) fn message_kind_from_sql(
    v: i64,
    file: Option<FileRef>,
    edited_at: Option<i64>,
) -> MessageKind {
    match (v, file) {
        (0, _) => match edited_at {
            Some(at) => MessageKind::Edited {
                at: at as UnixMillis,
            },
            None => MessageKind::Text,
        },
        (1, _) => MessageKind::System,
        (2, Some(file)) => MessageKind::File(Box::new(file)),
        _ => MessageKind::Deleted,
    }
}

/// Reads a `[u8; 32]` hash column.
pub(crate) fn sha256_from_sql(blob: Vec<u8>) -> Option<[u8; 32]> {
    blob.try_into().ok()
}

/// Whether an error is a UNIQUE (or other constraint) violation.
pub(crate) fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}
