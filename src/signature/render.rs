//! Filling a signature with an employee's data, for the preview (pictures
//! as `data:` URIs) and for a mail (pictures as `cid:` references plus the
//! inline parts the composer puts into multipart/related, RFC 2387 and
//! RFC 2392).
//!
//! The same picture placeholder used twice (same image, same size) is
//! scaled once and, in a mail, sent as one part. The output is bounded by
//! [`MAX_OUTPUT`] as it grows, so a template that repeats a placeholder
//! thousands of times is refused, not rendered into memory.

use std::collections::HashMap;

use base64::Engine as _;

use super::employee::{Employee, Image};
use super::limits::MAX_OUTPUT;
use super::picture;
use super::template::{self, ImageRef, Piece, BILD};
use super::{escape_html, Chosen, Source};
use crate::error::{Error, Result};

/// The preview: what `PreviewSignature` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub html: String,
    pub text: String,
    pub source: Source,
}

/// A picture for a mail's multipart/related: the composer writes it with
/// `Content-ID: <cid>` and `Content-Disposition: inline`.
#[derive(Clone, PartialEq, Eq)]
pub struct InlinePart {
    /// Without angle brackets; the HTML refers to it as `cid:<cid>`.
    pub cid: String,
    pub mime: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for InlinePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InlinePart({}, {}, {} bytes)",
            self.cid,
            self.mime,
            self.bytes.len()
        )
    }
}

/// A signature for a mail being sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForMail {
    pub html: String,
    pub text: String,
    pub source: Source,
    /// In order of first use in the HTML.
    pub inline: Vec<InlinePart>,
}

/// Whom the signature is rendered for: error messages name them.
#[derive(Debug, Clone, Copy)]
pub struct For<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
}

/// Render `chosen` for the preview.
pub fn preview(chosen: &Chosen, employee: Option<&Employee>, who: For<'_>) -> Result<Preview> {
    let mut pictures = DataUris::default();
    let (html, text) = render(chosen, employee, who, &mut pictures)?;
    Ok(Preview {
        html,
        text,
        source: chosen.source,
    })
}

/// Render `chosen` for a mail. `token` makes the Content-IDs unique to
/// the mail (see [`super::new_cid_token`]).
pub fn for_mail(
    chosen: &Chosen,
    employee: Option<&Employee>,
    who: For<'_>,
    token: &str,
) -> Result<ForMail> {
    let mut pictures = Cids {
        token,
        parts: Vec::new(),
        known: HashMap::new(),
    };
    let (html, text) = render(chosen, employee, who, &mut pictures)?;
    Ok(ForMail {
        html,
        text,
        source: chosen.source,
        inline: pictures.parts,
    })
}

/// Where a picture placeholder points: its `src` and its size in pixels.
trait Pictures {
    /// The third value is what the picture adds to the output besides
    /// its tag (the inline part's bytes), for the bound.
    fn src(&mut self, r: ImageRef, img: &Image) -> Result<(String, (u32, u32), usize)>;
}

#[derive(Default)]
struct DataUris {
    known: HashMap<ImageRef, (String, (u32, u32))>,
}

impl Pictures for DataUris {
    fn src(&mut self, r: ImageRef, img: &Image) -> Result<(String, (u32, u32), usize)> {
        // The URI is counted as part of the tag it goes into.
        if let Some((uri, size)) = self.known.get(&r) {
            return Ok((uri.clone(), *size, 0));
        }
        let (mime, bytes, size) = picture_at(r, img)?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let uri = format!("data:{mime};base64,{b64}");
        self.known.insert(r, (uri.clone(), size));
        Ok((uri, size, 0))
    }
}

struct Cids<'t> {
    token: &'t str,
    parts: Vec<InlinePart>,
    known: HashMap<ImageRef, (String, (u32, u32))>,
}

impl Pictures for Cids<'_> {
    fn src(&mut self, r: ImageRef, img: &Image) -> Result<(String, (u32, u32), usize)> {
        if let Some((cid, size)) = self.known.get(&r) {
            return Ok((format!("cid:{cid}"), *size, 0));
        }
        let (mime, bytes, size) = picture_at(r, img)?;
        let cid = format!("sig{}.{}@postfach", self.parts.len() + 1, self.token);
        let len = bytes.len();
        self.parts.push(InlinePart {
            cid: cid.clone(),
            mime: mime.to_string(),
            bytes,
        });
        self.known.insert(r, (cid.clone(), size));
        Ok((format!("cid:{cid}"), size, len))
    }
}

