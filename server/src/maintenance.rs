//! Backup and integrity checks of the database: `chatroom-server backup` and `check`.
//!
//! Unlike the account commands in [`crate::admin`], these only read the database, so they take
//! no lock on the data directory and are safe while the server runs: the database is in WAL
//! mode, where a reader sees the last committed state and neither blocks the server's writer nor
//! waits for it.
//!
//! - [`backup`] copies the database with SQLite's online backup API in a single step, that is
//!   inside one read transaction: the copy is the database as of one commit, whatever the server
//!   writes meanwhile. The copy is one self-contained file (rollback-journal mode, no `-wal`
//!   beside it); a server started on it switches it back to WAL. Uploaded file content lives in
//!   `files/` beside the database and is not in the copy.
//! - [`check`] runs `PRAGMA integrity_check` and the full-text index's own FTS5
//!   `integrity-check` (of the index's structure: the index trails the newest messages by design,
//!   see [`crate::storage::search`], so it is not compared row by row with them).
//!
//! Neither ever creates a database: a missing file is an error that names the path.

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a backup step that finds the database busy is tried before giving up.
const BUSY_TRIES: u32 = 100;
/// The pause between those tries.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
/// Problems `PRAGMA integrity_check` lists at most.
const MAX_PROBLEMS: u32 = 100;

/// Why a backup or check could not be done.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// No database file where one was expected.
    #[error("there is no Chat-Room database at {} (is --data-dir right?)", .0.display())]
    NoDatabase(PathBuf),
    /// The file is an SQLite database, but not a Chat-Room one.
    #[error("{} is not a Chat-Room database (it has no schema version)", .0.display())]
    NotChatRoom(PathBuf),
    /// The backup's destination exists already.
    #[error("{} already exists; a backup never overwrites a file, choose a new name", .0.display())]
    DestinationExists(PathBuf),
    /// The backup's destination could not be created or synced.
    #[error("cannot write the backup {}", path.display())]
    Destination {
        /// The destination.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed on `path`.
    #[error("database error on {}", path.display())]
    Sqlite {
        /// The database file (source or copy).
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The source stayed busy (locked) for every try.
    #[error("the database {} stayed busy; try again", .0.display())]
    Busy(PathBuf),
}

/// What a backup copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// Database pages copied.
    pub pages: u64,
    /// Bytes per page.
    pub page_size: u64,
    /// The size of the copy on disk.
    pub bytes: u64,
    /// The copy's `user_version`: the schema version it is at.
    pub schema_version: u32,
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The database's schema version; `None` when the file is too damaged to read it.
    pub schema_version: Option<u32>,
    /// Pages in the database; `None` when the file is too damaged to read it.
    pub pages: Option<u64>,
    /// Problems of the database file (`PRAGMA integrity_check`); empty when it is sound.
    pub database_problems: Vec<String>,
    /// Problems of the full-text search index; empty when it is sound.
    pub search_problems: Vec<String>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.database_problems.is_empty() && self.search_problems.is_empty()
    }
}

/// Copies the database at `database` to a new file `to` with SQLite's online backup API; safe
/// while a server is using the database. Never overwrites `to`; on failure no partial copy is
/// left behind.
pub fn backup(database: &Path, to: &Path) -> Result<BackupReport, MaintenanceError> {
    let source = open_existing(database)?;
    // Claiming the name first means an existing file is never touched, even if it appears
    // between a check and the copy.
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    // A copy of every direct message: readable by its owner only, like the data directory.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(to) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(MaintenanceError::DestinationExists(to.to_path_buf()));
        }
        Err(source) => {
            return Err(MaintenanceError::Destination {
                path: to.to_path_buf(),
                source,
            });
        }
    }
    let copied = copy(&source, database, to);
    if copied.is_err() {
        for leftover in [to.to_path_buf(), sidecar(to, "-journal")] {
            let _ = std::fs::remove_file(leftover);
        }
    }
    copied
}

