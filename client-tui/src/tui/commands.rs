//! Slash commands: parsing an input line, the `/help` table, and Tab completion.
//!
//! The original Chat-Room's command names work as aliases where they map (`/create_chat`,
//! `/join_chat`, `/enter_chat`, `/list -u|-s|-c|-g`, `/info`, `/exit`). A line starting with
//! `//` sends the text with one slash, so a message may begin with a slash.

use chatroom_protocol::RoomRole;

use super::admin::AccountAction;
use super::purges::DEFAULT_PURGE_SECS;

/// What an input line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Plain text for the current room.
    Say(String),
    /// Join a public room (and switch to it).
    Join(String),
    /// Switch to a room I am in.
    Enter(String),
    /// Leave a room (the current one when `None`).
    Leave(Option<String>),
    /// Create a room, optionally private, inviting some users at once.
    Create {
        /// Its name.
        name: String,
        /// Invite-only.
        private: bool,
        /// Users to invite.
        invite: Vec<String>,
    },
    /// Invite a user to the current room.
    Invite(String),
    /// Remove a member from the current room.
    Kick {
        /// Who.
        user: String,
        /// Why.
        reason: Option<String>,
    },
    /// Ban a user from the current room (removing them if they are in it).
    Ban {
        /// Who.
        user: String,
        /// Why.
        reason: Option<String>,
    },
    /// Lift a user's ban from the current room.
    Unban(String),
    /// List the current room's bans.
    Bans,
    /// Stop a member posting in the current room, for `secs` or until unmuted.
    Mute {
        /// Who.
        user: String,
        /// For how long; `None` until unmuted.
        secs: Option<u64>,
        /// Why.
        reason: Option<String>,
    },
    /// Lift a member's mute in the current room.
    Unmute(String),
    /// List the current room's mutes.
    Mutes,
    /// Delete what a user posted in the current room over the last `secs` seconds.
    Purge {
        /// Whose messages.
        user: String,
        /// How far back.
        secs: u64,
    },
    /// Change a member's role in the current room (owner only).
    Role {
        /// Whose.
        user: String,
        /// To what.
        role: RoomRole,
    },
    /// A direct message (opens the chat; sends `text` if given).
    Msg {
        /// To whom.
        user: String,
        /// What, if anything.
        text: Option<String>,
    },
    /// Set the current room's topic (empty: clear it).
    Topic(String),
    /// Show the current room's topic.
    ShowTopic,
    /// Give the current room a new name.
    Rename(String),
    /// Members of the current room.
    Who,
    /// My rooms.
    Rooms,
    /// Public rooms on the server.
    PublicRooms,
    /// Every user with presence.
    Users,
    /// Who I am, and counts.
    Info,
    /// Away, with an optional status text.
    Away(Option<String>),
    /// Back from away.
    Back,
    /// Change my password.
    Passwd,
    /// Log out (forget the kept session) and quit.
    Logout,
    /// Quit.
    Quit,
    /// Show the help popup.
    Help,
    /// Toggle the member list.
    Members,
    /// Upload a local file to the current room.
    Upload(String),
    /// Download a file by id, or the newest in the current room.
    Download(Option<u64>),
    /// Cancel a transfer by number, or the newest running one.
    Cancel(Option<u32>),
    /// Toggle the transfers panel.
    Transfers,
    /// List the current room's files.
    Files,
    /// Delete my newest message in the current room, or (`Some(name)`, once confirmed) that
    /// user's newest message there: an owner's, a moderator's or an admin's doing.
    Delete(Option<String>),
    /// Replace the text of my newest text message in the current room; `None` puts it in the
    /// input line to be corrected.
    Edit(Option<String>),
    /// Ask the AI bot in the current room (posted as `@name …`, the name the server gives).
    Ai(String),
    /// A server admin's `/user …` for another account.
    Account(AccountAction),
    /// Search the messages of my rooms, or of one room.
    Search {
        /// `#room` or `@user` (a direct chat) before the words, with its sigil (`None`: all my
        /// rooms).
        room: Option<String>,
        /// The words, as typed.
        query: String,
    },
}

/// One line of `/help`: the command, its arguments, what it does.
pub const HELP: &[(&str, &str, &str)] = &[
    (
        "/join",
        "ROOM|@USER",
        "join ROOM or a direct chat with USER (alias /join_chat)",
    ),
    (
        "/enter",
        "ROOM|@USER",
        "switch to ROOM or the chat with USER (alias /enter_chat)",
    ),
    (
        "/leave",
        "[ROOM]",
        "leave the current room or ROOM (a direct chat stays)",
    ),
    (
        "/create",
        "[--private] NAME [USER…]",
        "create a room, inviting USERs (alias /create_chat)",
    ),
    ("/invite", "USER", "invite USER to the current room"),
    (
        "/kick",
        "USER [REASON]",
        "remove USER from the current room (owner, moderator)",
    ),
    (
        "/ban",
        "USER [REASON]",
        "remove USER and keep them out of the current room",
    ),
    ("/unban", "USER", "let USER join the current room again"),
    (
        "/bans",
        "",
        "who is banned from the current room, by whom, why",
    ),
    (
        "/role",
        "USER ROLE",
        "ROLE: moderator, member, or owner to hand the room over (owner only); /op /deop",
    ),
    (
        "/msg",
        "USER [TEXT]",
        "open a direct chat with USER, sending TEXT",
    ),
    (
        "/topic",
        "[TEXT|--clear]",
        "show the current room's topic, set it, or clear it",
    ),
    (
        "/rename",
        "NAME",
        "give the current room a new name (owner)",
    ),
    (
        "/upload",
        "PATH",
        "send a file to this room or chat (alias /send_files)",
    ),
    (
        "/download",
        "[ID]",
        "save file ID (or the newest here) to your downloads; Alt-D",
    ),
    (
        "/files",
        "",
        "files posted here, with their ids (alias /list -f)",
    ),
    (
        "/transfers",
        "",
        "show or hide transfers with progress, rate, ETA (F3)",
    ),
    (
        "/cancel",
        "[N]",
        "cancel transfer N, or the newest (resumable)",
    ),
    (
        "/delete",
        "[USER]",
        "delete your newest message or USER's (mod); y confirms",
    ),
    (
        "/mute",
        "USER [TIME] [REASON]",
        "silence USER here for TIME (10m 2h 1d) or until /unmute",
    ),
    ("/unmute", "USER", "let a muted member post again"),
    ("/mutes", "", "who is muted in this room, and until when"),
    (
        "/purge",
        "USER [TIME]",
        "delete USER's posts of the last TIME (1h); y confirms",
    ),
    (
        "/edit",
        "[TEXT]",
        "replace your newest message; alone, loads it to correct",
    ),
    (
        "/ai",
        "QUESTION|status|clear",
        "ask the server's AI bot here (as @its-name …), or /msg it",
    ),
    (
        "/search",
        "[#ROOM|@USER] WORDS",
        "find messages with all WORDS in your rooms, or one",
    ),
    (
        "/who",
        "",
        "open the member list; if open, list them here (/list -s)",
    ),
    (
        "/rooms",
        "",
        "your rooms (alias /list -c); /list -g for all public rooms",
    ),
    ("/users", "", "every user with presence (alias /list -u)"),
    ("/info", "", "who you are and what is going on"),
    ("/away", "[MESSAGE]", "mark yourself away"),
    ("/back", "", "mark yourself back"),
    ("/members", "", "show or hide the member list (also F2)"),
    ("/passwd", "", "change your password"),
    ("/logout", "", "log out on this machine and quit"),
    ("/quit", "", "quit (alias /exit)"),
    (
        "/user",
        "logout USER",
        "server admins: log USER out everywhere, password kept",
    ),
    (
        "/user",
        "suspend USER [REASON]",
        "log USER out and refuse their logins until unsuspended",
    ),
    (
        "/user",
        "unsuspend USER",
        "let a suspended USER log in again",
    ),
    (
        "/user",
        "suspended",
        "who is suspended, by whom, when and why",
    ),
    (
        "/user",
        "promote|demote USER",
        "make USER a server admin, or no longer one",
    ),
    (
        "/user",
        "delete USER",
        "delete USER's account for good; y confirms",
    ),
    ("/help", "", "this help (also F1)"),
];

