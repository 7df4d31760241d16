//! Configuration values for every role. Plain data, built by the host, never read from the
//! environment.

use core::time::Duration;

use xmpp_jid::BareJid;
use xmpp_sasl::{Mechanism, ScramKeys};
use xmpp_xml::Limits;

use crate::core::DEFAULT_MAX_OUTPUT_BYTES;

/// What a side does about STARTTLS (RFC 6120 §5). Direct TLS (XEP-0368) is not a policy but a
/// transport: the host starts the machine with [`crate::Transport::Tls`] and STARTTLS is skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// Server: offer STARTTLS with `<required/>` and refuse to go further without it.
    /// Client: negotiate STARTTLS, and close the stream if the server does not offer it.
    #[default]
    Required,
    /// Server: offer STARTTLS without `<required/>`. Client: use it when offered, go on in
    /// plaintext otherwise.
    Optional,
    /// Never negotiate TLS on this stream (tests, loopback, or TLS terminated elsewhere).
    Disabled,
}

/// Deadlines and intervals, shared by both roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// From `start` until the stream is fully negotiated (bound). `None`: no deadline.
    pub negotiation: Option<Duration>,
    /// How long to wait for the peer's `</stream:stream>` after sending ours.
    pub close: Duration,
    /// Send a single space when nothing was sent for this long after negotiation. `None`: off.
    pub keepalive: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            negotiation: Some(Duration::from_secs(60)),
            close: Duration::from_secs(10),
            keepalive: Some(Duration::from_secs(60)),
        }
    }
}

/// What the client authenticates with.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// A password (SASLprep'd by `xmpp-sasl`).
    Password(String),
    /// SCRAM keys cached from an earlier login ([`ClientStream::scram_keys`](crate::ClientStream::scram_keys)): no PBKDF2 runs
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
    /// XEP-0198 stream management (default off).
    pub sm: crate::sm::SmConfig,
    /// XEP-0199 pings when the server is silent (default none).
    pub ping: Option<crate::sm::PingConfig>,
    /// With SASL EXTERNAL, send our bare JID as the authorization identity (XEP-0178 §2: a
    /// client whose certificate names several accounts must say which one it logs in as).
    /// Default no: the `=` of an empty one, and the server takes the certificate's account.
    pub external_authzid: bool,
    /// XEP-0077: create the account ([`jid`](Self::jid)'s localpart, the password of
    /// [`credentials`](Self::credentials)) by in-band registration before authenticating
    /// (default no). The server must list `<register/>` (else the stream closes with
    /// [`CloseReason::FeatureMissing`](crate::CloseReason::FeatureMissing)); TLS is
    /// negotiated first as [`tls`](Self::tls) says. Success is reported as
    /// [`Event::Registered`](crate::Event::Registered) and SASL follows on the same stream;
    /// a refusal closes it with
    /// [`CloseReason::RegistrationFailed`](crate::CloseReason::RegistrationFailed).
    pub register: bool,
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

    /// Checks what `start` needs: the resource, if any, is a valid resourcepart.
    pub(crate) fn validate(&self) -> Result<(), crate::UsageError> {
        if self.register
            && (self.jid.node().is_none() || !matches!(self.credentials, Credentials::Password(_)))
        {
            return Err(crate::UsageError::InvalidConfig(
                "registration needs an account JID with a localpart and a password",
            ));
        }
        match &self.resource {
            Some(resource) if self.jid.with_resource(resource).is_err() => Err(
                crate::UsageError::InvalidConfig("the resource is not a valid resourcepart"),
            ),
            _ => Ok(()),
        }
    }

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
            sm: crate::sm::SmConfig::default(),
            ping: None,
            external_authzid: false,
            register: false,
        }
    }
}

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
    /// [`allow_plain_without_tls`](Self::allow_plain_without_tls)). ANONYMOUS is never
    /// offered by this machine; EXTERNAL is offered (first when not listed here) exactly when
    /// the host gave the client's verified certificate with
    /// [`ServerStream::set_peer_identities`](crate::ServerStream::set_peer_identities) and the
    /// stream is encrypted.
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
    /// Further domains this server answers for (default none): a client whose stream is `to`
    /// one of them is served as that domain (our header's `from`, its JIDs), and its
    /// credentials come from [`ServerBackend::domain_credentials`](crate::backend::ServerBackend::domain_credentials).
    pub other_domains: Vec<BareJid>,
    /// Feature rows the host adds to the list (default none), gated by the session flags as
    /// the built-in rows are and listed after them: what the host or `xmpp-im` implements
    /// past negotiation (`<ver/>`, `<sub/>`, `<c/>`, `<csi/>`, `<register/>`...).
    pub extra_features: Vec<crate::features::HostFeature>,
    /// Send every client elsewhere (maintenance, load): `see-other-host` with this host
    /// (RFC 6120 §4.9.3.19) in answer to the client's stream header, on the stream before
    /// TLS or on the one after it ([`Redirect::after_tls`]). Default none. Boxed: every
    /// server stream holds a copy of this configuration, and few ever redirect.
    pub redirect: Option<Box<Redirect>>,
    /// XEP-0198 stream management: offered and enabled on request when on (default off).
    pub sm: crate::sm::SmConfig,
    /// XEP-0199 pings when the client is silent (default none).
    pub ping: Option<crate::sm::PingConfig>,
    /// Routing without trees (default off): once the stream is negotiated, the client's
    /// `message` and `presence` stanzas come as [`Event::StanzaEnvelope`](crate::Event::StanzaEnvelope)
    /// (validated bytes and decoded header, no element built) instead of
    /// [`Event::Stanza`](crate::Event::Stanza); iqs (which the stream itself may answer:
    /// pings, legacy sessions), negotiation elements and nonzas stay elements. On a
    /// WebSocket stream too: each message's stanza (RFC 7395 §3.3.3), and
    /// [`ServerStream::send_envelope`](crate::ServerStream::send_envelope) splices the
    /// namespace declaration a message needs.
    pub envelopes: bool,
    /// XEP-0077 in-band registration (default off). When on, `<register/>` is listed before
    /// authentication (wherever SASL is: not before a required STARTTLS), a fields request
    /// is answered with `<username/>` and `<password/>`, and a submitted username and
    /// password become [`Event::RegistrationRequested`](crate::Event::RegistrationRequested)
    /// for the host, whose [`ServerStream::registration_done`](crate::ServerStream::registration_done)
    /// answers the client. When off, a registration IQ before authentication is refused with
    /// `service-unavailable`. Do not also list `<register/>` in
    /// [`extra_features`](Self::extra_features).
    pub allow_registration: bool,
    /// Registrations one stream may submit (default 3): a further submission
    /// is refused with `policy-violation` and the stream closed.
    pub max_registration_attempts: u32,
}

