//! The interactive runtime: owns the terminal, reads keys on a thread, runs network work as
//! tasks, and feeds every result back into the [`App`] as a message. It reconnects with
//! exponential backoff and jitter, resumes the session, and catches up each room.
//!
//! The terminal is restored on exit and on panic (ratatui installs the hook); with no terminal,
//! it exits with an error before connecting. Logs go to a file in the user's state directory,
//! never to the screen.

use anyhow::Context;
use chatroom_protocol::client::{Client, ClientError, ClientHandle};
use chatroom_protocol::transfer::{
    self, Phase, Progress, ProgressSink, TransferError, TransferOptions,
};
use chatroom_protocol::{
    BanInfo, ErrorBody, ErrorCode, Event, FileInfo, HistoryAnchor, HistoryPage, Member, MuteInfo,
    PresenceStatus, RoomId, RoomInfo, RoomKind, RoomSummary, SearchPage, ServerInfo, Session,
    UnixMillis, UserPresence, Visibility, now_millis,
};
use ratatui::crossterm::event::{self as term, Event as TermEvent};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::admin::{self, AccountDone};
use super::app::{Action, App, LoginField, LoginForm, PAGE, Screen};
use super::purges;
use super::search::SEARCH_PAGE;
use super::transfers::{TransferOutcome, TransferRequest};
use crate::login::CLIENT_NAME;
use crate::output::human_bytes;
use crate::session_store::SessionStore;
use crate::settings::Settings;

/// Options of the interactive client.
#[derive(Clone, Debug)]
pub struct TuiOptions {
    /// Scroll with the mouse wheel (captures the mouse, so text selection needs Shift).
    pub mouse: bool,
    /// Ring the terminal bell when mentioned.
    pub bell: bool,
    /// Minutes without input after which this connection counts as idle (0: never).
    pub away_after_minutes: u32,
}

const QUEUE: usize = 1024;
const TICK: Duration = Duration::from_millis(250);
const MAX_BACKOFF_MS: u64 = 30_000;
/// After the server said it is shutting down (most often a restart or an upgrade), retries
/// come at most this far apart, plus jitter, for [`RESTART_WINDOW_MS`]: everyone is back a
/// moment after the server, not up to half a minute later.
const RESTART_RETRY_MS: u64 = 2_000;
/// How long after the announcement the short retries last; then the usual backoff.
const RESTART_WINDOW_MS: u64 = 60_000;

/// Everything that reaches the UI loop.
enum Msg {
    Term(TermEvent),
    Connected {
        generation: u64,
        handle: ClientHandle,
        session: Session,
        rooms: Vec<RoomSummary>,
        info: ServerInfo,
        /// The server's longest message, in characters (from its `Welcome`).
        max_message_chars: u32,
    },
    /// Credentials refused: back to the login screen, with why and whether it was the name.
    AuthFailed(String, Option<ErrorCode>),
    /// The server could not be reached or the connection broke during login: retry.
    ConnectFailed(u64, String),
    Server(u64, Event),
    Closed(u64, String),
    History(HistoryPage, bool),
    /// A request for older messages failed, with why.
    OlderFailed(RoomId, String),
    /// The newest page of a room (first visit).
    Latest(HistoryPage),
    /// A request for the newest page failed, with why.
    LatestFailed(RoomId, String),
    /// A room fetched because a message came from it before I knew of it.
    RoomFetched(RoomInfo),
    /// That fetch failed, with why.
    RoomFetchFailed(RoomId, String),
    /// A room's members, and its mutes (`None` if they could not be had: an older server).
    Members(RoomId, Vec<Member>, Option<Vec<MuteInfo>>),
    /// A room's bans, for `/bans`.
    Bans(RoomId, Vec<BanInfo>),
    /// A room's files, for `/files`.
    Files(RoomId, Vec<FileInfo>),
    Mutes(RoomId, Vec<MuteInfo>),
    Users(Vec<UserPresence>),
    /// Everyone's presence, fetched again after a reconnect.
    PresenceRefreshed(Vec<UserPresence>),
    Notice(String),
    Flash(String, bool),
    /// A message that was not sent, with why: it goes back into the input.
    Unsent(String, String),
    Joined(RoomSummary),
    /// A room I created, as it is once the invitations went out, with who could not be
    /// invited and why.
    Created(RoomInfo, Vec<String>),
    /// The server took my `/away` or `/back`.
    MyPresence(PresenceStatus, Option<String>),
    /// The server does not know `SetIdle` (it closed the connection on it).
    IdleRefused,
    LoggedOut,
    /// A progress report of a transfer, with when it was taken.
    TransferProgress(u32, Progress, UnixMillis),
    TransferEnded(u32, TransferOutcome),
    /// Results of search number `.0`.
    SearchResults(u64, SearchPage),
    /// Search number `.0` failed, with why.
    SearchFailed(u64, String),
    /// The server did a `/user …`.
    Account(AccountDone),
}

/// A room as a confirmation names it: `#room`, `@user`, or "the room" if it is gone.
fn room_label(app: &App, room: RoomId) -> String {
    app.rooms
        .get(&room)
        .map_or_else(|| "the room".to_owned(), |r| r.label())
}

/// Why `/join NAME` failed, naming the room asked for: the server's "no such room" does not
/// say which, and a typo is easier to see in the name itself.
fn join_refusal(name: &str, error: ClientError) -> String {
    match error {
        ClientError::Server(body) if body.code == ErrorCode::RoomNotFound => {
            format!("no room named #{name} (/list -g lists the public rooms)")
        }
        ClientError::Server(body) if body.message.contains(name) => body.message,
        ClientError::Server(body) => format!("cannot join #{name}: {}", body.message),
        other => format!("cannot join #{name}: {other}"),
    }
}

/// Progress reports reach the UI at most this often per transfer (plus phase changes).
const PROGRESS_EVERY_MS: u64 = 100;

#[derive(Clone)]
enum Credentials {
    Token {
        token: String,
        /// My away status to put back once resumed (a resumed session starts online): the
        /// status text, possibly empty. `None`: not away.
        away: Option<String>,
    },
    Password {
        user: String,
        password: String,
        register: bool,
    },
}

struct Runtime {
    settings: Settings,
    tx: mpsc::Sender<Msg>,
    handle: Option<ClientHandle>,
    generation: u64,
    token: Option<(String, String)>,
    reconnect_at: Option<u64>,
    attempt: u32,
    /// When this connection's server announced its shutdown.
    shutdown_announced_at: Option<u64>,
    quit: bool,
    /// Running transfers, to cancel them.
    transfers: HashMap<u32, CancellationToken>,
}

/// Runs the interactive client until the user quits.
pub async fn run(settings: Settings, options: TuiOptions) -> anyhow::Result<()> {
    // Without a terminal to draw on, say so (and write no escape sequence into a pipe).
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the terminal UI needs a terminal, and standard output is not one \
             (for scripts, see the subcommands in chatroom --help)"
        );
    }
    init_logging();
    // ratatui's init enters raw mode and the alternate screen and installs a panic hook that
    // leaves them; the hook installed after it turns off this client's own modes first.
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(e) => {
            // Whatever part of it was done is undone.
            let _ = ratatui::try_restore();
            return Err(e).context("cannot set up the terminal");
        }
    };
    install_restore_hook(options.mouse);
    let (mut runtime, mut app, mut rx) = start(settings, &options);
    let tx = runtime.tx.clone();
    if let Err(e) = enable_modes(&mut std::io::stdout(), options.mouse) {
        tracing::warn!(error = %e, "cannot enable bracketed paste or the mouse");
    }
    // Keys are read on a thread of their own; it ends with the process.
    std::thread::spawn(move || {
        while let Ok(event) = term::read() {
            if tx.blocking_send(Msg::Term(event)).is_err() {
                break;
            }
        }
    });
    let result = runtime.event_loop(&mut terminal, &mut app, &mut rx).await;
    disable_modes(&mut std::io::stdout(), options.mouse);
    ratatui::restore();
    result
}

/// `first`, then `then`.
fn chain(mut first: Vec<Action>, then: Vec<Action>) -> Vec<Action> {
    first.extend(then);
    first
}

/// The user to log in as: the one named by `--user`, `CHATROOM_USER` or the config file, else
/// the one who last logged in to this server with the terminal UI here (forgotten on `/logout`).
/// With the session kept for that user, if any.
fn kept_session(settings: &Settings) -> (Option<String>, Option<(String, String)>) {
    let store = settings.data_dir.as_deref().map(SessionStore::new);
    let user = settings.user.clone().or_else(|| {
        store
            .as_ref()
            .and_then(|store| store.last_user(&settings.server))
    });
    let saved = match (&store, &user) {
        (Some(store), Some(user)) => store
            .load(&settings.server, user)
            .map(|t| (user.clone(), t)),
        _ => None,
    };
    (user, saved)
}

/// The client before it takes the terminal: the app on its login form (the user name filled in
/// when known) and the runtime, already resuming the kept session if there is one.
fn start(settings: Settings, options: &TuiOptions) -> (Runtime, App, mpsc::Receiver<Msg>) {
    let (user, saved) = kept_session(&settings);
    let mut app = App::new(settings.server.clone(), user.as_deref());
    app.bell_on_mention = options.bell;
    app.clock = crate::tui::app::Clock::Local;
    app.now = now_millis();
    // Starting the client is the user at the keyboard.
    app.idleness = crate::tui::idle::Idleness::after_minutes(options.away_after_minutes, app.now);

    let (tx, rx) = mpsc::channel::<Msg>(QUEUE);
    let mut runtime = Runtime::new(settings, tx, saved.clone());
    if let Some((_, token)) = saved {
        if let Screen::Login(form) = &mut app.screen {
            form.busy = true;
        }
        runtime.connect(Credentials::Token { token, away: None });
    } else if let Some(user) = user
        && let Some(configured) = crate::login::configured_password(&runtime.settings)
    {
        // A password given as the README says (file, environment): log in with it.
        match configured {
            Ok(password) => {
                if let Screen::Login(form) = &mut app.screen {
                    form.busy = true;
                }
                runtime.connect(Credentials::Password {
                    user,
                    password,
                    register: false,
                });
            }
            Err(e) => app.login_failed(format!("{e:#}")),
        }
    }
    (runtime, app, rx)
}

/// Turns on the terminal modes the client needs beyond ratatui's: bracketed paste (a pasted text
/// arrives as one event, so its lines are not sent one by one and cannot run commands) and, when
/// asked for, mouse capture.
fn enable_modes(out: &mut impl Write, mouse: bool) -> std::io::Result<()> {
    ratatui::crossterm::execute!(out, term::EnableBracketedPaste)?;
    if mouse {
        ratatui::crossterm::execute!(out, term::EnableMouseCapture)?;
    }
    Ok(())
}

/// Undoes [`enable_modes`]; on every way out, the panic hook included.
fn disable_modes(out: &mut impl Write, mouse: bool) {
    if mouse {
        let _ = ratatui::crossterm::execute!(out, term::DisableMouseCapture);
    }
    let _ = ratatui::crossterm::execute!(out, term::DisableBracketedPaste);
}

/// On a panic, turns off the client's modes, then runs the hook installed before (ratatui's,
/// which leaves raw mode and the alternate screen, then prints the panic).
fn install_restore_hook(mouse: bool) {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        disable_modes(&mut std::io::stdout(), mouse);
        hook(info);
    }));
}

fn init_logging() {
    let Some(dir) = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".local/state")))
        .map(|d| d.join("chatroom"))
    else {
        return;
    };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Ok(file) = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("chatroom.log"))
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHATROOM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// `~/Downloads/chatroom/x.pdf` for a path under the home folder.
fn home_relative(path: &std::path::Path) -> String {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .and_then(|home| path.strip_prefix(home).ok())
        .map_or_else(
            || path.display().to_string(),
            |rest| format!("~/{}", rest.display()),
        )
}

impl Runtime {
    fn new(settings: Settings, tx: mpsc::Sender<Msg>, token: Option<(String, String)>) -> Self {
        Self {
            settings,
            tx,
            handle: None,
            generation: 0,
            token,
            reconnect_at: None,
            attempt: 0,
            shutdown_announced_at: None,
            quit: false,
            transfers: HashMap::new(),
        }
    }

