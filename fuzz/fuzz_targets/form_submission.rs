#![no_main]
//! `cargo fuzz run form_submission`: see `switchboard_fuzz::form_submission`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::form_submission::run(data));