/// Where a receiving stream sends its clients, and when ([`ServerConfig::redirect`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The host (and port) named in `<see-other-host/>`.
    pub to: crate::output::HostPort,
    /// Redirect on the encrypted stream (after STARTTLS, or on direct TLS) rather than on the
    /// first, plaintext one. RFC 6120 §4.9.3.19 lets a server do either; after TLS the
    /// client knows the redirect comes from the server it authenticated.
    pub after_tls: bool,
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
            other_domains: Vec::new(),
            extra_features: Vec::new(),
            redirect: None,
            sm: crate::sm::SmConfig::default(),
            ping: None,
            envelopes: false,
            allow_registration: false,
            max_registration_attempts: 3,
        }
    }
}

/// Server-to-server configuration (RFC 6120 §13), for both ends. Build with
/// [`S2sConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct S2sConfig {
    /// The domains this server serves: a receiving end accepts streams `to` them, and
    /// authenticates pairs whose Target Domain is one of them.
    pub local_domains: Vec<BareJid>,
    /// STARTTLS policy (default required: RFC 6120 §13.7.1.2 wants TLS between servers).
    pub tls: TlsPolicy,
    /// Offer (receiving) or use (initiating) SASL EXTERNAL over the TLS certificates (default
    /// yes). The host checks the peer's certificate chain; the machine matches its names
    /// ([`crate::identity`]).
    pub sasl_external: bool,
    /// The dialback secret (XEP-0185): keys are computed from it, `db:verify` is answered with
    /// it. `None`: no dialback, neither way.
    pub dialback_secret: Option<crate::dialback::DialbackSecret>,
    /// Allow dialback on a stream without TLS (default no).
    pub dialback_without_tls: bool,
    /// How long the host has to answer a dialback verification (default 30 s).
    pub dialback_timeout: Duration,
    /// Dialback verifications one stream may have outstanding (default 8; more are refused
    /// with `policy-violation`).
    pub max_pending_dialbacks: usize,
    /// Domain pairs one stream may carry (default 64; further requests are refused with
    /// `policy-violation`).
    pub max_domain_pairs: usize,
    /// Deadlines and keepalive.
    pub timeouts: Timeouts,
    /// Parser bounds.
    pub limits: Limits,
    /// Bytes of output the host has not polled yet that the machine holds (default 1 MiB).
    pub max_output_bytes: usize,
    /// XEP-0288 bidirectional streams (default no): a receiving end offers them, an
    /// initiating end asks for them when offered; then stanzas flow both ways on the one
    /// connection, for the same authenticated pairs.
    pub bidi: bool,
    /// Routing without trees (default off), as
    /// [`ServerConfig::envelopes`]: once the stream is established, the peer's `message` and
    /// `presence` stanzas (on a receiving end, and on an initiating end with XEP-0288 bidi)
    /// come as [`Event::StanzaEnvelope`](crate::Event::StanzaEnvelope) (validated bytes and
    /// decoded header, no element built) after the same checks as on the element path (`to`
    /// and `from` present, both JIDs, `to` at one of our domains, the pair authenticated);
    /// iqs, dialback elements, nonzas and stanzas not in `jabber:server` stay elements.
    pub envelopes: bool,
}

impl S2sConfig {
    /// A configuration for a server of `local_domains` with the defaults: STARTTLS required,
    /// EXTERNAL on, no dialback secret (set [`dialback_secret`](Self::dialback_secret) to
    /// federate with servers whose certificates cannot be verified).
    pub fn new(local_domains: Vec<BareJid>) -> Self {
        S2sConfig {
            local_domains,
            tls: TlsPolicy::Required,
            sasl_external: true,
            dialback_secret: None,
            dialback_without_tls: false,
            dialback_timeout: Duration::from_secs(30),
            max_pending_dialbacks: 8,
            max_domain_pairs: 64,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            bidi: false,
            envelopes: false,
        }
    }

    /// Whether `domain` is one of ours.
    pub fn serves(&self, domain: &BareJid) -> bool {
        self.local_domains.iter().any(|local| local == domain)
    }
}
