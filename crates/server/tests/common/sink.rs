//! A minimal SMTP sink for delivery tests: accepts every message and
//! records its envelope and data. It can bind a chosen port (to come up
//! where a relay was down) and only counts messages whose DATA completed.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// One message the sink accepted.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub from: String,
    pub to: Vec<String>,
    /// The decoded `AUTH PLAIN` credentials, if the client sent them.
    pub auth: Option<String>,
    pub data: String,
}

/// What the sink received so far.
pub type Received = Arc<Mutex<Vec<Delivery>>>;

/// A free local port with nothing listening on it (yet).
pub async fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Starts a sink on `addr` (port 0 for any).
pub async fn start(addr: SocketAddr) -> (SocketAddr, Received) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let got = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let _ = session(stream, got).await;
            });
        }
    });
    (addr, received)
}

/// A "relay" that accepts connections and never says a word.
pub async fn hanging() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

async fn session(stream: TcpStream, got: Received) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let mut current = Delivery::default();
    let between = |line: &str| {
        let start = line.find('<').map_or(0, |i| i + 1);
        let end = line.rfind('>').unwrap_or(line.len());
        line[start..end].to_owned()
    };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let answer: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250 AUTH PLAIN\r\n"
        } else if upper.starts_with("AUTH") {
            use base64::Engine;
            current.auth = line
                .get(11..)
                .filter(|_| upper.starts_with("AUTH PLAIN "))
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .and_then(|d| String::from_utf8(d).ok());
            b"235 2.7.0 Authenticated\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            current.from = between(&line);
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            current.to.push(between(&line));
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            w.write_all(b"354 Go ahead\r\n").await?;
            loop {
                let mut data_line = String::new();
                if r.read_line(&mut data_line).await? == 0 {
                    return Ok(());
                }
                if data_line == ".\r\n" {
                    break;
                }
                let unstuffed = data_line.strip_prefix('.').unwrap_or(&data_line);
                current.data.push_str(unstuffed);
            }
            got.lock().unwrap().push(std::mem::take(&mut current));
            b"250 Queued\r\n"
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"250 OK\r\n"
        };
        w.write_all(answer).await?;
    }
}
