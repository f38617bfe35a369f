//! Twilio-compatible voice webhooks: form parameters, the
//! `X-Twilio-Signature` check, and the TwiML Switchboard answers with.
//!
//! Twilio signs the full URL it requested followed by every POST parameter
//! (name then value, sorted by name) with HMAC-SHA1 keyed by the account's
//! auth token. The same URL may be signed with or without its port
//! depending on how the number was configured, so [`url_variants`] gives
//! both spellings and [`verify_signature`] accepts either.
//!
//! TwiML is built as text here; every value that came from outside (a
//! message an admin typed, a client identity, a channel key) goes through
//! [`escape`], so a `<` in a voicemail greeting cannot inject a verb.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_domain::E164;

use crate::ChannelError;

/// The header carrying the request's signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// Twilio dials at most this many nouns of one `<Dial>` in parallel.
pub const MAX_PARALLEL_DIAL: usize = 10;
/// How long agents' phones ring unless the channel says otherwise.
pub const DEFAULT_RING_TIMEOUT: u32 = 20;
/// What callers hear before leaving a message unless the channel says
/// otherwise.
pub const DEFAULT_VOICEMAIL_MESSAGE: &str = "Sorry, nobody can take your call right now. \
Please leave a message after the tone, and we will call you back.";
/// The longest voicemail, in seconds.
pub const MAX_RECORDING_SECONDS: u32 = 120;

/// The parameters of a form-encoded webhook, in the order they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Result<Self, ChannelError> {
        let body = std::str::from_utf8(body)
            .map_err(|_| ChannelError::invalid("body", "a form body must be UTF-8"))?;
        let pairs = body
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_component(name), decode_component(value))
            })
            .collect();
        Ok(Self(pairs))
    }

    /// Parameters from pairs (for tests and for signing locally).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&str, ChannelError> {
        self.get(name)
            .ok_or_else(|| ChannelError::invalid(name, "missing"))
    }

    /// Every pair, in the order they came.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte; a stray `%`
/// stays as it is (as browsers and Twilio's own libraries do).
fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(hex_byte) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte two hexadecimal digits stand for. (Not `u8::from_str_radix`,
/// which also takes a sign: `%+1` would decode to 0x01.)
pub(crate) fn hex_byte(digits: &[u8]) -> Option<u8> {
    let value = |d: u8| char::from(d).to_digit(16);
    match digits {
        [hi, lo] => Some(u8::try_from(value(*hi)? * 16 + value(*lo)?).ok()?),
        _ => None,
    }
}

/// The `X-Twilio-Signature` of a request to `url` with `params`:
/// base64(HMAC-SHA1(auth token, url + names and values sorted by name)).
pub fn signature(auth_token: &str, url: &str, params: &Params) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &str, url: &str, params: &Params) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.0.iter().collect();
    // Sorting whole pairs also orders the values of a repeated name, as
    // Twilio's libraries do.
    sorted.sort();
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Checks `X-Twilio-Signature` in constant time against each spelling of
/// the request URL in `urls`; one match is enough.
pub fn verify_signature(
    auth_token: &str,
    urls: &[String],
    params: &Params,
    header: Option<&str>,
) -> Result<(), ChannelError> {
    if auth_token.is_empty() {
        return Err(ChannelError::Signature(
            "no auth token is configured".into(),
        ));
    }
    let header =
        header.ok_or_else(|| ChannelError::Signature("missing X-Twilio-Signature".into()))?;
    let expected = STANDARD
        .decode(header.trim())
        .map_err(|_| ChannelError::Signature("the signature is not base64".into()))?;
    let matches = urls
        .iter()
        .filter(|url| mac(auth_token, url, params).verify_slice(&expected).is_ok())
        .count();
    if matches > 0 {
        Ok(())
    } else {
        Err(ChannelError::Signature(
            "X-Twilio-Signature does not match".into(),
        ))
    }
}

/// `url` as given, without its port, and with its port (the scheme's
/// default when it has none): Twilio signs whichever it was configured with.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    // A port follows the last ':' unless that ':' is inside an IPv6 literal.
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (hostport, None),
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some("443"),
        "http" => Some("80"),
        _ => None,
    };
    let without = format!("{scheme}://{userinfo}{host}{tail}");
    let with = port
        .or(default_port)
        .map(|p| format!("{scheme}://{userinfo}{host}:{p}{tail}"));
    for candidate in [Some(without), with].into_iter().flatten() {
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// Escapes text for an XML element or a double-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not
            // allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Someone to ring: a browser or app client, or a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// A Twilio Client identity (`<Client>`).
    Client(String),
    /// A phone number (`<Number>`).
    Number(E164),
}

