//! The initiating entity: [`ClientStream`].

use std::collections::VecDeque;

use minidom::Element;
use xmpp_jid::{BareJid, FullJid};
use xmpp_sasl::{
    ChannelBinding, ClientPolicy, Condition, Gs2Binding, Mechanism, ScramKeys, Selection,
};
use xmpp_xml::{
    ContentNamespace, Limits, StanzaError, StanzaErrorCondition, StreamErrorCondition, StreamHeader,
};

use crate::bind;
use crate::config::{Timeouts, TlsPolicy};
use crate::core::{Core, DEFAULT_MAX_OUTPUT_BYTES, Incoming, Phase};
use crate::entropy::{Entropy, random_nonce, random_token};
use crate::error::{ProtocolError, UsageError};
use crate::features::{Advertised, Features, ns};
use crate::flags::SessionFlags;
use crate::output::{CloseReason, Event, Output, Transport};
use crate::sasl::{SaslElement, SaslParseError};
use crate::starttls::TlsElement;
use crate::time::Instant;

/// Characters in the client's SCRAM nonce (6 bits each: 192 bits).
const NONCE_LEN: usize = 32;

/// What the client authenticates with.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// A password (SASLprep'd by `xmpp-sasl`).
    Password(String),
    /// SCRAM keys cached from an earlier login ([`ClientStream::scram_keys`]): no PBKDF2 runs
    /// when the server's salt and iteration count still match, and no password is kept.
    ScramKeys(ScramKeys),
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print secrets.
        match self {
            Credentials::Password(_) => f.write_str("Password(..)"),
            Credentials::ScramKeys(_) => f.write_str("ScramKeys(..)"),
        }
    }
}

/// Client configuration. Build with [`ClientConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The account.
    pub jid: BareJid,
    /// How to authenticate.
    pub credentials: Credentials,
    /// The resource to ask for; `None` lets the server generate one.
    pub resource: Option<String>,
    /// STARTTLS policy (ignored when the transport is already TLS).
    pub tls: TlsPolicy,
    /// The SASL mechanisms the client may use, in its order of preference (default
    /// [`ClientConfig::DEFAULT_MECHANISMS`]). The first one the server offers and the stream
    /// allows is tried first; after a mechanism-level `<failure/>` the next one (see
    /// [`max_auth_attempts`](Self::max_auth_attempts)). Listing a mechanism never overrides
    /// the rules: `-PLUS` needs channel-binding data of a type the server accepts, PLAIN an
    /// encrypted stream (unless [`allow_plain_without_tls`](Self::allow_plain_without_tls)),
    /// and only `-PLUS` (and EXTERNAL) count when
    /// [`require_channel_binding`](Self::require_channel_binding) is set. EXTERNAL (the host's
    /// TLS presents a client certificate) and ANONYMOUS are used only when listed here.
    pub mechanisms: Vec<Mechanism>,
    /// SASL exchanges to start on one stream before giving up, counting the first (default
    /// `u32::MAX`: each listed mechanism at most once, which already bounds the attempts).
    /// 0 counts as 1. The server has its own limit and may close the stream sooner.
    pub max_auth_attempts: u32,
    /// Allow SASL PLAIN on an unencrypted stream (default no).
    pub allow_plain_without_tls: bool,
    /// Accept only channel-bound SCRAM (`-PLUS`) (default no).
    pub require_channel_binding: bool,
    /// Negotiate RFC 3921 legacy sessions when the server lists `<session/>` without
    /// `<optional/>` (default yes).
    pub legacy_session: bool,
    /// Put our JID in the `from` of the stream header before TLS is up (default no: RFC 6120
    /// §4.7.1 lets a client keep its identity off the wire until the stream is encrypted).
    pub from_before_tls: bool,
    /// The `xml:lang` of our stream header.
    pub lang: Option<String>,
    /// Deadlines and keepalive.
    pub timeouts: Timeouts,
    /// Parser bounds.
    pub limits: Limits,
    /// Bytes of output the host has not polled yet that the machine holds before it gives
    /// up on the peer (default 1 MiB). A host stops polling when its writes block, that is
    /// when the peer does not read; past this bound the queued bytes are dropped and the
    /// stream is closed with `resource-constraint` and `Closed`.
    pub max_output_bytes: usize,
    /// Stanzas `send_stanza` queues before negotiation completes; 0 refuses them instead.
    pub max_queued_stanzas: usize,
}

