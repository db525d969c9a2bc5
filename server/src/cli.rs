//! The `chatroom-server` command line: serve (the default), maintain accounts offline, back up
//! or check the database.
//!
//! Settings come from, in order of precedence: flags, `CHATROOM_*` environment variables, the
//! TOML file named by `--config`, and the built-in defaults — so the bare command serves on
//! `0.0.0.0:8888` with data in `./chatroom-data`.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

use crate::admin::{Admin, AdminError, DataDirLock};
use crate::config::{AiBackendKind, AiConfig, Config, RegistrationPolicy, SyncMode};

/// The default listen address: every interface, the original Chat-Room's port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8888";

/// Chat-Room server: self-hosted LAN chat with rooms, direct messages and history, kept in
/// SQLite. Run it with no arguments to serve on 0.0.0.0:8888 with data in ./chatroom-data.
#[derive(Debug, Parser)]
#[command(name = "chatroom-server", version, about, long_about = None)]
pub struct Cli {
    /// Settings for serving and for where data lives.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; serve when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every subcommand.
#[derive(Debug, Args)]
pub struct Settings {
    /// IP address and port to listen on; 0.0.0.0 is every interface [default: 0.0.0.0:8888]
    #[arg(long, env = "CHATROOM_LISTEN", value_name = "ADDR", value_parser = listen_address)]
    pub listen: Option<SocketAddr>,
    /// Serve GET /health and GET /metrics (Prometheus) over HTTP on this address, e.g.
    /// 127.0.0.1:9100 [default: off]
    #[arg(
        long,
        env = "CHATROOM_METRICS_LISTEN",
        value_name = "ADDR",
        value_parser = listen_address
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// Directory holding the database and uploaded files [default: ./chatroom-data]. Serving
    /// and `user add` create it; the other commands refuse one without a database
    #[arg(long, env = "CHATROOM_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// TOML file with settings; every key with its default is in the README, section
    /// "Configuration reference"
    #[arg(long, env = "CHATROOM_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Name shown to clients [default: Chat-Room]
    #[arg(long, env = "CHATROOM_SERVER_NAME", value_name = "NAME")]
    pub server_name: Option<String>,
    /// Who may register: anyone (open) or only admins (closed) [default: open]
    #[arg(long, env = "CHATROOM_REGISTRATION", value_enum)]
    pub registration: Option<RegistrationPolicy>,
    /// SQLite durability: full fsyncs every commit, normal survives crashes but not power loss
    /// [default: full]
    #[arg(long, env = "CHATROOM_SYNCHRONOUS", value_enum)]
    pub synchronous: Option<SyncMode>,
    /// Longest message in characters, at least 1 [default: 4000]
    #[arg(long, env = "CHATROOM_MAX_MESSAGE_CHARS", value_name = "N")]
    pub max_message_chars: Option<u32>,
    /// Largest frame in bytes, 4096 to 16777216 [default: 1048576]
    #[arg(long, env = "CHATROOM_MAX_FRAME_BYTES", value_name = "N")]
    pub max_frame_bytes: Option<u32>,
    /// Sustained messages per second per connection, at least 1 [default: 20]
    #[arg(long, env = "CHATROOM_MESSAGES_PER_SECOND", value_name = "N")]
    pub messages_per_second: Option<u32>,
    /// Message burst allowance per connection, at least 1 [default: 50]
    #[arg(long, env = "CHATROOM_MESSAGE_BURST", value_name = "N")]
    pub message_burst: Option<u32>,
    /// Connections at once, 0 for no limit [default: 10000]
    #[arg(long, env = "CHATROOM_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,
    /// Connections at once from one IP address, 0 for no limit [default: 256]
    #[arg(long, env = "CHATROOM_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<u32>,
    /// Accounts one IP address may register per hour, 0 for no limit [default: 30]
    #[arg(long, env = "CHATROOM_REGISTRATIONS_PER_IP_PER_HOUR", value_name = "N")]
    pub registrations_per_ip_per_hour: Option<u32>,
    /// Seconds of silence before the server pings a client [default: 30]
    #[arg(long, env = "CHATROOM_HEARTBEAT_SECS", value_name = "SECS")]
    pub heartbeat_secs: Option<u32>,
    /// Seconds of silence before the server drops a client [default: 90]
    #[arg(long, env = "CHATROOM_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u32>,
    /// Seconds a session may go unused before its token stops resuming, 0 for never
    /// [default: 2592000, 30 days]
    #[arg(long, env = "CHATROOM_SESSION_EXPIRY_SECS", value_name = "SECS")]
    pub session_expiry_secs: Option<u32>,
    /// Largest uploaded file in bytes [default: 1073741824]
    #[arg(long, env = "CHATROOM_MAX_FILE_BYTES", value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Bytes of files one user may store, 0 for no quota [default: 10737418240]
    #[arg(long, env = "CHATROOM_FILE_QUOTA_BYTES", value_name = "BYTES")]
    pub file_quota_bytes: Option<u64>,
    /// Seconds before an untouched, unfinished upload is discarded [default: 86400]
    #[arg(long, env = "CHATROOM_UPLOAD_EXPIRY_SECS", value_name = "SECS")]
    pub upload_expiry_secs: Option<u64>,
    /// The AI bot's backend: builtin (offline), openai (any OpenAI-compatible endpoint) or off
    /// [default: builtin]
    #[arg(long, env = "CHATROOM_AI_BACKEND", value_enum)]
    pub ai_backend: Option<AiBackendKind>,
    /// Base URL of the OpenAI-compatible API, e.g. http://192.168.1.20:11434/v1 for Ollama
    /// [default: http://127.0.0.1:11434/v1]
    #[arg(long, env = "CHATROOM_AI_ENDPOINT", value_name = "URL")]
    pub ai_endpoint: Option<String>,
    /// Model name sent to the endpoint [default: llama3.2]
    #[arg(long, env = "CHATROOM_AI_MODEL", value_name = "NAME")]
    pub ai_model: Option<String>,
    /// File holding the API key (first line); otherwise the key is read from
    /// CHATROOM_AI_API_KEY. Never pass a key on the command line.
    #[arg(long, env = "CHATROOM_AI_API_KEY_FILE", value_name = "FILE")]
    pub ai_api_key_file: Option<PathBuf>,
    /// The bot's account name, reserved for it [default: ai]
    #[arg(long, env = "CHATROOM_AI_NAME", value_name = "NAME")]
    pub ai_name: Option<String>,
    /// Instructions given to the model before the conversation
    #[arg(long, env = "CHATROOM_AI_SYSTEM_PROMPT", value_name = "TEXT")]
    pub ai_system_prompt: Option<String>,
    /// Recent messages given to the model as context [default: 30]
    #[arg(long, env = "CHATROOM_AI_CONTEXT_MESSAGES", value_name = "N")]
    pub ai_context_messages: Option<u32>,
    /// Most characters of context [default: 8000]
    #[arg(long, env = "CHATROOM_AI_CONTEXT_CHARS", value_name = "N")]
    pub ai_context_chars: Option<u32>,
    /// Answers generated at once [default: 2]
    #[arg(long, env = "CHATROOM_AI_CONCURRENCY", value_name = "N")]
    pub ai_concurrency: Option<u32>,
    /// Questions one user may ask per minute, 0 for no limit [default: 6]
    #[arg(long, env = "CHATROOM_AI_USER_PER_MINUTE", value_name = "N")]
    pub ai_user_per_minute: Option<u32>,
    /// Questions one room may ask per minute, 0 for no limit [default: 20]
    #[arg(long, env = "CHATROOM_AI_ROOM_PER_MINUTE", value_name = "N")]
    pub ai_room_per_minute: Option<u32>,
    /// Seconds to connect to the endpoint [default: 5]
    #[arg(long, env = "CHATROOM_AI_CONNECT_TIMEOUT_SECS", value_name = "SECS")]
    pub ai_connect_timeout_secs: Option<u64>,
    /// Seconds to wait for the first token, and between tokens [default: 30]
    #[arg(
        long,
        env = "CHATROOM_AI_FIRST_TOKEN_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    pub ai_first_token_timeout_secs: Option<u64>,
    /// Seconds a whole answer may take [default: 120]
    #[arg(long, env = "CHATROOM_AI_TIMEOUT_SECS", value_name = "SECS")]
    pub ai_timeout_secs: Option<u64>,
    /// Log filter: a level (error, warn, info, debug, trace) and TARGET=LEVEL items, e.g. info
    /// or warn,chatroom_server=debug [default: info when serving, warn for the one-shot
    /// commands]
    #[arg(long, env = "CHATROOM_LOG", value_name = "FILTER", global = true)]
    pub log: Option<String>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve clients (the default). Its settings (--listen and the others of `chatroom-server
    /// --help`) go before the word `serve`, or leave the word out.
    Serve,
    /// Maintain accounts while the server is stopped.
    #[command(subcommand)]
    User(UserCommand),
    /// Copy the database to FILE with SQLite's online backup; safe while the server runs.
    /// Uploaded files are in the data directory's files/ folder: copy it alongside.
    Backup {
        /// Where the copy goes; an existing file is never overwritten.
        file: PathBuf,
    },
    /// Check the database and its search index for corruption, and that every uploaded file
    /// it references is in the data directory's files/ folder; exits non-zero on problems.
    /// Safe while the server runs.
    Check,
}

/// Account maintenance.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (it joins `public`). The first account ever created is an admin.
    Add {
        /// The user name.
        name: String,
        /// Make the account a server admin.
        #[arg(long)]
        admin: bool,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set a new password; every session of the account is logged out.
    Passwd {
        /// The user name.
        name: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Log out every session of an account (a lost device, say); the password stays the same.
    Logout {
        /// The user name.
        name: String,
    },
    /// Lock an account out until `user unsuspend`: its sessions end and its logins are refused,
    /// with the reason. It keeps its rooms and messages.
    Suspend {
        /// The user name.
        name: String,
        /// Why, told to them when they try to log in.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a suspension.
    Unsuspend {
        /// The user name.
        name: String,
    },
    /// Make an account a server admin.
    Promote {
        /// The user name.
        name: String,
    },
    /// Take server admin away from an account.
    Demote {
        /// The user name.
        name: String,
    },
    /// List every account.
    List,
    /// Delete an account; its messages stay in history under its name.
    Delete {
        /// The user name.
        name: String,
    },
}

impl UserCommand {
    /// The `chatroom` client command that does the same on a running server.
    fn while_serving(&self) -> String {
        let (what, name) = match self {
            Self::Add { name, .. } => ("add", name),
            Self::Passwd { name, .. } => ("passwd", name),
            Self::Logout { name } => ("logout", name),
            Self::Suspend { name, .. } => ("suspend", name),
            Self::Unsuspend { name } => ("unsuspend", name),
            Self::Promote { name } => ("promote", name),
            Self::Demote { name } => ("demote", name),
            Self::Delete { name } => ("delete", name),
            Self::List => return "chatroom users (admins marked), chatroom user suspended".into(),
        };
        // A name the command would refuse anyway is not worth repeating.
        let name = if crate::auth::validate_username(name).is_ok() {
            name.as_str()
        } else {
            "NAME"
        };
        format!("chatroom user {what} {name}")
    }
}

/// Where a new password comes from: a file, or a prompt (never a command-line argument).
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of this file instead of prompting.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

impl PasswordSource {
    fn read(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(text.lines().next().unwrap_or_default().to_string());
        }
        if !std::io::stdin().is_terminal() {
            let mut line = String::new();
            // Nothing at all (a service, cron, `< /dev/null`) is not a password that is too
            // short.
            if std::io::stdin().read_line(&mut line)? == 0 {
                bail!(
                    "no password: standard input is not a terminal and is empty; \
                     pipe the password in or use --password-file FILE"
                );
            }
            return Ok(line.trim_end_matches(['\r', '\n']).to_string());
        }
        let first = rpassword::prompt_password("New password: ")?;
        let again = rpassword::prompt_password("Repeat it: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        Ok(first)
    }
}

/// A listening address: an IP address and a port. Said so when it is not one, as a bare port
/// or a host name are easily written (and `std`'s "invalid socket address syntax" says little).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "{text:?} is not an IP address and port: write 0.0.0.0:PORT for every interface, \
             127.0.0.1:PORT for this machine only, or one address of this machine \
             (a host name is not taken)"
        )
    })
}