/// Runs the backup into the empty file `to`, which this process just created.
fn copy(source: &Connection, database: &Path, to: &Path) -> Result<BackupReport, MaintenanceError> {
    let on_source = sqlite_error(database);
    let on_copy = sqlite_error(to);
    let mut dest = Connection::open_with_flags(
        to,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&on_copy)?;
    // A step reads the source and writes the copy; a failed write is the copy's (its disk
    // full, say), not a fault of the live database.
    let on_step = |e: rusqlite::Error| {
        if is_write_failure(&e) {
            on_copy(e)
        } else {
            on_source(e)
        }
    };
    let pages = {
        let backup = Backup::new(source, &mut dest).map_err(&on_source)?;
        let mut busy = 0;
        // One step copying every page: one read transaction, so one consistent state.
        loop {
            match backup.step(-1).map_err(on_step)? {
                StepResult::Done => break,
                StepResult::More => {}
                // Busy, Locked, and whatever later versions add: wait and try again.
                _ => {
                    busy += 1;
                    if busy >= BUSY_TRIES {
                        return Err(MaintenanceError::Busy(database.to_path_buf()));
                    }
                    std::thread::sleep(BUSY_PAUSE);
                }
            }
        }
        u64::try_from(backup.progress().pagecount).unwrap_or(0)
    };
    // The copied header says WAL; one file without a `-wal` is what a backup should be.
    let _mode: String = dest
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(&on_copy)?;
    let page_size: u64 = dest
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(&on_copy)?;
    let schema_version: u32 = dest
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&on_copy)?;
    dest.close().map_err(|(_, e)| on_copy(e))?;
    let destination = |source| MaintenanceError::Destination {
        path: to.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(to).map_err(destination)?;
    file.sync_all().map_err(destination)?;
    let bytes = file.metadata().map_err(destination)?.len();
    Ok(BackupReport {
        pages,
        page_size,
        bytes,
        schema_version,
    })
}

/// Checks the database at `database` and its full-text index. Problems found are in the
/// report; an error means the check itself could not run.
pub fn check(database: &Path) -> Result<CheckReport, MaintenanceError> {
    let opened = open_existing(database).and_then(|conn| {
        // The page count needs the schema: a file too damaged for it fails here.
        let sizes = conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
            .and_then(|v| Ok((v, conn.query_row("PRAGMA page_count", [], |r| r.get(0))?)))
            .map_err(sqlite_error(database))?;
        Ok((conn, sizes))
    });
    let (conn, (schema_version, pages)) = match opened {
        Ok(opened) => opened,
        // Too damaged to read even the schema: that is the finding.
        Err(MaintenanceError::Sqlite { source, .. }) if is_damage(&source) => {
            return Ok(CheckReport {
                schema_version: None,
                pages: None,
                database_problems: vec![source.to_string()],
                search_problems: Vec::new(),
            });
        }
        Err(e) => return Err(e),
    };
    let mut database_problems = match integrity_problems(&conn) {
        Ok(problems) => problems,
        // Corruption bad enough that the check cannot even walk the file is a finding too.
        Err(e) => vec![e.to_string()],
    };
    let search_problems = search_index_problems(&conn);
    // The whole-database check runs the search index's check too: said once, as the index's.
    database_problems.retain(|p| !search_problems.contains(p));
    Ok(CheckReport {
        schema_version: Some(schema_version),
        pages: Some(pages),
        database_problems,
        search_problems,
    })
}

/// `PRAGMA integrity_check`'s findings; none when it says `ok`.
fn integrity_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    integrity_problems_of(conn, None)
}

/// `PRAGMA integrity_check`'s findings on one table (a fixed name, never input) or all.
fn integrity_problems_of(conn: &Connection, table: Option<&str>) -> rusqlite::Result<Vec<String>> {
    let argument = match table {
        Some(table) => format!("'{table}'"),
        None => MAX_PROBLEMS.to_string(),
    };
    let mut statement = conn.prepare(&format!("PRAGMA integrity_check({argument})"))?;
    let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let row = row?;
        if row != "ok" {
            problems.push(row);
        }
    }
    Ok(problems)
}

/// The FTS5 `integrity-check` of `messages_fts`; none when it passes.
fn search_index_problems(conn: &Connection) -> Vec<String> {
    let exists = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'messages_fts'",
        [],
        |r| r.get::<_, i64>(0),
    );
    match exists {
        Ok(0) => return vec!["the search index table messages_fts is missing".to_string()],
        Ok(_) => {}
        Err(e) => return vec![e.to_string()],
    }
    // FTS5's check of its own structure, as `INSERT INTO messages_fts (messages_fts, rank)
    // VALUES ('integrity-check', 0)` runs it — but that is a write, which a read-only connection
    // may not do (and a writing one would hold up the server's writer). The pragma narrowed to
    // the table runs the same check read-only. (Rank 1, comparing the index with every message,
    // would fail on the newest messages, which are not indexed yet by design.)
    match integrity_problems_of(conn, Some("messages_fts")) {
        Ok(problems) => problems,
        Err(e) => vec![e.to_string()],
    }
}

