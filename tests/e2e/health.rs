//! The health and metrics endpoint, over raw HTTP/1.1 on a real socket.

use chatroom_protocol::client::Client;
use chatroom_server::Config;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{PASSWORD, PATIENCE, public_room};

/// A server with the endpoint on, both on 127.0.0.1:0.
struct Server {
    chat: SocketAddr,
    metrics: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::with_data_dir(dir.path());
        config.limits.max_connections_per_ip = 0;
        config.limits.registrations_per_ip_per_hour = 0;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let chat = listener.local_addr().expect("addr");
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics = metrics_listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                chatroom_server::run_with_metrics(
                    listener,
                    Some(metrics_listener),
                    config,
                    shutdown,
                )
                .await
                .expect("server runs");
            }
        });
        Self {
            chat,
            metrics,
            shutdown,
            task,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("server stops in time")
            .expect("server task");
    }

    async fn get(&self, path: &str) -> Http {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: e2e\r\n\r\n");
        http(self.metrics, request.as_bytes()).await
    }

    /// `/metrics`, parsed: series (with labels) to values.
    async fn scrape(&self) -> HashMap<String, f64> {
        let response = self.get("/metrics").await;
        assert_eq!(response.status, 200, "{}", response.body);
        parse_exposition(&response.body)
    }

    /// Scrapes until `ready` holds (counters are bumped just after the fact they count, so a
    /// client can see the fact first).
    async fn scrape_until(
        &self,
        what: &str,
        ready: impl Fn(&HashMap<String, f64>) -> bool,
    ) -> HashMap<String, f64> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let metrics = self.scrape().await;
            if ready(&metrics) {
                return metrics;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} never held: {metrics:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A response as read off the socket.
#[derive(Debug)]
struct Http {
    status: u16,
    /// Header names in lowercase.
    headers: HashMap<String, String>,
    body: String,
}

impl Http {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }
}

/// Sends `request` raw and reads the response to the end (the server closes).
async fn http(addr: SocketAddr, request: &[u8]) -> Http {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut bytes = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes))
        .await
        .expect("the server answers and closes in time")
        .expect("read");
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> Http {
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8 response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("header");
            (name.to_ascii_lowercase(), value.to_string())
        })
        .collect();
    let response = Http {
        status,
        headers,
        body: body.to_string(),
    };
    assert_eq!(response.header("connection"), "close", "{response:?}");
    response
}

/// The exposition format: `# HELP` and `# TYPE` before each family's samples, `name value` or
/// `name{labels} value` samples.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP chatroom_") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample {line:?}"));
        let family = series.split('{').next().unwrap_or_default();
        assert!(family.starts_with("chatroom_"), "{line}");
        assert!(
            typed.iter().any(|t| t == family),
            "sample before its TYPE: {line}"
        );
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value {line:?}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

