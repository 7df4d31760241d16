//! The Sans-IO core of the server: a [`Hub`] owning one [`ServerStream`] per connection and
//! the RFC 6121 [`xmpp_im::Server`], routing stanzas between sessions.
//!
//! The hub never touches a socket, a clock or the OS random source: the host (the tokio shell
//! in [`crate::runtime`], or a test) accepts connections, feeds bytes with the time, runs TLS
//! when asked and writes what [`Hub::poll_output`] returns.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use minidom::Element;
use xmpp_im::MemoryStore;
use xmpp_jid::{BareJid, FullJid};
use xmpp_stream::MemoryBackend;
use xmpp_stream::{
    ChannelBinding, Entropy, Event, Instant, Mechanism, Output, ServerConfig, ServerStream,
    StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition, Transport,
};

/// Identifies one accepted connection for the lifetime of the hub (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl core::fmt::Display for SessionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the host must do for a connection, in order per connection.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HubOutput {
    /// Write these bytes to the connection (inside TLS once it is up).
    Transmit(SessionId, Vec<u8>),
    /// Run the server side of a TLS handshake on the connection now, then call
    /// [`Hub::tls_established`].
    StartTls(SessionId),
    /// The stream is over: flush what was transmitted, then close the connection.
    Close(SessionId),
}

/// Whether the server offers channel-bound SCRAM (`-PLUS`).
///
/// rustls cannot produce `tls-unique`, and many deployed clients (slixmpp, libstrophe 0.12)
/// bind only with `tls-unique`: when they see `-PLUS` they either pick it with a binding we
/// cannot verify, or fall back with the GS2 flag `y`, which a server that offered `-PLUS`
/// must treat as a downgrade (RFC 5802 §6). So `-PLUS` is opt-in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlusPolicy {
    /// Offer only SCRAM-SHA-512/256/1 and PLAIN (over TLS); the GS2 flag `y` is accepted.
    #[default]
    Off,
    /// Offer `-PLUS` with the bindings the host passes to [`Hub::tls_established`]
    /// (`tls-exporter`, `tls-server-end-point`) and list them with XEP-0440.
    Advertise,
}

/// Hub configuration: the domain, the accounts and the stream policy.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The domain served (the stream `to`, the domain part of every account).
    pub domain: BareJid,
    /// Accounts: (localpart, password).
    pub users: Vec<(String, String)>,
    /// PBKDF2 iterations for the stored SCRAM credentials (4096: RFC 7677's floor).
    pub iterations: u32,
    /// `-PLUS` policy.
    pub plus: PlusPolicy,
    /// Tests only: when set, every session is recorded as a replayable transcript (the
    /// format of `testdata/README.md`, as the server) and pushed here when it closes.
    pub record: Option<TranscriptSink>,
    /// The stream configuration template for every connection. [`HubConfig::new`] fills it
    /// from the fields above; adjust it afterwards for timeouts, limits or a TLS policy.
    pub stream: ServerConfig,
}

impl HubConfig {
    /// A configuration for `domain` with STARTTLS required, no `-PLUS`, 4096 iterations and
    /// no accounts.
    pub fn new(domain: BareJid) -> Self {
        let mut stream = ServerConfig::new(domain.clone());
        apply_plus(&mut stream, PlusPolicy::Off);
        HubConfig {
            domain,
            users: Vec::new(),
            iterations: 4096,
            plus: PlusPolicy::Off,
            record: None,
            stream,
        }
    }

    /// Add an account.
    #[must_use]
    pub fn with_user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Choose the `-PLUS` policy (also adjusts [`HubConfig::stream`]).
    #[must_use]
    pub fn with_plus(mut self, plus: PlusPolicy) -> Self {
        self.plus = plus;
        apply_plus(&mut self.stream, plus);
        self
    }
}

fn apply_plus(stream: &mut ServerConfig, plus: PlusPolicy) {
    match plus {
        PlusPolicy::Off => {
            stream.mechanisms = vec![
                Mechanism::ScramSha512,
                Mechanism::ScramSha256,
                Mechanism::ScramSha1,
                Mechanism::Plain,
            ];
            stream.advertise_channel_binding_types = false;
        }
        PlusPolicy::Advertise => {
            stream.mechanisms = ServerConfig::DEFAULT_MECHANISMS.to_vec();
            stream.advertise_channel_binding_types = true;
        }
    }
}

