//! `chatroom-server`: see `chatroom_server::cli` for the command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    match chatroom_server::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatroom-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
