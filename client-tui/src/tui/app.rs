//! The application state: a plain struct changed by events (keys, server frames, ticks) and
//! rendered from `&App`. It does no I/O; what it wants done on the server it returns as
//! [`Action`]s, which the runtime carries out and answers with more events.

use chatroom_protocol::{
    BanInfo, Draft, Event, FileId, FileInfo, HistoryPage, Member, Message, MessageId, MessageKind,
    PresenceStatus, RoomId, RoomInfo, RoomKind, RoomRole, RoomSummary, Seq, UnixMillis, UserId,
    UserPresence, UserSummary,
};
use std::collections::{BTreeMap, HashMap};

use super::admin::{AccountAction, AdminEchoes};
use super::arrivals::Arrivals;
use super::confirms::Confirming;
use super::editor::LineEditor;
use super::edits::Editing;
use super::search::{Jump, SearchView, one_line};
use super::transfers::{TransferRequest, TransferView};

/// How many typing notices count as "still typing" (ms).
pub const TYPING_SHOWN_MS: u64 = 5_000;
/// How long a note stays in the status line.
pub const FLASH_SHOWN_MS: u64 = 10_000;
/// Messages fetched per history page.
pub const PAGE: u32 = 100;
/// Drafts shown at once per room; an older one gives way to a newer one.
pub const MAX_DRAFTS: usize = 8;

/// Where the connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting or logging in.
    Connecting,
    /// Logged in and live.
    Connected,
    /// Lost; the runtime retries at `retry_at`.
    Disconnected {
        /// Why.
        reason: String,
        /// When the next attempt is due (ms).
        retry_at: UnixMillis,
    },
}

/// Told to whoever registers a server's first account.
const FIRST_ACCOUNT_IS_ADMIN: &str = "you are this server's admin, as its first account: \
     /help lists the /user commands for other people's accounts";

/// The login screen's fields.
#[derive(Clone, Debug, Default)]
pub struct LoginForm {
    /// User name.
    pub username: LineEditor,
    /// Password (never shown).
    pub password: LineEditor,
    /// The password typed again, when registering (never shown).
    pub repeat: LineEditor,
    /// The field with focus.
    pub focus: LoginField,
    /// Register a new account instead of logging in.
    pub register: bool,
    /// The last failure.
    pub error: Option<String>,
    /// A login attempt is in flight.
    pub busy: bool,
}

/// A field of the login screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoginField {
    /// The user name.
    #[default]
    Username,
    /// The password.
    Password,
    /// The password again (shown only when registering).
    Repeat,
}

impl LoginForm {
    /// The fields shown, top to bottom: the repeated password only when registering.
    pub fn fields(&self) -> &'static [LoginField] {
        if self.register {
            &[
                LoginField::Username,
                LoginField::Password,
                LoginField::Repeat,
            ]
        } else {
            &[LoginField::Username, LoginField::Password]
        }
    }

    /// The focused field's editor.
    pub fn focused_mut(&mut self) -> &mut LineEditor {
        match self.focus {
            LoginField::Username => &mut self.username,
            LoginField::Password => &mut self.password,
            LoginField::Repeat => &mut self.repeat,
        }
    }
}

/// The change-password popup.
#[derive(Clone, Debug, Default)]
pub struct PasswdForm {
    /// The current password.
    pub old: LineEditor,
    /// The new password.
    pub new: LineEditor,
    /// The new password typed again.
    pub repeat: LineEditor,
    /// The field with focus.
    pub focus: PasswdField,
    /// Why the last Enter did not submit.
    pub error: Option<String>,
}

/// A field of the change-password popup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PasswdField {
    /// The current password.
    #[default]
    Current,
    /// The new password.
    New,
    /// The new password again.
    Repeat,
}

impl PasswdForm {
    /// The fields, top to bottom.
    pub const FIELDS: &[PasswdField] =
        &[PasswdField::Current, PasswdField::New, PasswdField::Repeat];

    /// The focused field's editor.
    pub fn focused_mut(&mut self) -> &mut LineEditor {
        match self.focus {
            PasswdField::Current => &mut self.old,
            PasswdField::New => &mut self.new,
            PasswdField::Repeat => &mut self.repeat,
        }
    }
}

/// What the screen shows.
#[derive(Clone, Debug)]
pub enum Screen {
    /// Asking for credentials.
    Login(Box<LoginForm>),
    /// Chatting.
    Chat,
}

/// One entry of a room's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A stored message.
    Message(Message),
    /// A local, dim line: a join, a topic change, an error.
    Notice {
        /// When.
        ts: UnixMillis,
        /// What.
        text: String,
    },
}

/// A room as the client keeps it.
#[derive(Clone, Debug)]
pub struct RoomState {
    /// The server's summary (unread and mention counts are kept current here).
    pub summary: RoomSummary,
    /// The timeline, ordered: messages by seq, notices after the message they followed.
    pub timeline: BTreeMap<(Seq, u32), Entry>,
    /// Numbering for notices that share a seq.
    notice_counter: u32,
    /// Whether older messages exist beyond the oldest loaded.
    pub has_older: bool,
    /// A request for older messages is in flight.
    pub loading_older: bool,
    /// A request for the newest page (first visit) is in flight.
    pub loading_latest: bool,
    /// The newest page has been loaded once; before that the timeline holds at most what
    /// arrived live, which is no context to open a room on.
    pub latest_loaded: bool,
    /// Rows scrolled up from the bottom (0: following the newest).
    pub scroll: usize,
    /// What was unread when I entered the room: a "new" divider goes above the first of
    /// those messages, until I leave the room.
    pub new_after: Option<Unread>,
    /// The member list, once fetched.
    pub members: Vec<Member>,
    /// The member list may be out of date (fetched before a reconnect, when presence updates
    /// were missed): it is fetched again when the room is shown.
    pub members_stale: bool,
    /// Who is muted here, by name, and until when (`None`: until unmuted): fetched with the
    /// member list, kept by the mute events.
    pub muted: HashMap<String, Option<UnixMillis>>,
    /// Who is typing, with when they last said so.
    pub typing: Vec<(String, UnixMillis)>,
    /// Messages being written (a bot's streamed reply), by draft id, shown after the timeline
    /// until they end.
    pub drafts: BTreeMap<u64, Draft>,
}

impl RoomState {
    fn new(summary: RoomSummary) -> Self {
        Self {
            has_older: summary.latest_seq > 0,
            summary,
            timeline: BTreeMap::new(),
            notice_counter: 0,
            loading_older: false,
            loading_latest: false,
            latest_loaded: false,
            scroll: 0,
            new_after: None,
            members: Vec::new(),
            members_stale: false,
            muted: HashMap::new(),
            typing: Vec::new(),
            drafts: BTreeMap::new(),
        }
    }

    /// The newest message seq held.
    pub fn newest_seq(&self) -> Seq {
        self.timeline
            .values()
            .rev()
            .find_map(|e| match e {
                Entry::Message(m) => Some(m.seq),
                Entry::Notice { .. } => None,
            })
            .unwrap_or(0)
    }

    /// The oldest message seq held.
    pub fn oldest_seq(&self) -> Option<Seq> {
        self.timeline.values().find_map(|e| match e {
            Entry::Message(m) => Some(m.seq),
            Entry::Notice { .. } => None,
        })
    }

    /// Adds a message unless it is already there. True if it was new.
    pub fn insert_message(&mut self, message: Message) -> bool {
        let key = (message.seq, 0);
        if self.timeline.contains_key(&key) {
            return false;
        }
        self.summary.latest_seq = self.summary.latest_seq.max(message.seq);
        self.timeline.insert(key, Entry::Message(message));
        true
    }

    /// Adds a local notice after the newest message — loaded or not: in a room whose history
    /// has not come yet (one just joined) it goes after the messages the room list counts.
    pub fn notice(&mut self, ts: UnixMillis, text: impl Into<String>) {
        self.notice_counter += 1;
        let key = (
            self.newest_seq().max(self.summary.latest_seq),
            self.notice_counter,
        );
        self.timeline.insert(
            key,
            Entry::Notice {
                ts,
                text: text.into(),
            },
        );
    }

    /// The display name with its sigil: `#room` or `@user`.
    pub fn label(&self) -> String {
        match self.summary.kind {
            RoomKind::Direct => format!("@{}", self.summary.name),
            _ => format!("#{}", self.summary.name),
        }
    }
}

/// A member list in the order the server sends it: owner, moderators, then by name.
fn sort_as_the_server_does(members: &mut [Member]) {
    members.sort_by(|a, b| {
        b.role.cmp(&a.role).then_with(|| {
            a.user
                .username
                .to_lowercase()
                .cmp(&b.user.username.to_lowercase())
        })
    });
}

/// What was unread in a room when I entered it, for its "new" divider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unread {
    /// My read marker then.
    pub after: Seq,
    /// The room's newest message then, as far as I knew.
    pub through: Seq,
    /// How many of the messages between were counted as unread: others' messages, not room
    /// notices. Once that many are held, the first of them is known to be the first unread,
    /// even when the history before them has not come yet (they arrived live).
    pub count: u32,
}

/// Work for the runtime to do on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Log in or register with the login form's fields.
    Login {
        /// User name.
        username: String,
        /// Password.
        password: String,
        /// Register first.
        register: bool,
    },
    /// Post a message.
    Send {
        /// Where.
        room: RoomId,
        /// What.
        text: String,
    },
    /// Open a direct chat, then post `text` if any.
    Direct {
        /// With whom.
        user: String,
        /// What to send.
        text: Option<String>,
    },
    /// Join a room by name.
    Join(String),
    /// Leave a room.
    Leave(RoomId),
    /// Create a room and invite people.
    Create {
        /// Name.
        name: String,
        /// Invite-only.
        private: bool,
        /// Invitees.
        invite: Vec<String>,
    },
    /// Invite a user.
    Invite {
        /// Where.
        room: RoomId,
        /// Whom.
        user: String,
    },
    /// Remove a member.
    Kick {
        /// Where.
        room: RoomId,
        /// Whom.
        user: String,
        /// Why.
        reason: Option<String>,
    },
    /// Ban a user from a room.
    Ban {
        /// Where.
        room: RoomId,
        /// Whom.
        user: String,
        /// Why.
        reason: Option<String>,
    },
    /// Lift a ban.
    Unban {
        /// Where.
        room: RoomId,
        /// Whom.
        user: String,
    },
    /// Fetch a room's bans (shown in the room as notices).
    Bans(RoomId),
    /// Mute a member of a room.
    Mute {
        /// Where.
        room: RoomId,
        /// Whom.
        user: String,
        /// For how long (`None`: until unmuted).
        secs: Option<u64>,
        /// Why.
        reason: Option<String>,
    },
    /// Lift a mute.
    Unmute {
        /// Where.
        room: RoomId,
        /// Whom.
        user: String,
    },
    /// Fetch a room's mutes (shown in the room as notices).
    Mutes(RoomId),
    /// Delete what a user posted in a room lately (all of it, request after request).
    Purge {
        /// Where.
        room: RoomId,
        /// Whose messages.
        user: String,
        /// How far back, in seconds.
        secs: u64,
    },
    /// Change a member's role.
    SetRole {
        /// Where.
        room: RoomId,
        /// Whose.
        user: String,
        /// To what.
        role: RoomRole,
    },
    /// Rename a room.
    Rename {
        /// Which.
        room: RoomId,
        /// Its new name.
        name: String,
    },
    /// Set a topic.
    Topic {
        /// Where.
        room: RoomId,
        /// What.
        topic: String,
    },
    /// Fetch messages older than `before`.
    LoadOlder {
        /// Where.
        room: RoomId,
        /// Older than this seq.
        before: Seq,
    },
    /// Fetch the newest page of a room (first visit).
    LoadLatest(RoomId),
    /// Fetch everything after `after` (after a reconnect). The start is fixed when the room
    /// list arrives, from the newest message held then: live messages applied before the fetch
    /// runs must not move it past the gap.
    CatchUp {
        /// Where.
        room: RoomId,
        /// Newer than this seq.
        after: Seq,
    },
    /// Move the read marker.
    MarkRead {
        /// Where.
        room: RoomId,
        /// Up to.
        seq: Seq,
    },
    /// Fetch a room's members.
    Members(RoomId),
    /// Fetch a room a message came from before I knew of it (with its members).
    FetchRoom(RoomId),
    /// Fetch everyone's presence again (after a reconnect), for the users already known.
    RefreshPresence,
    /// Fetch public rooms (shown as a notice).
    PublicRooms,
    /// Fetch users (shown as a notice).
    Users,
    /// Set away or back.
    Presence {
        /// Away (true) or back.
        away: bool,
        /// Status text.
        message: Option<String>,
    },
    /// Tell the room I am typing.
    Typing(RoomId),
    /// Tell the server this connection is idle (`true`) or in use again (`false`).
    Idle(bool),
    /// Change the password.
    ChangePassword {
        /// The current password.
        old: String,
        /// The new one.
        new: String,
    },
    /// Log out and quit.
    Logout,
    /// Quit.
    Quit,
    /// Ring the terminal bell.
    Bell,
    /// Start (or, after a reconnect, continue) a file transfer.
    StartTransfer {
        /// Its number in the transfers panel.
        id: u32,
        /// What to transfer.
        request: TransferRequest,
    },
    /// Cancel a running transfer.
    CancelTransfer(u32),
    /// List a room's files (shown as a notice).
    ListFiles(RoomId),
    /// Delete a message.
    DeleteMessage {
        /// Where.
        room: RoomId,
        /// Which.
        seq: Seq,
    },
    /// Replace the text of a message of mine.
    EditMessage {
        /// Where.
        room: RoomId,
        /// Which.
        seq: Seq,
        /// The new text.
        text: String,
    },
    /// A server admin's `/user …` for another account (answered with `account_done`).
    Account(AccountAction),
    /// Search messages (answered with `search_loaded` or `search_failed`).
    Search {
        /// Which search, for the answer.
        serial: u64,
        /// The words.
        query: String,
        /// Only this room (`None`: all mine).
        room: Option<RoomId>,
        /// Only results older than this one (`None`: from the newest).
        before: Option<MessageId>,
    },
}

/// The time zone message times are shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// UTC (tests and snapshots, which must not depend on the machine's zone).
    Utc,
    /// The machine's zone, with the offset in force at each message's own time, so times stay
    /// right across a daylight-saving change while the client runs and in history from before
    /// one.
    Local,
}

impl Clock {
    /// Seconds to add to UTC at `unix_secs`.
    pub fn offset_at(self, unix_secs: i64) -> i64 {
        use chrono::{Offset, TimeZone};
        match self {
            Clock::Utc => 0,
            Clock::Local => chrono::Local
                .timestamp_opt(unix_secs, 0)
                .single()
                .map_or(0, |t| i64::from(t.offset().fix().local_minus_utc())),
        }
    }
}

