//! Connecting and logging in: resume a saved session if there is one, else log in with a
//! password from `--password-file`, `CHATROOM_PASSWORD` or a prompt — never from a plain
//! command-line argument, where other users of the machine could read it.

use anyhow::{Context, anyhow, bail};
use chatroom_protocol::client::Client;
use chatroom_protocol::{ErrorCode, Session};
use std::io::IsTerminal;
use std::path::Path;

use crate::session_store::SessionStore;
use crate::settings::Settings;

/// The client name sent in `Hello`.
pub const CLIENT_NAME: &str = concat!("chatroom ", env!("CARGO_PKG_VERSION"));

/// The account name, or a clear error.
pub fn user_name(settings: &Settings) -> anyhow::Result<&str> {
    settings
        .user
        .as_deref()
        .ok_or_else(|| anyhow!("no user name: pass --user NAME, set CHATROOM_USER, or put user = \"NAME\" in the config file"))
}

fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// The password: from `--password-file`, `CHATROOM_PASSWORD`, the config file's
/// `password_file` (in that order: flags > environment > config file), or a prompt when there
/// is a terminal. With `confirm`, a prompt asks twice (for a new password).
pub fn password(settings: &Settings, confirm: bool) -> anyhow::Result<String> {
    if let Some(path) = &settings.password_file {
        return read_password_file(path);
    }
    if let Ok(password) = std::env::var("CHATROOM_PASSWORD") {
        return Ok(password);
    }
    if let Some(path) = &settings.config_password_file {
        return read_password_file(path);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: use --password-file FILE or set CHATROOM_PASSWORD");
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

/// Remembers a session for the next start (a failure to save only costs a password prompt).
pub fn remember(settings: &Settings, session: &Session) {
    if let Some(store) = store(settings)
        && let Err(e) = store.save(&settings.server, &session.user.username, &session.token)
    {
        eprintln!("chatroom: could not save the session: {e}");
    }
}

/// Connects and logs in, resuming a saved session when possible.
pub async fn connect_logged_in(settings: &Settings) -> anyhow::Result<(Client, Session)> {
    let user = user_name(settings)?;
    let client = connect(settings).await?;
    if let Some(store) = store(settings)
        && let Some(token) = store.load(&settings.server, user)
    {
        match client.resume(&token).await {
            Ok(session) => return Ok((client, session)),
            Err(e) if e.code() == Some(ErrorCode::InvalidToken) => {
                // Say why the password is asked for again (an expired session, usually).
                eprintln!("chatroom: the saved session cannot be resumed: {e}");
                store.remove(&settings.server, user);
            }
            Err(e) => return Err(e).context("cannot resume the session"),
        }
    }
    let password = password(settings, false)?;
    let session = client
        .login(user, &password)
        .await
        .with_context(|| format!("cannot log in as {user}"))?;
    remember(settings, &session);
    Ok((client, session))
}
