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
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::with_data_dir(dir.path());
        config.limits.max_connections_per_ip = 0;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        tokio::spawn(chatroom_server::run(listener, config, shutdown.clone()));
        Self {
            addr,
            shutdown,
            _dir: dir,
        }
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
            .args(["--server", &self.server.to_string(), "--user", self.name])
            .stdin(Stdio::null());
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
    assert_eq!(
        (ack["kind"].as_str(), ack["seq"].as_u64()),
        (Some("sent"), Some(2))
    );

    let mut history = alice.command();
    history.args(["history", "--room", "public", "--json"]);
    let lines = json_lines(&run_ok(history).await);
    assert_eq!(lines.len(), 2);
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
    assert!(text.ends_with("#public <alice> 多行\nmessage\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_arrivals_and_exits_after_count() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    let bob = User::new("bob", &server);
    register(&alice).await;
    register(&bob).await;
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
    assert_eq!(
        texts,
        ["before the tail", "one", "two"],
        "in order, no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_rooms_and_users() {
    let server = Server::start().await;
    let alice = User::new("alice", &server);
    let bob = User::new("bob", &server);
    register(&alice).await;
    register(&bob).await;
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

    let mut history = bob.command();
    history.args(["history", "--to", "alice"]);
    assert!(run_ok(history).await.contains("<alice> just between us"));

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
