#![no_main]
//! `cargo fuzz run chat_request`: see `switchboard_fuzz::chat_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::chat_request::run(data));
