//! The receiving entity: [`ServerStream`].

use minidom::Element;
use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_sasl::{ChannelBinding, Mechanism, ServerStep};
use xmpp_xml::{
    ContentNamespace, Limits, StanzaError, StanzaErrorCondition, StreamErrorCondition, StreamHeader,
};

use crate::backend::ServerBackend;
use crate::bind;
use crate::client::{check_stanza, is_stanza};
use crate::config::{Timeouts, TlsPolicy};
use crate::core::{Core, DEFAULT_MAX_OUTPUT_BYTES, Incoming, Phase};
use crate::entropy::{Entropy, random_nonce, random_token};
use crate::error::{ProtocolError, UsageError};
use crate::features::{Advertised, FEATURES, FeatureKind, Features, ns};
use crate::flags::SessionFlags;
use crate::output::{CloseReason, Event, Output, Transport};
use crate::sasl::{SaslElement, SaslParseError};
use crate::starttls::TlsElement;
use crate::time::Instant;

/// Random bytes in a stream id (160 bits, RFC 6120 §4.7.3 asks for at least 128).
const STREAM_ID_BYTES: usize = 20;

/// Server configuration. Build with [`ServerConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The domain this server answers for (the stream `to` the client must use).
    pub domain: BareJid,
    /// STARTTLS policy.
    pub tls: TlsPolicy,
    /// The SASL mechanisms to offer, in the order listed (default
    /// [`ServerConfig::DEFAULT_MECHANISMS`]). Like [`ClientConfig::mechanisms`] on the other
    /// side, listing never overrides the rules: each connection lists only what it can run
    /// (`-PLUS` needs TLS and binding data, PLAIN TLS unless
    /// [`allow_plain_without_tls`](Self::allow_plain_without_tls)); EXTERNAL and ANONYMOUS are
    /// never offered by this machine.
    ///
    /// [`ClientConfig::mechanisms`]: crate::ClientConfig::mechanisms
    pub mechanisms: Vec<Mechanism>,
    /// Offer PLAIN on an unencrypted stream (default no).
    pub allow_plain_without_tls: bool,
    /// Failed SASL attempts tolerated before the stream is closed (RFC 6120 §6.4.5 suggests
    /// 2 to 5; default 3).
    pub max_auth_attempts: u32,
    /// List `<session><optional/></session>` after authentication for old clients (default
    /// yes) and answer their session requests.
    pub legacy_session: bool,
    /// The `xml:lang` of our stream header when the client gives none.
    pub lang: String,
    /// List the XEP-0440 channel-binding types we support (default yes), so clients that
    /// cannot do `tls-unique` (TLS 1.3) still pick a `-PLUS` mechanism.
    pub advertise_channel_binding_types: bool,
    /// XEP-0474 SASL downgrade protection in SCRAM challenges (default yes).
    pub downgrade_protection: bool,
    /// Characters of the server's part of the SCRAM nonce (default 32, 6 bits each).
    pub scram_nonce_len: usize,
    /// Deadlines and keepalive.
    pub timeouts: Timeouts,
    /// Parser bounds.
    pub limits: Limits,
    /// Bytes of output the host has not polled yet that the machine holds before it gives
    /// up on the peer (default 1 MiB). A host stops polling when its writes block, that is
    /// when the peer does not read; past this bound the queued bytes are dropped and the
    /// stream is closed with `resource-constraint` and `Closed`.
    pub max_output_bytes: usize,
}

impl ServerConfig {
    /// The default offer, strongest first: SCRAM-SHA-512/256/1-PLUS (when the TLS layer gave
    /// binding data), SCRAM-SHA-512/256/1, PLAIN (on an encrypted stream unless allowed).
    /// The same list as [`ClientConfig::DEFAULT_MECHANISMS`](crate::ClientConfig::DEFAULT_MECHANISMS).
    pub const DEFAULT_MECHANISMS: [Mechanism; 7] = crate::ClientConfig::DEFAULT_MECHANISMS;