impl DialTarget {
    /// Reads a configured identity: a number starting with `+` is a phone
    /// number, anything else a client identity (an optional `client:` prefix
    /// is dropped).
    pub fn parse(configured: &str) -> Result<Self, ChannelError> {
        let configured = configured.trim();
        if configured.starts_with('+') {
            return E164::try_from(configured.to_owned())
                .map(Self::Number)
                .map_err(|e| ChannelError::invalid("voice_identities", e.to_string()));
        }
        let identity = configured.strip_prefix("client:").unwrap_or(configured);
        if identity.is_empty() {
            return Err(ChannelError::invalid(
                "voice_identities",
                "an identity cannot be empty",
            ));
        }
        Ok(Self::Client(identity.to_owned()))
    }

    /// Whether a call leg's `To` (or `Called`) parameter names this target:
    /// `client:identity` for a client, the number for a phone.
    pub fn is_called(&self, to: &str) -> bool {
        match self {
            Self::Client(id) => to.strip_prefix("client:") == Some(id.as_str()),
            Self::Number(n) => E164::try_from(to.to_owned()).is_ok_and(|t| t == *n),
        }
    }
}

/// Wraps verbs in a TwiML document.
fn document(verbs: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{verbs}</Response>")
}

/// A TwiML document with no verbs: the call continues to its end (or,
/// after a `<Dial>`, hangs up).
pub fn empty() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_owned()
}

/// Rings `targets` (at most [`MAX_PARALLEL_DIAL`] are used) for `timeout`
/// seconds; the first to answer is connected. `action` receives the outcome
/// (`DialCallStatus`); `answered_callback`, when given, receives each leg's
/// `answered` event, which says who picked up.
pub fn dial(
    action: &str,
    timeout: u32,
    targets: &[DialTarget],
    answered_callback: Option<&str>,
) -> String {
    let callback = answered_callback.map_or_else(String::new, |url| {
        format!(
            " statusCallbackEvent=\"answered\" statusCallback=\"{}\"",
            escape(url)
        )
    });
    let nouns: String = targets
        .iter()
        .take(MAX_PARALLEL_DIAL)
        .map(|t| match t {
            DialTarget::Client(id) => format!("<Client{callback}>{}</Client>", escape(id)),
            DialTarget::Number(n) => {
                format!("<Number{callback}>{}</Number>", escape(n.as_str()))
            }
        })
        .collect();
    document(&format!(
        "<Dial action=\"{}\" timeout=\"{timeout}\" answerOnBridge=\"true\">{nouns}</Dial>",
        escape(action)
    ))
}

/// Says `message`, then records a voicemail of up to
/// [`MAX_RECORDING_SECONDS`]: `action` receives the recording when the
/// caller stops, `status_callback` when the file is ready.
pub fn voicemail(message: &str, action: &str, status_callback: &str) -> String {
    document(&format!(
        "<Say>{}</Say><Record action=\"{}\" maxLength=\"{MAX_RECORDING_SECONDS}\" timeout=\"5\" \
         playBeep=\"true\" recordingStatusCallback=\"{}\" \
         recordingStatusCallbackEvent=\"completed absent\"/>",
        escape(message),
        escape(action),
        escape(status_callback)
    ))
}

/// Says `message` and hangs up.
pub fn say_and_hang_up(message: &str) -> String {
    document(&format!("<Say>{}</Say><Hangup/>", escape(message)))
}

/// Whether a `DialCallStatus` means someone answered (`completed` or
/// `answered`); `busy`, `no-answer`, `failed` and `canceled` mean nobody did.
pub fn dial_answered(status: &str) -> bool {
    matches!(status, "completed" | "answered")
}

