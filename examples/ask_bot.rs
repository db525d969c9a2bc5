//! An `!ask` bot on the `chatroom-protocol` client: it logs in (registering on first run) and,
//! in every room it is a member of, relays `!ask QUESTION` to an OpenAI-compatible endpoint
//! and posts the answer — the server's built-in AI bot's pattern, from outside the server.
//!
//! ```text
//! ASK_BOT_ENDPOINT=http://192.168.1.20:11434/v1 ASK_BOT_MODEL=llama3.2 \
//!     cargo run --example ask_bot -- 127.0.0.1:8888 ask-bot
//! ```
//! The password comes from `CHATROOM_PASSWORD` (default: "ask-bot-password"), the API key (if
//! the endpoint wants one) from `CHATROOM_AI_API_KEY`. Invite the bot to a room with
//! `/invite ask-bot`.
//!
//! Like the server's bot it never blocks its event loop: each question runs in its own task,
//! at most two at a time (others are told to wait), each bounded by the backend's timeouts.
//! It rides out server restarts (`chatroom_protocol::reconnecting`); questions asked while it
//! was away are answered after the reconnect.
//!
//! It does not catch up across runs of its own process (no
//! `ReconnectOptions::catch_up_from_read_markers`): a question asked while the bot was stopped
//! is not answered when it starts again. After a stop (minutes, or a night) such questions are
//! stale, each answer is a model call, and a backlog would meet the two answer slots all at once
//! (everyone but two told "busy"). Nor could its read marker say what was handled: answers are
//! posted from tasks running side by side, and each one moves the marker past the questions
//! still being answered. Ask again once it is back.

use chatroom_ai::openai::{ApiKey, OpenAi, OpenAiConfig};
use chatroom_ai::{Backend, Prompt, RoomFacts};
use chatroom_protocol::reconnecting::{
    ReconnectError, ReconnectEvent, ReconnectOptions, ReconnectingClient,
};
use chatroom_protocol::{Event, MessageKind};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:8888".into());
    let name = args.next().unwrap_or_else(|| "ask-bot".into());
    let password = std::env::var("CHATROOM_PASSWORD").unwrap_or_else(|_| "ask-bot-password".into());
    let endpoint =
        std::env::var("ASK_BOT_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:11434/v1".into());
    let model = std::env::var("ASK_BOT_MODEL").unwrap_or_else(|_| "llama3.2".into());

    let mut config = OpenAiConfig::new(endpoint, model);
    config.api_key = std::env::var("CHATROOM_AI_API_KEY")
        .ok()
        .and_then(|k| ApiKey::new(&k));
    let backend = Arc::new(Backend::OpenAi(Box::new(OpenAi::new(config)?)));
    run(&server, &name, &password, backend).await
}

/// Logs in as `name` (registering on first run) and answers `!ask` with `backend` in every room
/// it is a member of, reconnecting by itself; it returns only with an error (a login refused
/// for good). A reply the server refuses is logged, never the end of the bot; answers are cut
/// to the server's message limit.
pub async fn run(
    server: &str,
    name: &str,
    password: &str,
    backend: Arc<Backend>,
) -> anyhow::Result<()> {
    let options = ReconnectOptions::new(server, name, password)
        .client_name("ask-bot")
        .register_if_missing();
    let mut client = ReconnectingClient::connect(options).await?;
    let me = client.session().user;
    if me.is_admin {
        // The first account a server registers is its admin: a bot started first takes it.
        eprintln!(
            "warning: {} is a server admin; `chatroom-server user demote {}` takes that away",
            me.username, me.username
        );
    }
    println!(
        "{} relays !ask to {} ({})",
        me.username,
        backend.model(),
        backend.kind()
    );

    let max_chars = client.welcome().limits.max_message_chars as usize;
    let slots = Arc::new(Semaphore::new(2));
    let handle = client.handle();
    while let Some(event) = client.next_event().await {
        let message = match event {
            ReconnectEvent::Event(Event::Message(message)) => message,
            // Refused for good: an error saying why, for the supervisor's log.
            ReconnectEvent::Stopped(why) => return Err(ReconnectError::Stopped(why).into()),
            other => {
                if let Some(note) = other.connection_note() {
                    eprintln!("{}: {note}", me.username);
                }
                continue;
            }
        };
        if message.kind != MessageKind::Text || message.sender == me.id {
            continue;
        }
        let Some(question) = message.text.strip_prefix("!ask ") else {
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Refused (too fast, or no longer a member): log it and carry on, so that nobody in
            // the room can stop the bot by making a reply fail.
            if let Err(e) = handle
                .send_message(message.room, "busy; ask again in a moment")
                .await
            {
                eprintln!("cannot say busy: {e}");
            }
            continue;
        };
        let prompt = Prompt {
            system: "You answer questions in a team chat, briefly.".into(),
            bot_name: me.username.clone(),
            asker: message.sender_name.clone(),
            question: question.to_string(),
            history: Vec::new(),
            room: RoomFacts::default(),
        };
        let (backend, handle) = (Arc::clone(&backend), handle.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut reply = backend.ask(prompt);
            let mut text = String::new();
            let answer = loop {
                match reply.next().await {
                    Some(Ok(delta)) => text.push_str(&delta),
                    Some(Err(e)) => break format!("no answer: {e}"),
                    None => break text,
                }
            };
            let answer = chatroom_ai::truncate_chars(answer.trim(), max_chars);
            if !answer.is_empty()
                && let Err(e) = handle.send_message(message.room, answer).await
            {
                eprintln!("cannot post the answer: {e}");
            }
        });
    }
    anyhow::bail!("the client stopped")
}
