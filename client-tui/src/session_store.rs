//! Session tokens on disk, one file per (server, user), readable only by the user (0600), so
//! that the next start resumes without asking for the password.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The token files of one data directory.
#[derive(Clone, Debug)]
pub struct SessionStore {
    dir: PathBuf,
}

fn file_name(server: &str, user: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}@{}.token", safe(&user.to_lowercase()), safe(server))
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

    /// Saves a token, readable by the user only.
    pub fn save(&self, server: &str, user: &str, token: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(server, user);
        let mut options = std::fs::File::options();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        // A file created earlier with looser permissions is tightened too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")
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
    fn odd_names_make_safe_file_names() {
        assert_eq!(file_name("[::1]:8888", "../x"), ".._x@___1__8888.token");
        assert_eq!(file_name("h:1", "张伟"), "张伟@h_1.token");
    }
}
