//! Unit tests of the e-mail adapter, on literal messages.

use switchboard_domain::{Actor, MessageId};

use super::*;

fn field_of(e: ChannelError) -> String {
    match e {
        ChannelError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

const PLAIN: &str = "From: =?UTF-8?Q?Cl=C3=A9o_Martin?= <Cleo@Customer.example>\r\n\
    To: Support <support+42@acme.example>\r\n\
    Cc: other@acme.example\r\n\
    Subject: =?UTF-8?Q?Factur=C3=A9_twice?=\r\n\
    Message-ID: <c1@customer.example>\r\n\
    In-Reply-To: <sb.1.x@acme.example>\r\n\
    References: <root@customer.example> <sb.1.x@acme.example>\r\n\
    \r\n\
    Hello,\r\nmy invoice was charged twice.\r\n";

#[test]
fn parses_sender_ids_subject_body_and_recipients() {
    let m = parse(PLAIN.as_bytes()).unwrap();
    assert_eq!(m.from.address.as_str(), "Cleo@customer.example");
    assert_eq!(m.from.name.as_deref(), Some("Cléo Martin"));
    assert_eq!(m.subject, "Facturé twice");
    assert_eq!(m.message_id.as_deref(), Some("<c1@customer.example>"));
    assert_eq!(m.in_reply_to, ["<sb.1.x@acme.example>"]);
    assert_eq!(
        m.references,
        ["<root@customer.example>", "<sb.1.x@acme.example>"]
    );
    assert_eq!(m.text, "Hello,\r\nmy invoice was charged twice.");
    assert_eq!(m.html, None);
    assert!(m.attachments.is_empty());
    assert_eq!(
        m.recipients,
        ["support+42@acme.example", "other@acme.example"]
    );
    // In-Reply-To first, then References newest first, each once.
    assert_eq!(
        m.thread_ids(),
        ["<sb.1.x@acme.example>", "<root@customer.example>"]
    );
    assert_eq!(
        m.automated_reason(Some("cleo@customer.example"), Some("acme.example")),
        None
    );
}

#[test]
fn parses_html_and_attachments_of_a_multipart_message() {
    let raw = "From: ana@customer.example\r\nSubject: Screenshot\r\nMessage-ID: <m2@customer.example>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
        --b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
        --b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the file.\r\n\
        --b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the <b>file</b>.</p>\r\n\
        --b2--\r\n\
        --b1\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";
    let m = parse(raw.as_bytes()).unwrap();
    assert_eq!(m.text, "See the file.");
    assert_eq!(m.html.as_deref(), Some("<p>See the <b>file</b>.</p>"));
    assert_eq!(
        m.attachments,
        [EmailAttachment {
            filename: Some("invoice.pdf".into()),
            content_type: "application/pdf".into(),
            content: b"%PDF-1.4\n".to_vec(),
        }]
    );
}

#[test]
fn an_html_only_message_gets_a_text_body() {
    let raw = "From: a@b.example\r\nContent-Type: text/html\r\n\r\n<p>Hello <i>there</i></p>\r\n";
    let m = parse(raw.as_bytes()).unwrap();
    assert!(
        m.text.contains("Hello") && m.text.contains("there"),
        "{}",
        m.text
    );
    assert!(!m.text.contains('<'), "{}", m.text);
    assert!(m.html.is_some());
    assert_eq!(m.message_id, None);
    assert_eq!(m.subject, "");
}

#[test]
fn malformed_messages_name_the_field() {
    assert_eq!(field_of(parse(b"  \r\n").unwrap_err()), "message");
    let no_from = "To: support@acme.example\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(field_of(parse(no_from.as_bytes()).unwrap_err()), "from");
    let bad_from = "From: not an address\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(field_of(parse(bad_from.as_bytes()).unwrap_err()), "from");
    let garbage = "this is not a message at all";
    assert_eq!(field_of(parse(garbage.as_bytes()).unwrap_err()), "from");
}

fn with_header(header: &str) -> ParsedEmail {
    let raw = format!(
        "From: Cleo <cleo@customer.example>\r\n{header}\r\nSubject: x\r\nMessage-ID: <z@customer.example>\r\n\r\nbody\r\n"
    );
    parse(raw.as_bytes()).unwrap()
}

#[test]
fn automated_mail_is_recognised_by_each_signal() {
    let reason = |header: &str| with_header(header).automated_reason(None, Some("acme.example"));
    assert_eq!(
        reason("Auto-Submitted: auto-replied").as_deref(),
        Some("Auto-Submitted: auto-replied")
    );
    assert_eq!(
        reason("auto-submitted: Auto-Generated; owner-email=x@y").as_deref(),
        Some("Auto-Submitted: Auto-Generated")
    );
    assert_eq!(reason("Auto-Submitted: no"), None);
    assert_eq!(reason("Auto-Submitted: No"), None);
    for p in ["bulk", "List", "junk"] {
        assert!(reason(&format!("Precedence: {p}")).is_some(), "{p}");
    }
    assert_eq!(reason("Precedence: first-class"), None);
    for h in [
        "X-Loop: support@acme.example",
        "List-Id: <news.customer.example>",
        "List-Unsubscribe: <mailto:leave@customer.example>",
        "X-Autoreply: yes",
        "X-Autorespond: yes",
    ] {
        let name = h.split(':').next().unwrap();
        assert_eq!(reason(h), Some(format!("{name} header")), "{h}");
    }
    assert!(reason("Return-Path: <>").is_some());
    assert_eq!(reason("Return-Path: <cleo@customer.example>"), None);

    let person = with_header("X-Mailer: Thunderbird");
    assert_eq!(
        person.automated_reason(Some("cleo@customer.example"), None),
        None
    );
    assert!(person.automated_reason(Some(""), None).is_some());
    assert_eq!(
        person
            .automated_reason(Some("MAILER-DAEMON@mx.customer.example"), None)
            .as_deref(),
        Some("sent by mailer-daemon")
    );
    let bounce =
        parse(b"From: postmaster@customer.example\r\nSubject: Undeliverable\r\n\r\nx\r\n").unwrap();
    assert_eq!(
        bounce.automated_reason(None, None).as_deref(),
        Some("sent by postmaster")
    );
}

#[test]
fn only_our_own_message_ids_count_as_a_loop() {
    let ours =
        parse(b"From: a@b.example\r\nMessage-ID: <sb.4.99@Acme.example>\r\n\r\nx\r\n").unwrap();
    assert!(ours.automated_reason(None, Some("acme.example")).is_some());
    assert_eq!(ours.automated_reason(None, Some("other.example")), None);
    // Same domain, not generated by us: a colleague writing to the desk.
    let colleague =
        parse(b"From: it@acme.example\r\nMessage-ID: <CAF123@acme.example>\r\n\r\nx\r\n").unwrap();
    assert_eq!(colleague.automated_reason(None, Some("acme.example")), None);
}

#[test]
fn subject_tokens_name_tickets() {
    assert_eq!(
        subject_ticket("Re: Charged twice [#12]"),
        Some(TicketId(12))
    );
    assert_eq!(subject_ticket("[#3] and [#4]"), Some(TicketId(3)));
    assert_eq!(subject_ticket("[#] [#x1] [#7"), None);
    assert_eq!(subject_ticket("[#abc] then [#8]"), Some(TicketId(8)));
    assert_eq!(subject_ticket("No token #12"), None);
    assert_eq!(ticket_token(TicketId(12)), "[#12]");
}

#[test]
fn recipients_match_the_channel_address_or_its_plus_form() {
    let channel = "support@acme.example";
    assert_eq!(
        match_recipient("Support@ACME.example", channel),
        Some(RecipientMatch::Exact)
    );
    assert_eq!(
        match_recipient("<support+42@acme.example>", channel),
        Some(RecipientMatch::Plus {
            tag: "42".into(),
            ticket: Some(TicketId(42))
        })
    );
    assert_eq!(
        match_recipient("support+news@acme.example", channel),
        Some(RecipientMatch::Plus {
            tag: "news".into(),
            ticket: None
        })
    );
    assert_eq!(match_recipient("support+1@other.example", channel), None);
    assert_eq!(match_recipient("sales+1@acme.example", channel), None);
    assert_eq!(match_recipient("support@acme.example", ""), None);
    assert_eq!(
        plus_ticket(["x@y.example", "support+7@acme.example"], channel),
        Some(TicketId(7))
    );
    assert_eq!(plus_ticket(["support@acme.example"], channel), None);
    assert_eq!(domain_of("support@acme.example"), Some("acme.example"));
    assert_eq!(domain_of("nobody"), None);
}

#[test]
fn reply_subjects_carry_one_re_and_one_token() {
    let t = TicketId(5);
    assert_eq!(reply_subject("Charged twice", t), "Re: Charged twice [#5]");
    assert_eq!(
        reply_subject("Re: Charged twice [#5]", t),
        "Re: Charged twice [#5]"
    );
    assert_eq!(
        reply_subject("RE: [#5] Charged  twice", t),
        "RE: Charged twice [#5]"
    );
    assert_eq!(reply_subject("", t), "Re: [#5]");
    assert_eq!(
        message_id(t, "abc", "acme.example"),
        "<sb.5.abc@acme.example>"
    );
    assert!(is_our_message_id(
        &message_id(t, "abc", "acme.example"),
        "acme.example"
    ));
}

fn msg(id: i64, kind: MessageKind, external_id: Option<&str>) -> Message {
    Message {
        id: MessageId(id),
        ticket_id: TicketId(1),
        kind,
        author: Actor::System,
        body: String::new(),
        external_id: external_id.map(str::to_owned),
        created_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

#[test]
fn replies_answer_the_last_inbound_message_and_reference_the_thread() {
    use MessageKind::*;
    let conversation = [
        msg(1, Inbound, Some("<c1@customer.example>")),
        msg(2, Note, None),
        msg(3, Reply, Some("<sb.1.a@acme.example>")),
        msg(4, Inbound, Some("<c2@customer.example>")),
        msg(5, Inbound, Some("wamid.XYZ")),
        msg(6, Reply, Some("<sb.1.b@acme.example>")),
    ];
    let (parent, references) = reply_threading(&conversation);
    assert_eq!(parent.as_deref(), Some("<c2@customer.example>"));
    assert_eq!(
        references,
        [
            "<c1@customer.example>",
            "<sb.1.a@acme.example>",
            "<c2@customer.example>"
        ]
    );
    assert_eq!(reply_threading(&conversation[1..3]), (None, Vec::new()));

    let long: Vec<Message> = (0..30)
        .map(|i| msg(i, Inbound, Some(&format!("<m{i}@x.example>"))))
        .collect();
    let (parent, references) = reply_threading(&long);
    assert_eq!(parent.as_deref(), Some("<m29@x.example>"));
    assert_eq!(references.len(), MAX_REFERENCES);
    assert_eq!(references[0], "<m0@x.example>");
    assert_eq!(references[1], "<m11@x.example>");
    assert_eq!(references.last().unwrap(), "<m29@x.example>");
}

fn reply(automatic: bool) -> Reply<'static> {
    Reply {
        from: "support@acme.example",
        from_name: Some("Acme Support"),
        to: "cleo@customer.example",
        to_name: Some("Cléo Martin"),
        subject: "Re: Facturé twice [#5]".into(),
        message_id: "<sb.5.abc@acme.example>",
        in_reply_to: Some("<c2@customer.example>".into()),
        references: vec![
            "<c1@customer.example>".into(),
            "<c2@customer.example>".into(),
        ],
        body: "The refund is on its way.",
        automatic,
    }
}

#[test]
fn a_built_reply_threads_and_reads_back() {
    let built = build_reply(&reply(false)).unwrap();
    let envelope = built.envelope();
    assert_eq!(envelope.from().unwrap().to_string(), "support@acme.example");
    assert_eq!(envelope.to()[0].to_string(), "cleo@customer.example");
    let bytes = built.formatted();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("Auto-Submitted"), "{text}");
    let back = parse(&bytes).unwrap();
    assert_eq!(back.message_id.as_deref(), Some("<sb.5.abc@acme.example>"));
    assert_eq!(back.in_reply_to, ["<c2@customer.example>"]);
    assert_eq!(
        back.references,
        ["<c1@customer.example>", "<c2@customer.example>"]
    );
    assert_eq!(back.subject, "Re: Facturé twice [#5]");
    assert_eq!(subject_ticket(&back.subject), Some(TicketId(5)));
    assert_eq!(back.from.address.as_str(), "support@acme.example");
    assert_eq!(back.recipients, ["cleo@customer.example"]);
    assert_eq!(back.text, "The refund is on its way.");
    // A reply we send is not automated mail in the customer's eyes...
    assert_eq!(back.automated_reason(None, Some("customer.example")), None);
    // ...but comes back as our own if it loops to us under a new id.
    assert!(back.automated_reason(None, Some("acme.example")).is_some());
}

#[test]
fn automatic_replies_say_so() {
    let bytes = build_reply(&reply(true)).unwrap().formatted();
    let back = parse(&bytes).unwrap();
    assert_eq!(
        back.loop_headers.auto_submitted.as_deref(),
        Some("auto-replied")
    );
    assert!(back.automated_reason(None, None).is_some());
}

#[test]
fn a_reply_to_a_bad_address_is_refused() {
    let mut bad = reply(false);
    bad.to = "not an address";
    assert_eq!(field_of(build_reply(&bad).unwrap_err()), "to");
}

/// Found by the `email_parse` fuzz target: a display name with a CR or LF
/// (from the header, or from a form or chat contact) made lettre's header
/// writer fail, and `build_reply` panicked.
#[test]
fn names_with_line_breaks_become_one_line() {
    let m = parse(b"From: Cleo <cleo@customer.example>\r>\r\0=\nbody\r\n").unwrap();
    assert!(
        m.from
            .name
            .as_deref()
            .is_none_or(|n| !n.contains(['\r', '\n']))
    );
    let folded =
        parse(b"From: =?UTF-8?Q?Cl=C3=A9o=0D=0AMartin?= <c@x.example>\r\n\r\nhi\r\n").unwrap();
    assert_eq!(folded.from.name.as_deref(), Some("Cléo Martin"));
    let mut r = reply(false);
    r.to_name = Some("Cléo\r\nBcc: victim@x.example");
    r.from_name = Some("Acme\nSupport");
    let bytes = build_reply(&r).unwrap().formatted();
    let back = parse(&bytes).unwrap();
    assert_eq!(back.recipients, ["cleo@customer.example"]);
    assert_eq!(display_name(" a\t\r\n b\u{0} "), "a b");
}
