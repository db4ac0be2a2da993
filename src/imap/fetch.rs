//! Fetching INBOX: new UIDs -> store (one durable transaction per batch) ->
//! delete on the server, only what is stored (ARCHITECTURE.md "Invariants", 1–3).
//!
//! Sync state: the store keeps `imap:INBOX` = `<uidvalidity>:<uidnext>` per
//! account, and one server id `imap:INBOX:<uidvalidity>:<uid>` per stored
//! mail. Which UIDs are new is decided by those server ids, not by UIDNEXT,
//! so a fetch that broke off half-way simply continues next time. UIDNEXT
//! only answers "nothing new since the last complete fetch", which lets an
//! idle account's round end after EXAMINE.
//!
//! UIDVALIDITY change (RFC 3501 §2.3.1.1): every UID of the old validity is
//! meaningless. The old server ids are forgotten (never used to delete
//! anything), and every mail on the server is downloaded again; the store's
//! mail key (the SHA-256 without an mbox server's bookkeeping fields,
//! crate::store::digest) recognises mails it has or that were deleted in
//! the CRM and only maps their new server id. A server that does this in
//! every session (GNU imap4d) is recognised by headers (imap::unstable).
//!
//! Batches (crate::pipeline::split: 100 mails, then doubling up to 1,000
//! or 8 MB) download while the previous batch commits on the blocking pool
//! (crate::pipeline::Committer); `UID STORE`/`UID EXPUNGE` come after the
//! last commit completed and re-read the store, as before.
//!
//! Mails above `crate::store::BLOB_MIN` (by the listed RFC822.SIZE) are
//! fetched alone in pieces into blob files (crate::imap::partial), so that
//! no big mail is ever held whole in memory.
//!
//! A FETCH reply that cannot be parsed costs that mail alone: the mails
//! read before it are stored, the fetch reports the mail and ends
//! `unfinished` (its session is lost), and from then on that mail is
//! fetched alone, after the others and the deletes (imap::unreadable).
//!
//! Bodies are fetched with `BODY.PEEK[]` (RFC 3501 §6.4.5) so that `\Seen`
//! stays as the user left it for other clients, and the literal bytes are
//! stored as they came: no line-ending or dot rewriting (invariant 3).

use std::sync::Arc;

use super::connection::Connection;
use super::download;
use super::listing;
use super::partial;
use super::session::{Caps, LOGOUT_WAIT};
use super::syncstate;
pub use super::syncstate::{SyncState, STATE_KEY};
use super::uidnext;
use super::uidset::{self, compress, server_id, COMMAND_UIDS};
use super::unreadable::{self, Suspects};
use super::unstable;
use super::wire::{self, Session};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::deadline::Deadline;
use crate::fetch::{blocking, too_large_warning, FetchReport, Progress};
use crate::net::{Timeouts, TlsContext};
use crate::pipeline::{self, Committed, Committer};
use crate::store::Store;

/// Deadline work (bytes) allowed before INBOX is open (CAPABILITY, NOOP,
/// SELECT), and per mail for its line of the UID listing and the FETCH
/// around its body.
const PREAMBLE_WORK: u64 = 64 * 1024;
const LISTED_WORK: u64 = 128;

/// Reported when delete on server is on but the server lacks UIDPLUS.
pub const NO_UIDPLUS: &str = "delete on server skipped: the server lacks UIDPLUS, \
     and a plain EXPUNGE could remove other clients' deleted mail";

/// Fetches the INBOX of one IMAP account into the store on a connection of
/// its own, then logs out: for callers that keep no connection (tools,
/// tests); see the module docs.
pub async fn fetch(
    account: &Account,
    password: &str,
    store: &Arc<Store>,
    tls: &TlsContext,
    t: &Timeouts,
    progress: Progress<'_>,
) -> Result<FetchReport> {
    let mut conn = Connection::open(account, password, tls, t).await?;
    let result = conn.fetch(account, store, progress).await;
    // After an error the connection may be dead or mid-reply: just drop it.
    if result.is_ok() {
        conn.logout(LOGOUT_WAIT).await;
    }
    result
}

