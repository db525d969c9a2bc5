//! What each [`WriteOp`] does to the database. The ops and their outcomes are here, with the
//! checks several areas share; each area has a module with one function per op: `accounts`
//! (accounts and their sessions), `rooms` (rooms and who is in them), `moderation` (bans and
//! mutes), `messages` (messages, read markers, the AI bot's context) and `files` (uploads and
//! posted files).
//!
//! An op runs in one of two ways. On the server the writer thread ([`super::writer`]) applies it
//! inside a savepoint of its batch's transaction, with the room seqs that transaction has taken
//! so far: a refused op undoes only what it wrote itself. The offline admin commands apply it
//! with [`apply_offline`], in a transaction of its own. Either way an op sees what was committed
//! and written before it, and checks permissions again: a request was checked against the hub,
//! but a change may have been committed since.

mod accounts;
mod files;
pub(super) mod messages;
mod moderation;
mod rooms;

use chatroom_protocol::{
    ErrorBody, ErrorCode, FileInfo, Message, MessageKind, RoomId, RoomKind, RoomRole, RoomSummary,
    Seq, UnixMillis, UploadId, UserId, now_millis,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

use super::notices::Posted;
use super::writer::SeqCounters;
use super::{RoomRow, StorageError, UserRow, kind_from_sql, role_from_sql};
use crate::files::FileStore;

/// Whether a new account is an admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminGrant {
    /// A regular account.
    No,
    /// An admin.
    Yes,
    /// An admin if it is the first account ever created.
    IfFirst,
}

