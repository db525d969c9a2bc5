//! The AI bot inside the server: a reserved account that answers `@ai …` mentions in rooms it
//! is in, and every message of a direct chat with it.
//!
//! It never blocks a connection. A triggering message is spotted on the sender's connection
//! task (a cheap check of the mentions already parsed) and, once committed, handed to the bot
//! through a bounded queue with `try_send`. One dispatcher task takes questions off that queue,
//! applies the per-user and per-room rate limits (to everything the bot says for someone,
//! commands included), answers `status`, `help` and `clear` itself, applies the per-user cap
//! on questions pending and the circuit breaker, and starts answers when one of
//! `max_concurrent` slots is free — questions wait in a bounded line, and past it the bot says
//! it is busy. Refusals ("busy", "unavailable", "you have questions pending") are said to each
//! user at most once per rate window, so no one can make the bot talk without bound.
//!
//! Modules:
//! - [`guard`]: rate limits and the circuit breaker.
//! - `answer`: one answer — context from storage, the backend's stream, drafts, the result.
//! - `speak`: how the bot posts: stored messages (answers and notices) and streamed drafts.
//! - `split`: where a reply too long for one message continues in the next.

pub mod guard;

mod answer;
mod speak;
mod split;

use chatroom_ai::{Backend, builtin::Builtin, openai};
use chatroom_protocol::{MessageKind, RoomId, RoomKind, Seq, UserId};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AiBackendKind, AiConfig, Config};
use crate::hub::{Hub, RoomView};
use crate::storage::{Storage, UserRow, WriteOp};
use guard::{Breaker, OncePer, Rate, RateLimiter};

/// Questions handed over from storage completions that the dispatcher has not taken yet.
const INTAKE: usize = 256;
/// Rate limit windows.
const RATE_PERIOD: Duration = Duration::from_secs(60);
/// Most questions one user may have waiting or being answered at once.
pub(crate) const PER_USER_PENDING: usize = 2;

/// The refusals each user hears at most once per rate window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Refusal {
    /// The line is full.
    Busy,
    /// The circuit breaker is open.
    Unavailable,
    /// They have [`PER_USER_PENDING`] questions pending already.
    Pending,
}

/// A committed message that asks the bot something.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    /// Where it was asked.
    pub room: RoomId,
    /// In a direct chat with the bot.
    pub direct: bool,
    /// The question's seq: the context is what came before it.
    pub seq: Seq,
    /// Who asked.
    pub asker: UserId,
    /// Their name.
    pub asker_name: String,
    /// The message as written.
    pub text: String,
}

/// What the dispatcher and the answers share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub bot: UserRow,
    pub hub: Arc<Hub>,
    pub storage: Storage,
    pub config: AiConfig,
    pub backend: Backend,
    /// The server's longest message: a longer reply continues in further messages.
    pub max_chars: usize,
    pub breaker: Mutex<Breaker>,
    pub slots: Arc<Semaphore>,
    pub next_draft: AtomicU64,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    user_limits: Mutex<RateLimiter<UserId>>,
    room_limits: Mutex<RateLimiter<RoomId>>,
    /// Refusals already said to a user in this window.
    refusals: Mutex<OncePer<(UserId, Refusal)>>,
    /// Questions waiting or being answered, per user (absent: none).
    pending: Mutex<HashMap<UserId, usize>>,
}

impl Inner {
    /// The breaker, even after a panic elsewhere poisoned its lock.
    pub fn breaker(&self) -> MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the bot is (still) a member of `room`.
    pub fn is_member(&self, room: RoomId) -> bool {
        !self
            .hub
            .members_named(room, std::slice::from_ref(&self.bot.name_key))
            .is_empty()
    }

