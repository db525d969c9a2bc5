//! The frames exchanged between a client and the server.
//!
//! A connection carries [`ClientFrame`]s one way and [`ServerFrame`]s the other. The first client
//! frame is [`ClientFrame::Hello`]; the server answers [`ServerFrame::Welcome`] or
//! [`ServerFrame::Error`] and then closes on a version mismatch. After that the client sends
//! [`Request`]s tagged with an id of its choosing; each gets exactly one
//! [`ServerFrame::Response`] echoing that id. Everything the server says on its own initiative
//! is an [`Event`] and carries no id.
//!
//! **Evolution rule:** bincode encodes an enum variant by its index, so variants are append-only.
//! Never reorder or remove one; add new variants at the end. A change that cannot follow this
//! rule bumps [`PROTOCOL_VERSION`]. The golden-vector tests fail if a variant moves.

use crate::ids::{FileId, MessageId, RoomId, Seq, UnixMillis, UploadId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The protocol version this crate speaks. Sent in [`Hello`] and [`Welcome`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Every frame a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// The first frame of every connection.
    Hello(Hello),
    /// A request; the server answers it with exactly one [`ServerFrame::Response`] with the same id.
    Request {
        /// Chosen by the client, echoed in the response. Reusing an id that is still in flight is
        /// allowed by the server but makes the answers impossible to tell apart.
        id: u32,
        /// What is asked.
        body: Request,
    },
    /// The answer to a [`ServerFrame::Ping`]; any frame counts as liveness, this one is free.
    Pong {
        /// The nonce of the ping being answered.
        nonce: u64,
    },
}

/// The client's opening frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal the server's [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// Free text naming the client software, e.g. `"chatroom-tui 0.1.0"` or `"echo-bot"`.
    pub client_name: String,
}

/// Every frame the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The answer to a good [`Hello`].
    Welcome(Welcome),
    /// The answer to the request with the same id.
    Response {
        /// The id of the request being answered.
        id: u32,
        /// What came of it.
        result: Result<Response, ErrorBody>,
    },
    /// Something happened that the client did not ask about.
    Event(Event),
    /// A liveness probe; answer with [`ClientFrame::Pong`] with the same nonce.
    Ping {
        /// Echo this back.
        nonce: u64,
    },
    /// A connection-level error not tied to a request (bad handshake, malformed frame, too slow,
    /// session revoked). The server usually closes the connection right after sending it.
    Error(ErrorBody),
}

/// The server's answer to a good [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The server's [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The name the operator gave this server.
    pub server_name: String,
    /// The server software's version, e.g. `"0.1.0"`.
    pub server_version: String,
    /// What this server accepts.
    pub limits: Limits,
    /// Whether anyone may [`Request::Register`] (otherwise only admins create accounts).
    pub registration_open: bool,
}

/// The limits a server enforces, advertised in [`Welcome`] so clients can stay within them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest frame payload in bytes (the length prefix excluded).
    pub max_frame_bytes: u32,
    /// Longest message text, in Unicode scalar values (`char`s).
    pub max_message_chars: u32,
    /// Most messages a [`Request::History`] returns.
    pub max_history_page: u32,
    /// Sustained messages per second one connection may send (bursts are allowed up to `message_burst`).
    pub messages_per_second: u32,
    /// Size of the message burst allowance.
    pub message_burst: u32,
    /// The server pings a connection that has been quiet this long, in milliseconds.
    pub heartbeat_interval_ms: u32,
    /// The server drops a connection that has sent nothing for this long, in milliseconds.
    pub idle_timeout_ms: u32,
}

