//! The SMTP session state machine (`switchboard_server::smtp::protocol`),
//! driven without sockets: the input is what a client sends, cut into
//! reads of varying size as a network would; recipients resolve against a
//! pretend directory, and a complete message is parsed as the listener
//! does before storing it.
//!
//! Checked: every reply is well-formed SMTP (a 3-digit code, CRLF-ended
//! lines, no bare CR or LF that would let input inject a reply); the
//! machine asks for DATA only with at least one and at most the limit of
//! recipients; each complete command line gets exactly one reply; the
//! session ends at QUIT.

use switchboard_channels::email;
use switchboard_server::smtp::protocol::{
    Action, DataEnd, DataReader, Limits, LineEnd, LineReader, Lookup, Protocol, Reply,
};

/// Small limits, so that the fuzzer reaches them.
fn limits() -> Limits {
    Limits {
        hostname: "mx.acme.example".into(),
        max_message_bytes: 2048,
        max_recipients: 3,
    }
}

/// What a pretend directory knows: the channel address and its plus forms;
/// an address mentioning `fail` makes the lookup fail.
fn lookup(address: &str) -> Lookup<u8> {
    if address.contains("fail") {
        return Lookup::Failed;
    }
    match email::match_recipient(address, "support@acme.example") {
        Some(_) => Lookup::Found(1),
        None => Lookup::Unknown,
    }
}

fn check_reply(reply: &Reply) {
    let bytes = &reply.bytes;
    assert!((200..=599).contains(&reply.code), "code {}", reply.code);
    assert!(
        bytes.ends_with(b"\r\n"),
        "{:?}",
        String::from_utf8_lossy(bytes)
    );
    let code = reply.code.to_string();
    let body = &bytes[..bytes.len() - 2];
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let line = if last {
            *line
        } else {
            line.strip_suffix(b"\r").expect("CRLF")
        };
        assert!(
            !line.contains(&b'\r'),
            "bare CR in {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(
            line.starts_with(code.as_bytes()),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        let sep = line.get(3).copied();
        assert!(
            sep == Some(if last { b' ' } else { b'-' }) || (last && sep.is_none()),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// One input: the client's bytes; the first byte sets the read size.
pub fn run(data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let mut protocol: Protocol<u8> = Protocol::new(limits());
    check_reply(&Reply::greeting(protocol.limits()));
    let mut lines = LineReader::new();
    let mut message: Option<DataReader> = None;
    let mut at = 0;
    while at < stream.len() {
        let end = (at + chunk).min(stream.len());
        let buf = &stream[at..end];
        if let Some(reader) = &mut message {
            let (used, done) = reader.push(buf);
            assert!(used <= buf.len());
            at += used;
            match done {
                Some(DataEnd::Complete(raw)) => {
                    assert!(raw.len() <= limits().max_message_bytes);
                    // What the listener does before storing.
                    let _ = email::parse(&raw);
                    message = None;
                }
                Some(DataEnd::TooBig) => message = None,
                None => assert_eq!(used, buf.len(), "a partial read must use all it got"),
            }
            continue;
        }
        let (used, done) = lines.push(buf);
        assert!(used > 0 && used <= buf.len());
        at += used;
        match done {
            None => assert_eq!(used, buf.len()),
            Some(LineEnd::TooLong) => assert!(lines.line().len() <= 4096),
            Some(LineEnd::Complete) => {
                let line = lines.line();
                assert!(line.ends_with(b"\n") && line.len() <= 4096);
                match protocol.command(line) {
                    Action::Reply(reply) => check_reply(&reply),
                    Action::Close(reply) => {
                        check_reply(&reply);
                        // Nothing is read after QUIT.
                        break;
                    }
                    Action::Resolve(address) => {
                        let count = protocol.transaction().map(|t| t.recipients.len());
                        assert!(count.is_some_and(|n| n < limits().max_recipients));
                        let found = lookup(&address);
                        let accepted = matches!(found, Lookup::Found(_));
                        let reply = protocol.resolved(address, found);
                        check_reply(&reply);
                        let after = protocol.transaction().map(|t| t.recipients.len());
                        assert_eq!(after, count.map(|n| n + usize::from(accepted)));
                    }
                    Action::Data(go_ahead, transaction) => {
                        check_reply(&go_ahead);
                        assert_eq!(go_ahead.code, 354);
                        let n = transaction.recipients.len();
                        assert!(n >= 1 && n <= limits().max_recipients, "{n} recipients");
                        assert!(protocol.transaction().is_none());
                        message = Some(DataReader::new(limits().max_message_bytes));
                    }
                }
            }
        }
    }
}
