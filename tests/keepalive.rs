//! Issue 19: the closing handshake bounded by `Config::close_timeout`, client keepalive pings
//! (unsplit and split), `latency`, `ping` waiting for its pong, and `split` of any
//! `SplitStream` (a `UnixStream` pair).

use std::io;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, CloseCode, Config, Message, Role, WebSocket};

/// Generous: a loaded CI machine may be slow, but a bound that never holds is still caught.
const MARGIN: Duration = Duration::from_millis(1500);
/// Every peer thread gives up after this.
const PEER_LIFETIME: Duration = Duration::from_secs(15);

#[derive(Clone, Copy)]
enum Peer {
    /// Reads (so pings are answered) and sends nothing of its own.
    Answering,
    /// Sends two text messages at once, then reads (answers pings).
    TwoMessagesThenAnswering,
    /// Completes the handshake, then never reads nor writes until the test ends.
    Mute,
    /// Starts the closing handshake at once, then reads until the end.
    Closing,
}

/// A server on a loopback port with `behaviour`; dropping the sender ends a mute peer.
fn server(behaviour: Peer) -> (String, mpsc::Sender<()>, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(PEER_LIFETIME)).unwrap();
        let mut ws = syncws::accept(tcp).unwrap();
        match behaviour {
            Peer::Mute => {
                let _ = stopped.recv_timeout(PEER_LIFETIME);
            }
            Peer::Answering | Peer::TwoMessagesThenAnswering | Peer::Closing => {
                if matches!(behaviour, Peer::Closing) {
                    ws.send(Message::Close(Some(syncws::CloseFrame::new(
                        CloseCode::GoingAway,
                        "going",
                    ))))
                    .unwrap();
                }
                if matches!(behaviour, Peer::TwoMessagesThenAnswering) {
                    ws.send(Message::text("one")).unwrap();
                    ws.send(Message::text("two")).unwrap();
                }
                let until = Instant::now() + PEER_LIFETIME;
                while Instant::now() < until {
                    if ws.read().is_err() {
                        break;
                    }
                }
            }
        }
    });
    (url, stop, handle)
}

fn client(url: &str) -> ClientBuilder {
    ClientBuilder::new(url).no_proxy()
}

fn short_close() -> Config {
    let mut config = Config::default();
    config.close_timeout = Duration::from_millis(300);
    config
}

#[test]
fn websocket_close_to_a_peer_that_never_answers_ends_within_close_timeout() {
    let (url, stop, peer) = server(Peer::Mute);
    let (mut ws, _) = client(&url)
        .without_heartbeat()
        .config(short_close())
        .connect()
        .unwrap();
    let started = Instant::now();
    let error = ws.close(CloseCode::Normal, "bye").unwrap_err();
    let took = started.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(300) + MARGIN, "{took:?}");
    assert!(matches!(ws.read(), Err(syncws::Error::AlreadyClosed)));
    drop(stop);
    peer.join().unwrap();
}

#[test]
fn reader_close_to_a_peer_that_never_answers_ends_within_close_timeout() {
    let (url, stop, peer) = server(Peer::Mute);
    let (ws, _) = client(&url)
        .without_heartbeat()
        .config(short_close())
        .connect()
        .unwrap();
    let (mut reader, _writer) = ws.split().unwrap();
    let started = Instant::now();
    let error = reader.close(CloseCode::Normal, "bye").unwrap_err();
    let took = started.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(took < Duration::from_millis(300) + MARGIN, "{took:?}");
    drop(stop);
    peer.join().unwrap();
}

#[test]
fn close_to_an_answering_peer_returns_its_close_frame() {
    let (url, _stop, peer) = server(Peer::Answering);
    let (mut ws, _) = client(&url).connect().unwrap();
    let frame = ws.close(CloseCode::Normal, "bye").unwrap().unwrap();
    assert_eq!(frame.code, CloseCode::Normal);
    peer.join().unwrap();
}

#[test]
fn a_close_timeout_over_a_year_is_refused() {
    let mut config = Config::default();
    config.close_timeout = Config::MAX_TIMEOUT + Duration::from_secs(1);
    assert!(config.validate().is_err());
}

