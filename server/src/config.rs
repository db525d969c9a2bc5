//! Server configuration: where data lives, who may register, and every limit.
//!
//! [`Config::default`] is what `chatroom-server` runs with when given nothing. The binary layers
//! a TOML file, `CHATROOM_*` environment variables and flags on top (see `cli`); tests build a
//! `Config` directly.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server needs to run.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Shown to clients in `Welcome`.
    pub server_name: String,
    /// Holds `chatroom.sqlite3`, uploaded files (`files/`) and uploads in progress
    /// (`uploads/`). Created if missing.
    pub data_dir: PathBuf,
    /// Who may create accounts over the network.
    pub registration: RegistrationPolicy,
    /// SQLite durability: `full` fsyncs every commit (the default), `normal` may lose the last
    /// commits on power loss (never on a crash of the server alone).
    pub synchronous: SyncMode,
    /// Every bound the server enforces.
    pub limits: LimitsConfig,
    /// The AI bot.
    pub ai: AiConfig,
    /// File transfer: sizes, quotas, expiry.
    pub files: FilesConfig,
    /// Where to serve `GET /health` and `GET /metrics` over HTTP (see [`crate::metrics`]);
    /// `None`, the default, serves neither.
    pub metrics_listen: Option<SocketAddr>,
}

/// File transfer settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Bytes of files (stored and in progress) one user may have, 0 for no quota.
    pub quota_bytes: u64,
    /// An upload nobody has touched for this long is discarded and its space reclaimed (seconds).
    pub upload_expiry_secs: u64,
    /// Largest upload chunk and download read, in bytes (capped to fit a frame).
    pub chunk_bytes: u32,
    /// Upload chunks a client may have in flight at once.
    pub window: u32,
    /// Upload chunks plus file reads per second per connection (at the default chunk size, 4096
    /// is 1 GiB/s: a guard against a flood, not a speed limit on a LAN).
    pub chunks_per_second: u32,
    /// Downloaded chunks that may wait in one connection's queue; reading more waits for the
    /// client to take them, so a slow downloader costs memory, never a thread.
    pub download_queue_chunks: u32,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 30,
            quota_bytes: 10 << 30,
            upload_expiry_secs: 24 * 60 * 60,
            chunk_bytes: 256 * 1024,
            window: 8,
            chunks_per_second: 4096,
            download_queue_chunks: 8,
        }
    }
}

/// Who may register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Anyone who can reach the server.
    Open,
    /// Only admins (over the network, or with `chatroom-server user add`).
    Closed,
}

/// SQLite's `synchronous` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync at every commit.
    Full,
    /// fsync at checkpoints only (WAL): survives a server crash, not a power cut.
    Normal,
}

/// The server's limits. Each breach gives the peer a typed error.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame_bytes: u32,
    /// Longest message, in characters.
    pub max_message_chars: u32,
    /// Most messages in one history page.
    pub max_history_page: u32,
    /// Sustained messages per second per connection.
    pub messages_per_second: u32,
    /// Burst allowance on top of the sustained rate.
    pub message_burst: u32,
    /// Connections at once, in total (0 = unlimited).
    pub max_connections: u32,
    /// Connections at once from one IP address (0 = unlimited).
    pub max_connections_per_ip: u32,
    /// Failed logins per IP address per minute before further attempts are refused (0 =
    /// unlimited).
    pub login_failures_per_ip: u32,
    /// Failed logins per account per minute before further attempts are refused (0 =
    /// unlimited).
    pub login_failures_per_account: u32,
    /// Accounts one IP address may register per hour (0 = unlimited); admins creating accounts
    /// are not counted.
    pub registrations_per_ip_per_hour: u32,
    /// Frames that may wait for a slow client before it is dropped as too slow.
    pub outbound_queue_frames: u32,
    /// Ping a connection that has been quiet this long (seconds).
    pub heartbeat_interval_secs: u32,
    /// Drop a connection that has sent nothing for this long (seconds).
    pub idle_timeout_secs: u32,
    /// How long a new connection has to send `Hello` (seconds).
    pub handshake_timeout_secs: u32,
    /// Typing notifications forwarded per room per connection, at most one per this many ms.
    pub typing_interval_ms: u32,
    /// A session unused for this long no longer resumes and is deleted, so a lost or stolen
    /// token stops working on its own (seconds, 0 = never). Being connected counts as use.
    pub session_expiry_secs: u32,
    /// Sessions (logins not logged out) one account keeps, at least 1: a login beyond it ends
    /// the least recently used ones not held by a connection (see [`crate::sessions`]).
    pub max_sessions_per_account: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: "Chat-Room".to_string(),
            data_dir: PathBuf::from("chatroom-data"),
            registration: RegistrationPolicy::Open,
            synchronous: SyncMode::Full,
            limits: LimitsConfig::default(),
            files: FilesConfig::default(),
            ai: AiConfig::default(),
            metrics_listen: None,
        }
    }
}

/// Where the AI bot's answers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AiBackendKind {
    /// The offline built-in assistant (summaries, who, stats).
    Builtin,
    /// An OpenAI-compatible Chat Completions endpoint (Ollama, llama.cpp, vLLM, hosted).
    Openai,
    /// No bot at all.
    Off,
}

