//! Tables and JSON for postfachctl.
//!
//! Tables are for people: aligned columns, booleans as yes/no, timestamps as
//! UTC dates. `--json` is for scripts: values keep their D-Bus types
//! (numbers stay numbers, timestamps stay Unix seconds).

use std::collections::HashMap;

use serde_json::{Map, Value as Json};
use zbus::{OwnedVariant, Variant};

/// The Account properties in the order of ARCHITECTURE.md "The D-Bus API"; `show` prints these
/// first and any newer ones after them, sorted.
pub const ACCOUNT_PROPERTIES: &[&str] = &[
    "Id",
    "Tenant",
    "Name",
    "Address",
    "Kind",
    "Host",
    "Port",
    "Encryption",
    "Username",
    "PrivateOwner",
    "DeleteOnServer",
    "PollInterval",
    "SmtpHost",
    "SmtpPort",
    "SmtpEncryption",
    "SmtpLogin",
    "SmtpUsername",
    "DraftsFolder",
    "TrashFolder",
    "SentFolder",
    "SaveSentCopy",
    "Folders",
    "FoldersSyncedAt",
    "State",
    "LastError",
    "LastFetchAt",
    "Progress",
    "HasPassword",
    "Authorized",
    "RestoreReset",
];

/// Properties in display order: the known ones first, then the rest sorted.
pub fn ordered(props: &HashMap<String, OwnedVariant>) -> Vec<(&str, &Variant<'static>)> {
    let mut out: Vec<(&str, &Variant<'static>)> = ACCOUNT_PROPERTIES
        .iter()
        .filter_map(|k| props.get_key_value(*k))
        .map(|(k, v)| (k.as_str(), &**v))
        .collect();
    let mut rest: Vec<_> = props
        .iter()
        .filter(|(k, _)| !ACCOUNT_PROPERTIES.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), &**v))
        .collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    out.extend(rest);
    out
}

/// A value as a person reads it. `name` picks the format of timestamps
/// (`…At` properties: 0 = never).
pub fn text(name: &str, v: &Variant<'_>) -> String {
    match v {
        Variant::Str(s) => s.to_string(),
        Variant::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Variant::U64(t) if name.ends_with("At") => utc(*t),
        Variant::U8(n) => n.to_string(),
        Variant::I16(n) => n.to_string(),
        Variant::U16(n) => n.to_string(),
        Variant::I32(n) => n.to_string(),
        Variant::U32(n) => n.to_string(),
        Variant::I64(n) => n.to_string(),
        Variant::U64(n) => n.to_string(),
        Variant::F64(n) => n.to_string(),
        Variant::ObjectPath(p) => p.to_string(),
        Variant::Signature(s) => s.to_string(),
        Variant::Variant(inner) => text(name, inner),
        Variant::Array(a) => a.iter().map(|e| text("", e)).collect::<Vec<_>>().join(", "),
        Variant::Structure(s) if name == "Progress" && s.fields().len() == 2 => {
            format!("{}/{}", text("", &s.fields()[0]), text("", &s.fields()[1]))
        }
        Variant::Structure(s) => {
            let f: Vec<String> = s.fields().iter().map(|e| text("", e)).collect();
            format!("({})", f.join(", "))
        }
        Variant::Dict(d) => d
            .iter()
            .map(|(k, v)| format!("{}={}", text("", k), text("", v)))
            .collect::<Vec<_>>()
            .join(", "),
        #[cfg(unix)]
        Variant::Fd(_) => "<fd>".to_string(),
    }
}

