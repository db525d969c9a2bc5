//! A standup bot on the `chatroom-protocol` client: `!standup` in a room lists who posted there
//! over the last 24 hours (read back from the room's history), and a direct message to it gets
//! a line saying how to use it. It rides out server restarts (`chatroom_protocol::reconnecting`)
//! and stops cleanly on Ctrl-C.
//!
//! Three things it shows that the other examples do not:
//! - looking back with `history`, a page at a time, newest first, until the pages are older than
//!   what it wants;
//! - telling a direct chat from a room: a message does not say which it came from, so the bot
//!   keeps each room's kind. `Event::RoomUpdated` announces a room added while connected; one
//!   added while the bot was disconnected (a direct chat someone opened meanwhile) is announced
//!   by nothing but its caught-up messages, so an unknown room is looked up (`room_info`);
//! - stopping on request: `close()`, and return.
//!
//! ```text
//! cargo run --example standup_bot -- 127.0.0.1:8888 standup-bot public
//! ```
//! The password comes from `CHATROOM_PASSWORD` (default: "standup-bot-password").

use chatroom_protocol::reconnecting::{
    ReconnectError, ReconnectEvent, ReconnectOptions, ReconnectingClient, ReconnectingHandle,
};
use chatroom_protocol::{
    Event, HistoryAnchor, Message, MessageKind, RoomId, RoomKind, UserId, now_millis,
};
use std::collections::{HashMap, HashSet};
use std::future::Future;

/// How far back `!standup` looks: a day, in milliseconds.
const LOOKBACK_MS: u64 = 24 * 60 * 60 * 1000;

/// At most this many pages of history per `!standup`: a bound on one answer's work in a room
/// that posts more in a day than that.
const MAX_PAGES: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:8888".into());
    let name = args.next().unwrap_or_else(|| "standup-bot".into());
    let room_name = args.next().unwrap_or_else(|| "public".into());
    let password =
        std::env::var("CHATROOM_PASSWORD").unwrap_or_else(|_| "standup-bot-password".into());
    run(&server, &name, &room_name, &password, ctrl_c()).await
}

/// Resolves on Ctrl-C (SIGINT). Needs tokio's `signal` feature.
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        // Without it the bot still stops on SIGTERM or SIGKILL, just not cleanly.
        eprintln!("cannot listen for Ctrl-C: {e}");
        std::future::pending::<()>().await;
    }
}

/// Logs in as `name` (registering on first run), joins `room_name`, and answers `!standup` in
/// any room it is in and every direct message, until `stop` resolves: then it closes the
/// connection and returns `Ok`. Otherwise it returns only with an error: the first login
/// refused, or a later one refused for good (the password was changed).
pub async fn run(
    server: &str,
    name: &str,
    room_name: &str,
    password: &str,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let options = ReconnectOptions::new(server, name, password)
        .client_name("standup-bot")
        .register_if_missing()
        .join(room_name);
    let mut client = ReconnectingClient::connect(options).await?;
    let me = client.session().user;
    if me.is_admin {
        // The first account a server registers is its admin: a bot started first takes it.
        eprintln!(
            "warning: {} is a server admin; `chatroom-server user demote {}` takes that away",
            me.username, me.username
        );
    }
    println!("{} is listening in {room_name}", me.username);

    let mut kinds: HashMap<RoomId, RoomKind> = HashMap::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        // A message being answered is answered before a stop is noticed.
        let event = tokio::select! {
            event = client.next_event() => event,
            () = &mut stop => {
                // Closes the connection now, whichever handles are still around; returning
                // (dropping the client) would close it too once the last handle is gone.
                client.close();
                println!("{} stopped", me.username);
                return Ok(());
            }
        };
        match event {
            Some(ReconnectEvent::Event(Event::RoomUpdated(room))) => {
                kinds.insert(room.id, room.kind);
            }
            Some(ReconnectEvent::Event(Event::Message(message))) => {
                answer(&client, &mut kinds, me.id, message).await;
            }
            // Refused for good: an error saying why, so that a supervisor (systemd's
            // `Restart=on-failure`) shows it, and does not start the bot in a loop.
            Some(ReconnectEvent::Stopped(why)) => return Err(ReconnectError::Stopped(why).into()),
            Some(other) => {
                if let Some(note) = other.connection_note() {
                    eprintln!("{}: {note}", me.username);
                }
            }
            None => anyhow::bail!("the client stopped"),
        }
    }
}