/// [`listen_address`] for a key of the TOML file.
fn file_listen_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    listen_address(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The environment variable the AI API key is read from.
pub const AI_API_KEY_ENV: &str = "CHATROOM_AI_API_KEY";

/// The effective configuration: defaults, then the file, then environment and flags.
pub fn resolve_config(settings: &Settings) -> anyhow::Result<(Config, SocketAddr)> {
    resolve_config_with_key(settings, std::env::var(AI_API_KEY_ENV).ok())
}

/// [`resolve_config`] with the value of `CHATROOM_AI_API_KEY` passed in.
pub fn resolve_config_with_key(
    settings: &Settings,
    env_api_key: Option<String>,
) -> anyhow::Result<(Config, SocketAddr)> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct FileConfig {
        #[serde(deserialize_with = "file_listen_address")]
        listen: Option<SocketAddr>,
        #[serde(deserialize_with = "file_listen_address")]
        metrics_listen: Option<SocketAddr>,
        server_name: Option<String>,
        data_dir: Option<PathBuf>,
        registration: Option<RegistrationPolicy>,
        synchronous: Option<SyncMode>,
        limits: Option<crate::config::LimitsConfig>,
        files: Option<crate::config::FilesConfig>,
        ai: Option<AiConfig>,
    }
    let file: FileConfig = match &settings.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut config = Config::default();
    let mut listen: SocketAddr = DEFAULT_LISTEN.parse()?;
    if let Some(v) = file.listen {
        listen = v;
    }
    if let Some(v) = file.metrics_listen {
        config.metrics_listen = Some(v);
    }
    if let Some(v) = file.server_name {
        config.server_name = v;
    }
    if let Some(v) = file.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = file.registration {
        config.registration = v;
    }
    if let Some(v) = file.synchronous {
        config.synchronous = v;
    }
    if let Some(v) = file.limits {
        config.limits = v;
    }
    if let Some(v) = file.files {
        config.files = v;
    }
    if let Some(v) = file.ai {
        config.ai = v;
    }
    // clap has already put flags over environment variables.
    if let Some(v) = settings.listen {
        listen = v;
    }
    if let Some(v) = settings.metrics_listen {
        config.metrics_listen = Some(v);
    }
    if let Some(v) = &settings.server_name {
        config.server_name.clone_from(v);
    }
    if let Some(v) = &settings.data_dir {
        config.data_dir.clone_from(v);
    }
    if let Some(v) = settings.registration {
        config.registration = v;
    }
    if let Some(v) = settings.synchronous {
        config.synchronous = v;
    }
    let limits = &mut config.limits;
    let overrides = [
        (settings.max_message_chars, &mut limits.max_message_chars),
        (settings.max_frame_bytes, &mut limits.max_frame_bytes),
        (
            settings.messages_per_second,
            &mut limits.messages_per_second,
        ),
        (settings.message_burst, &mut limits.message_burst),
        (settings.max_connections, &mut limits.max_connections),
        (
            settings.max_connections_per_ip,
            &mut limits.max_connections_per_ip,
        ),
        (
            settings.registrations_per_ip_per_hour,
            &mut limits.registrations_per_ip_per_hour,
        ),
        (settings.heartbeat_secs, &mut limits.heartbeat_interval_secs),
        (settings.idle_timeout_secs, &mut limits.idle_timeout_secs),
        (
            settings.session_expiry_secs,
            &mut limits.session_expiry_secs,
        ),
    ];
    for (value, slot) in overrides {
        if let Some(v) = value {
            *slot = v;
        }
    }
    let files = &mut config.files;
    let overrides = [
        (settings.max_file_bytes, &mut files.max_file_bytes),
        (settings.file_quota_bytes, &mut files.quota_bytes),
        (settings.upload_expiry_secs, &mut files.upload_expiry_secs),
    ];
    for (value, slot) in overrides {
        if let Some(v) = value {
            *slot = v;
        }
    }
    apply_ai_settings(settings, &mut config.ai, env_api_key)?;
    // Clients take no larger frames than this (see the protocol crate), so a server allowed
    // more could send a history page every client drops the connection over.
    let most = chatroom_protocol::codec::MAX_FRAME_BYTES_ACCEPTED;
    if !(4096..=most).contains(&config.limits.max_frame_bytes) {
        bail!("max_frame_bytes must be between 4096 and {most}");
    }
    // A 0 here used to be read as 1 per second, the opposite of what anyone typing it means.
    for (name, value) in [
        ("messages_per_second", config.limits.messages_per_second),
        ("message_burst", config.limits.message_burst),
        // Read as 1 too: a 256 KiB chunk a second, for uploads and downloads alike.
        ("chunks_per_second", config.files.chunks_per_second),
    ] {
        if value == 0 {
            bail!(
                "{name} must be at least 1; there is no unlimited setting, \
                 use a large number such as 1000000"
            );
        }
    }
    // At 0 the server would refuse every message, or keep one session per account where an
    // admin may have meant "no limit", as 0 means for the connection limits.
    for (name, value) in [
        ("max_message_chars", config.limits.max_message_chars),
        (
            "max_sessions_per_account",
            config.limits.max_sessions_per_account,
        ),
    ] {
        if value == 0 {
            bail!("{name} must be at least 1");
        }
    }
    Ok((config, listen))
}