/// A change to the database.
#[derive(Debug)]
pub enum WriteOp {
    /// Create an account and make it a member of `public`. → [`Outcome::User`]
    CreateUser {
        /// The name as typed.
        name: String,
        /// The argon2 PHC string.
        password_hash: String,
        /// Admin or not.
        admin: AdminGrant,
    },
    /// Store a session token's hash (refused for a suspended account: checked here, in the
    /// transaction, so that a login under way when the suspension was stored cannot slip
    /// through), and end the account's sessions in `ending`. → [`Outcome::Done`]
    CreateSession {
        /// Whose.
        user: UserId,
        /// SHA-256 of the token.
        token_hash: Vec<u8>,
        /// The client name from `Hello`.
        device: String,
        /// The account's least recently used sessions, which the new one pushes over
        /// `limits.max_sessions_per_account` (see [`crate::sessions`]).
        ending: Vec<crate::sessions::TokenHash>,
        /// Why they end, remembered for their clients.
        why_ending: String,
    },
    /// End these sessions (those still stored), remembering why for their clients.
    /// → [`Outcome::Done`]
    EndSessions {
        /// Token hashes.
        tokens: Vec<crate::sessions::TokenHash>,
        /// Why.
        why: String,
    },
    /// Forget one session. → [`Outcome::Done`]
    DeleteSession {
        /// SHA-256 of the token.
        token_hash: Vec<u8>,
    },
    /// Log out every session of an account, keeping its password. → [`Outcome::Done`]
    RevokeSessions {
        /// Whose.
        user: UserId,
    },
    /// Suspend an account (or replace its suspension's reason) and end its sessions; a
    /// suspended account's [`WriteOp::CreateSession`] is refused. → [`Outcome::Done`]
    Suspend {
        /// Whose.
        user: UserId,
        /// The admin's name, kept as they wrote it then.
        by_name: String,
        /// Why.
        reason: Option<String>,
    },
    /// Lift a suspension (refused if there is none). → [`Outcome::Done`]
    Unsuspend {
        /// Whose.
        user: UserId,
    },
    /// Record when sessions were last used and forget expired ones (see
    /// [`crate::sessions`]). → [`Outcome::Done`]
    SessionUpkeep {
        /// Token hashes with their latest use.
        used: Vec<(crate::sessions::TokenHash, UnixMillis)>,
        /// Token hashes of expired sessions.
        expired: Vec<crate::sessions::TokenHash>,
    },
    /// Set a new password hash and revoke every session but `keep_session`. → [`Outcome::Done`]
    ChangePassword {
        /// Whose.
        user: UserId,
        /// The new argon2 PHC string.
        password_hash: String,
        /// The session that asked, which stays valid.
        keep_session: Option<Vec<u8>>,
    },
    /// Create a named room with `owner` as owner. → [`Outcome::Room`]
    CreateRoom {
        /// The name.
        name: String,
        /// Public or private.
        kind: RoomKind,
        /// Who created it.
        owner: UserId,
    },
    /// Add a member (refused if already one). A named room that has no owner (its last owner
    /// left with nobody to hand it to) makes its next human member the owner.
    /// → [`Outcome::Joined`]
    AddMember {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// As what.
        role: RoomRole,
        /// Who invites them (checked again here: a member, and in a private room a
        /// moderator or the owner, as of this transaction); `None` when they join.
        by: Option<UserId>,
    },
    /// Remove a member. An owner's room passes to the longest-standing moderator, else the
    /// longest-standing member (never a bot). → [`Outcome::Roles`] with the new owner, if any
    RemoveMember {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who removes them (a kick: checked again here, a moderator or the owner above
        /// them as of this transaction); `None` when they leave.
        by: Option<UserId>,
        /// Why they were removed, for the room's notice.
        reason: Option<String>,
    },
    /// Ban a user from a room, as `by` (checked here: a moderator or the owner, above the user
    /// if they are a member), removing them if they are in it. → [`Outcome::Banned`]
    Ban {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who bans them.
        by: UserId,
        /// Their name, kept with the ban.
        by_name: String,
        /// The reason given.
        reason: Option<String>,
    },
    /// Lift a ban, as `by` (checked here: a moderator or the owner). → [`Outcome::Done`]
    Unban {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who lifts it.
        by: UserId,
    },
    /// Mute a member of a room until `until` (or until unmuted), as `by` (checked here: a
    /// moderator or the owner, above the member). Replaces an earlier mute. → [`Outcome::Done`]
    Mute {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who mutes them.
        by: UserId,
        /// Their name, kept with the mute.
        by_name: String,
        /// The reason given.
        reason: Option<String>,
        /// When it ends by itself.
        until: Option<UnixMillis>,
    },
    /// Lift a mute that is in force, as `by` (a moderator or the owner). → [`Outcome::Done`]
    Unmute {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserId,
        /// Who lifts it.
        by: UserId,
    },
    /// Change a member's role, as `actor`, who must own the room; [`RoomRole::Owner`] hands
    /// the room over and makes `actor` a moderator. → [`Outcome::Roles`] with every change
    SetRole {
        /// The room.
        room: RoomId,
        /// Whose role.
        user: UserId,
        /// The new role.
        role: RoomRole,
        /// Who asks.
        actor: UserId,
    },
    /// Set a room's topic. → [`Outcome::Done`]
    SetTopic {
        /// The room.
        room: RoomId,
        /// The topic.
        topic: String,
        /// Who sets it (checked again here: a moderator or the owner of a named room, either
        /// member of a direct chat).
        by: UserId,
    },
    /// Rename a named room other than `public`, as `by` (checked here: its owner).
    /// → [`Outcome::Done`]
    RenameRoom {
        /// The room.
        room: RoomId,
        /// The new name (valid: checked by the caller).
        name: String,
        /// Who renames it.
        by: UserId,
    },
    /// Find or create the direct chat between two users. → [`Outcome::Direct`]
    OpenDirect {
        /// One user.
        a: UserId,
        /// The other.
        b: UserId,
    },
    /// Store a message with the next seq; the sender's read marker moves to it. → [`Outcome::Message`]
    InsertMessage {
        /// The room.
        room: RoomId,
        /// The sender.
        sender: UserId,
        /// The sender's name.
        sender_name: String,
        /// Text or system.
        kind: MessageKind,
        /// The text.
        text: String,
        /// Members mentioned, for mention counts.
        mentions: Vec<UserId>,
    },
    /// Move a read marker forward (never back, never past the newest message). → [`Outcome::ReadMarker`]
    MarkRead {
        /// The room.
        room: RoomId,
        /// Whose.
        user: UserId,
        /// Up to where.
        seq: Seq,
    },
    /// Delete an account with its sessions and memberships; its messages stay, and the rooms it
    /// owned pass on as when an owner leaves. → [`Outcome::AccountDeleted`]
    DeleteUser {
        /// Who.
        user: UserId,
    },
    /// Grant or revoke server admin. → [`Outcome::Done`]
    SetAdmin {
        /// Who.
        user: UserId,
        /// Admin or not.
        admin: bool,
    },
    /// Start an upload, or find the one `user` already has for the same content, after
    /// checking the quota. → [`Outcome::Upload`]
    OpenUpload {
        /// Who uploads.
        user: UserId,
        /// Where the file will be posted.
        room: RoomId,
        /// The sanitised name.
        name: String,
        /// The declared size.
        size: u64,
        /// The declared hash.
        sha256: [u8; 32],
        /// The user's quota in bytes, 0 for none.
        quota: u64,
    },
    /// Forget an upload (cancelled, or failed verification). → [`Outcome::Done`]
    DeleteUpload {
        /// The upload.
        upload: UploadId,
    },
    /// Forget uploads untouched since `cutoff`, except `keep`, and every one in `force`.
    /// → [`Outcome::Uploads`] (the ids forgotten; the caller removes their part files)
    ExpireUploads {
        /// Rows last offered before this are stale.
        cutoff: UnixMillis,
        /// Still active in memory.
        keep: Vec<UploadId>,
        /// Expired in memory.
        force: Vec<UploadId>,
    },
    /// A verified upload: move its bytes into the blob store, post the `File` message and
    /// forget the upload. → [`Outcome::File`]
    PostFile {
        /// The upload.
        upload: UploadId,
        /// The uploader.
        user: UserId,
        /// Their name.
        user_name: String,
        /// The room.
        room: RoomId,
        /// The sanitised name.
        name: String,
        /// The size.
        size: u64,
        /// The verified hash.
        sha256: [u8; 32],
        /// The user's quota in bytes, 0 for none.
        quota: u64,
        /// The message text shown by clients that do not know file messages.
        text: String,
        /// Where the bytes go.
        store: FileStore,
    },
    /// Delete a message (its sender, or the room's owner or a moderator): it stays as a
    /// `Deleted` message with empty text; its file row goes, and after the commit the blob
    /// too if nothing else refers to it. → [`Outcome::MessageDeleted`]
    DeleteMessage {
        /// The room.
        room: RoomId,
        /// The message.
        seq: Seq,
        /// Who deletes it.
        actor: UserId,
        /// Where a blob would be removed.
        store: FileStore,
    },
    /// Delete what `sender` posted in a named room since `since` (Unix ms), the newest
    /// [`chatroom_protocol::MAX_DELETED_AT_ONCE`] at most, by the room's owner or a
    /// moderator for someone below their role or not in the room. → [`Outcome::MessagesDeleted`]
    DeleteMessagesBy {
        /// The room.
        room: RoomId,
        /// Whose messages.
        sender: UserId,
        /// The oldest time a message may have been sent at to go.
        since: UnixMillis,
        /// Who deletes them.
        actor: UserId,
        /// Where blobs would be removed.
        store: FileStore,
    },
    /// Replace the text of a text message, by its sender only; the mentions follow the text.
    /// → [`Outcome::Edited`]
    EditMessage {
        /// The room.
        room: RoomId,
        /// The message.
        seq: Seq,
        /// Who edits it.
        editor: UserId,
        /// The new text (checked like a new message's).
        text: String,
        /// Members the new text mentions.
        mentions: Vec<UserId>,
    },
    /// Start the AI bot's context for a room after `after_seq` (`/ai clear`). → [`Outcome::Done`]
    SetAiContextStart {
        /// The room.
        room: RoomId,
        /// Messages up to this seq are forgotten by the bot.
        after_seq: Seq,
    },
    /// Nothing to store: a search waits for this first, and the writer completes it only once
    /// the search index holds every message stored before it, so the search finds every
    /// message acknowledged before it was asked. One step of the indexer usually does it; after
    /// a burst, more steps alternate with the next batches. Only searches pay for this:
    /// messages are indexed in the background, a moment after their acknowledgement.
    /// → [`Outcome::Done`]
    CatchUpSearchIndex,
    /// A write that changes nothing anyone reads, for `/health`: the database header's
    /// `application_id` rewritten with its own value. The page still goes to disk at the
    /// commit, so a full disk or a read-only file fails it as it fails real writes.
    /// → [`Outcome::Done`]
    HealthProbe,
}

impl WriteOp {
    /// Whether the op, applied, writes to the database: the ops that only wait on the writer
    /// (a search catching up, session upkeep with nothing to do) do not.
    pub fn writes(&self) -> bool {
        match self {
            WriteOp::CatchUpSearchIndex => false,
            WriteOp::SessionUpkeep { used, expired } => !used.is_empty() || !expired.is_empty(),
            _ => true,
        }
    }
}

/// What a committed op produced.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Nothing to report.
    Done,
    /// A created account.
    User(UserRow),
    /// A created room, and how its owner sees it.
    Room {
        /// The room.
        row: RoomRow,
        /// The room as its owner sees it, read inside the op's transaction.
        summary: RoomSummary,
    },
    /// A direct chat, whether this op created it, and how each side sees it.
    Direct {
        /// The room.
        room: RoomRow,
        /// Created now (false: it existed).
        created: bool,
        /// The chat as the one who opened it sees it.
        for_opener: RoomSummary,
        /// The chat as the other side sees it: only when it was created now, with someone
        /// else (they have to be told of it).
        for_other: Option<RoomSummary>,
    },
    /// A member added, with the role they got and the room as they see it now: read inside
    /// the op's transaction, so that they can be told of the room before any event of it.
    Joined {
        /// Their role (the first person in an ownerless room owns it).
        role: RoomRole,
        /// The room as they see it.
        summary: RoomSummary,
    },
    /// A stored message.
    Message(Message),
    /// The read marker after the op.
    ReadMarker(Seq),
    /// An upload's id, and whether this op created it.
    Upload {
        /// The upload.
        id: UploadId,
        /// False when the user already had this upload (a resume).
        created: bool,
    },
    /// Upload ids.
    Uploads(Vec<UploadId>),
    /// A posted file and its message.
    File {
        /// The file.
        info: FileInfo,
        /// The message that posts it.
        message: Message,
    },
    /// Room roles set by the op, as they are now: `(member, role)`.
    Roles(Vec<(UserId, RoomRole)>),
    /// A ban stored: whether the user was a member (and so was removed), and the room's new
    /// owner if the ban removed its owner.
    Banned {
        /// They were in the room.
        was_member: bool,
        /// Role changes the removal caused.
        heirs: Vec<(UserId, RoomRole)>,
    },
    /// A message was edited: as it is now, or `None` when the new text was the old one.
    Edited(Option<Message>),
    /// A message was deleted.
    MessageDeleted {
        /// The blob its file used, when no other file row referred to it at the time.
        orphan: Option<[u8; 32]>,
        /// The sender's name, when someone else (a moderator, the owner) deleted it.
        of_other: Option<String>,
    },
    /// An account was deleted ([`WriteOp::DeleteUser`]): every room it was in, direct chats
    /// included, with the member who owns the room now if the account did.
    AccountDeleted {
        /// `(room, its new owner)`.
        rooms: Vec<(RoomId, Option<UserId>)>,
        /// Its direct chats as the other side sees each now (named for the deleted account).
        directs: Vec<(UserId, RoomSummary)>,
    },
    /// Messages of one sender were deleted ([`WriteOp::DeleteMessagesBy`]).
    MessagesDeleted {
        /// Their seqs, newest first.
        seqs: Vec<Seq>,
        /// The blobs their files used, when no other file row referred to them at the time.
        orphans: Vec<[u8; 32]>,
    },
}

