//! The hub: the server's hot state in memory, and fan-out.
//!
//! It knows every account, every room with its members and roles, and every logged-in
//! connection with its outbound queue. SQLite is the truth on restart; the hub is rebuilt from a
//! [`Snapshot`] at start-up and then changed only by storage completions, which run on the
//! writer thread in commit order — so the hub never shows a change that is not committed.
//!
//! Fan-out encodes an event once and pushes the same [`Bytes`] to every recipient's bounded
//! queue ([`crate::outbox`]). A queue that is full means the client stopped keeping up: it is
//! closed as too slow (it resumes from its last seq on reconnect), and the room keeps flowing.
//!
//! Locks are `std` locks held for short, non-async sections only.

use bytes::Bytes;
use chatroom_protocol::codec::encode_frame;
use chatroom_protocol::{
    ErrorBody, Event, Member, PresenceStatus, PresenceUpdate, RoomId, RoomKind, RoomRole,
    ServerFrame, UnixMillis, UserId, UserPresence, UserSummary, now_millis,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::outbox::Outlet;
use crate::sessions::{SessionTokens, TokenHash};
use crate::storage::{RoomRow, Snapshot, UserRow};

/// Identifies one connection for the life of the server process.
pub type ConnId = u64;

/// A logged-in connection as the hub sees it.
#[derive(Clone, Debug)]
pub struct SessionConn {
    /// The connection.
    pub conn: ConnId,
    /// Its outbound queue.
    pub outlet: Outlet,
    /// The SHA-256 of its session token.
    pub token_hash: Vec<u8>,
    /// Its user has left it alone for a while (`Request::SetIdle`).
    pub idle: bool,
}

impl SessionConn {
    fn push(&self, frame: Bytes) {
        self.outlet.push(frame);
    }
}

#[derive(Debug)]
struct UserEntry {
    row: UserRow,
    rooms: HashSet<RoomId>,
    sessions: Vec<SessionConn>,
    away: bool,
    status_message: Option<String>,
    /// Always online without a connection (the AI bot, which lives inside the server).
    resident: bool,
}

impl UserEntry {
    fn status(&self) -> PresenceStatus {
        // The resident bot has no session, and is never idle.
        let all_idle = !self.sessions.is_empty() && self.sessions.iter().all(|s| s.idle);
        match (
            self.sessions.is_empty() && !self.resident,
            self.away || all_idle,
        ) {
            (true, _) => PresenceStatus::Offline,
            (false, true) => PresenceStatus::Away,
            (false, false) => PresenceStatus::Online,
        }
    }

    fn summary(&self) -> UserSummary {
        UserSummary {
            id: self.row.id,
            username: self.row.name.clone(),
            is_admin: self.row.is_admin,
        }
    }
}

#[derive(Debug)]
struct RoomEntry {
    row: RoomRow,
    members: HashMap<UserId, RoomRole>,
    /// Members who may not post, with when that ends (`None`: until unmuted). Kept after a
    /// mute runs out (checked against the clock) and across leaving and rejoining.
    muted: HashMap<UserId, Option<UnixMillis>>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, UserEntry>,
    /// Users with at least one session: presence goes only to them, and there are far fewer
    /// of them than accounts.
    online: HashSet<UserId>,
    user_by_key: HashMap<String, UserId>,
    /// Names by [`crate::auth::look_alike_key`], so that a new name cannot pass for one taken.
    user_by_look: HashMap<String, UserId>,
    rooms: HashMap<RoomId, RoomEntry>,
    room_by_key: HashMap<String, RoomId>,
    room_by_look: HashMap<String, RoomId>,
    /// Names being written right now, by look-alike key, with the name asked for (see
    /// [`NameClaim`]).
    claimed: HashMap<(Namespace, String), String>,
}

impl State {
    /// An account whose name has the look-alike key `look`. The map keeps one per key, but a
    /// database from before look-alikes were refused may hold two such names: when the one in
    /// the map goes, the other takes its place, or its look would be free for a third. A scan,
    /// as it runs only when an account is deleted.
    fn user_looking_like(&self, look: &str) -> Option<UserId> {
        self.users
            .values()
            .find(|u| crate::auth::look_alike_key(&u.row.name) == look)
            .map(|u| u.row.id)
    }

    /// A named room whose name has the look-alike key `look` (see [`Self::user_looking_like`];
    /// runs only when a room is renamed).
    fn room_looking_like(&self, look: &str) -> Option<RoomId> {
        self.rooms
            .values()
            .find(|r| {
                r.row.kind != RoomKind::Direct && crate::auth::look_alike_key(&r.row.name) == look
            })
            .map(|r| r.row.id)
    }

    /// Pushes `frame` to every session of `user`.
    fn push_to_user(&self, user: UserId, frame: &Bytes) {
        if let Some(u) = self.users.get(&user) {
            for s in &u.sessions {
                s.push(frame.clone());
            }
        }
    }

    /// Pushes `frame` to every session of everyone online.
    fn push_to_everyone_online(&self, frame: &Bytes) {
        for user in &self.online {
            self.push_to_user(*user, frame);
        }
    }
}

/// Where a name must be unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Account names.
    Account,
    /// Named rooms' names.
    Room,
}

