//! Employee pictures: what `SetEmployee` accepts, and the scaled copies
//! that `@Bild(i,w,h)@` inserts.
//!
//! Only PNG, JPEG and GIF are accepted: what mail clients show inline
//! everywhere. Every decode runs under [`Limits`] (at most
//! [`MAX_SOURCE_SIDE`] pixels a side, [`MAX_DECODE_ALLOC`] bytes), so a
//! small file that claims a huge size (a "decompression bomb") is refused
//! instead of filling memory. A scaled JPEG stays a JPEG (quality 85); a
//! scaled PNG or GIF becomes a PNG, which keeps transparency and needs no
//! palette reduction (an animated GIF keeps only its first frame when
//! scaled; at its original size, `@Bild@`, the file goes out unchanged).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};

use super::limits::{MAX_DECODE_ALLOC, MAX_SOURCE_SIDE};

/// JPEG quality of scaled copies: no visible loss at signature sizes.
const JPEG_QUALITY: u8 = 85;

/// The image types a signature picture may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Gif,
}

impl Kind {
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Png => "PNG",
            Kind::Jpeg => "JPEG",
            Kind::Gif => "GIF",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            Kind::Png => ImageFormat::Png,
            Kind::Jpeg => ImageFormat::Jpeg,
            Kind::Gif => ImageFormat::Gif,
        }
    }

    /// The type a mime type names; `image/jpg` and `image/pjpeg` are the
    /// spellings some uploaders send for JPEG.
    pub fn from_mime(mime: &str) -> Option<Kind> {
        match mime.trim().to_ascii_lowercase().as_str() {
            "image/png" => Some(Kind::Png),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Kind::Jpeg),
            "image/gif" => Some(Kind::Gif),
            _ => None,
        }
    }

    /// The type the bytes are, by their signature (PNG spec §5.2, JFIF
    /// SOI + marker, GIF87a/GIF89a).
    pub fn sniff(bytes: &[u8]) -> Option<Kind> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Kind::Gif)
        } else {
            None
        }
    }
}

/// The kind of an image declared as `mime`, checked against its bytes.
pub fn kind_of(mime: &str, bytes: &[u8]) -> Result<Kind, String> {
    let declared = Kind::from_mime(mime).ok_or_else(|| {
        format!("mime type {mime:?} is not accepted (image/png, image/jpeg or image/gif)")
    })?;
    match Kind::sniff(bytes) {
        Some(k) if k == declared => Ok(k),
        Some(k) => Err(format!(
            "declared {} but the data is a {} image",
            declared.mime(),
            k.name()
        )),
        None => Err(format!("the data is not a {} image", declared.name())),
    }
}

/// Decode the whole image once, so that a truncated or corrupt file is
/// refused when it is stored, not when a mail is sent. Returns its size.
pub fn check(mime: &str, bytes: &[u8]) -> Result<(u32, u32), String> {
    let kind = kind_of(mime, bytes)?;
    let img = decode(kind, bytes)?;
    Ok((img.width(), img.height()))
}

/// Width and height from the image's header.
pub fn dimensions(mime: &str, bytes: &[u8]) -> Result<(u32, u32), String> {
    let kind = kind_of(mime, bytes)?;
    reader(kind, bytes)
        .into_dimensions()
        .map_err(|e| describe(kind, e))
}

/// A copy scaled to exactly `width` × `height`: (mime type, bytes).
pub fn scaled(
    mime: &str,
    bytes: &[u8],
    width: u32,
    height: u32,
) -> Result<(&'static str, Vec<u8>), String> {
    let kind = kind_of(mime, bytes)?;
    let img = decode(kind, bytes)?;
    let out = if width <= img.width() && height <= img.height() {
        // Averages the source pixels: sharp and fast for shrinking.
        img.thumbnail_exact(width, height)
    } else {
        img.resize_exact(width, height, FilterType::CatmullRom)
    };
    drop(img);
    let mut buf = Cursor::new(Vec::new());
    let (written, mime) = match kind {
        Kind::Jpeg => (
            out.to_rgb8()
                .write_with_encoder(JpegEncoder::new_with_quality(&mut buf, JPEG_QUALITY)),
            Kind::Jpeg.mime(),
        ),
        Kind::Png | Kind::Gif => (out.write_to(&mut buf, ImageFormat::Png), Kind::Png.mime()),
    };
    written.map_err(|e| format!("cannot encode the scaled image: {e}"))?;
    Ok((mime, buf.into_inner()))
}

fn reader(kind: Kind, bytes: &[u8]) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    reader
}

fn decode(kind: Kind, bytes: &[u8]) -> Result<DynamicImage, String> {
    reader(kind, bytes).decode().map_err(|e| describe(kind, e))
}

fn describe(kind: Kind, e: ImageError) -> String {
    match e {
        ImageError::Limits(_) => format!(
            "the {} image is too large (at most {MAX_SOURCE_SIDE}×{MAX_SOURCE_SIDE} pixels)",
            kind.name()
        ),
        other => {
            let mut why = other.to_string();
            if why.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|&i| why.is_char_boundary(i))
                    .unwrap_or(0);
                why.truncate(cut);
            }
            format!("not a readable {} image: {why}", kind.name())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, Rgba};

    /// CRC-32 of PNG chunks (ISO 3309, as in the PNG spec's annex D).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| Rgba([x as u8, y as u8, 200, 255]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 90]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Jpeg).unwrap();
        buf.into_inner()
    }

    #[test]
    fn scales_to_the_exact_size_and_keeps_jpeg() {
        let (mime, out) = scaled("image/png", &png(40, 30), 20, 10).unwrap();
        assert_eq!(mime, "image/png");
        assert_eq!(dimensions(mime, &out).unwrap(), (20, 10));
        let (mime, out) = scaled("image/jpg", &jpeg(16, 16), 64, 48).unwrap();
        assert_eq!(mime, "image/jpeg");
        assert_eq!(dimensions(mime, &out).unwrap(), (64, 48));
    }

    #[test]
    fn refuses_wrong_types_and_broken_bytes() {
        let e = check("image/png", &jpeg(4, 4)).unwrap_err();
        assert!(
            e.contains("declared image/png but the data is a JPEG"),
            "{e}"
        );
        let e = check("image/png", b"hello, not an image").unwrap_err();
        assert!(e.contains("not a PNG image"), "{e}");
        let e = check("image/webp", &png(2, 2)).unwrap_err();
        assert!(e.contains("not accepted"), "{e}");
        let mut cut = png(64, 64);
        cut.truncate(cut.len() / 2);
        let e = check("image/png", &cut).unwrap_err();
        assert!(e.contains("not a readable PNG image"), "{e}");
    }

    #[test]
    fn a_header_claiming_a_huge_size_is_refused_before_decoding() {
        // A real PNG whose IHDR says 100000 × 100000: the decoder must stop
        // at the limit, not allocate 40 GB.
        // The IHDR chunk is bytes 8..33: length, type, 13 data bytes, CRC.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        for e in [
            dimensions("image/png", &bomb).unwrap_err(),
            check("image/png", &bomb).unwrap_err(),
        ] {
            assert!(e.contains("too large (at most 4096×4096"), "{e}");
        }
        assert!(scaled("image/png", &bomb, 10, 10).is_err());
    }
}
