//! Helpers of the signature tests (`mod sigkit;`): real pictures made with
//! the image crate, and the pictures of a rendered preview decoded back.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use base64::Engine as _;
use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A PNG of `w`×`h` with a gradient (so scaling has something to average).
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| Rgba([(x * 3) as u8, (y * 5) as u8, 120, 255]));
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Png).unwrap();
    buf.into_inner()
}

/// A JPEG of `w`×`h`.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| Rgb([200, (x * 2) as u8, (y * 2) as u8]));
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Jpeg).unwrap();
    buf.into_inner()
}

/// A picture of a preview: its mime type, bytes and decoded size.
#[derive(Debug)]
pub struct Shown {
    pub mime: String,
    pub bytes: Vec<u8>,
    pub size: (u32, u32),
    /// The `width` and `height` attributes of its `<img>`.
    pub attrs: (u32, u32),
}

/// Every `<img src="data:…">` of `html`, decoded, in order.
pub fn pictures(html: &str) -> Vec<Shown> {
    let mut out = Vec::new();
    for tag in html.split("<img ").skip(1) {
        let src = attr(tag, "src");
        let rest = src.strip_prefix("data:").expect("a data: URI");
        let (mime, b64) = rest.split_once(";base64,").expect("base64 data");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        let num = |name: &str| attr(tag, name).parse::<u32>().unwrap();
        out.push(Shown {
            mime: mime.to_string(),
            size: (img.width(), img.height()),
            attrs: (num("width"), num("height")),
            bytes,
        });
    }
    out
}

fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let start = tag
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name} in <img {tag}"))
        + name.len()
        + 2;
    let len = tag[start..].find('"').unwrap();
    &tag[start..start + len]
}