/// A new name held from its look-alike check until the hub has the row that carries it.
///
/// The check reads the hub, and the hub learns of a new name only after its commit; the
/// database's unique index holds exact names only. Without the claim, two look-alike names
/// asked for in the same instant (an argon2 hash apart) would both pass. Dropping the claim
/// releases the name, whether it was written or not.
#[must_use = "the name is free again once the claim is dropped"]
#[derive(Debug)]
pub struct NameClaim {
    hub: Arc<Hub>,
    key: (Namespace, String),
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        self.hub.write().claimed.remove(&self.key);
    }
}

/// The hot state; see the module docs.
#[derive(Debug)]
pub struct Hub {
    state: RwLock<State>,
    /// Room events of the current storage batch, sent together when it ends (see
    /// [`Hub::defer_broadcast`]).
    deferred: Mutex<Vec<(RoomId, Bytes)>>,
    max_frame_bytes: u32,
    presence_dirty: Mutex<HashSet<UserId>>,
    presence_wake: Notify,
    /// Live session tokens, so that a resume needs no database read. Added and removed only in
    /// storage completions, right after the commit.
    sessions: SessionTokens,
}

/// What the hub knows of a room, for permission checks.
#[derive(Clone, Debug)]
pub struct RoomView {
    /// The room.
    pub row: RoomRow,
    /// The asking user's role, if a member.
    pub my_role: Option<RoomRole>,
    /// How many members.
    pub member_count: usize,
    /// The asking user's mute here, if they have one in force: when it ends, `None` for until
    /// unmuted.
    pub my_mute: Option<Option<UnixMillis>>,
}

impl Hub {
    /// Builds the hub from the database snapshot.
    pub fn new(snapshot: Snapshot, max_frame_bytes: u32) -> Self {
        let mut state = State::default();
        for row in snapshot.users {
            state.user_by_key.insert(row.name_key.clone(), row.id);
            state
                .user_by_look
                .insert(crate::auth::look_alike_key(&row.name), row.id);
            state.users.insert(
                row.id,
                UserEntry {
                    row,
                    rooms: HashSet::new(),
                    sessions: Vec::new(),
                    away: false,
                    status_message: None,
                    resident: false,
                },
            );
        }
        for row in snapshot.rooms {
            if row.kind != RoomKind::Direct {
                state
                    .room_by_key
                    .insert(crate::auth::name_key(&row.name), row.id);
                state
                    .room_by_look
                    .insert(crate::auth::look_alike_key(&row.name), row.id);
            }
            state.rooms.insert(
                row.id,
                RoomEntry {
                    row,
                    members: HashMap::new(),
                    muted: HashMap::new(),
                },
            );
        }
        for (room, user, role) in snapshot.members {
            if let Some(r) = state.rooms.get_mut(&room) {
                r.members.insert(user, role);
            }
            if let Some(u) = state.users.get_mut(&user) {
                u.rooms.insert(room);
            }
        }
        let now = now_millis();
        for (room, user, until) in snapshot.mutes {
            if let Some(r) = state.rooms.get_mut(&room)
                && until.is_none_or(|t| t > now)
            {
                r.muted.insert(user, until);
            }
        }
        Self {
            state: RwLock::new(state),
            deferred: Mutex::new(Vec::new()),
            max_frame_bytes,
            presence_dirty: Mutex::new(HashSet::new()),
            presence_wake: Notify::new(),
            sessions: SessionTokens::new(snapshot.sessions),
        }
    }