#[test]
fn keepalive_keeps_a_silent_peer_that_answers_pings_and_measures_latency() {
    let (url, _stop, peer) = server(Peer::Answering);
    let caller_timeout = Duration::from_millis(1200);
    let (mut ws, _) = client(&url)
        .heartbeat(Duration::from_millis(100), Duration::from_millis(300))
        .read_timeout(Some(caller_timeout))
        .connect()
        .unwrap();
    assert_eq!(ws.latency(), None);
    let started = Instant::now();
    // The peer sends nothing: the read ends by the caller's own timeout, not the keepalive's,
    // and the pongs it saw meanwhile are not returned.
    let error = ws.read().unwrap_err();
    let took = started.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(
        took >= caller_timeout - Duration::from_millis(50),
        "{took:?}"
    );
    assert!(ws.latency().is_some(), "no ping answered in {took:?}");
    ws.send(Message::text("still open")).unwrap();
    ws.close(CloseCode::Normal, "").unwrap();
    peer.join().unwrap();
}

#[test]
fn keepalive_fails_a_peer_that_stops_answering() {
    let (url, stop, peer) = server(Peer::Mute);
    let (interval, timeout) = (Duration::from_millis(100), Duration::from_millis(300));
    let (mut ws, _) = client(&url).heartbeat(interval, timeout).connect().unwrap();
    let started = Instant::now();
    let error = ws.read().unwrap_err();
    let took = started.elapsed();
    match &error {
        syncws::Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted, "{e}"),
        other => panic!("{other}"),
    }
    assert!(!error.is_timeout());
    assert!(took < interval + timeout + MARGIN, "{took:?}");
    assert!(matches!(ws.read(), Err(syncws::Error::AlreadyClosed)));
    drop(stop);
    peer.join().unwrap();
}

#[test]
fn ping_waits_for_its_pong_and_keeps_messages_that_came_first() {
    let (url, _stop, peer) = server(Peer::TwoMessagesThenAnswering);
    let (mut ws, _) = client(&url).without_heartbeat().connect().unwrap();
    let rtt = ws.ping().unwrap();
    assert_eq!(ws.latency(), Some(rtt));
    assert_eq!(ws.read().unwrap(), Message::text("one"));
    assert_eq!(ws.read().unwrap(), Message::text("two"));
    ws.close(CloseCode::Normal, "").unwrap();
    peer.join().unwrap();
}

#[test]
fn ping_to_a_peer_that_never_answers_times_out_by_the_heartbeat_timeout() {
    let (url, stop, peer) = server(Peer::Mute);
    let timeout = Duration::from_millis(300);
    let (mut ws, _) = client(&url)
        .heartbeat(Duration::from_secs(60), timeout)
        .connect()
        .unwrap();
    let started = Instant::now();
    assert!(ws.ping().is_err());
    assert!(
        started.elapsed() < timeout + MARGIN,
        "{:?}",
        started.elapsed()
    );
    drop(stop);
    peer.join().unwrap();
}

