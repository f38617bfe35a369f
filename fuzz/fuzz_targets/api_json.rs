#![no_main]
//! `cargo fuzz run api_json`: see `switchboard_fuzz::api_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::api_json::run(data));
