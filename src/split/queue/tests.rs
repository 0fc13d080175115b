//! The fan-out queue over a transport that keeps bytes of its own (as TLS keeps the rest of a
//! record the socket cut short).

use super::super::split_parts;
use super::super::transport::{SharedTcp, Transport};
use super::{Enqueued, Frame};
use crate::proto::config::Config;
use crate::proto::message::Message;
use crate::proto::{Connection, Role};
use crate::websocket::WebSocket;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Takes every write into its own buffer and passes it on to TCP only while `open`; a write or
/// flush that may not wait reports `WouldBlock` while closed, its bytes kept.
struct Holding {
    tcp: SharedTcp,
    held: Vec<u8>,
    open: Arc<AtomicBool>,
}

impl Holding {
    fn pass_on(&mut self, wait: bool) -> io::Result<()> {
        if !wait && !self.open.load(Ordering::Acquire) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Write::write_all(&mut self.tcp, &self.held)?;
        self.held.clear();
        Ok(())
    }
}

impl Transport for Holding {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        let _ = self.pass_on(true);
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        self.write(first)
    }
    fn writes_now(&self) -> bool {
        true
    }
    fn write_now(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        self.held.extend_from_slice(first);
        let _ = self.pass_on(false);
        Ok(first.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.pass_on(true)
    }
    fn flush_now(&mut self) -> io::Result<()> {
        self.pass_on(false)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.tcp.write_timeout()
    }
}

/// A frame whose bytes the transport took but could not flush at once reaches the peer once
/// the transport can: the fan-out thread's next try flushes them, although nothing more is
/// queued after it (a later write would otherwise be the only thing to push them out).
#[test]
fn bytes_the_transport_kept_go_out_without_a_later_write() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let tcp = Arc::new(server);
    let open = Arc::new(AtomicBool::new(false));
    let config = Config::default();
    let (_reader, writer) = split_parts(
        Box::new(Connection::new(Role::Server, &config)),
        Box::new(SharedTcp(Arc::clone(&tcp))),
        Box::new(Holding {
            tcp: SharedTcp(Arc::clone(&tcp)),
            held: Vec::new(),
            open: Arc::clone(&open),
        }),
        tcp,
        Role::Server,
        config.clone(),
        None,
    );
    let outcome = writer.enqueue(Frame::Message(Message::text("kept")), 1 << 20);
    assert_eq!(outcome, Enqueued::Queued, "the flush could not go at once");
    open.store(true, Ordering::Release);
    let mut peer = WebSocket::from_stream(client, Role::Client, config);
    assert_eq!(peer.read().unwrap(), Message::text("kept"));
}
