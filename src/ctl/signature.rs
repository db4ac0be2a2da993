//! `signature set|show|remove|preview|placeholders`: the tenants'
//! signatures over `org.postfach.Postfach1.Signatures` (ARCHITECTURE.md "The D-Bus API").
//!
//! `set` reads the parts from files (`-` = stdin); a part not given keeps
//! what is stored, so changing only the HTML needs only `--html`.
//! `preview` writes a small HTML page — the HTML signature as a mail
//! client shows it, then the text part — and prints the page's path, so
//! `xdg-open "$(postfachctl signature preview mm)"` opens it. Without
//! `--output` the page goes to a new file in the temporary directory,
//! readable only by its owner: it holds the employee's data.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::commands::Ctl;
use super::CtlError;
use crate::dbus::proxy::SignaturesProxy;
use crate::signature::escape_html;
use crate::signature::limits::{MAX_HTML, MAX_TEXT};

/// Whose signature: `--tenant` and `--user` ("" = the general one).
#[derive(Args, Debug, Clone, PartialEq)]
pub struct Owner {
    /// The tenant [Mandant].
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// The CRM user shorthand; "" (the default) is the tenant's general
    /// signature [Allgemein].
    #[arg(long, default_value = "")]
    pub user: String,
}

#[derive(Subcommand, Debug)]
pub enum SignatureCommand {
    /// Set a signature from files; a part not given keeps its stored text.
    ///
    /// Placeholders (see `signature placeholders`) are checked now: an
    /// unknown or unclosed one is refused with its line and column.
    #[command(after_help = "Example:\n  postfachctl signature set --tenant t1 \
                            --text sig.txt --html sig.html\n  \
                            postfachctl signature set --user mm --html - < mm.html")]
    Set {
        #[command(flatten)]
        owner: Owner,
        /// The plain-text part (`-` = stdin).
        #[arg(long, value_name = "FILE")]
        text: Option<PathBuf>,
        /// The HTML part (`-` = stdin).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Print a stored signature as it is (placeholders unfilled).
    Show {
        #[command(flatten)]
        owner: Owner,
    },
    /// Remove a signature (the user then gets the general one).
    Remove {
        #[command(flatten)]
        owner: Owner,
    },
    /// Render the signature a user's mail gets into an .html file and
    /// print the file's path.
    ///
    /// The user's own signature, else the general one, filled with the
    /// linked employee's data and pictures.
    Preview {
        /// The CRM user shorthand.
        user: String,
        /// The tenant [Mandant].
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Write here (replacing the file) instead of a new file in the
        /// temporary directory.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List the placeholders a signature may use.
    Placeholders,
}

impl Ctl {
    pub async fn signature(&self, cmd: SignatureCommand) -> Result<(), CtlError> {
        let proxy = SignaturesProxy::new(&self.conn).await?;
        match cmd {
            SignatureCommand::Set { owner, text, html } => {
                self.set_signature(&proxy, &owner, text, html).await
            }
            SignatureCommand::Show { owner } => {
                let (text, html) = proxy.get_signature(&owner.tenant, &owner.user).await?;
                if self.json {
                    let v = serde_json::json!({
                        "tenant": owner.tenant, "user": owner.user, "text": text, "html": html,
                    });
                    println!("{v}");
                } else {
                    println!("text:\n{}\nhtml:\n{}", text.trim_end(), html.trim_end());
                }
                Ok(())
            }
            SignatureCommand::Remove { owner } => {
                Ok(proxy.remove_signature(&owner.tenant, &owner.user).await?)
            }
            SignatureCommand::Preview {
                user,
                tenant,
                output,
            } => self.preview(&proxy, &tenant, &user, output).await,
            SignatureCommand::Placeholders => {
                let list = proxy.placeholders().await?;
                if self.json {
                    println!("{}", serde_json::json!(list));
                } else {
                    for p in list {
                        println!("{p}");
                    }
                }
                Ok(())
            }
        }
    }

    async fn set_signature(
        &self,
        proxy: &SignaturesProxy<'_>,
        owner: &Owner,
        text: Option<PathBuf>,
        html: Option<PathBuf>,
    ) -> Result<(), CtlError> {
        let stdin = |p: &Option<PathBuf>| p.as_deref() == Some(Path::new("-"));
        if text.is_none() && html.is_none() {
            return Err(CtlError::usage("give --text FILE, --html FILE or both"));
        }
        if stdin(&text) && stdin(&html) {
            return Err(CtlError::usage(
                "only one of --text and --html can be stdin",
            ));
        }
        let text = text.map(|p| read_part(&p, "text", MAX_TEXT)).transpose()?;
        let html = html.map(|p| read_part(&p, "html", MAX_HTML)).transpose()?;
        let (text, html) = match (text, html) {
            (Some(t), Some(h)) => (t, h),
            (t, h) => {
                let (old_text, old_html) =
                    match proxy.get_signature(&owner.tenant, &owner.user).await {
                        Ok(old) => old,
                        Err(e) => match CtlError::from(e) {
                            e if e.name == "NotFound" => Default::default(),
                            e => return Err(e),
                        },
                    };
                (t.unwrap_or(old_text), h.unwrap_or(old_html))
            }
        };
        proxy
            .set_signature(&owner.tenant, &owner.user, &text, &html)
            .await?;
        Ok(())
    }

    async fn preview(
        &self,
        proxy: &SignaturesProxy<'_>,
        tenant: &str,
        user: &str,
        output: Option<PathBuf>,
    ) -> Result<(), CtlError> {
        let (html, text, source) = proxy.preview_signature(tenant, user).await?;
        let whose = if source == "user" {
            format!("own signature of {user}")
        } else {
            format!("general signature, for {user}")
        };
        let page = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <title>Signature preview: {title}</title></head>\n<body>\n{html}\n\
             <hr>\n<pre>{text}</pre>\n</body></html>\n",
            title = escape_html(&format!("{whose}, tenant {tenant}")),
            text = escape_html(&text),
        );
        let path = write_page(output, tenant, user, page.as_bytes())?;
        if self.json {
            let v = serde_json::json!({ "path": path, "source": source });
            println!("{v}");
        } else {
            eprintln!("postfachctl: preview of the {whose} (tenant {tenant})");
            println!("{}", path.display());
        }
        Ok(())
    }
}

/// A part of the signature from `path` (`-` = stdin): UTF-8, and read no
/// further than the daemon would accept.
fn read_part(path: &Path, what: &str, max: usize) -> Result<String, CtlError> {
    let name = path.display();
    let fail = |e: std::io::Error| CtlError::local("InvalidArgument", format!("{name}: {e}"));
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if path == Path::new("-") {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    }
    .map_err(fail)?;
    if bytes.len() > max {
        return Err(CtlError::local(
            "InvalidArgument",
            format!("{what}: {name} is larger than {max} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        CtlError::local(
            "InvalidArgument",
            format!("{what}: {name} is not UTF-8 text"),
        )
    })
}

/// Write the preview page; returns its absolute path.
fn write_page(
    output: Option<PathBuf>,
    tenant: &str,
    user: &str,
    page: &[u8],
) -> Result<PathBuf, CtlError> {
    let fail = |p: &Path, e: std::io::Error| {
        CtlError::local("Failed", format!("cannot write {}: {e}", p.display()))
    };
    if let Some(path) = output {
        std::fs::write(&path, page).map_err(|e| fail(&path, e))?;
        return std::path::absolute(&path).map_err(|e| fail(&path, e));
    }
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect()
    };
    let dir = std::env::temp_dir();
    let stem = format!(
        "postfach-signature-{}-{}-{}",
        safe(tenant),
        safe(user),
        std::process::id()
    );
    for n in 0..100 {
        let name = if n == 0 {
            format!("{stem}.html")
        } else {
            format!("{stem}-{n}.html")
        };
        let path = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(page).map_err(|e| fail(&path, e))?;
                return std::path::absolute(&path).map_err(|e| fail(&path, e));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(&path, e)),
        }
    }
    Err(CtlError::local(
        "Failed",
        format!(
            "cannot find a free file name for {stem}.html in {}",
            dir.display()
        ),
    ))
}
