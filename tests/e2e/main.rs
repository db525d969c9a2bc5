//! End-to-end tests: a real server on 127.0.0.1:0 with a temporary data directory, real clients
//! over TCP. One module per area.

mod support;

mod accounts;
mod ai;
mod chaos;
mod durability;
mod edit;
mod examples;
mod files;
mod health;
mod hostile;
mod messages;
mod moderation;
mod presence;
mod reconnecting;
mod rooms;
mod search;
