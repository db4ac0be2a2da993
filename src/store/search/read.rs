//! Reading the word index: the postings of every word a query word is a
//! prefix of, merged newest first (date, then id, like the views).

use std::ops::Bound;

use redb::ReadOnlyTable;

use crate::error::Context;
use crate::error::Result;

pub(in crate::store) type Words = ReadOnlyTable<(&'static str, i64, u64), &'static str>;

type Range = redb::Range<'static, (&'static str, i64, u64), &'static str>;

/// At most this many indexed words are merged for one query word. A prefix
/// shared by more words (one or two letters, a number's first digits) is
/// common; the caller then reads the view newest first instead, which
/// fills a page quickly exactly when matches are common.
pub(in crate::store) const MERGE_MAX: usize = 256;

/// One posting: date, message id, place (`super::parse_place`).
pub(in crate::store) type Posting = (i64, u64, String);

/// Newest-first postings of all words starting with a prefix, within
/// `since..=until`. A message found under two such words comes once.
pub(in crate::store) struct Candidates {
    iters: Vec<Range>,
    heads: Vec<Option<Posting>>,
    last: Option<(i64, u64)>,
}

/// The indexed words starting with `prefix`, in order; None if more than
/// [`MERGE_MAX`]. One seek per word: each skips that word's postings.
fn words_with_prefix(t: &Words, prefix: &str) -> Result<Option<Vec<String>>> {
    let mut out: Vec<String> = Vec::new();
    loop {
        let from = match out.last() {
            None => Bound::Included((prefix, i64::MIN, 0u64)),
            Some(w) => Bound::Excluded((w.as_str(), i64::MAX, u64::MAX)),
        };
        let mut rows = t
            .range::<(&str, i64, u64)>((from, Bound::Unbounded))
            .context("read search index")?;
        let Some(row) = rows.next() else {
            return Ok(Some(out));
        };
        let (k, _) = row.context("read search index")?;
        let word = k.value().0;
        if !word.starts_with(prefix) {
            return Ok(Some(out));
        }
        if out.len() == MERGE_MAX {
            return Ok(None);
        }
        out.push(word.to_string());
    }
}

impl Candidates {
    /// None when `prefix` starts more than [`MERGE_MAX`] indexed words.
    pub(in crate::store) fn new(
        t: &Words,
        prefix: &str,
        since: i64,
        until: i64,
    ) -> Result<Option<Candidates>> {
        let Some(words) = words_with_prefix(t, prefix)? else {
            return Ok(None);
        };
        let mut c = Candidates {
            iters: Vec::new(),
            heads: Vec::new(),
            last: None,
        };
        if since > until {
            return Ok(Some(c));
        }
        for w in &words {
            let it = t
                .range((w.as_str(), since, 0u64)..=(w.as_str(), until, u64::MAX))
                .context("read search index")?;
            c.iters.push(it);
            c.heads.push(None);
        }
        for i in 0..c.iters.len() {
            c.advance(i)?;
        }
        Ok(Some(c))
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        self.heads[i] = match self.iters[i].next_back() {
            None => None,
            Some(row) => {
                let (k, v) = row.context("read search index")?;
                let (_, date, id) = k.value();
                Some((date, id, v.value().to_string()))
            }
        };
        Ok(())
    }

    /// The next posting, newest first.
    pub(in crate::store) fn next_posting(&mut self) -> Result<Option<Posting>> {
        loop {
            let best = self
                .heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.as_ref().map(|p| ((p.0, p.1), i)))
                .max();
            let Some((pos, i)) = best else {
                return Ok(None);
            };
            let head = self.heads[i].take();
            self.advance(i)?;
            if self.last == Some(pos) {
                continue;
            }
            self.last = Some(pos);
            return Ok(head);
        }
    }
}