/// The keys, for `/help`.
pub const KEYS: &[(&str, &str)] = &[
    ("Enter / Alt-Enter", "send / new line in the message"),
    ("Alt-↑ Alt-↓, Ctrl-P Ctrl-N", "previous / next room"),
    ("Alt-A", "next room with unread messages (mentions first)"),
    (
        "Alt-D / F3",
        "download the newest file here / transfers panel",
    ),
    (
        "PgUp PgDn",
        "scroll back (older history loads as you go) / forward",
    ),
    (
        "↑ ↓",
        "input history; in search results, pick one (Enter opens it)",
    ),
    (
        "Tab",
        "complete commands, @users, rooms; users after /kick, /msg…",
    ),
    (
        "Ctrl-A Ctrl-E, Alt-B Alt-F",
        "start / end of line, word back / forward",
    ),
    ("Ctrl-W Ctrl-U Ctrl-K", "delete word / to start / to end"),
    ("Esc", "close popups, jump to the newest messages"),
    ("Ctrl-C", "quit"),
];

/// How arguments are read, for `/help`, after the keys.
pub const QUOTING: &str = "A USER or ROOM in double quotes is one (\"dev ops\"); a quote left open \
    is an error. A REASON, TEXT or WORDS is the rest of the line as typed, quotes and all, but a \
    REASON wholly in one pair of quotes loses them.";

/// Why a line is not a valid command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// No such command.
    Unknown(String),
    /// Known command, wrong arguments; carries the usage.
    Usage(String),
    /// A `"` opened a quoted argument and nothing closed it.
    UnclosedQuote,
    /// `/mute USER WORD` where WORD starts as a number does but is no duration, or the TIME of
    /// `/purge USER TIME` that is none (or 0).
    Duration(String),
    /// `/user add` or `/user passwd`, which need a new password typed: carries the shell
    /// command that does it.
    ShellOnly(String),
}

/// What a duration looks like, for a word that is not one (the shell's `--for` says the same).
pub const DURATION_EXPECTED: &str =
    "expected a duration like 90s, 10m, 2h, 1d or 1h30m (a bare number is minutes)";

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Unknown(name) => write!(f, "unknown command {name}; /help lists them"),
            ParseError::Usage(usage) => write!(f, "usage: {usage}"),
            ParseError::UnclosedQuote => {
                write!(
                    f,
                    "a \" opens a quote that nothing closes: end it with another \""
                )
            }
            ParseError::Duration(word) => write!(f, "{word}: {DURATION_EXPECTED}"),
            ParseError::ShellOnly(command) => write!(
                f,
                "that needs a new password typed, so it is done in a shell: {command}"
            ),
        }
    }
}

fn usage(command: &str) -> ParseError {
    let line = HELP
        .iter()
        .find(|(name, _, _)| *name == command)
        .map(|(name, args, _)| format!("{name} {args}"))
        .unwrap_or_else(|| command.to_string());
    ParseError::Usage(line.trim_end().to_string())
}

/// A duration as people type it: `90s`, `10m` (or just `10`), `2h`, `1d`, and these run
/// together, largest first or not (`1h30m`, `2m30s`, `1d12h`); `None` if `word` is not one
/// (it is then the start of a reason).
pub fn duration_secs(word: &str) -> Option<u64> {
    if word.is_empty() {
        return None;
    }
    // A bare number is minutes, but only alone: in `1h30` the 30 has no unit to go by.
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return word.parse::<u64>().ok()?.checked_mul(60);
    }
    let mut total: u64 = 0;
    let mut rest = word;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let scale = match &after[..unit_len] {
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(scale)?)?;
        rest = &after[unit_len..];
    }
    Some(total)
}

fn rest_text(rest: &str) -> Option<String> {
    let text = rest.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A reason (`/kick`, `/ban`, `/mute`): the rest of the line, which needs no quotes; one put in
/// double quotes whole loses them, as a quoted argument does.
fn reason_text(rest: &str) -> Option<String> {
    let text = rest_text(rest)?;
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains('"'));
    match inner {
        Some(inner) => rest_text(inner),
        None => Some(text),
    }
}

/// The arguments of a command that takes words (room and user names, numbers): split at
/// whitespace, except inside double quotes, which are taken out (`"dev ops"` is one argument,
/// `dev" "ops` too). A quote left open is an error rather than a guess.
fn words(rest: &str) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            let quoted = word.get_or_insert_with(String::new);
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => quoted.push(c),
                    None => return Err(ParseError::UnclosedQuote),
                }
            }
        } else if c.is_whitespace() {
            words.extend(word.take());
        } else {
            word.get_or_insert_with(String::new).push(c);
        }
    }
    words.extend(word);
    Ok(words)
}

/// The first argument of `rest`, read as [`words`] reads one (quotes and all), and the rest of
/// the line after it as typed (a reason, a message); `None` when there is no argument or it is
/// empty (`""`).
fn first_word(rest: &str) -> Result<Option<(String, &str)>, ParseError> {
    let rest = rest.trim_start();
    let mut quoted = false;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            if c == '"' {
                quoted = !quoted;
            }
            !quoted && c.is_whitespace()
        })
        .map_or(rest.len(), |(i, _)| i);
    let (word, after) = rest.split_at(end);
    let word = words(word)?.into_iter().next().unwrap_or_default();
    Ok((!word.is_empty()).then_some((word, after)))
}

/// A user as typed, `@bob` or `bob`: the name without the `@` (no name has one), `None` if
/// nothing is left.
fn bare_user(word: &str) -> Option<String> {
    let name = word.trim_start_matches('@');
    (!name.is_empty()).then(|| name.to_string())
}

