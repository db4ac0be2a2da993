//! Threading headers of a reply (RFC 5322 §3.6.4).
//!
//! A reply's `In-Reply-To` is the parent's Message-ID; its `References`
//! are the parent's References (or, lacking them, the parent's single
//! In-Reply-To id), followed by the parent's Message-ID. When the parent is
//! a stored mail, its own headers give the chain; when the caller only
//! knows a Message-ID, the chain starts there.
//!
//! A long thread's chain is cut to its first id and the last
//! [`MAX_REFERENCES`]` - 1`: the first names the thread's root, the last the
//! nearest ancestors, which is what threading clients use (RFC 5322 leaves
//! the length open; Thunderbird and mutt cut similarly), and one header
//! cannot grow without bound.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::MessageParser;

/// Most ids kept in `References`.
pub const MAX_REFERENCES: usize = 20;
/// Longest Message-ID accepted, brackets included (a header line).
const MAX_ID: usize = 998;

/// The mail a reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// With angle brackets.
    pub message_id: String,
    /// The parent's own chain, oldest first, with angle brackets.
    pub references: Vec<String>,
}

/// `<left@right>`: printable ASCII without spaces, in angle brackets, with
/// one `@` inside (RFC 5322 §3.6.4 msg-id, leniently).
pub fn is_message_id(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else {
        return false;
    };
    s.len() <= MAX_ID
        && inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        && inner
            .split_once('@')
            .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
}

fn bracketed(id: &str) -> Option<String> {
    let id = id.trim();
    let id = if id.starts_with('<') {
        id.to_string()
    } else {
        format!("<{id}>")
    };
    is_message_id(&id).then_some(id)
}

impl Parent {
    /// A parent known only by its Message-ID (checked by the caller).
    pub fn by_id(message_id: &str) -> Parent {
        Parent {
            message_id: message_id.to_string(),
            references: Vec::new(),
        }
    }

    /// The parent from its raw bytes; None when it has no usable
    /// Message-ID (then a reply cannot be threaded). Never panics.
    pub fn from_raw(raw: &[u8]) -> Option<Parent> {
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            let m = MessageParser::default().parse_headers(raw)?;
            let message_id = bracketed(m.message_id()?)?;
            let list = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
                v.as_text_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|id| bracketed(id))
                    .collect()
            };
            let mut references = list(m.references());
            if references.is_empty() {
                let irt = list(m.in_reply_to());
                if irt.len() == 1 {
                    references = irt;
                }
            }
            Some(Parent {
                message_id,
                references,
            })
        }));
        parsed.ok().flatten()
    }

    /// The reply's `In-Reply-To` and `References` values (module docs).
    pub fn headers(&self) -> (String, String) {
        let mut chain: Vec<&str> = self
            .references
            .iter()
            .map(String::as_str)
            .filter(|r| *r != self.message_id)
            .collect();
        chain.push(&self.message_id);
        if chain.len() > MAX_REFERENCES {
            let tail = chain.split_off(chain.len() - (MAX_REFERENCES - 1));
            chain.truncate(1);
            chain.extend(tail);
        }
        (self.message_id.clone(), chain.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_checked() {
        assert!(is_message_id("<a.b@c>"));
        for bad in [
            "a@b", "<a b@c>", "<@c>", "<a@>", "<ab>", "<a@b", "<a<@b>", "",
        ] {
            assert!(!is_message_id(bad), "{bad}");
        }
        assert!(!is_message_id(&format!("<{}@x>", "a".repeat(MAX_ID))));
    }

    #[test]
    fn chain_continues_the_parents_references() {
        let raw = b"Message-ID: <3@x>\r\nIn-Reply-To: <2@x>\r\n\
            References: <1@x>\r\n <2@x>\r\nSubject: hi\r\n\r\nbody";
        let p = Parent::from_raw(raw).unwrap();
        assert_eq!(
            p.headers(),
            ("<3@x>".to_string(), "<1@x> <2@x> <3@x>".to_string())
        );
    }

    #[test]
    fn without_references_the_single_in_reply_to_starts_the_chain() {
        let raw = b"Message-ID: <3@x>\r\nIn-Reply-To: <2@x>\r\n\r\nbody";
        let p = Parent::from_raw(raw).unwrap();
        assert_eq!(p.headers().1, "<2@x> <3@x>");
        let raw = b"Message-ID: <3@x>\r\nIn-Reply-To: <1@x> <2@x>\r\n\r\nbody";
        assert_eq!(Parent::from_raw(raw).unwrap().headers().1, "<3@x>");
    }

    #[test]
    fn a_parent_without_message_id_cannot_be_threaded() {
        assert_eq!(Parent::from_raw(b"Subject: x\r\n\r\nbody"), None);
        assert_eq!(Parent::from_raw(b"Message-ID: <>\r\n\r\n"), None);
        assert_eq!(Parent::from_raw(b"\xff\xfe\x00garbage"), None);
    }

    #[test]
    fn long_chains_keep_the_root_and_the_nearest_ancestors() {
        let refs: Vec<String> = (0..50).map(|i| format!("<{i}@x>")).collect();
        let p = Parent {
            message_id: "<50@x>".into(),
            references: refs,
        };
        let (irt, chain) = p.headers();
        assert_eq!(irt, "<50@x>");
        let ids: Vec<&str> = chain.split(' ').collect();
        assert_eq!(ids.len(), MAX_REFERENCES);
        assert_eq!(ids[0], "<0@x>");
        assert_eq!(ids[1], "<32@x>");
        assert_eq!(ids[MAX_REFERENCES - 1], "<50@x>");
        assert_eq!(Parent::by_id("<a@b>").headers().1, "<a@b>");
    }
}
