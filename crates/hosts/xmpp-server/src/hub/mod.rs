//! The Sans-IO core of the server: a [`Hub`] owning one stream machine per connection (a
//! [`ServerStream`] per client, a [`ComponentServerStream`] per XEP-0114 component) and the
//! RFC 6121 [`xmpp_im::Server`], routing stanzas between sessions.
//!
//! The hub never touches a socket, a clock or the OS random source: the host (the tokio shell
//! in [`crate::runtime`], or a test) accepts connections, feeds bytes with the time, runs TLS
//! when asked and writes what [`Hub::poll_output`] returns.
//!
//! This file holds the hub, its inputs and its output queue; one module per other concern:
//!
//! - `config`: [`HubConfig`] and the `-PLUS` policy ([`PlusPolicy`]);
//! - `routing`: what each stream event does (JID registration, the IM machine, delivery,
//!   offline storage, stanzas to and from components, bounces);
//! - `components`: the configured components, their secrets and which are connected (the
//!   component streams' backend);
//! - `s2s`: server-to-server: the outgoing connection per remote domain with its queue, the
//!   receiving streams' dialback requests, and the `<db:verify/>` exchange ([`Verification`]);
//! - `disco`: the iqs the IM machine leaves to the host (ping, disco#info, disco#items);
//! - `record`: transcripts of every session, for tests ([`HubConfig::record`]).

mod accounts;
mod components;
mod config;
mod disco;
mod durable;
mod record;
mod register;
mod routed;
mod routing;
mod s2s;
mod sm;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use minidom::Element;
use xmpp_im::MemoryStore;
use xmpp_jid::{BareJid, FullJid};
use xmpp_stream::dialback::{DialbackKey, StreamId};
use xmpp_stream::{
    AnyStream, ChannelBinding, ComponentServerStream, Entropy, Instant, Output, S2sReceivingStream,
    ServerStream, StreamError, StreamErrorCondition, Transport,
};

pub use config::{HubConfig, PING_IDLE, PING_TIMEOUT, PlusPolicy, TestRewrite};
pub use record::TranscriptSink;
pub use routing::MAX_OFFLINE_PER_ACCOUNT;
pub use s2s::{
    MAX_EXTRA_CONNECTIONS_PER_PEER, MAX_QUEUED_PER_DOMAIN, MAX_S2S_CONNECTING, Verification,
};

use components::Components;
use record::{Recorder, Tap};

/// The sessions with outputs to act on, smallest id first, each once until taken (what a
/// `BTreeSet` gave, without its node allocated and freed on every input): a min-heap whose
/// storage is kept, an id pushed twice before it is taken popped once.
#[derive(Debug, Default)]
struct Dirty(std::collections::BinaryHeap<core::cmp::Reverse<SessionId>>);

impl Dirty {
    /// Mark session `id`.
    fn insert(&mut self, id: SessionId) {
        // The usual repeat (the session just marked is marked again) costs nothing.
        if self.0.peek() != Some(&core::cmp::Reverse(id)) {
            self.0.push(core::cmp::Reverse(id));
        }
    }

    /// Take the smallest marked id, and every other mark of it.
    fn pop_first(&mut self) -> Option<SessionId> {
        let core::cmp::Reverse(id) = self.0.pop()?;
        while self.0.peek() == Some(&core::cmp::Reverse(id)) {
            self.0.pop();
        }
        Some(id)
    }
}