/// How far back `/purge` (and `chatroom purge --last`) reaches: a duration as
/// [`duration_secs`] reads one, but not 0, which would reach back no time at all.
pub fn purge_window_secs(word: &str) -> Option<u64> {
    duration_secs(word).filter(|&secs| secs > 0)
}

/// Whether `word` is meant as a duration: it starts as a number does (`5y`, `-5m`, `30sec`),
/// so it is one or a mistake, never the first word of a reason.
fn looks_like_duration(word: &str) -> bool {
    let digits = word.strip_prefix('-').unwrap_or(word);
    digits.starts_with(|c: char| c.is_ascii_digit())
}

/// [`words`] borrowed, for matching on.
fn word_strs(words: &Result<Vec<String>, ParseError>) -> Result<Vec<&str>, ParseError> {
    match words {
        Ok(words) => Ok(words.iter().map(String::as_str).collect()),
        Err(e) => Err(e.clone()),
    }
}

/// Parses an input line.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    if let Some(literal) = line.strip_prefix("//") {
        return Ok(Command::Say(format!("/{literal}")));
    }
    let Some(body) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_string()));
    };
    let (name, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    // Only the commands that take words look at them: a quote in a message, a topic or a
    // reason is text like any other.
    let parsed = words(rest);
    let args = || word_strs(&parsed);
    let one = |command: &str| -> Result<String, ParseError> {
        match args()?.as_slice() {
            [arg] if !arg.is_empty() => Ok((*arg).to_string()),
            _ => Err(usage(command)),
        }
    };
    let none = |command: Command, canonical: &str| -> Result<Command, ParseError> {
        if args()?.is_empty() {
            Ok(command)
        } else {
            Err(usage(canonical))
        }
    };
    match name {
        "join" | "join_chat" => Ok(Command::Join(one("/join")?)),
        "enter" | "enter_chat" | "switch" => Ok(Command::Enter(one("/enter")?)),
        "leave" | "part" => match args()?.as_slice() {
            [] => Ok(Command::Leave(None)),
            [room] => Ok(Command::Leave(Some((*room).to_string()))),
            _ => Err(usage("/leave")),
        },
        "create" | "create_chat" => {
            let args = args()?;
            let private = args.contains(&"--private");
            let mut names = args.iter().filter(|a| **a != "--private");
            let name = names
                .next()
                .filter(|name| !name.is_empty())
                .ok_or_else(|| usage("/create"))?;
            Ok(Command::Create {
                name: (*name).to_string(),
                private,
                invite: names.map(|s| (*s).to_string()).collect(),
            })
        }
        "invite" => Ok(Command::Invite(
            bare_user(&one("/invite")?).ok_or_else(|| usage("/invite"))?,
        )),
        "kick" => {
            let (user, after) = first_word(rest)?.ok_or_else(|| usage("/kick"))?;
            Ok(Command::Kick {
                user: bare_user(&user).ok_or_else(|| usage("/kick"))?,
                reason: reason_text(after),
            })
        }
        "ban" => {
            let (user, after) = first_word(rest)?.ok_or_else(|| usage("/ban"))?;
            Ok(Command::Ban {
                user: bare_user(&user).ok_or_else(|| usage("/ban"))?,
                reason: reason_text(after),
            })
        }
        "unban" => Ok(Command::Unban(
            bare_user(&one("/unban")?).ok_or_else(|| usage("/unban"))?,
        )),
        "bans" => none(Command::Bans, "/bans"),
        "mute" => {
            let (user, after) = first_word(rest)?.ok_or_else(|| usage("/mute"))?;
            let after = after.trim_start();
            let (first, more) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
            let (secs, reason) = match duration_secs(first) {
                Some(secs) => (Some(secs), reason_text(more)),
                None if looks_like_duration(first) => {
                    return Err(ParseError::Duration(first.to_string()));
                }
                None => (None, reason_text(after)),
            };
            Ok(Command::Mute {
                user: user.trim_start_matches('@').to_string(),
                secs,
                reason,
            })
        }
        "unmute" => Ok(Command::Unmute(
            one("/unmute")?.trim_start_matches('@').to_string(),
        )),
        "mutes" => none(Command::Mutes, "/mutes"),
        "purge" => {
            let (user, secs) = match args()?.as_slice() {
                [user] => (bare_user(user), DEFAULT_PURGE_SECS),
                [user, time] => (
                    bare_user(user),
                    purge_window_secs(time)
                        .ok_or_else(|| ParseError::Duration((*time).to_string()))?,
                ),
                _ => return Err(usage("/purge")),
            };
            Ok(Command::Purge {
                user: user.ok_or_else(|| usage("/purge"))?,
                secs,
            })
        }
        "role" => match args()?.as_slice() {
            [user, role] => Ok(Command::Role {
                user: user.trim_start_matches('@').to_string(),
                role: match role.to_lowercase().as_str() {
                    "owner" => RoomRole::Owner,
                    "moderator" | "mod" | "op" => RoomRole::Moderator,
                    "member" => RoomRole::Member,
                    _ => {
                        return Err(ParseError::Usage(format!(
                            "/role {user} owner|moderator|member ({role} is not a room role)"
                        )));
                    }
                },
            }),
            _ => Err(usage("/role")),
        },
        "op" | "deop" => {
            let user = match args()?.as_slice() {
                [user] => (*user).to_string(),
                _ => return Err(ParseError::Usage(format!("/{name} USER"))),
            };
            Ok(Command::Role {
                user: user.trim_start_matches('@').to_string(),
                role: if name == "op" {
                    RoomRole::Moderator
                } else {
                    RoomRole::Member
                },
            })
        }
        "msg" | "query" => {
            let (user, after) = first_word(rest)?.ok_or_else(|| usage("/msg"))?;
            Ok(Command::Msg {
                user: bare_user(&user).ok_or_else(|| usage("/msg"))?,
                text: rest_text(after),
            })
        }
        "topic" => match rest.trim() {
            "" => Ok(Command::ShowTopic),
            "--clear" => Ok(Command::Topic(String::new())),
            topic => Ok(Command::Topic(topic.to_string())),
        },
        "rename" => {
            // Unquoted, the name is the rest of the line, spaces and all, for the server to
            // refuse with its reason rather than a usage line.
            let name = match args()?.as_slice() {
                [name] => name.to_string(),
                [_, _, ..] if !rest.contains('"') => rest.trim().to_string(),
                _ => return Err(usage("/rename")),
            };
            let name = name.trim_start_matches('#');
            if name.is_empty() {
                return Err(usage("/rename"));
            }
            Ok(Command::Rename(name.to_string()))
        }
        "upload" | "send_files" | "send_file" => {
            let path = rest.trim();
            let path = path
                .strip_prefix('"')
                .and_then(|p| p.strip_suffix('"'))
                .or_else(|| path.strip_prefix('\'').and_then(|p| p.strip_suffix('\'')))
                .unwrap_or(path);
            if path.is_empty() {
                Err(usage("/upload"))
            } else {
                Ok(Command::Upload(path.to_string()))
            }
        }
        "download" | "recv_files" | "recv_file" => match args()?.as_slice() {
            [] => Ok(Command::Download(None)),
            [id] => id
                .trim_start_matches('#')
                .parse()
                .map(|id| Command::Download(Some(id)))
                .map_err(|_| usage("/download")),
            _ => Err(usage("/download")),
        },
        "cancel" => match args()?.as_slice() {
            [] => Ok(Command::Cancel(None)),
            [n] => n
                .parse()
                .map(|n| Command::Cancel(Some(n)))
                .map_err(|_| usage("/cancel")),
            _ => Err(usage("/cancel")),
        },
        "transfers" => none(Command::Transfers, "/transfers"),
        "files" => none(Command::Files, "/files"),
        "delete" => match args()?.as_slice() {
            [] => Ok(Command::Delete(None)),
            [user] if !user.is_empty() => Ok(Command::Delete(Some((*user).to_string()))),
            _ => Err(usage("/delete")),
        },
        "edit" => Ok(Command::Edit(rest_text(rest))),
        "ai" => Ok(Command::Ai(
            rest_text(rest).unwrap_or_else(|| "help".into()),
        )),
        "search" => {
            let text = rest.trim();
            // `#room` first names a room; `@user` first, before other words, may name a direct
            // chat (the app decides: without one, `@user` is a word like the rest).
            let (room, query) = match text.split_once(char::is_whitespace) {
                Some((first, words))
                    if first.len() > 1 && (first.starts_with('#') || first.starts_with('@')) =>
                {
                    (Some(first.to_string()), words.trim())
                }
                None if text.len() > 1 && text.starts_with('#') => (Some(text.to_string()), ""),
                _ => (None, text),
            };
            if query.is_empty() {
                return Err(usage("/search"));
            }
            Ok(Command::Search {
                room,
                query: query.to_string(),
            })
        }
        "who" | "names" => none(Command::Who, "/who"),
        "rooms" => none(Command::Rooms, "/rooms"),
        "users" => none(Command::Users, "/users"),
        "list" => match args()?.as_slice() {
            ["-u"] => Ok(Command::Users),
            ["-s"] => Ok(Command::Who),
            ["-c"] | [] => Ok(Command::Rooms),
            ["-g"] => Ok(Command::PublicRooms),
            ["-f"] => Ok(Command::Files),
            _ => Err(ParseError::Usage("/list -u|-s|-c|-g|-f".into())),
        },
        "info" => none(Command::Info, "/info"),
        "away" => Ok(Command::Away(rest_text(rest))),
        "back" => none(Command::Back, "/back"),
        "members" => none(Command::Members, "/members"),
        "passwd" => none(Command::Passwd, "/passwd"),
        "logout" => none(Command::Logout, "/logout"),
        "quit" | "exit" => Ok(Command::Quit),
        "help" | "?" => Ok(Command::Help),
        "user" => parse_user(rest).map(Command::Account),
        other => Err(ParseError::Unknown(format!("/{other}"))),
    }
}

