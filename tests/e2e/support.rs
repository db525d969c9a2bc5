//! The test harness: start, stop and restart a real server, and make logged-in clients.

use bytes::BytesMut;
use chatroom_protocol::client::{Client, ClientError, ClientHandle};
use chatroom_protocol::codec::{ClientCodec, encode_frame};
use chatroom_protocol::{
    ClientFrame, Event, Hello, PROTOCOL_VERSION, RoomId, ServerFrame, Session,
};
use chatroom_server::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery";
/// How long a test waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running server on a temporary data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    pub dir: Arc<tempfile::TempDir>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = Config::with_data_dir(dir.path());
        // Tests make many connections and accounts from 127.0.0.1 and send quickly.
        config.limits.max_connections_per_ip = 0;
        config.limits.registrations_per_ip_per_hour = 0;
        adjust(&mut config);
        Self::start_in(dir, config).await
    }

    /// Starts a server whose rate limits let a connection send as fast as it can, and whose
    /// history pages hold up to 1000 messages: for tests that need many messages quickly.
    pub async fn start_unthrottled() -> Self {
        Self::start_with(|c| {
            c.limits.messages_per_second = 100_000;
            c.limits.message_burst = 100_000;
            c.limits.max_history_page = 1000;
        })
        .await
    }

    /// Starts on an existing data directory (after [`TestServer::stop`], say).
    pub async fn start_in(dir: Arc<tempfile::TempDir>, config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, dir, config)
    }

    /// Starts on an existing data directory at `addr`, the address an earlier server had:
    /// where a reconnecting client looks. The port was released a moment ago, so binding it
    /// is tried a bounded number of times.
    pub async fn start_at(addr: SocketAddr, dir: Arc<tempfile::TempDir>, config: Config) -> Self {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(e) if tries < 100 => {
                    tries += 1;
                    tracing::info!(error = %e, "{addr} is not free yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on {addr} again: {e}"),
            }
        };
        Self::serve(listener, dir, config)
    }

    fn serve(listener: TcpListener, dir: Arc<tempfile::TempDir>, config: Config) -> Self {
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let config = config.clone();
            let shutdown = shutdown.clone();
            async move {
                chatroom_server::run(listener, config, shutdown)
                    .await
                    .expect("server runs");
            }
        });
        Self {
            addr,
            config,
            dir,
            shutdown,
            task,
        }
    }

    /// Shuts down gracefully and waits for the server to finish.
    pub async fn stop(self) -> (Arc<tempfile::TempDir>, Config) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("server stops in time")
            .expect("server task");
        (self.dir, self.config)
    }

    /// Stops and starts again on the same data directory (on a new port).
    pub async fn restart(self) -> Self {
        let (dir, config) = self.stop().await;
        Self::start_in(dir, config).await
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.addr, "e2e-test")
            .await
            .expect("connect")
    }

    /// Registers `name` and returns the logged-in client.
    pub async fn user(&self, name: &str) -> (Client, Session) {
        let client = self.connect().await;
        let session = client.register(name, PASSWORD).await.expect("register");
        (client, session)
    }

    /// Logs `name` in on a new connection.
    pub async fn login(&self, name: &str) -> (Client, Session) {
        let client = self.connect().await;
        let session = client.login(name, PASSWORD).await.expect("login");
        (client, session)
    }
}

/// Waits for the first event matching `pick`, skipping others.
pub async fn expect_event<T>(client: &mut Client, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = client.next_event().await.expect("connection open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("event arrives in time")
}

/// Waits for a message event with `text` and returns it.
pub async fn expect_message(client: &mut Client, text: &str) -> chatroom_protocol::Message {
    expect_event(client, |e| match e {
        Event::Message(m) if m.text == text => Some(m),
        _ => None,
    })
    .await
}

/// The id of `public`, which every account is in.
pub async fn public_room(client: &ClientHandle) -> RoomId {
    client
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.name == "public")
        .expect("public")
        .id
}

/// The error code of a failed request.
pub fn code_of<T: std::fmt::Debug>(result: Result<T, ClientError>) -> chatroom_protocol::ErrorCode {
    match result {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("no server error code in {e:?}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// A raw TCP connection for sending bytes the client library never would.
pub struct RawConn {
    pub stream: TcpStream,
    codec: ClientCodec,
    buf: BytesMut,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self {
            stream,
            codec: ClientCodec::new(16 * 1024 * 1024),
            buf: BytesMut::new(),
        }
    }

    /// Connects and completes the handshake.
    pub async fn handshaken(addr: SocketAddr) -> Self {
        let mut raw = Self::connect(addr).await;
        raw.send(&ClientFrame::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: "raw".into(),
        }))
        .await;
        match raw.recv().await {
            Some(ServerFrame::Welcome(_)) => raw,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        let bytes = encode_frame(frame, u32::MAX).expect("encode");
        self.stream.write_all(&bytes).await.expect("write");
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next frame, or `None` once the server closed the connection.
    pub async fn recv(&mut self) -> Option<ServerFrame> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(frame) = self
                    .codec
                    .decode(&mut self.buf)
                    .expect("server frames decode")
                {
                    return Some(frame);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("server answers in time")
    }

    /// Reads until the server closes, returning the last error frame seen, if any.
    pub async fn until_closed(&mut self) -> Option<chatroom_protocol::ErrorBody> {
        let mut last_error = None;
        while let Some(frame) = self.recv().await {
            if let ServerFrame::Error(e) = frame {
                last_error = Some(e);
            }
        }
        last_error
    }
}

/// Searches until exactly `want` hits come back: a message is indexed a moment after its ack.
pub async fn search_until(
    client: &ClientHandle,
    query: &str,
    room: Option<RoomId>,
    want: usize,
) -> Vec<chatroom_protocol::Message> {
    let started = std::time::Instant::now();
    loop {
        let page = client.search(query, room, None, 50).await.expect("search");
        if page.messages.len() == want || started.elapsed() > PATIENCE {
            return page.messages;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The texts of `messages`, in order.
pub fn texts(messages: &[chatroom_protocol::Message]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}
