//! Rendering: everything on screen is drawn from a borrowed [`App`], so a frame is a pure
//! function of the state and can be snapshot-tested on ratatui's `TestBackend`.
//!
//! Message text is wrapped here, by display width (CJK characters and most emoji take two
//! columns), with continuation rows indented under the text.

use chatroom_protocol::{
    FileRef, Message, MessageKind, PresenceStatus, RoomId, RoomKind, RoomRole, Seq,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthChar;

use super::app::{
    App, ConnectionState, Entry, LoginField, LoginForm, PasswdField, PasswdForm, RoomState, Screen,
};
use super::commands::{HELP, KEYS, QUOTING};
use super::confirms::Confirming;
use super::editor::LineEditor;
use super::search::{SearchView, one_line};
use super::transfers::{TransferState, TransferView};
use crate::output::{human_bytes, human_duration, human_rate};
use chatroom_protocol::transfer::{Phase, sanitize_file_name};

/// Below this width the member list is hidden.
const MEMBERS_MIN_WIDTH: u16 = 70;
const ROOMS_WIDTH: u16 = 22;
const MEMBERS_WIDTH: u16 = 20;

/// Stable per-user colours: the same name gets the same colour on every screen.
const NAME_COLOURS: &[Color] = &[
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightMagenta,
    Color::LightBlue,
    Color::Yellow,
    Color::LightCyan,
];

/// The colour of a user name (FNV-1a of the lowercase name).
pub fn name_colour(name: &str) -> Color {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.to_lowercase().bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    NAME_COLOURS[hash as usize % NAME_COLOURS.len()]
}

fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    match &app.screen {
        Screen::Login(form) => draw_login(frame, app, form),
        Screen::Chat => draw_chat(frame, app),
    }
    if let Some(form) = &app.passwd {
        draw_passwd(frame, form);
    }
    if app.show_help {
        draw_help(frame, app);
    }
}

fn draw_passwd(frame: &mut Frame, form: &PasswdForm) {
    let area = centered(frame.area(), 44, 7);
    frame.render_widget(Clear, area);
    let block = Block::bordered().title(" change password · Esc to cancel ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let row = |label: &str, field: &LineEditor, which: PasswdField| {
        Line::from(vec![
            Span::styled(
                format!(
                    "{} {label:<13}",
                    if form.focus == which { "›" } else { " " }
                ),
                dim(),
            ),
            Span::raw("•".repeat(field.text().chars().count())),
        ])
    };
    let lines = vec![
        row("current", &form.old, PasswdField::Current),
        row("new", &form.new, PasswdField::New),
        row("repeat new", &form.repeat, PasswdField::Repeat),
        match &form.error {
            Some(error) => Line::from(Span::styled(
                format!("  {error}"),
                Style::new().fg(Color::Red),
            )),
            None => Line::default(),
        },
        Line::from(Span::styled("  other sessions will be logged out", dim())),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// The login form's width, borders included.
const LOGIN_WIDTH: u16 = 60;

fn draw_login(frame: &mut Frame, app: &App, form: &LoginForm) {
    // The last failure, wrapped to the form's width: the form grows to show all of it.
    let error_rows = match (&form.error, form.busy) {
        (Some(error), false) => wrap(
            &[(format!("  {error}"), Style::new().fg(Color::Red))],
            usize::from(LOGIN_WIDTH.min(frame.area().width).saturating_sub(2)),
            2,
        ),
        _ => Vec::new(),
    };
    let extra = u16::try_from(error_rows.len().saturating_sub(1)).unwrap_or(0);
    let area = centered(frame.area(), LOGIN_WIDTH, 10 + extra);
    frame.render_widget(Clear, area);
    let title = if form.register {
        " Chat-Room · create an account "
    } else {
        " Chat-Room · log in "
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Labels take the longest one's width, so "repeat password" has room when registering.
    let label_width = if form.register { 16 } else { 9 };
    let field = |label: &str, value: String, which: LoginField| {
        let focused = form.focus == which;
        let marker = if focused { "›" } else { " " };
        Line::from(vec![
            Span::styled(format!("{marker} {label:<label_width$}"), dim()),
            Span::styled(
                value,
                if focused {
                    Style::new().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                },
            ),
        ])
    };
    // Passwords show as dots, one per character.
    let masked = |editor: &LineEditor| "•".repeat(editor.text().chars().count());
    let mut lines = vec![
        Line::from(Span::styled(
            format!("  {:<label_width$}{}", "server", app.server),
            dim(),
        )),
        Line::default(),
        field("user", form.username.text(), LoginField::Username),
        field("password", masked(&form.password), LoginField::Password),
    ];
    if form.register {
        lines.push(field(
            "repeat password",
            masked(&form.repeat),
            LoginField::Repeat,
        ));
    }
    lines.push(Line::default());
    match (&form.error, form.busy) {
        (_, true) => lines.push(Line::from(Span::styled("  connecting…", dim()))),
        (Some(_), false) => lines.extend(error_rows),
        (None, false) => lines.push(Line::default()),
    }
    let toggle = if form.register {
        "Ctrl-R: log in"
    } else {
        "Ctrl-R: new account"
    };
    lines.push(Line::from(Span::styled(
        format!("  Enter: go · Tab: next · {toggle} · Esc: quit"),
        dim(),
    )));
    frame.render_widget(Paragraph::new(lines), inner);
    // The cursor sits in the focused field (a password field shows dots, one per char).
    let (row, editor) = match form.focus {
        LoginField::Username => (2, &form.username),
        LoginField::Password => (3, &form.password),
        LoginField::Repeat => (4, &form.repeat),
    };
    let prefix = if form.focus == LoginField::Username {
        display_width(
            &editor
                .text()
                .chars()
                .take(editor.cursor())
                .collect::<String>(),
        )
    } else {
        editor.cursor() as u16
    };
    let x = inner.x + 2 + label_width as u16 + prefix;
    if x < inner.x + inner.width && inner.height > row {
        frame.set_cursor_position((x, inner.y + row));
    }
}

/// Where each part of the chat screen goes.
struct ChatAreas {
    rooms: Rect,
    messages: Rect,
    transfers: Rect,
    members: Option<Rect>,
    status: Rect,
    input: Rect,
}

/// The chat screen's parts on `area`.
fn chat_areas(app: &App, area: Rect) -> ChatAreas {
    let input_rows = input_height(app, area.width);
    let [main, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(input_rows),
    ])
    .areas(area);
    let rooms_width = ROOMS_WIDTH.min(main.width / 3);
    // The search results use the member list's columns too: the list is the current room's.
    let show_members = app.show_members && main.width >= MEMBERS_MIN_WIDTH && app.search.is_none();
    let members_width = if show_members { MEMBERS_WIDTH } else { 0 };
    let [rooms, middle, members] = Layout::horizontal([
        Constraint::Length(rooms_width),
        Constraint::Min(1),
        Constraint::Length(members_width),
    ])
    .areas(main);
    let [messages, transfers] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(transfers_height(app, middle.height)),
    ])
    .areas(middle);
    ChatAreas {
        rooms,
        messages,
        transfers,
        members: show_members.then_some(members),
        status,
        input,
    }
}

