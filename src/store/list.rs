//! Newest-first paging over the index tables.

use super::MessageMeta;

/// One ListMessages page request.
pub struct ListQuery {
    pub account: Option<String>,
    pub folder: String,
    pub offset: u32,
    pub limit: u32,
    /// Access rule and filters; only messages it accepts are counted and shown.
    pub visible: Box<dyn Fn(&MessageMeta) -> bool + Send>,
}