impl ClientConfig {
    /// The default mechanism list, strongest first: SCRAM-SHA-512/256/1-PLUS (used when the
    /// TLS layer gave channel-binding data the server accepts), SCRAM-SHA-512/256/1, then
    /// PLAIN (used only on an encrypted stream unless allowed). No EXTERNAL or ANONYMOUS.
    pub const DEFAULT_MECHANISMS: [Mechanism; 7] = [
        Mechanism::ScramSha512Plus,
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// A configuration for `jid` with a password and the defaults: TLS required, no PLAIN
    /// without TLS, server-chosen resource.
    pub fn new(jid: BareJid, password: impl Into<String>) -> Self {
        ClientConfig {
            jid,
            credentials: Credentials::Password(password.into()),
            resource: None,
            tls: TlsPolicy::Required,
            mechanisms: Self::DEFAULT_MECHANISMS.to_vec(),
            max_auth_attempts: u32::MAX,
            allow_plain_without_tls: false,
            require_channel_binding: false,
            legacy_session: true,
            from_before_tls: false,
            lang: None,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_queued_stanzas: 64,
        }
    }
}

/// Where the client's negotiation is.
enum Step {
    /// Waiting for the server's header and `<stream:features/>`.
    AwaitFeatures,
    /// Sent `<starttls/>`.
    AwaitProceed,
    /// Emitted `StartTls`.
    AwaitTls,
    /// SASL exchange running.
    Sasl(Box<xmpp_sasl::Client>),
    /// Sent `<abort/>` during an exchange with this mechanism; waiting for `<failure/>`.
    SaslAborting(Mechanism),
    /// Sent a bind request.
    Bind {
        id: String,
        requested: bool,
        session: bool,
    },
    /// Sent a legacy session request.
    Session { id: String, jid: FullJid },
    /// Negotiated.
    Ready,
    /// Nothing more to negotiate (closing or closed).
    Done,
}

/// The client (initiating entity) side of a `jabber:client` stream.
///
/// Methods come in four kinds: getters (`&self`), inputs (`handle_*`, `tls_established`,
/// `transport_closed`), commands (`start`, `send_stanza`, `close`, `close_with_error`) and outputs (`poll_*`).
/// After every input or command, drain [`poll_output`](Self::poll_output) until `None` and
/// re-read [`poll_timeout`](Self::poll_timeout).
pub struct ClientStream {
    core: Core,
    config: ClientConfig,
    step: Step,
    bindings: Vec<ChannelBinding>,
    extra_features: Vec<Element>,
    queue: VecDeque<Element>,
    jid: Option<FullJid>,
    scram_keys: Option<ScramKeys>,
    stream_id: Option<String>,
    foreign_from: bool,
    sasl: SaslAttempts,
}

/// The state of SASL fallback on one stream: what the server offered and what was tried.
#[derive(Default)]
struct SaslAttempts {
    /// The server's `<mechanism/>` names, as listed (XEP-0474 hashes this exact list).
    names: Vec<String>,
    /// The server's XEP-0440 channel-binding types, if it listed them.
    binding_types: Option<Vec<String>>,
    /// Mechanisms already tried on this stream, in order.
    tried: Vec<Mechanism>,
}

impl core::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientStream")
            .field("jid", &self.jid)
            .field("flags", &self.core.flags)
            .finish_non_exhaustive()
    }
}

impl ClientStream {
    /// A client that will negotiate with `config` and draw randomness (SCRAM nonces, stanza
    /// ids) from `entropy`. Nothing happens until [`start`](Self::start).
    pub fn new(config: ClientConfig, entropy: impl Entropy + Send + 'static) -> Self {
        ClientStream {
            core: Core::new(
                config.timeouts,
                config.limits.clone(),
                config.max_output_bytes,
                Box::new(entropy),
            ),
            config,
            step: Step::AwaitFeatures,
            bindings: Vec::new(),
            extra_features: Vec::new(),
            queue: VecDeque::new(),
            jid: None,
            scram_keys: None,
            stream_id: None,
            foreign_from: false,
            sasl: SaslAttempts::default(),
        }
    }

