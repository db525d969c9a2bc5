//! The headless subcommands of the real `chatroom` binary against a real server.

use chatroom_server::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "correct horse battery";

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    running: Option<tokio::task::JoinHandle<Result<(), chatroom_server::ServerError>>>,
    config: Config,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::with_data_dir(dir.path());
        config.limits.max_connections_per_ip = 0;
        config.limits.registrations_per_ip_per_hour = 0;
        adjust(&mut config);
        Self::start_in(dir, config, "127.0.0.1:0").await
    }

    async fn start_in(dir: tempfile::TempDir, config: Config, addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(chatroom_server::run(
            listener,
            config.clone(),
            shutdown.clone(),
        ));
        Self {
            addr,
            shutdown,
            running: Some(running),
            config,
            dir,
        }
    }

    /// Stops the server, runs `offline` (admin commands) on its data dir, and starts it again
    /// on the same address, so saved sessions still name it.
    async fn restart_after(mut self, offline: impl FnOnce(&std::path::Path)) -> Self {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.await.expect("joins").expect("stops cleanly");
        }
        offline(self.dir.path());
        let addr = self.addr.to_string();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Self::start_in(dir, self.config.clone(), &addr).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A user of the command line, with a home directory of their own.
struct User {
    name: &'static str,
    home: tempfile::TempDir,
    server: SocketAddr,
}

impl User {
    fn new(name: &'static str, server: &Server) -> Self {
        Self {
            name,
            home: tempfile::tempdir().expect("home"),
            server: server.addr,
        }
    }

    fn command(&self) -> Command {
        let mut command = self.command_naming_nobody();
        command.args(["--user", self.name]);
        command
    }

    /// A command with the server but no user named (none in the environment either).
    fn command_naming_nobody(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom"));
        for var in [
            "CHATROOM_SERVER",
            "CHATROOM_USER",
            "CHATROOM_PASSWORD",
            "CHATROOM_CONFIG",
        ] {
            command.env_remove(var);
        }
        command
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .args(["--server", &self.server.to_string()])
            .stdin(Stdio::null());
        command
    }

    /// `chatroom login` with `password`.
    fn login_with(&self, password: &str) -> Command {
        let mut command = self.command();
        command.arg("login").env("CHATROOM_PASSWORD", password);
        command
    }

    fn token_file(&self) -> PathBuf {
        let dir = self.home.path().join("data/chatroom/sessions");
        std::fs::read_dir(&dir)
            .expect("sessions dir")
            .next()
            .expect("a token file")
            .expect("entry")
            .path()
    }
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run chatroom"))
        .await
        .expect("join")
}

async fn run_ok(command: Command) -> String {
    let output = run(command).await;
    assert!(
        output.status.success(),
        "chatroom failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn register(user: &User) {
    let mut command = user.command();
    command.arg("register").env("CHATROOM_PASSWORD", PASSWORD);
    assert!(run_ok(command).await.starts_with("registered"));
}

/// Accounts registered in this order (the first one is the server's admin).
async fn registered<const N: usize>(server: &Server, names: [&'static str; N]) -> [User; N] {
    let users = names.map(|name| User::new(name, server));
    for user in &users {
        register(user).await;
    }
    users
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_then_history_round_trip_with_a_kept_session() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(alice.token_file())
            .expect("token")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the kept session is private");
    }

    // No password given: the kept session is resumed.
    let mut send = alice.command();
    send.args(["send", "--room", "public", "hello", "from", "the", "shell"]);
    run_ok(send).await;
    let mut send = alice.command();
    send.args(["send", "--room", "#public", "--json", "-"]);
    send.stdin(Stdio::piped());
    let mut child = send.stdout(Stdio::piped()).spawn().expect("spawn");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all("多行\nmessage\n".as_bytes())
            .expect("write");
    }
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(output.status.success());
    let ack = &json_lines(&String::from_utf8_lossy(&output.stdout))[0];
    // After the room's notice of alice's registration and her first message.
    assert_eq!(
        (ack["kind"].as_str(), ack["seq"].as_u64()),
        (Some("sent"), Some(3))
    );

    let mut history = alice.command();
    history.args(["history", "--room", "public", "--json"]);
    let lines = json_lines(&run_ok(history).await);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (lines[0]["kind"].as_str(), lines[0]["text"].as_str()),
        (Some("system"), Some("alice joined"))
    );
    let lines = &lines[1..];
    let first = &lines[0];
    for key in ["room", "seq", "id", "from", "text", "ts", "kind"] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert_eq!(first["text"], "hello from the shell");
    assert_eq!(first["from"], "alice");
    assert_eq!(first["room"], "public");
    assert_eq!(lines[1]["text"], "多行\nmessage");

    let mut plain = alice.command();
    plain.args(["history", "--room", "public", "--limit", "1"]);
    let text = run_ok(plain).await;
    assert!(
        text.ends_with("#public <alice> 多行\n  | message\n"),
        "{text}"
    );

    // A message cannot print a line that passes for someone else's message.
    let mut forge = alice.command();
    forge.args([
        "send",
        "--room",
        "public",
        "ok\n[2026-11-22T10:29:27Z] #public <bob> I am bob",
    ]);
    run_ok(forge).await;
    let mut plain = alice.command();
    plain.args(["history", "--room", "public", "--limit", "1"]);
    let text = run_ok(plain).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with("#public <alice> ok"), "{text}");
    assert_eq!(
        lines[1], "  | [2026-11-22T10:29:27Z] #public <bob> I am bob",
        "the second line is marked as the first one's continuation"
    );
}

/// Runs `chatroom ARGS…` as `user` with `input` on its standard input.
async fn run_with_input(user: &User, args: &[&str], input: &str) -> Output {
    let mut command = user.command();
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).expect("write");
        drop(stdin);
        child.wait_with_output()
    })
    .await
    .expect("join")
    .expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coloured_output_is_piped_in_without_its_escape_sequences() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    // As `make 2>&1 | tail -5` prints it on a terminal: colours, a hyperlink, CRLF line ends,
    // a progress line overwritten with CR.
    let build = "\u{1b}[1;31merror\u{1b}[0m: \u{1b}]8;;file:///src/main.rs\u{7}main.rs\
                 \u{1b}]8;;\u{7} failed\r\n\u{1b}[32m50%\r100%\u{1b}[0m\r\n";
    let output = run_with_input(&alice, &["send", "--room", "public", "-"], build).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty(), "quietly");
    // Given as an argument (`"$(make)"`), the same.
    chatroom(
        &alice,
        &["send", "--room", "public", "\u{1b}[32mok\u{1b}[0m\n"],
    )
    .await;
    let history = json_lines(&chatroom(&alice, &["history", "--room", "public", "--json"]).await);
    let texts: Vec<&str> = history[1..]
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["error: main.rs failed\n50%100%", "ok"]);

    // Other control characters are left out too, and said so in one line.
    let output = run_with_input(&alice, &["send", "--room", "public", "-"], "ding\u{7}!\n").await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "chatroom: left out 1 control character the server does not take in a message\n"
    );
    let newest = chatroom(
        &alice,
        &["history", "--room", "public", "--limit", "1", "--json"],
    )
    .await;
    assert_eq!(one_json(&newest)["text"], "ding!");

    // Nothing but escape sequences is an empty message, refused before anything is sent.
    let output = run_with_input(
        &alice,
        &["send", "--room", "public", "-"],
        "\u{1b}[0m\r\n\u{1b}[K",
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr_line(&output), "chatroom: the message is empty\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_arrivals_and_exits_after_count() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;
    let mut early = alice.command();
    early.args(["send", "--room", "public", "before the tail"]);
    run_ok(early).await;

    let mut tail = bob.command();
    tail.args([
        "tail", "--room", "public", "--since", "0", "--count", "3", "--json",
    ]);
    let tail = tokio::spawn(run(tail));
    // Give the tail time to log in; messages sent before it listens still come via --since.
    for text in ["one", "two"] {
        let mut send = alice.command();
        send.args(["send", "--room", "public", text]);
        run_ok(send).await;
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(20), tail)
        .await
        .expect("tail exits after --count")
        .expect("join");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let texts: Vec<String> = json_lines(&String::from_utf8_lossy(&output.stdout))
        .iter()
        .map(|l| l["text"].as_str().unwrap_or_default().to_string())
        .collect();
    // The room's notices are printed but not counted.
    assert_eq!(
        texts,
        [
            "alice joined",
            "bob joined",
            "before the tail",
            "one",
            "two"
        ],
        "in order, no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_an_edit_of_a_message_it_printed() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let writer = library_client(&server, "alice").await;
    let room = public_room(&writer).await;
    let typo = writer.send_message(room, "helo").await.expect("send");
    let mut tail = alice.command();
    tail.args([
        "tail", "--room", "public", "--since", "0", "--count", "2", "--json",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = tail.spawn().expect("spawn");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    // The first line means the tail is logged in and listening.
    let (first, mut stdout) = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut line = String::new();
            stdout.read_line(&mut line).map(|_| (line, stdout))
        }),
    )
    .await
    .expect("the tail prints")
    .expect("join")
    .expect("read");
    assert_eq!(
        (
            one_json(&first)["kind"].as_str(),
            one_json(&first)["text"].as_str()
        ),
        (Some("system"), Some("alice joined")),
        "the room's notice comes first, and does not count"
    );
    writer
        .edit_message(room, typo.seq, "hello")
        .await
        .expect("edit");
    writer.send_message(room, "two").await.expect("send");
    let rest = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).map(|_| rest)
        }),
    )
    .await
    .expect("the tail exits after --count")
    .expect("join")
    .expect("read");
    let lines = json_lines(&rest);
    let seen: Vec<(&str, u64, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["text"].as_str().unwrap_or_default(),
                l["seq"].as_u64().unwrap_or_default(),
                l["edited_at"].is_u64(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("helo", typo.seq, false),
            ("hello", typo.seq, true),
            ("two", typo.seq + 1, false)
        ],
        "the message, its edit, then the next message"
    );
    let status = child.wait().expect("wait");
    assert!(status.success());
}

/// Starts `chatroom tail ARGS…` as `user` and waits for its first line, which means it is
/// logged in and listening; returns that line, the rest of its output to read, and the process.
async fn started_tail(
    user: &User,
    args: &[&str],
) -> (
    String,
    std::io::BufReader<std::process::ChildStdout>,
    std::process::Child,
) {
    let mut tail = user.command();
    tail.arg("tail")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = tail.spawn().expect("spawn");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let (first, stdout) = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut line = String::new();
            stdout.read_line(&mut line).map(|_| (line, stdout))
        }),
    )
    .await
    .expect("the tail prints")
    .expect("join")
    .expect("read");
    (first, stdout, child)
}

