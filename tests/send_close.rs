//! `send(Message::Close(..))` is the same close as `start_close` (split `Writer`) and `close`
//! (unsplit `WebSocket`): the same checks before a byte is written, the same state afterwards.
//! Loopback only, port 0, every wait bounded.

mod common;

use common::DEADLINE;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;
use syncws::proto::State;
use syncws::{
    Backoff, ClientBuilder, CloseCode, CloseFrame, EndCause, Error, Message, NetStream,
    Reconnecting, Server, WebSocket, Writer,
};

/// A server-side connection accepted on loopback, and its client (no heartbeat).
fn pair() -> (WebSocket<TcpStream>, WebSocket<NetStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        tcp.set_write_timeout(Some(DEADLINE)).unwrap();
        syncws::accept(tcp).unwrap()
    });
    let (client, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .without_heartbeat()
        .connect()
        .unwrap();
    client.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    (server.join().unwrap(), client)
}

/// Reads on a thread (a client waits for the server to close TCP after the closing handshake):
/// the first message, which answers a close automatically.
fn first_message(mut client: WebSocket<NetStream>) -> thread::JoinHandle<Message> {
    thread::spawn(move || client.read().unwrap())
}

/// Frames that may never be sent (RFC 6455 §7.4.1, §5.5): each is refused, whichever way.
fn unsendable() -> Vec<CloseFrame> {
    let mut frames: Vec<CloseFrame> = [0u16, 999, 1004, 1005, 1006, 1015, 5000]
        .into_iter()
        .map(|code| CloseFrame::new(code, ""))
        .collect();
    frames.push(CloseFrame::new(CloseCode::Normal, "x".repeat(124)));
    frames
}

/// What a split connection shows after `close` on its writer, through the end of the closing
/// handshake.
#[derive(Debug, PartialEq)]
struct AfterClose {
    open: bool,
    send_refused: bool,
    close_again_refused: bool,
    peer_saw: Message,
    reply: Message,
    then_closed: bool,
    end_cause: Option<EndCause>,
}

fn close_split(close: impl FnOnce(&Writer) -> Result<(), Error>) -> AfterClose {
    let (server, client) = pair();
    let peer = first_message(client);
    let (mut reader, writer) = server.split().unwrap();
    close(&writer).unwrap();
    let open = writer.is_open();
    let send_refused = matches!(
        writer.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    );
    let close_again_refused = matches!(
        writer.start_close(CloseCode::Normal, "again"),
        Err(Error::AlreadyClosed)
    );
    let reply = reader.read().unwrap();
    let then_closed = matches!(reader.read(), Err(Error::ConnectionClosed));
    AfterClose {
        open,
        send_refused,
        close_again_refused,
        peer_saw: peer.join().unwrap(),
        reply,
        then_closed,
        end_cause: writer.end_cause(),
    }
}

#[test]
fn writer_send_of_a_close_is_start_close() {
    let frame = CloseFrame::new(CloseCode::GoingAway, "bye");
    let by_start = close_split(|writer| writer.start_close(CloseCode::GoingAway, "bye"));
    let by_send = close_split(|writer| writer.send(Message::Close(Some(frame.clone()))));
    assert_eq!(by_send, by_start);
    assert_eq!(
        by_start,
        AfterClose {
            open: false,
            send_refused: true,
            close_again_refused: true,
            peer_saw: Message::Close(Some(frame.clone())),
            // The peer echoes the code (RFC 6455 §5.5.1).
            reply: Message::Close(Some(CloseFrame::new(CloseCode::GoingAway, ""))),
            then_closed: true,
            end_cause: Some(EndCause::LocalClosed(Some(frame))),
        }
    );
}

#[test]
fn writer_send_of_a_close_without_a_code_sends_an_empty_close() {
    let after = close_split(|writer| writer.send(Message::Close(None)));
    assert_eq!(after.peer_saw, Message::Close(None));
    assert_eq!(after.end_cause, Some(EndCause::LocalClosed(None)));
    assert!(!after.open && after.send_refused && after.close_again_refused);
}

#[test]
fn writer_refuses_an_unsendable_close_before_a_byte_is_written() {
    let (server, client) = pair();
    let peer = first_message(client);
    let (_reader, writer) = server.split().unwrap();
    for frame in unsendable() {
        let by_send = writer.send(Message::Close(Some(frame.clone())));
        assert!(matches!(by_send, Err(Error::InvalidInput(_))), "{frame}");
        let by_start = writer.start_close(frame.code, &frame.reason);
        assert!(matches!(by_start, Err(Error::InvalidInput(_))), "{frame}");
        assert!(writer.is_open(), "{frame}");
    }
    assert_eq!(writer.end_cause(), None);
    // The first thing on the wire is what comes after the refusals.
    writer.send(Message::text("still open")).unwrap();
    assert_eq!(peer.join().unwrap(), Message::text("still open"));
}

#[test]
fn websocket_send_of_a_close_is_the_start_of_close() {
    let frame = CloseFrame::new(CloseCode::GoingAway, "bye");
    let (mut server, client) = pair();
    let peer = first_message(client);
    server.send(Message::Close(Some(frame.clone()))).unwrap();
    // Where `close` stands once its frame is out: CLOSING, nothing more may be sent or closed.
    assert_eq!(server.state(), State::Closing);
    assert!(matches!(
        server.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        server.send(Message::Close(None)),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        server.close(CloseCode::Normal, "again"),
        Err(Error::AlreadyClosed)
    ));
    assert_eq!(peer.join().unwrap(), Message::Close(Some(frame.clone())));
    // Reading on completes the handshake `close` would have waited for.
    let echo = CloseFrame::new(CloseCode::GoingAway, "");
    assert_eq!(server.read().unwrap(), Message::Close(Some(echo)));
    assert_eq!(server.state(), State::Closed);
    assert!(matches!(server.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn websocket_refuses_an_unsendable_close_before_a_byte_is_written() {
    let (mut server, client) = pair();
    let peer = first_message(client);
    for frame in unsendable() {
        let by_send = server.send(Message::Close(Some(frame.clone())));
        assert!(matches!(by_send, Err(Error::InvalidInput(_))), "{frame}");
        let by_close = server.close(frame.code, &frame.reason);
        assert!(matches!(by_close, Err(Error::InvalidInput(_))), "{frame}");
        assert_eq!(server.state(), State::Open, "{frame}");
    }
    server.send(Message::text("still open")).unwrap();
    assert_eq!(peer.join().unwrap(), Message::text("still open"));
}

#[test]
fn reconnecting_send_of_a_close_ends_the_client_as_start_close_does() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let mut ws = Reconnecting::builder(ClientBuilder::new(url))
        .backoff(
            Backoff::new(Duration::from_millis(10), Duration::from_millis(100)).max_attempts(50),
        )
        .connect()
        .unwrap();
    let writer = ws.writer();
    // 1001 is a code the default policy retries: only the close itself keeps the client down.
    let frame = CloseFrame::new(CloseCode::GoingAway, "bye");
    writer.send(Message::Close(Some(frame))).unwrap();
    assert!(matches!(
        writer.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
    let (done_tx, done) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let reply = ws.read();
        let after = ws.read();
        let _ = done_tx.send((format!("{reply:?}"), format!("{after:?}"), ws.connections()));
    });
    let (reply, after, connections) = done.recv_timeout(DEADLINE).expect("reads ended");
    assert!(reply.contains("GoingAway"), "{reply}");
    assert!(after.contains("ConnectionClosed"), "{after}");
    assert_eq!(connections, 1, "no reconnect after the close");
    server.shutdown();
}
