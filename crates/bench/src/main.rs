//! `chatroom-bench`: see the library docs and `chatroom-bench --help`.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = chatroom_bench::Cli::parse();
    match chatroom_bench::run(&cli).await {
        Ok(report) => {
            eprint!("{report}");
            println!("{}", report.json_line());
            if report.storage_ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "chatroom-bench: the server did not store (or, in `search`, find) every acknowledged message"
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("chatroom-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
