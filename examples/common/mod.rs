//! Text helpers shared by the room examples (`room_server.rs`, `chat/`), included with
//! `#[path]`: JSON string literals and URL decoding.
#![allow(dead_code)]

/// `text` as a JSON string literal (RFC 8259 §7: quote, backslash and control characters
/// escaped).
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Decodes `%XX` escapes (a path segment); anything else, an invalid escape included, stays.
pub fn percent_decode(s: &str) -> String {
    decode(s, false)
}

/// Decodes `%XX` escapes and `+` as a space (a query value, as forms and the chat page's
/// `encodeURIComponent` produce).
pub fn query_decode(s: &str) -> String {
    decode(s, true)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(match bytes[i] {
            b'+' if plus_is_space => b' ',
            b => b,
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
