//! The SMTP session without sockets: a state machine fed command lines and
//! message bytes that answers with replies and [`Action`]s for the caller
//! to carry out (look a recipient up, read and store a message, close).
//!
//! [`super::serve`] owns the I/O (reads with timeouts, writes, the
//! shutdown signal) and the store; everything the client's bytes decide is
//! here, so it can be tested and fuzzed without a network:
//!
//! - [`LineReader`] cuts the byte stream into command lines of at most
//!   [`MAX_LINE`] bytes;
//! - [`Protocol`] answers each command (EHLO/HELO, MAIL, RCPT, DATA, RSET,
//!   NOOP, QUIT, VRFY, HELP, polite refusals of the rest) and keeps the
//!   transaction;
//! - [`DataReader`] reads the message after `DATA` up to `<CRLF>.<CRLF>`,
//!   dot-unstuffed, within the size limit.

use smtp_proto::{
    EhloResponse, Error as ProtoError, Request, Response,
    request::receiver::{DataReceiver, DummyDataReceiver},
};

/// Longest command line accepted (RFC 5321 requires 512; extensions add).
pub const MAX_LINE: usize = 4096;

/// What the protocol needs to know of the listener's configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The name we greet with.
    pub hostname: String,
    /// Largest message accepted (advertised as `SIZE`).
    pub max_message_bytes: usize,
    /// Recipients per message.
    pub max_recipients: usize,
}

/// One reply, ready to be written: its code and its bytes (one or more
/// CRLF-terminated lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code (`250`, `550`, ...).
    pub code: u16,
    /// The wire form.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// A one-line reply. `esc` is the enhanced status code (RFC 3463);
    /// `[0, 0, 0]` for the replies that carry none (220, 354).
    pub fn new(code: u16, esc: [u8; 3], message: &str) -> Self {
        let mut bytes = Vec::with_capacity(message.len() + 16);
        if esc == [0, 0, 0] {
            bytes.extend_from_slice(format!("{code} {message}\r\n").as_bytes());
        } else {
            // Writing into a Vec cannot fail.
            let _ = Response::new(code, esc[0], esc[1], esc[2], message).write(&mut bytes);
        }
        Self { code, bytes }
    }

    /// The `220` greeting.
    pub fn greeting(limits: &Limits) -> Self {
        Self::new(
            220,
            [0, 0, 0],
            &format!("{} Switchboard ESMTP ready", limits.hostname),
        )
    }

    /// The `EHLO` answer with our extensions.
    fn ehlo(limits: &Limits) -> Self {
        let mut ehlo = EhloResponse::new(limits.hostname.as_str());
        ehlo.capabilities = smtp_proto::EXT_8BIT_MIME
            | smtp_proto::EXT_ENHANCED_STATUS_CODES
            | smtp_proto::EXT_PIPELINING
            | smtp_proto::EXT_SIZE
            | smtp_proto::EXT_SMTP_UTF8;
        ehlo.size = limits.max_message_bytes;
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = ehlo.write(&mut bytes);
        Self { code: 250, bytes }
    }
}

/// One mail transaction: `MAIL FROM` and its accepted `RCPT`s, each with
/// what the recipient resolved to (`T`: a channel, for the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction<T> {
    /// The envelope sender (empty for `<>`).
    pub sender: String,
    /// The accepted recipients, as given, with their targets.
    pub recipients: Vec<(String, T)>,
}

/// What the caller must do after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<T> {
    /// Write the reply and read the next command.
    Reply(Reply),
    /// Write the reply and end the session.
    Close(Reply),
    /// Resolve this recipient address, then hand the answer to
    /// [`Protocol::resolved`] and write its reply.
    Resolve(String),
    /// Write the `354`, read the message with a [`DataReader`], then store
    /// it for this transaction and answer.
    Data(Reply, Transaction<T>),
}

/// What a recipient lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// The address belongs to this target.
    Found(T),
    /// No channel has that address.
    Unknown,
    /// The lookup failed (the store is unreachable): try again later.
    Failed,
}