/// A request from a client. Answered with the [`Response`] variant named on each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Create an account and log in as it → [`Response::Session`]. On a server whose registration
    /// is closed only a logged-in admin may register accounts, and stays logged in as itself
    /// (→ [`Response::Done`]).
    Register {
        /// 1–32 Unicode letters, digits, `_`, `-` or `.`; unique ignoring case.
        username: String,
        /// At least 8 characters.
        password: String,
    },
    /// Log in with a password → [`Response::Session`].
    Login {
        /// The account name, in any case.
        username: String,
        /// The password.
        password: String,
    },
    /// Log in with a session token from an earlier [`Response::Session`] → [`Response::Session`]
    /// (the same token is returned). Costs the server no password hashing.
    Resume {
        /// The token as returned at login.
        token: String,
    },
    /// End this session: the token stops working and the connection is logged out → [`Response::Done`].
    Logout,
    /// Change the password → [`Response::Done`]. Every other session of the account is revoked.
    ChangePassword {
        /// The current password.
        old_password: String,
        /// The new password, at least 8 characters.
        new_password: String,
    },
    /// The rooms and direct chats I am a member of, with unread counts → [`Response::Rooms`].
    MyRooms,
    /// Every public room on the server → [`Response::Rooms`] (unread counts are 0 where I am not a member).
    PublicRooms,
    /// Create a room; I become its owner → [`Response::Room`].
    CreateRoom {
        /// 1–64 characters, no control characters; unique ignoring case.
        name: String,
        /// Whether anyone may join (`Public`) or only those invited (`Private`).
        visibility: Visibility,
    },
    /// Join a public room by name → [`Response::Room`].
    JoinRoom {
        /// The room's name, in any case.
        name: String,
    },
    /// Leave a room → [`Response::Done`]. Direct chats cannot be left.
    LeaveRoom {
        /// The room.
        room: RoomId,
    },
    /// Add a user to a room (private rooms: owner or moderator) → [`Response::Done`].
    Invite {
        /// The room.
        room: RoomId,
        /// Who to add.
        username: String,
    },
    /// A room with its members, their roles and presence → [`Response::RoomInfo`].
    RoomInfo {
        /// The room; I must be a member, or it must be public.
        room: RoomId,
    },
    /// Set a room's topic (owner or moderator) → [`Response::Done`].
    SetTopic {
        /// The room.
        room: RoomId,
        /// The new topic; empty clears it.
        topic: String,
    },
    /// Open (creating if needed) the direct chat with a user → [`Response::Room`].
    OpenDirect {
        /// The other user.
        username: String,
    },
    /// Post a text message to a room or direct chat → [`Response::Sent`] once it is stored.
    SendMessage {
        /// The room.
        room: RoomId,
        /// The text: not empty, at most [`Limits::max_message_chars`] characters.
        text: String,
    },
    /// A page of a room's history → [`Response::History`].
    History {
        /// The room; I must be a member.
        room: RoomId,
        /// Where the page starts.
        anchor: HistoryAnchor,
        /// How many messages at most (capped at [`Limits::max_history_page`]).
        limit: u32,
    },
    /// Mark a room read up to `seq` → [`Response::Done`]. Markers only move forward.
    MarkRead {
        /// The room.
        room: RoomId,
        /// The last seq I have seen.
        seq: Seq,
    },
    /// Set my presence to online or away → [`Response::Done`].
    SetPresence {
        /// The new status (`Offline` is refused: it follows from having no session).
        status: PresenceStatus,
        /// A short status text, e.g. "lunch"; `None` clears it.
        message: Option<String>,
    },
    /// Tell the room I am typing → [`Response::Done`]. Not stored; forwarded at most once per
    /// couple of seconds per room.
    Typing {
        /// The room.
        room: RoomId,
    },
    /// A round-trip check → [`Response::Pong`].
    Ping,
    /// Every account with its presence → [`Response::Users`].
    ListUsers,
    /// Remove a member from a room (owner or moderator) → [`Response::Done`].
    Kick {
        /// The room.
        room: RoomId,
        /// Who to remove.
        username: String,
        /// Shown to the member and the room.
        reason: Option<String>,
    },
    /// Offer a file for upload to a room or direct chat → [`Response::UploadReady`]. Offering
    /// the same content (same `sha256` and `size`) again continues an interrupted upload from
    /// the byte the server already has; content the server already stores needs no bytes at all
    /// (`offset == size`).
    OfferUpload {
        /// The room the file is posted to; I must be a member.
        room: RoomId,
        /// The file's name, for display. The server sanitises it and never uses it as a path.
        name: String,
        /// The exact size in bytes.
        size: u64,
        /// The SHA-256 of the whole content.
        sha256: [u8; 32],
    },
    /// Store bytes of an upload at `offset` → [`Response::ChunkStored`]. Chunks must arrive in
    /// order (`offset` equal to what the server has), each at most
    /// [`UploadReady::max_chunk_bytes`], never beyond the offered size. Several may be in
    /// flight at once (up to [`UploadReady::window`]).
    UploadChunk {
        /// From [`Response::UploadReady`].
        upload: UploadId,
        /// Where these bytes go in the file.
        offset: u64,
        /// The bytes (encoded like a `Vec<u8>`: a varint length, then the raw bytes).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// All bytes are sent: verify the SHA-256, store the file and post it to the room as a
    /// [`MessageKind::File`] message → [`Response::File`]. A wrong hash fails with
    /// [`ErrorCode::HashMismatch`] and discards the partial upload.
    FinishUpload {
        /// From [`Response::UploadReady`].
        upload: UploadId,
    },
    /// Abandon an upload and discard what the server has of it → [`Response::Done`].
    CancelUpload {
        /// From [`Response::UploadReady`].
        upload: UploadId,
    },
    /// A stored file's details → [`Response::File`]. I must be a member of its room.
    FileInfo {
        /// The file.
        file: FileId,
    },
    /// Bytes of a stored file → [`Response::FileChunk`]. I must be a member of its room. Ask
    /// for consecutive ranges, several in flight, to download; start anywhere to resume.
    ReadFile {
        /// The file.
        file: FileId,
        /// The first byte wanted.
        offset: u64,
        /// How many bytes at most (capped at [`UploadReady::max_chunk_bytes`]'s server limit).
        len: u32,
    },
    /// The files posted in a room, newest first → [`Response::Files`].
    ListFiles {
        /// The room; I must be a member.
        room: RoomId,
    },
    /// Delete a message (its sender, or the room's owner or a moderator) → [`Response::Done`].
    /// The message stays in history as [`MessageKind::Deleted`] with empty text, so seqs stay
    /// gapless; a file it posted is removed when nothing else refers to it.
    DeleteMessage {
        /// The room.
        room: RoomId,
        /// The message's seq.
        seq: Seq,
    },
    /// What this server offers beyond [`Welcome`] → [`Response::ServerInfo`]. Works before
    /// logging in. (Servers older than this variant close the connection with `MalformedFrame`.)
    ServerInfo,
    /// Change a member's role in a named room (the owner only) → [`Response::Done`]. Giving
    /// [`RoomRole::Owner`] hands the room over: the member becomes its owner and I become a
    /// moderator. Everyone in the room hears [`Event::RoleChanged`]. (Servers older than this
    /// variant close the connection with `MalformedFrame`.)
    SetRole {
        /// The room.
        room: RoomId,
        /// The member.
        username: String,
        /// Their new role.
        role: RoomRole,
    },
    /// Find messages by their words in every room and direct chat I am a member of, newest
    /// first → [`Response::SearchResults`]. The query is words that must all appear (case and
    /// accents ignored), `"a phrase"` in double quotes, and `word*` for words that start with
    /// `word`; at most [`MAX_SEARCH_QUERY_CHARS`] characters. (Servers older than this variant
    /// close the connection with `MalformedFrame`.)
    Search {
        /// What to find.
        query: String,
        /// Only this room (I must be a member); `None` searches all my rooms.
        room: Option<RoomId>,
        /// Only messages older than this one: the [`SearchPage::next`] of the previous page;
        /// `None` starts from the newest.
        before: Option<MessageId>,
        /// How many at most (capped at [`Limits::max_history_page`]).
        limit: u32,
    },
    /// Ban a user from a named room (the owner, or a moderator for users below them) →
    /// [`Response::Done`]. A member is removed at once: they hear [`Event::Banned`], the room
    /// [`Event::MemberLeft`] with [`LeaveReason::Banned`]. Until [`Request::Unban`] they
    /// cannot join the room or be invited (`Forbidden`). Works on someone who is not (or no
    /// longer) a member too. (Servers older than this variant close the connection with
    /// `MalformedFrame`.)
    Ban {
        /// The room.
        room: RoomId,
        /// Who.
        username: String,
        /// Shown to them and the room, and kept with the ban.
        reason: Option<String>,
    },
    /// Lift a ban (the owner or a moderator) → [`Response::Done`].
    Unban {
        /// The room.
        room: RoomId,
        /// Who.
        username: String,
    },
    /// The bans of a room (its owner and moderators only) → [`Response::Bans`].
    Bans {
        /// The room.
        room: RoomId,
    },
    /// Change the text of a message I sent (text messages only; nobody else may) →
    /// [`Response::Done`]. The new text follows the rules of [`Request::SendMessage`]. The
    /// message keeps its seq and `ts` and becomes [`MessageKind::Edited`]; the room hears
    /// [`Event::MessageEdited`]. (Servers older than this variant close the connection with
    /// `MalformedFrame`.)
    EditMessage {
        /// The room.
        room: RoomId,
        /// The message's seq.
        seq: Seq,
        /// Its new text.
        text: String,
    },
    /// Stop a member from posting in a room (the owner or a moderator; a member below my
    /// role) → [`Response::Done`]. They stay in the room and read it, but sending, editing and
    /// posting files there answer `Forbidden` until the mute ends or [`Request::Unmute`]. The
    /// room hears [`Event::Muted`]. Muting again replaces the mute. (Servers older than this
    /// variant close the connection with `MalformedFrame`.)
    Mute {
        /// The room.
        room: RoomId,
        /// Who.
        username: String,
        /// For how long, 1 to [`MAX_MUTE_SECS`] seconds; `None` until unmuted.
        secs: Option<u64>,
        /// Shown to them and the room, and kept with the mute.
        reason: Option<String>,
    },
    /// End a mute early (the owner or a moderator) → [`Response::Done`]; the room hears
    /// [`Event::Unmuted`].
    Unmute {
        /// The room.
        room: RoomId,
        /// Who.
        username: String,
    },
    /// The mutes in force in a room (any member may ask) → [`Response::Mutes`].
    Mutes {
        /// The room.
        room: RoomId,
    },
    /// Give a named room a new name (its owner only; not `public`) → [`Response::Done`]; the
    /// members get [`Event::RoomRenamed`]. (Appended after protocol version 1 was first
    /// published.)
    RenameRoom {
        /// The room.
        room: RoomId,
        /// The new name, under the rules of [`Request::CreateRoom`]'s.
        name: String,
    },
    /// Give another account a new password and end all its sessions (a server admin only; not
    /// one's own account, nor the AI bot's) → [`Response::Done`]. Its connections close with
    /// [`ErrorCode::SessionRevoked`]. (Appended after protocol version 1 was first published.)
    ResetPassword {
        /// Whose.
        username: String,
        /// The new password, under the rules of [`Request::Register`]'s.
        password: String,
    },
    /// End every session of another account, keeping its password (a server admin only; not
    /// one's own account) → [`Response::Done`]. Its connections close with
    /// [`ErrorCode::SessionRevoked`]. (Appended after protocol version 1 was first published.)
    LogOutUser {
        /// Whose.
        username: String,
    },
    /// Lock another account out until [`Request::UnsuspendUser`] (a server admin only; not
    /// one's own account, nor the AI bot's) → [`Response::Done`]. Every session ends at once
    /// (its connections close with [`ErrorCode::SessionRevoked`]), and a login with the right
    /// password is refused with [`ErrorCode::Forbidden`], saying why. Suspending again
    /// replaces the reason. (Appended after protocol version 1 was first published.)
    SuspendUser {
        /// Whose.
        username: String,
        /// Why, told to them at login; cleaned like a kick's reason.
        reason: Option<String>,
    },
    /// Lift a suspension (a server admin only) → [`Response::Done`]. (Appended after protocol
    /// version 1 was first published.)
    UnsuspendUser {
        /// Whose.
        username: String,
    },
    /// The suspended accounts, newest first (a server admin only) → [`Response::Bans`].
    /// (Appended after protocol version 1 was first published.)
    Suspensions,
    /// Delete what one account posted in a named room over the last `within_secs` seconds
    /// (the room's owner or a moderator, for someone below their role or no longer in the
    /// room) → [`Response::Deleted`] with how many. Each message goes as
    /// [`Request::DeleteMessage`] would take it, and the room gets a
    /// [`Event::MessageDeleted`] for each; the newest [`MAX_DELETED_AT_ONCE`] go per request.
    /// (Appended after protocol version 1 was first published.)
    DeleteMessagesBy {
        /// The room.
        room: RoomId,
        /// Whose messages.
        username: String,
        /// How far back, in seconds (at least 1).
        within_secs: u64,
    },
    /// Make another account a server admin, or take that away (a server admin only; not one's
    /// own account, nor the AI bot's) → [`Response::Done`]. It holds at once, for the
    /// account's connections already logged in too. (Appended after protocol version 1 was
    /// first published.)
    SetServerAdmin {
        /// Whose.
        username: String,
        /// `true` to make it an admin, `false` to take that away.
        admin: bool,
    },
    /// Delete another account (a server admin only; not one's own account, nor the AI bot's)
    /// → [`Response::Done`]. Its connections close with [`ErrorCode::SessionRevoked`]; every
    /// room it was in gets [`Event::MemberLeft`] with [`LeaveReason::AccountDeleted`], a room
    /// it owned passes to its longest-standing moderator (or member), and its messages stay in
    /// history under its name. The name is free to register again. (Appended after protocol
    /// version 1 was first published.)
    DeleteAccount {
        /// Whose.
        username: String,
    },
    /// This connection's user has left it alone for a while (`true`), or is back at it
    /// (`false`) → [`Response::Done`]. An account shows [`PresenceStatus::Away`] while every
    /// connection it has is idle, with no status text, and online again as soon as one is not
    /// (or a new one opens); [`Request::SetPresence`]'s away holds whatever the connections
    /// say. A connection starts not idle. Meant for clients that see their user's keys (the
    /// terminal client sends it after some minutes without one); a bot has no reason to.
    /// (Appended after protocol version 1 was first published: a server older than it closes
    /// the connection with [`ErrorCode::MalformedFrame`].)
    SetIdle {
        /// Idle (`true`) or in use again (`false`).
        idle: bool,
    },
}

