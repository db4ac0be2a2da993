//! ListMessages paging and the visibility check of single messages.
//!
//! A query becomes a *plan*: the view scopes whose union is exactly what the
//! viewer may see under the indexed filters (folder, tenant, account,
//! unassigned; `since`/`until` are ranges of the same index), plus the
//! filters no index covers (`read`, `text`, and `tenant` together with
//! `account`), which are checked per message.
//!
//! Without residual filters a page costs O(log n + limit): the total is the
//! exact sum of bucket counters, a deep offset is found by rank
//! ([`super::rank::locate`]) and only the page's summaries are read. With
//! residual filters the scan reads summaries from the newest entry on until
//! the page is full, so it costs O(offset + limit) summaries divided by the
//! share of matches; the total is exact when at most [`TOTAL_SCAN`] entries
//! follow the page and otherwise extrapolated from the share of matches
//! among the entries scanned.

use redb::ReadOnlyTable;

use super::counters::Counters;
use super::messages::INBOX;
use super::rank::{self, Index, Merge, TOP};
use super::schema::{ACCOUNTS, MESSAGES, VIEW_SCOPES};
use super::search::read::Candidates;
use super::search::Query;
use super::summary;
use super::summary::Labels;
use super::views::scopes::{self, Scope};
use super::views::{account_scope, base, private_class, scoped, SEP};
use super::{MessageMeta, ReadTx, Store};
use crate::account::Account;
use crate::error::Context;
use crate::error::Result;

/// Entries scanned past a filtered page to count the total before estimating.
pub const TOTAL_SCAN: u64 = 2000;
/// Offsets up to this are skipped by reading entries, not by rank.
const DIRECT_SKIP: u32 = 64;

/// Whose view: everything (an admin without a named user) or one CRM user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Visibility {
    #[default]
    All,
    User(String),
}

/// One ListMessages page request (ARCHITECTURE.md "The D-Bus API" filter keys).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub viewer: Visibility,
    /// "inbox" (also when empty), "outbox", "drafts".
    pub folder: String,
    pub account: Option<String>,
    pub tenant: Option<String>,
    pub unassigned: Option<bool>,
    pub read: Option<bool>,
    /// date >= since
    pub since: Option<i64>,
    /// date <= until
    pub until: Option<i64>,
    /// Words of subject, from, to, cc: the query must occur, ignoring
    /// case, at the start of a word (`super::search` module docs).
    pub text: Option<String>,
    pub offset: u32,
    pub limit: u32,
}

impl ListQuery {
    /// The first 50 of `folder` as `viewer` sees it, no filters.
    pub fn new(viewer: Visibility, folder: &str) -> ListQuery {
        ListQuery {
            viewer,
            folder: folder.to_string(),
            limit: 50,
            ..ListQuery::default()
        }
    }
}

/// A per-message check for the filters no scope covers.
type Check = Box<dyn Fn(&MessageMeta) -> bool>;

struct Plan {
    /// Scope keys, resolved to their places by [`scopes::resolve`].
    scopes: Vec<String>,
    /// None when no residual filter is set.
    residual: Option<Check>,
}

type Accounts = ReadOnlyTable<&'static str, &'static [u8]>;
type Names = ReadOnlyTable<&'static str, u32>;

/// The current private owner of an account; None if it was deleted.
fn owner(accounts: &Accounts, id: &str) -> Result<Option<String>> {
    let v = accounts.get(id).context("read account")?;
    let a: Option<Account> = v
        .map(|g| serde_json::from_slice(g.value()).context("stored account is unreadable"))
        .transpose()?;
    Ok(a.map(|a| a.private_owner))
}