/// Rows the input takes at `width`: its wrapped lines (at most [`INPUT_ROWS`]), and the
/// marker's row above them while a message is being edited or waits to be deleted.
pub fn input_height(app: &App, width: u16) -> u16 {
    let (rows, _) = input_layout(&app.input.text(), app.input.cursor(), width);
    let marker = u16::from(input_marker(app).is_some());
    (rows.len() as u16).clamp(1, INPUT_ROWS) + marker
}

/// The message pane's size (columns, rows of messages under its title) on a terminal of
/// `width` × `height`, as [`draw`] lays it out.
pub fn message_pane(app: &App, width: u16, height: u16) -> (u16, u16) {
    let areas = chat_areas(app, Rect::new(0, 0, width, height));
    (
        areas.messages.width.saturating_sub(1),
        areas.messages.height.saturating_sub(1),
    )
}

fn draw_chat(frame: &mut Frame, app: &App) {
    let areas = chat_areas(app, frame.area());
    draw_rooms(frame, app, areas.rooms);
    match &app.search {
        Some(view) => draw_search(frame, app, view, areas.messages),
        None => draw_messages(frame, app, areas.messages),
    }
    if areas.transfers.height > 0 {
        draw_transfers(frame, app, areas.transfers);
    }
    if let Some(members) = areas.members {
        draw_members(frame, app, members);
    }
    draw_status(frame, app, areas.status);
    draw_input(frame, app, areas.input);
}

fn draw_rooms(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::new().borders(Borders::RIGHT).border_style(dim());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let mut lines = Vec::new();
    let mut seen_direct = false;
    for id in app.room_order() {
        let room = &app.rooms[&id];
        if room.summary.kind == RoomKind::Direct && !seen_direct {
            seen_direct = true;
            lines.push(Line::from(Span::styled("direct", dim())));
        }
        let unread = crate::output::unread_count(room.summary.unread);
        let counts = match (room.summary.mentions, room.summary.unread) {
            (0, 0) => String::new(),
            (0, _) => format!(" {unread}"),
            (mentions, _) => format!(" {unread}@{mentions}"),
        };
        let label = truncate(&room.label(), width.saturating_sub(counts.chars().count()));
        let pad = width.saturating_sub(display_width(&label) as usize + counts.chars().count());
        let mut style = Style::new();
        if room.summary.unread > 0 {
            style = style.add_modifier(Modifier::BOLD);
        }
        if room.summary.mentions > 0 {
            style = style.fg(Color::Yellow);
        }
        if app.current == Some(id) {
            style = style.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{label}{}", " ".repeat(pad)), style),
            Span::styled(counts, style),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Display width in terminal columns.
pub fn display_width(text: &str) -> u16 {
    text.chars()
        .map(|c| c.width().unwrap_or(0))
        .sum::<usize>()
        .min(usize::from(u16::MAX)) as u16
}

fn truncate(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            if width > 0 && out.chars().count() > 0 {
                out.pop();
                out.push('…');
            }
            return out;
        }
        used += w;
        out.push(c);
    }
    out
}

/// Tab stops are this many columns apart.
pub const TAB: usize = 4;

/// Columns a tab takes at column `at`: to the next tab stop.
pub fn tab_width(at: usize) -> usize {
    TAB - at % TAB
}

/// Wraps styled text into rows of at most `width` columns; rows after the first start with
/// `indent` spaces. Breaks at spaces where it can, anywhere in a long word or CJK text. A tab
/// becomes spaces up to the next tab stop, counted from where its segment (the message text)
/// starts on the row, as the text would look in an editor (one at the end of a row goes).
fn wrap(segments: &[(String, Style)], width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(indent + 2);
    let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
    let mut used = 0usize;
    let new_row = |rows: &mut Vec<Vec<(char, Style)>>| {
        rows.push(
            " ".repeat(indent)
                .chars()
                .map(|s| (s, Style::new()))
                .collect(),
        );
    };
    for (text, style) in segments {
        // Where the segment starts on the current row, for its tab stops.
        let mut start = used;
        for c in text.chars() {
            if c == '\n' {
                new_row(&mut rows);
                used = indent;
                start = indent;
                continue;
            }
            if c == '\t' {
                let w = tab_width(used - start);
                if used + w > width {
                    new_row(&mut rows);
                    used = indent;
                    start = indent;
                    continue;
                }
                let row = rows.last_mut().expect("rows is never empty");
                row.extend(std::iter::repeat_n((' ', *style), w));
                used += w;
                continue;
            }
            let w = c.width().unwrap_or(0);
            if used + w > width {
                let row = rows.last_mut().expect("rows is never empty");
                // Move the unfinished word to the next row when the row has a space to break at.
                let break_at = row
                    .iter()
                    .rposition(|(ch, _)| *ch == ' ')
                    .filter(|&i| i > indent);
                let carried: Vec<(char, Style)> = match (c == ' ', break_at) {
                    (false, Some(i)) => row.split_off(i + 1),
                    _ => Vec::new(),
                };
                let mut next: Vec<(char, Style)> = " "
                    .repeat(indent)
                    .chars()
                    .map(|s| (s, Style::new()))
                    .collect();
                used = indent
                    + carried
                        .iter()
                        .map(|(ch, _)| ch.width().unwrap_or(0))
                        .sum::<usize>();
                next.extend(carried);
                rows.push(next);
                start = indent;
                if c == ' ' {
                    continue;
                }
            }
            rows.last_mut()
                .expect("rows is never empty")
                .push((c, *style));
            used += w;
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            let mut current = String::new();
            let mut current_style = Style::new();
            for (c, style) in row {
                if style != current_style && !current.is_empty() {
                    spans.push(Span::styled(std::mem::take(&mut current), current_style));
                }
                current_style = style;
                current.push(c);
            }
            if !current.is_empty() {
                spans.push(Span::styled(current, current_style));
            }
            Line::from(spans)
        })
        .collect()
}

/// `HH:MM` in the app's time zone.
fn clock(app: &App, ts: u64) -> String {
    let utc = (ts / 1000) as i64;
    let local = utc + app.clock.offset_at(utc);
    let minutes = local.div_euclid(60);
    format!(
        "{:02}:{:02}",
        minutes.div_euclid(60).rem_euclid(24),
        minutes.rem_euclid(60)
    )
}

/// The rows of a room's timeline at `width`, oldest first.
pub fn timeline_rows(app: &App, room: &RoomState, width: u16) -> Vec<Line<'static>> {
    timeline_rows_marking(app, room, width, None).rows
}