/// The most messages one [`Request::DeleteMessagesBy`] deletes (the newest); ask again for
/// more.
pub const MAX_DELETED_AT_ONCE: u32 = 500;

/// The longest [`Request::Mute`], in seconds (a year).
pub const MAX_MUTE_SECS: u64 = 366 * 24 * 3600;

/// Where the server stops counting [`RoomSummary::unread`]: a room with more unread messages
/// says this many (show it as "9999+"). Counting further would cost every room list of
/// someone who never reads a busy room a walk over all of it.
pub const MAX_UNREAD_COUNT: u32 = 9_999;

/// How long something lasts, in the words the server's room notices use (`alice muted bob for
/// 10 min`), so that clients say it the same way: `45 s`, `1 min 30 s`, `10 min`,
/// `1 h 30 min`, `3 days`, `1 day 12 h`. Exact to the second under 10 minutes; above, rounds
/// up to the minute (from a day on, to the hour): a mute with 601 s left has `11 min` left,
/// one with 3 659 s `1 h 1 min`. Never a whole unit less than it is: a 36-hour purge reads
/// `1 day 12 h`, not `2 days`.
pub fn duration_words(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..600 => match (secs / 60, secs % 60) {
            (m, 0) => format!("{m} min"),
            (m, s) => format!("{m} min {s} s"),
        },
        600..3600 => format!("{} min", secs.div_ceil(60)),
        // Rounded up to the minute, like the hour below: 3 659 s is `1 h 1 min`, not `1 h`.
        3600..86_400 => match secs.div_ceil(60) {
            1440 => "1 day".to_string(),
            mins => match (mins / 60, mins % 60) {
                (h, 0) => format!("{h} h"),
                (h, m) => format!("{h} h {m} min"),
            },
        },
        _ => {
            let hours = secs.div_ceil(3600);
            let days = match hours / 24 {
                1 => "1 day".to_string(),
                d => format!("{d} days"),
            };
            match hours % 24 {
                0 => days,
                h => format!("{days} {h} h"),
            }
        }
    }
}