/// Puts the AI flags over the file's `[ai]` table and finds the API key: a key file named by
/// flag or environment, else `CHATROOM_AI_API_KEY`, else a key file named in the TOML file.
fn apply_ai_settings(
    settings: &Settings,
    ai: &mut AiConfig,
    env_api_key: Option<String>,
) -> anyhow::Result<()> {
    if let Some(v) = settings.ai_backend {
        ai.backend = v;
    }
    for (value, slot) in [
        (&settings.ai_endpoint, &mut ai.endpoint),
        (&settings.ai_model, &mut ai.model),
        (&settings.ai_name, &mut ai.name),
        (&settings.ai_system_prompt, &mut ai.system_prompt),
    ] {
        if let Some(v) = value {
            slot.clone_from(v);
        }
    }
    for (value, slot) in [
        (settings.ai_context_messages, &mut ai.context_messages),
        (settings.ai_context_chars, &mut ai.context_chars),
        (settings.ai_concurrency, &mut ai.max_concurrent),
        (settings.ai_user_per_minute, &mut ai.user_per_minute),
        (settings.ai_room_per_minute, &mut ai.room_per_minute),
    ] {
        if let Some(v) = value {
            *slot = v;
        }
    }
    for (value, slot) in [
        (settings.ai_connect_timeout_secs, &mut ai.connect_timeout_ms),
        (
            settings.ai_first_token_timeout_secs,
            &mut ai.first_token_timeout_ms,
        ),
        (settings.ai_timeout_secs, &mut ai.total_timeout_ms),
    ] {
        if let Some(v) = value {
            *slot = v.saturating_mul(1000);
        }
    }
    let key_file = match (&settings.ai_api_key_file, &env_api_key) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(_)) => None,
        (None, None) => ai.api_key_file.clone(),
    };
    ai.api_key = match key_file {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the AI key file {}", path.display()))?;
            let key = chatroom_ai::openai::ApiKey::new(text.lines().next().unwrap_or_default());
            if key.is_none() {
                bail!("the AI key file {} is empty", path.display());
            }
            key
        }
        None => env_api_key
            .as_deref()
            .and_then(chatroom_ai::openai::ApiKey::new),
    };
    if ai.backend != AiBackendKind::Off {
        crate::auth::validate_username(&ai.name)
            .map_err(|e| anyhow::anyhow!("--ai-name {:?}: {e}", ai.name))?;
    }
    if ai.max_concurrent == 0 {
        bail!("--ai-concurrency must be at least 1");
    }
    if ai.max_reply_messages == 0 {
        bail!("max_reply_messages must be at least 1");
    }
    if ai.backend == AiBackendKind::Openai {
        crate::ai::check_config(ai).map_err(|e| {
            anyhow::anyhow!("--ai-endpoint {:?}: {e}", without_userinfo(&ai.endpoint))
        })?;
    }
    Ok(())
}

