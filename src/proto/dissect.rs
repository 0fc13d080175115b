//! Frames explained in words, field by field, the way a packet dissector shows them.
//!
//! [`dissect`] lays a frame out bit by bit (FIN, RSV1–3, opcode, MASK, the length and which of
//! the three length forms carries it, the masking key) and then its payload before and after
//! unmasking, with close codes named. [`dissect_bytes`] does the same for raw bytes captured off
//! the wire; [`summary`] gives one line per frame, for logs.
//!
//! ```
//! // RFC 6455 §5.7: a masked text frame "Hello" from a client.
//! let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let text = syncws::proto::dissect::dissect_bytes(&wire);
//! assert!(text.contains("1... .... = FIN: 1 (final frame of its message)"));
//! assert!(text.contains(".000 0101 = Payload length: 5 (7-bit form, 0-125)"));
//! assert!(text.contains("Masking key: 37 fa 21 3d"));
//! assert!(text.contains("0000  7f 9f 4d 51 58"));
//! ```

use super::close::CloseCode;
use super::frame::{Decoded, FrameHeader, LengthForm, OpCode};
use super::mask::apply_mask;
use super::observer::Direction;
use std::fmt::Write;

/// Payload bytes shown at most, before and after unmasking; the rest is counted, not shown.
pub const DISPLAY_MAX: usize = 512;

/// Describes one frame: `header` as on the wire and `payload` unmasked (possibly only its first
/// bytes, as a [frame hook](super::observer) receives it).
///
/// Every line ends with `\n`. The masked bytes are recomputed from the payload and the key.
/// A continuation frame alone does not say what it continues; [`Dissector`] remembers.
pub fn dissect(header: &FrameHeader, payload: &[u8]) -> String {
    describe(header, payload, Context::Unknown)
}

/// What a frame continues, as far as the dissector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Frames before this one were not seen.
    Unknown,
    /// No fragmented message is in progress.
    Nothing,
    /// A message with this opcode is in progress; `true` if its first frame had RSV1 set.
    Continues(OpCode, bool),
}

/// Dissects the frames of one direction of a connection, in order, remembering the fragmented
/// message in progress: a continuation frame is shown as part of its text or binary message,
/// and as compressed when the message's first frame was (RFC 7692 sets RSV1 on that frame
/// only).
///
/// ```
/// use syncws::proto::dissect::Dissector;
/// use syncws::proto::frame::{Frame, OpCode};
/// let mut dissector = Dissector::new();
/// let first = Frame::new(OpCode::Binary, "Hel").fin(false);
/// let last = Frame::new(OpCode::Continuation, "lo");
/// dissector.dissect(&first.header, &first.payload);
/// let text = dissector.dissect(&last.header, &last.payload);
/// assert!(text.contains("Continuation (continues a fragmented Binary message)"));
/// assert!(text.contains("Payload in hex:"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Dissector {
    /// The opcode of the fragmented message in progress and whether it is compressed.
    message: Option<(OpCode, bool)>,
}

impl Dissector {
    /// A dissector at the start of a stream: no message in progress.
    pub fn new() -> Dissector {
        Dissector::default()
    }

    /// Describes the next frame of the stream, as [`dissect`] does.
    pub fn dissect(&mut self, header: &FrameHeader, payload: &[u8]) -> String {
        let context = match self.message {
            Some((opcode, compressed)) => Context::Continues(opcode, compressed),
            None => Context::Nothing,
        };
        let text = describe(header, payload, context);
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                self.message = (!header.fin).then_some((header.opcode, header.rsv1));
            }
            OpCode::Continuation if header.fin => self.message = None,
            _ => {}
        }
        text
    }
}

