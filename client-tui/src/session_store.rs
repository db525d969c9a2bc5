//! Session tokens on disk, one file per (server, user), readable only by the user (0600), so
//! that the next start resumes without asking for the password; and, per server, the name of the
//! user who last logged in with the terminal UI, so that it can resume without being told whom.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The token files of one data directory.
#[derive(Clone, Debug)]
pub struct SessionStore {
    dir: PathBuf,
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn file_name(server: &str, user: &str) -> String {
    format!("{}@{}.token", safe(&user.to_lowercase()), safe(server))
}

/// The file naming the last user of `server` (no `@`, so never a token file's name).
fn last_user_file_name(server: &str) -> String {
    format!("{}.last-user", safe(server))
}

/// Creates `dir` (and any missing parent) readable by the user only (0700 on Unix, as the XDG
/// base directory spec asks), and tightens it if it already exists with looser permissions.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // Made before with the default mode (by an older version, or by hand).
        if std::fs::metadata(dir)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

impl SessionStore {
    /// Tokens kept under `data_dir/sessions`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("sessions"),
        }
    }

    fn path(&self, server: &str, user: &str) -> PathBuf {
        self.dir.join(file_name(server, user))
    }

    /// The saved token, if any.
    pub fn load(&self, server: &str, user: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path(server, user)).ok()?;
        let token = text.trim();
        (!token.is_empty()).then(|| token.to_string())
    }

    /// Saves a token, readable by the user only. The token is written to a new file (0600) in
    /// the same folder, flushed, and renamed over the old one, so a reader at any moment sees
    /// either the old token or the new one, never an empty or half-written file.
    pub fn save(&self, server: &str, user: &str, token: &str) -> std::io::Result<()> {
        self.write_private(&file_name(server, user), token)
    }

    /// The user who last logged in to `server` with the terminal UI, if not forgotten since.
    pub fn last_user(&self, server: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(last_user_file_name(server))).ok()?;
        let mut lines = text.lines();
        let user = lines.next()?.trim();
        // Anything else is not a file this client wrote.
        (!user.is_empty() && lines.next().is_none()).then(|| user.to_string())
    }

    /// Remembers `user` as the last to log in to `server` (written like a token: 0600, whole).
    pub fn save_last_user(&self, server: &str, user: &str) -> std::io::Result<()> {
        self.write_private(&last_user_file_name(server), user)
    }

    /// Forgets the last user of `server` (after `/logout`).
    pub fn forget_last_user(&self, server: &str) {
        let _ = std::fs::remove_file(self.dir.join(last_user_file_name(server)));
    }

    /// Writes `text` and a newline to the file `name`, readable by the user only, replacing it
    /// whole (see [`SessionStore::save`]).
    fn write_private(&self, name: &str, text: &str) -> std::io::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        create_private_dir(&self.dir)?;
        let path = self.dir.join(name);
        let (temp, mut file) = loop {
            let temp = self.dir.join(format!(
                ".{name}.{}.{}.tmp",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut options = std::fs::File::options();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&temp) {
                Ok(file) => break (temp, file),
                // Left behind by a crashed process with the same pid: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let written = (|| {
            // The umask cannot loosen it, but make sure.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            file.write_all(format!("{text}\n").as_bytes())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&temp, &path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// Forgets a token (after logout or when the server no longer accepts it).
    pub fn remove(&self, server: &str, user: &str) {
        let _ = std::fs::remove_file(self.path(server, user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SessionStore::new(dir.path());
        assert_eq!(store.load("host:8888", "Alice"), None);
        store.save("host:8888", "Alice", "abc123").expect("save");
        assert_eq!(store.load("host:8888", "alice").as_deref(), Some("abc123"));
        assert_eq!(store.load("other:8888", "alice"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path("host:8888", "alice"))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.remove("host:8888", "ALICE");
        assert_eq!(store.load("host:8888", "alice"), None);
    }

    #[test]
    fn a_new_token_replaces_the_file_whole_and_leaves_nothing_behind() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SessionStore::new(dir.path());
        store.save("host:8888", "alice", "old-token").expect("save");
        let path = store.path("host:8888", "alice");
        #[cfg(unix)]
        {
            // A file left with looser permissions does not pass them on.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        // A reader that opened the file before the save still reads a whole token: the old
        // file is replaced, not emptied and rewritten.
        let mut reader = std::fs::File::open(&path).expect("open");
        store.save("host:8888", "alice", "new-token").expect("save");
        let mut seen = String::new();
        reader.read_to_string(&mut seen).expect("read");
        assert_eq!(seen, "old-token\n");
        assert_eq!(
            store.load("host:8888", "alice").as_deref(),
            Some("new-token")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sessions"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }

    #[test]
    fn the_last_user_is_kept_per_server_privately_and_apart_from_tokens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SessionStore::new(dir.path());
        assert_eq!(store.last_user("host:8888"), None);
        store.save("host:8888", "alice", "abc123").expect("save");
        store.save_last_user("host:8888", "alice").expect("save");
        store.save_last_user("other:8888", "bob").expect("save");
        assert_eq!(store.last_user("host:8888").as_deref(), Some("alice"));
        assert_eq!(store.last_user("other:8888").as_deref(), Some("bob"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir
                .path()
                .join("sessions")
                .join(last_user_file_name("host:8888"));
            let mode = std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.save_last_user("host:8888", "carol").expect("save");
        assert_eq!(store.last_user("host:8888").as_deref(), Some("carol"));
        store.forget_last_user("host:8888");
        assert_eq!(store.last_user("host:8888"), None);
        assert_eq!(store.last_user("other:8888").as_deref(), Some("bob"));
        assert_eq!(
            store.load("host:8888", "alice").as_deref(),
            Some("abc123"),
            "the token file is another file"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_sessions_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("share").join("chatroom");
        let store = SessionStore::new(&data);
        store.save("host:8888", "alice", "abc123").expect("save");
        assert_eq!(mode(&data.join("sessions")), 0o700);
        assert_eq!(mode(&data), 0o700, "a missing parent too");

        // One made with the default mode before is tightened on the next save.
        let old = dir.path().join("old");
        std::fs::create_dir_all(old.join("sessions")).expect("mkdir");
        std::fs::set_permissions(old.join("sessions"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let store = SessionStore::new(&old);
        store.save_last_user("host:8888", "alice").expect("save");
        assert_eq!(mode(&old.join("sessions")), 0o700);
    }

    #[test]
    fn odd_names_make_safe_file_names() {
        assert_eq!(file_name("[::1]:8888", "../x"), ".._x@___1__8888.token");
        assert_eq!(file_name("h:1", "张伟"), "张伟@h_1.token");
    }
}
