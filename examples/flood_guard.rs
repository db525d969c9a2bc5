//! A moderation bot on the `chatroom-protocol` client: it watches a room and mutes anyone who
//! posts too many messages too fast, for a while.
//!
//! ```text
//! cargo run --example flood_guard -- 127.0.0.1:8888 flood-guard dev [--delete-burst]
//! ```
//! The arguments are `SERVER NAME ROOM` (defaults: `127.0.0.1:8888 flood-guard public`).
//! Then, as the room's owner, make it a moderator: `/op flood-guard` (it can only mute members
//! below it). The password comes from `CHATROOM_PASSWORD` (default: "flood-guard-password").
//! The defaults: more than 8 messages in 10 seconds earns a 5-minute mute. With
//! `--delete-burst` (anywhere among the arguments) it also deletes the messages that made the
//! flood, once the mute has gone through: the flooder's messages it counted within the window,
//! not what they posted before it or after. It rides out server
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
use chatroom_protocol::{Event, MessageKind, Seq, UnixMillis, UserId};
use std::collections::{HashMap, VecDeque};

/// The flag that turns on [`Rule::delete_burst`].
const DELETE_BURST_FLAG: &str = "--delete-burst";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rule = Rule::default();
    let mut positional = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == DELETE_BURST_FLAG {
            rule.delete_burst = true;
        } else if arg.starts_with("--") {
            // A mistyped flag would otherwise be taken for the server's address.
            anyhow::bail!(
                "unknown option {arg}; usage: flood_guard [SERVER] [NAME] [ROOM] [{DELETE_BURST_FLAG}]"
            );
        } else {
            positional.push(arg);
        }
    }
    let mut positional = positional.into_iter();
    let server = positional.next().unwrap_or_else(|| "127.0.0.1:8888".into());
    let name = positional.next().unwrap_or_else(|| "flood-guard".into());
    let room_name = positional.next().unwrap_or_else(|| "public".into());
    let password =
        std::env::var("CHATROOM_PASSWORD").unwrap_or_else(|_| "flood-guard-password".into());
    run(&server, &name, &room_name, &password, rule).await
}

/// When to mute, for how long, and whether to clear away the flood.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// More messages than this within `window_secs` is flooding.
    pub max_messages: usize,
    /// The window, in seconds.
    pub window_secs: u64,
    /// How long a flooder is muted, in seconds.
    pub mute_secs: u64,
    /// Whether a flooder's burst (the messages counted within the window, `max_messages + 1`
    /// of them) is deleted once the mute has gone through (`--delete-burst`).
    pub delete_burst: bool,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            max_messages: 8,
            window_secs: 10,
            mute_secs: 300,
            delete_burst: false,
        }
    }
}

/// Logs in as `name` (registering on first run), joins `room_name` and mutes whoever floods it,
/// reconnecting by itself; it returns only with an error (a login refused for good). A mute the
/// server refuses (the bot is not a moderator yet, or the flooder is one) is logged and the bot
/// carries on; so is a delete it refuses (the message is gone already) with
/// [`Rule::delete_burst`]. The burst is deleted only after a mute that went through: one the
/// server refused would have had its deletes refused too, or they would clear away the words of
/// a moderator the bot may not punish.
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
        if !posted || !recent.flooding(message.sender, message.ts, message.seq) {
            continue;
        }
        let reason = format!(
            "more than {} messages in {} s",
            rule.max_messages, rule.window_secs
        );
        let muted = match client
            .mute(
                room.id,
                &message.sender_name,
                Some(rule.mute_secs),
                Some(reason),
            )
            .await
        {
            Ok(()) => {
                println!("muted {}", message.sender_name);
                true
            }
            Err(e) => {
                eprintln!("cannot mute {}: {e}", message.sender_name);
                false
            }
        };
        let burst = recent.forget(message.sender);
        if !(muted && rule.delete_burst) {
            continue;
        }
        let mut deleted = 0;
        for &seq in &burst {
            match client.delete_message(room.id, seq).await {
                Ok(()) => deleted += 1,
                Err(e) => eprintln!(
                    "cannot delete message {seq} of {}: {e}",
                    message.sender_name
                ),
            }
        }
        println!(
            "deleted {deleted} of {} messages of {}'s burst",
            burst.len(),
            message.sender_name
        );
    }
    anyhow::bail!("the client stopped")
}