fn describe(header: &FrameHeader, payload: &[u8], context: Context) -> String {
    let mut out = String::new();
    let header_len = header.encoded_len();
    let _ = writeln!(
        out,
        "{} frame, {} bytes on the wire ({} header + {} payload)",
        header.opcode.name(),
        header_len as u64 + header.payload_len,
        header_len,
        header.payload_len
    );
    let first = first_byte(header);
    let bit = |b: bool| u8::from(b);
    let fin_note = match (header.fin, header.opcode.is_control()) {
        (true, false) => "final frame of its message",
        (false, false) => "more fragments follow",
        (true, true) => "a control frame is always whole",
        (false, true) => "invalid: control frames may not be fragmented",
    };
    field(
        &mut out,
        first,
        0x80,
        &format!("FIN: {} ({fin_note})", bit(header.fin)),
    );
    let rsv1_note = if header.rsv1 {
        " (compressed, under permessage-deflate)"
    } else {
        ""
    };
    field(
        &mut out,
        first,
        0x40,
        &format!("RSV1: {}{rsv1_note}", bit(header.rsv1)),
    );
    field(
        &mut out,
        first,
        0x20,
        &format!("RSV2: {}", bit(header.rsv2)),
    );
    field(
        &mut out,
        first,
        0x10,
        &format!("RSV3: {}", bit(header.rsv3)),
    );
    let continues;
    let kind = match header.opcode {
        OpCode::Continuation => match context {
            Context::Unknown => "continues a fragmented message",
            Context::Nothing => "invalid: there is no fragmented message to continue",
            Context::Continues(opcode, _) => {
                continues = format!("continues a fragmented {} message", opcode.name());
                &continues
            }
        },
        OpCode::Text | OpCode::Binary => "data frame",
        OpCode::Close | OpCode::Ping | OpCode::Pong => "control frame",
        OpCode::Reserved(_) => "reserved: the receiver must fail the connection",
    };
    let opcode = header.opcode;
    let opcode_text = format!("Opcode: 0x{:x} {} ({kind})", opcode.bits(), opcode.name());
    field(&mut out, first, 0x0f, &opcode_text);

    let second = second_byte(header);
    let mask_note = if header.mask.is_some() {
        "masked: client to server"
    } else {
        "unmasked: server to client"
    };
    let mask_text = format!("MASK: {} ({mask_note})", bit(header.mask.is_some()));
    field(&mut out, second, 0x80, &mask_text);
    let len = header.payload_len;
    let len_text = match header.length_form() {
        LengthForm::Short => format!("Payload length: {len} (7-bit form, 0-125)"),
        LengthForm::Extended16 => "Payload length: 126 (a 16-bit length follows)".to_owned(),
        LengthForm::Extended64 => "Payload length: 127 (a 64-bit length follows)".to_owned(),
    };
    field(&mut out, second, 0x7f, &len_text);
    match header.length_form() {
        LengthForm::Short => {}
        LengthForm::Extended16 => {
            let _ = writeln!(
                out,
                "  Extended payload length (16 bits): {len} (126-65535)"
            );
        }
        LengthForm::Extended64 => {
            let _ = writeln!(
                out,
                "  Extended payload length (64 bits): {len} (over 65535)"
            );
        }
    }
    if let Some(key) = header.mask {
        let _ = writeln!(out, "  Masking key: {}", hex_bytes(&key));
    }
    payload_lines(&mut out, header, payload, context);
    out
}

/// Dissects every frame in `bytes`, raw from the wire (masked payloads are unmasked here).
///
/// Frames are separated by an empty line. Trailing bytes that do not make a whole frame are
/// reported with how many more are needed; an invalid header ends the dissection.
pub fn dissect_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut dissector = Dissector::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        match FrameHeader::decode(rest) {
            Err(e) => {
                let _ = writeln!(out, "Invalid frame header: {e}");
                return out;
            }
            Ok(Decoded::Partial) => {
                let _ = writeln!(
                    out,
                    "Incomplete frame header: {} bytes ({})",
                    rest.len(),
                    hex_bytes(rest)
                );
                return out;
            }
            Ok(Decoded::Complete(header, header_len)) => {
                let available = (rest.len() - header_len) as u64;
                let take = available.min(header.payload_len) as usize;
                let mut payload = rest[header_len..header_len + take].to_vec();
                if let Some(key) = header.mask {
                    apply_mask(&mut payload, key, 0);
                }
                out.push_str(&dissector.dissect(&header, &payload));
                if take as u64 != header.payload_len {
                    let _ = writeln!(
                        out,
                        "  Incomplete: {} of {} payload bytes present",
                        take, header.payload_len
                    );
                    return out;
                }
                rest = &rest[header_len + take..];
            }
        }
    }
    out
}

