//! Snapshots of the terminal UI on ratatui's `TestBackend`, rendered from a plain `App`.

use chatroom_protocol::{
    Event, FileId, FileRef, HistoryPage, Member, Message, MessageId, MessageKind, MuteInfo,
    PresenceStatus, RoomId, RoomKind, RoomRole, RoomSummary, UserId, UserSummary,
};
use chatroom_tui::tui::app::{App, ConnectionState};
use chatroom_tui::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|frame| ui::draw(frame, app)).expect("draw");
    terminal.backend().to_string()
}

fn user(id: u64, name: &str) -> UserSummary {
    UserSummary {
        id: UserId(id),
        username: name.into(),
        is_admin: false,
    }
}

fn room(id: u64, name: &str, kind: RoomKind, unread: u32, mentions: u32) -> RoomSummary {
    RoomSummary {
        id: RoomId(id),
        kind,
        name: name.into(),
        topic: if name == "public" {
            "Everyone is here.".into()
        } else {
            String::new()
        },
        member_count: 3,
        latest_seq: u64::from(unread),
        last_read_seq: 0,
        unread,
        mentions,
        my_role: Some(RoomRole::Member),
    }
}

fn message(seq: u64, from: (u64, &str), minute: u64, text: &str) -> Message {
    Message {
        id: MessageId(seq),
        room: RoomId(1),
        seq,
        sender: UserId(from.0),
        sender_name: from.1.into(),
        ts: (9 * 3600 + minute * 60) * 1000,
        kind: MessageKind::Text,
        text: text.into(),
    }
}

/// A busy afternoon: CJK, a long wrapped line, a mention, unread rooms, presence.
fn busy_app() -> App {
    let mut app = App::new("chat.office.lan:8888", Some("me"));
    app.logged_in(user(1, "me"));
    app.rooms_loaded(vec![
        room(1, "public", RoomKind::Public, 0, 0),
        room(2, "dev", RoomKind::Public, 12, 0),
        room(3, "release-planning", RoomKind::Private, 3, 1),
        room(4, "张伟", RoomKind::Direct, 2, 2),
        room(5, "bob", RoomKind::Direct, 0, 0),
    ]);
    app.enter_room(RoomId(1));
    app.history_loaded(
        HistoryPage {
            room: RoomId(1),
            messages: vec![
                message(1, (2, "alice"), 1, "good morning everyone"),
                message(2, (3, "张伟"), 2, "大家好！今天下午三点开会，请准时参加。"),
                message(
                    3,
                    (2, "alice"),
                    3,
                    "the build is green again after the flaky network test was fixed; \
                     please rebase before merging anything into main today",
                ),
                message(4, (1, "me"), 4, "thanks alice 👍"),
                message(5, (4, "bob"), 5, "@me can you review #42?"),
            ],
            has_more: false,
        },
        false,
    );
    app.members_loaded(
        RoomId(1),
        vec![
            Member {
                user: user(2, "alice"),
                role: RoomRole::Owner,
                status: PresenceStatus::Online,
            },
            Member {
                user: user(4, "bob"),
                role: RoomRole::Member,
                status: PresenceStatus::Away,
            },
            Member {
                user: user(1, "me"),
                role: RoomRole::Member,
                status: PresenceStatus::Online,
            },
            Member {
                user: user(3, "张伟"),
                role: RoomRole::Moderator,
                status: PresenceStatus::Offline,
            },
        ],
    );
    app.now = 9 * 3600 * 1000 + 6 * 60 * 1000;
    app.on_event(Event::Typing {
        room: RoomId(1),
        user: UserId(2),
        username: "alice".into(),
    });
    app.input.set_text("sure, looking at it n");
    app
}

#[test]
fn login_screen() {
    let mut app = App::new("chat.office.lan:8888", None);
    for c in "alice".chars() {
        app.on_key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char(c),
        ));
    }
    insta::assert_snapshot!(render(&app, 70, 14));
}

