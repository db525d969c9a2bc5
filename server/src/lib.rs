//! # chatroom-server
//!
//! The Chat-Room server as a library: [`run`] serves a bound listener until a shutdown token is
//! cancelled. The `chatroom-server` binary parses its command line ([`cli`]) and calls it; tests
//! bind `127.0.0.1:0` and call it directly.
//!
//! Layout, one job per module:
//! - [`config`]: settings and limits, with defaults that need no configuration.
//! - `connection`: a connection's reader loop and writer task.
//! - `requests`: what each request does (accounts, rooms, messages).
//! - [`hub`]: hot state in memory — users, rooms, members, online sessions — and fan-out.
//! - [`storage`]: SQLite — the writer thread with group commit, the read pool, the schema.
//! - [`auth`]: name rules, argon2id passwords, session tokens.
//! - [`sessions`]: the live session tokens in memory, and their expiry.
//! - [`limits`]: rate limits and connection counts.
//! - [`outbox`]: a connection's bounded queue of outgoing frames.
//! - [`files`]: file content on disk and the uploads in progress.
//! - [`admin`]: offline account maintenance for the `user …` subcommands.
//! - [`maintenance`]: `backup` and `check` of the database, safe while the server runs.
//! - [`metrics`]: the optional HTTP endpoint with `/health` and Prometheus `/metrics`.
//! - [`ai`]: the AI bot — a reserved account answering `@ai` mentions and direct messages.

#![deny(missing_docs)]

pub mod admin;
pub mod ai;
pub mod auth;
pub mod cli;
pub mod config;
mod connection;
pub mod error;
pub mod files;
pub mod hub;
pub mod limits;
pub mod maintenance;
pub mod metrics;
pub mod outbox;
mod requests;
pub mod sessions;
pub mod storage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// How long connections get to say goodbye and flush at shutdown before they are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Presence changes within this window go out together.
const PRESENCE_WINDOW: Duration = Duration::from_millis(100);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory or the database could not be opened or migrated.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The folders for file content could not be created.
    #[error(transparent)]
    Files(#[from] files::FolderError),
    /// A start-up task died.
    #[error("start-up failed: {0}")]
    Startup(String),
    /// The storage writer thread died (a bug; its panic is in the log). The server shut down
    /// rather than refuse every write; every acknowledged message is on disk.
    #[error("the storage writer stopped unexpectedly; shut down (see the log for the cause)")]
    StorageStopped,
    /// The health and metrics address (`metrics_listen`) could not be bound.
    #[error("cannot listen for health and metrics on {addr}: {source}")]
    MetricsListen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub hub: Arc<hub::Hub>,
    pub storage: storage::Storage,
    pub logins: limits::LoginLimiter,
    pub registrations: limits::RegistrationLimiter,
    /// Password hashes in progress at once: each costs argon2's 19 MiB and a core's worth of
    /// time, so a burst of logins waits here instead of growing the blocking pool.
    pub hashing: tokio::sync::Semaphore,
    /// Argon2 working memory, one per hashing permit, reused (see [`auth::HashMemory`]).
    pub hash_memory: std::sync::Mutex<Vec<auth::HashMemory>>,
    /// Where file content lives.
    pub files: files::FileStore,
    /// Uploads in progress.
    pub uploads: files::Uploads,
    /// The AI bot, when it is on.
    pub ai: Option<Arc<ai::Ai>>,
    /// Counters for the metrics endpoint.
    pub metrics: metrics::Metrics,
    next_conn: AtomicU64,
}

impl Shared {
    fn next_conn_id(&self) -> hub::ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

/// Serves `listener` until `shutdown` is cancelled, then shuts down gracefully: stops
/// accepting, tells every client (`ServerShutdown`), flushes their queues and the storage queue,
/// and returns within [`SHUTDOWN_GRACE`] plus the last commit.
///
/// With `config.metrics_listen` set, it first binds that address for the health and metrics
/// endpoint ([`metrics`]); failing to is an error. To learn the port of `127.0.0.1:0`, bind it
/// yourself and use [`run_with_metrics`].
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let metrics = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::MetricsListen { addr, source })?,
        ),
        None => None,
    };
    run_with_metrics(listener, metrics, config, shutdown).await
}

/// [`run`], with the health and metrics endpoint served on `metrics` when given — a listener
/// the caller bound, as for the chat `listener` — and none otherwise (`config.metrics_listen`
/// is not looked at).
pub async fn run_with_metrics(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let opened = open(&config).await?;
    serve_opened(opened, listener, metrics, config, shutdown).await
}

/// A data directory made ready to serve by [`open`]: the database opened and migrated, its
/// writer thread started, the file store's folders there.
pub struct Opened {
    storage: storage::Storage,
    snapshot: storage::Snapshot,
    writer_thread: std::thread::JoinHandle<()>,
    file_store: files::FileStore,
    /// The database did not exist before: this open created a new, empty one.
    pub created_database: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("created_database", &self.created_database)
            .finish_non_exhaustive()
    }
}

impl Opened {
    /// Lets go of the database without serving: waits for the writer thread to stop, so that
    /// nothing of the data directory is in use afterwards.
    pub fn close(self) {
        let Opened {
            storage,
            writer_thread,
            ..
        } = self;
        drop(storage);
        if writer_thread.join().is_err() {
            tracing::warn!("the storage writer thread panicked while closing");
        }
    }
}

