#![no_main]
//! `cargo fuzz run email_parse`: see `switchboard_fuzz::email_parse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::email_parse::run(data));
