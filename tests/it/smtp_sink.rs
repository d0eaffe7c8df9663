//! A local SMTP sink: accepts every message and keeps it, so tests can read the mail the
//! gateway sent. Speaks just enough SMTP (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET,
//! NOOP, QUIT), and can refuse the first messages as a relay that is busy would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A received message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// Headers and the body, with a base64 body decoded.
    pub fn text(&self) -> String {
        let Some((head, body)) = self.data.split_once("\n\n") else {
            return self.data.clone();
        };
        if head
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: base64")
        {
            use base64::Engine;
            let joined: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap_or_default();
            format!("{head}\n\n{}", String::from_utf8_lossy(&bytes))
        } else {
            self.data.clone()
        }
    }
}

/// The running sink.
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        SmtpSink::refusing(0).await
    }

    /// A sink that answers the first `n` messages with "451 try again later".
    pub async fn refusing(n: usize) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let store = mails.clone();
        let refusals = Arc::new(AtomicUsize::new(n));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                let refusals = refusals.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                    let mut to = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO")
                        {
                            b"250 sink\r\n"
                        } else if upper.starts_with("MAIL FROM:")
                            && refusals
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                                    left.checked_sub(1)
                                })
                                .is_ok()
                        {
                            b"451 4.3.0 try again later\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                            b"250 OK\r\n"
                        } else if upper.starts_with("DATA") {
                            let _ = w.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            store.lock().expect("lock").push(Mail {
                                to: std::mem::take(&mut to),
                                data,
                            });
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 OK\r\n"
                        };
                        let _ = w.write_all(reply).await;
                    }
                });
            }
        });
        SmtpSink { addr, mails, task }
    }

    /// The messages received so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }

    /// Waits (up to 10 s) until at least `n` messages arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..100 {
            let got = self.mails.lock().expect("lock").clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected {n} mails, got {:?}",
            self.mails.lock().expect("lock")
        );
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