impl Connection {
    /// One fetch of INBOX on this connection; see the module docs. When
    /// INBOX is known to match the store, NOOP asks first and the fetch is
    /// done if nothing changed (imap::connection); else SELECT/EXAMINE and
    /// compare, list, download. An error marks the connection unusable.
    pub async fn fetch(
        &mut self,
        account: &Account,
        store: &Arc<Store>,
        progress: Progress<'_>,
    ) -> Result<FetchReport> {
        let r = run(self, account, store, progress).await;
        self.checked(r)
    }
}

async fn run(
    conn: &mut Connection,
    account: &Account,
    store: &Arc<Store>,
    progress: Progress<'_>,
) -> Result<FetchReport> {
    // The fetch's deadline (crate::fetch::deadline), on the stream since
    // async-imap's reader is not ours; work counts only as far as INBOX
    // justifies it, since that reader takes any number of untagged lines.
    // The stream holds it weakly: once this fetch returns, a kept
    // connection idles without it.
    let deadline = Deadline::start(conn.t.deadline);
    deadline.cap_more(PREAMBLE_WORK);
    conn.session.get_mut().watch(&deadline);
    let caps = conn.caps().await?;
    if conn.unchanged_after_noop().await? {
        progress(0, 0);
        return Ok(unchanged(account, &caps));
    }
    // SELECT only when we will delete: EXAMINE is read-only (RFC 3501
    // §6.3.2) and cannot change \Recent or anything else by accident.
    let mailbox = conn.open_inbox(account.delete_on_server).await?;
    let (t, host) = (conn.t, conn.host.as_str());
    let session = &mut conn.session;
    let uidvalidity = mailbox.uid_validity.ok_or_else(|| {
        Error::connection(format!(
            "{host}: the server sent no UIDVALIDITY for INBOX (RFC 3501 requires it)"
        ))
    })?;
    // No new mail since the last complete fetch: UIDNEXT only grows when
    // mail arrives (RFC 3501 §2.3.1.1), and a state with a UIDNEXT is only
    // written after a fetch that stored (and, with delete on server,
    // deleted) everything it listed. An idle account's round then costs
    // one SELECT/EXAMINE (and a UID SEARCH where the server sends no
    // UIDNEXT: imap::uidnext): no listing, no store commit.
    let server_next = mailbox.uid_next.filter(|n| *n != 0);
    let previous = syncstate::load(store, account)?;
    // A server that renumbers in every session (imap::unstable).
    let changed = previous.is_some_and(|p| p.uidvalidity != uidvalidity);
    let renumbering = unstable::observe(store, account, changed)?;
    let nothing_new = match (server_next, previous) {
        (Some(n), Some(p)) => p.uidvalidity == uidvalidity && p.uidnext == n,
        (None, Some(p)) if p.uidvalidity == uidvalidity && p.uidnext != 0 => {
            !uidnext::any_from(session, &t, host, p.uidnext).await?
        }
        _ => false,
    };
    if nothing_new {
        conn.inbox = Some(mailbox.exists);
        progress(0, 0);
        return Ok(unchanged(account, &caps));
    }
    deadline.cap_more(u64::from(mailbox.exists).saturating_mul(LISTED_WORK));
    let prefix = uidset::prefix(uidvalidity);
    let quiet = renumbering.marked;
    syncstate::forget_old_validity(store, account, previous, uidvalidity, &prefix, quiet)?;

    let on_server = if mailbox.exists == 0 {
        Vec::new()
    } else {
        listing::uids(session, &t, host, mailbox.exists).await?
    };
    let state = SyncState {
        uidvalidity,
        uidnext: uidnext::stand_in(server_next, previous, uidvalidity, &on_server),
    };
    let known = blocking(|| store.known_server_ids(&account.id, &prefix))?;
    let mut unknown: Vec<(u32, u64)> = on_server
        .iter()
        .copied()
        .filter(|(uid, _)| !known.contains(&server_id(uidvalidity, *uid)))
        .collect();
    if renumbering.by_header() && !unknown.is_empty() {
        let at = (&t, &deadline);
        unknown = unstable::recognise(session, store, at, account, uidvalidity, &unknown).await?;
    }
    let (new, too_big): (Vec<_>, Vec<_>) = unknown
        .into_iter()
        .partition(|(_, size)| *size <= t.max_message_size);
    deadline.cap_more(new.iter().map(|(_, size)| size + LISTED_WORK).sum());
    // Mails whose reply could not be read before come alone, last.
    let mut suspects = Suspects::load(store, account, uidvalidity, &new)?;
    let batched: Vec<(u32, u64)> = new
        .iter()
        .copied()
        .filter(|(uid, _)| !suspects.contains(*uid))
        .collect();

    let mut report = FetchReport::default();
    if let Some(text) = renumbering.warning(account) {
        report.warn(text);
    }
    let total = u32::try_from(new.len()).unwrap_or(u32::MAX);
    progress(0, total);
    let mut done = 0u32;
    let mut on_commit = |c: Option<Committed<u32>>| {
        if let Some(c) = c {
            report.new_ids.extend(c.ids);
            done = done.saturating_add(c.tag);
            progress(done.min(total), total);
        }
    };
    // Batch N commits on the blocking pool while batch N+1 downloads; see
    // crate::pipeline for the rules that keep this safe.
    let mut committer = Committer::new(store, account);
    let batches = pipeline::split(
        &batched,
        |(_, size)| size,
        pipeline::FIRST_BATCH_MAILS,
        pipeline::BATCH_MAILS,
        pipeline::BATCH_BYTES,
    );
    let mut lost = None;
    for batch in batches {
        let bytes = batch.iter().map(|(_, size)| partial::held(*size)).sum();
        if committer.must_wait(bytes) {
            on_commit(committer.wait().await?);
        }
        let fetched = download::batch(session, store, &t, host, uidvalidity, &batch).await;
        let got = match fetched {
            Ok(got) => got,
            Err(e) => {
                // Never leave the commit in flight behind a reported error.
                on_commit(committer.wait().await?);
                return Err(e);
            }
        };
        let n = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        on_commit(committer.start(got.mails, n).await?);
        if got.lost.is_some() {
            lost = got.lost;
            break;
        }
    }
    on_commit(committer.wait().await?);
    if let Some(lost) = lost {
        // The session is gone with the reply: what was read is stored, the
        // rest comes with the next fetch, which the caller may start at
        // once (imap::unreadable). No deletes without a session.
        conn.usable = false;
        let blamed = lost.uid.map(|uid| (uid, size_of(&new, uid)));
        if let Some((uid, size)) = blamed {
            suspects.blame(uid, size);
            suspects.save(store, account)?;
        }
        let text = unreadable::warning(host, blamed, &lost.line);
        tracing::warn!(account_id = %account.id, host, "{text}");
        report.warn(text);
        report.unfinished = true;
        let written = SyncState {
            uidnext: 0,
            ..state
        };
        blocking(|| store.set_sync_state(&account.id, STATE_KEY, &written.render()))?;
        return Ok(report);
    }
    // Complete only if every listed mail is now stored: a UID the server
    // did not return (expunged meanwhile, or a broken reply) must be listed
    // again next time, which the UIDNEXT shortcut above would skip. Checked
    // before the deletes, which forget the server ids they remove.
    // A mail refused for its size keeps the fetch incomplete too, so that
    // it is listed (and reported) again, and fetched once the limit allows.
    // So does a mail fetched alone below: stored after the deletes, it is
    // deleted on the server by the next fetch.
    let complete = too_big.is_empty()
        && (new.is_empty() || {
            let known = blocking(|| store.known_server_ids(&account.id, &prefix))?;
            new.iter()
                .all(|(uid, _)| known.contains(&server_id(uidvalidity, *uid)))
        });

    let mut deleted = 0;
    if account.delete_on_server {
        if caps.has("UIDPLUS") {
            let uids: Vec<u32> = on_server.iter().map(|(uid, _)| *uid).collect();
            deleted = delete_stored(session, store, account, &t, uidvalidity, &uids).await?;
        } else {
            tracing::warn!(account_id = %account.id, host, "{NO_UIDPLUS}");
        }
    }
    // After the deletes, so that a reply that is unreadable again costs
    // this session only when nothing else is left to do on it.
    let mut lost = None;
    for (uid, size) in suspects.listed() {
        let got = download::batch(session, store, &t, host, uidvalidity, &[(uid, size)]).await?;
        if !got.mails.is_empty() {
            suspects.stored(uid);
        }
        on_commit(committer.start(got.mails, 1).await?);
        on_commit(committer.wait().await?);
        if let Some(l) = got.lost {
            lost = Some((uid, size, l.line));
            break;
        }
    }
    report.deleted_on_server = deleted;
    if account.delete_on_server && !caps.has("UIDPLUS") {
        report.warning = Some(NO_UIDPLUS.to_string());
    }
    if let Some((uid, size, line)) = lost {
        conn.usable = false;
        suspects.blame(uid, size);
        let text = unreadable::warning(host, Some((uid, size)), &line);
        tracing::warn!(account_id = %account.id, host, "{text}");
        report.warn(text);
    }
    suspects.save(store, account)?;
    if !too_big.is_empty() {
        let listed = too_big
            .iter()
            .map(|(uid, size)| (format!("UID {uid}"), *size));
        let text = too_large_warning(listed, t.max_message_size);
        tracing::warn!(account_id = %account.id, host, "{text}");
        report.warn(text);
    }
    let written = if complete {
        state
    } else {
        SyncState {
            uidnext: 0,
            ..state
        }
    };
    blocking(|| store.set_sync_state(&account.id, STATE_KEY, &written.render()))?;
    tracing::info!(
        account_id = %account.id,
        new = report.new_ids.len(),
        deleted = report.deleted_on_server,
        "IMAP fetch done"
    );
    Ok(report)
}

