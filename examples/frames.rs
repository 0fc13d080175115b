//! Step 1: frames, without a network. Builds the frames of RFC 6455 §5.7 by hand, masks one,
//! decodes them back and prints each one dissected.
//!
//! Run: `cargo run --example frames`

use syncws::proto::frame::{Decoded, Frame, FrameHeader, OpCode};

fn main() -> Result<(), syncws::error::ProtocolError> {
    // A server's text frame: byte 0 = FIN (0x80) | opcode 1 (text); byte 1 = no mask, length 5.
    let hello = Frame::new(OpCode::Text, "Hello");
    show(
        "an unmasked text frame (server to client)",
        &hello.to_bytes(),
    );

    // The same frame from a client: every client frame is masked with a fresh 4-byte key
    // (RFC 6455 §5.3). The key travels in the header; each payload byte is XORed with
    // key[i % 4]. Here the RFC's example key, so that the bytes match the RFC.
    let masked = Frame::new(OpCode::Text, "Hello").masked([0x37, 0xfa, 0x21, 0x3d]);
    show("a masked text frame (client to server)", &masked.to_bytes());

    // One message in two frames: FIN = 0 on the first, then a continuation with FIN = 1.
    // A ping may come in between: control frames are never fragmented.
    let mut stream = Frame::new(OpCode::Text, "Hel").fin(false).to_bytes();
    stream.extend(Frame::new(OpCode::Ping, "ping!").to_bytes());
    stream.extend(Frame::new(OpCode::Continuation, "lo").to_bytes());
    show("a fragmented message with a ping in between", &stream);

    // The length field has three forms: 7 bits (0-125), 126 + 16 bits, 127 + 64 bits.
    for len in [125, 126, 65536] {
        let mut header = Vec::new();
        FrameHeader::new(OpCode::Binary, len).encode(&mut header);
        println!(
            "a {len}-byte binary frame has a {}-byte header: {header:02x?}",
            header.len()
        );
    }

    // Decoding: a header may arrive in pieces; short input is `Partial`, never an error.
    let wire = masked.to_bytes();
    assert_eq!(FrameHeader::decode(&wire[..3])?, Decoded::Partial);
    if let Decoded::Complete(frame, used) = Frame::decode(&wire, 1 << 20)? {
        println!(
            "\ndecoded {used} bytes: {} {:?}",
            frame.header.opcode.name(),
            String::from_utf8_lossy(&frame.payload)
        );
    }

    // A close frame: a 2-byte code (1000 = normal closure) and a UTF-8 reason.
    let close = Frame::new(OpCode::Close, [&[0x03, 0xe8][..], b"bye"].concat());
    show("a close frame", &close.to_bytes());
    Ok(())
}

fn show(what: &str, wire: &[u8]) {
    println!("\n== {what}: {wire:02x?}");
    print!("{}", syncws::proto::dissect::dissect_bytes(wire));
}