/// Where a recording hub puts finished session transcripts (see [`HubConfig::record`]).
pub type TranscriptSink = Arc<Mutex<Vec<String>>>;

/// Entropy that also logs every byte drawn, for the transcript.
struct Tap<E> {
    inner: E,
    log: Arc<Mutex<Vec<u8>>>,
}

impl<E: Entropy> Entropy for Tap<E> {
    fn fill(&mut self, buf: &mut [u8]) {
        self.inner.fill(buf);
        if let Ok(mut log) = self.log.lock() {
            log.extend_from_slice(buf);
        }
    }
}

/// One session's transcript being recorded.
struct Recording {
    start: Instant,
    setup: Vec<String>,
    lines: Vec<String>,
    entropy: Arc<Mutex<Vec<u8>>>,
    /// Something happened that a transcript cannot express (`close_with_error`).
    unreplayable: bool,
}

impl Recording {
    fn line(&mut self, now: Instant, text: &str) {
        let ms = now.as_millis().saturating_sub(self.start.as_millis());
        self.lines.push(format!("{ms} {text}"));
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "# Recorded by crates/hosts/xmpp-server (HubConfig::record): one ServerStream of the hub.\n",
        );
        for line in &self.setup {
            out.push_str(line);
            out.push('\n');
        }
        if let Ok(entropy) = self.entropy.lock()
            && !entropy.is_empty()
        {
            out.push_str("!server entropy ");
            out.push_str(&hex(&entropy));
            out.push('\n');
        }
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn binding_line(binding: &ChannelBinding) -> String {
    format!("!server binding {} {}", binding.kind(), hex(binding.data()))
}

/// Move the stream's outputs to `pending`, recording them: done after every host command,
/// so a transcript ties each output to the input that caused it.
fn drain(session: &mut Session, now: Instant) {
    while let Some(output) = session.stream.poll_output() {
        if let Some(rec) = &mut session.rec {
            let text = match &output {
                Output::Transmit(bytes) => Some(format!(
                    "S: {}",
                    xmpp_stream::transcript::escape_bytes(bytes)
                )),
                Output::StartTls => Some("[TLS]".to_owned()),
                Output::Event(event) => Some(format!(
                    "E server: {}",
                    xmpp_stream::transcript::event_summary(event)
                )),
                _ => None,
            };
            if let Some(text) = text {
                rec.line(now, &text);
            }
        }
        session.pending.push(output);
    }
}

fn record(session: &mut Session, now: Instant, text: &str) {
    if let Some(rec) = &mut session.rec {
        rec.line(now, text);
    }
}

struct Session {
    stream: ServerStream,
    rec: Option<Recording>,
    /// Outputs taken from the stream (and recorded) but not yet acted on.
    pending: Vec<Output>,
    /// The bound JID once registered with the IM server.
    jid: Option<FullJid>,
}

/// The server core. See the module documentation.
///
/// Run loop: after every input (`accept`, `handle_input`, `tls_established`,
/// `transport_closed`, `handle_timeout`), drain [`poll_output`](Self::poll_output) until
/// `None`, then sleep until [`poll_timeout`](Self::poll_timeout) or the next input.
pub struct Hub {
    config: HubConfig,
    /// Shared by every session's `ServerStream`: a per-connection copy would make memory per
    /// session grow with the number of accounts.
    backend: Arc<MemoryBackend>,
    im: xmpp_im::Server,
    store: MemoryStore,
    /// Boxed: a `Session` is about 9 KiB inline (mostly the `ServerStream`), and B-tree
    /// nodes of 11 inline values filled in id order stay about half empty, which cost about
    /// 7 KiB per session before the box.
    sessions: BTreeMap<SessionId, Box<Session>>,
    by_jid: BTreeMap<FullJid, SessionId>,
    next_id: u64,
    dirty: BTreeSet<SessionId>,
    /// Sessions whose stream closed, removed at the end of the current flush.
    closed: Vec<SessionId>,
    out: VecDeque<HubOutput>,
    log: Vec<String>,
    /// Messages for accounts with no available resource (RFC 6121 §8.5.2.2.1), delivered
    /// when a resource of the account becomes available; bounded per account.
    offline: BTreeMap<BareJid, VecDeque<Element>>,
}

/// Offline messages kept per account; beyond this the newest are bounced.
pub const MAX_OFFLINE_PER_ACCOUNT: usize = 100;

impl core::fmt::Debug for Hub {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hub")
            .field("domain", &self.config.domain)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with the configured accounts (SCRAM credentials derived once, here).
    pub fn new(config: HubConfig) -> Self {
        let mut backend = MemoryBackend::new();
        let mut store = MemoryStore::new();
        for (name, password) in &config.users {
            backend = backend.with_user(name, password, config.iterations);
            if let Ok(jid) = BareJid::from_parts(Some(name), config.domain.domain()) {
                store.add_account(jid);
            }
        }
        let im = xmpp_im::Server::new(xmpp_im::ServerConfig::new(config.domain.domain()));
        Hub {
            config,
            backend: Arc::new(backend),
            im,
            store,
            sessions: BTreeMap::new(),
            by_jid: BTreeMap::new(),
            next_id: 1,
            dirty: BTreeSet::new(),
            closed: Vec::new(),
            out: VecDeque::new(),
            log: Vec::new(),
            offline: BTreeMap::new(),
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Connections currently open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The bound JID of a connection, once negotiated.
    pub fn jid(&self, id: SessionId) -> Option<&FullJid> {
        self.sessions.get(&id).and_then(|s| s.stream.jid())
    }

    /// The roster store (for inspection in tests and tools).
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Offline messages waiting for `user`.
    pub fn offline_count(&self, user: &BareJid) -> usize {
        self.offline.get(user).map_or(0, VecDeque::len)
    }

    /// Offline messages waiting, all accounts together.
    pub fn offline_total(&self) -> usize {
        self.offline.values().map(VecDeque::len).sum()
    }

    /// The IM server machine (for inspection).
    pub fn im(&self) -> &xmpp_im::Server {
        &self.im
    }

    /// Human-readable lines about what happened (negotiations, closes, dropped stanzas);
    /// drained by the host for its log.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    // ----- outputs -----

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<HubOutput> {
        self.out.pop_front()
    }

    /// The earliest deadline of any connection.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.stream.poll_timeout())
            .min()
    }

    // ----- inputs -----

    /// A new connection on `transport`. `entropy` feeds its stream ids, SCRAM nonces and
    /// generated resources (the host's CSPRNG in production, a seed in tests).
    pub fn accept(
        &mut self,
        now: Instant,
        transport: Transport,
        entropy: impl Entropy + Send + 'static,
    ) -> SessionId {
        let id = SessionId(self.next_id);
        self.next_id += 1;
        // Under `PlusPolicy::Off` no binding reaches the machine (see `tls_established`).
        let transport = match (transport, self.config.plus) {
            (Transport::Tls(_), PlusPolicy::Off) => Transport::Tls(Vec::new()),
            (transport, _) => transport,
        };
        // Only a recording session taps its entropy: the tap's log grows with every byte
        // drawn, which an unrecorded session would carry for nothing.
        let (mut stream, rec) = if self.config.record.is_some() {
            let log = Arc::new(Mutex::new(Vec::new()));
            let rec = self.recording(now, &transport, &log);
            let entropy = Tap {
                inner: entropy,
                log,
            };
            let stream = ServerStream::new(
                self.config.stream.clone(),
                entropy,
                Arc::clone(&self.backend),
            );
            (stream, Some(rec))
        } else {
            let stream = ServerStream::new(
                self.config.stream.clone(),
                entropy,
                Arc::clone(&self.backend),
            );
            (stream, None)
        };
        // A fresh machine always accepts `start`.
        let _ = stream.start(now, transport);
        self.sessions.insert(
            id,
            Box::new(Session {
                stream,
                rec,
                pending: Vec::new(),
                jid: None,
            }),
        );
        self.dirty.insert(id);
        self.flush(now);
        id
    }

    /// Bytes read from connection `id`.
    pub fn handle_input(&mut self, id: SessionId, now: Instant, bytes: &[u8]) {
        if let Some(session) = self.sessions.get_mut(&id) {
            record(
                session,
                now,
                &format!("C: {}", xmpp_stream::transcript::escape_bytes(bytes)),
            );
            if let Err(error) = session.stream.handle_input(now, bytes) {
                self.log.push(format!("{id}: protocol error: {error}"));
            }
            self.dirty.insert(id);
        }
        self.flush(now);
    }

    /// The TLS handshake asked for by [`HubOutput::StartTls`] finished; `bindings` is the
    /// channel-binding data the TLS library offers (ignored under [`PlusPolicy::Off`]).
    pub fn tls_established(&mut self, id: SessionId, now: Instant, bindings: Vec<ChannelBinding>) {
        let bindings = match self.config.plus {
            PlusPolicy::Off => Vec::new(),
            PlusPolicy::Advertise => bindings,
        };
        if let Some(session) = self.sessions.get_mut(&id) {
            if let Some(rec) = &mut session.rec {
                rec.setup.extend(bindings.iter().map(binding_line));
            }
            if let Err(error) = session.stream.tls_established(now, bindings) {
                self.log.push(format!("{id}: tls_established: {error}"));
            }
            self.dirty.insert(id);
        }
        self.flush(now);
    }

    /// The connection ended (EOF, reset or TLS failure).
    pub fn transport_closed(&mut self, id: SessionId, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&id) {
            record(session, now, "H server: transport-closed");
            session.stream.transport_closed(now);
            self.dirty.insert(id);
        }
        self.flush(now);
    }

