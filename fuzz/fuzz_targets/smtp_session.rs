#![no_main]
//! `cargo fuzz run smtp_session`: see `switchboard_fuzz::smtp_session`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::smtp_session::run(data));
