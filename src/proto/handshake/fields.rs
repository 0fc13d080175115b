//! HTTP header fields (RFC 9110 §5): the table of a head's fields and the grammar every field
//! this side sends must follow.

use crate::proto::error::HandshakeError;
use std::fmt::Write as _;

/// HTTP header fields in arrival order, looked up case-insensitively (RFC 7230 §3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No fields.
    pub(crate) const EMPTY: Headers = Headers(Vec::new());

    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a field.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any `name` field lists `token` in its comma-separated value (case-insensitive),
    /// as `Connection: keep-alive, Upgrade` lists `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// All fields as (name, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn from_httparse(headers: &[httparse::Header<'_>]) -> Headers {
        Headers(
            headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        )
    }

    /// Checks every field against RFC 9110's grammar: the name a token (§5.1), the value a
    /// field-value (§5.5), so no CR, LF or NUL can split the head into extra lines.
    ///
    /// Errors: [`HandshakeError::InvalidField`] naming the first bad field.
    pub fn validate(&self) -> Result<(), HandshakeError> {
        self.0
            .iter()
            .try_for_each(|(name, value)| check_field(name, value))
    }

    /// Writes the fields as header lines. A field that fails [`Headers::validate`] is left out:
    /// the callers in this crate validate first and report it; this only keeps a forgotten check
    /// from ever putting a caller's CR/LF on the wire.
    pub(super) fn write_to(&self, out: &mut String) {
        for (name, value) in &self.0 {
            if check_field(name, value).is_ok() {
                let _ = write!(out, "{name}: {value}\r\n");
            }
        }
    }
}

/// Whether `s` is an RFC 9110 §5.6.2 token: one or more `tchar`s. Header names and
/// subprotocol names (RFC 6455 §4.1) are tokens.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` is an RFC 9110 §5.5 field-value: visible characters (and obs-text, bytes from
/// 0x80) with spaces or tabs between them but not around them; no CR, LF, NUL or other control.
pub fn is_field_value(s: &str) -> bool {
    let visible = |b: u8| b > 0x20 && b != 0x7f;
    let bytes = s.as_bytes();
    let edges_ok = match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => visible(first) && visible(last),
        _ => true,
    };
    edges_ok && bytes.iter().all(|&b| visible(b) || b == b' ' || b == b'\t')
}

/// One field against the grammar; the error names the field but never echoes its value, which
/// may be a secret.
pub(super) fn check_field(name: &str, value: &str) -> Result<(), HandshakeError> {
    if !is_token(name) {
        return Err(HandshakeError::InvalidField(format!(
            "header name {name:?} is not an RFC 9110 token"
        )));
    }
    if !is_field_value(value) {
        return Err(HandshakeError::InvalidField(format!(
            "value of header {name} has a control character (CR, LF, NUL...) or surrounding whitespace"
        )));
    }
    Ok(())
}

/// Checks subprotocol names: each must be a token (RFC 6455 §4.1).
pub fn check_subprotocols<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), HandshakeError> {
    for name in names {
        if !is_token(name) {
            return Err(HandshakeError::InvalidField(format!(
                "subprotocol {name:?} is not an RFC 9110 token"
            )));
        }
    }
    Ok(())
}
