//! The SMTP listener of `switchboard serve --smtp-listen ADDR`: receives
//! mail for the e-mail channels' addresses (point an MX record or a
//! forwarding rule at it) and hands each message to
//! [`inbound::email::receive_email`], the path the HTTP inbound route takes
//! too.
//!
//! The protocol is parsed by `smtp-proto`: EHLO/HELO, MAIL FROM, RCPT TO,
//! DATA, RSET, NOOP, QUIT (and polite refusals of the rest). Recipients are
//! checked at `RCPT`: a channel's `settings.address` or its plus-addressed
//! form (`support+42@...`) is accepted, anything else gets `550`, so we
//! never accept mail we would have to bounce. A message is answered only
//! after it is stored: `250` means committed, `550` names what is malformed
//! (nothing was written), `451` asks the sender to retry (a retry with the
//! same Message-ID cannot make a second message).
//!
//! One task per connection, a bound on connections, on line length and on
//! message size (`552` beyond it), and a timeout on every read.
//!
//! The protocol itself (what each command line and message byte leads to)
//! is [`protocol`], a state machine without sockets; this module does the
//! I/O, the recipient lookups and the storing.

pub mod protocol;

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use switchboard_channels::email::{self, RecipientMatch};
use switchboard_domain::{AccountId, Channel, ChannelKind};
use switchboard_store::{Store, StoreError};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Mutex, Semaphore, watch},
    task::JoinSet,
};

use self::protocol::{
    Action, DataEnd, DataReader, Limits, LineEnd, LineReader, Lookup, Protocol, Reply, Transaction,
};
use crate::{
    AppState,
    inbound::email::{self as intake, Envelope},
    problem::ApiError,
};

/// Limits and names of the listener.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The name we greet with.
    pub hostname: String,
    /// Largest message accepted (advertised as `SIZE`).
    pub max_message_bytes: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Connections served at once; more are told `421` and closed.
    pub max_connections: usize,
    /// How long a client may stay silent (RFC 5321 suggests 5 minutes).
    pub idle_timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            hostname: "switchboard".into(),
            max_message_bytes: intake::MAX_MESSAGE_BYTES,
            max_recipients: 100,
            max_connections: 512,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Serves SMTP on `listener` until `shutdown` resolves, with the default
/// limits; then tells open sessions `421` at their next command and waits
/// for them (a message being stored is finished first).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, state, SmtpConfig::default(), shutdown).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    config: SmtpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        directory: Directory::new(state.store.clone()),
        state,
        config,
    });
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(error = %e, "SMTP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    sessions.spawn(async move {
                        let mut stream = stream;
                        let _ = stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n").await;
                    });
                    continue;
                };
                let shared = shared.clone();
                let stopped = stopped.clone();
                sessions.spawn(async move {
                    if let Err(e) = Session::new(&shared, stream, peer, stopped).run().await {
                        tracing::debug!(%peer, error = %e, "SMTP session ended");
                    }
                    drop(slot);
                });
            }
        }
    }
    let _ = stop.send(true);
    while sessions.join_next().await.is_some() {}
    Ok(())
}

/// What every session reads.
struct Shared {
    state: AppState,
    directory: Directory,
    config: SmtpConfig,
}

/// A recipient resolved to its channel.
#[derive(Debug, Clone)]
struct Target {
    account: AccountId,
    channel: Channel,
}

/// Which e-mail channel an address belongs to, across accounts.
///
/// The directory lists every account's e-mail channels and keeps the result
/// a few seconds; an unknown
/// address reloads it (at most once a second, so a flood of bad recipients
/// cannot turn into a flood of reads), which makes a channel created a
/// moment ago reachable at once.
struct Directory {
    store: Arc<dyn Store>,
    cache: Mutex<Option<(Instant, Vec<Target>)>>,
}

impl Directory {
    const FRESH: Duration = Duration::from_secs(5);
    const RELOAD_ON_MISS: Duration = Duration::from_secs(1);

    fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: Mutex::new(None),
        }
    }

    /// The channel `recipient` is addressed to, if any.
    async fn resolve(&self, recipient: &str) -> Result<Option<Target>, StoreError> {
        let mut cache = self.cache.lock().await;
        let older_than = |cache: &Option<(Instant, Vec<Target>)>, limit: Duration| {
            cache.as_ref().is_none_or(|(at, _)| at.elapsed() > limit)
        };
        if older_than(&cache, Self::FRESH) {
            *cache = Some((Instant::now(), self.load().await?));
        }
        let mut found = cache.as_ref().and_then(|(_, t)| find(t, recipient));
        if found.is_none() && older_than(&cache, Self::RELOAD_ON_MISS) {
            let targets = self.load().await?;
            found = find(&targets, recipient);
            *cache = Some((Instant::now(), targets));
        }
        Ok(found)
    }

    /// Every e-mail channel with an address, of every account.
    async fn load(&self) -> Result<Vec<Target>, StoreError> {
        Ok(self
            .store
            .channels_of_kind(ChannelKind::Email)
            .await?
            .into_iter()
            .filter(|(_, c)| crate::outbound::email::channel_address(c).is_some())
            .map(|(account, channel)| Target { account, channel })
            .collect())
    }
}

/// An exact match wins over a plus-addressed one (`support+vip@` may be a
/// channel of its own).
fn find(targets: &[Target], recipient: &str) -> Option<Target> {
    let matches = |t: &&Target| {
        crate::outbound::email::channel_address(&t.channel)
            .and_then(|a| email::match_recipient(recipient, a))
    };
    targets
        .iter()
        .find(|t| matches(t) == Some(RecipientMatch::Exact))
        .or_else(|| targets.iter().find(|t| matches(t).is_some()))
        .cloned()
}

/// How a read ended.
enum Read<T> {
    /// A whole line, or the whole message.
    Done(T),
    /// The client went away.
    Closed,
    /// The server is stopping.
    Stopping,
}

struct Session<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    stopped: watch::Receiver<bool>,
    protocol: Protocol<Target>,
}

impl<'a> Session<'a> {
    fn new(
        shared: &'a Shared,
        stream: TcpStream,
        peer: SocketAddr,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        let (read, writer) = stream.into_split();
        let limits = Limits {
            hostname: shared.config.hostname.clone(),
            max_message_bytes: shared.config.max_message_bytes,
            max_recipients: shared.config.max_recipients,
        };
        Self {
            shared,
            peer,
            reader: BufReader::new(read),
            writer,
            stopped,
            protocol: Protocol::new(limits),
        }
    }

    async fn write(&mut self, reply: &Reply) -> io::Result<()> {
        self.writer.write_all(&reply.bytes).await
    }

    async fn reply(&mut self, code: u16, esc: [u8; 3], message: &str) -> io::Result<()> {
        self.write(&Reply::new(code, esc, message)).await
    }