/// An op being applied: the connection it writes on, the time it is applied at, the room seqs
/// taken so far, and what it takes and posts. Each op's function takes it whole, with the op's
/// fields, and uses what it needs: four more arguments would make the longer lists too long.
struct Applying<'a, 's> {
    /// The open transaction.
    conn: &'a Connection,
    /// Now, in Unix milliseconds.
    now: i64,
    /// Each room's newest seq, with those the open transaction took.
    seqs: &'a SeqCounters<'s>,
    /// The seqs and notices the op takes.
    posted: &'a mut Posted,
}

/// Applies `op` on `conn`, in the open transaction: a function per op, in its area's module.
pub(super) fn apply(
    conn: &Connection,
    op: &WriteOp,
    seqs: &SeqCounters<'_>,
    posted: &mut Posted,
) -> Result<Outcome, StorageError> {
    let now = now_millis() as i64;
    let cx = Applying {
        conn,
        now,
        seqs,
        posted,
    };
    match op {
        WriteOp::CreateUser {
            name,
            password_hash,
            admin,
        } => accounts::create_user(cx, name, password_hash, *admin),
        WriteOp::CreateSession {
            user,
            token_hash,
            device,
            ending,
            why_ending,
        } => accounts::create_session(cx, *user, token_hash, device, ending, why_ending),
        WriteOp::EndSessions { tokens, why } => accounts::end_these_sessions(cx, tokens, why),
        WriteOp::DeleteSession { token_hash } => accounts::delete_session(cx, token_hash),
        WriteOp::RevokeSessions { user } => accounts::revoke_sessions(cx, *user),
        WriteOp::Suspend {
            user,
            by_name,
            reason,
        } => accounts::suspend(cx, *user, by_name, reason.as_deref()),
        WriteOp::Unsuspend { user } => accounts::unsuspend(cx, *user),
        WriteOp::SessionUpkeep { used, expired } => accounts::upkeep_sessions(cx, used, expired),
        WriteOp::ChangePassword {
            user,
            password_hash,
            keep_session,
        } => accounts::change_password(cx, *user, password_hash, keep_session.as_deref()),
        WriteOp::CreateRoom { name, kind, owner } => rooms::create(cx, name, *kind, *owner),
        WriteOp::AddMember {
            room,
            user,
            role,
            by,
        } => rooms::add_member(cx, *room, *user, *role, *by),
        WriteOp::RemoveMember {
            room,
            user,
            by,
            reason,
        } => rooms::remove_member(cx, *room, *user, *by, reason.as_deref()),
        WriteOp::Ban {
            room,
            user,
            by,
            by_name,
            reason,
        } => moderation::ban(cx, *room, *user, *by, by_name, reason.as_deref()),
        WriteOp::Unban { room, user, by } => moderation::unban(cx, *room, *user, *by),
        WriteOp::Mute {
            room,
            user,
            by,
            by_name,
            reason,
            until,
        } => moderation::mute(cx, *room, *user, *by, by_name, reason.as_deref(), *until),
        WriteOp::Unmute { room, user, by } => moderation::unmute(cx, *room, *user, *by),
        WriteOp::SetRole {
            room,
            user,
            role,
            actor,
        } => rooms::set_role(cx, *room, *user, *role, *actor),
        WriteOp::SetTopic { room, topic, by } => rooms::set_topic(cx, *room, topic, *by),
        WriteOp::RenameRoom { room, name, by } => rooms::rename(cx, *room, name, *by),
        WriteOp::OpenDirect { a, b } => rooms::open_direct(cx, *a, *b),
        WriteOp::InsertMessage {
            room,
            sender,
            sender_name,
            kind,
            text,
            mentions,
        } => messages::insert(cx, *room, *sender, sender_name, kind, text, mentions),
        WriteOp::MarkRead { room, user, seq } => messages::mark_read(cx, *room, *user, *seq),
        WriteOp::DeleteUser { user } => accounts::delete_user(cx, *user),
        WriteOp::SetAdmin { user, admin } => accounts::set_admin(cx, *user, *admin),
        WriteOp::OpenUpload {
            user,
            room,
            name,
            size,
            sha256,
            quota,
        } => files::open_upload(cx, *user, *room, name, *size, sha256, *quota),
        WriteOp::DeleteUpload { upload } => files::delete_upload(cx, *upload),
        WriteOp::ExpireUploads {
            cutoff,
            keep,
            force,
        } => files::expire_uploads(cx, *cutoff, keep, force),
        WriteOp::PostFile {
            upload,
            user,
            user_name,
            room,
            name,
            size,
            sha256,
            quota,
            text,
            store,
        } => files::post(
            cx,
            files::PostFile {
                upload: *upload,
                user: *user,
                user_name,
                room: *room,
                name,
                size: *size,
                sha256,
                quota: *quota,
                text,
                store,
            },
        ),
        WriteOp::DeleteMessage {
            room,
            seq,
            actor,
            store: _,
        } => messages::delete(cx, *room, *seq, *actor),
        WriteOp::DeleteMessagesBy {
            room,
            sender,
            since,
            actor,
            store: _,
        } => messages::delete_by(cx, *room, *sender, *since, *actor),
        WriteOp::EditMessage {
            room,
            seq,
            editor,
            text,
            mentions,
        } => messages::edit(cx, *room, *seq, *editor, text, mentions),
        WriteOp::SetAiContextStart { room, after_seq } => {
            messages::set_ai_context_start(cx, *room, *after_seq)
        }
        // The writer acts on it around the batch (see `writer_loop`); nothing in the database.
        WriteOp::CatchUpSearchIndex => Ok(Outcome::Done),
        WriteOp::HealthProbe => {
            let id: i64 = cx
                .conn
                .query_row("PRAGMA application_id", [], |r| r.get(0))?;
            // PRAGMA takes no parameters; `id` is an integer the database itself gave.
            cx.conn
                .execute_batch(&format!("PRAGMA application_id = {id}"))?;
            Ok(Outcome::Done)
        }
    }
}

