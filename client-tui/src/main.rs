//! `chatroom`: see `chatroom_tui::cli` for the command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    match chatroom_tui::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatroom: {}", chatroom_tui::cli::error_line(&e));
            ExitCode::from(chatroom_tui::cli::exit_status(&e))
        }
    }
}
