//! Connecting and logging in: resume a saved session if there is one, else log in with a
//! password from `--password-file`, `CHATROOM_PASSWORD` or a prompt — never from a plain
//! command-line argument, where other users of the machine could read it.

use anyhow::{Context, anyhow, bail};
use chatroom_protocol::client::{Client, ClientError};
use chatroom_protocol::{ErrorCode, Session};
use std::io::IsTerminal;
use std::path::Path;

use crate::session_store::SessionStore;
use crate::settings::Settings;

/// The client name sent in `Hello`.
pub const CLIENT_NAME: &str = concat!("chatroom ", env!("CARGO_PKG_VERSION"));

/// The account name given by `--user`, `CHATROOM_USER` or the config file, or a clear error.
pub fn named_user(settings: &Settings) -> anyhow::Result<&str> {
    settings.user.as_deref().ok_or_else(|| {
        anyhow!(
            "no user name: pass --user NAME, set CHATROOM_USER, or put user = \"NAME\" in the \
             config file"
        )
    })
}

/// The account name: the one given by `--user`, `CHATROOM_USER` or the config file, else the
/// last user to log in to this server here (`chatroom login`, `register` or the terminal UI;
/// forgotten on logout), or a clear error.
pub fn user_name(settings: &Settings) -> anyhow::Result<String> {
    if let Some(user) = &settings.user {
        return Ok(user.clone());
    }
    store(settings)
        .and_then(|store| store.last_user(&settings.server))
        .ok_or_else(|| {
            anyhow!(
                "no user name: pass --user NAME, set CHATROOM_USER, put user = \"NAME\" in the \
                 config file, or log in once with `chatroom login --user NAME`"
            )
        })
}

/// The first line of a password file.
pub(crate) fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// The password: from `--password-file`, `CHATROOM_PASSWORD`, the config file's
/// `password_file` (in that order: flags > environment > config file), or a prompt when there
/// is a terminal. With `confirm`, a prompt asks twice (for a new password).
pub fn password(settings: &Settings, confirm: bool) -> anyhow::Result<String> {
    password_after(settings, confirm, None)
}

/// The password from `--password-file`, `CHATROOM_PASSWORD` or the config file's
/// `password_file` (in that order), when one of them is given; `None` means ask the user.
pub fn configured_password(settings: &Settings) -> Option<anyhow::Result<String>> {
    if let Some(path) = &settings.password_file {
        return Some(read_password_file(path));
    }
    if let Ok(password) = std::env::var("CHATROOM_PASSWORD") {
        return Some(Ok(password));
    }
    settings
        .config_password_file
        .as_ref()
        .map(|path| read_password_file(path))
}

/// [`password`], saying `why` on the terminal before a prompt (when a saved session has ended,
/// the user sees why the password is asked for).
fn password_after(settings: &Settings, confirm: bool, why: Option<&str>) -> anyhow::Result<String> {
    if let Some(configured) = configured_password(settings) {
        return configured;
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: use --password-file FILE or set CHATROOM_PASSWORD");
    }
    if let Some(why) = why {
        eprintln!("chatroom: {why}; log in again");
    }
    let first = rpassword::prompt_password("Password: ")?;
    if confirm {
        let again = rpassword::prompt_password("Repeat it: ")?;
        if first != again {
            bail!("the passwords differ");
        }
    }
    Ok(first)
}

/// Connects to the configured server.
pub async fn connect(settings: &Settings) -> anyhow::Result<Client> {
    Client::connect(&settings.server, CLIENT_NAME)
        .await
        .with_context(|| format!("cannot connect to {}", settings.server))
}

fn store(settings: &Settings) -> Option<SessionStore> {
    settings.data_dir.as_deref().map(SessionStore::new)
}

/// Remembers `user` as the one to log in as on this server when no user is named (a failure to
/// save only means naming the user next time).
pub fn remember_last_user(settings: &Settings, user: &str) {
    if let Some(store) = store(settings)
        && let Err(e) = store.save_last_user(&settings.server, user)
    {
        eprintln!("chatroom: could not remember the user: {e}");
    }
}

/// Forgets the remembered last user of this server if it is `user` (after a logout).
pub fn forget_last_user(settings: &Settings, user: &str) {
    if let Some(store) = store(settings)
        && store
            .last_user(&settings.server)
            .is_some_and(|last| last.to_lowercase() == user.to_lowercase())
    {
        store.forget_last_user(&settings.server);
    }
}

/// Remembers a session for the next start (a failure to save only costs a password prompt).
pub fn remember(settings: &Settings, session: &Session) {
    if let Some(store) = store(settings)
        && let Err(e) = store.save(&settings.server, &session.user.username, &session.token)
    {
        eprintln!("chatroom: could not save the session: {e}");
    }
}

/// Connects and logs in, resuming a saved session when possible.
///
/// When the saved session is no longer accepted (it expired, or was logged out elsewhere), a
/// password is needed; if that fails too, the one error says both why the session did not do
/// and why the password did not.
pub async fn connect_logged_in(settings: &Settings) -> anyhow::Result<(Client, Session)> {
    let user = user_name(settings)?;
    let user = user.as_str();
    let client = connect(settings).await?;
    let mut ended = None;
    if let Some(store) = store(settings)
        && let Some(token) = store.load(&settings.server, user)
    {
        match client.resume(&token).await {
            Ok(session) => return Ok((client, session)),
            Err(e) if e.code() == Some(ErrorCode::InvalidToken) => {
                store.remove(&settings.server, user);
                let why = match &e {
                    ClientError::Server(body) | ClientError::Closed(Some(body)) => {
                        let message = body.message.trim_end_matches("; log in again");
                        crate::output::escape_controls(message).into_owned()
                    }
                    other => other.to_string(),
                };
                ended = Some(format!("the saved session of {user} has ended ({why})"));
            }
            Err(e) => return Err(e).context("cannot resume the session"),
        }
    }
    let with_reason = |e: anyhow::Error| match &ended {
        Some(ended) => e.context(ended.clone()),
        None => e,
    };
    let password = password_after(settings, false, ended.as_deref()).map_err(with_reason)?;
    let session = client
        .login(user, &password)
        .await
        .with_context(|| format!("cannot log in as {user}"))
        .map_err(with_reason)?;
    remember(settings, &session);
    Ok((client, session))
}