    async fn run(mut self) -> io::Result<()> {
        self.write(&Reply::greeting(self.protocol.limits())).await?;
        let mut lines = LineReader::new();
        loop {
            match self.read_line(&mut lines).await? {
                Read::Done(LineEnd::Complete) => {}
                Read::Done(LineEnd::TooLong) => {
                    self.reply(500, [5, 5, 2], "Line too long").await?;
                    continue;
                }
                Read::Closed => return Ok(()),
                Read::Stopping => {
                    return self
                        .reply(421, [4, 3, 2], "Shutting down, try again later")
                        .await;
                }
            }
            match self.protocol.command(lines.line()) {
                Action::Reply(reply) => self.write(&reply).await?,
                Action::Close(reply) => return self.write(&reply).await,
                Action::Resolve(address) => {
                    let lookup = match self.shared.directory.resolve(&address).await {
                        Ok(Some(target)) => Lookup::Found(target),
                        Ok(None) => Lookup::Unknown,
                        Err(e) => {
                            tracing::error!(error = %e, "SMTP recipient lookup failed");
                            Lookup::Failed
                        }
                    };
                    let reply = self.protocol.resolved(address, lookup);
                    self.write(&reply).await?;
                }
                Action::Data(go_ahead, transaction) => {
                    if !self.data(go_ahead, transaction).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// DATA: reads the message, stores it, answers. `false` ends the session.
    async fn data(
        &mut self,
        go_ahead: Reply,
        transaction: Transaction<Target>,
    ) -> io::Result<bool> {
        self.write(&go_ahead).await?;
        let raw = match self.read_data().await? {
            Read::Done(DataEnd::Complete(raw)) => raw,
            Read::Done(DataEnd::TooBig) => {
                let text = format!(
                    "Message exceeds {} bytes",
                    self.shared.config.max_message_bytes
                );
                self.reply(552, [5, 3, 4], &text).await?;
                return Ok(true);
            }
            Read::Closed | Read::Stopping => return Ok(false),
        };
        let (code, esc, text) = self.store(transaction, &raw).await;
        self.reply(code, esc, &text).await?;
        Ok(true)
    }

    /// Parses and stores one message for each channel it was addressed to.
    async fn store(&self, transaction: Transaction<Target>, raw: &[u8]) -> (u16, [u8; 3], String) {
        let parsed = match email::parse(raw) {
            Ok(p) => p,
            Err(e) => return (550, [5, 6, 0], format!("Malformed message: {e}")),
        };
        // One delivery per channel, with the recipients that led to it
        // (they carry the plus-addressed ticket ids).
        let mut per_channel: HashMap<(AccountId, i64), (Target, Vec<String>)> = HashMap::new();
        for (address, target) in transaction.recipients {
            per_channel
                .entry((target.account, target.channel.id.0))
                .or_insert_with(|| (target, Vec::new()))
                .1
                .push(address);
        }
        let mut tickets = Vec::new();
        for (target, recipients) in per_channel.into_values() {
            let envelope = Envelope {
                sender: Some(transaction.sender.clone()),
                recipients,
            };
            let result = intake::receive_email(
                &self.shared.state,
                target.account,
                &target.channel,
                parsed.clone(),
                &envelope,
            )
            .await;
            match result {
                Ok((received, _)) => tickets.push(format!("#{}", received.ticket.id)),
                Err(ApiError::Invalid { field, detail }) => {
                    let field = field.unwrap_or_else(|| "message".into());
                    return (
                        550,
                        [5, 6, 0],
                        format!("Malformed message: {field}: {detail}"),
                    );
                }
                Err(e) => {
                    tracing::error!(peer = %self.peer, error = %e, "SMTP delivery not stored");
                    return (451, [4, 3, 0], "Temporary failure, try again later".into());
                }
            }
        }
        (
            250,
            [2, 0, 0],
            format!("Delivered to ticket {}", tickets.join(", ")),
        )
    }

    /// Waits for more input, the idle timeout or the shutdown signal.
    async fn fill(&mut self) -> io::Result<Option<usize>> {
        if *self.stopped.borrow() {
            return Ok(None);
        }
        let timeout = self.shared.config.idle_timeout;
        tokio::select! {
            filled = tokio::time::timeout(timeout, self.reader.fill_buf()) => match filled {
                Ok(Ok(buf)) => Ok(Some(buf.len())),
                Ok(Err(e)) => Err(e),
                Err(_) => {
                    let _ = self.reply(421, [4, 4, 2], "Idle too long, closing").await;
                    Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"))
                }
            },
            _ = self.stopped.changed() => Ok(None),
        }
    }

    /// One command line into `lines`, at most [`protocol::MAX_LINE`] bytes.
    async fn read_line(&mut self, lines: &mut LineReader) -> io::Result<Read<LineEnd>> {
        loop {
            match self.fill().await? {
                None => return Ok(Read::Stopping),
                Some(0) => return Ok(Read::Closed),
                Some(_) => {}
            }
            let (used, end) = lines.push(self.reader.buffer());
            self.reader.consume(used);
            if let Some(end) = end {
                return Ok(Read::Done(end));
            }
        }
    }

    /// The message after DATA up to `<CRLF>.<CRLF>`, dot-unstuffed. Past
    /// the size limit the rest is read and dropped, so the client is in
    /// step for the `552` and its next command.
    async fn read_data(&mut self) -> io::Result<Read<DataEnd>> {
        let mut data = DataReader::new(self.shared.config.max_message_bytes);
        loop {
            match self.fill().await? {
                None => return Ok(Read::Stopping),
                Some(0) => return Ok(Read::Closed),
                Some(_) => {}
            }
            let (used, end) = data.push(self.reader.buffer());
            self.reader.consume(used);
            if let Some(end) = end {
                return Ok(Read::Done(end));
            }
        }
    }
}
