//! Twilio-compatible voice webhooks: the form body ([`Params::parse`]),
//! `X-Twilio-Signature` ([`voice::signature`], [`voice::verify_signature`])
//! over each spelling of the URL ([`voice::url_variants`]), and what the
//! routes read from the parameters (dial targets, statuses, recording
//! types, TwiML escaping).
//!
//! Checked: decoding agrees with the WHATWG `application/x-www-form-urlencoded`
//! parser (the one Twilio's and browsers' libraries follow); a request
//! verifies with the signature of any of its URL variants and not with
//! another token; a signature the input supplies verifies only if it is
//! the signature of one variant; the variants start with the URL itself and
//! hold no duplicates; escaped text cannot open a tag.

use switchboard_channels::voice::{self, DialTarget, Params};

const TOKEN: &str = "fuzz-auth-token";
const URL: &str = "https://desk.example/voice/CH1/incoming?x=1";

/// One input: a form body. A `Url` parameter, when present, is signed
/// too; a `Signature` parameter is tried as a header for the others.
pub fn run(data: &[u8]) {
    let params = match Params::parse(data) {
        Ok(p) => p,
        Err(_) => {
            assert!(
                std::str::from_utf8(data).is_err(),
                "a UTF-8 body was refused"
            );
            return;
        }
    };
    let reference: Vec<(String, String)> = form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(
        params.pairs(),
        &reference[..],
        "decoding differs from the WHATWG parser"
    );

    let fuzzed_url = params.get("Url").map(str::to_owned);
    for url in std::iter::once(URL.to_owned()).chain(fuzzed_url) {
        let variants = voice::url_variants(&url);
        assert_eq!(variants[0], url);
        assert!(variants.len() <= 3);
        for (i, v) in variants.iter().enumerate() {
            assert!(!variants[..i].contains(v), "duplicate variant {v:?}");
        }
        for v in &variants {
            let signature = voice::signature(TOKEN, v, &params);
            assert!(voice::verify_signature(TOKEN, &variants, &params, Some(&signature)).is_ok());
            assert!(
                voice::verify_signature("other-token", &variants, &params, Some(&signature))
                    .is_err()
            );
            assert!(voice::verify_signature("", &variants, &params, Some(&signature)).is_err());
            // Parameter order does not matter.
            let mut reversed = params.pairs().to_vec();
            reversed.reverse();
            let reversed = Params::from_pairs(reversed);
            assert_eq!(voice::signature(TOKEN, v, &reversed), signature);
        }
        assert!(voice::verify_signature(TOKEN, &variants, &params, None).is_err());
        if let Some(header) = params.get("Signature") {
            let others = Params::from_pairs(
                params
                    .pairs()
                    .iter()
                    .filter(|(n, _)| n != "Signature")
                    .cloned(),
            );
            if voice::verify_signature(TOKEN, &variants, &others, Some(header)).is_ok() {
                let known: Vec<String> = variants
                    .iter()
                    .map(|v| voice::signature(TOKEN, v, &others))
                    .collect();
                assert!(
                    known.iter().any(|s| s == header.trim()),
                    "forged signature accepted"
                );
            }
        }
    }

    for name in ["To", "Called", "From", "ForwardedFrom"] {
        let Some(value) = params.get(name) else {
            continue;
        };
        if let Ok(target) = DialTarget::parse(value) {
            let called = match &target {
                DialTarget::Client(id) => format!("client:{id}"),
                DialTarget::Number(n) => n.as_str().to_owned(),
            };
            assert!(
                target.is_called(&called),
                "{target:?} not called by {called:?}"
            );
            let twiml = voice::dial("/voice/dial", 20, &[target], Some(value));
            assert!(twiml.ends_with("</Dial></Response>"));
        }
    }
    for (name, value) in params.pairs() {
        let escaped = voice::escape(value);
        assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped:?}");
        let twiml = voice::say_and_hang_up(value);
        assert_eq!(twiml.matches('<').count(), 6, "{twiml}");
        let _ = voice::voicemail(value, name, value);
        let _ = voice::recording_content_type(value);
        let _ = voice::dial_answered(value);
    }
    let _ = params.require("CallSid");
}
