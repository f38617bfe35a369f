//! Team e-mail: RFC 5322 messages in, agent replies out. No sockets here
//! (the server owns the SMTP listener, the HTTP route and the relay); this
//! module owns the bytes and the rules:
//!
//! - [`parse`] turns a raw message (mail-parser) into a [`ParsedEmail`]:
//!   sender, Message-ID and thread ids (kept *with* their angle brackets, as
//!   in the header, because that is how they are stored as external ids),
//!   text and HTML bodies, attachments, and the headers that reveal
//!   automated mail;
//! - threading keys besides the headers: the `[#123]` token in a subject
//!   ([`subject_ticket`]) and plus-addressing, `support+123@...`
//!   ([`match_recipient`]);
//! - loop detection ([`ParsedEmail::automated_reason`]): mail that must
//!   never get an automatic answer;
//! - replies: the subject with its token ([`reply_subject`]), our
//!   Message-IDs ([`message_id`]), `In-Reply-To`/`References` from a
//!   ticket's conversation ([`reply_threading`]), and the message itself
//!   ([`build_reply`]), built with lettre's builder so that non-ASCII names
//!   and subjects are encoded correctly.

use lettre::message::{
    Mailbox,
    header::{HeaderName, HeaderValue},
};
use mail_parser::{Address, HeaderValue as ParsedValue, MessageParser, MimeHeaders, PartType};
use switchboard_domain::{EmailAddress, Message, MessageKind, TicketId};

use crate::ChannelError;

/// Local-part prefix of every Message-ID Switchboard generates, so that our
/// own mail coming back can be recognised even under a new id.
pub const MESSAGE_ID_PREFIX: &str = "sb.";

/// How many ids a reply's `References` keeps at most. RFC 5322 (3.6.4)
/// allows trimming long chains; the first id (the thread's root) and the
/// most recent ones are what clients use to thread.
pub const MAX_REFERENCES: usize = 20;

/// The sender of a message: becomes or matches the ticket's contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The address from `From`.
    pub address: EmailAddress,
    /// The display name, when there is a usable one.
    pub name: Option<String>,
}

/// A file that came with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAttachment {
    /// The file name the sender gave, if any.
    pub filename: Option<String>,
    /// `type/subtype`.
    pub content_type: String,
    /// The decoded bytes.
    pub content: Vec<u8>,
}

/// The headers that mark a message as sent by a machine, as found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopHeaders {
    /// `Auto-Submitted` (RFC 3834), trimmed.
    pub auto_submitted: Option<String>,
    /// `Precedence`, trimmed.
    pub precedence: Option<String>,
    /// `X-Loop` is present.
    pub x_loop: bool,
    /// `List-Id` is present.
    pub list_id: bool,
    /// `List-Unsubscribe` is present.
    pub list_unsubscribe: bool,
    /// `X-Autoreply` is present.
    pub x_autoreply: bool,
    /// `X-Autorespond` is present.
    pub x_autorespond: bool,
    /// `Return-Path`, trimmed (`<>` for bounces).
    pub return_path: Option<String>,
}

/// A message parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEmail {
    /// `Message-ID`, with its angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To` ids, with angle brackets.
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first, with angle brackets.
    pub references: Vec<String>,
    /// Who sent it.
    pub from: Sender,
    /// Addresses in `To`, `Cc`, `Delivered-To` and `X-Original-To`,
    /// lower-cased (for plus-addressing when there is no SMTP envelope).
    pub recipients: Vec<String>,
    /// The decoded subject (empty when there is none).
    pub subject: String,
    /// The text body: the text parts, or the HTML converted to text.
    pub text: String,
    /// The HTML body, when the message has one.
    pub html: Option<String>,
    /// Attachments (and inline files).
    pub attachments: Vec<EmailAttachment>,
    /// Headers that reveal automated mail.
    pub loop_headers: LoopHeaders,
}