/// The MIME type of a recording at `url`: Twilio serves WAV unless the URL
/// asks for MP3.
pub fn recording_content_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if path.to_ascii_lowercase().ends_with(".mp3") {
        "audio/mpeg"
    } else {
        "audio/x-wav"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Params {
        Params::from_pairs([
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn the_documented_example_signs_as_twilio_does() {
        // Twilio's published example (auth token 12345).
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &example()),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
        let urls = url_variants(url);
        let good = Some("GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(verify_signature("12345", &urls, &example(), good).is_ok());
        assert!(verify_signature("54321", &urls, &example(), good).is_err());
        assert!(verify_signature("12345", &urls, &example(), None).is_err());
        assert!(verify_signature("12345", &urls, &example(), Some("not base64!")).is_err());
        assert!(verify_signature("", &urls, &example(), good).is_err());
        // Another value, another signature.
        let mut tampered = example();
        tampered.0[2].1 = "9999".into();
        assert!(verify_signature("12345", &urls, &tampered, good).is_err());
    }

    /// Found by the `twilio_params` fuzz target: `%+1` decoded to 0x01
    /// (`from_str_radix` takes a sign), unlike every other form decoder.
    #[test]
    fn a_percent_needs_two_hex_digits() {
        let p = Params::parse(b"a=%+1&b=%2B1&c=%-1&d=%4&e=%41").unwrap();
        let values: Vec<&str> = p.pairs().iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["% 1", "+1", "%-1", "%4", "A"]);
    }

    #[test]
    fn order_of_parameters_does_not_matter_but_repeated_values_are_sorted() {
        let mut reversed = example();
        reversed.0.reverse();
        assert_eq!(
            signature("t", "http://x/", &reversed),
            signature("t", "http://x/", &example())
        );
        let a = Params::from_pairs([("A", "2"), ("A", "1")]);
        let b = Params::from_pairs([("A", "1"), ("A", "2")]);
        assert_eq!(
            signature("t", "http://x/", &a),
            signature("t", "http://x/", &b)
        );
    }

    #[test]
    fn urls_are_tried_with_and_without_the_port() {
        assert_eq!(
            url_variants("https://sb.example.com/webhooks/twilio/k/voice?x=1"),
            [
                "https://sb.example.com/webhooks/twilio/k/voice?x=1",
                "https://sb.example.com:443/webhooks/twilio/k/voice?x=1"
            ]
        );
        assert_eq!(
            url_variants("http://127.0.0.1:8080/voice"),
            ["http://127.0.0.1:8080/voice", "http://127.0.0.1/voice"]
        );
        assert_eq!(
            url_variants("https://user:pw@[::1]:8443/v"),
            ["https://user:pw@[::1]:8443/v", "https://user:pw@[::1]/v"]
        );
        // Signed with the port, checked against the URL without it.
        let signed = signature("t", "https://sb.example.com:443/v", &example());
        let urls = url_variants("https://sb.example.com/v");
        assert!(verify_signature("t", &urls, &example(), Some(&signed)).is_ok());
    }

    #[test]
    fn form_bodies_decode() {
        let p = Params::parse(
            b"CallSid=CA1&From=%2B14158675310&CallerName=Cleo+L%C3%A9a&Empty=&Odd=100%&Last",
        )
        .unwrap();
        assert_eq!(p.get("From"), Some("+14158675310"));
        assert_eq!(p.get("CallerName"), Some("Cleo Léa"));
        assert_eq!(p.get("Empty"), None);
        assert_eq!(p.get("Odd"), Some("100%"));
        assert_eq!(p.pairs().len(), 6);
        assert!(p.require("Missing").is_err());
        assert_eq!(p.require("CallSid").unwrap(), "CA1");
        assert!(Params::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn twiml_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'\u{7}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
        let xml = voicemail("Leave <a> message & go", "/r?a=1&b=2", "/s");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Leave &lt;a&gt; message \
             &amp; go</Say><Record action=\"/r?a=1&amp;b=2\" maxLength=\"120\" timeout=\"5\" \
             playBeep=\"true\" recordingStatusCallback=\"/s\" \
             recordingStatusCallbackEvent=\"completed absent\"/></Response>"
        );
        assert_eq!(
            say_and_hang_up("Bye"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Bye</Say><Hangup/></Response>"
        );
    }

    #[test]
    fn dial_rings_clients_and_numbers_up_to_ten() {
        let ana = DialTarget::parse("ana").unwrap();
        let ben = DialTarget::parse("+1 555 010 0002").unwrap();
        assert_eq!(
            ben,
            DialTarget::Number(E164::try_from("+15550100002".to_owned()).unwrap())
        );
        assert_eq!(
            DialTarget::parse("client:cy").unwrap(),
            DialTarget::Client("cy".into())
        );
        assert!(DialTarget::parse("+12").is_err());
        assert!(DialTarget::parse("client:").is_err());
        let xml = dial("/d", 20, &[ana.clone(), ben.clone()], None);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial action=\"/d\" timeout=\"20\" \
             answerOnBridge=\"true\"><Client>ana</Client><Number>+15550100002</Number></Dial></Response>"
        );
        let with_callback = dial("/d", 20, std::slice::from_ref(&ana), Some("/leg"));
        assert!(with_callback.contains(
            "<Client statusCallbackEvent=\"answered\" statusCallback=\"/leg\">ana</Client>"
        ));
        let many: Vec<DialTarget> = (0..12)
            .map(|i| DialTarget::Client(format!("c{i}")))
            .collect();
        assert_eq!(dial("/d", 20, &many, None).matches("<Client>").count(), 10);
        assert!(ana.is_called("client:ana"));
        assert!(!ana.is_called("ana"));
        assert!(ben.is_called("+15550100002"));
        assert!(!ben.is_called("+15550100003"));
    }

    #[test]
    fn dial_outcomes_and_recordings() {
        assert!(dial_answered("completed") && dial_answered("answered"));
        for s in ["busy", "no-answer", "failed", "canceled", ""] {
            assert!(!dial_answered(s), "{s}");
        }
        assert_eq!(
            recording_content_type("https://api.twilio.com/R/RE1"),
            "audio/x-wav"
        );
        assert_eq!(
            recording_content_type("https://api.twilio.com/R/RE1.mp3?x"),
            "audio/mpeg"
        );
        assert!(empty().ends_with("<Response/>"));
    }
}