/// The rest of what a tail prints, up to its exit after `--count`.
async fn rest_of_tail(mut stdout: std::io::BufReader<std::process::ChildStdout>) -> String {
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).map(|_| rest)
        }),
    )
    .await
    .expect("the tail exits after --count")
    .expect("join")
    .expect("read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_a_deletion_without_counting_it() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let writer = library_client(&server, "alice").await;
    let room = public_room(&writer).await;
    let oops = writer.send_message(room, "oops").await.expect("send");
    // A bot's tail and a person's: the room's notice first (not counted), then `oops`.
    let args = ["--room", "public", "--since", "0", "--count", "2"];
    let (first_json, json_out, mut json_child) =
        started_tail(&alice, &[&args[..], &["--json"]].concat()).await;
    assert_eq!(one_json(&first_json)["text"], "alice joined");
    let (first_plain, plain_out, mut plain_child) = started_tail(&alice, &args).await;
    assert!(first_plain.ends_with("* alice joined\n"), "{first_plain}");

    writer.delete_message(room, oops.seq).await.expect("delete");
    writer.send_message(room, "two").await.expect("send");

    // The deletion comes between, and does not count: the tail waits for `two`.
    let lines = json_lines(&rest_of_tail(json_out).await);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        (lines[0]["text"].as_str(), lines[2]["text"].as_str()),
        (Some("oops"), Some("two"))
    );
    let deleted = &lines[1];
    assert_eq!(
        (
            deleted["kind"].as_str(),
            deleted["room"].as_str(),
            deleted["room_id"].as_u64(),
            deleted["seq"].as_u64(),
            deleted["by"].as_str(),
        ),
        (
            Some("deleted"),
            Some("public"),
            Some(room.0),
            Some(oops.seq),
            Some("alice")
        ),
        "{deleted}"
    );
    assert!(deleted["ts"].is_u64(), "{deleted}");
    let plain = rest_of_tail(plain_out).await;
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 3, "{plain}");
    // Each with its seq; the deletion with the deleted message's.
    assert!(
        lines[0].ends_with(&format!(" {} #public <alice> oops", oops.seq)),
        "{plain}"
    );
    assert!(
        lines[1].starts_with('[')
            && lines[1].ends_with(&format!(
                " {0} #public * message {0} was deleted by alice",
                oops.seq
            )),
        "{plain}"
    );
    assert!(
        lines[2].ends_with(&format!(" {} #public <alice> two", oops.seq + 1)),
        "{plain}"
    );
    for child in [&mut json_child, &mut plain_child] {
        assert!(child.wait().expect("wait").success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_since_counts_edited_messages_but_not_deleted_ones() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let writer = library_client(&server, "alice").await;
    let room = public_room(&writer).await;
    let typo = writer.send_message(room, "helo").await.expect("send");
    writer
        .edit_message(room, typo.seq, "hello")
        .await
        .expect("edit");
    let oops = writer.send_message(room, "oops").await.expect("send");
    writer.delete_message(room, oops.seq).await.expect("delete");
    writer.send_message(room, "last").await.expect("send");
    // All of it is history by now, so each tail ends on what --since replays, without waiting.
    let tail = |args: &[&str]| {
        let mut command = alice.command();
        command.args(["tail", "--room", "public"]).args(args);
        tokio::time::timeout(std::time::Duration::from_secs(20), run(command))
    };

    let output = tail(&["--since", "0", "--count", "2", "--json"])
        .await
        .expect("the tail exits after --count");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&String::from_utf8_lossy(&output.stdout));
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or_default(),
                l["text"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("system", "alice joined"),
            ("text", "hello"),
            ("deleted", ""),
            ("text", "last")
        ],
        "the edited message counts; the notice and the deleted one do not"
    );

    // As the user test found it: a deleted message first, then the one wanted.
    let since = (oops.seq - 1).to_string();
    let output = tail(&["--since", &since, "--count", "1"])
        .await
        .expect("the tail exits after --count");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plain = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 2, "{plain}");
    assert!(
        lines[0].ends_with(&format!(" {} #public * (deleted)", oops.seq)),
        "{plain}"
    );
    assert!(
        lines[1].ends_with(&format!(" {} #public <alice> last", oops.seq + 1)),
        "{plain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_rooms_and_users() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;
    let mut dm = alice.command();
    dm.args(["send", "--to", "bob", "just between us"]);
    run_ok(dm).await;

    let mut rooms = bob.command();
    rooms.args(["rooms", "--json"]);
    let rooms = json_lines(&run_ok(rooms).await);
    let direct = rooms
        .iter()
        .find(|r| r["room_kind"] == "direct")
        .expect("the DM is listed");
    assert_eq!(
        (direct["name"].as_str(), direct["unread"].as_u64()),
        (Some("alice"), Some(1))
    );

    // `@alice` names the chat as `rooms` shows it, and messages are labelled the same way.
    let mut history = bob.command();
    history.args(["history", "--to", "@alice"]);
    let text = run_ok(history).await;
    assert!(text.contains(" @alice <alice> just between us"), "{text}");
    let mut rooms = bob.command();
    rooms.arg("rooms");
    let text = run_ok(rooms).await;
    assert!(text.lines().any(|l| l.starts_with("@alice ")), "{text}");

    let mut users = alice.command();
    users.args(["users", "--json"]);
    let users = json_lines(&run_ok(users).await);
    let names: Vec<&str> = users.iter().filter_map(|u| u["name"].as_str()).collect();
    assert_eq!(
        names.len(),
        3,
        "alice, bob and the server's AI bot: {names:?}"
    );
    assert!(names.contains(&"alice") && names.contains(&"bob") && names.contains(&"ai"));

    // Once bob's account is deleted, alice still reaches their chat under his name.
    let server = server
        .restart_after(|dir| {
            let mut admin = chatroom_server::admin::Admin::open(dir).expect("admin");
            admin.delete_user("bob").expect("delete bob");
        })
        .await;
    // It is listed as `@bob (deleted)`, and found by that name too.
    for name in ["bob", "@bob (deleted)"] {
        let mut history = alice.command();
        history.args(["history", "--to", name]);
        let text = run_ok(history).await;
        assert!(
            text.contains(" @bob (deleted) <alice> just between us"),
            "{name}: {text}"
        );
    }
    drop(server);
}

fn stderr_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_non_zero_with_one_clear_line() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;

    let mut wrong = User::new("alice", &server).command();
    let password_file = alice.home.path().join("pw");
    std::fs::write(&password_file, "not the password\n").expect("write");
    wrong.args(["rooms", "--password-file"]).arg(&password_file);
    let output = run(wrong).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("wrong user name or password"));

    let mut nowhere = alice.command();
    nowhere.args(["send", "--room", "no-such-room", "hi"]);
    let output = run(nowhere).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("not in a room named"));

    // A direct chat named as a room, and a room as a user: the flag to use instead.
    let mut direct = alice.command();
    direct.args(["send", "--room", "@ai", "hi"]);
    let output = run(direct).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_line(&output),
        "chatroom: @ai is a direct chat: use --to ai\n"
    );
    let mut room = alice.command();
    room.args(["history", "--to", "#public"]);
    let output = run(room).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_line(&output),
        "chatroom: #public is a room: use --room public\n"
    );

    let mut no_password = User::new("carol", &server).command();
    no_password.arg("rooms");
    let output = run(no_password).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("CHATROOM_PASSWORD"));

    let mut empty = alice.command();
    empty.args(["send", "--room", "public", " "]);
    let output = run(empty).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("empty"));

    // Too long for the server, even for one frame: its own rule is what is said.
    let mut long = alice.command();
    long.args(["send", "--room", "public", "-"]);
    long.stdin(Stdio::piped()).stderr(Stdio::piped());
    let mut child = long.spawn().expect("spawn");
    {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&vec![b'x'; 2 << 20]);
    }
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(!output.status.success());
    assert!(
        stderr_line(&output)
            .contains("the message is 2097152 characters; this server takes at most 4000"),
        "{}",
        stderr_line(&output)
    );

    let nowhere_server = User {
        name: "alice",
        home: tempfile::tempdir().expect("home"),
        server: "127.0.0.1:1".parse().expect("addr"),
    };
    let mut offline = nowhere_server.command();
    offline.arg("rooms").env("CHATROOM_PASSWORD", PASSWORD);
    let output = run(offline).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("cannot connect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_says_the_servers_reason_without_its_code() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    // A request refused, and one inside a transfer: the reason alone, status 1 all the same.
    assert_eq!(
        refused(&alice, &["create", "dev\"ops"]).await,
        "chatroom: cannot create #dev\"ops: a room name may not contain double quotes\n"
    );
    assert_eq!(
        refused(&alice, &["download", "999"]).await,
        "chatroom: cannot download file 999: no such file\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_remembers_the_user_for_later_commands_until_logout() {
    let server = Server::start().await;
    let registrar = User::new("alice", &server);
    register(&registrar).await;
    // Another machine: alice logs in there once, by name.
    let alice = User::new("alice", &server);
    let mut nobody = alice.command_naming_nobody();
    nobody.arg("rooms");
    let output = run(nobody).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("no user name"));
    let mut login = alice.command();
    login.arg("login").env("CHATROOM_PASSWORD", PASSWORD);
    assert_eq!(run_ok(login).await, "logged in as alice\n");

    // Later commands need neither her name nor her password.
    let mut rooms = alice.command_naming_nobody();
    rooms.args(["rooms", "--json"]);
    assert!(
        json_lines(&run_ok(rooms).await)
            .iter()
            .any(|r| r["name"] == "public")
    );
    let mut send = alice.command_naming_nobody();
    send.args(["send", "--room", "public", "who am I?"]);
    run_ok(send).await;
    let mut history = registrar.command();
    history.args(["history", "--room", "public"]);
    assert!(run_ok(history).await.contains("<alice> who am I?"));

    // Logging out forgets her; a second logout has nothing to end and asks for no password.
    let mut logout = alice.command_naming_nobody();
    logout.arg("logout");
    assert_eq!(run_ok(logout).await, "logged out alice\n");
    let mut nobody = alice.command_naming_nobody();
    nobody.arg("rooms");
    let output = run(nobody).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("no user name"));
    let mut again = alice.command();
    again.arg("logout");
    let output = run(again).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(line.contains("nothing to log out of"), "{line}");
    assert!(!line.contains("password"), "{line}");
    // The same with nobody named: the user logged out is no longer remembered.
    let mut again = alice.command_naming_nobody();
    again.arg("logout");
    let output = run(again).await;
    assert_eq!(output.status.code(), Some(1));
    let line = stderr_line(&output);
    assert!(line.contains("nothing to log out of"), "{line}");
    assert!(
        !line.contains("no user name") && !line.contains("password"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_is_explained_in_one_line() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    // Elsewhere, the password changes: every other session of alice ends, the kept one too.
    let client = library_client(&server, "alice").await;
    let new_password = "a brand new password";
    client
        .change_password(PASSWORD, new_password)
        .await
        .expect("change the password");
    drop(client);

    let mut rooms = alice.command();
    rooms.arg("rooms");
    let output = run(rooms).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.contains("saved session of alice has ended") && line.contains("CHATROOM_PASSWORD"),
        "{line}"
    );
    // With the new password it logs in again and keeps the new session.
    let mut rooms = alice.command();
    rooms.arg("rooms").env("CHATROOM_PASSWORD", new_password);
    run_ok(rooms).await;
    let mut rooms = alice.command();
    rooms.arg("rooms");
    run_ok(rooms).await;

    // A session that ended on the server is forgotten by logout all the same, without a password.
    let client = chatroom_protocol::client::Client::connect(server.addr, "test")
        .await
        .expect("connect");
    client.login("alice", new_password).await.expect("login");
    client
        .change_password(new_password, PASSWORD)
        .await
        .expect("change the password");
    drop(client);
    let mut logout = alice.command();
    logout.arg("logout");
    let text = run_ok(logout).await;
    assert!(text.starts_with("logged out alice"), "{text}");
    let tokens = std::fs::read_dir(alice.home.path().join("data/chatroom/sessions"))
        .expect("sessions dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".token"))
        .count();
    assert_eq!(tokens, 0, "the token is forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_says_once_that_the_server_is_shutting_down() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let mut send = alice.command();
    send.args(["send", "--room", "public", "first"]);
    run_ok(send).await;
    let mut tail = alice.command();
    tail.args(["tail", "--room", "public", "--since", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = tail.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    // The first line means the tail is logged in and listening.
    // Up to the message: the tail is then logged in and listening. The reader stays open
    // until the tail exits, so nothing it prints meets a closed pipe.
    let printed = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut stdout = std::io::BufReader::new(stdout);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line)? == 0 {
                break;
            }
            let last = line.ends_with("<alice> first\n");
            lines.push(line);
            if last {
                break;
            }
        }
        Ok::<_, std::io::Error>((lines, stdout))
    });
    let (lines, _stdout) = tokio::time::timeout(std::time::Duration::from_secs(20), printed)
        .await
        .expect("the tail prints")
        .expect("join")
        .expect("read");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("* alice joined\n"), "{lines:?}");
    server.shutdown.cancel();
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the tail ends with the server")
    .expect("join")
    .expect("wait");
    assert_eq!(output.status.code(), Some(1), "as `tail --help` says");
    let line = stderr_line(&output);
    assert_eq!(line.matches("shutting down").count(), 1, "{line}");
}

