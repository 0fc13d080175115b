//! Large payloads are read straight into the message (`Connection::read_buf` points there): the
//! result must not depend on how the reads cut the bytes, and invalid UTF-8 must still fail.

use syncws::error::ProtocolError;
use syncws::proto::Event;
use syncws::proto::frame::{FrameHeader, OpCode, encode_frame};
use syncws::proto::{Connection, Role};
use syncws::{Config, Message};

fn masked(opcode: OpCode, fin: bool, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.fin = fin;
    header.mask = Some(key);
    let mut out = Vec::new();
    encode_frame(&header, payload, &mut out);
    out
}

/// Feeds `wire` through `read_buf`/`commit` in reads of the sizes `cuts` cycles through,
/// collecting every event.
fn receive(wire: &[u8], cuts: &[usize]) -> Result<Vec<Event>, syncws::proto::Error> {
    let mut config = Config::default();
    config.read_buffer_size = 4096;
    let mut receiver = Connection::new(Role::Server, &config);
    let mut events = Vec::new();
    let mut at = 0;
    let mut turn = 0;
    while at < wire.len() {
        let buf = receiver.read_buf();
        let n = buf.len().min(cuts[turn % cuts.len()]).min(wire.len() - at);
        turn += 1;
        buf[..n].copy_from_slice(&wire[at..at + n]);
        receiver.commit(n);
        at += n;
        while let Some(event) = receiver.next_event()? {
            events.push(event);
        }
    }
    Ok(events)
}

fn text_payload(len: usize) -> String {
    // Multi-byte characters, so reads cut inside them.
    "aé€𝄞"
        .chars()
        .cycle()
        .scan(0, |size, c| {
            *size += c.len_utf8();
            (*size <= len).then_some(c)
        })
        .collect()
}

#[test]
fn large_frames_survive_any_cutting_of_the_reads() {
    let text = text_payload(100_000);
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut wire = masked(OpCode::Text, true, text.as_bytes(), [1, 2, 3, 4]);
    wire.extend(masked(OpCode::Binary, true, &binary, [9, 8, 7, 6]));
    wire.extend(masked(OpCode::Binary, true, b"small", [5, 5, 5, 5]));
    // A fragmented text message: large, small, large frames.
    let (a, rest) = text.as_bytes().split_at(40_001);
    let (b, c) = rest.split_at(3);
    wire.extend(masked(OpCode::Text, false, a, [1, 1, 2, 3]));
    wire.extend(masked(OpCode::Continuation, false, b, [4, 4, 2, 3]));
    wire.extend(masked(OpCode::Continuation, true, c, [7, 1, 2, 9]));
    let expected = [
        Message::Text(text.clone()),
        Message::Binary(binary.clone()),
        Message::Binary(b"small".to_vec()),
        Message::Text(text.clone()),
    ]
    .map(Event::Message)
    .to_vec();
    for cuts in [
        &[usize::MAX][..],
        &[1][..],
        &[7, 16_384, 3][..],
        &[65_536, 1, 20_000][..],
        &[4096][..],
    ] {
        assert_eq!(receive(&wire, cuts).unwrap(), expected, "cuts {cuts:?}");
    }
}

#[test]
fn invalid_utf8_in_a_large_frame_fails() {
    let mut bad = text_payload(50_000).into_bytes();
    bad[30_000] = 0xff;
    let wire = masked(OpCode::Text, true, &bad, [3, 1, 4, 1]);
    for cuts in [&[usize::MAX][..], &[1000, 17][..]] {
        assert_eq!(
            receive(&wire, cuts),
            Err(syncws::proto::Error::Protocol(ProtocolError::InvalidUtf8))
        );
    }
    // Cut inside a character at the end of the message.
    let mut cut = text_payload(50_000).into_bytes();
    cut.push(0xe2);
    let wire = masked(OpCode::Text, true, &cut, [3, 1, 4, 1]);
    assert_eq!(
        receive(&wire, &[8192]),
        Err(syncws::proto::Error::Protocol(ProtocolError::InvalidUtf8))
    );
}
