//! Folder names in modified UTF-7 (RFC 3501 §5.1.3), the form IMAP servers
//! list and commands take them in; the CRM and its admins see UTF-8.
//! Exchange's German folders are the everyday case: `Entwürfe` is
//! `Entw&APw-rfe` on the wire, `Gelöschte Elemente` is
//! `Gel&APY-schte Elemente`. Names are decoded once when listed and
//! encoded at every command that names a folder (SELECT, APPEND, COPY,
//! MOVE), so settings, properties and errors carry the readable name.
//!
//! The encoding: printable ASCII but `&` stands for itself, `&` is `&-`,
//! and every other run of characters is `&`, their UTF-16BE code units in
//! base64 with `,` for `/` and no padding, then `-`.

use base64::alphabet::Alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// RFC 3501's "modified BASE64": `,` instead of `/`, no padding.
fn engine() -> Option<GeneralPurpose> {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").ok()?;
    let config = GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone);
    Some(GeneralPurpose::new(&alphabet, config))
}

fn direct(c: char) -> bool {
    (' '..='~').contains(&c) && c != '&'
}

/// The wire form of a folder name.
pub fn encode(name: &str) -> String {
    let Some(b64) = engine() else {
        return name.to_string();
    };
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if !run.is_empty() {
            let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&b64.encode(bytes));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if direct(c) {
            flush(&mut run, &mut out);
            out.push(c);
        } else if c == '&' {
            flush(&mut run, &mut out);
            out.push_str("&-");
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The readable form of a listed name; None when it is not valid
/// modified UTF-7, or not in the one form [`encode`] gives back (then the
/// name is used as the server sent it, so commands still find it).
pub fn decode(wire: &str) -> Option<String> {
    let b64 = engine()?;
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find('-')?;
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let bytes = b64.decode(chunk).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (encode(&out) == wire).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_names_and_rfc_examples_round_trip() {
        for (text, wire) in [
            ("Entwürfe", "Entw&APw-rfe"),
            ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
            ("Gesendete Elemente", "Gesendete Elemente"),
            ("A & B", "A &- B"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("INBOX.Trash", "INBOX.Trash"),
            ("📎", "&2D3czg-"),
        ] {
            assert_eq!(encode(text), wire, "{text}");
            assert_eq!(decode(wire).as_deref(), Some(text), "{wire}");
        }
    }

    #[test]
    fn broken_or_odd_wire_names_are_not_decoded() {
        for wire in ["Entw&APw", "&Jjo!-", "&AGE-", "&ZeVnLIqe", "a&-&-b&"] {
            assert_eq!(decode(wire), None, "{wire}");
        }
    }
}