/// Registering: the password is asked twice, both hidden; the repeat has focus.
#[test]
fn register_form_with_its_repeat_field() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = App::new("chat.office.lan:8888", Some("alice"));
    app.on_key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL));
    for c in "hunter2".chars() {
        app.on_key(KeyEvent::from(KeyCode::Char(c)));
    }
    app.on_key(KeyEvent::from(KeyCode::Enter));
    for c in "hunt".chars() {
        app.on_key(KeyEvent::from(KeyCode::Char(c)));
    }
    insta::assert_snapshot!(render(&app, 70, 14));
}

/// /passwd with the new password typed differently twice: the popup stays, says so, and
/// waits for the repeat again.
#[test]
fn passwd_popup_with_differing_new_passwords() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    let mut app = busy_app();
    app.open_passwd();
    for text in ["old one", "new one", "new eno"] {
        for c in text.chars() {
            app.on_key(KeyEvent::from(KeyCode::Char(c)));
        }
        app.on_key(KeyEvent::from(KeyCode::Enter));
    }
    insta::assert_snapshot!(render(&app, 100, 16));
}

#[test]
fn busy_room_with_cjk_wrapping_unread_counts_and_members() {
    insta::assert_snapshot!(render(&busy_app(), 100, 16));
}

#[test]
fn an_unread_count_the_server_stopped_counting_shows_a_plus() {
    let mut app = busy_app();
    let cap = chatroom_protocol::MAX_UNREAD_COUNT;
    app.rooms_loaded(vec![
        room(1, "public", RoomKind::Public, 0, 0),
        room(2, "dev", RoomKind::Public, cap, 0),
        room(3, "ops", RoomKind::Public, cap - 1, 0),
        room(4, "alerts", RoomKind::Public, cap, 3),
    ]);
    let screen = render(&app, 100, 16);
    // The room list's entry for `name`: its label, then its counts.
    let entry = |name: &str| {
        let line = screen
            .lines()
            .find(|line| line.contains(&format!("#{name} ")))
            .unwrap_or_else(|| panic!("#{name} listed: {screen}"));
        let list = line.split('│').next().unwrap_or_default();
        list.trim_matches(['"', ' '])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(entry("dev"), "#dev 9999+");
    assert_eq!(entry("ops"), "#ops 9998");
    assert_eq!(entry("alerts"), "#alerts 9999+@3");
}

#[test]
fn a_muted_member_is_marked_in_the_member_list() {
    let mut app = busy_app();
    app.mutes_known(
        RoomId(1),
        &[MuteInfo {
            username: "bob".into(),
            by: "alice".into(),
            reason: None,
            since: app.now - 60_000,
            until: Some(app.now + 600_000),
        }],
    );
    insta::assert_snapshot!(render(&app, 100, 16));
}

#[test]
fn help_popup() {
    let mut app = busy_app();
    app.show_help = true;
    insta::assert_snapshot!(render(&app, 100, 52));
}

/// On 80×24 the help does not fit: it opens at the top and scrolls to the key bindings.
#[test]
fn help_popup_on_a_small_terminal_scrolls() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = busy_app();
    app.screen_size = (80, 24);
    app.on_key(KeyEvent::new(KeyCode::F(1), KeyModifiers::NONE));
    insta::assert_snapshot!("help_popup_80x24_top", render(&app, 80, 24));
    app.on_key(KeyEvent::new(KeyCode::End, KeyModifiers::NONE));
    insta::assert_snapshot!("help_popup_80x24_end", render(&app, 80, 24));
}

#[test]
fn disconnected_state() {
    let mut app = busy_app();
    app.disconnected("connection lost".into(), app.now + 4_000);
    assert!(matches!(
        app.connection,
        ConnectionState::Disconnected { .. }
    ));
    insta::assert_snapshot!(render(&app, 100, 16));
}

#[test]
fn scrolled_back_the_marker_has_a_row_of_its_own() {
    let mut app = busy_app();
    let current = app.current.expect("a room");
    app.rooms.get_mut(&current).expect("the room").scroll = 2;
    insta::assert_snapshot!(render(&app, 80, 12));
}

#[test]
fn a_note_comes_first_in_the_status_line() {
    let mut app = busy_app();
    app.flash(
        "you own this room: give the owner role to someone else to hand it over",
        true,
    );
    insta::assert_snapshot!(render(&app, 80, 12));
}

