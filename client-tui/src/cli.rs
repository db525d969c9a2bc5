//! The `chatroom` command line. Every subcommand takes `--server` and `--user` (or
//! `CHATROOM_SERVER` / `CHATROOM_USER`, or the config file), prints plain text or, with
//! `--json`, one JSON object per line, and exits non-zero with one line on stderr on failure.

use anyhow::{Context, anyhow, bail};
use chatroom_protocol::client::{Client, ClientError};
use chatroom_protocol::transfer::{self, TransferError, TransferOptions};
use chatroom_protocol::{
    ErrorCode, Event, FileId, HistoryAnchor, MAX_SEARCH_QUERY_CHARS, Message, MessageKind, RoomId,
    RoomKind, RoomSummary, Seq,
};
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::cli_rooms::{self, RoomCommand};
use crate::login::{self, connect_logged_in};
use crate::output;
use crate::progress::TerminalBar;
use crate::settings::{self, Settings};

/// What `chatroom --help` says last: what a script can tell from the exit status.
const EXIT_STATUS: &str = "Exit status: 0 when done (a search that finds nothing, too); 1 when \
it failed or was refused, said in one line on stderr; 2 for a command line it does not take; \
130 for a transfer stopped by Ctrl-C (run it again to resume).";

/// Chat-Room client. With no subcommand it opens the terminal UI; subcommands make it scriptable
/// from a shell.
#[derive(Debug, Parser)]
#[command(name = "chatroom", version, about, long_about = None, after_help = EXIT_STATUS)]
pub struct Cli {
    /// Server address; the port is 8888 when omitted [default: 127.0.0.1:8888]
    #[arg(
        long,
        env = "CHATROOM_SERVER",
        value_name = "HOST[:PORT]",
        global = true
    )]
    pub server: Option<String>,
    /// Account name
    #[arg(long, env = "CHATROOM_USER", value_name = "NAME", global = true)]
    pub user: Option<String>,
    /// Read the password from the first line of this file (otherwise CHATROOM_PASSWORD, or a
    /// prompt)
    #[arg(long, value_name = "FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Config file [default: ~/.config/chatroom/config.toml]
    #[arg(long, env = "CHATROOM_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Scroll with the mouse wheel in the terminal UI (hold Shift to select text); --mouse=false
    /// or CHATROOM_MOUSE=false overrides `mouse = true` in the config file
    #[arg(
        long,
        env = "CHATROOM_MOUSE",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub mouse: Option<bool>,
    /// Do not ring the terminal bell when mentioned; --no-bell=false or CHATROOM_NO_BELL=false
    /// overrides `bell = false` in the config file
    #[arg(
        long,
        env = "CHATROOM_NO_BELL",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_bell: Option<bool>,
    /// Show as away after this many minutes without a key in the terminal UI (while every
    /// other client of the account is idle too); 0 never [config `away_after`, default 10]
    #[arg(long, env = "CHATROOM_AWAY_AFTER", value_name = "MINUTES")]
    pub away_after: Option<u32>,
    /// What to do; the terminal UI when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Which room a command is about.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A room by name (one you are a member of)
    #[arg(long, value_name = "ROOM")]
    pub room: Option<String>,
    /// A direct chat with this user
    #[arg(long, value_name = "USER")]
    pub to: Option<String>,
}

/// Which room a command is about, if only one: as [`Target`], but neither is fine too.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct Scope {
    /// Only this room (one you are a member of)
    #[arg(long, value_name = "ROOM")]
    pub room: Option<String>,
    /// Only the direct chat with this user
    #[arg(long, value_name = "USER")]
    pub to: Option<String>,
}

