//! The `ListMessages` filter (ARCHITECTURE.md "The D-Bus API"): `tenant s`, `account o`,
//! `folder s`, `unassigned b`, `read b`, `since x`, `until x`, `text s`.
//! Unknown keys and wrong types are `InvalidArgument` naming the key.

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

use crate::error::{Error, Result};
use crate::store::{ListQuery, Visibility};

/// How many filter keys there are.
const KEYS: usize = 8;

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
        super::wire::check_keys("filter", dict.keys(), dict.len(), KEYS)?;
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
                ("tenant", Variant::Str(s)) => {
                    super::wire::check_len("tenant", s, crate::account::MAX_STRING)?;
                    f.tenant = Some(s.to_string());
                }
                ("account", Variant::ObjectPath(p)) => {
                    let id = super::account_id(p.as_str())
                        .ok_or_else(|| Error::invalid("account", format!("{p} is not an account path")))?;
                    f.account = Some(id.to_string());
                }
                ("folder", Variant::Str(s)) => {
                    if !FOLDERS.contains(&s.as_str()) {
                        return Err(Error::invalid("folder", format!("unknown folder {}; one of inbox, outbox, drafts", crate::redact::quote(s))));
                    }
                    f.folder = s.to_string();
                }
                ("unassigned", Variant::Bool(b)) => f.unassigned = Some(*b),
                ("read", Variant::Bool(b)) => f.read = Some(*b),
                ("since", Variant::I64(t)) => f.since = Some(*t),
                ("until", Variant::I64(t)) => f.until = Some(*t),
                ("text", Variant::Str(s)) => {
                    super::wire::check_len("text", s, crate::account::MAX_STRING)?;
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

    /// The store query for one page as `viewer` sees it.
    pub fn query(self, viewer: Visibility, offset: u32, limit: u32) -> ListQuery {
        ListQuery {
            viewer,
            folder: self.folder,
            account: self.account,
            tenant: self.tenant,
            unassigned: self.unassigned,
            read: self.read,
            since: self.since,
            until: self.until,
            text: self.text,
            offset,
            limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: Vec<(&str, Variant<'_>)>) -> HashMap<String, OwnedVariant> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), OwnedVariant::try_from(v).unwrap()))
            .collect()
    }

    fn bad_key(pairs: Vec<(&str, Variant<'_>)>) -> String {
        match Filter::parse(dict(pairs)) {
            Err(Error::InvalidArgument { key, .. }) => key,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn every_key_reaches_the_query() {
        let path = zbus::ObjectPath::try_from("/org/postfach/Postfach1/accounts/a7").unwrap();
        let f = Filter::parse(dict(vec![
            ("tenant", Variant::from("t1")),
            ("account", Variant::from(path)),
            ("folder", Variant::from("outbox")),
            ("unassigned", Variant::from(true)),
            ("read", Variant::from(false)),
            ("since", Variant::from(10i64)),
            ("until", Variant::from(20i64)),
            ("text", Variant::from("Rechnung")),
        ]))
        .unwrap();
        let q = f.query(Visibility::User("bob".into()), 5, 7);
        assert_eq!(q.viewer, Visibility::User("bob".into()));
        assert_eq!(q.tenant.as_deref(), Some("t1"));
        assert_eq!(q.account.as_deref(), Some("a7"));
        assert_eq!(q.folder, "outbox");
        assert_eq!((q.unassigned, q.read), (Some(true), Some(false)));
        assert_eq!((q.since, q.until), (Some(10), Some(20)));
        assert_eq!(q.text.as_deref(), Some("rechnung"));
        assert_eq!((q.offset, q.limit), (5, 7));
        let q = Filter::parse(HashMap::new())
            .unwrap()
            .query(Visibility::All, 0, 1);
        assert_eq!(q.folder, "inbox");
        assert!(q.tenant.is_none() && q.account.is_none() && q.text.is_none());
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(bad_key(vec![("colour", Variant::from("x"))]), "colour");
        assert_eq!(bad_key(vec![("tenant", Variant::from(1u32))]), "tenant");
        assert_eq!(bad_key(vec![("account", Variant::from("a7"))]), "account");
        let not_account = zbus::ObjectPath::try_from("/org/other").unwrap();
        assert_eq!(
            bad_key(vec![("account", Variant::from(not_account))]),
            "account"
        );
        assert_eq!(bad_key(vec![("folder", Variant::from("spam"))]), "folder");
        assert_eq!(bad_key(vec![("read", Variant::from("yes"))]), "read");
        assert_eq!(bad_key(vec![("since", Variant::from(5u32))]), "since");
        assert_eq!(
            bad_key(vec![("text", Variant::from("x".repeat(100_000)))]),
            "text"
        );
    }

    #[test]
    fn huge_values_and_keys_are_refused_by_their_size() {
        let huge = "\u{1}".repeat(7 << 20);
        for pairs in [
            vec![("folder", Variant::from(huge.as_str()))],
            vec![("tenant", Variant::from(huge.as_str()))],
            vec![(huge.as_str(), Variant::from(true))],
        ] {
            let e = Filter::parse(dict(pairs)).unwrap_err();
            assert!(e.to_string().len() < 200, "{e}");
        }
        let many: Vec<String> = (0..9).map(|i| format!("k{i}")).collect();
        let e = Filter::parse(dict(
            many.iter()
                .map(|k| (k.as_str(), Variant::from(true)))
                .collect(),
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("filter: 9 keys"), "{e}");
    }
}