    async fn event_loop(
        &mut self,
        terminal: &mut ratatui::DefaultTerminal,
        app: &mut App,
        rx: &mut mpsc::Receiver<Msg>,
    ) -> anyhow::Result<()> {
        let mut ticker = tokio::time::interval(TICK);
        loop {
            if let Ok(size) = terminal.size() {
                app.viewport = super::ui::message_pane(app, size.width, size.height);
                app.screen_size = (size.width, size.height);
            }
            terminal
                .draw(|frame| super::ui::draw(frame, app))
                .context("cannot draw")?;
            let mut actions = Vec::new();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => actions.extend(self.on_msg(app, msg)),
                    None => return Ok(()),
                },
                _ = ticker.tick() => actions.extend(self.on_tick(app, now_millis())),
            }
            // Take whatever else is waiting before drawing again (a burst of messages is one frame).
            for _ in 0..QUEUE {
                match rx.try_recv() {
                    Ok(msg) => actions.extend(self.on_msg(app, msg)),
                    Err(_) => break,
                }
            }
            for action in actions {
                self.perform(app, action);
            }
            if self.quit {
                return Ok(());
            }
        }
    }

    /// What a tick does besides redrawing: the app's timers, and a reconnect that is due.
    fn on_tick(&mut self, app: &mut App, now: UnixMillis) -> Vec<Action> {
        let actions = app.tick(now);
        if self.reconnect_at.is_some_and(|at| now >= at) {
            self.reconnect_at = None;
            if let Some((_, token)) = self.token.clone() {
                app.reconnecting();
                self.connect(Credentials::Token {
                    token,
                    away: app.away_chosen.clone(),
                });
            }
        }
        actions
    }

    fn connect(&mut self, credentials: Credentials) {
        self.generation += 1;
        self.handle = None;
        let generation = self.generation;
        let server = self.settings.server.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let client = match Client::connect(&server, CLIENT_NAME).await {
                Ok(client) => client,
                Err(e) => {
                    let _ = tx.send(Msg::ConnectFailed(generation, e.to_string())).await;
                    return;
                }
            };
            let login = match &credentials {
                Credentials::Token { token, .. } => client.resume(token).await,
                Credentials::Password {
                    user,
                    password,
                    register: true,
                } => client.register(user, password).await,
                Credentials::Password { user, password, .. } => client.login(user, password).await,
            };
            // A refusal ends in the login form with the server's reason. The one exception is a
            // rate limit on a token resume: that is retried with backoff, like a lost connection.
            let typed = matches!(credentials, Credentials::Password { .. });
            let session = match login {
                Ok(session) => session,
                Err(e)
                    if e.code().is_some()
                        && (typed || e.code() != Some(ErrorCode::RateLimited)) =>
                {
                    let code = e.code();
                    let message = match e {
                        chatroom_protocol::client::ClientError::Server(body) => body.message,
                        other => other.to_string(),
                    };
                    let _ = tx.send(Msg::AuthFailed(message, code)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Msg::ConnectFailed(generation, e.to_string())).await;
                    return;
                }
            };
            if let Credentials::Token {
                away: Some(text), ..
            } = &credentials
            {
                // Before anything is fetched, so the presence the app then reads says away.
                let text = (!text.is_empty()).then(|| text.clone());
                if let Err(e) = client.set_presence(PresenceStatus::Away, text).await {
                    tracing::info!(error = %e, "cannot put the away status back");
                }
            }
            let rooms = match client.my_rooms().await {
                Ok(rooms) => rooms,
                Err(e) => {
                    let _ = tx.send(Msg::ConnectFailed(generation, e.to_string())).await;
                    return;
                }
            };
            let info = match client.server_info().await {
                Ok(info) => info,
                Err(e) => {
                    let _ = tx.send(Msg::ConnectFailed(generation, e.to_string())).await;
                    return;
                }
            };
            let max_message_chars = client.welcome().limits.max_message_chars;
            let (handle, mut events) = client.into_parts();
            let watcher = handle.clone();
            let connected = Msg::Connected {
                generation,
                handle,
                session,
                rooms,
                info,
                max_message_chars,
            };
            if tx.send(connected).await.is_err() {
                return;
            }
            while let Some(event) = events.recv().await {
                if tx.send(Msg::Server(generation, event)).await.is_err() {
                    return;
                }
            }
            let reason = why_closed(watcher.close_reason(), watcher.close_error());
            drop(watcher);
            let _ = tx.send(Msg::Closed(generation, reason)).await;
        });
    }

    /// Keeps the session for the next start, and its user as the one to resume when no user is
    /// named. Not through `login::remember`: the terminal is the UI's, not stderr's.
    fn keep_session(&self, session: &Session) -> std::io::Result<()> {
        let Some(dir) = &self.settings.data_dir else {
            return Ok(());
        };
        let store = SessionStore::new(dir);
        let user = &session.user.username;
        store.save(&self.settings.server, user, &session.token)?;
        store.save_last_user(&self.settings.server, user)
    }

    fn schedule_reconnect(&mut self, app: &mut App, reason: String) {
        self.handle = None;
        let restarting = self
            .shutdown_announced_at
            .is_some_and(|at| now_millis().saturating_sub(at) < RESTART_WINDOW_MS);
        let cap = if restarting {
            RESTART_RETRY_MS
        } else {
            MAX_BACKOFF_MS
        };
        let base = 1000u64.saturating_mul(1 << self.attempt.min(5)).min(cap);
        // Jitter from the clock's low bits: clients dropped together do not return together.
        let jitter = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        ) % (base / 2 + 1);
        self.attempt += 1;
        let at = now_millis() + base + jitter;
        self.reconnect_at = Some(at);
        tracing::info!(%reason, delay_ms = base + jitter, "disconnected; will reconnect");
        app.disconnected(reason, at);
    }

    fn on_msg(&mut self, app: &mut App, msg: Msg) -> Vec<Action> {
        match msg {
            Msg::Term(TermEvent::Key(key)) => chain(app.input_seen(), app.on_key(key)),
            Msg::Term(TermEvent::Mouse(mouse)) => chain(app.input_seen(), app.on_mouse(mouse)),
            Msg::Term(TermEvent::Paste(text)) => chain(app.input_seen(), app.on_paste(&text)),
            Msg::Term(_) => Vec::new(),
            Msg::Connected {
                generation,
                handle,
                session,
                rooms,
                info,
                max_message_chars,
            } if generation == self.generation => {
                tracing::info!(user = %session.user.username, "connected");
                self.attempt = 0;
                self.shutdown_announced_at = None;
                self.handle = Some(handle);
                self.token = Some((session.user.username.clone(), session.token.clone()));
                let kept = self.keep_session(&session);
                app.logged_in(session.user);
                if let Err(e) = kept {
                    tracing::warn!(error = %e, "cannot keep the session");
                    app.flash(format!("could not keep the session: {e}"), true);
                }
                app.ai_bot = info.ai_bot;
                app.max_message_chars = Some(max_message_chars);
                let mut actions = app.rooms_loaded(rooms);
                actions.extend(app.resume_transfers());
                actions
            }
            Msg::Connected { .. } => Vec::new(),
            Msg::AuthFailed(message, code) => {
                tracing::info!(%message, "login refused");
                // Whose session was refused (logged out by an admin, expired): the form asks
                // that user for a password, not anyone for a name.
                let refused = self.token.take().map(|(user, _)| user);
                if let (Some(dir), Some(user)) = (&self.settings.data_dir, &refused) {
                    SessionStore::new(dir).remove(&self.settings.server, user);
                }
                self.handle = None;
                if !matches!(app.screen, Screen::Login(_)) {
                    let mut form = LoginForm::default();
                    if let Some(user) = &refused {
                        form.username.set_text(user);
                        form.focus = LoginField::Password;
                    }
                    app.screen = Screen::Login(Box::new(form));
                }
                if matches!(
                    code,
                    Some(ErrorCode::UsernameTaken | ErrorCode::InvalidUsername)
                ) {
                    app.login_name_refused(message);
                } else {
                    app.login_failed(message);
                }
                // A password given as the README says (file, environment) logs in again, as at
                // start-up. Only after a refused session: a refused password is not retried.
                if let Some(user) = refused
                    && let Some(Ok(password)) = crate::login::configured_password(&self.settings)
                {
                    if let Screen::Login(form) = &mut app.screen {
                        form.busy = true;
                    }
                    self.connect(Credentials::Password {
                        user,
                        password,
                        register: false,
                    });
                }
                Vec::new()
            }
            Msg::ConnectFailed(generation, reason) if generation == self.generation => {
                if self.token.is_some() {
                    self.schedule_reconnect(app, reason);
                } else {
                    // The form shows the server but cannot change it: say what does.
                    app.login_failed(format!(
                        "cannot reach {}: {reason} (another server: Esc, then chatroom --server \
                         HOST:PORT)",
                        self.settings.server
                    ));
                }
                Vec::new()
            }
            Msg::ConnectFailed(..) => Vec::new(),
            Msg::Server(generation, event) if generation == self.generation => {
                if matches!(event, Event::ServerShutdown { .. }) {
                    self.shutdown_announced_at = Some(now_millis());
                }
                app.on_event(event)
            }
            Msg::Server(..) => Vec::new(),
            Msg::Closed(generation, reason) if generation == self.generation => {
                if !self.quit {
                    self.schedule_reconnect(app, reason);
                }
                Vec::new()
            }
            Msg::Closed(..) => Vec::new(),
            Msg::History(page, older) => {
                app.history_loaded(page, older);
                app.follow_jump()
            }
            Msg::OlderFailed(room, error) => {
                app.older_failed(room);
                app.flash(error, true);
                Vec::new()
            }
            Msg::Latest(page) => {
                app.latest_loaded(page);
                app.follow_jump()
            }
            Msg::LatestFailed(room, error) => {
                app.latest_failed(room);
                app.flash(error, true);
                Vec::new()
            }
            Msg::RoomFetched(info) => app.room_fetched(info),
            Msg::RoomFetchFailed(room, error) => {
                tracing::info!(room = room.0, %error, "cannot fetch a room");
                app.room_fetch_failed(room);
                Vec::new()
            }
            Msg::Members(room, members, mutes) => {
                app.members_loaded(room, members);
                if let Some(mutes) = mutes {
                    app.mutes_known(room, &mutes);
                }
                Vec::new()
            }
            Msg::Bans(room, bans) => {
                app.bans_loaded(room, bans);
                Vec::new()
            }
            Msg::Files(room, files) => {
                app.files_loaded(room, files);
                Vec::new()
            }
            Msg::Mutes(room, mutes) => {
                app.mutes_loaded(room, mutes);
                Vec::new()
            }
            Msg::Users(users) => {
                app.users_loaded(users);
                Vec::new()
            }
            Msg::PresenceRefreshed(users) => {
                app.presence_refreshed(users);
                Vec::new()
            }
            Msg::Notice(text) => {
                app.notice(text);
                Vec::new()
            }
            Msg::Flash(text, error) => {
                app.flash(text, error);
                Vec::new()
            }
            Msg::Unsent(text, error) => {
                app.unsent(&text, &error);
                Vec::new()
            }
            Msg::Joined(summary) => {
                let id = summary.id;
                app.on_event(Event::RoomUpdated(summary));
                app.enter_room(id)
            }
            Msg::Created(info, refused) => {
                // Said first: a failed invitation must not read as a failed creation (`/create
                // dev ops` makes #dev and invites ops).
                let created = format!("created #{}", info.room.name);
                let actions = app.room_created(info);
                if !refused.is_empty() {
                    app.flash(format!("{created}; {}", refused.join("; ")), true);
                }
                actions
            }
            Msg::IdleRefused => {
                tracing::info!("the server does not take SetIdle; no going away by itself");
                app.idle_refused();
                Vec::new()
            }
            Msg::MyPresence(status, message) => {
                let away = status == PresenceStatus::Away;
                app.presence_chosen(status, message);
                app.flash(if away { "you are away" } else { "you are back" }, false);
                Vec::new()
            }
            Msg::LoggedOut => {
                self.quit = true;
                Vec::new()
            }
            Msg::TransferProgress(id, progress, at) => {
                app.transfer_progress(id, progress, at);
                Vec::new()
            }
            Msg::TransferEnded(id, outcome) => {
                self.transfers.remove(&id);
                app.transfer_ended(id, outcome);
                Vec::new()
            }
            Msg::SearchResults(serial, page) => {
                app.search_loaded(serial, page);
                Vec::new()
            }
            Msg::SearchFailed(serial, error) => {
                app.search_failed(serial, error);
                Vec::new()
            }
            Msg::Account(done) => {
                app.account_done(done);
                Vec::new()
            }
        }
    }

    /// Starts a transfer as a task; it reports progress (throttled, dropped rather than
    /// queued when the UI is behind) and its end through the UI's bounded queue.
    fn start_transfer(&mut self, app: &mut App, id: u32, request: TransferRequest) {
        let Some(handle) = self.handle.clone() else {
            app.transfer_ended(
                id,
                TransferOutcome::Failed {
                    error: "not connected".into(),
                    resumable: true,
                },
            );
            return;
        };
        let cancel = CancellationToken::new();
        self.transfers.insert(id, cancel.clone());
        let tx = self.tx.clone();
        let last: Mutex<(UnixMillis, Option<Phase>)> = Mutex::new((0, None));
        let progress = {
            let tx = tx.clone();
            ProgressSink::new(move |p: Progress| {
                let now = now_millis();
                let due = last.lock().is_ok_and(|mut last| {
                    let due = last.1 != Some(p.phase)
                        || now.saturating_sub(last.0) >= PROGRESS_EVERY_MS
                        || p.done >= p.total;
                    if due {
                        *last = (now, Some(p.phase));
                    }
                    due
                });
                if due {
                    let _ = tx.try_send(Msg::TransferProgress(id, p, now));
                }
            })
        };
        let download_dir = self.settings.download_dir.clone();
        tokio::spawn(async move {
            let options = TransferOptions {
                progress,
                cancel,
                ..TransferOptions::default()
            };
            let result = match request {
                TransferRequest::Upload { room, path } => {
                    transfer::upload(&handle, room, &path, &options)
                        .await
                        .map(|up| {
                            let mut text =
                                format!("sent {} ({})", up.file.name, human_bytes(up.file.size));
                            if up.bytes_sent == 0 && up.file.size > 0 {
                                text.push_str("; the server already had it");
                            } else if up.resumed_from > 0 {
                                text.push_str(&format!(
                                    "; resumed at {}",
                                    human_bytes(up.resumed_from)
                                ));
                            }
                            text
                        })
                }
                TransferRequest::Download { file } => {
                    // The folder is created when missing; a trailing separator says so.
                    let mut dir = download_dir.into_os_string();
                    dir.push(std::path::MAIN_SEPARATOR_STR);
                    transfer::download(&handle, file, dir.as_ref(), &options)
                        .await
                        .map(|down| {
                            let mut text = format!("saved to {}", home_relative(&down.path));
                            if down.resumed_from > 0 {
                                text.push_str(&format!(
                                    "; resumed at {}",
                                    human_bytes(down.resumed_from)
                                ));
                            }
                            text
                        })
                }
            };
            let outcome = match result {
                Ok(text) => TransferOutcome::Done(text),
                Err(TransferError::Cancelled) => TransferOutcome::Cancelled,
                Err(e) => TransferOutcome::Failed {
                    // A dropped connection: the runtime reconnects, and the transfer then
                    // continues where it stopped.
                    resumable: e.is_resumable() && handle.is_closed(),
                    error: match e {
                        TransferError::Client(chatroom_protocol::client::ClientError::Server(
                            body,
                        )) => body.message,
                        other => other.to_string(),
                    },
                },
            };
            let _ = tx.send(Msg::TransferEnded(id, outcome)).await;
        });
    }

    /// Runs `work` with the connection, sending what it returns back to the loop.
    fn with_client<F, Fut>(&self, app: &mut App, work: F)
    where
        F: FnOnce(ClientHandle) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<Msg>, String>> + Send,
    {
        let Some(handle) = self.handle.clone() else {
            app.flash("not connected; waiting to reconnect", true);
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let msg = match work(handle).await {
                Ok(Some(msg)) => msg,
                Ok(None) => return,
                Err(e) => Msg::Flash(e, true),
            };
            let _ = tx.send(msg).await;
        });
    }

    fn perform(&mut self, app: &mut App, action: Action) {
        let err = |e: chatroom_protocol::client::ClientError| match e {
            chatroom_protocol::client::ClientError::Server(body) => body.message,
            other => other.to_string(),
        };
        match action {
            Action::Quit => self.quit = true,
            Action::Bell => {
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\x07");
                let _ = out.flush();
            }
            Action::Login {
                username,
                password,
                register,
            } => self.connect(Credentials::Password {
                user: username,
                password,
                register,
            }),
            Action::Send { room, text } => {
                let Some(handle) = self.handle.clone() else {
                    app.unsent(&text, "not connected; waiting to reconnect");
                    return;
                };
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle.send_message(room, text.clone()).await {
                        let _ = tx.send(Msg::Unsent(text, err(e))).await;
                    }
                });
            }
            Action::Direct { user, text } => self.with_client(app, move |c| async move {
                // A refused /msg (no such user, a deleted account) goes back into the input,
                // as a refused message does: what was typed is not lost.
                let unsent = |text: &Option<String>, why: String| match text {
                    Some(text) => Msg::Unsent(format!("/msg {user} {text}"), why),
                    None => Msg::Flash(why, true),
                };
                let room = match c.open_direct(&user).await {
                    Ok(room) => room,
                    Err(e) => return Ok(Some(unsent(&text, err(e)))),
                };
                if let Some(body) = &text
                    && let Err(e) = c.send_message(room.id, body.clone()).await
                {
                    return Ok(Some(unsent(&text, err(e))));
                }
                Ok(Some(Msg::Joined(room)))
            }),
            Action::Join(name) => self.with_client(app, move |c| async move {
                match c.join_room(&name).await {
                    Ok(summary) => Ok(Some(Msg::Joined(summary))),
                    Err(e) => Err(join_refusal(&name, e)),
                }
            }),
            Action::Leave(room) => {
                let label = room_label(app, room);
                self.with_client(app, move |c| async move {
                    c.leave_room(room).await.map_err(err)?;
                    Ok(Some(Msg::Flash(format!("you left {label}"), false)))
                });
            }
            Action::Create {
                name,
                private,
                invite,
            } => self.with_client(app, move |c| async move {
                let visibility = if private {
                    Visibility::Private
                } else {
                    Visibility::Public
                };
                let room = c.create_room(&name, visibility).await.map_err(err)?;
                // One invitation refused (no such user) does not stop the others.
                let mut refused = Vec::new();
                for user in invite {
                    if let Err(e) = c.invite(room.id, &user).await {
                        refused.push(format!("could not invite {user}: {}", err(e)));
                    }
                }
                // The room as it is now, members and all: the summary the creation answered
                // with counts only me.
                Ok(Some(match c.room_info(room.id).await {
                    Ok(info) => Msg::Created(info, refused),
                    Err(_) => Msg::Joined(room),
                }))
            }),
            Action::Invite { room, user } => self.with_client(app, move |c| async move {
                c.invite(room, &user).await.map_err(err)?;
                Ok(Some(Msg::Flash(format!("invited {user}"), false)))
            }),
            Action::Kick { room, user, reason } => self.with_client(app, move |c| async move {
                c.kick(room, &user, reason).await.map_err(err)?;
                Ok(None)
            }),
            Action::Ban { room, user, reason } => {
                let label = room_label(app, room);
                self.with_client(app, move |c| async move {
                    c.ban(room, &user, reason).await.map_err(err)?;
                    Ok(Some(Msg::Flash(
                        format!("you banned {user} from {label}"),
                        false,
                    )))
                });
            }
            Action::Unban { room, user } => {
                let label = room_label(app, room);
                self.with_client(app, move |c| async move {
                    c.unban(room, &user).await.map_err(err)?;
                    Ok(Some(Msg::Flash(
                        format!("{user} may join {label} again"),
                        false,
                    )))
                });
            }
            Action::Bans(room) => self.with_client(app, move |c| async move {
                Ok(Some(Msg::Bans(room, c.bans(room).await.map_err(err)?)))
            }),
            Action::Mute {
                room,
                user,
                secs,
                reason,
            } => self.with_client(app, move |c| async move {
                c.mute(room, &user, secs, reason).await.map_err(err)?;
                Ok(None)
            }),
            Action::Unmute { room, user } => self.with_client(app, move |c| async move {
                c.unmute(room, &user).await.map_err(err)?;
                Ok(None)
            }),
            Action::Mutes(room) => self.with_client(app, move |c| async move {
                Ok(Some(Msg::Mutes(room, c.mutes(room).await.map_err(err)?)))
            }),
            Action::Purge { room, user, secs } => self.with_client(app, move |c| async move {
                // The room hears each deletion as `MessageDeleted`; this is the tally.
                match purges::purge(&c, room, &user, secs).await {
                    Ok(purged) => Ok(Some(Msg::Flash(purged.line(&user, None, secs), false))),
                    Err(failed) => {
                        let done = failed.partly_done(&user, None, secs);
                        let why = err(failed.error);
                        Err(match done {
                            Some(done) => format!("{done}: {why}"),
                            None => why,
                        })
                    }
                }
            }),
            Action::Account(action) => self.with_client(app, move |c| async move {
                // A refusal (not an admin, one's own account, no such user) is the server's.
                let done = admin::perform(&c, action).await.map_err(err)?;
                Ok(Some(Msg::Account(done)))
            }),
            Action::SetRole { room, user, role } => self.with_client(app, move |c| async move {
                c.set_role(room, &user, role).await.map_err(err)?;
                Ok(None)
            }),
            Action::Topic { room, topic } => self.with_client(app, move |c| async move {
                c.set_topic(room, &topic).await.map_err(err)?;
                Ok(None)
            }),
            Action::Rename { room, name } => self.with_client(app, move |c| async move {
                c.rename_room(room, &name).await.map_err(err)?;
                Ok(None)
            }),
            Action::LoadOlder { room, before } => {
                if self.handle.is_none() {
                    app.older_failed(room);
                }
                self.with_client(app, move |c| async move {
                    Ok(Some(
                        match c.history(room, HistoryAnchor::Before(before), PAGE).await {
                            Ok(page) => Msg::History(page, true),
                            Err(e) => Msg::OlderFailed(room, err(e)),
                        },
                    ))
                });
            }
            Action::LoadLatest(room) => {
                if self.handle.is_none() {
                    app.latest_failed(room);
                }
                self.with_client(app, move |c| async move {
                    Ok(Some(
                        match c.history(room, HistoryAnchor::Latest, PAGE).await {
                            Ok(page) => Msg::Latest(page),
                            Err(e) => Msg::LatestFailed(room, err(e)),
                        },
                    ))
                });
            }
            Action::CatchUp { room, after } => {
                let tx = self.tx.clone();
                self.with_client(app, move |c| async move {
                    let mut after = after;
                    loop {
                        let page = c
                            .history(room, HistoryAnchor::After(after), 200)
                            .await
                            .map_err(err)?;
                        let more = page.has_more;
                        if let Some(last) = page.messages.last() {
                            after = last.seq;
                        }
                        if tx.send(Msg::History(page, false)).await.is_err() || !more {
                            return Ok(None);
                        }
                    }
                });
            }
            Action::MarkRead { room, seq } => self.with_client(app, move |c| async move {
                // A marker that fails to move is harmless: the next one carries it.
                let _ = c.mark_read(room, seq).await;
                Ok(None)
            }),
            Action::Members(room) => self.with_client(app, move |c| async move {
                let info = c.room_info(room).await.map_err(err)?;
                // Who is muted, to mark them; a direct chat has no mutes.
                let mutes = match info.room.kind {
                    RoomKind::Direct => Some(Vec::new()),
                    _ => c.mutes(room).await.ok(),
                };
                Ok(Some(Msg::Members(room, info.members, mutes)))
            }),
            Action::FetchRoom(room) => {
                // Asked for by a message on this connection: without it, the room list after
                // the reconnect has the room, and there is nothing to say.
                let Some(handle) = self.handle.clone() else {
                    app.room_fetch_failed(room);
                    return;
                };
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let msg = match handle.room_info(room).await {
                        Ok(info) => Msg::RoomFetched(info),
                        Err(e) => Msg::RoomFetchFailed(room, e.to_string()),
                    };
                    let _ = tx.send(msg).await;
                });
            }
            Action::PublicRooms => self.with_client(app, move |c| async move {
                let rooms = c.public_rooms().await.map_err(err)?;
                let names: Vec<String> = rooms
                    .iter()
                    .map(|r| format!("#{} ({})", r.name, r.member_count))
                    .collect();
                Ok(Some(Msg::Notice(format!(
                    "public rooms: {}",
                    names.join("  ")
                ))))
            }),
            Action::Users => self.with_client(app, move |c| async move {
                Ok(Some(Msg::Users(c.list_users().await.map_err(err)?)))
            }),
            Action::RefreshPresence => self.with_client(app, move |c| async move {
                match c.list_users().await {
                    Ok(users) => Ok(Some(Msg::PresenceRefreshed(users))),
                    // Presence events keep it current from here on; nothing to tell the user.
                    Err(e) => {
                        tracing::info!(error = %e, "cannot refresh presence");
                        Ok(None)
                    }
                }
            }),
            Action::Presence { away, message } => self.with_client(app, move |c| async move {
                let status = if away {
                    PresenceStatus::Away
                } else {
                    PresenceStatus::Online
                };
                c.set_presence(status, message.clone()).await.map_err(err)?;
                Ok(Some(Msg::MyPresence(status, message)))
            }),
            Action::Idle(idle) => self.with_client(app, move |c| async move {
                use chatroom_protocol::client::ClientError;
                match c.set_idle(idle).await {
                    Ok(()) => Ok(None),
                    // An older server closes the connection on a request it does not know.
                    Err(ClientError::Closed(Some(body)) | ClientError::Server(body))
                        if body.code == chatroom_protocol::ErrorCode::MalformedFrame =>
                    {
                        Ok(Some(Msg::IdleRefused))
                    }
                    // The connection went: the next one starts in use anyway.
                    Err(e) => {
                        tracing::info!(error = %e, idle, "cannot say whether idle");
                        Ok(None)
                    }
                }
            }),
            Action::Typing(room) => self.with_client(app, move |c| async move {
                let _ = c.typing(room).await;
                Ok(None)
            }),
            Action::ChangePassword { old, new } => self.with_client(app, move |c| async move {
                c.change_password(&old, &new).await.map_err(err)?;
                Ok(Some(Msg::Flash(
                    "password changed; other sessions were logged out".into(),
                    false,
                )))
            }),
            Action::StartTransfer { id, request } => self.start_transfer(app, id, request),
            Action::CancelTransfer(id) => {
                if let Some(cancel) = self.transfers.get(&id) {
                    cancel.cancel();
                }
            }
            Action::ListFiles(room) => self.with_client(app, move |c| async move {
                Ok(Some(Msg::Files(
                    room,
                    c.list_files(room).await.map_err(err)?,
                )))
            }),
            Action::Search {
                serial,
                query,
                room,
                before,
            } => {
                if self.handle.is_none() {
                    app.search_failed(serial, "not connected; waiting to reconnect".into());
                    return;
                }
                self.with_client(app, move |c| async move {
                    Ok(Some(match search(&c, &query, room, before).await {
                        Ok(page) => Msg::SearchResults(serial, page),
                        Err(e) => Msg::SearchFailed(serial, err(e)),
                    }))
                });
            }
            Action::DeleteMessage { room, seq } => self.with_client(app, move |c| async move {
                c.delete_message(room, seq)
                    .await
                    .map_err(|e| format!("cannot delete that message: {}", err(e)))?;
                Ok(None)
            }),
            Action::EditMessage { room, seq, text } => self.with_client(app, move |c| async move {
                c.edit_message(room, seq, text).await.map_err(err)?;
                Ok(None)
            }),
            Action::Logout => {
                if let (Some(dir), Some((user, _))) = (&self.settings.data_dir, &self.token) {
                    let store = SessionStore::new(dir);
                    store.remove(&self.settings.server, user);
                    // The next start asks whom to log in as (unless another user has logged in
                    // here since).
                    if store
                        .last_user(&self.settings.server)
                        .is_some_and(|last| last.to_lowercase() == user.to_lowercase())
                    {
                        store.forget_last_user(&self.settings.server);
                    }
                }
                self.token = None;
                if self.handle.is_none() {
                    self.quit = true;
                    return;
                }
                self.with_client(app, move |c| async move {
                    let _ = c.logout().await;
                    Ok(Some(Msg::LoggedOut))
                });
            }
        }
    }
}