    // ----- getters -----

    /// The session flags (Secure, Authenticated, Bound).
    pub fn flags(&self) -> SessionFlags {
        self.core.flags
    }

    /// The bound full JID, once negotiated.
    pub fn jid(&self) -> Option<&FullJid> {
        self.jid.as_ref()
    }

    /// Whether stanzas may flow.
    pub fn is_negotiated(&self) -> bool {
        matches!(self.step, Step::Ready) && self.core.phase == Phase::Open
    }

    /// Whether `Closed` has been emitted.
    pub fn is_closed(&self) -> bool {
        self.core.phase == Phase::Closed
    }

    /// The server's id for the current stream.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// SCRAM keys from the last successful SCRAM login, for [`Credentials::ScramKeys`].
    pub fn scram_keys(&self) -> Option<&ScramKeys> {
        self.scram_keys.as_ref()
    }

    // ----- outputs -----

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.core.poll_output()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    // ----- commands -----

    /// Open the stream on `transport`. With [`Transport::Tls`] (XEP-0368 direct TLS) the
    /// stream starts secure and STARTTLS is skipped.
    pub fn start(&mut self, now: Instant, transport: Transport) -> Result<(), UsageError> {
        if let Some(resource) = &self.config.resource {
            if self.config.jid.with_resource(resource).is_err() {
                return Err(UsageError::InvalidConfig(
                    "the resource is not a valid resourcepart",
                ));
            }
        }
        self.core.start(now)?;
        if let Transport::Tls(bindings) = transport {
            self.core.flags |= SessionFlags::SECURE;
            self.bindings = bindings;
        }
        self.open_stream();
        Ok(())
    }

