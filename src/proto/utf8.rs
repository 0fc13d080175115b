//! Incremental UTF-8 validation that fails as soon as the bytes seen so far cannot begin valid text.
//!
//! RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte
//! stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
//! Connection_." A text message may arrive in many frames and each frame in many reads; a character
//! may be cut anywhere. This validator is fed every piece as it arrives, so an impossible byte is
//! caught in the read that brings it, not when the message ends (Autobahn 6.4.x).

/// Validation state carried between pieces: the start of a character cut at a piece's end.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: usize,
}

/// The bytes can never become valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Checks the next piece. Fails if any byte so far is impossible in UTF-8; a character cut at the
    /// end of `piece` is remembered and completed by the next call.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            piece = self.complete_pending(piece)?;
            if self.pending_len > 0 {
                return Ok(());
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) => match e.error_len() {
                // std checks each byte against the ranges of RFC 3629 as it goes, so `None`
                // means "valid so far, cut short": keep the tail for the next piece.
                None => {
                    let tail = &piece[e.valid_up_to()..];
                    self.pending[..tail.len()].copy_from_slice(tail);
                    self.pending_len = tail.len();
                    Ok(())
                }
                Some(_) => Err(InvalidUtf8),
            },
        }
    }

    /// Whether the bytes so far end on a character boundary: then an all-ASCII piece is valid as
    /// it stands and need not be fed.
    pub fn at_char_boundary(&self) -> bool {
        self.pending_len == 0
    }

    /// Checks that the message ended on a character boundary, and resets for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let cut = self.pending_len > 0;
        self.pending_len = 0;
        if cut { Err(InvalidUtf8) } else { Ok(()) }
    }

    /// Moves bytes from `piece` into the pending character until it is whole or `piece` is empty;
    /// returns the rest of `piece`.
    fn complete_pending<'a>(&mut self, piece: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let mut rest = piece;
        while let Some((&byte, tail)) = rest.split_first() {
            self.pending[self.pending_len] = byte;
            self.pending_len += 1;
            rest = tail;
            match std::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(_) => {
                    self.pending_len = 0;
                    return Ok(rest);
                }
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) if self.pending_len == 4 => return Err(InvalidUtf8),
                Err(_) => {}
            }
        }
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_in_pieces(bytes: &[u8], cut: usize) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for piece in bytes.chunks(cut.max(1)) {
            v.feed(piece)?;
        }
        v.finish()
    }

    #[test]
    fn agrees_with_std_for_every_cut() {
        let samples: [&[u8]; 8] = [
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "𝄞 music".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"abc\xe2\x82",
            b"\xef\xbf\xbf",
        ];
        for bytes in samples {
            let expected = std::str::from_utf8(bytes).is_ok();
            for cut in 1..=bytes.len() {
                assert_eq!(
                    check_in_pieces(bytes, cut).is_ok(),
                    expected,
                    "{bytes:?} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // Autobahn 6.4.1: valid text, then 0xF4 0x90 (above U+10FFFF) — wrong already at 0x90.
        let mut v = Utf8Validator::new();
        v.feed("κόσμε".as_bytes()).unwrap();
        v.feed(&[0xf4]).unwrap();
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn surrogates_fail_on_their_second_byte() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xed]).unwrap();
        assert_eq!(v.feed(&[0xa0]), Err(InvalidUtf8));
    }

    #[test]
    fn a_message_cut_inside_a_character_is_invalid() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xe2, 0x82]).unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // ...and the validator is ready for the next message.
        v.feed(b"ok").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }
}
