//! A ListMessages page with `text`, read from the word index
//! (`crate::store::search`) instead of the view: the postings of the
//! query's driving word, newest first, kept when the viewer may see their
//! place and the other filters hold.
//!
//! Visibility is decided from the posting's place alone, by the rules the
//! view scopes encode (`crate::store::views`): an assigned mail is seen by
//! everyone, an unassigned one by an admin and by the current owner of a
//! private account or anyone for a public account. The summary is read only
//! for the page itself and when a filter needs it (tenant, read, a query of
//! more than one word), so a page costs the postings skipped before it.
//!
//! The total counts matches up to [`super::TOTAL_SCAN`] postings past the
//! page; beyond that it is extrapolated with the view's own date counters:
//! the matches found among the view's entries newer than the last posting
//! read, scaled to all the view's entries in `since..=until`.

use std::collections::HashMap;

use super::{clamp, meta, owner, Accounts, ListQuery, Messages, Visibility};
use crate::error::Result;
use crate::store::counters::Counters;
use crate::store::messages::{MessageMeta, INBOX};
use crate::store::rank::{self, Index};
use crate::store::search::read::Candidates;
use crate::store::search::{parse_place, Query};
use crate::store::views::scopes::Scope;

/// The view the page belongs to, for the extrapolated total.
pub(super) struct View<'a> {
    pub(super) ix: &'a Index,
    pub(super) c: &'a Counters,
    pub(super) scopes: &'a [Scope],
    /// Entries of the view in `since..=until`.
    pub(super) in_range: u64,
}

/// What a posting must pass: the place rules, then the summary's filters.
pub(super) struct Filter<'a> {
    q: &'a ListQuery,
    text: &'a Query,
    accounts: &'a Accounts,
    folder: &'a str,
    /// Account id -> whether the viewer sees its unassigned mail.
    sees: HashMap<String, bool>,
}

impl<'a> Filter<'a> {
    pub(super) fn new(q: &'a ListQuery, text: &'a Query, accounts: &'a Accounts) -> Filter<'a> {
        let folder = if q.folder.is_empty() {
            INBOX
        } else {
            &q.folder
        };
        Filter {
            q,
            text,
            accounts,
            folder,
            sees: HashMap::new(),
        }
    }

    /// Whether the viewer may see a mail at `place` under the query's
    /// folder, account and `unassigned` filters.
    fn place(&mut self, place: &str) -> Result<bool> {
        let Some((assigned, account, folder)) = parse_place(place) else {
            tracing::warn!("search index holds a malformed place");
            return Ok(false);
        };
        if folder != self.folder
            || self.q.account.as_deref().is_some_and(|a| a != account)
            || self.q.unassigned.is_some_and(|u| u == assigned)
        {
            return Ok(false);
        }
        let Visibility::User(user) = &self.q.viewer else {
            return Ok(true);
        };
        if assigned {
            return Ok(true);
        }
        if let Some(seen) = self.sees.get(account) {
            return Ok(*seen);
        }
        let seen = owner(self.accounts, account)?.is_some_and(|o| o.is_empty() || &o == user);
        self.sees.insert(account.to_string(), seen);
        Ok(seen)
    }

    /// Whether the summary must be read to decide a posting.
    fn needs_summary(&self) -> bool {
        self.q.tenant.is_some() || self.q.read.is_some() || !self.text.single_word()
    }

    fn summary(&self, m: &MessageMeta) -> bool {
        self.q.tenant.as_ref().is_none_or(|t| &m.tenant == t)
            && self.q.read.is_none_or(|r| m.read == r)
            && (self.text.single_word() || self.text.matches(m))
    }
}

/// The page of `q` from the postings in `found` (module docs).
pub(super) fn page(
    mut found: Candidates,
    filter: &mut Filter,
    messages: &Messages,
    view: &View,
    q: &ListQuery,
    total_scan: u64,
) -> Result<(Vec<MessageMeta>, u32)> {
    let (offset, limit) = (u64::from(q.offset), u64::from(q.limit));
    let end = offset.saturating_add(limit);
    let needs_summary = filter.needs_summary();
    let mut page = Vec::new();
    let (mut matched, mut past) = (0u64, 0u64);
    let mut oldest = None;
    let mut cut_short = false;
    while let Some((date, id, place)) = found.next_posting()? {
        if !filter.place(&place)? {
            continue;
        }
        if matched >= end {
            if past >= total_scan {
                cut_short = true;
                break;
            }
            past += 1;
        }
        let on_page = matched >= offset && matched < end;
        if on_page || needs_summary {
            let Some(m) = meta(messages, id)? else {
                continue;
            };
            if needs_summary && !filter.summary(&m) {
                continue;
            }
            if on_page {
                page.push(m);
            }
        }
        matched += 1;
        oldest = Some(date);
    }
    if !cut_short {
        return Ok((page, clamp(matched)));
    }
    let until = q.until.unwrap_or(i64::MAX);
    let covered = rank::count_between(view.ix, view.c, view.scopes, oldest, Some(until))?;
    let share = matched as f64 / covered.max(1) as f64;
    let total = (view.in_range as f64 * share).round() as u64;
    Ok((page, clamp(total.max(matched))))
}