/// The longest [`Request::Search`] query, in characters.
pub const MAX_SEARCH_QUERY_CHARS: usize = 256;

/// Where a history page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryAnchor {
    /// The newest messages.
    Latest,
    /// Messages with a seq strictly below this one, newest of those first in selection (the page
    /// itself is still returned oldest first).
    Before(Seq),
    /// Messages with a seq strictly above this one, oldest first: what a reconnecting client missed.
    After(Seq),
}

/// Whether a room is open to everyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// Listed, and anyone may join.
    Public,
    /// Unlisted; members are invited.
    Private,
}

/// What kind of room a room is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomKind {
    /// A named room anyone may join.
    Public,
    /// A named room members are invited to.
    Private,
    /// A conversation between exactly two users.
    Direct,
}

/// A member's role in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RoomRole {
    /// May read and post.
    Member,
    /// May also invite, kick and set the topic.
    Moderator,
    /// Runs the room: may also change roles. Every named room that has members has one
    /// (see [`Event::RoleChanged`]); the built-in `public` room has none.
    Owner,
}

/// A user's presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PresenceStatus {
    /// Has at least one session and is not away.
    Online,
    /// Has at least one session and said they are away.
    Away,
    /// Has no session.
    Offline,
}

/// The successful answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The request was carried out; there is nothing more to say.
    Done,
    /// Logged in.
    Session(Session),
    /// A list of rooms.
    Rooms(Vec<RoomSummary>),
    /// One room.
    Room(RoomSummary),
    /// One room with its members.
    RoomInfo(RoomInfo),
    /// The message is stored; it is also delivered as an [`Event::Message`].
    Sent(SentMessage),
    /// A page of history.
    History(HistoryPage),
    /// Accounts with presence.
    Users(Vec<UserPresence>),
    /// The answer to [`Request::Ping`].
    Pong,
    /// The answer to [`Request::OfferUpload`].
    UploadReady(UploadReady),
    /// The answer to [`Request::UploadChunk`].
    ChunkStored {
        /// The upload.
        upload: UploadId,
        /// How many bytes of the file the server now has.
        received: u64,
    },
    /// A stored file.
    File(FileInfo),
    /// The answer to [`Request::ReadFile`]: empty `data` means `offset` is at or past the end.
    FileChunk {
        /// The file.
        file: FileId,
        /// Where these bytes start.
        offset: u64,
        /// The bytes (a varint length, then the raw bytes).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Files, newest first.
    Files(Vec<FileInfo>),
    /// What this server offers.
    ServerInfo(ServerInfo),
    /// The answer to [`Request::Search`].
    SearchResults(SearchPage),
    /// The answer to [`Request::Bans`], newest first (a server may list only the newest
    /// hundreds).
    Bans(Vec<BanInfo>),
    /// The answer to [`Request::Mutes`], newest first (a server may list only the newest
    /// hundreds).
    Mutes(Vec<MuteInfo>),
    /// The answer to [`Request::DeleteMessagesBy`]: how many messages it deleted.
    Deleted {
        /// How many (0 when there was nothing left to delete).
        count: u32,
    },
}

