//! The frame header (RFC 6455 §5.2) and its three payload-length forms.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use super::mask::{apply_mask, extend_masked};
use crate::proto::error::ProtocolError;

/// The longest header: 2 bytes, 8 of extended length, 4 of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: a UTF-8 text message (or its first fragment).
    Text,
    /// 0x2: a binary message (or its first fragment).
    Binary,
    /// 0x8: the closing handshake.
    Close,
    /// 0x9: a ping; the peer answers with a pong.
    Ping,
    /// 0xA: a pong, an answer to a ping or an unsolicited heartbeat.
    Pong,
    /// 0x3–0x7 and 0xB–0xF: reserved for future use; receiving one fails the connection.
    Reserved(u8),
}

impl OpCode {
    /// The opcode of the low four bits of `byte`.
    pub fn from_bits(byte: u8) -> OpCode {
        match byte & 0x0f {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xa => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }

    /// The four-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
            OpCode::Reserved(bits) => bits & 0x0f,
        }
    }

    /// Close, ping and pong: opcodes with the high bit set (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x08 != 0
    }

    /// The name used in RFC 6455 and in packet dissectors.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Continuation => "Continuation",
            OpCode::Text => "Text",
            OpCode::Binary => "Binary",
            OpCode::Close => "Close",
            OpCode::Ping => "Ping",
            OpCode::Pong => "Pong",
            OpCode::Reserved(_) => "Reserved",
        }
    }
}

/// Everything in a frame before its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1; permessage-deflate (RFC 7692) uses it to mark a compressed message.
    pub rsv1: bool,
    /// RSV2, unused by any registered extension.
    pub rsv2: bool,
    /// RSV3, unused by any registered extension.
    pub rsv3: bool,
    /// What the payload is.
    pub opcode: OpCode,
    /// The masking key: every client-to-server frame has one, no server-to-client frame does.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

/// Which of the three length encodings (RFC 6455 §5.2) a header uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthForm {
    /// 0–125: the length sits in the 7-bit field.
    Short,
    /// 126–65535: the 7-bit field holds 126 and the next 2 bytes the length.
    Extended16,
    /// Above 65535: the 7-bit field holds 127 and the next 8 bytes the length.
    Extended64,
}

/// The result of decoding from a buffer that may hold only part of what is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<T> {
    /// Decoded; the second field counts the bytes consumed.
    Complete(T, usize),
    /// More bytes are needed; nothing was consumed.
    Partial,
}

