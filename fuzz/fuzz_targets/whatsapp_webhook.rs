#![no_main]
//! `cargo fuzz run whatsapp_webhook`: see `switchboard_fuzz::whatsapp_webhook`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::whatsapp_webhook::run(data));