#[test]
fn a_long_input_wraps_and_scrolls_with_the_cursor() {
    let mut app = busy_app();
    let words: Vec<String> = (0..60).map(|i| format!("w{i:03}")).collect();
    app.input.set_text(&words.join(" "));
    insta::assert_snapshot!(render(&app, 80, 16));
}

#[test]
fn a_room_with_an_ai_reply_streaming_in() {
    let mut app = busy_app();
    app.on_event(Event::Message(message(6, (1, "me"), 6, "@ai summary 5")));
    app.on_event(Event::DraftUpdated(chatroom_protocol::Draft {
        room: RoomId(1),
        draft: 3,
        sender: UserId(9),
        sender_name: "ai".into(),
        text: "Summary of the last 5 messages:\n• Who spoke: alice (2), bob (1), me (1), 张伟 (1)\n• Key messages:".into(),
    }));
    insta::assert_snapshot!(render(&app, 100, 16));
}

#[test]
fn a_tiny_terminal_still_renders() {
    insta::assert_snapshot!(render(&busy_app(), 40, 10));
    // Every size down to 1x1 renders without a panic.
    let app = busy_app();
    for width in 1..=45 {
        for height in 1..=12 {
            render(&app, width, height);
        }
    }
}

fn file_message(
    seq: u64,
    from: (u64, &str),
    minute: u64,
    id: u64,
    name: &str,
    size: u64,
) -> Message {
    Message {
        kind: MessageKind::File(Box::new(FileRef {
            id: FileId(id),
            name: name.into(),
            size,
            sha256: [7; 32],
        })),
        // The text the server gives a file message: its description.
        ..message(seq, from, minute, &format!("📎 {name} ({size} B)"))
    }
}

/// The busy room with a build artefact posted, and one message deleted.
fn room_with_files() -> App {
    let mut app = busy_app();
    app.on_event(Event::Message(file_message(
        6,
        (2, "alice"),
        6,
        7,
        "build-1234.tar.gz",
        48_500_000,
    )));
    app.on_event(Event::Message(file_message(
        7,
        (3, "张伟"),
        7,
        8,
        "会议记录.pdf",
        1_536,
    )));
    app.on_event(Event::MessageDeleted {
        room: RoomId(1),
        seq: 4,
        by: "me".into(),
    });
    app.input.set_text("");
    app
}

#[test]
fn a_room_with_file_messages_and_a_deleted_one() {
    insta::assert_snapshot!(render(&room_with_files(), 100, 16));
}

#[test]
fn an_edited_message_says_so() {
    let mut app = busy_app();
    app.on_event(Event::MessageEdited(Message {
        kind: MessageKind::Edited {
            at: (9 * 3600 + 5 * 60) * 1000,
        },
        ..message(4, (1, "me"), 4, "thanks alice 🎉")
    }));
    app.input.set_text("");
    insta::assert_snapshot!(render(&app, 100, 16));
}

#[test]
fn the_transfers_panel_mid_transfer() {
    use chatroom_protocol::transfer::{Phase, Progress};
    use chatroom_tui::tui::transfers::TransferOutcome;
    let mut app = room_with_files();
    // 1: an upload half way, at a steady 2 MiB/s; 2: a download that finished; 3: a download
    // whose connection dropped; 4: one just started.
    app.start_upload("/home/me/Pictures/screenshot-2026-11-21.png");
    for (at, done) in [(0u64, 0u64), (1_000, 2 << 20), (2_000, 4 << 20)] {
        app.transfer_progress(
            1,
            Progress {
                phase: Phase::Sending,
                done,
                total: 10 << 20,
            },
            at,
        );
    }
    app.start_download(Some(FileId(8)));
    app.transfer_ended(
        2,
        TransferOutcome::Done("saved to /home/me/Downloads/chatroom/会议记录 (1).pdf".into()),
    );
    app.start_download(Some(FileId(7)));
    app.transfer_progress(
        3,
        Progress {
            phase: Phase::Receiving,
            done: 20_000_000,
            total: 48_500_000,
        },
        2_000,
    );
    app.transfer_ended(
        3,
        TransferOutcome::Failed {
            error: "connection closed".into(),
            resumable: true,
        },
    );
    app.start_upload("/tmp/big.iso");
    app.flash = None;
    assert!(app.show_transfers, "starting a transfer opens the panel");
    insta::assert_snapshot!(render(&app, 110, 22));
}

