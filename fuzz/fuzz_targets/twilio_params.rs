#![no_main]
//! `cargo fuzz run twilio_params`: see `switchboard_fuzz::twilio_params`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::twilio_params::run(data));
