//! Raw RFC 5322 mail, as the SMTP listener and `POST .../inbound/email`
//! receive it: [`email::parse`], then what the intake does with the result
//! (`thread_ids`, `automated_reason`, `subject_ticket`, `match_recipient`,
//! `plus_ticket`, the contact's name), and the reply built for it
//! (`reply_subject`, `build_reply`), which must parse back and be
//! recognised as our own automatic mail.

use switchboard_channels::{
    ChannelError,
    email::{self, RecipientMatch, Reply},
};
use switchboard_domain::{EmailAddress, Name, TicketId};

const CHANNEL: &str = "support@acme.example";
const DOMAIN: &str = "acme.example";

/// One input: a whole message.
pub fn run(data: &[u8]) {
    let parsed = match email::parse(data) {
        Ok(p) => p,
        Err(ChannelError::Invalid { field, .. }) => {
            assert!(["message", "from"].contains(&field.as_str()), "{field}");
            return;
        }
        Err(e) => panic!("parse failed with a non-input error: {e}"),
    };

    // Ids keep their brackets; a message never threads onto itself.
    for id in parsed
        .message_id
        .iter()
        .chain(&parsed.in_reply_to)
        .chain(&parsed.references)
    {
        assert!(id.starts_with('<') && id.ends_with('>'), "{id:?}");
    }
    let thread = parsed.thread_ids();
    for (i, id) in thread.iter().enumerate() {
        assert!(Some(id) != parsed.message_id.as_ref());
        assert!(!thread[..i].contains(id), "duplicate thread id {id:?}");
        assert!(parsed.in_reply_to.contains(id) || parsed.references.contains(id));
    }
    // Recipients are lower-cased and unique.
    for (i, r) in parsed.recipients.iter().enumerate() {
        assert_eq!(*r, r.to_ascii_lowercase());
        assert!(!parsed.recipients[..i].contains(r));
    }
    // The sender's address is a valid one, and parsing it again is stable.
    let again = EmailAddress::try_from(parsed.from.address.to_string()).expect("valid sender");
    assert_eq!(again, parsed.from.address);
    if let Some(name) = &parsed.from.name {
        assert!(!name.trim().is_empty());
        // The intake keeps a name only if it is a valid one: never a panic.
        let _ = Name::try_from(name.clone());
    }

    // Loop detection: a null envelope is always automated.
    const DAEMON: &str = "MAILER-DAEMON@x.example";
    let envelopes = [
        None,
        Some(""),
        Some(parsed.from.address.as_str()),
        Some(DAEMON),
    ];
    for envelope in envelopes {
        let reason = parsed.automated_reason(envelope, Some(DOMAIN));
        if envelope == Some("") || envelope == Some(DAEMON) {
            assert!(reason.is_some(), "{envelope:?} not flagged");
        }
        let _ = parsed.automated_reason(envelope, None);
    }

    // Threading keys besides the headers.
    if let Some(ticket) = email::subject_ticket(&parsed.subject) {
        assert!(ticket.0 >= 0);
        assert!(parsed.subject.contains("[#"));
    }
    for r in &parsed.recipients {
        match email::match_recipient(r, CHANNEL) {
            Some(RecipientMatch::Exact) => assert!(r.eq_ignore_ascii_case(CHANNEL)),
            Some(RecipientMatch::Plus { tag, ticket }) => {
                assert!(r.contains(&format!("+{tag}@")));
                assert!(ticket.is_none_or(|t| t.0 > 0));
            }
            None => {}
        }
        // Every address matches itself.
        if r.contains('@') {
            assert_eq!(email::match_recipient(r, r), Some(RecipientMatch::Exact));
        }
    }
    let hint = email::plus_ticket(parsed.recipients.iter().map(String::as_str), CHANNEL);
    assert!(hint.is_none_or(|t| t.0 > 0));
    let _ = email::domain_of(parsed.from.address.as_str());

    reply_round_trip(&parsed, TicketId(42));
}

/// Our automatic reply to `parsed` parses back, keeps its threading, and
/// is recognised as ours if it ever comes back.
fn reply_round_trip(parsed: &email::ParsedEmail, ticket: TicketId) {
    let subject = email::reply_subject(&parsed.subject, ticket);
    assert!(subject.contains(&email::ticket_token(ticket)));
    if !parsed.subject.contains("[#") {
        assert_eq!(email::subject_ticket(&subject), Some(ticket), "{subject:?}");
    }
    let message_id = email::message_id(ticket, "fuzz", DOMAIN);
    assert!(email::is_our_message_id(&message_id, DOMAIN));
    let mut references = parsed.references.clone();
    references.extend(parsed.message_id.clone());
    let reply = Reply {
        from: CHANNEL,
        from_name: Some("Acme Support"),
        to: parsed.from.address.as_str(),
        to_name: parsed.from.name.as_deref(),
        subject,
        message_id: &message_id,
        in_reply_to: parsed.message_id.clone(),
        references,
        body: &parsed.text,
        automatic: true,
    };
    // lettre is stricter about addresses than we are: an error, not a panic.
    let Ok(built) = email::build_reply(&reply) else {
        return;
    };
    let raw = built.formatted();
    let back = email::parse(&raw).expect("our own reply parses");
    assert_eq!(back.from.address.as_str(), CHANNEL);
    assert_eq!(back.message_id.as_deref(), Some(message_id.as_str()));
    assert!(
        back.automated_reason(Some(CHANNEL), Some(DOMAIN)).is_some(),
        "our automatic reply would not be recognised coming back"
    );
}