/// The whole client state.
#[derive(Clone, Debug)]
pub struct App {
    /// `HOST:PORT`.
    pub server: String,
    /// Me, once logged in.
    pub me: Option<UserSummary>,
    /// Login or chat.
    pub screen: Screen,
    /// The connection.
    pub connection: ConnectionState,
    /// My rooms by id.
    pub rooms: HashMap<RoomId, RoomState>,
    /// The room shown.
    pub current: Option<RoomId>,
    /// The message input.
    pub input: LineEditor,
    /// Show the member list.
    pub show_members: bool,
    /// Show the help popup.
    pub show_help: bool,
    /// Rows the help popup is scrolled down (clamped to what there is when drawn).
    pub help_scroll: usize,
    /// Presence of users I share rooms with.
    pub presence: HashMap<UserId, (String, PresenceStatus)>,
    /// Presence changed while the connection was down: ask again once it is back.
    presence_stale: bool,
    /// A one-line status message (errors, confirmations), with whether it is an error.
    pub flash: Option<(String, bool)>,
    /// When the flash was set: it goes after [`FLASH_SHOWN_MS`] (or on Esc).
    flash_at: UnixMillis,
    /// Ring the bell on mentions.
    pub bell_on_mention: bool,
    /// Away by itself after a while without input (see [`super::idle`]).
    pub idleness: super::idle::Idleness,
    /// A notice for the room shown once the room list is in (after logging in).
    greeting: Option<String>,
    /// Rooms whose read marker should move on the next tick.
    pending_read: Vec<RoomId>,
    /// The last typing notice sent (ms), to send at most one per couple of seconds.
    last_typing_sent: UnixMillis,
    /// The current time (ms), set by ticks.
    pub now: UnixMillis,
    /// Tab completion in progress: the candidates, which one is shown, where the word starts,
    /// and the input as completion left it (any other edit ends the cycle).
    completion: Option<(Vec<String>, usize, usize, String)>,
    /// The message area's size (columns, rows), for paging.
    pub viewport: (u16, u16),
    /// The terminal's size (columns, rows), for scrolling the help popup.
    pub screen_size: (u16, u16),
    /// The change-password popup, when open.
    pub passwd: Option<PasswdForm>,
    /// How message times are shown.
    pub clock: Clock,
    /// The server's AI bot, as the server names it (`None`: no bot, or not connected yet).
    pub ai_bot: Option<String>,
    /// The server's longest message in characters, once connected: a longer one stays in the
    /// input to be shortened instead of being sent and refused.
    pub max_message_chars: Option<u32>,
    /// File transfers, oldest first (finished ones are pruned).
    pub transfers: Vec<TransferView>,
    /// The number of the newest transfer.
    pub next_transfer: u32,
    /// Show the transfers panel.
    pub show_transfers: bool,
    /// The search results view, when open (it takes the message pane's place).
    pub search: Option<SearchView>,
    /// The number of the newest search.
    pub next_search: u64,
    /// A message opened from the search results, until it is in view.
    pub jump: Option<Jump>,
    /// The message opened from the search results, marked in its room until the room is
    /// scrolled back to the bottom or left.
    pub highlight: Option<(RoomId, Seq)>,
    /// The message of mine being edited (`/edit` alone): the input holds its new text.
    pub editing: Option<Editing>,
    /// A deletion asked for (`/delete`, `/purge`), waiting for Enter.
    pub confirming: Option<Confirming>,
    /// I am away, with this status text (may be empty); `None`: not away, as far as I know.
    pub away: Option<String>,
    /// The away status `/away` set from here, until `/back` or the server says I am online:
    /// what a reconnect puts back. Not an away the server inferred from idleness, which a
    /// resumed connection would otherwise turn into a chosen one that no key ends.
    pub away_chosen: Option<String>,
    /// `/who` asked to name the members of this room before its list had come.
    who_waiting: Option<RoomId>,
    /// Live messages for rooms not known yet, while those are fetched.
    pub(super) arrivals: Arrivals,
    /// My `/user promote|demote` told once, by its event or its answer.
    pub(super) admin_echoes: AdminEchoes,
}

impl App {
    /// A fresh client for `server`, on the login screen.
    pub fn new(server: impl Into<String>, username: Option<&str>) -> Self {
        let mut form = LoginForm::default();
        if let Some(name) = username {
            form.username.set_text(name);
            form.focus = LoginField::Password;
        }
        Self {
            server: server.into(),
            me: None,
            screen: Screen::Login(Box::new(form)),
            connection: ConnectionState::Connecting,
            rooms: HashMap::new(),
            current: None,
            input: LineEditor::new(),
            show_members: true,
            show_help: false,
            help_scroll: 0,
            presence: HashMap::new(),
            presence_stale: false,
            flash: None,
            flash_at: 0,
            bell_on_mention: true,
            idleness: super::idle::Idleness::default(),
            greeting: None,
            pending_read: Vec::new(),
            last_typing_sent: 0,
            now: 0,
            completion: None,
            viewport: (80, 20),
            screen_size: (80, 24),
            passwd: None,
            clock: Clock::Utc,
            ai_bot: None,
            max_message_chars: None,
            transfers: Vec::new(),
            next_transfer: 0,
            show_transfers: false,
            search: None,
            next_search: 0,
            jump: None,
            highlight: None,
            editing: None,
            confirming: None,
            away: None,
            away_chosen: None,
            who_waiting: None,
            arrivals: Arrivals::default(),
            admin_echoes: AdminEchoes::default(),
        }
    }

    /// Rooms in list order: named rooms by name, then direct chats by name.
    pub fn room_order(&self) -> Vec<RoomId> {
        let mut rooms: Vec<&RoomState> = self.rooms.values().collect();
        rooms.sort_by_key(|r| {
            (
                r.summary.kind == RoomKind::Direct,
                r.summary.name.to_lowercase(),
            )
        });
        rooms.iter().map(|r| r.summary.id).collect()
    }

    /// The room shown.
    pub fn current_room(&self) -> Option<&RoomState> {
        self.current.and_then(|id| self.rooms.get(&id))
    }

    /// Found as the server finds mentions when it counts them, so the highlight and the
    /// room's mention count agree.
    fn mentions_me(&self, text: &str) -> bool {
        self.me
            .as_ref()
            .is_some_and(|me| chatroom_protocol::mentions::mentions_user(text, &me.username))
    }

    /// Whether a message mentions me (for highlighting).
    pub fn is_mention(&self, message: &Message) -> bool {
        matches!(message.kind, MessageKind::Text | MessageKind::Edited { .. })
            && self.me.as_ref().is_some_and(|me| me.id != message.sender)
            && self.mentions_me(&message.text)
    }

    // ---- results from the runtime ----

    /// Logged in: switch to the chat screen.
    pub fn logged_in(&mut self, me: UserSummary) {
        let registered = matches!(&self.screen, Screen::Login(form) if form.register);
        if registered && me.is_admin {
            // Nothing else would tell them: the server made the first account its admin.
            self.greeting = Some(FIRST_ACCOUNT_IS_ADMIN.to_string());
        }
        self.me = Some(me);
        self.screen = Screen::Chat;
        self.connection = ConnectionState::Connected;
        self.flash = None;
    }

    /// A new account's name was refused (taken, or against the rules): the name is what to
    /// change, so the form goes back to it, the passwords kept as typed.
    pub fn login_name_refused(&mut self, error: String) {
        if let Screen::Login(form) = &mut self.screen {
            form.busy = false;
            form.focus = LoginField::Username;
            form.error = Some(error);
        }
    }

    /// A login attempt failed: the passwords are typed again.
    pub fn login_failed(&mut self, error: String) {
        if let Screen::Login(form) = &mut self.screen {
            form.busy = false;
            form.password.set_text("");
            form.repeat.set_text("");
            if form.focus == LoginField::Repeat {
                form.focus = LoginField::Password;
            }
            form.error = Some(error);
        }
    }

    /// The room list arrived (at login or after a reconnect). Returns the history fetches needed
    /// to catch up: for a room already held, everything after its newest seq.
    pub fn rooms_loaded(&mut self, rooms: Vec<RoomSummary>) -> Vec<Action> {
        let mut actions = Vec::new();
        let ids: Vec<RoomId> = rooms.iter().map(|r| r.id).collect();
        self.rooms.retain(|id, _| ids.contains(id));
        for summary in rooms {
            match self.rooms.get_mut(&summary.id) {
                Some(room) => {
                    // Keep the timeline; the gap since the newest held seq is fetched.
                    let newest = room.newest_seq();
                    room.summary = summary.clone();
                    if room.oldest_seq().is_none() {
                        room.has_older = summary.latest_seq > 0;
                    }
                    if summary.latest_seq > newest && newest > 0 {
                        actions.push(Action::CatchUp {
                            room: summary.id,
                            after: newest,
                        });
                    }
                }
                None => {
                    self.rooms.insert(summary.id, RoomState::new(summary));
                }
            }
        }
        for id in ids {
            actions.extend(self.release_held(id));
        }
        if self.current.is_none_or(|c| !self.rooms.contains_key(&c)) {
            self.current = self
                .rooms
                .values()
                .find(|r| r.summary.name == "public")
                .map(|r| r.summary.id)
                .or_else(|| self.room_order().first().copied());
        }
        if let Some(current) = self.current {
            actions.extend(self.enter_room(current));
        }
        if let Some(greeting) = self.greeting.take() {
            self.notice(greeting);
        }
        if std::mem::take(&mut self.presence_stale) {
            actions.push(Action::RefreshPresence);
        }
        actions
    }

    /// A page of history arrived; merged without duplicates, in seq order.
    pub fn history_loaded(&mut self, page: HistoryPage, older: bool) {
        let Some(room) = self.rooms.get_mut(&page.room) else {
            return;
        };
        if older {
            room.loading_older = false;
            room.has_older = page.has_more;
        } else if room.oldest_seq().is_none() {
            room.has_older = page.messages.first().is_some_and(|m| m.seq > 1);
        }
        for message in page.messages {
            room.insert_message(message);
        }
    }

    /// The newest page of a room arrived (asked for on its first visit).
    pub fn latest_loaded(&mut self, page: HistoryPage) {
        if let Some(r) = self.rooms.get_mut(&page.room) {
            r.loading_latest = false;
            r.latest_loaded = true;
            // Live messages may be held already; the page reaches further back than they do.
            if let Some(first) = page.messages.first() {
                let oldest = r.oldest_seq().map_or(first.seq, |held| held.min(first.seq));
                r.has_older = oldest > 1;
            }
        }
        let room = page.room;
        self.history_loaded(page, false);
        self.scroll_to_divider(room);
    }

    /// A request for the newest page could not be sent or failed: the next visit asks again.
    pub fn latest_failed(&mut self, room: RoomId) {
        if let Some(r) = self.rooms.get_mut(&room) {
            r.loading_latest = false;
        }
        self.jump = self.jump.filter(|j| j.room != room);
    }

    /// A request for older messages could not be sent or failed: PgUp may ask again.
    pub fn older_failed(&mut self, room: RoomId) {
        if let Some(r) = self.rooms.get_mut(&room) {
            r.loading_older = false;
        }
        self.jump = self.jump.filter(|j| j.room != room);
    }

    /// `/who` with the member list open: the current room's members as a notice, marked as
    /// the list marks them (★ owner, + moderator).
    fn list_members_here(&mut self) {
        let Some(id) = self.current else {
            return;
        };
        let Some(room) = self.rooms.get(&id) else {
            return;
        };
        if room.members.is_empty() {
            // Not fetched yet: named once it comes (`members_loaded`).
            self.who_waiting = Some(id);
            return;
        }
        let names: Vec<String> = room
            .members
            .iter()
            .map(|m| {
                let role = match m.role {
                    RoomRole::Owner => "★",
                    RoomRole::Moderator => "+",
                    RoomRole::Member => "",
                };
                let status = match m.status {
                    PresenceStatus::Online => "",
                    PresenceStatus::Away => " (away)",
                    PresenceStatus::Offline => " (offline)",
                };
                format!("{role}{}{status}", m.user.username)
            })
            .collect();
        let text = format!(
            "{} members of {}: {}",
            names.len(),
            room.label(),
            names.join("  ")
        );
        self.notice(text);
    }

    /// The member list of a room arrived.
    pub fn members_loaded(&mut self, room: RoomId, members: Vec<Member>) {
        for m in &members {
            self.presence
                .insert(m.user.id, (m.user.username.clone(), m.status));
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            // The list is newer than any count the room came with (a room just created, with
            // its invitees joining before its summary came back).
            r.summary.member_count = u32::try_from(members.len()).unwrap_or(u32::MAX);
            r.members = members;
            r.members_stale = false;
        }
        if self.who_waiting == Some(room) {
            self.who_waiting = None;
            if self.current == Some(room) {
                self.list_members_here();
            }
        }
    }

    /// A room I created, with its members once the invitations went out: shown at once, its
    /// member list whole (me, its owner, included).
    pub fn room_created(&mut self, info: RoomInfo) -> Vec<Action> {
        let id = info.room.id;
        self.on_event(Event::RoomUpdated(info.room));
        self.members_loaded(id, info.members);
        self.enter_room(id)
    }

    /// My own presence, from the server or from a `/away` or `/back` it accepted.
    pub fn my_presence(&mut self, status: PresenceStatus, message: Option<String>) {
        self.away = (status == PresenceStatus::Away).then(|| message.unwrap_or_default());
        if status == PresenceStatus::Online {
            // Back, from here or from another of my clients.
            self.away_chosen = None;
        }
    }

    /// The server took my `/away` or `/back`.
    pub fn presence_chosen(&mut self, status: PresenceStatus, message: Option<String>) {
        self.my_presence(status, message);
        self.away_chosen = self.away.clone();
    }

    fn is_me(&self, user: UserId) -> bool {
        self.me.as_ref().is_some_and(|me| me.id == user)
    }

    /// Everyone's presence, fetched again after a reconnect: updates the users already known
    /// (the completion list and the member lists), adds nobody.
    pub fn presence_refreshed(&mut self, users: Vec<UserPresence>) {
        for u in users {
            if self.is_me(u.user.id) {
                self.my_presence(u.status, u.status_message.clone());
            }
            let Some((name, status)) = self.presence.get_mut(&u.user.id) else {
                continue;
            };
            *name = u.user.username;
            *status = u.status;
            for room in self.rooms.values_mut() {
                if let Some(m) = room.members.iter_mut().find(|m| m.user.id == u.user.id) {
                    m.status = u.status;
                }
            }
        }
    }

    /// Users arrived (for `/users`): shown as a notice in the current room.
    pub fn users_loaded(&mut self, users: Vec<UserPresence>) {
        if let Some(me) = users.iter().find(|u| self.is_me(u.user.id)) {
            self.my_presence(me.status, me.status_message.clone());
        }
        let list: Vec<String> = users
            .iter()
            .map(|u| {
                let mark = match u.status {
                    PresenceStatus::Online => "●",
                    PresenceStatus::Away => "◐",
                    PresenceStatus::Offline => "○",
                };
                match u.status_message.as_deref().filter(|m| !m.trim().is_empty()) {
                    Some(note) => format!("{mark} {} ({note})", u.user.username),
                    None => format!("{mark} {}", u.user.username),
                }
            })
            .collect();
        let now = self.now;
        if let Some(room) = self.current.and_then(|c| self.rooms.get_mut(&c)) {
            room.notice(now, format!("users: {}", list.join("  ")));
        }
    }

    /// Shows a line in the status bar (errors in red).
    pub fn flash(&mut self, text: impl Into<String>, error: bool) {
        self.flash = Some((text.into(), error));
        self.flash_at = self.now;
    }

    /// A message that could not be sent: back into the input to send again, unless something
    /// new was typed meanwhile (it is in the input history either way: ↑).
    pub fn unsent(&mut self, text: &str, why: &str) {
        if self.input.text().is_empty() {
            self.input.set_text(text);
            self.flash(format!("not sent ({why}); it is back in the input"), true);
        } else {
            self.flash(format!("not sent ({why}); ↑ brings it back"), true);
        }
    }

    /// A room's bans, from `/bans`: one notice per ban in that room (newest first, as the
    /// server sends them), or a notice that there are none.
    pub fn bans_loaded(&mut self, room: RoomId, bans: Vec<BanInfo>) {
        let lines: Vec<String> = bans
            .iter()
            .map(|b| {
                let when = super::ui::when(self, b.since);
                match &b.reason {
                    Some(why) => format!("banned: {}, by {} ({when}): {why}", b.username, b.by),
                    None => format!("banned: {}, by {} ({when})", b.username, b.by),
                }
            })
            .collect();
        self.notices_in(room, lines, |label| {
            format!("no one is banned from {label}")
        });
    }