/// Every `u␟<owner>` scope under `base` that ever had entries (a scope
/// keeps its number when it empties; an empty one adds nothing).
fn private_scopes(names: &Names, c: &Counters, base: &str) -> Result<Vec<String>> {
    let prefix = scoped(base, &private_class(""));
    let mut out: Vec<String> = scopes::with_prefix(names, &prefix)?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for key in c.legacy_keys(TOP, &prefix)? {
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

fn plan(q: &ListQuery, accounts: &Accounts, names: &Names, c: &Counters) -> Result<Plan> {
    let folder = if q.folder.is_empty() {
        INBOX
    } else {
        &q.folder
    };
    let mut scopes = Vec::new();
    let mut tenant_check = None;
    let want = |assigned: bool| q.unassigned.is_none_or(|u| u != assigned);
    if let Some(acct) = &q.account {
        let sees_unassigned = match (&q.viewer, owner(accounts, acct)?) {
            (Visibility::All, _) => true,
            (Visibility::User(_), None) => false,
            (Visibility::User(u), Some(o)) => o.is_empty() || &o == u,
        };
        if want(true) {
            scopes.push(account_scope(acct, folder, true));
        }
        if want(false) && sees_unassigned {
            scopes.push(account_scope(acct, folder, false));
        }
        tenant_check = q.tenant.clone();
    } else {
        let base = base(folder, q.tenant.as_deref());
        match (&q.viewer, q.unassigned) {
            (Visibility::All, None) => scopes.push(scoped(&base, "*")),
            (Visibility::All, Some(true)) => {
                scopes.push(scoped(&base, "n"));
                scopes.push(scoped(&base, "x"));
                scopes.extend(private_scopes(names, c, &base)?);
            }
            (_, Some(false)) => scopes.push(scoped(&base, "c")),
            (Visibility::User(u), unassigned) => {
                if unassigned.is_none() {
                    scopes.push(scoped(&base, "c"));
                }
                scopes.push(scoped(&base, "n"));
                scopes.push(scoped(&base, &private_class(u)));
            }
        }
    }
    let text = q.text.as_deref().and_then(Query::parse);
    let read = q.read;
    let residual: Option<Check> = if text.is_none() && read.is_none() && tenant_check.is_none() {
        None
    } else {
        Some(Box::new(move |m: &MessageMeta| {
            tenant_check.as_ref().is_none_or(|t| &m.tenant == t)
                && read.is_none_or(|r| m.read == r)
                && text.as_ref().is_none_or(|t| t.matches(m))
        }))
    };
    debug_assert!(scopes.iter().all(|s| !s.ends_with(SEP)));
    Ok(Plan { scopes, residual })
}

/// The summaries of a read transaction, with the labels they name.
struct Messages<'a> {
    table: ReadOnlyTable<u64, &'static [u8]>,
    labels: Labels<'a>,
}

impl<'a> Messages<'a> {
    fn open(tx: &'a ReadTx<'_>) -> Result<Messages<'a>> {
        let table = tx.open_table(MESSAGES).context("open messages")?;
        let labels = tx.labels()?;
        Ok(Messages { table, labels })
    }
}