    /// A configuration for `domain` with the defaults: STARTTLS required, default mechanisms,
    /// 3 attempts, optional legacy session, `en`.
    pub fn new(domain: BareJid) -> Self {
        ServerConfig {
            domain,
            tls: TlsPolicy::Required,
            mechanisms: Self::DEFAULT_MECHANISMS.to_vec(),
            allow_plain_without_tls: false,
            max_auth_attempts: 3,
            legacy_session: true,
            lang: "en".to_owned(),
            advertise_channel_binding_types: true,
            downgrade_protection: true,
            scram_nonce_len: 32,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// Where the server's negotiation is.
enum Step {
    /// Waiting for the client's header.
    AwaitHeader,
    /// Features sent; waiting for `<starttls/>`, `<auth/>` or a bind request.
    AwaitRequest,
    /// Sent `<proceed/>`, emitted `StartTls`.
    AwaitTls,
    /// SASL exchange running.
    Sasl(Box<xmpp_sasl::Server>),
    /// Negotiated.
    Ready,
    /// Closing or closed.
    Done,
}

/// The server (receiving entity) side of a `jabber:client` stream.
///
/// Methods come in four kinds: getters (`&self`), inputs (`handle_*`, `tls_established`,
/// `transport_closed`), commands (`start`, `send_stanza`, `close`, `close_with_error`) and outputs (`poll_*`).
/// After every input or command, drain [`poll_output`](Self::poll_output) until `None` and
/// re-read [`poll_timeout`](Self::poll_timeout).
pub struct ServerStream {
    core: Core,
    config: ServerConfig,
    backend: Box<dyn ServerBackend + Send>,
    step: Step,
    bindings: Vec<ChannelBinding>,
    account: Option<BareJid>,
    jid: Option<FullJid>,
    failed_attempts: u32,
    stream_id: Option<String>,
    from_attr: minidom::rxml::NcName,
}

impl core::fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerStream")
            .field("jid", &self.jid)
            .field("flags", &self.core.flags)
            .finish_non_exhaustive()
    }
}

impl ServerStream {
    /// A server stream for one accepted connection. `entropy` supplies stream ids, SCRAM
    /// nonces and generated resources; `backend` authenticates and approves bindings.
    pub fn new(
        config: ServerConfig,
        entropy: impl Entropy + Send + 'static,
        backend: impl ServerBackend + Send + 'static,
    ) -> Self {
        ServerStream {
            core: Core::new(
                config.timeouts,
                config.limits.clone(),
                config.max_output_bytes,
                Box::new(entropy),
            ),
            config,
            backend: Box::new(backend),
            step: Step::AwaitHeader,
            bindings: Vec::new(),
            account: None,
            jid: None,
            failed_attempts: 0,
            stream_id: None,
            from_attr: crate::codec::attr_name("from"),
        }
    }

    // ----- getters -----

    /// The session flags (Secure, Authenticated, Bound).
    pub fn flags(&self) -> SessionFlags {
        self.core.flags
    }

    /// The authenticated account, once SASL succeeded.
    pub fn account(&self) -> Option<&BareJid> {
        self.account.as_ref()
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

    /// Our id for the current stream.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    // ----- outputs -----

    /// The next output, in order. On a negotiated stream this is also where buffered input is
    /// processed, one stanza at a time (see [`handle_input`](Self::handle_input)).
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.core.input_pending && !self.core.has_output() {
            // An error is queued as the stream error and `Closed`, and returned by every later
            // input.
            let _ = self.process_input(true);
        }
        self.core.poll_output()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    // ----- commands -----

    /// Begin serving the connection on `transport` ([`Transport::Tls`] for XEP-0368 direct
    /// TLS). Arms the negotiation deadline; then feed the client's bytes.
    pub fn start(&mut self, now: Instant, transport: Transport) -> Result<(), UsageError> {
        self.core.start(now)?;
        if let Transport::Tls(bindings) = transport {
            self.core.flags |= SessionFlags::SECURE;
            self.bindings = bindings;
        }
        self.expect_header();
        Ok(())
    }

    /// Send a stanza to the client on a negotiated stream.
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.core.check_open()?;
        check_stanza(stanza)?;
        if !self.is_negotiated() {
            return Err(UsageError::NotNegotiated);
        }
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
    }

    /// Close the stream gracefully.
    pub fn close(&mut self, now: Instant) -> Result<(), UsageError> {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.core.check_open()?;
        if !self.core.header_sent() {
            self.send_header(None, None);
        }
        self.step = Step::Done;
        self.core.close(CloseReason::Requested);
        Ok(())
    }