/// One line for a frame, for logs: direction, opcode, flags, length and the start of the payload.
///
/// ```
/// use syncws::proto::frame::{FrameHeader, OpCode};
/// use syncws::proto::Direction;
/// let header = FrameHeader::new(OpCode::Text, 5);
/// assert_eq!(
///     syncws::proto::dissect::summary(Direction::Received, &header, b"Hello"),
///     "received Text fin len=5 \"Hello\""
/// );
/// ```
pub fn summary(direction: Direction, header: &FrameHeader, payload: &[u8]) -> String {
    let mut out = String::new();
    let verb = match direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    let _ = write!(out, "{verb} {}", header.opcode.name());
    for (set, name) in [
        (header.fin, "fin"),
        (header.rsv1, "rsv1"),
        (header.rsv2, "rsv2"),
        (header.rsv3, "rsv3"),
        (header.mask.is_some(), "masked"),
    ] {
        if set {
            let _ = write!(out, " {name}");
        }
    }
    let _ = write!(out, " len={}", header.payload_len);
    const SHOWN: usize = 32;
    let shown = &payload[..payload.len().min(SHOWN)];
    let more = if (shown.len() as u64) < header.payload_len {
        "…"
    } else {
        ""
    };
    if header.opcode == OpCode::Close && payload.len() >= 2 {
        let code = CloseCode::from(u16::from_be_bytes([payload[0], payload[1]]));
        let _ = write!(out, " code={code}");
        let reason = String::from_utf8_lossy(&payload[2..]);
        if !reason.is_empty() {
            let _ = write!(out, " {reason:?}");
        }
    } else if !payload.is_empty() {
        match as_text(shown) {
            Some(text) if !header.rsv1 && header.opcode != OpCode::Binary => {
                let _ = write!(out, " {text:?}{more}");
            }
            _ => {
                let _ = write!(out, " {}{more}", hex_bytes(shown));
            }
        }
    } else if header.payload_len > 0 {
        // The payload was not shown (the frame failed before it arrived).
        out.push_str(" …");
    }
    out
}

/// The payload: as sent (masked) and as meant (unmasked), in text or hex; close codes named.
fn payload_lines(out: &mut String, header: &FrameHeader, payload: &[u8], context: Context) {
    // A continuation is shown as the message it belongs to.
    let (opcode, compressed) = match (header.opcode, context) {
        (OpCode::Continuation, Context::Continues(opcode, compressed)) => (opcode, compressed),
        (opcode, _) => (opcode, header.rsv1),
    };
    if header.payload_len == 0 {
        let _ = writeln!(out, "  Payload: empty");
        return;
    }
    let shown = &payload[..payload.len().min(DISPLAY_MAX)];
    let omitted = header.payload_len - shown.len() as u64;
    let of = if omitted > 0 {
        format!(", first {} of {} bytes", shown.len(), header.payload_len)
    } else {
        String::new()
    };
    if let Some(key) = header.mask {
        let mut masked = shown.to_vec();
        apply_mask(&mut masked, key, 0);
        let _ = writeln!(out, "  Payload as sent, masked{of}:");
        hex_dump(out, &masked, false);
    }
    let unmasked = if header.mask.is_some() {
        "unmasked, "
    } else {
        ""
    };
    if header.opcode == OpCode::Close {
        close_payload(out, payload);
        return;
    }
    let text = match opcode {
        // A compressed payload is not text until it is inflated.
        _ if compressed => None,
        OpCode::Binary => None,
        _ => as_text(shown),
    };
    match text {
        Some(text) => {
            let _ = writeln!(out, "  Payload {unmasked}as text{of}:");
            let body = text.strip_suffix('\n');
            for line in body.unwrap_or(text).split('\n') {
                let _ = writeln!(out, "    {}", printable(line));
            }
            if body.is_some() {
                // Otherwise a final line break would be invisible.
                let _ = writeln!(out, "  (the text ends with a line break)");
            }
        }
        None => {
            let what = if compressed { "compressed, " } else { "" };
            let _ = writeln!(out, "  Payload {unmasked}{what}in hex{of}:");
            hex_dump(out, shown, true);
        }
    }
}

