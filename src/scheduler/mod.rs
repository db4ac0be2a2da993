//! One task per account: fetch, IDLE or sleep, backoff.