/// What `/user` alone, or with a sub-command it does not know, is told.
const USER_USAGE: &str =
    "/user logout|suspend|unsuspend|promote|demote|delete USER, or /user suspended";

/// `/user SUB …`: the usage of SUB, from its `/help` row (`promote|demote USER` gives
/// `/user promote USER`).
fn user_usage(sub: &str) -> ParseError {
    HELP.iter()
        .filter(|(name, _, _)| *name == "/user")
        .find_map(|(_, args, _)| {
            let (subs, rest) = args.split_once(' ').unwrap_or((args, ""));
            subs.split('|')
                .any(|s| s == sub)
                .then(|| format!("/user {sub} {rest}").trim_end().to_string())
        })
        .map_or_else(
            || ParseError::Usage(USER_USAGE.to_string()),
            ParseError::Usage,
        )
}

/// The arguments of `/user` (after the command name), as `chatroom user` takes them.
fn parse_user(rest: &str) -> Result<AccountAction, ParseError> {
    let Some((sub, after)) = first_word(rest)? else {
        return Err(ParseError::Usage(USER_USAGE.to_string()));
    };
    let sub = sub.as_str();
    // The one account the sub-command names, and nothing after it.
    let account = || -> Result<String, ParseError> {
        match words(after)?.as_slice() {
            [user] => bare_user(user).ok_or_else(|| user_usage(sub)),
            _ => Err(user_usage(sub)),
        }
    };
    match sub {
        "logout" => Ok(AccountAction::LogOut(account()?)),
        "suspend" => {
            let (user, reason) = first_word(after)?.ok_or_else(|| user_usage(sub))?;
            Ok(AccountAction::Suspend {
                user: bare_user(&user).ok_or_else(|| user_usage(sub))?,
                reason: reason_text(reason),
            })
        }
        "unsuspend" => Ok(AccountAction::Unsuspend(account()?)),
        "suspended" if words(after)?.is_empty() => Ok(AccountAction::Suspensions),
        "suspended" => Err(user_usage(sub)),
        "promote" | "demote" => Ok(AccountAction::SetAdmin {
            user: account()?,
            admin: sub == "promote",
        }),
        "delete" => Ok(AccountAction::Delete(account()?)),
        "add" | "passwd" => {
            let name = first_word(after)?
                .and_then(|(user, _)| bare_user(&user))
                .unwrap_or_else(|| "NAME".to_string());
            Err(ParseError::ShellOnly(format!("chatroom user {sub} {name}")))
        }
        _ => Err(ParseError::Usage(USER_USAGE.to_string())),
    }
}

/// Every command name and alias, for completion.
const NAMES: &[&str] = &[
    "/ai",
    "/away",
    "/back",
    "/ban",
    "/bans",
    "/cancel",
    "/create",
    "/create_chat",
    "/delete",
    "/deop",
    "/download",
    "/edit",
    "/enter",
    "/enter_chat",
    "/exit",
    "/files",
    "/help",
    "/info",
    "/invite",
    "/join",
    "/join_chat",
    "/kick",
    "/leave",
    "/list",
    "/logout",
    "/members",
    "/msg",
    "/mute",
    "/mutes",
    "/op",
    "/passwd",
    "/purge",
    "/quit",
    "/recv_files",
    "/rename",
    "/role",
    "/rooms",
    "/search",
    "/send_files",
    "/topic",
    "/transfers",
    "/unban",
    "/unmute",
    "/upload",
    "/user",
    "/users",
    "/who",
];

/// The commands whose first argument is a user, aliases included: Tab there offers user names
/// only, not rooms.
const USER_FIRST: &[&str] = &[
    "/ban", "/delete", "/deop", "/invite", "/kick", "/msg", "/mute", "/op", "/purge", "/query",
    "/role", "/unban", "/unmute",
];

/// Whether the first argument of `command` (as typed, `/kick`) is a user name.
pub fn takes_user_first(command: &str) -> bool {
    USER_FIRST.contains(&command)
}

/// The `/user` sub-commands, for completion; all but `suspended` name a user next.
const USER_SUB_COMMANDS: &[&str] = &[
    "add",
    "delete",
    "demote",
    "logout",
    "passwd",
    "promote",
    "suspend",
    "suspended",
    "unsuspend",
];