/// Where the "new" divider is among the rows of a room's timeline at `width`, and how many
/// rows there are (`None` when the room shows none).
pub fn divider_row(app: &App, room: &RoomState, width: u16) -> Option<(usize, usize)> {
    let timeline = timeline_rows_marking(app, room, width, None);
    timeline.divider.map(|at| (at, timeline.rows.len()))
}

/// The row to put at the top of the pane to show the "new" divider: the day divider above it
/// when the first unread message is also the first of its day, else the "new" divider; and
/// how many rows there are (`None` when the room shows no "new" divider).
pub fn unread_top_row(app: &App, room: &RoomState, width: u16) -> Option<(usize, usize)> {
    let timeline = timeline_rows_marking(app, room, width, None);
    timeline.divider_top.map(|at| (at, timeline.rows.len()))
}

/// How far back a timeline of `total` rows can scroll in a pane `height` rows tall. Scrolled
/// back, the pane's bottom row is the "more rows" marker's, so the oldest row is at the top
/// one row further back than a full pane would put it.
pub fn max_scroll(total: usize, height: usize) -> usize {
    if total <= height {
        0
    } else {
        total - height.saturating_sub(1).max(1)
    }
}

/// The seq of the message the "new" divider goes before: the first of those counted unread
/// when the room was entered (someone else's message after my read marker; a room notice is
/// not news), once its place is known: every one counted is held (they may have arrived live,
/// before the history around them), or everything after the marker is. None when that first
/// unread message is the room's first: there is nothing older to set it apart from (a new
/// direct chat).
fn divider_before(app: &App, room: &RoomState) -> Option<Seq> {
    let unread = room.new_after?;
    let after_marker: Vec<&Message> = room
        .timeline
        .range((unread.after + 1, 0)..)
        .filter_map(|(_, e)| match e {
            Entry::Message(m) if m.seq <= unread.through => Some(m),
            _ => None,
        })
        .collect();
    let news: Vec<Seq> = after_marker
        .iter()
        .filter(|m| app.is_news(m))
        .map(|m| m.seq)
        .collect();
    let first = *news.first()?;
    let all_held = news.len() >= unread.count as usize
        || room
            .oldest_seq()
            .is_some_and(|oldest| oldest <= unread.after + 1)
        || !room.has_older;
    (all_held && first > 1).then_some(first)
}

/// The divider above the first message that was unread when the room was entered.
fn divider_line(width: usize) -> Line<'static> {
    labelled_rule(" new ", Style::new().fg(Color::LightRed), width)
}

/// A row across the pane with `label` in its middle: the "new" and day dividers.
fn labelled_rule(label: &str, style: Style, width: usize) -> Line<'static> {
    let rest = width.saturating_sub(usize::from(display_width(label)) + 1);
    let left = rest / 2;
    Line::from(Span::styled(
        format!(" {}{label}{}", "─".repeat(left), "─".repeat(rest - left)),
        style,
    ))
}

/// The calendar day of `ts` (Unix millis) in a time zone `offset_secs` east of UTC.
fn local_date(ts: u64, offset_secs: i64) -> chrono::NaiveDate {
    let utc = (ts / 1000) as i64;
    chrono::DateTime::from_timestamp(utc + offset_secs, 0)
        .unwrap_or_default()
        .date_naive()
}

/// The calendar day of `ts` in the app's time zone, as [`clock`] shows its time.
fn local_day(app: &App, ts: u64) -> chrono::NaiveDate {
    local_date(ts, app.clock.offset_at((ts / 1000) as i64))
}

/// What a day divider says: `Today`, `Yesterday`, else the weekday and date, with the year
/// when it is not this one (`Monday 23 November`, `Wednesday 31 December 2025`).
fn day_label(day: chrono::NaiveDate, today: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    if day == today {
        "Today".to_string()
    } else if today.pred_opt() == Some(day) {
        "Yesterday".to_string()
    } else if day.year() == today.year() {
        day.format("%A %-d %B").to_string()
    } else {
        day.format("%A %-d %B %Y").to_string()
    }
}

/// Day dividers: one above the first row of each calendar day of the timeline, the first
/// row shown included. It goes in a room whose whole timeline is today too ("Today"): it
/// costs one row, says at once that the times are today's, and keeps the top of any
/// scrollback saying which day it is, so the rows never change meaning as history loads.
/// "Today" is the day of `app.now`, the ticks' clock (a test's chosen time), never the
/// machine's clock read here.
struct DayDividers {
    today: chrono::NaiveDate,
    last: Option<chrono::NaiveDate>,
}

impl DayDividers {
    fn new(app: &App) -> Self {
        DayDividers {
            today: local_day(app, app.now),
            last: None,
        }
    }

    /// The divider to put above a row stamped `ts`, when its day is not the row before's.
    /// A day that comes round again after another (a notice stamped by a clock behind the
    /// server's) is marked again: each time shown is then under its own day.
    fn before(&mut self, app: &App, ts: u64, width: usize) -> Option<Line<'static>> {
        let day = local_day(app, ts);
        if self.last == Some(day) {
            return None;
        }
        self.last = Some(day);
        let label = format!(" {} ", day_label(day, self.today));
        Some(labelled_rule(&label, dim(), width))
    }
}

/// Where message `seq` starts among the rows of a room's timeline at `width`, and how many
/// rows there are (`None` when the message is not held).
pub fn message_row(app: &App, room: &RoomState, width: u16, seq: Seq) -> Option<(usize, usize)> {
    let timeline = timeline_rows_marking(app, room, width, Some(seq));
    timeline.marked.map(|at| (at, timeline.rows.len()))
}

/// The background of the message opened from the search results.
const HIGHLIGHT: Color = Color::Indexed(58);

/// A room's timeline laid out in rows, with where things are among them.
struct TimelineRows {
    rows: Vec<Line<'static>>,
    /// The row where the message asked for starts.
    marked: Option<usize>,
    /// The "new" divider's row.
    divider: Option<usize>,
    /// The first of the dividers above the first unread message: its day divider, if any,
    /// else the "new" divider.
    divider_top: Option<usize>,
}

