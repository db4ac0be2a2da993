//! Every fetched mail is summarised for the index (`mime::summarize`) and
//! shown by GetMessage (`mime::view`). Both promise never to panic; both
//! catch a panic of the parser, but libfuzzer's panic hook aborts first, so
//! a panic anywhere in the parser is found here even though the daemon
//! would survive it.
//!
//! One exception: mail-parser 0.11's `debug_assert!(false, "Invalid part
//! ID, could not find multipart.")` (parsers/message.rs). cargo-fuzz builds
//! with debug assertions, the daemon ships without them (and its test
//! builds turn them off for mail-parser: Cargo.toml), where that branch
//! does nothing and the parse goes on. Aborting on it would stop every run
//! within seconds on a panic the daemon never sees, so the hook lets that
//! one unwind into `mime`'s own `catch_unwind` and aborts on every other.
#![no_main]

use std::panic::{self, PanicHookInfo};

use libfuzzer_sys::fuzz_target;

const DEBUG_ONLY: &str = "Invalid part ID, could not find multipart.";

fn debug_only(info: &PanicHookInfo<'_>) -> bool {
    let in_parser = info
        .location()
        .is_some_and(|l| l.file().contains("mail-parser") && l.file().ends_with("message.rs"));
    let text = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
    in_parser && text == Some(DEBUG_ONLY)
}

fuzz_target!(
    init: {
        let abort = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !debug_only(info) {
                abort(info);
            }
        }));
    },
    |raw: &[u8]| {
        let _ = postfach::mime::summarize(raw, 0);
        let _ = postfach::mime::view(raw);
    }
);
