//! Each scenario, tiny, against a real in-process server: proves the tool works (every delivery
//! made, every acknowledged message stored). No timing thresholds: benchmarks are not tests.

use chatroom_bench::Cli;
use chatroom_bench::cli::{
    ConnectArgs, FanoutArgs, FilesArgs, HistoryArgs, IdleArgs, IngestArgs, MaxArgs, ResumeArgs,
    RoomsArgs, Scenario, SearchArgs,
};
use chatroom_bench::report::Report;
use chatroom_server::Config;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

// In a folder of its own so that cargo does not build it as a test binary.
#[path = "smoke/irc_relay.rs"]
mod irc_relay;

struct Server {
    addr: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server with the limits raised as BENCHMARKS.md says to.
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::with_data_dir(dir.path());
        config.limits.messages_per_second = 1_000_000;
        config.limits.message_burst = 1_000_000;
        config.limits.max_connections_per_ip = 0;
        config.limits.registrations_per_ip_per_hour = 0;
        config.limits.max_connections = 0;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                chatroom_server::run(listener, config, shutdown)
                    .await
                    .unwrap();
            }
        });
        Server {
            addr,
            shutdown,
            task,
            _dir: dir,
        }
    }

    async fn run(&self, scenario: Scenario) -> Report {
        let cli = Cli {
            server: self.addr.clone(),
            // The server runs in this process.
            server_pid: Some(std::process::id()),
            scenario,
        };
        let report = chatroom_bench::run(&cli).await.unwrap();
        eprintln!("{report}");
        let line = report.json_line();
        assert!(line.starts_with("{\"scenario\":"), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["scenario"], report.scenario);
        assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
        report
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn assert_traffic(report: &Report) {
    let t = report.traffic.expect("traffic");
    assert!(t.acked > 0, "{t:?}");
    assert_eq!(t.failed, 0, "{t:?}");
    assert_eq!(t.acked, t.sent, "{t:?}");
    assert_eq!(t.received_deliveries, t.expected_deliveries, "{t:?}");
    assert_eq!(t.delivery_ratio, 1.0, "{t:?}");
    assert_eq!(t.disconnected, 0, "{t:?}");
    let stored = report.stored.expect("stored check");
    assert!(stored.ok, "{stored:?}");
    assert_eq!(stored.stored, t.acked);
    let latency = report.delivery_latency.expect("latency");
    assert_eq!(latency.count, t.received_deliveries);
    assert!(report.server_usage.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Fanout(FanoutArgs {
            clients: 4,
            senders: 2,
            rate: 20,
            secs: 1,
        }))
        .await;
    assert_traffic(&report);
    let t = report.traffic.unwrap();
    assert_eq!(t.expected_deliveries, t.acked * 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Rooms(RoomsArgs {
            clients: 6,
            room_size: 3,
            senders: None,
            rate: 30,
            secs: 1,
        }))
        .await;
    assert_traffic(&report);
    let t = report.traffic.unwrap();
    assert_eq!((t.rooms, t.senders), (2, 6));
    assert_eq!(t.expected_deliveries, t.acked * 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Max(MaxArgs {
            clients: 3,
            senders: 2,
            secs: 1,
            window: 4,
        }))
        .await;
    assert_traffic(&report);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Ingest(IngestArgs {
            senders: 2,
            secs: 1,
            window: 4,
        }))
        .await;
    assert_traffic(&report);
    let t = report.traffic.unwrap();
    assert_eq!(t.expected_deliveries, t.acked);
    assert_eq!(report.stored.unwrap().rooms, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Connect(ConnectArgs {
            clients: 3,
            concurrency: 2,
        }))
        .await;
    for name in ["register", "login"] {
        let op = report.op(name).unwrap();
        assert_eq!((op.count, op.failed), (3, 0), "{op:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Resume(ResumeArgs {
            clients: 5,
            accounts: Some(2),
            concurrency: 3,
        }))
        .await;
    let op = report.op("resume").unwrap();
    assert_eq!((op.count, op.failed), (5, 0), "{op:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Idle(IdleArgs {
            clients: 5,
            accounts: Some(2),
            concurrency: 5,
            hold_secs: 0,
        }))
        .await;
    let idle = report.idle.unwrap();
    assert_eq!(idle.connections, 5);
    assert!(idle.rss_before_kib > 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::History(HistoryArgs {
            clients: 2,
            messages: 250,
            page: 100,
            secs: 1,
        }))
        .await;
    let stored = report.stored.unwrap();
    assert!(stored.ok, "{stored:?}");
    assert_eq!(stored.stored, 250);
    let pages = report.op("page").unwrap();
    assert!(pages.count > 0);
    assert_eq!(pages.failed, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Search(SearchArgs {
            clients: 2,
            messages: 300,
            page: 20,
            secs: 1,
            seed: 5,
        }))
        .await;
    let stored = report.stored.unwrap();
    assert!(stored.ok, "{stored:?}");
    assert_eq!(stored.stored, 300);
    let check = report.search.clone().unwrap();
    assert!(check.first_found && check.last_found, "{check:?}");
    assert!(report.storage_ok());
    let searches = report.op("search").unwrap();
    assert!(searches.count > 0);
    assert_eq!(searches.failed, 0, "{:?}", report.errors);
    let mean = |kind: &str| {
        check
            .mean_results
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, m)| *m)
            .unwrap()
    };
    // What the kinds promise: a common word fills the page, a phrase of the fill is found,
    // a word nobody wrote is not.
    assert_eq!(mean("search_common"), 20.0);
    assert!(mean("search_phrase") >= 1.0);
    assert_eq!(mean("search_absent"), 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_tiny() {
    let server = Server::start().await;
    let report = server
        .run(Scenario::Files(FilesArgs { clients: 2, mib: 1 }))
        .await;
    let files = report.files.unwrap();
    assert_eq!(files.stored_files, 2);
    assert_eq!(files.file_bytes, 1024 * 1024);
    assert!(files.loopback_mib_per_sec > 0.0);
    assert!(files.upload_mib_per_sec > 0.0);
    assert!(files.download_mib_per_sec > 0.0);
    server.stop().await;
}

#[tokio::test]
async fn idle_without_pid_is_refused() {
    let cli = Cli {
        server: "127.0.0.1:9".into(),
        server_pid: None,
        scenario: Scenario::Idle(IdleArgs {
            clients: 1,
            accounts: None,
            concurrency: 1,
            hold_secs: 0,
        }),
    };
    let err = chatroom_bench::run(&cli).await.unwrap_err();
    assert!(err.to_string().contains("--server-pid"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_fanout_tiny() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(irc_relay::serve(listener, stop.clone()));
    let cli = Cli {
        server: addr,
        server_pid: Some(std::process::id()),
        scenario: Scenario::IrcFanout(FanoutArgs {
            clients: 5,
            senders: 2,
            rate: 40,
            secs: 1,
        }),
    };
    let report = chatroom_bench::run(&cli).await.unwrap();
    eprintln!("{report}");
    assert_eq!(report.scenario, "irc-fanout");
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    let t = report.traffic.expect("traffic");
    assert!(t.sent >= 20, "{t:?}");
    // IRC does not echo a line to its sender.
    assert_eq!(t.expected_deliveries, t.sent * 4, "{t:?}");
    assert_eq!(t.received_deliveries, t.expected_deliveries, "{t:?}");
    assert_eq!(t.delivery_ratio, 1.0, "{t:?}");
    assert_eq!(t.disconnected, 0, "{t:?}");
    assert_eq!(
        report.delivery_latency.unwrap().count,
        t.received_deliveries
    );
    // IRC acknowledges and stores nothing: no acks, no stored check.
    assert_eq!(t.acked, 0);
    assert!(report.stored.is_none() && report.ack_latency.is_none());
    stop.cancel();
    relay.await.unwrap();
}
