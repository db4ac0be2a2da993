//! ListMessages `text` against the model of `super::tests`: random words
//! with shared prefixes, deletes, contact and owner changes, a deleted
//! account, every filter; through the word index and through the view scan
//! that serves prefixes of too many words.

use redb::{Database, ReadableTableMetadata};

use super::tests::{account, check, set_owner, summary, user, SEQ};
use super::*;
use crate::store::schema::SEARCH_POSTINGS;
use crate::store::search::read::{Candidates, MERGE_MAX};
use crate::store::{write_txn, NewMail, DB_FILE};

const T0: i64 = 1_700_000_000;

const VOCAB: &[&str] = &[
    "angebot",
    "Angebote",
    "anfrage",
    "Rechnung",
    "rechnungen",
    "re",
    "AW",
    "müller",
    "mueller",
    "kunde",
    "2024",
    "20240",
    "x",
];
const SEPS: &[&str] = &[" ", "-", ": ", ".", "_", " (", "+"];

struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
    fn words(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push_str(SEPS[self.next(SEPS.len())]);
            }
            s.push_str(VOCAB[self.next(VOCAB.len())]);
        }
        s
    }
}

/// Store mails (date, subject, sender) on `a`; returns their ids.
fn put(store: &Store, a: &Account, mails: &[(i64, String, String)]) -> Vec<u64> {
    let batch = mails
        .iter()
        .map(|(date, subject, from)| {
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            NewMail {
                server_id: format!("pop3:{seq}"),
                raw: format!(
                    "From: {from}\r\nTo: crm@example.org\r\nSubject: {subject}\r\n\
                     X-Epoch: {date}\r\n\r\nbody {seq}\r\n"
                )
                .into_bytes()
                .into(),
                received: T0,
            }
        })
        .collect();
    store.commit_batch(a, batch, &summary).unwrap()
}

fn random_mails(rng: &mut Rng, n: usize) -> Vec<(i64, String, String)> {
    (0..n)
        .map(|_| {
            let date = T0 - (rng.next(5000) as i64) * 600;
            let n = 1 + rng.next(4);
            let subject = rng.words(n);
            let n = 1 + rng.next(2);
            let from = format!(
                "{} <{}{}@example.org>",
                rng.words(n),
                VOCAB[rng.next(VOCAB.len())].to_lowercase(),
                rng.next(30)
            );
            (date, subject, from)
        })
        .collect()
}

/// The queries of the model test: words, prefixes, inner parts of words
/// (which match nothing), several words, addresses, nothing.
const TEXTS: &[&str] = &[
    "angebot",
    "ANGEBOTE",
    "an",
    "rech",
    "MÜL",
    "gebot",
    "re: angebot",
    "kunde 2",
    "kunde2@",
    "@example",
    "x",
    "2024",
    "zzz",
    " @ ",
];

#[test]
fn text_pages_match_the_model_through_the_word_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let public1 = account(&store, "t1", "");
    let alice = account(&store, "t1", "alice");
    let bob = account(&store, "t2", "bob");
    let public2 = account(&store, "t2", "");
    let accounts = [&public1, &alice, &bob, &public2];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut ids = Vec::new();
    for i in 0..8 {
        let mails = random_mails(&mut rng, 80);
        ids.extend(put(&store, accounts[i % 4], &mails));
    }
    let assign: Vec<(u64, String)> = ids.iter().step_by(5).map(|id| (*id, "K".into())).collect();
    store.set_contacts(&assign).unwrap();
    for id in ids.iter().step_by(7) {
        store.set_read(*id, true).unwrap();
    }
    for id in ids.iter().skip(3).step_by(9) {
        store.delete_message(*id).unwrap();
    }
    // Unassigning one re-files its postings as well.
    store.set_contact(ids[5], "").unwrap();
    set_owner(&store, &public2.id, "carol");
    store.delete_account(&bob.id).unwrap();

    let mut n = 0;
    for viewer in [Visibility::All, user("alice"), user("bob"), user("carol")] {
        for text in TEXTS {
            let q = ListQuery {
                text: Some(text.to_string()),
                ..ListQuery::new(viewer.clone(), "inbox")
            };
            let variants = [
                q.clone(),
                ListQuery {
                    account: Some(alice.id.clone()),
                    ..q.clone()
                },
                ListQuery {
                    tenant: Some("t2".into()),
                    unassigned: Some(false),
                    ..q.clone()
                },
                ListQuery {
                    unassigned: Some(true),
                    read: Some(false),
                    ..q.clone()
                },
                ListQuery {
                    since: Some(T0 - 1_000_000),
                    until: Some(T0 - 500_000),
                    ..q.clone()
                },
            ];
            for v in &variants {
                check(&store, &ids, v);
                n += 1;
            }
        }
    }
    assert_eq!(n, 4 * TEXTS.len() * 5);
    // The model is not vacuous: the words are found, the inner part is not.
    let count = |t: &str| {
        let q = ListQuery {
            text: Some(t.into()),
            ..ListQuery::new(Visibility::All, "inbox")
        };
        store.list_messages(&q).unwrap().1
    };
    assert!(count("angebot") > 50);
    assert!(count("angebot") > count("angebote"));
    assert_eq!(count("gebot"), 0);
    assert!(count(" @ ") > count("x"), "no word: no filter");
}

