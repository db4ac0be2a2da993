//! Every size a signature or an employee may have, in one place.
//!
//! The bounds keep one call's memory small and a reply within what a bus
//! carries (dbus-daemon's system bus refuses messages above 32 MiB by
//! default): a signature is a few lines and a logo, an employee a name, a
//! few numbers and a photo or two.

/// Longest plain-text signature (bytes).
pub const MAX_TEXT: usize = 16 * 1024;
/// Longest HTML signature (bytes); room for inline CSS and a logo given as
/// a `data:` URI by the template itself.
pub const MAX_HTML: usize = 256 * 1024;
/// Longest value of one employee field (bytes).
pub const MAX_FIELD: usize = 512;
/// Most images per employee; `@Bild(i,…)@` takes i from 0 to this − 1.
pub const MAX_IMAGES: usize = 10;
/// Largest image file (bytes).
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Largest sum of an employee's image files (bytes).
pub const MAX_IMAGES_TOTAL: usize = 8 * 1024 * 1024;
/// Largest width and height of a stored image (pixels): a phone photo fits;
/// decoding one costs at most 64 MiB (RGBA, 8 bits per channel).
pub const MAX_SOURCE_SIDE: u32 = 4096;
/// Most bytes one decode may allocate (see [`MAX_SOURCE_SIDE`]).
pub const MAX_DECODE_ALLOC: u64 = 64 * 1024 * 1024 + 64 * 1024;
/// Largest width and height of `@Bild(i,w,h)@` (pixels).
pub const MAX_SIDE: u32 = 1024;
/// Most picture placeholders per template: each may mean a decode and a
/// scaled copy.
pub const MAX_IMAGE_PLACEHOLDERS: usize = 16;
/// Longest argument list `(i,w,h)` looked at (characters).
pub const MAX_ARGS_LEN: usize = 40;
/// Largest rendered signature: HTML, text and image bytes together.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Longest tenant name (bytes).
pub const MAX_TENANT: usize = 256;
