//! `employee set|remove`: the employee [Mitarbeiter] whose data fills a
//! CRM user's signature (`Signatures.SetEmployee`, ARCHITECTURE.md "The D-Bus API").
//!
//! `set` replaces the whole record: fields given as `--field Vorname=Max`
//! (the placeholder names without the @), pictures as `--image FILE` in
//! the order `@Bild(i,…)@` counts them from 0. A picture's type is taken
//! from its content (PNG, JPEG, GIF), not from its file name.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use zbus::Variant;

use super::commands::Ctl;
use super::CtlError;
use crate::dbus::proxy::SignaturesProxy;
use crate::signature::limits::MAX_IMAGE_BYTES;
use crate::signature::PictureKind;

#[derive(Subcommand, Debug)]
pub enum EmployeeCommand {
    /// Link an employee to a CRM user, replacing its fields and pictures.
    #[command(after_help = "Example:\n  postfachctl employee set mm --tenant t1 \
                            --field Vorname=Max --field Nachname=Muster \\\n      \
                            --field Telefon='+49 30 1234-0' --image photo.jpg --image logo.png")]
    Set {
        /// The CRM user shorthand.
        user: String,
        /// The tenant [Mandant].
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A field, NAME=VALUE; NAME is a placeholder without the @:
        /// Name, Vorname, Nachname, Titel, Position, Abteilung, Telefon,
        /// Mobil, Fax, EMail, Kuerzel.
        #[arg(long = "field", value_name = "NAME=VALUE", value_parser = parse_field)]
        fields: Vec<(String, String)>,
        /// A picture file (PNG, JPEG or GIF); repeat in order: the first
        /// is image 0.
        #[arg(long = "image", value_name = "FILE")]
        images: Vec<PathBuf>,
    },
    /// Unlink the employee of a CRM user.
    Remove {
        /// The CRM user shorthand.
        user: String,
        /// The tenant [Mandant].
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

/// `NAME=VALUE`; the value may contain `=` and be empty.
pub fn parse_field(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE (e.g. Vorname=Max)")),
    }
}

impl Ctl {
    pub async fn employee(&self, cmd: EmployeeCommand) -> Result<(), CtlError> {
        let proxy = SignaturesProxy::new(&self.conn).await?;
        match cmd {
            EmployeeCommand::Set {
                user,
                tenant,
                fields,
                images,
            } => {
                let mut dict: HashMap<&str, Variant<'_>> = HashMap::new();
                for (k, v) in &fields {
                    if dict.insert(k.as_str(), Variant::from(v.as_str())).is_some() {
                        return Err(CtlError::usage(format!("--field {k} is given twice")));
                    }
                }
                let pictures = images
                    .iter()
                    .map(|p| read_picture(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let refs: Vec<(&str, &[u8])> =
                    pictures.iter().map(|(m, b)| (*m, b.as_slice())).collect();
                proxy.set_employee(&tenant, &user, dict, &refs).await?;
                Ok(())
            }
            EmployeeCommand::Remove { user, tenant } => {
                Ok(proxy.remove_employee(&tenant, &user).await?)
            }
        }
    }
}

/// A picture file and its mime type by content; no further than the
/// daemon would accept.
fn read_picture(path: &PathBuf) -> Result<(&'static str, Vec<u8>), CtlError> {
    let name = path.display();
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_IMAGE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_end(&mut bytes))
        .map_err(|e| CtlError::local("InvalidArgument", format!("{name}: {e}")))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(CtlError::local(
            "InvalidArgument",
            format!("{name}: larger than {MAX_IMAGE_BYTES} bytes; scale it down"),
        ));
    }
    let kind = PictureKind::sniff(&bytes).ok_or_else(|| {
        CtlError::local(
            "InvalidArgument",
            format!("{name}: not a PNG, JPEG or GIF image"),
        )
    })?;
    Ok((kind.mime(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_name_equals_value() {
        assert_eq!(
            parse_field("Telefon=+49 30 1=2"),
            Ok(("Telefon".into(), "+49 30 1=2".into()))
        );
        assert_eq!(parse_field("Fax="), Ok(("Fax".into(), String::new())));
        assert!(parse_field("=x").is_err());
        assert!(parse_field("Vorname").is_err());
    }
}