/// Opens (creating and migrating if needed) the database in `config.data_dir` and the file
/// store beside it. The binary does this before it binds its port, so that a database it
/// cannot use (a newer schema, say) stops it before it says it is listening.
pub async fn open(config: &Config) -> Result<Opened, ServerError> {
    let created_database = !config.database_path().exists();
    let opened = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || storage::open(&config))
            .await
            .map_err(|e| ServerError::Startup(format!("opening the database: {e}")))??
    };
    let (storage, snapshot, writer_thread) = opened;
    let file_store = {
        let data_dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || files::FileStore::open(&data_dir))
            .await
            .map_err(|e| ServerError::Startup(format!("opening the file store: {e}")))??
    };
    Ok(Opened {
        storage,
        snapshot,
        writer_thread,
        file_store,
        created_database,
    })
}

/// Serves `listener` (and the health and metrics endpoint on `metrics`, when given) from a data
/// directory [`open`] made ready, until `shutdown`; as [`run_with_metrics`].
pub async fn serve_opened(
    opened: Opened,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let Opened {
        storage,
        mut snapshot,
        writer_thread,
        file_store,
        created_database: _,
    } = opened;
    // Ours to cancel too, when storage dies; the caller's token still stops us.
    let shutdown = shutdown.child_token();
    let writer = storage.writer.clone();
    let bot = snapshot.bot.take();
    files::sweep::remove_unreferenced(&storage, &file_store).await;
    let hub = Arc::new(hub::Hub::new(snapshot, config.limits.max_frame_bytes));
    {
        let hub = Arc::clone(&hub);
        storage
            .writer
            .set_batch_hook(Box::new(move || hub.flush_deferred()));
    }
    {
        let hub = Arc::clone(&hub);
        storage.writer.set_notice_hook(Box::new(move |notice| {
            if let Some(frame) =
                hub.encode_event(&chatroom_protocol::Event::Message(notice.clone()))
            {
                hub.defer_broadcast(notice.room, frame);
            }
        }));
    }
    let connections = limits::ConnectionLimiter::new(
        config.limits.max_connections,
        config.limits.max_connections_per_ip,
    );
    let tracker = TaskTracker::new();
    let ai = ai::Ai::start(
        &config,
        Arc::clone(&hub),
        storage.clone(),
        bot,
        shutdown.clone(),
        tracker.clone(),
    );
    let shared = Arc::new(Shared {
        logins: limits::LoginLimiter::new(
            config.limits.login_failures_per_ip,
            config.limits.login_failures_per_account,
        ),
        registrations: limits::RegistrationLimiter::new(
            config.limits.registrations_per_ip_per_hour,
        ),
        config,
        hub: Arc::clone(&hub),
        storage,
        hashing: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ),
        hash_memory: std::sync::Mutex::new(Vec::new()),
        files: file_store,
        uploads: files::Uploads::default(),
        ai,
        metrics: metrics::Metrics::default(),
        next_conn: AtomicU64::new(1),
    });
    tracker.spawn(Arc::clone(&hub).run_presence(PRESENCE_WINDOW, shutdown.clone()));
    tracker.spawn(files::sweep::expire_uploads(
        Arc::clone(&shared),
        shutdown.clone(),
    ));
    tracker.spawn(sessions::upkeep(Arc::clone(&shared), shutdown.clone()));
    if let Some(listener) = metrics {
        // "Messages stored since start" counts from the highest message id now.
        match shared.storage.reads.run(metrics::highest_message_id).await {
            Ok(id) => shared.metrics.set_first_message_id(id),
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the highest message id"),
        }
        tracker.spawn(metrics::serve(
            listener,
            Arc::clone(&shared),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, data_dir = %shared.config.data_dir.display(), "serving");
    }

    let mut storage_stopped = false;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            () = writer.stopped() => {
                tracing::error!("the storage writer thread stopped; shutting down");
                storage_stopped = true;
                shutdown.cancel();
                break;
            }
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.metrics.connection_accepted();
        match connections.acquire(peer.ip()) {
            Some(slot) => {
                tracker.spawn(connection::serve(
                    socket,
                    peer,
                    Arc::clone(&shared),
                    shutdown.clone(),
                    tracker.clone(),
                    slot,
                ));
            }
            None => {
                shared.metrics.connection_refused();
                tracker.spawn(refuse(socket, peer, shared.config.limits.max_frame_bytes));
            }
        }
    }

    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    // Dropping the last writer handle lets the storage thread drain its queue and stop.
    drop(writer);
    drop(shared);
    drop(hub);
    let joined = tokio::task::spawn_blocking(move || writer_thread.join());
    if tokio::time::timeout(SHUTDOWN_GRACE, joined).await.is_err() {
        tracing::warn!("storage writer still busy at shutdown");
    }
    if storage_stopped {
        return Err(ServerError::StorageStopped);
    }
    tracing::info!("shut down");
    Ok(())
}

/// Tells a connection over the limits why it is refused, then closes it.
async fn refuse(mut socket: tokio::net::TcpStream, peer: SocketAddr, max_frame: u32) {
    use tokio::io::AsyncWriteExt;
    tracing::info!(%peer, "connection refused: too many connections");
    let error = chatroom_protocol::ServerFrame::Error(chatroom_protocol::ErrorBody::new(
        chatroom_protocol::ErrorCode::TooManyConnections,
        "too many connections; try again later",
    ));
    if let Ok(frame) = chatroom_protocol::codec::encode_frame(&error, max_frame) {
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(&frame)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
}