    /// Send a stanza (`<message/>`, `<presence/>` or `<iq/>` in `jabber:client`). Before
    /// negotiation completes it is queued (a copy, up to `max_queued_stanzas`) and sent right
    /// after; it never leaks onto an unauthenticated stream. Takes the stanza by reference
    /// like [`ServerStream::send_stanza`](crate::ServerStream::send_stanza): once negotiated
    /// it is only serialized, so the host keeps (and may resend or fan out) its element.
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        self.core.tick(now);
        self.core.check_open()?;
        check_stanza(stanza)?;
        if self.is_negotiated() {
            let bytes = self
                .core
                .serialize(stanza)
                .ok_or(UsageError::InvalidStanza("not serializable as XML 1.0"))?;
            if self.core.send_bytes(bytes) {
                Ok(())
            } else {
                // The output bound closed the stream: the stanza was not queued.
                Err(UsageError::Closed)
            }
        } else if self.queue.len() < self.config.max_queued_stanzas {
            self.queue.push_back(stanza.clone());
            Ok(())
        } else {
            Err(UsageError::NotNegotiated)
        }
    }

    /// Close the stream: send `</stream:stream>` and wait (up to the close timeout) for the
    /// server's. `Closed { reason: Graceful }` follows.
    pub fn close(&mut self, now: Instant) -> Result<(), UsageError> {
        self.core.tick(now);
        self.core.check_open()?;
        self.step = Step::Done;
        self.core.close(CloseReason::Requested);
        Ok(())
    }

    /// Close the stream with a stream error the host chose (`policy-violation` for a server
    /// that misbehaves at the application level, `undefined-condition` with an
    /// application-specific child, ...), as [`ServerStream::close_with_error`] does on the
    /// other side. `Closed { ProtocolError }` follows.
    ///
    /// [`ServerStream::close_with_error`]: crate::ServerStream::close_with_error
    pub fn close_with_error(
        &mut self,
        now: Instant,
        error: xmpp_xml::StreamError,
    ) -> Result<(), UsageError> {
        self.core.tick(now);
        self.core.check_open()?;
        self.step = Step::Done;
        let _ = self.core.fail(ProtocolError::from_stream_error(
            error,
            "closed by the host",
        ));
        Ok(())
    }

    // ----- inputs -----

    /// Bytes from the server, in any chunking.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        if !self.core.feed(now, bytes)? {
            return Ok(());
        }
        while let Some(incoming) = self.core.next_incoming()? {
            match incoming {
                Incoming::Header(header) => self.on_header(&header)?,
                Incoming::Element(element) => self.on_element(element)?,
            }
        }
        Ok(())
    }

    /// Time passed: fire due timers (keepalive, negotiation and close deadlines). Calling it
    /// early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }

    /// The TLS handshake the machine asked for with [`Output::StartTls`] finished; `bindings`
    /// is the channel-binding data the TLS library offers (possibly none). The stream
    /// restarts over TLS.
    pub fn tls_established(
        &mut self,
        now: Instant,
        bindings: Vec<ChannelBinding>,
    ) -> Result<(), UsageError> {
        self.core.tick(now);
        if !matches!(self.step, Step::AwaitTls) || self.core.phase != Phase::AwaitingTls {
            return Err(UsageError::NotExpectingTls);
        }
        self.bindings = bindings;
        self.core.flags |= SessionFlags::SECURE;
        self.core.phase = Phase::Open;
        self.core.event(Event::Secured);
        self.restart();
        Ok(())
    }

    /// The transport closed (EOF or error). Emits `Closed` if not already.
    pub fn transport_closed(&mut self, now: Instant) {
        self.core.tick(now);
        self.step = Step::Done;
        self.core.transport_closed();
    }

    // ----- negotiation -----

    fn header(&self) -> StreamHeader {
        let mut header = StreamHeader::new(ContentNamespace::Client);
        header.to = Some(self.config.jid.domain().to_owned());
        if self.core.flags.contains(SessionFlags::SECURE) || self.config.from_before_tls {
            header.from = Some(self.config.jid.as_str().to_owned());
        }
        header.lang.clone_from(&self.config.lang);
        header
    }

    fn open_stream(&mut self) {
        let header = self.header();
        self.core.send_header(&header);
        self.step = Step::AwaitFeatures;
    }

    /// Restart: one place, used after TLS and after SASL success.
    fn restart(&mut self) {
        self.core.restart();
        self.stream_id = None;
        self.open_stream();
    }

    fn on_header(&mut self, header: &StreamHeader) -> Result<(), ProtocolError> {
        if header.version.is_none() {
            return Err(self.fail(
                StreamErrorCondition::UnsupportedVersion,
                "server stream has no version 1.0",
            ));
        }
        if header.content_namespace != Some(ContentNamespace::Client) {
            return Err(self.fail(
                StreamErrorCondition::InvalidNamespace,
                "server stream is not jabber:client",
            ));
        }
        // A `from` other than the domain we asked for is only fatal once the server goes on
        // to negotiate: a stream error that follows (host-unknown...) is reported as such.
        self.foreign_from = header.from.as_deref().is_some_and(|from| {
            let ours = self.config.jid.domain();
            !xmpp_jid::BareJid::new(from)
                .is_ok_and(|jid| jid.node().is_none() && jid.domain() == ours)
        });
        self.stream_id.clone_from(&header.id);
        self.core.event(Event::StreamOpened {
            id: header.id.clone(),
            from: header.from.clone(),
            lang: header.lang.clone(),
        });
        Ok(())
    }

    fn fail(&mut self, condition: StreamErrorCondition, detail: &'static str) -> ProtocolError {
        self.step = Step::Done;
        self.core.fail(ProtocolError::new(condition, detail))
    }

    fn give_up(&mut self, reason: CloseReason) {
        self.step = Step::Done;
        self.core.close(reason);
    }

    fn on_element(&mut self, element: Element) -> Result<(), ProtocolError> {
        match &self.step {
            Step::AwaitFeatures => {
                if self.foreign_from {
                    Err(self.fail(
                        StreamErrorCondition::InvalidFrom,
                        "server stream is from another domain",
                    ))
                } else if element.is("features", ns::STREAMS) {
                    self.on_features(&Features::parse(&element));
                    Ok(())
                } else {
                    Err(self.fail(
                        StreamErrorCondition::UnsupportedStanzaType,
                        "expected stream features",
                    ))
                }
            }
            Step::AwaitProceed => match TlsElement::parse(&element) {
                Some(TlsElement::Proceed) => {
                    if self.core.has_unparsed_input() {
                        // Bytes the server (or an attacker on the path) pipelined after
                        // <proceed/> would be read as if they had come through TLS.
                        return Err(self.fail(
                            StreamErrorCondition::PolicyViolation,
                            "data pipelined after <proceed/>",
                        ));
                    }
                    self.step = Step::AwaitTls;
                    self.core.start_tls();
                    Ok(())
                }
                Some(TlsElement::Failure) => {
                    self.give_up(CloseReason::TlsFailed);
                    Ok(())
                }
                _ => Err(self.fail(
                    StreamErrorCondition::UnsupportedStanzaType,
                    "expected <proceed/> or <failure/>",
                )),
            },
            Step::Sasl(_) | Step::SaslAborting(_) => self.on_sasl(&element),
            Step::Bind { .. } | Step::Session { .. } => self.on_bind_reply(&element),
            Step::Ready => {
                if is_stanza(&element) {
                    self.core.event(Event::Stanza(element));
                } else {
                    self.core.event(Event::Nonza(element));
                }
                Ok(())
            }
            Step::AwaitTls | Step::Done => {
                // Closing: the server may still send stanzas until its close arrives.
                if self.core.phase == Phase::Closing && is_stanza(&element) {
                    self.core.event(Event::Stanza(element));
                }
                Ok(())
            }
        }
    }

    fn on_features(&mut self, features: &Features) {
        let flags = self.core.flags;
        let secure = flags.contains(SessionFlags::SECURE);
        let tls_wanted = self.config.tls != TlsPolicy::Disabled;
        let next = features
            .next_to_negotiate(flags, |item| match item {
                Advertised::StartTls { .. } => tls_wanted,
                Advertised::Mechanisms(_) | Advertised::Bind => true,
                _ => false,
            })
            .cloned();
        let tls_missing = !secure && self.config.tls == TlsPolicy::Required;
        match next {
            Some(Advertised::StartTls { .. }) => {
                self.core.send(&TlsElement::StartTls.to_element());
                self.step = Step::AwaitProceed;
            }
            Some(_) if tls_missing => self.give_up(CloseReason::TlsFailed),
            Some(Advertised::Mechanisms(names)) => {
                self.start_sasl(&names, features.channel_binding_types());
            }
            Some(Advertised::Bind) => {
                self.extra_features = features.others().cloned().collect();
                let session = self.config.legacy_session
                    && features.get(crate::features::FeatureKind::Session)
                        == Some(&Advertised::Session { optional: false });
                self.start_bind(self.config.resource.is_some(), session);
            }
            _ => {
                let reason = if tls_missing
                    || matches!(
                        features.get(crate::features::FeatureKind::StartTls),
                        Some(Advertised::StartTls { required: true })
                    ) {
                    CloseReason::TlsFailed
                } else if !flags.contains(SessionFlags::AUTHENTICATED) {
                    CloseReason::NoMechanism
                } else {
                    CloseReason::FeatureMissing(crate::features::FeatureKind::Bind)
                };
                self.give_up(reason);
            }
        }
    }

    /// The server listed `<mechanisms/>`: start with the most preferred usable one.
    fn start_sasl(&mut self, names: &[String], binding_types: Option<&[String]>) {
        self.sasl = SaslAttempts {
            names: names.to_vec(),
            binding_types: binding_types.map(<[String]>::to_vec),
            tried: Vec::new(),
        };
        match self.next_mechanism() {
            Some(selection) => self.begin_sasl(selection),
            None => self.give_up(CloseReason::NoMechanism),
        }
    }

    /// The next mechanism to try on this stream: the most preferred of the configured list
    /// that the server offered, the policy allows and has not been tried. Once a
    /// channel-bound mechanism (`-PLUS`, or EXTERNAL over the TLS client certificate) has
    /// been tried, only channel-bound ones remain: see [`may_fall_back`] for why.
    fn next_mechanism(&self) -> Option<Selection> {
        let secure = self.core.flags.contains(SessionFlags::SECURE);
        let offered: Vec<Mechanism> = self
            .sasl
            .names
            .iter()
            .filter_map(|name| name.parse().ok())
            .collect();
        let server_types: Option<Vec<xmpp_sasl::ChannelBindingType>> = self
            .sasl
            .binding_types
            .as_ref()
            .map(|types| types.iter().filter_map(|t| t.parse().ok()).collect());
        let listed = |m: Mechanism| self.config.mechanisms.contains(&m);
        let policy = ClientPolicy::new()
            .tls(secure)
            .binding_types(if secure {
                self.bindings.iter().map(ChannelBinding::kind).collect()
            } else {
                Vec::new()
            })
            .password(true)
            .certificate(listed(Mechanism::External))
            .allow_anonymous(listed(Mechanism::Anonymous))
            .allow_plain_without_tls(self.config.allow_plain_without_tls)
            .require_channel_binding(self.config.require_channel_binding)
            .preference(self.config.mechanisms.clone());
        let bound_tried = self.sasl.tried.iter().any(|m| is_channel_bound(*m));
        xmpp_sasl::acceptable_mechanisms(&offered, server_types.as_deref(), &policy)
            .into_iter()
            .filter(|s| !self.sasl.tried.contains(&s.mechanism))
            .find(|s| !bound_tried || is_channel_bound(s.mechanism))
    }

    /// Send `<auth/>` for `selection`.
    fn begin_sasl(&mut self, selection: Selection) {
        self.sasl.tried.push(selection.mechanism);
        let secure = self.core.flags.contains(SessionFlags::SECURE);
        let nonce = random_nonce(self.core.entropy.as_mut(), NONCE_LEN);
        let authcid = self.config.jid.node().unwrap_or_default().to_owned();
        let mut sasl = xmpp_sasl::ClientConfig::new(authcid, nonce)
            .gs2(selection.gs2)
            .advertised(self.sasl.names.clone(), self.sasl.binding_types.clone());
        match &self.config.credentials {
            Credentials::Password(password) => sasl = sasl.password(password),
            Credentials::ScramKeys(keys) => sasl = sasl.cached_keys(keys.clone()),
        }
        if secure && !matches!(selection.gs2, Gs2Binding::None) {
            for binding in &self.bindings {
                sasl = sasl.channel_binding(binding.clone());
            }
        }
        let started = xmpp_sasl::Client::new(selection.mechanism, sasl).and_then(|mut client| {
            let initial = client.start()?;
            Ok((client, initial))
        });
        match started {
            Ok((client, initial)) => {
                let auth = SaslElement::Auth {
                    mechanism: selection.mechanism.to_string(),
                    initial,
                };
                self.core.send(&auth.to_element());
                self.step = Step::Sasl(Box::new(client));
            }
            Err(_) => self.give_up(CloseReason::NoMechanism),
        }
    }

    /// The server answered `<failure/>` to an exchange with `mechanism`: report it, then try
    /// the next mechanism or give up.
    fn on_sasl_failure(
        &mut self,
        mechanism: Mechanism,
        condition: String,
        text: Option<String>,
        aborted_by_us: bool,
    ) {
        let attempts = u32::try_from(self.sasl.tried.len()).unwrap_or(u32::MAX);
        let next = if !aborted_by_us
            && may_fall_back(&condition)
            && attempts < self.config.max_auth_attempts
        {
            self.next_mechanism()
        } else {
            None
        };
        self.core.event(Event::SaslAttemptFailed {
            mechanism,
            condition: condition.clone(),
            text: text.clone(),
            next: next.map(|s| s.mechanism),
        });
        match next {
            Some(selection) => self.begin_sasl(selection),
            None => self.give_up(CloseReason::AuthenticationFailed { condition, text }),
        }
    }

    fn on_sasl(&mut self, element: &Element) -> Result<(), ProtocolError> {
        let parsed = match SaslElement::parse(element) {
            Ok(parsed) => parsed,
            Err(SaslParseError::Encoding) => {
                return Err(self.fail(
                    StreamErrorCondition::BadFormat,
                    "SASL payload is not base64",
                ));
            }
            Err(SaslParseError::Unknown) => {
                return Err(self.fail(
                    StreamErrorCondition::UnsupportedStanzaType,
                    "expected a SASL element",
                ));
            }
        };
        let aborting = matches!(self.step, Step::SaslAborting(_));
        match parsed {
            SaslElement::Challenge(data) if !aborting => {
                let Step::Sasl(client) = &mut self.step else {
                    return Ok(());
                };
                if let Ok(response) = client.step(data.as_deref().unwrap_or_default()) {
                    self.core
                        .send(&SaslElement::Response(Some(response)).to_element());
                } else {
                    // The server's challenge is unacceptable (bad nonce, too few
                    // iterations, downgrade detected): abort the exchange.
                    let mechanism = client.mechanism();
                    self.core.send(&SaslElement::Abort.to_element());
                    self.step = Step::SaslAborting(mechanism);
                }
                Ok(())
            }
            SaslElement::Success(data) if !aborting => {
                let Step::Sasl(client) = &mut self.step else {
                    return Ok(());
                };
                if client.finish(data.as_deref()).is_err() {
                    self.give_up(CloseReason::ServerNotVerified);
                    return Ok(());
                }
                let mechanism = client.mechanism();
                self.scram_keys = client.scram_keys().cloned();
                // The offer and the attempts are not needed once authenticated: do not keep
                // them for the life of the stream.
                self.sasl = SaslAttempts::default();
                self.core.flags |= SessionFlags::AUTHENTICATED;
                self.core.event(Event::Authenticated {
                    jid: self.config.jid.clone(),
                    mechanism,
                });
                self.restart();
                Ok(())
            }
            SaslElement::Challenge(_) | SaslElement::Success(_) => Ok(()),
            SaslElement::Failure { condition, text } => {
                let mechanism = match &self.step {
                    Step::Sasl(client) => client.mechanism(),
                    Step::SaslAborting(mechanism) => *mechanism,
                    _ => return Ok(()),
                };
                self.on_sasl_failure(mechanism, condition, text, aborting);
                Ok(())
            }
            SaslElement::Auth { .. } | SaslElement::Response(_) | SaslElement::Abort => Err(self
                .fail(
                    StreamErrorCondition::UnsupportedStanzaType,
                    "server sent a client-side SASL element",
                )),
        }
    }

    fn new_id(&mut self) -> String {
        random_token(self.core.entropy.as_mut(), 6)
    }

    fn start_bind(&mut self, requested: bool, session: bool) {
        let id = self.new_id();
        let resource = if requested {
            self.config.resource.clone()
        } else {
            None
        };
        self.core
            .send(&bind::bind_request(&id, resource.as_deref()));
        self.step = Step::Bind {
            id,
            requested,
            session,
        };
    }

    fn on_bind_reply(&mut self, element: &Element) -> Result<(), ProtocolError> {
        let expected = match &self.step {
            Step::Bind { id, .. } | Step::Session { id, .. } => id.clone(),
            _ => return Ok(()),
        };
        if !element.is("iq", ns::JABBER_CLIENT) || element.attr("id") != Some(expected.as_str()) {
            return Err(self.fail(
                StreamErrorCondition::UnsupportedStanzaType,
                "expected the bind or session reply",
            ));
        }
        if bind::is_iq(element, "error") {
            let error = element
                .get_child("error", ns::JABBER_CLIENT)
                .and_then(|e| StanzaError::from_element(e).ok())
                .unwrap_or_else(|| StanzaError::new(StanzaErrorCondition::UndefinedCondition));
            if let Step::Bind {
                requested: true,
                session,
                ..
            } = self.step
            {
                if error.condition == StanzaErrorCondition::Conflict {
                    // RFC 6120 §7.7.2.2: on conflict, let the server pick a resource.
                    self.start_bind(false, session);
                    return Ok(());
                }
            }
            self.give_up(CloseReason::BindFailed(error));
            return Ok(());
        }
        if !bind::is_iq(element, "result") {
            return Err(self.fail(
                StreamErrorCondition::UnsupportedStanzaType,
                "bind reply is not a result",
            ));
        }
        match std::mem::replace(&mut self.step, Step::Done) {
            Step::Bind { session, .. } => {
                let jid = bind::bound_jid(element).and_then(|text| FullJid::new(&text).ok());
                let Some(jid) = jid.filter(|jid| jid.to_bare() == self.config.jid) else {
                    return Err(self.fail(
                        StreamErrorCondition::InvalidXml,
                        "bind result carries no full JID of our account",
                    ));
                };
                if session {
                    let id = self.new_id();
                    self.core.send(&bind::session_request(&id));
                    self.step = Step::Session { id, jid };
                } else {
                    self.ready(jid);
                }
            }
            Step::Session { jid, .. } => self.ready(jid),
            other => self.step = other,
        }
        Ok(())
    }

    fn ready(&mut self, jid: FullJid) {
        self.step = Step::Ready;
        self.jid = Some(jid.clone());
        self.core.negotiated();
        self.core.event(Event::Negotiated {
            jid,
            extra_features: std::mem::take(&mut self.extra_features),
        });
        while let Some(stanza) = self.queue.pop_front() {
            if let Some(bytes) = self.core.serialize(&stanza) {
                if !self.core.send_bytes(bytes) {
                    break;
                }
            }
        }
    }
}