/// Identifies one accepted connection for the lifetime of the hub (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl core::fmt::Display for SessionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A storage request of the hub (only with [`HubConfig::database`]): the host does it off its
/// event loop and answers with the `Hub` input named on each variant.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StorageRequest {
    /// Read an account: answer [`Hub::storage_loaded`].
    Load {
        /// The request.
        id: xmpp_im::LoadId,
        /// The account.
        user: BareJid,
    },
    /// Make these changes durable, in order with earlier writes: answer
    /// [`Hub::storage_written`].
    Write {
        /// The request.
        id: xmpp_im::WriteId,
        /// The changes, one transaction.
        changes: Vec<xmpp_im::Change>,
    },
    /// Store a message for an account with no available resource (already stamped with its
    /// `<delay/>`), unless [`MAX_OFFLINE_PER_ACCOUNT`] wait: answer [`Hub::offline_stored`]
    /// once it is durable, or hand it back with [`Hub::offline_refused`].
    StoreOffline {
        /// Names the request in [`Hub::offline_stored`] and [`Hub::offline_refused`].
        id: u64,
        /// The account.
        user: BareJid,
        /// The message.
        stanza: Element,
    },
    /// The session sent initial presence: take the account's stored messages and hand them
    /// over with [`Hub::offline_taken`].
    TakeOffline {
        /// The session.
        jid: FullJid,
    },
    /// XEP-0077: create the account unless it exists, with SCRAM credentials derived from
    /// `password` (a fresh salt, `iterations`); the password is not kept: answer
    /// [`Hub::account_created`].
    CreateAccount {
        /// The registering connection.
        session: SessionId,
        /// The new account.
        jid: BareJid,
        /// Its password.
        password: xmpp_stream::register::Password,
        /// PBKDF2 iterations.
        iterations: u32,
    },
    /// XEP-0077 §3.3: give the account a new password (credentials derived as for
    /// `CreateAccount`): answer [`Hub::password_changed`].
    ChangePassword {
        /// The connection that asked.
        session: SessionId,
        /// The account.
        jid: BareJid,
        /// The new password.
        password: xmpp_stream::register::Password,
        /// PBKDF2 iterations.
        iterations: u32,
        /// The request, to answer.
        iq: Element,
    },
    /// XEP-0077 §3.2: delete the account and everything stored for it: answer
    /// [`Hub::account_deleted`].
    DeleteAccount {
        /// The connection that asked.
        session: SessionId,
        /// The account.
        jid: BareJid,
        /// The request, to answer.
        iq: Element,
    },
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
    /// Open a server-to-server connection from `local` to `remote` for session `id`: find
    /// the route, connect, then call [`Hub::s2s_connected`] (or [`Hub::s2s_connect_failed`]).
    /// Its `StartTls` is the client side of a handshake, presenting our certificate.
    Connect {
        /// The session the connection is for.
        id: SessionId,
        /// Our domain.
        local: BareJid,
        /// The domain to connect to.
        remote: BareJid,
    },
    /// Receiving connection `id` asks for a dialback verification (XEP-0220 §2.1.2): run a
    /// [`Verification`] against the authoritative server of `originating`, then call
    /// [`Hub::dialback_verified`].
    DialbackVerify {
        /// The connection that asks.
        id: SessionId,
        /// The domain the peer claims.
        originating: BareJid,
        /// Our domain it wants to talk to.
        receiving: BareJid,
        /// The id of the stream the key was given on.
        stream_id: StreamId,
        /// The key.
        key: DialbackKey,
    },
    /// Storage work (only with [`HubConfig::database`]).
    Storage(StorageRequest),
}

/// Which side of which protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A client (`jabber:client`): [`ServerStream`].
    C2s,
    /// An XEP-0114 component (`jabber:component:accept`): [`ComponentServerStream`].
    Component,
    /// A peer server connected to us (`jabber:server`): [`S2sReceivingStream`].
    S2sIn,
    /// Our connection to a peer server: [`xmpp_stream::S2sInitiatingStream`].
    S2sOut,
}

struct Session {
    /// A `ServerStream` or a `ComponentServerStream` (see [`Kind`]).
    stream: AnyStream,
    rec: Recorder,
    /// Outputs taken from the stream (and recorded) but not yet acted on, a stanza with its
    /// XEP-0198 number when the hub says when it is handled (with a database).
    pending: Pending,
    /// The bound JID once registered with the IM server (clients).
    jid: Option<FullJid>,
    /// The component domain once its handshake succeeded (components).
    component: Option<BareJid>,
    kind: Kind,
}

impl Session {
    /// Move the stream's outputs to `pending`, recording them: done after every host
    /// command, so a transcript ties each output to the input that caused it.
    /// The list comes from `spare` (the session holds none while idle).
    fn drain(&mut self, now: Instant, spare: &mut Spare) {
        if self.pending.capacity() == 0 {
            self.pending = spare.take();
        }
        let Session {
            stream,
            rec,
            pending,
            ..
        } = self;
        drain_stream(stream, rec, now, pending);
    }