/// [`timeline_rows`], the row where message `mark` starts, and the dividers' rows.
fn timeline_rows_marking(
    app: &App,
    room: &RoomState,
    width: u16,
    mark: Option<Seq>,
) -> TimelineRows {
    let width = usize::from(width);
    let mut marked = None;
    let divider = divider_before(app, room);
    let mut divider_at = None;
    let mut divider_top = None;
    let mut days = DayDividers::new(app);
    let highlight = app
        .highlight
        .filter(|(id, _)| *id == room.summary.id)
        .map(|(_, seq)| seq);
    let me = app.me.as_ref().map(|m| m.id);
    let mut rows = Vec::new();
    if room.has_older {
        rows.push(Line::from(Span::styled(
            if room.loading_older {
                "  loading older messages…"
            } else {
                "  PgUp for older messages"
            },
            dim(),
        )));
    }
    for entry in room.timeline.values() {
        let mut segments: Vec<(String, Style)>;
        let indent;
        let ts = match entry {
            Entry::Message(m) => m.ts,
            Entry::Notice { ts, .. } => *ts,
        };
        // Notices show a time as messages do, so they are under a day too. When the first
        // unread message is also the first of its day, the day's divider goes above "new".
        let day_at = rows.len();
        rows.extend(days.before(app, ts, width));
        if let Entry::Message(m) = entry
            && divider == Some(m.seq)
        {
            divider_at = Some(rows.len());
            divider_top = Some(day_at);
            rows.push(divider_line(width));
        }
        if let Entry::Message(m) = entry
            && mark == Some(m.seq)
        {
            marked = Some(rows.len());
        }
        match entry {
            Entry::Message(m) if m.kind == MessageKind::Deleted => {
                segments = vec![(
                    format!("{} {}: message deleted", clock(app, m.ts), m.sender_name),
                    dim().add_modifier(Modifier::ITALIC),
                )];
                indent = 8;
            }
            Entry::Message(m) if m.kind == MessageKind::System => {
                let style = dim().add_modifier(Modifier::ITALIC);
                segments = vec![(format!("{} * {}", clock(app, m.ts), m.text), style)];
                indent = 8;
            }
            Entry::Message(m) => {
                let own = Some(m.sender) == me;
                let name_style = if own {
                    Style::new().fg(Color::White).add_modifier(Modifier::BOLD)
                } else {
                    Style::new().fg(name_colour(&m.sender_name))
                };
                let text_style = if app.is_mention(m) {
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
                } else if own {
                    Style::new().fg(Color::Gray)
                } else {
                    Style::new()
                };
                let prefix = format!("{} ", clock(app, m.ts));
                let name = format!("{}: ", m.sender_name);
                indent = prefix.chars().count() + 2;
                segments = match &m.kind {
                    MessageKind::File(file) => vec![
                        (prefix, dim()),
                        (name, name_style),
                        (
                            format!("{} · {}", file_label(file), m.sender_name),
                            Style::new().fg(Color::LightCyan),
                        ),
                        (format!("  /download {}", file.id), dim()),
                    ],
                    MessageKind::Edited { .. } => vec![
                        (prefix, dim()),
                        (name, name_style),
                        (m.text.clone(), text_style),
                        (" (edited)".to_string(), dim()),
                    ],
                    _ => vec![
                        (prefix, dim()),
                        (name, name_style),
                        (m.text.clone(), text_style),
                    ],
                };
            }
            Entry::Notice { ts, text } => {
                segments = vec![(
                    format!("{} — {text}", clock(app, *ts)),
                    dim().add_modifier(Modifier::ITALIC),
                )];
                indent = 8;
            }
        }
        if let Entry::Message(m) = entry
            && highlight == Some(m.seq)
        {
            for (_, style) in &mut segments {
                *style = style.bg(HIGHLIGHT);
            }
        }
        rows.extend(wrap(&segments, width, indent));
    }
    // Replies being written, after everything stored: dim, growing, marked with "…".
    for draft in room.drafts.values() {
        rows.extend(days.before(app, app.now, width));
        let prefix = format!("{} ", clock(app, app.now));
        let indent = prefix.chars().count() + 2;
        let style = dim().add_modifier(Modifier::ITALIC);
        let segments = vec![
            (prefix, dim()),
            (
                format!("{}: ", draft.sender_name),
                Style::new().fg(name_colour(&draft.sender_name)),
            ),
            (format!("{} …", draft.text.trim_end()), style),
        ];
        rows.extend(wrap(&segments, width, indent));
    }
    TimelineRows {
        rows,
        marked,
        divider: divider_at,
        divider_top,
    }
}

