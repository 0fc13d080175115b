//! Review findings (see the review report). Each test is ignored while its finding stands; run
//! them with `cargo test --all-features --test review_findings -- --ignored`.
//!
//! Bounds are generous (a loaded 2-core machine): they tell a bounded wait from an unbounded one.

mod common;

use std::time::Duration;
use syncws::{ClientBuilder, Message, Reconnecting, Server, ServerBuilder};

/// A server built with `settings` either refuses the settings at `bind` or echoes a message.
fn refuses_or_serves(settings: ServerBuilder) -> Result<(), String> {
    let server = match settings.bind("127.0.0.1:0") {
        Ok(server) => server,
        Err(_) => return Ok(()), // refused up front: fine
    };
    let server = server.spawn(common::echo_session).map_err(|e| e.to_string())?;
    let url = format!("ws://{}/", server.local_addr());
    let (mut ws, _) = ClientBuilder::new(url)
        .read_timeout(Some(Duration::from_secs(10)))
        .connect()
        .map_err(|e| format!("connect: {e}"))?;
    ws.send(Message::text("hello")).map_err(|e| format!("send: {e}"))?;
    let answer = ws.read().map_err(|e| format!("read: {e}"))?;
    if answer != Message::text("hello") {
        return Err(format!("answer {answer:?}"));
    }
    Ok(())
}

/// Finding 3: `ServerBuilder::bind` checks the message/idle timeouts and heartbeat durations for
/// zero only. A large one (e.g. `Duration::MAX` for "no practical limit") overflows
/// `Instant + Duration` in `proto::watch::Watch::next_deadline` / `proto::heartbeat::poll_timeout`
/// when the connection is registered with the timer (`HeartbeatTimer::add_with`), so every
/// connection's thread panics right after the 101 and nothing is served. The same durations in
/// `ReconnectBuilder::heartbeat` panic the caller of `connect`.
#[test]
#[ignore = "review finding 3: huge message/idle/heartbeat durations panic the connection thread"]
fn huge_timer_durations_are_refused_or_work() {
    let cases: [(&str, ServerBuilder); 3] = [
        (
            "message_timeout",
            Server::builder().message_timeout(Some(Duration::MAX)),
        ),
        (
            "idle_timeout",
            Server::builder().idle_timeout(Some(Duration::MAX)),
        ),
        (
            "heartbeat",
            Server::builder().heartbeat(Duration::MAX, Duration::MAX),
        ),
    ];
    let mut failures = Vec::new();
    for (name, settings) in cases {
        if let Err(e) = refuses_or_serves(settings) {
            failures.push(format!("{name}: {e}"));
        }
    }
    // The client side: `ReconnectBuilder::heartbeat` is not checked either.
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let connecting = std::thread::spawn(move || {
        Reconnecting::builder(ClientBuilder::new(url))
            .heartbeat(Duration::MAX, Duration::MAX)
            .connect()
            .map(drop)
    });
    match connecting.join() {
        Ok(_) => {}
        Err(_) => failures.push("Reconnecting heartbeat: connect panicked".into()),
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