/// The AI bot: its account, its model, and the bounds on what it may cost.
///
/// The API key is never read from this table (a config file is easily shared): it comes from
/// `CHATROOM_AI_API_KEY` or the file named by `api_key_file`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// `builtin` (the default), `openai`, or `off`.
    pub backend: AiBackendKind,
    /// The bot's reserved account name; nobody else can register it.
    pub name: String,
    /// The OpenAI-compatible API's base URL.
    pub endpoint: String,
    /// The model name sent to the endpoint.
    pub model: String,
    /// A file whose first line is the API key.
    pub api_key_file: Option<PathBuf>,
    /// The key itself, filled in from the environment or `api_key_file` (never from TOML).
    #[serde(skip)]
    pub api_key: Option<chatroom_ai::openai::ApiKey>,
    /// Instructions given to the model before the conversation.
    pub system_prompt: String,
    /// Most recent messages given as context.
    pub context_messages: u32,
    /// Most characters of context (older messages are dropped first).
    pub context_chars: u32,
    /// Answers being generated at once.
    pub max_concurrent: u32,
    /// Questions that may wait for a free slot; beyond this the bot says it is busy.
    pub max_waiting: u32,
    /// Questions one user may ask per minute, across rooms (0 = unlimited).
    pub user_per_minute: u32,
    /// Questions one room may ask per minute (0 = unlimited).
    pub room_per_minute: u32,
    /// Connecting to the endpoint, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Waiting for the first token, and between tokens, in milliseconds.
    pub first_token_timeout_ms: u64,
    /// A whole answer, in milliseconds.
    pub total_timeout_ms: u64,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a probe, in milliseconds.
    pub breaker_cooldown_ms: u64,
    /// Streamed drafts go out at most this often, in milliseconds.
    pub draft_interval_ms: u64,
    /// Messages one reply may fill when it is longer than `limits.max_message_chars`; past
    /// the last one the reply is cut (at least 1).
    pub max_reply_messages: u32,
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            backend: AiBackendKind::Builtin,
            name: "ai".to_string(),
            endpoint: "http://127.0.0.1:11434/v1".to_string(),
            model: "llama3.2".to_string(),
            api_key_file: None,
            api_key: None,
            system_prompt: "You are a helpful assistant in a team chat. Answer briefly and \
                            plainly, in the language of the question."
                .to_string(),
            context_messages: 30,
            context_chars: 8000,
            max_concurrent: 2,
            max_waiting: 16,
            user_per_minute: 6,
            room_per_minute: 20,
            connect_timeout_ms: 5_000,
            first_token_timeout_ms: 30_000,
            total_timeout_ms: 120_000,
            breaker_failures: 3,
            breaker_cooldown_ms: 30_000,
            draft_interval_ms: 100,
            max_reply_messages: 4,
        }
    }
}

impl AiConfig {
    /// The backend's stage timeouts.
    pub fn timeouts(&self) -> chatroom_ai::openai::Timeouts {
        chatroom_ai::openai::Timeouts {
            connect: Duration::from_millis(self.connect_timeout_ms.max(1)),
            first_token: Duration::from_millis(self.first_token_timeout_ms.max(1)),
            total: Duration::from_millis(self.total_timeout_ms.max(1)),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: chatroom_protocol::codec::DEFAULT_MAX_FRAME_BYTES,
            max_message_chars: 4000,
            max_history_page: 200,
            messages_per_second: 20,
            message_burst: 50,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            login_failures_per_ip: 30,
            login_failures_per_account: 10,
            outbound_queue_frames: 4096,
            heartbeat_interval_secs: 30,
            idle_timeout_secs: 90,
            handshake_timeout_secs: 10,
            typing_interval_ms: 2000,
            session_expiry_secs: 30 * 24 * 3600,
            max_sessions_per_account: 100,
            registrations_per_ip_per_hour: 30,
        }
    }
}

impl Config {
    /// A configuration with defaults and the given data directory.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("chatroom.sqlite3")
    }

    /// The chunk size actually used: the configured one, capped so a chunk and its frame fit
    /// the frame limit.
    pub fn chunk_bytes(&self) -> u32 {
        let room = self.limits.max_frame_bytes.saturating_sub(1024).max(1024);
        self.files.chunk_bytes.clamp(1024, room)
    }
}

impl LimitsConfig {
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_interval_secs.max(1)))
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.idle_timeout_secs.max(1)))
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.handshake_timeout_secs.max(1)))
    }

    /// How long an unused session lives, `None` for ever.
    pub(crate) fn session_expiry(&self) -> Option<Duration> {
        (self.session_expiry_secs > 0)
            .then(|| Duration::from_secs(u64::from(self.session_expiry_secs)))
    }

    /// The most sessions one account keeps (at least 1).
    pub(crate) fn session_cap(&self) -> usize {
        usize::try_from(self.max_sessions_per_account.max(1)).unwrap_or(usize::MAX)
    }

    /// What clients are told in `Welcome`.
    pub(crate) fn advertised(&self) -> chatroom_protocol::Limits {
        chatroom_protocol::Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_message_chars: self.max_message_chars,
            max_history_page: self.max_history_page,
            messages_per_second: self.messages_per_second,
            message_burst: self.message_burst,
            heartbeat_interval_ms: self.heartbeat_interval_secs.saturating_mul(1000),
            idle_timeout_ms: self.idle_timeout_secs.saturating_mul(1000),
        }
    }
}
