//! An echo bot on the `chatroom-protocol` client: it logs in (registering on first run),
//! joins a room, and answers every message that mentions it. It rides out server restarts
//! (`chatroom_protocol::reconnecting`), answering the mentions it missed meanwhile.
//!
//! ```text
//! cargo run --example echo_bot -- 127.0.0.1:8888 echo-bot public
//! ```
//! The password comes from `CHATROOM_PASSWORD` (default: "echo-bot-password").

use chatroom_protocol::mentions::mentions_user;
use chatroom_protocol::reconnecting::{
    ReconnectError, ReconnectEvent, ReconnectOptions, ReconnectingClient,
};
use chatroom_protocol::{Event, MessageKind};

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
/// and answers the mentions it missed meanwhile; it returns only with an error: the first
/// login refused, or a later one refused for good (the password was changed).
///
/// A reply the server refuses (too fast, or the bot was kicked from the room) is logged and
/// the bot carries on: one message in the room must not be able to stop it. Replies are cut to
/// the server's message limit, with a visible `…`.
pub async fn run(server: &str, name: &str, room_name: &str, password: &str) -> anyhow::Result<()> {
    let options = ReconnectOptions::new(server, name, password)
        .client_name("echo-bot")
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

    while let Some(event) = client.next_event().await {
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
    }
    anyhow::bail!("the client stopped")
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