/// Applies one op directly on `conn` in its own transaction, for the offline admin commands
/// (the server is not running, so there is no writer thread and no seq to keep).
pub fn apply_offline(conn: &mut Connection, op: &WriteOp) -> Result<Outcome, StorageError> {
    let mut latest = HashMap::new();
    let seqs = SeqCounters {
        committed: &mut latest,
        pending: HashMap::new(),
    };
    let tx = conn.transaction()?;
    let mut posted = Posted::default();
    let outcome = apply(&tx, op, &seqs, &mut posted)?;
    tx.commit()?;
    Ok(outcome)
}

/// A refusal: the op broke a rule, which is said to the client as is.
pub(super) fn refused(code: ErrorCode, message: impl Into<String>) -> StorageError {
    StorageError::Refused(ErrorBody::new(code, message))
}

/// Refuses the op unless `user` is (still) a member of `room`.
fn require_member(conn: &Connection, room: RoomId, user: UserId) -> Result<(), StorageError> {
    let member: Option<i64> = conn
        .prepare_cached("SELECT role FROM members WHERE room_id = ?1 AND user_id = ?2")?
        .query_row(params![room.0 as i64, user.0 as i64], |r| r.get(0))
        .optional()?;
    match member {
        Some(_) => Ok(()),
        None => Err(not_a_member()),
    }
}