/// Parses a raw RFC 5322 message. Fails, naming the field, when there is
/// no header section or no usable `From` address.
pub fn parse(raw: &[u8]) -> Result<ParsedEmail, ChannelError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ChannelError::invalid("message", "the message is empty"));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| ChannelError::invalid("message", "no RFC 5322 header section found"))?;
    let from = sender(message.from())?;
    let mut recipients: Vec<String> = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(Address::iter)
        .filter_map(|a| a.address.as_deref())
        .map(str::to_owned)
        .collect();
    for name in ["Delivered-To", "X-Original-To"] {
        for (header, value) in message.headers_raw() {
            if header.eq_ignore_ascii_case(name) {
                recipients.push(strip_brackets(value.trim()).to_owned());
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    recipients = recipients
        .into_iter()
        .map(|r| r.to_ascii_lowercase())
        .filter(|r| seen.insert(r.clone()))
        .collect();

    let text = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned();
    let html = message.html_bodies().find_map(|part| match &part.body {
        PartType::Html(html) => Some(html.to_string()),
        _ => None,
    });
    let attachments = message
        .attachments()
        .map(|part| EmailAttachment {
            filename: part.attachment_name().map(str::to_owned),
            content_type: part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |ct| match ct.subtype() {
                    Some(sub) => format!("{}/{sub}", ct.ctype()),
                    None => ct.ctype().to_owned(),
                },
            ),
            content: part.contents().to_vec(),
        })
        .collect();

    let raw_header = |name: &str| {
        message
            .headers_raw()
            .find(|(h, _)| h.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let loop_headers = LoopHeaders {
        auto_submitted: raw_header("Auto-Submitted"),
        precedence: raw_header("Precedence"),
        x_loop: raw_header("X-Loop").is_some(),
        list_id: raw_header("List-Id").is_some(),
        list_unsubscribe: raw_header("List-Unsubscribe").is_some(),
        x_autoreply: raw_header("X-Autoreply").is_some(),
        x_autorespond: raw_header("X-Autorespond").is_some(),
        return_path: raw_header("Return-Path"),
    };

    Ok(ParsedEmail {
        message_id: message
            .message_id()
            .filter(|id| !id.trim().is_empty())
            .map(bracketed),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from,
        recipients,
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        text,
        html,
        attachments,
        loop_headers,
    })
}

fn sender(from: Option<&Address<'_>>) -> Result<Sender, ChannelError> {
    let first = from
        .and_then(Address::first)
        .ok_or_else(|| ChannelError::invalid("from", "the message has no From address"))?;
    let address = first
        .address
        .as_deref()
        .ok_or_else(|| ChannelError::invalid("from", "the From header holds no address"))?;
    let address = EmailAddress::try_from(address.to_owned())
        .map_err(|e| ChannelError::invalid("from", e.to_string()))?;
    let name = first
        .name
        .as_deref()
        .map(|n| display_name(n.trim().trim_matches('"')))
        // A "name" that is just the address again adds nothing.
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(address.as_str()));
    Ok(Sender { address, name })
}

/// A display name on one line: control characters (a CR or LF that an
/// encoded word decoded to, a tab) become spaces and runs of whitespace
/// one space. A header cannot carry a line break in a name, and lettre
/// refuses to write one.
pub fn display_name(name: &str) -> String {
    name.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ids of an `In-Reply-To`/`References` header, with brackets.
fn ids(value: &ParsedValue<'_>) -> Vec<String> {
    match value {
        ParsedValue::Text(id) => vec![bracketed(id)],
        ParsedValue::TextList(list) => list.iter().map(|id| bracketed(id)).collect(),
        _ => Vec::new(),
    }
}

/// `<id>` (mail-parser hands ids over without their brackets).
fn bracketed(id: &str) -> String {
    format!("<{}>", strip_brackets(id.trim()))
}

fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
}

impl ParsedEmail {
    /// The ids of the messages this one answers, most relevant first:
    /// `In-Reply-To`, then `References` from the newest back.
    pub fn thread_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in self.in_reply_to.iter().chain(self.references.iter().rev()) {
            if Some(id) != self.message_id.as_ref() && !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    }

    /// Why this message is automated (an auto-reply, a bounce, a list, our
    /// own mail coming back), or `None` for mail a person wrote. Such mail
    /// must never get an automatic answer, or two machines answer each other
    /// forever. `envelope_sender` is the SMTP `MAIL FROM` (`Some("")` for
    /// `<>`), when known; `own_domain` is the channel address's domain.
    pub fn automated_reason(
        &self,
        envelope_sender: Option<&str>,
        own_domain: Option<&str>,
    ) -> Option<String> {
        let h = &self.loop_headers;
        if let Some(value) = &h.auto_submitted {
            // RFC 3834: "no" is the only value that means a person sent it;
            // parameters may follow a semicolon.
            let keyword = value.split(';').next().unwrap_or("").trim();
            if !keyword.eq_ignore_ascii_case("no") {
                return Some(format!("Auto-Submitted: {keyword}"));
            }
        }
        if let Some(value) = &h.precedence {
            let value = value.to_ascii_lowercase();
            if ["bulk", "list", "junk"].contains(&value.as_str()) {
                return Some(format!("Precedence: {value}"));
            }
        }
        let flags = [
            (h.x_loop, "X-Loop"),
            (h.list_id, "List-Id"),
            (h.list_unsubscribe, "List-Unsubscribe"),
            (h.x_autoreply, "X-Autoreply"),
            (h.x_autorespond, "X-Autorespond"),
        ];
        if let Some((_, header)) = flags.iter().find(|(set, _)| *set) {
            return Some(format!("{header} header"));
        }
        let null_envelope = envelope_sender.is_some_and(|s| s.trim().is_empty());
        let null_header = h.return_path.as_deref().is_some_and(|p| p == "<>");
        if null_envelope || null_header {
            return Some("empty return path (<>)".into());
        }
        let senders = std::iter::once(self.from.address.as_str()).chain(envelope_sender);
        for address in senders {
            let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
            if local == "mailer-daemon" || local == "postmaster" {
                return Some(format!("sent by {local}"));
            }
        }
        // Only ids we generate (prefix and domain): a customer on the same
        // domain as the help desk (an internal IT desk) is a person.
        if let (Some(id), Some(domain)) = (&self.message_id, own_domain)
            && is_our_message_id(id, domain)
        {
            return Some("a Message-ID of ours (our own mail came back)".into());
        }
        None
    }
}

/// Whether `id` (`<local@domain>`) is one Switchboard generated for `domain`.
pub fn is_our_message_id(id: &str, domain: &str) -> bool {
    strip_brackets(id)
        .rsplit_once('@')
        .is_some_and(|(local, d)| {
            local.starts_with(MESSAGE_ID_PREFIX) && d.eq_ignore_ascii_case(domain)
        })
}

/// The `[#123]` token that ties a subject to ticket 123.
pub fn ticket_token(ticket: TicketId) -> String {
    format!("[#{ticket}]")
}

/// The ticket a subject names with a `[#123]` token, the first one if
/// there are several.
pub fn subject_ticket(subject: &str) -> Option<TicketId> {
    subject.match_indices("[#").find_map(|(at, _)| {
        let rest = &subject[at + 2..];
        let (digits, _) = rest.split_once(']')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(TicketId)
    })
}

/// How a recipient address relates to a channel's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientMatch {
    /// Exactly the channel's address.
    Exact,
    /// Its plus-addressed form `local+tag@domain`; `ticket` when the tag is
    /// a ticket id.
    Plus {
        /// The tag after `+`.
        tag: String,
        /// The ticket the tag names, if it is a number.
        ticket: Option<TicketId>,
    },
}

/// Whether `recipient` is `channel_address` or its plus-addressed form
/// (case-insensitive, as mail systems treat them in practice).
pub fn match_recipient(recipient: &str, channel_address: &str) -> Option<RecipientMatch> {
    let recipient = strip_brackets(recipient.trim());
    let channel_address = strip_brackets(channel_address.trim());
    if channel_address.is_empty() {
        return None;
    }
    if recipient.eq_ignore_ascii_case(channel_address) {
        return Some(RecipientMatch::Exact);
    }
    let (local, domain) = recipient.rsplit_once('@')?;
    let (channel_local, channel_domain) = channel_address.rsplit_once('@')?;
    let (base, tag) = local.split_once('+')?;
    if !domain.eq_ignore_ascii_case(channel_domain) || !base.eq_ignore_ascii_case(channel_local) {
        return None;
    }
    Some(RecipientMatch::Plus {
        tag: tag.to_owned(),
        ticket: tag.parse().ok().filter(|id: &i64| *id > 0).map(TicketId),
    })
}

/// The ticket named by plus-addressing in any of `recipients`.
pub fn plus_ticket<'a>(
    recipients: impl IntoIterator<Item = &'a str>,
    channel_address: &str,
) -> Option<TicketId> {
    recipients
        .into_iter()
        .find_map(|r| match match_recipient(r, channel_address) {
            Some(RecipientMatch::Plus { ticket, .. }) => ticket,
            _ => None,
        })
}