/// Requests per search before the answer goes back with what was found: the server looks at a
/// bounded number of candidates per request, so a page may come back short (even empty) with
/// more to look at.
const SEARCH_ROUNDS: u32 = 4;

/// One page of results for the view: up to [`SEARCH_PAGE`] of them, from as many as
/// [`SEARCH_ROUNDS`] requests.
async fn search(
    c: &ClientHandle,
    query: &str,
    room: Option<RoomId>,
    before: Option<chatroom_protocol::MessageId>,
) -> Result<SearchPage, ClientError> {
    let mut found = SearchPage {
        messages: Vec::new(),
        next: before,
    };
    for _ in 0..SEARCH_ROUNDS {
        let wanted = SEARCH_PAGE.saturating_sub(found.messages.len() as u32);
        let page = c.search(query, room, found.next, wanted).await?;
        found.messages.extend(page.messages);
        found.next = page.next;
        if found.next.is_none() || found.messages.len() >= SEARCH_PAGE as usize {
            break;
        }
    }
    Ok(found)
}

/// What to show when the connection ends: the server's reason when it gave one, else what
/// failed here (a reset, a frame too large, …).
fn why_closed(server_said: Option<ErrorBody>, ended: Option<ClientError>) -> String {
    match (server_said, ended) {
        (Some(body), _) => body.message,
        (None, Some(ClientError::Closed(None)) | None) => "connection lost".to_string(),
        (None, Some(local)) => local.to_string(),
    }
}