/// Each member's recent messages (when the server stored them, and their seqs, to delete the
/// burst), within the rule's window. Bounded: at most `max_messages + 1` per member, and
/// members quiet for a window are dropped.
struct Recent {
    rule: Rule,
    times: HashMap<UserId, VecDeque<(UnixMillis, Seq)>>,
}

impl Recent {
    fn new(rule: Rule) -> Self {
        Self {
            rule,
            times: HashMap::new(),
        }
    }

    /// Notes message `seq`, which `sender` posted at `ts` (the server's clock); true if it
    /// makes them a flooder.
    fn flooding(&mut self, sender: UserId, ts: UnixMillis, seq: Seq) -> bool {
        let window = self.rule.window_secs.saturating_mul(1000);
        let since = ts.saturating_sub(window);
        self.times
            .retain(|_, times| times.back().is_some_and(|&(t, _)| t > since));
        let times = self.times.entry(sender).or_default();
        times.push_back((ts, seq));
        while times.front().is_some_and(|&(t, _)| t <= since)
            || times.len() > self.rule.max_messages + 1
        {
            times.pop_front();
        }
        times.len() > self.rule.max_messages
    }

    /// Starts `sender` afresh (after a mute); the seqs of the messages counted against them,
    /// oldest first: the burst, when they just flooded.
    fn forget(&mut self, sender: UserId) -> Vec<Seq> {
        self.times
            .remove(&sender)
            .map(|times| times.into_iter().map(|(_, seq)| seq).collect())
            .unwrap_or_default()
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
            delete_burst: false,
        };
        let mut recent = Recent::new(rule);
        let (bob, carol) = (UserId(2), UserId(3));
        // Four messages, but 30 s apart: never more than three in a minute.
        for n in 0..4 {
            assert!(!recent.flooding(bob, n * 30_000, n), "message {n}");
        }
        // Four within a second.
        let t = 1_000_000;
        let floods: Vec<bool> = (0..4)
            .map(|n| recent.flooding(carol, t + n, 10 + n))
            .collect();
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
            !recent.flooding(carol, t + 5, 20),
            "a fresh count after the mute"
        );
    }

    #[test]
    fn the_burst_is_the_flooders_messages_counted_within_the_window() {
        let rule = Rule {
            max_messages: 3,
            window_secs: 60,
            mute_secs: 1,
            delete_burst: true,
        };
        let mut recent = Recent::new(rule);
        let (bob, carol) = (UserId(2), UserId(3));
        let t = 1_000_000;
        // Posted two minutes before the burst: outside the window, not part of it.
        assert!(!recent.flooding(bob, t - 120_000, 1));
        // Carol's three interleave with bob's four, in the same room's seqs.
        let mut floods = Vec::new();
        for (n, seq) in [2, 4, 6, 8].into_iter().enumerate() {
            if n < 3 {
                assert!(
                    !recent.flooding(carol, t + n as u64, seq + 1),
                    "at the limit"
                );
            }
            floods.push(recent.flooding(bob, t + n as u64, seq));
        }
        assert_eq!(floods, [false, false, false, true]);
        assert_eq!(
            recent.forget(bob),
            [2, 4, 6, 8],
            "bob's burst, oldest first"
        );
        assert_eq!(recent.forget(bob), Vec::<Seq>::new(), "forgotten");
        // Carol (at the limit) keeps her count, and a longer run keeps only the newest
        // `max_messages + 1` of hers.
        for seq in 100..110 {
            recent.flooding(carol, t + 10, seq);
        }
        assert_eq!(recent.times[&carol].len(), rule.max_messages + 1, "bounded");
        assert_eq!(recent.forget(carol), [106, 107, 108, 109]);
        assert_eq!(recent.forget(UserId(9)), Vec::<Seq>::new(), "never seen");
    }
}
