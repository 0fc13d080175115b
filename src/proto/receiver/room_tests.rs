//! Room for a payload follows the bytes that arrived, not the length a header announces
//! (RFC 6455 §10.4: a peer must not make us allocate what it has not sent).

use super::*;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn receiver(role: Role) -> Receiver {
    let limits = Limits {
        max_frame_size: 16 << 20,
        max_message_size: 64 << 20,
    };
    Receiver::new(role, limits, 2048)
}

fn server() -> Receiver {
    receiver(Role::Server)
}

/// A binary frame header announcing `len` payload bytes, as the peer of `role` sends it: masked
/// from a client.
fn header_to(role: Role, len: u64) -> Vec<u8> {
    let mut header = FrameHeader::new(OpCode::Binary, len);
    if role == Role::Server {
        header.mask = Some(KEY);
    }
    let mut out = Vec::new();
    header.encode(&mut out);
    out
}

/// A masked binary frame header (as a client sends it) announcing `len` payload bytes.
fn header(len: u64) -> Vec<u8> {
    header_to(Role::Server, len)
}

/// Reads `bytes` as the blocking layer does (`read_bufs`, as much as offered), checking after
/// every read that the memory held stays within `bound(received so far)`.
fn read_checking(receiver: &mut Receiver, mut bytes: &[u8], bound: impl Fn(usize) -> usize) {
    let mut received = 0;
    while !bytes.is_empty() {
        let (first, second) = receiver.read_bufs();
        let mut n = 0;
        for slice in [first, second] {
            let take = slice.len().min(bytes.len());
            slice[..take].copy_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            n += take;
        }
        receiver.commit(n);
        received += n;
        while receiver.next_event().unwrap().is_some() {}
        // The room for the next read is what a waiting connection holds.
        let _ = receiver.read_bufs();
        receiver.commit(0);
        let held = receiver.buffered_capacity();
        assert!(
            held <= bound(received),
            "{held} bytes held after {received} received"
        );
    }
}

#[test]
fn a_header_announcing_16_mib_alone_reserves_little() {
    for role in [Role::Server, Role::Client] {
        let mut receiver = receiver(role);
        receiver.receive_data(&header_to(role, (16 << 20) - 1));
        assert_eq!(receiver.next_event().unwrap(), None);
        // The blocking layer asks where to read next, then waits for the peer.
        let (first, second) = receiver.read_bufs();
        let offered = first.len() + second.len();
        receiver.commit(0);
        assert!(offered <= 64 << 10, "{role:?}: {offered} bytes offered");
        assert!(
            receiver.buffered_capacity() <= 64 << 10,
            "{role:?}: {} bytes held for a payload not sent",
            receiver.buffered_capacity()
        );
    }
}

#[test]
fn the_room_grows_with_what_arrives_and_the_message_is_whole() {
    let len = 3 << 20;
    let mut frame = header(len as u64);
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    let mut receiver = server();
    // Never more than about twice what arrived, plus a small start.
    read_checking(&mut receiver, &frame[..len / 2], |received| {
        2 * received + (64 << 10)
    });
    read_checking(&mut receiver, &frame[len / 2..len], |received| {
        2 * (received + len / 2) + (64 << 10)
    });
    receiver.receive_data(&frame[len..]);
    let Some(Event::Message(Message::Binary(data))) = receiver.next_event().unwrap() else {
        panic!("expected the whole message");
    };
    assert!(data == payload, "payload differs");
}