fn value(metrics: &HashMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {metrics:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_ok_with_the_version_and_stops_with_the_server() {
    let server = Server::start().await;
    let health = server.get("/health").await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.header("content-type"), "application/json");
    assert_eq!(
        health.header("content-length"),
        health.body.len().to_string()
    );
    let body = health.body.trim_end();
    let version = env!("CARGO_PKG_VERSION");
    let expected_start = format!(r#"{{"status":"ok","version":"{version}","uptime_secs":"#);
    assert!(body.starts_with(&expected_start), "{body}");
    let uptime = body[expected_start.len()..]
        .strip_suffix('}')
        .expect("the object ends");
    uptime.parse::<u64>().expect("uptime is a number");

    // HEAD: the same status and headers, no body.
    let head = http(
        server.metrics,
        b"HEAD /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        health.header("content-length")
    );
    assert!(head.body.is_empty(), "{head:?}");

    let metrics = server.metrics;
    server.stop().await;
    assert!(
        TcpStream::connect(metrics).await.is_err(),
        "the endpoint stops with the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_logins_messages_requests_and_frames() {
    let server = Server::start().await;
    let response = server.get("/metrics").await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .starts_with("text/plain; version=0.0.4"),
        "{response:?}"
    );
    for family in [
        "chatroom_uptime_seconds",
        "chatroom_connections_open",
        "chatroom_connections_accepted_total",
        "chatroom_sessions_logged_in",
        "chatroom_users_online",
        "chatroom_accounts",
        "chatroom_rooms",
        "chatroom_messages_stored_total",
        "chatroom_requests_total",
        "chatroom_frames_sent_total",
        "chatroom_ai_questions_total",
        "chatroom_storage_queue_depth",
    ] {
        assert!(
            response.body.contains(&format!("# HELP {family} ")),
            "no HELP for {family}"
        );
    }
    let before = parse_exposition(&response.body);
    assert_eq!(value(&before, "chatroom_sessions_logged_in"), 0.0);
    assert_eq!(value(&before, "chatroom_connections_open"), 0.0);
    assert_eq!(value(&before, "chatroom_messages_stored_total"), 0.0);
    assert_eq!(
        value(&before, "chatroom_storage_queue_depth"),
        0.0,
        "nothing waits"
    );

    let client = Client::connect(server.chat, "metrics-test")
        .await
        .expect("connect");
    client.register("alice", PASSWORD).await.expect("register");
    let room = public_room(&client.handle()).await;
    for i in 0..3 {
        client
            .send_message(room, &format!("counted {i}"))
            .await
            .expect("send");
    }
    let count = |m: &HashMap<String, f64>, series: &str| value(m, series) - value(&before, series);
    let after = server
        .scrape_until("the frames of the answers are counted", |m| {
            // Register, my rooms, three messages: five answers, after the Welcome.
            count(m, "chatroom_frames_sent_total") >= 6.0
        })
        .await;
    assert_eq!(count(&after, "chatroom_connections_accepted_total"), 1.0);
    assert_eq!(value(&after, "chatroom_connections_open"), 1.0);
    assert_eq!(value(&after, "chatroom_sessions_logged_in"), 1.0);
    assert_eq!(count(&after, "chatroom_accounts"), 1.0);
    assert!(value(&after, "chatroom_users_online") >= 1.0, "{after:?}");
    assert!(
        count(&after, "chatroom_messages_stored_total") >= 3.0,
        "{after:?}"
    );
    assert!(count(&after, "chatroom_requests_total") >= 5.0, "{after:?}");
    assert!(
        count(&after, "chatroom_sent_bytes_total") > 0.0,
        "{after:?}"
    );
    assert!(
        value(&after, "chatroom_rooms{kind=\"public\"}") >= 1.0,
        "{after:?}"
    );
    assert!(value(&after, "chatroom_uptime_seconds") >= value(&before, "chatroom_uptime_seconds"));

    // A message to the AI bot is a question for it.
    client
        .send_message(room, "@ai help")
        .await
        .expect("ask the bot");
    server
        .scrape_until("the question is counted", |m| {
            count(m, "chatroom_ai_questions_total") == 1.0
        })
        .await;

    // HEAD: headers only.
    let head = http(
        server.metrics,
        b"HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "{head:?}");

    drop(client);
    let closed = server
        .scrape_until("the connection is closed", |m| {
            value(m, "chatroom_connections_open") == 0.0
        })
        .await;
    assert_eq!(value(&closed, "chatroom_sessions_logged_in"), 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_are_404_and_other_methods_405() {
    let server = Server::start().await;
    for path in ["/", "/nope", "/health/extra", "/metricsx"] {
        let response = server.get(path).await;
        assert_eq!(response.status, 404, "{path}: {response:?}");
    }
    let post = http(
        server.metrics,
        b"POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nx=1&y",
    )
    .await;
    assert_eq!(post.status, 405, "{post:?}");
    assert_eq!(post.header("allow"), "GET, HEAD");
    let delete = http(
        server.metrics,
        b"DELETE /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(delete.status, 405, "{delete:?}");
    // A query string is not part of the path.
    assert_eq!(server.get("/health?verbose=1").await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_garbled_request_is_refused_and_serving_goes_on() {
    let server = Server::start().await;
    // 9 KiB of headers: refused at 8 KiB, without waiting for the end.
    let mut huge = b"GET /health HTTP/1.1\r\n".to_vec();
    while huge.len() < 9 * 1024 {
        huge.extend_from_slice(
            b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    let refused = http(server.metrics, &huge).await;
    assert_eq!(refused.status, 431, "{refused:?}");
    // The same with the end of the head: still too large.
    huge.extend_from_slice(b"\r\n");
    assert_eq!(http(server.metrics, &huge).await.status, 431);

    for garbage in [
        &b"\x00\xff\xfe\x16\x03\x01 garbage\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /health HTTP/1.1 and more\r\n\r\n",
        b"\r\n\r\n",
    ] {
        let response = http(server.metrics, garbage).await;
        assert_eq!(
            response.status,
            400,
            "{:?}: {response:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    // A peer that closes half-way gets nothing and costs nothing.
    let mut half = TcpStream::connect(server.metrics).await.expect("connect");
    half.write_all(b"GET /hea").await.expect("write");
    drop(half);

    assert_eq!(server.get("/health").await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_sixteen_are_closed_and_silent_ones_time_out() {
    let server = Server::start().await;
    // Sixteen connections that never send a request hold every slot.
    let mut silent = Vec::new();
    for _ in 0..16 {
        silent.push(TcpStream::connect(server.metrics).await.expect("connect"));
    }
    let mut extra = TcpStream::connect(server.metrics).await.expect("connect");
    extra.write_all(b"GET /health HTTP/1.1\r\n\r\n").await.ok();
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(PATIENCE, extra.read_to_end(&mut bytes))
        .await
        .expect("the extra connection is closed in time");
    assert!(
        bytes.is_empty(),
        "closed without an answer ({read:?}): {:?}",
        String::from_utf8_lossy(&bytes)
    );

    // Each silent one is told it took too long, and closed.
    for mut stream in silent {
        let mut bytes = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes))
            .await
            .expect("closed in time")
            .expect("read");
        assert_eq!(parse_response(&bytes).status, 408);
    }
    // Then there is room again, once the slots are given back (a connection closed for want of
    // one gets no answer at all).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut stream = TcpStream::connect(server.metrics).await.expect("connect");
        stream.write_all(b"GET /health HTTP/1.1\r\n\r\n").await.ok();
        let mut bytes = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes)).await;
        if !bytes.is_empty() {
            assert_eq!(parse_response(&bytes).status, 200);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slots never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_cannot_be_bound_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::with_data_dir(dir.path());
    config.metrics_listen = Some(addr);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let error = tokio::time::timeout(
        PATIENCE,
        chatroom_server::run(listener, config, CancellationToken::new()),
    )
    .await
    .expect("run gives up at once")
    .expect_err("the metrics address is taken");
    let said = error.to_string();
    assert!(
        said.contains(&format!("cannot listen for health and metrics on {addr}")),
        "{said}"
    );
}
