//! The `Pair` test harness: a [`ClientStream`] and a [`ServerStream`] joined by two in-memory
//! wires, driven by a virtual clock. Deterministic and I/O-free, so tests, benches, fuzzers and
//! host authors can run whole negotiations in a loop.
//!
//! - **Wires** deliver each transmission in chunks of [`WireConfig::chunk`] bytes after
//!   [`WireConfig::latency`], so chunking invariance and timing are testable.
//! - **Fake TLS**: when a side emits [`Output::StartTls`] the harness calls `tls_established`
//!   on it right away with fixed channel-binding bytes ([`Pair::client_bindings`] /
//!   [`Pair::server_bindings`]); bytes are not transformed.
//! - **Tamper hooks** see and may rewrite every transmission before it enters a wire.
//! - **A transcript** of everything delivered ([`Pair::log`]) for golden comparisons.

use std::collections::VecDeque;
use std::fmt::Write as _;

use core::time::Duration;
use xmpp_sasl::{ChannelBinding, ChannelBindingType};

use crate::client::ClientStream;
use crate::error::ProtocolError;
use crate::output::{Event, Output};
use crate::server::ServerStream;
use crate::time::Instant;

/// Which way bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

/// How a wire delivers bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireConfig {
    /// Largest chunk handed to `handle_input` at once (0 means whole transmissions).
    pub chunk: usize,
    /// Delay between transmission and delivery.
    pub latency: Duration,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            chunk: 0,
            latency: Duration::from_millis(10),
        }
    }
}

/// One entry of the harness log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    /// A machine transmitted bytes (logged when the harness collected them).
    Sent {
        /// When.
        at: Instant,
        /// Which way.
        direction: Direction,
        /// What (after the tamper hook).
        bytes: Vec<u8>,
    },
    /// Bytes were handed to a machine's `handle_input`.
    Delivered {
        /// When.
        at: Instant,
        /// Which way.
        direction: Direction,
        /// What.
        bytes: Vec<u8>,
    },
    /// A side finished its (fake) TLS handshake.
    Tls {
        /// When.
        at: Instant,
        /// The side: `ToServer` for the client, `ToClient` for the server.
        side: Direction,
    },
    /// A side emitted an event.
    Event {
        /// When.
        at: Instant,
        /// The side: `ToServer` for the client, `ToClient` for the server.
        side: Direction,
        /// Its transcript summary ([`crate::transcript::event_summary`]).
        summary: String,
    },
    /// The harness ran a host command on a side (`send <xml>`, `close`).
    Host {
        /// When.
        at: Instant,
        /// The side: `ToServer` for the client, `ToClient` for the server.
        side: Direction,
        /// The command in transcript form.
        command: String,
    },
}

/// A hook that may rewrite a transmission before it enters a wire.
pub type TamperHook = Box<dyn FnMut(Direction, &mut Vec<u8>) + Send>;

fn tag(direction: Direction) -> &'static str {
    if direction == Direction::ToServer {
        "C"
    } else {
        "S"
    }
}