fn not_a_member() -> StorageError {
    refused(
        ErrorCode::NotMember,
        "you are no longer a member of that room",
    )
}

/// `user`'s role in `room`, `None` when not a member.
fn member_role(
    conn: &Connection,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomRole>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT role FROM members WHERE room_id = ?1 AND user_id = ?2")?
        .query_row(params![room.0 as i64, user.0 as i64], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .map(role_from_sql))
}

/// `actor`'s role in `room` as the room's rules see it: a server admin counts as at least a
/// moderator in every named room they are in (`public` has no owner, and someone must be able
/// to keep order there). `None` for a non-member.
fn acting_role(
    conn: &Connection,
    room: RoomId,
    actor: UserId,
) -> Result<Option<RoomRole>, StorageError> {
    let Some(role) = member_role(conn, room, actor)? else {
        return Ok(None);
    };
    if role < RoomRole::Moderator
        && room_kind(conn, room)? != RoomKind::Direct
        && is_admin(conn, actor)?
    {
        return Ok(Some(RoomRole::Moderator));
    }
    Ok(Some(role))
}

/// Whether `user` is a server admin.
fn is_admin(conn: &Connection, user: UserId) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached("SELECT is_admin FROM users WHERE id = ?1")?
        .query_row(params![user.0 as i64], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// `actor`'s acting role in `room` ([`acting_role`]), refused unless they are a member with at
/// least `needed`. The request was checked against the hub, but a role change may have been
/// committed since.
fn require_role(
    conn: &Connection,
    room: RoomId,
    actor: UserId,
    needed: RoomRole,
    refusal: &str,
) -> Result<RoomRole, StorageError> {
    match acting_role(conn, room, actor)? {
        None => Err(refused(
            ErrorCode::NotMember,
            "you are not a member of that room",
        )),
        Some(role) if role < needed => Err(refused(ErrorCode::Forbidden, refusal)),
        Some(role) => Ok(role),
    }
}

/// What kind of room `room` is.
fn room_kind(conn: &Connection, room: RoomId) -> Result<RoomKind, StorageError> {
    conn.prepare_cached("SELECT kind FROM rooms WHERE id = ?1")?
        .query_row(params![room.0 as i64], |r| r.get(0))
        .optional()?
        .map(kind_from_sql)
        .ok_or_else(|| refused(ErrorCode::RoomNotFound, "no such room"))
}
