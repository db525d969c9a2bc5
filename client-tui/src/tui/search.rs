//! Message search in the terminal UI: `/search` opens a results view in place of the message
//! pane. The runtime asks the server ([`Action::Search`]) and answers with
//! [`App::search_loaded`] or [`App::search_failed`]; older results load as the selection
//! reaches the end of the list, as older history does on PgUp.
//!
//! Opening a result (Enter) enters its room and brings the message into view: the room's
//! newest page, then older pages as PgUp would load them (so the timeline stays gapless), up to
//! [`JUMP_PAGES`] of them; the message is highlighted until the room is scrolled back to the
//! bottom or left.

use chatroom_protocol::{MAX_SEARCH_QUERY_CHARS, Message, MessageId, RoomId, SearchPage, Seq};

use super::app::{Action, App};

/// Results asked for per request (the server caps it at its history page size).
pub const SEARCH_PAGE: u32 = 50;
/// Most history pages loaded to reach a message opened from the results.
pub const JUMP_PAGES: u32 = 20;

/// The results view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchView {
    /// Which search this is: answers to an earlier one are dropped.
    pub serial: u64,
    /// The words, as typed.
    pub query: String,
    /// The room searched (`None`: all my rooms).
    pub room: Option<RoomId>,
    /// What was found so far, newest first.
    pub results: Vec<Message>,
    /// Where older results start, when there may be more.
    pub next: Option<MessageId>,
    /// A request is in flight.
    pub loading: bool,
    /// The first answer came.
    pub loaded: bool,
    /// The selected result.
    pub selected: usize,
    /// The first result shown (the list scrolls to keep the selection in view).
    pub top: usize,
}

impl SearchView {
    /// Whether the list ends with a row saying how it goes on (more to load, loading, or
    /// nothing found).
    pub fn has_status_row(&self) -> bool {
        self.loaded && (self.results.is_empty() || self.next.is_some() || self.loading)
    }

    /// The first row to show in a list `rows` tall: from `top`, moved as little as needed to
    /// show the selection (and the status row after the last result when it is selected).
    pub fn window_top(&self, rows: usize) -> usize {
        let rows = rows.max(1);
        let len = self.results.len();
        let selected = self.selected.min(len.saturating_sub(1));
        let last_needed = if selected + 1 >= len && self.has_status_row() {
            len
        } else {
            selected
        };
        let mut top = self.top.min(selected);
        if last_needed >= top + rows {
            top = last_needed + 1 - rows;
        }
        top.min(selected)
    }
}

/// A message opened from the results, on its way into view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jump {
    /// Its room (the current one while the jump lasts).
    pub room: RoomId,
    /// Its place there.
    pub seq: Seq,
    /// History pages still allowed to reach it.
    pub pages_left: u32,
}

/// `text` on one line: a tab becomes spaces up to the next tab stop (counted from the start of
/// the text), line breaks and other control characters become one space.
pub fn one_line(text: &str) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::with_capacity(text.len());
    let mut column = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let w = super::ui::tab_width(column);
                out.extend(std::iter::repeat_n(' ', w));
                column += w;
            }
            c if c.is_control() => {
                out.push(' ');
                column += 1;
            }
            c => {
                out.push(c);
                column += c.width().unwrap_or(0);
            }
        }
    }
    out
}

impl App {
    /// Whether a query is over the server's limit; if so the flash says so.
    pub(super) fn search_too_long(&mut self, query: &str) -> bool {
        let chars = query.chars().count();
        if chars <= MAX_SEARCH_QUERY_CHARS {
            return false;
        }
        self.flash(
            format!(
                "{chars} characters: a search is at most {MAX_SEARCH_QUERY_CHARS}; shorten it by {}",
                chars - MAX_SEARCH_QUERY_CHARS
            ),
            true,
        );
        true
    }

