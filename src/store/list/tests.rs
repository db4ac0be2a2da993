//! ListMessages against a model: every page, total and visibility answer is
//! compared with a plain filter-and-sort over all stored summaries, so the
//! scopes, counters and rank search must agree with the rules, not with
//! themselves.

use std::collections::HashMap;

use super::*;
use crate::account::{Account, SettingValue};
use crate::store::{NewMail, Summary};

const T0: i64 = 1_700_000_000;

pub(crate) fn account(store: &Store, tenant: &str, owner: &str) -> Account {
    store
        .create_account(|id| {
            let s = [
                ("kind", "pop3"),
                ("host", "127.0.0.1"),
                ("address", "info@example.org"),
                ("tenant", tenant),
                ("private_owner", owner),
            ];
            let s: Vec<(String, SettingValue)> = s
                .iter()
                .map(|(k, v)| (k.to_string(), SettingValue::Str(v.to_string())))
                .collect();
            Account::create(id, &s)
        })
        .unwrap()
}

pub(crate) fn set_owner(store: &Store, id: &str, owner: &str) {
    let c = [(
        "private_owner".to_string(),
        SettingValue::Str(owner.to_string()),
    )];
    store.update_account(id, |cur| cur.updated(&c)).unwrap();
}

/// A summariser for the test mails below: headers `Subject`, `From`, `To`,
/// and `X-Epoch` as the date.
pub(crate) fn summary(raw: &[u8], _received: i64) -> Summary {
    let text = String::from_utf8_lossy(raw);
    let mut s = Summary::default();
    for line in text.lines().take_while(|l| !l.is_empty()) {
        match line.split_once(": ") {
            Some(("Subject", v)) => s.subject = v.to_string(),
            Some(("From", v)) => s.from = v.to_string(),
            Some(("To", v)) => s.to = vec![v.to_string()],
            Some(("X-Epoch", v)) => s.date = v.parse().ok(),
            _ => {}
        }
    }
    s
}

/// Store mails with the given (date, subject) on `a`; returns their ids.
pub(crate) fn put(store: &Store, a: &Account, mails: &[(i64, &str)]) -> Vec<u64> {
    let batch = mails
        .iter()
        .map(|(date, subject)| {
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            NewMail {
                server_id: format!("pop3:{seq}"),
                raw: format!(
                    "From: Sender {seq} <s{seq}@example.org>\r\nTo: crm@example.org\r\n\
                     Subject: {subject}\r\nX-Epoch: {date}\r\n\r\nbody {seq}\r\n"
                )
                .into_bytes()
                .into(),
                received: T0,
            }
        })
        .collect();
    store.commit_batch(a, batch, &summary).unwrap()
}

pub(crate) static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn user(u: &str) -> Visibility {
    Visibility::User(u.to_string())
}

/// The rules of ARCHITECTURE.md ("The D-Bus API", "Invariants") written out plainly.
pub(crate) fn model(store: &Store, ids: &[u64], q: &ListQuery) -> Vec<u64> {
    let owners: HashMap<String, String> = store
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.private_owner))
        .collect();
    let text = q.text.as_ref();
    let mut ms: Vec<MessageMeta> = ids
        .iter()
        .filter_map(|id| store.message(*id).unwrap())
        .filter(|m| match &q.viewer {
            Visibility::All => true,
            Visibility::User(u) => {
                !m.contact.is_empty()
                    || owners
                        .get(&m.account)
                        .is_some_and(|o| o.is_empty() || o == u)
            }
        })
        .filter(|m| q.account.as_ref().is_none_or(|a| &m.account == a))
        .filter(|m| q.tenant.as_ref().is_none_or(|t| &m.tenant == t))
        .filter(|m| q.unassigned.is_none_or(|u| m.contact.is_empty() == u))
        .filter(|m| q.read.is_none_or(|r| m.read == r))
        .filter(|m| q.since.is_none_or(|t| m.date >= t))
        .filter(|m| q.until.is_none_or(|t| m.date <= t))
        .filter(|m| text.as_ref().is_none_or(|t| text_matches(t, m)))
        .collect();
    ms.sort_by_key(|m| std::cmp::Reverse((m.date, m.id)));
    ms.into_iter().map(|m| m.id).collect()
}

/// The `text` rule of docs/SEARCH.md written out plainly: the trimmed,
/// lowercased query occurs in a lowercased field where a word starts (or
/// the query starts with a non-word character); no word: no filter.
pub(crate) fn text_matches(text: &str, m: &MessageMeta) -> bool {
    let t = text.trim().to_lowercase();
    if !t.chars().any(char::is_alphanumeric) {
        return true;
    }
    let starts_word = t.chars().next().is_some_and(char::is_alphanumeric);
    [&m.subject, &m.from]
        .into_iter()
        .chain(&m.to)
        .chain(&m.cc)
        .any(|f| {
            let f = f.to_lowercase();
            (0..f.len()).filter(|i| f.is_char_boundary(*i)).any(|i| {
                f[i..].starts_with(&t)
                    && (!starts_word || !f[..i].chars().last().is_some_and(char::is_alphanumeric))
            })
        })
}