fn draw_messages(frame: &mut Frame, app: &App, area: Rect) {
    let Some(room) = app.current_room() else {
        let hint = Paragraph::new("You are in no room. /join one, or /help.").style(dim());
        frame.render_widget(hint, area);
        return;
    };
    let title = if room.summary.topic.is_empty() {
        room.label()
    } else {
        format!("{} — {}", room.label(), room.summary.topic)
    };
    let [title_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let title_line = Line::from(Span::styled(
        truncate(&format!(" {title}"), usize::from(title_area.width)),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    frame.render_widget(Paragraph::new(title_line), title_area);
    let inner = Rect {
        x: body.x + 1,
        width: body.width.saturating_sub(1),
        ..body
    };
    let rows = timeline_rows(app, room, inner.width);
    let scroll = room
        .scroll
        .min(max_scroll(rows.len(), usize::from(inner.height)));
    // Scrolled back, the bottom row is the "more rows" marker's, so it covers no message.
    let shown_height = if scroll > 0 && inner.height > 1 {
        inner.height - 1
    } else {
        inner.height
    };
    let height = usize::from(shown_height);
    let end = rows.len() - scroll;
    let start = end.saturating_sub(height);
    let visible: Vec<Line> = rows[start..end].to_vec();
    // Short timelines sit at the bottom, next to the input, like every chat client.
    let pad = height.saturating_sub(visible.len()) as u16;
    let target = Rect {
        y: inner.y + pad,
        height: shown_height - pad,
        ..inner
    };
    frame.render_widget(Paragraph::new(visible), target);
    if scroll > 0 && inner.height > 0 {
        let more = Line::from(Span::styled(
            format!(" ↓ {scroll} more rows (Esc) "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
        let marker = Rect {
            y: inner.y + inner.height - 1,
            height: 1,
            ..inner
        };
        frame.render_widget(Paragraph::new(more).right_aligned(), marker);
    }
}

/// Rows of results the search view shows at once for a message pane of `viewport` (it has the
/// pane's title row too, and gives one to the header and one to the key hint).
pub fn search_list_rows(viewport: (u16, u16)) -> usize {
    usize::from(viewport.1.saturating_sub(1)).max(1)
}

/// When a message was sent, as the search results show it: `HH:MM` today, `Mar 05 09:30`
/// earlier this year, `2025-12-24` before.
pub fn when(app: &App, ts: u64) -> String {
    let local = |ms: u64| {
        let utc = (ms / 1000) as i64;
        chrono::DateTime::from_timestamp(utc + app.clock.offset_at(utc), 0).unwrap_or_default()
    };
    let (then, now) = (local(ts), local(app.now));
    let format = if then.date_naive() == now.date_naive() {
        "%H:%M"
    } else if chrono::Datelike::year(&then) == chrono::Datelike::year(&now) {
        "%b %d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    then.format(format).to_string()
}

/// A room as the search results name it: `#room`, `@user`, or a room I have left.
fn room_label(app: &App, room: RoomId) -> String {
    app.rooms
        .get(&room)
        .map_or_else(|| "(left)".to_string(), RoomState::label)
}

/// A file as one line names it, `📎 name · size`, from the file itself: the text of its message
/// is the server's description, which has a 📎 of its own.
pub(super) fn file_label(file: &FileRef) -> String {
    format!(
        "📎 {} · {}",
        sanitize_file_name(&file.name),
        human_bytes(file.size)
    )
}

/// What a result shows of a message: its text on one line; a file's description.
fn result_text(message: &Message) -> (String, Style) {
    match &message.kind {
        MessageKind::File(file) => (file_label(file), Style::new().fg(Color::LightCyan)),
        MessageKind::Deleted => (
            "message deleted".into(),
            dim().add_modifier(Modifier::ITALIC),
        ),
        MessageKind::System => (
            format!("* {}", one_line(&message.text)),
            dim().add_modifier(Modifier::ITALIC),
        ),
        MessageKind::Text => (one_line(&message.text), Style::new()),
        MessageKind::Edited { .. } => (
            format!("{} (edited)", one_line(&message.text)),
            Style::new(),
        ),
    }
}

fn draw_search(frame: &mut Frame, app: &App, view: &SearchView, area: Rect) {
    let [title_area, list_area, hint_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let scope = view
        .room
        .map_or_else(|| "all your rooms".to_string(), |r| room_label(app, r));
    let found = view.results.len();
    let count = match (view.loaded, view.next.is_some()) {
        (false, _) => "searching…".to_string(),
        (true, more) => format!(
            "{found} result{}{}",
            if found == 1 { "" } else { "s" },
            if more { " so far" } else { "" }
        ),
    };
    let title = format!(" search: {} · {scope} · {count}", one_line(&view.query));
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(
            truncate(&title, usize::from(title_area.width)),
            Style::new().add_modifier(Modifier::BOLD),
        ))),
        title_area,
    );
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(
            truncate(
                " ↑↓ select · Enter opens it in its room · Esc back",
                usize::from(hint_area.width),
            ),
            dim(),
        ))),
        hint_area,
    );

    let inner = list_area;
    let width = usize::from(inner.width);
    let rows = usize::from(inner.height);
    let top = view.window_top(rows);
    let labels: Vec<String> = view
        .results
        .iter()
        .map(|m| room_label(app, m.room))
        .collect();
    let times: Vec<String> = view.results.iter().map(|m| when(app, m.ts)).collect();
    let label_width = labels
        .iter()
        .map(|l| usize::from(display_width(l)))
        .max()
        .unwrap_or(0)
        .min(12);
    let time_width = times.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    let mut lines = Vec::new();
    for (i, message) in view.results.iter().enumerate().skip(top).take(rows) {
        let label = truncate(&labels[i], label_width);
        let pad = label_width.saturating_sub(usize::from(display_width(&label)));
        // The selection is marked in reverse video, and with a › for terminals without it.
        let marker = if i == view.selected { '›' } else { ' ' };
        let head = format!("{marker}{label}{} ", " ".repeat(pad));
        let time = format!("{:>time_width$} ", times[i]);
        let name = format!("{}: ", one_line(&message.sender_name));
        let used = usize::from(display_width(&head) + display_width(&time) + display_width(&name));
        let (text, text_style) = result_text(message);
        let text = truncate(&text, width.saturating_sub(used));
        let fill = width.saturating_sub(used + usize::from(display_width(&text)));
        let mut spans = vec![
            Span::raw(head),
            Span::styled(time, dim()),
            Span::styled(name, Style::new().fg(name_colour(&message.sender_name))),
            Span::styled(text, text_style),
            Span::raw(" ".repeat(fill)),
        ];
        if i == view.selected {
            for span in &mut spans {
                span.style = span.style.add_modifier(Modifier::REVERSED);
            }
        }
        lines.push(Line::from(spans));
    }
    if view.has_status_row() && lines.len() < rows {
        let status = match (view.results.is_empty(), view.loading, view.next.is_some()) {
            (_, true, _) => "searching further back…",
            (true, false, false) => "no messages found",
            (true, false, true) => "nothing among the newest matches; ↓ searches further back",
            (false, false, _) => "↓ for older results",
        };
        lines.push(Line::from(Span::styled(
            truncate(&format!(" {status}"), width),
            dim().add_modifier(Modifier::ITALIC),
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Most transfers the panel shows at once (the newest).
const TRANSFER_ROWS: usize = 5;

/// Rows the transfers panel takes in a column `height` rows tall (0 when hidden).
pub fn transfers_height(app: &App, height: u16) -> u16 {
    if !app.show_transfers {
        return 0;
    }
    let rows = app.transfers.len().clamp(1, TRANSFER_ROWS) as u16 + 1;
    rows.min(height / 2)
}

fn transfer_line(t: &TransferView, width: usize) -> Line<'static> {
    let arrow = if t.is_upload() { "↑" } else { "↓" };
    let head = format!("{:>2} {arrow} {} ", t.id, truncate(&t.name, 24));
    let mut spans = vec![Span::styled(
        head.clone(),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    let used = usize::from(display_width(&head));
    match &t.state {
        TransferState::Running => {
            let Some(p) = t.progress else {
                spans.push(Span::styled("starting…", dim()));
                return Line::from(spans);
            };
            let word = match p.phase {
                Phase::Hashing => "hashing ",
                Phase::Verifying => "verifying ",
                Phase::Sending | Phase::Receiving => "",
            };
            // The bar gets what is left after the head and the figures, which are dropped
            // least important first (sizes, then rate) when the row is narrow.
            let percent = format!(" {:>3}%", (p.fraction() * 100.0).floor() as u32);
            let mut extras = Vec::new();
            if matches!(p.phase, Phase::Sending | Phase::Receiving) {
                if let Some(eta) = t.meter.eta(p.total) {
                    extras.push(format!("  ETA {}", human_duration(eta)));
                }
                if let Some(rate) = t.meter.bytes_per_sec() {
                    extras.push(format!("  {}", human_rate(rate)));
                }
            }
            extras.push(format!(
                "  {} / {}",
                human_bytes(p.done),
                human_bytes(p.total)
            ));
            let fixed = used + word.len() + usize::from(display_width(&percent));
            let mut tail = percent;
            let mut room = width.saturating_sub(fixed + 10);
            for extra in extras {
                let w = usize::from(display_width(&extra));
                if w <= room {
                    room -= w;
                    tail.push_str(&extra);
                }
            }
            let bar = width
                .saturating_sub(used + word.len() + usize::from(display_width(&tail)))
                .min(30);
            let filled = ((p.fraction() * bar as f64).round() as usize).min(bar);
            spans.push(Span::styled(word.to_string(), dim()));
            spans.push(Span::styled(
                "█".repeat(filled),
                Style::new().fg(Color::Cyan),
            ));
            spans.push(Span::styled("░".repeat(bar - filled), dim()));
            spans.push(Span::raw(tail));
        }
        TransferState::Done(text) => spans.push(Span::styled(
            format!("✓ {text}"),
            Style::new().fg(Color::Green),
        )),
        TransferState::Failed(error) => spans.push(Span::styled(
            format!("✕ {error}"),
            Style::new().fg(Color::Red),
        )),
        TransferState::Interrupted(_) => spans.push(Span::styled(
            "⏸ connection lost; resumes on reconnect",
            Style::new().fg(Color::Yellow),
        )),
        TransferState::Cancelled => {
            spans.push(Span::styled("cancelled; start it again to resume", dim()))
        }
    }
    Line::from(spans)
}

fn draw_transfers(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(dim())
        .title(Span::styled(" transfers · /cancel N · F3 hides ", dim()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let rows = usize::from(inner.height);
    let lines: Vec<Line> = if app.transfers.is_empty() {
        vec![Line::from(Span::styled(
            " no transfers; /upload PATH or /download [ID]",
            dim(),
        ))]
    } else {
        let skip = app.transfers.len().saturating_sub(rows);
        app.transfers[skip..]
            .iter()
            .map(|t| transfer_line(t, width))
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_members(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::new().borders(Borders::LEFT).border_style(dim());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(room) = app.current_room() else {
        return;
    };
    let count = room.summary.member_count;
    let mut lines = vec![Line::from(Span::styled(
        format!("{count} member{}", if count == 1 { "" } else { "s" }),
        dim(),
    ))];
    for member in &room.members {
        let (mark, colour) = match member.status {
            PresenceStatus::Online => ("●", Color::Green),
            PresenceStatus::Away => ("◐", Color::Yellow),
            PresenceStatus::Offline => ("○", Color::DarkGray),
        };
        let role = match member.role {
            RoomRole::Owner => "★",
            RoomRole::Moderator => "+",
            RoomRole::Member => "",
        };
        let name_style = if member.status == PresenceStatus::Offline {
            dim()
        } else {
            Style::new().fg(name_colour(&member.user.username))
        };
        let muted = app.is_muted(room.summary.id, &member.user.username);
        let tag = if muted { " (muted)" } else { "" };
        let width = usize::from(inner.width).saturating_sub(2 + tag.len());
        let name = truncate(&format!("{role}{}", member.user.username), width);
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), Style::new().fg(colour)),
            Span::styled(name, name_style),
            Span::styled(tag, dim()),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let user = app.me.as_ref().map_or("", |m| m.username.as_str());
    let (state, state_style) = match &app.connection {
        ConnectionState::Connected => ("● connected".to_string(), Style::new().fg(Color::Green)),
        ConnectionState::Connecting => {
            ("◌ connecting…".to_string(), Style::new().fg(Color::Yellow))
        }
        ConnectionState::Disconnected { reason, retry_at } => {
            let secs = retry_at.saturating_sub(app.now).div_ceil(1000);
            (
                format!("✕ disconnected ({reason}); retrying in {secs}s"),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )
        }
    };
    let mut spans = vec![
        Span::styled(format!(" {} · {user} · ", app.server), dim()),
        Span::styled(state, state_style),
    ];
    if let Some(note) = &app.away {
        let note = one_line(note.trim());
        spans.push(Span::styled(
            if note.is_empty() {
                " · away".to_string()
            } else {
                format!(" · away: {note}")
            },
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(room) = app.current_room()
        && !room.typing.is_empty()
    {
        let names: Vec<&str> = room.typing.iter().map(|(n, _)| n.as_str()).collect();
        let verb = if names.len() == 1 { "is" } else { "are" };
        spans.push(Span::styled(
            format!(" · {} {verb} typing…", names.join(", ")),
            Style::new().fg(Color::Cyan),
        ));
    }
    // A note goes first: it is what just happened, and the end of the line is what gets cut.
    if let Some((text, error)) = &app.flash {
        let style = if *error {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Cyan)
        };
        spans.insert(0, Span::styled(format!(" {text} ·"), style));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::new().bg(Color::Indexed(236))),
        area,
    );
}

/// Characters of a message a deletion's question quotes.
const DELETING_QUOTED: usize = 40;

/// The line above the input, with its colour: the message being edited, or the deletion
/// waiting for Enter (a message, or all someone posted lately).
fn input_marker(app: &App) -> Option<(String, Color)> {
    if let Some(editing) = &app.editing {
        let place = if app.current == Some(editing.room) {
            String::new()
        } else {
            format!(
                " in {}",
                app.rooms
                    .get(&editing.room)
                    .map_or_else(|| "a room you left".to_string(), RoomState::label)
            )
        };
        let text = format!(
            " ✎ editing your message of {}{place} · Enter saves · Esc cancels",
            clock(app, editing.ts)
        );
        return Some((text, Color::Yellow));
    }
    let question = match app.confirming.as_ref()? {
        Confirming::Delete(deleting) => {
            let quoted = one_line(deleting.text.trim());
            let quoted = if quoted.chars().count() > DELETING_QUOTED {
                let cut: String = quoted.chars().take(DELETING_QUOTED - 1).collect();
                format!("{}…", cut.trim_end())
            } else {
                quoted
            };
            // The keys before the quote: a narrow terminal cuts the end of the line.
            format!(
                "delete {} message of {}? y deletes it · n cancels · “{quoted}”",
                deleting.whose(),
                clock(app, deleting.ts)
            )
        }
        Confirming::Purge(purging) => {
            let room = app
                .rooms
                .get(&purging.room)
                .map_or_else(|| "a room you left".to_string(), RoomState::label);
            format!("delete {}? y deletes it · n cancels", purging.what(&room))
        }
        Confirming::DeleteAccount(user) => super::admin::delete_question(user),
    };
    Some((format!(" ✗ {question}"), Color::LightRed))
}

fn draw_input(frame: &mut Frame, app: &App, area: Rect) {
    let area = match input_marker(app) {
        Some((text, colour)) if area.height > 1 => {
            let [marker, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
            frame.render_widget(
                Paragraph::new(Line::from(Span::styled(
                    truncate(&text, usize::from(marker.width)),
                    Style::new().fg(colour),
                ))),
                marker,
            );
            rest
        }
        _ => area,
    };
    let (rows, (row, col)) = input_layout(&app.input.text(), app.input.cursor(), area.width);
    // The rows around the cursor, when there are more than fit.
    let skip = row.saturating_sub(usize::from(area.height).saturating_sub(1));
    let shown: Vec<Line> = rows.into_iter().skip(skip).collect();
    frame.render_widget(Paragraph::new(shown), area);
    let y = area.y + (row - skip) as u16;
    if y < area.y + area.height {
        let x = (area.x + col).min(area.x + area.width.saturating_sub(1));
        frame.set_cursor_position((x, y));
    }
}

/// The most rows the input takes; a longer text scrolls to keep the cursor in view.
const INPUT_ROWS: u16 = 5;

/// The input as rows of at most `width` columns — its lines, each wrapped as messages are (at
/// the last space that fits; a word longer than a row is broken), behind the prompt or an
/// indent — and the cursor's row and column.
fn input_layout(text: &str, cursor: usize, width: u16) -> (Vec<Line<'static>>, (usize, u16)) {
    const PROMPT: usize = 2;
    let width = usize::from(width).max(PROMPT + 2);
    let chars: Vec<char> = text.chars().collect();
    // Each row: its characters as (index in `chars`, column, columns taken).
    let mut rows: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new()];
    let mut used = PROMPT;
    // Where the current row starts, and where the word after its last space starts.
    let mut row_start = 0;
    let mut word_start = None;
    let mut i = 0;
    // Bounded: `i` only goes back to a word start after `row_start`, which then moves there.
    while let Some(&c) = chars.get(i) {
        // A tab reaches the next tab stop of the text (the prompt not counted).
        let w = match c {
            '\n' => 0,
            '\t' if used + tab_width(used - PROMPT) > width => TAB,
            '\t' => tab_width(used - PROMPT),
            c => c.width().unwrap_or(0),
        };
        // What does not fit on an empty row (a tab on the narrowest input) sticks out.
        if c != '\n' && used + w > width && i > row_start {
            // The unfinished word moves down when the row has more than blanks before it; a
            // blank that does not fit starts the next row.
            let blank = |c: &char| *c == ' ' || *c == '\t';
            let next = match word_start {
                Some(start)
                    if !blank(&c)
                        && chars
                            .get(row_start..start)
                            .is_some_and(|before| before.iter().any(|c| !blank(c))) =>
                {
                    start
                }
                _ => i,
            };
            if let Some(row) = rows.last_mut() {
                row.retain(|&(at, _, _)| at < next);
            }
            rows.push(Vec::new());
            used = PROMPT;
            row_start = next;
            word_start = None;
            i = next;
            continue;
        }
        if let Some(row) = rows.last_mut() {
            row.push((i, used, w));
        }
        used += w;
        if c == '\n' {
            rows.push(Vec::new());
            used = PROMPT;
            row_start = i + 1;
            word_start = None;
        } else if c == ' ' || c == '\t' {
            word_start = Some(i + 1);
        }
        i += 1;
    }
    let at = rows
        .iter()
        .enumerate()
        .find_map(|(r, row)| {
            row.iter()
                .find(|&&(index, _, _)| index == cursor)
                .map(|&(_, column, _)| (r, column))
        })
        .unwrap_or_else(|| {
            // After the last character: on a row of its own when that one is full.
            if used >= width {
                rows.push(Vec::new());
                used = PROMPT;
            }
            (rows.len() - 1, used)
        });
    let cyan = Style::new().fg(Color::Cyan);
    let lines = rows
        .into_iter()
        .enumerate()
        .map(|(r, row)| {
            let prompt = if r == 0 { "› " } else { "  " };
            let text: String = row
                .iter()
                .flat_map(|&(index, _, w)| {
                    let c = chars.get(index).copied().unwrap_or(' ');
                    match c {
                        '\n' => std::iter::repeat_n(' ', 0),
                        '\t' => std::iter::repeat_n(' ', w),
                        c => std::iter::repeat_n(c, 1),
                    }
                })
                .collect();
            Line::from(vec![Span::styled(prompt, cyan), Span::raw(text)])
        })
        .collect();
    (lines, (at.0, at.1 as u16))
}

/// The help popup's width, borders included: commands and keys in columns need 94 columns.
const HELP_WIDTH: u16 = 96;

/// The help's lines for an inner width: in columns when they fit, else each entry as one
/// wrapped line (name, arguments, what it does) with a hanging indent.
fn help_lines(width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let columns = width + 2 >= usize::from(HELP_WIDTH);
    let cyan = Style::new().fg(Color::Cyan);
    let mut lines = Vec::new();
    for (command, args, what) in HELP {
        let segments = if columns {
            vec![
                (format!("{command:<11}"), cyan),
                (format!("{args:<25}"), dim()),
                ((*what).to_string(), Style::new()),
            ]
        } else {
            let args = if args.is_empty() {
                String::new()
            } else {
                format!(" {args}")
            };
            vec![
                ((*command).to_string(), cyan),
                (args, dim()),
                (format!("  {what}"), Style::new()),
            ]
        };
        lines.extend(wrap(&segments, width, if columns { 36 } else { 4 }));
    }
    lines.push(Line::default());
    for (keys, what) in KEYS {
        let segments = if columns {
            vec![
                (format!("{keys:<28}"), cyan),
                ((*what).to_string(), Style::new()),
            ]
        } else {
            vec![
                ((*keys).to_string(), cyan),
                (format!("  {what}"), Style::new()),
            ]
        };
        lines.extend(wrap(&segments, width, if columns { 28 } else { 4 }));
    }
    lines.push(Line::default());
    lines.extend(wrap(&[(QUOTING.to_string(), dim())], width, 0));
    lines
}

/// Where the help popup goes on a screen of `size`, and its lines.
fn help_layout(size: (u16, u16)) -> (Rect, Vec<Line<'static>>) {
    let screen = Rect::new(0, 0, size.0, size.1);
    let lines = help_lines(HELP_WIDTH.min(size.0).saturating_sub(2));
    // Borders and a blank row under the keys.
    let height = u16::try_from(lines.len() + 3).unwrap_or(u16::MAX);
    (centered(screen, HELP_WIDTH, height), lines)
}

/// Rows of help shown at once on a screen of `size`.
pub fn help_page(size: (u16, u16)) -> usize {
    usize::from(help_layout(size).0.height.saturating_sub(2))
}

/// How far the help can scroll on a screen of `size` (0 when it all fits).
pub fn help_scroll_max(size: (u16, u16)) -> usize {
    let (_, lines) = help_layout(size);
    lines.len().saturating_sub(help_page(size))
}

fn draw_help(frame: &mut Frame, app: &App) {
    let screen = frame.area();
    let size = (screen.width, screen.height);
    let (area, lines) = help_layout(size);
    let area = Rect {
        x: screen.x + area.x,
        y: screen.y + area.y,
        ..area
    };
    frame.render_widget(Clear, area);
    let page = help_page(size);
    let max = help_scroll_max(size);
    let offset = app.help_scroll.min(max);
    let title = if max == 0 {
        " help · Esc to close ".to_string()
    } else {
        format!(
            " help · {}–{} of {} · ↑↓ PgUp PgDn · Esc to close ",
            offset + 1,
            (offset + page).min(lines.len()),
            lines.len()
        )
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let shown: Vec<Line> = lines.into_iter().skip(offset).take(page).collect();
    frame.render_widget(Paragraph::new(shown), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn a_long_input_wraps_and_the_cursor_stays_on_screen() {
        let (rows, at) = input_layout("abcdefghij", 10, 8);
        assert_eq!(text_of(&rows), ["› abcdef", "  ghij"]);
        assert_eq!(at, (1, 6), "after the last character");
        let (rows, at) = input_layout("abcdef", 6, 8);
        assert_eq!(
            text_of(&rows),
            ["› abcdef", "  "],
            "a full row: the cursor goes below"
        );
        assert_eq!(at, (1, 2));
        let (_, at) = input_layout("abcdefghij", 6, 8);
        assert_eq!(at, (1, 2), "on the g, first of the second row");
        // Wide characters never straddle the edge; line breaks start a row of their own.
        let (rows, at) = input_layout("你好世界\nok", 1, 8);
        assert_eq!(text_of(&rows), ["› 你好世", "  界", "  ok"]);
        assert_eq!(at, (0, 4));
        let (rows, at) = input_layout("", 0, 80);
        assert_eq!(text_of(&rows), ["› "]);
        assert_eq!(at, (0, 2));
    }

    /// The input wraps at spaces, as messages do, and the cursor is where its character is
    /// drawn: at the start of a moved word, at the end of a full row, on a space.
    #[test]
    fn a_long_input_wraps_at_spaces_with_the_cursor_where_it_is_drawn() {
        let text = "hello big world";
        let (rows, at) = input_layout(text, 15, 12);
        assert_eq!(text_of(&rows), ["› hello big ", "  world"]);
        assert_eq!(at, (1, 7), "after world");
        let (_, at) = input_layout(text, 10, 12);
        assert_eq!(at, (1, 2), "on the w, moved down with its word");
        let (_, at) = input_layout(text, 9, 12);
        assert_eq!(at, (0, 11), "on the space before it");
        // A row filled to the edge: the cursor after it goes below; a space typed there starts
        // the next row, and a letter takes the word down with it.
        let (rows, at) = input_layout("hello worl", 10, 12);
        assert_eq!(text_of(&rows), ["› hello worl", "  "]);
        assert_eq!(at, (1, 2));
        let (rows, at) = input_layout("hello worl ", 11, 12);
        assert_eq!(text_of(&rows), ["› hello worl", "   "]);
        assert_eq!(at, (1, 3));
        let (rows, at) = input_layout("hello world", 11, 12);
        assert_eq!(text_of(&rows), ["› hello ", "  world"]);
        assert_eq!(at, (1, 7));
        // A word longer than a row is still broken, after what fits before it.
        let (rows, _) = input_layout("hi abcdefghijklmn", 0, 12);
        assert_eq!(text_of(&rows), ["› hi ", "  abcdefghij", "  klmn"]);
        // Spaces at the start of a row are no place to break.
        let (rows, _) = input_layout("hello worl abcdefghijklm", 0, 12);
        assert_eq!(text_of(&rows), ["› hello worl", "   abcdefghi", "  jklm"]);
        // A line break ends the row; the cursor on it is after the row's text.
        let (rows, at) = input_layout("ab cd\nef", 5, 12);
        assert_eq!(text_of(&rows), ["› ab cd", "  ef"]);
        assert_eq!(at, (0, 7));
        // A tab wider than the narrowest input sticks out rather than looping.
        let (rows, _) = input_layout("\t\tx", 0, 4);
        assert_eq!(text_of(&rows), ["›     ", "      ", "  x"]);
    }

    #[test]
    fn wrapping_respects_display_width_and_words() {
        let rows = wrap(&[("hello wide world".into(), Style::new())], 12, 2);
        assert_eq!(text_of(&rows), ["hello wide ", "  world"]);
        let rows = wrap(&[("你好世界你好".into(), Style::new())], 6, 0);
        assert_eq!(text_of(&rows), ["你好世", "界你好"]);
        for row in &rows {
            assert!(display_width(&text_of(std::slice::from_ref(row))[0]) <= 6);
        }
    }

    #[test]
    fn tabs_reach_the_next_tab_stop_of_the_text() {
        // The prefix is a segment of its own: the text's tab stops count from its start.
        let rows = wrap(
            &[
                ("09:06 ".into(), Style::new()),
                ("a\tbc\tdefgh\ti\nxy\tz".into(), Style::new()),
            ],
            40,
            8,
        );
        assert_eq!(text_of(&rows), ["09:06 a   bc  defgh   i", "        xy  z"]);
        // A tab that does not fit goes to the next row, as a break.
        let rows = wrap(&[("abcdefg\th".into(), Style::new())], 7, 2);
        assert_eq!(text_of(&rows), ["abcdefg", "  h"]);
        let (rows, at) = input_layout("a\tb", 2, 20);
        assert_eq!(text_of(&rows), ["› a   b"]);
        assert_eq!(at, (0, 6), "the cursor after the tab's columns");
        assert_eq!(crate::tui::search::one_line("ab\tc\nd\te"), "ab  c d e");
    }

    /// Unix millis of a UTC date and time.
    fn utc_ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> u64 {
        let at = chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|day| day.and_hms_opt(h, min, 0))
            .expect("a valid date");
        at.and_utc().timestamp() as u64 * 1000
    }

    #[test]
    fn day_dividers_name_the_local_day_across_month_and_year_ends() {
        let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
        // Five hours west of UTC, 02:30 on New Year's Day in UTC is still New Year's Eve.
        let new_year = utc_ms(2027, 1, 1, 2, 30);
        assert_eq!(local_date(new_year, -5 * 3600), date(2026, 12, 31));
        assert_eq!(local_date(new_year, 0), date(2027, 1, 1));
        // An hour west, just after midnight on 1 March is the last day of February.
        assert_eq!(
            local_date(utc_ms(2026, 3, 1, 0, 30), -3600),
            date(2026, 2, 28)
        );
        // An hour east, 23:30 UTC is already the next day, in the next month.
        assert_eq!(
            local_date(utc_ms(2026, 11, 30, 23, 30), 3600),
            date(2026, 12, 1)
        );
        // A leap day.
        assert_eq!(local_date(utc_ms(2028, 2, 29, 12, 0), 0), date(2028, 2, 29));

        let eve = date(2026, 12, 31);
        assert_eq!(day_label(eve, eve), "Today");
        assert_eq!(day_label(eve, date(2027, 1, 1)), "Yesterday");
        assert_eq!(
            day_label(eve, date(2027, 1, 2)),
            "Thursday 31 December 2026",
            "another year: with the year"
        );
        assert_eq!(day_label(date(2026, 11, 20), eve), "Friday 20 November");
        assert_eq!(
            day_label(date(2026, 3, 1), date(2026, 3, 2)),
            "Yesterday",
            "across a month end"
        );
        assert_eq!(
            day_label(date(2026, 2, 28), date(2026, 3, 2)),
            "Saturday 28 February"
        );
    }

    #[test]
    fn names_keep_their_colour() {
        assert_eq!(name_colour("Alice"), name_colour("alice"));
    }

    #[test]
    fn truncation_marks_what_was_cut() {
        assert_eq!(truncate("#a-very-long-room-name", 8), "#a-very…");
        assert_eq!(truncate("张伟张伟", 5), "张…");
        assert_eq!(truncate("short", 10), "short");
    }
}