impl FrameHeader {
    /// A header for a final, unmasked frame with no reserved bits set.
    pub fn new(opcode: OpCode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Decodes a header from the start of `buf`.
    ///
    /// Short input is `Partial`, never an error. The only error is a 64-bit length with its most
    /// significant bit set, which RFC 6455 §5.2 forbids.
    ///
    /// ```
    /// use syncws::proto::frame::{Decoded, FrameHeader, OpCode};
    /// // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
    /// let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    /// let Decoded::Complete(header, used) = FrameHeader::decode(&bytes)? else { panic!() };
    /// assert_eq!((header.fin, header.opcode, header.payload_len, used), (true, OpCode::Text, 5, 2));
    /// # Ok::<(), syncws::proto::error::ProtocolError>(())
    /// ```
    pub fn decode(buf: &[u8]) -> Result<Decoded<FrameHeader>, ProtocolError> {
        let [first, second, ..] = *buf else {
            return Ok(Decoded::Partial);
        };
        let masked = second & 0x80 != 0;
        let (len_bytes, short_len) = match second & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
        if buf.len() < header_len {
            return Ok(Decoded::Partial);
        }
        let payload_len = match short_len {
            Some(n) => n,
            None => {
                let mut be = [0u8; 8];
                be[8 - len_bytes..].copy_from_slice(&buf[2..2 + len_bytes]);
                u64::from_be_bytes(be)
            }
        };
        // RFC 6455 §5.2: "the most significant bit MUST be 0" in the 64-bit length.
        if payload_len >> 63 != 0 {
            return Err(ProtocolError::InvalidLength);
        }
        let mask = masked.then(|| {
            let k = &buf[header_len - 4..header_len];
            [k[0], k[1], k[2], k[3]]
        });
        let header = FrameHeader {
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2: first & 0x20 != 0,
            rsv3: first & 0x10 != 0,
            opcode: OpCode::from_bits(first),
            mask,
            payload_len,
        };
        Ok(Decoded::Complete(header, header_len))
    }

    /// The length encoding this header's payload length requires.
    pub fn length_form(&self) -> LengthForm {
        match self.payload_len {
            0..=125 => LengthForm::Short,
            126..=0xffff => LengthForm::Extended16,
            _ => LengthForm::Extended64,
        }
    }

    /// How many bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let len = match self.length_form() {
            LengthForm::Short => 2,
            LengthForm::Extended16 => 4,
            LengthForm::Extended64 => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header's wire form to `out`, always in the shortest length form
    /// (RFC 6455 §5.2: "the minimal number of bytes MUST be used").
    ///
    /// ```
    /// use syncws::proto::frame::{FrameHeader, OpCode};
    /// // RFC 6455 §5.7: a 256-byte binary message in a single unmasked frame.
    /// let mut out = Vec::new();
    /// FrameHeader::new(OpCode::Binary, 256).encode(&mut out);
    /// assert_eq!(out, [0x82, 0x7e, 0x01, 0x00]);
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        let first = u8::from(self.fin) << 7
            | u8::from(self.rsv1) << 6
            | u8::from(self.rsv2) << 5
            | u8::from(self.rsv3) << 4
            | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.push(first);
        match self.length_form() {
            LengthForm::Short => out.push(mask_bit | self.payload_len as u8),
            LengthForm::Extended16 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(self.payload_len as u16).to_be_bytes());
            }
            LengthForm::Extended64 => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&self.payload_len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// Appends a whole frame, header and payload, to `out`, masking the payload if the header has a key.
///
/// ```
/// use syncws::proto::frame::{encode_frame, FrameHeader, OpCode};
/// // RFC 6455 §5.7: a single-frame masked text message "Hello".
/// let mut header = FrameHeader::new(OpCode::Text, 5);
/// header.mask = Some([0x37, 0xfa, 0x21, 0x3d]);
/// let mut out = Vec::new();
/// encode_frame(&header, b"Hello", &mut out);
/// assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
pub fn encode_frame(header: &FrameHeader, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert_eq!(header.payload_len, payload.len() as u64);
    out.reserve(header.encoded_len() + payload.len());
    header.encode(out);
    match header.mask {
        Some(key) => extend_masked(out, payload, key),
        None => out.extend_from_slice(payload),
    }
}

/// A whole frame held in memory, for tools and tests; the connection itself never holds one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// The header as it was on the wire.
    pub header: FrameHeader,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A final, unmasked frame (as a server sends it) carrying `payload`.
    ///
    /// ```
    /// use syncws::proto::frame::{Frame, OpCode};
    /// // RFC 6455 §5.7: a fragmented unmasked text message, "Hel" then "lo".
    /// let first = Frame::new(OpCode::Text, "Hel").fin(false);
    /// let last = Frame::new(OpCode::Continuation, "lo");
    /// assert_eq!(first.to_bytes(), [0x01, 0x03, 0x48, 0x65, 0x6c]);
    /// assert_eq!(last.to_bytes(), [0x80, 0x02, 0x6c, 0x6f]);
    /// ```
    pub fn new(opcode: OpCode, payload: impl Into<Vec<u8>>) -> Frame {
        let payload = payload.into();
        Frame {
            header: FrameHeader::new(opcode, payload.len() as u64),
            payload,
        }
    }

    /// Sets FIN: `false` means more fragments of the message follow (RFC 6455 §5.4).
    pub fn fin(mut self, fin: bool) -> Frame {
        self.header.fin = fin;
        self
    }

    /// Masks the frame with `key` when it is encoded, as a client must (RFC 6455 §5.3).
    ///
    /// ```
    /// use syncws::proto::frame::{Frame, OpCode};
    /// // RFC 6455 §5.7: a masked pong with the body "Hello".
    /// let pong = Frame::new(OpCode::Pong, "Hello").masked([0x37, 0xfa, 0x21, 0x3d]);
    /// assert_eq!(
    ///     pong.to_bytes(),
    ///     [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    /// );
    /// ```
    pub fn masked(mut self, key: [u8; 4]) -> Frame {
        self.header.mask = Some(key);
        self
    }

    /// The frame's wire form: header, then the payload (masked if the header has a key).
    ///
    /// ```
    /// use syncws::proto::frame::{Frame, OpCode};
    /// // RFC 6455 §5.7: a 64 KiB binary message in one unmasked frame takes the 64-bit length.
    /// let bytes = Frame::new(OpCode::Binary, vec![0u8; 65536]).to_bytes();
    /// assert_eq!(bytes[..10], [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]);
    /// assert_eq!(bytes.len(), 10 + 65536);
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one whole frame from the start of `buf`, unmasking its payload.
    ///
    /// `max_payload` bounds what a header may announce before anything is allocated.
    ///
    /// ```
    /// use syncws::proto::frame::{Decoded, Frame, OpCode};
    /// // RFC 6455 §5.7: an unmasked ping with the body "Hello".
    /// let bytes = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    /// let Decoded::Complete(frame, _) = Frame::decode(&bytes, 125)? else { panic!() };
    /// assert_eq!((frame.header.opcode, &frame.payload[..]), (OpCode::Ping, &b"Hello"[..]));
    /// # Ok::<(), syncws::proto::error::ProtocolError>(())
    /// ```
    pub fn decode(buf: &[u8], max_payload: u64) -> Result<Decoded<Frame>, ProtocolError> {
        let Decoded::Complete(header, header_len) = FrameHeader::decode(buf)? else {
            return Ok(Decoded::Partial);
        };
        if header.payload_len > max_payload {
            return Err(ProtocolError::FrameTooLarge);
        }
        let total = header_len as u64 + header.payload_len;
        if (buf.len() as u64) < total {
            return Ok(Decoded::Partial);
        }
        let mut payload = buf[header_len..total as usize].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Ok(Decoded::Complete(Frame { header, payload }, total as usize))
    }

