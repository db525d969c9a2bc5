//! A moderation bot on the `chatroom-protocol` client: it watches a room and mutes anyone who
//! posts too many messages too fast, for a while.
//!
//! ```text
//! cargo run --example flood_guard -- 127.0.0.1:8888 flood-guard dev
//! ```
//! Then, as the room's owner, make it a moderator: `/op flood-guard` (it can only mute members
//! below it). The password comes from `CHATROOM_PASSWORD` (default: "flood-guard-password").
//! The defaults: more than 8 messages in 10 seconds earns a 5-minute mute. It rides out server
//! restarts (`chatroom_protocol::reconnecting`), and counts the messages posted while it was
//! away by the times the server stored them.
//!
//! It does not catch up across runs of its own process (no
//! `ReconnectOptions::catch_up_from_read_markers`): replaying what was posted while it was
//! stopped would mute people now for a burst that may be hours old, which the room has lived
//! with or dealt with already, and which the mute would have ended by now. A new run watches
//! from its start.

use chatroom_protocol::reconnecting::{
    ReconnectError, ReconnectEvent, ReconnectOptions, ReconnectingClient,
};
use chatroom_protocol::{Event, MessageKind, UnixMillis, UserId};
use std::collections::{HashMap, VecDeque};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:8888".into());
    let name = args.next().unwrap_or_else(|| "flood-guard".into());
    let room_name = args.next().unwrap_or_else(|| "public".into());
    let password =
        std::env::var("CHATROOM_PASSWORD").unwrap_or_else(|_| "flood-guard-password".into());
    run(&server, &name, &room_name, &password, Rule::default()).await
}

/// When to mute, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// More messages than this within `window_secs` is flooding.
    pub max_messages: usize,
    /// The window, in seconds.
    pub window_secs: u64,
    /// How long a flooder is muted, in seconds.
    pub mute_secs: u64,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            max_messages: 8,
            window_secs: 10,
            mute_secs: 300,
        }
    }
}

/// Logs in as `name` (registering on first run), joins `room_name` and mutes whoever floods it,
/// reconnecting by itself; it returns only with an error (a login refused for good). A mute the
/// server refuses (the bot is not a moderator yet, or the flooder is one) is logged and the bot
/// carries on.
pub async fn run(
    server: &str,
    name: &str,
    room_name: &str,
    password: &str,
    rule: Rule,
) -> anyhow::Result<()> {
    let options = ReconnectOptions::new(server, name, password)
        .client_name("flood-guard")
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
    // Through the reconnecting handle, so that the room is caught up after a reconnect.
    let room = client.join_room(room_name).await?;
    println!("{} is watching {}", me.username, room.name);

    let mut recent = Recent::new(rule);
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
        let posted = message.room == room.id
            && message.sender != me.id
            && matches!(message.kind, MessageKind::Text | MessageKind::File(_));
        if !posted || !recent.flooding(message.sender, message.ts) {
            continue;
        }
        let reason = format!(
            "more than {} messages in {} s",
            rule.max_messages, rule.window_secs
        );
        match client
            .mute(
                room.id,
                &message.sender_name,
                Some(rule.mute_secs),
                Some(reason),
            )
            .await
        {
            Ok(()) => println!("muted {}", message.sender_name),
            Err(e) => eprintln!("cannot mute {}: {e}", message.sender_name),
        }
        recent.forget(message.sender);
    }
    anyhow::bail!("the client stopped")
}

/// The times of each member's recent messages, within the rule's window. Bounded: at most
/// `max_messages + 1` times per member, and members quiet for a window are dropped.
struct Recent {
    rule: Rule,
    times: HashMap<UserId, VecDeque<UnixMillis>>,
}

impl Recent {
    fn new(rule: Rule) -> Self {
        Self {
            rule,
            times: HashMap::new(),
        }
    }

    /// Notes a message `sender` posted at `ts` (the server's clock); true if it makes them a
    /// flooder.
    fn flooding(&mut self, sender: UserId, ts: UnixMillis) -> bool {
        let window = self.rule.window_secs.saturating_mul(1000);
        let since = ts.saturating_sub(window);
        self.times
            .retain(|_, times| times.back().is_some_and(|&t| t > since));
        let times = self.times.entry(sender).or_default();
        times.push_back(ts);
        while times.front().is_some_and(|&t| t <= since) || times.len() > self.rule.max_messages + 1
        {
            times.pop_front();
        }
        times.len() > self.rule.max_messages
    }

    /// Starts `sender` afresh (after a mute).
    fn forget(&mut self, sender: UserId) {
        self.times.remove(&sender);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_within_the_window_count_and_quiet_members_are_forgotten() {
        let rule = Rule {
            max_messages: 3,
            window_secs: 60,
            mute_secs: 1,
        };
        let mut recent = Recent::new(rule);
        let (bob, carol) = (UserId(2), UserId(3));
        // Four messages, but 30 s apart: never more than three in a minute.
        for n in 0..4 {
            assert!(!recent.flooding(bob, n * 30_000), "message {n}");
        }
        // Four within a second.
        let t = 1_000_000;
        let floods: Vec<bool> = (0..4).map(|n| recent.flooding(carol, t + n)).collect();
        assert_eq!(floods, [false, false, false, true]);
        assert!(
            recent.times[&carol].len() <= rule.max_messages + 1,
            "bounded"
        );
        assert!(
            !recent.times.contains_key(&bob),
            "bob has been quiet for a minute"
        );
        recent.forget(carol);
        assert!(
            !recent.flooding(carol, t + 5),
            "a fresh count after the mute"
        );
    }
}
