//! Our own POP3 client (ARCHITECTURE.md "Dependencies" says why not async-pop): [`wire`]
//! reads replies defensively and dot-unstuffs in one pass, [`client`] speaks
//! the commands, [`fetch`] runs one account's fetch against the store, and
//! `batch` decides where each fetched mail's bytes go.

mod batch;
pub mod client;
pub mod fetch;
pub mod wire;

pub use client::{Capabilities, Client};
pub use fetch::fetch;

#[cfg(test)]
pub(crate) mod tests;
