//! The `chatroom` subcommands that manage rooms and moderate them: join, leave, create,
//! invite, topic, rename, edit, delete, kick, ban, unban, mute, unmute, purge, and the lists of
//! members, bans and mutes. They follow [`crate::cli`]'s conventions: a one-line confirmation (or, with
//! `--json`, one JSON object per line) on success, and one line on stderr with the server's
//! reason on a refusal.

use anyhow::{Context, anyhow, bail};
use chatroom_protocol::client::Client;
use chatroom_protocol::{HistoryAnchor, MessageKind, RoomSummary, Seq, Visibility};
use clap::{Args, Subcommand};

use crate::cli::{Target, check_message_length, message_text, print_line, resolve_target};
use crate::login::connect_logged_in;
use crate::output::{self, escape_controls};
use crate::settings::Settings;
use crate::tui::commands::{DURATION_EXPECTED, duration_secs, purge_window_secs};
use crate::tui::purges;

/// A named room the command is about.
#[derive(Debug, Args)]
pub struct InRoom {
    /// The room, by name (one you are a member of)
    #[arg(long, value_name = "ROOM")]
    pub room: String,
}

impl InRoom {
    /// The room, among mine.
    async fn resolve(&self, client: &Client) -> anyhow::Result<RoomSummary> {
        resolve_room(client, &self.room).await
    }
}

/// A room named as `join` names it, for a command about the room alone: `leave dev`. The
/// `--room dev` of the other room commands is taken too (one or the other), so that scripts
/// written before `leave` took a plain argument keep working.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RoomName {
    /// The room, by name (one you are a member of)
    #[arg(value_name = "ROOM")]
    pub name: Option<String>,
    /// The same as ROOM, as the other room commands take it
    #[arg(long = "room", value_name = "ROOM")]
    pub room: Option<String>,
}

impl RoomName {
    /// The room, among mine.
    async fn resolve(&self, client: &Client) -> anyhow::Result<RoomSummary> {
        // clap requires one of the two; a value built otherwise without either is said so.
        let name = self
            .name
            .as_deref()
            .or(self.room.as_deref())
            .ok_or_else(|| anyhow!("say which room"))?;
        resolve_room(client, name).await
    }
}

/// The room of mine named `name`. These commands take no `--to`: `@bob`, as `rooms` shows a
/// direct chat, is said to be one, not sent to a flag they do not have.
async fn resolve_room(client: &Client, name: &str) -> anyhow::Result<RoomSummary> {
    if let Some(user) = name.strip_prefix('@') {
        bail!("@{} is a direct chat, not a room", escape_controls(user));
    }
    let target = Target {
        room: Some(name.to_string()),
        to: None,
    };
    resolve_target(client, &target).await
}