impl Scope {
    /// The one room named, if any.
    fn target(&self) -> Option<Target> {
        (self.room.is_some() || self.to.is_some()).then(|| Target {
            room: self.room.clone(),
            to: self.to.clone(),
        })
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account (and keep its session for later commands).
    Register,
    /// Log in and keep the session, so later commands need no password.
    Login,
    /// Log out: end the kept session on the server and forget it here.
    Logout,
    /// Send a message; exits 0 once the server has stored it.
    Send {
        /// Where to send.
        #[command(flatten)]
        target: Target,
        /// The text; read from standard input when omitted or "-".
        text: Vec<String>,
        /// Print the acknowledgement as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a room's messages as they arrive, edits of them (marked edited) and deletions.
    ///
    /// It exits 0 after --count messages, and 1 when the server goes away (without --count,
    /// its only end but Ctrl-C).
    Tail {
        /// Which room.
        #[command(flatten)]
        target: Target,
        /// First print what came after this seq (0 for everything).
        #[arg(long, value_name = "SEQ")]
        since: Option<Seq>,
        /// Exit after this many messages (the room's notices of joins, kicks and topics, edits,
        /// deletions and deleted messages are printed but not counted).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a room's latest messages, oldest first: time, seq, room, sender, text.
    History {
        /// Which room.
        #[command(flatten)]
        target: Target,
        /// How many messages.
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Find messages by their words in my rooms and direct chats, newest first.
    Search {
        /// Words that must all appear (case and accents ignored); '"a phrase"' in quotes, and
        /// `word*` for words that start with `word`.
        #[arg(required = true, value_name = "WORDS")]
        words: Vec<String>,
        /// Where to search [default: every room and direct chat I am in].
        #[command(flatten)]
        scope: Scope,
        /// How many messages at most.
        #[arg(
            long,
            default_value_t = 20,
            value_name = "N",
            value_parser = clap::value_parser!(u32).range(1..)
        )]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List my rooms and direct chats with unread counts.
    Rooms {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List every user with presence.
    Users {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Upload a file to a room or a direct chat; resumes an interrupted upload of the same file.
    #[command(visible_alias = "send_files")]
    Upload {
        /// Where to post it.
        #[command(flatten)]
        target: Target,
        /// The file.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a file by id, verified by its SHA-256; never overwrites (picks `name (1).ext`),
    /// and resumes an interrupted download.
    #[command(visible_alias = "recv_files")]
    Download {
        /// The file's id (see `chatroom files`).
        file_id: u64,
        /// A file or folder to save to [default: download_dir from the config, or
        /// ~/Downloads/chatroom]
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the files posted in a room or direct chat, newest first.
    Files {
        /// Which room.
        #[command(flatten)]
        target: Target,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Managing rooms and moderating them: join, create, kick, mute and the rest (see
    /// [`crate::cli_rooms`]).
    #[command(flatten)]
    Manage(RoomCommand),
    /// Accounts, as a server admin, while the server runs.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// `chatroom user …`: what a server admin does to accounts from a client.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account for someone else (a server admin only; works with closed
    /// registration). Its password comes from --new-password-file, CHATROOM_NEW_PASSWORD, or
    /// a prompt.
    Add {
        /// The new account's name.
        name: String,
        /// A file whose first line is the new account's password.
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
    /// Give someone else's account a new password and log it out everywhere, at once (a server
    /// admin only). The password comes from --new-password-file, CHATROOM_NEW_PASSWORD, or a
    /// prompt.
    Passwd {
        /// The account's name.
        name: String,
        /// A file whose first line is the account's new password.
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
    /// Log someone else's account out everywhere, keeping its password (a server admin only).
    Logout {
        /// The account's name.
        name: String,
    },
    /// Lock someone else's account out until `user unsuspend`: it is logged out everywhere at
    /// once and its logins are refused, with the reason (a server admin only). It keeps its
    /// rooms and messages.
    Suspend {
        /// The account's name.
        name: String,
        /// Why; they are told when they try to log in.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let a suspended account log in again (a server admin only).
    Unsuspend {
        /// The account's name.
        name: String,
    },
    /// List the suspended accounts, newest first (a server admin only).
    Suspended {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Make someone else's account a server admin, at once (a server admin only).
    Promote {
        /// The account's name.
        name: String,
    },
    /// Take server admin away from someone else's account, at once (a server admin only).
    Demote {
        /// The account's name.
        name: String,
    },
    /// Delete someone else's account for good (a server admin only): it is logged out and
    /// leaves every room, its messages stay under its name, and the name is free again.
    /// `user suspend` locks an account out and can be undone.
    Delete {
        /// The account's name.
        name: String,
    },
}

/// A transfer stopped by Ctrl-C. The binary exits with 130 (128 + SIGINT), as shells expect of
/// an interrupted command, so a script can tell it from a failure.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; run the same command again to resume")]
pub struct Interrupted;

/// Standard output was closed by its reader (`chatroom history | head` once `head` has its
/// lines). Not a failure: [`main`] ends the command quietly with status 0, as a reader that has
/// seen enough is what the user asked for, and a 141 (128 + SIGPIPE) would fail a script under
/// `set -o pipefail` for a pipeline that did what it was meant to.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// The process exit status for an error from [`main`]: 130 when interrupted, 1 otherwise.
pub fn exit_status(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Interrupted>().is_some() {
        130
    } else {
        1
    }
}

/// The one line the binary says on stderr for a failure (after `chatroom: `): each context and
/// then the cause, joined by `: ` as `{:#}` joins them, but a server's refusal as its message
/// alone. Its code (`Forbidden`) and the `server error: ` before it are for programs; the
/// exit status is what a script goes by.
pub fn error_line(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|link| match server_reason(link) {
            Some(reason) => reason,
            None => link.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// What the server said, for a person, when `link` is its refusal or its reason for closing the
/// connection (also inside a failed transfer).
fn server_reason(link: &(dyn std::error::Error + 'static)) -> Option<String> {
    let client_error = match link.downcast_ref::<TransferError>() {
        Some(TransferError::Client(inner)) => inner,
        _ => link.downcast_ref::<ClientError>()?,
    };
    match client_error {
        ClientError::Server(body) => Some(output::escape_controls(&body.message).into_owned()),
        ClientError::Closed(Some(body)) => Some(format!(
            "connection closed: {}",
            output::escape_controls(&body.message)
        )),
        _ => None,
    }
}

/// Runs the command line; the binary's `main`.
pub fn main() -> anyhow::Result<()> {
    let cli = parse_command_line();
    let settings = settings::resolve(settings::FromCommandLine {
        server: cli.server,
        user: cli.user,
        password_file: cli.password_file,
        config: cli.config,
        mouse: cli.mouse,
        bell: cli.no_bell.map(|no| !no),
        away_after: cli.away_after,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Some(command) => match runtime.block_on(run(command, settings)) {
            // Nobody reads any more: nothing to say, and nobody to say it to.
            Err(e) if e.is::<StdoutClosed>() => Ok(()),
            result => result,
        },
        None => {
            let options = crate::tui::runtime::TuiOptions {
                mouse: settings.mouse,
                bell: settings.bell,
                away_after_minutes: settings.away_after,
            };
            let result = runtime.block_on(crate::tui::runtime::run(settings, options));
            // The key-reading thread blocks on the terminal; do not wait for it.
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            result
        }
    }
}

/// The command line, or exit as clap does for `--help` or one it does not take. clap counts a
/// value from `CHATROOM_SERVER` (or `_USER`, `_CONFIG`) as typed, and so shows
/// `--server <HOST[:PORT]>` in the usage line of such an error, as if it were required: the
/// same parse without the environment names only what was typed, and is said instead when it
/// fails the same way.
fn parse_command_line() -> Cli {
    let error = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(error) => error,
    };
    // `--help` and `--version` (on stdout) show everything, as they should: left as they are.
    let error = if error.use_stderr() {
        match Cli::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches()
        {
            Err(typed) if typed.kind() == error.kind() => typed,
            _ => error,
        }
    } else {
        error
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tip = room_as_a_word_tip(&error.render().to_string(), &args);
    let _ = error.print();
    if let Some(tip) = tip {
        eprintln!("\n{tip}");
    }
    std::process::exit(error.exit_code())
}

/// For `chatroom send public hi` or `chatroom history public`: the room named as a plain word
/// where `--room` (or `--to`) was wanted, which clap can only call missing or unexpected. A
/// line that shows the command as meant.
fn room_as_a_word_tip(error: &str, args: &[String]) -> Option<String> {
    let wants_a_target = error.contains("<--room <ROOM>|--to <USER>>");
    let has_a_target = args.iter().any(|a| {
        a == "--room" || a == "--to" || a.starts_with("--room=") || a.starts_with("--to=")
    });
    if !wants_a_target || has_a_target {
        return None;
    }
    // The subcommand, and the plain words after it (not a flag, nor a flag's value).
    let cli = Cli::command();
    let at = args
        .iter()
        .position(|a| cli.get_subcommands().any(|c| c.get_name() == a.as_str()))?;
    let sub = cli.find_subcommand(&args[at])?;
    let takes_value = |flag: &str| {
        flag.strip_prefix("--").is_some_and(|long| {
            sub.get_arguments()
                .any(|arg| arg.get_long() == Some(long) && arg.get_action().takes_values())
        })
    };
    let words: Vec<usize> = (at + 1..args.len())
        .filter(|&i| !args[i].starts_with('-') && !takes_value(&args[i - 1]))
        .collect();
    // The first is what was meant as the room; where the command takes a word of its own (the
    // text, the file), only if that word came too.
    let own_words = sub.get_positionals().count();
    let word = *words.first().filter(|_| words.len() > own_words.min(1))?;
    let room = quoted(args[word].trim_start_matches('#'));
    let meant: Vec<String> = std::iter::once("chatroom".to_string())
        .chain(args[..word].iter().map(|a| quoted(a)))
        .chain(["--room".to_string(), room])
        .chain(args[word + 1..].iter().map(|a| quoted(a)))
        .collect();
    Some(format!(
        "tip: a room is named with --room (a direct chat with --to USER): {}",
        meant.join(" ")
    ))
}

/// `a` as a shell would need it, for a line to copy: in single quotes unless every character
/// is one no shell treats specially (a leading `#` would start a comment).
fn quoted(a: &str) -> String {
    let plain = |c: char| c.is_alphanumeric() || "_-./:@%+=,".contains(c);
    if !a.is_empty() && a.chars().all(plain) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// Prints one line on stdout, flushed at once (a `tail` piped into a script is read as it goes).
/// A reader that went away is a [`StdoutClosed`], not an error to report.
pub(crate) fn print_line(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                anyhow::Error::new(StdoutClosed)
            } else {
                anyhow::Error::new(e).context("cannot write to standard output")
            }
        })
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Register => register(&settings).await,
        Command::Login => {
            let (_client, session) = connect_logged_in(&settings).await?;
            // Later commands (and the terminal UI) on this server need no --user.
            login::remember_last_user(&settings, &session.user.username);
            print_line(&format!("logged in as {}", session.user.username))
        }
        Command::Logout => logout(&settings).await,
        Command::Send { target, text, json } => send(&settings, &target, text, json).await,
        Command::Tail {
            target,
            since,
            count,
            json,
        } => tail(&settings, &target, since, count, json).await,
        Command::History {
            target,
            limit,
            json,
        } => history(&settings, &target, limit, json).await,
        Command::Search {
            words,
            scope,
            limit,
            json,
        } => search(&settings, &words.join(" "), &scope, limit, json).await,
        Command::Rooms { json } => {
            let (client, _) = connect_logged_in(&settings).await?;
            for room in client.my_rooms().await? {
                if json {
                    print_line(&output::json_line(&output::room_json(&room)))?;
                } else {
                    print_line(&output::room_line(&room))?;
                }
            }
            Ok(())
        }
        Command::Upload { target, file, json } => upload(&settings, &target, &file, json).await,
        Command::Download {
            file_id,
            output,
            json,
        } => download(&settings, file_id, output, json).await,
        Command::Files { target, json } => {
            let (client, _) = connect_logged_in(&settings).await?;
            let room = resolve_target(&client, &target).await?;
            let files = client
                .list_files(room.id)
                .await
                .with_context(|| format!("cannot list the files of {}", room.name))?;
            let label = output::room_label(room.kind, &room.name);
            cli_rooms::print_list(
                &files,
                json,
                |file| output::file_json(&room.name, file),
                output::file_line,
                Some(format!("no files in {label}")),
            )
        }
        Command::Manage(command) => cli_rooms::run(command, &settings).await,
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    new_password_file,
                },
        } => add_user(&settings, &name, new_password_file.as_deref()).await,
        Command::User {
            command:
                UserCommand::Passwd {
                    name,
                    new_password_file,
                },
        } => reset_password(&settings, &name, new_password_file.as_deref()).await,
        Command::User {
            command: UserCommand::Logout { name },
        } => {
            let (client, _) = connect_logged_in(&settings).await?;
            client
                .log_out_user(&name)
                .await
                .with_context(|| format!("cannot log {name} out"))?;
            print_line(&format!("logged {name} out everywhere"))
        }
        Command::User {
            command: UserCommand::Suspend { name, reason },
        } => {
            let (client, _) = connect_logged_in(&settings).await?;
            client
                .suspend_user(&name, reason.as_deref())
                .await
                .with_context(|| format!("cannot suspend {name}"))?;
            print_line(&format!(
                "suspended {name}: logged out everywhere, and refused at login until `chatroom user unsuspend {name}`"
            ))
        }
        Command::User {
            command: UserCommand::Unsuspend { name },
        } => {
            let (client, _) = connect_logged_in(&settings).await?;
            client
                .unsuspend_user(&name)
                .await
                .with_context(|| format!("cannot lift {name}'s suspension"))?;
            print_line(&format!("{name} may log in again"))
        }
        Command::User {
            command: UserCommand::Suspended { json },
        } => {
            let (client, _) = connect_logged_in(&settings).await?;
            let suspended = client
                .suspensions()
                .await
                .context("cannot list the suspended accounts")?;
            cli_rooms::print_list(
                &suspended,
                json,
                output::suspension_json,
                output::suspension_line,
                Some("no account is suspended".to_string()),
            )
        }
        Command::User {
            command: UserCommand::Promote { name },
        } => {
            let (client, _) = connect_logged_in(&settings).await?;
            client
                .set_server_admin(&name, true)
                .await
                .with_context(|| format!("cannot make {name} a server admin"))?;
            print_line(&format!("{name} is a server admin"))
        }
        Command::User {
            command: UserCommand::Demote { name },
        } => {
            let (client, _) = connect_logged_in(&settings).await?;
            client
                .set_server_admin(&name, false)
                .await
                .with_context(|| format!("cannot take server admin away from {name}"))?;
            print_line(&format!("{name} is not a server admin"))
        }
        Command::User {
            command: UserCommand::Delete { name },
        } => {
            let (client, _) = connect_logged_in(&settings).await?;
            client
                .delete_account(&name)
                .await
                .with_context(|| format!("cannot delete {name}"))?;
            print_line(&format!(
                "deleted {name}: logged out and gone from every room; the messages stay"
            ))
        }
        Command::Users { json } => {
            let (client, _) = connect_logged_in(&settings).await?;
            for user in client.list_users().await? {
                if json {
                    print_line(&output::json_line(&output::user_json(&user)))?;
                } else {
                    print_line(&output::user_line(&user))?;
                }
            }
            Ok(())
        }
    }
}

/// Runs a transfer with a progress bar on a terminal and Ctrl-C as a clean cancel (what was
/// transferred is kept, so running the same command again resumes).
async fn with_progress<T>(
    label: &str,
    work: impl AsyncFnOnce(TransferOptions) -> Result<T, TransferError>,
) -> anyhow::Result<T> {
    let (bar, progress) = TerminalBar::start(label);
    let options = TransferOptions {
        progress,
        ..TransferOptions::default()
    };
    let cancel = options.cancel.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    let result = work(options).await;
    interrupt.abort();
    bar.finish().await;
    match result {
        Ok(value) => Ok(value),
        Err(TransferError::Cancelled) => Err(Interrupted.into()),
        Err(e) if e.is_resumable() => {
            Err(anyhow!(e)).context("the transfer stopped; run the same command again to resume")
        }
        Err(e) => Err(e.into()),
    }
}

async fn upload(
    settings: &Settings,
    target: &Target,
    file: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let (client, _) = connect_logged_in(settings).await?;
    let room = resolve_target(&client, target).await?;
    // Events are not read here; dropping their receiver keeps a busy room from stalling the
    // connection while the file goes up.
    let (handle, events) = client.into_parts();
    drop(events);
    let label = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let uploaded = with_progress(&label, async |options| {
        transfer::upload(&handle, room.id, file, &options).await
    })
    .await
    .map_err(|e| without_the_path(e, file))
    .with_context(|| format!("cannot upload {}", file.display()))?;
    let room_label = output::room_label(room.kind, &room.name);
    if json {
        print_line(&output::json_line(&output::uploaded_json(
            &room.name, &uploaded,
        )))
    } else {
        print_line(&output::uploaded_line(&room_label, &uploaded))
    }
}

/// A failed upload's error without the file's path, which `cannot upload PATH` says already:
/// `cannot upload x.bin: No such file or directory (os error 2)`, not `… x.bin: x.bin: No such
/// file …`.
fn without_the_path(error: anyhow::Error, file: &Path) -> anyhow::Error {
    // These three are never wrapped in a context by `with_progress` (none is resumable), so
    // nothing is lost by saying them anew.
    let shorter = match error.downcast_ref::<TransferError>() {
        Some(TransferError::Io { path, error }) if path == file => error.to_string(),
        Some(TransferError::NotAFile(path)) if path == file => "not a regular file".to_string(),
        Some(TransferError::FileChanged(path)) if path == file => {
            "it changed while it was being uploaded; try again".to_string()
        }
        _ => return error,
    };
    anyhow!(shorter)
}

async fn download(
    settings: &Settings,
    file_id: u64,
    output: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let dest = match output {
        Some(path) => path,
        None => {
            // The configured folder, always taken as a folder (created if missing).
            let mut dir = settings.download_dir.clone().into_os_string();
            dir.push(std::path::MAIN_SEPARATOR_STR);
            PathBuf::from(dir)
        }
    };
    let (client, _) = connect_logged_in(settings).await?;
    let (handle, events) = client.into_parts();
    drop(events);
    let downloaded = with_progress(&format!("file {file_id}"), async |options| {
        transfer::download(&handle, FileId(file_id), &dest, &options).await
    })
    .await
    .with_context(|| format!("cannot download file {file_id}"))?;
    if json {
        print_line(&output::json_line(&output::downloaded_json(&downloaded)))
    } else {
        print_line(&output::escape_controls(
            &downloaded.path.display().to_string(),
        ))
    }
}

async fn register(settings: &Settings) -> anyhow::Result<()> {
    // A new account is named: the remembered last user is someone else's name here.
    let user = login::named_user(settings)?;
    let password = login::password(settings, true)?;
    let client = login::connect(settings).await?;
    let session = client
        .register(user, &password)
        .await
        .with_context(|| format!("cannot register {user}"))?;
    login::remember(settings, &session);
    login::remember_last_user(settings, &session.user.username);
    print_line(&format!(
        "registered {}{}",
        session.user.username,
        if session.user.is_admin {
            " (server admin)"
        } else {
            ""
        }
    ))
}

/// Creates `name`'s account as the logged-in server admin. The new password is asked for before
/// connecting, so a typo in it costs no login.
async fn add_user(
    settings: &Settings,
    name: &str,
    new_password_file: Option<&Path>,
) -> anyhow::Result<()> {
    let password = new_account_password(name, new_password_file)?;
    let (client, _) = connect_logged_in(settings).await?;
    client
        .create_account(name, &password)
        .await
        .with_context(|| format!("cannot add {name}"))?;
    print_line(&format!(
        "added {name}; they log in with the password you set"
    ))
}

/// Sets `name`'s password as the logged-in server admin, which ends its sessions.
async fn reset_password(
    settings: &Settings,
    name: &str,
    new_password_file: Option<&Path>,
) -> anyhow::Result<()> {
    let password = new_account_password(name, new_password_file)?;
    let (client, _) = connect_logged_in(settings).await?;
    client
        .reset_password(name, &password)
        .await
        .with_context(|| format!("cannot set {name}'s password"))?;
    print_line(&format!(
        "set a new password for {name} and logged them out everywhere"
    ))
}

/// The password for an account being added or reset: `--new-password-file`, `CHATROOM_NEW_PASSWORD`, or
/// a prompt (twice) when there is a terminal. Never the admin's own password sources.
fn new_account_password(name: &str, file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(path) = file {
        return login::read_password_file(path);
    }
    if let Ok(password) = std::env::var("CHATROOM_NEW_PASSWORD") {
        return Ok(password);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no password for {name}: use --new-password-file FILE or set CHATROOM_NEW_PASSWORD");
    }
    let first = rpassword::prompt_password(format!("Password for {name}: "))?;
    let again = rpassword::prompt_password("Repeat it: ")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// Ends the kept session: on the server, then here (the token and, if it is this user, the
/// remembered last user). Needs no password: with no kept session there is nothing to end, and
/// one the server no longer accepts has ended already.
async fn logout(settings: &Settings) -> anyhow::Result<()> {
    // No user named and none remembered: whoever logged in here last has logged out since.
    let Ok(user) = login::user_name(settings) else {
        bail!(
            "nothing to log out of on {} (no user remembered here; --user NAME ends that \
             user's kept session)",
            settings.server
        );
    };
    let store = settings
        .data_dir
        .as_deref()
        .map(crate::session_store::SessionStore::new);
    let Some((store, token)) = store.and_then(|s| s.load(&settings.server, &user).map(|t| (s, t)))
    else {
        bail!(
            "no saved session of {user} on {}: nothing to log out of",
            settings.server
        );
    };
    let client = login::connect(settings).await?;
    let ended_before = match client.resume(&token).await {
        Ok(_) => {
            client.logout().await.context("cannot log out")?;
            false
        }
        // Ended on the server already; `Forbidden`: by a suspension that still holds.
        Err(e)
            if matches!(
                e.code(),
                Some(
                    chatroom_protocol::ErrorCode::InvalidToken
                        | chatroom_protocol::ErrorCode::Forbidden
                )
            ) =>
        {
            true
        }
        Err(e) => return Err(e).context("cannot resume the session to end it"),
    };
    store.remove(&settings.server, &user);
    login::forget_last_user(settings, &user);
    print_line(&format!(
        "logged out {user}{}",
        if ended_before {
            " (the session had already ended on the server)"
        } else {
            ""
        }
    ))
}

/// The most `send` reads from standard input.
const MAX_STDIN_BYTES: u64 = 16 << 20;

/// Finds the room a command names: a room I am in by name, or the direct chat with a user.
pub(crate) async fn resolve_target(
    client: &Client,
    target: &Target,
) -> anyhow::Result<RoomSummary> {
    if let Some(user) = &target.to {
        // `@alice`, as `rooms` shows a direct chat, names alice (as `#public` names public).
        let user = user.strip_prefix('@').unwrap_or(user);
        // No user name has a `#`: that is a room, as `rooms` shows one.
        if let Some(room) = user.strip_prefix('#') {
            bail!(
                "#{} is a room: use --room {}",
                output::escape_controls(room),
                output::escape_controls(room)
            );
        }
        let opened = client.open_direct(user).await;
        if let Err(e) = &opened
            && e.code() == Some(ErrorCode::UserNotFound)
        {
            // A chat with an account since deleted is still mine, to read: listed as
            // `bob (deleted)` by servers that mark it, as `bob` by older ones.
            let deleted = format!("{} (deleted)", user.to_lowercase());
            let kept = client.my_rooms().await?.into_iter().find(|r| {
                let name = r.name.to_lowercase();
                r.kind == RoomKind::Direct && (name == user.to_lowercase() || name == deleted)
            });
            if let Some(room) = kept {
                return Ok(room);
            }
        }
        return opened.with_context(|| format!("cannot open a direct chat with {user}"));
    }
    let name = target
        .room
        .as_deref()
        .ok_or_else(|| anyhow!("say --room ROOM or --to USER"))?;
    let name = name.strip_prefix('#').unwrap_or(name);
    let rooms = client.my_rooms().await?;
    rooms
        .into_iter()
        .filter(|r| r.kind != RoomKind::Direct)
        .find(|r| r.name.to_lowercase() == name.to_lowercase())
        .ok_or_else(|| match name.strip_prefix('@') {
            // As `rooms` shows a direct chat; no room name starts with `@`.
            Some(user) => {
                let user = output::escape_controls(user);
                anyhow!("@{user} is a direct chat: use --to {user}")
            }
            None => anyhow!("you are not in a room named {name:?} (see `chatroom rooms`)"),
        })
}

async fn send(
    settings: &Settings,
    target: &Target,
    text: Vec<String>,
    json: bool,
) -> anyhow::Result<()> {
    let text = if text.is_empty() || text == ["-"] {
        let mut input = String::new();
        // Bounded: no server takes a frame this big, and `yes | chatroom send` must not eat
        // the machine's memory before saying so.
        std::io::stdin()
            .take(MAX_STDIN_BYTES + 1)
            .read_to_string(&mut input)
            .context("cannot read the message from standard input")?;
        if input.len() as u64 > MAX_STDIN_BYTES {
            bail!(
                "the message on standard input is over {} MiB; no server takes one that long",
                MAX_STDIN_BYTES >> 20
            );
        }
        input
    } else {
        text.join(" ")
    };
    let text = message_text(&text)?;
    let (client, _) = connect_logged_in(settings).await?;
    check_message_length(&client, &text)?;
    let room = resolve_target(&client, target).await?;
    let sent = client
        .send_message(room.id, text)
        .await
        .context("the message was not sent")?;
    if json {
        print_line(&output::json_line(&output::sent_json(&room.name, &sent)))?;
    }
    Ok(())
}

/// A message's text as the server takes it, from text that may be a terminal's output
/// (`make 2>&1 | chatroom send -`, or `"$(make)"` as an argument): see
/// [`output::clean_message_text`].
/// The newlines that end it are left out; one line on stderr says when control characters
/// other than escape sequences and carriage returns were; an empty result is refused.
pub(crate) fn message_text(text: &str) -> anyhow::Result<String> {
    let cleaned = output::clean_message_text(text);
    if cleaned.other_controls > 0 {
        eprintln!(
            "chatroom: left out {} the server does not take in a message",
            output::count_of(
                cleaned.other_controls as u64,
                "control character",
                "control characters"
            )
        );
    }
    let text = cleaned.text.trim_end_matches('\n');
    if text.trim().is_empty() {
        bail!("the message is empty");
    }
    Ok(text.to_string())
}

/// Refuses a message text longer than the server takes. Said here, not as a frame too large
/// for the connection: the server's own rule.
pub(crate) fn check_message_length(client: &Client, text: &str) -> anyhow::Result<()> {
    let limit = client.welcome().limits.max_message_chars;
    let chars = text.chars().count();
    if chars > limit as usize {
        bail!(
            "the message is {}; this server takes at most {limit}",
            output::count_of(chars as u64, "character", "characters")
        );
    }
    Ok(())
}

fn print_message(room: &RoomSummary, message: &Message, json: bool) -> anyhow::Result<()> {
    if json {
        print_line(&output::json_line(&output::message_json(
            &room.name, message,
        )))
    } else {
        print_line(&output::message_line(room.kind, &room.name, message))
    }
}

async fn history(
    settings: &Settings,
    target: &Target,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let (client, _) = connect_logged_in(settings).await?;
    let room = resolve_target(&client, target).await?;
    // Pages come newest-first from the anchor backwards; collect, then print oldest first.
    let mut pages: Vec<Vec<Message>> = Vec::new();
    let mut wanted = limit;
    let mut anchor = HistoryAnchor::Latest;
    while wanted > 0 {
        let page = client.history(room.id, anchor, wanted).await?;
        let Some(first) = page.messages.first() else {
            break;
        };
        anchor = HistoryAnchor::Before(first.seq);
        wanted = wanted.saturating_sub(page.messages.len() as u32);
        let more = page.has_more;
        pages.push(page.messages);
        if !more {
            break;
        }
    }
    for message in pages.iter().rev().flatten() {
        print_message(&room, message, json)?;
    }
    Ok(())
}

/// The most requests one `search` makes. The server looks at a bounded number of candidates
/// per request, so a page may be short or even empty and still say where to go on; this bound
/// makes a search for common words in rooms mostly not mine end all the same.
const MAX_SEARCH_REQUESTS: usize = 50;

async fn search(
    settings: &Settings,
    query: &str,
    scope: &Scope,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let chars = query.chars().count();
    if chars > MAX_SEARCH_QUERY_CHARS {
        bail!(
            "the search is {chars} characters; at most {MAX_SEARCH_QUERY_CHARS} are searched for"
        );
    }
    let (client, _) = connect_logged_in(settings).await?;
    let mut rooms: HashMap<RoomId, RoomSummary> = HashMap::new();
    let only = match scope.target() {
        Some(target) => {
            let room = resolve_target(&client, &target).await?;
            let id = room.id;
            rooms.insert(id, room);
            Some(id)
        }
        None => None,
    };
    // Asking for no more than the server gives keeps `next` exact.
    let page_cap = client.welcome().limits.max_history_page.max(1);
    let wanted = limit as usize;
    let mut found: Vec<Message> = Vec::new();
    let mut before = None;
    for _ in 0..MAX_SEARCH_REQUESTS {
        let ask = u32::try_from(wanted - found.len())
            .unwrap_or(u32::MAX)
            .min(page_cap);
        let page = client
            .search(query, only, before, ask)
            .await
            .map_err(search_failed)?;
        let room_left = wanted - found.len();
        found.extend(page.messages.into_iter().take(room_left));
        before = page.next;
        if found.len() >= wanted || before.is_none() {
            break;
        }
    }
    let cut_off = found.len() < wanted && before.is_some();

    // Hits come from any of my rooms; a room joined since the list was read is looked up again.
    if found.iter().any(|m| !rooms.contains_key(&m.room)) {
        for room in client.my_rooms().await? {
            rooms.entry(room.id).or_insert(room);
        }
    }
    let mut printed = 0usize;
    for message in &found {
        // Not in my rooms any more: left since the search, and no longer mine to read.
        let Some(room) = rooms.get(&message.room) else {
            continue;
        };
        if json {
            print_line(&output::json_line(&output::search_hit_json(room, message)))?;
        } else {
            print_line(&output::message_line(room.kind, &room.name, message))?;
        }
        printed += 1;
    }
    if !json {
        if printed == 0 {
            eprintln!("no messages found");
        }
        if cut_off {
            eprintln!(
                "stopped after {MAX_SEARCH_REQUESTS} requests; older messages may match too \
                 (more words or --room narrow the search)"
            );
        }
    }
    Ok(())
}

/// A failed search, said in one line: the server's reason for a query it cannot search for.
fn search_failed(error: ClientError) -> anyhow::Error {
    match &error {
        ClientError::Server(body) if body.code == ErrorCode::BadRequest => {
            anyhow!("cannot search: {}", output::escape_controls(&body.message))
        }
        // How a server from before search answers a request it does not know.
        _ if error.code() == Some(ErrorCode::MalformedFrame) => {
            anyhow!("this server cannot search: it is older than this client")
        }
        _ => anyhow!(error).context("cannot search"),
    }
}

async fn tail(
    settings: &Settings,
    target: &Target,
    since: Option<Seq>,
    count: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let (mut client, _) = connect_logged_in(settings).await?;
    let room = resolve_target(&client, target).await?;
    let mut printed = 0u64;
    let done = |printed: u64| count.is_some_and(|n| printed >= n);
    if done(0) {
        return Ok(());
    }
    // Events flow from login on; what was said before that comes from history, and the seq
    // keeps the two from overlapping.
    let mut last_seq = room.latest_seq;
    if let Some(since) = since {
        last_seq = since;
        loop {
            let page = client
                .history(room.id, HistoryAnchor::After(last_seq), 200)
                .await?;
            for message in &page.messages {
                print_message(&room, message, json)?;
                last_seq = message.seq;
                printed += counts(message);
                if done(printed) {
                    return Ok(());
                }
            }
            if !page.has_more {
                break;
            }
        }
    }
    while let Some(event) = client.next_event().await {
        match event {
            Event::Message(message) if message.room == room.id && message.seq > last_seq => {
                print_message(&room, &message, json)?;
                last_seq = message.seq;
                printed += counts(&message);
                if done(printed) {
                    return Ok(());
                }
            }
            // An edit of a message already printed comes again, marked edited; it does not
            // count towards `--count`.
            Event::MessageEdited(message) if message.room == room.id => {
                print_message(&room, &message, json)?;
            }
            // So is a deletion, so that a reader can drop what it kept; it does not count
            // either.
            Event::MessageDeleted {
                room: deleted_in,
                seq,
                by,
            } if deleted_in == room.id => {
                let seen = chatroom_protocol::now_millis();
                if json {
                    print_line(&output::json_line(&output::deleted_json(
                        &room.name, room.id, seq, &by, seen,
                    )))?;
                } else {
                    print_line(&output::deleted_line(room.kind, &room.name, seq, &by, seen))?;
                }
            }
            Event::ServerShutdown { reason } => bail!("{}", shutdown_notice(&reason)),
            _ => {}
        }
    }
    bail!("the connection to {} was closed", settings.server)
}

/// Whether `message` counts towards `tail --count`: what people post does (an edited message
/// met for the first time, in the history `--since` replays, too); the room's notices (joins,
/// kicks, topics) and messages deleted before the tail reached them are printed but do not.
fn counts(message: &Message) -> u64 {
    match message.kind {
        MessageKind::Text | MessageKind::File(_) | MessageKind::Edited { .. } => 1,
        MessageKind::System | MessageKind::Deleted => 0,
    }
}

/// What to say when the server announces its shutdown: its reason, which usually says as much
/// already ("the server is shutting down"), else the fact with the reason after it.
fn shutdown_notice(reason: &str) -> String {
    let reason = output::escape_controls(reason.trim());
    if reason.is_empty() {
        "the server is shutting down".to_string()
    } else if reason.to_lowercase().contains("shutting down") {
        reason.into_owned()
    } else {
        format!("the server is shutting down: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mouse_and_bell_flags_take_an_optional_value() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| (c.mouse, c.no_bell));
        assert_eq!(
            parse(&["chatroom", "--mouse", "--no-bell"]).ok(),
            Some((Some(true), Some(true)))
        );
        assert_eq!(
            parse(&["chatroom", "--mouse=false", "--no-bell=no"]).ok(),
            Some((Some(false), Some(false)))
        );
        let cli = Cli::try_parse_from(["chatroom", "--mouse", "rooms"]).expect("parses");
        assert_eq!(cli.mouse, Some(true));
        assert!(
            matches!(cli.command, Some(Command::Rooms { .. })),
            "not taken as a value"
        );
    }

    /// Settings as `main` resolves them, in a child process (a test may not change its own
    /// environment): this test binary again, with `CHATROOM_SETTINGS_PROBE` holding the
    /// arguments and the environment under test around it.
    #[test]
    fn flags_beat_the_environment_which_beats_the_config_file() {
        if let Ok(args) = std::env::var("CHATROOM_SETTINGS_PROBE") {
            let cli = Cli::try_parse_from(args.split(' ')).expect("arguments");
            let settings = settings::resolve(settings::FromCommandLine {
                server: cli.server,
                user: cli.user,
                password_file: cli.password_file,
                config: cli.config,
                mouse: cli.mouse,
                bell: cli.no_bell.map(|no| !no),
                away_after: cli.away_after,
            })
            .expect("settings");
            let password = login::password(&settings, false).unwrap_or_else(|e| e.to_string());
            println!(
                "probe: mouse={} bell={} away_after={} password={password}",
                settings.mouse, settings.bell, settings.away_after
            );
            return;
        }
        let home = tempfile::tempdir().expect("home");
        let config = home.path().join("config.toml");
        std::fs::write(
            &config,
            "mouse = true\nbell = false\naway_after = 30\npassword_file = \"~/pw-config\"\n",
        )
        .expect("config");
        std::fs::write(home.path().join("pw-config"), "from-config\n").expect("file");
        let flag_file = home.path().join("pw-flag");
        std::fs::write(&flag_file, "from-flag\n").expect("file");
        let probe = |args: &str, env: &[(&str, &str)]| {
            let exe = std::env::current_exe().expect("test binary");
            let mut command = std::process::Command::new(exe);
            command
                .args([
                    "--exact",
                    "cli::tests::flags_beat_the_environment_which_beats_the_config_file",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .stdin(std::process::Stdio::null())
                .env("HOME", home.path())
                .env("CHATROOM_CONFIG", &config)
                .env("CHATROOM_SETTINGS_PROBE", format!("chatroom{args}"));
            for var in [
                "CHATROOM_PASSWORD",
                "CHATROOM_MOUSE",
                "CHATROOM_NO_BELL",
                "CHATROOM_AWAY_AFTER",
            ] {
                command.env_remove(var);
            }
            command.envs(env.iter().copied());
            let out = command.output().expect("run the probe");
            let stdout = String::from_utf8_lossy(&out.stdout);
            stdout
                .lines()
                .find_map(|l| l.split_once("probe: ").map(|(_, p)| p.to_string()))
                .unwrap_or_else(|| format!("no probe line: {stdout}"))
        };
        assert_eq!(
            probe("", &[]),
            "mouse=true bell=false away_after=30 password=from-config",
            "the config file, its ~ expanded"
        );
        let env = [
            ("CHATROOM_MOUSE", "false"),
            ("CHATROOM_NO_BELL", "false"),
            ("CHATROOM_AWAY_AFTER", "0"),
            ("CHATROOM_PASSWORD", "from-env"),
        ];
        assert_eq!(
            probe("", &env),
            "mouse=false bell=true away_after=0 password=from-env",
            "the environment over the config file"
        );
        assert_eq!(
            probe(
                &format!(
                    " --mouse --no-bell --away-after=5 --password-file={}",
                    flag_file.display()
                ),
                &env
            ),
            "mouse=true bell=false away_after=5 password=from-flag",
            "flags over the environment"
        );
    }

    #[test]
    fn a_shutdown_is_announced_once() {
        assert_eq!(
            shutdown_notice("the server is shutting down"),
            "the server is shutting down"
        );
        assert_eq!(shutdown_notice(""), "the server is shutting down");
        assert_eq!(
            shutdown_notice("maintenance\x1b[2J"),
            "the server is shutting down: maintenance\\u{1b}[2J"
        );
    }

    #[test]
    fn a_message_is_what_is_left_and_must_not_be_empty() {
        assert_eq!(
            message_text("\u{1b}[32mbuild 1234 is green\u{1b}[0m\r\n\n").ok(),
            Some("build 1234 is green".to_string()),
            "the newlines that end it are left out"
        );
        assert_eq!(message_text("a\n\nb").ok(), Some("a\n\nb".to_string()));
        for nothing in ["", " ", "\u{1b}[0m\r\n", "\u{1b}]0;title\u{7}\n\t\n"] {
            let refused = message_text(nothing).err().map(|e| e.to_string());
            assert_eq!(
                refused.as_deref(),
                Some("the message is empty"),
                "{nothing:?}"
            );
        }
    }

    #[test]
    fn the_server_is_quoted_without_its_error_code() {
        use chatroom_protocol::ErrorBody;
        let refused = anyhow::Error::new(ClientError::Server(ErrorBody::new(
            ErrorCode::Forbidden,
            "only the owner may \x1b[2Jrename it",
        )))
        .context("cannot rename #dev");
        assert_eq!(
            error_line(&refused),
            "cannot rename #dev: only the owner may \\u{1b}[2Jrename it"
        );
        let closed = anyhow::Error::new(TransferError::Client(ClientError::Closed(Some(
            ErrorBody::new(ErrorCode::ShuttingDown, "the server is shutting down"),
        ))))
        .context("cannot download file 7");
        assert_eq!(
            error_line(&closed),
            "cannot download file 7: connection closed: the server is shutting down"
        );
        let local = anyhow!("no room named dev").context("cannot send");
        assert_eq!(
            error_line(&local),
            format!("{local:#}"),
            "the rest as it was"
        );
    }

    #[test]
    fn an_interrupted_transfer_exits_130_and_other_failures_1() {
        assert_eq!(exit_status(&Interrupted.into()), 130);
        let wrapped = anyhow::Error::from(Interrupted).context("uploading notes.txt");
        assert_eq!(
            exit_status(&wrapped),
            130,
            "context around it keeps the status"
        );
        assert_eq!(exit_status(&anyhow!("no room named dev")), 1);
    }
}
