//! Every fetched mail is summarised for the index (`mime::summarize`) and
//! shown by GetMessage (`mime::view`). Both promise never to panic; both
//! catch a panic of the parser, but libfuzzer's panic hook aborts first, so
//! a panic anywhere in the parser is found here even though the daemon
//! would survive it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let _ = postfach::mime::summarize(raw, 0);
    let _ = postfach::mime::view(raw);
});
