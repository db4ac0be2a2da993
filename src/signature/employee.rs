//! The employee [Mitarbeiter] linked to a CRM user shorthand: the values
//! the placeholders insert and the ordered pictures.
//!
//! `SetEmployee` replaces the whole record; [`Employee::new`] checks all of
//! it before anything is stored, so a bad field or picture leaves the old
//! record as it was. Empty values are dropped: an unset field and an empty
//! one render the same (as nothing).

use std::collections::BTreeMap;

use super::limits::{MAX_FIELD, MAX_IMAGES, MAX_IMAGES_TOTAL, MAX_IMAGE_BYTES};
use super::picture;
use super::template::Field;
use crate::account::SettingValue;
use crate::error::{Error, Result};

/// One picture as stored: normalized mime type and the file's bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    pub mime: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}, {} bytes)", self.mime, self.bytes.len())
    }
}

/// A checked employee record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Employee {
    /// Placeholder name (`Vorname`) -> non-empty value.
    fields: BTreeMap<String, String>,
    images: Vec<Image>,
}

impl Employee {
    /// Check `SetEmployee`'s arguments: `fields` keyed by placeholder name
    /// without the @, `images` as (mime type, bytes) in order. Errors name
    /// the argument (`fields.Vorname`, `images[1]`).
    pub fn new(fields: &[(String, SettingValue)], images: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let mut checked = BTreeMap::new();
        for (key, value) in fields {
            let arg = format!("fields.{key}");
            if Field::from_name(key).is_none() {
                let known: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
                return Err(Error::invalid(
                    arg,
                    format!("unknown field; the fields are {}", known.join(", ")),
                ));
            }
            let SettingValue::Str(value) = value else {
                return Err(Error::invalid(arg, "wrong type: expected s (string)"));
            };
            if value.len() > MAX_FIELD {
                return Err(Error::invalid(
                    arg,
                    format!("too long: {} bytes, at most {MAX_FIELD}", value.len()),
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(Error::invalid(
                    arg,
                    "contains control characters (one line only)",
                ));
            }
            if !value.trim().is_empty() {
                checked.insert(key.clone(), value.trim().to_string());
            }
        }
        Ok(Employee {
            fields: checked,
            images: check_images(images)?,
        })
    }

    /// A record read back from the store, which only ever holds checked
    /// ones.
    pub(crate) fn from_stored(fields: BTreeMap<String, String>, images: Vec<Image>) -> Self {
        Employee { fields, images }
    }

    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }

    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// The text a field placeholder inserts for the employee of `user`.
    /// `@Name@` without a `Name` field is "Titel Vorname Nachname" (the
    /// parts that are set); `@Kuerzel@` without a `Kuerzel` field is the
    /// user shorthand the employee is linked to. Other unset fields are
    /// empty.
    pub fn value(&self, field: Field, user: &str) -> String {
        if let Some(v) = self.fields.get(field.as_str()) {
            return v.clone();
        }
        match field {
            Field::Name => [Field::Titel, Field::Vorname, Field::Nachname]
                .iter()
                .filter_map(|f| self.fields.get(f.as_str()))
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            Field::Kuerzel => user.to_string(),
            _ => String::new(),
        }
    }
}

/// Count and sizes first (cheap), then each picture's type and a full
/// decode, so that a broken file is refused now rather than at sending.
fn check_images(images: Vec<(String, Vec<u8>)>) -> Result<Vec<Image>> {
    if images.len() > MAX_IMAGES {
        return Err(Error::invalid(
            "images",
            format!("{} images, at most {MAX_IMAGES}", images.len()),
        ));
    }
    let total: usize = images.iter().map(|(_, b)| b.len()).sum();
    if total > MAX_IMAGES_TOTAL {
        return Err(Error::invalid(
            "images",
            format!("{total} bytes together, at most {MAX_IMAGES_TOTAL}"),
        ));
    }
    for (i, (_, bytes)) in images.iter().enumerate() {
        if bytes.is_empty() {
            return Err(Error::invalid(format!("images[{i}]"), "empty"));
        }
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(Error::invalid(
                format!("images[{i}]"),
                format!("{} bytes, at most {MAX_IMAGE_BYTES}", bytes.len()),
            ));
        }
    }
    images
        .into_iter()
        .enumerate()
        .map(|(i, (mime, bytes))| {
            let kind = picture::kind_of(&mime, &bytes)
                .and_then(|k| picture::check(k.mime(), &bytes).map(|_| k))
                .map_err(|e| Error::invalid(format!("images[{i}]"), e))?;
            Ok(Image {
                mime: kind.mime().to_string(),
                bytes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::picture::tests::png;

    fn s(k: &str, v: &str) -> (String, SettingValue) {
        (k.to_string(), SettingValue::Str(v.to_string()))
    }

    #[test]
    fn name_and_kuerzel_have_sensible_defaults() {
        let e = Employee::new(
            &[
                s("Titel", "Dr."),
                s("Vorname", "Anna"),
                s("Nachname", "Weiß"),
                s("Fax", "  "),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(e.value(Field::Name, "aw"), "Dr. Anna Weiß");
        assert_eq!(e.value(Field::Kuerzel, "aw"), "aw");
        assert_eq!(e.value(Field::Fax, "aw"), "");
        assert!(!e.fields().contains_key("Fax"), "blank values are dropped");
        let e = Employee::new(&[s("Name", "Anna W."), s("Kuerzel", "AW")], vec![]).unwrap();
        assert_eq!(e.value(Field::Name, "aw"), "Anna W.");
        assert_eq!(e.value(Field::Kuerzel, "aw"), "AW");
    }

    #[test]
    fn bad_fields_and_images_name_the_argument() {
        let err =
            |f: &[(String, SettingValue)], i: Vec<(String, Vec<u8>)>| match Employee::new(f, i)
                .unwrap_err()
            {
                Error::InvalidArgument { key, message } => format!("{key}: {message}"),
                other => panic!("{other:?}"),
            };
        assert!(err(&[s("Vornam", "x")], vec![]).starts_with("fields.Vornam: unknown field"));
        let e = err(&[("Telefon".into(), SettingValue::U32(5))], vec![]);
        assert!(e.starts_with("fields.Telefon: wrong type"), "{e}");
        let e = err(&[s("Position", &"x".repeat(MAX_FIELD + 1))], vec![]);
        assert!(e.starts_with("fields.Position: too long"), "{e}");
        let e = err(&[s("Position", "a\nb")], vec![]);
        assert!(e.starts_with("fields.Position: contains control"), "{e}");

        let ok = ("image/png".to_string(), png(3, 3));
        let e = err(&[], vec![ok.clone(); MAX_IMAGES + 1]);
        assert!(e.starts_with("images: 11 images"), "{e}");
        let e = err(
            &[],
            vec![ok.clone(), ("image/png".into(), b"GIF89a....".to_vec())],
        );
        assert!(
            e.starts_with("images[1]: declared image/png but the data is a GIF"),
            "{e}"
        );
        let e = err(&[], vec![ok.clone(), ("image/png".into(), vec![])]);
        assert!(e.starts_with("images[1]: empty"), "{e}");
        let big = ("image/png".to_string(), vec![0u8; MAX_IMAGE_BYTES + 1]);
        let e = err(&[], vec![big]);
        assert!(e.starts_with("images[0]: 2097153 bytes"), "{e}");
        let many = ("image/png".to_string(), vec![0u8; MAX_IMAGE_BYTES]);
        let e = err(&[], vec![many; 5]);
        assert!(e.starts_with("images: 10485760 bytes together"), "{e}");

        let e = Employee::new(&[], vec![("IMAGE/JPG".into(), jpeg())]).unwrap();
        assert_eq!(e.images()[0].mime, "image/jpeg", "mime normalized");
    }

    fn jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(5, 5, image::Rgb([1, 2, 3]));
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        buf.into_inner()
    }
}