/// A member muted in a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuteInfo {
    /// Who is muted.
    pub username: String,
    /// Who muted them.
    pub by: String,
    /// The reason given, if any.
    pub reason: Option<String>,
    /// When.
    pub since: UnixMillis,
    /// When it ends by itself; `None`: when someone unmutes them.
    pub until: Option<UnixMillis>,
}

/// A user banned from a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    /// Who is banned.
    pub username: String,
    /// Who banned them.
    pub by: String,
    /// The reason given, if any.
    pub reason: Option<String>,
    /// When.
    pub since: UnixMillis,
}

/// A page of search results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    /// The messages found, newest first, from any of the rooms searched (see [`Message::room`]).
    pub messages: Vec<Message>,
    /// Where the next page starts (pass it as `before`), or `None` when nothing older matches.
    /// A page may hold fewer than `limit` messages, even none, and still have a `next`: the
    /// server looks at a bounded number of candidates per request.
    pub next: Option<MessageId>,
}

/// The server accepted an upload offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReady {
    /// Names this upload in [`Request::UploadChunk`], [`Request::FinishUpload`] and
    /// [`Request::CancelUpload`].
    pub upload: UploadId,
    /// The byte to send next: 0 for a new upload, more when resuming, the whole size when the
    /// server already has the content (send no chunks; finish right away).
    pub offset: u64,
    /// The largest `data` an [`Request::UploadChunk`] may carry.
    pub max_chunk_bytes: u32,
    /// How many chunks may be in flight (sent, not yet answered) at once.
    pub window: u32,
}