// ---- files ----

/// Pseudo-random bytes (xorshift), so a failure is reproducible.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn one_json(text: &str) -> Value {
    let lines = json_lines(text);
    assert_eq!(lines.len(), 1, "one JSON line: {text}");
    lines.into_iter().next().expect("a line")
}

/// The id of `public`, as `client` sees it.
async fn public_room(
    client: &chatroom_protocol::client::ClientHandle,
) -> chatroom_protocol::RoomId {
    room_id(client, "public").await
}

/// The id of my room `name`, as `client` sees it.
async fn room_id(
    client: &chatroom_protocol::client::ClientHandle,
    name: &str,
) -> chatroom_protocol::RoomId {
    client
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} among my rooms"))
        .id
}

/// The library client, logged in as `user` (registered with PASSWORD).
async fn library_client(server: &Server, user: &str) -> chatroom_protocol::client::Client {
    let client = chatroom_protocol::client::Client::connect(server.addr, "test")
        .await
        .expect("connect");
    client.login(user, PASSWORD).await.expect("login");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_list_and_download_byte_identical_never_overwriting() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;
    let data = random_bytes(3 * 1024 * 1024 + 4321, 1);
    let source = alice.home.path().join("build 1234.tar.gz");
    std::fs::write(&source, &data).expect("write");

    // No files yet: a person is told so on stderr; stdout and --json stay empty.
    let mut none = bob.command();
    none.args(["files", "--room", "public"]);
    let output = run(none).await;
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    assert_eq!(stderr_line(&output).trim_end(), "no files in #public");
    let mut none = bob.command();
    none.args(["files", "--room", "public", "--json"]);
    let output = run(none).await;
    assert!(output.stdout.is_empty() && output.stderr.is_empty());

    let mut up = alice.command();
    up.args(["upload", "--room", "public", "--json"])
        .arg(&source);
    let up = one_json(&run_ok(up).await);
    assert_eq!(up["kind"], "uploaded");
    assert_eq!(up["name"], "build 1234.tar.gz");
    assert_eq!(up["size"], data.len() as u64);
    assert_eq!(up["bytes_sent"], data.len() as u64);
    assert_eq!(up["resumed_from"], 0);
    let id = up["id"].as_u64().expect("file id");

    let mut files = bob.command();
    files.args(["files", "--room", "public", "--json"]);
    let listed = one_json(&run_ok(files).await);
    assert_eq!(listed["id"], id);
    assert_eq!(listed["name"], "build 1234.tar.gz");
    assert_eq!(listed["uploader"], "alice");
    assert_eq!(listed["size"], data.len() as u64);
    assert_eq!(listed["sha256"], up["sha256"]);
    let mut plain = bob.command();
    plain.args(["files", "--room", "public"]);
    let line = run_ok(plain).await;
    assert!(
        line.contains("build 1234.tar.gz") && line.contains("3.00 MiB") && line.contains("alice"),
        "{line}"
    );

    // To the default folder, created on first use; byte for byte.
    let mut down = bob.command();
    down.args(["download", &id.to_string()]);
    let path = PathBuf::from(run_ok(down).await.trim_end());
    let folder = bob.home.path().join("Downloads/chatroom");
    assert_eq!(path, folder.join("build 1234.tar.gz"));
    assert!(std::fs::read(&path).expect("read") == data, "bytes differ");

    // Again: a numbered name, the first one untouched; then into a folder given with -o, and
    // onto an existing file given with -o (numbered too).
    std::fs::write(&path, b"edited by bob").expect("write");
    let mut again = bob.command();
    again.args(["download", &id.to_string(), "--json"]);
    let again = one_json(&run_ok(again).await);
    let second = folder.join("build 1234 (1).tar.gz");
    assert_eq!(again["path"], second.to_string_lossy().as_ref());
    assert_eq!(again["bytes_fetched"], data.len() as u64);
    assert!(std::fs::read(&second).expect("read") == data);
    assert_eq!(std::fs::read(&path).expect("read"), b"edited by bob");

    let mut to_dir = bob.command();
    let elsewhere = bob.home.path().join("elsewhere/");
    to_dir
        .args(["download", &id.to_string(), "-o"])
        .arg(&elsewhere);
    let got = PathBuf::from(run_ok(to_dir).await.trim_end());
    assert_eq!(got, elsewhere.join("build 1234.tar.gz"));
    let mut onto = bob.command();
    onto.args(["download", &id.to_string(), "-o"]).arg(&got);
    let numbered = PathBuf::from(run_ok(onto).await.trim_end());
    assert_eq!(numbered, elsewhere.join("build 1234 (1).tar.gz"));
    let leftovers: Vec<_> = std::fs::read_dir(&folder)
        .expect("folder")
        .chain(std::fs::read_dir(&elsewhere).expect("folder"))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "no .part left: {leftovers:?}");

    // The same content again needs no bytes, and says so; history shows the file messages.
    assert_eq!(up["already_stored"], false);
    let mut same = alice.command();
    same.args(["upload", "--room", "public"]).arg(&source);
    assert!(
        run_ok(same).await.contains("the server already had it"),
        "content is stored once"
    );
    let mut same = alice.command();
    same.args(["upload", "--room", "public", "--json"])
        .arg(&source);
    let same = one_json(&run_ok(same).await);
    assert_eq!(
        (
            same["bytes_sent"].as_u64(),
            same["already_stored"].as_bool()
        ),
        (Some(0), Some(true)),
        "{same}"
    );
    let mut history = bob.command();
    history.args(["history", "--room", "public"]);
    let text = run_ok(history).await;
    assert!(
        text.contains(&format!(
            "<alice> 📎 build 1234.tar.gz · 3.00 MiB · alice (file {id})"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_and_download_resume_with_fewer_bytes() {
    use chatroom_protocol::transfer::{self, Phase, ProgressSink, TransferError, TransferOptions};
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let data = random_bytes(6 * 1024 * 1024 + 77, 2);
    let source = alice.home.path().join("video.mp4");
    std::fs::write(&source, &data).expect("write");
    let total = data.len() as u64;

    // The library uploads half, then its connection dies.
    let client = library_client(&server, "alice").await;
    let room = public_room(&client).await;
    let handle = client.handle();
    let killer = handle.clone();
    let options = TransferOptions {
        progress: ProgressSink::new(move |p| {
            if p.phase == Phase::Sending && p.done >= total / 2 {
                killer.close();
            }
        }),
        ..TransferOptions::default()
    };
    let cut = transfer::upload(&handle, room, &source, &options).await;
    assert!(
        matches!(&cut, Err(e) if e.is_resumable()),
        "the upload was cut: {cut:?}"
    );
    drop((client, handle));

    // The command line continues it.
    let mut up = alice.command();
    up.args(["upload", "--room", "public", "--json"])
        .arg(&source);
    let up = one_json(&run_ok(up).await);
    let resumed_from = up["resumed_from"].as_u64().expect("resumed_from");
    let sent = up["bytes_sent"].as_u64().expect("bytes_sent");
    assert!(resumed_from >= total / 2, "resumed at {resumed_from}");
    assert!(sent < total, "the retry sent fewer bytes ({sent})");
    assert_eq!(sent + resumed_from, total);
    let id = up["id"].as_u64().expect("id");

    // The library downloads about half into the download folder, then is cancelled.
    let folder = alice.home.path().join("Downloads/chatroom/");
    let client = library_client(&server, "alice").await;
    let options = TransferOptions {
        read_chunk: 64 * 1024,
        download_window: 2,
        ..TransferOptions::default()
    };
    let cancel = options.cancel.clone();
    let options = TransferOptions {
        progress: ProgressSink::new(move |p| {
            if p.phase == Phase::Receiving && p.done >= total / 2 {
                cancel.cancel();
            }
        }),
        ..options
    };
    let cut = transfer::download(&client, chatroom_protocol::FileId(id), &folder, &options).await;
    assert!(matches!(cut, Err(TransferError::Cancelled)), "{cut:?}");
    let part = folder.join("video.mp4.part");
    let kept = std::fs::metadata(&part).expect("the .part is kept").len();
    assert!(kept >= total / 2 && kept < total, "kept {kept}");
    drop(client);

    // The command line continues it: fewer bytes, the same file.
    let mut down = alice.command();
    down.args(["download", &id.to_string(), "--json"]);
    let down = one_json(&run_ok(down).await);
    assert_eq!(down["resumed_from"], kept);
    let fetched = down["bytes_fetched"].as_u64().expect("bytes_fetched");
    assert_eq!(fetched, total - kept, "only the rest was fetched");
    let path = PathBuf::from(down["path"].as_str().expect("path"));
    assert_eq!(path, folder.join("video.mp4"));
    assert!(std::fs::read(&path).expect("read") == data, "bytes differ");
    assert!(!part.exists(), "the .part is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_part_is_detected_and_the_download_starts_over() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let data = random_bytes(700_000, 3);
    let source = alice.home.path().join("notes.txt");
    std::fs::write(&source, &data).expect("write");
    let mut up = alice.command();
    up.args(["upload", "--room", "public", "--json"])
        .arg(&source);
    let id = one_json(&run_ok(up).await)["id"].as_u64().expect("id");

    // A stale .part of the same name with other bytes: the hash check catches it, and the
    // download starts over from zero instead of keeping a wrong file.
    let folder = alice.home.path().join("dl");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(folder.join("notes.txt.part"), vec![0u8; 300_000]).expect("write");
    let mut down = alice.command();
    down.args(["download", &id.to_string(), "--json", "-o"])
        .arg(&folder);
    let down = one_json(&run_ok(down).await);
    assert_eq!(down["bytes_fetched"], data.len() as u64, "fetched in full");
    assert_eq!(down["resumed_from"], 0);
    assert!(std::fs::read(folder.join("notes.txt")).expect("read") == data);
    assert!(!folder.join("notes.txt.part").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_chat_files_and_transfer_failures() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    let bob = User::new("bob", &server);
    let carol = User::new("carol", &server);
    for user in [&alice, &bob, &carol] {
        register(user).await;
    }
    let source = alice.home.path().join("secret.pdf");
    std::fs::write(&source, random_bytes(10_000, 4)).expect("write");
    let mut up = alice.command();
    up.args(["send_files", "--to", "bob"]).arg(&source);
    let line = run_ok(up).await;
    assert!(
        line.starts_with("uploaded secret.pdf (9.8 KiB) to @bob as file "),
        "{line}"
    );
    let id = line.trim_end().rsplit(' ').next().expect("id").to_string();

    let mut files = bob.command();
    files.args(["files", "--to", "alice", "--json"]);
    assert_eq!(one_json(&run_ok(files).await)["name"], "secret.pdf");
    let mut fetch = bob.command();
    fetch.args(["recv_files", &id]);
    run_ok(fetch).await;

    // Not a member of that chat: refused, nothing written.
    let mut nosy = carol.command();
    nosy.args(["download", &id]);
    let output = run(nosy).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.contains(&format!("cannot download file {id}")),
        "{line}"
    );
    assert!(
        !carol
            .home
            .path()
            .join("Downloads/chatroom/secret.pdf")
            .exists()
    );

    // An empty file goes both ways too.
    let empty = alice.home.path().join("empty.txt");
    std::fs::write(&empty, b"").expect("write");
    let mut up = alice.command();
    up.args(["upload", "--to", "bob", "--json"]).arg(&empty);
    let up = one_json(&run_ok(up).await);
    assert_eq!(
        (up["size"].as_u64(), up["bytes_sent"].as_u64()),
        (Some(0), Some(0))
    );
    let mut down = bob.command();
    down.args(["download", &up["id"].to_string()]);
    let path = PathBuf::from(run_ok(down).await.trim_end());
    assert_eq!(std::fs::read(&path).expect("read"), b"");

    // The path is said once, by `cannot upload`.
    let mut missing = alice.command();
    missing.args(["upload", "--room", "public", "/no/such/file.bin"]);
    let output = run(missing).await;
    assert!(!output.status.success());
    assert_eq!(
        stderr_line(&output),
        "chatroom: cannot upload /no/such/file.bin: No such file or directory (os error 2)\n"
    );

    let mut folder = alice.command();
    folder
        .args(["upload", "--room", "public"])
        .arg(alice.home.path());
    let output = run(folder).await;
    assert!(!output.status.success());
    assert_eq!(
        stderr_line(&output),
        format!(
            "chatroom: cannot upload {}: not a regular file\n",
            alice.home.path().display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_chunks_and_rate_limits_slow_a_transfer_but_do_not_break_it() {
    // 4 KiB chunks: the 1.2 MiB file takes ~300 requests each way, past the server's burst
    // allowance for requests, so it answers RateLimited and the client has to back off; and
    // reads are capped far below the 256 KiB the client asks for.
    let server = Server::start_with(|config| {
        config.files.chunk_bytes = 4096;
        // The request bucket is ten times the message one: 50/s, bursts of 200.
        config.limits.messages_per_second = 5;
        config.limits.message_burst = 5;
    })
    .await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let data = random_bytes(1_200_000, 5);
    let source = alice.home.path().join("slow.bin");
    std::fs::write(&source, &data).expect("write");
    let mut up = alice.command();
    up.args(["upload", "--room", "public", "--json"])
        .arg(&source);
    let up = one_json(&run_ok(up).await);
    assert_eq!(up["bytes_sent"], data.len() as u64);
    let id = up["id"].as_u64().expect("id").to_string();
    let mut down = alice.command();
    down.args(["download", &id, "--json"]);
    let down = one_json(&run_ok(down).await);
    assert_eq!(down["bytes_fetched"], data.len() as u64);
    let path = PathBuf::from(down["path"].as_str().expect("path"));
    assert!(std::fs::read(path).expect("read") == data, "bytes differ");
}

/// With no subcommand and no terminal (a script, a cron job, `ssh host chatroom`), the terminal
/// UI exits with an error saying why: no panic, and nothing written into the pipe.
#[tokio::test]
async fn the_terminal_ui_without_a_terminal_exits_with_a_clear_error() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    let output = run(alice.command()).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs a terminal"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
}

// ---- search ----

/// Waits until the server's search index holds `newest` (it indexes a moment after a message
/// is stored, oldest first, so everything before it is searchable too).
async fn await_indexed(client: &chatroom_protocol::client::Client, word: &str, newest: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = client
            .search(word, None, None, 1)
            .await
            .expect("search from the library");
        if page.messages.first().map(|m| m.id.0) == Some(newest) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {newest} was never indexed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn texts(lines: &[Value]) -> Vec<&str> {
    lines.iter().filter_map(|l| l["text"].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_in_my_rooms_newest_first() {
    use chatroom_protocol::Visibility;
    let server = Server::start().await;
    let [alice, _bob] = registered(&server, ["alice", "bob"]).await;
    let alice_lib = library_client(&server, "alice").await;
    let bob_lib = library_client(&server, "bob").await;
    let dev = alice_lib
        .create_room("dev", Visibility::Public)
        .await
        .expect("create dev");
    let secret = bob_lib
        .create_room("secret", Visibility::Private)
        .await
        .expect("create secret");
    let public = public_room(&alice_lib).await;
    for (client, room, text) in [
        (&alice_lib, public, "Deploy on Friday at noon"),
        (&bob_lib, public, "nothing to see here"),
        (&alice_lib, dev.id, "the DÉPLOY script is done"),
        (&bob_lib, secret.id, "deploy the secret plan"),
    ] {
        client.send_message(room, text).await.expect("send");
    }
    // A multi-line hit, in a direct chat.
    let mut dm = alice.command();
    dm.args([
        "send",
        "--to",
        "bob",
        "--json",
        "deploy notes\n[2026-11-22T10:29:27Z] #public <carol> deploy forged",
    ]);
    let newest = one_json(&run_ok(dm).await)["id"].as_u64().expect("id");
    await_indexed(&alice_lib, "deploy", newest).await;

    // Plain: newest first, labelled with the room; bob's private room is not alice's.
    let mut search = alice.command();
    search.args(["search", "deploy"]);
    let text = run_ok(search).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].ends_with(" @bob <alice> deploy notes"), "{text}");
    assert_eq!(
        lines[1], "  | [2026-11-22T10:29:27Z] #public <carol> deploy forged",
        "a second line is marked as the first one's continuation"
    );
    assert!(
        lines[2].ends_with(" #dev <alice> the DÉPLOY script is done"),
        "case and accents ignored: {text}"
    );
    assert!(
        lines[3].ends_with(" #public <alice> Deploy on Friday at noon"),
        "{text}"
    );
    assert!(
        lines[0].starts_with('[') && !text.contains("secret"),
        "{text}"
    );

    // JSON: one object per hit, with the room it is in.
    let mut search = alice.command();
    search.args(["search", "deploy", "--json"]);
    let hits = json_lines(&run_ok(search).await);
    let rooms: Vec<(&str, &str)> = hits
        .iter()
        .filter_map(|h| Some((h["room"].as_str()?, h["room_kind"].as_str()?)))
        .collect();
    assert_eq!(
        rooms,
        [("bob", "direct"), ("dev", "public"), ("public", "public")]
    );
    assert_eq!(hits[0]["id"], newest);
    assert_eq!(hits[1]["room_id"], dev.id.0);
    assert_eq!(hits[2]["from"], "alice");
    // After the room's notices of the registrations.
    assert_eq!(hits[2]["seq"], 3);
    assert_eq!(hits[2]["kind"], "text");
    assert_eq!(
        hits[0]["text"],
        "deploy notes\n[2026-11-22T10:29:27Z] #public <carol> deploy forged"
    );

    // --room and --to keep to one room; a phrase and a prefix as the README says.
    for (args, expected) in [
        (&["--room", "dev"][..], &["the DÉPLOY script is done"][..]),
        (&["--room", "#public"], &["Deploy on Friday at noon"]),
        (
            &["--to", "@bob"],
            &["deploy notes\n[2026-11-22T10:29:27Z] #public <carol> deploy forged"],
        ),
    ] {
        let mut search = alice.command();
        search.args(["search", "deploy", "--json"]).args(args);
        let hits = json_lines(&run_ok(search).await);
        assert_eq!(texts(&hits), expected, "{args:?}");
    }
    let mut phrase = alice.command();
    phrase.args(["search", "\"on friday\"", "--json"]);
    assert_eq!(
        texts(&json_lines(&run_ok(phrase).await)),
        ["Deploy on Friday at noon"]
    );
    let mut words = alice.command();
    words.args(["search", "dep*", "NOON", "--json"]);
    assert_eq!(
        texts(&json_lines(&run_ok(words).await)),
        ["Deploy on Friday at noon"],
        "every word must appear"
    );

    // Nothing found is no failure: a note on stderr, and nothing at all with --json.
    let mut none = alice.command();
    none.args(["search", "zebra"]);
    let output = run(none).await;
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "no messages found\n"
    );
    let mut none = alice.command();
    none.args(["search", "secret", "--json"]);
    let output = run(none).await;
    assert!(output.status.success());
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_without_words_or_in_an_unknown_room_fails_in_one_line() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let mut send = alice.command();
    send.args(["send", "--room", "public", "deploy"]);
    run_ok(send).await;

    for (args, says) in [
        (
            &["search", "\"\"", "*", "!?"][..],
            "search for at least one word",
        ),
        (
            &["search", "deploy", "--room", "nowhere"],
            "not in a room named",
        ),
        (
            &["search", &"x".repeat(300)],
            "the search is 300 characters; at most 256",
        ),
    ] {
        let mut search = alice.command();
        search.args(args);
        let output = run(search).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let line = stderr_line(&output);
        assert!(line.contains(says), "{args:?}: {line}");
    }
    let mut nothing = alice.command();
    nothing.arg("search");
    let output = run(nothing).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "no words at all is a usage error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_follows_pages_up_to_the_limit() {
    // Pages of 3: seven hits take three requests, and all eight take three more.
    let server = Server::start_with(|config| config.limits.max_history_page = 3).await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let client = library_client(&server, "alice").await;
    let public = public_room(&client).await;
    let mut newest = 0;
    for n in 1..=8 {
        client
            .send_message(public, format!("other news {n}"))
            .await
            .expect("send");
        newest = client
            .send_message(public, format!("build {n} is green"))
            .await
            .expect("send")
            .id
            .0;
    }
    await_indexed(&client, "green", newest).await;

    let mut search = alice.command();
    search.args(["search", "green", "--limit", "7", "--json"]);
    let hits = json_lines(&run_ok(search).await);
    let expected: Vec<String> = (2..=8)
        .rev()
        .map(|n| format!("build {n} is green"))
        .collect();
    assert_eq!(texts(&hits), expected, "the newest seven, newest first");
    let mut search = alice.command();
    search.args(["search", "green", "--json"]);
    let hits = json_lines(&run_ok(search).await);
    assert_eq!(hits.len(), 8, "every hit, under the default limit");
    assert_eq!(hits[7]["text"], "build 1 is green");
    let mut plain = alice.command();
    plain.args(["search", "green", "--limit", "4"]);
    let text = run_ok(plain).await;
    let ends: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest.trim_start()))
        .collect();
    // Build N is seq 2N + 1, after the notice of alice's registration and other news N.
    assert_eq!(
        ends,
        [
            "17 #public <alice> build 8 is green",
            "15 #public <alice> build 7 is green",
            "13 #public <alice> build 6 is green",
            "11 #public <alice> build 5 is green",
        ]
    );
}

/// The server looks at a bounded number of candidates (5000) per request; when all of them are
/// in rooms that are not mine, the page is empty but says where to go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_goes_on_past_pages_with_no_hits_for_me() {
    const NOISE: u32 = 5001;
    let server = Server::start_with(|config| {
        config.limits.messages_per_second = 1_000_000;
        config.limits.message_burst = 1_000_000;
    })
    .await;
    let [alice, _bob] = registered(&server, ["alice", "bob"]).await;
    let mut send = alice.command();
    send.args(["send", "--room", "public", "a needle in public"]);
    run_ok(send).await;

    // Bob's private room, which alice is not in, fills with newer matches.
    let bob_lib = library_client(&server, "bob").await;
    let noise = bob_lib
        .create_room("noise", chatroom_protocol::Visibility::Private)
        .await
        .expect("create")
        .id;
    let (handle, events) = bob_lib.into_parts();
    drop(events);
    let mut newest = 0;
    for batch in (0..NOISE).collect::<Vec<_>>().chunks(500) {
        let mut pending = Vec::new();
        for n in batch {
            let request = chatroom_protocol::Request::SendMessage {
                room: noise,
                text: format!("needle {n}"),
            };
            pending.push(handle.send_request(request).await.expect("queue"));
        }
        for answer in pending {
            match answer.response().await.expect("sent") {
                chatroom_protocol::Response::Sent(sent) => newest = newest.max(sent.id.0),
                other => panic!("{other:?}"),
            }
        }
    }
    let alice_lib = library_client(&server, "alice").await;
    let check = library_client(&server, "bob").await;
    await_indexed(&check, "needle", newest).await;
    let first = alice_lib
        .search("needle", None, None, 20)
        .await
        .expect("search");
    assert!(
        first.messages.is_empty() && first.next.is_some(),
        "the server's first page has nothing for alice: {first:?}"
    );

    let mut search = alice.command();
    search.args(["search", "needle", "--json"]);
    let hits = json_lines(&run_ok(search).await);
    assert_eq!(texts(&hits), ["a needle in public"]);
}

/// Runs `chatroom ARGS…` as `user` with its standard output closed before it prints, as
/// `chatroom history | head` has it once `head` has its lines.
async fn run_into_a_closed_pipe(user: &User, args: &[&str]) -> Output {
    let mut command = user.command();
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    drop(child.stdout.take());
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_went_away_ends_every_listing_quietly() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let sent = one_json(&chatroom(&alice, &["send", "--room", "public", "--json", "hello"]).await);
    let source = alice.home.path().join("notes.txt");
    std::fs::write(&source, b"notes").expect("write");
    let mut up = alice.command();
    up.args(["upload", "--room", "public", "--json"])
        .arg(&source);
    let file = one_json(&run_ok(up).await)["id"].to_string();
    let check = library_client(&server, "alice").await;
    await_indexed(&check, "hello", sent["id"].as_u64().expect("id")).await;

    for args in [
        &["history", "--room", "public"][..],
        &["history", "--room", "public", "--json"],
        &["tail", "--room", "public", "--since", "0"],
        &["search", "hello"],
        &["rooms"],
        &["users", "--json"],
        &["members", "--room", "public"],
        &["files", "--room", "public"],
        &["join", "public"],
        &["download", &file],
    ] {
        let output = run_into_a_closed_pipe(&alice, args).await;
        assert_eq!(
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ),
            (Some(0), "".into()),
            "{args:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_say_one_in_the_singular_and_keep_their_columns_with_wide_names() {
    use unicode_width::UnicodeWidthStr;
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;
    chatroom(&alice, &["create", "🚀rocket"]).await;
    chatroom(&bob, &["send", "--room", "public", "@alice look"]).await;

    // The column where what follows a name starts, in terminal columns.
    let column = |line: &str, of: &str| {
        line.find(of)
            .map(|at| line[..at].width())
            .unwrap_or_else(|| panic!("{of:?} in {line:?}"))
    };
    let rooms = chatroom(&alice, &["rooms"]).await;
    let lines: Vec<&str> = rooms.lines().collect();
    let rocket = lines
        .iter()
        .find(|l| l.starts_with("#🚀rocket "))
        .unwrap_or_else(|| panic!("{rooms}"));
    let public = lines
        .iter()
        .find(|l| l.starts_with("#public "))
        .unwrap_or_else(|| panic!("{rooms}"));
    assert!(
        rocket.contains(" 1 member") && !rocket.contains("members"),
        "{rooms}"
    );
    assert!(
        public.contains(" members  ")
            && public.contains(" unread  1 mention")
            && !public.contains("mentions"),
        "{rooms}"
    );
    assert_eq!(
        column(rocket, " public "),
        column(public, " public "),
        "{rooms}"
    );

    for (name, content) in [("we ird 名前.txt", "content 1"), ("plain.txt", "content 2")] {
        let path = alice.home.path().join(name);
        std::fs::write(&path, content).expect("write");
        let mut up = alice.command();
        up.args(["upload", "--room", "public"]).arg(&path);
        run_ok(up).await;
    }
    let files = chatroom(&bob, &["files", "--room", "public"]).await;
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(lines.len(), 2, "{files}");
    for of in ["9 B", "alice", "T"] {
        assert_eq!(
            column(lines[0], of),
            column(lines[1], of),
            "{of:?} in\n{files}"
        );
    }
}

/// Runs `chatroom ARGS…` as `user` and returns what it printed; fails the test if it failed.
async fn chatroom(user: &User, args: &[&str]) -> String {
    let mut command = user.command();
    command.args(args);
    run_ok(command).await
}

/// Runs `chatroom ARGS…` as `user`, which must be refused: exit status 1 and one line on
/// stderr, returned.
async fn refused(user: &User, args: &[&str]) -> String {
    let mut command = user.command();
    command.args(args);
    let output = run(command).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?} is refused: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.stdout.is_empty(), "nothing on stdout for {args:?}");
    stderr_line(&output)
}

/// The texts of a room's notices (the `system` messages of its history), oldest first.
async fn notices(user: &User, room: &str) -> Vec<String> {
    let history = chatroom(user, &["history", "--room", room, "--json"]).await;
    json_lines(&history)
        .iter()
        .filter(|m| m["kind"] == "system")
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The names of my rooms.
async fn room_names(user: &User) -> Vec<String> {
    let rooms = chatroom(user, &["rooms", "--json"]).await;
    json_lines(&rooms)
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_created_joined_and_left_from_the_shell() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;

    let created = one_json(&chatroom(&alice, &["create", "#dev", "--json"]).await);
    assert_eq!(
        (
            created["kind"].as_str(),
            created["name"].as_str(),
            created["room_kind"].as_str(),
            created["members"].as_u64()
        ),
        (Some("room"), Some("dev"), Some("public"), Some(1))
    );
    assert_eq!(
        chatroom(&alice, &["create", "secret", "--private"]).await,
        "created #secret (private, 1 member)\n"
    );

    assert_eq!(
        chatroom(&bob, &["join", "dev"]).await,
        "joined #dev (public, 2 members)\n"
    );
    assert_eq!(
        chatroom(&bob, &["join", "#DEV"]).await,
        "already in #dev\n",
        "joining a room again changes nothing, and says so"
    );
    assert_eq!(
        notices(&alice, "dev").await.last().map(String::as_str),
        Some("bob joined")
    );
    let joined = one_json(&chatroom(&bob, &["join", "public", "--json"]).await);
    assert_eq!(joined["name"], "public", "joining a room again is fine");
    let refusal = refused(&bob, &["join", "secret"]).await;
    assert!(
        refusal.starts_with("chatroom: cannot join #secret: "),
        "{refusal}"
    );

    assert_eq!(
        chatroom(&alice, &["invite", "--room", "secret", "@bob"]).await,
        "added bob to #secret\n"
    );
    assert!(room_names(&bob).await.contains(&"secret".to_string()));
    assert_eq!(
        chatroom(&bob, &["leave", "--room", "secret"]).await,
        "left #secret\n"
    );
    assert!(!room_names(&bob).await.contains(&"secret".to_string()));
    let said = notices(&alice, "secret").await;
    assert!(
        said.ends_with(&["alice added bob".to_string(), "bob left".to_string()]),
        "{said:?}"
    );

    // The topic: set from the words given, shown with none, cleared with --clear.
    assert_eq!(
        chatroom(&alice, &["topic", "--room", "dev"]).await,
        "#dev has no topic\n"
    );
    assert_eq!(
        chatroom(
            &alice,
            &["topic", "--room", "dev", "release", "on", "Friday"]
        )
        .await,
        "set the topic of #dev: release on Friday\n"
    );
    let topic = |rooms: String| {
        json_lines(&rooms)
            .into_iter()
            .find(|r| r["name"] == "dev")
            .map(|r| r["topic"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        topic(chatroom(&bob, &["rooms", "--json"]).await).as_deref(),
        Some("release on Friday")
    );
    assert_eq!(
        chatroom(&alice, &["topic", "--room", "dev"]).await,
        "the topic of #dev: release on Friday\n",
        "no words: shown, not cleared"
    );
    assert_eq!(
        topic(chatroom(&bob, &["rooms", "--json"]).await).as_deref(),
        Some("release on Friday")
    );
    assert_eq!(
        chatroom(&alice, &["topic", "--room", "dev", "--clear"]).await,
        "cleared the topic of #dev\n"
    );
    assert_eq!(
        topic(chatroom(&bob, &["rooms", "--json"]).await).as_deref(),
        Some("")
    );
    let said = notices(&bob, "dev").await;
    assert!(
        said.ends_with(&[
            "alice set the topic: release on Friday".to_string(),
            "alice cleared the topic".to_string()
        ]),
        "{said:?}"
    );

    // Members, owners first, with their role and presence.
    let members = json_lines(&chatroom(&bob, &["members", "--room", "dev", "--json"]).await);
    let seen: Vec<(&str, &str, &str)> = members
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default(),
                m["role"].as_str().unwrap_or_default(),
                m["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        members
            .iter()
            .all(|m| m["kind"] == "member" && m["room"] == "dev"),
        "{members:?}"
    );
    // alice has no connection now; bob has his command's.
    assert_eq!(
        seen,
        [("alice", "owner", "offline"), ("bob", "member", "online")]
    );
    let plain = chatroom(&bob, &["members", "--room", "dev"]).await;
    let words: Vec<Vec<&str>> = plain
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(words[0][..2], ["alice", "owner"], "{plain}");
    assert_eq!(words[1], ["bob", "member", "online"], "{plain}");

    // Leaving a room one is not in is said in one line, before asking the server.
    let refusal = refused(&bob, &["leave", "--room", "secret"]).await;
    assert!(refusal.contains("not in a room named"), "{refusal}");

    // Only the owner renames; the room is then found by its new name.
    let refusal = refused(&bob, &["rename", "--room", "dev", "bobs"]).await;
    assert!(refusal.contains("only the room's owner"), "{refusal}");
    assert_eq!(
        chatroom(&alice, &["rename", "--room", "#dev", "#backend"]).await,
        "renamed #dev to #backend\n"
    );
    let said = notices(&bob, "backend").await;
    assert_eq!(
        said.last().map(String::as_str),
        Some("alice renamed the room from dev to backend")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_takes_the_room_as_join_does_and_still_as_room() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;
    for room in ["dev", "ops"] {
        chatroom(&alice, &["create", room]).await;
        chatroom(&bob, &["join", room]).await;
    }

    assert_eq!(chatroom(&bob, &["leave", "#dev"]).await, "left #dev\n");
    // The spelling of scripts written before `leave` took a plain argument.
    assert_eq!(
        chatroom(&bob, &["leave", "--room", "ops"]).await,
        "left #ops\n"
    );
    let mine = room_names(&bob).await;
    assert!(
        !mine.contains(&"dev".to_string()) && !mine.contains(&"ops".to_string()),
        "{mine:?}"
    );

    // No room, or two ways of naming one: a usage error (status 2), before any connection.
    for args in [&["leave"][..], &["leave", "dev", "--room", "ops"]] {
        let mut command = bob.command();
        command.args(args);
        let output = run(command).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("<ROOM|--room <ROOM>>"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_usage_error_shows_no_flag_that_came_from_the_environment() {
    let home = tempfile::tempdir().expect("home");
    let with_environment = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom"));
        command
            .env_remove("CHATROOM_PASSWORD")
            .env_remove("CHATROOM_CONFIG")
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            // Nothing listens on port 1: the command fails once it connects.
            .env("CHATROOM_SERVER", "127.0.0.1:1")
            .env("CHATROOM_USER", "alice")
            .args(args)
            .stdin(Stdio::null());
        run(command)
    };
    let output = with_environment(&["leave"]).await;
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let usage: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Usage: "))
        .collect();
    assert_eq!(
        usage,
        ["Usage: chatroom leave <ROOM|--room <ROOM>>"],
        "{stderr}"
    );
    // The environment is still what the command goes by.
    let output = with_environment(&["leave", "dev", "--password-file", "/dev/null"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_line(&output).starts_with("chatroom: cannot connect to 127.0.0.1:1"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A room named as a plain word where `--room` was wanted (`chatroom send public hi`, the first
/// thing people type) is a usage error that shows the command as meant; a text alone, or a
/// room named with `--room`, gets no such line.
#[tokio::test]
async fn a_room_named_without_room_gets_the_command_as_meant() {
    let home = tempfile::tempdir().expect("home");
    let usage_error = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom"));
        command
            .env_remove("CHATROOM_SERVER")
            .env_remove("CHATROOM_USER")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .args(args)
            .stdin(Stdio::null());
        let args = args.join(" ");
        async move {
            let output = run(command).await;
            assert_eq!(output.status.code(), Some(2), "{args}: a usage error");
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            stderr
                .lines()
                .find_map(|l| l.strip_prefix("tip: "))
                .map(str::to_string)
        }
    };
    let meant = |line: &str| {
        Some(format!(
            "a room is named with --room (a direct chat with --to USER): {line}"
        ))
    };
    assert_eq!(
        usage_error(&["send", "public", "hi there"]).await,
        meant("chatroom send --room public 'hi there'")
    );
    assert_eq!(
        usage_error(&["history", "--limit", "3", "#dev"]).await,
        meant("chatroom history --limit 3 --room dev")
    );
    assert_eq!(
        usage_error(&["upload", "dev", "notes.pdf"]).await,
        meant("chatroom upload --room dev notes.pdf")
    );
    assert_eq!(
        usage_error(&["send", "#dev", "#dev"]).await,
        meant("chatroom send --room dev '#dev'"),
        "only the room loses its #, and a text starting with # is quoted for the shell"
    );
    assert_eq!(usage_error(&["send", "hi"]).await, None, "a text alone");
    assert_eq!(
        usage_error(&["history", "--room", "dev", "extra"]).await,
        None,
        "the room was named"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_says_which_exit_status_means_what_and_the_binary_gives_them() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let help = chatroom(&alice, &["--help"]).await;
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for said in [
        "Exit status: 0 when done",
        "1 when it failed or was refused",
        "2 for a command line it does not take",
        "130 for a transfer stopped by Ctrl-C",
    ] {
        assert!(help.contains(said), "{said:?} in {help}");
    }
    // 1: refused, in one line.
    refused(&alice, &["leave", "nowhere"]).await;
    // 2: a command line it does not take (130 is checked in cli::tests).
    for args in [
        &["send", "no room named"][..],
        &["history", "--room"],
        &["frobnicate"],
    ] {
        let mut command = alice.command();
        command.args(args);
        let output = run(command).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_chat_given_to_a_room_command_is_said_to_be_one() {
    let server = Server::start().await;
    let [_alice, bob] = registered(&server, ["alice", "bob"]).await;
    chatroom(&bob, &["send", "--to", "alice", "hi"]).await;
    // `@alice`, as `rooms` lists the chat; these commands have no --to to point to.
    for args in [
        &["leave", "@alice"][..],
        &["members", "--room", "@alice"],
        &["kick", "--room", "@alice", "alice"],
    ] {
        assert_eq!(
            refused(&bob, args).await,
            "chatroom: @alice is a direct chat, not a room\n",
            "{args:?}"
        );
    }
    // Nor is one joined: `send --to` opens it (the server used to be asked for "#@alice").
    assert_eq!(
        refused(&bob, &["join", "@alice"]).await,
        "chatroom: @alice is a direct chat, not a room: `chatroom send --to alice` writes to it\n"
    );
    // Commands that take --to still point to it.
    let refusal = refused(&bob, &["history", "--room", "@alice"]).await;
    assert_eq!(
        refusal,
        "chatroom: @alice is a direct chat: use --to alice\n"
    );
}

/// What follows the time in a plain message line: `     5 #dev <alice> hi`.
fn after_the_time(line: &str) -> &str {
    line.split_once("] ").map_or("", |(_, rest)| rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_history_tail_and_search_show_the_seq_that_delete_takes() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    register(&alice).await;
    let writer = library_client(&server, "alice").await;
    let room = public_room(&writer).await;
    // After the notice of alice's registration (seq 1): seqs of one digit and of two.
    let mut newest = 0;
    for n in 2..=10 {
        newest = writer
            .send_message(room, format!("note {n}"))
            .await
            .expect("send")
            .id
            .0;
    }

    let plain = chatroom(&alice, &["history", "--room", "public"]).await;
    let lines: Vec<&str> = plain.lines().collect();
    let seqs: Vec<&str> = lines
        .iter()
        .filter_map(|l| after_the_time(l).split_whitespace().next())
        .collect();
    let json = json_lines(&chatroom(&alice, &["history", "--room", "public", "--json"]).await);
    let json_seqs: Vec<String> = json.iter().map(|m| m["seq"].to_string()).collect();
    assert_eq!(seqs, json_seqs, "the seqs --json has: {plain}");
    assert_eq!(
        seqs.first().zip(seqs.last()),
        Some((&"1", &"10")),
        "{plain}"
    );
    // A column: the room starts in the same place after a seq of one digit or two.
    assert_eq!(after_the_time(lines[1]), "     2 #public <alice> note 2");
    assert_eq!(after_the_time(lines[9]), "    10 #public <alice> note 10");

    // The seq read there is the one `delete` takes.
    let five = lines
        .iter()
        .find(|l| l.ends_with("<alice> note 5"))
        .and_then(|l| after_the_time(l).split_whitespace().next())
        .unwrap_or_else(|| panic!("note 5 in {plain}"));
    assert_eq!(
        chatroom(&alice, &["delete", "--room", "public", five]).await,
        "deleted message 5 in #public\n"
    );
    let plain = chatroom(&alice, &["history", "--room", "public", "--limit", "6"]).await;
    assert_eq!(
        plain.lines().map(after_the_time).next(),
        Some("     5 #public * (deleted)"),
        "{plain}"
    );

    // tail and search print it the same way.
    let tail = chatroom(
        &alice,
        &["tail", "--room", "public", "--since", "8", "--count", "2"],
    )
    .await;
    let ends: Vec<&str> = tail.lines().map(after_the_time).collect();
    assert_eq!(
        ends,
        [
            "     9 #public <alice> note 9",
            "    10 #public <alice> note 10"
        ],
        "{tail}"
    );
    await_indexed(&writer, "note", newest).await;
    let found = chatroom(&alice, &["search", "note", "--limit", "2"]).await;
    let ends: Vec<&str> = found.lines().map(after_the_time).collect();
    assert_eq!(
        ends,
        [
            "    10 #public <alice> note 10",
            "     9 #public <alice> note 9"
        ],
        "{found}"
    );
}

/// The message of #public at `seq` (as typed on the command line), as `history --json` shows it.
async fn public_message(user: &User, seq: &str) -> Value {
    let history = json_lines(&chatroom(user, &["history", "--room", "public", "--json"]).await);
    history
        .into_iter()
        .find(|m| m["seq"].as_u64().map(|n| n.to_string()).as_deref() == Some(seq))
        .unwrap_or_else(|| panic!("no message {seq} in #public"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_messages_are_edited_and_deleted_by_seq() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;

    let sent = one_json(&chatroom(&alice, &["send", "--room", "public", "--json", "helo"]).await);
    let seq = sent["seq"].as_u64().expect("seq").to_string();
    assert_eq!(
        chatroom(
            &alice,
            &["edit", "--room", "public", &seq, "hello", "world"]
        )
        .await,
        format!("edited message {seq} in #public\n")
    );
    let message = public_message(&bob, &seq).await;
    assert_eq!(message["text"], "hello world");
    assert!(message["edited_at"].is_u64(), "{message}");
    // The same text again: the server changes nothing, and that is what is said.
    assert_eq!(
        chatroom(&alice, &["edit", "--room", "public", &seq, "hello world"]).await,
        format!("message {seq} in #public already says that\n")
    );
    assert_eq!(public_message(&bob, &seq).await, message, "untouched");

    // Someone else's message: the server's reason, in one line.
    let refusal = refused(&bob, &["edit", "--room", "public", &seq, "hijacked"]).await;
    assert_eq!(
        refusal,
        format!(
            "chatroom: cannot edit message {seq} in #public: only its sender may edit a message\n"
        )
    );
    let refusal = refused(&bob, &["delete", "--room", "public", &seq]).await;
    assert!(refusal.starts_with(&format!(
        "chatroom: cannot delete message {seq} in #public: "
    )));

    assert_eq!(
        chatroom(&alice, &["delete", "--room", "public", &seq]).await,
        format!("deleted message {seq} in #public\n")
    );
    let message = public_message(&bob, &seq).await;
    assert_eq!(
        (message["kind"].as_str(), message["text"].as_str()),
        (Some("deleted"), Some(""))
    );

    // In a direct chat, named by the other user.
    let sent = one_json(&chatroom(&bob, &["send", "--to", "alice", "--json", "sea you"]).await);
    let seq = sent["seq"].as_u64().expect("seq").to_string();
    assert_eq!(
        chatroom(&bob, &["edit", "--to", "@alice", &seq, "see you"]).await,
        format!("edited message {seq} in @alice\n")
    );
    let history = chatroom(&alice, &["history", "--to", "bob"]).await;
    assert!(
        history.ends_with("@bob <bob> see you (edited)\n"),
        "{history}"
    );
}

/// dave (the server's admin), bob and carol, registered, in #dev, which dave created and owns.
async fn dave_bob_and_carol_in_dev(server: &Server) -> [User; 3] {
    let users = registered(server, ["dave", "bob", "carol"]).await;
    let [dave, bob, carol] = &users;
    chatroom(dave, &["create", "dev"]).await;
    chatroom(bob, &["join", "dev"]).await;
    chatroom(carol, &["join", "dev"]).await;
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_kick_ban_and_mute_from_the_shell() {
    let server = Server::start().await;
    let [dave, bob, carol] = dave_bob_and_carol_in_dev(&server).await;

    // A plain member may not moderate.
    let refusal = refused(&bob, &["kick", "--room", "dev", "carol"]).await;
    assert_eq!(
        refusal,
        "chatroom: cannot remove carol from #dev: only the owner or a moderator may remove \
         members\n"
    );

    assert_eq!(
        chatroom(
            &dave,
            &["kick", "--room", "dev", "bob", "--reason", "off topic"]
        )
        .await,
        "removed bob from #dev\n"
    );
    assert!(!room_names(&bob).await.contains(&"dev".to_string()));
    assert_eq!(
        notices(&dave, "dev").await.last().map(String::as_str),
        Some("dave removed bob: off topic")
    );

    // A ban keeps bob out until it is lifted.
    chatroom(&bob, &["join", "dev"]).await;
    assert_eq!(
        chatroom(&dave, &["ban", "--room", "dev", "@bob", "--reason", "spam"]).await,
        "banned bob from #dev\n"
    );
    assert_eq!(
        notices(&dave, "dev").await.last().map(String::as_str),
        Some("dave banned bob: spam")
    );
    let bans = json_lines(&chatroom(&dave, &["bans", "--room", "dev", "--json"]).await);
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(
        (
            bans[0]["kind"].as_str(),
            bans[0]["name"].as_str(),
            bans[0]["by"].as_str(),
            bans[0]["reason"].as_str()
        ),
        (Some("ban"), Some("bob"), Some("dave"), Some("spam"))
    );
    let plain = chatroom(&dave, &["bans", "--room", "dev"]).await;
    assert!(
        plain.starts_with("bob ")
            && plain.contains(" banned by dave on ")
            && plain.ends_with(": spam\n"),
        "{plain}"
    );
    refused(&bob, &["join", "dev"]).await;
    assert_eq!(
        chatroom(&dave, &["unban", "--room", "dev", "bob"]).await,
        "lifted the ban on bob in #dev\n"
    );
    assert_eq!(
        chatroom(&dave, &["bans", "--room", "dev", "--json"]).await,
        ""
    );
    // Plain, an empty list says so on stderr; its stdout stays empty.
    let mut bans = dave.command();
    bans.args(["bans", "--room", "dev"]);
    let output = run(bans).await;
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(stderr_line(&output), "nobody is banned from #dev\n");
    chatroom(&bob, &["join", "dev"]).await;

    // A mute for a while: listed with when it ends, and carol cannot post until it is lifted.
    assert_eq!(
        chatroom(
            &dave,
            &[
                "mute", "--room", "dev", "carol", "--for", "10m", "--reason", "noisy"
            ]
        )
        .await,
        "muted carol in #dev for 10 min\n"
    );
    assert_eq!(
        notices(&dave, "dev").await.last().map(String::as_str),
        Some("dave muted carol for 10 min: noisy")
    );
    let mutes = one_json(&chatroom(&dave, &["mutes", "--room", "dev", "--json"]).await);
    assert_eq!(
        (
            mutes["kind"].as_str(),
            mutes["name"].as_str(),
            mutes["by"].as_str(),
            mutes["reason"].as_str()
        ),
        (Some("mute"), Some("carol"), Some("dave"), Some("noisy"))
    );
    let (since, until) = (
        mutes["since"].as_u64().expect("since"),
        mutes["until"].as_u64().expect("until"),
    );
    assert!(
        (599_000..=601_000).contains(&(until - since)),
        "ten minutes: {mutes}"
    );
    let refusal = refused(&carol, &["send", "--room", "dev", "hello?"]).await;
    assert!(refusal.contains("the message was not sent"), "{refusal}");
    assert_eq!(
        chatroom(&dave, &["unmute", "--room", "dev", "carol"]).await,
        "unmuted carol in #dev\n"
    );
    assert_eq!(
        chatroom(&dave, &["mutes", "--room", "dev", "--json"]).await,
        ""
    );
    chatroom(&carol, &["send", "--room", "dev", "hello again"]).await;

    // Without --for, until unmuted; a bare number is minutes, as in the terminal UI.
    assert_eq!(
        chatroom(&dave, &["mute", "--room", "dev", "carol"]).await,
        "muted carol in #dev until unmuted\n"
    );
    let mutes = one_json(&chatroom(&dave, &["mutes", "--room", "dev", "--json"]).await);
    assert!(mutes["until"].is_null(), "{mutes}");
    let plain = chatroom(&dave, &["mutes", "--room", "dev"]).await;
    assert!(
        plain.starts_with("carol ") && plain.ends_with(" muted by dave until unmuted\n"),
        "{plain}"
    );
    assert_eq!(
        chatroom(&dave, &["mute", "--room", "dev", "bob", "--for", "90"]).await,
        "muted bob in #dev for 1 h 30 min\n"
    );
    assert_eq!(
        notices(&dave, "dev").await.last().map(String::as_str),
        Some("dave muted bob for 1 h 30 min")
    );
}

/// `chatroom purge` deletes all a member posted in a room lately, more than the server takes
/// in one request, and says how many in one line; asked again, that nothing is left. Someone
/// who moderates nothing there is refused with the server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_purges_what_someone_posted_lately_from_the_shell() {
    let server = Server::start_with(|config| {
        config.limits.messages_per_second = 10_000;
        config.limits.message_burst = 10_000;
    })
    .await;
    let [dave, bob, carol] = dave_bob_and_carol_in_dev(&server).await;
    // One more than a request deletes, so that all of it takes two.
    let spam = chatroom_protocol::MAX_DELETED_AT_ONCE + 1;
    let spammer = library_client(&server, "bob").await;
    let dev = room_id(&spammer, "dev").await;
    for i in 1..=spam {
        spammer
            .send_message(dev, format!("spam {i}"))
            .await
            .expect("send");
    }
    chatroom(&carol, &["send", "--room", "dev", "a real question"]).await;

    assert_eq!(
        chatroom(&dave, &["purge", "--room", "dev", "bob", "--last", "10m"]).await,
        format!("deleted {spam} messages of bob's in #dev from the last 10 min\n")
    );
    // The newest page: bob's messages all show deleted, carol's stays.
    let history = json_lines(&chatroom(&dave, &["history", "--room", "dev", "--json"]).await);
    let kinds_from = |who: &str| -> Vec<&str> {
        history
            .iter()
            .filter(|m| m["from"] == who && m["kind"] != "system")
            .map(|m| m["kind"].as_str().unwrap_or_default())
            .collect()
    };
    let bobs = kinds_from("bob");
    assert!(
        !bobs.is_empty() && bobs.iter().all(|kind| *kind == "deleted"),
        "{bobs:?}"
    );
    assert_eq!(kinds_from("carol"), ["text"]);
    assert_eq!(
        chatroom(&dave, &["purge", "--room", "#dev", "@bob"]).await,
        "nothing of bob's to delete in #dev from the last 1 h\n"
    );
    assert_eq!(
        refused(&bob, &["purge", "--room", "dev", "carol"]).await,
        "chatroom: cannot delete carol's messages in #dev: only the owner or a moderator of a \
         named room may delete someone's messages\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_accounts_while_registration_is_closed() {
    let server = Server::start_with(|config| {
        config.registration = chatroom_server::config::RegistrationPolicy::Closed;
    })
    .await;
    let alice = User::new("alice", &server);
    // Nobody registers themselves here.
    let mut sign_up = alice.command();
    sign_up.arg("register").env("CHATROOM_PASSWORD", PASSWORD);
    let output = run(sign_up).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("registration is closed"));
    // The first admin is made offline, as the README says.
    let server = server
        .restart_after(|dir| {
            let mut admin = chatroom_server::admin::Admin::open(dir).expect("admin");
            admin.add_user("alice", PASSWORD, true).expect("add alice");
        })
        .await;
    let alice = User::new("alice", &server);
    let mut login = alice.command();
    login.arg("login").env("CHATROOM_PASSWORD", PASSWORD);
    run_ok(login).await;

    // Alice adds bob while the server runs; his password comes from a file, not the command
    // line, and is not hers.
    let bobs_password = alice.home.path().join("bob-password");
    std::fs::write(&bobs_password, "bobs own secret\n").expect("write");
    let mut add = alice.command();
    add.args(["user", "add", "bob", "--new-password-file"])
        .arg(&bobs_password);
    assert!(run_ok(add).await.starts_with("added bob"));
    let bob = User::new("bob", &server);
    let mut login = bob.command();
    login
        .arg("login")
        .env("CHATROOM_PASSWORD", "bobs own secret");
    assert_eq!(run_ok(login).await, "logged in as bob\n");

    // Bob is no admin: he adds nobody.
    let mut add = bob.command();
    add.args(["user", "add", "carol"])
        .env("CHATROOM_NEW_PASSWORD", "carols secret 1");
    let output = run(add).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.contains("cannot add carol") && line.contains("only a server admin"),
        "{line}"
    );
    // Nor does anyone without a password for the new account and no terminal to ask on.
    let mut add = alice.command();
    add.args(["user", "add", "carol"]);
    let output = run(add).await;
    assert!(!output.status.success());
    assert!(stderr_line(&output).contains("--new-password-file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_resets_a_password_and_logs_someone_out_while_the_server_runs() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;

    let mut passwd = alice.command();
    passwd
        .args(["user", "passwd", "bob"])
        .env("CHATROOM_NEW_PASSWORD", "a password from alice");
    assert!(
        run_ok(passwd)
            .await
            .starts_with("set a new password for bob and logged them out everywhere")
    );
    // Bob's kept session ends with it, and the old password is no longer his.
    let mut rooms = bob.command();
    rooms.arg("rooms");
    let output = run(rooms).await;
    assert!(
        !output.status.success(),
        "bob's kept session no longer resumes"
    );
    assert!(!run(bob.login_with(PASSWORD)).await.status.success());
    run_ok(bob.login_with("a password from alice")).await;

    let mut logout = alice.command();
    logout.args(["user", "logout", "bob"]);
    assert_eq!(run_ok(logout).await, "logged bob out everywhere\n");
    let mut rooms = bob.command();
    rooms.arg("rooms");
    assert!(!run(rooms).await.status.success());

    // Bob is no admin: he logs nobody out, and the refusal says why.
    run_ok(bob.login_with("a password from alice")).await;
    let mut logout = bob.command();
    logout.args(["user", "logout", "alice"]);
    let output = run(logout).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.contains("cannot log alice out") && line.contains("only a server admin"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_suspends_someone_lists_it_and_lifts_it_while_the_server_runs() {
    let server = Server::start().await;
    let [alice, bob] = registered(&server, ["alice", "bob"]).await;

    let mut list = alice.command();
    list.args(["user", "suspended"]);
    let output = run(list).await;
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(stderr_line(&output).trim_end(), "no account is suspended");

    let mut suspend = alice.command();
    suspend.args(["user", "suspend", "bob", "--reason", "spam"]);
    assert!(run_ok(suspend).await.starts_with("suspended bob"));
    // Bob's kept session ends, and his password no longer logs him in; he is told why.
    let mut rooms = bob.command();
    rooms.arg("rooms");
    let output = run(rooms).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(line.contains("suspended (by alice: spam)"), "{line}");
    // Logging out the ended session on this machine still works.
    let mut logout = bob.command();
    logout.arg("logout");
    assert_eq!(
        run_ok(logout).await,
        "logged out bob (the session had already ended on the server)\n"
    );
    let output = run(bob.login_with(PASSWORD)).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(line.contains("suspended (by alice: spam)"), "{line}");

    let mut list = alice.command();
    list.args(["user", "suspended"]);
    let listed = run_ok(list).await;
    assert!(
        listed.starts_with("bob")
            && listed.contains("suspended by alice on")
            && listed.ends_with(": spam\n"),
        "{listed}"
    );
    let mut list = alice.command();
    list.args(["user", "suspended", "--json"]);
    let json: serde_json::Value =
        serde_json::from_str(run_ok(list).await.trim()).expect("one JSON line");
    assert_eq!(
        (&json["kind"], &json["name"], &json["by"], &json["reason"]),
        (
            &serde_json::json!("suspension"),
            &serde_json::json!("bob"),
            &serde_json::json!("alice"),
            &serde_json::json!("spam")
        )
    );

    let mut unsuspend = alice.command();
    unsuspend.args(["user", "unsuspend", "bob"]);
    assert_eq!(run_ok(unsuspend).await, "bob may log in again\n");
    run_ok(bob.login_with(PASSWORD)).await;

    // Bob is no admin: he suspends nobody, and the refusal says why.
    let mut suspend = bob.command();
    suspend.args(["user", "suspend", "alice"]);
    let output = run(suspend).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.contains("cannot suspend alice") && line.contains("only a server admin"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_promotes_demotes_and_deletes_accounts_while_the_server_runs() {
    let server = Server::start().await;
    let [alice, bob, carol] = registered(&server, ["alice", "bob", "carol"]).await;
    // What bob may do as an admin shows in whether he may list suspensions.
    let bob_acts_as_admin = || async {
        let mut list = bob.command();
        list.args(["user", "suspended"]);
        run(list).await.status.success()
    };
    assert!(!bob_acts_as_admin().await);

    let mut promote = alice.command();
    promote.args(["user", "promote", "bob"]);
    assert_eq!(run_ok(promote).await, "bob is a server admin\n");
    assert!(bob_acts_as_admin().await);
    let mut users = alice.command();
    users.args(["users", "--json"]);
    let listed = json_lines(&run_ok(users).await);
    let admin_of = |name: &str| {
        listed
            .iter()
            .find(|u| u["name"] == name)
            .map(|u| u["admin"].clone())
    };
    assert_eq!(
        (admin_of("bob"), admin_of("carol")),
        (
            Some(serde_json::json!(true)),
            Some(serde_json::json!(false))
        )
    );

    let mut demote = alice.command();
    demote.args(["user", "demote", "bob"]);
    assert_eq!(run_ok(demote).await, "bob is not a server admin\n");
    assert!(!bob_acts_as_admin().await);

    let mut delete = bob.command();
    delete.args(["user", "delete", "carol"]);
    let output = run(delete).await;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert!(
        line.contains("cannot delete carol") && line.contains("only a server admin"),
        "{line}"
    );

    let mut delete = alice.command();
    delete.args(["user", "delete", "carol"]);
    assert!(run_ok(delete).await.starts_with("deleted carol"));
    let mut rooms = carol.command();
    rooms.arg("rooms");
    let output = run(rooms).await;
    assert!(!output.status.success(), "carol's kept session ended");
    let output = run(carol.login_with(PASSWORD)).await;
    assert!(
        !output.status.success(),
        "and her password is gone with her"
    );
    let mut users = alice.command();
    users.args(["users", "--json"]);
    let names: Vec<Value> = json_lines(&run_ok(users).await)
        .into_iter()
        .map(|u| u["name"].clone())
        .collect();
    assert!(!names.contains(&serde_json::json!("carol")), "{names:?}");
}