fn meta(messages: &Messages<'_>, id: u64) -> Result<Option<MessageMeta>> {
    match messages.table.get(id).context("read message")? {
        Some(g) => summary::decode(&messages.labels, id, g.value()).map(Some),
        None => {
            tracing::warn!("view index names message {id}, which is missing");
            Ok(None)
        }
    }
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Store {
    /// One page, newest first (date, then id), and the number of messages
    /// the query matches: exact unless residual filters scanned past
    /// [`TOTAL_SCAN`] (module docs).
    pub fn list_messages(&self, q: &ListQuery) -> Result<(Vec<MessageMeta>, u32)> {
        self.call("list messages", || self.list_scanning(q, TOTAL_SCAN))
    }

    fn list_scanning(&self, q: &ListQuery, total_scan: u64) -> Result<(Vec<MessageMeta>, u32)> {
        let tx = self.read()?;
        let ix = Index::open(&tx)?;
        let c = Counters::open(&tx)?;
        let accounts = tx.open_table(ACCOUNTS).context("open accounts")?;
        let messages = Messages::open(&tx)?;
        let names = tx.open_table(VIEW_SCOPES).context("open view scopes")?;
        let plan = plan(q, &accounts, &names, &c)?;
        let since = q.since.unwrap_or(i64::MIN);
        let until = q.until.unwrap_or(i64::MAX);
        let scopes = scopes::resolve(&tx, tx.scopes(), &plan.scopes)?;
        if since > until || scopes.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let in_range = rank::count_between(&ix, &c, &scopes, q.since, q.until)?;
        let mut page = Vec::new();
        let (offset, limit) = (u64::from(q.offset), u64::from(q.limit));
        let Some(residual) = plan.residual else {
            if offset >= in_range {
                return Ok((page, clamp(in_range)));
            }
            let (start, skip) = if q.offset <= DIRECT_SKIP {
                ((until, u64::MAX), offset)
            } else {
                // Entries up to `until` (all of them without `since`).
                let upto = match q.since {
                    None => in_range,
                    Some(_) => rank::count_between(&ix, &c, &scopes, None, q.until)?,
                };
                let r = upto.saturating_sub(1).saturating_sub(offset);
                match rank::locate(&c, &scopes, r)? {
                    Some((newest, skip)) => ((newest, u64::MAX), skip),
                    None => return Ok((page, clamp(in_range))),
                }
            };
            let mut merge = Merge::new(&ix, &scopes, start, since)?;
            for _ in 0..skip {
                merge.next_pos()?;
            }
            while (page.len() as u64) < limit {
                let Some((_, id)) = merge.next_pos()? else {
                    break;
                };
                page.extend(meta(&messages, id)?);
            }
            return Ok((page, clamp(in_range)));
        };
        if let Some(text) = q.text.as_deref().and_then(Query::parse) {
            if let Some(found) = Candidates::new(&tx, tx.places(), text.driver(), since, until)? {
                let view = text::View {
                    ix: &ix,
                    c: &c,
                    scopes: &scopes,
                    in_range,
                };
                let mut filter = text::Filter::new(q, &text, &accounts);
                return text::page(found, &mut filter, &messages, &view, q, total_scan);
            }
        }
        let mut merge = Merge::new(&ix, &scopes, (until, u64::MAX), since)?;
        let end = offset.saturating_add(limit);
        let (mut matched, mut scanned, mut past) = (0u64, 0u64, 0u64);
        let mut cut_short = false;
        while let Some((_, id)) = merge.next_pos()? {
            if matched >= end {
                if past >= total_scan {
                    cut_short = true;
                    break;
                }
                past += 1;
            }
            scanned += 1;
            let Some(m) = meta(&messages, id)? else {
                continue;
            };
            if !residual(&m) {
                continue;
            }
            if matched >= offset && matched < end {
                page.push(m);
            }
            matched += 1;
        }
        let total = if cut_short {
            // Extrapolate the share of matches to the entries not scanned.
            let rest = in_range.saturating_sub(scanned) as f64;
            matched + (rest * matched as f64 / scanned.max(1) as f64).round() as u64
        } else {
            matched
        };
        Ok((page, clamp(total)))
    }

    /// The message if `viewer` may see it NOW: the current private owner of
    /// its account decides; an assigned mail is public; an unassigned mail
    /// whose account is gone is shown to admins only. The caller answers
    /// NotFound in both None cases, so existence does not leak.
    pub fn visible_message(&self, id: u64, viewer: &Visibility) -> Result<Option<MessageMeta>> {
        self.call("read a message", || {
            let tx = self.read()?;
            let messages = Messages::open(&tx)?;
            let Some(m) = messages
                .table
                .get(id)
                .context("read message")?
                .map(|g| summary::decode(&messages.labels, id, g.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let Visibility::User(u) = viewer else {
                return Ok(Some(m));
            };
            if !m.contact.is_empty() {
                return Ok(Some(m));
            }
            let accounts = tx.open_table(ACCOUNTS).context("open accounts")?;
            let visible = owner(&accounts, &m.account)?.is_some_and(|o| o.is_empty() || &o == u);
            Ok(visible.then_some(m))
        })
    }

    /// Messages of the account in all folders (index counters; no scan).
    pub fn count_messages(&self, account: &str) -> Result<u64> {
        self.call("count messages", || {
            let tx = self.read()?;
            let c = Counters::open(&tx)?;
            let names = tx.open_table(VIEW_SCOPES).context("open view scopes")?;
            let prefix = format!("a{SEP}{account}{SEP}");
            let mut places: Vec<Scope> = scopes::with_prefix(&names, &prefix)?
                .into_iter()
                .map(|(_, id)| Scope::Id(id))
                .collect();
            places.extend(c.legacy_keys(TOP, &prefix)?.into_iter().map(Scope::Legacy));
            let mut n = 0u64;
            for s in &places {
                n = n.saturating_add(rank::total(&c, s)?);
            }
            Ok(n)
        })
    }
}

mod text;

#[cfg(test)]
mod dense_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod text_tests;