/// `url` with any `user:password@` before its host replaced by `…@`: an endpoint refused for
/// holding credentials must not print them into the log.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            let separator = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{separator}…@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// Runs the command line; the binary's `main`.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::try_parse().unwrap_or_else(|e| exit_on_parse_error(&e));
    let command = cli.command.unwrap_or(Command::Serve);
    // The server logs what it does; a one-shot command prints its result, and its log (the
    // database migrated on a new data dir, say) is noise unless something goes wrong.
    let default_level = match command {
        Command::Serve => "info",
        Command::User(_) | Command::Backup { .. } | Command::Check => "warn",
    };
    init_logging(cli.settings.log.as_deref(), default_level)?;
    let (config, listen) = resolve_config(&cli.settings)?;
    match command {
        Command::Serve => serve(config, listen),
        Command::User(command) => user_command(&config, command),
        Command::Backup { file } => backup_command(&config, &file),
        Command::Check => check_command(&config),
    }
}

/// Prints clap's error and exits. clap names the flag of a bad value even when the value came
/// from the flag's environment variable (a unit file's `Environment=`, say), so that variable
/// is named too.
fn exit_on_parse_error(error: &clap::Error) -> ! {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let _ = error.print();
    let bad_value = matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    );
    let flag = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if bad_value => arg.split_whitespace().next(),
        _ => None,
    };
    let given_as_flag = |flag: &str| {
        std::env::args()
            .skip(1)
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if let Some(flag) = flag.filter(|f| !given_as_flag(f)) {
        let env = Cli::command()
            .get_arguments()
            .find(|a| a.get_long().is_some_and(|long| flag == format!("--{long}")))
            .and_then(|a| a.get_env())
            .map(|env| env.to_string_lossy().into_owned());
        if let Some(env) = env.filter(|env| std::env::var_os(env).is_some()) {
            eprintln!("note: the value comes from the environment variable {env}");
        }
    }
    std::process::exit(error.exit_code())
}

fn init_logging(filter: Option<&str>, default_level: &str) -> anyhow::Result<()> {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default_level.to_string());
    // A bare word that is not a level ("warning", "inof") is a target to EnvFilter: everything
    // else, errors included, would go unlogged. A target alone is refused too; NAME=LEVEL says
    // the same unmistakably.
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if let Some(word) = filter.split(',').map(str::trim).find(|d| {
        !d.is_empty()
            && !d.contains(['=', '[', ':'])
            && !LEVELS.contains(&d.to_ascii_lowercase().as_str())
            && d.parse::<u8>().is_err()
    }) {
        bail!(
            "--log {filter:?} (or CHATROOM_LOG, RUST_LOG): {word:?} is not a level (off, error, \
             warn, info, debug, trace); a target takes one: {word}=debug"
        );
    }
    // `EnvFilter::new` drops a directive it cannot parse, and with it the whole log: a typo
    // would leave the server silent about everything but errors.
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| {
        anyhow::anyhow!(
            "--log {filter:?} (or CHATROOM_LOG, RUST_LOG): {e}; \
             try info, debug or chatroom_server=debug"
        )
    })?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // Its report of a failed write goes to stderr with `eprintln!`, which panics when
        // stderr is closed: a closed log pipe must not take the server down.
        .log_internal_errors(false)
        .try_init();
    Ok(())
}

