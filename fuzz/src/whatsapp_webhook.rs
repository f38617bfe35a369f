//! WhatsApp Cloud API webhooks: `X-Hub-Signature-256` on the raw body,
//! the notification parser, the verification handshake, and the Graph
//! API's answers.
//!
//! Checked: a body verifies with its own signature and with no other (a
//! changed byte, another secret); a header the input supplies verifies only
//! if it is the body's HMAC; a parsed message's phone is `+` and its wa_id;
//! the reply body for it is the documented shape.

use switchboard_channels::whatsapp;

const SECRET: &str = "fuzz-app-secret";

/// One input: a notification body. Its first line doubles as a signature
/// header for the rest, and its lines as verification query values.
pub fn run(data: &[u8]) {
    // The signature of the body itself.
    let header = whatsapp::sign(SECRET, data);
    assert!(whatsapp::verify_signature(SECRET, Some(&header), data).is_ok());
    assert!(
        whatsapp::verify_signature(
            SECRET,
            Some(&header.to_uppercase().replace("SHA256=", "sha256=")),
            data
        )
        .is_ok()
    );
    assert!(whatsapp::verify_signature("another-secret", Some(&header), data).is_err());
    let mut changed = data.to_vec();
    match changed.first_mut() {
        Some(b) => *b ^= 1,
        None => changed.push(b'x'),
    }
    assert!(whatsapp::verify_signature(SECRET, Some(&header), &changed).is_err());
    assert!(whatsapp::verify_signature("", Some(&whatsapp::sign("", data)), data).is_err());
    assert!(whatsapp::verify_signature(SECRET, None, data).is_err());

    // A header from outside: accepted only if it is the rest's HMAC.
    let (line, rest) = crate::first_line(data);
    if let Ok(line) = std::str::from_utf8(line) {
        if whatsapp::verify_signature(SECRET, Some(line), rest).is_ok() {
            let expected = whatsapp::sign(SECRET, rest);
            assert_eq!(
                line.trim().to_ascii_lowercase(),
                expected,
                "forged signature accepted"
            );
        }
        // The verification handshake, from the first lines.
        let mut parts = line.splitn(3, '&');
        let (mode, token, challenge) = (parts.next(), parts.next(), parts.next());
        if let Ok(echo) = whatsapp::verify_subscription(mode, token, challenge, "verify-me") {
            assert_eq!(mode, Some("subscribe"));
            assert_eq!(token, Some("verify-me"));
            assert_eq!(Some(echo.as_str()), challenge);
        }
    }

    if let Ok(notification) = whatsapp::parse(data) {
        for m in &notification.messages {
            if let Some(phone) = m.phone() {
                assert_eq!(
                    phone.as_str().trim_start_matches('+'),
                    m.wa_id.replace([' ', '-', '.', '(', ')'], "")
                );
            }
            let body = whatsapp::reply_body(&m.wa_id, &m.text, Some(&m.id));
            assert_eq!(body["messaging_product"], "whatsapp");
            assert_eq!(body["text"]["body"], m.text.as_str());
            assert_eq!(body["context"]["message_id"], m.id.as_str());
            let _ = serde_json::to_vec(&body).expect("serialisable");
            if let Some(media) = &m.media {
                assert!(!media.mime_type.is_empty());
            }
            let _ = serde_json::to_string(&m.properties).expect("serialisable");
        }
        for s in &notification.statuses {
            let _ = s.status.as_str();
        }
    }
    let _ = whatsapp::sent_message_id(data);
    let _ = whatsapp::error_message(data);
}