/// Whether a `<failure/>` with `condition` lets the client try its next mechanism.
///
/// Only the three conditions that say "not this mechanism, here" fall back:
/// `invalid-mechanism` (not offered after all), `mechanism-too-weak` (server policy wants a
/// stronger one) and `encryption-required` (this one needs TLS). The server has not judged
/// the credentials then, so another mechanism may well succeed.
///
/// Everything else ends the attempts:
/// - `not-authorized`, `credentials-expired`, `account-disabled`, `invalid-authzid`: the
///   credentials or the account are wrong. Another mechanism carries the same credentials,
///   so a retry is wasted, counts against the server's attempt limit (it may lock the
///   account), and with a weaker mechanism (PLAIN) it would hand the password to whoever
///   answered.
/// - `malformed-request`, `incorrect-encoding`: servers also send these when a GS2 header says
///   `y` (channel binding supported by the client, thought unsupported by the server) on a
///   server that does bind, which is how RFC 5802 detects a stripped `-PLUS`. Falling back
///   there would complete the downgrade the check exists to stop.
/// - `temporary-auth-failure`: the server's own trouble ("try again later"), not the
///   mechanism's.
/// - `aborted`, and any condition this crate does not know.
///
/// Orthogonally, a fallback never goes from a channel-bound mechanism to an unbound one
/// ([`ClientStream::next_mechanism`]): an attacker terminating TLS cannot complete `-PLUS`,
/// but could answer it with a forged `invalid-mechanism` and relay the unbound retry.
/// XEP-0474 keeps working across attempts because every attempt hashes the server's full,
/// original `<mechanisms/>` list; a client-side abort (downgrade detected, bad nonce, weak
/// iteration count) never falls back either.
fn may_fall_back(condition: &str) -> bool {
    matches!(
        condition.parse::<Condition>(),
        Ok(Condition::InvalidMechanism
            | Condition::MechanismTooWeak
            | Condition::EncryptionRequired)
    )
}

/// Whether `mechanism` is tied to the TLS session (so falling back from it to one that is not
/// would give a TLS-terminating attacker what channel binding denies it).
fn is_channel_bound(mechanism: Mechanism) -> bool {
    mechanism.is_plus() || mechanism == Mechanism::External
}

/// Whether `element` is a stanza of `jabber:client`.
pub(crate) fn is_stanza(element: &Element) -> bool {
    element.has_ns(ns::JABBER_CLIENT) && matches!(element.name(), "message" | "presence" | "iq")
}

/// A host stanza must be a `jabber:client` stanza.
pub(crate) fn check_stanza(stanza: &Element) -> Result<(), UsageError> {
    if is_stanza(stanza) {
        Ok(())
    } else {
        Err(UsageError::InvalidStanza(
            "not a message, presence or iq in jabber:client",
        ))
    }
}
