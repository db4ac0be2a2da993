//! The word index behind ListMessages `text`: which messages a search may
//! match, found without reading every summary of the view.
//!
//! What matches (docs/SEARCH.md): the query, trimmed and lowercased, must
//! occur in the subject, the sender or one recipient (To, Cc), lowercased,
//! *starting at the beginning of a word*. A word is a run of alphanumeric
//! characters (Unicode); everything else separates words, so addresses
//! split at `@ . - _ +` and display names at spaces and punctuation.
//! "ANGEBOT", "angeb", "crm@" and "s17@example" match as before; "gebot"
//! (inside a word) no longer does. A query without any word character
//! ("@", "  ") filters nothing, like an empty one.
//!
//! The index holds one posting per distinct word of a message,
//! `(word, date, id, place)`, packed into chunks of postings of one word
//! (schema 10; [`chunk`] has the format, [`write`] how postings go in),
//! where the place (`c`/`n` for assigned or
//! not, the account, the folder) is all ListMessages needs to decide
//! visibility without reading the summary; chunks name places by number
//! (schema 17, [`places`]). Words longer than
//! [`WORD_MAX`] bytes are indexed by their first [`WORD_MAX`] bytes. A
//! query word finds every indexed word it is a prefix of; the postings of
//! those words, each sorted by date, are merged newest first. Because every
//! word of a matching query is a prefix of some word of the field it occurs
//! in, the postings of any one query word hold every match; the query's
//! longest word drives the search and [`Query::matches`] checks the rest.
//!
//! The postings are written and removed by `super::views::Writer` together
//! with the view entries, so every path that files a message (fetch, sent
//! and drafts, restore, delete, account deletion, contact changes) keeps
//! both in the same transaction.

use std::collections::BTreeSet;

use redb::{ReadableTable, WriteTransaction};

use super::meta::MessageMeta;
use super::schema::MESSAGES;
use super::summary;
use super::summary::Labels;
use crate::error::Context;
use crate::error::Result;

/// Longest indexed word in bytes: longer words (hashes, encoded blobs in a
/// subject) are cut, so that no key grows with what a sender writes.
pub(super) const WORD_MAX: usize = 32;

/// Separator inside a place; account ids and folders hold no control
/// characters (account validation), so a place parses back unambiguously.
const SEP: char = '\x1f';

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// The words of already lowercased text, in order.
fn words(lower: &str) -> impl Iterator<Item = &str> {
    lower.split(|c: char| !is_word(c)).filter(|w| !w.is_empty())
}

/// `w` cut to [`WORD_MAX`] bytes at a character boundary.
fn clip(w: &str) -> &str {
    let mut end = w.len().min(WORD_MAX);
    while !w.is_char_boundary(end) {
        end -= 1;
    }
    &w[..end]
}

/// The searchable fields of a message.
fn fields(m: &MessageMeta) -> impl Iterator<Item = &String> {
    [&m.subject, &m.from].into_iter().chain(&m.to).chain(&m.cc)
}

/// The distinct indexed words of a message.
fn tokens(m: &MessageMeta) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in fields(m) {
        let lower = f.to_lowercase();
        for w in words(&lower) {
            out.insert(clip(w).to_string());
        }
    }
    out
}

/// Where a message is listed: assigned or not, account, folder.
fn place(m: &MessageMeta) -> String {
    let c = if m.contact.is_empty() { 'n' } else { 'c' };
    format!("{c}{}{SEP}{}", m.account, m.folder)
}

/// A place parsed back: (assigned, account, folder).
pub(super) fn parse_place(p: &str) -> Option<(bool, &str, &str)> {
    let assigned = match p.chars().next()? {
        'c' => true,
        'n' => false,
        _ => return None,
    };
    let (account, folder) = p.get(1..)?.split_once(SEP)?;
    Some((assigned, account, folder))
}

/// Index every stored message (schema migration), in the caller's
/// transaction; postings already there are overwritten, not doubled.
pub(super) fn rebuild(tx: &WriteTransaction) -> Result<()> {
    let messages = tx.open_table(MESSAGES).context("open messages")?;
    let mut p = Postings::open(tx)?;
    let labels = Labels::write(tx);
    for row in messages.iter().context("read messages")? {
        let (k, v) = row.context("read messages")?;
        p.add(&summary::decode(&labels, k.value(), v.value())?)?;
    }
    Ok(())
}

/// A `text` filter, parsed once per query.
#[derive(Debug, Clone)]
pub(super) struct Query {
    /// Trimmed and lowercased.
    lower: String,
    /// Whether `lower` begins with a word character: then a match must
    /// begin a word of the field.
    anchored: bool,
    /// The query word whose postings are read (see module docs).
    driver: String,
    /// The query is that one word, unclipped: a posting alone proves a match.
    single: bool,
}

impl Query {
    /// None when the text holds no word (no filter, module docs).
    pub(super) fn parse(text: &str) -> Option<Query> {
        let lower = text.trim().to_lowercase();
        let driver = words(&lower).max_by_key(|w| w.len())?.to_string();
        let single = driver == lower && driver.len() <= WORD_MAX;
        let driver = clip(&driver).to_string();
        let anchored = lower.chars().next().is_some_and(is_word);
        Some(Query {
            lower,
            anchored,
            driver,
            single,
        })
    }

    pub(super) fn driver(&self) -> &str {
        &self.driver
    }

    /// A posting of the driver alone proves a match (no summary needed).
    pub(super) fn single_word(&self) -> bool {
        self.single
    }

    /// The rule of the module docs, checked on a summary.
    pub(super) fn matches(&self, m: &MessageMeta) -> bool {
        fields(m).any(|f| {
            let f = f.to_lowercase();
            f.match_indices(self.lower.as_str()).any(|(at, _)| {
                !self.anchored || f[..at].chars().next_back().is_none_or(|c| !is_word(c))
            })
        })
    }
}

mod cache;
pub mod chunk;
pub(super) mod pack;
pub(super) mod places;
pub(super) mod read;
mod write;

pub(super) use write::Postings;

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod places_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_tests;