    /// Move what waits in `pending`, then the stream's outputs, to `outputs` (recording
    /// them); the session's list goes back to `spare`: an idle session holds none.
    fn take_outputs(&mut self, now: Instant, outputs: &mut Pending, spare: &mut Spare) {
        if self.pending.capacity() != 0 {
            outputs.append(&mut self.pending);
            spare.give(std::mem::take(&mut self.pending));
        }
        drain_stream(&mut self.stream, &mut self.rec, now, outputs);
    }
}

/// A stream's outputs taken but not yet acted on, a stanza with its XEP-0198 number.
type Pending = Vec<(Output, Option<u32>)>;

/// Emptied output lists kept for the next session that needs one: a delivery fills the
/// recipient's list until the hub acts on it, and allocating a list for each (and freeing
/// it) was a per-message cost. Bounded in number and size.
#[derive(Default)]
struct Spare(Vec<Pending>);

impl Spare {
    /// Lists kept.
    const LISTS: usize = 64;
    /// Entries a kept list may hold (a larger one, after a burst, is freed).
    const ENTRIES: usize = 32;

    fn take(&mut self) -> Pending {
        self.0.pop().unwrap_or_default()
    }

    fn give(&mut self, mut list: Pending) {
        list.clear();
        if list.capacity() <= Self::ENTRIES && self.0.len() < Self::LISTS {
            self.0.push(list);
        }
    }
}

/// The stream's outputs onto `outputs`, recorded, a stanza with its XEP-0198 number.
fn drain_stream(stream: &mut AnyStream, rec: &mut Recorder, now: Instant, outputs: &mut Pending) {
    while let Some(output) = stream.poll_output() {
        rec.output(now, &output);
        let seq = match &output {
            Output::Event(
                xmpp_stream::Event::Stanza(_) | xmpp_stream::Event::StanzaEnvelope(_),
            ) => stream
                .as_server()
                .and_then(xmpp_stream::ServerStream::last_taken),
            _ => None,
        };
        outputs.push((output, seq));
    }
}

/// Lines [`Hub::take_log`] holds for the host; past this, further lines are only counted.
/// Peers make lines (every connection's close, every stanza bounced for want of a route): a
/// host that takes the log late or never must not pay for it with memory.
pub const MAX_LOG_LINES: usize = 4096;

/// The hub's log, bounded ([`MAX_LOG_LINES`]).
#[derive(Debug, Default)]
struct Log {
    lines: Vec<String>,
    /// Lines not kept since the last [`Log::take`].
    dropped: u64,
}

impl Log {
    fn push(&mut self, line: String) {
        if self.lines.len() < MAX_LOG_LINES {
            self.lines.push(line);
        } else {
            self.dropped += 1;
        }
    }

