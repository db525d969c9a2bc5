//! Full-text search: the query language, the search itself, and the indexer.
//!
//! Message text is indexed in an external-content FTS5 table, `messages_fts` (migration 7).
//! The writer thread indexes new messages in batches of its own, in a transaction that does
//! not wait for `fsync` (see [`Indexer`]), instead of in each message's transaction: indexing
//! there cut committed messages per second to a third (`ingest --senders 100`: 88 k/s →
//! 29 k/s). An idle writer indexes a batch before it acknowledges it, so a search sent after
//! the acknowledgement finds the message; under load, within [`Indexer::BUSY_INTERVAL`].
//!
//! Users type words, not FTS5 syntax: [`fts_expression`] quotes every word, so nothing a user
//! types is an FTS5 operator or can make the query fail.

use chatroom_protocol::{MAX_SEARCH_QUERY_CHARS, MessageId, RoomId, SearchPage, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::time::{Duration, Instant};

use super::StorageError;
use super::reads::{MESSAGE_COLUMNS, encoded_size_estimate, message_from_row};

/// Candidates (messages containing the words, in any room) one search looks at. Bounds the work
/// of a request whose words are common but mostly in rooms the user is not in: it answers with
/// what it found and a `next` to go on from.
pub const CANDIDATES_PER_SEARCH: u32 = 5000;
/// Most words in one query.
const MAX_TERMS: usize = 16;

/// Why a query cannot be searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Longer than [`MAX_SEARCH_QUERY_CHARS`].
    #[error("a search is at most {MAX_SEARCH_QUERY_CHARS} characters")]
    TooLong,
    /// No letters or digits to look for.
    #[error("search for at least one word")]
    NoWords,
    /// More than [`MAX_TERMS`] words and phrases.
    #[error("a search has at most {MAX_TERMS} words and phrases")]
    TooManyTerms,
}

/// Turns what a user typed into an FTS5 expression: words that must all appear, `"a phrase"`,
/// and `word*` for a prefix. Every word is quoted, so `OR`, `NEAR(`, `col:` and stray quotes
/// are only text; a term without a letter or digit is dropped (it could match nothing).
pub fn fts_expression(query: &str) -> Result<String, QueryError> {
    if query.chars().count() > MAX_SEARCH_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let mut terms: Vec<String> = Vec::new();
    let mut rest = query.trim_start();
    while !rest.is_empty() {
        let (text, prefix, tail) = if let Some(after) = rest.strip_prefix('"') {
            // A phrase runs to the closing quote, or to the end if there is none.
            match after.find('"') {
                Some(end) => {
                    let tail = &after[end + 1..];
                    match tail.strip_prefix('*') {
                        Some(tail) => (&after[..end], true, tail),
                        None => (&after[..end], false, tail),
                    }
                }
                None => (after, false, ""),
            }
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            let word = &rest[..end];
            match word.strip_suffix('*') {
                Some(stem) => (stem, true, &rest[end..]),
                None => (word, false, &rest[end..]),
            }
        };
        if text.chars().any(char::is_alphanumeric) {
            if terms.len() == MAX_TERMS {
                return Err(QueryError::TooManyTerms);
            }
            let quoted = format!("\"{}\"", text.replace('"', "\"\""));
            terms.push(if prefix { quoted + "*" } else { quoted });
        }
        rest = tail.trim_start();
    }
    if terms.is_empty() {
        return Err(QueryError::NoWords);
    }
    Ok(terms.join(" "))
}