/// A stored file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file.
    pub id: FileId,
    /// The room it was posted in.
    pub room: RoomId,
    /// The seq of the message that posted it.
    pub seq: Seq,
    /// The sanitised name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its content.
    pub sha256: [u8; 32],
    /// Who uploaded it.
    pub uploader: UserId,
    /// Their name.
    pub uploader_name: String,
    /// When it was posted.
    pub ts: UnixMillis,
}

/// What a server offers beyond [`Welcome`], for clients that adapt to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The AI bot's user name (mention it as `@name`, or open a direct chat with it), or `None`
    /// when the server runs without a bot.
    pub ai_bot: Option<String>,
}

/// A logged-in session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Who I am.
    pub user: UserSummary,
    /// Pass to [`Request::Resume`] to log in again without the password. Keep it secret.
    pub token: String,
}

/// A user as others see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    /// The account id.
    pub id: UserId,
    /// The name as registered (original case).
    pub username: String,
    /// A server administrator.
    pub is_admin: bool,
}

/// A user and their presence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    /// The user.
    pub user: UserSummary,
    /// Online, away or offline.
    pub status: PresenceStatus,
    /// Their status text, if they set one.
    pub status_message: Option<String>,
}

/// A room as it appears in a room list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room.
    pub id: RoomId,
    /// Public, private or direct.
    pub kind: RoomKind,
    /// The room's name; for a direct chat, the other user's name.
    pub name: String,
    /// The topic, empty when none is set.
    pub topic: String,
    /// How many members it has.
    pub member_count: u32,
    /// The seq of the newest message (0 when there is none).
    pub latest_seq: Seq,
    /// My read marker (0 when I have read nothing or am not a member).
    pub last_read_seq: Seq,
    /// Messages after my read marker that others sent, counted up to [`MAX_UNREAD_COUNT`].
    pub unread: u32,
    /// Of those, how many mention me (`@myname`).
    pub mentions: u32,
    /// My role, `None` when I am not a member.
    pub my_role: Option<RoomRole>,
}

/// A room with its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room.
    pub room: RoomSummary,
    /// Every member, owners first, then by name.
    pub members: Vec<Member>,
}

/// A room member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Who.
    pub user: UserSummary,
    /// Their role in this room.
    pub role: RoomRole,
    /// Their presence.
    pub status: PresenceStatus,
}

/// The acknowledgement of a stored message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The room it went to.
    pub room: RoomId,
    /// Its id.
    pub id: MessageId,
    /// Its place in the room.
    pub seq: Seq,
    /// When the server stored it.
    pub ts: UnixMillis,
}

/// A page of a room's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The room.
    pub room: RoomId,
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Whether there are more messages beyond this page in the direction asked.
    pub has_more: bool,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique across the server.
    pub id: MessageId,
    /// The room it belongs to.
    pub room: RoomId,
    /// Its place in the room.
    pub seq: Seq,
    /// Who sent it.
    pub sender: UserId,
    /// The sender's name at the time.
    pub sender_name: String,
    /// When the server stored it.
    pub ts: UnixMillis,
    /// What sort of message it is.
    pub kind: MessageKind,
    /// The text.
    pub text: String,
}

/// A borrowed view of an [`Event::Message`] frame, read without allocating (see
/// [`crate::codec::peek_message`]): for consumers of very many messages, such as the load
/// generator. Fields are those of [`Message`], strings borrowed from the frame.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MessageView<'a> {
    /// Unique across the server.
    pub id: MessageId,
    /// The room it belongs to.
    pub room: RoomId,
    /// Its place in the room.
    pub seq: Seq,
    /// Who sent it.
    pub sender: UserId,
    /// The sender's name at the time.
    pub sender_name: &'a str,
    /// When the server stored it.
    pub ts: UnixMillis,
    /// What sort of message it is (a file message's name is the one allocation).
    pub kind: MessageKind,
    /// The text.
    pub text: &'a str,
}