/// RFC 6455 §5.5.1: an empty body, or a 2-byte code and a UTF-8 reason.
fn close_payload(out: &mut String, payload: &[u8]) {
    match payload {
        [] => {}
        [byte] => {
            let _ = writeln!(
                out,
                "  Close body: one byte ({byte:02x}): invalid, a code needs two"
            );
        }
        [hi, lo, reason @ ..] => {
            let code = CloseCode::from(u16::from_be_bytes([*hi, *lo]));
            let allowed = if code.is_sendable() {
                ""
            } else {
                ", not allowed in a close frame"
            };
            let _ = writeln!(
                out,
                "  Close code: {} ({}{allowed})",
                code.as_u16(),
                code.description()
            );
            match std::str::from_utf8(reason) {
                Ok("") => {}
                Ok(text) => {
                    let _ = writeln!(out, "  Close reason: {text:?}");
                }
                Err(_) => {
                    let _ = writeln!(out, "  Close reason (not UTF-8): {}", hex_bytes(reason));
                }
            }
        }
    }
}

/// The payload as text if it is UTF-8 (a character cut by the display limit is dropped).
fn as_text(bytes: &[u8]) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        // Cut inside the last character: keep what is whole.
        Err(e) if e.error_len().is_none() && bytes.len() - e.valid_up_to() < 4 => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

/// A line of text with control characters escaped, so that they cannot disturb a terminal.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn field(out: &mut String, byte: u8, mask: u8, text: &str) {
    let _ = writeln!(out, "  {} = {text}", bit_picture(byte, mask));
}

/// `byte` drawn as in a dissector: the bits under `mask` as digits, the others as dots.
fn bit_picture(byte: u8, mask: u8) -> String {
    let mut s = String::with_capacity(9);
    for i in (0..8).rev() {
        if i == 3 {
            s.push(' ');
        }
        s.push(match (mask >> i & 1, byte >> i & 1) {
            (0, _) => '.',
            (_, 1) => '1',
            _ => '0',
        });
    }
    s
}

fn first_byte(header: &FrameHeader) -> u8 {
    u8::from(header.fin) << 7
        | u8::from(header.rsv1) << 6
        | u8::from(header.rsv2) << 5
        | u8::from(header.rsv3) << 4
        | header.opcode.bits()
}

fn second_byte(header: &FrameHeader) -> u8 {
    let len7 = match header.length_form() {
        LengthForm::Short => header.payload_len as u8,
        LengthForm::Extended16 => 126,
        LengthForm::Extended64 => 127,
    };
    u8::from(header.mask.is_some()) << 7 | len7
}

