//! One client session: a `ClientStream` machine driven over a tokio socket, with rustls when
//! the machine asks for it. The machine never sees the socket; this file is its host.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as StdInstant};

use minidom::Element;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, Instant, Output, SeededEntropy, Transport,
};

use crate::run::{Phase, Shared};

/// The socket before and after STARTTLS.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the TLS handshake owns the socket.
    Gone,
}

impl Conn {
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Gone => Ok(0),
        }
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes).await,
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Gone => Err(std::io::Error::other("socket gone")),
        }
    }

    pub(crate) async fn shutdown(&mut self) {
        let _ = match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
            Conn::Gone => Ok(()),
        };
    }
}

/// How a session ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Logged in and ran until told to stop.
    Completed,
    /// Failed before or after login; the text says where.
    Failed(String),
}

/// What a session knows about itself.
pub(crate) struct Session {
    pub index: usize,
    pub shared: Arc<Shared>,
}

impl Session {
    fn now(&self) -> Instant {
        let millis = self.shared.epoch.elapsed().as_millis();
        Instant::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.shared.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Runs the session to the end. Never panics on anything the server sends.
    pub(crate) async fn run(self) -> Outcome {
        let shared = self.shared.clone();
        let permit = shared.login_permits.clone().acquire_owned().await;
        let started = StdInstant::now();
        let mut state = match Box::pin(self.login()).await {
            Ok(state) => state,
            Err(e) => {
                shared.stats.login_failed.fetch_add(1, Ordering::Relaxed);
                shared.logins_settled.notify_one();
                return Outcome::Failed(e);
            }
        };
        drop(permit);
        shared.record_login(started.elapsed());
        shared.logins_settled.notify_one();
        match self.hold(&mut state).await {
            Ok(()) => Outcome::Completed,
            Err(e) => {
                shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Outcome::Failed(e)
            }
        }
    }

    fn user(&self, index: usize) -> String {
        format!("{}{index}", self.shared.options.user_prefix)
    }

    async fn login(&self) -> Result<LiveSession, String> {
        let options = &self.shared.options;
        let jid = BareJid::new(&format!("{}@{}", self.user(self.index), options.domain))
            .map_err(|e| format!("bad jid: {e}"))?;
        let mut config = ClientConfig::new(jid, options.password.clone());
        config.resource = Some(format!("load{}", self.index));
        config.mechanisms = options.mechanism.mechanisms();
        let seed = options.seed ^ (self.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut machine = ClientStream::new(config, SeededEntropy::new(seed));
        let tcp = TcpStream::connect(self.shared.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let mut live = LiveSession {
            conn: Conn::Plain(tcp),
            buf: vec![0; 4096],
            machine: None,
        };
        machine
            .start(self.now(), Transport::Plain)
            .map_err(|e| format!("start: {e}"))?;
        let deadline = tokio::time::Instant::now() + options.login_timeout;
        loop {
            match self.drain(&mut machine, &mut live).await? {
                Drained::Negotiated => break,
                Drained::Closed(why) => return Err(why),
                Drained::Quiet => {}
            }
            let n = tokio::time::timeout_at(deadline, live.conn.read(&mut live.buf))
                .await
                .map_err(|_| "login timed out".to_owned())?
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("server closed during login".to_owned());
            }
            let _ = machine.handle_input(self.now(), &live.buf[..n]);
        }
        let presence = Element::builder("presence", "jabber:client").build();
        machine
            .send_stanza(self.now(), &presence)
            .map_err(|e| format!("presence: {e}"))?;
        match self.drain(&mut machine, &mut live).await? {
            Drained::Closed(why) => Err(why),
            _ => Ok(live.with_machine(machine)),
        }
    }

    /// Drains the machine's outputs in order: writes, TLS, events.
    async fn drain(
        &self,
        machine: &mut ClientStream,
        live: &mut LiveSession,
    ) -> Result<Drained, String> {
        let mut result = Drained::Quiet;
        while let Some(output) = machine.poll_output() {
            match output {
                Output::Transmit(bytes) => live
                    .conn
                    .write_all(&bytes)
                    .await
                    .map_err(|e| format!("write: {e}"))?,
                Output::StartTls => {
                    let Conn::Plain(tcp) = std::mem::replace(&mut live.conn, Conn::Gone) else {
                        return Err("StartTls twice".to_owned());
                    };
                    let name = ServerName::try_from(self.shared.options.domain.clone())
                        .map_err(|e| format!("server name: {e}"))?;
                    let tls = self
                        .shared
                        .tls
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS: {e}"))?;
                    live.conn = Conn::Tls(Box::new(tls));
                    // No channel-binding data: the same SCRAM mechanism on every server.
                    machine
                        .tls_established(self.now(), Vec::new())
                        .map_err(|e| format!("tls_established: {e}"))?;
                }
                Output::Event(event) => match event {
                    Event::Authenticated { mechanism, .. } => {
                        self.shared.record_mechanism(mechanism.as_str());
                    }
                    Event::Negotiated { .. } => result = Drained::Negotiated,
                    Event::Stanza(stanza) => self.on_stanza(machine, &stanza),
                    Event::Closed { reason } => {
                        return Ok(Drained::Closed(format!("closed: {reason:?}")));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(result)
    }

    /// Answers pings (the echo half of a pair) and times pongs (the sending half).
    fn on_stanza(&self, machine: &mut ClientStream, stanza: &Element) {
        if !stanza.is("message", "jabber:client") {
            return;
        }
        let Some(body) = stanza.get_child("body", "jabber:client").map(Element::text) else {
            return;
        };
        let stats = &self.shared.stats;
        if let Some(rest) = body.strip_prefix("ping ") {
            stats.received.fetch_add(1, Ordering::Relaxed);
            if let Some(from) = stanza.attr("from") {
                let reply = message(from, &format!("pong {rest}"));
                if machine.send_stanza(self.now(), &reply).is_ok() {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else if let Some(rest) = body.strip_prefix("pong ") {
            stats.received.fetch_add(1, Ordering::Relaxed);
            if let Ok(sent_at) = rest.trim().parse::<u64>() {
                let rtt = self.micros().saturating_sub(sent_at);
                self.shared.record_rtt(rtt);
            }
        }
    }

    #[allow(clippy::cast_precision_loss)] // session counts are far below 2^52
    /// After login: stay connected, answer the server, send pings when it is time, close on
    /// `Phase::Stop`.
    async fn hold(&self, live: &mut LiveSession) -> Result<(), String> {
        let Some(mut machine) = live.machine.take() else {
            return Err("no machine".to_owned());
        };
        let options = &self.shared.options;
        let partner = self.index ^ 1;
        let sender = self.index.is_multiple_of(2) && partner < options.sessions;
        let partner_jid = format!("{}@{}", self.user(partner), options.domain);
        let mut phase_rx: watch::Receiver<Phase> = self.shared.phase.subscribe();
        // Each sender pings at rate / senders per second, offset so they do not fire together.
        let senders = (options.sessions / 2).max(1);
        let period = if options.message_rate > 0.0 {
            Duration::from_secs_f64(senders as f64 / options.message_rate)
        } else {
            Duration::from_secs(3600)
        };
        let offset = period.mul_f64((self.index / 2) as f64 / senders as f64);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let phase = *phase_rx.borrow();
            if phase == Phase::Stop {
                let _ = machine.close(self.now());
                let _ = self.drain(&mut machine, live).await;
                // Wait briefly for the server's close, then drop the socket.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    loop {
                        match live.conn.read(&mut live.buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let _ = machine.handle_input(self.now(), &live.buf[..n]);
                                if let Ok(Drained::Closed(_)) = self.drain(&mut machine, live).await
                                {
                                    break;
                                }
                            }
                        }
                    }
                })
                .await;
                live.conn.shutdown().await;
                return Ok(());
            }
            let wake = machine.poll_timeout().map(|at| {
                tokio::time::Instant::from_std(self.shared.epoch)
                    + Duration::from_millis(at.as_millis())
            });
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let messaging = sender && phase == Phase::Messages;
            tokio::select! {
                read = live.conn.read(&mut live.buf) => {
                    let n = read.map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("server closed the connection".to_owned());
                    }
                    let _ = machine.handle_input(self.now(), &live.buf[..n]);
                }
                () = timer => machine.handle_timeout(self.now()),
                _ = phase_rx.changed() => {}
                _ = ticker.tick(), if messaging => {
                    let ping = message(&partner_jid, &format!("ping {}", self.micros()));
                    if machine.send_stanza(self.now(), &ping).is_ok() {
                        self.shared.stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if let Drained::Closed(why) = self.drain(&mut machine, live).await? {
                return Err(why);
            }
        }
    }
}

enum Drained {
    Quiet,
    Negotiated,
    Closed(String),
}

/// The connection of a logged-in session.
pub(crate) struct LiveSession {
    conn: Conn,
    buf: Vec<u8>,
    machine: Option<ClientStream>,
}

impl LiveSession {
    fn with_machine(mut self, machine: ClientStream) -> Self {
        self.machine = Some(machine);
        self
    }
}

pub(crate) fn message(to: &str, body: &str) -> Element {
    Element::builder("message", "jabber:client")
        .attr(name("to"), to)
        .attr(name("type"), "chat")
        .append(
            Element::builder("body", "jabber:client")
                .append(body)
                .build(),
        )
        .build()
}

/// An attribute name known at compile time.
#[allow(clippy::expect_used)] // only called with the constant names above, which are NCNames
fn name(text: &'static str) -> minidom::rxml::NcName {
    text.try_into().expect("a constant NCName")
}