/// Opens an existing Chat-Room database for reading only; never creates one.
/// Files the database references whose content is not in the data directory's `files/`
/// folder (a restore without it, say), found by [`missing_files`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MissingFiles {
    /// Distinct contents referenced.
    pub checked: u64,
    /// File records whose content is missing or not of the recorded size.
    pub missing: u64,
    /// The ids of the first few of them.
    pub examples: Vec<u64>,
}

/// How many missing file ids [`missing_files`] names.
const MISSING_EXAMPLES: usize = 5;

/// Whether any account of the database at `database` is a server admin.
pub fn has_admin(database: &Path) -> Result<bool, MaintenanceError> {
    let conn = open_existing(database)?;
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE is_admin)",
        [],
        |r| r.get(0),
    )
    .map_err(sqlite_error(database))
}

/// Checks that every file the database at `database` references has its content in
/// `data_dir`'s `files/` folder, of the recorded size: one `stat` per distinct content, no
/// reading of content, nothing created.
pub fn missing_files(database: &Path, data_dir: &Path) -> Result<MissingFiles, MaintenanceError> {
    let conn = open_existing(database)?;
    let store = crate::files::FileStore::at(data_dir);
    let on_source = sqlite_error(database);
    let mut statement = conn
        .prepare("SELECT sha256, size, group_concat(id) FROM files GROUP BY sha256, size ORDER BY min(id)")
        .map_err(&on_source)?;
    let mut rows = statement.query([]).map_err(&on_source)?;
    let mut found = MissingFiles::default();
    while let Some(row) = rows.next().map_err(&on_source)? {
        let sha: Vec<u8> = row.get(0).map_err(&on_source)?;
        let size: i64 = row.get(1).map_err(&on_source)?;
        let ids: String = row.get(2).map_err(&on_source)?;
        found.checked += 1;
        let stored = <[u8; 32]>::try_from(sha.as_slice())
            .ok()
            .and_then(|sha| store.blob_len(&sha));
        if stored.is_some_and(|len| i64::try_from(len).ok() == Some(size)) {
            continue;
        }
        for id in ids.split(',').filter_map(|id| id.parse::<u64>().ok()) {
            found.missing += 1;
            if found.examples.len() < MISSING_EXAMPLES {
                found.examples.push(id);
            }
        }
    }
    Ok(found)
}

fn open_existing(database: &Path) -> Result<Connection, MaintenanceError> {
    if !database.is_file() {
        return Err(MaintenanceError::NoDatabase(database.to_path_buf()));
    }
    let on_source = sqlite_error(database);
    // Read-only, never CREATE: a path that vanished since the check above is an error too.
    let conn = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&on_source)?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(&on_source)?;
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&on_source)?;
    if version == 0 {
        return Err(MaintenanceError::NotChatRoom(database.to_path_buf()));
    }
    Ok(conn)
}

/// Whether SQLite failed because the file is damaged (rather than, say, unreadable).
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> MaintenanceError + '_ {
    move |source| MaintenanceError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether SQLite failed writing a file: a full disk or a refused write or sync.
fn is_write_failure(error: &rusqlite::Error) -> bool {
    error.sqlite_error().is_some_and(|e| {
        e.code == rusqlite::ErrorCode::DiskFull
            || [
                rusqlite::ffi::SQLITE_IOERR_WRITE,
                rusqlite::ffi::SQLITE_IOERR_FSYNC,
            ]
            .contains(&e.extended_code)
    })
}