/// Prints a line on stdout for whoever started the server. A stdout nobody reads any more (the
/// server piped into `head -1`) is no reason to stop serving: `println!` would panic there.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        tracing::debug!(error = %e, "stdout is closed; the line is dropped");
    }
}

fn serve(config: Config, listen: SocketAddr) -> anyhow::Result<()> {
    let created_data_dir = !config.data_dir.exists();
    let lock = DataDirLock::acquire(&config.data_dir)?;
    crate::admin::refuse_unwritable_database(&config.database_path()).map_err(|e| {
        anyhow::anyhow!(
            "{:#}; the server writes to it (logins, messages): fix its owner or mode, then start \
             again",
            anyhow::Error::new(e)
        )
    })?;
    if !created_data_dir {
        warn_if_open_to_others(&config.data_dir);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("chatroom-server")
        .build()?;
    // The database first: one this build cannot use (a newer schema) stops the server before it
    // has said it listens.
    let started = runtime.block_on(async {
        let opened = crate::open(&config).await?;
        match bind(listen, config.metrics_listen).await {
            Ok((listener, metrics)) => Ok((opened, listener, metrics)),
            Err(e) => {
                opened.close();
                Err(e)
            }
        }
    });
    let (opened, listener, metrics) = match started {
        Ok(started) => started,
        Err(e) => {
            drop(lock);
            // A data directory this start created holds nothing but what the start put there
            // (an empty database, the lock): no trace of a server that never ran.
            if created_data_dir && let Err(cleanup) = std::fs::remove_dir_all(&config.data_dir) {
                tracing::warn!(error = %cleanup, "cannot remove the data directory just created");
            }
            return Err(e);
        }
    };
    let local = listener.local_addr()?;
    warn_if_nobody_can_add_accounts(&config);
    let data_dir = std::fs::canonicalize(&config.data_dir)
        .or_else(|_| std::path::absolute(&config.data_dir))
        .unwrap_or_else(|_| config.data_dir.clone());
    say(format_args!(
        "chatroom-server listening on {local}, data in {}{}",
        data_dir.display(),
        if opened.created_database {
            " (a new, empty database was created there)"
        } else {
            ""
        }
    ));
    if let Some(addr) = metrics.as_ref().and_then(|m| m.local_addr().ok()) {
        say(format_args!(
            "health and metrics on http://{addr}/health and http://{addr}/metrics"
        ));
    }
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        crate::serve_opened(opened, listener, metrics, config, shutdown).await
    })?;
    drop(lock);
    // Blocking-pool threads (a password hash in progress) must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// Warns when nobody could get an account: registration closed and no server admin to add
/// one, so that only stopping the server and `user add --admin` helps.
fn warn_if_nobody_can_add_accounts(config: &Config) {
    if config.registration != RegistrationPolicy::Closed {
        return;
    }
    match crate::maintenance::has_admin(&config.database_path()) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "registration is closed and no account is a server admin, so nobody can add \
             accounts; stop the server and run `chatroom-server user add NAME --admin`"
        ),
        Err(e) => tracing::debug!(error = %e, "cannot tell whether there is a server admin"),
    }
}

/// Warns when other accounts of the machine may read the data directory: it holds every direct
/// message. (New ones are created owner-only; this is for one made by hand or by an older
/// version.)
fn warn_if_open_to_others(data_dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(data_dir) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    data_dir = %data_dir.display(),
                    mode = %format_args!("{mode:03o}"),
                    "the data directory is readable by other accounts of this machine; \
                     `chmod 700` it (it holds every direct message)"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
}

/// Binds the chat port and, when asked for, the health and metrics port.
async fn bind(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
) -> anyhow::Result<(tokio::net::TcpListener, Option<tokio::net::TcpListener>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let metrics = match metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for health and metrics on {addr}"))?,
        ),
        None => None,
    };
    Ok((listener, metrics))
}

async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    let signal = {
        use tokio::signal::unix::{SignalKind, signal};
        // SIGHUP too (the terminal of a server started by hand closing): by default it would
        // end the process on the spot, clients untold and nothing logged.
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hangup)) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                    _ = hangup.recv() => "SIGHUP",
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    };
    #[cfg(not(unix))]
    let signal = {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    };
    tracing::info!(signal, "shutting down");
    shutdown.cancel();
}

fn backup_command(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let database = config.database_path();
    let report = crate::maintenance::backup(&database, file)?;
    println!(
        "backed up {} to {}: {} pages of {} bytes, {} bytes in all (schema version {})",
        database.display(),
        file.display(),
        report.pages,
        report.page_size,
        report.bytes,
        report.schema_version
    );
    println!(
        "uploaded files are not in the copy: copy {} alongside it",
        config.data_dir.join("files").display()
    );
    Ok(())
}

