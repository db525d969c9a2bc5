//! Tests of the real `chatroom-server` binary: kill -9 durability, and the offline admin
//! commands. (They live here because Cargo hands a binary's path only to its own package's
//! tests; everything else end-to-end is in the workspace's `tests/`.)

use chatroom_protocol::client::Client;
use chatroom_protocol::{HistoryAnchor, RoomId};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chatroom-server"))
}

/// A server process that is killed when the test lets go of it, so that a failed assertion
/// does not leave it running after the test.
struct ServerProcess(Child);

impl Deref for ServerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Both fail harmlessly once the test has stopped and reaped it.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server on an ephemeral port and returns it with the address it printed.
fn start_server(data_dir: &Path) -> (ServerProcess, SocketAddr) {
    let mut child = binary()
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args([
            "--messages-per-second",
            "100000",
            "--message-burst",
            "100000",
        ])
        .env("CHATROOM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chatroom-server");
    let addr = banner_address(&mut BufReader::new(child.stdout.take().expect("stdout")));
    (ServerProcess(child), addr)
}

/// The address in the first line a server prints:
/// "chatroom-server listening on 127.0.0.1:PORT, data in DIR".
fn banner_address(stdout: &mut impl BufRead) -> SocketAddr {
    let mut banner = String::new();
    stdout.read_line(&mut banner).expect("read the banner");
    banner
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
}