    /// Appends the frame's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_frame(&self.header, &self.payload, out);
    }
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §5.7 examples, byte for byte.
    use super::*;

    fn decode_all(bytes: &[u8]) -> Frame {
        match Frame::decode(bytes, u64::MAX >> 1).unwrap() {
            Decoded::Complete(frame, used) => {
                assert_eq!(used, bytes.len());
                frame
            }
            Decoded::Partial => panic!("partial"),
        }
    }

    #[test]
    fn unmasked_hello() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let frame = decode_all(&bytes);
        assert_eq!(frame.header, FrameHeader::new(OpCode::Text, 5));
        assert_eq!(frame.payload, b"Hello");
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn masked_hello() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let frame = decode_all(&bytes);
        assert_eq!(frame.header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(frame.payload, b"Hello");
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn fragmented_hel_lo() {
        let first = decode_all(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert_eq!(
            (first.header.fin, first.header.opcode),
            (false, OpCode::Text)
        );
        assert_eq!(first.payload, b"Hel");
        let second = decode_all(&[0x80, 0x02, 0x6c, 0x6f]);
        assert_eq!(
            (second.header.fin, second.header.opcode),
            (true, OpCode::Continuation)
        );
        assert_eq!(second.payload, b"lo");
    }

    #[test]
    fn ping_and_masked_pong() {
        let ping = decode_all(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            (ping.header.opcode, &ping.payload[..]),
            (OpCode::Ping, &b"Hello"[..])
        );
        let pong = decode_all(&[
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert_eq!(
            (pong.header.opcode, &pong.payload[..]),
            (OpCode::Pong, &b"Hello"[..])
        );
    }

    #[test]
    fn binary_256_uses_16_bit_length() {
        let mut out = Vec::new();
        FrameHeader::new(OpCode::Binary, 256).encode(&mut out);
        assert_eq!(out, [0x82, 0x7e, 0x01, 0x00]);
        let mut bytes = out.clone();
        bytes.extend(std::iter::repeat_n(0xab, 256));
        assert_eq!(decode_all(&bytes).payload.len(), 256);
    }

    #[test]
    fn binary_65536_uses_64_bit_length() {
        let mut out = Vec::new();
        FrameHeader::new(OpCode::Binary, 65536).encode(&mut out);
        assert_eq!(
            out,
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        let header = FrameHeader::new(OpCode::Binary, 65536);
        assert_eq!(header.length_form(), LengthForm::Extended64);
        assert_eq!(header.encoded_len(), 10);
    }

    #[test]
    fn length_form_boundaries() {
        for (len, form, bytes) in [
            (125, LengthForm::Short, 2),
            (126, LengthForm::Extended16, 4),
            (65535, LengthForm::Extended16, 4),
            (65536, LengthForm::Extended64, 10),
        ] {
            let header = FrameHeader::new(OpCode::Binary, len);
            assert_eq!(header.length_form(), form);
            let mut out = Vec::new();
            header.encode(&mut out);
            assert_eq!(out.len(), bytes);
            assert_eq!(
                FrameHeader::decode(&out).unwrap(),
                Decoded::Complete(header, bytes)
            );
        }
    }

    #[test]
    fn short_input_is_partial_never_error() {
        let mut out = Vec::new();
        let mut header = FrameHeader::new(OpCode::Binary, 70000);
        header.mask = Some([1, 2, 3, 4]);
        header.encode(&mut out);
        for cut in 0..out.len() {
            assert_eq!(FrameHeader::decode(&out[..cut]).unwrap(), Decoded::Partial);
        }
    }

    #[test]
    fn length_with_top_bit_set_is_rejected() {
        let bytes = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::decode(&bytes),
            Err(ProtocolError::InvalidLength)
        );
    }

    #[test]
    fn a_huge_announced_frame_is_refused_before_allocating() {
        let bytes = [0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Frame::decode(&bytes, 1 << 20),
            Err(ProtocolError::FrameTooLarge)
        );
    }
}