/// What sort of message a [`Message`] is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// Written by a user.
    Text,
    /// Written by the server about the room (joins, topic changes, kicks); `sender` is the actor.
    System,
    /// A file posted by `sender`; the text is a one-line description for display. (Boxed so
    /// that the common text message stays small in memory; on the wire it is just the
    /// `FileRef`.)
    File(Box<FileRef>),
    /// A message that was deleted; its text is empty.
    Deleted,
    /// A text message its sender changed with [`Request::EditMessage`]; the text is the
    /// latest, `ts` still the time it was first sent. (Appended after protocol version 1 was
    /// first published.)
    Edited {
        /// When it was last changed.
        at: UnixMillis,
    },
}

/// The file a [`MessageKind::File`] message posts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRef {
    /// Download it with [`Request::ReadFile`].
    pub id: FileId,
    /// The sanitised name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its content.
    pub sha256: [u8; 32],
}

/// Why a member is no longer in a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaveReason {
    /// They left.
    Left,
    /// A moderator removed them.
    Kicked {
        /// Who removed them.
        by: String,
        /// The reason given, if any.
        reason: Option<String>,
    },
    /// The account was deleted.
    AccountDeleted,
    /// A moderator banned them ([`Request::Ban`]): they cannot come back until unbanned.
    /// (Clients older than this variant skip the event.)
    Banned {
        /// Who banned them.
        by: String,
        /// The reason given, if any.
        reason: Option<String>,
    },
}

/// A presence change, sent to users who share a room with the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    /// Who.
    pub user: UserId,
    /// Their name.
    pub username: String,
    /// Their new status.
    pub status: PresenceStatus,
    /// Their status text, if any.
    pub status_message: Option<String>,
}

/// Something the server tells a client without being asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A new message in a room I am a member of (including my own, from any of my sessions).
    Message(Message),
    /// Someone joined a room I am in.
    MemberJoined {
        /// The room.
        room: RoomId,
        /// Who joined and as what.
        member: Member,
    },
    /// Someone left a room I am in (or I left it, from another session).
    MemberLeft {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Their name.
        username: String,
        /// Why.
        reason: LeaveReason,
    },
    /// Presence changed for users who share a room with me. Bursts are coalesced into one event.
    Presence(Vec<PresenceUpdate>),
    /// Someone is typing in a room I am in.
    Typing {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Their name.
        username: String,
    },
    /// A room was added to my room list (I created, joined or was invited to it, or a direct
    /// chat with me was opened), from any of my sessions. Carries my own unread counts. It
    /// comes before any other event of that room, and before the response when my own request
    /// added the room.
    RoomUpdated(RoomSummary),
    /// I was removed from a room.
    Kicked {
        /// The room.
        room: RoomId,
        /// Its name.
        room_name: String,
        /// Who removed me.
        by: String,
        /// The reason given, if any.
        reason: Option<String>,
    },
    /// The server is shutting down; reconnect later and resume.
    ServerShutdown {
        /// Why, for display.
        reason: String,
    },
    /// My read marker moved in a room (from another of my sessions).
    ReadMarker {
        /// The room.
        room: RoomId,
        /// The new marker.
        seq: Seq,
    },
    /// A room's topic changed.
    TopicChanged {
        /// The room.
        room: RoomId,
        /// The new topic (empty when cleared).
        topic: String,
        /// Who changed it.
        by: String,
    },
    /// A message was deleted; show it as deleted (its file, if any, is gone).
    MessageDeleted {
        /// The room.
        room: RoomId,
        /// The message's seq.
        seq: Seq,
        /// Who deleted it.
        by: String,
    },
    /// A message still being written (a bot's streamed reply). Each update carries the whole
    /// text so far; show it in place of the previous update with the same `draft`.
    DraftUpdated(Draft),
    /// A draft is over: remove it. When `seq` is set, the finished text was stored as that
    /// message (delivered as an ordinary [`Event::Message`] before this event).
    DraftEnded {
        /// The room.
        room: RoomId,
        /// The draft.
        draft: u64,
        /// The stored message that replaces it, if any.
        seq: Option<Seq>,
    },
    /// A member's role in a room I am in changed (possibly mine).
    RoleChanged {
        /// The room.
        room: RoomId,
        /// Whose role.
        user: UserId,
        /// Their name.
        username: String,
        /// The role they have now.
        role: RoomRole,
        /// Who changed it; `None` when the server passed ownership on because the owner left
        /// the room or their account was deleted.
        by: Option<String>,
    },
    /// A message was edited: replace the one with the same room and seq by this one (its kind
    /// is [`MessageKind::Edited`]). (Appended after protocol version 1 was first published: a
    /// client older than it skips the frame.)
    MessageEdited(Message),
    /// A member of a room I am in was muted (possibly me: then sending there is refused until
    /// `until`, or until [`Event::Unmuted`]).
    Muted {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Their name.
        username: String,
        /// Who muted them.
        by: String,
        /// The reason given, if any.
        reason: Option<String>,
        /// When it ends by itself (no event comes then); `None`: when someone unmutes them.
        until: Option<UnixMillis>,
    },
    /// A mute was lifted before its time.
    Unmuted {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Their name.
        username: String,
        /// Who lifted it.
        by: String,
    },
    /// A room I am in has a new name. (Appended after protocol version 1 was first published:
    /// a client older than it skips the frame.)
    RoomRenamed {
        /// The room.
        room: RoomId,
        /// Its new name.
        name: String,
        /// Who renamed it.
        by: String,
    },
    /// I was banned from a room: removed (if I was in it) and unable to join or be invited
    /// again until a moderator lifts the ban. Sent instead of [`Event::Kicked`] for a ban.
    /// (Appended after protocol version 1 was first published: a client older than it skips
    /// the frame, and learns of the removal from the room list.)
    Banned {
        /// The room.
        room: RoomId,
        /// Its name.
        room_name: String,
        /// Who banned me.
        by: String,
        /// The reason given, if any.
        reason: Option<String>,
    },
    /// A server admin made an account a server admin, or took that away. Sent to everyone
    /// online, the account's own connections included, so that member and user lists and the
    /// account's own client can follow without asking again. (Appended after protocol version 1
    /// was first published: a client older than it skips the frame.)
    AdminChanged {
        /// The account.
        user: UserId,
        /// Its name.
        username: String,
        /// Whether it is a server admin now.
        admin: bool,
        /// The admin who changed it.
        by: String,
    },
}