/// `/search deploy` on the busy afternoon, on 80×24: hits from three rooms and a direct chat,
/// newest first (a line break shown as a space, a file by its description, a long line cut),
/// the second one selected, and more to load.
#[test]
fn search_results_80x24() {
    use chatroom_protocol::{MessageId, SearchPage};
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    let mut app = busy_app();
    // Forty days on, so that the first morning's hits show their date.
    let day = 24 * 3600 * 1000;
    app.now += 40 * day;
    app.input.set_text("/search deploy");
    app.submit_input();
    let hit =
        |id: u64, room: u64, from: (u64, &str), minute: u64, days_ago: u64, text: &str| Message {
            id: MessageId(id),
            room: RoomId(room),
            ts: message(1, from, minute, text).ts + (40 - days_ago) * day,
            ..message(id, from, minute, text)
        };
    let file = Message {
        id: MessageId(5),
        ts: file_message(1, (2, "alice"), 2, 9, "deploy-checklist.pdf", 1).ts,
        ..file_message(3, (2, "alice"), 2, 9, "deploy-checklist.pdf", 1)
    };
    app.search_loaded(
        1,
        SearchPage {
            messages: vec![
                hit(9, 2, (2, "alice"), 5, 0, "deploy friday at 5?\nor monday"),
                hit(8, 4, (3, "张伟"), 4, 0, "deploy 的文档在这里"),
                hit(
                    6,
                    3,
                    (4, "bob"),
                    3,
                    40,
                    "the deploy window moved: the whole release-planning group agreed \
                     on thursday evening, after the freeze",
                ),
                file,
            ],
            next: Some(MessageId(5)),
        },
    );
    app.on_key(KeyEvent::from(KeyCode::Down));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn search_found_nothing() {
    use chatroom_protocol::SearchPage;
    let mut app = busy_app();
    app.input.set_text("/search #dev \"no such\" phrase");
    app.submit_input();
    app.search_loaded(
        1,
        SearchPage {
            messages: Vec::new(),
            next: None,
        },
    );
    insta::assert_snapshot!(render(&app, 80, 12));
}

/// A room of 40 messages, the first of them the room's notice that alice joined, entered on
/// 80×24 as the runtime lays it out.
fn long_room() -> App {
    let mut app = App::new("chat.office.lan:8888", Some("me"));
    app.logged_in(user(1, "me"));
    let mut summary = room(1, "public", RoomKind::Public, 0, 0);
    summary.latest_seq = 40;
    summary.last_read_seq = 40;
    app.rooms_loaded(vec![summary]);
    app.viewport = ui::message_pane(&app, 80, 24);
    let mut messages = vec![Message {
        kind: MessageKind::System,
        ..message(1, (2, "alice"), 0, "alice joined")
    }];
    messages.extend((2..=40).map(|seq| message(seq, (2, "alice"), seq, &format!("message {seq}"))));
    app.latest_loaded(HistoryPage {
        room: RoomId(1),
        messages,
        has_more: false,
    });
    app
}

/// PgUp all the way back: the room's first message (seq 1) is at the top, under its day's
/// divider, not one row above it behind the "more rows" marker.
#[test]
fn scrolled_all_the_way_back_the_first_message_is_at_the_top() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    let mut app = long_room();
    for _ in 0..5 {
        app.on_key(KeyEvent::from(KeyCode::PageUp));
    }
    let screen = render(&app, 80, 24);
    let mut rows = screen.lines().skip(1);
    let first_row = rows.next().expect("a row under the title");
    assert!(first_row.contains("── Today ──"), "{screen}");
    let second_row = rows.next().expect("a row under the day");
    assert!(second_row.contains("* alice joined"), "{screen}");
    insta::assert_snapshot!(screen);
    // PgDn back down and up again: the same top.
    for _ in 0..5 {
        app.on_key(KeyEvent::from(KeyCode::PageDown));
    }
    assert_eq!(app.current_room().map(|r| r.scroll), Some(0));
    for _ in 0..5 {
        app.on_key(KeyEvent::from(KeyCode::PageUp));
    }
    assert_eq!(render(&app, 80, 24), screen);
}