    /// A room's files, from `/files`: one notice per file in that room (newest first, as the
    /// server sends them), each with the command that saves it, or a notice that there are none.
    pub fn files_loaded(&mut self, room: RoomId, files: Vec<FileInfo>) {
        let lines: Vec<String> = files
            .iter()
            .map(|f| {
                format!(
                    "/download {}: {} ({}, {})",
                    f.id.0,
                    f.name,
                    crate::output::human_bytes(f.size),
                    f.uploader_name
                )
            })
            .collect();
        self.notices_in(room, lines, |label| {
            format!("no files in {label} yet; /upload PATH")
        });
    }

    /// A list the server sent for `room` (bans, mutes, files), one notice per line in that room, or
    /// `none` (given the room's label) when it is empty. Nothing if I have left the room.
    pub(super) fn notices_in(
        &mut self,
        room: RoomId,
        lines: Vec<String>,
        none: impl FnOnce(&str) -> String,
    ) {
        let now = self.now;
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        if lines.is_empty() {
            r.notice(now, none(&r.label()));
        }
        for line in lines {
            r.notice(now, line);
        }
    }

    /// My newest message in the current room that `wanted` accepts; the flash says why not
    /// when there is none (`what` is the verb: "edit", "delete").
    pub(super) fn my_newest_here(
        &mut self,
        what: &str,
        wanted: impl Fn(&MessageKind) -> bool,
    ) -> Option<Message> {
        let me = self.me.as_ref().map(|m| m.id);
        let Some(room) = self.current_room() else {
            self.flash("you are in no room", true);
            return None;
        };
        let found = room.timeline.values().rev().find_map(|e| match e {
            Entry::Message(m) if Some(m.sender) == me && wanted(&m.kind) => Some(m.clone()),
            _ => None,
        });
        if found.is_none() {
            self.flash(format!("you have no message here to {what}"), true);
        }
        found
    }

    /// Adds a notice to the current room.
    pub fn notice(&mut self, text: impl Into<String>) {
        let now = self.now;
        if let Some(room) = self.current.and_then(|c| self.rooms.get_mut(&c)) {
            room.notice(now, text);
        }
    }

    /// The connection dropped.
    pub fn disconnected(&mut self, reason: String, retry_at: UnixMillis) {
        self.idle_forget();
        // Their ends would never reach us; finished replies come back with the catch-up.
        for room in self.rooms.values_mut() {
            room.drafts.clear();
            // A page asked for on this connection will not come: it may be asked for again.
            room.loading_older = false;
            room.loading_latest = false;
            // No presence updates come while the connection is down.
            room.members_stale = true;
        }
        self.presence_stale = true;
        self.forget_arrivals();
        self.admin_echoes.forget();
        // Nor will a search answer or the pages a jump waits for.
        if let Some(view) = &mut self.search {
            view.loading = false;
        }
        self.jump = None;
        self.connection = ConnectionState::Disconnected { reason, retry_at };
    }

    /// A reconnect is under way.
    pub fn reconnecting(&mut self) {
        self.connection = ConnectionState::Connecting;
    }

    // ---- server events ----