#[cfg(test)]
mod why_closed_tests {
    use super::*;

    #[test]
    fn the_server_s_reason_else_the_local_failure() {
        let reset = || {
            Some(ClientError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset by peer",
            )))
        };
        assert_eq!(why_closed(None, reset()), "connection error: reset by peer");
        let said = ErrorBody::new(ErrorCode::TooSlow, "you fell behind");
        assert_eq!(why_closed(Some(said), reset()), "you fell behind");
        assert_eq!(why_closed(None, None), "connection lost");
        assert_eq!(
            why_closed(None, Some(ClientError::Closed(None))),
            "connection lost"
        );
    }
}

#[cfg(test)]
mod tests {
    //! The runtime without a terminal, against a real server on 127.0.0.1: the test pumps the
    //! message queue and the ticks by hand, as the event loop does, and types commands.

    use super::*;
    use crate::tui::app::Entry;
    use crate::tui::transfers::TransferState;
    use chatroom_protocol::transfer::Phase;
    use chatroom_protocol::{MessageKind, RoomRole};
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    use tokio::net::TcpListener;

    /// alice's settings for `server`, kept under `home`, with nothing optional turned on.
    fn alice_settings(server: &str, home: &std::path::Path) -> Settings {
        Settings {
            server: server.to_string(),
            user: Some("alice".into()),
            password_file: None,
            config_password_file: None,
            data_dir: Some(home.join("data")),
            mouse: false,
            bell: false,
            away_after: 0,
            download_dir: home.join("downloads"),
        }
    }

    /// What a room shows as notices: our own (the lists) and the server's (its stored log).
    fn room_log(app: &App, room: RoomId) -> Vec<String> {
        app.rooms[&room]
            .timeline
            .values()
            .filter_map(|e| match e {
                Entry::Notice { text, .. } => Some(text.clone()),
                Entry::Message(m) => (m.kind == MessageKind::System).then(|| m.text.clone()),
            })
            .collect()
    }

    const PASSWORD: &str = "correct horse battery";
    const PATIENCE: Duration = Duration::from_secs(30);

    struct Harness {
        runtime: Runtime,
        app: App,
        rx: mpsc::Receiver<Msg>,
        home: tempfile::TempDir,
        shutdown: CancellationToken,
        _server_dir: tempfile::TempDir,
    }

    impl Harness {
        async fn start() -> Self {
            Self::start_with(|_| {}).await
        }

        async fn start_with(adjust: impl FnOnce(&mut chatroom_server::Config)) -> Self {
            let server_dir = tempfile::tempdir().expect("temp dir");
            let mut config = chatroom_server::Config::with_data_dir(server_dir.path());
            config.limits.max_connections_per_ip = 0;
            adjust(&mut config);
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let server = listener.local_addr().expect("addr").to_string();
            let shutdown = CancellationToken::new();
            tokio::spawn(chatroom_server::run(listener, config, shutdown.clone()));
            let home = tempfile::tempdir().expect("temp dir");
            let settings = alice_settings(&server, home.path());
            let (tx, rx) = mpsc::channel(QUEUE);
            Self {
                runtime: Runtime::new(settings, tx, None),
                app: App::new(server, Some("alice")),
                rx,
                home,
                shutdown,
                _server_dir: server_dir,
            }
        }

        /// Registers alice through the login path the form uses and waits until she is in.
        async fn register_alice(&mut self) {
            self.runtime.connect(Credentials::Password {
                user: "alice".into(),
                password: PASSWORD.into(),
                register: true,
            });
            self.run_until("the login", |h| h.app.current.is_some())
                .await;
        }

        /// Registers the server's first account, its admin, so that alice, after it, is a
        /// user like any other (an admin moderates every room she is in).
        async fn register_admin_first(&self) {
            let root = self.connect_elsewhere().await;
            let me = root
                .register("root", PASSWORD)
                .await
                .expect("root registers");
            assert!(me.user.is_admin, "the first account is the admin");
        }

        /// A connection of its own to the harness's server, not logged in.
        async fn connect_elsewhere(&self) -> Client {
            Client::connect(&self.runtime.settings.server, "test")
                .await
                .expect("connect")
        }

        /// Registers `name` on a connection of its own (someone else, or alice before the
        /// client starts) and returns that connection.
        async fn register_elsewhere(&self, name: &str) -> Client {
            let client = self.connect_elsewhere().await;
            client
                .register(name, PASSWORD)
                .await
                .unwrap_or_else(|e| panic!("{name} registers: {e}"));
            client
        }

        /// Logs alice in on a connection of her own, as her shell would.
        async fn alice_elsewhere(&self) -> Client {
            let shell = self.connect_elsewhere().await;
            shell.login("alice", PASSWORD).await.expect("log in");
            shell
        }

        /// Types `command` (a `/create`) and waits until the client is in the new room, which
        /// it shows as `label`; returns its id.
        async fn create_and_enter(&mut self, command: &str, label: &str) -> RoomId {
            self.command(command);
            self.run_until("the new room", |h| {
                h.app.current_room().is_some_and(|r| r.label() == label)
            })
            .await;
            self.app.current.unwrap_or_else(|| panic!("in {label}"))
        }

        /// Closes the connection, waits until the app shows it, and holds off the reconnect.
        async fn drop_connection(&mut self) {
            self.runtime.handle.as_ref().expect("connected").close();
            self.run_until("the drop", |h| {
                matches!(
                    h.app.connection,
                    crate::tui::app::ConnectionState::Disconnected { .. }
                )
            })
            .await;
            self.runtime.reconnect_at = None;
        }

        fn perform_all(&mut self, actions: Vec<Action>) {
            for action in actions {
                self.runtime.perform(&mut self.app, action);
            }
        }

        /// Types a line into the input and presses Enter.
        fn command(&mut self, line: &str) {
            self.app.input.set_text(line);
            let actions = self.app.submit_input();
            self.perform_all(actions);
        }

        /// Runs the loop until the login form shows an error, and returns the form.
        async fn until_the_login_form_errs(&mut self, what: &str) -> &LoginForm {
            self.run_until(
                what,
                |h| matches!(&h.app.screen, Screen::Login(form) if form.error.is_some()),
            )
            .await;
            match &self.app.screen {
                Screen::Login(form) => form,
                _ => unreachable!("run_until returned on the login screen"),
            }
        }