/// Bytes as two-digit hex numbers separated by spaces.
pub fn hex_bytes(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// 16 bytes a row with the offset in front, and the printable ASCII beside when `ascii`.
fn hex_dump(out: &mut String, bytes: &[u8], ascii: bool) {
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let mut line = format!("    {:04x}  ", row * 16);
        for (i, b) in chunk.iter().enumerate() {
            let sep = if i == 8 {
                "  "
            } else if i > 0 {
                " "
            } else {
                ""
            };
            let _ = write!(line, "{sep}{b:02x}");
        }
        if ascii {
            let pad = (16 - chunk.len()) * 3 + usize::from(chunk.len() <= 8);
            line.push_str(&" ".repeat(pad + 2));
            line.extend(chunk.iter().map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            }));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_pictures() {
        assert_eq!(bit_picture(0x81, 0x80), "1... ....");
        assert_eq!(bit_picture(0x81, 0x0f), ".... 0001");
        assert_eq!(bit_picture(0xb9, 0x7f), ".011 1001");
    }

    #[test]
    fn length_forms_are_named() {
        let mut wire = Vec::new();
        FrameHeader::new(OpCode::Binary, 256).encode(&mut wire);
        wire.extend(std::iter::repeat_n(0u8, 256));
        let text = dissect_bytes(&wire);
        assert!(text.contains(".111 1110 = Payload length: 126 (a 16-bit length follows)"));
        assert!(text.contains("Extended payload length (16 bits): 256 (126-65535)"));
        assert!(text.contains("    00f0  00 00"), "{text}");
    }

    #[test]
    fn close_codes_are_named() {
        let text = dissect_bytes(&[0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']);
        assert!(text.contains("Close code: 1000 (normal closure)"), "{text}");
        assert!(text.contains("Close reason: \"bye\""), "{text}");
        let text = dissect_bytes(&[0x88, 0x02, 0x03, 0xed]);
        assert!(
            text.contains("Close code: 1005 (no status received, not allowed in a close frame)"),
            "{text}"
        );
    }

    #[test]
    fn truncated_input_is_reported() {
        assert_eq!(
            dissect_bytes(&[0x81]),
            "Incomplete frame header: 1 bytes (81)\n"
        );
        let text = dissect_bytes(&[0x81, 0x05, b'H', b'e']);
        assert!(
            text.ends_with("  Incomplete: 2 of 5 payload bytes present\n"),
            "{text}"
        );
    }

    #[test]
    fn binary_hex_dump_has_ascii_column() {
        let text = dissect_bytes(&[0x82, 0x03, b'a', 0x00, b'z']);
        assert!(text.contains("    0000  61 00 7a"), "{text}");
        assert!(text.ends_with("a.z\n"), "{text}");
    }

    #[test]
    fn continuations_are_shown_as_their_message() {
        let mut wire = vec![0x01, 0x03, b'H', b'e', b'l'];
        wire.extend([0x89, 0x00]); // a ping in between changes nothing
        wire.extend([0x80, 0x02, b'l', b'o']);
        wire.extend([0x80, 0x01, b'!']); // nothing left to continue
        let text = dissect_bytes(&wire);
        assert!(text.contains("Continuation (continues a fragmented Text message)\n"));
        assert!(text.contains("Payload as text:\n    lo\n"), "{text}");
        assert!(text.contains("(invalid: there is no fragmented message to continue)"));
        // A compressed message's continuation has RSV1 clear but is compressed all the same.
        let text = dissect_bytes(&[0x41, 0x02, b'a', b'b', 0x80, 0x02, b'c', b'd']);
        assert!(text.ends_with("  Payload compressed, in hex:\n    0000  63 64                                             cd\n"), "{text}");
    }

    #[test]
    fn compressed_payloads_are_shown_raw() {
        // RFC 7692 §7.2.3.1: "Hello" compressed, in one frame with RSV1 set.
        let text = dissect_bytes(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        assert!(
            text.contains(".1.. .... = RSV1: 1 (compressed, under permessage-deflate)"),
            "{text}"
        );
        assert!(text.contains("  Payload compressed, in hex:\n    0000  f2 48 cd c9 c9 07 00"));
    }

    #[test]
    fn reserved_opcodes_and_reserved_bits_are_flagged() {
        let text = dissect_bytes(&[0x93, 0x00]);
        assert!(text.contains("...1 .... = RSV3: 1"), "{text}");
        assert!(
            text.contains(".... 0011 = Opcode: 0x3 Reserved (reserved: the receiver must fail"),
            "{text}"
        );
        assert!(text.contains("  Payload: empty\n"), "{text}");
    }

    #[test]
    fn long_payloads_are_cut_for_display() {
        let mut wire = Vec::new();
        let payload = "x".repeat(70_000);
        crate::proto::frame::encode_frame(
            &FrameHeader::new(OpCode::Text, 70_000),
            payload.as_bytes(),
            &mut wire,
        );
        let text = dissect_bytes(&wire);
        assert!(text.contains("Extended payload length (64 bits): 70000 (over 65535)"));
        assert!(
            text.contains("Payload as text, first 512 of 70000 bytes:"),
            "{text}"
        );
    }

    #[test]
    fn summary_names_close_codes() {
        let header = FrameHeader::new(OpCode::Close, 5);
        assert_eq!(
            summary(Direction::Sent, &header, &[0x03, 0xe9, b'b', b'y', b'e']),
            "sent Close fin len=5 code=1001 (going away) \"bye\""
        );
    }
}
