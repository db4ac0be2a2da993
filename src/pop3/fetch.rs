//! One POP3 fetch of one account: connect, log in, find new mails by UIDL,
//! RETR them in pipelined batches, commit each batch durably, and only then
//! delete on the server.
//!
//! Deletion safety (ARCHITECTURE.md "Invariants", 1): DELE only marks; RFC 1939
//! §6 removes marked mails at QUIT, and QUIT is sent only after every batch
//! is committed. A connection that drops before QUIT deletes nothing (§5:
//! the server must not enter UPDATE state), which is the safety net for
//! crashes and stops in the middle of a fetch.
//!
//! A mail is streamed, dot-unstuffed piece by piece, into a blob file
//! (crate::store::blobs) once the bytes that arrive pass
//! `crate::store::BLOB_MIN`, whatever LIST said, and a batch stops asking
//! for mail once it holds its share of memory (super::batch); so no big
//! mail is ever whole in memory, even from a server whose sizes lie.
//!
//! Mails above `[fetch] max_message_size` are refused and stay on the
//! server: by their LIST size before any RETR, or, when LIST said less,
//! once they pass the limit (the rest is read and dropped, so the other
//! mails of the fetch are still stored). The fetch's warning (the
//! account's `LastError`) names each by number, UIDL and size; the next
//! fetch sees it again, and fetches it once the limit allows.
//!
//! Every read and write runs under the read timeout and the fetch's
//! deadline (crate::fetch::deadline), from the greeting to QUIT.
//!
//! A batch's RETRs run while the previous batch commits on the blocking pool
//! (crate::pipeline); a mail counts as stored, and may be DELE'd, only once
//! its batch's commit has completed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::batch::{Download, Entry, Got};
use super::client::{Capabilities, Client};
use super::wire::Wait;
use crate::account::{Account, Encryption};
use crate::error::{Error, Result};
use crate::fetch::{blocking, too_large_warning, FetchReport, Progress, DEFAULT_MAX_MESSAGE_SIZE};
use crate::net::{self, Stream, Timeouts, TlsContext};
use crate::pipeline::{self, Committed, Committer};
use crate::store::blobs::held;
use crate::store::{NewMail, Store};

/// Server id prefix for mails identified by UIDL.
pub const UIDL_PREFIX: &str = "pop3:";
/// Server id prefix for mails of servers without (usable) UIDL: the SHA-256
/// of the bytes. Identifying a mail then needs its bytes, so every such mail
/// is downloaded on every fetch; the fetch says so in its warning.
pub const NOUIDL_PREFIX: &str = "pop3-nouidl:";

/// Batch bounds for one store transaction (group commit: one durable
/// commit per batch, and at most this much mail held in memory; see
/// crate::pipeline). The first batch holds at most `first_batch_mails`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub first_batch_mails: usize,
    pub batch_mails: usize,
    pub batch_bytes: u64,
    pub max_mail: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            first_batch_mails: pipeline::FIRST_BATCH_MAILS,
            batch_mails: pipeline::BATCH_MAILS,
            batch_bytes: pipeline::BATCH_BYTES,
            max_mail: usize::try_from(DEFAULT_MAX_MESSAGE_SIZE).unwrap_or(usize::MAX),
        }
    }
}

/// Fetch new mail of a POP3 account (see the module docs). For the Office
/// 365 kind, `password` is the OAuth2 access token (XOAUTH2).
pub async fn fetch(
    account: &Account,
    password: &str,
    store: &Arc<Store>,
    tls: &TlsContext,
    t: &Timeouts,
    progress: Progress<'_>,
) -> Result<FetchReport> {
    net::check_plaintext_auth(account)?;
    // A server that refuses a resumed TLS session gets one more attempt
    // without it (net::resume).
    let (client, caps) = tls
        .retry_unresumed(&account.host, account.port, || async {
            let tcp = net::connect_tcp(&account.host, account.port, t).await?;
            open(tcp, account, tls, t).await
        })
        .await?;
    let limits = Limits {
        max_mail: usize::try_from(t.max_message_size).unwrap_or(usize::MAX),
        ..Limits::default()
    };
    run(client, &caps, account, password, store, progress, limits).await
}