    /// Applies an event from the server. Returns what the runtime should do as a result.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::MessageDeleted { room, seq, .. } => self.message_deleted(room, seq),
            Event::MessageEdited(message) => self.message_edited(message),
            Event::Muted {
                room,
                user,
                username,
                by,
                reason,
                until,
            } => self.muted(room, user, username, &by, reason.as_deref(), until),
            Event::Unmuted {
                room,
                user,
                username,
                by,
            } => self.unmuted(room, user, &username, &by),
            Event::DraftUpdated(draft) => {
                if let Some(room) = self.rooms.get_mut(&draft.room) {
                    let sender = draft.sender_name.clone();
                    room.typing.retain(|(name, _)| *name != sender);
                    room.drafts.insert(draft.draft, draft);
                    while room.drafts.len() > MAX_DRAFTS {
                        room.drafts.pop_first();
                    }
                }
            }
            Event::DraftEnded { room, draft, .. } => {
                if let Some(room) = self.rooms.get_mut(&room) {
                    room.drafts.remove(&draft);
                }
            }
            Event::Message(message) => {
                // A room notice (a join, a kick, a topic) is the room's log, not news.
                let news = message.kind != MessageKind::System;
                let mention = news && self.is_mention(&message);
                let mine = self.me.as_ref().is_some_and(|me| me.id == message.sender);
                // The search results cover the room shown.
                let is_current = self.current == Some(message.room) && self.search.is_none();
                let Some(room) = self.rooms.get_mut(&message.room) else {
                    return self.hold_for_unknown_room(message);
                };
                let sender = message.sender_name.clone();
                room.typing.retain(|(name, _)| *name != sender);
                // The room list's counts already hold every message up to its latest seq; one
                // of those arriving live (queued while the list was fetched) is not new news.
                let counted = message.seq <= room.summary.latest_seq;
                if !room.insert_message(message.clone()) {
                    return actions;
                }
                let seen = is_current && room.scroll == 0;
                if mine && message.kind == MessageKind::Text {
                    // The server moved my read marker to my message (whichever session sent
                    // it), telling my other sessions nothing else: what came before it is read.
                    let (room, seq) = (message.room, message.seq);
                    self.marker_moved(room, seq);
                } else if mine || seen {
                    room.summary.last_read_seq = room.summary.last_read_seq.max(message.seq);
                    if seen && !mine {
                        self.pending_read.push(message.room);
                    }
                } else if !counted && news {
                    room.summary.unread += 1;
                    if mention {
                        room.summary.mentions += 1;
                    }
                }
                // Nor does it ring: the count is how it was told, as for every other mention
                // from before the list.
                if mention && !counted && self.bell_on_mention {
                    actions.push(Action::Bell);
                }
            }
            // The room's notice of a join, a leave, a topic or a role comes as a message of its
            // own (stored, so it is in the history too); these events change the state.
            Event::MemberJoined { room, member } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.summary.member_count += 1;
                    // A list not fetched yet stays empty, to be fetched whole: one begun with
                    // whoever joined since would leave out everyone before them.
                    if !r.members.is_empty()
                        && !r.members.iter().any(|m| m.user.id == member.user.id)
                    {
                        r.members.push(member);
                        sort_as_the_server_does(&mut r.members);
                    }
                }
            }
            Event::MemberLeft { room, user, .. } => {
                let me = self.me.as_ref().is_some_and(|me| me.id == user);
                if me {
                    self.remove_room(room);
                } else if let Some(r) = self.rooms.get_mut(&room) {
                    r.summary.member_count = r.summary.member_count.saturating_sub(1);
                    r.members.retain(|m| m.user.id != user);
                }
            }
            Event::Presence(updates) => {
                for u in updates {
                    if self.is_me(u.user) {
                        self.my_presence(u.status, u.status_message.clone());
                    }
                    for room in self.rooms.values_mut() {
                        if let Some(m) = room.members.iter_mut().find(|m| m.user.id == u.user) {
                            m.status = u.status;
                        }
                    }
                    self.presence.insert(u.user, (u.username, u.status));
                }
            }
            Event::Typing { room, username, .. } => {
                let now = self.now;
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.typing.retain(|(name, _)| *name != username);
                    r.typing.push((username, now));
                }
            }
            Event::RoomUpdated(summary) => {
                let id = summary.id;
                match self.rooms.get_mut(&id) {
                    Some(r) => {
                        // One taken before messages I have (an announcement they overtook, see
                        // `arrivals`) would set their counts back: those stay as counted.
                        let held = r.summary.clone();
                        r.summary = summary;
                        if r.summary.latest_seq < held.latest_seq {
                            r.summary.latest_seq = held.latest_seq;
                            r.summary.last_read_seq =
                                r.summary.last_read_seq.max(held.last_read_seq);
                            r.summary.unread = held.unread;
                            r.summary.mentions = held.mentions;
                        }
                        // A summary may be older than the member list (the one a creation
                        // answered with, before the invitees joined): the list, kept by the
                        // join and leave events, has the count.
                        if !r.members.is_empty() && !r.members_stale {
                            r.summary.member_count =
                                u32::try_from(r.members.len()).unwrap_or(u32::MAX);
                        }
                    }
                    None => {
                        self.rooms.insert(id, RoomState::new(summary));
                        actions.extend(self.release_held(id));
                    }
                }
            }
            Event::TopicChanged { room, topic, .. } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.summary.topic = topic;
                }
            }
            Event::Kicked {
                room,
                room_name,
                by,
                reason,
            } => {
                self.remove_room(room);
                let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
                self.flash(format!("{by} removed you from #{room_name}{why}"), true);
            }
            Event::Banned {
                room,
                room_name,
                by,
                reason,
            } => {
                self.remove_room(room);
                let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
                self.flash(format!("{by} banned you from #{room_name}{why}"), true);
            }
            Event::RoleChanged {
                room, user, role, ..
            } => {
                let me = self.me.as_ref().is_some_and(|me| me.id == user);
                if let Some(r) = self.rooms.get_mut(&room) {
                    if let Some(m) = r.members.iter_mut().find(|m| m.user.id == user) {
                        m.role = role;
                    }
                    sort_as_the_server_does(&mut r.members);
                    if me {
                        r.summary.my_role = Some(role);
                    }
                }
            }
            // The room's notice says who renamed it and from what.
            Event::RoomRenamed { room, name, .. } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.summary.name = name;
                }
            }
            Event::ServerShutdown { reason } => {
                self.flash(format!("server: {reason}"), true);
            }
            Event::ReadMarker { room, seq } => self.marker_moved(room, seq),
            Event::AdminChanged {
                user,
                username,
                admin,
                by,
            } => self.admin_changed(user, &username, admin, &by),
        }
        actions
    }

    /// A server admin made `user` one, or took that away: the lists and `/info` follow, and
    /// everyone is told, as the original announced every admin action.
    fn admin_changed(&mut self, user: UserId, username: &str, admin: bool, by: &str) {
        if let Some(me) = self.me.as_mut().filter(|me| me.id == user) {
            me.is_admin = admin;
        }
        for room in self.rooms.values_mut() {
            if let Some(m) = room.members.iter_mut().find(|m| m.user.id == user) {
                m.user.is_admin = admin;
            }
        }
        let mine = self.me.as_ref().is_some_and(|me| me.username == by);
        // My own `/user promote|demote`, when its answer told it already.
        if mine && !self.admin_echoes.event_tells(username, admin) {
            return;
        }
        let (whom, whose) = if self.is_me(user) {
            ("you".to_string(), "your".to_string())
        } else {
            (username.to_string(), format!("{username}'s"))
        };
        let by = if mine { "you" } else { by };
        self.notice(if admin {
            format!("{by} made {whom} a server admin")
        } else {
            format!("{by} took away {whose} server admin role")
        });
    }

    /// My read marker in `room` moved to `seq` (from another session, or by a message of mine):
    /// nothing is unread when it reaches the newest message; short of that, the counts are
    /// those of the messages after it when the timeline holds them all, and stay as they were
    /// when it does not (the server's next room list puts them right).
    pub(super) fn marker_moved(&mut self, room: RoomId, seq: Seq) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let marker = r.summary.last_read_seq.max(seq);
        let latest = r.summary.latest_seq;
        let counts = if marker >= latest {
            Some((0, 0))
        } else {
            let after: Vec<&Message> = r
                .timeline
                .range((marker + 1, 0)..)
                .filter_map(|(_, e)| match e {
                    Entry::Message(m) => Some(m),
                    Entry::Notice { .. } => None,
                })
                .collect();
            (after.len() as u64 == latest - marker).then(|| {
                let news: Vec<&&Message> = after.iter().filter(|m| self.is_news(m)).collect();
                let mentions = news.iter().filter(|m| self.is_mention(m)).count();
                (news.len() as u32, mentions as u32)
            })
        };
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.summary.last_read_seq = marker;
        if let Some((unread, mentions)) = counts {
            r.summary.unread = unread;
            r.summary.mentions = mentions;
        }
    }

    /// Whether a message counts as unread news: someone else's, neither a room notice nor
    /// deleted.
    pub(super) fn is_news(&self, message: &Message) -> bool {
        !matches!(message.kind, MessageKind::System | MessageKind::Deleted)
            && !self.is_me(message.sender)
    }

    fn remove_room(&mut self, room: RoomId) {
        self.rooms.remove(&room);
        if self.current == Some(room) {
            self.current = self.room_order().first().copied();
        }
    }

    // ---- navigation ----

    /// Shows `room`: clears its counts, marks it read, and loads history on first visit.
    pub fn enter_room(&mut self, room: RoomId) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.rooms.contains_key(&room) {
            return actions;
        }
        let entering = self.current != Some(room);
        if entering {
            self.jump = None;
            self.highlight = None;
            // A deletion waiting for Enter was about the room left.
            self.confirming = None;
            // What the status line says is about the room left (an error there, a topic shown):
            // it would read as this one's.
            self.flash = None;
            // The divider of the room left goes with it.
            if let Some(left) = self.current.and_then(|c| self.rooms.get_mut(&c)) {
                left.new_after = None;
            }
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return actions;
        };
        let divided = r.summary.unread > 0 && (entering || r.new_after.is_none());
        if divided {
            r.new_after = Some(Unread {
                after: r.summary.last_read_seq,
                through: r.summary.latest_seq,
                count: r.summary.unread,
            });
        } else if entering {
            r.new_after = None;
        }
        self.current = Some(room);
        r.scroll = 0;
        r.summary.unread = 0;
        r.summary.mentions = 0;
        // Notices (a join, a topic change) or a few live messages may be all the timeline
        // holds: what counts is whether the newest page was loaded. Once: a room left and
        // entered again before the page came does not ask twice.
        if r.summary.latest_seq == 0 {
            // Nothing before now: whatever comes, comes live.
            r.latest_loaded = true;
        }
        if !r.latest_loaded && !r.loading_latest {
            r.loading_latest = true;
            actions.push(Action::LoadLatest(room));
        }
        if r.members.is_empty() || r.members_stale {
            actions.push(Action::Members(room));
        }
        if r.summary.latest_seq > r.summary.last_read_seq {
            r.summary.last_read_seq = r.summary.latest_seq;
            actions.push(Action::MarkRead {
                room,
                seq: r.summary.latest_seq,
            });
        }
        if divided {
            self.scroll_to_divider(room);
        }
        actions
    }

    /// Scrolls `room` (the current one, at the bottom) back so that its "new" divider is in
    /// view, when there are more unread rows than the pane shows: the first unread message
    /// then sits at the top, under the divider (and under its day's divider, when it is the
    /// first of its day: coming back on Monday, the top says Friday's news is Friday's).
    pub(super) fn scroll_to_divider(&mut self, room: RoomId) {
        if self.current != Some(room) || self.jump.is_some() {
            return;
        }
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        if r.scroll != 0 {
            return;
        }
        let Some((row, total)) = super::ui::unread_top_row(self, r, self.viewport.0) else {
            return;
        };
        let height = usize::from(self.viewport.1.max(1));
        if total - row <= height {
            return;
        }
        // Scrolled back, the pane shows a row less: the "more rows" marker takes the last one.
        let wanted = (total - row).saturating_sub(height.saturating_sub(1).max(1));
        let max = super::ui::max_scroll(total, height);
        if let Some(r) = self.rooms.get_mut(&room) {
            r.scroll = wanted.min(max);
        }
    }

    /// Moves `step` rooms along the list (wrapping).
    pub fn cycle_room(&mut self, step: isize) -> Vec<Action> {
        let order = self.room_order();
        if order.is_empty() {
            return Vec::new();
        }
        let at = self
            .current
            .and_then(|c| order.iter().position(|r| *r == c))
            .unwrap_or(0) as isize;
        let next = (at + step).rem_euclid(order.len() as isize) as usize;
        self.enter_room(order[next])
    }

    /// The next room with unread messages, mentions first.
    pub fn next_unread(&mut self) -> Vec<Action> {
        let order = self.room_order();
        let pick = order
            .iter()
            .find(|id| self.rooms[id].summary.mentions > 0)
            .or_else(|| order.iter().find(|id| self.rooms[id].summary.unread > 0))
            .copied();
        match pick {
            Some(room) => self.enter_room(room),
            None => {
                self.flash("no unread messages", false);
                Vec::new()
            }
        }
    }

    /// Scrolls the current room by `rows` (positive: back in time). Asks for older history
    /// when the top of what is loaded comes into view.
    pub fn scroll(&mut self, rows: isize, total_rows: usize) -> Vec<Action> {
        let height = usize::from(self.viewport.1.max(1));
        // The user scrolls: a message opened from the search results stops pulling the view.
        self.jump = None;
        let Some(room) = self.current.and_then(|c| self.rooms.get_mut(&c)) else {
            return Vec::new();
        };
        let max = super::ui::max_scroll(total_rows, height);
        room.scroll = (room.scroll as isize + rows).clamp(0, max as isize) as usize;
        let mut actions = Vec::new();
        if room.scroll + height / 2 >= max && rows > 0 && room.has_older && !room.loading_older {
            // With no message held yet (only notices, or the first page never came), the
            // newest page is what is older than everything held.
            let before = room
                .oldest_seq()
                .unwrap_or(room.summary.latest_seq.saturating_add(1));
            room.loading_older = true;
            actions.push(Action::LoadOlder {
                room: room.summary.id,
                before,
            });
        }
        if room.scroll == 0 {
            let id = room.summary.id;
            self.to_bottom(id);
        }
        actions
    }

    /// Shows the newest messages of `room` (the current one): what was unread there has been
    /// seen, so its counts go and its read marker moves on the next tick. Every way back to the
    /// bottom (scrolling, Esc, sending) comes through here.
    pub fn to_bottom(&mut self, room: RoomId) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.scroll = 0;
        self.highlight = None;
        if r.summary.unread > 0 || r.summary.mentions > 0 {
            r.summary.unread = 0;
            r.summary.mentions = 0;
            self.pending_read.push(room);
        }
    }

    /// A tick: expires typing notices and flushes read markers (at most one request per room
    /// per tick, however many messages arrived).
    pub fn tick(&mut self, now: UnixMillis) -> Vec<Action> {
        self.now = now;
        if self.flash.is_some() && now.saturating_sub(self.flash_at) >= FLASH_SHOWN_MS {
            self.flash = None;
        }
        for room in self.rooms.values_mut() {
            room.typing
                .retain(|(_, at)| now.saturating_sub(*at) < TYPING_SHOWN_MS);
        }
        let mut rooms = std::mem::take(&mut self.pending_read);
        rooms.sort();
        rooms.dedup();
        let mut actions: Vec<Action> = rooms
            .into_iter()
            .filter_map(|room| {
                let r = self.rooms.get(&room)?;
                Some(Action::MarkRead {
                    room,
                    seq: r.newest_seq().max(r.summary.last_read_seq),
                })
            })
            .collect();
        actions.extend(self.idle_tick());
        actions
    }

    // ---- input ----

    /// The user pressed Enter in the chat input.
    pub fn submit_input(&mut self) -> Vec<Action> {
        use super::commands::Command as C;
        self.completion = None;
        let line = self.input.submit();
        // A line sent past a question (`confirms`) answers it no.
        self.decline();
        if line.trim().is_empty() && self.editing.is_none() {
            return Vec::new();
        }
        // What the status line said was about what came before.
        self.flash = None;
        if let Some(editing) = self.editing.clone() {
            return self.submit_edit(editing, line);
        }
        let command = match super::commands::parse(&line) {
            Ok(command) => command,
            Err(e) => {
                // Back into the input to be corrected (a pasted text that happens to start
                // with `/` is not lost either: `//` sends it as it is).
                self.input.set_text(&line);
                let hint = match e {
                    super::commands::ParseError::Unknown(_) => " (// at the start sends a /)",
                    _ => "",
                };
                self.flash(format!("{e}{hint}"), true);
                return Vec::new();
            }
        };
        match &command {
            C::Say(text)
            | C::Ai(text)
            | C::Edit(Some(text))
            | C::Msg {
                text: Some(text), ..
            } if self.too_long(text) => {
                // The whole line, command and all, to be shortened and sent again.
                self.input.set_text(&line);
                return Vec::new();
            }
            C::Search { query, .. } if self.search_too_long(query) => {
                self.input.set_text(&line);
                return Vec::new();
            }
            C::Ai(_) if self.ai_bot_not_here() => {
                // Kept, to send again once the bot is invited.
                self.input.set_text(&line);
                return Vec::new();
            }
            _ => {}
        }
        if self.connection != ConnectionState::Connected && self.needs_server(&command) {
            // Kept, command and all, to send once the connection is back.
            self.unsent(&line, "not connected; waiting to reconnect");
            return Vec::new();
        }
        self.run_command(command)
    }

    /// Whether a command asks the server for something (it cannot be done offline), as opposed
    /// to what this client does by itself (switching rooms, the help, the panels).
    fn needs_server(&self, command: &super::commands::Command) -> bool {
        use super::commands::Command as C;
        match command {
            C::Join(name) => self.find_room(name).is_none(),
            C::Edit(text) => text.is_some(),
            C::Say(_)
            | C::Ai(_)
            | C::Msg { .. }
            | C::Leave(_)
            | C::Create { .. }
            | C::Invite(_)
            | C::Kick { .. }
            | C::Ban { .. }
            | C::Unban(_)
            | C::Bans
            | C::Mute { .. }
            | C::Unmute(_)
            | C::Mutes
            | C::Purge { .. }
            | C::Role { .. }
            | C::Topic(_)
            | C::Rename(_)
            | C::Who
            | C::PublicRooms
            | C::Users
            | C::Away(_)
            | C::Back
            | C::Files
            | C::Account(_)
            | C::Delete(_) => true,
            C::Enter(_)
            | C::ShowTopic
            | C::Rooms
            | C::Info
            | C::Passwd
            | C::Logout
            | C::Quit
            | C::Help
            | C::Members
            | C::Upload(_)
            | C::Download(_)
            | C::Cancel(_)
            | C::Transfers
            | C::Search { .. } => false,
        }
    }

    /// Whether `text` is over the server's limit; if so the flash says by how much.
    pub(super) fn too_long(&mut self, text: &str) -> bool {
        let Some(limit) = self.max_message_chars else {
            return false;
        };
        let chars = text.chars().count();
        if chars <= limit as usize {
            return false;
        }
        self.flash(
            format!(
                "{chars} characters: this server takes at most {limit}; shorten it by {}",
                chars - limit as usize
            ),
            true,
        );
        true
    }

    /// Whether the current room's member list shows the AI bot is not in it, so `/ai` would
    /// post a question nobody answers; if so the flash says how to reach the bot. A list not
    /// loaded yet says nothing: the question goes, as before.
    fn ai_bot_not_here(&mut self) -> bool {
        let (Some(bot), Some(room)) = (self.ai_bot.clone(), self.current_room()) else {
            return false;
        };
        if room.members.is_empty() || room.members_stale {
            return false;
        }
        let bot_lower = bot.to_lowercase();
        if room
            .members
            .iter()
            .any(|m| m.user.username.to_lowercase() == bot_lower)
        {
            return false;
        }
        let hint = match room.summary.kind {
            RoomKind::Direct => {
                format!("{bot} is not in this direct chat: /msg {bot} asks it on its own")
            }
            _ => format!(
                "{bot} is not in {}: /invite {bot} to ask it here, or /msg {bot}",
                room.label()
            ),
        };
        self.flash(hint, true);
        true
    }

    fn current_or_flash(&mut self) -> Option<RoomId> {
        if self.current.is_none() {
            self.flash("you are in no room; /join one", true);
        }
        self.current
    }

    /// A room of mine named in a command: `@name` is the direct chat with that user (or, with
    /// no such chat, the one with a deleted account of that name, which the server lists as
    /// `name (deleted)`), `#name` or a plain name a named room (never a direct chat, whatever
    /// its name).
    pub(super) fn find_room(&self, name: &str) -> Option<RoomId> {
        let (direct, name) = match name.strip_prefix('@') {
            Some(user) => (true, user),
            None => (false, name.strip_prefix('#').unwrap_or(name)),
        };
        let name = name.to_lowercase();
        let named = |wanted: &str| {
            self.room_order().into_iter().find(|id| {
                let summary = &self.rooms[id].summary;
                (summary.kind == RoomKind::Direct) == direct
                    && summary.name.to_lowercase() == wanted
            })
        };
        named(&name).or_else(|| {
            direct
                .then(|| named(&format!("{name} (deleted)")))
                .flatten()
        })
    }

    fn run_command(&mut self, command: super::commands::Command) -> Vec<Action> {
        use super::commands::Command as C;
        // A line sent from the input goes back to the room from the search results (a message
        // is sent to the room shown), except another search or the help.
        if !matches!(command, C::Search { .. } | C::Help) {
            self.close_search();
        }
        match command {
            C::Say(text) => match self.current_or_flash() {
                Some(room) => {
                    self.to_bottom(room);
                    vec![Action::Send { room, text }]
                }
                None => Vec::new(),
            },
            C::Join(name) => match self.find_room(&name) {
                Some(room) => self.enter_room(room),
                None => match name.strip_prefix('@') {
                    Some(user) => vec![Action::Direct {
                        user: user.to_string(),
                        text: None,
                    }],
                    None => vec![Action::Join(
                        name.strip_prefix('#').unwrap_or(&name).to_string(),
                    )],
                },
            },
            C::Enter(name) => match self.find_room(&name) {
                Some(room) => self.enter_room(room),
                None => {
                    self.flash(format!("you are not in {name}; /join it"), true);
                    Vec::new()
                }
            },
            C::Leave(name) => {
                let room = match name {
                    Some(name) => self.find_room(&name),
                    None => self.current,
                };
                match room.and_then(|id| self.rooms.get(&id)) {
                    Some(r) if r.summary.kind == RoomKind::Direct => {
                        self.flash("a direct chat cannot be left", true);
                        Vec::new()
                    }
                    Some(r) => vec![Action::Leave(r.summary.id)],
                    None => {
                        self.flash("no such room", true);
                        Vec::new()
                    }
                }
            }
            C::Create {
                name,
                private,
                invite,
            } => vec![Action::Create {
                name,
                private,
                invite,
            }],
            C::Invite(user) => self
                .current_or_flash()
                .map(|room| Action::Invite { room, user })
                .into_iter()
                .collect(),
            C::Kick { user, reason } => self
                .current_or_flash()
                .map(|room| Action::Kick { room, user, reason })
                .into_iter()
                .collect(),
            C::Ban { user, reason } => self
                .current_or_flash()
                .map(|room| Action::Ban { room, user, reason })
                .into_iter()
                .collect(),
            C::Unban(user) => self
                .current_or_flash()
                .map(|room| Action::Unban { room, user })
                .into_iter()
                .collect(),
            C::Mute { user, secs, reason } => self
                .current_or_flash()
                .map(|room| Action::Mute {
                    room,
                    user,
                    secs,
                    reason,
                })
                .into_iter()
                .collect(),
            C::Unmute(user) => self
                .current_or_flash()
                .map(|room| Action::Unmute { room, user })
                .into_iter()
                .collect(),
            C::Mutes => self
                .current_or_flash()
                .map(Action::Mutes)
                .into_iter()
                .collect(),
            C::Purge { user, secs } => {
                if let Some(room) = self.current_or_flash() {
                    self.ask_to_purge(room, user, secs);
                }
                Vec::new()
            }
            C::Bans => self
                .current_or_flash()
                .map(Action::Bans)
                .into_iter()
                .collect(),
            C::Role { user, role } => self
                .current_or_flash()
                .map(|room| Action::SetRole { room, user, role })
                .into_iter()
                .collect(),
            C::Msg { user, text } => vec![Action::Direct { user, text }],
            C::Topic(topic) => self
                .current_or_flash()
                .map(|room| Action::Topic { room, topic })
                .into_iter()
                .collect(),
            C::ShowTopic => {
                if let Some(topic) = self
                    .current_or_flash()
                    .and_then(|room| self.rooms.get(&room))
                    .map(|r| one_line(r.summary.topic.trim()))
                {
                    if topic.is_empty() {
                        self.flash("no topic set; /topic TEXT sets one", false);
                    } else {
                        self.flash(format!("topic: {topic}"), false);
                    }
                }
                Vec::new()
            }
            C::Rename(name) => self
                .current_or_flash()
                .map(|room| Action::Rename { room, name })
                .into_iter()
                .collect(),
            C::Who => {
                if self.show_members {
                    // The list is open already (or the terminal too narrow for it, or search
                    // in its place): name the members in the room instead of doing nothing.
                    self.list_members_here();
                }
                self.show_members = true;
                self.current.map(Action::Members).into_iter().collect()
            }
            C::Rooms => {
                let list: Vec<String> = self
                    .room_order()
                    .iter()
                    .map(|id| self.rooms[id].label())
                    .collect();
                self.notice(format!("your rooms: {}", list.join("  ")));
                Vec::new()
            }
            C::PublicRooms => vec![Action::PublicRooms],
            C::Users => vec![Action::Users],
            C::Info => {
                let me = self.me.as_ref().map_or("?".to_string(), |m| {
                    format!(
                        "{} (id {}{})",
                        m.username,
                        m.id,
                        if m.is_admin { ", admin" } else { "" }
                    )
                });
                let online = self
                    .presence
                    .values()
                    .filter(|(_, s)| *s != PresenceStatus::Offline)
                    .count();
                let count = |n: usize, one, many| crate::output::count_of(n as u64, one, many);
                let text = format!(
                    "you are {me} on {}; {}; {} online",
                    self.server,
                    count(self.rooms.len(), "room", "rooms"),
                    count(online, "user", "users"),
                );
                self.notice(text);
                Vec::new()
            }
            C::Away(message) => vec![Action::Presence {
                away: true,
                message,
            }],
            C::Back => vec![Action::Presence {
                away: false,
                message: None,
            }],
            C::Passwd => {
                self.open_passwd();
                Vec::new()
            }
            C::Logout => vec![Action::Logout],
            C::Quit => vec![Action::Quit],
            C::Help => {
                self.open_help();
                Vec::new()
            }
            C::Members => {
                self.show_members = !self.show_members;
                Vec::new()
            }
            C::Upload(path) => self.start_upload(&path),
            C::Download(file) => self.start_download(file.map(FileId)),
            C::Cancel(id) => self.cancel_transfer(id),
            C::Transfers => {
                self.show_transfers = !self.show_transfers;
                Vec::new()
            }
            C::Files => self
                .current_or_flash()
                .map(Action::ListFiles)
                .into_iter()
                .collect(),
            C::Delete(None) => self.delete_last(),
            C::Delete(Some(name)) => self.delete_theirs(&name),
            C::Edit(text) => self.edit_last(text),
            C::Search { room, query } => self.start_search(room, query),
            C::Account(action) => self.account_command(action),
            C::Ai(question) => {
                let Some(bot) = self.ai_bot.clone() else {
                    self.flash("this server has no AI bot", true);
                    return Vec::new();
                };
                match self.current_or_flash() {
                    Some(room) => {
                        self.to_bottom(room);
                        vec![Action::Send {
                            room,
                            text: format!("@{bot} {question}"),
                        }]
                    }
                    None => Vec::new(),
                }
            }
        }
    }

    /// A key was typed into the message input: maybe tell the room I am typing.
    pub fn typed(&mut self) -> Vec<Action> {
        self.completion = None;
        let text = self.input.text();
        // Correcting a message is not writing one.
        if text.starts_with('/')
            || self.editing.is_some()
            || self.now.saturating_sub(self.last_typing_sent) < 3_000
        {
            return Vec::new();
        }
        self.last_typing_sent = self.now;
        self.current.map(Action::Typing).into_iter().collect()
    }

    /// Ends a Tab-completion cycle, so the next Tab completes the word at the cursor afresh.
    pub fn end_completion(&mut self) {
        self.completion = None;
    }

    /// Tab: completes the word at the cursor, cycling through candidates on repeat.
    pub fn complete(&mut self) {
        if let Some((candidates, index, start, shown)) = &mut self.completion
            && *shown == self.input.text()
        {
            *index = (*index + 1) % candidates.len();
            let pick = format!("{} ", candidates[*index]);
            self.input.replace_word(*start, &pick);
            *shown = self.input.text();
            return;
        }
        self.completion = None;
        let (start, word) = self.input.current_word();
        if word.is_empty() {
            return;
        }
        let mut users: Vec<String> = self.presence.values().map(|(n, _)| n.clone()).collect();
        if let Some(room) = self.current_room() {
            users.extend(room.members.iter().map(|m| m.user.username.clone()));
        }
        users.sort();
        users.dedup();
        // The first argument of /kick, /msg and the like is a user: no rooms offered there.
        let before: String = self.input.text().chars().take(start).collect();
        let before: Vec<&str> = before.split_whitespace().collect();
        let user_argument = super::commands::user_comes_next(&before);
        let rooms: Vec<String> = self
            .rooms
            .values()
            .filter(|r| r.summary.kind != RoomKind::Direct && !user_argument)
            .map(|r| r.summary.name.clone())
            .collect();
        let candidates = super::commands::complete_sub_command(&before, &word)
            .unwrap_or_else(|| super::commands::complete(&word, start == 0, &users, &rooms));
        match candidates.len() {
            0 => {}
            _ => {
                let pick = format!("{} ", candidates[0]);
                self.input.replace_word(start, &pick);
                if candidates.len() > 1 {
                    self.completion = Some((candidates, 0, start, self.input.text()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_protocol::{MessageId, RoomRole};

    fn summary(id: u64, name: &str, kind: RoomKind, latest: Seq, read: Seq) -> RoomSummary {
        RoomSummary {
            id: RoomId(id),
            kind,
            name: name.into(),
            topic: String::new(),
            member_count: 2,
            latest_seq: latest,
            last_read_seq: read,
            unread: (latest - read) as u32,
            mentions: 0,
            my_role: Some(RoomRole::Member),
        }
    }

    fn message(room: u64, seq: Seq, from: (u64, &str), text: &str) -> Message {
        Message {
            id: MessageId(room * 1000 + seq),
            room: RoomId(room),
            seq,
            sender: UserId(from.0),
            sender_name: from.1.into(),
            ts: seq * 1000,
            kind: MessageKind::Text,
            text: text.into(),
        }
    }

    fn logged_in_app() -> App {
        let mut app = App::new("host:8888", Some("me"));
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(2, "dev", RoomKind::Public, 0, 0),
            summary(3, "bob", RoomKind::Direct, 0, 0),
        ]);
        app
    }

    #[test]
    fn messages_elsewhere_count_as_unread_and_mentions() {
        let mut app = logged_in_app();
        assert_eq!(app.current, Some(RoomId(1)));
        app.on_event(Event::Message(message(2, 1, (2, "bob"), "hello dev")));
        let actions = app.on_event(Event::Message(message(2, 2, (2, "bob"), "@me look")));
        assert_eq!(actions, vec![Action::Bell], "a mention rings once");
        // As the server counts mentions: whole names only, not an address or a longer name.
        for (seq, not_me) in [
            (3, "email me@example.com"),
            (4, "ask @me.smith"),
            (5, "@me2 knows"),
        ] {
            app.on_event(Event::Message(message(2, seq, (2, "bob"), not_me)));
        }
        let dev = &app.rooms[&RoomId(2)].summary;
        assert_eq!((dev.unread, dev.mentions), (5, 1));
        app.on_event(Event::Message(message(2, 6, (2, "bob"), "thanks @ME.")));
        assert_eq!(app.rooms[&RoomId(2)].summary.mentions, 2);
        // Messages in the room being read are not unread, and are marked read on the tick.
        app.on_event(Event::Message(message(1, 1, (2, "bob"), "hi all")));
        assert_eq!(app.rooms[&RoomId(1)].summary.unread, 0);
        assert_eq!(
            app.tick(10),
            vec![Action::MarkRead {
                room: RoomId(1),
                seq: 1
            }]
        );
        assert!(app.tick(20).is_empty(), "marked once");
    }

    #[test]
    fn entering_a_room_clears_its_counts_and_marks_it_read() {
        let mut app = logged_in_app();
        app.on_event(Event::Message(message(2, 1, (2, "bob"), "@me hi")));
        let actions = app.enter_room(RoomId(2));
        assert!(actions.contains(&Action::MarkRead {
            room: RoomId(2),
            seq: 1
        }));
        let dev = &app.rooms[&RoomId(2)].summary;
        assert_eq!((dev.unread, dev.mentions), (0, 0));
    }

    #[test]
    fn next_unread_prefers_mentions() {
        let mut app = logged_in_app();
        app.on_event(Event::Message(message(2, 1, (2, "bob"), "plain")));
        app.on_event(Event::Message(message(3, 1, (2, "bob"), "@me direct")));
        app.next_unread();
        assert_eq!(app.current, Some(RoomId(3)));
        app.next_unread();
        assert_eq!(app.current, Some(RoomId(2)));
        app.next_unread();
        assert_eq!(app.current, Some(RoomId(2)), "nothing left");
    }

    #[test]
    fn reconnect_merge_has_no_duplicates_and_no_gaps() {
        let mut app = logged_in_app();
        for seq in 1..=3 {
            app.on_event(Event::Message(message(
                1,
                seq,
                (2, "bob"),
                &format!("m{seq}"),
            )));
        }
        // Disconnected; messages 4..=6 were sent meanwhile. The room list comes back with the
        // new latest seq, and the catch-up starts after what is held.
        app.disconnected("lost".into(), 0);
        let actions = app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 6, 3),
            summary(2, "dev", RoomKind::Public, 0, 0),
            summary(3, "bob", RoomKind::Direct, 0, 0),
        ]);
        // The race: the runtime applies the live events queued behind the room list (7, sent
        // just after the resume) before it carries out the catch-up. The start must not move.
        app.on_event(Event::Message(message(1, 7, (2, "bob"), "m7")));
        let after = actions
            .iter()
            .find_map(|a| match a {
                Action::CatchUp { room, after } if *room == RoomId(1) => Some(*after),
                _ => None,
            })
            .expect("a catch-up for the room with news");
        assert_eq!(after, 3, "from the newest message held when the list came");
        // The server answers with everything after `after`; it overlaps the live event.
        app.history_loaded(
            HistoryPage {
                room: RoomId(1),
                messages: (after + 1..=7)
                    .map(|s| message(1, s, (2, "bob"), &format!("m{s}")))
                    .collect(),
                has_more: false,
            },
            false,
        );
        let seqs: Vec<Seq> = app.rooms[&RoomId(1)]
            .timeline
            .values()
            .filter_map(|e| match e {
                Entry::Message(m) => Some(m.seq),
                Entry::Notice { .. } => None,
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_room_holding_only_notices_still_loads_its_history() {
        let mut app = logged_in_app();
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(2, "dev", RoomKind::Public, 5, 5),
        ]);
        app.bans_loaded(RoomId(2), Vec::new());
        assert!(
            !app.rooms[&RoomId(2)].timeline.is_empty(),
            "a notice is held"
        );
        let actions = app.enter_room(RoomId(2));
        assert!(
            actions.contains(&Action::LoadLatest(RoomId(2))),
            "{actions:?}"
        );
        // Should that page not come, PgUp asks for the newest page instead of nothing.
        let actions = app.scroll(10, 1);
        assert_eq!(
            actions,
            vec![Action::LoadOlder {
                room: RoomId(2),
                before: 6
            }]
        );
    }

    #[test]
    fn a_room_that_only_got_live_messages_loads_its_newest_page_on_first_visit() {
        let mut app = logged_in_app();
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(2, "dev", RoomKind::Public, 6, 6),
        ]);
        for seq in [7, 8] {
            app.on_event(Event::Message(message(2, seq, (2, "bob"), "live")));
        }
        let actions = app.enter_room(RoomId(2));
        assert!(
            actions.contains(&Action::LoadLatest(RoomId(2))),
            "two live messages are no context: {actions:?}"
        );
        app.latest_loaded(HistoryPage {
            room: RoomId(2),
            messages: (1..=8).map(|s| message(2, s, (2, "bob"), "m")).collect(),
            has_more: false,
        });
        let room = &app.rooms[&RoomId(2)];
        assert_eq!(room.timeline.len(), 8, "merged, no duplicates");
        assert!(!room.has_older, "the page reaches the first message");
        app.enter_room(RoomId(1));
        assert!(
            !app.enter_room(RoomId(2))
                .contains(&Action::LoadLatest(RoomId(2))),
            "loaded once"
        );
    }

    #[test]
    fn a_lost_connection_or_a_failed_request_lets_pgup_ask_for_older_again() {
        let mut app = logged_in_app();
        for seq in 1..=3 {
            app.on_event(Event::Message(message(1, seq, (2, "bob"), "x")));
        }
        app.rooms.get_mut(&RoomId(1)).expect("public").has_older = true;
        let older = Action::LoadOlder {
            room: RoomId(1),
            before: 1,
        };
        assert_eq!(app.scroll(10, 1), vec![older.clone()]);
        assert!(app.scroll(10, 1).is_empty(), "one request at a time");
        app.older_failed(RoomId(1));
        assert_eq!(app.scroll(10, 1), vec![older.clone()], "asked again");
        app.disconnected("lost".into(), 0);
        assert_eq!(app.scroll(10, 1), vec![older], "asked again");
    }

    #[test]
    fn the_newest_page_is_asked_for_once_until_it_comes_fails_or_the_connection_drops() {
        let mut app = logged_in_app();
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(2, "dev", RoomKind::Public, 5, 5),
        ]);
        let asks = |actions: Vec<Action>| {
            actions
                .iter()
                .filter(|a| **a == Action::LoadLatest(RoomId(2)))
                .count()
        };
        let revisit = |app: &mut App| {
            app.enter_room(RoomId(1));
            asks(app.enter_room(RoomId(2)))
        };
        assert_eq!(revisit(&mut app), 1);
        assert_eq!(revisit(&mut app), 0, "the first is still on its way");
        app.latest_failed(RoomId(2));
        assert_eq!(revisit(&mut app), 1, "asked again after a failure");
        app.disconnected("lost".into(), 0);
        assert_eq!(revisit(&mut app), 1, "asked again after a drop");
        assert_eq!(revisit(&mut app), 0);
        // An answer ends the wait and leaves nothing to ask for.
        app.latest_loaded(HistoryPage {
            room: RoomId(2),
            messages: (1..=5).map(|s| message(2, s, (2, "bob"), "x")).collect(),
            has_more: false,
        });
        assert_eq!(revisit(&mut app), 0);
        assert_eq!(app.rooms[&RoomId(2)].timeline.len(), 5);
    }

    #[test]
    fn a_chat_with_a_deleted_account_is_found_by_its_name() {
        let mut app = logged_in_app();
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(4, "dave (deleted)", RoomKind::Direct, 0, 0),
            summary(5, "erin (deleted)", RoomKind::Direct, 0, 0),
            summary(6, "erin", RoomKind::Direct, 0, 0),
        ]);
        app.input.set_text("/enter @Dave");
        app.submit_input();
        assert_eq!(app.current, Some(RoomId(4)), "the chat the server kept");
        // A new account took the name: its chat is the one meant.
        app.input.set_text("/enter @erin");
        app.submit_input();
        assert_eq!(app.current, Some(RoomId(6)));
        app.input.set_text("/enter dave");
        assert!(app.submit_input().is_empty(), "no room named dave");
        assert_eq!(app.current, Some(RoomId(6)));
    }

    #[test]
    fn a_sigil_says_whether_a_name_is_a_room_or_a_direct_chat() {
        let mut app = logged_in_app();
        // "bob" is a direct chat here; #bob is a room I am not in.
        app.input.set_text("/join bob");
        assert_eq!(app.submit_input(), vec![Action::Join("bob".into())]);
        assert_eq!(
            app.current,
            Some(RoomId(1)),
            "the direct chat was not entered"
        );
        app.input.set_text("/join #bob");
        assert_eq!(app.submit_input(), vec![Action::Join("bob".into())]);
        app.input.set_text("/enter bob");
        assert!(app.submit_input().is_empty());
        assert_eq!(app.current, Some(RoomId(1)));
        app.input.set_text("/enter @bob");
        app.submit_input();
        assert_eq!(app.current, Some(RoomId(3)));
        app.input.set_text("/join #dev");
        app.submit_input();
        assert_eq!(app.current, Some(RoomId(2)));
        app.input.set_text("/enter @dev");
        assert!(app.submit_input().is_empty(), "no direct chat with dev");
        assert_eq!(app.current, Some(RoomId(2)));
        app.input.set_text("/join @carol");
        assert_eq!(
            app.submit_input(),
            vec![Action::Direct {
                user: "carol".into(),
                text: None
            }]
        );
        // A direct chat cannot be left: the server would refuse, so nothing is asked.
        app.input.set_text("/leave @bob");
        assert_eq!(app.submit_input(), vec![]);
        assert_eq!(
            app.flash,
            Some(("a direct chat cannot be left".into(), true))
        );
        app.enter_room(RoomId(3));
        app.input.set_text("/leave");
        assert_eq!(app.submit_input(), vec![], "nor the one shown");
        app.input.set_text("/leave #dev");
        assert_eq!(app.submit_input(), vec![Action::Leave(RoomId(2))]);
    }

    #[test]
    fn presence_is_fetched_again_after_a_reconnect() {
        use chatroom_protocol::UserPresence;
        let member = |id: u64, name: &str, status| Member {
            user: UserSummary {
                id: UserId(id),
                username: name.into(),
                is_admin: false,
            },
            role: RoomRole::Member,
            status,
        };
        let mut app = logged_in_app();
        app.members_loaded(RoomId(1), vec![member(2, "bob", PresenceStatus::Online)]);
        app.members_loaded(RoomId(2), vec![member(2, "bob", PresenceStatus::Online)]);
        // Bob leaves while the connection is down: no presence event reaches me.
        app.disconnected("lost".into(), 0);
        let rooms = vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(2, "dev", RoomKind::Public, 0, 0),
            summary(3, "bob", RoomKind::Direct, 0, 0),
        ];
        let actions = app.rooms_loaded(rooms.clone());
        assert!(actions.contains(&Action::Members(RoomId(1))), "{actions:?}");
        assert!(actions.contains(&Action::RefreshPresence), "{actions:?}");
        let gone = |id: u64, name: &str| UserPresence {
            user: UserSummary {
                id: UserId(id),
                username: name.into(),
                is_admin: false,
            },
            status: PresenceStatus::Offline,
            status_message: None,
        };
        app.presence_refreshed(vec![gone(2, "bob"), gone(7, "stranger")]);
        assert_eq!(
            app.presence.get(&UserId(2)),
            Some(&("bob".to_string(), PresenceStatus::Offline))
        );
        assert!(!app.presence.contains_key(&UserId(7)), "only users I know");
        assert_eq!(
            app.rooms[&RoomId(2)].members[0].status,
            PresenceStatus::Offline
        );
        // The other room's list is fetched again when it is shown, once.
        assert!(
            app.enter_room(RoomId(2))
                .contains(&Action::Members(RoomId(2)))
        );
        app.members_loaded(RoomId(2), vec![member(2, "bob", PresenceStatus::Offline)]);
        assert!(
            !app.enter_room(RoomId(2))
                .contains(&Action::Members(RoomId(2)))
        );
        // A later room list without a disconnect asks for nothing again.
        assert!(!app.rooms_loaded(rooms).contains(&Action::RefreshPresence));
    }

    #[test]
    fn a_live_message_the_room_list_already_counted_is_not_counted_again() {
        let mut app = logged_in_app();
        // dev: 5 messages, read up to 3, and the 5th mentions me.
        let mut dev = summary(2, "dev", RoomKind::Public, 5, 3);
        dev.mentions = 1;
        app.rooms_loaded(vec![summary(1, "public", RoomKind::Public, 0, 0), dev]);
        // 5 was sent while the list was fetched, so its live event comes after the list.
        app.on_event(Event::Message(message(2, 5, (2, "bob"), "@me five")));
        let counts = |app: &App| {
            let s = &app.rooms[&RoomId(2)].summary;
            (s.unread, s.mentions)
        };
        assert_eq!(counts(&app), (2, 1));
        app.on_event(Event::Message(message(2, 6, (2, "bob"), "@me six")));
        assert_eq!(counts(&app), (3, 2), "a newer one counts");
    }

    #[test]
    fn a_live_mention_the_room_list_already_counted_does_not_ring_again() {
        let mut app = logged_in_app();
        assert!(app.bell_on_mention);
        // dev: 5 messages, read up to 3; the list counts the 5th, which mentions me.
        let mut dev = summary(2, "dev", RoomKind::Public, 5, 3);
        dev.mentions = 1;
        app.rooms_loaded(vec![summary(1, "public", RoomKind::Public, 0, 0), dev]);
        let late = app.on_event(Event::Message(message(2, 5, (2, "bob"), "@me five")));
        assert!(!late.contains(&Action::Bell), "{late:?}");
        let new = app.on_event(Event::Message(message(2, 6, (2, "bob"), "@me six")));
        assert_eq!(new, vec![Action::Bell], "a newer one rings");
    }

    #[test]
    fn commands_become_actions() {
        let mut app = logged_in_app();
        app.input.set_text("hello world");
        assert_eq!(
            app.submit_input(),
            vec![Action::Send {
                room: RoomId(1),
                text: "hello world".into()
            }]
        );
        app.input.set_text("/join dev");
        let actions = app.submit_input();
        assert_eq!(
            app.current,
            Some(RoomId(2)),
            "a room I am in is entered, not joined"
        );
        assert!(!actions.contains(&Action::Join("dev".into())));
        app.input.set_text("/join ops");
        assert_eq!(app.submit_input(), vec![Action::Join("ops".into())]);
        app.input.set_text("/msg bob see you");
        assert_eq!(
            app.submit_input(),
            vec![Action::Direct {
                user: "bob".into(),
                text: Some("see you".into())
            }]
        );
        app.input.set_text("/nonsense");
        assert!(app.submit_input().is_empty());
        assert!(app.flash.as_ref().is_some_and(|(_, error)| *error));
    }

    #[test]
    fn typing_notices_expire_and_are_sent_sparingly() {
        let mut app = logged_in_app();
        app.on_event(Event::Typing {
            room: RoomId(1),
            user: UserId(2),
            username: "bob".into(),
        });
        assert_eq!(app.rooms[&RoomId(1)].typing.len(), 1);
        app.tick(TYPING_SHOWN_MS + 1);
        assert!(app.rooms[&RoomId(1)].typing.is_empty());

        app.now = 10_000;
        app.input.insert('h');
        assert_eq!(app.typed(), vec![Action::Typing(RoomId(1))]);
        app.input.insert('i');
        assert!(app.typed().is_empty(), "not again within 3 s");
    }

    #[test]
    fn tab_completes_and_cycles() {
        let mut app = logged_in_app();
        app.presence
            .insert(UserId(2), ("alice".into(), PresenceStatus::Online));
        app.presence
            .insert(UserId(3), ("albert".into(), PresenceStatus::Online));
        app.input.set_text("hi @al");
        app.complete();
        assert_eq!(app.input.text(), "hi @albert ");
        app.complete();
        assert_eq!(app.input.text(), "hi @alice ");
        app.input.set_text("/inv");
        app.complete();
        assert_eq!(app.input.text(), "/invite ");
    }

    /// After /kick, /msg and the other commands that take a user first, Tab offers users only;
    /// elsewhere rooms too.
    #[test]
    fn tab_after_a_command_that_takes_a_user_completes_users() {
        let mut app = logged_in_app();
        app.presence
            .insert(UserId(4), ("devon".into(), PresenceStatus::Online));
        for command in [
            "/kick", "/ban", "/mute", "/unmute", "/unban", "/op", "/invite", "/purge",
        ] {
            app.input.set_text(&format!("{command} de"));
            app.complete();
            assert_eq!(app.input.text(), format!("{command} devon "), "{command}");
            app.complete();
            assert_eq!(app.input.text(), format!("{command} devon "), "only devon");
        }
        for command in ["/msg", "/delete"] {
            app.input.set_text(&format!("{command} de"));
            app.complete();
            assert_eq!(app.input.text(), format!("{command} devon "), "{command}");
        }
        app.input.set_text("/kick devon de");
        app.complete();
        assert_eq!(app.input.text(), "/kick devon dev ", "a reason: rooms too");
        app.input.set_text("/join de");
        app.complete();
        assert_eq!(
            app.input.text(),
            "/join dev ",
            "a room command: rooms first"
        );
    }

    fn draft(room: u64, id: u64, text: &str) -> Event {
        Event::DraftUpdated(Draft {
            room: RoomId(room),
            draft: id,
            sender: UserId(9),
            sender_name: "ai".into(),
            text: text.into(),
        })
    }

    #[test]
    fn drafts_grow_in_place_and_give_way_to_the_stored_message() {
        let mut app = logged_in_app();
        app.on_event(Event::Typing {
            room: RoomId(1),
            user: UserId(9),
            username: "ai".into(),
        });
        app.on_event(draft(1, 7, "The"));
        app.on_event(draft(1, 7, "The answer"));
        let room = &app.rooms[&RoomId(1)];
        assert_eq!(room.drafts.len(), 1, "one draft, updated in place");
        assert_eq!(room.drafts[&7].text, "The answer");
        assert!(room.typing.is_empty(), "a draft replaces the typing notice");
        assert_eq!(room.timeline.len(), 0, "a draft is not a message");

        let mut stored = message(1, 1, (9, "ai"), "The answer is 42.");
        stored.sender = UserId(9);
        app.on_event(Event::Message(stored));
        app.on_event(Event::DraftEnded {
            room: RoomId(1),
            draft: 7,
            seq: Some(1),
        });
        let room = &app.rooms[&RoomId(1)];
        assert!(room.drafts.is_empty());
        assert_eq!(room.timeline.len(), 1);

        // A failed draft just goes away; unknown ends and other rooms are harmless.
        app.on_event(draft(2, 8, "partial"));
        app.on_event(Event::DraftEnded {
            room: RoomId(2),
            draft: 99,
            seq: None,
        });
        assert_eq!(app.rooms[&RoomId(2)].drafts.len(), 1);
        app.on_event(Event::DraftEnded {
            room: RoomId(2),
            draft: 8,
            seq: None,
        });
        assert!(app.rooms[&RoomId(2)].drafts.is_empty());
        app.on_event(draft(42, 1, "a room I am not in"));
    }

    #[test]
    fn drafts_are_bounded_and_dropped_on_disconnect() {
        let mut app = logged_in_app();
        for id in 0..20 {
            app.on_event(draft(1, id, "x"));
        }
        let room = &app.rooms[&RoomId(1)];
        assert_eq!(room.drafts.len(), MAX_DRAFTS);
        assert!(room.drafts.contains_key(&19), "the newest stay");
        app.disconnected("lost".into(), 0);
        assert!(app.rooms[&RoomId(1)].drafts.is_empty());
    }

    #[test]
    fn slash_ai_asks_the_bot_by_the_name_the_server_gave() {
        let mut app = logged_in_app();
        app.ai_bot = Some("Hal".into());
        app.input.set_text("/ai open the pod bay doors");
        assert_eq!(
            app.submit_input(),
            vec![Action::Send {
                room: RoomId(1),
                text: "@Hal open the pod bay doors".into()
            }]
        );
        app.ai_bot = None;
        app.input.set_text("/ai anyone there?");
        assert_eq!(app.submit_input(), Vec::new());
        assert_eq!(
            app.flash,
            Some(("this server has no AI bot".into(), true)),
            "a server without a bot says so"
        );
    }

    #[test]
    fn slash_ai_in_a_room_without_the_bot_says_how_to_reach_it() {
        let mut app = logged_in_app();
        app.ai_bot = Some("ai".into());
        app.enter_room(RoomId(2));
        app.members_loaded(
            RoomId(2),
            vec![
                member(1, "me", RoomRole::Owner),
                member(2, "bob", RoomRole::Member),
            ],
        );
        app.input.set_text("/ai what changed today?");
        assert_eq!(app.submit_input(), Vec::new(), "nobody would answer it");
        assert_eq!(
            app.flash,
            Some((
                "ai is not in #dev: /invite ai to ask it here, or /msg ai".into(),
                true
            ))
        );
        assert_eq!(
            app.input.text(),
            "/ai what changed today?",
            "kept to send again"
        );
        // Once invited, it is asked.
        app.members_loaded(
            RoomId(2),
            vec![
                member(1, "me", RoomRole::Owner),
                member(9, "AI", RoomRole::Member),
            ],
        );
        assert_eq!(
            app.submit_input(),
            vec![Action::Send {
                room: RoomId(2),
                text: "@ai what changed today?".into()
            }]
        );
        // A direct chat with someone else cannot take the bot in.
        app.enter_room(RoomId(3));
        app.members_loaded(
            RoomId(3),
            vec![
                member(1, "me", RoomRole::Member),
                member(2, "bob", RoomRole::Member),
            ],
        );
        app.input.set_text("/ai hello");
        assert_eq!(app.submit_input(), Vec::new());
        assert_eq!(
            app.flash,
            Some((
                "ai is not in this direct chat: /msg ai asks it on its own".into(),
                true
            ))
        );
    }

    #[test]
    fn slash_ai_asks_the_bot_in_the_current_room() {
        let mut app = logged_in_app();
        app.ai_bot = Some("ai".into());
        app.input.set_text("/ai what changed today?");
        assert_eq!(
            app.submit_input(),
            vec![Action::Send {
                room: RoomId(1),
                text: "@ai what changed today?".into()
            }]
        );
        app.input.set_text("/ai clear");
        assert_eq!(
            app.submit_input(),
            vec![Action::Send {
                room: RoomId(1),
                text: "@ai clear".into()
            }]
        );
    }

    #[test]
    fn being_kicked_removes_the_room() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        app.on_event(Event::Kicked {
            room: RoomId(2),
            room_name: "dev".into(),
            by: "alice".into(),
            reason: Some("bye".into()),
        });
        assert!(!app.rooms.contains_key(&RoomId(2)));
        assert_ne!(app.current, Some(RoomId(2)));
        assert!(app.flash.as_ref().is_some_and(|(t, _)| t.contains("alice")));
    }

    #[test]
    fn a_message_over_the_servers_limit_stays_in_the_input() {
        let mut app = logged_in_app();
        app.max_message_chars = Some(5);
        app.input.set_text("多行 ok!");
        assert!(app.submit_input().is_empty(), "nothing is sent");
        assert_eq!(app.input.text(), "多行 ok!", "the text is kept to shorten");
        assert!(
            app.flash
                .as_ref()
                .is_some_and(|(t, _)| t.contains("at most 5; shorten it by 1")),
            "{:?}",
            app.flash
        );
        app.input.set_text("//多行 ok!");
        assert!(app.submit_input().is_empty());
        assert_eq!(app.input.text(), "//多行 ok!", "the line as typed");
        app.input.set_text("/msg bob 多行 ok!");
        assert!(app.submit_input().is_empty());
        assert_eq!(app.input.text(), "/msg bob 多行 ok!");
        app.input.set_text("多行 ok");
        assert_eq!(
            app.submit_input(),
            vec![Action::Send {
                room: RoomId(1),
                text: "多行 ok".into()
            }]
        );
    }

    #[test]
    fn users_show_their_away_message() {
        let mut app = logged_in_app();
        let user = |id: u64, name: &str, status, note: Option<&str>| UserPresence {
            user: UserSummary {
                id: UserId(id),
                username: name.into(),
                is_admin: false,
            },
            status,
            status_message: note.map(str::to_owned),
        };
        app.users_loaded(vec![
            user(
                2,
                "carol",
                PresenceStatus::Away,
                Some("in a meeting until 3"),
            ),
            user(3, "bob", PresenceStatus::Online, None),
        ]);
        assert_eq!(
            notices(&app, 1),
            ["users: ◐ carol (in a meeting until 3)  ● bob".to_owned()]
        );
    }

    #[test]
    fn a_note_in_the_status_line_goes_after_a_while() {
        let mut app = logged_in_app();
        app.tick(1_000);
        app.flash("invited bob", false);
        app.tick(1_000 + FLASH_SHOWN_MS - 1);
        assert!(app.flash.is_some());
        app.tick(1_000 + FLASH_SHOWN_MS);
        assert_eq!(app.flash, None);
    }

    #[test]
    fn a_notice_in_a_room_not_loaded_yet_comes_after_its_messages() {
        let mut app = logged_in_app();
        app.rooms
            .get_mut(&RoomId(2))
            .expect("dev")
            .summary
            .latest_seq = 2;
        // `/bans` answered before the room's history came.
        app.bans_loaded(RoomId(2), Vec::new());
        for seq in [1, 2] {
            app.on_event(Event::Message(message(2, seq, (2, "alice"), "before")));
        }
        let order: Vec<bool> = app.rooms[&RoomId(2)]
            .timeline
            .values()
            .map(|e| matches!(e, Entry::Notice { .. }))
            .collect();
        assert_eq!(order, [false, false, true], "the messages, then the notice");
    }

    fn notices(app: &App, room: u64) -> Vec<String> {
        app.rooms[&RoomId(room)]
            .timeline
            .values()
            .filter_map(|e| match e {
                Entry::Notice { text, .. } => Some(text.clone()),
                Entry::Message(_) => None,
            })
            .collect()
    }

    #[test]
    fn ban_commands_act_on_the_current_room_and_bans_show_in_theirs() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        let run = |app: &mut App, line: &str| {
            app.input.set_text(line);
            app.submit_input()
        };
        assert_eq!(
            run(&mut app, "/ban bob spam"),
            [Action::Ban {
                room: RoomId(2),
                user: "bob".into(),
                reason: Some("spam".into())
            }]
        );
        assert_eq!(
            run(&mut app, "/unban bob"),
            [Action::Unban {
                room: RoomId(2),
                user: "bob".into()
            }]
        );
        assert_eq!(run(&mut app, "/bans"), [Action::Bans(RoomId(2))]);
        assert_eq!(run(&mut app, "/ban"), [], "a usage error sends nothing");
        assert_eq!(app.flash, Some(("usage: /ban USER [REASON]".into(), true)));

        // The answer lands in the room asked about, even after a switch.
        app.enter_room(RoomId(1));
        app.tick(1_700_000_000_000);
        let ban = |username: &str, since: UnixMillis, reason: Option<&str>| BanInfo {
            username: username.into(),
            by: "alice".into(),
            reason: reason.map(str::to_owned),
            since,
        };
        app.bans_loaded(
            RoomId(2),
            vec![
                ban("carol", 1_700_000_000_000 - 60_000, None),
                ban("bob", 1_600_000_000_000, Some("spam, twice")),
            ],
        );
        assert_eq!(
            notices(&app, 2),
            [
                "banned: carol, by alice (22:12)".to_owned(),
                "banned: bob, by alice (2020-09-13): spam, twice".to_owned(),
            ]
        );
        assert!(notices(&app, 1).is_empty());
        app.bans_loaded(RoomId(2), Vec::new());
        assert_eq!(
            notices(&app, 2).last().map(String::as_str),
            Some("no one is banned from #dev")
        );
        // A room left meanwhile: nothing to show it in, and no panic.
        app.bans_loaded(RoomId(9), Vec::new());
    }

    #[test]
    fn role_changes_update_the_member_list_and_my_role() {
        let mut app = logged_in_app();
        let member = |id: u64, name: &str| Member {
            user: UserSummary {
                id: UserId(id),
                username: name.into(),
                is_admin: false,
            },
            role: RoomRole::Member,
            status: PresenceStatus::Online,
        };
        app.members_loaded(RoomId(2), vec![member(1, "me"), member(2, "bob")]);
        app.on_event(Event::RoleChanged {
            room: RoomId(2),
            user: UserId(2),
            username: "bob".into(),
            role: RoomRole::Moderator,
            by: Some("alice".into()),
        });
        let names = |app: &App| -> Vec<String> {
            app.rooms[&RoomId(2)]
                .members
                .iter()
                .map(|m| m.user.username.clone())
                .collect()
        };
        assert_eq!(names(&app), ["bob", "me"], "moderators come first");
        app.on_event(Event::RoleChanged {
            room: RoomId(2),
            user: UserId(1),
            username: "me".into(),
            role: RoomRole::Owner,
            by: None,
        });
        let dev = &app.rooms[&RoomId(2)];
        let roles: Vec<RoomRole> = dev.members.iter().map(|m| m.role).collect();
        assert_eq!(roles, vec![RoomRole::Owner, RoomRole::Moderator]);
        assert_eq!(dev.summary.my_role, Some(RoomRole::Owner));
        assert_eq!(names(&app), ["me", "bob"]);
        // Then I hand the room to bob.
        for (user, username, role) in [(2, "bob", RoomRole::Owner), (1, "me", RoomRole::Moderator)]
        {
            app.on_event(Event::RoleChanged {
                room: RoomId(2),
                user: UserId(user),
                username: username.into(),
                role,
                by: Some("me".into()),
            });
        }
        assert_eq!(names(&app), ["bob", "me"]);
        assert_eq!(
            app.rooms[&RoomId(2)].summary.my_role,
            Some(RoomRole::Moderator)
        );
        // What happened is told by the server's notice, a message: no notice of our own.
        assert!(notices(&app, 2).is_empty(), "{:?}", notices(&app, 2));
    }

    #[test]
    fn a_renamed_room_takes_its_new_name() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        app.input.set_text("/rename #backend");
        let actions = app.submit_input();
        assert!(
            actions.contains(&Action::Rename {
                room: RoomId(2),
                name: "backend".into()
            }),
            "{actions:?}"
        );
        app.on_event(Event::RoomRenamed {
            room: RoomId(2),
            name: "backend".into(),
            by: "alice".into(),
        });
        assert_eq!(app.rooms[&RoomId(2)].label(), "#backend");
    }

    #[test]
    fn a_room_notice_is_shown_but_not_counted_as_unread() {
        let mut app = logged_in_app();
        let mut notice = message(2, 1, (2, "bob"), "bob made @me a moderator");
        notice.kind = MessageKind::System;
        let actions = app.on_event(Event::Message(notice));
        let dev = &app.rooms[&RoomId(2)];
        assert_eq!((dev.summary.unread, dev.summary.mentions), (0, 0));
        assert_eq!(dev.summary.latest_seq, 1);
        assert!(
            matches!(dev.timeline.values().next(), Some(Entry::Message(m)) if m.kind == MessageKind::System)
        );
        assert!(!actions.contains(&Action::Bell), "{actions:?}");
        app.on_event(Event::Message(message(2, 2, (2, "bob"), "news")));
        assert_eq!(app.rooms[&RoomId(2)].summary.unread, 1);
    }

    /// 40 rows in a pane of 10: PgUp stops where the first row (the room's oldest message) is
    /// the top one, the pane's last row being the "more rows" marker's.
    #[test]
    fn scrolling_back_reaches_the_first_row() {
        let mut app = logged_in_app();
        app.viewport = (60, 10);
        for seq in 1..=40 {
            app.on_event(Event::Message(message(1, seq, (2, "bob"), "x")));
        }
        app.scroll(1_000, 40);
        let scroll = app.rooms[&RoomId(1)].scroll;
        assert_eq!(
            scroll,
            40 - 9,
            "9 rows of messages shown, the first at the top"
        );
        assert_eq!(super::super::ui::max_scroll(40, 10), 31);
        assert_eq!(super::super::ui::max_scroll(10, 10), 0, "all of it fits");
        assert_eq!(super::super::ui::max_scroll(11, 10), 2);
    }

    fn member(id: u64, name: &str, role: RoomRole) -> Member {
        Member {
            user: UserSummary {
                id: UserId(id),
                username: name.into(),
                is_admin: false,
            },
            role,
            status: PresenceStatus::Online,
        }
    }

    /// `/who` opens the member list; with it open already (it may not fit the terminal, or
    /// search may have its place) it names the members in the room rather than do nothing.
    #[test]
    fn who_with_the_member_list_open_names_the_members() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        let mut bob = member(2, "bob", RoomRole::Moderator);
        bob.status = PresenceStatus::Away;
        app.members_loaded(
            RoomId(2),
            vec![
                member(3, "alice", RoomRole::Owner),
                bob,
                member(1, "me", RoomRole::Member),
            ],
        );
        app.show_members = false;
        let before = notices(&app, 2);
        app.input.set_text("/who");
        assert_eq!(app.submit_input(), [Action::Members(RoomId(2))]);
        assert!(app.show_members, "closed, it opens");
        assert_eq!(notices(&app, 2), before, "opening it is the answer");
        app.input.set_text("/who");
        assert_eq!(app.submit_input(), [Action::Members(RoomId(2))]);
        assert!(app.show_members, "open, it stays open");
        assert_eq!(
            notices(&app, 2).last().map(String::as_str),
            Some("3 members of #dev: ★alice  +bob (away)  me")
        );
    }

    /// `/who` on a terminal too narrow for the member list, before the room's list has come:
    /// the members are named once it does, not never.
    #[test]
    fn who_before_the_member_list_came_names_them_when_it_does() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        assert!(app.show_members, "open, as at the start (it may not fit)");
        let before = notices(&app, 2);
        app.input.set_text("/who");
        assert_eq!(app.submit_input(), [Action::Members(RoomId(2))]);
        assert_eq!(notices(&app, 2), before, "nothing to name yet");
        app.members_loaded(
            RoomId(2),
            vec![
                member(3, "alice", RoomRole::Owner),
                member(1, "me", RoomRole::Member),
            ],
        );
        assert_eq!(
            notices(&app, 2).last().map(String::as_str),
            Some("2 members of #dev: ★alice  me")
        );
        // Named once: a later fetch (a join, a reconnect) adds nothing.
        let named = notices(&app, 2);
        app.members_loaded(RoomId(2), vec![member(1, "me", RoomRole::Member)]);
        assert_eq!(notices(&app, 2), named);
    }

    /// `/create --private retro bob carol`: the invitees' joins come before the room's list is
    /// fetched, and the summary the creation answered with counts only me. The list, fetched
    /// whole, has everyone, me (the owner) too, and the count follows it.
    #[test]
    fn a_created_room_lists_its_creator_with_the_invitees() {
        let mut app = logged_in_app();
        let mut retro = summary(7, "retro", RoomKind::Private, 0, 0);
        retro.member_count = 1;
        retro.my_role = Some(RoomRole::Owner);
        app.on_event(Event::RoomUpdated(retro.clone()));
        for (id, name) in [(2, "bob"), (3, "carol")] {
            app.on_event(Event::MemberJoined {
                room: RoomId(7),
                member: member(id, name, RoomRole::Member),
            });
        }
        assert!(app.rooms[&RoomId(7)].members.is_empty(), "no partial list");
        // An older client path: the summary from the creation, then the room is entered.
        app.on_event(Event::RoomUpdated(retro));
        let actions = app.enter_room(RoomId(7));
        assert!(actions.contains(&Action::Members(RoomId(7))), "{actions:?}");
        app.members_loaded(
            RoomId(7),
            vec![
                member(1, "me", RoomRole::Owner),
                member(2, "bob", RoomRole::Member),
                member(3, "carol", RoomRole::Member),
            ],
        );
        let room = &app.rooms[&RoomId(7)];
        assert_eq!(room.summary.member_count, 3);
        assert_eq!(room.members[0].user.username, "me");
        assert_eq!(room.members[0].role, RoomRole::Owner);
        // Once the list is there, joins and leaves keep it and the count.
        app.on_event(Event::MemberJoined {
            room: RoomId(7),
            member: member(4, "dave", RoomRole::Member),
        });
        assert_eq!(app.rooms[&RoomId(7)].members.len(), 4);
        assert_eq!(app.rooms[&RoomId(7)].summary.member_count, 4);
    }

    /// Someone joining takes their place in the list as the server orders it (owner,
    /// moderators, then by name), as a fetch would show it, not at the end.
    #[test]
    fn a_member_who_joins_is_listed_in_the_servers_order() {
        let mut app = logged_in_app();
        app.members_loaded(
            RoomId(2),
            vec![
                member(1, "me", RoomRole::Owner),
                member(3, "carol", RoomRole::Member),
            ],
        );
        for (id, name) in [(2, "Bob"), (4, "dave")] {
            app.on_event(Event::MemberJoined {
                room: RoomId(2),
                member: member(id, name, RoomRole::Member),
            });
        }
        let names: Vec<&str> = app.rooms[&RoomId(2)]
            .members
            .iter()
            .map(|m| m.user.username.as_str())
            .collect();
        assert_eq!(names, ["me", "Bob", "carol", "dave"]);
    }

    /// A room created with its members (as the runtime now reports it): shown whole at once.
    #[test]
    fn a_room_created_with_its_members_needs_no_second_fetch() {
        let mut app = logged_in_app();
        let mut retro = summary(7, "retro", RoomKind::Private, 0, 0);
        retro.member_count = 2;
        let actions = app.room_created(RoomInfo {
            room: retro,
            members: vec![
                member(1, "me", RoomRole::Owner),
                member(3, "carol", RoomRole::Member),
            ],
        });
        assert!(
            !actions.contains(&Action::Members(RoomId(7))),
            "{actions:?}"
        );
        assert_eq!(app.current, Some(RoomId(7)));
        assert_eq!(app.rooms[&RoomId(7)].members.len(), 2);
    }

    /// Offline, a command for the server stays in the input, command and all, as a message
    /// does; what the client does by itself still works.
    #[test]
    fn offline_a_command_for_the_server_stays_in_the_input() {
        let mut app = logged_in_app();
        app.disconnected("connection lost".into(), 5_000);
        for line in [
            "/msg alice hi",
            "/topic release friday",
            "/edit fixed",
            "/kick bob spam",
            "/create ops",
            "/join ops",
            "/away lunch",
            "hello",
        ] {
            app.input.set_text(line);
            assert_eq!(app.submit_input(), vec![], "{line}");
            assert_eq!(app.input.text(), line, "kept");
            assert_eq!(
                app.flash,
                Some((
                    "not sent (not connected; waiting to reconnect); it is back in the input"
                        .into(),
                    true
                )),
                "{line}"
            );
            app.input.set_text("");
        }
        app.input.set_text("/enter dev");
        app.submit_input();
        assert_eq!(app.current, Some(RoomId(2)), "switching rooms is local");
        app.input.set_text("/help");
        app.submit_input();
        assert!(app.show_help);
        // Back online, the same line goes.
        app.rooms_loaded(vec![summary(1, "public", RoomKind::Public, 0, 0)]);
        app.connection = ConnectionState::Connected;
        app.input.set_text("/msg alice hi");
        assert_eq!(
            app.submit_input(),
            vec![Action::Direct {
                user: "alice".into(),
                text: Some("hi".into())
            }]
        );
    }

    /// A line that is not a command as typed stays in the input to be corrected; a pasted
    /// text that starts with `/` is not lost, and `//` sends it.
    #[test]
    fn a_line_that_does_not_parse_stays_in_the_input() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        let pasted = "/etc/hosts has\na bad line";
        app.input.set_text(pasted);
        assert_eq!(app.submit_input(), vec![]);
        assert_eq!(app.input.text(), pasted);
        assert!(
            app.flash.as_ref().is_some_and(|(t, error)| *error
                && t.contains("unknown command")
                && t.contains("//")),
            "{:?}",
            app.flash
        );
        app.input.set_text("/mute");
        app.submit_input();
        assert_eq!(app.input.text(), "/mute", "a usage error too");
        app.input.set_text(&format!("/{pasted}"));
        assert_eq!(
            app.submit_input(),
            vec![Action::Send {
                room: RoomId(2),
                text: pasted.into()
            }]
        );
    }

    /// A new line clears what the status line said about the one before.
    #[test]
    fn a_new_command_clears_the_last_ones_note() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        app.input.set_text("/foo");
        app.submit_input();
        assert!(app.flash.as_ref().is_some_and(|(_, error)| *error));
        app.input.set_text("/topic x");
        assert_eq!(
            app.submit_input(),
            vec![Action::Topic {
                room: RoomId(2),
                topic: "x".into()
            }]
        );
        assert_eq!(app.flash, None, "the unknown command is old news");
        // The answer of a command that went (an invitation) is gone when the next one goes.
        app.flash("invited ai", false);
        app.input.set_text("/kick ai");
        app.submit_input();
        assert_eq!(app.flash, None);
        // An empty Enter is no new line: the note stays.
        app.flash("a room named \"ops\" exists", true);
        app.submit_input();
        assert!(app.flash.is_some());
    }

    #[test]
    fn topic_alone_shows_it_and_clear_clears_it() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        app.input.set_text("/topic");
        assert_eq!(app.submit_input(), vec![], "nothing is changed");
        assert_eq!(
            app.flash,
            Some(("no topic set; /topic TEXT sets one".into(), false))
        );
        app.on_event(Event::TopicChanged {
            room: RoomId(2),
            topic: "release friday".into(),
            by: "bob".into(),
        });
        app.input.set_text("/topic");
        app.submit_input();
        assert_eq!(app.flash, Some(("topic: release friday".into(), false)));
        app.input.set_text("/topic --clear");
        assert_eq!(
            app.submit_input(),
            vec![Action::Topic {
                room: RoomId(2),
                topic: String::new()
            }]
        );
    }

    /// A message of mine, sent from my shell (another session): the server moved my read
    /// marker to it, and says so with nothing but the message.
    #[test]
    fn a_message_of_mine_from_elsewhere_marks_the_room_read() {
        let mut app = logged_in_app();
        app.on_event(Event::Message(message(2, 1, (2, "bob"), "@me one")));
        app.on_event(Event::Message(message(2, 2, (2, "bob"), "two")));
        let counts = |app: &App| {
            let s = &app.rooms[&RoomId(2)].summary;
            (s.unread, s.mentions, s.last_read_seq)
        };
        assert_eq!(counts(&app), (2, 1, 0));
        app.on_event(Event::Message(message(2, 3, (1, "me"), "from my shell")));
        assert_eq!(counts(&app), (0, 0, 3));
        // A marker moved by another session, short of the newest: recounted from what is held.
        for seq in 4..=6 {
            app.on_event(Event::Message(message(2, seq, (2, "bob"), "@me news")));
        }
        assert_eq!(counts(&app), (3, 3, 3));
        app.on_event(Event::ReadMarker {
            room: RoomId(2),
            seq: 5,
        });
        assert_eq!(counts(&app), (1, 1, 5));
        app.on_event(Event::ReadMarker {
            room: RoomId(2),
            seq: 6,
        });
        assert_eq!(counts(&app), (0, 0, 6));
        // Not all held: the counts stay as they were until the marker reaches the newest.
        let mut ops = summary(4, "ops", RoomKind::Public, 10, 2);
        ops.mentions = 1;
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(2, "dev", RoomKind::Public, 6, 6),
            ops,
        ]);
        app.on_event(Event::ReadMarker {
            room: RoomId(4),
            seq: 5,
        });
        let ops = &app.rooms[&RoomId(4)].summary;
        assert_eq!((ops.unread, ops.mentions, ops.last_read_seq), (8, 1, 5));
    }

    /// An unread message edited to mention me counts as a mention, and no more once an edit
    /// takes the mention out; a deleted unread message is no longer unread.
    #[test]
    fn edits_and_deletions_of_unread_messages_change_the_counts() {
        let mut app = logged_in_app();
        app.on_event(Event::Message(message(2, 1, (3, "carol"), "see the plan")));
        app.on_event(Event::Message(message(2, 2, (3, "carol"), "and the notes")));
        let counts = |app: &App| {
            let s = &app.rooms[&RoomId(2)].summary;
            (s.unread, s.mentions)
        };
        assert_eq!(counts(&app), (2, 0));
        let edited = |seq: Seq, text: &str| {
            Event::MessageEdited(Message {
                kind: MessageKind::Edited { at: 9_000 },
                ..message(2, seq, (3, "carol"), text)
            })
        };
        app.on_event(edited(1, "see the plan @me"));
        assert_eq!(counts(&app), (2, 1));
        app.on_event(edited(1, "see the plan, @me!"));
        assert_eq!(counts(&app), (2, 1), "still one mention");
        app.on_event(edited(1, "see the plan"));
        assert_eq!(counts(&app), (2, 0));
        app.on_event(edited(1, "@me see the plan"));
        app.on_event(Event::MessageDeleted {
            room: RoomId(2),
            seq: 1,
            by: "carol".into(),
        });
        assert_eq!(counts(&app), (1, 0), "its mention goes with it");
        app.on_event(Event::MessageDeleted {
            room: RoomId(2),
            seq: 1,
            by: "carol".into(),
        });
        assert_eq!(counts(&app), (1, 0), "deleted once");
        // In the room I am reading, nothing was unread: nothing changes.
        app.enter_room(RoomId(2));
        app.on_event(edited(2, "@me and the notes"));
        app.on_event(Event::MessageDeleted {
            room: RoomId(2),
            seq: 2,
            by: "carol".into(),
        });
        assert_eq!(counts(&app), (0, 0));
    }

    /// Messages not held (from before the client started): what the counts tell decides.
    #[test]
    fn an_edit_of_an_unread_message_not_held_counts_when_the_counts_can_tell() {
        let mut app = logged_in_app();
        // dev: 3 unread, none a mention.
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(2, "dev", RoomKind::Public, 3, 0),
        ]);
        app.on_event(Event::MessageEdited(Message {
            kind: MessageKind::Edited { at: 9_000 },
            ..message(2, 2, (3, "carol"), "@me look")
        }));
        let s = &app.rooms[&RoomId(2)].summary;
        assert_eq!((s.unread, s.mentions), (3, 1));
        app.on_event(Event::MessageDeleted {
            room: RoomId(2),
            seq: 3,
            by: "carol".into(),
        });
        let s = &app.rooms[&RoomId(2)].summary;
        assert_eq!((s.unread, s.mentions), (2, 1), "one of two unheld: unknown");
    }

    #[test]
    fn being_banned_says_so() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        app.on_event(Event::Banned {
            room: RoomId(2),
            room_name: "dev".into(),
            by: "bob".into(),
            reason: Some("repeated spam".into()),
        });
        assert!(!app.rooms.contains_key(&RoomId(2)));
        assert_eq!(
            app.flash,
            Some(("bob banned you from #dev: repeated spam".into(), true))
        );
    }

    #[test]
    fn a_change_of_admin_standing_is_told_and_followed() {
        let mut app = logged_in_app();
        app.enter_room(RoomId(2));
        app.members_loaded(
            RoomId(2),
            vec![
                member(2, "bob", RoomRole::Member),
                member(1, "me", RoomRole::Member),
            ],
        );
        let changed = |user: u64, username: &str, admin: bool| Event::AdminChanged {
            user: UserId(user),
            username: username.into(),
            admin,
            by: "alice".into(),
        };
        let is_admin = |app: &App, user: u64| {
            app.rooms[&RoomId(2)]
                .members
                .iter()
                .find(|m| m.user.id == UserId(user))
                .map(|m| m.user.is_admin)
        };
        app.on_event(changed(2, "bob", true));
        assert_eq!(
            (is_admin(&app, 2), is_admin(&app, 1)),
            (Some(true), Some(false))
        );
        assert_eq!(
            app.me.as_ref().map(|m| m.is_admin),
            Some(false),
            "bob's, not mine"
        );
        app.on_event(changed(1, "me", true));
        assert_eq!(app.me.as_ref().map(|m| m.is_admin), Some(true));
        assert_eq!(is_admin(&app, 1), Some(true));
        app.on_event(changed(2, "bob", false));
        assert_eq!(is_admin(&app, 2), Some(false));
        app.on_event(changed(1, "me", false));
        assert_eq!(app.me.as_ref().map(|m| m.is_admin), Some(false));
        assert_eq!(
            notices(&app, 2)[..],
            [
                "alice made bob a server admin",
                "alice made you a server admin",
                "alice took away bob's server admin role",
                "alice took away your server admin role",
            ]
        );
    }

    #[test]
    fn the_first_account_is_told_it_is_the_admin() {
        let greeted = |register: bool, is_admin: bool| {
            let mut app = App::new("host:8888", Some("me"));
            if let Screen::Login(form) = &mut app.screen {
                form.register = register;
            }
            app.logged_in(UserSummary {
                id: UserId(1),
                username: "me".into(),
                is_admin,
            });
            app.rooms_loaded(vec![summary(1, "public", RoomKind::Public, 0, 0)]);
            notices(&app, 1) == [FIRST_ACCOUNT_IS_ADMIN]
        };
        assert!(greeted(true, true));
        assert!(!greeted(true, false), "a later account");
        assert!(!greeted(false, true), "an admin logging in");
    }

    #[test]
    fn info_counts_in_words() {
        use chatroom_protocol::PresenceUpdate;
        let mut app = logged_in_app();
        app.on_event(Event::Presence(vec![PresenceUpdate {
            user: UserId(1),
            username: "me".into(),
            status: PresenceStatus::Online,
            status_message: None,
        }]));
        app.input.set_text("/info");
        app.submit_input();
        app.remove_room(RoomId(2));
        app.remove_room(RoomId(3));
        app.input.set_text("/info");
        app.submit_input();
        assert_eq!(
            notices(&app, 1)[..],
            [
                "you are me (id 1) on host:8888; 3 rooms; 1 user online",
                "you are me (id 1) on host:8888; 1 room; 1 user online",
            ]
        );
    }

    #[test]
    fn my_away_status_follows_the_server() {
        use chatroom_protocol::PresenceUpdate;
        let mut app = logged_in_app();
        let update = |user: u64, status, note: Option<&str>| {
            Event::Presence(vec![PresenceUpdate {
                user: UserId(user),
                username: "x".into(),
                status,
                status_message: note.map(str::to_owned),
            }])
        };
        app.on_event(update(2, PresenceStatus::Away, Some("gone")));
        assert_eq!(app.away, None, "someone else");
        app.on_event(update(1, PresenceStatus::Away, Some("lunch")));
        assert_eq!(app.away.as_deref(), Some("lunch"));
        app.on_event(update(1, PresenceStatus::Online, None));
        assert_eq!(app.away, None);
        app.my_presence(PresenceStatus::Away, None);
        assert_eq!(app.away.as_deref(), Some(""));
    }

    /// The status line's message is about the room it was shown in: switching rooms takes it
    /// away, and one that comes after the switch shows. Staying in the room keeps it.
    #[test]
    fn switching_rooms_clears_the_status_line_message() {
        let mut app = logged_in_app();
        assert_eq!(app.current, Some(RoomId(1)));
        app.flash("they are not banned here", true);
        app.enter_room(RoomId(1));
        assert!(app.flash.is_some(), "still in the room it is about");
        app.enter_room(RoomId(2));
        assert_eq!(app.flash, None, "an error of #public is gone in #dev");
        app.flash("you may not do that here", true);
        assert_eq!(
            app.flash,
            Some(("you may not do that here".into(), true)),
            "one after the switch shows"
        );
        app.flash("topic: release week", false);
        app.cycle_room(1);
        assert_eq!(app.current, Some(RoomId(1)));
        assert_eq!(app.flash, None, "a note about #dev too");
        // At login the room shown is chosen before it is entered: what the login said stays.
        let mut fresh = App::new("host:8888", Some("me"));
        fresh.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        fresh.flash("could not keep the session", true);
        fresh.rooms_loaded(vec![summary(1, "public", RoomKind::Public, 0, 0)]);
        assert!(fresh.flash.is_some());
    }

    /// Entering a room with unread messages remembers where they start, for the divider, until
    /// I leave the room; entering one with none shows none.
    #[test]
    fn the_new_divider_is_kept_until_the_room_is_left() {
        let mut app = logged_in_app();
        let mut dev = summary(2, "dev", RoomKind::Public, 8, 5);
        dev.unread = 3;
        app.rooms_loaded(vec![summary(1, "public", RoomKind::Public, 0, 0), dev]);
        app.enter_room(RoomId(2));
        let entered = Some(Unread {
            after: 5,
            through: 8,
            count: 3,
        });
        assert_eq!(app.rooms[&RoomId(2)].new_after, entered);
        app.on_event(Event::Message(message(2, 9, (2, "bob"), "more")));
        app.enter_room(RoomId(2));
        assert_eq!(app.rooms[&RoomId(2)].new_after, entered, "still in it");
        app.enter_room(RoomId(1));
        assert_eq!(app.rooms[&RoomId(2)].new_after, None, "left");
        app.enter_room(RoomId(2));
        assert_eq!(app.rooms[&RoomId(2)].new_after, None, "nothing was unread");
    }

    /// Where the divider is: the seq of the message under it, if any.
    fn divider_above(app: &App, room: u64) -> Option<Seq> {
        let r = &app.rooms[&RoomId(room)];
        let (row, _) = super::super::ui::divider_row(app, r, 80)?;
        let rows = super::super::ui::timeline_rows(app, r, 80);
        let text = rows.get(row + 1)?.to_string();
        r.timeline.values().find_map(|e| match e {
            Entry::Message(m) if text.contains(&m.text) => Some(m.seq),
            _ => None,
        })
    }

    /// B3: #retro2 read up to 6, then a room notice (7, not news) before this start; three
    /// messages arrive live while I am elsewhere. Entering it, the divider is above the first
    /// of them at once (all three counted are held), not only once the history came, and not
    /// above the notice: it stays there when the history comes.
    #[test]
    fn messages_that_arrived_live_have_the_divider_above_the_first_at_once() {
        let mut app = logged_in_app();
        let mut retro = summary(2, "retro2", RoomKind::Public, 7, 6);
        retro.unread = 0;
        app.rooms_loaded(vec![summary(1, "public", RoomKind::Public, 0, 0), retro]);
        for seq in 8..=10 {
            app.on_event(Event::Message(message(
                2,
                seq,
                (2, "bob"),
                &format!("new {seq}"),
            )));
        }
        assert_eq!(app.rooms[&RoomId(2)].summary.unread, 3);
        let actions = app.enter_room(RoomId(2));
        assert!(actions.contains(&Action::LoadLatest(RoomId(2))));
        assert_eq!(divider_above(&app, 2), Some(8), "before the history came");
        let mut history: Vec<Message> = (1..=10)
            .map(|seq| message(2, seq, (2, "bob"), &format!("new {seq}")))
            .collect();
        for m in &mut history[..6] {
            m.text = format!("old {}", m.seq);
        }
        history[6].kind = MessageKind::System;
        history[6].text = "carol joined".into();
        app.latest_loaded(HistoryPage {
            room: RoomId(2),
            messages: history,
            has_more: false,
        });
        assert_eq!(divider_above(&app, 2), Some(8), "with the history");
    }

    /// No divider when the first unread message is the room's first: a new direct chat. A room
    /// I was added to before anything was said (read marker 0) has its notices above the
    /// divider.
    #[test]
    fn the_divider_needs_something_older_above_it() {
        let mut app = logged_in_app();
        // Two notices in #ops, not counted.
        let mut ops = summary(4, "ops", RoomKind::Private, 2, 0);
        ops.unread = 0;
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0, 0),
            summary(3, "bob", RoomKind::Direct, 0, 0),
            ops,
        ]);
        for seq in 1..=3 {
            app.on_event(Event::Message(message(3, seq, (2, "bob"), "hi")));
        }
        app.enter_room(RoomId(3));
        assert_eq!(
            divider_above(&app, 3),
            None,
            "nothing older in a new direct chat"
        );

        for seq in 3..=4 {
            app.on_event(Event::Message(message(
                4,
                seq,
                (2, "bob"),
                &format!("ops {seq}"),
            )));
        }
        app.enter_room(RoomId(4));
        let added = |seq: Seq, text: &str| {
            let mut m = message(4, seq, (2, "bob"), text);
            m.kind = MessageKind::System;
            m
        };
        let mut page = vec![added(1, "bob added me"), added(2, "bob added carol")];
        page.extend((3..=4).map(|seq| message(4, seq, (2, "bob"), &format!("ops {seq}"))));
        app.latest_loaded(HistoryPage {
            room: RoomId(4),
            messages: page,
            has_more: false,
        });
        assert_eq!(divider_above(&app, 4), Some(3), "below the notices");
    }
}

