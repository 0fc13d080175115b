//! A minimal HTTP CONNECT proxy for tests: one tunnel, optional Basic credentials.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;

/// Starts a proxy for one CONNECT; returns its address and, on join, the request head it saw.
pub fn start(required_auth: Option<&'static str>) -> (SocketAddr, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        client.set_read_timeout(Some(super::DEADLINE)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte).unwrap() == 0 {
                return String::from_utf8_lossy(&head).into_owned();
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        if let Some(auth) = required_auth {
            if !head.contains(&format!("Proxy-Authorization: Basic {auth}\r\n")) {
                client
                    .write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                    )
                    .unwrap();
                return head;
            }
        }
        let target = head.split_whitespace().nth(1).unwrap().to_owned();
        let upstream = TcpStream::connect(&target).unwrap();
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .unwrap();
        relay(client, upstream);
        head
    });
    (addr, handle)
}

fn relay(client: TcpStream, upstream: TcpStream) {
    let (mut c_read, mut u_write) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
}