/// Tabs reach the next tab stop (every 4 columns) in the message pane, the search results
/// and the input, instead of vanishing.
#[test]
fn tabs_become_spaces_to_the_next_tab_stop() {
    use chatroom_protocol::SearchPage;
    let mut app = busy_app();
    app.on_event(Event::Message(message(
        6,
        (2, "alice"),
        6,
        "col1\tcol2\nab\tcd",
    )));
    app.input.set_text("x\ty");
    let screen = render(&app, 100, 16);
    assert!(screen.contains("09:06 alice: col1    col2"), "{screen}");
    assert!(screen.contains("› x   y"), "{screen}");
    insta::assert_snapshot!("tabs_in_the_message_pane_and_input", screen);

    app.input.set_text("/search col1");
    app.submit_input();
    app.search_loaded(
        1,
        SearchPage {
            messages: vec![message(6, (2, "alice"), 6, "col1\tcol2")],
            next: None,
        },
    );
    let screen = render(&app, 100, 16);
    assert!(screen.contains("alice: col1    col2"), "{screen}");
}

/// `/edit` alone: the text to correct is in the input, and the marker above it says what Enter
/// and Esc do.
#[test]
fn editing_a_message_is_marked_above_the_input() {
    let mut app = busy_app();
    app.input.set_text("/edit");
    app.submit_input();
    assert_eq!(app.input.text(), "thanks alice 👍");
    insta::assert_snapshot!(render(&app, 100, 16));
}

/// `/delete alice`: her newest message is quoted above the input (cut short, on one line),
/// with what y and n do.
#[test]
fn deleting_someones_message_asks_first_above_the_input() {
    let mut app = busy_app();
    app.input.set_text("/delete alice");
    assert!(app.submit_input().is_empty(), "nothing before y");
    insta::assert_snapshot!(render(&app, 100, 16));
}

/// `/delete` of a file message quotes the file by name and size, with one 📎.
#[test]
fn deleting_a_file_message_names_the_file_once() {
    let mut app = room_with_files();
    app.input.set_text("/delete 张伟");
    assert!(app.submit_input().is_empty(), "nothing before y");
    let screen = render(&app, 120, 16);
    let marker = screen
        .lines()
        .find(|line| line.contains("delete 张伟's message"))
        .unwrap_or_else(|| panic!("no delete marker: {screen}"));
    assert!(marker.contains("“📎 会议记录.pdf · 1.5 KiB”"), "{marker}");
    assert_eq!(marker.matches('📎').count(), 1, "{marker}");
}

/// `/delete me` typed by me: "delete your message", not "me's".
#[test]
fn deleting_my_own_message_by_name_says_your() {
    let mut app = busy_app();
    app.input.set_text("/delete me");
    assert!(app.submit_input().is_empty(), "nothing before y");
    let screen = render(&app, 100, 16);
    assert!(
        screen.contains(" ✗ delete your message of 09:04? y deletes it"),
        "{screen}"
    );
}

/// `/delete` alone quotes my newest message above the input and waits, as `/delete USER` does.
#[test]
fn deleting_my_newest_message_asks_first_with_a_preview() {
    let mut app = busy_app();
    app.input.set_text("/delete");
    assert!(app.submit_input().is_empty(), "nothing before y");
    let screen = render(&app, 100, 16);
    assert!(
        screen.contains(
            " ✗ delete your message of 09:04? y deletes it · n cancels · “thanks alice 👍”"
        ),
        "{screen}"
    );
}

/// `/purge bob 1d`: before anything goes, the line above the input says whose messages, in
/// which room and how far back, with what y and n do.
#[test]
fn purging_someones_messages_asks_first_above_the_input() {
    let mut app = busy_app();
    app.input.set_text("/purge @bob 1d");
    assert!(app.submit_input().is_empty(), "nothing before y");
    insta::assert_snapshot!(render(&app, 100, 16));
}