/// Messages matching `expression` (from [`fts_expression`]) in the rooms `user` is a member
/// of (or in `room` only), newest first: at most `limit`, at most `byte_budget` bytes of
/// encoded messages, among the [`CANDIDATES_PER_SEARCH`] newest matches older than `before`.
pub fn search(
    conn: &Connection,
    user: UserId,
    expression: &str,
    room: Option<RoomId>,
    before: Option<MessageId>,
    limit: u32,
    byte_budget: usize,
) -> Result<SearchPage, StorageError> {
    let limit = limit.max(1);
    let below = before.map_or(i64::MAX, |id| i64::try_from(id.0).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} \
         FROM (SELECT rowid AS id FROM messages_fts \
               WHERE messages_fts MATCH ?1 AND rowid < ?2 ORDER BY rowid DESC LIMIT ?3) AS c \
         JOIN messages m ON m.id = c.id \
         JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = ?4 \
         LEFT JOIN files f ON f.id = m.file_id \
         WHERE ?5 IS NULL OR m.room_id = ?5 \
         ORDER BY m.id DESC LIMIT ?6"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        expression,
        below,
        CANDIDATES_PER_SEARCH,
        user.0 as i64,
        room.map(|r| r.0 as i64),
        i64::from(limit) + 1,
    ])?;
    let mut messages = Vec::new();
    let mut bytes = 0usize;
    let mut cut_short = false;
    while let Some(r) = rows.next()? {
        let m = message_from_row(r)?;
        bytes += encoded_size_estimate(&m);
        if messages.len() as u32 == limit || (bytes > byte_budget && !messages.is_empty()) {
            cut_short = true;
            break;
        }
        messages.push(m);
    }
    let next = if cut_short {
        messages.last().map(|m| m.id)
    } else {
        // Fewer than asked: either there are no more matches, or the candidates ran out first
        // and the next page starts below the last one looked at.
        conn.prepare_cached(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid < ?2 \
             ORDER BY rowid DESC LIMIT 1 OFFSET ?3",
        )?
        .query_row(params![expression, below, CANDIDATES_PER_SEARCH - 1], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .map(|id| MessageId(id as u64))
    };
    Ok(SearchPage { messages, next })
}

/// Keeps `messages_fts` up to date from the writer thread.
///
/// The writer tells it how many messages each batch stored ([`Indexer::stored`]). It indexes
/// as soon as the writer is idle: right after a commit that left the queue empty, before the
/// batch's acknowledgements ([`Indexer::due`]), so that a search sent after one
/// finds the message; and under constant load once every [`Indexer::BUSY_INTERVAL`]. A step
/// indexes at most [`Indexer::STEP_ROWS`] messages in one transaction with
/// `synchronous = NORMAL`: it is not worth an `fsync`, because the index and its mark
/// (`search_index`) commit together, so a step lost in a crash is simply done again.
#[derive(Debug)]
pub struct Indexer {
    /// When the oldest message that is perhaps not indexed was stored; `None` if there is none.
    since: Option<Instant>,
    /// After a failed step, none before this.
    retry_at: Option<Instant>,
}

impl Default for Indexer {
    fn default() -> Self {
        Self::new()
    }
}

impl Indexer {
    /// Under constant load, the longest time between two steps.
    pub const BUSY_INTERVAL: Duration = Duration::from_millis(250);
    /// Most messages one step indexes.
    pub const STEP_ROWS: usize = 2048;
    const RETRY_AFTER: Duration = Duration::from_secs(10);

    /// An indexer that first catches up with whatever the last run left unindexed.
    pub fn new() -> Self {
        Self {
            since: Some(Instant::now()),
            retry_at: None,
        }
    }