    /// The live session tokens.
    pub fn sessions(&self) -> &SessionTokens {
        &self.sessions
    }

    /// The tokens held by logged-in connections right now.
    pub fn live_tokens(&self) -> HashSet<TokenHash> {
        let state = self.read();
        state
            .online
            .iter()
            .filter_map(|user| state.users.get(user))
            .flat_map(|u| &u.sessions)
            .filter_map(|s| TokenHash::try_from(s.token_hash.as_slice()).ok())
            .collect()
    }

    // A poisoned lock means a panic elsewhere mid-update; the state is still the best we have,
    // and refusing service over it would take the whole server down.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes an event frame once, for fan-out.
    pub fn encode_event(&self, event: &Event) -> Option<Bytes> {
        match encode_frame(&ServerFrame::Event(event.clone()), self.max_frame_bytes) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an event");
                None
            }
        }
    }

    // ---- lookups ----

    /// An account by id.
    pub fn user(&self, id: UserId) -> Option<UserRow> {
        self.read().users.get(&id).map(|u| u.row.clone())
    }

    /// An account by name, ignoring case.
    pub fn user_by_name(&self, name: &str) -> Option<UserRow> {
        let state = self.read();
        let id = state.user_by_key.get(&crate::auth::name_key(name))?;
        state.users.get(id).map(|u| u.row.clone())
    }

    /// Claims `name` for a new account, or for `renaming` a room, until the returned claim is
    /// dropped. Refused with the name it is or looks like (see [`crate::auth::look_alike_key`]),
    /// whether that name is the hub's or claimed by a request still being written.
    pub fn claim_name(
        self: &Arc<Self>,
        namespace: Namespace,
        name: &str,
        renaming: Option<RoomId>,
    ) -> Result<NameClaim, String> {
        let look = crate::auth::look_alike_key(name);
        let mut state = self.write();
        let taken = match namespace {
            Namespace::Account => state
                .user_by_look
                .get(&look)
                .and_then(|id| state.users.get(id))
                .map(|u| u.row.name.clone()),
            Namespace::Room => state
                .room_by_look
                .get(&look)
                .filter(|id| Some(**id) != renaming)
                .and_then(|id| state.rooms.get(id))
                .map(|r| r.row.name.clone()),
        };
        let key = (namespace, look);
        if let Some(other) = taken.or_else(|| state.claimed.get(&key).cloned()) {
            return Err(other);
        }
        state.claimed.insert(key.clone(), name.to_string());
        Ok(NameClaim {
            hub: Arc::clone(self),
            key,
        })
    }

    /// A named room by name, ignoring case.
    pub fn room_by_name(&self, name: &str) -> Option<RoomId> {
        self.read()
            .room_by_key
            .get(&crate::auth::name_key(name))
            .copied()
    }

    /// A room and `user`'s role in it.
    pub fn room_view(&self, room: RoomId, user: UserId) -> Option<RoomView> {
        let state = self.read();
        let entry = state.rooms.get(&room)?;
        // The map is almost always empty; a mute that ran out reads as none.
        let my_mute = entry
            .muted
            .get(&user)
            .copied()
            .filter(|until| until.is_none_or(|t| t > now_millis()));
        Some(RoomView {
            row: entry.row.clone(),
            my_role: entry.members.get(&user).copied(),
            member_count: entry.members.len(),
            my_mute,
        })
    }

    /// Mutes `user` in `room` until `until` (`None`: until unmuted), or lifts the mute.
    pub fn set_mute(&self, room: RoomId, user: UserId, mute: Option<Option<UnixMillis>>) {
        let mut state = self.write();
        if let Some(entry) = state.rooms.get_mut(&room) {
            match mute {
                Some(until) => entry.muted.insert(user, until),
                None => entry.muted.remove(&user),
            };
        }
    }

    /// The members of `room` among the given name keys (for mention counts).
    pub fn members_named(&self, room: RoomId, keys: &[String]) -> Vec<UserId> {
        let state = self.read();
        let Some(entry) = state.rooms.get(&room) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| state.user_by_key.get(k))
            .filter(|id| entry.members.contains_key(id))
            .copied()
            .collect()
    }

    /// A room's members with role and presence: owners first, then moderators, then by name.
    pub fn members(&self, room: RoomId) -> Vec<Member> {
        let state = self.read();
        let Some(entry) = state.rooms.get(&room) else {
            return Vec::new();
        };
        let mut members: Vec<Member> = entry
            .members
            .iter()
            .filter_map(|(id, role)| {
                let u = state.users.get(id)?;
                Some(Member {
                    user: u.summary(),
                    role: *role,
                    status: u.status(),
                })
            })
            .collect();
        members.sort_by(|a, b| {
            b.role.cmp(&a.role).then_with(|| {
                a.user
                    .username
                    .to_lowercase()
                    .cmp(&b.user.username.to_lowercase())
            })
        });
        members
    }

    /// Every account with presence, online first, then by name.
    pub fn users(&self) -> Vec<UserPresence> {
        let state = self.read();
        let mut users: Vec<UserPresence> = state
            .users
            .values()
            .map(|u| UserPresence {
                user: u.summary(),
                status: u.status(),
                status_message: u.status_message.clone(),
            })
            .collect();
        users.sort_by(|a, b| {
            (a.status == PresenceStatus::Offline)
                .cmp(&(b.status == PresenceStatus::Offline))
                .then_with(|| {
                    a.user
                        .username
                        .to_lowercase()
                        .cmp(&b.user.username.to_lowercase())
                })
        });
        users
    }

    /// A member as shown in `MemberJoined`.
    pub fn member(&self, room: RoomId, user: UserId) -> Option<Member> {
        let state = self.read();
        let role = *state.rooms.get(&room)?.members.get(&user)?;
        let u = state.users.get(&user)?;
        Some(Member {
            user: u.summary(),
            role,
            status: u.status(),
        })
    }

    // ---- changes (called from storage completions, after commit) ----

    /// A new account, member of `public`; the room is told it joined.
    pub fn add_user(&self, row: UserRow) {
        self.flush_deferred();
        let id = row.id;
        let public = self.add_user_to_state(row);
        if let Some(public) = public
            && let Some(member) = self.member(public, id)
            && let Some(frame) = self.encode_event(&Event::MemberJoined {
                room: public,
                member,
            })
        {
            self.broadcast_except(public, id, &frame);
        }
    }

    fn add_user_to_state(&self, row: UserRow) -> Option<RoomId> {
        let mut state = self.write();
        let public = state.room_by_key.get("public").copied();
        let mut rooms = HashSet::new();
        if let Some(public) = public {
            rooms.insert(public);
            if let Some(r) = state.rooms.get_mut(&public) {
                r.members.insert(row.id, RoomRole::Member);
            }
        }
        state.user_by_key.insert(row.name_key.clone(), row.id);
        state
            .user_by_look
            .entry(crate::auth::look_alike_key(&row.name))
            .or_insert(row.id);
        state.users.insert(
            row.id,
            UserEntry {
                row,
                rooms,
                sessions: Vec::new(),
                away: false,
                status_message: None,
                resident: false,
            },
        );
        public
    }

    /// A new room with its first members.
    /// A new room and its first members, each told of it with their `announcements` frame
    /// (their `RoomUpdated`) under the same lock that makes them members, so that no event of
    /// the room can reach them before the room itself.
    pub fn add_room(
        &self,
        row: RoomRow,
        members: &[(UserId, RoomRole)],
        announcements: &[(UserId, Bytes)],
    ) {
        self.flush_deferred();
        let mut state = self.write();
        for (user, frame) in announcements {
            state.push_to_user(*user, frame);
        }
        if row.kind != RoomKind::Direct {
            state
                .room_by_key
                .insert(crate::auth::name_key(&row.name), row.id);
            state
                .room_by_look
                .entry(crate::auth::look_alike_key(&row.name))
                .or_insert(row.id);
        }
        let id = row.id;
        state.rooms.insert(
            id,
            RoomEntry {
                row,
                members: members.iter().copied().collect(),
                muted: HashMap::new(),
            },
        );
        for (user, _) in members {
            if let Some(u) = state.users.get_mut(user) {
                u.rooms.insert(id);
            }
        }
    }

    /// A new member, told of the room with `announcement` (their `RoomUpdated`) under the same
    /// lock that makes them a member: no event of the room can reach them before the room.
    pub fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
        announcement: Option<&Bytes>,
    ) {
        self.flush_deferred();
        let mut state = self.write();
        if let Some(frame) = announcement {
            state.push_to_user(user, frame);
        }
        if let Some(r) = state.rooms.get_mut(&room) {
            r.members.insert(user, role);
        }
        if let Some(u) = state.users.get_mut(&user) {
            u.rooms.insert(room);
        }
    }

    /// A member gone.
    pub fn remove_member(&self, room: RoomId, user: UserId) {
        self.flush_deferred();
        let mut state = self.write();
        if let Some(r) = state.rooms.get_mut(&room) {
            r.members.remove(&user);
        }
        if let Some(u) = state.users.get_mut(&user) {
            u.rooms.remove(&room);
        }
    }

    /// Roles changed (see [`crate::storage::Outcome::Roles`]): recorded, and the room is told
    /// of each; `by` is `None` when ownership passed on by itself.
    pub fn set_roles(&self, room: RoomId, changes: &[(UserId, RoomRole)], by: Option<&str>) {
        if changes.is_empty() {
            return;
        }
        self.flush_deferred();
        let events: Vec<Event> = {
            let mut state = self.write();
            let Some(r) = state.rooms.get_mut(&room) else {
                return;
            };
            for (user, role) in changes {
                if let Some(current) = r.members.get_mut(user) {
                    *current = *role;
                }
            }
            changes
                .iter()
                .filter_map(|(user, role)| {
                    Some(Event::RoleChanged {
                        room,
                        user: *user,
                        username: state.users.get(user)?.row.name.clone(),
                        role: *role,
                        by: by.map(str::to_owned),
                    })
                })
                .collect()
        };
        for event in &events {
            if let Some(frame) = self.encode_event(event) {
                self.broadcast(room, &frame);
            }
        }
    }

    /// A named room's new name (the old one is free again).
    pub fn rename_room(&self, room: RoomId, name: &str) {
        let mut state = self.write();
        let Some(entry) = state.rooms.get_mut(&room) else {
            return;
        };
        let old = crate::auth::name_key(&entry.row.name);
        let old_look = crate::auth::look_alike_key(&entry.row.name);
        entry.row.name = name.to_string();
        if state.room_by_key.get(&old) == Some(&room) {
            state.room_by_key.remove(&old);
        }
        if state.room_by_look.get(&old_look) == Some(&room) {
            state.room_by_look.remove(&old_look);
            if let Some(other) = state.room_looking_like(&old_look) {
                state.room_by_look.insert(old_look, other);
            }
        }
        state.room_by_key.insert(crate::auth::name_key(name), room);
        state
            .room_by_look
            .entry(crate::auth::look_alike_key(name))
            .or_insert(room);
    }

    /// Server admin granted or taken away `by` an admin: every connection of the account acts
    /// with it from its next request (see `Conn::dispatch`), and member lists show it. If it
    /// changed, everyone online hears [`Event::AdminChanged`], the account itself included.
    pub fn set_admin(&self, user: UserId, admin: bool, by: &str) {
        let username = {
            let mut state = self.write();
            let Some(u) = state.users.get_mut(&user) else {
                return;
            };
            if u.row.is_admin == admin {
                return;
            }
            u.row.is_admin = admin;
            u.row.name.clone()
        };
        let changed = Event::AdminChanged {
            user,
            username,
            admin,
            by: by.to_string(),
        };
        if let Some(frame) = self.encode_event(&changed) {
            self.read().push_to_everyone_online(&frame);
        }
    }

    /// Forgets a deleted account, once its rooms have heard it left: its direct chats lose it
    /// as a member, its connections close with `reason`, and its name is free again.
    pub fn forget_user(&self, user: UserId, reason: &ErrorBody) {
        self.flush_deferred();
        let Some(entry) = self.remove_user_from_state(user) else {
            return;
        };
        for s in &entry.sessions {
            s.outlet.close(reason.clone());
        }
        // Presence never mentions it again: those who saw it online see it go.
        if !entry.sessions.is_empty() {
            let gone = Event::Presence(vec![PresenceUpdate {
                user,
                username: entry.row.name.clone(),
                status: PresenceStatus::Offline,
                status_message: None,
            }]);
            if let Some(frame) = self.encode_event(&gone) {
                self.read().push_to_everyone_online(&frame);
            }
        }
    }

    fn remove_user_from_state(&self, user: UserId) -> Option<UserEntry> {
        let mut state = self.write();
        let entry = state.users.remove(&user)?;
        for room in &entry.rooms {
            if let Some(r) = state.rooms.get_mut(room) {
                r.members.remove(&user);
                r.muted.remove(&user);
            }
        }
        state.online.remove(&user);
        if state.user_by_key.get(&entry.row.name_key) == Some(&user) {
            state.user_by_key.remove(&entry.row.name_key);
        }
        let look = crate::auth::look_alike_key(&entry.row.name);
        if state.user_by_look.get(&look) == Some(&user) {
            state.user_by_look.remove(&look);
            if let Some(other) = state.user_looking_like(&look) {
                state.user_by_look.insert(look, other);
            }
        }
        Some(entry)
    }

    /// A new topic.
    pub fn set_topic(&self, room: RoomId, topic: &str) {
        if let Some(r) = self.write().rooms.get_mut(&room) {
            r.row.topic = topic.to_string();
        }
    }

    // ---- sessions and presence ----

    /// Marks `user` as living inside the server: shown online without a connection.
    pub fn set_resident(&self, user: UserId) {
        if let Some(u) = self.write().users.get_mut(&user) {
            u.resident = true;
        }
        self.mark_presence_dirty(user);
    }

    /// Registers a logged-in connection. Presence goes out if this is the user's first session.
    pub fn attach(&self, user: UserId, session: SessionConn) {
        let changed = {
            let mut state = self.write();
            let Some(u) = state.users.get_mut(&user) else {
                return;
            };
            let before = u.status();
            u.sessions.push(session);
            let changed = u.status() != before;
            state.online.insert(user);
            changed
        };
        // Coming online, or back from idle on a new connection.
        if changed {
            self.mark_presence_dirty(user);
        }
    }

    /// Marks connection `conn` of `user` idle or not; presence goes out if the account's
    /// status changed (away once all its connections are idle).
    pub fn set_idle(&self, user: UserId, conn: ConnId, idle: bool) {
        let changed = {
            let mut state = self.write();
            let Some(u) = state.users.get_mut(&user) else {
                return;
            };
            let before = u.status();
            for s in u.sessions.iter_mut().filter(|s| s.conn == conn) {
                s.idle = idle;
            }
            u.status() != before
        };
        if changed {
            self.mark_presence_dirty(user);
        }
    }

    /// Forgets a connection. Presence goes out if it was the user's last session, or the last
    /// one not idle.
    pub fn detach(&self, user: UserId, conn: ConnId) {
        let changed = {
            let mut state = self.write();
            let Some(u) = state.users.get_mut(&user) else {
                return;
            };
            let status_before = u.status();
            let before = u.sessions.len();
            u.sessions.retain(|s| {
                let keep = s.conn != conn;
                if !keep {
                    // Holding a token until now was a use of it.
                    self.sessions.touch(&s.token_hash, now_millis());
                }
                keep
            });
            let gone = before > 0 && u.sessions.is_empty();
            let changed = u.status() != status_before;
            if gone {
                u.away = false;
                u.status_message = None;
                state.online.remove(&user);
            }
            changed
        };
        if changed {
            self.mark_presence_dirty(user);
        }
    }

    /// Sets away or back, with a status text.
    pub fn set_away(&self, user: UserId, away: bool, message: Option<String>) {
        {
            let mut state = self.write();
            let Some(u) = state.users.get_mut(&user) else {
                return;
            };
            u.away = away;
            u.status_message = message;
        }
        self.mark_presence_dirty(user);
    }

    /// Closes every session of `user` except connection `keep`, with `reason`.
    pub fn close_sessions(&self, user: UserId, keep: Option<ConnId>, reason: &ErrorBody) {
        let state = self.read();
        if let Some(u) = state.users.get(&user) {
            for s in u.sessions.iter().filter(|s| Some(s.conn) != keep) {
                s.outlet.close(reason.clone());
            }
        }
    }

    /// Closes the connections using one session token (after a logout elsewhere, say).
    pub fn close_token(&self, user: UserId, token_hash: &[u8], keep: ConnId, reason: &ErrorBody) {
        let state = self.read();
        if let Some(u) = state.users.get(&user) {
            for s in u
                .sessions
                .iter()
                .filter(|s| s.conn != keep && s.token_hash == token_hash)
            {
                s.outlet.close(reason.clone());
            }
        }
    }

    fn mark_presence_dirty(&self, user: UserId) {
        if let Ok(mut dirty) = self.presence_dirty.lock() {
            dirty.insert(user);
        }
        self.presence_wake.notify_one();
    }

    // ---- fan-out ----

    /// Queues a room event from a storage completion; [`Hub::flush_deferred`] sends it when
    /// the batch ends, concatenated with the room's other events of the batch — so a busy room
    /// costs each member one queue push, one wake-up and one write per commit, not per message.
    pub fn defer_broadcast(&self, room: RoomId, frame: Bytes) {
        if let Ok(mut deferred) = self.deferred.lock() {
            deferred.push((room, frame));
        }
    }

    /// Sends the deferred room events, each room's in order. Runs at the end of every storage
    /// batch, and before any membership change so that a change never overtakes an event
    /// committed before it.
    pub fn flush_deferred(&self) {
        let pending = match self.deferred.lock() {
            Ok(mut deferred) if !deferred.is_empty() => std::mem::take(&mut *deferred),
            _ => return,
        };
        let mut by_room: Vec<(RoomId, Vec<Bytes>)> = Vec::new();
        for (room, frame) in pending {
            match by_room.iter_mut().find(|(r, _)| *r == room) {
                Some((_, frames)) => frames.push(frame),
                None => by_room.push((room, vec![frame])),
            }
        }
        for (room, frames) in by_room {
            let joined = if frames.len() == 1 {
                frames.into_iter().next().unwrap_or_default()
            } else {
                let mut all = bytes::BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
                for frame in &frames {
                    all.extend_from_slice(frame);
                }
                all.freeze()
            };
            self.broadcast(room, &joined);
        }
    }

    /// Pushes `frame` to every session of every member of `room`.
    pub fn broadcast(&self, room: RoomId, frame: &Bytes) {
        let state = self.read();
        let Some(entry) = state.rooms.get(&room) else {
            return;
        };
        for user in entry.members.keys() {
            if let Some(u) = state.users.get(user) {
                for s in &u.sessions {
                    s.push(frame.clone());
                }
            }
        }
    }

    /// Pushes `frame` to every session of every member of `room` but `except`'s.
    pub fn broadcast_except(&self, room: RoomId, except: UserId, frame: &Bytes) {
        let state = self.read();
        let Some(entry) = state.rooms.get(&room) else {
            return;
        };
        for user in entry.members.keys().filter(|u| **u != except) {
            if let Some(u) = state.users.get(user) {
                for s in &u.sessions {
                    s.push(frame.clone());
                }
            }
        }
    }

    /// Pushes `frame` to every session of `user` (but connection `except`, if given).
    pub fn send_to_user(&self, user: UserId, except: Option<ConnId>, frame: &Bytes) {
        let state = self.read();
        if let Some(u) = state.users.get(&user) {
            for s in u.sessions.iter().filter(|s| Some(s.conn) != except) {
                s.push(frame.clone());
            }
        }
    }

    /// Sends coalesced presence changes until `shutdown`: after a change it waits `window` for
    /// more, then tells each online user, in one event, about the changed users they share a
    /// room with. 1000 users connecting at once cost each online user a handful of frames, not
    /// a thousand.
    pub async fn run_presence(self: Arc<Self>, window: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.presence_wake.notified() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(window) => {}
            }
            let dirty: Vec<UserId> = match self.presence_dirty.lock() {
                Ok(mut d) => d.drain().collect(),
                Err(_) => continue,
            };
            self.flush_presence(&dirty);
        }
    }

    fn flush_presence(&self, changed: &[UserId]) {
        let state = self.read();
        let updates: Vec<PresenceUpdate> = changed
            .iter()
            .filter_map(|id| state.users.get(id))
            .map(|u| PresenceUpdate {
                user: u.row.id,
                username: u.row.name.clone(),
                status: u.status(),
                status_message: u.status_message.clone(),
            })
            .collect();
        if updates.is_empty() {
            return;
        }
        // Each online user sees the updates of users they share a room with. Everyone is in
        // `public` unless they left it, so usually every recipient sees every update: encode
        // that frame once and skip the per-update checks.
        let everything = self.encode_event(&Event::Presence(updates.clone()));
        let public = state
            .room_by_key
            .get("public")
            .and_then(|id| state.rooms.get(id));
        let in_public = |id: &UserId| public.is_some_and(|p| p.members.contains_key(id));
        let all_changed_in_public = updates.iter().all(|u| in_public(&u.user));
        for recipient in &state.online {
            let Some(r) = state.users.get(recipient) else {
                continue;
            };
            let frame = if all_changed_in_public && in_public(recipient) {
                everything.clone()
            } else {
                let subset: Vec<PresenceUpdate> = updates
                    .iter()
                    .filter(|u| {
                        state
                            .users
                            .get(&u.user)
                            .is_some_and(|changed| !changed.rooms.is_disjoint(&r.rooms))
                    })
                    .cloned()
                    .collect();
                if subset.is_empty() {
                    continue;
                }
                self.encode_event(&Event::Presence(subset))
            };
            if let Some(frame) = frame {
                for s in &r.sessions {
                    s.push(frame.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_with_alice_and_dev() -> Arc<Hub> {
        let snapshot = Snapshot {
            users: vec![UserRow {
                id: UserId(1),
                name: "alice".into(),
                name_key: "alice".into(),
                is_admin: false,
            }],
            rooms: vec![RoomRow {
                id: RoomId(1),
                kind: RoomKind::Public,
                name: "dev".into(),
                topic: String::new(),
            }],
            ..Snapshot::default()
        };
        Arc::new(Hub::new(snapshot, 1 << 20))
    }

    #[test]
    fn a_name_is_refused_while_a_look_alike_of_it_is_being_written() {
        let hub = hub_with_alice_and_dev();
        let bob = hub
            .claim_name(Namespace::Account, "bob", None)
            .expect("bob is free");
        assert_eq!(
            hub.claim_name(Namespace::Account, "b\u{43e}b", None)
                .map(|_| ()),
            Err("bob".to_string()),
            "a Cyrillic o, claimed while bob is being written"
        );
        assert!(
            hub.claim_name(Namespace::Room, "bob", None).is_ok(),
            "rooms are another namespace"
        );
        drop(bob);
        assert!(
            hub.claim_name(Namespace::Account, "b\u{43e}b", None)
                .is_ok(),
            "free again once the claim is dropped unwritten"
        );
    }

    #[test]
    fn a_name_is_refused_when_it_looks_like_one_the_hub_has() {
        let hub = hub_with_alice_and_dev();
        assert_eq!(
            hub.claim_name(Namespace::Account, "\u{430}lice", None)
                .map(|_| ()),
            Err("alice".to_string())
        );
        assert_eq!(
            hub.claim_name(Namespace::Room, "ＤＥＶ", None).map(|_| ()),
            Err("dev".to_string())
        );
        assert!(
            hub.claim_name(Namespace::Room, "Dev", Some(RoomId(1)))
                .is_ok(),
            "a room may be renamed to a look-alike of its own name"
        );
    }
}
