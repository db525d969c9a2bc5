//! A minimal IRC server for the `irc-fanout` smoke test: registration (with a `PING` the client
//! must answer before it is welcomed), `JOIN` with the end of `NAMES`, and `PRIVMSG` relayed to
//! the channel's other members, as IRC servers do. Enough of RFC 1459/2812 to prove the tool's
//! IRC client works without installing InspIRCd in CI.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Members of each channel: their outgoing line queues.
type Channels = Arc<Mutex<HashMap<String, Vec<(String, mpsc::Sender<String>)>>>>;

/// Lines a member may have queued before the relay waits for it.
const QUEUE: usize = 4096;

/// Serves IRC on `listener` until `stop`.
pub async fn serve(listener: TcpListener, stop: CancellationToken) {
    let channels: Channels = Arc::default();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            return;
        };
        tokio::spawn(client(stream, Arc::clone(&channels), stop.clone()));
    }
}

async fn client(stream: TcpStream, channels: Channels, stop: CancellationToken) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(read).lines();
    let mut nick = String::new();
    let mut welcomed = false;
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => break,
            l = lines.next_line() => l,
        };
        let Ok(Some(line)) = line else {
            break;
        };
        let (head, trailing) = match line.split_once(" :") {
            Some((h, t)) => (h, t),
            None => (line.as_str(), ""),
        };
        let mut words = head.split(' ');
        let command = words.next().unwrap_or("");
        let first = words.next().unwrap_or(trailing).to_string();
        let replies = match command {
            "NICK" => {
                nick = first;
                vec![]
            }
            "USER" => vec!["PING :relay-check\r\n".to_string()],
            "PONG" if trailing == "relay-check" && !welcomed => {
                welcomed = true;
                vec![format!(":relay 001 {nick} :Welcome\r\n")]
            }
            "JOIN" if welcomed => {
                if let Ok(mut channels) = channels.lock() {
                    channels
                        .entry(first.clone())
                        .or_default()
                        .push((nick.clone(), tx.clone()));
                }
                vec![
                    format!(":{nick}!{nick}@relay JOIN :{first}\r\n"),
                    format!(":relay 366 {nick} {first} :End of /NAMES list.\r\n"),
                ]
            }
            "PRIVMSG" if welcomed => {
                let members: Vec<mpsc::Sender<String>> = match channels.lock() {
                    Ok(channels) => channels
                        .get(&first)
                        .map(|m| {
                            m.iter()
                                .filter(|(n, _)| *n != nick)
                                .map(|(_, tx)| tx.clone())
                                .collect()
                        })
                        .unwrap_or_default(),
                    Err(_) => vec![],
                };
                let relayed = format!(":{nick}!{nick}@relay PRIVMSG {first} :{trailing}\r\n");
                for member in members {
                    let _ = member.send(relayed.clone()).await;
                }
                vec![]
            }
            _ => vec![],
        };
        for reply in replies {
            if tx.send(reply).await.is_err() {
                break;
            }
        }
    }
    if let Ok(mut channels) = channels.lock() {
        for members in channels.values_mut() {
            members.retain(|(n, _)| *n != nick);
        }
    }
    drop(tx);
    let _ = writer.await;
}