/// TLS, STLS or clear text per the account, then the greeting and CAPA,
/// on a connected socket. A STARTTLS account on a server without STLS is an
/// error, never a fall-back to clear text; after STLS no new greeting comes
/// and CAPA is asked again (RFC 2595 §4). Shared with the connection test.
/// The session's deadline starts here.
pub async fn open(
    tcp: tokio::net::TcpStream,
    account: &Account,
    tls: &TlsContext,
    t: &Timeouts,
) -> Result<(Client<Stream>, Capabilities)> {
    let pin = Some(account.tls_pin.as_str()).filter(|p| !p.is_empty());
    let wait = Wait::new(t.read, t.deadline);
    if account.encryption != Encryption::Tls {
        net::expect_greeting(&tcp, &account.host, account.port, tls, t).await?;
    }
    match account.encryption {
        Encryption::None => greet(Stream::plain(tcp), wait).await,
        Encryption::Tls => {
            let stream = net::start_tls(tcp, &account.host, tls, pin, t).await?;
            greet(stream, wait).await
        }
        Encryption::Starttls => {
            let (plain, caps) = greet(tcp, wait.clone()).await?;
            if !caps.stls {
                return Err(Error::Tls(format!(
                    "{}: server does not offer STARTTLS (STLS); refusing to continue without TLS",
                    account.host
                )));
            }
            let tcp = plain.stls().await?;
            let stream = net::start_tls(tcp, &account.host, tls, pin, t).await?;
            let mut c = Client::resume(stream, wait);
            let caps = c.capa().await?;
            Ok((c, caps))
        }
    }
}

async fn greet<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    wait: Wait,
) -> Result<(Client<S>, Capabilities)> {
    let (mut c, _greeting) = Client::connect(stream, wait).await?;
    let caps = c.capa().await?;
    Ok((c, caps))
}

/// What a batch's commit must hand back once it is durable.
struct Tag {
    mails: u32,
    /// (message number, server id) of the mails in the batch.
    keys: Vec<(u32, String)>,
}