/// A value with its D-Bus type kept as far as JSON can.
pub fn json(v: &Variant<'_>) -> Json {
    match v {
        Variant::Str(s) => Json::from(s.as_str()),
        Variant::Bool(b) => Json::from(*b),
        Variant::U8(n) => Json::from(*n),
        Variant::I16(n) => Json::from(*n),
        Variant::U16(n) => Json::from(*n),
        Variant::I32(n) => Json::from(*n),
        Variant::U32(n) => Json::from(*n),
        Variant::I64(n) => Json::from(*n),
        Variant::U64(n) => Json::from(*n),
        Variant::F64(n) => Json::from(*n),
        Variant::ObjectPath(p) => Json::from(p.as_str()),
        Variant::Signature(s) => Json::from(s.to_string()),
        Variant::Variant(inner) => json(inner),
        Variant::Array(a) => Json::Array(a.iter().map(json).collect()),
        Variant::Structure(s) => Json::Array(s.fields().iter().map(json).collect()),
        Variant::Dict(d) => Json::Object(
            d.iter()
                .map(|(k, v)| (text("", k), json(v)))
                .collect::<Map<String, Json>>(),
        ),
        #[cfg(unix)]
        Variant::Fd(_) => Json::Null,
    }
}

/// All properties as one JSON object.
pub fn json_object(props: &HashMap<String, OwnedVariant>) -> Json {
    Json::Object(props.iter().map(|(k, v)| (k.clone(), json(v))).collect())
}

/// An aligned table: two spaces between columns, the last column unpadded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let all: Vec<Vec<String>> = std::iter::once(header_row)
        .chain(rows.iter().cloned())
        .collect();
    align(&all, &[])
}

/// Rows as aligned columns, two spaces apart; the columns in `right` are
/// right-aligned (numbers), the last column is never padded.
pub fn align(rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let n = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            if right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i < last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if i < last {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// At most `max` characters: longer text is cut and ends in `…`, so the
/// reader sees that something is missing.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` without control characters (tabs become spaces, other controls
/// `�`), for one table cell or header line: text from a mail must not move
/// the cursor, ring, or send escape sequences to the admin's terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`; 0 means "never".
pub fn utc(secs: u64) -> String {
    if secs == 0 {
        return "never".to_string();
    }
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["ID", "NAME", "STATE"],
            &[
                vec!["a1".into(), "Vertrieb".into(), "idle".into()],
                vec!["b22".into(), "X".into(), "error".into()],
            ],
        );
        assert_eq!(
            t,
            "ID   NAME      STATE\na1   Vertrieb  idle\nb22  X         error\n"
        );
    }

    #[test]
    fn align_right_and_truncate() {
        let rows = vec![
            vec![
                "ok".into(),
                "resolve".into(),
                "3 ms".into(),
                "127.0.0.1".into(),
            ],
            vec![
                "FAILED".into(),
                "login".into(),
                "512 ms".into(),
                "bad".into(),
            ],
        ];
        assert_eq!(
            align(&rows, &[2]),
            "ok      resolve    3 ms  127.0.0.1\nFAILED  login    512 ms  bad\n"
        );
        assert_eq!(truncate("Anfrage", 10), "Anfrage");
        assert_eq!(
            printable("a\tb\x1b[2Jc\r\n"),
            "a b\u{fffd}[2Jc\u{fffd}\u{fffd}"
        );
        assert_eq!(truncate("Anfrage Angebot", 8), "Anfrage…");
        assert_eq!(truncate("Grüße aus Köln", 6).chars().count(), 6);
    }

    #[test]
    fn dates_and_values() {
        assert_eq!(utc(0), "never");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(text("SmtpLogin", &Variant::Bool(true)), "yes");
        assert_eq!(text("LastFetchAt", &Variant::U64(0)), "never");
        assert_eq!(text("Port", &Variant::U16(993)), "993");
        let folders = Variant::from(vec!["INBOX".to_string(), "Sent".to_string()]);
        assert_eq!(text("Folders", &folders), "INBOX, Sent");
        assert_eq!(json(&folders), serde_json::json!(["INBOX", "Sent"]));
        let progress = Variant::from((3u32, 10u32));
        assert_eq!(text("Progress", &progress), "3/10");
        assert_eq!(json(&progress), serde_json::json!([3, 10]));
    }
}