/// A message being written, streamed to a room before it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// The room.
    pub room: RoomId,
    /// Names this draft in later updates; unique on the server while it runs.
    pub draft: u64,
    /// Who is writing it.
    pub sender: UserId,
    /// Their name.
    pub sender_name: String,
    /// The whole text so far.
    pub text: String,
}

/// An error answer: a stable code for programs and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, as a stable code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

impl ErrorBody {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.message, self.code)
    }
}

impl std::error::Error for ErrorBody {}

/// Stable error codes. Append-only, like every enum here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request was not understood or had invalid fields.
    BadRequest,
    /// The client speaks another protocol version.
    UnsupportedVersion,
    /// The first frame was not a [`Hello`], or a second `Hello` arrived.
    HandshakeRequired,
    /// The request needs a logged-in session.
    NotAuthenticated,
    /// Already logged in on this connection.
    AlreadyAuthenticated,
    /// Wrong user name or password (the two are not told apart).
    InvalidCredentials,
    /// The session token is unknown, revoked or expired.
    InvalidToken,
    /// The user name is taken (ignoring case).
    UsernameTaken,
    /// The user name does not follow the rules.
    InvalidUsername,
    /// The password does not follow the rules.
    WeakPassword,
    /// Registration is closed on this server.
    RegistrationClosed,
    /// No such room, or not one I may see.
    RoomNotFound,
    /// No such user.
    UserNotFound,
    /// A room with that name exists.
    RoomNameTaken,
    /// The room name does not follow the rules.
    InvalidRoomName,
    /// I am not a member of that room.
    NotMember,
    /// Already a member of that room.
    AlreadyMember,
    /// My role does not allow this.
    Forbidden,
    /// The message is empty.
    MessageEmpty,
    /// The message is longer than the server allows.
    MessageTooLong,
    /// Too many requests; slow down.
    RateLimited,
    /// The server or this address has too many connections.
    TooManyConnections,
    /// A frame exceeded the size limit.
    FrameTooLarge,
    /// A frame could not be decoded.
    MalformedFrame,
    /// The connection was too slow to keep up with its events.
    TooSlow,
    /// No frame arrived for too long.
    IdleTimeout,
    /// The server is shutting down.
    ShuttingDown,
    /// The session was ended elsewhere (logout, password change, account deleted).
    SessionRevoked,
    /// Something failed inside the server; it is logged there.
    Internal,
    /// The file is larger than the server accepts.
    FileTooLarge,
    /// The upload would take me over my storage quota.
    QuotaExceeded,
    /// The uploaded bytes do not match the offered SHA-256; the upload was discarded.
    HashMismatch,
    /// No such file, or not one I may see.
    FileNotFound,
    /// No such upload in progress (finished, cancelled, expired or never offered).
    UploadNotFound,
    /// A chunk was out of order, too large, or beyond the offered size.
    BadChunk,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every delivered message is decoded into a `Message` and moved through queues; a rare
    /// variant must not make the common one bigger.
    #[test]
    fn a_message_stays_small_in_memory() {
        assert!(std::mem::size_of::<MessageKind>() <= 16);
        assert!(std::mem::size_of::<Message>() <= 112);
    }
}
