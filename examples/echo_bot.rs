//! An echo bot on the `chatroom-protocol` client: it logs in (registering on first run),
//! joins a room, and answers every message that mentions it. It rides out server restarts
//! (`chatroom_protocol::reconnecting`), answering the mentions it missed meanwhile.
//!
//! It also answers the mentions made while its own process was not running (stopped, deployed,
//! crashed): a bot whose job is to answer every mention must not lose those. So it starts from
//! its read markers (`ReconnectOptions::catch_up_from_read_markers`), which the server keeps,
//! and moves them (`mark_read`) only *after* handling a message: a mention it had not answered
//! when it stopped is answered by the next run (at least once), and one it had answered is not
//! answered again (the server moves my marker to my reply, past the mention). Of more than 1000
//! messages per room posted while it was stopped, the older ones are skipped, and logged.
//!
//! ```text
//! cargo run --example echo_bot -- 127.0.0.1:8888 echo-bot public
//! ```
//! The password comes from `CHATROOM_PASSWORD` (default: "echo-bot-password").

use chatroom_protocol::mentions::mentions_user;
use chatroom_protocol::reconnecting::{
    ReconnectError, ReconnectEvent, ReconnectOptions, ReconnectingClient, ReconnectingHandle,
};
use chatroom_protocol::{ErrorCode, Event, MessageKind, RoomId, Seq};
use std::collections::HashMap;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:8888".into());
    let name = args.next().unwrap_or_else(|| "echo-bot".into());
    let room_name = args.next().unwrap_or_else(|| "public".into());
    let password =
        std::env::var("CHATROOM_PASSWORD").unwrap_or_else(|_| "echo-bot-password".into());
    run(&server, &name, &room_name, &password).await
}

/// Logs in as `name` (registering on first run), joins `room_name` and answers every message
/// that mentions it. It reconnects by itself when the connection drops (a server restart, say)
/// and answers the mentions it missed meanwhile, or since its last run stopped; it returns only
/// with an error: the first login refused, or a later one refused for good (the password was
/// changed).
///
/// A reply the server refuses (too fast, or the bot was kicked from the room) is logged and
/// the bot carries on: one message in the room must not be able to stop it. Replies are cut to
/// the server's message limit, with a visible `…`.
pub async fn run(server: &str, name: &str, room_name: &str, password: &str) -> anyhow::Result<()> {
    let options = ReconnectOptions::new(server, name, password)
        .client_name("echo-bot")
        .register_if_missing()
        .join(room_name)
        .catch_up_from_read_markers();
    let (client, mut events) = ReconnectingClient::connect(options).await?.into_parts();
    let me = client.session().user;
    if me.is_admin {
        // The first account a server registers is its admin: a bot started first takes it.
        eprintln!(
            "warning: {} is a server admin; `chatroom-server user demote {}` takes that away",
            me.username, me.username
        );
    }
    println!("{} is listening in {room_name}", me.username);

    // Handled, not yet marked read: the newest message per room. Marked whenever no event
    // waits, so that a burst (a catch-up) costs a request per room, not one per message.
    let mut unmarked: HashMap<RoomId, Seq> = HashMap::new();
    while let Some(event) = events.recv().await {
        let message = match event {
            ReconnectEvent::Event(Event::Message(message)) => message,
            // Refused for good: an error saying why, so that a supervisor (systemd's
            // `Restart=on-failure`) shows it, and does not start the bot in a loop.
            ReconnectEvent::Stopped(why) => return Err(ReconnectError::Stopped(why).into()),
            other => {
                if let Some(note) = other.connection_note() {
                    eprintln!("{}: {note}", me.username);
                }
                continue;
            }
        };
        let for_me = message.kind == MessageKind::Text
            && message.sender != me.id
            && mentions_user(&message.text, &me.username);
        if for_me {
            let reply = format!("{} said: {}", message.sender_name, message.text);
            // The limit of the server connected now (it may have been reconfigured).
            let max_chars = client.welcome().limits.max_message_chars as usize;
            let reply = truncate_chars(&reply, max_chars);
            if let Err(e) = client.send_message(message.room, reply).await {
                eprintln!("cannot answer {}: {e}", message.sender_name);
            }
        }
        // After handling, answered or not: a reply refused now would be refused again.
        unmarked.insert(message.room, message.seq);
        if events.is_empty() {
            mark_read(&client, &mut unmarked).await;
        }
    }
    anyhow::bail!("the client stopped")
}

/// Moves my read markers up to the handled messages. One that fails for a while (disconnected,
/// too fast) stays, to be marked next time (a later message of its room covers it: markers
/// only move forward); one the server refuses (no longer a member) would be refused again.
async fn mark_read(client: &ReconnectingHandle, unmarked: &mut HashMap<RoomId, Seq>) {
    let mut still = HashMap::new();
    for (room, seq) in unmarked.drain() {
        if let Err(e) = client.mark_read(room, seq).await {
            eprintln!("cannot mark room {} read: {e}", room.0);
            if matches!(e.code(), None | Some(ErrorCode::RateLimited)) {
                still.insert(room, seq);
            }
        }
    }
    *unmarked = still;
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
