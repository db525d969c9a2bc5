//! The database schema and its migrations, keyed on `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema from version `i` to `i + 1` and runs in one
//! transaction with the version bump, so a crash mid-migration leaves the old version intact.
//! Append new migrations; never edit a released one.

use rusqlite::Connection;

use super::StorageError;

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
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        tx.commit()?;
        tracing::info!(version = version + 1, "database migrated");
    }
    Ok(())
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
}
