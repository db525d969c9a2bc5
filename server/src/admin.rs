//! Offline maintenance of accounts (`chatroom-server user …`), straight on the database file.
//!
//! These run while the server is stopped: the server holds an exclusive lock on
//! `server.lock` in the data directory, and [`DataDirLock`] refuses to open a directory a
//! running server is using — the server's in-memory state would not see changes made beside it.

use chatroom_protocol::UserId;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::auth;
use crate::config::{AiBackendKind, Config, SyncMode};
use crate::storage::ops::{AdminGrant, WriteOp, apply_offline};
use crate::storage::{self, Outcome, StorageError, UserRow, reads, schema};

/// Errors of the admin commands.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The data directory is in use by a running server.
    #[error("a chatroom-server is running on {0}; stop it first")]
    ServerRunning(String),
    /// A name or password broke the rules, or the user does not exist.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The data directory could not be created or locked.
    #[error("cannot {what} {}", path.display())]
    DataDir {
        /// What failed.
        what: &'static str,
        /// The directory or file it failed on.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on a data directory: held by a running server for its whole life, and
/// briefly by each admin command.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock, creating the directory (owner-only, see [`storage::create_data_dir`]) if
    /// needed; fails if someone holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, AdminError> {
        let failed = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| AdminError::DataDir { what, path, source }
        };
        // create_dir_all's own word for a file in the way, "File exists", reads as if the
        // directory were there.
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(failed("create the data directory", data_dir)(
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "something that is not a directory is in its place",
                ),
            ));
        }
        storage::create_data_dir(data_dir)
            .map_err(failed("create the data directory", data_dir))?;
        let path = data_dir.join("server.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(failed("open the lock file", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(AdminError::ServerRunning(data_dir.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(failed("lock", &path)(e)),
        }
    }
}