    /// `/search [#ROOM|@USER] WORDS`: opens the results view, searching, in place of any
    /// earlier one. `@user` with no direct chat of mine by that name is one of the words.
    pub fn start_search(&mut self, room: Option<String>, mut query: String) -> Vec<Action> {
        let room = match room {
            Some(name) => match self.find_room(&name) {
                Some(id) => Some(id),
                None if name.starts_with('@') => {
                    query = format!("{name} {query}");
                    None
                }
                None => {
                    self.flash(
                        format!("you are not in {name}; /search looks in your rooms only"),
                        true,
                    );
                    return Vec::new();
                }
            },
            None => None,
        };
        self.next_search += 1;
        let serial = self.next_search;
        self.search = Some(SearchView {
            serial,
            query: query.clone(),
            room,
            results: Vec::new(),
            next: None,
            loading: true,
            loaded: false,
            selected: 0,
            top: 0,
        });
        vec![Action::Search {
            serial,
            query,
            room,
            before: None,
        }]
    }

    /// Results arrived for search `serial` (dropped if that search is no longer shown).
    pub fn search_loaded(&mut self, serial: u64, page: SearchPage) {
        let Some(view) = self.search.as_mut().filter(|v| v.serial == serial) else {
            return;
        };
        view.loading = false;
        view.loaded = true;
        // Newest first, each page older than the last: anything else was had already.
        let mut below = view.results.last().map(|m| m.id);
        for message in page.messages {
            if below.is_none_or(|id| message.id < id) {
                below = Some(message.id);
                view.results.push(message);
            }
        }
        view.next = page.next;
    }

    /// Search `serial` could not be sent or failed: the status line says why. A search that
    /// found nothing yet closes; one with results keeps them (moving down asks again).
    pub fn search_failed(&mut self, serial: u64, error: String) {
        let Some(view) = self.search.as_mut().filter(|v| v.serial == serial) else {
            return;
        };
        view.loading = false;
        if !view.loaded {
            self.search = None;
        }
        self.flash(error, true);
    }

    /// Asks for older results, if there are any and none are on their way.
    pub fn more_results(&mut self) -> Vec<Action> {
        let Some(view) = self.search.as_mut() else {
            return Vec::new();
        };
        let Some(before) = view.next.filter(|_| view.loaded && !view.loading) else {
            return Vec::new();
        };
        view.loading = true;
        vec![Action::Search {
            serial: view.serial,
            query: view.query.clone(),
            room: view.room,
            before: Some(before),
        }]
    }

    /// Moves the selection by `step` results (positive: down, to older ones). Reaching the
    /// last result loads more.
    pub fn move_selection(&mut self, step: isize) -> Vec<Action> {
        let rows = super::ui::search_list_rows(self.viewport);
        let Some(view) = self.search.as_mut() else {
            return Vec::new();
        };
        let len = view.results.len();
        if len > 0 {
            view.selected = (view.selected as isize + step).clamp(0, len as isize - 1) as usize;
        }
        view.top = view.window_top(rows);
        if step > 0 && view.selected + 1 >= len {
            return self.more_results();
        }
        Vec::new()
    }

    /// Closes the results view, back to the room as it was: what arrived there meanwhile
    /// (counted as unread while the view covered it) is seen now if the room is at its newest.
    pub fn close_search(&mut self) {
        if self.search.take().is_none() {
            return;
        }
        if let Some(room) = self.current
            && self.rooms.get(&room).is_some_and(|r| r.scroll == 0)
        {
            self.to_bottom(room);
        }
    }

    /// Enter on a result: closes the view, enters the result's room and brings the message
    /// into view (loading history as needed).
    pub fn open_selected(&mut self) -> Vec<Action> {
        let Some(message) = self
            .search
            .as_ref()
            .and_then(|v| v.results.get(v.selected))
            .cloned()
        else {
            return self.more_results();
        };
        let Some(label) = self.rooms.get(&message.room).map(|r| r.label()) else {
            self.flash("you are no longer in that room", true);
            return Vec::new();
        };
        self.search = None;
        let mut actions = self.enter_room(message.room);
        self.highlight = Some((message.room, message.seq));
        self.jump = Some(Jump {
            room: message.room,
            seq: message.seq,
            pages_left: JUMP_PAGES,
        });
        let when = super::ui::when(self, message.ts);
        self.flash(
            format!(
                "{label}: {}'s message of {when} (#{})",
                message.sender_name, message.seq
            ),
            false,
        );
        actions.extend(self.follow_jump());
        actions
    }

