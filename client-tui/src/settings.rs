//! Where to connect and as whom: flags > `CHATROOM_*` environment > config file > defaults.
//!
//! The config file is `~/.config/chatroom/config.toml` (or under `$XDG_CONFIG_HOME`), or the
//! file named by `--config`:
//!
//! ```toml
//! server = "chat.office.lan:8888"
//! user = "alice"
//! mouse = true    # scroll with the wheel in the terminal UI
//! bell = false    # no bell on mentions
//! away_after = 10 # minutes without a key before showing away (0: never)
//! download_dir = "~/Downloads/chatroom"   # where downloads go (created if missing)
//! password_file = "~/.config/chatroom/password"   # after --password-file and CHATROOM_PASSWORD
//! ```

use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The server used when nothing says otherwise.
pub const DEFAULT_SERVER: &str = "127.0.0.1:8888";

/// Minutes without input before the terminal UI shows away, unless told otherwise: long
/// enough for a read or a think, short enough that "online" means at the keyboard.
pub const DEFAULT_AWAY_AFTER_MINUTES: u32 = 10;

/// The port used when a server is given without one (the server's default).
pub const DEFAULT_PORT: u16 = 8888;

/// `HOST:PORT` for a server given as `HOST`, `HOST:PORT`, an IPv6 address with or without its
/// brackets, or `[IPV6]:PORT`: a missing port is [`DEFAULT_PORT`].
pub fn with_default_port(server: &str) -> String {
    let server = server.trim();
    if server.parse::<std::net::SocketAddr>().is_ok() {
        return server.to_string();
    }
    if let Ok(ip) = server.parse::<std::net::IpAddr>() {
        return std::net::SocketAddr::new(ip, DEFAULT_PORT).to_string();
    }
    // A name or IPv4 address alone, or a bracketed IPv6 address alone; anything else (with a
    // port, or not an address at all) is left for connecting to judge.
    let bare = !server.is_empty() && !server.contains(':')
        || server.starts_with('[') && server.ends_with(']');
    if bare {
        format!("{server}:{DEFAULT_PORT}")
    } else {
        server.to_string()
    }
}

/// The resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `HOST:PORT` of the server.
    pub server: String,
    /// The account name, if known.
    pub user: Option<String>,
    /// A file holding the password (first line), from `--password-file`: it comes before
    /// `CHATROOM_PASSWORD`.
    pub password_file: Option<PathBuf>,
    /// The config file's `password_file`: it comes after `CHATROOM_PASSWORD`.
    pub config_password_file: Option<PathBuf>,
    /// Where session tokens are kept.
    pub data_dir: Option<PathBuf>,
    /// Mouse-wheel scrolling in the terminal UI.
    pub mouse: bool,
    /// Ring the bell on mentions.
    pub bell: bool,
    /// Minutes without input before the terminal UI shows away (0: never).
    pub away_after: u32,
    /// Where downloads go unless told otherwise (created when first used).
    pub download_dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    mouse: Option<bool>,
    bell: Option<bool>,
    away_after: Option<u32>,
    download_dir: Option<PathBuf>,
}

fn home_dir_join(xdg_var: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(xdg_var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(fallback)))
        .map(|dir| dir.join("chatroom"))
}

/// `~/.config/chatroom` (or `$XDG_CONFIG_HOME/chatroom`).
pub fn config_dir() -> Option<PathBuf> {
    home_dir_join("XDG_CONFIG_HOME", ".config")
}

/// `~/.local/share/chatroom` (or `$XDG_DATA_HOME/chatroom`).
pub fn data_dir() -> Option<PathBuf> {
    home_dir_join("XDG_DATA_HOME", ".local/share")
}

/// `~/Downloads/chatroom`, or `chatroom-downloads` in the current folder without a home.
pub fn default_download_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join("Downloads").join("chatroom"))
        .unwrap_or_else(|| PathBuf::from("chatroom-downloads"))
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) if !home.is_empty() => Path::new(&home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// What the command line gave: flags and environment, already merged by clap (a flag wins).
#[derive(Clone, Debug, Default)]
pub struct FromCommandLine {
    /// `--server` / `CHATROOM_SERVER`.
    pub server: Option<String>,
    /// `--user` / `CHATROOM_USER`.
    pub user: Option<String>,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// `--config` / `CHATROOM_CONFIG`.
    pub config: Option<PathBuf>,
    /// `--mouse[=BOOL]` / `CHATROOM_MOUSE`.
    pub mouse: Option<bool>,
    /// The bell, from `--no-bell[=BOOL]` / `CHATROOM_NO_BELL` (negated).
    pub bell: Option<bool>,
    /// `--away-after` / `CHATROOM_AWAY_AFTER`.
    pub away_after: Option<u32>,
}

/// Combines what the command line gave with the config file and the defaults.
pub fn resolve(cli: FromCommandLine) -> anyhow::Result<Settings> {
    let FromCommandLine {
        server,
        user,
        password_file,
        config,
        mouse,
        bell,
        away_after,
    } = cli;
    let explicit = config.is_some();
    let path = config.or_else(|| config_dir().map(|d| d.join("config.toml")));
    let file = match path {
        Some(path) if explicit || path.exists() => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))?
        }
        _ => ConfigFile::default(),
    };
    Ok(Settings {
        server: server
            .or(file.server)
            .map_or_else(|| DEFAULT_SERVER.to_string(), |s| with_default_port(&s)),
        user: user.or(file.user),
        password_file: password_file.map(|p| expand_home(&p)),
        config_password_file: file.password_file.map(|p| expand_home(&p)),
        data_dir: data_dir(),
        mouse: mouse.or(file.mouse).unwrap_or(false),
        bell: bell.or(file.bell).unwrap_or(true),
        away_after: away_after
            .or(file.away_after)
            .unwrap_or(DEFAULT_AWAY_AFTER_MINUTES),
        download_dir: std::env::var_os("CHATROOM_DOWNLOAD_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or(file.download_dir)
            .map(|p| expand_home(&p))
            .unwrap_or_else(default_download_dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_a_port_gets_the_default_one() {
        assert_eq!(with_default_port("127.0.0.1"), "127.0.0.1:8888");
        assert_eq!(with_default_port("chat.office.lan"), "chat.office.lan:8888");
        assert_eq!(with_default_port("::1"), "[::1]:8888");
        assert_eq!(with_default_port("[::1]"), "[::1]:8888");
        assert_eq!(with_default_port("fe80::1"), "[fe80::1]:8888");
        for given in ["127.0.0.1:9000", "chat.office.lan:9000", "[::1]:9000"] {
            assert_eq!(with_default_port(given), given, "a port is kept");
        }
        // Not an address at all: left for connecting to report.
        assert_eq!(with_default_port("host:port"), "host:port");
    }
}
