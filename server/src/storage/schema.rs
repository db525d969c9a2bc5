//! The database schema and its migrations, keyed on `PRAGMA user_version`.
//!
//! Each entry of `MIGRATIONS` moves the schema from version `i` to `i + 1` and runs in one
//! transaction with the version bump, so a crash mid-migration leaves the old version intact.
//! Append new migrations; never edit a released one.

use rusqlite::Connection;

use super::StorageError;

/// A GLOB for text with a character that the search index splits into a token of its own
/// (`search::is_cjk`; a test checks they agree). SQLite's GLOB compares code points in a range.
macro_rules! cjk_glob {
    () => {
        "*[\u{1100}-\u{11FF}\u{2E80}-\u{2FDF}\u{3005}-\u{3007}\u{3021}-\u{3029}\u{3031}-\u{3035}\
          \u{3038}-\u{303C}\u{3040}-\u{30FF}\u{3100}-\u{318F}\u{31A0}-\u{31BF}\u{31F0}-\u{31FF}\
          \u{3400}-\u{4DBF}\u{4E00}-\u{9FFF}\u{A960}-\u{A97F}\u{AC00}-\u{D7FF}\u{F900}-\u{FAFF}\
          \u{FF66}-\u{FFDC}\u{1AFF0}-\u{1B16F}\u{20000}-\u{323AF}]*"
    };
}