/// Esc on the purge question: the question goes, and the status line says nothing went.
#[test]
fn declining_a_purge_says_nothing_was_deleted() {
    let mut app = busy_app();
    app.input.set_text("/purge bob 10m");
    assert!(app.submit_input().is_empty(), "nothing before y");
    let asked = render(&app, 100, 16);
    assert!(
        asked.contains(
            " ✗ delete everything bob posted in #public over the last 10 min? y deletes it · \
             n cancels"
        ),
        "{asked}"
    );
    let esc = ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Esc);
    assert!(app.on_key(esc).is_empty(), "nothing sent");
    let declined = render(&app, 100, 16);
    assert!(!declined.contains(" ✗ "), "{declined}");
    assert!(
        declined.contains(" cancelled: nothing deleted · chat.office.lan:8888"),
        "{declined}"
    );
}

/// `/user delete bob`: before anything goes, the line above the input names the account and
/// says it cannot be undone, with what y and n do.
#[test]
fn deleting_an_account_asks_first_above_the_input() {
    let mut app = busy_app();
    app.input.set_text("/user delete @bob");
    assert!(app.submit_input().is_empty(), "nothing before y");
    let asked = render(&app, 100, 16);
    assert!(
        asked.contains(" ✗ delete bob's account? It cannot be undone · y deletes it · n cancels"),
        "{asked}"
    );
}

/// Away, the status line says so (with the status text) after the confirmation has gone.
#[test]
fn my_away_status_shows_in_the_status_line() {
    let mut app = busy_app();
    app.on_event(Event::Presence(vec![chatroom_protocol::PresenceUpdate {
        user: UserId(1),
        username: "me".into(),
        status: PresenceStatus::Away,
        status_message: Some("lunch".into()),
    }]));
    let screen = render(&app, 100, 16);
    assert!(screen.contains("● connected · away: lunch"), "{screen}");
    app.on_event(Event::Presence(vec![chatroom_protocol::PresenceUpdate {
        user: UserId(1),
        username: "me".into(),
        status: PresenceStatus::Online,
        status_message: None,
    }]));
    assert!(!render(&app, 100, 16).contains("away"));
}

/// A long refusal from the server is wrapped inside the form, whole, at 80 columns.
#[test]
fn a_long_error_on_the_register_form_is_shown_whole() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = App::new("chat.office.lan:8888", Some("al ice"));
    app.on_key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL));
    app.login_failed(
        "a user name may contain only letters, digits, '_', '-' and '.', and must start \
         with a letter or digit"
            .into(),
    );
    let screen = render(&app, 80, 16);
    assert!(screen.contains("with a letter or digit"), "{screen}");
    insta::assert_snapshot!(screen);
}

/// Entering a room with more unread messages than fit: a divider above the first of them,
/// scrolled into view at the top of the pane.
#[test]
fn the_first_unread_message_has_a_divider_above_it() {
    let mut app = App::new("chat.office.lan:8888", Some("me"));
    app.logged_in(user(1, "me"));
    let mut dev = room(2, "dev", RoomKind::Public, 30, 0);
    dev.last_read_seq = 10;
    dev.latest_seq = 40;
    app.rooms_loaded(vec![room(1, "public", RoomKind::Public, 0, 0), dev]);
    app.viewport = ui::message_pane(&app, 80, 24);
    app.enter_room(RoomId(2));
    app.latest_loaded(HistoryPage {
        room: RoomId(2),
        messages: (1..=40)
            .map(|seq| Message {
                room: RoomId(2),
                ..message(seq, (2, "alice"), seq, &format!("message {seq}"))
            })
            .collect(),
        has_more: false,
    });
    let screen = render(&app, 80, 24);
    let rows: Vec<&str> = screen.lines().collect();
    assert!(rows[1].contains("── new ──"), "{screen}");
    assert!(rows[2].contains("message 11"), "{screen}");
    insta::assert_snapshot!(screen);
}

/// The input rows at the bottom of a `width` × 10 screen, with a row of its own under the
/// cursor's row marking where the terminal's cursor is (`^`).
fn render_input(app: &App, width: u16) -> String {
    let height = 10;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|frame| ui::draw(frame, app)).expect("draw");
    let backend = terminal.backend();
    assert!(backend.cursor_visible(), "the input shows a cursor");
    let cursor = backend.cursor_position();
    let rows = ui::input_height(app, width);
    let first = height - rows;
    let screen = backend.to_string();
    let mut out = Vec::new();
    for (y, line) in screen.lines().enumerate().skip(usize::from(first)) {
        out.push(line.to_string());
        if y == usize::from(cursor.y) {
            // One column more for the quote each row starts with.
            out.push(format!("{}^", " ".repeat(usize::from(cursor.x) + 1)));
        }
    }
    out.join("\n")
}