pub(crate) fn page_ids(store: &Store, q: &ListQuery) -> (Vec<u64>, u32) {
    let (page, total) = store.list_messages(q).unwrap();
    (page.into_iter().map(|m| m.id).collect(), total)
}

/// Compare a range of offsets of `q` with the model.
pub(crate) fn check(store: &Store, ids: &[u64], q: &ListQuery) {
    let want = model(store, ids, q);
    let n = want.len() as u32;
    for offset in [
        0,
        1,
        5,
        63,
        64,
        65,
        100,
        257,
        n / 2,
        n.saturating_sub(1),
        n,
        n + 3,
    ] {
        for limit in [1, 7] {
            let q = ListQuery {
                offset,
                limit,
                ..q.clone()
            };
            let from = (offset as usize).min(want.len());
            let to = (from + limit as usize).min(want.len());
            assert_eq!(
                page_ids(store, &q),
                (want[from..to].to_vec(), n),
                "offset {offset} limit {limit} of {q:?}"
            );
        }
    }
}

/// A deterministic spread of dates: far apart (every bucket level), equal
/// (ties by id), negative (before 1970) and packed into one bucket.
fn dates(n: usize) -> Vec<i64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match i % 10 {
                0 | 1 => T0,
                2 => -((x % 100_000) as i64),
                3 => T0 + (x % 900) as i64,
                _ => T0 - (x % (1 << 34)) as i64,
            }
        })
        .collect()
}

#[test]
fn pages_totals_and_filters_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let public1 = account(&store, "t1", "");
    let alice = account(&store, "t1", "alice");
    let bob = account(&store, "t2", "bob");
    let public2 = account(&store, "t2", "");
    let accounts = [&public1, &alice, &bob, &public2];
    let all_dates = dates(800);
    let mut ids = Vec::new();
    for (i, chunk) in all_dates.chunks(100).enumerate() {
        let mails: Vec<(i64, &str)> = chunk
            .iter()
            .enumerate()
            .map(|(j, d)| {
                (
                    *d,
                    if j % 3 == 0 {
                        "Angebot Nr. 7"
                    } else {
                        "Rechnung"
                    },
                )
            })
            .collect();
        ids.extend(put(&store, accounts[i % 4], &mails));
    }
    // Bulk assignment in one transaction, then single changes.
    let bulk: Vec<(u64, String)> = ids
        .iter()
        .step_by(3)
        .map(|id| (*id, format!("K-{id}")))
        .collect();
    store.set_contacts(&bulk).unwrap();
    assert!(store
        .set_contacts(&[(ids[1], "K".into()), (99_999, "K".into())])
        .is_err());
    assert_eq!(
        store.message(ids[1]).unwrap().unwrap().contact,
        "",
        "all or nothing"
    );
    for (i, id) in ids.iter().enumerate() {
        if i % 4 == 1 {
            store.set_read(*id, true).unwrap();
        }
    }
    let mut queries = Vec::new();
    for viewer in [Visibility::All, user("alice"), user("bob"), user("carol")] {
        let q = ListQuery::new(viewer, "inbox");
        queries.push(q.clone());
        for a in accounts {
            queries.push(ListQuery {
                account: Some(a.id.clone()),
                ..q.clone()
            });
        }
        for u in [Some(true), Some(false)] {
            queries.push(ListQuery {
                unassigned: u,
                ..q.clone()
            });
            queries.push(ListQuery {
                unassigned: u,
                tenant: Some("t2".into()),
                ..q.clone()
            });
            queries.push(ListQuery {
                unassigned: u,
                account: Some(alice.id.clone()),
                ..q.clone()
            });
        }
        queries.push(ListQuery {
            tenant: Some("t1".into()),
            ..q.clone()
        });
        queries.push(ListQuery {
            tenant: Some("t1".into()),
            account: Some(bob.id.clone()),
            ..q.clone()
        });
        for (since, until) in [
            (Some(T0), None),
            (None, Some(T0)),
            (Some(T0 - (1 << 30)), Some(T0 - 1)),
            (Some(-50_000), Some(0)),
            (Some(5), Some(4)),
        ] {
            queries.push(ListQuery {
                since,
                until,
                ..q.clone()
            });
        }
        queries.push(ListQuery {
            read: Some(true),
            ..q.clone()
        });
        queries.push(ListQuery {
            text: Some("ANGEBOT".into()),
            since: Some(T0 - (1 << 32)),
            ..q.clone()
        });
        queries.push(ListQuery {
            text: Some("s17@example".into()),
            ..q.clone()
        });
        queries.push(ListQuery {
            text: Some("crm@".into()),
            read: Some(false),
            ..q
        });
    }
    for q in &queries {
        check(&store, &ids, q);
    }
    // Folders other than the inbox are empty so far; "" means inbox.
    assert_eq!(
        page_ids(&store, &ListQuery::new(Visibility::All, "outbox")),
        (vec![], 0)
    );
    assert_eq!(
        page_ids(&store, &ListQuery::new(Visibility::All, "")).1,
        800
    );
    assert_eq!(store.count_messages(&alice.id).unwrap(), 200);
}