    /// A batch stored `messages` new messages.
    pub fn stored(&mut self, messages: usize) {
        if messages > 0 {
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// Whether an idle writer should index now: there is something to index, and no failed
    /// step is waiting for its retry.
    pub fn due(&self, now: Instant) -> bool {
        self.since.is_some() && self.retry_at.is_none_or(|retry| now >= retry)
    }

    /// How long an idle writer may wait for work before it should index: `None` when there is
    /// nothing to index.
    pub fn idle_wait(&self, now: Instant) -> Option<Duration> {
        self.since?;
        let due = self.retry_at.map_or(now, |retry| retry.max(now));
        Some(due.saturating_duration_since(now))
    }

    /// Whether a busy writer should index now rather than take its next batch.
    pub fn overdue(&self, now: Instant) -> bool {
        match self.since {
            Some(since) => now.duration_since(since) >= Self::BUSY_INTERVAL && self.due(now),
            None => false,
        }
    }

    /// Indexes up to [`Self::STEP_ROWS`] messages. A failure (a full disk) is logged and
    /// tried again later; the messages stay stored, only unsearchable meanwhile.
    pub fn step(&mut self, conn: &mut Connection) {
        let started = Instant::now();
        match index_step(conn, Self::STEP_ROWS) {
            Ok(indexed) => {
                self.retry_at = None;
                // At the limit there may be more: stay due, from now, so a busy writer
                // alternates between its batches and the index.
                self.since = (indexed >= Self::STEP_ROWS).then(Instant::now);
                tracing::trace!(indexed, took = ?started.elapsed(), "search index step");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not update the search index; trying again later");
                self.retry_at = Some(Instant::now() + Self::RETRY_AFTER);
            }
        }
    }
}

/// Indexes the next `max_rows` messages past the mark in one transaction; returns how many.
fn index_step(conn: &mut Connection, max_rows: usize) -> Result<usize, StorageError> {
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    // NORMAL (1) in WAL mode skips the commit's fsync; never raise a lower setting.
    if synchronous > 1 {
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    }
    let indexed = index_in_transaction(conn, max_rows);
    if synchronous > 1 {
        // The value is SQLite's own integer, read above.
        conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"))?;
    }
    indexed
}

fn index_in_transaction(conn: &mut Connection, max_rows: usize) -> Result<usize, StorageError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let from: i64 = tx
        .prepare_cached("SELECT indexed_up_to FROM search_index WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let last: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(id) FROM (SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2)",
        )?
        .query_row(params![from, max_rows as i64], |r| r.get(0))?;
    let Some(last) = last else {
        return Ok(0);
    };
    let indexed = tx
        .prepare_cached(
            "INSERT INTO messages_fts (rowid, text) \
             SELECT id, text FROM messages WHERE id > ?1 AND id <= ?2",
        )?
        .execute(params![from, last])?;
    tx.prepare_cached("UPDATE search_index SET indexed_up_to = ?1 WHERE id = 1")?
        .execute(params![last])?;
    tx.commit()?;
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema;

    const ALICE: UserId = UserId(1);
    const PUBLIC: RoomId = RoomId(1);
    /// A room alice is not in.
    const SECRET: RoomId = RoomId(2);

    /// A database with alice in `public`, and a room `secret` she is not in.
    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        schema::migrate(&mut conn).expect("migrate");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', 'x', 0), (2, 'bob', 'bob', 'x', 0);
             INSERT INTO rooms (id, kind, name, name_key, created_at) VALUES (2, 1, 'secret', 'secret', 0);
             INSERT INTO members (room_id, user_id, role, joined_at)
                 VALUES (1, 1, 0, 0), (1, 2, 0, 0), (2, 2, 2, 0);",
        )
        .expect("rows");
        conn
    }

    fn post(conn: &Connection, room: RoomId, text: &str) -> i64 {
        conn.execute(
            "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE room_id = ?1),
                     2, 'bob', 0, 0, ?2)",
            params![room.0 as i64, text],
        )
        .expect("insert");
        conn.last_insert_rowid()
    }

    fn find(conn: &Connection, query: &str) -> Vec<String> {
        let expression = fts_expression(query).expect("query");
        let page = search(conn, ALICE, &expression, None, None, 50, 1 << 20).expect("search");
        page.messages.into_iter().map(|m| m.text).collect()
    }

    fn index_all(conn: &mut Connection) {
        while index_step(conn, 3).expect("step") == 3 {}
    }

    #[test]
    fn only_indexed_messages_in_my_rooms_are_found_newest_first() {
        let mut conn = database();
        post(&conn, PUBLIC, "the Café opens at nine");
        post(&conn, SECRET, "cafe plans, secret");
        post(&conn, PUBLIC, "CAFE again");
        assert_eq!(find(&conn, "cafe"), Vec::<String>::new(), "not indexed yet");
        index_all(&mut conn);
        assert_eq!(
            find(&conn, "cafe"),
            ["CAFE again", "the Café opens at nine"]
        );
        assert_eq!(find(&conn, "\"opens at\" caf*"), ["the Café opens at nine"]);
        assert_eq!(find(&conn, "secret"), Vec::<String>::new());
    }

    #[test]
    fn a_message_changed_or_removed_after_indexing_leaves_the_index() {
        let mut conn = database();
        let first = post(&conn, PUBLIC, "launch code alpha");
        post(&conn, PUBLIC, "launch party");
        index_all(&mut conn);
        // Deleting a message empties its text (the writer's DeleteMessage).
        conn.execute(
            "UPDATE messages SET kind = 3, text = '' WHERE id = ?1",
            [first],
        )
        .expect("delete");
        assert_eq!(find(&conn, "launch"), ["launch party"]);
        // The newest message goes (its room deleted), and SQLite hands its id out again: the
        // new message must be indexed, and the old text must not find it.
        let newest = conn.last_insert_rowid();
        conn.execute("DELETE FROM messages WHERE id = ?1", [newest])
            .expect("remove");
        let reused = post(&conn, PUBLIC, "quiet evening");
        assert_eq!(reused, newest, "SQLite reuses the highest rowid");
        index_all(&mut conn);
        assert_eq!(find(&conn, "party"), Vec::<String>::new());
        assert_eq!(find(&conn, "evening"), ["quiet evening"]);
        let check: rusqlite::Result<()> = conn
            .execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')");
        check.expect("the index matches the table");
    }

    #[test]
    fn a_step_indexes_at_most_its_rows_and_moves_the_mark() {
        let mut conn = database();
        for i in 0..5 {
            post(&conn, PUBLIC, &format!("note {i}"));
        }
        assert_eq!(index_step(&mut conn, 3).expect("step"), 3);
        assert_eq!(find(&conn, "note").len(), 3);
        assert_eq!(index_step(&mut conn, 3).expect("step"), 2);
        assert_eq!(index_step(&mut conn, 3).expect("step"), 0);
        assert_eq!(find(&conn, "note").len(), 5);
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(synchronous, 2, "the connection's FULL is back after a step");
    }

    #[test]
    fn a_search_looks_at_a_bounded_number_of_candidates_and_says_where_to_go_on() {
        let mut conn = database();
        let mine = post(&conn, PUBLIC, "needle in public");
        for _ in 0..CANDIDATES_PER_SEARCH + 10 {
            post(&conn, SECRET, "needle in secret");
        }
        index_all(&mut conn);
        let expression = fts_expression("needle").expect("query");
        let first = search(&conn, ALICE, &expression, None, None, 10, 1 << 20).expect("search");
        assert!(
            first.messages.is_empty(),
            "the newest candidates are all secret"
        );
        let next = first.next.expect("more candidates");
        let second =
            search(&conn, ALICE, &expression, None, Some(next), 10, 1 << 20).expect("search");
        assert_eq!(
            second
                .messages
                .iter()
                .map(|m| m.id.0 as i64)
                .collect::<Vec<_>>(),
            [mine]
        );
        assert_eq!(second.next, None);
    }

    #[test]
    fn pages_follow_on_by_id_and_stop_at_the_byte_budget() {
        let mut conn = database();
        let ids: Vec<i64> = (0..7)
            .map(|i| post(&conn, PUBLIC, &format!("page {i} {}", "x".repeat(200))))
            .collect();
        index_all(&mut conn);
        let expression = fts_expression("page").expect("query");
        let page = search(&conn, ALICE, &expression, Some(PUBLIC), None, 3, 1 << 20).expect("p");
        let got: Vec<i64> = page.messages.iter().map(|m| m.id.0 as i64).collect();
        assert_eq!(got, [ids[6], ids[5], ids[4]]);
        assert_eq!(page.next, Some(MessageId(ids[4] as u64)));
        let rest = search(
            &conn,
            ALICE,
            &expression,
            Some(PUBLIC),
            page.next,
            10,
            1 << 20,
        )
        .expect("rest");
        assert_eq!(rest.messages.len(), 4);
        assert_eq!(rest.next, None);
        // Two messages' worth of bytes: the page is cut, with a `next`.
        let small = search(&conn, ALICE, &expression, None, None, 10, 600).expect("small");
        assert_eq!(small.messages.len(), 2);
        assert_eq!(small.next, Some(MessageId(ids[5] as u64)));
    }

    proptest::proptest! {
        #[test]
        fn any_query_is_refused_by_us_or_searched_by_sqlite(
            query in "[a-zA-Zé0-9 \"*():^+\\-.\u{0301}\u{200d}ß]{0,40}"
        ) {
            let conn = database();
            post(&conn, PUBLIC, "a b c");
            if let Ok(expression) = fts_expression(&query) {
                let found = search(&conn, ALICE, &expression, None, None, 5, 1 << 20);
                proptest::prop_assert!(found.is_ok(), "{query:?} as {expression:?}: {found:?}");
            }
        }
    }

    #[test]
    fn no_query_text_makes_sqlite_fail() {
        let conn = database();
        post(&conn, PUBLIC, "x");
        for query in [
            "\"\"\"",
            "a\"b\"c\"",
            "NEAR(\"",
            "*",
            "a**",
            "\"x\"**",
            "^a",
            "a:b",
            "(",
            "x)",
            "- -a",
            "\u{0301}a",
            "ß*",
            "\"a\" * \"b\"",
            "ﬁ",
            "٣",
            "\u{200d}x",
        ] {
            if let Ok(expression) = fts_expression(query) {
                search(&conn, ALICE, &expression, None, None, 5, 1 << 20)
                    .unwrap_or_else(|e| panic!("{query:?} as {expression:?}: {e}"));
            }
        }
    }

    #[test]
    fn words_are_quoted_and_all_required() {
        assert_eq!(
            fts_expression("deploy  friday").as_deref(),
            Ok("\"deploy\" \"friday\"")
        );
        assert_eq!(
            fts_expression("OR NOT NEAR(a b) text:x").as_deref(),
            Ok("\"OR\" \"NOT\" \"NEAR(a\" \"b)\" \"text:x\"")
        );
    }

    #[test]
    fn phrases_prefixes_and_stray_quotes() {
        assert_eq!(
            fts_expression("\"release notes\" dep*").as_deref(),
            Ok("\"release notes\" \"dep\"*")
        );
        assert_eq!(
            fts_expression("\"rel no\"* x").as_deref(),
            Ok("\"rel no\"* \"x\"")
        );
        // An unclosed phrase runs to the end; a quote inside a word ends the word.
        assert_eq!(
            fts_expression("\"half open").as_deref(),
            Ok("\"half open\"")
        );
        assert_eq!(fts_expression("it\"s").as_deref(), Ok("\"it\" \"s\""));
    }

    #[test]
    fn queries_without_words_or_too_long_are_refused() {
        assert_eq!(fts_expression(""), Err(QueryError::NoWords));
        assert_eq!(fts_expression("  * \"\" -- !!"), Err(QueryError::NoWords));
        let long = "a".repeat(MAX_SEARCH_QUERY_CHARS + 1);
        assert_eq!(fts_expression(&long), Err(QueryError::TooLong));
        let many = vec!["w"; MAX_TERMS + 1].join(" ");
        assert_eq!(fts_expression(&many), Err(QueryError::TooManyTerms));
        assert!(fts_expression(&vec!["w"; MAX_TERMS].join(" ")).is_ok());
    }
}