#[test]
fn writer_ping_returns_the_round_trip_the_reader_saw() {
    let (url, _stop, peer) = server(Peer::Answering);
    let (ws, _) = client(&url).without_heartbeat().connect().unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let pinger = thread::spawn(move || {
        let rtt = writer.ping();
        let _ = writer.start_close(CloseCode::Normal, "");
        (rtt, writer.latency())
    });
    reader.set_read_timeout(Some(PEER_LIFETIME)).unwrap();
    // Reads until the close comes back: the pong passes through this reader meanwhile.
    loop {
        match reader.read() {
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let (rtt, latency) = pinger.join().unwrap();
    let rtt = rtt.unwrap();
    assert_eq!(latency, Some(rtt));
    assert_eq!(reader.latency(), Some(rtt));
    peer.join().unwrap();
}

#[test]
fn a_split_client_keeps_its_heartbeat_on_the_timer_thread() {
    // A peer that answers: the connection lives and the latency is measured.
    let (url, _stop, peer) = server(Peer::Answering);
    let (ws, _) = client(&url)
        .heartbeat(Duration::from_millis(100), Duration::from_millis(300))
        .connect()
        .unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let error = reader.read().unwrap_err();
    assert!(error.is_timeout(), "{error} {:?}", reader.end_cause());
    assert!(reader.latency().is_some());
    assert!(writer.is_open());
    reader.close(CloseCode::Normal, "").unwrap();
    peer.join().unwrap();

    // A mute peer: the timer fails the connection.
    let (url, stop, peer) = server(Peer::Mute);
    let (interval, timeout) = (Duration::from_millis(100), Duration::from_millis(300));
    let (ws, _) = client(&url).heartbeat(interval, timeout).connect().unwrap();
    let (mut reader, _writer) = ws.split().unwrap();
    reader.set_read_timeout(Some(PEER_LIFETIME)).unwrap();
    let started = Instant::now();
    assert!(reader.read().is_err());
    assert!(started.elapsed() < interval + timeout + MARGIN);
    assert_eq!(reader.end_cause(), Some(syncws::EndCause::HeartbeatTimeout));
    drop(stop);
    peer.join().unwrap();
}

#[cfg(unix)]
#[test]
fn any_split_stream_splits_a_unix_stream_pair() {
    use std::os::unix::net::UnixStream;
    let (near, far) = UnixStream::pair().unwrap();
    far.set_read_timeout(Some(PEER_LIFETIME)).unwrap();
    let echo = thread::spawn(move || {
        let mut ws = WebSocket::from_stream(far, Role::Server, Config::default());
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => ws.send(Message::Text(text)).unwrap(),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    let ws = WebSocket::from_stream(near, Role::Client, short_close());
    let (mut reader, writer) = ws.split().unwrap();
    assert_eq!(
        writer.peer_addr().unwrap_err().kind(),
        io::ErrorKind::Unsupported
    );
    let sender = writer.clone();
    thread::spawn(move || sender.send(Message::text("over unix")).unwrap())
        .join()
        .unwrap();
    reader.set_read_timeout(Some(PEER_LIFETIME)).unwrap();
    assert_eq!(reader.read().unwrap(), Message::text("over unix"));
    let frame = reader.close(CloseCode::Normal, "").unwrap();
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
    echo.join().unwrap();
}

#[cfg(unix)]
#[test]
fn reader_close_over_a_unix_stream_to_a_mute_peer_is_bounded_too() {
    use std::os::unix::net::UnixStream;
    let (near, far) = UnixStream::pair().unwrap();
    let ws = WebSocket::from_stream(near, Role::Client, short_close());
    let (mut reader, _writer) = ws.split().unwrap();
    let started = Instant::now();
    assert!(
        reader
            .close(CloseCode::Normal, "")
            .unwrap_err()
            .is_timeout()
    );
    assert!(started.elapsed() < Duration::from_millis(300) + MARGIN);
    drop(far);
}

#[test]
fn a_zero_heartbeat_is_refused_before_connecting() {
    // Nothing listens here: the check comes first.
    let error = client("ws://127.0.0.1:9/")
        .heartbeat(Duration::ZERO, Duration::from_secs(1))
        .connect()
        .unwrap_err();
    assert!(matches!(error, syncws::Error::InvalidConfig(_)), "{error}");
}

#[test]
fn a_read_timeout_set_on_the_stream_still_ends_a_read_with_keepalive_on() {
    let (url, _stop, peer) = server(Peer::Answering);
    let (mut ws, _) = client(&url).connect().unwrap();
    let timeout = Duration::from_millis(300);
    ws.get_ref().set_read_timeout(Some(timeout)).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        assert!(ws.read().unwrap_err().is_timeout());
        assert!(
            started.elapsed() < timeout + MARGIN,
            "{:?}",
            started.elapsed()
        );
    }
    ws.close(CloseCode::Normal, "").unwrap();
    peer.join().unwrap();
}

#[test]
fn reconnecting_close_returns_the_servers_close_frame() {
    let (url, _stop, peer) = server(Peer::Answering);
    let mut ws = syncws::Reconnecting::builder(client(&url).without_heartbeat())
        .connect()
        .unwrap();
    let frame = ws.close(CloseCode::Normal, "bye").unwrap();
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
    assert!(matches!(ws.read(), Err(syncws::Error::ConnectionClosed)));
    peer.join().unwrap();
}

#[test]
fn a_close_that_arrives_during_ping_ends_it_and_is_read_next() {
    let (url, _stop, peer) = server(Peer::Closing);
    let (mut ws, _) = client(&url).without_heartbeat().connect().unwrap();
    assert!(matches!(ws.ping(), Err(syncws::Error::ConnectionClosed)));
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::GoingAway),
        other => panic!("{other:?}"),
    }
    assert!(matches!(ws.read(), Err(syncws::Error::ConnectionClosed)));
    peer.join().unwrap();
}
