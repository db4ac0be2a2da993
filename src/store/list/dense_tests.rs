//! Deep pages where most of a scope shares one 9-hour bucket, the finest
//! bucket the counters keep (schema 19, `super::rank`): a rank found by
//! the counters lands inside that bucket, and the page's merge walks its
//! entries (many chunks of `super::super::views::chunk`) to the offset.
//! Every page is compared with a plain sorted list of what the viewer may
//! see.

use super::tests::{account, model, page_ids, put, user};
use super::*;

const T0: i64 = 1_700_000_000;
/// Width of a bucket at the finest counted level, in seconds.
const NINE_HOURS: i64 = 1 << 15;

/// `n` dates from a generator seeded with `seed`, in `from..from + span`;
/// every 8th is `from + 77` (ties, broken by id).
fn spread(seed: u64, n: usize, from: i64, span: i64) -> Vec<i64> {
    let mut x = seed;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 8 == 0 {
                from + 77
            } else {
                from + (x % span as u64) as i64
            }
        })
        .collect()
}

/// Every page of `q` at page sizes 50 (from offset 0) and 7 (from offset
/// 3) against the model, past the end included.
fn every_page(store: &Store, ids: &[u64], q: &ListQuery) {
    let want = model(store, ids, q);
    let n = want.len();
    assert!(n > 400, "{n} entries: not a deep scope");
    for (first, limit) in [(0usize, 50usize), (3, 7)] {
        for offset in (first..=n + limit).step_by(limit) {
            let page = ListQuery {
                offset: offset as u32,
                limit: limit as u32,
                ..q.clone()
            };
            let from = offset.min(n);
            let to = (offset + limit).min(n);
            assert_eq!(
                page_ids(store, &page),
                (want[from..to].to_vec(), n as u32),
                "offset {offset} limit {limit} of {q:?}"
            );
        }
    }
}

#[test]
fn deep_pages_inside_one_crowded_nine_hour_bucket_match_a_sorted_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let public = account(&store, "t1", "");
    let alice = account(&store, "t1", "alice");
    let other = account(&store, "t2", "");
    let start = (T0 >> 15) << 15;
    // 2,400 mails in one 9-hour bucket, a few hundred on either side of
    // it (the neighbouring buckets and years away).
    let mut dates = spread(0x9e37_79b9_7f4a_7c15, 2_400, start, NINE_HOURS);
    dates.extend(spread(7, 150, start - NINE_HOURS, NINE_HOURS));
    dates.extend(spread(11, 150, start + NINE_HOURS, NINE_HOURS));
    dates.extend(spread(13, 200, start - (1 << 26), 1 << 27));
    let mut ids = Vec::new();
    for (i, chunk) in dates.chunks(300).enumerate() {
        let mails: Vec<(i64, &str)> = chunk.iter().map(|d| (*d, "Rechnung")).collect();
        let a = [&public, &alice, &public, &other][i % 4];
        ids.extend(put(&store, a, &mails));
    }
    let assign: Vec<(u64, String)> = ids
        .iter()
        .step_by(5)
        .map(|id| (*id, format!("K-{id}")))
        .collect();
    store.set_contacts(&assign).unwrap();

    let inbox = |viewer| ListQuery::new(viewer, "inbox");
    let queries = [
        inbox(Visibility::All),
        inbox(user("alice")),
        inbox(user("bob")),
        ListQuery {
            account: Some(public.id.clone()),
            ..inbox(Visibility::All)
        },
        // Bounds inside the crowded bucket: counted up to a date in it.
        ListQuery {
            since: Some(start + 1_000),
            until: Some(start + 30_000),
            ..inbox(Visibility::All)
        },
        ListQuery {
            until: Some(start + 77),
            ..inbox(Visibility::All)
        },
    ];
    for q in &queries {
        every_page(&store, &ids, q);
    }
}