/// The domain of an address (`acme.example` for `support@acme.example`).
pub fn domain_of(address: &str) -> Option<&str> {
    strip_brackets(address.trim())
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

/// A Message-ID for a message of `ticket`, on `domain`. `unique` must not
/// repeat (the server passes the time and random bits).
pub fn message_id(ticket: TicketId, unique: &str, domain: &str) -> String {
    format!("<{MESSAGE_ID_PREFIX}{ticket}.{unique}@{domain}>")
}

/// `Re: <subject> [#id]`: one `Re:`, one token, so the customer's answer
/// comes back with the token whatever their client does to the subject.
pub fn reply_subject(subject: &str, ticket: TicketId) -> String {
    let token = ticket_token(ticket);
    let base = subject.replace(&token, "");
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let has_re = base.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:"));
    match (has_re, base.is_empty()) {
        (_, true) => format!("Re: {token}"),
        (true, false) => format!("{base} {token}"),
        (false, false) => format!("Re: {base} {token}"),
    }
}

/// `In-Reply-To` and `References` for a reply on a ticket whose
/// conversation (oldest first) is `messages`: it answers the last inbound
/// message with a Message-ID, and references the thread's ids up to that
/// one (inbound mail and our replies), trimmed to [`MAX_REFERENCES`]
/// keeping the first. The store keeps each message's own id, not the
/// `References` it arrived with, so the chain is rebuilt from the ticket;
/// for a thread that started with us it is the same chain.
pub fn reply_threading(messages: &[Message]) -> (Option<String>, Vec<String>) {
    let Some(last_inbound) = messages
        .iter()
        .rposition(|m| m.kind == MessageKind::Inbound && is_message_id(m.external_id.as_deref()))
    else {
        return (None, Vec::new());
    };
    let mut references: Vec<String> = Vec::new();
    for m in &messages[..=last_inbound] {
        if matches!(m.kind, MessageKind::Inbound | MessageKind::Reply)
            && let Some(id) = m
                .external_id
                .as_deref()
                .filter(|id| is_message_id(Some(id)))
            && !references.iter().any(|r| r == id)
        {
            references.push(id.to_owned());
        }
    }
    if references.len() > MAX_REFERENCES {
        let tail = references.split_off(references.len() - (MAX_REFERENCES - 1));
        references.truncate(1);
        references.extend(tail);
    }
    (messages[last_inbound].external_id.clone(), references)
}

/// An external id that looks like a Message-ID (WhatsApp or call ids on
/// a ticket that moved channels do not).
fn is_message_id(id: Option<&str>) -> bool {
    id.is_some_and(|id| id.starts_with('<') && id.ends_with('>') && id.contains('@'))
}

/// What a reply needs to be written.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    /// The channel's address.
    pub from: &'a str,
    /// The channel's display name.
    pub from_name: Option<&'a str>,
    /// The contact's address.
    pub to: &'a str,
    /// The contact's name.
    pub to_name: Option<&'a str>,
    /// The subject, with its token (see [`reply_subject`]).
    pub subject: String,
    /// Our Message-ID for it (stored as the reply's external id).
    pub message_id: &'a str,
    /// The message it answers.
    pub in_reply_to: Option<String>,
    /// The thread's ids.
    pub references: Vec<String>,
    /// The text.
    pub body: &'a str,
    /// Sent by Switchboard itself rather than typed by an agent: carries
    /// `Auto-Submitted: auto-replied` (RFC 3834), so that the other side's
    /// machines do not answer it.
    pub automatic: bool,
}

