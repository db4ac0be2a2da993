//! The `ListMessages` filter (DESIGN.md §3): `tenant s`, `account o`,
//! `folder s`, `unassigned b`, `read b`, `since x`, `until x`, `text s`.
//! Unknown keys and wrong types are `InvalidArgument` naming the key.

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

use crate::error::{Error, Result};
use crate::store::{ListQuery, MessageMeta};

/// Folders a mailbox view can show.
pub const FOLDERS: &[&str] = &["inbox", "outbox", "drafts"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub tenant: Option<String>,
    pub account: Option<String>,
    pub folder: String,
    pub unassigned: Option<bool>,
    pub read: Option<bool>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Lower-cased search text over subject, sender and recipients.
    pub text: Option<String>,
}

fn wrong(key: &str, want: &str, v: &Variant<'_>) -> Error {
    Error::invalid(
        key,
        format!("wrong type: expected {want}, got {}", v.value_signature()),
    )
}

impl Filter {
    pub fn parse(dict: HashMap<String, OwnedVariant>) -> Result<Filter> {
        let mut f = Filter {
            folder: "inbox".into(),
            ..Filter::default()
        };
        let mut keys: Vec<_> = dict.into_iter().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, v) in keys {
            let v: &Variant<'_> = &v;
            let v = match v {
                Variant::Variant(inner) => inner.as_ref(),
                other => other,
            };
            match (key.as_str(), v) {
                ("tenant", Variant::Str(s)) => f.tenant = Some(s.to_string()),
                ("account", Variant::ObjectPath(p)) => {
                    let id = super::account_id(p.as_str())
                        .ok_or_else(|| Error::invalid("account", format!("{p} is not an account path")))?;
                    f.account = Some(id.to_string());
                }
                ("folder", Variant::Str(s)) => {
                    if !FOLDERS.contains(&s.as_str()) {
                        return Err(Error::invalid("folder", format!("unknown folder {s:?}; one of inbox, outbox, drafts")));
                    }
                    f.folder = s.to_string();
                }
                ("unassigned", Variant::Bool(b)) => f.unassigned = Some(*b),
                ("read", Variant::Bool(b)) => f.read = Some(*b),
                ("since", Variant::I64(t)) => f.since = Some(*t),
                ("until", Variant::I64(t)) => f.until = Some(*t),
                ("text", Variant::Str(s)) => {
                    if s.len() > crate::account::MAX_STRING {
                        return Err(Error::invalid("text", "too long"));
                    }
                    f.text = Some(s.to_lowercase());
                }
                ("tenant" | "folder" | "text", other) => return Err(wrong(&key, "s (string)", other)),
                ("account", other) => return Err(wrong(&key, "o (object path)", other)),
                ("unassigned" | "read", other) => return Err(wrong(&key, "b (boolean)", other)),
                ("since" | "until", other) => return Err(wrong(&key, "x (int64, unix seconds)", other)),
                _ => {
                    return Err(Error::invalid(
                        &key,
                        "unknown filter key; known: tenant, account, folder, unassigned, read, since, until, text",
                    ))
                }
            }
        }
        Ok(f)
    }

    /// Does a message pass the filter (visibility aside)?
    pub fn matches(&self, m: &MessageMeta) -> bool {
        self.tenant.as_ref().is_none_or(|t| &m.tenant == t)
            && self.unassigned.is_none_or(|u| m.contact.is_empty() == u)
            && self.read.is_none_or(|r| m.read == r)
            && self.since.is_none_or(|t| m.date >= t)
            && self.until.is_none_or(|t| m.date <= t)
            && self.text.as_ref().is_none_or(|t| {
                m.subject.to_lowercase().contains(t)
                    || m.from.to_lowercase().contains(t)
                    || m.to
                        .iter()
                        .chain(&m.cc)
                        .any(|r| r.to_lowercase().contains(t))
            })
    }

    /// The store query for one page, with `visible` deciding visibility.
    pub fn query(
        self,
        offset: u32,
        limit: u32,
        visible: impl Fn(&MessageMeta) -> bool + Send + 'static,
    ) -> ListQuery {
        ListQuery {
            account: self.account.clone(),
            folder: self.folder.clone(),
            offset,
            limit,
            visible: Box::new(move |m| visible(m) && self.matches(m)),
        }
    }
}