/// The subcommands about rooms and moderation.
#[derive(Debug, Subcommand)]
pub enum RoomCommand {
    /// Join a public room by name.
    Join {
        /// The room's name.
        #[arg(value_name = "ROOM")]
        name: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Leave a room (`public` cannot be left).
    Leave {
        /// Which room.
        #[command(flatten)]
        room: RoomName,
    },
    /// Create a room (public unless --private) and become its owner.
    Create {
        /// The new room's name.
        #[arg(value_name = "ROOM")]
        name: String,
        /// Unlisted: people join when a member invites them.
        #[arg(long)]
        private: bool,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a user to a room.
    Invite {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// Who to add.
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Show a room's topic; with words, set it; with --clear, clear it.
    Topic {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// The new topic; the words are joined by spaces.
        #[arg(value_name = "TEXT")]
        text: Vec<String>,
        /// Clear the topic (no words is not enough: that only shows it).
        #[arg(long, conflicts_with = "text")]
        clear: bool,
    },
    /// Give a room a new name (its owner only; `public` keeps its name).
    Rename {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// The new name.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Replace the text of a message I sent.
    Edit {
        /// Where the message is.
        #[command(flatten)]
        target: Target,
        /// The message's seq (as `history`, `tail` and `search` print it, after the time).
        seq: Seq,
        /// The new text; the words are joined by spaces.
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Delete a message: one of mine, or anyone's as the room's owner or a moderator.
    Delete {
        /// Where the message is.
        #[command(flatten)]
        target: Target,
        /// The message's seq (as `history`, `tail` and `search` print it, after the time).
        seq: Seq,
    },
    /// Remove a member from a room (they may join or be invited again).
    Kick {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// Who to remove.
        #[arg(value_name = "USER")]
        who: String,
        /// Why, for the room's notice.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Ban a user from a room, removing them if they are in it.
    Ban {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// Who to ban.
        #[arg(value_name = "USER")]
        who: String,
        /// Why, for the room's notice and the list of bans.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Lift a user's ban from a room.
    Unban {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// Whose ban to lift.
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Stop a member from posting in a room, for a while or until unmuted.
    Mute {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// Who to mute.
        #[arg(value_name = "USER")]
        who: String,
        /// How long: 90s, 10m, 2h, 1d, 1h30m (a bare number is minutes) [default: until
        /// unmuted]
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<u64>,
        /// Why, for the room's notice and the list of mutes.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Delete what a user posted in a room lately, all of it (the room's owner or a
    /// moderator).
    Purge {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// Whose messages.
        #[arg(value_name = "USER")]
        who: String,
        /// How far back: 90s, 10m, 2h, 1d, 1h30m (a bare number is minutes)
        #[arg(long, value_name = "DURATION", value_parser = parse_window, default_value = "1h")]
        last: u64,
    },
    /// Let a muted member post again.
    Unmute {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// Whose mute to lift.
        #[arg(value_name = "USER")]
        who: String,
    },
    /// List a room's members with their role and presence.
    Members {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List a room's bans, newest first (owner and moderators only).
    Bans {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List the mutes in force in a room, newest first.
    Mutes {
        /// Which room.
        #[command(flatten)]
        room: InRoom,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// `--for`: a duration as the terminal UI's `/mute` takes it, in seconds.
fn parse_duration(word: &str) -> Result<u64, String> {
    duration_secs(word).ok_or_else(|| DURATION_EXPECTED.into())
}

/// `purge --last`: how far back, as `/purge` takes it, in seconds.
fn parse_window(word: &str) -> Result<u64, String> {
    purge_window_secs(word).ok_or_else(|| DURATION_EXPECTED.into())
}

/// A room name as typed: `#dev` names dev, as `rooms` shows it.
fn bare_room(name: &str) -> &str {
    name.strip_prefix('#').unwrap_or(name)
}

/// A user name as typed: `@bob` names bob, as the terminal UI writes it.
fn bare_user(name: &str) -> &str {
    name.strip_prefix('@').unwrap_or(name)
}

/// Runs one of these subcommands.
pub(crate) async fn run(command: RoomCommand, settings: &Settings) -> anyhow::Result<()> {
    let (client, _) = connect_logged_in(settings).await?;
    match command {
        RoomCommand::Join { name, json } => {
            // `@bob` names a direct chat, which one does not join: `send --to` opens it.
            if let Some(user) = name.strip_prefix('@') {
                let user = escape_controls(user);
                bail!(
                    "@{user} is a direct chat, not a room: `chatroom send --to {user}` writes to it"
                );
            }
            let name = bare_room(&name);
            // The server answers a join of a room one is in with the room, as for a new
            // member: what was mine before tells the two apart.
            let mine_before = client.my_rooms().await?;
            let room = client
                .join_room(name)
                .await
                .with_context(|| format!("cannot join {}", room_arg(name)))?;
            if !json && mine_before.iter().any(|r| r.id == room.id) {
                return print_line(&format!("already in {}", label(&room)));
            }
            print_room("joined", &room, json)
        }
        RoomCommand::Create {
            name,
            private,
            json,
        } => {
            let name = bare_room(&name);
            let visibility = if private {
                Visibility::Private
            } else {
                Visibility::Public
            };
            let room = client
                .create_room(name, visibility)
                .await
                .with_context(|| format!("cannot create {}", room_arg(name)))?;
            print_room("created", &room, json)
        }
        RoomCommand::Leave { room } => {
            let room = room.resolve(&client).await?;
            let label = label(&room);
            client
                .leave_room(room.id)
                .await
                .with_context(|| format!("cannot leave {label}"))?;
            print_line(&format!("left {label}"))
        }
        RoomCommand::Invite { room, who } => {
            let room = room.resolve(&client).await?;
            let (label, user) = (label(&room), bare_user(&who));
            let shown = escape_controls(user);
            client
                .invite(room.id, user)
                .await
                .with_context(|| format!("cannot add {shown} to {label}"))?;
            print_line(&format!("added {shown} to {label}"))
        }
        RoomCommand::Topic { room, text, clear } => {
            let room = room.resolve(&client).await?;
            let (label, topic) = (label(&room), text.join(" "));
            // Reading a topic must never erase it: clearing takes its own flag, as `/topic
            // --clear` does in the terminal UI.
            if topic.is_empty() && !clear {
                return if room.topic.is_empty() {
                    print_line(&format!("{label} has no topic"))
                } else {
                    print_line(&format!(
                        "the topic of {label}: {}",
                        output::plain_text(&room.topic)
                    ))
                };
            }
            client
                .set_topic(room.id, &topic)
                .await
                .with_context(|| format!("cannot set the topic of {label}"))?;
            if topic.is_empty() {
                print_line(&format!("cleared the topic of {label}"))
            } else {
                print_line(&format!(
                    "set the topic of {label}: {}",
                    output::plain_text(&topic)
                ))
            }
        }
        RoomCommand::Rename { room, name } => {
            let room = room.resolve(&client).await?;
            let (label, name) = (label(&room), bare_room(&name));
            client
                .rename_room(room.id, name)
                .await
                .with_context(|| format!("cannot rename {label}"))?;
            print_line(&format!("renamed {label} to {}", room_arg(name)))
        }
        RoomCommand::Edit { target, seq, text } => {
            let text = message_text(&text.join(" "))?;
            check_message_length(&client, &text)?;
            let room = resolve_target(&client, &target).await?;
            let label = label(&room);
            // The server answers Done whether or not the text changed; the text before says
            // which (only its sender edits a message, so nobody else changes it meanwhile).
            let unchanged = text_of(&client, &room, seq).await.as_deref() == Some(text.as_str());
            client
                .edit_message(room.id, seq, text)
                .await
                .with_context(|| format!("cannot edit message {seq} in {label}"))?;
            if unchanged {
                print_line(&format!("message {seq} in {label} already says that"))
            } else {
                print_line(&format!("edited message {seq} in {label}"))
            }
        }
        RoomCommand::Delete { target, seq } => {
            let room = resolve_target(&client, &target).await?;
            let label = label(&room);
            client
                .delete_message(room.id, seq)
                .await
                .with_context(|| format!("cannot delete message {seq} in {label}"))?;
            print_line(&format!("deleted message {seq} in {label}"))
        }
        RoomCommand::Kick { room, who, reason } => {
            let room = room.resolve(&client).await?;
            let (label, user) = (label(&room), bare_user(&who));
            let shown = escape_controls(user);
            client
                .kick(room.id, user, reason)
                .await
                .with_context(|| format!("cannot remove {shown} from {label}"))?;
            print_line(&format!("removed {shown} from {label}"))
        }
        RoomCommand::Ban { room, who, reason } => {
            let room = room.resolve(&client).await?;
            let (label, user) = (label(&room), bare_user(&who));
            let shown = escape_controls(user);
            client
                .ban(room.id, user, reason)
                .await
                .with_context(|| format!("cannot ban {shown} from {label}"))?;
            print_line(&format!("banned {shown} from {label}"))
        }
        RoomCommand::Unban { room, who } => {
            let room = room.resolve(&client).await?;
            let (label, user) = (label(&room), bare_user(&who));
            let shown = escape_controls(user);
            client
                .unban(room.id, user)
                .await
                .with_context(|| format!("cannot lift the ban on {shown} in {label}"))?;
            print_line(&format!("lifted the ban on {shown} in {label}"))
        }
        RoomCommand::Mute {
            room,
            who,
            duration,
            reason,
        } => {
            let room = room.resolve(&client).await?;
            let (label, user) = (label(&room), bare_user(&who));
            let shown = escape_controls(user);
            client
                .mute(room.id, user, duration, reason)
                .await
                .with_context(|| format!("cannot mute {shown} in {label}"))?;
            let how_long = match duration {
                Some(secs) => format!("for {}", chatroom_protocol::duration_words(secs)),
                None => "until unmuted".to_string(),
            };
            print_line(&format!("muted {shown} in {label} {how_long}"))
        }
        RoomCommand::Purge { room, who, last } => {
            let room = room.resolve(&client).await?;
            let (label, user) = (label(&room), bare_user(&who));
            let shown = escape_controls(user);
            match purges::purge(&client, room.id, user, last).await {
                Ok(purged) => print_line(&purged.line(&shown, Some(&label), last)),
                Err(failed) => {
                    let context = failed
                        .partly_done(&shown, Some(&label), last)
                        .unwrap_or_else(|| format!("cannot delete {shown}'s messages in {label}"));
                    Err(anyhow::Error::new(failed.error).context(context))
                }
            }
        }
        RoomCommand::Unmute { room, who } => {
            let room = room.resolve(&client).await?;
            let (label, user) = (label(&room), bare_user(&who));
            let shown = escape_controls(user);
            client
                .unmute(room.id, user)
                .await
                .with_context(|| format!("cannot unmute {shown} in {label}"))?;
            print_line(&format!("unmuted {shown} in {label}"))
        }
        RoomCommand::Members { room, json } => {
            let room = room.resolve(&client).await?;
            let info = client
                .room_info(room.id)
                .await
                .with_context(|| format!("cannot list the members of {}", label(&room)))?;
            print_list(
                &info.members,
                json,
                |m| output::member_json(&room.name, m),
                output::member_line,
                None,
            )
        }
        RoomCommand::Bans { room, json } => {
            let room = room.resolve(&client).await?;
            let label = label(&room);
            let bans = client
                .bans(room.id)
                .await
                .with_context(|| format!("cannot list the bans of {label}"))?;
            print_list(
                &bans,
                json,
                |b| output::ban_json(&room.name, b),
                output::ban_line,
                Some(format!("nobody is banned from {label}")),
            )
        }
        RoomCommand::Mutes { room, json } => {
            let room = room.resolve(&client).await?;
            let label = label(&room);
            let mutes = client
                .mutes(room.id)
                .await
                .with_context(|| format!("cannot list the mutes of {label}"))?;
            print_list(
                &mutes,
                json,
                |m| output::mute_json(&room.name, m),
                output::mute_line,
                Some(format!("nobody is muted in {label}")),
            )
        }
    }
}

/// The text of the message at `seq` in `room`, if it is text (edited or not) and can be read;
/// `None` otherwise, and then the server has the last word on the edit.
async fn text_of(client: &Client, room: &RoomSummary, seq: Seq) -> Option<String> {
    let page = client
        .history(room.id, HistoryAnchor::After(seq.saturating_sub(1)), 1)
        .await
        .ok()?;
    page.messages
        .into_iter()
        .find(|m| m.seq == seq)
        .filter(|m| matches!(m.kind, MessageKind::Text | MessageKind::Edited { .. }))
        .map(|m| m.text)
}

/// One line per item: its JSON object with `--json`, else its plain line.
pub(crate) fn print_list<T>(
    items: &[T],
    json: bool,
    as_json: impl Fn(&T) -> serde_json::Value,
    as_line: impl Fn(&T) -> String,
    when_empty: Option<String>,
) -> anyhow::Result<()> {
    for item in items {
        if json {
            print_line(&output::json_line(&as_json(item)))?;
        } else {
            print_line(&as_line(item))?;
        }
    }
    // Said to a person on stderr; a program reading --json gets no lines.
    if let Some(note) = when_empty.filter(|_| items.is_empty() && !json) {
        eprintln!("{note}");
    }
    Ok(())
}

/// A room as people see it: `#dev`, or `@bob` for a direct chat.
fn label(room: &RoomSummary) -> String {
    output::room_label(room.kind, &room.name)
}

/// A room named on the command line, before the server has said what it is: `#dev`.
fn room_arg(name: &str) -> String {
    format!("#{}", escape_controls(name))
}

/// A joined or created room: `joined #dev (public, 3 members) — topic`, or its JSON.
fn print_room(done: &str, room: &RoomSummary, json: bool) -> anyhow::Result<()> {
    if json {
        print_line(&output::json_line(&output::room_json(room)))
    } else {
        print_line(&format!("{done} {}", output::room_brief(room)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Option<(Option<String>, RoomCommand)> {
        let cli = Cli::try_parse_from(args).ok()?;
        match cli.command {
            Some(Command::Manage(command)) => Some((cli.user, command)),
            _ => None,
        }
    }

    #[test]
    fn the_user_acted_on_is_not_the_user_acting() {
        let parsed = parse(&[
            "chatroom", "--user", "dave", "mute", "--room", "dev", "@bob", "--for", "10m",
            "--reason", "spam",
        ]);
        let Some((
            Some(me),
            RoomCommand::Mute {
                room,
                who,
                duration,
                reason,
            },
        )) = parsed
        else {
            panic!("{parsed:?}");
        };
        assert_eq!(
            (
                me.as_str(),
                room.room.as_str(),
                who.as_str(),
                duration,
                reason.as_deref()
            ),
            ("dave", "dev", "@bob", Some(600), Some("spam"))
        );
        let parsed = parse(&["chatroom", "kick", "--room", "dev", "bob", "--user", "dave"]);
        assert!(
            matches!(&parsed, Some((Some(me), RoomCommand::Kick { who, .. })) if me == "dave" && who == "bob"),
            "{parsed:?}"
        );
    }

    #[test]
    fn a_mute_lasts_as_long_as_the_terminal_ui_would_make_it() {
        let secs = |word: &str| match parse(&[
            "chatroom", "mute", "--room", "dev", "bob", "--for", word,
        ]) {
            Some((_, RoomCommand::Mute { duration, .. })) => duration,
            _ => None,
        };
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs("10"), Some(600));
        assert_eq!(secs("2h"), Some(7200));
        assert_eq!(secs("1d"), Some(86_400));
        assert_eq!(secs("soon"), None, "refused by the parser");
        let forever = parse(&["chatroom", "mute", "--room", "dev", "bob"]);
        assert!(
            matches!(forever, Some((_, RoomCommand::Mute { duration: None, .. }))),
            "{forever:?}"
        );
    }

    #[test]
    fn a_purge_reaches_an_hour_back_unless_told_otherwise() {
        let last = |extra: &[&str]| {
            let mut args = vec!["chatroom", "purge", "--room", "dev", "@bob"];
            args.extend(extra);
            match parse(&args) {
                Some((_, RoomCommand::Purge { who, last, .. })) if who == "@bob" => Some(last),
                _ => None,
            }
        };
        assert_eq!(last(&[]), Some(3600));
        assert_eq!(last(&["--last", "10m"]), Some(600));
        assert_eq!(last(&["--last", "1d12h"]), Some(129_600));
        assert_eq!(
            last(&["--last", "30"]),
            Some(1800),
            "a bare number is minutes"
        );
        for refused in ["0", "0s", "soon", "-5m"] {
            assert_eq!(last(&["--last", refused]), None, "{refused}");
        }
    }

    #[test]
    fn edit_needs_text_and_a_room_or_a_user() {
        assert!(parse(&["chatroom", "edit", "--room", "dev", "4"]).is_none());
        assert!(parse(&["chatroom", "edit", "4", "new text"]).is_none());
        assert!(parse(&["chatroom", "edit", "--room", "dev", "--to", "bob", "4", "x"]).is_none());
        let parsed = parse(&["chatroom", "edit", "--to", "bob", "4", "new", "text"]);
        assert!(
            matches!(&parsed, Some((_, RoomCommand::Edit { seq: 4, text, .. })) if text.join(" ") == "new text"),
            "{parsed:?}"
        );
    }
}