fn press(app: &mut App, code: ratatui::crossterm::event::KeyCode) {
    app.on_key(ratatui::crossterm::event::KeyEvent::from(code));
}

/// A long input wraps at spaces, as the messages do, and typed at the end of a full row, a
/// space starts the next row and a letter takes its word down with it; the cursor follows.
#[test]
fn a_long_input_wraps_at_spaces_and_typing_moves_the_cursor_along() {
    use ratatui::crossterm::event::KeyCode;
    let mut app = busy_app();
    app.input.set_text("");
    // 28 characters: the row, behind the prompt, to its edge.
    for c in "please review these numbers.".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    let full = render_input(&app, 30);
    insta::assert_snapshot!("input_full_row_cursor_below", full);
    press(&mut app, KeyCode::Char('x'));
    let word_moved = render_input(&app, 30);
    insta::assert_snapshot!("input_word_moved_down_with_the_cursor", word_moved);
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Char(' '));
    insta::assert_snapshot!("input_space_at_the_edge", render_input(&app, 30));
}

/// Left, Right, Home and End move the cursor over the wrapped rows, across their ends too, to
/// where each character is drawn.
#[test]
fn the_cursor_moves_over_wrapped_input_rows() {
    use ratatui::crossterm::event::KeyCode;
    let mut app = busy_app();
    app.input
        .set_text("the build is green again after the flaky network test was fixed");
    let mut screens = vec![render_input(&app, 30)];
    for _ in 0.."fixed".len() {
        press(&mut app, KeyCode::Left);
    }
    screens.push(render_input(&app, 30));
    press(&mut app, KeyCode::Left);
    screens.push(render_input(&app, 30));
    press(&mut app, KeyCode::Home);
    screens.push(render_input(&app, 30));
    for _ in 0.."the build is green again ".len() {
        press(&mut app, KeyCode::Right);
    }
    screens.push(render_input(&app, 30));
    press(&mut app, KeyCode::Left);
    screens.push(render_input(&app, 30));
    press(&mut app, KeyCode::End);
    screens.push(render_input(&app, 30));
    insta::assert_snapshot!(screens.join("\n---\n"));
}

/// Unix millis of a UTC date and time (the app's clock is UTC in these tests).
fn utc_ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> u64 {
    let at = chrono::NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|day| day.and_hms_opt(h, min, 0))
        .expect("a valid date");
    at.and_utc().timestamp() as u64 * 1000
}

/// Message `seq` of room 1 from alice, sent at `ts`.
fn alice_at(seq: u64, ts: u64, text: &str) -> Message {
    Message {
        ts,
        ..message(seq, (2, "alice"), 0, text)
    }
}

/// Me in `public`, with its whole history `messages`.
fn in_public_with(messages: Vec<Message>) -> App {
    let mut app = App::new("chat.office.lan:8888", Some("me"));
    app.logged_in(user(1, "me"));
    app.rooms_loaded(vec![room(1, "public", RoomKind::Public, 0, 0)]);
    app.enter_room(RoomId(1));
    app.history_loaded(
        HistoryPage {
            room: RoomId(1),
            messages,
            has_more: false,
        },
        false,
    );
    app
}