    /// Takes the message opened from the results a step closer to view: once the history
    /// holding it is loaded, scrolls to it; until then asks for the next older page. Called
    /// after each history page arrives.
    pub fn follow_jump(&mut self) -> Vec<Action> {
        let Some(jump) = self.jump else {
            return Vec::new();
        };
        let Some(room) = self
            .rooms
            .get_mut(&jump.room)
            .filter(|_| self.current == Some(jump.room))
        else {
            self.jump = None;
            return Vec::new();
        };
        if room.loading_latest || room.loading_older {
            return Vec::new();
        }
        if room.timeline.contains_key(&(jump.seq, 0)) {
            self.jump = None;
            self.scroll_to_message(jump.room, jump.seq);
            return Vec::new();
        }
        let further_back = room.oldest_seq().is_none_or(|oldest| oldest > jump.seq);
        if room.latest_loaded && room.has_older && further_back && jump.pages_left > 0 {
            let before = room
                .oldest_seq()
                .unwrap_or(room.summary.latest_seq.saturating_add(1));
            room.loading_older = true;
            self.jump = Some(Jump {
                pages_left: jump.pages_left - 1,
                ..jump
            });
            return vec![Action::LoadOlder {
                room: jump.room,
                before,
            }];
        }
        self.jump = None;
        let text = if further_back && room.has_older {
            format!("message #{} is further back: PgUp to reach it", jump.seq)
        } else {
            format!("message #{} could not be loaded", jump.seq)
        };
        self.flash(text, true);
        Vec::new()
    }