#[test]
fn ties_are_broken_by_id_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(&store, "t1", "");
    let ids = put(
        &store,
        &a,
        &[(300, "a"), (100, "b"), (200, "c"), (300, "d"), (-5, "e")],
    );
    let q = ListQuery::new(Visibility::All, "inbox");
    let order = vec![ids[3], ids[0], ids[2], ids[1], ids[4]];
    assert_eq!(page_ids(&store, &q), (order.clone(), 5));
    let q = ListQuery {
        offset: 1,
        limit: 2,
        ..q
    };
    assert_eq!(page_ids(&store, &q), (order[1..3].to_vec(), 5));
}

#[test]
fn visibility_matrix_for_lists_and_single_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let public = account(&store, "t1", "");
    let private = account(&store, "t1", "alice");
    let p = put(&store, &public, &[(10, "pub-free"), (11, "pub-assigned")]);
    let q = put(
        &store,
        &private,
        &[(12, "priv-free"), (13, "priv-assigned")],
    );
    store.set_contact(p[1], "K-1").unwrap();
    store.set_contact(q[1], "K-2").unwrap();
    let (pf, pa, qf, qa) = (p[0], p[1], q[0], q[1]);
    let cases = [
        (Visibility::All, vec![qa, qf, pa, pf]),
        (user("alice"), vec![qa, qf, pa, pf]),
        (user("bob"), vec![qa, pa, pf]),
    ];
    for (viewer, want) in cases {
        let list = page_ids(&store, &ListQuery::new(viewer.clone(), "inbox"));
        assert_eq!(list, (want.clone(), want.len() as u32), "{viewer:?}");
        for id in [pf, pa, qf, qa] {
            let seen = store.visible_message(id, &viewer).unwrap().map(|m| m.id);
            assert_eq!(seen, want.contains(&id).then_some(id), "{viewer:?} {id}");
        }
        // The account filter answers the same question per account.
        let of_private = ListQuery {
            account: Some(private.id.clone()),
            ..ListQuery::new(viewer.clone(), "inbox")
        };
        let want_private: Vec<u64> = want.iter().copied().filter(|i| q.contains(i)).collect();
        assert_eq!(page_ids(&store, &of_private).0, want_private, "{viewer:?}");
    }
    assert!(store
        .visible_message(999, &Visibility::All)
        .unwrap()
        .is_none());

    // Owner changes take effect at once, for lists and single messages.
    set_owner(&store, &private.id, "bob");
    let bob = page_ids(&store, &ListQuery::new(user("bob"), "inbox"));
    assert_eq!(bob, (vec![qa, qf, pa, pf], 4));
    assert!(store.visible_message(qf, &user("alice")).unwrap().is_none());
    assert_eq!(
        page_ids(&store, &ListQuery::new(user("alice"), "inbox")).1,
        3
    );
    set_owner(&store, &private.id, "");
    assert_eq!(
        page_ids(&store, &ListQuery::new(user("carol"), "inbox")).1,
        4
    );
    set_owner(&store, &private.id, "alice");
    assert_eq!(
        page_ids(&store, &ListQuery::new(user("carol"), "inbox")).1,
        3
    );
    // Unassigning makes the current owner decide again.
    store.set_contact(qa, "").unwrap();
    assert_eq!(
        page_ids(&store, &ListQuery::new(user("bob"), "inbox")),
        (vec![pa, pf], 2)
    );
    assert!(store.visible_message(qa, &user("bob")).unwrap().is_none());
    assert!(store.visible_message(qa, &user("alice")).unwrap().is_some());
}

#[test]
fn residual_filter_total_is_extrapolated_past_the_scan_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(&store, "t1", "");
    let mails: Vec<(i64, &str)> = (0..10).map(|i| (i, "m")).collect();
    let ids = put(&store, &a, &mails);
    for id in ids.iter().step_by(2) {
        store.set_read(*id, true).unwrap();
    }
    let q = ListQuery {
        read: Some(true),
        limit: 2,
        ..ListQuery::new(Visibility::All, "inbox")
    };
    // Exact with room to scan: dates 8, 6 on the page, 5 read in all.
    assert_eq!(store.list_scanning(&q, 100).unwrap().1, 5);
    // The page needs 9, 8, 7, 6; two more are scanned (5, 4: one match),
    // so 3 matches in 6 scanned and 4 left: 3 + round(4 * 3/6) = 5.
    let (page, total) = store.list_scanning(&q, 2).unwrap();
    let dates: Vec<i64> = page.iter().map(|m| m.date).collect();
    assert_eq!((dates, total), (vec![8, 6], 5));
    let q = ListQuery {
        text: Some("nothing matches".into()),
        ..q
    };
    assert_eq!(store.list_scanning(&q, 2).unwrap(), (vec![], 0));
}