    /// Time passed: fire due timers (keepalives, negotiation and close deadlines).
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, session) in &mut self.sessions {
            if session.stream.poll_timeout().is_some_and(|t| t <= now) {
                record(session, now, "H server: timeout");
                session.stream.handle_timeout(now);
                self.dirty.insert(*id);
            }
        }
        self.flush(now);
    }

    /// Close every stream with `system-shutdown`.
    pub fn shutdown(&mut self, now: Instant) {
        for (id, session) in &mut self.sessions {
            let error = StreamError::new(StreamErrorCondition::SystemShutdown);
            if let Some(rec) = &mut session.rec {
                rec.unreplayable = true;
            }
            if session.stream.close_with_error(now, error).is_ok() {
                self.dirty.insert(*id);
            }
        }
        self.flush(now);
    }

    // ----- internals -----

    /// The setup lines of a new session's transcript.
    fn recording(
        &self,
        now: Instant,
        transport: &Transport,
        log: &Arc<Mutex<Vec<u8>>>,
    ) -> Recording {
        let stream = &self.config.stream;
        let mut setup = vec![format!("!server domain {}", self.config.domain)];
        let names: Vec<String> = stream.mechanisms.iter().map(ToString::to_string).collect();
        setup.push(format!("!server mechanisms {}", names.join(",")));
        setup.push(format!(
            "!server cb-types {}",
            stream.advertise_channel_binding_types
        ));
        for (name, password) in &self.config.users {
            setup.push(format!(
                "!server user {name} {password} salt-of-{name} {}",
                self.config.iterations
            ));
        }
        if let Transport::Tls(bindings) = transport {
            setup.push("!server transport tls".to_owned());
            setup.extend(bindings.iter().map(binding_line));
        }
        Recording {
            start: now,
            setup,
            lines: Vec::new(),
            entropy: Arc::clone(log),
            unreplayable: false,
        }
    }

    /// Drain every touched stream, acting on its events, until nothing is left to do.
    fn flush(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop_first() {
            // Drain the stream before acting on its events: what the hub then sends it is
            // queued after these outputs either way, and a recorded transcript keeps the
            // order "input, its outputs, host commands".
            let mut outputs = Vec::new();
            if let Some(session) = self.sessions.get_mut(&id) {
                drain(session, now);
                outputs = std::mem::take(&mut session.pending);
            }
            for output in outputs {
                match output {
                    Output::Transmit(bytes) => self.out.push_back(HubOutput::Transmit(id, bytes)),
                    Output::StartTls => self.out.push_back(HubOutput::StartTls(id)),
                    Output::Event(event) => self.on_event(id, now, event),
                    _ => {}
                }
            }
        }
        // Only the sessions that closed during this flush: scanning every session after
        // every input was a per-input cost linear in the number of sessions (at 10 000
        // sessions it held message round trips to seconds).
        for id in std::mem::take(&mut self.closed) {
            if let Some(session) = self.sessions.remove(&id)
                && let (Some(rec), Some(sink)) = (session.rec, &self.config.record)
                && !rec.unreplayable
                && let Ok(mut sink) = sink.lock()
            {
                sink.push(rec.render());
            }
        }
    }

    fn on_event(&mut self, id: SessionId, now: Instant, event: Event) {
        match event {
            Event::Negotiated { jid, .. } => self.on_negotiated(id, now, jid),
            Event::Stanza(stanza) => self.on_stanza(id, now, &stanza),
            Event::Closed { reason } => {
                self.log.push(format!("{id}: closed ({reason:?})"));
                self.closed.push(id);
                let jid = self.sessions.get_mut(&id).and_then(|s| s.jid.take());
                self.out.push_back(HubOutput::Close(id));
                if let Some(jid) = jid {
                    self.by_jid.remove(&jid);
                    let _ = self.im.session_ended(&mut self.store, &jid);
                    self.route_im(now);
                }
            }
            Event::Authenticated { jid, mechanism } => {
                self.log
                    .push(format!("{id}: authenticated {jid} with {mechanism}"));
            }
            _ => {}
        }
    }

    fn on_negotiated(&mut self, id: SessionId, now: Instant, jid: FullJid) {
        // One session per full JID: the newer one wins, the older gets `conflict`
        // (RFC 6120 §7.7.2.2, the "override" policy).
        if let Some(old) = self.by_jid.remove(&jid) {
            if let Some(session) = self.sessions.get_mut(&old) {
                session.jid = None;
                if let Some(rec) = &mut session.rec {
                    rec.unreplayable = true;
                }
                let error = StreamError::new(StreamErrorCondition::Conflict);
                let _ = session.stream.close_with_error(now, error);
                self.dirty.insert(old);
            }
            let _ = self.im.session_ended(&mut self.store, &jid);
        }
        match self.im.session_started(jid.clone()) {
            Ok(()) => {
                self.log.push(format!("{id}: bound {jid}"));
                self.by_jid.insert(jid.clone(), id);
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.jid = Some(jid);
                }
            }
            Err(error) => {
                self.log.push(format!("{id}: cannot start {jid}: {error}"));
                if let Some(session) = self.sessions.get_mut(&id) {
                    if let Some(rec) = &mut session.rec {
                        rec.unreplayable = true;
                    }
                    let error = StreamError::new(StreamErrorCondition::ResourceConstraint);
                    let _ = session.stream.close_with_error(now, error);
                }
            }
        }
        self.route_im(now);
    }

    fn on_stanza(&mut self, id: SessionId, now: Instant, stanza: &Element) {
        let Some(jid) = self.sessions.get(&id).and_then(|s| s.jid.clone()) else {
            return;
        };
        let was_available = self.im.is_available(&jid);
        if self
            .im
            .handle_session_stanza(&mut self.store, &jid, stanza)
            .is_err()
        {
            return;
        }
        self.route_im(now);
        // Initial presence: hand over what was stored while no resource was available.
        if !was_available
            && self.im.is_available(&jid)
            && let Some(stored) = self.offline.remove(&jid.to_bare())
        {
            for message in stored {
                self.deliver(now, &jid, &message);
            }
        }
    }

    /// Act on everything the IM server decided.
    fn route_im(&mut self, now: Instant) {
        while let Some(output) = self.im.poll_output() {
            match output {
                xmpp_im::Output::Deliver { to, stanza } => self.deliver(now, &to, &stanza),
                xmpp_im::Output::Route(stanza) => {
                    // No server-to-server here: remote domains are unreachable.
                    self.log.push(format!(
                        "no s2s: bouncing stanza to {}",
                        stanza.attr("to").unwrap_or_default()
                    ));
                    self.error_reply(now, &stanza, StanzaErrorCondition::RemoteServerNotFound);
                }
                xmpp_im::Output::Offline { user, stanza } => {
                    // Store (RFC 6121 §8.5.2.2.1), or bounce once the account's box is full.
                    let queue = self.offline.entry(user).or_default();
                    if queue.len() < MAX_OFFLINE_PER_ACCOUNT {
                        queue.push_back(stanza);
                    } else {
                        self.im.bounce(&mut self.store, &stanza);
                    }
                }
                xmpp_im::Output::Unhandled(stanza) => self.unhandled(now, &stanza),
                _ => {}
            }
        }
    }

    fn deliver(&mut self, now: Instant, to: &FullJid, stanza: &Element) {
        let Some(id) = self.by_jid.get(to).copied() else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(&id) {
            record(
                session,
                now,
                &format!("H server: send {}", String::from(stanza)),
            );
            if session.stream.send_stanza(now, stanza).is_ok() {
                drain(session, now);
                self.dirty.insert(id);
            }
        }
    }

    /// Answer a stanza's sender (a local session) with an error, unless it is an error.
    fn error_reply(&mut self, now: Instant, stanza: &Element, condition: StanzaErrorCondition) {
        if stanza.attr("type") == Some("error") {
            return;
        }
        let reply = StanzaError::new(condition).reply_to(stanza);
        self.reply_to_sender(now, stanza, &reply);
    }

    fn reply_to_sender(&mut self, now: Instant, stanza: &Element, reply: &Element) {
        let Some(from) = stanza.attr("from").and_then(|f| FullJid::new(f).ok()) else {
            return;
        };
        self.deliver(now, &from, reply);
    }

    /// Iqs to the server or an account that the IM machine leaves to the host: ping and a
    /// minimal disco#info are answered, everything else gets `service-unavailable`.
    fn unhandled(&mut self, now: Instant, stanza: &Element) {
        if stanza.name() != "iq" {
            return;
        }
        let kind = stanza.attr("type").unwrap_or_default();
        if kind != "get" && kind != "set" {
            return;
        }
        let payload = stanza.children().next();
        let to_server = stanza
            .attr("to")
            .is_none_or(|to| to == self.config.domain.as_str());
        let answer = match payload.map(|p| (p.name(), p.ns())) {
            Some(("ping", ns)) if ns == "urn:xmpp:ping" => Some(Vec::new()),
            Some(("query", ns))
                if to_server && kind == "get" && ns == "http://jabber.org/protocol/disco#info" =>
            {
                Some(vec![disco_info()])
            }
            _ => None,
        };
        match answer {
            Some(children) => {
                let mut reply = Element::builder("iq", "jabber:client")
                    .attr(name("type"), "result")
                    .attr(name("id"), stanza.attr("id"))
                    .attr(name("to"), stanza.attr("from"))
                    .attr(name("from"), stanza.attr("to"))
                    .build();
                for child in children {
                    reply.append_child(child);
                }
                self.reply_to_sender(now, stanza, &reply);
            }
            None => self.error_reply(now, stanza, StanzaErrorCondition::ServiceUnavailable),
        }
    }
}

fn name(s: &'static str) -> minidom::rxml::NcName {
    // Static attribute names are valid NCNames.
    #[allow(clippy::expect_used)]
    s.try_into().expect("static NCName")
}

fn disco_info() -> Element {
    let feature = |var: &str| {
        Element::builder("feature", "http://jabber.org/protocol/disco#info")
            .attr(name("var"), var)
            .build()
    };
    Element::builder("query", "http://jabber.org/protocol/disco#info")
        .append(
            Element::builder("identity", "http://jabber.org/protocol/disco#info")
                .attr(name("category"), "server")
                .attr(name("type"), "im")
                .attr(name("name"), "xmpp-server example")
                .build(),
        )
        .append(feature("http://jabber.org/protocol/disco#info"))
        .append(feature("urn:xmpp:ping"))
        .append(feature("jabber:iq:roster"))
        .build()
}