    /// Says `refusal` to `user` in `room`, unless they heard it already in this window.
    pub async fn refuse(&self, room: RoomId, user: UserId, refusal: Refusal, text: String) {
        let first = self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first((user, refusal), Instant::now());
        if first {
            speak::notice(self, room, text).await;
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<UserId, usize>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One of a user's pending questions: counted while it waits or is answered, and no longer
/// once this is dropped (answered, failed, or dropped at shutdown).
#[derive(Debug)]
pub(crate) struct Pending {
    inner: Arc<Inner>,
    user: UserId,
}

impl Pending {
    /// Counts a question for `user`, unless they have [`PER_USER_PENDING`] already.
    fn take(inner: &Arc<Inner>, user: UserId) -> Option<Pending> {
        let mut pending = inner.pending();
        let count = pending.entry(user).or_insert(0);
        if *count >= PER_USER_PENDING {
            return None;
        }
        *count += 1;
        Some(Pending {
            inner: Arc::clone(inner),
            user,
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut pending = self.inner.pending();
        if let Some(count) = pending.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                pending.remove(&self.user);
            }
        }
    }
}

/// The running bot, as the rest of the server sees it.
#[derive(Debug)]
pub(crate) struct Ai {
    inner: Arc<Inner>,
    intake: mpsc::Sender<Job>,
    runtime: tokio::runtime::Handle,
    /// Questions handed to the bot since start (for the metrics endpoint).
    questions: AtomicU64,
}

/// The backend the configuration asks for.
fn backend(config: &AiConfig) -> Result<Backend, chatroom_ai::AiError> {
    Ok(match config.backend {
        AiBackendKind::Builtin | AiBackendKind::Off => Backend::Builtin(Builtin),
        AiBackendKind::Openai => {
            let mut o = openai::OpenAiConfig::new(config.endpoint.clone(), config.model.clone());
            o.api_key.clone_from(&config.api_key);
            o.timeouts = config.timeouts();
            Backend::OpenAi(Box::new(openai::OpenAi::new(o)?))
        }
    })
}

/// Refuses a configuration whose backend cannot work (an `openai` endpoint that is no http(s)
/// URL, say), for the command line to stop at start rather than run with the bot off.
pub fn check_config(config: &AiConfig) -> Result<(), chatroom_ai::AiError> {
    backend(config).map(drop)
}

/// The endpoint URL requests go to, for logs (it holds no credentials: those are refused in
/// it); `None` for the built-in backend.
pub(crate) fn endpoint(backend: &Backend) -> Option<&str> {
    match backend {
        Backend::OpenAi(openai) => Some(openai.url()),
        _ => None,
    }
}

impl Ai {
    /// The bot's account name (as stored: the `--ai-name` it was created with).
    pub fn name(&self) -> &str {
        &self.inner.bot.name
    }

    /// Starts the bot if it is configured and its account is there. Must run on the runtime.
    pub fn start(
        config: &Config,
        hub: Arc<Hub>,
        storage: Storage,
        bot: Option<UserRow>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Option<Arc<Ai>> {
        if config.ai.backend == AiBackendKind::Off {
            return None;
        }
        let bot = bot?;
        let backend = match backend(&config.ai) {
            Ok(backend) => backend,
            Err(e) => {
                tracing::error!(
                    endpoint = %config.ai.endpoint,
                    error = %e,
                    "the AI bot stays off"
                );
                return None;
            }
        };
        tracing::info!(
            name = %bot.name,
            backend = backend.kind(),
            model = backend.model(),
            "AI bot ready"
        );
        hub.set_resident(bot.id);
        let ai = &config.ai;
        let inner = Arc::new(Inner {
            bot,
            hub,
            storage,
            max_chars: config.limits.max_message_chars.max(1) as usize,
            breaker: Mutex::new(Breaker::new(
                ai.breaker_failures,
                Duration::from_millis(ai.breaker_cooldown_ms),
            )),
            slots: Arc::new(Semaphore::new(ai.max_concurrent.max(1) as usize)),
            next_draft: AtomicU64::new(1),
            shutdown,
            tracker: tracker.clone(),
            user_limits: Mutex::new(RateLimiter::new(ai.user_per_minute, RATE_PERIOD)),
            room_limits: Mutex::new(RateLimiter::new(ai.room_per_minute, RATE_PERIOD)),
            refusals: Mutex::new(OncePer::new(RATE_PERIOD)),
            pending: Mutex::new(HashMap::new()),
            config: ai.clone(),
            backend,
        });
        let (intake, queue) = mpsc::channel(INTAKE);
        tracker.spawn(dispatch(Arc::clone(&inner), queue));
        Some(Arc::new(Ai {
            inner,
            intake,
            runtime: tokio::runtime::Handle::current(),
            questions: AtomicU64::new(0),
        }))
    }

    /// Whether a message from `sender` in the room `view`, mentioning `mention_keys`, asks the
    /// bot: a whole-word `@bot` mention in a room the bot is in, or anything in a direct chat
    /// with it. Nothing else.
    pub fn is_asked(&self, view: &RoomView, sender: UserId, mention_keys: &[String]) -> bool {
        let bot = &self.inner.bot;
        if sender == bot.id {
            return false;
        }
        let bot_is_member = self
            .inner
            .hub
            .room_view(view.row.id, bot.id)
            .is_some_and(|v| v.my_role.is_some());
        bot_is_member && (view.row.kind == RoomKind::Direct || mention_keys.contains(&bot.name_key))
    }

    /// Hands a committed question to the bot without waiting (this runs on the storage
    /// writer thread). A full queue gets a "busy" notice instead (once per user and window).
    pub fn submit(&self, job: Job) {
        self.questions.fetch_add(1, Ordering::Relaxed);
        match self.intake.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                let inner = Arc::clone(&self.inner);
                self.runtime.spawn(async move {
                    let text = busy_text(&inner.bot.name);
                    inner.refuse(job.room, job.asker, Refusal::Busy, text).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Ai {
    /// Questions handed to the bot since the server started, answered or not.
    pub fn questions(&self) -> u64 {
        self.questions.load(Ordering::Relaxed)
    }

    /// Answers being generated now.
    pub fn answering(&self) -> usize {
        let slots = self.inner.config.max_concurrent.max(1) as usize;
        slots.saturating_sub(self.inner.slots.available_permits())
    }
}

fn busy_text(bot: &str) -> String {
    format!("{bot}: too many questions at once; ask again in a moment.")
}

/// Takes questions off the intake, handles commands, and starts answers as slots free up.
async fn dispatch(inner: Arc<Inner>, mut intake: mpsc::Receiver<Job>) {
    let mut waiting: VecDeque<(Job, Pending)> = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            _ = inner.shutdown.cancelled() => break,
            permit = Arc::clone(&inner.slots).acquire_owned(), if !waiting.is_empty() => {
                let Ok(permit) = permit else { break };
                if let Some((job, pending)) = waiting.pop_front() {
                    let answer = answer::run(Arc::clone(&inner), job, permit);
                    inner.tracker.spawn(async move {
                        answer.await;
                        drop(pending);
                    });
                }
            }
            job = intake.recv() => {
                let Some(job) = job else { break };
                accept(&inner, job, &mut waiting).await;
            }
        }
    }
}

/// The question with the bot's mentions taken out.
pub(crate) fn question_of(text: &str, bot_key: &str) -> String {
    use crate::auth::{mentions, name_key};
    let mut out = String::new();
    // Where the text not yet copied starts.
    let mut copied = 0;
    for mention in mentions(text) {
        if mention.at < copied || name_key(mention.name) != bot_key {
            continue;
        }
        out.push_str(&text[copied..mention.at]);
        let tail = &text[mention.end()..];
        let mut rest = tail.strip_prefix([',', ':']).unwrap_or(tail);
        if out.is_empty() || out.ends_with(' ') {
            rest = rest.trim_start_matches(' ');
        }
        copied = text.len() - rest.len();
    }
    out.push_str(&text[copied..]);
    out.trim().to_string()
}

/// Handles one question as it arrives: the rate limits first (everything the bot says for
/// someone counts), then commands at once, questions into the line.
async fn accept(inner: &Arc<Inner>, job: Job, waiting: &mut VecDeque<(Job, Pending)>) {
    let bot = inner.bot.name.clone();
    let now = Instant::now();
    let user_rate = inner
        .user_limits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(&job.asker, now);
    let room_rate = inner
        .room_limits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(&job.room, now);
    let refusal = match (user_rate, room_rate) {
        (Rate::Limited { retry_in, notify }, _) => Some((
            notify,
            format!(
                "{bot}: {} is asking too often; try again in {} s.",
                job.asker_name,
                secs(retry_in)
            ),
        )),
        (_, Rate::Limited { retry_in, notify }) => Some((
            notify,
            format!(
                "{bot}: this room is asking too often; try again in {} s.",
                secs(retry_in)
            ),
        )),
        _ => None,
    };
    if let Some((notify, text)) = refusal {
        if notify {
            speak::notice(inner, job.room, text).await;
        }
        return;
    }
    let question = question_of(&job.text, &inner.bot.name_key);
    let command = question.to_lowercase();
    if matches!(command.as_str(), "status" | "" | "help" | "clear") {
        record(inner, &job, now);
        let text = match command.as_str() {
            "status" => status_text(inner, waiting.len()),
            "clear" => clear(inner, &job).await,
            _ => help_text(inner),
        };
        speak::post(inner, job.room, MessageKind::Text, text, None).await;
        return;
    }
    let Some(pending) = Pending::take(inner, job.asker) else {
        let text = format!(
            "{bot}: {} already has {PER_USER_PENDING} questions waiting for an answer; \
             ask again once they are answered.",
            job.asker_name
        );
        inner
            .refuse(job.room, job.asker, Refusal::Pending, text)
            .await;
        return;
    };
    let blocked = inner.breaker().blocks(now);
    if let Some(retry_in) = blocked {
        let text = unavailable_text(&bot, retry_in);
        inner
            .refuse(job.room, job.asker, Refusal::Unavailable, text)
            .await;
        return;
    }
    if waiting.len() >= inner.config.max_waiting as usize {
        let text = busy_text(&bot);
        inner.refuse(job.room, job.asker, Refusal::Busy, text).await;
        return;
    }
    record(inner, &job, now);
    waiting.push_back((job, pending));
}

/// Counts `job` against its asker's and its room's limits.
fn record(inner: &Inner, job: &Job, now: Instant) {
    inner
        .user_limits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(job.asker, now);
    inner
        .room_limits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(job.room, now);
}

/// `@ai clear`: the room's context starts after this message. Returns the reply.
async fn clear(inner: &Inner, job: &Job) -> String {
    let op = WriteOp::SetAiContextStart {
        room: job.room,
        after_seq: job.seq,
    };
    match inner.storage.writer.write(op).await {
        Ok(_) => "Context cleared: I will only look at messages after this one.".into(),
        Err(e) => {
            tracing::error!(error = %e, "storing an AI context reset failed");
            "I could not clear the context; try again.".to_string()
        }
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs_f32().ceil().max(1.0) as u64
}

pub(crate) fn unavailable_text(bot: &str, retry_in: Duration) -> String {
    if retry_in.is_zero() {
        format!("{bot}: the AI is unavailable; checking whether it is back. Try again shortly.")
    } else {
        format!(
            "{bot}: the AI is unavailable after repeated failures; try again in {} s.",
            secs(retry_in)
        )
    }
}

fn status_text(inner: &Inner, waiting: usize) -> String {
    let slots = inner.config.max_concurrent.max(1) as usize;
    let busy = slots.saturating_sub(inner.slots.available_permits());
    format!(
        "Backend {} · model {} · {} · answering {busy} of {slots}, {waiting} waiting · \
         context: last {} messages, {} characters · limits: {} per user, {} per room per minute",
        inner.backend.kind(),
        inner.backend.model(),
        inner.breaker().describe(Instant::now()),
        inner.config.context_messages,
        inner.config.context_chars,
        limit_text(inner.config.user_per_minute),
        limit_text(inner.config.room_per_minute),
    )
}

fn limit_text(n: u32) -> String {
    if n == 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

fn help_text(inner: &Inner) -> String {
    let name = &inner.bot.name;
    format!(
        "Ask me with @{name} QUESTION in a room I am in, or write to me directly (/msg {name} …). \
         @{name} status: backend and health · @{name} clear: forget this room's conversation so \
         far · @{name} help: this text. {}",
        inner.backend.help()
    )
}

#[cfg(test)]
mod tests {
    use super::question_of;

    #[test]
    fn the_mention_is_taken_out_of_the_question() {
        assert_eq!(question_of("@ai what is up?", "ai"), "what is up?");
        assert_eq!(question_of("hey @AI, summary 5", "ai"), "hey summary 5");
        assert_eq!(question_of("@ai: status", "ai"), "status");
        assert_eq!(
            question_of("mail ai@example.com @bob", "ai"),
            "mail ai@example.com @bob"
        );
        assert_eq!(question_of("@aide help", "ai"), "@aide help");
        assert_eq!(question_of("just a DM", "ai"), "just a DM");
    }
}
