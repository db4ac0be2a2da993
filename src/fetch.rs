//! What a fetch reports; shared by the IMAP and POP3 fetchers and the
//! scheduler, so that neither protocol module depends on the other or on the
//! scheduler.

pub mod deadline;

/// Default of `[fetch] max_message_size`: mails above it are refused and
/// left on the server. 100 MiB is above the limits of common providers
/// (25–50 MB); Exchange Online accepts up to 150 MB, so an installation
/// whose users receive such mail raises it.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 100 * 1024 * 1024;

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
    /// The fetch stopped early, its session lost to a reply no parser reads
    /// (imap::unreadable), with mail still to fetch: the caller may fetch
    /// again at once on a new connection.
    pub unfinished: bool,
}

impl FetchReport {
    /// Adds a warning to the report's (one line, "; " between them).
    pub fn warn(&mut self, text: String) {
        self.warning = Some(match self.warning.take() {
            Some(before) => format!("{before}; {text}"),
            None => text,
        });
    }
}

/// Mails listed at most this often in a warning about refused mails; the
/// rest are counted.
const NAMED: usize = 5;

/// The warning about mails refused for their size: (how the server names
/// the mail, its size in bytes). Names and sizes only, never content.
pub fn too_large_warning(mails: impl IntoIterator<Item = (String, u64)>, limit: u64) -> String {
    let mails: Vec<(String, u64)> = mails.into_iter().collect();
    let named: Vec<String> = mails
        .iter()
        .take(NAMED)
        .map(|(name, size)| format!("{name}, {size} bytes"))
        .collect();
    let more = match mails.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "{} mail(s) larger than [fetch] max_message_size ({limit} bytes) refused and left          on the server: {}{more}",
        mails.len(),
        named.join("; ")
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_add_up_and_name_refused_mails_by_id_and_size() {
        let mut r = FetchReport::default();
        r.warn("first".into());
        r.warn("second".into());
        assert_eq!(r.warning.as_deref(), Some("first; second"));
        let mails = (1..=7).map(|i| (format!("UID {i}"), 2_000_000 + i));
        let text = too_large_warning(mails, 1_048_576);
        assert!(
            text.starts_with("7 mail(s) larger than [fetch] max_message_size (1048576 bytes)"),
            "{text}"
        );
        assert!(text.contains("UID 1, 2000001 bytes; UID 2"), "{text}");
        assert!(text.ends_with("UID 5, 2000005 bytes and 2 more"), "{text}");
    }
}
