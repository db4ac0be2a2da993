//! What a fetch reports; shared by the IMAP and POP3 fetchers and the scheduler.