fn check_command(config: &Config) -> anyhow::Result<()> {
    let database = config.database_path();
    let report = crate::maintenance::check(&database)?;
    match (report.schema_version, report.pages) {
        (Some(version), Some(pages)) => println!(
            "{}: schema version {version}, {pages} pages",
            database.display()
        ),
        _ => println!("{}: too damaged to read its schema", database.display()),
    }
    let readable = report.pages.is_some();
    for (what, problems, checked) in [
        ("database", &report.database_problems, true),
        ("search index", &report.search_problems, readable),
    ] {
        if !checked {
            println!("{what}: not checked");
        } else if problems.is_empty() {
            println!("{what}: ok");
        }
        for problem in problems {
            println!("{what}: {problem}");
        }
    }
    let mut found = report.database_problems.len() + report.search_problems.len();
    if readable {
        let files = crate::maintenance::missing_files(&database, &config.data_dir)?;
        let folder = config.data_dir.join("files");
        if files.missing == 0 {
            println!(
                "files: ok ({} stored contents in {})",
                files.checked,
                folder.display()
            );
        } else {
            let ids: Vec<String> = files.examples.iter().map(u64::to_string).collect();
            println!(
                "files: {} referenced file{} missing from {} (ids {}{})",
                files.missing,
                if files.missing == 1 { " is" } else { "s are" },
                folder.display(),
                ids.join(", "),
                if files.missing > files.examples.len() as u64 {
                    ", …"
                } else {
                    ""
                }
            );
            found += 1;
        }
    } else {
        println!("files: not checked");
    }
    if found > 0 {
        // The data directory: a missing upload is not a fault of the database file.
        bail!(
            "{found} problem{} found in {}",
            if found == 1 { "" } else { "s" },
            config.data_dir.display()
        );
    }
    Ok(())
}

