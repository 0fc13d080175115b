//! Graceful shutdown, alone in its test binary so that counting the process's threads is exact.

mod common;

use common::{DEADLINE, raw_connect, read_to_close, upgrade_request};
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;
use syncws::{CloseCode, EndCause, Message, Server, Session};

/// The process's threads, from /proc/self/task.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| {
            let path = task.ok()?.path().join("comm");
            Some(std::fs::read_to_string(path).ok()?.trim().to_owned())
        })
        .collect()
}

fn server_threads() -> usize {
    threads()
        .iter()
        .filter(|name| name.starts_with("syncws-"))
        .count()
}

#[test]
fn shutdown_sends_1001_answers_503_cuts_the_deaf_and_leaves_no_thread() {
    let before = threads().len();
    let (tx, ends) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let (opened_tx, opened) = mpsc::channel();
    let opened_tx = std::sync::Mutex::new(opened_tx);
    let server = Server::builder()
        .heartbeat(Duration::from_secs(30), Duration::from_secs(30))
        .shutdown_timeout(Duration::from_millis(500))
        .on_end(move |_, cause| {
            let _ = tx.lock().unwrap().send(cause.clone());
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session: Session| {
            opened_tx.lock().unwrap().send(()).unwrap();
            while let Ok(message) = session.read() {
                if message.is_data() && session.send(message).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let addr = server.local_addr();
    // Three open connections whose clients read on their own threads.
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (mut ws, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
            ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
            std::thread::spawn(move || ws.read())
        })
        .collect();
    // And one that never reads, so never answers the close: cut at the deadline.
    let (deaf, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
    for _ in 0..4 {
        opened.recv_timeout(DEADLINE).unwrap();
    }
    // A handshake in progress: half a request head.
    let mut half = raw_connect(addr);
    let request = upgrade_request("");
    half.write_all(&request.as_bytes()[..20]).unwrap();
    // Wait until its thread exists (the accept loop has taken it), without sleeping blindly.
    let taken_by = std::time::Instant::now() + DEADLINE;
    while server.connection_count() < 5 {
        assert!(
            std::time::Instant::now() < taken_by,
            "the half handshake was never accepted"
        );
        std::thread::yield_now();
    }
    // accept loop + heartbeat + 5 connections. A new thread carries its creator's name until it
    // first runs and names itself, so on a loaded machine the names may lag a little.
    let named_by = std::time::Instant::now() + DEADLINE;
    while server_threads() < 7 && std::time::Instant::now() < named_by {
        std::thread::yield_now();
    }
    assert_eq!(server_threads(), 7, "{:?}", threads());

    let started = std::time::Instant::now();
    server.shutdown();
    // 500 ms for handlers, then the deaf client's TCP connection is cut (a generous bound: the
    // machine may be loaded; an unbounded wait would hit the 20 s deadlines instead).
    assert!(started.elapsed() < Duration::from_secs(15));

    for client in clients {
        match client.join().unwrap() {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::GoingAway),
            other => panic!("{other:?}"),
        }
    }
    let answer = String::from_utf8_lossy(&read_to_close(&mut half)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("\r\nRetry-After: "), "{answer}");
    let causes: Vec<EndCause> = ends.try_iter().collect();
    assert_eq!(causes, vec![EndCause::ServerShutdown; 4]);
    drop(deaf);
    assert_eq!(server_threads(), 0, "{:?}", threads());
    assert_eq!(threads().len(), before, "{:?}", threads());
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(addr).is_err());
}