#[test]
fn a_prefix_of_too_many_words_reads_the_view_and_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let public = account(&store, "t1", "");
    let private = account(&store, "t1", "alice");
    let mails: Vec<(i64, String, String)> = (0..MERGE_MAX + 50)
        .map(|i| {
            let subject = format!("Zeta{i} Beleg");
            (
                T0 + (i as i64 % 97),
                subject,
                "Kunde <k@example.org>".into(),
            )
        })
        .collect();
    let mut ids = put(&store, &public, &mails[..200]);
    ids.extend(put(&store, &private, &mails[200..]));
    {
        let tx = store.read().unwrap();
        let c = |p: &str| Candidates::new(&tx, tx.places(), p, i64::MIN, i64::MAX).unwrap();
        assert!(c("zeta").is_none(), "more than MERGE_MAX words");
        assert!(c("zeta1").is_some());
    }
    for viewer in [Visibility::All, user("alice"), user("bob")] {
        for text in ["zeta", "zeta1", "ZETA2 beleg", "beleg"] {
            let q = ListQuery {
                text: Some(text.into()),
                ..ListQuery::new(viewer.clone(), "inbox")
            };
            check(&store, &ids, &q);
        }
    }
}

#[test]
fn totals_past_the_scan_limit_are_extrapolated_from_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(&store, "t1", "");
    // Every other mail has the word; dates one apart.
    let mails: Vec<(i64, String, String)> = (0..40)
        .map(|i| {
            let s = if i % 2 == 0 { "treffer" } else { "sonst" };
            (i, s.into(), "K <k@example.org>".into())
        })
        .collect();
    put(&store, &a, &mails);
    let q = ListQuery {
        text: Some("treffer".into()),
        limit: 2,
        ..ListQuery::new(Visibility::All, "inbox")
    };
    assert_eq!(store.list_scanning(&q, 100).unwrap().1, 20, "exact");
    // Page: 38, 36; then 34..=28 read past it (4 more), oldest 28: 6
    // matches among the 12 view entries dated 28..=39, scaled to all 40.
    let (page, total) = store.list_scanning(&q, 4).unwrap();
    let dates: Vec<i64> = page.iter().map(|m| m.date).collect();
    assert_eq!((dates, total), (vec![38, 36], 20));
    // Matches only among the newest: the estimate follows the share seen.
    let q = ListQuery {
        since: Some(20),
        ..q
    };
    assert_eq!(store.list_scanning(&q, 4).unwrap().1, 10);
}

/// Rewrite a current store file as schema 7 left it: no word index.
fn downgrade_to_v7(path: &std::path::Path) {
    let db = Database::open(path).unwrap();
    let tx = write_txn(&db).unwrap();
    assert!(tx.delete_table(SEARCH_POSTINGS).unwrap());
    crate::store::schema::put_u64(&tx, crate::store::schema::KEY_VERSION, 7).unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_schema_7_store_gets_its_word_index() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = Store::open(dir.path()).unwrap();
        let a = account(&store, "t1", "");
        let mut rng = Rng(7);
        put(&store, &a, &random_mails(&mut rng, 120))
    };
    downgrade_to_v7(&dir.path().join(DB_FILE));
    let store = Store::open(dir.path()).unwrap();
    {
        let tx = store.read().unwrap();
        assert!(tx.open_table(SEARCH_POSTINGS).unwrap().len().unwrap() > 0);
    }
    for text in TEXTS {
        let q = ListQuery {
            text: Some(text.to_string()),
            ..ListQuery::new(Visibility::All, "inbox")
        };
        check(&store, &ids, &q);
    }
}
