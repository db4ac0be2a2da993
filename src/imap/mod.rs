//! IMAP: session, fetch (UIDVALIDITY/UID), idle, folders.