/// The protocol state of one session.
#[derive(Debug, Clone)]
pub struct Protocol<T> {
    limits: Limits,
    greeted: bool,
    transaction: Option<Transaction<T>>,
}

impl<T> Protocol<T> {
    /// A new session (not greeted yet: send [`Reply::greeting`] first).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            greeted: false,
            transaction: None,
        }
    }

    /// The limits the session runs with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The open transaction, if `MAIL` was accepted.
    pub fn transaction(&self) -> Option<&Transaction<T>> {
        self.transaction.as_ref()
    }

    /// Answers one command line (its CRLF included).
    pub fn command(&mut self, line: &[u8]) -> Action<T> {
        let request = Request::parse(&mut line.iter()).map(Request::into_owned);
        self.handle(request)
    }

    /// Answers one parsed command.
    pub fn handle(&mut self, request: Result<Request<String>, ProtoError>) -> Action<T> {
        let reply = |code, esc, text: &str| Action::Reply(Reply::new(code, esc, text));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                let (code, esc, text) = match e {
                    ProtoError::UnknownCommand => {
                        (500, [5, 5, 1], "Command not recognised".to_owned())
                    }
                    ProtoError::InvalidSenderAddress => {
                        (501, [5, 1, 7], "Bad sender address".to_owned())
                    }
                    ProtoError::InvalidRecipientAddress => {
                        (501, [5, 1, 3], "Bad recipient address".to_owned())
                    }
                    ProtoError::UnsupportedParameter { param } => {
                        (555, [5, 5, 4], format!("Unsupported parameter {param}"))
                    }
                    ProtoError::ResponseTooLong => (500, [5, 5, 2], "Line too long".to_owned()),
                    // A whole line that still "needs more": an empty or
                    // truncated command.
                    ProtoError::NeedsMoreData { .. } => {
                        (500, [5, 5, 2], "Command not recognised".to_owned())
                    }
                    other => (501, [5, 5, 4], other.to_string()),
                };
                return reply(code, esc, &text);
            }
        };
        match request {
            Request::Ehlo { .. } => {
                self.greeted = true;
                self.transaction = None;
                Action::Reply(Reply::ehlo(&self.limits))
            }
            Request::Helo { host } => {
                self.greeted = true;
                self.transaction = None;
                let text = format!("{} greets {host}", self.limits.hostname);
                reply(250, [0, 0, 0], &text)
            }
            Request::Mail { from } => {
                if !self.greeted {
                    reply(503, [5, 5, 1], "Send EHLO or HELO first")
                } else if self.transaction.is_some() {
                    reply(503, [5, 5, 1], "Nested MAIL command")
                } else if from.size > self.limits.max_message_bytes {
                    reply(552, [5, 3, 4], "Message too big")
                } else {
                    self.transaction = Some(Transaction {
                        sender: from.address,
                        recipients: Vec::new(),
                    });
                    reply(250, [2, 1, 0], "Sender OK")
                }
            }
            Request::Rcpt { to } => match &self.transaction {
                None => reply(503, [5, 5, 1], "Send MAIL first"),
                Some(t) if t.recipients.len() >= self.limits.max_recipients => {
                    reply(452, [4, 5, 3], "Too many recipients")
                }
                Some(_) => Action::Resolve(to.address),
            },
            Request::Data => match self.transaction.take() {
                None => reply(503, [5, 5, 1], "Send MAIL first"),
                Some(t) if t.recipients.is_empty() => {
                    self.transaction = Some(t);
                    reply(554, [5, 5, 1], "No valid recipients")
                }
                Some(t) => Action::Data(
                    Reply::new(354, [0, 0, 0], "End data with <CR><LF>.<CR><LF>"),
                    t,
                ),
            },
            Request::Rset => {
                self.transaction = None;
                reply(250, [2, 0, 0], "Reset")
            }
            Request::Noop { .. } => reply(250, [2, 0, 0], "OK"),
            Request::Quit => Action::Close(Reply::new(221, [2, 0, 0], "Bye")),
            Request::Vrfy { .. } => reply(252, [2, 5, 2], "Cannot verify, but will try delivery"),
            Request::Help { .. } => reply(
                214,
                [2, 0, 0],
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT",
            ),
            other => reply(502, [5, 5, 1], &format!("{} not implemented", other.name())),
        }
    }

    /// Finishes a `RCPT` that [`Action::Resolve`] asked about.
    pub fn resolved(&mut self, address: String, lookup: Lookup<T>) -> Reply {
        match lookup {
            Lookup::Found(target) => {
                if let Some(t) = &mut self.transaction {
                    t.recipients.push((address, target));
                }
                Reply::new(250, [2, 1, 5], "Recipient OK")
            }
            Lookup::Unknown => Reply::new(550, [5, 1, 1], &format!("No mailbox {address} here")),
            Lookup::Failed => Reply::new(451, [4, 3, 0], "Temporary failure, try again later"),
        }
    }
}