/// The report of a fetch that found nothing new.
pub(crate) fn unchanged(account: &Account, caps: &Caps) -> FetchReport {
    let mut report = FetchReport::default();
    if account.delete_on_server && !caps.has("UIDPLUS") {
        report.warning = Some(NO_UIDPLUS.to_string());
    }
    report
}

/// The listed size of `uid` among `listed`.
fn size_of(listed: &[(u32, u64)], uid: u32) -> u64 {
    listed
        .iter()
        .find(|(u, _)| *u == uid)
        .map_or(0, |(_, size)| *size)
}

/// Deletes from the server exactly those of `on_server` whose server id the
/// store holds — re-read from the store now, so only durably committed
/// mail qualifies (invariant 1) — with imap::wire::expunge (UIDPLUS, never
/// a bare EXPUNGE). Returns how many went.
async fn delete_stored(
    session: &mut Session,
    store: &Store,
    account: &Account,
    t: &Timeouts,
    uidvalidity: u32,
    on_server: &[u32],
) -> Result<u32> {
    let host = account.host.as_str();
    let prefix = uidset::prefix(uidvalidity);
    let stored = blocking(|| store.known_server_ids(&account.id, &prefix))?;
    let doomed: Vec<u32> = on_server
        .iter()
        .copied()
        .filter(|uid| stored.contains(&server_id(uidvalidity, *uid)))
        .collect();
    let mut deleted = 0u32;
    for chunk in doomed.chunks(COMMAND_UIDS) {
        let gone = wire::expunge(session, t, host, &compress(chunk)).await?;
        deleted = deleted.saturating_add(gone);
        let ids: Vec<String> = chunk
            .iter()
            .map(|uid| server_id(uidvalidity, *uid))
            .collect();
        blocking(|| store.forget_server_ids(&account.id, &ids))?;
    }
    Ok(deleted)
}