    /// Close the stream with a stream error the host chose (`system-shutdown`, `conflict`
    /// when a newer session replaced this one, `see-other-host`...).
    pub fn close_with_error(
        &mut self,
        now: Instant,
        error: xmpp_xml::StreamError,
    ) -> Result<(), UsageError> {
        let _ = self.process_input(false);
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

    /// Bytes from the client, in any chunking.
    ///
    /// During negotiation every complete element is processed here, and a protocol error in
    /// `bytes` is returned. Once the stream is negotiated, stanzas are processed as the host
    /// drains [`poll_output`](Self::poll_output): this call processes input up to the first
    /// output, and each `poll_output` that finds the queue empty processes the next stanza.
    /// So a read full of small stanzas never holds them all as queued trees at once (memory,
    /// and allocator caches stay warm), and a host that stops polling because its writes
    /// block stops consuming input too. A protocol error found while polling is reported
    /// there (the stream error is transmitted and `Closed` follows) and returned by every
    /// later input. Every other input and command first processes whatever input is still
    /// pending, so the order of outputs never depends on when the host polled.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.process_input(false)?;
        if !self.core.feed(now, bytes)? {
            return Ok(());
        }
        self.core.input_pending = true;
        self.process_input(true)
    }

    /// Processes fed input until none is left, or (`lazy`, on a negotiated stream) until an
    /// output is queued.
    fn process_input(&mut self, lazy: bool) -> Result<(), ProtocolError> {
        while self.core.input_pending {
            if lazy && matches!(self.step, Step::Ready) && self.core.has_output() {
                return Ok(());
            }
            match self.core.next_incoming() {
                Ok(Some(Incoming::Header(header))) => self.on_header(&header)?,
                Ok(Some(Incoming::Element(element))) => self.on_element(element)?,
                Ok(None) => self.core.input_pending = false,
                Err(error) => {
                    self.core.input_pending = false;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Time passed: fire due timers. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.process_input(false);
        self.core.handle_timeout(now);
    }

    /// The TLS handshake requested by [`Output::StartTls`] finished; `bindings` is the
    /// channel-binding data the TLS library offers. The client restarts the stream next.
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

    /// The transport closed. Emits `Closed` if not already.
    pub fn transport_closed(&mut self, now: Instant) {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.step = Step::Done;
        self.core.transport_closed();
    }

    // ----- negotiation -----

    fn expect_header(&mut self) {
        self.step = Step::AwaitHeader;
        let mut fallback = StreamHeader::new(ContentNamespace::Client);
        fallback.from = Some(self.config.domain.as_str().to_owned());
        self.core.fallback_header = Some(fallback);
    }

    /// Restart: one place, used after TLS and after SASL success.
    fn restart(&mut self) {
        self.core.restart();
        self.stream_id = None;
        self.expect_header();
    }

    fn fail(&mut self, condition: StreamErrorCondition, detail: &'static str) -> ProtocolError {
        self.step = Step::Done;
        self.core.fail(ProtocolError::new(condition, detail))
    }

    fn send_header(&mut self, to: Option<String>, lang: Option<String>) {
        let id = random_token(self.core.entropy.as_mut(), STREAM_ID_BYTES);
        let mut header = StreamHeader::new(ContentNamespace::Client);
        header.from = Some(self.config.domain.as_str().to_owned());
        header.id = Some(id.clone());
        header.to = to;
        header.lang = Some(lang.unwrap_or_else(|| self.config.lang.clone()));
        self.core.send_header(&header);
        self.stream_id = Some(id);
    }

    fn on_header(&mut self, header: &StreamHeader) -> Result<(), ProtocolError> {
        if !matches!(self.step, Step::AwaitHeader) {
            return Err(self.fail(StreamErrorCondition::InvalidXml, "second stream header"));
        }
        // The client's `from`, echoed as our `to` when it is a valid JID (RFC 6120 §4.7.2).
        let client = match header.from.as_deref().map(Jid::new) {
            None => None,
            Some(Ok(jid)) => Some(jid.as_str().to_owned()),
            Some(Err(_)) => {
                self.send_header(None, header.lang.clone());
                return Err(self.fail(
                    StreamErrorCondition::InvalidFrom,
                    "stream from is not a JID",
                ));
            }
        };
        // Our header goes out before any error (RFC 6120 §4.9.1.2).
        self.send_header(client.clone(), header.lang.clone());
        if header.content_namespace != Some(ContentNamespace::Client) {
            return Err(self.fail(
                StreamErrorCondition::InvalidNamespace,
                "stream is not jabber:client",
            ));
        }
        if header.version.is_none() {
            return Err(self.fail(
                StreamErrorCondition::UnsupportedVersion,
                "stream has no version 1.0",
            ));
        }
        let to_us = header
            .to
            .as_deref()
            .and_then(|to| BareJid::new(to).ok())
            .is_some_and(|to| to == self.config.domain);
        if !to_us {
            return Err(self.fail(
                StreamErrorCondition::HostUnknown,
                "stream to is not this domain",
            ));
        }
        self.core.event(Event::StreamOpened {
            id: self.stream_id.clone(),
            from: client,
            lang: header.lang.clone(),
        });
        let features = self.offer();
        self.core.send(&features.to_element());
        self.step = Step::AwaitRequest;
        Ok(())
    }

    fn sasl_config(&mut self, nonce: String) -> xmpp_sasl::ServerConfig {
        let secure = self.core.flags.contains(SessionFlags::SECURE);
        let mut config = xmpp_sasl::ServerConfig::new(nonce)
            .tls(secure)
            .allow_plain_without_tls(self.config.allow_plain_without_tls)
            .downgrade_protection(self.config.downgrade_protection);
        if secure {
            for binding in &self.bindings {
                config = config.channel_binding(binding.clone());
            }
            // Only what `offer` lists: XEP-0474 hashes the advertised types, and a TLS layer
            // without binding data advertises none (an empty list would hash differently).
            if self.config.advertise_channel_binding_types && !self.bindings.is_empty() {
                let kinds = self.bindings.iter().map(ChannelBinding::kind).collect();
                config = config.advertised_binding_types(kinds);
            }
        }
        config = config.offer(self.config.mechanisms.clone());
        config
    }

    /// The features for the current session flags, straight from the feature table.
    fn offer(&mut self) -> Features {
        let flags = self.core.flags;
        let secure = flags.contains(SessionFlags::SECURE);
        let tls_required = self.config.tls == TlsPolicy::Required && !secure;
        let mut items = Vec::new();
        for spec in FEATURES.iter().filter(|spec| spec.available(flags)) {
            match spec.kind {
                FeatureKind::StartTls if self.config.tls != TlsPolicy::Disabled => {
                    items.push(Advertised::StartTls {
                        required: tls_required,
                    });
                }
                FeatureKind::Sasl if !tls_required => {
                    let names: Vec<String> = self
                        .sasl_config(String::new())
                        .mechanisms()
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    if !names.is_empty() {
                        items.push(Advertised::Mechanisms(names));
                    }
                }
                FeatureKind::ChannelBindingTypes
                    if self.config.advertise_channel_binding_types && !self.bindings.is_empty() =>
                {
                    items.push(Advertised::ChannelBindingTypes(
                        self.bindings.iter().map(|b| b.kind().to_string()).collect(),
                    ));
                }
                FeatureKind::Bind => items.push(Advertised::Bind),
                FeatureKind::Session if self.config.legacy_session => {
                    items.push(Advertised::Session { optional: true });
                }
                _ => {}
            }
        }
        Features { items }
    }

    fn on_element(&mut self, element: Element) -> Result<(), ProtocolError> {
        match &self.step {
            Step::AwaitRequest => self.on_request(&element),
            Step::Sasl(_) => self.on_sasl(&element),
            Step::Ready => self.on_stanza(element),
            Step::AwaitHeader => Err(self.fail(
                StreamErrorCondition::InvalidXml,
                "element before stream header",
            )),
            Step::AwaitTls | Step::Done => Ok(()),
        }
    }

    fn on_request(&mut self, element: &Element) -> Result<(), ProtocolError> {
        let flags = self.core.flags;
        if let Some(tls) = TlsElement::parse(element) {
            let offered = !flags.intersects(SessionFlags::SECURE | SessionFlags::AUTHENTICATED)
                && self.config.tls != TlsPolicy::Disabled;
            if tls != TlsElement::StartTls || !offered {
                return Err(self.fail(
                    StreamErrorCondition::PolicyViolation,
                    "STARTTLS not offered",
                ));
            }
            if self.core.has_unparsed_input() {
                // Bytes pipelined after <starttls/> would be taken as sent inside TLS: the
                // STARTTLS command-injection attack.
                return Err(self.fail(
                    StreamErrorCondition::PolicyViolation,
                    "data pipelined after <starttls/>",
                ));
            }
            self.core.send(&TlsElement::Proceed.to_element());
            self.step = Step::AwaitTls;
            self.core.start_tls();
            return Ok(());
        }
        if element.has_ns(ns::SASL) && !flags.contains(SessionFlags::AUTHENTICATED) {
            return match SaslElement::parse(element) {
                Ok(SaslElement::Auth { mechanism, initial }) => {
                    self.start_sasl(&mechanism, initial);
                    Ok(())
                }
                Ok(SaslElement::Abort) => {
                    self.sasl_failed(xmpp_sasl::Condition::Aborted);
                    Ok(())
                }
                Err(SaslParseError::Encoding) => {
                    self.sasl_failed(xmpp_sasl::Condition::IncorrectEncoding);
                    Ok(())
                }
                _ => {
                    self.sasl_failed(xmpp_sasl::Condition::MalformedRequest);
                    Ok(())
                }
            };
        }
        if flags.contains(SessionFlags::AUTHENTICATED) {
            if let Some(request) = bind::parse_bind_request(element) {
                self.on_bind(element, &request);
                return Ok(());
            }
        }
        Err(self.fail(
            StreamErrorCondition::NotAuthorized,
            "stanza before negotiation completed",
        ))
    }

    fn start_sasl(&mut self, mechanism: &str, initial: Option<Vec<u8>>) {
        let secure = self.core.flags.contains(SessionFlags::SECURE);
        if self.config.tls == TlsPolicy::Required && !secure {
            self.sasl_failed(xmpp_sasl::Condition::EncryptionRequired);
            return;
        }
        let Ok(mechanism) = mechanism.parse::<Mechanism>() else {
            self.sasl_failed(xmpp_sasl::Condition::InvalidMechanism);
            return;
        };
        let nonce = random_nonce(self.core.entropy.as_mut(), self.config.scram_nonce_len);
        let config = self.sasl_config(nonce);
        let server = match xmpp_sasl::Server::new(mechanism, config) {
            Ok(server) => server,
            Err(error) => {
                self.sasl_failed(error.condition());
                return;
            }
        };
        self.step = Step::Sasl(Box::new(server));
        match initial {
            // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
            None => self.core.send(&SaslElement::Challenge(None).to_element()),
            Some(data) => self.sasl_step(&data),
        }
    }

    fn sasl_step(&mut self, data: &[u8]) {
        let Step::Sasl(server) = &mut self.step else {
            return;
        };
        match server.step(self.backend.as_ref(), data) {
            Ok(ServerStep::Challenge(challenge)) => {
                self.core
                    .send(&SaslElement::Challenge(Some(challenge)).to_element());
            }
            Ok(ServerStep::Success {
                additional_data,
                identity,
            }) => {
                let node = identity.authzid.as_deref().or(identity.authcid.as_deref());
                let account = node.and_then(|node| match BareJid::new(node) {
                    // An authzid may be a full bare JID; an authcid is a localpart.
                    Ok(jid)
                        if jid.node().is_some() && jid.domain() == self.config.domain.domain() =>
                    {
                        Some(jid)
                    }
                    _ => BareJid::from_parts(Some(node), self.config.domain.domain()).ok(),
                });
                let Some(account) = account else {
                    self.sasl_failed(xmpp_sasl::Condition::NotAuthorized);
                    return;
                };
                self.core
                    .send(&SaslElement::Success(additional_data).to_element());
                self.core.flags |= SessionFlags::AUTHENTICATED;
                self.core.event(Event::Authenticated {
                    jid: account.clone(),
                    mechanism: identity.mechanism,
                });
                self.account = Some(account);
                self.restart();
            }
            Ok(_) => self.sasl_failed(xmpp_sasl::Condition::TemporaryAuthFailure),
            Err(error) => self.sasl_failed(error.condition()),
        }
    }

    fn sasl_failed(&mut self, condition: xmpp_sasl::Condition) {
        self.core
            .send(&SaslElement::failure(condition).to_element());
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        self.step = Step::AwaitRequest;
        if self.failed_attempts >= self.config.max_auth_attempts {
            let _ = self.fail(
                StreamErrorCondition::PolicyViolation,
                "too many failed authentication attempts",
            );
        }
    }

    fn on_sasl(&mut self, element: &Element) -> Result<(), ProtocolError> {
        match SaslElement::parse(element) {
            Ok(SaslElement::Response(data)) => {
                self.sasl_step(data.as_deref().unwrap_or_default());
                Ok(())
            }
            Ok(SaslElement::Abort) => {
                self.sasl_failed(xmpp_sasl::Condition::Aborted);
                Ok(())
            }
            Err(SaslParseError::Encoding) => {
                self.sasl_failed(xmpp_sasl::Condition::IncorrectEncoding);
                Ok(())
            }
            Ok(_) => {
                self.sasl_failed(xmpp_sasl::Condition::MalformedRequest);
                Ok(())
            }
            Err(SaslParseError::Unknown) => {
                Err(self.fail(StreamErrorCondition::NotAuthorized, "stanza during SASL"))
            }
        }
    }

    fn generated_resource(&mut self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 8];
        self.core.entropy.fill(&mut bytes);
        bytes
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            .map(char::from)
            .collect()
    }

    fn on_bind(&mut self, iq: &Element, request: &bind::BindRequest) {
        let Some(account) = self.account.clone() else {
            return;
        };
        let resource = request
            .resource
            .clone()
            .unwrap_or_else(|| self.generated_resource());
        let result = account
            .with_resource(&resource)
            .map_err(|_| StanzaErrorCondition::BadRequest)
            .and_then(|jid| self.backend.check_bind(&jid).map(|()| jid));
        match result {
            Ok(jid) => {
                self.core
                    .send(&bind::bind_result(&request.id, jid.as_str()));
                self.jid = Some(jid.clone());
                self.step = Step::Ready;
                self.core.negotiated();
                self.core.event(Event::Negotiated {
                    jid,
                    extra_features: Vec::new(),
                });
            }
            Err(condition) => {
                let reply = StanzaError::new(condition).reply_to(iq);
                self.core.send(&reply);
            }
        }
    }

    fn on_stanza(&mut self, mut stanza: Element) -> Result<(), ProtocolError> {
        if !is_stanza(&stanza) {
            self.core.event(Event::Nonza(stanza));
            return Ok(());
        }
        let Some(jid) = &self.jid else {
            return Ok(());
        };
        // This is the per-stanza hot path: one pass over the attributes (a small ordered map,
        // un-namespaced ones first) instead of a lookup per name, and no JID is built.
        let (mut from, mut to, mut kind) = (None, None, None);
        for ((ns, name), value) in stanza.attrs() {
            if !ns.is_none() {
                break;
            }
            match name.as_str() {
                "from" => from = Some(value.as_str()),
                "to" => to = Some(value.as_str()),
                "type" => kind = Some(value.as_str()),
                _ => {}
            }
        }
        let stamped = match from {
            None => false,
            // Already our full JID, byte for byte: nothing to check or rewrite.
            Some(from) if from == jid.as_str() => true,
            // The full JID, or the bare JID of the account (RFC 6120 §8.1.2.1), compared
            // after the JID's own normalization.
            Some(from) => {
                let ours = Jid::new(from).is_ok_and(|from| {
                    from.as_str() == jid.as_str()
                        || (from.resource().is_none() && from.to_bare() == jid.to_bare())
                });
                if !ours {
                    return Err(self.fail(
                        StreamErrorCondition::InvalidFrom,
                        "stanza from another address",
                    ));
                }
                false
            }
        };
        // `to` is passed on as written: validated (RFC 7622 via xmpp-jid) without building a JID.
        let bad_to = to.is_some_and(|to| Jid::validate(to).is_err());
        let is_error = kind == Some("error");
        if !stamped {
            // The attribute name is built once per stream.
            let from = jid.as_str().to_owned();
            stanza
                .attrs_mut()
                .insert(minidom::rxml::Namespace::NONE, self.from_attr.clone(), from);
        }
        if bad_to {
            if !is_error {
                let reply = StanzaError::new(StanzaErrorCondition::JidMalformed).reply_to(&stanza);
                self.core.send(&reply);
            }
            return Ok(());
        }
        if self.config.legacy_session
            && bind::is_session_request(&stanza)
            && stanza
                .attr("to")
                .is_none_or(|to| to == self.config.domain.as_str())
        {
            let reply = bind::empty_result(stanza.attr("id").unwrap_or_default());
            self.core.send(&reply);
            return Ok(());
        }
        self.core.event(Event::Stanza(stanza));
        Ok(())
    }
}