/// Monday morning in a room whose history goes back to last New Year's Eve: a line above the
/// first message of each day says which day it is, "Today" and "Yesterday" by name, the year
/// only when it is not this one.
#[test]
fn a_timeline_over_several_days_has_a_divider_above_each_day() {
    let mut app = in_public_with(vec![
        alice_at(1, utc_ms(2025, 12, 31, 23, 50), "happy new year, nearly"),
        alice_at(2, utc_ms(2026, 11, 20, 16, 55), "deploying the release now"),
        alice_at(
            3,
            utc_ms(2026, 11, 20, 17, 30),
            "deployed, have a good weekend",
        ),
        alice_at(4, utc_ms(2026, 11, 22, 21, 10), "anyone around?"),
        alice_at(5, utc_ms(2026, 11, 23, 9, 2), "good morning"),
        alice_at(6, utc_ms(2026, 11, 23, 9, 30), "standup in 5"),
    ]);
    app.now = utc_ms(2026, 11, 23, 10, 0);
    let screen = render(&app, 80, 16);
    let dividers: Vec<&str> = screen
        .lines()
        .filter(|row| row.contains("───"))
        .map(|row| {
            row.split('│')
                .nth(1)
                .unwrap_or(row)
                .trim_matches(|c: char| c == '─' || c == ' ')
        })
        .collect();
    assert_eq!(
        dividers,
        [
            "Wednesday 31 December 2025",
            "Friday 20 November",
            "Yesterday",
            "Today"
        ],
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

/// An answer streaming in on a new day goes under that day's divider, as it will once stored;
/// a second draft on the same day gets none of its own.
#[test]
fn a_reply_streaming_on_a_new_day_has_the_days_divider_above_it() {
    let mut app = in_public_with(vec![alice_at(
        1,
        utc_ms(2026, 11, 22, 23, 58),
        "@ai what is a WAL checkpoint?",
    )]);
    app.now = utc_ms(2026, 11, 23, 0, 1);
    for (id, text) in [(7, "A checkpoint copies the WAL"), (8, "Also")] {
        app.on_event(chatroom_protocol::Event::DraftUpdated(
            chatroom_protocol::Draft {
                room: RoomId(1),
                draft: id,
                sender: UserId(9),
                sender_name: "ai".into(),
                text: text.into(),
            },
        ));
    }
    let screen = render(&app, 100, 12);
    let rows: Vec<&str> = screen
        .lines()
        .filter_map(|row| row.split('│').nth(1))
        .map(|row| row.trim_matches(|c: char| c == '─' || c == ' '))
        .filter(|row| !row.is_empty())
        .collect();
    assert_eq!(
        rows,
        [
            "#public — Everyone is here.",
            "Yesterday",
            "23:58 alice: @ai what is a WAL checkpoint?",
            "Today",
            "00:01 ai: A checkpoint copies the WAL …",
            "00:01 ai: Also …",
        ],
        "{screen}"
    );
}

/// Back on Monday to messages that came in since Friday afternoon, more than fit: the room
/// opens scrolled to the first unread one, with its day's divider and then the "new" one
/// above it, both in view.
#[test]
fn a_new_day_and_the_first_unread_message_have_both_dividers_above_it() {
    let mut app = App::new("chat.office.lan:8888", Some("me"));
    app.logged_in(user(1, "me"));
    let mut dev = room(2, "dev", RoomKind::Public, 30, 0);
    dev.last_read_seq = 10;
    dev.latest_seq = 40;
    app.rooms_loaded(vec![room(1, "public", RoomKind::Public, 0, 0), dev]);
    app.now = utc_ms(2026, 11, 23, 10, 0);
    app.viewport = ui::message_pane(&app, 80, 24);
    app.enter_room(RoomId(2));
    let friday = utc_ms(2026, 11, 20, 16, 0);
    let monday = utc_ms(2026, 11, 23, 8, 0);
    app.latest_loaded(HistoryPage {
        room: RoomId(2),
        messages: (1..=40)
            .map(|seq| {
                let ts = if seq <= 10 { friday } else { monday } + seq * 60_000;
                Message {
                    room: RoomId(2),
                    ..alice_at(seq, ts, &format!("message {seq}"))
                }
            })
            .collect(),
        has_more: false,
    });
    let screen = render(&app, 80, 24);
    let rows: Vec<&str> = screen.lines().collect();
    assert!(rows[1].contains("── Today ──"), "{screen}");
    assert!(rows[2].contains("── new ──"), "{screen}");
    assert!(rows[3].contains("08:11 alice: message 11"), "{screen}");
    insta::assert_snapshot!(screen);
    // Scrolled back to the top: Friday's messages under Friday's divider.
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    for _ in 0..5 {
        app.on_key(KeyEvent::from(KeyCode::PageUp));
    }
    let top = render(&app, 80, 24);
    let rows: Vec<&str> = top.lines().collect();
    assert!(rows[1].contains("── Friday 20 November ──"), "{top}");
    assert!(rows[2].contains("16:01 alice: message 1"), "{top}");
}
