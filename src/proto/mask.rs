//! Masking (RFC 6455 §5.3): every byte of a client's payload is XORed with one of the four key bytes,
//! `transformed[i] = original[i] ^ key[i % 4]`. Masking is its own inverse.
//!
//! The loop works on 8-byte words in safe Rust, which the compiler turns into vector
//! instructions.

/// XORs `buf` with `key` in place, as if `buf` began `offset` bytes into the payload.
///
/// The offset lets a payload that arrives in pieces be unmasked piece by piece.
///
/// ```
/// // RFC 6455 §5.7: "Hello" masked with the key 37 fa 21 3d.
/// let mut data = *b"Hello";
/// syncws::proto::mask::apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    mask_in_place::<false>(buf, key, offset);
}

/// [`apply_mask`], also telling whether every unmasked byte is ASCII: a text payload that is can
/// skip UTF-8 validation, so the bytes are looked at once for both.
pub(crate) fn apply_mask_ascii(buf: &mut [u8], key: [u8; 4], offset: usize) -> bool {
    mask_in_place::<true>(buf, key, offset) & 0x80 == 0
}

/// Masks in place; with `OR_ALL`, returns every output byte ORed together (0 otherwise).
fn mask_in_place<const OR_ALL: bool>(buf: &mut [u8], key: [u8; 4], offset: usize) -> u8 {
    let key = rotate_key(key, offset);
    // 32-byte blocks XORed element by element: the compiler turns each block into one or two
    // vector instructions. Every block starts at a multiple of 4, so the key stays in phase.
    let block: [u8; 32] = std::array::from_fn(|i| key[i & 3]);
    // The OR is kept per lane, so it stays in a vector register too.
    let mut or_block = [0u8; 32];
    let mut blocks = buf.chunks_exact_mut(32);
    for chunk in &mut blocks {
        for ((byte, k), or) in chunk.iter_mut().zip(block).zip(or_block.iter_mut()) {
            *byte ^= k;
            if OR_ALL {
                *or |= *byte;
            }
        }
    }
    let mut or_all = or_block.iter().fold(0, |acc, b| acc | b);
    let tail = blocks.into_remainder();
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = tail.chunks_exact_mut(8);
    for chunk in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let unmasked = (u64::from_ne_bytes(bytes) ^ word).to_ne_bytes();
        chunk.copy_from_slice(&unmasked);
        if OR_ALL {
            or_all |= unmasked.iter().fold(0, |acc, b| acc | b);
        }
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
        if OR_ALL {
            or_all |= *byte;
        }
    }
    or_all
}

/// Copies `src` to the end of `dst` and masks it there.
pub(crate) fn extend_masked(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4]) {
    let start = dst.len();
    dst.extend_from_slice(src);
    apply_mask(&mut dst[start..], key, 0);
}

/// The key as seen from `offset` bytes into the payload: byte `i` becomes `key[(i + offset) % 4]`.
/// (A shift of the little-endian word; `<[u8]>::rotate_left` is a general, slower routine.)
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    u32::from_le_bytes(key)
        .rotate_right(8 * (offset & 3) as u32)
        .to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_the_definition_for_every_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..140 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn ascii_report_is_exact_wherever_the_high_bit_is() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 1..100 {
            let plain = vec![b'a'; len];
            for offset in 0..4 {
                let mut masked = plain.clone();
                apply_mask(&mut masked, key, offset);
                assert!(apply_mask_ascii(&mut masked, key, offset), "len {len}");
                assert_eq!(masked, plain);
                // One non-ASCII byte anywhere, in the vector part or the tails, is seen.
                for at in 0..len {
                    let mut text = plain.clone();
                    text[at] = 0xc3;
                    apply_mask(&mut text, key, offset);
                    assert!(
                        !apply_mask_ascii(&mut text, key, offset),
                        "len {len} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn pieces_with_offsets_equal_one_pass() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let (a, rest) = pieces.split_at_mut(7);
        let (b, c) = rest.split_at_mut(13);
        apply_mask(a, key, 0);
        apply_mask(b, key, 7);
        apply_mask(c, key, 20);
        assert_eq!(pieces, whole);
    }

    #[test]
    fn masking_twice_restores() {
        let mut data = b"round trip".to_vec();
        apply_mask(&mut data, [9, 8, 7, 6], 3);
        apply_mask(&mut data, [9, 8, 7, 6], 3);
        assert_eq!(data, b"round trip");
    }
}