#[cfg(test)]
mod clock_tests {
    use super::Clock;

    // 2026-01-15 12:00 UTC (winter) and 2026-07-15 12:00 UTC (summer).
    const WINTER: i64 = 1_768_478_400;
    const SUMMER: i64 = 1_784_116_800;

    #[test]
    fn utc_has_no_offset() {
        assert_eq!(Clock::Utc.offset_at(WINTER), 0);
        assert_eq!(Clock::Utc.offset_at(SUMMER), 0);
    }

    /// The local zone comes from `TZ`, which a test may not change in its own process (setting
    /// the environment is unsafe with threads running), so the check runs in a child: this test
    /// binary again, with a Central European `TZ` rule (no tz database needed).
    #[test]
    fn local_time_uses_the_offset_in_force_at_each_message() {
        if std::env::var_os("CHATROOM_CLOCK_PROBE").is_some() {
            println!(
                "offsets {} {}",
                Clock::Local.offset_at(WINTER),
                Clock::Local.offset_at(SUMMER)
            );
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "tui::app::clock_tests::local_time_uses_the_offset_in_force_at_each_message",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CHATROOM_CLOCK_PROBE", "1")
            .env("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
            .output()
            .expect("run the probe");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("offsets 3600 7200"),
            "winter +1 h, summer +2 h: {stdout}"
        );
    }
}