async fn all_history(client: &Client, room: RoomId) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = client
            .history(room, HistoryAnchor::After(after), 200)
            .await
            .expect("history");
        out.extend(page.messages.iter().map(|m| (m.seq, m.text.clone())));
        match page.messages.last() {
            Some(last) if page.has_more => after = last.seq,
            _ => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_kill_dash_nine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut server, addr) = start_server(dir.path());
    let client = Client::connect(addr, "writer").await.expect("connect");
    client.register("writer", PASSWORD).await.expect("register");
    let room = client.my_rooms().await.expect("rooms")[0].id;

    // Many senders with messages in flight, so the kill lands mid-stream and mid-batch.
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut senders = Vec::new();
    for sender in 0..8 {
        let handle = client.handle();
        let acks = acks_tx.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..100_000u32 {
                let text = format!("sender {sender} message {i}");
                match handle.send_message(room, text.clone()).await {
                    Ok(ack) => {
                        if acks.send((ack.seq, text)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    drop(acks_tx);
    let mut acked = Vec::new();
    while acked.len() < 2000 {
        match tokio::time::timeout(Duration::from_secs(30), acks_rx.recv()).await {
            Ok(Some(ack)) => acked.push(ack),
            other => panic!("acks stopped after {}: {other:?}", acked.len()),
        }
    }
    server.kill().expect("SIGKILL the server");
    server.wait().expect("reap");
    for sender in senders {
        let _ = sender.await;
    }
    // Acks that were already on their way when the server died count too.
    while let Ok(ack) = acks_rx.try_recv() {
        acked.push(ack);
    }
    drop(client);

    let (mut server, addr) = start_server(dir.path());
    let client = Client::connect(addr, "checker").await.expect("connect");
    client
        .login("writer", PASSWORD)
        .await
        .expect("login after restart");
    let stored = all_history(&client, room).await;
    let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seqs are gapless"
    );
    for (seq, text) in &acked {
        let found = stored.get(*seq as usize - 1);
        assert_eq!(
            found,
            Some(&(*seq, text.clone())),
            "acked message {seq} is stored"
        );
    }
    assert!(stored.len() >= acked.len());
    server.kill().expect("stop");
    let _ = server.wait();
}

fn run_ok(args: &[&str], data_dir: &Path, password_file: Option<&Path>) -> String {
    let mut command = binary();
    command.args(args).arg("--data-dir").arg(data_dir);
    if let Some(file) = password_file {
        command.arg("--password-file").arg(file);
    }
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_manage_accounts_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("write");

    // A new database is made and migrated, quietly: a one-shot command prints its result.
    let first = binary()
        .args(["user", "add", "root", "--data-dir"])
        .arg(&data)
        .arg("--password-file")
        .arg(&pw)
        .env_remove("CHATROOM_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stdout).contains("(admin)"));
    assert_eq!(
        String::from_utf8_lossy(&first.stderr),
        "",
        "nothing but the result"
    );
    run_ok(&["user", "add", "bob"], &data, Some(&pw));
    assert_eq!(
        run_ok(&["user", "promote", "bob"], &data, None),
        "bob is now an admin\n"
    );
    assert_eq!(
        run_ok(&["user", "promote", "bob"], &data, None),
        "bob is already an admin\n",
        "a second promote changes nothing and says so"
    );
    let list = run_ok(&["user", "list"], &data, None);
    assert!(
        list.contains("bob\tadmin") && list.contains("root\tadmin"),
        "{list}"
    );
    assert_eq!(
        run_ok(&["user", "demote", "BOB"], &data, None),
        "bob is no longer an admin\n",
        "the account's own spelling"
    );
    assert!(!run_ok(&["user", "list"], &data, None).contains("bob\tadmin"));
    // A mistyped data dir is not quietly made into a new, empty server.
    let typo = dir.path().join("dta");
    for args in [&["user", "list"][..], &["user", "promote", "bob"]] {
        let stderr = run_failing(args, &typo);
        assert!(
            stderr.contains("there is no Chat-Room database at"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!typo.exists(), "nothing was created");

    // The password can also come from standard input, for scripts.
    let mut child = binary()
        .args(["user", "passwd", "bob", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"another password\n")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    // An empty standard input (a script that forgot to pipe one) is said to be that.
    let empty = binary()
        .args(["user", "passwd", "bob", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!empty.status.success());
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(
        stderr.contains("no password") && stderr.contains("--password-file"),
        "{stderr}"
    );

    let dup = binary()
        .args(["user", "add", "BOB", "--data-dir"])
        .arg(&data)
        .arg("--password-file")
        .arg(&pw)
        .output()
        .expect("run");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("taken"));

    // While the server runs, the admin commands refuse to touch its data, and each says how
    // to do the same while it runs.
    let (mut server, addr) = start_server(&data);
    let pw_arg = pw.to_str().expect("utf-8 path");
    for (args, online) in [
        (&["user", "list"][..], "chatroom users"),
        (
            &["user", "add", "carol", "--password-file", pw_arg],
            "chatroom user add carol",
        ),
        (
            &["user", "passwd", "bob", "--password-file", pw_arg],
            "chatroom user passwd bob",
        ),
        (&["user", "logout", "bob"], "chatroom user logout bob"),
        (&["user", "suspend", "bob"], "chatroom user suspend bob"),
        (&["user", "unsuspend", "bob"], "chatroom user unsuspend bob"),
        (&["user", "promote", "bob"], "chatroom user promote bob"),
        (&["user", "demote", "bob"], "chatroom user demote bob"),
        (&["user", "delete", "bob"], "chatroom user delete bob"),
    ] {
        let refused = run_failing(args, &data);
        assert!(refused.contains("stop it first"), "{args:?}: {refused}");
        assert!(refused.contains(online), "{args:?}: {refused}");
    }

    let client = Client::connect(addr, "check").await.expect("connect");
    let session = client
        .login("bob", "another password")
        .await
        .expect("new password works");
    drop(client);
    server.kill().expect("stop");
    let _ = server.wait();

    // A lost laptop: its saved session stops working, the password does not change.
    assert!(run_ok(&["user", "logout", "bob"], &data, None).contains("logged out"));
    let (mut server, addr) = start_server(&data);
    let client = Client::connect(addr, "check").await.expect("connect");
    let refused = client.resume(&session.token).await.expect_err("logged out");
    assert_eq!(
        refused.code(),
        Some(chatroom_protocol::ErrorCode::InvalidToken)
    );
    client
        .login("bob", "another password")
        .await
        .expect("the password still works");
    drop(client);
    server.kill().expect("stop");
    let _ = server.wait();

    // A suspension: no login, whatever the password, until it is lifted.
    assert!(
        run_ok(
            &["user", "suspend", "bob", "--reason", "left the company"],
            &data,
            None
        )
        .starts_with("bob is suspended")
    );
    assert!(run_ok(&["user", "list"], &data, None).contains("bob\tsuspended"));
    let (mut server, addr) = start_server(&data);
    let client = Client::connect(addr, "check").await.expect("connect");
    let refused = client
        .login("bob", "another password")
        .await
        .expect_err("suspended");
    assert!(
        refused
            .to_string()
            .contains("suspended (by a server admin: left the company)"),
        "{refused}"
    );
    drop(client);
    server.kill().expect("stop");
    let _ = server.wait();
    // The AI bot's account is the bot's: refused as from a client (a deleted one would be made
    // again at the next start, under a new id).
    for command in ["suspend", "promote", "demote", "delete"] {
        let refused = run_failing(&["user", command, "ai"], &data);
        assert!(
            refused.contains("is the AI bot's account"),
            "{command}: {refused}"
        );
    }
    assert_eq!(
        run_ok(&["user", "unsuspend", "bob"], &data, None),
        "bob may log in again\n"
    );
    assert!(run_failing(&["user", "unsuspend", "bob"], &data).contains("not suspended"));
    assert!(!run_ok(&["user", "list"], &data, None).contains("suspended"));

    run_ok(&["user", "delete", "bob"], &data, None);
    let list = run_ok(&["user", "list"], &data, None);
    assert!(!list.contains("bob"), "{list}");
    // The AI bot's account, made when the server started, says what it is.
    assert!(list.lines().any(|l| l.ends_with("\tai\tbot")), "{list}");
    // With the bot off (or renamed), the account it left behind may go.
    run_ok(
        &["--ai-backend", "off", "user", "delete", "ai"],
        &data,
        None,
    );
    let list = run_ok(&["user", "list"], &data, None);
    assert!(!list.contains("\tai\t"), "{list}");
}

#[test]
fn bad_settings_are_reported_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "no_such_key = 1\n").expect("write");
    let output = binary()
        .arg("--config")
        .arg(&config)
        .args(["user", "list"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad config file"), "{stderr}");

    // A bad value from an environment variable names the variable, not only its flag.
    for (flag, env) in [
        (None, Some("CHATROOM_MAX_CONNECTIONS")),
        (Some("--max-connections"), None),
    ] {
        let mut command = binary();
        if let Some(flag) = flag {
            command.args([flag, "lots"]);
        }
        if let Some(env) = env {
            command.env(env, "lots");
        }
        let output = command
            .args(["check", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(2), "a command-line error");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid value 'lots'"), "{stderr}");
        assert_eq!(
            stderr.contains("from the environment variable CHATROOM_MAX_CONNECTIONS"),
            env.is_some(),
            "{stderr}"
        );
    }

    // Limits that mean nothing at 0: every message refused, one session per account.
    let limits = dir.path().join("limits.toml");
    std::fs::write(&limits, "[limits]\nmax_sessions_per_account = 0\n").expect("write");
    let files = dir.path().join("files.toml");
    std::fs::write(&files, "[files]\nchunks_per_second = 0\n").expect("write");
    for (args, said) in [
        (
            &["--max-message-chars", "0"][..],
            "max_message_chars must be at least 1",
        ),
        (
            &["--config", limits.to_str().expect("utf-8 path")],
            "max_sessions_per_account must be at least 1",
        ),
        (
            &["--config", files.to_str().expect("utf-8 path")],
            "chunks_per_second must be at least 1; there is no unlimited setting",
        ),
    ] {
        let output = binary()
            .args(args)
            .args(["check", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("run");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }

    // A log filter that does not parse would otherwise leave the log silent but for errors;
    // a bare word that is no level ("warning") would silence it entirely, errors too.
    for (flag, env) in [
        (Some("chatroom_server=loud"), None),
        (None, Some("info,=[")),
        (Some("warning"), None),
    ] {
        let mut command = binary();
        command.args(["check", "--data-dir"]).arg(dir.path());
        if let Some(filter) = flag {
            command.args(["--log", filter]);
        }
        match env {
            Some(filter) => command.env("CHATROOM_LOG", filter),
            None => command.env_remove("CHATROOM_LOG"),
        };
        let output = command.output().expect("run");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--log") && stderr.contains(flag.or(env).unwrap_or_default()),
            "{stderr}"
        );
        assert!(!stderr.contains("no Chat-Room database"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_clients_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, addr) = start_server(dir.path());
    let mut client = Client::connect(addr, "watcher").await.expect("connect");
    client
        .register("watcher", PASSWORD)
        .await
        .expect("register");
    let room = client.my_rooms().await.expect("rooms")[0].id;
    let ack = client
        .send_message(room, "before the signal")
        .await
        .expect("send");

    signal_and_expect_a_graceful_exit(server, &mut client, "-TERM").await;

    // Everything acknowledged before the signal is there after a restart.
    let (mut server, addr) = start_server(dir.path());
    let client = Client::connect(addr, "checker").await.expect("connect");
    client.login("watcher", PASSWORD).await.expect("login");
    let stored = all_history(&client, room).await;
    assert_eq!(
        stored,
        vec![
            (1, "watcher joined".to_string()),
            (ack.seq, "before the signal".to_string())
        ]
    );
    server.kill().expect("stop");
    let _ = server.wait();
}

/// SIGHUP (the terminal of a server started by hand going away) stops the server as SIGTERM
/// does, instead of killing it on the spot: clients are told, and it exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_the_server_as_gracefully_as_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, addr) = start_server(dir.path());
    let mut client = Client::connect(addr, "watcher").await.expect("connect");
    client
        .register("watcher", PASSWORD)
        .await
        .expect("register");
    signal_and_expect_a_graceful_exit(server, &mut client, "-HUP").await;
}

/// Sends `signal` (as `kill` takes it) to the server; `client` must hear that it shuts down,
/// and the server must exit 0.
async fn signal_and_expect_a_graceful_exit(
    mut server: ServerProcess,
    client: &mut Client,
    signal: &str,
) {
    let status = Command::new("kill")
        .args([signal, &server.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let told = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = client.next_event().await {
            if let chatroom_protocol::Event::ServerShutdown { .. } = event {
                return true;
            }
        }
        false
    })
    .await
    .expect("the connection ends");
    assert!(told, "{signal}: the client is told of the shutdown");
    let exit = tokio::task::spawn_blocking(move || server.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        exit.success(),
        "{signal}: a graceful shutdown exits 0: {exit:?}"
    );
}

/// Runs `args` on `data_dir` expecting a failure; returns what it said on stderr.
fn run_failing(args: &[&str], data_dir: &Path) -> String {
    let output = binary()
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("CHATROOM_LOG", "error")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
    stderr
}

/// Makes `file` unwritable even for root (`chattr +i`) while held; undone on drop, so that the
/// temporary directory can be removed.
#[cfg(target_os = "linux")]
struct Immutable<'a>(&'a Path);

#[cfg(target_os = "linux")]
impl<'a> Immutable<'a> {
    /// `None` where the flag cannot be set (no CAP_LINUX_IMMUTABLE, a file system without it).
    fn set(file: &'a Path) -> Option<Self> {
        let set = Command::new("chattr").arg("+i").arg(file).output().ok()?;
        let held = Self(file);
        let writable = std::fs::OpenOptions::new().write(true).open(file).is_ok();
        (set.status.success() && !writable).then_some(held)
    }
}

#[cfg(target_os = "linux")]
impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}

/// A database file the server's account cannot write: SQLite would open it read-only and the
/// server would say it listens, then fail every login. The start, and the offline commands
/// that write, stop with the file named instead.
#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_database_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("write");
    run_ok(&["user", "add", "alice"], &data, Some(&pw));
    let database = data.join("chatroom.sqlite3");
    let Some(_immutable) = Immutable::set(&database) else {
        eprintln!(
            "skipped: cannot make {} unwritable here",
            database.display()
        );
        return;
    };
    // Spawned, not run to the end: a server that did start would never end.
    let mut server = ServerProcess(
        binary()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("CHATROOM_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    let mut said = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("read stdout");
    assert!(!said.contains("listening"), "{said}");
    let status = server.wait().expect("wait");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().expect("stderr"), &mut stderr)
        .expect("read the log");
    assert!(!status.success(), "{stderr}");
    let refusal = format!("cannot write the database {}", database.display());
    assert!(
        stderr.contains(&refusal) && stderr.contains("fix its owner or mode"),
        "{stderr}"
    );
    let stderr = run_failing(&["user", "promote", "alice"], &data);
    assert!(stderr.contains(&refusal), "{stderr}");
}

#[test]
fn data_dir_failures_name_the_path_and_what_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = ["--listen", "127.0.0.1:0"];

    // A data dir that is a file.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").expect("write");
    for args in [&serve[..], &["user", "list"]] {
        let stderr = run_failing(args, &file);
        assert!(
            stderr.contains(&format!(
                "cannot create the data directory {}: something that is not a directory is in \
                 its place",
                file.display()
            )),
            "{args:?}: {stderr}"
        );
    }

    // A data dir whose folder for uploaded files is a file.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("files"), "").expect("write");
    let stderr = run_failing(&serve, &data);
    assert!(
        stderr.contains(&format!(
            "cannot create {}, the folder of uploaded files",
            data.join("files").display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("listener"), "{stderr}");

    // A database that cannot be opened.
    let data = dir.path().join("bad-db");
    std::fs::create_dir_all(data.join("chatroom.sqlite3")).expect("mkdir");
    for args in [&serve[..], &["user", "list"]] {
        let stderr = run_failing(args, &data);
        assert!(
            stderr.contains(&format!(
                "cannot open the database {}",
                data.join("chatroom.sqlite3").display()
            )),
            "{args:?}: {stderr}"
        );
    }

    // A read-only data dir (meaningless for root, who may write anyway).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let data = dir.path().join("read-only");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        if std::fs::write(data.join("probe"), "").is_err() {
            let stderr = run_failing(&serve, &data);
            assert!(
                stderr.contains(&format!(
                    "cannot open the lock file {}",
                    data.join("server.lock").display()
                )),
                "{stderr}"
            );
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

#[test]
fn user_add_refuses_the_ai_bots_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("write");
    let add = |settings: &[&str], name: &str| {
        binary()
            .args(settings)
            .args(["user", "add", name, "--data-dir"])
            .arg(&data)
            .arg("--password-file")
            .arg(&pw)
            .env("CHATROOM_LOG", "error")
            .output()
            .expect("run")
    };

    for name in ["ai", "AI"] {
        let refused = add(&[], name);
        assert!(!refused.status.success(), "{name} was created");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("reserved for the AI bot"), "{stderr}");
    }
    // A renamed bot's name is the reserved one; `ai` is then free.
    assert!(!add(&["--ai-name", "helper"], "Helper").status.success());
    assert!(add(&["--ai-name", "helper"], "ai").status.success());
    // With the bot off, no name is reserved.
    assert!(add(&["--ai-backend", "off"], "helper").status.success());
    let list = run_ok(&["user", "list"], &data, None);
    assert!(list.contains("\tai") && list.contains("\thelper"), "{list}");
}

/// The health endpoint's answer to `GET /health`, over a plain socket.
fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// The chat and metrics addresses from the first two lines a server started with
/// `--metrics-listen` prints.
fn listening_addresses(stdout: std::process::ChildStdout) -> (SocketAddr, SocketAddr) {
    let mut stdout = BufReader::new(stdout);
    let addr = banner_address(&mut stdout);
    let mut endpoint = String::new();
    stdout.read_line(&mut endpoint).expect("endpoint line");
    // "health and metrics on http://127.0.0.1:PORT/health and http://…/metrics"
    let metrics: SocketAddr = endpoint
        .split_whitespace()
        .nth(4)
        .and_then(|url| {
            url.strip_prefix("http://")?
                .strip_suffix("/health")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no endpoint address in {endpoint:?}"));
    (addr, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_check_and_health_on_a_running_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // The endpoint from the environment, as CHATROOM_METRICS_LISTEN.
    let mut server = ServerProcess(
        binary()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("CHATROOM_METRICS_LISTEN", "127.0.0.1:0")
            .env("CHATROOM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    let (addr, metrics) = listening_addresses(server.stdout.take().expect("stdout"));
    let health = http_get(metrics, "/health");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(health.contains(r#""status":"ok""#), "{health}");

    let client = Client::connect(addr, "backup").await.expect("connect");
    client.register("alice", PASSWORD).await.expect("register");
    let room = client.my_rooms().await.expect("rooms")[0].id;
    client
        .send_message(room, "kept in the backup")
        .await
        .expect("send");

    // While the server runs.
    let copy = dir.path().join("copy.sqlite3");
    let copy_arg = copy.to_str().expect("utf-8 path");
    let said = run_ok(&["backup", copy_arg], &data, None);
    assert!(said.contains("pages") && said.contains("files"), "{said}");
    let refused = run_failing(&["backup", copy_arg], &data);
    assert!(refused.contains("already exists"), "{refused}");
    let checked = run_ok(&["check"], &data, None);
    assert!(
        checked.contains("database: ok") && checked.contains("search index: ok"),
        "{checked}"
    );
    server.kill().expect("stop");
    let _ = server.wait();

    let texts: Vec<String> = rusqlite::Connection::open(&copy)
        .expect("open the copy")
        .prepare("SELECT text FROM messages")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(texts, ["alice joined", "kept in the backup"]);

    // A damaged database: the check says so and fails.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir_all(&damaged).expect("mkdir");
    let mut bytes = std::fs::read(&copy).expect("read the copy");
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    for page in bytes.chunks_mut(page_size).skip(2) {
        page[..64].fill(0xa5);
    }
    std::fs::write(damaged.join("chatroom.sqlite3"), &bytes).expect("write");
    let output = binary()
        .args(["check", "--data-dir"])
        .arg(&damaged)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(stderr.contains("found in"), "{stderr}");
    assert!(!stdout.contains(": ok"), "{stdout}");

    // Neither command creates a database where there is none.
    let empty = dir.path().join("empty");
    let said = run_failing(&["check"], &empty);
    assert!(said.contains("no Chat-Room database"), "{said}");
    assert!(!empty.exists(), "nothing was created");
}

/// A backup whose copy cannot be written (its disk full: here a file size limit) names the
/// copy, not the live database, and leaves nothing behind.
#[cfg(target_os = "linux")]
#[test]
fn a_backup_that_cannot_be_written_blames_the_copy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("write");
    run_ok(&["user", "add", "alice"], &data, Some(&pw));
    let copy = dir.path().join("copy.sqlite3");
    // SIGXFSZ ignored (inherited over exec), so a write past the limit fails as on a full disk.
    // The limit leaves room for the live database's 32 KiB shared-memory file, not the copy.
    let output = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; exec prlimit --fsize=40000 -- \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_chatroom-server"))
        .arg("backup")
        .arg(&copy)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("run prlimit (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("database error on {}", copy.display())),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&data.join("chatroom.sqlite3").display().to_string()),
        "the live database is not blamed: {stderr}"
    );
    assert!(!copy.exists(), "no partial copy");
}

/// Sets the file size limit of process `pid` with util-linux `prlimit`: at 0 every write to a
/// file fails (EFBIG), as the disk failing would, while sockets and pipes work on.
#[cfg(target_os = "linux")]
fn set_file_size_limit(pid: u32, limit: &str) {
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--fsize={limit}"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit --fsize={limit} failed");
}

/// A real storage fault under a running server: its file size limit is set to 0, so SQLite
/// cannot write its WAL. Health must say so (not "ok"), users must hear that storage is
/// failing, the failed commits are counted, and all of it recovers once writes work again.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_while_storage_cannot_write_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // SIGXFSZ would kill the server at the first refused write; ignored (inherited over exec),
    // the write fails with EFBIG instead.
    let mut server = ServerProcess(
        Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_chatroom-server"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data)
            .env("CHATROOM_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    // The log is collected in the background, so that it never fills its pipe.
    let mut stderr = server.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
        log
    });
    let (addr, metrics) = listening_addresses(server.stdout.take().expect("stdout"));
    let failed_commits = || {
        let scraped = http_get(metrics, "/metrics");
        scraped
            .lines()
            .find_map(|l| l.strip_prefix("chatroom_storage_failed_commits_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no failed-commits counter in {scraped}"))
    };

    let client = Client::connect(addr, "ops").await.expect("connect");
    client.register("alice", PASSWORD).await.expect("register");
    let room = client.my_rooms().await.expect("rooms")[0].id;
    client.send_message(room, "stored").await.expect("send");
    let health = http_get(metrics, "/health");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert_eq!(failed_commits(), 0);

    set_file_size_limit(server.id(), "0:unlimited");
    let refused = client
        .send_message(room, "cannot be stored")
        .await
        .expect_err("the write fails");
    let said = refused.to_string();
    assert!(said.contains("storage is failing"), "{said}");
    assert!(
        !said.contains(&data.display().to_string()),
        "no paths: {said}"
    );
    let health = http_get(metrics, "/health");
    assert!(
        health.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{health}"
    );
    assert!(
        health.contains(r#""status":"unhealthy""#) && health.contains("storage writes are failing"),
        "{health}"
    );
    assert!(failed_commits() >= 2, "the message and the health probe");

    set_file_size_limit(server.id(), "unlimited");
    let health = http_get(metrics, "/health");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    client
        .send_message(room, "stored again")
        .await
        .expect("writes work again");
    drop(client);
    server.kill().expect("stop");
    let _ = server.wait();
    let log = log.join().expect("log reader");
    let failing: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("storage writes are failing"))
        .collect();
    assert_eq!(failing.len(), 1, "said once while it lasts: {log}");
    assert!(log.contains("storage writes work again"), "{log}");
}

#[test]
fn a_failed_start_says_nothing_of_listening_and_leaves_no_new_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");

    // A database of a newer version: refused before the server says it listens.
    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).expect("mkdir");
    rusqlite::Connection::open(newer.join("chatroom.sqlite3"))
        .expect("create")
        .execute_batch("PRAGMA user_version = 9999")
        .expect("set the version");
    let output = binary()
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&newer)
        .env("CHATROOM_LOG", "error")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(stderr.contains("newer than this server"), "{stderr}");

    // A port already taken, with a data dir the start would create: nothing is left behind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").to_string();
    let fresh = dir.path().join("fresh");
    let output = binary()
        .args(["--listen", &port, "--data-dir"])
        .arg(&fresh)
        .env("CHATROOM_LOG", "error")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("cannot listen on {port}")),
        "{stderr}"
    );
    assert!(!fresh.exists(), "the data dir it created is gone");
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "nothing said on stdout"
    );

    // An existing data dir is left as it was (a server.lock stays, as after any run).
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).expect("mkdir");
    let output = binary()
        .args(["--listen", &port, "--data-dir"])
        .arg(&existing)
        .env("CHATROOM_LOG", "error")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(existing.join("chatroom.sqlite3").exists());
}

/// The first line a server started in `cwd` with `data_dir` prints, once it is running.
fn banner_in(cwd: &Path, data_dir: &str) -> String {
    let mut server = ServerProcess(
        binary()
            .current_dir(cwd)
            .args(["--listen", "127.0.0.1:0", "--data-dir", data_dir])
            .env("CHATROOM_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    let mut banner = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("banner");
    banner
}

#[test]
fn the_banner_names_the_absolute_data_dir_and_a_new_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let absolute = std::fs::canonicalize(dir.path())
        .expect("canonical")
        .join("relative-data");
    let first = banner_in(dir.path(), "relative-data");
    assert!(
        first.contains(&format!(
            "data in {} (a new, empty database was created there)",
            absolute.display()
        )),
        "{first}"
    );
    let again = banner_in(dir.path(), "relative-data");
    assert!(
        again
            .trim_end()
            .ends_with(&format!("data in {}", absolute.display())),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_does_not_stop_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nobody reads stdout from the start (as `chatroom-server | head -0`): every line the
    // server prints there fails with EPIPE.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut server = ServerProcess(
        binary()
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path())
            .env("CHATROOM_LOG", "info")
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    // The address from the log line "serving addr=127.0.0.1:PORT data_dir=…".
    let mut log = BufReader::new(server.stderr.take().expect("stderr"));
    let mut addr = None;
    for _ in 0..100 {
        let mut line = String::new();
        if log.read_line(&mut line).expect("read the log") == 0 {
            break;
        }
        if line.contains("serving") {
            addr = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("addr="))
                .and_then(|a| a.parse::<SocketAddr>().ok());
            if addr.is_some() && !line.contains("health") {
                break;
            }
        }
    }
    let addr = addr.expect("the server got as far as serving");
    // The log is read on in the background, so that it never fills its pipe.
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let client = Client::connect(addr, "piped").await.expect("connect");
    client.register("alice", PASSWORD).await.expect("register");
    let room = client.my_rooms().await.expect("rooms")[0].id;
    client.send_message(room, "still here").await.expect("send");
    drop(client);
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || server.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[cfg(unix)]
#[test]
fn data_and_backups_are_private_and_an_open_data_dir_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // `user add` and the server both create the data dir; either way it is owner-only.
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("write");
    run_ok(&["user", "add", "alice"], &data, Some(&pw));
    assert_eq!(mode(&data), 0o700, "made by user add");
    banner_in(dir.path(), "served");
    assert_eq!(
        mode(&dir.path().join("served")),
        0o700,
        "made by the server"
    );

    let copy = dir.path().join("copy.sqlite3");
    run_ok(&["backup", copy.to_str().expect("utf-8")], &data, None);
    assert_eq!(mode(&copy), 0o600, "the backup");

    // An existing data dir others may read: one warning at start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut server = ServerProcess(
        binary()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("CHATROOM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    let mut banner = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("banner");
    server.kill().expect("stop");
    let _ = server.wait();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().expect("stderr"), &mut log)
        .expect("read the log");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("readable by other accounts"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("mode=755"), "{log}");
}

/// Closed registration and no server admin: nobody could ever get an account, and the start
/// says how to make one.
#[test]
fn closed_registration_without_an_admin_is_warned_about() {
    let log_of_a_start = |data: &Path| {
        let mut server = ServerProcess(
            binary()
                .args(["--listen", "127.0.0.1:0", "--registration", "closed"])
                .arg("--data-dir")
                .arg(data)
                .env("CHATROOM_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn chatroom-server"),
        );
        banner_address(&mut BufReader::new(server.stdout.take().expect("stdout")));
        server.kill().expect("stop");
        let _ = server.wait();
        let mut log = String::new();
        std::io::Read::read_to_string(&mut server.stderr.take().expect("stderr"), &mut log)
            .expect("read the log");
        log
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let warning = "no account is a server admin, so nobody can add accounts";
    let log = log_of_a_start(&data);
    assert!(
        log.contains(warning) && log.contains("chatroom-server user add NAME --admin"),
        "{log}"
    );
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("write");
    run_ok(&["user", "add", "alice", "--admin"], &data, Some(&pw));
    let log = log_of_a_start(&data);
    assert!(!log.contains(warning), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ai_endpoint_stops_the_start_and_a_failing_one_is_named_in_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Spawned rather than run to the end: a server that starts anyway says so on stdout
    // instead of serving until the test times out.
    let mut refused = ServerProcess(
        binary()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--ai-backend", "openai", "--ai-endpoint", "not a url"])
            .env("CHATROOM_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    let mut said = String::new();
    BufReader::new(refused.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("read stdout");
    assert_eq!(said, "", "the server started");
    let exit = refused.wait().expect("wait");
    assert!(!exit.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut refused.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains(r#"--ai-endpoint "not a url""#) && stderr.contains("not a URL"),
        "{stderr}"
    );
    assert!(!dir.path().join("chatroom.sqlite3").exists(), "{stderr}");

    // A valid endpoint nobody listens on: the failure is logged with the endpoint, never the key.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let endpoint = format!("http://{closed}/v1");
    let mut server = ServerProcess(
        binary()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--ai-backend", "openai", "--ai-endpoint", &endpoint])
            .env("CHATROOM_AI_API_KEY", "sk-never-logged")
            .env("CHATROOM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    let addr = banner_address(&mut BufReader::new(server.stdout.take().expect("stdout")));
    let mut client = Client::connect(addr, "asker").await.expect("connect");
    client.register("alice", PASSWORD).await.expect("register");
    let room = client.my_rooms().await.expect("rooms")[0].id;
    client.send_message(room, "@ai hello").await.expect("ask");
    // The bot's notice of the failure comes after the failure is logged.
    let noticed = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = client.next_event().await {
            if let chatroom_protocol::Event::Message(m) = event
                && m.text.contains("no answer")
            {
                return true;
            }
        }
        false
    })
    .await
    .expect("the bot says it failed");
    assert!(noticed);
    server.kill().expect("stop");
    let _ = server.wait();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().expect("stderr"), &mut log)
        .expect("read the log");
    let failure = log
        .lines()
        .find(|l| l.contains("the AI could not answer"))
        .unwrap_or_else(|| panic!("no failure logged: {log}"));
    assert!(failure.contains(&endpoint), "{failure}");
    assert!(failure.contains("cannot reach"), "{failure}");
    // The system's reason, as `ss`/`curl` would say it, not only our summary.
    assert!(failure.contains("refused"), "{failure}");
    assert!(!log.contains("sk-never-logged"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_files_missing_from_the_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (mut server, addr) = start_server(&data);
    let client = Client::connect(addr, "uploader").await.expect("connect");
    client.register("alice", PASSWORD).await.expect("register");
    let room = client.my_rooms().await.expect("rooms")[0].id;
    let options = chatroom_protocol::transfer::TransferOptions::default();
    for (name, content) in [("a.txt", "first"), ("b.txt", "second")] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        chatroom_protocol::transfer::upload(&client.handle(), room, &path, &options)
            .await
            .expect("upload");
    }
    drop(client);
    server.kill().expect("stop");
    let _ = server.wait();

    let checked = run_ok(&["check"], &data, None);
    assert!(
        checked.contains("files: ok (2 stored contents"),
        "{checked}"
    );

    // A restore without files/: the check says which are missing and fails.
    std::fs::remove_dir_all(data.join("files")).expect("remove files/");
    let output = binary()
        .args(["check", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("files: 2 referenced files are missing from")
            && stdout.contains("(ids 1, 2)"),
        "{stdout}"
    );
    assert!(stdout.contains("database: ok"), "{stdout}");
    // The problem is in the data directory, not in the database file.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("1 problem found in {}\n", data.display())),
        "{stderr}"
    );
    assert!(!data.join("files").exists(), "the check created nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_and_failed_logins_are_logged_plainly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess(
        binary()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("CHATROOM_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom-server"),
    );
    let addr = banner_address(&mut BufReader::new(server.stdout.take().expect("stdout")));
    // The log is collected in the background, so that it never fills its pipe.
    let mut stderr = server.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
        log
    });

    let owner = Client::connect(addr, "owner").await.expect("connect");
    owner.register("alice", PASSWORD).await.expect("register");
    let member = Client::connect(addr, "member").await.expect("connect");
    member.register("bob", PASSWORD).await.expect("register");
    let room = owner
        .create_room("ops", chatroom_protocol::Visibility::Public)
        .await
        .expect("create")
        .id;
    member.join_room("ops").await.expect("join");
    let said = member.send_message(room, "hello").await.expect("send");
    owner
        .mute(room, "bob", Some(600), None)
        .await
        .expect("mute");
    owner.unmute(room, "bob").await.expect("unmute");
    owner
        .set_role(room, "bob", chatroom_protocol::RoomRole::Moderator)
        .await
        .expect("promote");
    owner.delete_message(room, said.seq).await.expect("delete");
    owner.ban(room, "bob", None).await.expect("ban");
    owner.unban(room, "bob").await.expect("unban");
    let stranger = Client::connect(addr, "guesser").await.expect("connect");
    stranger
        .login("alice", "not her password")
        .await
        .expect_err("wrong password");
    drop((owner, member, stranger));
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let _ = server.wait();
    let log = log.join().expect("log reader");

    let line = |message: &str| {
        log.lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in {log}"))
    };
    let muted = line("member muted");
    assert!(
        muted.contains("how_long=600 s") && muted.contains("by=alice"),
        "{muted}"
    );
    assert!(line("member unmuted").contains("target=bob"));
    assert!(line("role changed").contains("role=moderator"));
    let deleted = line("message deleted by a moderator");
    assert!(
        deleted.contains("sender=bob") && deleted.contains("by=alice"),
        "{deleted}"
    );
    assert!(line("user banned").contains("by_role=owner"));
    assert!(line("ban lifted").contains("target=bob"));
    assert!(line("failed login").contains("user=alice"));
    assert!(line("room created").contains("kind=public"));
    assert!(!log.contains("Some("), "no Rust debug spelling: {log}");
    assert!(
        !log.contains("Moderator") && !log.contains("Owner"),
        "{log}"
    );
}