/// Refuses a database file this account may not write (its owner or mode, an immutable flag,
/// a read-only mount): SQLite would open it read-only without a word, and every write (a
/// login, a message) would fail later. A database not there yet is fine.
pub fn refuse_unwritable_database(database: &Path) -> Result<(), AdminError> {
    match File::options().write(true).open(database) {
        Err(source)
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(AdminError::DataDir {
                what: "write the database",
                path: database.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// The database of a data directory, opened for maintenance.
#[derive(Debug)]
pub struct Admin {
    conn: rusqlite::Connection,
    /// The AI bot's name (compared by name key), when the bot is on: nobody else may have it.
    bot_name: Option<String>,
    _lock: DataDirLock,
}

/// Why the AI bot's account is not suspended.
const TURN_THE_BOT_OFF: &str = "turn the bot off in the configuration instead";

fn refused(e: StorageError) -> AdminError {
    match e {
        StorageError::Refused(body) => AdminError::Invalid(body.message),
        other => AdminError::Storage(other),
    }
}

impl Admin {
    /// Opens (creating and migrating if needed) the database in `data_dir`, for a server with
    /// the default settings (an AI bot named `ai`).
    pub fn open(data_dir: &Path) -> Result<Self, AdminError> {
        Self::open_for(&Config::with_data_dir(data_dir))
    }

    /// Opens (creating and migrating if needed) the database in `config.data_dir`, for a server
    /// with `config`'s settings: the AI bot's name (`--ai-name`) is reserved unless the bot is
    /// off, as for registrations over the network.
    pub fn open_for(config: &Config) -> Result<Self, AdminError> {
        let lock = DataDirLock::acquire(&config.data_dir)?;
        refuse_unwritable_database(&config.database_path())?;
        let mut conn = storage::open_read_write(&config.database_path(), SyncMode::Full)?;
        schema::migrate(&mut conn)?;
        let bot_name = (config.ai.backend != AiBackendKind::Off).then(|| config.ai.name.clone());
        Ok(Self {
            conn,
            bot_name,
            _lock: lock,
        })
    }

    fn user(&self, name: &str) -> Result<UserRow, AdminError> {
        reads::user_for_login(&self.conn, &auth::name_key(name))?
            .map(|(user, _)| user)
            .ok_or_else(|| AdminError::Invalid(format!("no user named {name:?}")))
    }

    /// Creates an account (a member of `public`).
    pub fn add_user(
        &mut self,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<UserRow, AdminError> {
        auth::validate_username(name).map_err(|e| AdminError::Invalid(e.to_string()))?;
        if let Some(bot) = &self.bot_name
            && auth::name_key(bot) == auth::name_key(name)
        {
            // The server would find a person holding the bot's name and keep the bot off.
            return Err(AdminError::Invalid(format!(
                "the name {name:?} is reserved for the AI bot (rename the bot with --ai-name)"
            )));
        }
        let look = auth::look_alike_key(name);
        let users = reads::all_users(&self.conn)?;
        if let Some(other) = users
            .iter()
            .find(|u| u.name_key != auth::name_key(name) && auth::look_alike_key(&u.name) == look)
        {
            return Err(AdminError::Invalid(format!(
                "the name {name:?} looks like the account {:?}; choose another",
                other.name
            )));
        }
        auth::validate_password(password).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let password_hash = auth::hash_password(password).map_err(AdminError::Invalid)?;
        let op = WriteOp::CreateUser {
            name: name.to_string(),
            password_hash,
            admin: if admin {
                AdminGrant::Yes
            } else {
                AdminGrant::IfFirst
            },
        };
        match apply_offline(&mut self.conn, &op).map_err(refused)? {
            Outcome::User(row) => Ok(row),
            other => Err(AdminError::Invalid(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Sets a new password and revokes every session of the account.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), AdminError> {
        auth::validate_password(password).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let user = self.user(name)?;
        self.refuse_bot(&user, "it has no password")?;
        let password_hash = auth::hash_password(password).map_err(AdminError::Invalid)?;
        let op = WriteOp::ChangePassword {
            user: user.id,
            password_hash,
            keep_session: None,
        };
        apply_offline(&mut self.conn, &op).map_err(refused)?;
        Ok(())
    }

    /// Logs out every session of the account (a lost laptop, say); the password stays.
    pub fn logout_user(&mut self, name: &str) -> Result<(), AdminError> {
        let user = self.user(name)?;
        apply_offline(&mut self.conn, &WriteOp::RevokeSessions { user: user.id })
            .map_err(refused)?;
        Ok(())
    }

    /// Suspends the account until [`Admin::unsuspend_user`], logging out every session; a
    /// second suspension replaces the reason.
    pub fn suspend_user(&mut self, name: &str, reason: Option<String>) -> Result<(), AdminError> {
        let user = self.user(name)?;
        self.refuse_bot(&user, TURN_THE_BOT_OFF)?;
        let op = WriteOp::Suspend {
            user: user.id,
            by_name: "a server admin".to_string(),
            reason: auth::clean_reason(reason),
        };
        apply_offline(&mut self.conn, &op).map_err(refused)?;
        Ok(())
    }

    /// Lifts the account's suspension.
    pub fn unsuspend_user(&mut self, name: &str) -> Result<(), AdminError> {
        let user = self.user(name)?;
        apply_offline(&mut self.conn, &WriteOp::Unsuspend { user: user.id }).map_err(refused)?;
        Ok(())
    }

    /// The suspended accounts, newest first.
    pub fn suspensions(&self) -> Result<Vec<chatroom_protocol::BanInfo>, AdminError> {
        Ok(reads::suspensions(&self.conn)?)
    }

    /// Grants or revokes server admin; returns the account as it is now and whether that
    /// changed anything (`false`: it already was, or was not, an admin).
    pub fn set_admin(&mut self, name: &str, admin: bool) -> Result<(UserRow, bool), AdminError> {
        let mut user = self.user(name)?;
        self.refuse_bot(&user, "it acts only as the bot")?;
        if user.is_admin == admin {
            return Ok((user, false));
        }
        apply_offline(
            &mut self.conn,
            &WriteOp::SetAdmin {
                user: user.id,
                admin,
            },
        )
        .map_err(refused)?;
        user.is_admin = admin;
        Ok((user, true))
    }

    /// Deletes an account with its sessions and memberships; its messages stay in history.
    pub fn delete_user(&mut self, name: &str) -> Result<UserId, AdminError> {
        let user = self.user(name)?;
        // The server would make the bot's account again at its next start, under a new id; one
        // left behind by a renamed or disabled bot may go.
        if let Some(bot) = &self.bot_name
            && auth::name_key(bot) == user.name_key
        {
            return Err(AdminError::Invalid(format!(
                "{} is the AI bot's account, made again at the server's next start; turn the \
                 bot off (--ai-backend off) or rename it (--ai-name) first, in the settings \
                 given here too",
                user.name
            )));
        }
        apply_offline(&mut self.conn, &WriteOp::DeleteUser { user: user.id }).map_err(refused)?;
        Ok(user.id)
    }

    /// Every account.
    pub fn users(&self) -> Result<Vec<UserRow>, AdminError> {
        Ok(reads::all_users(&self.conn)?)
    }

    /// Refuses the AI bot's account, saying why not (`because`), as the server does for the
    /// same commands from a client.
    fn refuse_bot(&self, user: &UserRow, because: &str) -> Result<(), AdminError> {
        if storage::ai::is_bot(&self.conn, user.id)? {
            return Err(AdminError::Invalid(format!(
                "{} is the AI bot's account; {because}",
                user.name
            )));
        }
        Ok(())
    }

    /// Whether `user` is a bot's account (the AI bot's), not a person's.
    pub fn is_bot(&self, user: UserId) -> Result<bool, AdminError> {
        Ok(storage::ai::is_bot(&self.conn, user)?)
    }
}
