//! Summaries and views from raw mail.