fn user_command(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    // Only `user add` may start a new database: anything else on a mistyped --data-dir would
    // quietly create one there and report an empty server.
    let database = config.database_path();
    if !matches!(command, UserCommand::Add { .. })
        && !database.exists()
        && !config.data_dir.is_file()
    {
        anyhow::bail!(
            "there is no Chat-Room database at {} (is --data-dir right? `user add` starts a new one)",
            database.display()
        );
    }
    let mut admin = match Admin::open_for(config) {
        Err(AdminError::ServerRunning(data_dir)) => bail!(
            "a chatroom-server is running on {data_dir}: stop it first, or, while it runs, as a \
             server admin: {}",
            command.while_serving()
        ),
        opened => opened?,
    };
    match command {
        UserCommand::Add {
            name,
            admin: make_admin,
            password,
        } => {
            let password = password.read()?;
            let user = admin.add_user(&name, &password, make_admin)?;
            println!(
                "created {}{}",
                user.name,
                if user.is_admin { " (admin)" } else { "" }
            );
        }
        UserCommand::Passwd { name, password } => {
            let password = password.read()?;
            admin.set_password(&name, &password)?;
            println!("password of {name} changed; its sessions are logged out");
        }
        UserCommand::Logout { name } => {
            admin.logout_user(&name)?;
            println!("every session of {name} is logged out");
        }
        UserCommand::Suspend { name, reason } => {
            admin.suspend_user(&name, reason)?;
            println!("{name} is suspended; its sessions are logged out");
        }
        UserCommand::Unsuspend { name } => {
            admin.unsuspend_user(&name)?;
            println!("{name} may log in again");
        }
        UserCommand::Promote { name } => match admin.set_admin(&name, true)? {
            (user, true) => println!("{} is now an admin", user.name),
            (user, false) => println!("{} is already an admin", user.name),
        },
        UserCommand::Demote { name } => {
            match admin.set_admin(&name, false)? {
                (user, true) => println!("{} is no longer an admin", user.name),
                (user, false) => println!("{} is not an admin", user.name),
            }
            if !admin.users()?.iter().any(|u| u.is_admin) {
                eprintln!(
                    "note: nobody is an admin now; `chatroom-server user promote NAME` makes one"
                );
            }
        }
        UserCommand::List => {
            let suspended: Vec<String> = admin
                .suspensions()?
                .into_iter()
                .map(|s| s.username)
                .collect();
            for user in admin.users()? {
                let what = if user.is_admin {
                    "\tadmin"
                } else if admin.is_bot(user.id)? {
                    "\tbot"
                } else {
                    ""
                };
                let suspension = if suspended.contains(&user.name) {
                    "\tsuspended"
                } else {
                    ""
                };
                println!("{}\t{}{what}{suspension}", user.id, user.name);
            }
        }
        UserCommand::Delete { name } => {
            admin.delete_user(&name)?;
            println!("deleted {name}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let cli = Cli::try_parse_from(["chatroom-server"]).expect("parse");
        let (config, listen) = resolve_config_with_key(&cli.settings, None).expect("resolve");
        assert_eq!(listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.ai.backend, crate::config::AiBackendKind::Builtin);
        assert_eq!(config.data_dir, PathBuf::from("chatroom-data"));
        assert_eq!(config.registration, RegistrationPolicy::Open);
        assert_eq!(config.limits.max_message_chars, 4000);
        assert_eq!(
            config.limits.session_expiry(),
            Some(std::time::Duration::from_secs(30 * 24 * 3600))
        );
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("server.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nserver_name = \"from file\"\nregistration = \"closed\"\n\
             [limits]\nmax_message_chars = 500\nmessages_per_second = 7\n",
        )
        .expect("write");
        let path = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from([
            "chatroom-server",
            "--config",
            path,
            "--server-name",
            "from flag",
            "--max-message-chars",
            "900",
            "--session-expiry-secs",
            "0",
        ])
        .expect("parse");
        let (config, listen) = resolve_config(&cli.settings).expect("resolve");
        assert_eq!(config.limits.session_expiry(), None, "0 means never");
        assert_eq!(listen.to_string(), "127.0.0.1:9000", "file over default");
        assert_eq!(config.server_name, "from flag", "flag over file");
        assert_eq!(config.registration, RegistrationPolicy::Closed);
        assert_eq!(config.limits.max_message_chars, 900, "flag over file");
        assert_eq!(config.limits.messages_per_second, 7, "file over default");
        assert_eq!(
            config.limits.idle_timeout_secs, 90,
            "unset keys keep defaults"
        );
    }

    #[test]
    fn a_zero_message_rate_is_refused_not_read_as_one_per_second() {
        for flag in ["--messages-per-second", "--message-burst"] {
            let cli = Cli::try_parse_from(["chatroom-server", flag, "0"]).expect("parse");
            let error = resolve_config_with_key(&cli.settings, None)
                .expect_err("0 is refused")
                .to_string();
            assert!(error.contains("at least 1"), "{flag}: {error}");
        }
        let cli = Cli::try_parse_from(["chatroom-server", "--messages-per-second", "1000000"])
            .expect("parse");
        let (config, _) = resolve_config_with_key(&cli.settings, None).expect("resolve");
        assert_eq!(config.limits.messages_per_second, 1_000_000);
    }

    #[test]
    fn the_frame_limit_stays_within_what_clients_accept() {
        let limit = |value: &str| {
            let cli = Cli::try_parse_from(["chatroom-server", "--max-frame-bytes", value])
                .expect("parse");
            resolve_config_with_key(&cli.settings, None).map(|(c, _)| c.limits.max_frame_bytes)
        };
        assert_eq!(limit("16777216").expect("the most"), 16 << 20);
        for too in ["4095", "16777217"] {
            let error = limit(too).expect_err("refused").to_string();
            assert!(
                error.contains("between 4096 and 16777216"),
                "{too}: {error}"
            );
        }
    }

    #[test]
    fn ai_settings_layer_like_the_others_and_the_key_never_comes_from_toml() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("server.toml");
        std::fs::write(
            &file,
            "[ai]\nbackend = \"openai\"\nmodel = \"from-file\"\nendpoint = \"http://lan:11434/v1\"\n",
        )
        .expect("write");
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, "sk-from-file\n").expect("write key");
        let path = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from([
            "chatroom-server",
            "--config",
            path,
            "--ai-model",
            "from-flag",
            "--ai-timeout-secs",
            "7",
        ])
        .expect("parse");
        let (config, _) =
            resolve_config_with_key(&cli.settings, Some("sk-from-env".into())).expect("resolve");
        assert_eq!(
            config.ai.backend,
            AiBackendKind::Openai,
            "file over default"
        );
        assert_eq!(config.ai.model, "from-flag", "flag over file");
        assert_eq!(config.ai.endpoint, "http://lan:11434/v1");
        assert_eq!(config.ai.total_timeout_ms, 7000);
        assert_eq!(config.ai.name, "ai");
        let key = config
            .ai
            .api_key
            .as_ref()
            .expect("key from the environment");
        assert_eq!(key.expose(), "sk-from-env");
        assert!(
            !format!("{config:?}").contains("sk-from-env"),
            "Debug hides it"
        );

        let cli = Cli::try_parse_from([
            "chatroom-server",
            "--ai-api-key-file",
            key_file.to_str().expect("utf-8"),
        ])
        .expect("parse");
        let (config, _) =
            resolve_config_with_key(&cli.settings, Some("sk-from-env".into())).expect("resolve");
        assert_eq!(
            config.ai.api_key.as_ref().map(|k| k.expose()),
            Some("sk-from-file"),
            "a key file given by flag wins over the environment"
        );
        assert_eq!(config.ai.backend, AiBackendKind::Builtin, "the default");

        std::fs::write(&file, "[ai]\napi_key = \"sk-in-toml\"\n").expect("write");
        let cli = Cli::try_parse_from(["chatroom-server", "--config", path]).expect("parse");
        assert!(resolve_config_with_key(&cli.settings, None).is_err());
        let cli =
            Cli::try_parse_from(["chatroom-server", "--ai-name", "not valid"]).expect("parse");
        assert!(resolve_config_with_key(&cli.settings, None).is_err());
    }

    #[test]
    fn the_metrics_endpoint_is_off_by_default_and_layers_like_the_others() {
        let cli = Cli::try_parse_from(["chatroom-server"]).expect("parse");
        let (config, _) = resolve_config_with_key(&cli.settings, None).expect("resolve");
        assert_eq!(config.metrics_listen, None, "off by default");

        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "metrics_listen = \"127.0.0.1:9100\"\n").expect("write");
        let path = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from(["chatroom-server", "--config", path]).expect("parse");
        let (config, _) = resolve_config_with_key(&cli.settings, None).expect("resolve");
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9100".parse().expect("addr")),
            "file over default"
        );
        let cli = Cli::try_parse_from([
            "chatroom-server",
            "--config",
            path,
            "--metrics-listen",
            "127.0.0.1:9200",
        ])
        .expect("parse");
        let (config, _) = resolve_config_with_key(&cli.settings, None).expect("resolve");
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9200".parse().expect("addr")),
            "flag over file"
        );

        std::fs::write(&file, "metrics_listen = \"not an address\"\n").expect("write");
        let cli = Cli::try_parse_from(["chatroom-server", "--config", path]).expect("parse");
        assert!(resolve_config_with_key(&cli.settings, None).is_err());
    }

    #[test]
    fn backup_and_check_take_the_data_dir_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "chatroom-server",
            "backup",
            "copy.sqlite3",
            "--data-dir",
            "elsewhere",
        ])
        .expect("parse");
        assert!(
            matches!(&cli.command, Some(Command::Backup { file }) if file == &PathBuf::from("copy.sqlite3"))
        );
        assert_eq!(cli.settings.data_dir, Some(PathBuf::from("elsewhere")));
        let cli = Cli::try_parse_from(["chatroom-server", "check", "--data-dir", "elsewhere"])
            .expect("parse");
        assert!(matches!(cli.command, Some(Command::Check)));
        assert!(
            Cli::try_parse_from(["chatroom-server", "backup"]).is_err(),
            "FILE is required"
        );
    }

    #[test]
    fn the_one_shot_commands_offer_only_what_applies_to_them() {
        for command in [
            &["user", "--help"][..],
            &["backup", "--help"],
            &["check", "--help"],
        ] {
            let help = Cli::try_parse_from(
                std::iter::once("chatroom-server").chain(command.iter().copied()),
            )
            .expect_err("help is shown")
            .to_string();
            // Help is wrapped to the terminal's width when clap's `wrap_help` is on, as it is in
            // a workspace build (divan, the bench crate's, turns it on): compare the words.
            let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(help.contains("--data-dir"), "{command:?}: {help}");
            assert!(!help.contains("--listen"), "{command:?}: {help}");
            assert!(!help.contains("created if missing"), "{command:?}: {help}");
            assert!(
                help.contains("Configuration reference"),
                "{command:?}: {help}"
            );
        }
        let top = Cli::try_parse_from(["chatroom-server", "--help"])
            .expect_err("help is shown")
            .to_string();
        assert!(top.contains("--listen"), "{top}");
        // `serve --listen …` is refused; its help says where the settings go instead.
        assert!(Cli::try_parse_from(["chatroom-server", "serve", "--listen", "[::]:1"]).is_err());
        let serve = Cli::try_parse_from(["chatroom-server", "serve", "--help"])
            .expect_err("help is shown")
            .to_string();
        let words = serve.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("go before the word `serve`"), "{serve}");
        let cli = Cli::try_parse_from(["chatroom-server", "--listen", "[::]:1", "serve"])
            .expect("settings before serve");
        assert!(matches!(cli.command, Some(Command::Serve)));
    }

    /// The TOML block of the README's "Configuration reference".
    fn readme_reference() -> String {
        let readme = include_str!("../../README.md");
        let section = readme
            .split_once("#### Configuration reference")
            .expect("the README has a configuration reference")
            .1;
        let block = section.split_once("```toml\n").expect("a TOML block").1;
        block
            .split_once("```")
            .expect("the block ends")
            .0
            .to_string()
    }

    #[test]
    fn the_readme_configuration_reference_lists_every_key_at_its_default() {
        let reference = readme_reference();
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("reference.toml");
        std::fs::write(&file, &reference).expect("write");
        let path = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from(["chatroom-server", "--config", path]).expect("parse");
        let (config, listen) = resolve_config_with_key(&cli.settings, None).expect("resolve");
        assert_eq!(listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            format!("{config:?}"),
            format!("{:?}", Config::default()),
            "every value in the reference is the default"
        );
        // Every key the file accepts, as serde lists them for an unknown one, is there.
        for table in ["", "[limits]\n", "[files]\n", "[ai]\n"] {
            std::fs::write(&file, format!("{table}no_such_key = 1\n")).expect("write");
            let error = format!(
                "{:#}",
                resolve_config_with_key(&cli.settings, None).expect_err("unknown key")
            );
            let expected = error
                .split_once("expected one of ")
                .unwrap_or_else(|| panic!("no key list in {error}"))
                .1;
            for key in expected.split(", ") {
                let key = key.trim().trim_matches('`');
                let listed = reference.lines().any(|line| {
                    line.trim_start_matches("# ")
                        .starts_with(&format!("{key} "))
                });
                // The tables themselves are headers in the reference.
                let table = reference.contains(&format!("[{key}]"));
                assert!(
                    listed || table,
                    "{key} is missing from the README's reference"
                );
            }
        }
    }

    #[test]
    fn credentials_in_a_refused_endpoint_are_not_repeated() {
        assert_eq!(
            without_userinfo("http://me:sk-secret@lan:11434/v1"),
            "http://…@lan:11434/v1"
        );
        assert_eq!(
            without_userinfo("https://sk-secret@host/v1?a=b@c"),
            "https://…@host/v1?a=b@c"
        );
        assert_eq!(
            without_userinfo("http://lan:11434/v1/x@y"),
            "http://lan:11434/v1/x@y"
        );
        let cli = Cli::try_parse_from([
            "chatroom-server",
            "--ai-backend",
            "openai",
            "--ai-endpoint",
            "http://me:sk-secret@127.0.0.1:11434/v1",
        ])
        .expect("parse");
        let error = format!(
            "{:#}",
            resolve_config_with_key(&cli.settings, None).expect_err("refused")
        );
        assert!(error.contains("credentials"), "{error}");
        assert!(!error.contains("sk-secret"), "{error}");
    }

    #[test]
    fn a_listen_address_that_is_not_one_says_what_is_wanted() {
        for value in ["8888", "localhost:8888", "0.0.0.0"] {
            let error = Cli::try_parse_from(["chatroom-server", "--listen", value])
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains("is not an IP address and port") && error.contains("0.0.0.0:PORT"),
                "{value}: {error}"
            );
        }
        let error = Cli::try_parse_from(["chatroom-server", "--metrics-listen", "9100"])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("127.0.0.1:PORT"), "{error}");
        let cli = Cli::try_parse_from(["chatroom-server", "--listen", "[::1]:8888"]).expect("v6");
        assert_eq!(
            cli.settings.listen,
            Some("[::1]:8888".parse().expect("addr"))
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "listen = \"8888\"\n").expect("write");
        let path = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from(["chatroom-server", "--config", path]).expect("parse");
        let error = format!(
            "{:#}",
            resolve_config_with_key(&cli.settings, None).expect_err("refused")
        );
        assert!(
            error.contains("is not an IP address and port") && error.contains("line 1"),
            "{error}"
        );
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n").expect("write");
        let (_, listen) = resolve_config_with_key(&cli.settings, None).expect("resolve");
        assert_eq!(listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn a_reply_may_fill_at_least_one_message() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "[ai]\nmax_reply_messages = 0\n").expect("write");
        let path = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from(["chatroom-server", "--config", path]).expect("parse");
        let error = format!(
            "{:#}",
            resolve_config_with_key(&cli.settings, None).expect_err("0 is refused")
        );
        assert!(
            error.contains("max_reply_messages must be at least 1"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "[limits]\nmax_mesage_chars = 5\n").expect("write");
        let path = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from(["chatroom-server", "--config", path]).expect("parse");
        assert!(resolve_config(&cli.settings).is_err());
    }
}