    fn take(&mut self) -> Vec<String> {
        let mut lines = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            lines.push(format!(
                "{} more log lines dropped: the log was not taken",
                self.dropped
            ));
            self.dropped = 0;
        }
        lines
    }
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
    backend: Arc<accounts::Accounts>,
    /// The components' secrets and connections, shared by every component stream.
    components: Arc<Components>,
    im: xmpp_im::Server,
    store: MemoryStore,
    /// Boxed: a `Session` is about 9 KiB inline (mostly the `ServerStream`), and B-tree
    /// nodes of 11 inline values filled in id order stay about half empty, which cost about
    /// 7 KiB per session before the box.
    sessions: BTreeMap<SessionId, Box<Session>>,
    by_jid: BTreeMap<FullJid, SessionId>,
    next_id: u64,
    /// The session `open` makes next is a WebSocket one (set by `accept_websocket`).
    websocket_next: bool,
    dirty: Dirty,
    /// The outputs `flush` acts on, kept between flushes (emptied, its storage reused).
    flushing: Pending,
    /// Output lists for the sessions' `pending`.
    spare: Spare,
    /// Sessions whose stream closed, removed at the end of the current flush.
    closed: Vec<SessionId>,
    out: VecDeque<HubOutput>,
    log: Log,
    /// Messages for accounts with no available resource (RFC 6121 §8.5.2.2.1), delivered
    /// when a resource of the account becomes available; bounded per account.
    offline: BTreeMap<BareJid, VecDeque<Element>>,
    /// Outgoing server-to-server connections, by remote domain.
    outgoing: s2s::OutgoingMap,
    /// Receiving server-to-server streams with XEP-0288 bidi, by the pair they carry.
    bidi_in: s2s::BidiMap,
    /// The sessions of [`Kind::S2sIn`]: where a bidirectional stream for a remote domain is
    /// looked for, without a walk over every client's session.
    s2s_receiving: BTreeSet<SessionId>,
    /// XEP-0198: detached sessions and resumption ids.
    sm: sm::SmSessions,
    /// With a database: sessions that have not sent initial presence yet (their account's
    /// offline messages are asked for when they do).
    awaiting_presence: BTreeSet<FullJid>,
    /// Those of `awaiting_presence` that sent a presence the IM machine may not have made
    /// them available by yet: the only ones whose initial presence can have been processed
    /// since the last look.
    presence_sent: BTreeSet<FullJid>,
    /// XEP-0077: accounts being created (a second registration of one is a `conflict`).
    registering: BTreeSet<BareJid>,
    /// Further outgoing connections from our other domains, and pairs asked for in the
    /// reverse direction on bidirectional receiving streams.
    s2s_more: s2s::MoreS2s,
    /// With a database: client stanzas not yet counted as handled for XEP-0198 until the
    /// storage they caused is durable.
    durable: durable::Durable,
}

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
        let mut backend = accounts::Accounts::new(config.domain.clone());
        let mut store = MemoryStore::new();
        for (name, password) in &config.users {
            // `name@domain` for an account of another of our domains.
            let qualified = BareJid::new(name).ok().and_then(|jid| {
                let domain = BareJid::from_parts(None, jid.domain()).ok()?;
                let node = jid.node()?.to_owned();
                config.serves(&domain).then_some((node, domain))
            });
            let (node, domain) = qualified.unwrap_or_else(|| (name.clone(), config.domain.clone()));
            backend.add(&domain, &node, password, config.iterations);
            if let Ok(jid) = BareJid::from_parts(Some(&node), domain.domain()) {
                store.add_account(jid);
            }
        }
        // One IM machine for every domain: users of two of our domains are local to each
        // other (delivery, presence, offline storage), with no hop between machines.
        let mut im_config = config.im.clone();
        for domain in &config.other_domains {
            im_config.domains.insert(domain.domain().to_owned());
        }
        // The hub takes forwards and relays: with envelopes on, the presence the IM machine
        // makes at a session's end is shared bytes too.
        im_config.envelopes = config.stream.envelopes;
        let im = xmpp_im::Server::new(im_config);
        // One list drives the stream features and `disco#info`: the template gets its rows
        // here, once.
        let mut config = config;
        config.stream = config.stream_with_features();
        // Nothing acknowledged is lost: `<a h=''/>` counts a stanza once what it caused is
        // stored (see `durable`).
        config.stream.sm.handled_by_host = config.database.is_some();
        let components = Arc::new(Components::new(&config.components));
        Hub {
            config,
            backend: Arc::new(backend),
            components,
            im,
            store,
            sessions: BTreeMap::new(),
            by_jid: BTreeMap::new(),
            next_id: 1,
            websocket_next: false,
            dirty: Dirty::default(),
            flushing: Vec::new(),
            spare: Spare::default(),
            closed: Vec::new(),
            out: VecDeque::new(),
            log: Log::default(),
            offline: BTreeMap::new(),
            outgoing: BTreeMap::new(),
            bidi_in: BTreeMap::new(),
            s2s_receiving: BTreeSet::new(),
            sm: sm::SmSessions::default(),
            awaiting_presence: BTreeSet::new(),
            presence_sent: BTreeSet::new(),
            registering: BTreeSet::new(),
            s2s_more: s2s::MoreS2s::default(),
            durable: durable::Durable::default(),
        }
    }

    /// Adds accounts whose credentials were derived elsewhere (read from the database),
    /// before the first connection (false, and nothing added, after).
    pub fn add_stored_accounts(
        &mut self,
        accounts: Vec<(BareJid, Vec<xmpp_sasl::StoredCredentials>)>,
    ) -> bool {
        // Every stream holds the backend once it exists: only a fresh hub owns it alone.
        let Some(backend) = Arc::get_mut(&mut self.backend) else {
            return false;
        };
        for (jid, credentials) in accounts {
            if let (Some(node), Ok(domain)) = (jid.node(), BareJid::from_parts(None, jid.domain()))
            {
                backend.add_stored(&domain, node, credentials);
            }
        }
        true
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

    /// The component domain a connection serves, once its handshake succeeded.
    pub fn component(&self, id: SessionId) -> Option<&BareJid> {
        self.sessions.get(&id).and_then(|s| s.component.as_ref())
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
    /// drained by the host for its log. At most [`MAX_LOG_LINES`] wait between two calls;
    /// past that, lines are counted, not kept, and the count ends what the next call gives.
    pub fn take_log(&mut self) -> Vec<String> {
        self.log.take()
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
            .chain(self.sm.next_expiry())
            .min()
    }

    // ----- inputs -----

    /// A new client connection on `transport`. `entropy` feeds its stream ids, SCRAM nonces
    /// and generated resources (the host's CSPRNG in production, a seed in tests).
    pub fn accept(
        &mut self,
        now: Instant,
        transport: Transport,
        entropy: impl Entropy + Send + 'static,
    ) -> SessionId {
        // Under `PlusPolicy::Off` no binding reaches the machine (see `tls_established`).
        let transport = self.config.plus.transport(transport);
        self.open(now, Kind::C2s, transport, entropy)
    }

    /// A new client connection over WebSocket (RFC 7395: `<open/>`/`<close/>` framing, one
    /// element per message, no STARTTLS): `transport` is [`Transport::Tls`] for `wss:`. Feed
    /// its messages with [`handle_message`](Self::handle_message); each
    /// [`HubOutput::Transmit`] of it is one text message.
    pub fn accept_websocket(
        &mut self,
        now: Instant,
        transport: Transport,
        entropy: impl Entropy + Send + 'static,
    ) -> SessionId {
        let transport = self.config.plus.transport(transport);
        self.websocket_next = true;
        let id = self.open(now, Kind::C2s, transport, entropy);
        self.websocket_next = false;
        id
    }

    /// A new XEP-0114 component connection (plain TCP: the protocol has no TLS; serve it on
    /// loopback only). `entropy` feeds its stream id, which the handshake hashes.
    pub fn accept_component(
        &mut self,
        now: Instant,
        entropy: impl Entropy + Send + 'static,
    ) -> SessionId {
        self.open(now, Kind::Component, Transport::Plain, entropy)
    }

    /// A new server-to-server connection from a peer (plain until STARTTLS). `entropy` feeds
    /// its stream ids, which dialback keys hash.
    pub fn accept_s2s(
        &mut self,
        now: Instant,
        entropy: impl Entropy + Send + 'static,
    ) -> SessionId {
        self.open(now, Kind::S2sIn, Transport::Plain, entropy)
    }

    /// Whether session `id` is one of our outgoing server-to-server connections.
    pub fn is_outgoing(&self, id: SessionId) -> bool {
        self.serves_outgoing(id)
    }

    /// Bytes read from connection `id`.
    pub fn handle_input(&mut self, id: SessionId, now: Instant, bytes: &[u8]) {
        self.feed(id, now, bytes, AnyStream::handle_input);
    }

    /// Record and feed peer input to session `id` through `handle`, then flush.
    fn feed(
        &mut self,
        id: SessionId,
        now: Instant,
        bytes: &[u8],
        handle: fn(&mut AnyStream, Instant, &[u8]) -> Result<(), xmpp_stream::ProtocolError>,
    ) {
        let rewritten = self.config.test_rewrite.as_ref().filter(|r| r.input);
        let rewritten = rewritten.map(|r| r.apply(bytes));
        let bytes = rewritten.as_deref().unwrap_or(bytes);
        if let Some(session) = self.sessions.get_mut(&id) {
            session.rec.input(now, bytes);
            if let Err(error) = handle(&mut session.stream, now, bytes) {
                self.log.push(format!("{id}: protocol error: {error}"));
            }
            self.dirty.insert(id);
        }
        self.flush(now);
    }

    /// One whole WebSocket message read from connection `id` (see
    /// [`accept_websocket`](Self::accept_websocket)).
    pub fn handle_message(&mut self, id: SessionId, now: Instant, message: &[u8]) {
        self.feed(id, now, message, AnyStream::handle_message);
    }

    /// The host closes connection `id` with a stream error of its own (a WebSocket frame
    /// the stream cannot take: binary, or over the message bound).
    pub fn close_with_error(&mut self, id: SessionId, now: Instant, error: StreamError) {
        if let Some(session) = self.sessions.get_mut(&id) {
            let _ = session.stream.close_with_error(now, error);
            self.dirty.insert(id);
        }
        self.flush(now);
    }

    /// The TLS handshake asked for by [`HubOutput::StartTls`] finished; `bindings` is the
    /// channel-binding data the TLS library offers (ignored under [`PlusPolicy::Off`]).
    pub fn tls_established(&mut self, id: SessionId, now: Instant, bindings: Vec<ChannelBinding>) {
        let bindings = self.config.plus.bindings(bindings);
        if let Some(session) = self.sessions.get_mut(&id) {
            session.rec.bindings(&bindings);
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
            session.rec.command(now, || "transport-closed".to_owned());
            session.stream.transport_closed(now);
            self.dirty.insert(id);
        }
        self.flush(now);
    }

    /// Time passed: fire due timers (keepalives, negotiation and close deadlines).
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, session) in &mut self.sessions {
            if session.stream.poll_timeout().is_some_and(|t| t <= now) {
                session.rec.command(now, || "timeout".to_owned());
                session.stream.handle_timeout(now);
                self.dirty.insert(*id);
            }
        }
        self.expire_detached(now);
        self.flush(now);
    }

    /// The answer to [`StorageRequest::Load`].
    pub fn storage_loaded(
        &mut self,
        now: Instant,
        id: xmpp_im::LoadId,
        result: Result<xmpp_im::AccountData, xmpp_im::StoreError>,
    ) {
        if let Err(e) = &result {
            self.log.push(format!("storage: load failed: {e}"));
        }
        if self.im.handle_load(id, result).is_err() {
            self.log.push(format!("storage: unknown load {id:?}"));
        }
        self.route_im(now);
        self.flush(now);
    }

    /// The answer to [`StorageRequest::Write`]: what the write acknowledges leaves now.
    pub fn storage_written(
        &mut self,
        now: Instant,
        id: xmpp_im::WriteId,
        result: Result<(), xmpp_im::StoreError>,
    ) {
        if let Err(e) = &result {
            self.log.push(format!("storage: write failed: {e}"));
        }
        if self.im.handle_write(id, result).is_err() {
            self.log.push(format!("storage: unknown write {id:?}"));
        }
        self.route_im(now);
        self.answered(now, durable::Key::Write(id));
        self.flush(now);
    }

    /// The answer to [`StorageRequest::TakeOffline`]: the stored messages, oldest first,
    /// for the session (kept by nobody if it is gone meanwhile: they were taken).
    pub fn offline_taken(&mut self, now: Instant, jid: &FullJid, messages: Vec<Element>) {
        for message in messages {
            self.deliver(now, jid, &message);
        }
        self.flush(now);
    }

    /// [`StorageRequest::StoreOffline`] `id` is durable: the stanza that caused it may now
    /// count as handled (XEP-0198).
    pub fn offline_stored(&mut self, now: Instant, id: u64) {
        self.answered(now, durable::Key::Offline(id));
        self.flush(now);
    }

    /// [`StorageRequest::StoreOffline`] `id` was not stored (the box is full, or the
    /// database failed): it bounces with `service-unavailable` (RFC 6121 §8.5.2.2.1).
    pub fn offline_refused(&mut self, now: Instant, id: u64, stanza: &Element) {
        self.im_bounce(stanza);
        self.route_im(now);
        self.answered(now, durable::Key::Offline(id));
        self.flush(now);
    }

    /// Close every stream with `system-shutdown`.
    pub fn shutdown(&mut self, now: Instant) {
        for (id, session) in &mut self.sessions {
            let error = StreamError::new(StreamErrorCondition::SystemShutdown);
            session.rec.unreplayable();
            if session.stream.close_with_error(now, error).is_ok() {
                self.dirty.insert(*id);
            }
        }
        self.flush(now);
    }

    // ----- internals -----

    /// Open a session of `kind` on `transport` and start its stream.
    fn open(
        &mut self,
        now: Instant,
        kind: Kind,
        transport: Transport,
        entropy: impl Entropy + Send + 'static,
    ) -> SessionId {
        let id = self.reserve_id();
        // Only a recording session taps its entropy: the tap's log grows with every byte
        // drawn, which an unrecorded session would carry for nothing.
        let (stream, rec) = match &self.config.record {
            Some(sink) => {
                let entropy = Tap::new(entropy);
                let rec = Recorder::start(&self.config, kind, sink, now, &transport, &entropy);
                (self.new_stream(kind, entropy), rec)
            }
            None => (self.new_stream(kind, entropy), Recorder::off()),
        };
        self.insert_session(now, id, kind, stream, rec, transport);
        id
    }

    /// A fresh session id.
    fn reserve_id(&mut self) -> SessionId {
        let id = SessionId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Start `stream` on `transport` as session `id`.
    fn insert_session(
        &mut self,
        now: Instant,
        id: SessionId,
        kind: Kind,
        mut stream: AnyStream,
        rec: Recorder,
        transport: Transport,
    ) {
        // A fresh machine always accepts `start`.
        let _ = stream.start(now, transport);
        if kind == Kind::S2sIn {
            self.s2s_receiving.insert(id);
        }
        self.sessions.insert(
            id,
            Box::new(Session {
                stream,
                rec,
                pending: Vec::new(),
                jid: None,
                component: None,
                kind,
            }),
        );
        self.dirty.insert(id);
        self.flush(now);
    }

    /// A stream of `kind` for a new connection, from the configured template.
    fn new_stream(&self, kind: Kind, entropy: impl Entropy + Send + 'static) -> AnyStream {
        match kind {
            Kind::C2s if self.websocket_next => ServerStream::new(
                self.config.stream.clone(),
                entropy,
                Arc::clone(&self.backend),
            )
            .websocket()
            .into(),
            Kind::C2s => ServerStream::new(
                self.config.stream.clone(),
                entropy,
                Arc::clone(&self.backend),
            )
            .into(),
            Kind::Component => ComponentServerStream::new(
                self.config.component_config(),
                entropy,
                Arc::clone(&self.components),
            )
            .into(),
            // Outgoing streams are made in `s2s_connected`, which knows the remote domain;
            // `open` only ever asks for the kinds a listener accepts.
            Kind::S2sIn | Kind::S2sOut => {
                S2sReceivingStream::new(self.config.s2s_config(), entropy).into()
            }
        }
    }

    /// Drain every touched stream, acting on its events, until nothing is left to do.
    fn flush(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop_first() {
            // Drain the stream before acting on its events: what the hub then sends it is
            // queued after these outputs either way, and a recorded transcript keeps the
            // order "input, its outputs, host commands".
            // Into a buffer the hub keeps (taking the session's list cost an allocation
            // per input).
            let mut outputs = std::mem::take(&mut self.flushing);
            if let Some(session) = self.sessions.get_mut(&id) {
                session.take_outputs(now, &mut outputs, &mut self.spare);
            }
            for (output, seq) in outputs.drain(..) {
                match output {
                    Output::Transmit(bytes) => {
                        let bytes = match self.config.test_rewrite.as_ref().filter(|r| !r.input) {
                            Some(rewrite) => rewrite.apply(&bytes),
                            None => bytes,
                        };
                        self.out.push_back(HubOutput::Transmit(id, bytes));
                    }
                    Output::StartTls => self.out.push_back(HubOutput::StartTls(id)),
                    Output::Event(event) => match seq {
                        Some(seq) => {
                            let before = self.before_handling();
                            self.on_event(id, now, event);
                            self.hold_until_durable(now, id, seq, before);
                        }
                        None => self.on_event(id, now, event),
                    },
                    _ => {}
                }
            }
            self.flushing = outputs;
        }
        // Only the sessions that closed during this flush: scanning every session after
        // every input was a per-input cost linear in the number of sessions (at 10 000
        // sessions it held message round trips to seconds).
        for id in std::mem::take(&mut self.closed) {
            if let Some(session) = self.sessions.remove(&id) {
                self.s2s_receiving.remove(&id);
                session.rec.finish();
            }
        }
    }
}