/// Whether the word after `before` (the words before it on the line) is a user name: the first
/// argument of `/kick` and the like, or the one after `/user suspend`.
pub fn user_comes_next(before: &[&str]) -> bool {
    match before {
        [command] => takes_user_first(command),
        ["/user", sub] => *sub != "suspended" && USER_SUB_COMMANDS.contains(sub),
        _ => false,
    }
}

/// The sub-commands `word` may begin when it follows `before` (`/user sus` offers `suspend`,
/// `suspended`); `None` where no sub-command goes.
pub fn complete_sub_command(before: &[&str], word: &str) -> Option<Vec<String>> {
    match before {
        ["/user"] => Some(
            USER_SUB_COMMANDS
                .iter()
                .filter(|sub| sub.starts_with(word))
                .map(|sub| (*sub).to_string())
                .collect(),
        ),
        _ => None,
    }
}

/// Completions for the word being typed: a command at the start of the line, `@name` for
/// users, and user or room names as command arguments. Sorted, case-insensitive prefix match.
pub fn complete(
    word: &str,
    at_line_start: bool,
    users: &[String],
    rooms: &[String],
) -> Vec<String> {
    let lower = word.to_lowercase();
    let matching = |candidates: &mut dyn Iterator<Item = &String>, prefix: &str| -> Vec<String> {
        let mut found: Vec<String> = candidates
            .filter(|c| c.to_lowercase().starts_with(&lower[prefix.len()..]))
            .map(|c| format!("{prefix}{c}"))
            .collect();
        found.sort_by_key(|c| c.to_lowercase());
        found.dedup();
        found
    };
    if at_line_start && word.starts_with('/') {
        return NAMES
            .iter()
            .filter(|n| n.starts_with(&lower))
            .map(|n| (*n).to_string())
            .collect();
    }
    if word.starts_with('@') {
        return matching(&mut users.iter(), "@");
    }
    if word.starts_with('#') {
        return matching(&mut rooms.iter(), "#");
    }
    if at_line_start {
        return Vec::new();
    }
    let mut all = matching(&mut users.iter().chain(rooms.iter()), "");
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_escaped_slashes_are_messages() {
        assert_eq!(
            parse("hello /join x"),
            Ok(Command::Say("hello /join x".into()))
        );
        assert_eq!(parse("//shrug"), Ok(Command::Say("/shrug".into())));
    }

    #[test]
    fn role_commands_parse() {
        assert_eq!(
            parse("/role @bob Moderator"),
            Ok(Command::Role {
                user: "bob".into(),
                role: RoomRole::Moderator
            })
        );
        assert_eq!(
            parse("/role bob owner"),
            Ok(Command::Role {
                user: "bob".into(),
                role: RoomRole::Owner
            })
        );
        assert_eq!(
            parse("/deop bob"),
            Ok(Command::Role {
                user: "bob".into(),
                role: RoomRole::Member
            })
        );
        assert_eq!(
            parse("/op bob"),
            Ok(Command::Role {
                user: "bob".into(),
                role: RoomRole::Moderator
            })
        );
        assert_eq!(
            parse("/role bob king"),
            Err(ParseError::Usage(
                "/role bob owner|moderator|member (king is not a room role)".into()
            ))
        );
        assert_eq!(parse("/op"), Err(ParseError::Usage("/op USER".into())));
        assert_eq!(
            parse("/deop a b"),
            Err(ParseError::Usage("/deop USER".into()))
        );
    }

    #[test]
    fn commands_and_original_aliases_parse() {
        assert_eq!(parse("/join dev"), Ok(Command::Join("dev".into())));
        assert_eq!(parse("/join_chat dev"), Ok(Command::Join("dev".into())));
        assert_eq!(parse("/enter_chat dev"), Ok(Command::Enter("dev".into())));
        assert_eq!(
            parse("/create_chat ops alice 张伟"),
            Ok(Command::Create {
                name: "ops".into(),
                private: false,
                invite: vec!["alice".into(), "张伟".into()]
            })
        );
        assert_eq!(
            parse("/create --private secret"),
            Ok(Command::Create {
                name: "secret".into(),
                private: true,
                invite: vec![]
            })
        );
        assert_eq!(parse("/list -u"), Ok(Command::Users));
        assert_eq!(parse("/list -s"), Ok(Command::Who));
        assert_eq!(parse("/list -c"), Ok(Command::Rooms));
        assert_eq!(parse("/list -g"), Ok(Command::PublicRooms));
        assert_eq!(parse("/exit"), Ok(Command::Quit));
        assert_eq!(parse("/info"), Ok(Command::Info));
        assert_eq!(parse("/leave"), Ok(Command::Leave(None)));
    }

    #[test]
    fn file_commands_parse() {
        assert_eq!(
            parse("/upload ~/My Documents/report.pdf "),
            Ok(Command::Upload("~/My Documents/report.pdf".into()))
        );
        assert_eq!(
            parse("/send_files \"a b.txt\""),
            Ok(Command::Upload("a b.txt".into()))
        );
        assert_eq!(
            parse("/upload"),
            Err(ParseError::Usage("/upload PATH".into()))
        );
        assert_eq!(parse("/download"), Ok(Command::Download(None)));
        assert_eq!(parse("/download 7"), Ok(Command::Download(Some(7))));
        assert_eq!(parse("/recv_files #7"), Ok(Command::Download(Some(7))));
        assert!(parse("/download seven").is_err());
        assert_eq!(parse("/cancel"), Ok(Command::Cancel(None)));
        assert_eq!(parse("/cancel 2"), Ok(Command::Cancel(Some(2))));
        assert_eq!(parse("/list -f"), Ok(Command::Files));
        assert_eq!(parse("/transfers"), Ok(Command::Transfers));
        assert_eq!(parse("/delete"), Ok(Command::Delete(None)));
        assert_eq!(
            parse("/delete @bob"),
            Ok(Command::Delete(Some("@bob".into())))
        );
        assert_eq!(
            parse("/delete bob carol"),
            Err(ParseError::Usage("/delete [USER]".into()))
        );
    }

    #[test]
    fn free_text_arguments_keep_their_spaces() {
        assert_eq!(
            parse("/msg bob  see you at 3 "),
            Ok(Command::Msg {
                user: "bob".into(),
                text: Some("see you at 3".into())
            })
        );
        assert_eq!(
            parse("/msg bob"),
            Ok(Command::Msg {
                user: "bob".into(),
                text: None
            })
        );
        assert_eq!(
            parse("/topic Release  week"),
            Ok(Command::Topic("Release  week".into()))
        );
        assert_eq!(
            parse("/topic"),
            Ok(Command::ShowTopic),
            "alone, it shows it"
        );
        assert_eq!(parse("/topic   "), Ok(Command::ShowTopic));
        assert_eq!(
            parse("/topic --clear"),
            Ok(Command::Topic(String::new())),
            "clearing it takes saying so"
        );
        assert_eq!(
            parse("/rename #release planning "),
            Ok(Command::Rename("release planning".into()))
        );
        assert!(parse("/rename  ").is_err());
        assert_eq!(
            parse("/away at lunch"),
            Ok(Command::Away(Some("at lunch".into())))
        );
        assert_eq!(parse("/away"), Ok(Command::Away(None)));
        assert_eq!(
            parse("/kick mallory spamming links"),
            Ok(Command::Kick {
                user: "mallory".into(),
                reason: Some("spamming links".into())
            })
        );
    }

    #[test]
    fn ban_commands_parse_as_kick_does() {
        assert_eq!(
            parse("/ban mallory  spamming  links "),
            Ok(Command::Ban {
                user: "mallory".into(),
                reason: Some("spamming  links".into())
            })
        );
        assert_eq!(
            parse("/ban mallory"),
            Ok(Command::Ban {
                user: "mallory".into(),
                reason: None
            })
        );
        assert_eq!(
            parse("/ban  mallory   "),
            Ok(Command::Ban {
                user: "mallory".into(),
                reason: None
            })
        );
        let ban_usage = Err(ParseError::Usage("/ban USER [REASON]".into()));
        assert_eq!(parse("/ban"), ban_usage);
        assert_eq!(parse("/ban   "), ban_usage);
        assert_eq!(
            parse("/unban mallory"),
            Ok(Command::Unban("mallory".into()))
        );
        let unban_usage = Err(ParseError::Usage("/unban USER".into()));
        assert_eq!(parse("/unban"), unban_usage);
        assert_eq!(parse("/unban mallory now"), unban_usage);
        assert_eq!(parse("/bans"), Ok(Command::Bans));
        assert_eq!(parse("/bans x"), Err(ParseError::Usage("/bans".into())));
    }

    /// `/create "dev ops"` names one room `dev ops` (for the server to refuse with its reason),
    /// not `"dev`; an open quote is said to be one; quotes in free text stay as typed.
    #[test]
    fn double_quotes_hold_an_argument_together() {
        assert_eq!(
            parse("/create \"dev ops\" bob"),
            Ok(Command::Create {
                name: "dev ops".into(),
                private: false,
                invite: vec!["bob".into()]
            })
        );
        assert_eq!(
            parse("/create --private dev\" \"ops"),
            Ok(Command::Create {
                name: "dev ops".into(),
                private: true,
                invite: vec![]
            })
        );
        assert_eq!(
            parse("/join \"dev ops\""),
            Ok(Command::Join("dev ops".into()))
        );
        assert_eq!(parse("/enter \"#dev\""), Ok(Command::Enter("#dev".into())));
        assert_eq!(
            parse("/leave \"dev ops\""),
            Ok(Command::Leave(Some("dev ops".into())))
        );
        assert_eq!(
            parse("/rename \"#release planning\""),
            Ok(Command::Rename("release planning".into()))
        );
        assert_eq!(parse("/rename \"a b\" c"), Err(usage("/rename")));
        assert_eq!(parse("/join \"\""), Err(usage("/join")), "an empty name");
        assert_eq!(parse("/create \"\""), Err(usage("/create")));
        for open in [
            "/create \"dev ops",
            "/join \"dev",
            "/rename \"x",
            "/leave dev\"",
            "/invite \"bob",
            "/bans \"",
        ] {
            assert_eq!(parse(open), Err(ParseError::UnclosedQuote), "{open}");
        }
        assert!(
            ParseError::UnclosedQuote.to_string().contains("quote"),
            "the error says what is wrong"
        );
        // Every command reads its USER as /invite does: quotes taken out, an open one refused.
        assert_eq!(
            parse("/kick \"carol\""),
            Ok(Command::Kick {
                user: "carol".into(),
                reason: None
            })
        );
        assert_eq!(
            parse("/ban \"dev ops\" spam"),
            Ok(Command::Ban {
                user: "dev ops".into(),
                reason: Some("spam".into())
            })
        );
        assert_eq!(
            parse("/mute \"bob\" 10m"),
            Ok(Command::Mute {
                user: "bob".into(),
                secs: Some(600),
                reason: None
            })
        );
        assert_eq!(
            parse("/msg \"bob\" hi \"there"),
            Ok(Command::Msg {
                user: "bob".into(),
                text: Some("hi \"there".into())
            }),
            "the text after the user is text, quotes and all"
        );
        // `@bob` names bob, as /mute, /role and /delete already took it.
        assert_eq!(
            parse("/kick @bob"),
            Ok(Command::Kick {
                user: "bob".into(),
                reason: None
            })
        );
        assert_eq!(
            parse("/ban \"@bob\" x"),
            Ok(Command::Ban {
                user: "bob".into(),
                reason: Some("x".into())
            })
        );
        assert_eq!(
            parse("/msg @bob hi"),
            Ok(Command::Msg {
                user: "bob".into(),
                text: Some("hi".into())
            })
        );
        assert_eq!(parse("/invite @bob"), Ok(Command::Invite("bob".into())));
        assert_eq!(parse("/unban @bob"), Ok(Command::Unban("bob".into())));
        for bare in ["/kick @", "/ban @ x", "/msg @ hi", "/invite @", "/unban @"] {
            assert!(matches!(parse(bare), Err(ParseError::Usage(_))), "{bare}");
        }
        for open in [
            "/kick \"bob",
            "/ban \"bob too",
            "/mute \"bob",
            "/msg \"bob hi",
        ] {
            assert_eq!(parse(open), Err(ParseError::UnclosedQuote), "{open}");
        }
        for empty in ["/kick \"\"", "/ban \"\" x", "/mute \"\"", "/msg \"\" hi"] {
            assert!(matches!(parse(empty), Err(ParseError::Usage(_))), "{empty}");
        }
        assert_eq!(
            parse("/kick carol \"unterminated reason"),
            Ok(Command::Kick {
                user: "carol".into(),
                reason: Some("\"unterminated reason".into())
            }),
            "an open quote in a reason is text"
        );
        // Reasons are the rest of the line already: quotes around all of one go, others stay.
        assert_eq!(
            parse("/kick bob \"spamming links\""),
            Ok(Command::Kick {
                user: "bob".into(),
                reason: Some("spamming links".into())
            })
        );
        assert_eq!(
            parse("/ban bob said \"hi\" twice"),
            Ok(Command::Ban {
                user: "bob".into(),
                reason: Some("said \"hi\" twice".into())
            })
        );
        assert_eq!(
            parse("/mute bob 10m \"too loud\""),
            Ok(Command::Mute {
                user: "bob".into(),
                secs: Some(600),
                reason: Some("too loud".into())
            })
        );
        assert_eq!(
            parse("/mute bob \"rude"),
            Ok(Command::Mute {
                user: "bob".into(),
                secs: None,
                reason: Some("\"rude".into())
            }),
            "an open quote in a reason is text"
        );
        assert_eq!(
            parse("/msg bob \"quoted"),
            Ok(Command::Msg {
                user: "bob".into(),
                text: Some("\"quoted".into())
            })
        );
        assert_eq!(
            parse("/topic \"Release week"),
            Ok(Command::Topic("\"Release week".into()))
        );
    }

    #[test]
    fn ai_questions_and_commands_parse() {
        assert_eq!(
            parse("/ai what did  we decide?"),
            Ok(Command::Ai("what did  we decide?".into()))
        );
        assert_eq!(parse("/ai status"), Ok(Command::Ai("status".into())));
        assert_eq!(parse("/ai"), Ok(Command::Ai("help".into())));
    }

    #[test]
    fn mistakes_say_how_to_do_it_right() {
        assert_eq!(
            parse("/frobnicate"),
            Err(ParseError::Unknown("/frobnicate".into()))
        );
        assert_eq!(
            parse("/join"),
            Err(ParseError::Usage("/join ROOM|@USER".into()))
        );
        assert_eq!(
            parse("/join a b"),
            Err(ParseError::Usage("/join ROOM|@USER".into()))
        );
        assert_eq!(
            parse("/msg"),
            Err(ParseError::Usage("/msg USER [TEXT]".into()))
        );
        assert_eq!(parse("/who extra"), Err(ParseError::Usage("/who".into())));
        assert!(parse("/list -x").is_err());
    }

    #[test]
    fn search_takes_words_and_maybe_a_room_first() {
        let search = |room: Option<&str>, query: &str| {
            Ok(Command::Search {
                room: room.map(str::to_owned),
                query: query.into(),
            })
        };
        assert_eq!(
            parse("/search deploy  \"release notes\" fri* "),
            search(None, "deploy  \"release notes\" fri*")
        );
        assert_eq!(parse("/search #dev deploy"), search(Some("#dev"), "deploy"));
        assert_eq!(parse("/search @bob lunch"), search(Some("@bob"), "lunch"));
        assert_eq!(
            parse("/search @bob"),
            search(None, "@bob"),
            "alone, @bob is the word to find"
        );
        assert_eq!(
            parse("/search #ops  two words"),
            search(Some("#ops"), "two words"),
            "any room name: whether I am in it is the app's to say"
        );
        assert_eq!(
            parse("/search deploy #dev"),
            search(None, "deploy #dev"),
            "only the first word names a room"
        );
        assert_eq!(
            parse("/search # x"),
            search(None, "# x"),
            "a bare # is a word"
        );
        assert_eq!(parse("/search 张伟"), search(None, "张伟"));
        let usage = Err(ParseError::Usage("/search [#ROOM|@USER] WORDS".into()));
        assert_eq!(parse("/search"), usage);
        assert_eq!(parse("/search   "), usage);
        assert_eq!(parse("/search #dev"), usage, "a room and no words");
        assert_eq!(parse("/search #dev  "), usage);
    }

    #[test]
    fn completion_knows_commands_users_and_rooms() {
        let users = vec!["alice".to_string(), "Albert".to_string(), "bob".to_string()];
        let rooms = vec!["dev".to_string(), "design".to_string()];
        assert_eq!(
            complete("/jo", true, &users, &rooms),
            ["/join", "/join_chat"]
        );
        assert_eq!(
            complete("@al", false, &users, &rooms),
            ["@Albert", "@alice"]
        );
        assert_eq!(complete("#de", false, &users, &rooms), ["#design", "#dev"]);
        assert_eq!(complete("bo", false, &users, &rooms), ["bob"]);
        assert_eq!(complete("/sea", true, &users, &rooms), ["/search"]);
        assert_eq!(
            complete("/ba", true, &users, &rooms),
            ["/back", "/ban", "/bans"]
        );
        assert_eq!(complete("/unb", true, &users, &rooms), ["/unban"]);
        for name in ["/ban", "/unban", "/bans"] {
            assert!(HELP.iter().any(|(n, _, _)| *n == name), "{name} in /help");
        }
        assert!(HELP.iter().any(|(name, _, _)| *name == "/search"));
        assert!(complete("zz", false, &users, &rooms).is_empty());
        assert!(
            NAMES.windows(2).all(|w| w[0] < w[1]),
            "NAMES sorted, no duplicates"
        );
        for name in ["/mute", "/unmute", "/mutes", "/edit"] {
            assert!(NAMES.contains(&name), "{name} completes");
            assert!(HELP.iter().any(|(n, _, _)| *n == name), "{name} in /help");
        }
    }

    #[test]
    fn mute_takes_a_user_then_maybe_a_duration_then_maybe_a_reason() {
        let mute = |user: &str, secs: Option<u64>, reason: Option<&str>| {
            Ok(Command::Mute {
                user: user.into(),
                secs,
                reason: reason.map(Into::into),
            })
        };
        assert_eq!(parse("/mute bob"), mute("bob", None, None));
        assert_eq!(parse("/mute @bob 10m"), mute("bob", Some(600), None));
        assert_eq!(
            parse("/mute bob 10 spam"),
            mute("bob", Some(600), Some("spam"))
        );
        assert_eq!(
            parse("/mute bob 2h  too  loud "),
            mute("bob", Some(7200), Some("too  loud"))
        );
        assert_eq!(parse("/mute bob 90s x"), mute("bob", Some(90), Some("x")));
        assert_eq!(parse("/mute bob 1d"), mute("bob", Some(86_400), None));
        assert_eq!(
            parse("/mute bob being rude"),
            mute("bob", None, Some("being rude")),
            "no duration: all of it is the reason"
        );
        for not_a_time in ["5y", "-5m", "1w", "30sec", "2hours", "5x", "-1"] {
            assert_eq!(
                parse(&format!("/mute bob {not_a_time} spam")),
                Err(ParseError::Duration(not_a_time.into())),
                "{not_a_time} is a mistaken duration, not a reason"
            );
        }
        assert!(
            ParseError::Duration("5y".into())
                .to_string()
                .starts_with("5y: expected a duration like 90s")
        );
        assert_eq!(
            parse("/mute bob -- spam"),
            mute("bob", None, Some("-- spam")),
            "a - without a digit starts a reason"
        );
        assert_eq!(parse("/mute bob x5"), mute("bob", None, Some("x5")));
        assert_eq!(
            parse("/mute"),
            Err(ParseError::Usage("/mute USER [TIME] [REASON]".into()))
        );
        assert_eq!(parse("/unmute @bob"), Ok(Command::Unmute("bob".into())));
        assert_eq!(parse("/mutes"), Ok(Command::Mutes));
        assert_eq!(
            duration_secs("99999999999999999999d"),
            None,
            "overflow is no duration"
        );
        assert_eq!(duration_secs("1h30m"), Some(5400));
        assert_eq!(duration_secs("2m30s"), Some(150));
        assert_eq!(duration_secs("1d12h"), Some(129_600));
        assert_eq!(duration_secs("10"), Some(600), "a bare number is minutes");
        for not_one in ["", "h", "1h30", "1x", "30m1", "1 h", "1h-30m"] {
            assert_eq!(duration_secs(not_one), None, "{not_one:?}");
        }
        assert_eq!(
            parse("/mute erin 1h30m too loud"),
            mute("erin", Some(5400), Some("too loud"))
        );
    }

    /// `/purge bob` reaches an hour back; a TIME is read as `/mute` reads one, and anything
    /// else there (a word, 0, a third argument) is a mistake to correct, not a guess.
    #[test]
    fn purge_takes_a_user_and_maybe_how_far_back() {
        let purge = |user: &str, secs| {
            Ok(Command::Purge {
                user: user.into(),
                secs,
            })
        };
        assert_eq!(parse("/purge bob"), purge("bob", 3600));
        assert_eq!(parse("/purge @bob 10m"), purge("bob", 600));
        assert_eq!(parse("/purge \"bob\" 1d12h"), purge("bob", 129_600));
        assert_eq!(parse("/purge bob 90s"), purge("bob", 90));
        assert_eq!(
            parse("/purge bob 30"),
            purge("bob", 1800),
            "a bare number is minutes"
        );
        for not_a_time in ["5y", "-5m", "soon", "0", "0m"] {
            assert_eq!(
                parse(&format!("/purge bob {not_a_time}")),
                Err(ParseError::Duration(not_a_time.into())),
                "{not_a_time}"
            );
        }
        let usage = Err(ParseError::Usage("/purge USER [TIME]".into()));
        for wrong in ["/purge", "/purge @", "/purge \"\"", "/purge bob 10m spam"] {
            assert_eq!(parse(wrong), usage, "{wrong}");
        }
        assert_eq!(parse("/purge \"bob"), Err(ParseError::UnclosedQuote));
        assert!(NAMES.contains(&"/purge") && takes_user_first("/purge"));
        assert_eq!(complete("/pu", true, &[], &[]), ["/purge"]);
    }

    /// `/user SUB NAME` as `chatroom user SUB NAME` takes it, `@bob` too; a missing or extra
    /// NAME, or a sub-command it does not know, is told the usage; `add` and `passwd`, which
    /// need a password typed, point to the shell.
    #[test]
    fn user_commands_parse_as_the_shell_s_do() {
        let parsed = |line: &str| {
            parse(line).map(|c| match c {
                Command::Account(action) => action,
                other => panic!("{line}: {other:?}"),
            })
        };
        assert_eq!(
            parsed("/user logout bob"),
            Ok(AccountAction::LogOut("bob".into()))
        );
        assert_eq!(
            parsed("/user suspend @bob"),
            Ok(AccountAction::Suspend {
                user: "bob".into(),
                reason: None
            })
        );
        assert_eq!(
            parsed("/user suspend \"bob\"  spam and  more "),
            Ok(AccountAction::Suspend {
                user: "bob".into(),
                reason: Some("spam and  more".into())
            })
        );
        assert_eq!(
            parsed("/user suspend bob \"links, again\""),
            Ok(AccountAction::Suspend {
                user: "bob".into(),
                reason: Some("links, again".into())
            })
        );
        assert_eq!(
            parsed("/user unsuspend @bob"),
            Ok(AccountAction::Unsuspend("bob".into()))
        );
        assert_eq!(parsed("/user suspended"), Ok(AccountAction::Suspensions));
        assert_eq!(
            parsed("/user promote bob"),
            Ok(AccountAction::SetAdmin {
                user: "bob".into(),
                admin: true
            })
        );
        assert_eq!(
            parsed("/user demote @bob"),
            Ok(AccountAction::SetAdmin {
                user: "bob".into(),
                admin: false
            })
        );
        assert_eq!(
            parsed("/user delete \"@bob\""),
            Ok(AccountAction::Delete("bob".into()))
        );
        let usage = |line: &str| Err(ParseError::Usage(line.into()));
        for sub in ["logout", "unsuspend", "promote", "demote", "delete"] {
            let expected = usage(&format!("/user {sub} USER"));
            for wrong in ["", " @", " \"\"", " bob carol"] {
                assert_eq!(
                    parsed(&format!("/user {sub}{wrong}")),
                    expected,
                    "{sub}{wrong}"
                );
            }
        }
        assert_eq!(
            parsed("/user suspend"),
            usage("/user suspend USER [REASON]")
        );
        assert_eq!(
            parsed("/user suspend @ spam"),
            usage("/user suspend USER [REASON]")
        );
        assert_eq!(parsed("/user suspended bob"), usage("/user suspended"));
        let all = usage(USER_USAGE);
        for wrong in [
            "/user",
            "/user  ",
            "/user frobnicate bob",
            "/user Promote bob",
        ] {
            assert_eq!(parsed(wrong), all, "{wrong}");
        }
        assert_eq!(
            parsed("/user promote \"bob"),
            Err(ParseError::UnclosedQuote)
        );
        assert_eq!(
            parsed("/user add @carol"),
            Err(ParseError::ShellOnly("chatroom user add carol".into()))
        );
        assert_eq!(
            parsed("/user passwd"),
            Err(ParseError::ShellOnly("chatroom user passwd NAME".into()))
        );
        assert_eq!(
            ParseError::ShellOnly("chatroom user add carol".into()).to_string(),
            "that needs a new password typed, so it is done in a shell: chatroom user add carol"
        );
    }

    /// Tab after `/user` offers its sub-commands, and after one that names an account, users
    /// only; after `/user suspended` nothing is a user.
    #[test]
    fn user_sub_commands_and_their_user_complete() {
        assert_eq!(complete("/us", true, &[], &[]), ["/user", "/users"]);
        assert_eq!(
            complete_sub_command(&["/user"], "sus"),
            Some(vec!["suspend".to_string(), "suspended".to_string()])
        );
        assert_eq!(
            complete_sub_command(&["/user"], "p"),
            Some(vec!["passwd".to_string(), "promote".to_string()])
        );
        assert_eq!(complete_sub_command(&["/kick"], "p"), None);
        assert_eq!(complete_sub_command(&["/user", "promote"], "p"), None);
        for sub in [
            "logout",
            "suspend",
            "unsuspend",
            "promote",
            "demote",
            "delete",
        ] {
            assert!(user_comes_next(&["/user", sub]), "{sub}");
        }
        assert!(!user_comes_next(&["/user", "suspended"]));
        assert!(!user_comes_next(&["/user", "frobnicate"]));
        assert!(!user_comes_next(&["/user"]));
        assert!(!user_comes_next(&["/user", "suspend", "bob"]), "the reason");
        assert!(user_comes_next(&["/kick"]));
        assert!(!user_comes_next(&["/join"]));
        for sub in USER_SUB_COMMANDS {
            let in_help = HELP.iter().any(|(name, args, _)| {
                *name == "/user"
                    && args
                        .split(' ')
                        .next()
                        .is_some_and(|subs| subs.split('|').any(|s| s == *sub))
            });
            // add and passwd need a password typed: the TUI points to the shell for them.
            assert_eq!(
                in_help,
                !["add", "passwd"].contains(sub),
                "/user {sub} in /help"
            );
        }
    }
}
