//! HTML to readable text for `postfachctl show`, used only when a mail has
//! no text part (`GetMessage` then returns an empty `text`).
//!
//! Not a renderer: tags go, block tags become line breaks, `script`,
//! `style`, `head` and comments are dropped, whitespace collapses as a
//! browser collapses it (HTML Living Standard, "white-space: normal"), and
//! the entities a mail client actually writes are decoded — the numeric
//! ones and the named ones German mail uses (`&auml;`, `&szlig;`, `&euro;`).
//! An unknown entity stays as written, so nothing is silently lost.

/// Tags whose start or end begins a new line.
const LINE: &[&str] = &["div", "tr", "li"];

/// Tags whose start or end begins a new paragraph (an empty line between).
const PARAGRAPH: &[&str] = &[
    "p",
    "ul",
    "ol",
    "table",
    "blockquote",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
];

/// Elements whose content is not text for the reader.
const HIDDEN: &[&str] = &["script", "style", "head", "title"];

/// The text of `html`: lines trimmed, at most one empty line in a row.
///
/// Breaks are collected and written only before the next text, so nested
/// `<div>`s or `</p><p>` give one break, not a run of empty lines.
pub fn to_text(html: &str) -> String {
    let mut out = String::new();
    let mut breaks = 0usize;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &mut breaks, &rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // A lone `<` is text ("a < b").
            push_text(&mut out, &mut breaks, rest);
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let name = name.as_str();
        if !closing && HIDDEN.contains(&name) {
            let end = format!("</{name}");
            rest = find_ascii_ci(rest, &end).map_or("", |i| {
                rest[i..].find('>').map_or("", |g| &rest[i + g + 1..])
            });
        } else if name == "br" {
            // `<br><br>` is how mail clients write an empty line.
            breaks = (breaks + 1).min(2);
        } else if PARAGRAPH.contains(&name) {
            breaks = 2;
        } else if LINE.contains(&name) {
            breaks = breaks.max(1);
            if name == "li" && !closing {
                push_text(&mut out, &mut breaks, "- ");
            }
        }
    }
    push_text(&mut out, &mut breaks, rest);
    tidy(&out)
}

/// Text between tags: entities decoded, whitespace runs as one space, the
/// pending line breaks written before the first visible character.
fn push_text(out: &mut String, breaks: &mut usize, text: &str) {
    for c in decode_entities(text).chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if *breaks == 0 && !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
            continue;
        }
        if *breaks > 0 {
            if !out.is_empty() {
                out.push_str(&"\n".repeat(*breaks));
            }
            *breaks = 0;
        }
        out.push(if c == '\u{a0}' { ' ' } else { c });
    }
}

/// Byte offset of `needle` (ASCII) in `hay`, ignoring ASCII case.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (0..h.len().saturating_sub(n.len()) + 1)
        .find(|&i| h.len() >= i + n.len() && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| entity(&rest[1..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| !c.is_control() || *c == '\n');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        "euro" => '€',
        "copy" => '©',
        "ndash" => '–',
        "mdash" => '—',
        "bdquo" => '„',
        "ldquo" => '“',
        "rdquo" => '”',
        _ => return None,
    })
}

/// Lines trimmed; runs of empty lines become one; none at either end.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut empty_run = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            empty_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if empty_run > 0 { "\n\n" } else { "\n" });
        }
        empty_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_blocks_break_whitespace_collapses() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head>\
                    <body><p>Sehr  geehrte\n Damen,</p><p>anbei das <b>Angebot</b>.<br>Gr&uuml;&szlig;e</p>\
                    <!-- <p>hidden</p> --><SCRIPT>alert(1)</SCRIPT><ul><li>eins</li><li>zwei</li></ul></body></html>";
        assert_eq!(
            to_text(html),
            "Sehr geehrte Damen,\n\nanbei das Angebot.\nGrüße\n\n- eins\n- zwei"
        );
    }

    #[test]
    fn entities_and_stray_characters() {
        assert_eq!(to_text("a &lt; b &amp;&amp; c &gt; d"), "a < b && c > d");
        assert_eq!(to_text("5&nbsp;&euro; &#8364; &#x41;"), "5 € € A");
        assert_eq!(to_text("AT&T &bogus; &#1b;"), "AT&T &bogus; &#1b;");
        assert_eq!(to_text("x < y"), "x < y");
        assert_eq!(to_text("<p>unclosed <!-- comment"), "unclosed");
        assert_eq!(to_text("<style>never closed"), "");
        assert_eq!(to_text("&#27;[2J"), "&#27;[2J");
        assert_eq!(to_text(""), "");
        assert_eq!(
            to_text("<div><div>Zeile 1</div><div>Zeile 2<br><br>Absatz</div></div>"),
            "Zeile 1\nZeile 2\n\nAbsatz"
        );
        assert_eq!(to_text("<td>a</td> <td>b</td>"), "a b");
    }
}