/// Migration `i` upgrades a database at `user_version = i`.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, sessions, rooms, members, messages, mentions; the `public` room.
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT    NOT NULL,
        name_key      TEXT    NOT NULL UNIQUE,
        password_hash TEXT    NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash BLOB    PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device     TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_user ON sessions(user_id);
    -- kind: 0 public, 1 private, 2 direct. Direct chats have no name; direct_key is "lo:hi".
    CREATE TABLE rooms (
        id         INTEGER PRIMARY KEY,
        kind       INTEGER NOT NULL,
        name       TEXT,
        name_key   TEXT UNIQUE,
        direct_key TEXT UNIQUE,
        topic      TEXT    NOT NULL DEFAULT '',
        created_by INTEGER,
        created_at INTEGER NOT NULL
    );
    -- role: 0 member, 1 moderator, 2 owner.
    CREATE TABLE members (
        room_id       INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role          INTEGER NOT NULL,
        last_read_seq INTEGER NOT NULL DEFAULT 0,
        joined_at     INTEGER NOT NULL,
        PRIMARY KEY (room_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_user ON members(user_id);
    -- sender_name is kept so history reads need no join and outlive a deleted account.
    -- kind: 0 text, 1 system.
    CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        room_id     INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        sender_id   INTEGER NOT NULL,
        sender_name TEXT    NOT NULL,
        ts          INTEGER NOT NULL,
        kind        INTEGER NOT NULL,
        text        TEXT    NOT NULL,
        UNIQUE (room_id, seq)
    );
    CREATE TABLE mentions (
        user_id INTEGER NOT NULL,
        room_id INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        PRIMARY KEY (user_id, room_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO rooms (kind, name, name_key, topic, created_at)
        VALUES (0, 'public', 'public', 'Everyone is here.', CAST(unixepoch('subsec') * 1000 AS INTEGER));
    "#,
    // 2: files posted to rooms, uploads in progress; messages of kind 2 (file) and 3 (deleted).
    // File content lives on disk under its SHA-256 (stored once however often it is posted);
    // a `files` row is one posting of it.
    r#"
    CREATE TABLE files (
        id            INTEGER PRIMARY KEY,
        room_id       INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        seq           INTEGER NOT NULL,
        name          TEXT    NOT NULL,
        size          INTEGER NOT NULL,
        sha256        BLOB    NOT NULL,
        uploader_id   INTEGER NOT NULL,
        uploader_name TEXT    NOT NULL,
        ts            INTEGER NOT NULL
    );
    CREATE INDEX files_by_room ON files(room_id, id);
    CREATE INDEX files_by_hash ON files(sha256);
    CREATE INDEX files_by_uploader ON files(uploader_id);
    -- One row per upload in progress; its bytes are in uploads/<id>.part under the data dir.
    CREATE TABLE uploads (
        id         INTEGER PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        name       TEXT    NOT NULL,
        size       INTEGER NOT NULL,
        sha256     BLOB    NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (user_id, sha256, size)
    );
    ALTER TABLE messages ADD COLUMN file_id INTEGER;
    "#,
    // 3: the AI bot. Bot accounts are marked (they cannot log in, and do not count as "the
    // first account" that becomes admin); `/ai clear` keeps, per room, the seq after which
    // the bot's context starts.
    r#"
    ALTER TABLE users ADD COLUMN is_bot INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE ai_context_starts (
        room_id   INTEGER PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
        after_seq INTEGER NOT NULL
    );
    "#,
    // 4: sessions expire when unused. Uses were not recorded before, so every existing session
    // counts as used at the upgrade rather than expiring on the spot.
    r#"
    ALTER TABLE sessions ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
    UPDATE sessions SET last_used_at = CAST(unixepoch('subsec') * 1000 AS INTEGER);
    "#,
    // 5: ids are never reused. Without AUTOINCREMENT SQLite gives a new row the highest id + 1,
    // so deleting the newest account handed its id to the next one, with the old account's
    // messages, file quota and direct chats ("lo:hi"); the same for files and uploads (whose
    // part files are named by id). The three tables are rebuilt with AUTOINCREMENT (SQLite's
    // 12-step table rebuild; `migrate` turns foreign keys off around it and checks them after),
    // and each sequence starts above the highest id still referred to anywhere.
    r#"
    CREATE TABLE users_new (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        name          TEXT    NOT NULL,
        name_key      TEXT    NOT NULL UNIQUE,
        password_hash TEXT    NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        is_bot        INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO users_new (id, name, name_key, password_hash, is_admin, created_at, is_bot)
        SELECT id, name, name_key, password_hash, is_admin, created_at, is_bot FROM users;
    DROP TABLE users;
    ALTER TABLE users_new RENAME TO users;

    CREATE TABLE files_new (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        room_id       INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        seq           INTEGER NOT NULL,
        name          TEXT    NOT NULL,
        size          INTEGER NOT NULL,
        sha256        BLOB    NOT NULL,
        uploader_id   INTEGER NOT NULL,
        uploader_name TEXT    NOT NULL,
        ts            INTEGER NOT NULL
    );
    INSERT INTO files_new (id, room_id, seq, name, size, sha256, uploader_id, uploader_name, ts)
        SELECT id, room_id, seq, name, size, sha256, uploader_id, uploader_name, ts FROM files;
    DROP TABLE files;
    ALTER TABLE files_new RENAME TO files;
    CREATE INDEX files_by_room ON files(room_id, id);
    CREATE INDEX files_by_hash ON files(sha256);
    CREATE INDEX files_by_uploader ON files(uploader_id);

    CREATE TABLE uploads_new (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        name       TEXT    NOT NULL,
        size       INTEGER NOT NULL,
        sha256     BLOB    NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        -- One upload per file and room: the same file sent to two rooms at once is two
        -- uploads (it was one, and whichever offer came last took the other's room).
        UNIQUE (user_id, room_id, sha256, size)
    );
    INSERT INTO uploads_new (id, user_id, room_id, name, size, sha256, created_at, updated_at)
        SELECT id, user_id, room_id, name, size, sha256, created_at, updated_at FROM uploads;
    DROP TABLE uploads;
    ALTER TABLE uploads_new RENAME TO uploads;

    -- Copying rows with their ids set each sequence to the table's highest id; raise it to the
    -- highest id referred to from anywhere (a deleted account's messages, direct chats, …).
    INSERT INTO sqlite_sequence (name, seq)
        SELECT t.name, 0 FROM (SELECT 'users' AS name UNION ALL SELECT 'files' UNION ALL SELECT 'uploads') AS t
        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence s WHERE s.name = t.name);
    UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(id) FROM (
            SELECT MAX(id) AS id FROM users
            UNION ALL SELECT MAX(sender_id) FROM messages
            UNION ALL SELECT MAX(uploader_id) FROM files
            UNION ALL SELECT MAX(user_id) FROM uploads
            UNION ALL SELECT MAX(user_id) FROM members
            UNION ALL SELECT MAX(user_id) FROM sessions
            UNION ALL SELECT MAX(user_id) FROM mentions
            UNION ALL SELECT MAX(created_by) FROM rooms
            UNION ALL SELECT MAX(CAST(substr(direct_key, 1, instr(direct_key, ':') - 1) AS INTEGER))
                FROM rooms WHERE direct_key IS NOT NULL
            UNION ALL SELECT MAX(CAST(substr(direct_key, instr(direct_key, ':') + 1) AS INTEGER))
                FROM rooms WHERE direct_key IS NOT NULL
        )), 0))
        WHERE name = 'users';
    UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(id) FROM (
            SELECT MAX(id) AS id FROM files
            UNION ALL SELECT MAX(file_id) FROM messages
        )), 0))
        WHERE name = 'files';
    "#,
    // 6: every named room with people in it has an owner. Before, an owner could leave (or
    // their account be deleted) and nobody could be given the room again. Such rooms go to
    // the member who has been a moderator longest, else the one there longest, never a bot,
    // as the writer now does when an owner goes.
    r#"
    UPDATE members SET role = 2
    WHERE (room_id, user_id) IN (
        SELECT r.id, (SELECT m.user_id FROM members m JOIN users u ON u.id = m.user_id
                      WHERE m.room_id = r.id AND u.is_bot = 0
                      ORDER BY m.role DESC, m.joined_at, m.user_id LIMIT 1)
        FROM rooms r
        WHERE r.kind IN (0, 1) AND r.name_key IS NOT 'public'
          AND NOT EXISTS (SELECT 1 FROM members o WHERE o.room_id = r.id AND o.role = 2)
    );
    "#,
    // 7: full-text search over message text: an external-content FTS5 index (the text is
    // stored once, in `messages`). `unicode61` folds case and, with `remove_diacritics 2`,
    // accents: "cafe" finds "Café". Messages are indexed by the writer thread in batches when
    // it has time (see `storage::search`), not by an insert trigger: indexing in every
    // message's own transaction cut committed messages per second to a third. `search_index`
    // says how far it got; removing or changing a message already indexed takes it out of the
    // index in the same statement, and if the newest messages go (a room deleted), the mark
    // moves back so that the ids SQLite hands out again are indexed too.
    r#"
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, content = 'messages', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TABLE search_index (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_up_to INTEGER NOT NULL
    );
    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    INSERT INTO search_index (id, indexed_up_to) VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM messages));
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text)
            SELECT 'delete', old.id, old.text
            WHERE old.id <= (SELECT indexed_up_to FROM search_index WHERE id = 1);
        UPDATE search_index SET indexed_up_to = (SELECT COALESCE(MAX(id), 0) FROM messages)
            WHERE id = 1 AND indexed_up_to > (SELECT COALESCE(MAX(id), 0) FROM messages);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages
    WHEN old.id <= (SELECT indexed_up_to FROM search_index WHERE id = 1) BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
    END;
    "#,
    // 8: bans. A banned user cannot join the room or be invited to it until unbanned; the
    // ban goes with the room or the account.
    r#"
    CREATE TABLE bans (
        room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        by_name    TEXT    NOT NULL,
        reason     TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (room_id, user_id)
    ) WITHOUT ROWID;
    "#,
    // 9: edits. A text message (kind 0) with `edited_at` set was changed by its sender then;
    // the search index follows its text through the update trigger of migration 7.
    r#"
    ALTER TABLE messages ADD COLUMN edited_at INTEGER;
    "#,
    // 10: mutes. A muted member stays in the room but may not post there until `until` (a
    // Unix time in ms; NULL: until unmuted). Leaving does not end it; it goes with the room or
    // the account.
    r#"
    CREATE TABLE mutes (
        room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        by_name    TEXT    NOT NULL,
        reason     TEXT,
        created_at INTEGER NOT NULL,
        until      INTEGER,
        PRIMARY KEY (room_id, user_id)
    ) WITHOUT ROWID;
    "#,
    // 11: Chinese, Japanese and Korean are searchable by word. The index now holds each such
    // character as a token of its own (`storage::search::index_text`); where that differs from
    // a message's text, `search_text` keeps what was indexed, since taking a message out of the
    // index needs exactly that text and a trigger cannot compute it. An edit's new text is
    // indexed as typed here, and if it has such characters it goes on `search_pending`, for
    // the writer's indexer to index again in the split form. Messages indexed before this
    // version go on that list the same way, so the indexer redoes them when the server starts.
    // Text without such characters is indexed exactly as before.
    concat!(
        r#"
    CREATE TABLE search_text (
        id   INTEGER PRIMARY KEY,
        text TEXT    NOT NULL
    );
    CREATE TABLE search_pending (
        id INTEGER PRIMARY KEY
    );
    DROP TRIGGER messages_fts_delete;
    DROP TRIGGER messages_fts_update;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text)
            SELECT 'delete', old.id,
                   COALESCE((SELECT text FROM search_text WHERE id = old.id), old.text)
            WHERE old.id <= (SELECT indexed_up_to FROM search_index WHERE id = 1);
        DELETE FROM search_text WHERE id = old.id;
        DELETE FROM search_pending WHERE id = old.id;
        UPDATE search_index SET indexed_up_to = (SELECT COALESCE(MAX(id), 0) FROM messages)
            WHERE id = 1 AND indexed_up_to > (SELECT COALESCE(MAX(id), 0) FROM messages);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages
    WHEN old.id <= (SELECT indexed_up_to FROM search_index WHERE id = 1) BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text)
            VALUES ('delete', old.id,
                    COALESCE((SELECT text FROM search_text WHERE id = old.id), old.text));
        DELETE FROM search_text WHERE id = old.id;
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
        INSERT OR IGNORE INTO search_pending (id) SELECT new.id WHERE new.text GLOB '"#,
        cjk_glob!(),
        r#"';
    END;
    INSERT INTO search_pending (id)
        SELECT id FROM messages
        WHERE id <= (SELECT indexed_up_to FROM search_index WHERE id = 1) AND text GLOB '"#,
        cjk_glob!(),
        r#"';
    "#
    ),
    // 12: suspended accounts. A suspended account keeps everything but cannot log in until a
    // server admin lifts the suspension; it goes with the account.
    r#"
    CREATE TABLE suspensions (
        user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        by_name    TEXT    NOT NULL,
        reason     TEXT,
        created_at INTEGER NOT NULL
    );
    "#,
    // 13: sessions ended by someone else (an admin's logout, password or suspension; a
    // password change on another device), kept for a while so that a client coming back
    // with the token is told why, not just that the session is gone.
    r#"
    CREATE TABLE ended_sessions (
        token_hash BLOB    PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        why        TEXT    NOT NULL,
        ended_at   INTEGER NOT NULL
    );
    CREATE INDEX ended_sessions_by_user ON ended_sessions (user_id);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`]. Refuses a database written by a newer build.
pub fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StorageError::Schema(format!(
            "the database has schema version {current}, newer than this server's {SCHEMA_VERSION}; \
             upgrade chatroom-server"
        )));
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    // Rebuilding a table (migration 5) drops it; with foreign keys on, that would delete what
    // refers to it (`ON DELETE CASCADE`: sessions, memberships). SQLite ignores this pragma
    // inside a transaction, so it is set around them, and each migration checks the keys
    // before it commits instead.
    let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = run_migrations(conn, current);
    let restored = conn.execute_batch(if foreign_keys {
        "PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA foreign_keys = OFF"
    });
    migrated?;
    restored?;
    if current == 0 {
        tracing::info!(version = SCHEMA_VERSION, "database created");
    }
    Ok(())
}

fn run_migrations(conn: &mut Connection, current: u32) -> Result<(), StorageError> {
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        // Rows a hand edit left dangling are not the migration's to judge; new ones are.
        let dangling_before = dangling_references(&tx)?;
        tx.execute_batch(sql)?;
        let dangling = dangling_references(&tx)?;
        if dangling > dangling_before {
            return Err(StorageError::Schema(format!(
                "migration {} would leave {} rows referring to rows that do not exist",
                version + 1,
                dangling - dangling_before
            )));
        }
        if dangling > 0 {
            tracing::warn!(
                rows = dangling,
                "the database has rows referring to rows that do not exist (PRAGMA foreign_key_check)"
            );
        }
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        tx.commit()?;
        // A new database goes through every step: one line says so, at the end.
        if current > 0 {
            tracing::info!(version = version + 1, "database migrated");
        } else {
            tracing::debug!(version = version + 1, "database migrated");
        }
    }
    Ok(())
}

/// How many rows break a foreign key.
fn dangling_references(conn: &Connection) -> Result<u64, StorageError> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    Ok(count.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_from_before_expiry_count_as_used_at_the_upgrade() {
        let mut conn = Connection::open_in_memory().expect("open");
        // A database as version 3 left it, with a session created long ago.
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO users (name, name_key, password_hash, created_at) VALUES ('a', 'a', 'x', 0);
             INSERT INTO sessions (token_hash, user_id, device, created_at) VALUES (x'01', 1, 'd', 0);",
        )
        .expect("old rows");
        migrate(&mut conn).expect("migrate");
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        let last_used: i64 = conn
            .query_row("SELECT last_used_at FROM sessions", [], |r| r.get(0))
            .expect("row");
        let now = chatroom_protocol::now_millis() as i64;
        assert!(
            (now - 60_000..=now).contains(&last_used),
            "{last_used} is the upgrade time"
        );
    }

    /// A database as version 4 left it, with foreign keys on as the server opens it.
    fn version_4() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.execute_batch("PRAGMA user_version = 4; PRAGMA foreign_keys = ON;")
            .expect("version");
        conn
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    #[test]
    fn ids_are_never_reused_after_the_upgrade_and_nothing_is_lost() {
        let mut conn = version_4();
        // alice (1) and bob (2) remain; carol (3) and dave (4) were deleted, but carol's direct
        // chat with alice ("1:3") and dave's message are still there. Bob has a file (7) and an
        // upload (9) in progress.
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES
                 (1, 'alice', 'alice', 'x', 0), (2, 'bob', 'bob', 'x', 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (1, 1, 0, 0), (1, 2, 0, 0);
             INSERT INTO sessions (token_hash, user_id, device, created_at) VALUES (x'01', 1, 'd', 0), (x'02', 2, 'd', 0);
             INSERT INTO rooms (id, kind, direct_key, created_by, created_at) VALUES (2, 2, '1:3', 1, 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (2, 1, 0, 0);
             INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text) VALUES
                 (2, 1, 3, 'carol', 0, 0, 'hi'), (1, 1, 4, 'dave', 0, 0, 'bye');
             INSERT INTO files (id, room_id, seq, name, size, sha256, uploader_id, uploader_name, ts)
                 VALUES (7, 1, 2, 'f', 1, x'00', 2, 'bob', 0);
             INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text, file_id)
                 VALUES (1, 2, 2, 'bob', 0, 2, 'f', 7);
             INSERT INTO uploads (id, user_id, room_id, name, size, sha256, created_at, updated_at)
                 VALUES (9, 2, 1, 'g', 5, x'01', 0, 0);",
        )
        .expect("old rows");

        migrate(&mut conn).expect("migrate");

        assert_eq!(
            count(&conn, "PRAGMA user_version"),
            i64::from(SCHEMA_VERSION)
        );
        assert_eq!(
            count(&conn, "PRAGMA foreign_keys"),
            1,
            "foreign keys are back on"
        );
        assert_eq!(
            count(&conn, "SELECT COUNT(*) FROM pragma_foreign_key_check"),
            0
        );
        // Dropping the old tables deleted nothing that referred to them.
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM users"), 2);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM sessions"), 2);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM members"), 3);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM files WHERE id = 7"), 1);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM uploads WHERE id = 9"), 1);
        for index in ["files_by_room", "files_by_hash", "files_by_uploader"] {
            assert_eq!(
                count(
                    &conn,
                    &format!(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{index}'"
                    )
                ),
                1,
                "{index}"
            );
        }

        // The next account comes after dave, the highest id anything refers to.
        conn.execute(
            "INSERT INTO users (name, name_key, password_hash, created_at) VALUES ('erin', 'erin', 'x', 0)",
            [],
        )
        .expect("insert");
        assert_eq!(conn.last_insert_rowid(), 5);
        // Deleting the newest account does not give its id away again.
        conn.execute("DELETE FROM users WHERE id = 5", [])
            .expect("delete");
        conn.execute(
            "INSERT INTO users (name, name_key, password_hash, created_at) VALUES ('fay', 'fay', 'x', 0)",
            [],
        )
        .expect("insert");
        assert_eq!(conn.last_insert_rowid(), 6);
        // Nor a file's or an upload's.
        conn.execute("DELETE FROM messages WHERE file_id = 7", [])
            .expect("delete");
        conn.execute("DELETE FROM files WHERE id = 7", [])
            .expect("delete");
        conn.execute(
            "INSERT INTO files (room_id, seq, name, size, sha256, uploader_id, uploader_name, ts) \
             VALUES (1, 3, 'f', 1, x'00', 1, 'alice', 0)",
            [],
        )
        .expect("insert");
        assert_eq!(conn.last_insert_rowid(), 8);
        conn.execute("DELETE FROM uploads WHERE id = 9", [])
            .expect("delete");
        conn.execute(
            "INSERT INTO uploads (user_id, room_id, name, size, sha256, created_at, updated_at) \
             VALUES (1, 1, 'g', 5, x'01', 0, 0)",
            [],
        )
        .expect("insert");
        assert_eq!(conn.last_insert_rowid(), 10);
        // The foreign keys still cascade.
        conn.execute("DELETE FROM users WHERE id = 2", [])
            .expect("delete bob");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM sessions"), 1);
    }

    #[test]
    fn rooms_their_owner_left_get_one_at_the_upgrade() {
        let mut conn = Connection::open_in_memory().expect("open");
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).expect("old migration");
        }
        // ops (2): the owner left; the bot joined first, bob next, carol last but she moderates.
        // lobby (3): only the bot is left. den (4): alice still owns it. 5: a direct chat.
        conn.execute_batch(
            "PRAGMA user_version = 5;
             INSERT INTO users (id, name, name_key, password_hash, created_at, is_bot) VALUES
                 (1, 'alice', 'alice', 'x', 0, 0), (2, 'bob', 'bob', 'x', 0, 0),
                 (3, 'carol', 'carol', 'x', 0, 0), (4, 'ai', 'ai', '!', 0, 1);
             INSERT INTO rooms (id, kind, name, name_key, created_by, created_at) VALUES
                 (2, 1, 'ops', 'ops', 9, 0), (3, 0, 'lobby', 'lobby', 9, 0),
                 (4, 0, 'den', 'den', 1, 0);
             INSERT INTO rooms (id, kind, direct_key, created_by, created_at)
                 VALUES (5, 2, '1:2', 1, 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES
                 (1, 1, 0, 0), (1, 2, 0, 0),
                 (2, 4, 0, 5), (2, 2, 0, 10), (2, 3, 1, 20),
                 (3, 4, 0, 0),
                 (4, 1, 2, 0), (4, 2, 1, 0),
                 (5, 1, 0, 0), (5, 2, 0, 0);",
        )
        .expect("old rows");
        migrate(&mut conn).expect("migrate");
        let owners = |room: i64| {
            count(
                &conn,
                &format!(
                    "SELECT COALESCE(MAX(user_id), 0) FROM members \
                     WHERE room_id = {room} AND role = 2"
                ),
            )
        };
        assert_eq!(owners(2), 3, "the moderator gets ops");
        assert_eq!(owners(3), 0, "a bot is never made owner");
        assert_eq!(owners(4), 1, "a room with an owner keeps it");
        assert_eq!(owners(1), 0, "public has no owner");
        assert_eq!(owners(5), 0, "direct chats have no owner");
        assert_eq!(
            count(&conn, "SELECT COUNT(*) FROM members WHERE role = 2"),
            2
        );
    }

    #[test]
    fn a_fresh_database_never_reuses_ids() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk");
        migrate(&mut conn).expect("migrate");
        let add = |name: &str| {
            conn.execute(
                "INSERT INTO users (name, name_key, password_hash, created_at) VALUES (?1, ?1, 'x', 0)",
                [name],
            )
            .expect("insert");
            conn.last_insert_rowid()
        };
        let first = add("a");
        conn.execute("DELETE FROM users WHERE id = ?1", [first])
            .expect("delete");
        assert_ne!(add("b"), first);
    }

    #[test]
    fn messages_from_before_search_are_indexed_by_the_upgrade() {
        let mut conn = Connection::open_in_memory().expect("open");
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.execute_batch(
            "PRAGMA user_version = 6;
             INSERT INTO messages (id, room_id, seq, sender_id, sender_name, ts, kind, text)
                 VALUES (4, 1, 1, 1, 'a', 0, 0, 'an old Résumé'), (9, 1, 2, 1, 'a', 0, 0, 'newer');",
        )
        .expect("old rows");
        migrate(&mut conn).expect("migrate");
        assert_eq!(
            count(
                &conn,
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'resume'"
            ),
            4
        );
        assert_eq!(
            count(&conn, "SELECT indexed_up_to FROM search_index"),
            9,
            "the mark is past every old message"
        );
    }

    #[test]
    fn the_glob_of_the_triggers_matches_the_characters_the_index_splits() {
        let conn = Connection::open_in_memory().expect("open");
        let globbed: Vec<u32> = conn
            .prepare(concat!(
                "WITH RECURSIVE n(c) AS (SELECT 1 UNION ALL SELECT c + 1 FROM n WHERE c < 1114111) \
                 SELECT c FROM n WHERE c NOT BETWEEN 55296 AND 57343 AND char(c) GLOB '",
                cjk_glob!(),
                "'"
            ))
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("code points");
        let split: Vec<u32> = (1..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| crate::storage::search::is_cjk(c))
            .map(u32::from)
            .collect();
        assert_eq!(globbed.len(), split.len());
        assert!(globbed == split, "the GLOB and is_cjk disagree");
    }

    /// A database file as version 10 left it, its messages indexed the way that version did.
    fn version_10_with_messages(path: &std::path::Path, texts: &[&str]) {
        let conn = Connection::open(path).expect("open");
        for sql in &MIGRATIONS[..10] {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.execute_batch(
            "PRAGMA user_version = 10; PRAGMA journal_mode = WAL;
             INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES (1, 'a', 'a', 'x', 0);
             INSERT INTO members (room_id, user_id, role, joined_at) VALUES (1, 1, 0, 0);",
        )
        .expect("a user in public");
        for (seq, text) in texts.iter().enumerate() {
            conn.execute(
                "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text) \
                 VALUES (1, ?1, 1, 'a', 0, 0, ?2)",
                rusqlite::params![seq as i64 + 1, text],
            )
            .expect("message");
        }
        // Version 10's indexer: the text as it is, up to the mark.
        conn.execute_batch(
            "INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages;
             UPDATE search_index SET indexed_up_to = (SELECT MAX(id) FROM messages);",
        )
        .expect("old index");
    }

    #[test]
    fn cjk_messages_indexed_before_the_upgrade_are_found_by_word_after_it() {
        use crate::storage::search;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("chatroom.sqlite3");
        version_10_with_messages(
            &path,
            &["我们明天发布新版本", "the Café opens", "你好世界", "한국어"],
        );
        let find = |conn: &Connection, query: &str| -> Vec<String> {
            let expression = search::fts_expression(query).expect("query");
            search::search(
                conn,
                chatroom_protocol::UserId(1),
                &expression,
                None,
                None,
                10,
                1 << 20,
            )
            .expect("search")
            .messages
            .into_iter()
            .map(|m| m.text)
            .collect()
        };
        let mut conn = Connection::open(&path).expect("open");
        assert_eq!(find(&conn, "明天"), Vec::<String>::new(), "not before");

        migrate(&mut conn).expect("migrate");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM search_pending"), 3);
        // What the server's writer does first when it starts.
        while search::index_step(&mut conn, 2).expect("step").rows == 2 {}
        assert_eq!(find(&conn, "明天"), ["我们明天发布新版本"]);
        assert_eq!(find(&conn, "版本"), ["我们明天发布新版本"]);
        assert_eq!(find(&conn, "你好"), ["你好世界"]);
        assert_eq!(find(&conn, "한국"), ["한국어"]);
        assert_eq!(find(&conn, "cafe"), ["the Café opens"]);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM search_pending"), 0);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM search_text"), 3);
        // Taking a split message out of the index leaves it sound.
        conn.execute("DELETE FROM messages WHERE text = '你好世界'", [])
            .expect("delete");
        assert_eq!(find(&conn, "你好"), Vec::<String>::new());
        drop(conn);

        let report = crate::maintenance::check(&path).expect("check");
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.schema_version, Some(SCHEMA_VERSION));
    }
}