/// Builds the reply as a message ready for an SMTP transport (its envelope
/// is From and To).
pub fn build_reply(reply: &Reply<'_>) -> Result<lettre::Message, ChannelError> {
    let mailbox = |field: &str, address: &str, name: Option<&str>| {
        let address = address
            .parse()
            .map_err(|e| ChannelError::invalid(field, format!("{address:?}: {e}")))?;
        // Names come from outside (a form, a chat, a header): one line.
        let name = name.map(display_name).filter(|n| !n.is_empty());
        Ok::<_, ChannelError>(Mailbox::new(name, address))
    };
    let mut builder = lettre::Message::builder()
        .from(mailbox("from", reply.from, reply.from_name)?)
        .to(mailbox("to", reply.to, reply.to_name)?)
        .subject(reply.subject.clone())
        .message_id(Some(reply.message_id.to_owned()));
    if let Some(parent) = &reply.in_reply_to {
        builder = builder.in_reply_to(parent.clone());
    }
    if !reply.references.is_empty() {
        builder = builder.references(reply.references.join(" "));
    }
    if reply.automatic {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".to_owned(),
        ));
    }
    builder
        .body(reply.body.to_owned())
        .map_err(|e| ChannelError::invalid("message", e.to_string()))
}

#[cfg(test)]
mod tests;