/// Answers `message` if it asks for something: `!standup` in a room, anything in a direct
/// chat. A refused answer (too fast, kicked) is logged; the bot carries on.
async fn answer(
    client: &ReconnectingHandle,
    kinds: &mut HashMap<RoomId, RoomKind>,
    me: UserId,
    message: Message,
) {
    // My own messages come back as events too (and the room's notices, kind `System`):
    // answering those would have the bot talk to itself in a direct chat.
    if message.sender == me || message.kind != MessageKind::Text {
        return;
    }
    let reply = if room_kind(client, kinds, message.room).await == Some(RoomKind::Direct) {
        format!(
            "hi {}: say !standup in a room we share and I list who posted there in the last 24 hours",
            message.sender_name
        )
    } else if message.text.trim() == "!standup" {
        match posted_lately(client, message.room, me).await {
            Ok(names) if names.is_empty() => "nobody posted here in the last 24 hours".to_string(),
            Ok(names) => format!("posted in the last 24 hours: {}", names.join(", ")),
            Err(e) => format!("cannot read this room's history: {e}"),
        }
    } else {
        return;
    };
    let max_chars = client.welcome().limits.max_message_chars as usize;
    if let Err(e) = client
        .send_message(message.room, truncate_chars(&reply, max_chars))
        .await
    {
        eprintln!("cannot answer {}: {e}", message.sender_name);
    }
}

/// The kind of `room`, looked up the first time it is met (`None` when that fails). A room
/// announced by `Event::RoomUpdated` is known already; one added while the bot was
/// disconnected is not announced, only its messages are caught up.
async fn room_kind(
    client: &ReconnectingHandle,
    kinds: &mut HashMap<RoomId, RoomKind>,
    room: RoomId,
) -> Option<RoomKind> {
    if let Some(kind) = kinds.get(&room) {
        return Some(*kind);
    }
    match client.room_info(room).await {
        Ok(info) => {
            kinds.insert(room, info.room.kind);
            Some(info.room.kind)
        }
        Err(e) => {
            eprintln!("cannot look up room {}: {e}", room.0);
            None
        }
    }
}

/// Who posted in `room` over the last `LOOKBACK_MS` (myself and the room's notices left out),
/// in the order of their first message there.
async fn posted_lately(
    client: &ReconnectingHandle,
    room: RoomId,
    me: UserId,
) -> Result<Vec<String>, ReconnectError> {
    let since = now_millis().saturating_sub(LOOKBACK_MS);
    // A bigger page is cut to this by the server anyway.
    let page_size = client.welcome().limits.max_history_page;
    let mut anchor = HistoryAnchor::Latest;
    // Newest first, as the pages go back.
    let mut recent: Vec<Message> = Vec::new();
    for _ in 0..MAX_PAGES {
        // Each page is oldest first.
        let page = client.history(room, anchor, page_size).await?;
        let Some(oldest) = page.messages.first().map(|m| (m.seq, m.ts)) else {
            break;
        };
        recent.extend(
            page.messages
                .into_iter()
                .rev()
                .take_while(|m| m.ts >= since),
        );
        match oldest {
            (seq, ts) if ts >= since && page.has_more => anchor = HistoryAnchor::Before(seq),
            _ => break,
        }
    }
    let mut named = HashSet::new();
    Ok(recent
        .into_iter()
        .rev()
        .filter(|m| m.sender != me && !matches!(m.kind, MessageKind::System | MessageKind::Deleted))
        .filter(|m| named.insert(m.sender))
        .map(|m| m.sender_name)
        .collect())
}

/// `text` cut to at most `max_chars` characters, ending in `…` when cut.
fn truncate_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