        /// Runs the loop (messages, and a tick every `TICK`) until `done` says so.
        async fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            let mut next_tick = tokio::time::Instant::now() + TICK;
            while !done(self) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {what}; flash: {:?}",
                    self.app.flash
                );
                let actions = match tokio::time::timeout_at(next_tick, self.rx.recv()).await {
                    Ok(Some(msg)) => self.runtime.on_msg(&mut self.app, msg),
                    Ok(None) => panic!("the queue closed"),
                    Err(_) => {
                        next_tick += TICK;
                        self.runtime.on_tick(&mut self.app, now_millis())
                    }
                };
                self.perform_all(actions);
            }
        }

        /// Replaces the client with a new start of it on `settings` (as `chatroom` started
        /// again), as far as it goes before taking the terminal.
        fn restart(&mut self, settings: Settings) {
            let options = TuiOptions {
                mouse: false,
                bell: false,
                away_after_minutes: 0,
            };
            (self.runtime, self.app, self.rx) = start(settings, &options);
        }

        fn type_keys(&mut self, text: &str) {
            for c in text.chars() {
                let key = ratatui::crossterm::event::KeyEvent::from(
                    ratatui::crossterm::event::KeyCode::Char(c),
                );
                let actions = self.app.on_key(key);
                self.perform_all(actions);
            }
        }

        /// Presses `y`, the yes to a question asked before deleting (`confirms`).
        fn answer_yes(&mut self) {
            self.type_keys("y");
        }

        fn press_enter(&mut self) {
            let key = ratatui::crossterm::event::KeyEvent::from(
                ratatui::crossterm::event::KeyCode::Enter,
            );
            let actions = self.app.on_key(key);
            self.perform_all(actions);
        }

        fn transfer_state(&self) -> Option<TransferState> {
            self.app.transfers.last().map(|t| t.state.clone())
        }
    }

    /// `/files`: one line per file, newest first, each with the command that saves it, in the
    /// room asked about even when I have switched rooms before the answer came.
    #[tokio::test]
    async fn slash_files_lists_one_file_a_line_in_the_room_asked_about() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let public = h.app.current.expect("in public");
        let dev = h.create_and_enter("/create dev", "#dev").await;
        for (name, size) in [("notes.txt", 7), ("build.log", 2048)] {
            let source = h.home.path().join(name);
            std::fs::write(&source, vec![b'x'; size]).expect("write the file");
            let before = h.app.transfers.len();
            h.command(&format!("/upload {}", source.display()));
            h.run_until("the upload", |h| {
                h.app.transfers.len() > before
                    && matches!(h.transfer_state(), Some(TransferState::Done(_)))
            })
            .await;
        }
        h.command("/files");
        h.command(&format!("/enter {}", "#public"));
        assert_eq!(h.app.current, Some(public));
        h.run_until("the list", |h| {
            room_log(&h.app, dev)
                .iter()
                .any(|l| l.starts_with("/download "))
        })
        .await;
        let listed: Vec<String> = room_log(&h.app, dev)
            .into_iter()
            .filter(|l| l.starts_with("/download "))
            .collect();
        assert_eq!(
            listed,
            [
                "/download 2: build.log (2.0 KiB, alice)",
                "/download 1: notes.txt (7 B, alice)"
            ]
        );
        assert!(
            !room_log(&h.app, public)
                .iter()
                .any(|l| l.starts_with("/download ")),
            "{:?}",
            room_log(&h.app, public)
        );
        h.command("/files");
        h.run_until("the empty list", |h| {
            room_log(&h.app, public)
                .iter()
                .any(|l| l == "no files in #public yet; /upload PATH")
        })
        .await;
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn an_upload_cut_off_by_a_dropped_connection_resumes_after_the_reconnect() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        assert_eq!(
            h.app.ai_bot.as_deref(),
            Some("ai"),
            "the server named its bot"
        );

        // Period 251 (prime) does not divide the chunk size, so neighbouring chunks differ.
        let data: Vec<u8> = (0..64 * 1024 * 1024 + 5).map(|i| (i % 251) as u8).collect();
        let source = h.home.path().join("big.bin");
        std::fs::write(&source, &data).expect("write the file");
        h.command(&format!("/upload {}", source.display()));

        // Once the server has stored part of it, the connection drops (as when the Wi-Fi goes).
        h.run_until("part of the upload to be stored", |h| {
            h.app
                .transfers
                .last()
                .and_then(|t| t.progress.as_ref())
                .is_some_and(|p| p.phase == Phase::Sending && p.done > 0 && p.done < p.total)
        })
        .await;
        h.runtime.handle.as_ref().expect("connected").close();
        let mut interrupted = false;
        h.run_until("the upload to finish", |h| {
            match h.transfer_state() {
                Some(TransferState::Interrupted(_)) => interrupted = true,
                Some(TransferState::Done(_)) => return true,
                Some(TransferState::Failed(e)) => panic!("the upload failed for good: {e}"),
                _ => {}
            }
            false
        })
        .await;
        assert!(interrupted, "the drop was seen as an interruption");
        let Some(TransferState::Done(text)) = h.transfer_state() else {
            unreachable!("run_until returned on Done");
        };
        assert!(
            text.contains("resumed at"),
            "it continued, not restarted: {text}"
        );
        assert!(h.runtime.generation >= 2, "it reconnected");

        // The posted file comes back down into the download folder, byte for byte.
        h.run_until("the file message", |h| {
            h.app.rooms.values().any(|r| {
                r.timeline.values().any(|e| {
                    matches!(e, crate::tui::app::Entry::Message(m)
                        if matches!(m.kind, chatroom_protocol::MessageKind::File(_)))
                })
            })
        })
        .await;
        h.command("/download");
        h.run_until("the download", |h| {
            h.app.transfers.len() == 2
                && !matches!(h.transfer_state(), Some(TransferState::Running))
        })
        .await;
        assert!(
            matches!(h.transfer_state(), Some(TransferState::Done(ref t)) if t.contains("big.bin")),
            "{:?}",
            h.transfer_state()
        );
        let fetched =
            std::fs::read(h.home.path().join("downloads").join("big.bin")).expect("downloaded");
        assert!(fetched == data, "the download matches the upload");
        h.shutdown.cancel();
    }

    /// The seqs of the messages shown in `room` (not the room's notices).
    /// Whether the status line says `text`, as an error or not.
    fn flash_is(app: &App, text: &str, error: bool) -> bool {
        app.flash
            .as_ref()
            .is_some_and(|(t, e)| t == text && *e == error)
    }

    fn message_seqs(app: &App, room: RoomId) -> Vec<chatroom_protocol::Seq> {
        app.rooms.get(&room).map_or_else(Vec::new, |r| {
            r.timeline
                .values()
                .filter_map(|e| match e {
                    Entry::Message(m) if m.kind != MessageKind::System => Some(m.seq),
                    _ => None,
                })
                .collect()
        })
    }

    /// The event loop applies every queued message before it carries out the actions they
    /// produced, so a live message that arrives right after the resume is in the timeline
    /// before the catch-up starts. The catch-up must still fetch what was missed.
    #[tokio::test]
    async fn a_live_message_during_the_resume_does_not_hide_the_missed_ones() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let public = h.app.current.expect("in public");
        let bob = h.register_elsewhere("bob").await;
        // After the room's notices of the two registrations.
        let m1 = bob.send_message(public, "m1").await.expect("send").seq;
        let seqs = |n: u64| (m1..m1 + n).collect::<Vec<_>>();
        h.run_until("m1", |h| message_seqs(&h.app, public) == seqs(1))
            .await;

        // The connection drops; bob writes 2..=4 meanwhile.
        h.drop_connection().await;
        for i in 2..=4 {
            bob.send_message(public, format!("m{i}"))
                .await
                .expect("send");
        }
        let (_, token) = h.runtime.token.clone().expect("a session");
        h.runtime.connect(Credentials::Token { token, away: None });

        // As the event loop does: the actions of the reconnect wait while the live message
        // queued behind it is applied.
        let mut held = Vec::new();
        loop {
            let msg = tokio::time::timeout(PATIENCE, h.rx.recv())
                .await
                .expect("the reconnect")
                .expect("the queue is open");
            let connected = matches!(msg, Msg::Connected { .. });
            held.extend(h.runtime.on_msg(&mut h.app, msg));
            if connected {
                break;
            }
        }
        bob.send_message(public, "m5").await.expect("send");
        while !message_seqs(&h.app, public).contains(&(m1 + 4)) {
            let msg = tokio::time::timeout(PATIENCE, h.rx.recv())
                .await
                .expect("the live message")
                .expect("the queue is open");
            held.extend(h.runtime.on_msg(&mut h.app, msg));
        }
        h.perform_all(held);
        h.run_until("the missed messages", |h| {
            message_seqs(&h.app, public) == seqs(5)
        })
        .await;
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn a_message_that_cannot_be_sent_goes_back_into_the_input() {
        let mut h = Harness::start().await;
        h.register_alice().await;

        // Refused by the server: a control character.
        h.command("bell \u{7} ring");
        h.run_until("the refusal", |h| h.app.input.text() == "bell \u{7} ring")
            .await;
        assert!(
            h.app
                .flash
                .as_ref()
                .is_some_and(|(t, _)| t.contains("back in the input")),
            "{:?}",
            h.app.flash
        );
        h.app.input.set_text("");

        // Not connected at all.
        h.drop_connection().await;
        h.command("typed during the outage");
        assert_eq!(h.app.input.text(), "typed during the outage");
        assert!(
            h.app
                .flash
                .as_ref()
                .is_some_and(|(t, _)| t.contains("not connected")),
            "{:?}",
            h.app.flash
        );
        h.shutdown.cancel();
    }

    /// A refused `/msg` (no such user) keeps what was typed: back in the input, with why, the
    /// name as typed without its quotes.
    #[tokio::test]
    async fn a_refused_direct_message_goes_back_into_the_input() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        h.command("/msg \"nobodyhere\" a long thoughtful message");
        h.run_until("the refusal", |h| {
            h.app
                .flash
                .as_ref()
                .is_some_and(|(t, _)| t.contains("back in the input"))
        })
        .await;
        assert_eq!(
            h.app.input.text(),
            "/msg nobodyhere a long thoughtful message",
            "the quotes a user name does not need are gone"
        );
        let (text, error) = h.app.flash.clone().unwrap_or_default();
        assert!(
            error && text.contains("no user named nobodyhere)"),
            "{text}"
        );
        h.shutdown.cancel();
    }

    /// Away is mine to end: a reconnect (the server restarted, the network dropped) puts it
    /// back, since a resumed session starts online.
    /// A connection lost without a word backs off to half a minute between attempts; after
    /// the server announced its shutdown (a restart, most often), attempts stay ~2 s apart.
    #[tokio::test]
    async fn a_server_that_said_it_restarts_is_retried_soon() {
        let connected = |h: &mut Harness| {
            matches!(
                h.app.connection,
                crate::tui::app::ConnectionState::Connected
            )
        };
        let mut h = Harness::start().await;
        h.register_alice().await;
        h.drop_connection().await;
        // As after five attempts that failed.
        h.runtime.attempt = 5;
        h.runtime.schedule_reconnect(&mut h.app, "lost".into());
        let lost = h.runtime.reconnect_at.expect("scheduled") - now_millis();
        assert!(lost > 20_000, "the usual backoff: {lost} ms");
        h.runtime.reconnect_at = Some(0);
        h.run_until("the reconnect", connected).await;

        h.shutdown.cancel();
        h.run_until("the shutdown", |h| !connected(h)).await;
        h.runtime.attempt = 5;
        h.runtime
            .schedule_reconnect(&mut h.app, "restarting".into());
        let restarting = h.runtime.reconnect_at.expect("scheduled") - now_millis();
        assert!(
            restarting <= RESTART_RETRY_MS * 3 / 2,
            "soon after a restart: {restarting} ms"
        );
    }

    /// The minutes count from the client's start: a client just started is not idle, however
    /// long ago the epoch was.
    #[tokio::test]
    async fn a_client_just_started_is_not_idle() {
        let home = tempfile::tempdir().expect("home");
        let settings = Settings {
            away_after: 10,
            ..alice_settings("127.0.0.1:1", home.path())
        };
        let options = TuiOptions {
            mouse: false,
            bell: false,
            away_after_minutes: 10,
        };
        let (_runtime, mut app, _rx) = start(settings, &options);
        app.connection = crate::tui::app::ConnectionState::Connected;
        let started = app.now;
        let idle = |actions: Vec<Action>| actions.contains(&Action::Idle(true));
        assert!(!idle(app.tick(started + 60_000)), "a minute in");
        assert!(idle(app.tick(started + 10 * 60_000)), "ten minutes in");
    }

    /// A minute without a key (as set) tells the server this connection is idle: the others
    /// see alice away, with no status text. Her next key brings her back.
    #[tokio::test]
    async fn idle_for_the_minutes_set_shows_away_and_a_key_brings_her_back() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let mut bob = h.register_elsewhere("bob").await;
        let alice = h.app.me.as_ref().expect("logged in").id;
        let mut alice_becomes = async |status: PresenceStatus| {
            tokio::time::timeout(PATIENCE, async {
                loop {
                    match bob.next_event().await {
                        Some(chatroom_protocol::Event::Presence(updates)) => {
                            if let Some(u) = updates
                                .into_iter()
                                .find(|u| u.user == alice && u.status == status)
                            {
                                return u;
                            }
                        }
                        Some(_) => {}
                        None => panic!("bob's connection closed"),
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("alice never became {status:?}"))
        };
        // Her last key, a minute and a second ago.
        h.app.idleness = crate::tui::idle::Idleness::after_minutes(1, now_millis() - 61_000);
        h.run_until("the idle notice", |h| h.app.idleness.told())
            .await;
        let away = alice_becomes(PresenceStatus::Away).await;
        assert_eq!(away.status_message, None);

        let key = TermEvent::Key(KeyEvent::from(KeyCode::Char('h')));
        let actions = h.runtime.on_msg(&mut h.app, Msg::Term(key));
        h.perform_all(actions);
        assert!(!h.app.idleness.told());
        alice_becomes(PresenceStatus::Online).await;
        assert_eq!(h.app.input.text(), "h", "the key is typed too");
        h.shutdown.cancel();
    }

    /// Away by idleness when the connection drops: the new connection starts in use (not
    /// with that away made a chosen one), is told idle again, and a key still brings her back.
    #[tokio::test]
    async fn idle_away_after_a_reconnect_still_ends_with_a_key() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let mut bob = h.register_elsewhere("bob").await;
        let alice = h.app.me.as_ref().expect("logged in").id;
        let mut alice_becomes = async |status: PresenceStatus| {
            tokio::time::timeout(PATIENCE, async {
                loop {
                    match bob.next_event().await {
                        Some(chatroom_protocol::Event::Presence(updates)) => {
                            if updates
                                .iter()
                                .any(|u| u.user == alice && u.status == status)
                            {
                                return;
                            }
                        }
                        Some(_) => {}
                        None => panic!("bob's connection closed"),
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("alice never became {status:?}"))
        };
        h.app.idleness = crate::tui::idle::Idleness::after_minutes(1, now_millis() - 61_000);
        h.run_until("the idle notice", |h| h.app.idleness.told())
            .await;
        alice_becomes(PresenceStatus::Away).await;
        h.run_until("the away shown", |h| h.app.away.is_some())
            .await;

        h.drop_connection().await;
        h.runtime.reconnect_at = Some(0);
        h.run_until("the reconnect and the idle notice again", |h| {
            matches!(
                h.app.connection,
                crate::tui::app::ConnectionState::Connected
            ) && h.app.idleness.told()
        })
        .await;
        alice_becomes(PresenceStatus::Away).await;

        let key = TermEvent::Key(KeyEvent::from(KeyCode::Char('h')));
        let actions = h.runtime.on_msg(&mut h.app, Msg::Term(key));
        h.perform_all(actions);
        alice_becomes(PresenceStatus::Online).await;
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn away_survives_a_reconnect() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        h.command("/away lunch");
        h.run_until("away", |h| h.app.away.as_deref() == Some("lunch"))
            .await;
        h.drop_connection().await;
        h.runtime.reconnect_at = Some(0);
        h.run_until("the reconnect", |h| {
            matches!(
                h.app.connection,
                crate::tui::app::ConnectionState::Connected
            )
        })
        .await;
        // What the server tells someone else now: still away, with the text.
        let other = h.register_elsewhere("bob").await;
        let alice = other
            .list_users()
            .await
            .expect("users")
            .into_iter()
            .find(|u| u.user.username == "alice")
            .expect("alice");
        assert_eq!(alice.status, PresenceStatus::Away);
        assert_eq!(alice.status_message.as_deref(), Some("lunch"));
        assert_eq!(h.app.away.as_deref(), Some("lunch"));
        h.shutdown.cancel();
    }

    /// `/search` against a real server: hits from two of my rooms (and none from a room I am
    /// not in), newest first; `#room` narrows it; Enter opens a hit in its room; a refused
    /// query and a lost connection say so in the status line.
    #[tokio::test]
    async fn slash_search_finds_messages_in_my_rooms_and_enter_opens_one() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let public = h.app.current.expect("in public");
        let dev = h.create_and_enter("/create dev", "#dev").await;
        let bob = h.register_elsewhere("bob").await;
        let secret = bob
            .create_room("secret", Visibility::Private)
            .await
            .expect("a room alice is not in");
        bob.send_message(secret.id, "deploy the secret plan")
            .await
            .expect("send");
        bob.send_message(public, "Déploy on friday?")
            .await
            .expect("send");
        bob.send_message(public, "unrelated chatter")
            .await
            .expect("send");
        h.command("deploy from dev, line one\nline two");
        // A message is searchable a moment after it is stored.
        let handle = h.runtime.handle.clone().expect("connected");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while handle
            .search("deploy", None, None, 10)
            .await
            .map_or(true, |page| page.messages.len() < 2)
        {
            assert!(tokio::time::Instant::now() < deadline, "never indexed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        h.command("/enter #public");
        assert_eq!(h.app.current, Some(public));

        let hits = |app: &App| -> Vec<(RoomId, String)> {
            app.search.as_ref().map_or_else(Vec::new, |v| {
                v.results.iter().map(|m| (m.room, m.text.clone())).collect()
            })
        };
        let loaded = |h: &mut Harness| h.app.search.as_ref().is_some_and(|v| v.loaded);
        h.command("/search DEPLOY");
        h.run_until("the results", loaded).await;
        assert_eq!(
            hits(&h.app),
            [
                (dev, "deploy from dev, line one\nline two".to_string()),
                (public, "Déploy on friday?".to_string())
            ],
            "newest first, case and accents ignored, nothing from #secret"
        );
        assert_eq!(h.app.search.as_ref().and_then(|v| v.next), None);

        h.command("/search #public deploy");
        h.run_until("the results", loaded).await;
        assert_eq!(hits(&h.app), [(public, "Déploy on friday?".to_string())]);

        // Down, Up, Enter: the newest hit, in #dev.
        h.command("/search deploy");
        h.run_until("the results", loaded).await;
        for code in [KeyCode::Down, KeyCode::Up] {
            let actions = h.app.on_key(KeyEvent::from(code));
            h.perform_all(actions);
        }
        let seq = h
            .app
            .search
            .as_ref()
            .and_then(|v| v.results.first())
            .map(|m| m.seq)
            .expect("a hit");
        h.press_enter();
        assert!(h.app.search.is_none(), "back to the room");
        assert_eq!(h.app.current, Some(dev));
        h.run_until("the message in view", |h| h.app.jump.is_none())
            .await;
        let room = h.app.current_room().expect("dev");
        assert_eq!(h.app.highlight, Some((dev, seq)));
        assert!(room.timeline.contains_key(&(seq, 0)), "loaded");
        assert!(
            h.app
                .flash
                .as_ref()
                .is_some_and(|(t, e)| !e && t.starts_with("#dev: alice's message of")),
            "{:?}",
            h.app.flash
        );

        // The server refuses a query with no words: the status line says why.
        h.command("/search !!");
        h.run_until("the refusal", |h| h.app.search.is_none()).await;
        assert_eq!(
            h.app.flash,
            Some(("search for at least one word".into(), true))
        );

        // Not connected: said at once, nothing waits.
        h.drop_connection().await;
        h.command("/search deploy");
        assert!(h.app.search.is_none());
        assert!(
            h.app
                .flash
                .as_ref()
                .is_some_and(|(t, e)| *e && t.contains("not connected")),
            "{:?}",
            h.app.flash
        );
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn ban_removes_a_member_lists_them_and_unban_lets_them_back() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let dev = h.create_and_enter("/create dev", "#dev").await;
        let bob = h.register_elsewhere("bob").await;
        bob.join_room("dev").await.expect("bob joins");
        let has_bob = |app: &App| {
            app.rooms[&dev]
                .members
                .iter()
                .any(|m| m.user.username == "bob")
        };
        h.run_until("bob in the member list", |h| has_bob(&h.app))
            .await;
        let notices = |app: &App| room_log(app, dev);

        h.command("/ban bob spam");
        h.run_until("the ban", |h| {
            flash_is(&h.app, "you banned bob from #dev", false)
                && notices(&h.app).contains(&"alice banned bob: spam".to_owned())
        })
        .await;
        assert!(!has_bob(&h.app), "bob is gone from the member list");

        h.command("/bans");
        let listed = |app: &App| {
            notices(app)
                .iter()
                .any(|n| n.starts_with("banned: bob, by alice (") && n.ends_with("): spam"))
        };
        h.run_until("the list of bans", |h| listed(&h.app)).await;

        let refused = bob.join_room("dev").await.expect_err("bob is banned");
        match refused {
            ClientError::Server(body) => {
                assert_eq!(body.code, ErrorCode::Forbidden);
                assert_eq!(body.message, "you are banned from this room");
            }
            other => panic!("refused for another reason: {other}"),
        }

        h.command("/unban bob");
        h.run_until("the unban", |h| {
            flash_is(&h.app, "bob may join #dev again", false)
                && notices(&h.app).contains(&"alice lifted the ban on bob".to_owned())
        })
        .await;
        h.command("/bans");
        h.run_until("an empty list", |h| {
            notices(&h.app).contains(&"no one is banned from #dev".to_owned())
        })
        .await;
        bob.join_room("dev").await.expect("bob may join again");

        // The server's refusals show in the status line, as /kick's do.
        h.command("/unban bob");
        h.run_until("the refusal", |h| {
            flash_is(&h.app, "they are not banned here", true)
        })
        .await;
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn mute_edit_and_their_events_go_through_the_server() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let dev = h.create_and_enter("/create dev", "#dev").await;
        let mut bob = h.register_elsewhere("bob").await;
        bob.join_room("dev").await.expect("bob joins");
        let notices = |app: &App| room_log(app, dev);

        h.command("/mute bob 10m flooding");
        h.run_until("the mute, heard back from the server", |h| {
            // For the ten minutes asked, not "until unmuted".
            notices(&h.app).contains(&"alice muted bob for 10 min: flooding".to_owned())
                && h.app.is_muted(dev, "bob")
        })
        .await;
        // A member list fetched afresh (on entering the room) marks bob too.
        h.app.rooms.get_mut(&dev).expect("dev").muted.clear();
        h.perform_all(vec![Action::Members(dev)]);
        h.run_until("the member list with its mutes", |h| {
            h.app.is_muted(dev, "bob")
        })
        .await;
        let refused = bob.send_message(dev, "hm").await.expect_err("bob is muted");
        assert!(refused.to_string().contains("muted in #dev"), "{refused}");
        h.command("/mutes");
        h.run_until("the list of mutes", |h| {
            notices(&h.app)
                .iter()
                .any(|n| n.starts_with("muted: bob, by alice (") && n.ends_with(": flooding"))
        })
        .await;
        h.command("/unmute bob");
        h.run_until("the unmute", |h| {
            notices(&h.app).contains(&"alice unmuted bob".to_owned()) && !h.app.is_muted(dev, "bob")
        })
        .await;
        bob.send_message(dev, "thanks")
            .await
            .expect("bob posts again");

        // alice's typo, corrected with /edit: bob sees the edit, and so does alice's screen.
        h.command("typo teh");
        h.run_until("alice's message", |h| {
            h.app.rooms[&dev]
                .timeline
                .values()
                .any(|e| matches!(e, crate::tui::app::Entry::Message(m) if m.text == "typo teh"))
        })
        .await;
        h.command("/edit");
        assert_eq!(h.app.input.text(), "typo teh");
        h.app.input.set_text("typo the");
        let actions = h.app.submit_input();
        h.perform_all(actions);
        let edited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match bob.next_event().await {
                    Some(chatroom_protocol::Event::MessageEdited(m)) => return m,
                    Some(_) => {}
                    None => panic!("bob's connection closed"),
                }
            }
        })
        .await
        .expect("bob hears of the edit");
        assert_eq!(edited.text, "typo the");
        h.run_until("the edit on alice's screen", |h| {
            h.app.rooms[&dev].timeline.values().any(|e| {
                matches!(e, crate::tui::app::Entry::Message(m)
                    if m.text == "typo the"
                        && matches!(m.kind, chatroom_protocol::MessageKind::Edited { .. }))
            })
        })
        .await;
        h.shutdown.cancel();
    }

    /// `/purge bob 10m`, once `y` confirms, deletes all bob posted in the room, more than the
    /// server takes in one request, and says how many in the status line; alice's screen shows
    /// each one deleted and carol's message stays. Asked again, nothing is left; where alice
    /// moderates nothing, the server's reason shows as the error.
    #[tokio::test]
    async fn purge_deletes_all_someone_posted_lately_and_says_how_many() {
        let mut h = Harness::start_with(|config| {
            config.limits.messages_per_second = 10_000;
            config.limits.message_burst = 10_000;
        })
        .await;
        // Not an admin, who moderates every room she is in.
        h.register_admin_first().await;
        h.register_alice().await;
        let public = h.app.current.expect("in public");
        let dev = h.create_and_enter("/create dev", "#dev").await;
        let bob = h.register_elsewhere("bob").await;
        let carol = h.register_elsewhere("carol").await;
        for member in [&bob, &carol] {
            member.join_room("dev").await.expect("joins");
        }
        // One more than a request deletes, so that all of it takes two.
        let spam = u64::from(chatroom_protocol::MAX_DELETED_AT_ONCE) + 1;
        for i in 1..=spam {
            bob.send_message(dev, format!("spam {i}"))
                .await
                .expect("send");
        }
        carol
            .send_message(dev, "a real question")
            .await
            .expect("send");
        let by = |app: &App, sender: &str, kind: fn(&MessageKind) -> bool| {
            app.rooms[&dev]
                .timeline
                .values()
                .filter(
                    |e| matches!(e, Entry::Message(m) if m.sender_name == sender && kind(&m.kind)),
                )
                .count()
        };
        let text = |kind: &MessageKind| *kind == MessageKind::Text;
        let deleted = |kind: &MessageKind| *kind == MessageKind::Deleted;
        h.run_until("the messages", |h| {
            by(&h.app, "bob", text) == spam as usize && by(&h.app, "carol", text) == 1
        })
        .await;

        h.command("/purge bob 10m");
        assert!(
            matches!(
                h.app.confirming,
                Some(crate::tui::confirms::Confirming::Purge(_))
            ),
            "asked first"
        );
        h.answer_yes();
        h.run_until("the tally, and each message shown deleted", |h| {
            flash_is(
                &h.app,
                "deleted 501 messages of bob's from the last 10 min",
                false,
            ) && by(&h.app, "bob", deleted) == spam as usize
        })
        .await;
        assert_eq!(by(&h.app, "carol", text), 1, "carol's message stays");

        h.command("/purge @bob");
        h.answer_yes();
        h.run_until("nothing left", |h| {
            flash_is(
                &h.app,
                "nothing of bob's to delete from the last 1 h",
                false,
            )
        })
        .await;

        h.app.enter_room(public);
        h.command("/purge bob");
        h.answer_yes();
        h.run_until("the refusal", |h| {
            flash_is(
                &h.app,
                "only the owner or a moderator of a named room may delete someone's messages",
                true,
            )
        })
        .await;
        h.shutdown.cancel();
    }

    /// `/create --private retro bob nobody carol`: alice, its owner, is in the member list with
    /// bob and carol, the count says 3, and the one who could not be invited is named.
    #[tokio::test]
    async fn a_room_created_with_invitees_lists_everyone_in_it() {
        let mut h = Harness::start().await;
        for name in ["bob", "carol"] {
            h.register_elsewhere(name).await;
        }
        h.register_alice().await;
        h.command("/create --private retro bob nobody carol");
        h.run_until("the new room with its members", |h| {
            h.app
                .current_room()
                .is_some_and(|r| r.label() == "#retro" && r.members.len() == 3)
        })
        .await;
        let room = h.app.current_room().expect("retro");
        let members: Vec<(String, RoomRole)> = room
            .members
            .iter()
            .map(|m| (m.user.username.clone(), m.role))
            .collect();
        assert_eq!(
            members,
            [
                ("alice".to_owned(), RoomRole::Owner),
                ("bob".to_owned(), RoomRole::Member),
                ("carol".to_owned(), RoomRole::Member),
            ]
        );
        assert_eq!(room.summary.member_count, 3);
        assert!(
            h.app.flash.as_ref().is_some_and(|(t, error)| *error
                && t.starts_with("created #")
                && t.contains("; could not invite nobody: ")),
            "{:?}",
            h.app.flash
        );
        h.shutdown.cancel();
    }

    /// Someone posts in a room I am not reading; then I post there from my shell (another
    /// session): the server moved my read marker, and this client counts nothing unread.
    #[tokio::test]
    async fn a_message_i_send_from_elsewhere_marks_the_room_read_here() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let scratch = h.create_and_enter("/create scratch", "#scratch").await;
        h.command("/enter public");
        let bob = h.register_elsewhere("bob").await;
        bob.join_room("scratch").await.expect("bob joins");
        bob.send_message(scratch, "@alice look")
            .await
            .expect("send");
        let counts = |app: &App| {
            let s = &app.rooms[&scratch].summary;
            (s.unread, s.mentions)
        };
        h.run_until("bob's message counted", |h| counts(&h.app) == (1, 1))
            .await;
        let shell = h.alice_elsewhere().await;
        shell
            .send_message(scratch, "seen it")
            .await
            .expect("send from the shell");
        h.run_until("the room read", |h| counts(&h.app) == (0, 0))
            .await;
        let rooms = shell.my_rooms().await.expect("rooms");
        let on_server = rooms.iter().find(|r| r.id == scratch).expect("scratch");
        assert_eq!(
            (on_server.unread, on_server.mentions),
            (0, 0),
            "as the server says"
        );
        h.shutdown.cancel();
    }

    /// `/away lunch`: the status line's state says so once the server took it, and `/back`
    /// takes it away.
    #[tokio::test]
    async fn away_is_kept_in_the_state_until_back() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        h.command("/away lunch");
        h.run_until("away", |h| h.app.away.as_deref() == Some("lunch"))
            .await;
        h.command("/back");
        h.run_until("back", |h| h.app.away.is_none()).await;
        h.shutdown.cancel();
    }

    /// `/create "dev ops"` asks the server for `dev ops`, whose refusal says why; no room
    /// named `"dev` is made.
    #[tokio::test]
    async fn a_quoted_room_name_goes_to_the_server_whole() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        h.command("/create \"dev ops\" bob");
        h.run_until("the refusal", |h| {
            h.app.flash.as_ref().is_some_and(|(text, error)| {
                *error && text == "a room name may not contain spaces (use - or _)"
            })
        })
        .await;
        let names: Vec<&str> = h
            .app
            .rooms
            .values()
            .map(|r| r.summary.name.as_str())
            .collect();
        assert_eq!(names, ["public"]);
        h.shutdown.cancel();
    }

    /// `/join` of a room that is not there names the room asked for; a refusal for another
    /// reason names it too, with the server's words.
    #[tokio::test]
    async fn a_join_refused_names_the_room() {
        let mut h = Harness::start().await;
        h.register_admin_first().await;
        h.register_alice().await;
        let flash_is = |app: &App, text: &str| {
            app.flash
                .as_ref()
                .is_some_and(|(t, error)| t == text && *error)
        };
        h.command("/join nosuchroom");
        h.run_until("the refusal", |h| {
            flash_is(
                &h.app,
                "no room named #nosuchroom (/list -g lists the public rooms)",
            )
        })
        .await;
        let secret = h
            .create_and_enter("/create --private secret", "#secret")
            .await;
        let bob = h.register_elsewhere("bob").await;
        let bobs = bob
            .create_room("bobs", Visibility::Public)
            .await
            .expect("bob's room")
            .id;
        bob.ban(bobs, "alice", None).await.expect("bob bans alice");
        h.command("/join #bobs");
        h.run_until("the ban", |h| {
            flash_is(&h.app, "cannot join #bobs: you are banned from this room")
        })
        .await;
        assert_eq!(h.app.current, Some(secret), "still where she was");
        h.shutdown.cancel();
    }

    /// `/delete bob` in a room alice owns deletes bob's message for everyone once Enter
    /// confirms; in bob's room, where she is a member, the server's refusal is the error.
    #[tokio::test]
    async fn an_owner_deletes_someones_message_and_a_member_is_refused() {
        let mut h = Harness::start().await;
        h.register_admin_first().await;
        h.register_alice().await;
        let dev = h.create_and_enter("/create dev", "#dev").await;
        let bob = h.register_elsewhere("bob").await;
        bob.join_room("dev").await.expect("bob joins");
        let bobs_message = |app: &App, room: RoomId| {
            app.rooms.get(&room).and_then(|r| {
                r.timeline.values().find_map(|e| match e {
                    Entry::Message(m)
                        if m.sender_name == "bob" && m.kind != MessageKind::System =>
                    {
                        Some(m.kind.clone())
                    }
                    _ => None,
                })
            })
        };
        bob.send_message(dev, "buy cheap watches")
            .await
            .expect("send");
        h.run_until("bob's message", |h| bobs_message(&h.app, dev).is_some())
            .await;
        h.command("/delete bob");
        assert!(h.app.deleting().is_some(), "asked first");
        assert_eq!(bobs_message(&h.app, dev), Some(MessageKind::Text));
        h.answer_yes();
        h.run_until("the deletion", |h| {
            bobs_message(&h.app, dev) == Some(MessageKind::Deleted)
        })
        .await;

        let bobs = bob
            .create_room("bobs", Visibility::Public)
            .await
            .expect("bob's room")
            .id;
        h.command("/join bobs");
        h.run_until("bob's room", |h| h.app.current == Some(bobs))
            .await;
        bob.send_message(bobs, "my room, my rules")
            .await
            .expect("send");
        h.run_until("bob's message", |h| bobs_message(&h.app, bobs).is_some())
            .await;
        h.command("/delete bob");
        h.answer_yes();
        h.run_until("the refusal", |h| {
            h.app.flash.as_ref().is_some_and(|(text, error)| {
                *error
                    && text
                        == "cannot delete that message: only its sender, the room's owner or a \
                            moderator may delete a message"
            })
        })
        .await;
        assert_eq!(bobs_message(&h.app, bobs), Some(MessageKind::Text));
        h.shutdown.cancel();
    }

    /// B3 against a real server: #retro2 read, carol joins (a notice) before a restart, and
    /// bob's messages arrive live while alice is in #public. Entering #retro2, the divider is
    /// above bob's first new message at once, and still is once the history has come.
    #[tokio::test]
    async fn live_messages_in_a_room_not_opened_since_the_start_get_the_divider() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let retro = h.create_and_enter("/create retro2", "#retro2").await;
        let bob = h.register_elsewhere("bob").await;
        bob.join_room("retro2").await.expect("bob joins");
        bob.send_message(retro, "an old one").await.expect("send");
        // Seen where she is, and marked read on the tick.
        h.run_until("read on the server", |h| {
            h.app.rooms[&retro].newest_seq() >= 2 && h.app.rooms[&retro].summary.unread == 0
        })
        .await;
        let shell = h.alice_elsewhere().await;
        let read = |rooms: Vec<RoomSummary>| {
            rooms
                .into_iter()
                .find(|r| r.id == retro)
                .map(|r| (r.last_read_seq, r.latest_seq))
        };
        // The marker moves on a tick; the server has it once its room list says so.
        let mut marked = false;
        for _ in 0..200 {
            let (marker, latest) = read(shell.my_rooms().await.expect("rooms")).expect("retro2");
            marked = marker == latest;
            if marked {
                break;
            }
            let actions = h.runtime.on_tick(&mut h.app, now_millis());
            h.perform_all(actions);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(marked, "retro2 read on the server");
        h.command("/enter public");
        let carol = h.register_elsewhere("carol").await;
        carol.join_room("retro2").await.expect("carol joins");

        let settings = h.runtime.settings.clone();
        h.restart(settings);
        h.run_until("the resume", |h| h.app.current.is_some()).await;
        let summary = h.app.rooms[&retro].summary.clone();
        assert_eq!(summary.unread, 0, "a notice is no news: {summary:?}");
        assert!(summary.latest_seq > summary.last_read_seq, "{summary:?}");
        for i in 1..=3 {
            bob.send_message(retro, format!("new {i}"))
                .await
                .expect("send");
        }
        h.run_until("counted", |h| h.app.rooms[&retro].summary.unread == 3)
            .await;
        let under_divider = |app: &App| {
            let room = &app.rooms[&retro];
            let (row, _) = crate::tui::ui::divider_row(app, room, 80)?;
            crate::tui::ui::timeline_rows(app, room, 80)
                .get(row + 1)
                .map(ToString::to_string)
        };
        let actions = h.app.enter_room(retro);
        assert!(
            under_divider(&h.app).is_some_and(|row| row.contains("bob: new 1")),
            "{:?}",
            under_divider(&h.app)
        );
        h.perform_all(actions);
        h.run_until("the history", |h| h.app.rooms[&retro].latest_loaded)
            .await;
        assert!(
            h.app.rooms[&retro]
                .timeline
                .values()
                .any(|e| matches!(e, Entry::Message(m) if m.text == "an old one")),
            "the history came"
        );
        assert!(
            under_divider(&h.app).is_some_and(|row| row.contains("bob: new 1")),
            "{:?}",
            under_divider(&h.app)
        );
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn leaving_a_room_says_so() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        h.create_and_enter("/create dev", "#dev").await;
        h.command("/leave");
        h.run_until("the confirmation", |h| {
            h.app
                .flash
                .as_ref()
                .is_some_and(|(text, error)| text == "you left #dev" && !error)
        })
        .await;
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn a_password_file_logs_in_without_the_form() {
        let mut h = Harness::start().await;
        let mut settings = h.runtime.settings.clone();
        let _alice = h.register_elsewhere("alice").await;
        let file = h.home.path().join("password");
        std::fs::write(&file, format!("{PASSWORD}\n")).expect("write");
        settings.password_file = Some(file);
        h.restart(settings.clone());
        assert!(
            matches!(&h.app.screen, Screen::Login(form) if form.busy),
            "logging in at once"
        );
        h.run_until("the login", |h| h.app.current.is_some()).await;

        // A file that cannot be read is said on the form.
        let mut missing = settings;
        missing.password_file = Some(h.home.path().join("no-such-file"));
        missing.data_dir = Some(h.home.path().join("elsewhere"));
        h.restart(missing);
        assert!(
            matches!(&h.app.screen, Screen::Login(form)
                if !form.busy && form.error.as_deref().is_some_and(|e| e.contains("no-such-file"))),
            "the reason is shown"
        );
        h.shutdown.cancel();
    }

    /// A room the app lists but the server does not let me read.
    fn ghost_room(id: RoomId) -> RoomSummary {
        RoomSummary {
            id,
            kind: chatroom_protocol::RoomKind::Public,
            name: "ghost".into(),
            topic: String::new(),
            member_count: 1,
            latest_seq: 10,
            last_read_seq: 10,
            unread: 0,
            mentions: 0,
            my_role: None,
        }
    }

    #[tokio::test]
    async fn a_request_for_older_messages_that_cannot_be_sent_or_fails_can_be_made_again() {
        let mut h = Harness::start().await;
        let ghost = RoomId(424_242);
        let summary = ghost_room(ghost);
        h.app.on_event(Event::RoomUpdated(summary.clone()));
        let loading = |app: &App| app.rooms.get(&ghost).is_some_and(|r| r.loading_older);
        let load = Action::LoadOlder {
            room: ghost,
            before: 5,
        };

        // Not connected: nothing is sent, and nothing is waited for.
        h.app.rooms.get_mut(&ghost).expect("ghost").loading_older = true;
        h.perform_all(vec![load.clone()]);
        assert!(!loading(&h.app), "no connection, no request in flight");

        // Connected, but the server refuses (not a room of mine).
        h.register_alice().await;
        h.app.on_event(Event::RoomUpdated(summary));
        h.app.rooms.get_mut(&ghost).expect("ghost").loading_older = true;
        h.perform_all(vec![load]);
        h.run_until("the refusal", |h| !loading(&h.app)).await;
        assert!(h.app.flash.as_ref().is_some_and(|(_, error)| *error));
        h.shutdown.cancel();
    }

    /// `chatroom` started with no user named: the name typed on the login form is remembered,
    /// so the next start resumes that session without a password, until `/logout`.
    #[tokio::test]
    async fn with_no_user_named_the_last_user_to_log_in_here_is_resumed_until_logout() {
        let mut h = Harness::start().await;
        let mut settings = h.runtime.settings.clone();
        settings.user = None;
        let _alice = h.register_elsewhere("Alice").await;
        let login_form = |app: &App| match &app.screen {
            Screen::Login(form) => Some((form.username.text(), form.busy)),
            Screen::Chat => None,
        };

        // First start: nobody named, nothing kept: an empty form, and no connection.
        h.restart(settings.clone());
        assert_eq!(h.runtime.generation, 0, "nothing to resume");
        assert_eq!(login_form(&h.app), Some((String::new(), false)));
        h.type_keys("alice");
        h.press_enter();
        h.type_keys(PASSWORD);
        h.press_enter();
        h.run_until("the login", |h| h.app.current.is_some()).await;
        let token = h.runtime.token.clone().expect("a session").1;

        // Next start, still no user named: that session is resumed, no password asked.
        h.restart(settings.clone());
        assert_eq!(
            login_form(&h.app),
            Some(("Alice".to_string(), true)),
            "resuming as the user who logged in last, by the server's spelling"
        );
        assert_eq!(h.runtime.generation, 1, "resuming at once");
        h.run_until("the resume", |h| h.app.current.is_some()).await;
        assert_eq!(
            h.app.me.as_ref().map(|me| me.username.as_str()),
            Some("Alice")
        );
        assert_eq!(
            h.runtime.token.as_ref().map(|(_, t)| t.as_str()),
            Some(token.as_str()),
            "the same session"
        );

        // A user named on the command line still wins.
        let mut bob_settings = settings.clone();
        bob_settings.user = Some("bob".into());
        let (bob_user, bob_saved) = kept_session(&bob_settings);
        assert_eq!(bob_user.as_deref(), Some("bob"));
        assert!(bob_saved.is_none(), "bob has no kept session");

        // After /logout the next start asks again, name and all.
        h.command("/logout");
        h.run_until("the logout", |h| h.runtime.quit).await;
        h.restart(settings);
        assert_eq!(h.runtime.generation, 0, "nothing to resume");
        assert_eq!(login_form(&h.app), Some((String::new(), false)));
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn a_request_for_the_newest_page_that_cannot_be_sent_or_fails_is_made_again() {
        let mut h = Harness::start().await;
        let ghost = RoomId(424_243);
        let summary = ghost_room(ghost);
        h.app.on_event(Event::RoomUpdated(summary.clone()));
        let loading = |app: &App| app.rooms.get(&ghost).is_some_and(|r| r.loading_latest);

        // Not connected: nothing is sent, and nothing is waited for.
        let actions = h.app.enter_room(ghost);
        assert!(actions.contains(&Action::LoadLatest(ghost)), "{actions:?}");
        assert!(loading(&h.app));
        h.perform_all(actions);
        assert!(!loading(&h.app), "no connection, no request in flight");

        // Connected, but the server refuses (not a room of mine): the next visit asks again.
        h.runtime.connect(Credentials::Password {
            user: "alice".into(),
            password: PASSWORD.into(),
            register: true,
        });
        h.run_until("the login", |h| h.runtime.handle.is_some())
            .await;
        h.app.on_event(Event::RoomUpdated(summary));
        let actions = h.app.enter_room(ghost);
        assert!(actions.contains(&Action::LoadLatest(ghost)), "{actions:?}");
        h.perform_all(actions);
        h.run_until("the refusal", |h| !loading(&h.app)).await;
        assert!(h.app.flash.as_ref().is_some_and(|(_, error)| *error));
        assert!(h.app.enter_room(ghost).contains(&Action::LoadLatest(ghost)));
        h.shutdown.cancel();
    }

    #[test]
    fn bracketed_paste_is_turned_on_and_off_again() {
        let mut out = Vec::new();
        enable_modes(&mut out, false).expect("write");
        assert_eq!(String::from_utf8_lossy(&out), "\x1b[?2004h");
        let mut out = Vec::new();
        disable_modes(&mut out, true);
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains("\x1b[?2004l"), "{out:?}");
        assert!(out.contains("\x1b[?1000l"), "the mouse too: {out:?}");
    }

    /// The panic hook cannot be tried in this process (it is global), so a child runs this test
    /// again: it installs the hook and panics, and its output must turn the modes off.
    #[test]
    fn a_panic_turns_bracketed_paste_and_the_mouse_off() {
        if std::env::var_os("CHATROOM_PANIC_PROBE").is_some() {
            install_restore_hook(true);
            panic!("probe");
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "tui::runtime::tests::a_panic_turns_bracketed_paste_and_the_mouse_off",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CHATROOM_PANIC_PROBE", "1")
            .output()
            .expect("run the probe");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("\x1b[?2004l"), "{stdout:?}");
        assert!(stdout.contains("\x1b[?1000l"), "{stdout:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("probe"),
            "the panic is still reported"
        );
    }

    #[tokio::test]
    async fn a_refused_session_asks_its_user_for_a_password_or_uses_the_configured_one() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        // The session stops being accepted while alice is away (an admin logged her out): the
        // reconnect offers a token the server does not know.
        h.drop_connection().await;
        h.runtime.token = Some(("alice".into(), "no longer valid".into()));
        h.runtime.reconnect_at = Some(0);
        let form = h.until_the_login_form_errs("the refusal").await;
        assert_eq!(form.username.text(), "alice", "her name is kept");
        assert_eq!(form.focus, LoginField::Password);
        assert!(!form.busy);

        // With a password configured (here a --password-file), she is logged in again at once.
        let password_file = h.home.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("write");
        h.runtime.settings.password_file = Some(password_file);
        h.app.current = None;
        h.runtime.token = Some(("alice".into(), "no longer valid".into()));
        h.runtime.connect(Credentials::Token {
            token: "no longer valid".into(),
            away: None,
        });
        h.run_until("the login with the configured password", |h| {
            h.app.current.is_some() && h.runtime.token.is_some()
        })
        .await;
        h.shutdown.cancel();
    }

    /// The login form shows the server it tries but cannot change it: a server it cannot
    /// reach says so, and how to name another.
    #[tokio::test]
    async fn an_unreachable_server_on_the_login_form_says_how_to_name_another() {
        let mut h = Harness::start().await;
        // A port nothing listens on: bound, then let go.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .to_string();
        h.runtime.settings.server = closed.clone();
        h.app.screen = Screen::Login(Box::default());
        h.runtime.connect(Credentials::Password {
            user: "alice".into(),
            password: PASSWORD.into(),
            register: false,
        });
        let form = h.until_the_login_form_errs("the failure").await;
        let error = form.error.clone().unwrap_or_default();
        assert!(
            error.starts_with(&format!("cannot reach {closed}: ")),
            "{error}"
        );
        assert!(
            error.ends_with("(another server: Esc, then chatroom --server HOST:PORT)"),
            "{error}"
        );
        h.shutdown.cancel();
    }

    /// A new account's name taken: the form goes back to the name, the passwords kept, so a
    /// second Enter does not send the same name again.
    #[tokio::test]
    async fn a_taken_name_on_the_new_account_form_goes_back_to_the_name() {
        let mut h = Harness::start().await;
        h.register_admin_first().await;
        let mut form = LoginForm {
            register: true,
            focus: LoginField::Repeat,
            ..LoginForm::default()
        };
        form.username.set_text("ROOT");
        form.password.set_text(PASSWORD);
        form.repeat.set_text(PASSWORD);
        form.busy = true;
        h.app.screen = Screen::Login(Box::new(form));
        h.runtime.connect(Credentials::Password {
            user: "ROOT".into(),
            password: PASSWORD.into(),
            register: true,
        });
        let form = h.until_the_login_form_errs("the refusal").await;
        assert!(
            form.error.as_deref().is_some_and(|e| e.contains("taken")),
            "{:?}",
            form.error
        );
        assert_eq!(form.focus, LoginField::Username);
        assert_eq!(
            (form.password.text(), form.repeat.text()),
            (PASSWORD.to_string(), PASSWORD.to_string())
        );
        assert!(!form.busy);
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn a_refused_registration_shows_the_servers_reason_on_the_login_form() {
        let mut h = Harness::start_with(|c| c.limits.registrations_per_ip_per_hour = 1).await;
        h.runtime.connect(Credentials::Password {
            user: "alice".into(),
            password: PASSWORD.into(),
            register: true,
        });
        h.run_until("the first account", |h| h.app.current.is_some())
            .await;

        // The same address registers again: refused, and the form says why.
        h.app.screen = Screen::Login(Box::default());
        h.runtime.connect(Credentials::Password {
            user: "bob".into(),
            password: PASSWORD.into(),
            register: true,
        });
        let form = h.until_the_login_form_errs("the refusal").await;
        let error = form.error.clone().unwrap_or_default();
        assert!(error.contains("too many accounts"), "{error}");
        assert!(!error.contains("cannot reach"), "{error}");
        h.shutdown.cancel();
    }

    /// Someone opens a direct chat with alice, or invites her to a room, and writes at once:
    /// the server adds her to the room before it tells her about it, so the message can come
    /// first (here the announcement is held back until the message has been applied). The
    /// room is fetched and shows up with the message in it, counted unread; the late
    /// announcement changes nothing.
    #[tokio::test]
    async fn a_message_from_a_room_not_known_yet_brings_the_room_with_it() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        let public = h.app.current.expect("in public");
        let bob = h.register_elsewhere("bob").await;
        let direct = bob.open_direct("alice").await.expect("open direct").id;
        bob.send_message(direct, "hi alice, got a minute?")
            .await
            .expect("send");
        let plans = bob
            .create_room("plans", Visibility::Private)
            .await
            .expect("create")
            .id;
        bob.invite(plans, "alice").await.expect("invite");
        bob.send_message(plans, "welcome to plans")
            .await
            .expect("send");

        let shows = |app: &App, room: RoomId, text: &str| {
            app.rooms.get(&room).is_some_and(|r| {
                r.timeline
                    .values()
                    .any(|e| matches!(e, Entry::Message(m) if m.text == text))
            })
        };
        let mut announcements = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !(shows(&h.app, direct, "hi alice, got a minute?")
            && shows(&h.app, plans, "welcome to plans"))
        {
            let msg = tokio::time::timeout_at(deadline, h.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for the rooms; known: {:?}",
                        h.app.room_order()
                    )
                })
                .expect("the queue is open");
            if let Msg::Server(_, Event::RoomUpdated(summary)) = &msg
                && (summary.id == direct || summary.id == plans)
            {
                announcements.push(msg);
                continue;
            }
            let actions = h.runtime.on_msg(&mut h.app, msg);
            h.perform_all(actions);
        }
        assert_eq!(announcements.len(), 2, "both announcements were held back");
        let unread = |app: &App, room: RoomId| app.rooms[&room].summary.unread;
        assert_eq!((unread(&h.app, direct), unread(&h.app, plans)), (1, 1));
        assert_eq!(h.app.rooms[&direct].label(), "@bob");
        assert_eq!(
            h.app.rooms[&plans].members.len(),
            2,
            "its members came with it"
        );
        assert_eq!(h.app.current, Some(public), "alice stays where she is");

        for msg in announcements {
            let actions = h.runtime.on_msg(&mut h.app, msg);
            h.perform_all(actions);
        }
        assert_eq!((unread(&h.app, direct), unread(&h.app, plans)), (1, 1));
        let messages = |app: &App, room: RoomId| {
            app.rooms[&room]
                .timeline
                .values()
                .filter(|e| matches!(e, Entry::Message(m) if m.kind != MessageKind::System))
                .count()
        };
        assert_eq!((messages(&h.app, direct), messages(&h.app, plans)), (1, 1));
        h.shutdown.cancel();
    }

    /// alice, the server's first account and so its admin, manages accounts from the TUI:
    /// bob suspended (his login refused), listed and let back in; carol promoted and demoted,
    /// each told once, and a promotion that changes nothing answered; her own account and a
    /// name nobody has refused with the server's reason; `/user delete` asks, then deletes.
    #[tokio::test]
    async fn an_admin_manages_accounts_with_slash_user() {
        let mut h = Harness::start().await;
        h.register_alice().await;
        assert!(h.app.me.as_ref().is_some_and(|me| me.is_admin));
        let public = h.app.current.expect("in a room");
        let _bob = h.register_elsewhere("bob").await;
        let _carol = h.register_elsewhere("carol").await;
        let has = |app: &App, line: &str| room_log(app, public).iter().any(|n| n == line);
        let told = |app: &App, lines: &[&str]| {
            room_log(app, public)
                .iter()
                .filter(|n| lines.contains(&n.as_str()))
                .count()
        };
        let server = h.runtime.settings.server.clone();
        // A login of NAME's on a connection of its own: whether NAME is a server admin.
        let log_in = |name: &'static str| {
            let server = server.clone();
            async move {
                let client = Client::connect(&server, "test").await.expect("connect");
                client
                    .login(name, PASSWORD)
                    .await
                    .map(|session| session.user.is_admin)
            }
        };

        h.command("/user suspend @bob spam");
        h.run_until("the suspension", |h| {
            has(
                &h.app,
                "bob is suspended: logged out everywhere, and refused at login until \
                 /user unsuspend bob",
            )
        })
        .await;
        let refused = log_in("bob").await.expect_err("bob is suspended");
        assert!(refused.to_string().contains("suspended"), "{refused}");
        h.command("/user suspended");
        h.run_until("the list", |h| {
            room_log(&h.app, public)
                .iter()
                .any(|n| n.starts_with("suspended: bob, by alice (") && n.ends_with("): spam"))
        })
        .await;
        h.command("/user unsuspend bob");
        h.run_until("the unsuspension", |h| has(&h.app, "bob may log in again"))
            .await;
        log_in("bob").await.expect("bob may log in again");

        // The event everyone hears and the answer may come in either order: one tells it.
        let promoted = ["you made carol a server admin", "carol is a server admin"];
        h.command("/user promote carol");
        h.run_until("the promotion", |h| told(&h.app, &promoted) == 1)
            .await;
        assert_eq!(log_in("carol").await.ok(), Some(true), "carol is an admin");
        h.command("/user promote carol");
        h.run_until("the answer to a promotion that changed nothing", |h| {
            told(&h.app, &promoted) == 2
        })
        .await;
        let demoted = [
            "you took away carol's server admin role",
            "carol is not a server admin",
        ];
        h.command("/user demote carol");
        h.run_until("the demotion", |h| told(&h.app, &demoted) == 1)
            .await;
        assert_eq!(log_in("carol").await.ok(), Some(false), "carol is no admin");
        h.command("/user suspended");
        h.run_until("an empty list", |h| has(&h.app, "no account is suspended"))
            .await;
        assert_eq!(
            (told(&h.app, &promoted), told(&h.app, &demoted)),
            (2, 1),
            "nothing told twice: {:?}",
            room_log(&h.app, public)
        );

        h.command("/user demote alice");
        h.run_until("the refusal of her own account", |h| {
            flash_is(
                &h.app,
                "that is your own account: another server admin must do that, so that the \
                 server keeps one",
                true,
            )
        })
        .await;
        h.command("/user logout nobody");
        h.run_until("the refusal of an unknown name", |h| {
            h.app
                .flash
                .as_ref()
                .is_some_and(|(text, error)| *error && text.contains("nobody"))
        })
        .await;

        h.command("/user delete bob");
        assert!(
            matches!(
                h.app.confirming,
                Some(crate::tui::confirms::Confirming::DeleteAccount(_))
            ),
            "asked first"
        );
        log_in("bob").await.expect("nothing deleted before y");
        h.answer_yes();
        h.run_until("the deletion", |h| {
            has(
                &h.app,
                "deleted bob's account: logged out and gone from every room; the messages stay",
            )
        })
        .await;
        log_in("bob").await.expect_err("bob's account is gone");
        h.shutdown.cancel();
    }

    /// Anyone who is not a server admin is refused by the server, with its reason.
    #[tokio::test]
    async fn slash_user_is_refused_to_someone_who_is_no_admin() {
        let mut h = Harness::start().await;
        h.register_admin_first().await;
        h.register_alice().await;
        let _bob = h.register_elsewhere("bob").await;
        h.command("/user suspend bob");
        h.run_until("the refusal", |h| {
            flash_is(&h.app, "only a server admin may suspend an account", true)
        })
        .await;
        h.command("/user suspended");
        h.run_until("the refusal of the list", |h| {
            flash_is(
                &h.app,
                "only a server admin may list suspended accounts",
                true,
            )
        })
        .await;
        h.command("/user delete bob");
        h.answer_yes();
        h.run_until("the refusal of the deletion", |h| {
            flash_is(&h.app, "only a server admin may delete an account", true)
        })
        .await;
        let bob = h.connect_elsewhere().await;
        bob.login("bob", PASSWORD)
            .await
            .expect("bob is still there");
        h.shutdown.cancel();
    }
}