/// How a command line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// A whole line, in [`LineReader::line`].
    Complete,
    /// Longer than [`MAX_LINE`]; the rest was skipped.
    TooLong,
}

/// Cuts the client's bytes into command lines.
#[derive(Debug, Default)]
pub struct LineReader {
    line: Vec<u8>,
    too_long: bool,
    ended: bool,
}

impl LineReader {
    /// A reader with an empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes bytes from `buf`: how many were used (up to and including a
    /// line feed) and, when the line ended, how. After an end the next call
    /// starts a new line.
    pub fn push(&mut self, buf: &[u8]) -> (usize, Option<LineEnd>) {
        if self.ended {
            self.line.clear();
            self.too_long = false;
            self.ended = false;
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..=at], true),
            None => (buf, false),
        };
        if self.line.len() + chunk.len() > MAX_LINE {
            self.too_long = true;
        } else {
            self.line.extend_from_slice(chunk);
        }
        if !done {
            return (chunk.len(), None);
        }
        self.ended = true;
        let end = if self.too_long {
            LineEnd::TooLong
        } else {
            LineEnd::Complete
        };
        (chunk.len(), Some(end))
    }

    /// The line read so far (CRLF included once complete).
    pub fn line(&self) -> &[u8] {
        &self.line
    }
}

/// How a message after `DATA` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEnd {
    /// The whole message, dot-unstuffed, without the final `.`.
    Complete(Vec<u8>),
    /// Larger than the limit; it was read to its end and dropped, so the
    /// client is in step for the `552` and its next command.
    TooBig,
}

/// Reads one message after `DATA`.
pub struct DataReader {
    limit: usize,
    receiver: DataReceiver,
    discard: Option<DummyDataReceiver>,
    raw: Vec<u8>,
}

impl DataReader {
    /// A reader for a message of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            receiver: DataReceiver::new(),
            discard: None,
            raw: Vec::new(),
        }
    }

    /// Takes bytes from `buf`: how many were used and, once the final
    /// `<CRLF>.<CRLF>` was seen, the message (or that it was too big).
    pub fn push(&mut self, buf: &[u8]) -> (usize, Option<DataEnd>) {
        let mut bytes = buf.iter();
        let done = match &mut self.discard {
            Some(d) => d.ingest(&mut bytes),
            None => self.receiver.ingest(&mut bytes, &mut self.raw),
        };
        let used = buf.len() - bytes.len();
        if self.discard.is_none() && self.raw.len() > self.limit {
            self.discard = Some(DummyDataReceiver::new_data(&self.receiver));
            self.raw = Vec::new();
        }
        if !done {
            return (used, None);
        }
        let end = if self.discard.is_some() {
            DataEnd::TooBig
        } else {
            DataEnd::Complete(std::mem::take(&mut self.raw))
        };
        (used, Some(end))
    }
}