    /// Scrolls `room` (the current one) so that message `seq` is in view, a third of the way
    /// down the pane.
    fn scroll_to_message(&mut self, room: RoomId, seq: Seq) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let Some((row, total)) = super::ui::message_row(self, r, self.viewport.0, seq) else {
            return;
        };
        // Scrolled back, the pane's bottom row is the "more rows" marker's.
        let height = usize::from(self.viewport.1.max(2)) - 1;
        let wanted = total as isize - row as isize - height as isize + height as isize / 3;
        let max = total.saturating_sub(height);
        if let Some(r) = self.rooms.get_mut(&room) {
            r.scroll = wanted.clamp(0, max as isize) as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::Entry;
    use chatroom_protocol::{
        HistoryPage, MessageKind, RoomKind, RoomRole, RoomSummary, UserId, UserSummary,
    };

    fn summary(id: u64, name: &str, kind: RoomKind, latest: Seq) -> RoomSummary {
        RoomSummary {
            id: RoomId(id),
            kind,
            name: name.into(),
            topic: String::new(),
            member_count: 2,
            latest_seq: latest,
            last_read_seq: latest,
            unread: 0,
            mentions: 0,
            my_role: Some(RoomRole::Member),
        }
    }

    /// Message ids grow with room and seq, as the server's do with time here.
    fn message(room: u64, seq: Seq, text: &str) -> Message {
        Message {
            id: MessageId(seq * 10 + room),
            room: RoomId(room),
            seq,
            sender: UserId(2),
            sender_name: "bob".into(),
            ts: seq * 60_000,
            kind: MessageKind::Text,
            text: text.into(),
        }
    }

    fn app() -> App {
        let mut app = App::new("host:8888", Some("me"));
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        app.rooms_loaded(vec![
            summary(1, "public", RoomKind::Public, 0),
            summary(2, "dev", RoomKind::Public, 300),
            summary(3, "bob", RoomKind::Direct, 0),
        ]);
        app.viewport = (60, 20);
        app
    }

    fn search(app: &mut App, line: &str) -> Vec<Action> {
        app.input.set_text(line);
        app.submit_input()
    }

    fn page(messages: Vec<Message>, next: Option<u64>) -> SearchPage {
        SearchPage {
            messages,
            next: next.map(MessageId),
        }
    }

    #[test]
    fn slash_search_opens_the_view_and_asks_the_server() {
        let mut app = app();
        assert_eq!(
            search(&mut app, "/search deploy  friday"),
            vec![Action::Search {
                serial: 1,
                query: "deploy  friday".into(),
                room: None,
                before: None
            }]
        );
        let view = app.search.as_ref().expect("the view is open");
        assert!(view.loading && !view.loaded);
        assert_eq!(
            search(&mut app, "/search #DEV deploy"),
            vec![Action::Search {
                serial: 2,
                query: "deploy".into(),
                room: Some(RoomId(2)),
                before: None
            }],
            "a room of mine, by name, any case"
        );
    }

    #[test]
    fn a_room_i_am_not_in_or_a_direct_chat_by_sigil_is_refused() {
        let mut app = app();
        assert!(search(&mut app, "/search #ops deploy").is_empty());
        assert!(app.search.is_none());
        assert_eq!(
            app.flash,
            Some((
                "you are not in #ops; /search looks in your rooms only".into(),
                true
            ))
        );
        // "#bob" names a room, and bob is only a direct chat here.
        assert!(search(&mut app, "/search #bob lunch").is_empty());
    }

    #[test]
    fn at_user_first_searches_my_direct_chat_with_them_or_is_a_word() {
        let mut app = app();
        assert_eq!(
            search(&mut app, "/search @Bob lunch"),
            vec![Action::Search {
                serial: 1,
                query: "lunch".into(),
                room: Some(RoomId(3)),
                before: None
            }],
            "the direct chat with bob"
        );
        assert_eq!(
            search(&mut app, "/search @carol lunch"),
            vec![Action::Search {
                serial: 2,
                query: "@carol lunch".into(),
                room: None,
                before: None
            }],
            "no chat with carol: her name is searched for"
        );
    }

    #[test]
    fn a_query_over_the_limit_stays_in_the_input() {
        let mut app = app();
        let line = format!("/search {}", "x".repeat(MAX_SEARCH_QUERY_CHARS + 1));
        assert!(search(&mut app, &line).is_empty());
        assert_eq!(app.input.text(), line, "kept to shorten");
        assert!(
            app.flash
                .as_ref()
                .is_some_and(|(t, e)| *e && t.contains("at most 256; shorten it by 1")),
            "{:?}",
            app.flash
        );
        assert!(app.search.is_none());
        let line = format!("/search {}", "x".repeat(MAX_SEARCH_QUERY_CHARS));
        assert_eq!(search(&mut app, &line).len(), 1, "the limit itself is fine");
    }

    #[test]
    fn results_pile_up_newest_first_and_the_end_loads_more() {
        let mut app = app();
        search(&mut app, "/search deploy");
        app.search_loaded(
            1,
            page(vec![message(2, 30, "a"), message(1, 20, "b")], Some(201)),
        );
        let view = app.search.as_ref().expect("open");
        assert_eq!(
            (view.results.len(), view.selected, view.loading),
            (2, 0, false)
        );

        // Down to the last result: the next page is asked for, once.
        let more = app.move_selection(1);
        assert_eq!(
            more,
            vec![Action::Search {
                serial: 1,
                query: "deploy".into(),
                room: None,
                before: Some(MessageId(201))
            }]
        );
        assert!(app.move_selection(1).is_empty(), "one request at a time");
        // The next page overlaps what is held: no result twice, order kept.
        app.search_loaded(
            1,
            page(vec![message(1, 20, "b"), message(2, 10, "c")], None),
        );
        let view = app.search.as_ref().expect("open");
        let ids: Vec<u64> = view.results.iter().map(|m| m.id.0).collect();
        assert_eq!(ids, [302, 201, 102]);
        assert_eq!(view.next, None);
        app.move_selection(1);
        assert!(app.move_selection(1).is_empty(), "nothing more to load");
        assert_eq!(app.search.as_ref().map(|v| v.selected), Some(2));
        app.move_selection(-10);
        assert_eq!(app.search.as_ref().map(|v| v.selected), Some(0));
    }

    #[test]
    fn an_empty_page_with_more_to_look_at_offers_to_go_on() {
        let mut app = app();
        search(&mut app, "/search rare");
        app.search_loaded(1, page(Vec::new(), Some(5000)));
        let view = app.search.as_ref().expect("open");
        assert!(view.results.is_empty() && view.has_status_row());
        assert_eq!(
            app.move_selection(1),
            vec![Action::Search {
                serial: 1,
                query: "rare".into(),
                room: None,
                before: Some(MessageId(5000))
            }]
        );
    }

    #[test]
    fn answers_to_an_earlier_search_are_dropped() {
        let mut app = app();
        search(&mut app, "/search first");
        search(&mut app, "/search second");
        app.search_loaded(1, page(vec![message(2, 1, "first")], None));
        let view = app.search.as_ref().expect("open");
        assert!(view.results.is_empty() && !view.loaded);
        app.search_failed(1, "late".into());
        assert_eq!(app.flash, None);
        assert!(app.search.is_some());
    }

    #[test]
    fn a_failure_says_why_and_closes_a_view_with_nothing_in_it() {
        let mut app = app();
        search(&mut app, "/search !!");
        app.search_failed(1, "search for at least one word".into());
        assert!(app.search.is_none());
        assert_eq!(
            app.flash,
            Some(("search for at least one word".into(), true))
        );
        // With results shown, they stay; going down asks again.
        search(&mut app, "/search deploy");
        app.search_loaded(2, page(vec![message(2, 3, "deploy")], Some(1)));
        app.move_selection(1);
        app.search_failed(2, "not connected; waiting to reconnect".into());
        let view = app.search.as_ref().expect("still open");
        assert_eq!(view.results.len(), 1);
        assert!(!view.loading);
        assert_eq!(app.move_selection(1).len(), 1, "asked again");
    }

    #[test]
    fn esc_or_another_command_returns_to_the_room_and_a_new_search_replaces_the_view() {
        use ratatui::crossterm::event::{KeyCode, KeyEvent};
        let mut app = app();
        search(&mut app, "/search deploy");
        app.on_key(KeyEvent::from(KeyCode::Esc));
        assert!(app.search.is_none());
        search(&mut app, "/search deploy");
        assert_eq!(
            search(&mut app, "hello"),
            vec![Action::Send {
                room: RoomId(1),
                text: "hello".into()
            }]
        );
        assert!(app.search.is_none(), "a message goes to the room shown");
        search(&mut app, "/search deploy");
        search(&mut app, "/search other");
        assert_eq!(app.search.as_ref().map(|v| v.query.as_str()), Some("other"));
    }

    #[test]
    fn what_arrives_in_the_room_behind_the_view_is_unread_until_the_view_closes() {
        use chatroom_protocol::Event;
        use ratatui::crossterm::event::{KeyCode, KeyEvent};
        let mut app = app();
        search(&mut app, "/search deploy");
        app.on_event(Event::Message(message(1, 1, "news")));
        assert_eq!(app.rooms[&RoomId(1)].summary.unread, 1, "not seen yet");
        assert!(app.tick(1).is_empty(), "not marked read");
        app.on_key(KeyEvent::from(KeyCode::Esc));
        assert_eq!(app.rooms[&RoomId(1)].summary.unread, 0);
        assert_eq!(
            app.tick(2),
            vec![Action::MarkRead {
                room: RoomId(1),
                seq: 1
            }]
        );
    }

    #[test]
    fn up_down_and_enter_pick_a_result_and_enter_its_room() {
        use ratatui::crossterm::event::{KeyCode, KeyEvent};
        let mut app = app();
        // dev holds its newest page already, so the message is in view at once.
        app.enter_room(RoomId(2));
        app.latest_loaded(HistoryPage {
            room: RoomId(2),
            messages: (201..=300).map(|s| message(2, s, "m")).collect(),
            has_more: true,
        });
        app.enter_room(RoomId(1));
        search(&mut app, "/search m");
        let newer = Message {
            id: MessageId(9999),
            ..message(1, 7, "public")
        };
        app.search_loaded(1, page(vec![newer, message(2, 250, "dev")], None));
        app.on_key(KeyEvent::from(KeyCode::Down));
        app.on_key(KeyEvent::from(KeyCode::Up));
        app.on_key(KeyEvent::from(KeyCode::Down));
        assert_eq!(app.search.as_ref().map(|v| v.selected), Some(1));
        let actions = app.on_key(KeyEvent::from(KeyCode::Enter));
        assert!(app.search.is_none(), "closed");
        assert_eq!(app.current, Some(RoomId(2)));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::LoadOlder { .. } | Action::LoadLatest(_))),
            "nothing to load: {actions:?}"
        );
        assert_eq!(app.highlight, Some((RoomId(2), 250)));
        assert!(
            app.flash.as_ref().is_some_and(|(t, e)| !e
                && t.starts_with("#dev: bob's message of")
                && t.ends_with("(#250)")),
            "{:?}",
            app.flash
        );
        // Scrolled back so that message 250 is on screen.
        let room = &app.rooms[&RoomId(2)];
        assert!(room.scroll > 0);
        let (row, total) =
            crate::tui::ui::message_row(&app, room, app.viewport.0, 250).expect("held");
        let height = usize::from(app.viewport.1) - 1;
        let end = total - room.scroll;
        assert!(
            row >= end - height && row < end,
            "row {row} in {}..{end}",
            end - height
        );
        // Esc goes back to the newest messages, and the highlight goes with it.
        app.on_key(KeyEvent::from(KeyCode::Esc));
        assert_eq!(app.rooms[&RoomId(2)].scroll, 0);
        assert_eq!(app.highlight, None);
    }

    #[test]
    fn a_result_further_back_loads_history_until_it_is_there() {
        let mut app = app();
        search(&mut app, "/search old");
        app.search_loaded(1, page(vec![message(2, 50, "old news")], None));
        // dev was never shown: its newest page first.
        let actions = app.open_selected();
        assert!(
            actions.contains(&Action::LoadLatest(RoomId(2))),
            "{actions:?}"
        );
        assert!(app.jump.is_some());
        app.latest_loaded(HistoryPage {
            room: RoomId(2),
            messages: (201..=300).map(|s| message(2, s, "m")).collect(),
            has_more: true,
        });
        assert_eq!(
            app.follow_jump(),
            vec![Action::LoadOlder {
                room: RoomId(2),
                before: 201
            }]
        );
        assert!(app.follow_jump().is_empty(), "waits for the page");
        app.history_loaded(
            HistoryPage {
                room: RoomId(2),
                messages: (101..=200).map(|s| message(2, s, "m")).collect(),
                has_more: true,
            },
            true,
        );
        assert_eq!(
            app.follow_jump(),
            vec![Action::LoadOlder {
                room: RoomId(2),
                before: 101
            }]
        );
        app.history_loaded(
            HistoryPage {
                room: RoomId(2),
                messages: (1..=100).map(|s| message(2, s, "m")).collect(),
                has_more: false,
            },
            true,
        );
        assert!(app.follow_jump().is_empty());
        assert!(app.jump.is_none(), "arrived");
        let room = &app.rooms[&RoomId(2)];
        let (row, total) =
            crate::tui::ui::message_row(&app, room, app.viewport.0, 50).expect("held");
        let end = total - room.scroll;
        let height = usize::from(app.viewport.1) - 1;
        assert!(
            row >= end - height && row < end,
            "row {row} in {}..{end}",
            end - height
        );
        let seqs: Vec<Seq> = room
            .timeline
            .values()
            .filter_map(|e| match e {
                Entry::Message(m) => Some(m.seq),
                Entry::Notice { .. } => None,
            })
            .collect();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>(), "no gap");
    }

    #[test]
    fn a_result_too_far_back_says_how_to_reach_it() {
        let mut app = app();
        search(&mut app, "/search old");
        app.search_loaded(1, page(vec![message(2, 1, "ancient")], None));
        app.open_selected();
        app.latest_loaded(HistoryPage {
            room: RoomId(2),
            messages: (201..=300).map(|s| message(2, s, "m")).collect(),
            has_more: true,
        });
        if let Some(jump) = app.jump.as_mut() {
            jump.pages_left = 0;
        }
        assert!(app.follow_jump().is_empty());
        assert!(app.jump.is_none());
        assert!(
            app.flash
                .as_ref()
                .is_some_and(|(t, _)| t.contains("PgUp to reach it")),
            "{:?}",
            app.flash
        );
    }

    #[test]
    fn the_list_scrolls_to_keep_the_selection_in_view() {
        let mut app = app();
        app.viewport = (60, 6);
        let rows = crate::tui::ui::search_list_rows(app.viewport);
        search(&mut app, "/search m");
        app.search_loaded(
            1,
            page((1..=20).rev().map(|s| message(2, s, "m")).collect(), None),
        );
        for _ in 0..8 {
            app.move_selection(1);
        }
        let view = app.search.as_ref().expect("open");
        assert_eq!(view.selected, 8);
        assert_eq!(view.top, 8 + 1 - rows, "the selection on the last row");
        app.move_selection(-1);
        let view = app.search.as_ref().expect("open");
        assert_eq!(view.top, 8 + 1 - rows, "no jump when moving back up inside");
    }

    #[test]
    fn one_line_turns_breaks_into_spaces() {
        assert_eq!(one_line("a\nb\tc\r\u{1b}d"), "a b c  d");
    }
}