fn xml_text(element: &minidom::Element) -> String {
    let mut out = Vec::new();
    let _ = element.write_to(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The fixed fake-TLS binding both sides get by default: 32 bytes of `tls-exporter`.
pub fn fake_tls_binding() -> Vec<ChannelBinding> {
    vec![ChannelBinding::new(
        ChannelBindingType::TlsExporter,
        [0x5a; 32],
    )]
}

struct Wire {
    config: WireConfig,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
}

impl Wire {
    fn push(&mut self, now: Instant, bytes: &[u8]) {
        let at = now + self.config.latency;
        let chunk = if self.config.chunk == 0 {
            bytes.len().max(1)
        } else {
            self.config.chunk
        };
        for piece in bytes.chunks(chunk) {
            self.in_flight.push_back((at, piece.to_vec()));
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.in_flight.front().map(|(at, _)| *at)
    }
}

/// A client and a server joined by two wires and a virtual clock.
pub struct Pair {
    /// The client machine.
    pub client: ClientStream,
    /// The server machine.
    pub server: ServerStream,
    /// The virtual clock.
    pub now: Instant,
    /// Events the client emitted, in order.
    pub client_events: Vec<Event>,
    /// Events the server emitted, in order.
    pub server_events: Vec<Event>,
    /// Protocol errors `handle_input` returned to the client's host.
    pub client_errors: Vec<ProtocolError>,
    /// Protocol errors `handle_input` returned to the server's host.
    pub server_errors: Vec<ProtocolError>,
    /// Channel-binding data the fake TLS gives the client.
    pub client_bindings: Vec<ChannelBinding>,
    /// Channel-binding data the fake TLS gives the server.
    pub server_bindings: Vec<ChannelBinding>,
    /// Everything delivered, in order.
    pub log: Vec<LogEntry>,
    to_server: Wire,
    to_client: Wire,
    tamper: Option<TamperHook>,
}

impl Pair {
    /// Join `client` and `server` (neither started yet) with default wires.
    pub fn new(client: ClientStream, server: ServerStream) -> Self {
        Pair {
            client,
            server,
            now: Instant::ZERO,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_errors: Vec::new(),
            server_errors: Vec::new(),
            client_bindings: fake_tls_binding(),
            server_bindings: fake_tls_binding(),
            log: Vec::new(),
            to_server: Wire {
                config: WireConfig::default(),
                in_flight: VecDeque::new(),
            },
            to_client: Wire {
                config: WireConfig::default(),
                in_flight: VecDeque::new(),
            },
            tamper: None,
        }
    }

    /// Configure the wire in `direction`.
    pub fn set_wire(&mut self, direction: Direction, config: WireConfig) {
        match direction {
            Direction::ToServer => self.to_server.config = config,
            Direction::ToClient => self.to_client.config = config,
        }
    }

    /// Install a hook that sees (and may rewrite) every transmission.
    pub fn set_tamper(&mut self, hook: impl FnMut(Direction, &mut Vec<u8>) + Send + 'static) {
        self.tamper = Some(Box::new(hook));
    }

    /// Start both machines on a plain transport.
    pub fn start(&mut self) {
        let _ = self.server.start(self.now, crate::Transport::Plain);
        let _ = self.client.start(self.now, crate::Transport::Plain);
    }

    /// Start both machines on a direct-TLS transport (XEP-0368).
    pub fn start_direct_tls(&mut self) {
        let _ = self.server.start(
            self.now,
            crate::Transport::Tls(self.server_bindings.clone()),
        );
        let _ = self.client.start(
            self.now,
            crate::Transport::Tls(self.client_bindings.clone()),
        );
    }

    /// Move every pending output onto the wires (or into the event lists). Returns whether
    /// anything moved.
    fn collect(&mut self) -> bool {
        let mut moved = false;
        while let Some(output) = self.client.poll_output() {
            moved = true;
            match output {
                Output::Transmit(mut bytes) => {
                    if let Some(hook) = &mut self.tamper {
                        hook(Direction::ToServer, &mut bytes);
                    }
                    self.to_server.push(self.now, &bytes);
                    self.log.push(LogEntry::Sent {
                        at: self.now,
                        direction: Direction::ToServer,
                        bytes,
                    });
                }
                Output::StartTls => {
                    self.log.push(LogEntry::Tls {
                        at: self.now,
                        side: Direction::ToServer,
                    });
                    let _ = self
                        .client
                        .tls_established(self.now, self.client_bindings.clone());
                }
                Output::Event(event) => {
                    let summary = crate::transcript::event_summary(&event);
                    self.log.push(LogEntry::Event {
                        at: self.now,
                        side: Direction::ToServer,
                        summary,
                    });
                    self.client_events.push(event);
                }
            }
        }
        while let Some(output) = self.server.poll_output() {
            moved = true;
            match output {
                Output::Transmit(mut bytes) => {
                    if let Some(hook) = &mut self.tamper {
                        hook(Direction::ToClient, &mut bytes);
                    }
                    self.to_client.push(self.now, &bytes);
                    self.log.push(LogEntry::Sent {
                        at: self.now,
                        direction: Direction::ToClient,
                        bytes,
                    });
                }
                Output::StartTls => {
                    self.log.push(LogEntry::Tls {
                        at: self.now,
                        side: Direction::ToClient,
                    });
                    let _ = self
                        .server
                        .tls_established(self.now, self.server_bindings.clone());
                }
                Output::Event(event) => {
                    let summary = crate::transcript::event_summary(&event);
                    self.log.push(LogEntry::Event {
                        at: self.now,
                        side: Direction::ToClient,
                        summary,
                    });
                    self.server_events.push(event);
                }
            }
        }
        moved
    }

    /// Deliver every chunk due by now. Returns whether anything was delivered.
    fn deliver(&mut self) -> bool {
        let mut delivered = false;
        while let Some((at, _)) = self.to_server.in_flight.front() {
            if *at > self.now {
                break;
            }
            let Some((_, bytes)) = self.to_server.in_flight.pop_front() else {
                break;
            };
            delivered = true;
            self.log.push(LogEntry::Delivered {
                at: self.now,
                direction: Direction::ToServer,
                bytes: bytes.clone(),
            });
            if let Err(e) = self.server.handle_input(self.now, &bytes) {
                self.server_errors.push(e);
            }
            self.collect();
        }
        while let Some((at, _)) = self.to_client.in_flight.front() {
            if *at > self.now {
                break;
            }
            let Some((_, bytes)) = self.to_client.in_flight.pop_front() else {
                break;
            };
            delivered = true;
            self.log.push(LogEntry::Delivered {
                at: self.now,
                direction: Direction::ToClient,
                bytes: bytes.clone(),
            });
            if let Err(e) = self.client.handle_input(self.now, &bytes) {
                self.client_errors.push(e);
            }
            self.collect();
        }
        delivered
    }

    /// One step: collect outputs, deliver what is due; if nothing happened, advance the clock
    /// to the next delivery. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let moved = self.collect();
        if self.deliver() || moved {
            return true;
        }
        let next = [self.to_server.next_at(), self.to_client.next_at()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(at) => {
                self.now = self.now.max(at);
                self.deliver();
                true
            }
            None => false,
        }
    }

    /// Step until no bytes are in flight and no output is pending (timers are not fired).
    pub fn drive(&mut self) {
        self.drive_bounded(100_000);
    }

    /// Like [`drive`](Self::drive) but at most `steps` steps; returns whether it settled.
    pub fn drive_bounded(&mut self, steps: usize) -> bool {
        for _ in 0..steps {
            if !self.step() {
                return true;
            }
        }
        false
    }

    /// Advance the clock by `by`, firing timers of both sides as their deadlines pass, and
    /// drive after each.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            self.drive();
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = until;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.drive();
    }

    /// Send a stanza from the client's host (logged for transcripts).
    pub fn client_send(&mut self, stanza: &minidom::Element) -> Result<(), crate::UsageError> {
        self.host(Direction::ToServer, format!("send {}", xml_text(stanza)));
        self.client.send_stanza(self.now, stanza)
    }

    /// Send a stanza from the server's host (logged for transcripts).
    pub fn server_send(&mut self, stanza: &minidom::Element) -> Result<(), crate::UsageError> {
        self.host(Direction::ToClient, format!("send {}", xml_text(stanza)));
        self.server.send_stanza(self.now, stanza)
    }

    /// Close from the client's host (logged for transcripts).
    pub fn client_close(&mut self) -> Result<(), crate::UsageError> {
        self.host(Direction::ToServer, "close".to_owned());
        self.client.close(self.now)
    }

    /// Close from the server's host (logged for transcripts).
    pub fn server_close(&mut self) -> Result<(), crate::UsageError> {
        self.host(Direction::ToClient, "close".to_owned());
        self.server.close(self.now)
    }

    fn host(&mut self, side: Direction, command: String) {
        self.log.push(LogEntry::Host {
            at: self.now,
            side,
            command,
        });
    }

    /// The run as a transcript for replaying `side` (`ToServer`: the client, `ToClient`: the
    /// server): its inputs at delivery, its outputs as sent, its TLS switches, host commands
    /// and events, in the order it saw them. Exact mode; prepend the setup directives.
    pub fn transcript(&self, side: Direction) -> String {
        let who = if side == Direction::ToServer {
            "client"
        } else {
            "server"
        };
        let mut text = String::new();
        for entry in &self.log {
            let line = match entry {
                LogEntry::Sent {
                    at,
                    direction,
                    bytes,
                } if *direction == side => {
                    format!(
                        "{} {}: {}",
                        at.as_millis(),
                        tag(*direction),
                        crate::transcript::escape_bytes(bytes)
                    )
                }
                LogEntry::Delivered {
                    at,
                    direction,
                    bytes,
                } if *direction != side => {
                    format!(
                        "{} {}: {}",
                        at.as_millis(),
                        tag(*direction),
                        crate::transcript::escape_bytes(bytes)
                    )
                }
                LogEntry::Tls { at, side: s } if *s == side => format!("{} [TLS]", at.as_millis()),
                LogEntry::Event {
                    at,
                    side: s,
                    summary,
                } if *s == side => {
                    format!("{} E {who}: {summary}", at.as_millis())
                }
                LogEntry::Host {
                    at,
                    side: s,
                    command,
                } if *s == side => {
                    format!("{} H {who}: {command}", at.as_millis())
                }
                _ => continue,
            };
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// The log as readable text: what each side received (`C:` client to server, `S:` server
    /// to client), TLS switches and events.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        for entry in &self.log {
            let _ = match entry {
                LogEntry::Delivered {
                    at,
                    direction,
                    bytes,
                } => {
                    writeln!(
                        text,
                        "{at} {}: {}",
                        tag(*direction),
                        String::from_utf8_lossy(bytes)
                    )
                }
                LogEntry::Tls { at, side } => writeln!(text, "{at} {}: [TLS]", tag(*side)),
                LogEntry::Event { at, side, summary } => {
                    writeln!(text, "{at} {} event: {summary}", tag(*side))
                }
                LogEntry::Sent { .. } | LogEntry::Host { .. } => Ok(()),
            };
        }
        text
    }
}

/// What the authoritative server holding `secret` answers to `<db:verify/>` for a key that
/// `originating` sent to `receiving` on stream `id` (XEP-0220 §2.1.2): the answer a test or
/// bench host gives an [`Event::DialbackVerify`].
pub fn authoritative_answer(
    secret: &crate::dialback::DialbackSecret,
    originating: &xmpp_jid::BareJid,
    receiving: &xmpp_jid::BareJid,
    id: &crate::dialback::StreamId,
    key: &crate::dialback::DialbackKey,
) -> crate::DialbackOutcome {
    use crate::dialback::Domain;
    let domains = Domain::try_from(originating.clone())
        .ok()
        .zip(Domain::try_from(receiving.clone()).ok());
    match domains {
        Some((originating, receiving)) if secret.verify(&receiving, &originating, id, key) => {
            crate::DialbackOutcome::Valid
        }
        _ => crate::DialbackOutcome::Invalid,
    }
}

/// Moves bytes between two machines of any kind (an [`AnyStream`](crate::AnyStream) each,
/// started by the caller) until both are quiet, with TLS faked (`tls_established` without
/// channel bindings) and each [`Event::DialbackVerify`] of a receiving s2s end answered with
/// what `verify` says (`None` leaves it unanswered). Returns each end's events. The
/// server-to-server counterpart of [`Pair`], for tests and benches.
pub fn drive_ends(
    ends: &mut [crate::AnyStream; 2],
    now: Instant,
    mut verify: impl FnMut(
        &xmpp_jid::BareJid,
        &xmpp_jid::BareJid,
        &crate::dialback::StreamId,
        &crate::dialback::DialbackKey,
    ) -> Option<crate::DialbackOutcome>,
) -> [Vec<Event>; 2] {
    let mut events: [Vec<Event>; 2] = [Vec::new(), Vec::new()];
    loop {
        let mut moved = false;
        for from in 0..2 {
            while let Some(output) = ends[from].poll_output() {
                moved = true;
                match output {
                    Output::Transmit(bytes) => {
                        let _ = ends[1 - from].handle_input(now, &bytes);
                    }
                    Output::StartTls => {
                        let _ = ends[from].tls_established(now, Vec::new());
                    }
                    Output::Event(event) => {
                        if let Event::DialbackVerify {
                            originating,
                            receiving,
                            stream_id,
                            key,
                        } = &event
                        {
                            let answer = verify(originating, receiving, stream_id, key);
                            match (answer, &mut ends[from]) {
                                (Some(outcome), crate::AnyStream::S2sReceiving(end)) => {
                                    let _ =
                                        end.dialback_verified(now, originating, receiving, outcome);
                                }
                                // XEP-0288 §3: a pair asked for in the reverse direction.
                                (Some(outcome), crate::AnyStream::S2sInitiating(end)) => {
                                    let _ =
                                        end.dialback_verified(now, originating, receiving, outcome);
                                }
                                _ => {}
                            }
                        }
                        events[from].push(event);
                    }
                }
            }
        }
        if !moved {
            return events;
        }
    }
}
