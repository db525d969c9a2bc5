//! What the example bots share: starting a bot again when its connection ends. Each example
//! includes this file with `#[path]`; copy it beside your own bot.

use chatroom_protocol::client::{Client, ClientError};
use std::time::{Duration, Instant};

/// Why the connection ended, as an error.
pub fn disconnected(client: &Client) -> anyhow::Error {
    match client.close_error() {
        Some(e) => anyhow::Error::new(e).context("disconnected"),
        None => anyhow::anyhow!("disconnected"),
    }
}

/// A refused login or registration is refused again on every attempt: give up, and say why.
pub fn refused_for_good(e: &anyhow::Error) -> bool {
    use chatroom_protocol::ErrorCode::*;
    let code = e
        .chain()
        .find_map(|e| e.downcast_ref::<ClientError>()?.code());
    matches!(
        code,
        Some(InvalidCredentials | RegistrationClosed | InvalidUsername | WeakPassword)
    )
}

/// Runs `bot` again whenever its connection ends, waiting 1 s, then twice as long each time up
/// to a minute (back to 1 s after a connection that lasted a minute), until a refusal that
/// would only repeat.
pub async fn run_forever<F, Fut>(name: &str, mut bot: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    const FIRST: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(60);
    let mut delay = FIRST;
    loop {
        let started = Instant::now();
        let ended = match bot().await {
            Ok(()) => return Ok(()),
            Err(e) if refused_for_good(&e) => return Err(e),
            Err(e) => e,
        };
        if started.elapsed() >= LONGEST {
            delay = FIRST;
        }
        eprintln!("{name}: {ended:#}; trying again in {} s", delay.as_secs());
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(LONGEST);
    }
}