/// The picture at its original size (the file unchanged) or scaled.
fn picture_at(r: ImageRef, img: &Image) -> Result<(String, Vec<u8>, (u32, u32))> {
    let fail = |e: String| Error::invalid("images", format!("image {}: {e}", r.index));
    match r.size {
        None => {
            let size = picture::dimensions(&img.mime, &img.bytes).map_err(fail)?;
            Ok((img.mime.clone(), img.bytes.clone(), size))
        }
        Some((w, h)) => {
            let (mime, bytes) = picture::scaled(&img.mime, &img.bytes, w, h).map_err(fail)?;
            Ok((mime.to_string(), bytes, (w, h)))
        }
    }
}

/// Both parts of the signature: (html, text).
fn render(
    chosen: &Chosen,
    employee: Option<&Employee>,
    who: For<'_>,
    pictures: &mut dyn Pictures,
) -> Result<(String, String)> {
    let whose = match chosen.source {
        Source::User => format!("the signature of user {:?}", who.user),
        Source::General => "the general signature".to_string(),
    };
    let broken = |key: &str, e: template::TemplateError| {
        Error::invalid(key, format!("{whose} of tenant {:?}, {e}", who.tenant))
    };
    let html = template::parse(&chosen.signature.html).map_err(|e| broken("html", e))?;
    let text = template::parse(&chosen.signature.text).map_err(|e| broken("text", e))?;
    let uses_employee = html
        .iter()
        .chain(&text)
        .any(|p| !matches!(p, Piece::Text(_)));
    let employee = match employee {
        Some(e) => e,
        None if uses_employee => {
            return Err(Error::NotFound(format!(
                "no employee is linked to CRM user {:?} in tenant {:?}, but {whose} has \
                 placeholders; link one with SetEmployee",
                who.user, who.tenant
            )))
        }
        None => &Employee::default(),
    };
    let mut budget = Budget(0);
    let mut text_out = String::new();
    for piece in &text {
        match piece {
            Piece::Text(t) => budget.push(&mut text_out, t)?,
            Piece::Field(f) => budget.push(&mut text_out, &employee.value(*f, who.user))?,
            // The text part has no pictures. After an `@` the picture
            // leaves a space: else that `@` and a name after the picture
            // would meet and send a raw placeholder (`@@Bild@Vorname@`).
            Piece::Image(_) if text_out.ends_with('@') => budget.push(&mut text_out, " ")?,
            Piece::Image(_) => {}
        }
    }
    let mut html_out = String::new();
    for piece in &html {
        match piece {
            Piece::Text(t) => budget.push(&mut html_out, t)?,
            Piece::Field(f) => {
                budget.push(&mut html_out, &escape_html(&employee.value(*f, who.user)))?
            }
            Piece::Image(r) => {
                let img = image_of(employee, *r, who)?;
                let (src, (w, h), added) = pictures.src(*r, img)?;
                budget.add(added)?;
                let tag = format!("<img src=\"{src}\" width=\"{w}\" height=\"{h}\" alt=\"\">");
                budget.push(&mut html_out, &tag)?;
            }
        }
    }
    Ok((html_out, text_out))
}

fn image_of<'e>(employee: &'e Employee, r: ImageRef, who: For<'_>) -> Result<&'e Image> {
    let n = employee.images().len();
    employee.images().get(r.index as usize).ok_or_else(|| {
        let placeholder = match r.size {
            None => format!("@{BILD}@"),
            Some((w, h)) => format!("@{BILD}({},{w},{h})@", r.index),
        };
        Error::NotFound(format!(
            "{placeholder}: the employee of CRM user {:?} in tenant {:?} has no image {} \
             ({n} images, numbered from 0)",
            who.user, who.tenant, r.index
        ))
    })
}

/// Bytes rendered so far, against [`MAX_OUTPUT`].
struct Budget(usize);

impl Budget {
    fn add(&mut self, n: usize) -> Result<()> {
        self.0 = self.0.saturating_add(n);
        if self.0 > MAX_OUTPUT {
            return Err(Error::invalid(
                "html",
                format!(
                    "the rendered signature would be larger than {} MiB",
                    MAX_OUTPUT / (1024 * 1024)
                ),
            ));
        }
        Ok(())
    }

    fn push(&mut self, out: &mut String, s: &str) -> Result<()> {
        self.add(s.len())?;
        out.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
