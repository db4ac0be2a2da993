//! What a fetch reports; shared by the IMAP and POP3 fetchers and the
//! scheduler, so that neither protocol module depends on the other or on the
//! scheduler.

/// The outcome of one fetch of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Store ids of the mails this fetch committed, in commit order.
    pub new_ids: Vec<u64>,
    /// Mails removed from the server after they were durably stored.
    pub deleted_on_server: u32,
    /// Something the admin should know that did not fail the fetch, e.g.
    /// "delete on server skipped: the server has no UIDPLUS".
    pub warning: Option<String>,
}

/// Progress callback: (fetched so far, total to fetch in this run).
pub type Progress<'a> = &'a (dyn Fn(u32, u32) + Send + Sync);

/// Runs a blocking store call from the fetchers and the account tasks:
/// `block_in_place` on the multi-threaded runtime (the daemon's), directly
/// on a current-thread runtime (tests), where `block_in_place` would panic.
/// The calls are short and bounded by one batch, so briefly holding a
/// current-thread runtime is acceptable. Not `spawn_blocking`: a thousand
/// account tasks that start together would each get a blocking-pool thread.
pub(crate) fn blocking<T>(f: impl FnOnce() -> crate::error::Result<T>) -> crate::error::Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