/// `path` with `suffix` appended to its file name (`x.sqlite3-journal`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_protocol::client::Client;
    use std::io::{Seek, SeekFrom, Write};
    use tokio_util::sync::CancellationToken;

    const PASSWORD: &str = "correct horse battery";

    /// A real server on 127.0.0.1:0 over `config`.
    async fn start(
        config: crate::Config,
    ) -> (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                crate::run(listener, config, shutdown)
                    .await
                    .expect("server runs");
            }
        });
        (addr, shutdown, task)
    }

    /// The text messages in `database` (not the room notices), oldest first.
    fn texts(database: &Path) -> Vec<String> {
        let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the copy");
        let mut statement = conn
            .prepare("SELECT text FROM messages WHERE kind = 0 ORDER BY id")
            .expect("prepare");
        statement
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_of_a_running_server_holds_its_messages_and_restores() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = crate::Config::with_data_dir(dir.path().join("data"));
        config.limits.messages_per_second = 100_000;
        config.limits.message_burst = 100_000;
        let (addr, shutdown, server) = start(config.clone()).await;
        let client = Client::connect(addr, "backup-test").await.expect("connect");
        client.register("alice", PASSWORD).await.expect("register");
        let room = client.my_rooms().await.expect("rooms")[0].id;
        let before: Vec<String> = (0..20).map(|i| format!("before the backup {i}")).collect();
        for text in &before {
            client.send_message(room, text).await.expect("send");
        }

        // Writes go on while the copy is taken: the copy is one consistent state.
        let writer = client.handle();
        let writing = tokio::spawn(async move {
            for i in 0.. {
                if writer
                    .send_message(room, &format!("during the backup {i}"))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let copy = dir.path().join("copy.sqlite3");
        let report = {
            let (database, copy) = (config.database_path(), copy.clone());
            tokio::task::spawn_blocking(move || backup(&database, &copy))
                .await
                .expect("join")
                .expect("backup while running")
        };
        writing.abort();
        assert!(report.pages > 0 && report.page_size > 0, "{report:?}");
        assert_eq!(report.bytes, report.pages * report.page_size, "{report:?}");
        assert_eq!(
            report.schema_version,
            crate::storage::schema::SCHEMA_VERSION
        );
        let header = std::fs::read(&copy).expect("read the copy");
        assert_eq!(
            (header[18], header[19]),
            (1, 1),
            "the copy is one file in rollback-journal mode, not WAL"
        );
        let stored = texts(&copy);
        assert_eq!(
            stored[..before.len()],
            before[..],
            "every message acknowledged before the backup is in it"
        );
        let check_copy = check(&copy).expect("check the copy");
        assert!(check_copy.is_ok(), "{check_copy:?}");

        // Never over an existing file, not even another backup.
        let copied = std::fs::read(&copy).expect("read the copy");
        let again = backup(&config.database_path(), &copy).expect_err("refused");
        assert!(
            matches!(again, MaintenanceError::DestinationExists(_)),
            "{again}"
        );
        assert_eq!(
            std::fs::read(&copy).expect("read"),
            copied,
            "left untouched"
        );

        shutdown.cancel();
        server.await.expect("server stops");

        // Restoring is putting the copy in place of the database.
        let restored = crate::Config::with_data_dir(dir.path().join("restored"));
        std::fs::create_dir_all(&restored.data_dir).expect("mkdir");
        std::fs::copy(&copy, restored.database_path()).expect("restore");
        let (addr, shutdown, server) = start(restored).await;
        let client = Client::connect(addr, "restore-test")
            .await
            .expect("connect");
        client
            .login("alice", PASSWORD)
            .await
            .expect("the account came along");
        let page = client
            .history(room, chatroom_protocol::HistoryAnchor::After(0), 21)
            .await
            .expect("history");
        let texts: Vec<String> = page.messages.into_iter().map(|m| m.text).collect();
        assert_eq!(texts[0], "alice joined", "the room's notice came along too");
        assert_eq!(texts[1..], before[..]);
        shutdown.cancel();
        server.await.expect("server stops");
    }

    /// A database made by the server's own schema, with `n` messages indexed for search.
    fn database_with_messages(dir: &Path, n: usize) -> PathBuf {
        let path = dir.join("chatroom.sqlite3");
        let mut conn =
            crate::storage::open_read_write(&path, crate::config::SyncMode::Full).expect("create");
        crate::storage::schema::migrate(&mut conn).expect("migrate");
        let room: i64 = conn
            .query_row("SELECT id FROM rooms WHERE name = 'public'", [], |r| {
                r.get(0)
            })
            .expect("the public room");
        for i in 0..n {
            conn.execute(
                "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text) \
                 VALUES (?1, ?2, 1, 'alice', 0, 0, ?3)",
                rusqlite::params![
                    room,
                    i as i64 + 1,
                    format!("message number {i} about otters")
                ],
            )
            .expect("insert");
        }
        conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');")
            .expect("index");
        conn.close().expect("close");
        path
    }

    /// Overwrites the start of page `page` (1-based) of the database file with zeros.
    fn zero_page(database: &Path, page: u64, page_size: u64) {
        let mut file = std::fs::File::options()
            .write(true)
            .open(database)
            .expect("open the file");
        file.seek(SeekFrom::Start((page - 1) * page_size))
            .expect("seek");
        file.write_all(&[0u8; 64]).expect("write");
        file.sync_all().expect("sync");
    }

    #[test]
    fn check_passes_a_sound_database_and_finds_a_corrupted_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = database_with_messages(dir.path(), 500);
        let report = check(&good).expect("check");
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(
            report.schema_version,
            Some(crate::storage::schema::SCHEMA_VERSION)
        );

        // A b-tree page of the messages' (room, seq) index, zeroed.
        let broken = dir.path().join("broken.sqlite3");
        backup(&good, &broken).expect("copy");
        let (root, page_size): (u64, u64) = {
            let conn = Connection::open(&broken).expect("open");
            let root = conn
                .query_row(
                    "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'messages'",
                    [],
                    |r| r.get(0),
                )
                .expect("the index");
            let size = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .expect("page size");
            (root, size)
        };
        zero_page(&broken, root, page_size);
        let report = check(&broken).expect("the check runs");
        assert!(!report.is_ok());
        assert!(!report.database_problems.is_empty(), "{report:?}");

        // An index that no longer matches its table: the file is readable, and the check lists
        // what is wrong, row by row.
        let mismatched = dir.path().join("mismatched.sqlite3");
        backup(&good, &mismatched).expect("copy");
        {
            let conn = Connection::open(&mismatched).expect("open");
            conn.execute_batch(
                "CREATE INDEX messages_by_sender ON messages(sender_id);
                 PRAGMA writable_schema = ON;
                 UPDATE sqlite_schema SET sql = 'CREATE INDEX messages_by_sender ON messages(ts)'
                     WHERE name = 'messages_by_sender';
                 PRAGMA writable_schema = OFF;",
            )
            .expect("mismatch an index");
        }
        let report = check(&mismatched).expect("the check runs");
        assert!(
            report.pages.is_some() && report.search_problems.is_empty(),
            "{report:?}"
        );
        assert!(
            report
                .database_problems
                .iter()
                .any(|p| p.contains("missing from index messages_by_sender")),
            "{report:?}"
        );
    }

    #[test]
    fn check_finds_a_corrupted_search_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = database_with_messages(dir.path(), 500);
        let broken = dir.path().join("broken-index.sqlite3");
        backup(&good, &broken).expect("copy");
        {
            // The index's leaf pages (ids above the structure record, 10), garbled in place.
            let conn = Connection::open(&broken).expect("open");
            let changed = conn
                .execute(
                    "UPDATE messages_fts_data SET block = zeroblob(length(block)) WHERE id > 10",
                    [],
                )
                .expect("garble");
            assert!(changed > 0, "the index has leaves");
        }
        let report = check(&broken).expect("the check runs");
        assert!(!report.search_problems.is_empty(), "{report:?}");
        assert!(
            report.database_problems.is_empty(),
            "said once, as the index's: {report:?}"
        );
    }

    #[test]
    fn nothing_is_created_where_there_is_no_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("chatroom.sqlite3");
        let error = check(&missing).expect_err("no database");
        assert!(matches!(error, MaintenanceError::NoDatabase(_)), "{error}");
        assert!(
            error.to_string().contains("is --data-dir right?"),
            "{error}"
        );
        let copy = dir.path().join("copy.sqlite3");
        let error = backup(&missing, &copy).expect_err("no database");
        assert!(matches!(error, MaintenanceError::NoDatabase(_)), "{error}");
        assert!(!missing.exists() && !copy.exists(), "nothing was created");

        // An SQLite file that is not ours is named as such.
        let other = dir.path().join("other.sqlite3");
        Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("another database");
        let error = check(&other).expect_err("not a Chat-Room database");
        assert!(matches!(error, MaintenanceError::NotChatRoom(_)), "{error}");

        // A destination that cannot be created leaves nothing behind either.
        let good = database_with_messages(dir.path(), 1);
        let nowhere = dir.path().join("no-such-dir").join("copy.sqlite3");
        let error = backup(&good, &nowhere).expect_err("no directory");
        assert!(
            matches!(error, MaintenanceError::Destination { .. }),
            "{error}"
        );
    }
}
