//! `chatroom-server`: see `chatroom_server::cli` for the command line.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match chatroom_server::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not `eprintln!`: it panics when stderr is closed, turning exit code 1 into 101.
            let _ = writeln!(std::io::stderr(), "chatroom-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
