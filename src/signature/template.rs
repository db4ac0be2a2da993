//! The template grammar: where a placeholder starts, what it names, and
//! when an `@` is just an `@` (the grammar itself is documented on
//! [`crate::signature`]).
//!
//! The parser is one linear pass over the template and allocates one
//! [`Piece`] per literal run or placeholder; every error names the line and
//! column (in characters, 1-based) so an admin finds the typo in an editor.

use super::limits::{MAX_ARGS_LEN, MAX_IMAGES, MAX_IMAGE_PLACEHOLDERS, MAX_SIDE};

/// The employee fields a placeholder can insert, in the order
/// `Placeholders()` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Name,
    Vorname,
    Nachname,
    Titel,
    Position,
    Abteilung,
    Telefon,
    Mobil,
    Fax,
    EMail,
    Kuerzel,
}

impl Field {
    pub const ALL: [Field; 11] = [
        Field::Name,
        Field::Vorname,
        Field::Nachname,
        Field::Titel,
        Field::Position,
        Field::Abteilung,
        Field::Telefon,
        Field::Mobil,
        Field::Fax,
        Field::EMail,
        Field::Kuerzel,
    ];

    /// The placeholder name without the @, which is also the key of the
    /// field in `SetEmployee`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::Vorname => "Vorname",
            Field::Nachname => "Nachname",
            Field::Titel => "Titel",
            Field::Position => "Position",
            Field::Abteilung => "Abteilung",
            Field::Telefon => "Telefon",
            Field::Mobil => "Mobil",
            Field::Fax => "Fax",
            Field::EMail => "EMail",
            Field::Kuerzel => "Kuerzel",
        }
    }

    /// The field with exactly this name (names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// The name of the picture placeholder.
pub const BILD: &str = "Bild";

/// A picture placeholder: the employee's image `index`, at `size` (w, h)
/// or, for `@Bild@`, at its original size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageRef {
    pub index: u32,
    pub size: Option<(u32, u32)>,
}

/// One part of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Template text, copied as it is (in HTML too: the template is markup).
    Text(&'a str),
    Field(Field),
    Image(ImageRef),
}

/// A template that does not parse, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Parse a template into literal runs and placeholders.
pub fn parse(src: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut literal_from = 0;
    let mut search_from = 0;
    let mut images = 0usize;
    while let Some(offset) = src[search_from..].find('@') {
        let at = search_from + offset;
        match placeholder_at(src, at).map_err(|message| error_at(src, at, message))? {
            Some((piece, end)) => {
                if at > literal_from {
                    pieces.push(Piece::Text(&src[literal_from..at]));
                }
                if matches!(piece, Piece::Image(_)) {
                    images += 1;
                    if images > MAX_IMAGE_PLACEHOLDERS {
                        return Err(error_at(
                            src,
                            at,
                            format!("more than {MAX_IMAGE_PLACEHOLDERS} @{BILD}@ placeholders"),
                        ));
                    }
                }
                pieces.push(piece);
                literal_from = end;
                search_from = end;
            }
            None => search_from = at + 1,
        }
    }
    if literal_from < src.len() {
        pieces.push(Piece::Text(&src[literal_from..]));
    }
    Ok(pieces)
}

/// What starts at the `@` at byte `at`: a placeholder and the byte after
/// it, None for a literal `@`, or an error for a broken placeholder.
fn placeholder_at(src: &str, at: usize) -> Result<Option<(Piece<'static>, usize)>, String> {
    let rest = &src[at + 1..];
    let name_len = rest
        .char_indices()
        .find(|(_, c)| !c.is_alphanumeric())
        .map_or(rest.len(), |(i, _)| i);
    let name = &rest[..name_len];
    if !name.chars().next().is_some_and(char::is_alphabetic) {
        return Ok(None);
    }
    let after = &rest[name_len..];
    let name_end = at + 1 + name_len;
    if after.starts_with('@') {
        return resolve(name, None).map(|p| Some((p, name_end + 1)));
    }
    let known = name == BILD || Field::from_name(name).is_some();
    if let Some(args) = after.strip_prefix('(') {
        let close = args
            .char_indices()
            .take(MAX_ARGS_LEN)
            .find(|(_, c)| *c == ')')
            .map(|(i, _)| i);
        if let Some(close) = close.filter(|&c| args[c + 1..].starts_with('@')) {
            let end = name_end + 1 + close + 2;
            return resolve(name, Some(&args[..close])).map(|p| Some((p, end)));
        }
        if known {
            return Err(format!("@{name}( is not closed by )@"));
        }
        return Ok(None);
    }
    if known {
        return Err(format!("@{name} is not closed by @"));
    }
    Ok(None)
}

/// The placeholder `@name@` or `@name(args)@`.
fn resolve(name: &str, args: Option<&str>) -> Result<Piece<'static>, String> {
    if name == BILD {
        let Some(args) = args else {
            return Ok(Piece::Image(ImageRef {
                index: 0,
                size: None,
            }));
        };
        return image_args(args).map(Piece::Image);
    }
    match (Field::from_name(name), args) {
        (Some(field), None) => Ok(Piece::Field(field)),
        (Some(_), Some(_)) => Err(format!("@{name}@ takes no arguments")),
        (None, _) => Err(unknown(name)),
    }
}

/// `i,w,h`: decimal numbers, spaces allowed around them.
fn image_args(args: &str) -> Result<ImageRef, String> {
    let shape = || format!("@{BILD}({args})@: expected @{BILD}(i,w,h)@, three numbers");
    let numbers: Vec<&str> = args.split(',').map(str::trim).collect();
    let [i, w, h] = numbers.as_slice() else {
        return Err(shape());
    };
    let num = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape());
        }
        // Too many digits for u32 is simply too large.
        Ok(s.parse::<u32>().unwrap_or(u32::MAX))
    };
    let (index, width, height) = (num(i)?, num(w)?, num(h)?);
    if index >= MAX_IMAGES as u32 {
        return Err(format!(
            "@{BILD}({args})@: image {index} does not exist (an employee has at most {MAX_IMAGES} images, 0 to {})",
            MAX_IMAGES - 1
        ));
    }
    for (what, v) in [("width", width), ("height", height)] {
        if v == 0 || v > MAX_SIDE {
            return Err(format!(
                "@{BILD}({args})@: {what} {v} is out of range (1 to {MAX_SIDE} pixels)"
            ));
        }
    }
    Ok(ImageRef {
        index,
        size: Some((width, height)),
    })
}

/// "unknown placeholder", with the known one it most likely meant.
fn unknown(name: &str) -> String {
    let folded = fold(name);
    let guess = Field::ALL
        .iter()
        .map(|f| f.as_str())
        .chain([BILD])
        .find(|k| fold(k) == folded);
    match guess {
        Some(k) => format!("unknown placeholder @{name}@ (did you mean @{k}@?)"),
        None => format!("unknown placeholder @{name}@ (Placeholders() lists the known ones)"),
    }
}

/// Lower case with German umlauts spelled out, so that `@kürzel@` and
/// `@Email@` find `@Kuerzel@` and `@EMail@`.
fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            c => out.push(c),
        }
    }
    out
}

fn error_at(src: &str, at: usize, message: String) -> TemplateError {
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    TemplateError {
        line,
        column: src[line_start..at].chars().count() + 1,
        message,
    }
}

#[cfg(test)]
mod tests;
