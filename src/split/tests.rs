//! The write ownership seen from inside: a pong queued while another thread owns the write half
//! still goes out, and the reader never waits for that thread.

use super::transport::SharedTcp;
use super::*;
use crate::proto::message::Message;
use std::io;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// A TCP write half whose first write waits until the test lets it go: a writer "blocked on
/// the peer", holding the write ownership.
struct Gated {
    tcp: SharedTcp,
    entered: Option<mpsc::Sender<()>>,
    gate: mpsc::Receiver<()>,
}

impl Transport for Gated {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(entered) = self.entered.take() {
            entered.send(()).unwrap();
            self.gate.recv().unwrap();
        }
        Transport::write(&mut self.tcp, buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        self.write(first)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.tcp.write_timeout()
    }
}

/// A server split over a gated write half, and its client peer.
fn gated_pair() -> (
    Reader,
    Writer,
    WebSocket<TcpStream>,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let tcp = Arc::new(server);
    let (entered_tx, entered) = mpsc::channel();
    let (release, gate) = mpsc::channel();
    let config = Config::default();
    let (reader, writer) = split_parts(
        Box::new(Connection::new(Role::Server, &config)),
        Box::new(SharedTcp(Arc::clone(&tcp))),
        Box::new(Gated {
            tcp: SharedTcp(Arc::clone(&tcp)),
            entered: Some(entered_tx),
            gate,
        }),
        tcp,
        Role::Server,
        config.clone(),
        None,
    );
    let peer = WebSocket::from_stream(client, Role::Client, config);
    (reader, writer, peer, entered, release)
}

#[test]
fn a_pong_queued_while_a_writer_owns_the_stream_goes_out_after_its_message() {
    let (mut reader, writer, mut peer, entered, release) = gated_pair();
    let sending = std::thread::spawn(move || writer.send(Message::text("first")));
    // The writer now owns the write half and is stuck "on the peer".
    entered.recv_timeout(Duration::from_secs(20)).unwrap();
    peer.send(Message::Ping(b"p".to_vec())).unwrap();
    // The reader decodes and returns the ping without waiting for the writer.
    let (done_tx, done) = mpsc::channel();
    let reading = std::thread::spawn(move || {
        let ping = reader.read();
        done_tx.send(()).unwrap();
        (ping, reader)
    });
    done.recv_timeout(Duration::from_secs(20))
        .expect("the reader waited for the writer");
    let (ping, mut reader) = reading.join().unwrap();
    assert_eq!(ping.unwrap(), Message::Ping(b"p".to_vec()));
    // The writer finishes its message, then finds the pong queued and writes it.
    release.send(()).unwrap();
    sending.join().unwrap().unwrap();
    assert_eq!(peer.read().unwrap(), Message::text("first"));
    assert_eq!(peer.read().unwrap(), Message::Pong(b"p".to_vec()));
    // And the closing handshake through the same path.
    peer.send(Message::Close(None)).unwrap();
    assert_eq!(reader.read().unwrap(), Message::Close(None));
    assert_eq!(peer.read().unwrap(), Message::Close(None));
    assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn a_ping_from_a_shared_thread_never_waits_for_the_owner_and_still_goes_out() {
    let (_reader, writer, mut peer, entered, release) = gated_pair();
    let sending = {
        let writer = writer.clone();
        std::thread::spawn(move || writer.send(Message::text("first")))
    };
    entered.recv_timeout(Duration::from_secs(20)).unwrap();
    // Queued, not written: the owner is busy. It returns at once.
    assert!(!writer.ping_from_shared_thread());
    release.send(()).unwrap();
    sending.join().unwrap().unwrap();
    assert_eq!(peer.read().unwrap(), Message::text("first"));
    assert_eq!(peer.read().unwrap(), Message::Ping(Vec::new()));
}