/// The fetch after connect and CAPA: login, select, retrieve, commit,
/// delete, quit. Generic so that tests can drive it over a scripted server.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut c: Client<S>,
    caps: &Capabilities,
    account: &Account,
    password: &str,
    store: &Arc<Store>,
    progress: Progress<'_>,
    limits: Limits,
) -> Result<FetchReport> {
    c.set_max_mail(limits.max_mail);
    if account.kind.is_office365() {
        c.login_xoauth2(&account.username, password).await?;
    } else if caps.has_sasl("PLAIN") {
        c.login_plain(&account.username, password).await?;
    } else {
        c.login_user_pass(&account.username, password).await?;
    }

    let mut warnings: Vec<String> = Vec::new();
    let sizes: HashMap<u32, u64> = c.list().await?.into_iter().collect();
    let uidl = c.uidl().await?;
    if uidl.is_none() {
        warnings.push(
            "server has no UIDL: every mail is downloaded on every fetch to recognise it".into(),
        );
    }
    let entries = entries(&sizes, uidl, &mut warnings);
    let known = blocking(|| {
        let mut k = store.known_server_ids(&account.id, UIDL_PREFIX)?;
        k.extend(store.known_server_ids(&account.id, NOUIDL_PREFIX)?);
        Ok(k)
    })?;

    let (wanted, too_big): (Vec<&Entry>, Vec<&Entry>) = entries
        .iter()
        .filter(|e| e.key.as_ref().is_none_or(|k| !known.contains(k)))
        .partition(|e| e.size <= limits.max_mail as u64);
    // Refused for their size: (label, size), by LIST or when they came.
    let mut refused: Vec<(String, u64)> =
        too_big.iter().map(|e| (e.label(e.size), e.size)).collect();

    let total = u32::try_from(wanted.len()).unwrap_or(u32::MAX);
    let mut report = FetchReport::default();
    // Server ids that are durably in the store after this fetch, by number.
    let mut stored: HashMap<u32, String> = HashMap::new();
    let mut done = 0u32;
    progress(0, total);
    let mut on_commit = |c: Option<Committed<Tag>>| {
        if let Some(c) = c {
            report.new_ids.extend(c.ids);
            stored.extend(c.tag.keys);
            done = done.saturating_add(c.tag.mails);
            progress(done.min(total), total);
        }
    };
    // Batch N commits on the blocking pool while batch N+1's RETRs run; see
    // crate::pipeline for the rules that keep this safe. A batch that
    // reached its memory budget early (super::batch) leaves the rest of
    // its mails to a batch of their own.
    let mut committer = Committer::new(store, account);
    let mut queue: VecDeque<Vec<&Entry>> = batches(&wanted, &limits).into();
    while let Some(batch) = queue.pop_front() {
        if committer.must_wait(batch.iter().map(|e| held(e.size)).sum()) {
            on_commit(committer.wait().await?);
        }
        let nums: Vec<u32> = batch.iter().map(|e| e.n).collect();
        let mut download = Download::new(store, &batch, limits.batch_bytes);
        let answered = match c.retr_each(&nums, &mut download).await {
            Ok(n) => n,
            Err(e) => {
                // Never leave the commit in flight behind a reported error.
                on_commit(committer.wait().await?);
                return Err(e);
            }
        };
        let received = now();
        let got = download.into_got();
        let mut mails = Vec::with_capacity(got.len());
        let mut keys = Vec::with_capacity(got.len());
        for (e, got) in batch.iter().zip(got) {
            match got {
                Got::Mail(raw) => {
                    let key = e
                        .key
                        .clone()
                        .unwrap_or_else(|| format!("{NOUIDL_PREFIX}{}", raw.sha256_hex()));
                    keys.push((e.n, key.clone()));
                    mails.push(NewMail {
                        server_id: key,
                        raw,
                        received,
                    });
                }
                Got::Refused(text) => warnings.push(format!(
                    "message {} could not be retrieved, left on the server: {text}",
                    e.n
                )),
                Got::TooLarge(len) => refused.push((e.label(len), len)),
            }
        }
        if let Some(rest) = batch.get(answered..).filter(|r| !r.is_empty()) {
            queue.push_front(rest.to_vec());
        }
        let tag = Tag {
            mails: u32::try_from(answered).unwrap_or(u32::MAX),
            keys,
        };
        on_commit(committer.start(mails, tag).await?);
    }
    on_commit(committer.wait().await?);
    if !refused.is_empty() {
        warnings.push(too_large_warning(refused, limits.max_mail as u64));
    }

    if account.delete_on_server {
        let mut deleted = Vec::new();
        for e in &entries {
            // Durable: committed by this fetch, or known from an earlier one.
            let key = match (&e.key, stored.get(&e.n)) {
                (_, Some(now)) => now,
                (Some(k), None) if known.contains(k) => k,
                _ => continue,
            };
            c.dele(e.n).await?;
            deleted.push(key.clone());
        }
        c.quit().await?;
        report.deleted_on_server = u32::try_from(deleted.len()).unwrap_or(u32::MAX);
        if !deleted.is_empty() {
            deleted.sort();
            deleted.dedup();
            blocking(|| store.forget_server_ids(&account.id, &deleted))?;
        }
    } else {
        c.quit().await?;
    }
    tracing::debug!(
        account_id = %account.id,
        on_server = entries.len(),
        new = report.new_ids.len(),
        deleted = report.deleted_on_server,
        "POP3 fetch done"
    );
    if !warnings.is_empty() {
        report.warning = Some(warnings.join("; "));
    }
    Ok(report)
}

/// Pair LIST sizes with UIDL ids. A UIDL seen twice in one listing breaks
/// RFC 1939's uniqueness; those mails are keyed by content instead, so
/// deleting one can never take the other with it.
fn entries(
    sizes: &HashMap<u32, u64>,
    uidl: Option<Vec<(u32, String)>>,
    warnings: &mut Vec<String>,
) -> Vec<Entry> {
    let mut nums: Vec<u32> = sizes.keys().copied().collect();
    nums.sort_unstable();
    let ids: HashMap<u32, String> = uidl.unwrap_or_default().into_iter().collect();
    let mut seen = HashSet::new();
    let dup: HashSet<&String> = ids.values().filter(|u| !seen.insert(*u)).collect();
    if !dup.is_empty() {
        warnings.push(format!(
            "server reported {} duplicate UIDL(s); those mails are recognised by content",
            dup.len()
        ));
    }
    nums.into_iter()
        .map(|n| Entry {
            n,
            size: sizes[&n],
            key: ids
                .get(&n)
                .filter(|u| !dup.contains(u))
                .map(|u| format!("{UIDL_PREFIX}{u}")),
        })
        .collect()
}

/// Split into batches by `limits` (the first one no larger than the rest).
fn batches<'a>(wanted: &[&'a Entry], limits: &Limits) -> Vec<Vec<&'a Entry>> {
    pipeline::split(
        wanted,
        |e| e.size,
        limits.first_batch_mails.min(limits.batch_mails),
        limits.batch_mails,
        limits.batch_bytes,
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
