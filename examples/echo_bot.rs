//! An echo bot on the `chatroom-protocol` client: it logs in (registering on first run),
//! joins a room, and answers every message that mentions it.
//!
//! ```text
//! cargo run --example echo_bot -- 127.0.0.1:8888 echo-bot public
//! ```
//! The password comes from `CHATROOM_PASSWORD` (default: "echo-bot-password").

use chatroom_protocol::mentions::mentions_user;
use chatroom_protocol::{Event, MessageKind, client::Client};

#[path = "support/reconnect.rs"]
mod reconnect;
use reconnect::{disconnected, run_forever};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:8888".into());
    let name = args.next().unwrap_or_else(|| "echo-bot".into());
    let room_name = args.next().unwrap_or_else(|| "public".into());
    let password =
        std::env::var("CHATROOM_PASSWORD").unwrap_or_else(|_| "echo-bot-password".into());
    run_forever(&name, || run(&server, &name, &room_name, &password)).await
}

/// Logs in as `name` (registering on first run), joins `room_name` and answers every message
/// that mentions it, until the connection ends.
///
/// A reply the server refuses (too fast, or the bot was kicked from the room) is logged and
/// the bot carries on: one message in the room must not be able to stop it. Replies are cut to
/// the server's message limit, with a visible `…`.
pub async fn run(server: &str, name: &str, room_name: &str, password: &str) -> anyhow::Result<()> {
    let mut client = Client::connect(server, "echo-bot").await?;
    let me = client.login_or_register(name, password).await?.user;
    if me.is_admin {
        // The first account a server registers is its admin: a bot started first takes it.
        eprintln!(
            "warning: {} is a server admin; `chatroom-server user demote {}` takes that away",
            me.username, me.username
        );
    }
    let room = client.join_room(room_name).await?;
    println!("{} is listening in {}", me.username, room.name);

    let max_chars = client.welcome().limits.max_message_chars as usize;
    while let Some(event) = client.next_event().await {
        let Event::Message(message) = event else {
            continue;
        };
        let for_me = message.kind == MessageKind::Text
            && message.sender != me.id
            && mentions_user(&message.text, &me.username);
        if for_me {
            let reply = format!("{} said: {}", message.sender_name, message.text);
            let reply = truncate_chars(&reply, max_chars);
            if let Err(e) = client.send_message(message.room, reply).await {
                eprintln!("cannot answer {}: {e}", message.sender_name);
            }
        }
    }
    // The connection is over: an error saying why, so that `main` (or a supervisor such as
    // systemd's `Restart=on-failure`) starts the bot again.
    Err(disconnected(&client))
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
