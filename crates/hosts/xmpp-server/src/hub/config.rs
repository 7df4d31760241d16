//! What a [`Hub`](super::Hub) is built from: the domain, the accounts, the XEP-0114
//! components, the `-PLUS` policy ([`PlusPolicy`]) and the stream configurations every
//! connection starts with.

use xmpp_jid::BareJid;
use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::{
    ChannelBinding, ComponentServerConfig, HostFeature, Mechanism, S2sConfig, ServerConfig,
    Transport,
};

use super::record::TranscriptSink;

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
    /// Offer `-PLUS` with the bindings the host passes to
    /// [`Hub::tls_established`](super::Hub::tls_established) (`tls-exporter`,
    /// `tls-server-end-point`) and list them with XEP-0440.
    Advertise,
}

impl PlusPolicy {
    /// The channel-binding data the streams get under this policy: none under `Off`.
    pub(super) fn bindings(self, bindings: Vec<ChannelBinding>) -> Vec<ChannelBinding> {
        match self {
            PlusPolicy::Off => Vec::new(),
            PlusPolicy::Advertise => bindings,
        }
    }

    /// `transport` with its binding data filtered by [`PlusPolicy::bindings`].
    pub(super) fn transport(self, transport: Transport) -> Transport {
        match transport {
            Transport::Tls(bindings) => Transport::Tls(self.bindings(bindings)),
            other => other,
        }
    }
}

/// Hub configuration: the domain, the accounts, the components and the stream policy.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The domain served (the stream `to`, the domain part of every account).
    pub domain: BareJid,
    /// Further domains served besides [`domain`](Self::domain) (add with
    /// [`with_domain`](Self::with_domain)): clients connect `to` any of them, their users talk
    /// through the one IM machine, and each federates on its own name.
    pub other_domains: Vec<BareJid>,
    /// Accounts: (localpart, password) at [`domain`](Self::domain), or (`name@other-domain`,
    /// password) at one of [`other_domains`](Self::other_domains).
    pub users: Vec<(String, String)>,
    /// XEP-0114 components: (domain, shared secret). A component serves its domain and every
    /// subdomain of it; connections come through [`Hub::accept_component`](super::Hub::accept_component).
    pub components: Vec<(BareJid, String)>,
    /// PBKDF2 iterations for the stored SCRAM credentials (4096: RFC 7677's floor).
    pub iterations: u32,
    /// The database accounts, rosters, privacy lists and offline messages live in
    /// ([`crate::db`]: a SQLite file or PostgreSQL); `None`: all in memory, gone at exit.
    /// With a database, the hub asks the host for storage through
    /// [`HubOutput::Storage`](super::HubOutput::Storage) and the runtime answers from a thread
    /// of its own.
    pub database: Option<crate::db::Location>,
    /// `-PLUS` policy.
    pub plus: PlusPolicy,
    /// Tests only: when set, every session is recorded as a replayable transcript (the
    /// format of `testdata/README.md`, as the server) and pushed here when it closes.
    pub record: Option<TranscriptSink>,
    /// The stream configuration template for every connection. [`HubConfig::new`] fills it
    /// from the fields above; adjust it afterwards for timeouts, limits or a TLS policy. Its
    /// `envelopes` (on by default, issue 17) switches every stream kind: client, component
    /// and server-to-server stanzas are then routed as bytes where the IM machine allows.
    pub stream: ServerConfig,
    /// The stream configuration template for every component connection (timeouts, limits).
    pub component_stream: ComponentServerConfig,
    /// Server-to-server (RFC 6120 §13): the stream configuration template of every s2s
    /// connection, both ends. `None` (the default): no federation, a stanza for a domain
    /// that is neither ours nor a component's bounces with `remote-server-not-found`.
    pub s2s: Option<S2sConfig>,
    /// The RFC 6121 machine's configuration (pre-approval, roster versioning, limits); its
    /// [`features`](xmpp_im::ServerConfig::features) are advertised.
    pub im: xmpp_im::ServerConfig,
    /// Rows the host adds to what it advertises (entity capabilities, CSI, registration,
    /// ...): listed in the stream features and in `disco#info` from this one list, after
    /// the IM machine's own rows.
    pub features: Vec<xmpp_im::ServiceFeature>,
    /// The wall-clock time (milliseconds since the Unix epoch, UTC) at `Instant::ZERO` of
    /// the hub's clock: a message stored offline is stamped (XEP-0203) with this plus the
    /// `now` it was stored at. The runtime sets it from the system clock when it starts;
    /// tests set it to a fixed value (default 0, the epoch itself).
    pub unix_epoch_millis: u64,
    /// Tests only: a deliberately broken server (see [`TestRewrite`]). `None` by default.
    pub test_rewrite: Option<TestRewrite>,
}

/// Tests only: the example server made to break one rule on purpose, by rewriting every
/// occurrence of `from` with `to` in the bytes it reads from its connections (`input`) or in
/// those it writes. The `xmpp-conformance` tests use it to show each case able to fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRewrite {
    /// Rewrite what the server reads (`true`) or what it writes (`false`).
    pub input: bool,
    /// The bytes to replace.
    pub from: Vec<u8>,
    /// Their replacement.
    pub to: Vec<u8>,
}

impl TestRewrite {
    /// `bytes` with every occurrence of `from` replaced (only within one read or write).
    pub fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while !self.from.is_empty() && rest.len() >= self.from.len() {
            if rest.starts_with(&self.from) {
                out.extend_from_slice(&self.to);
                rest = &rest[self.from.len()..];
            } else {
                out.push(rest[0]);
                rest = &rest[1..];
            }
        }
        out.extend_from_slice(rest);
        out
    }
}

/// How long a client may stay silent before the hub pings it (XEP-0199): 4 minutes, under
/// the 5-minute idle timeouts common in NAT tables and mobile carriers' middleboxes, and long
/// enough that an idle phone is not woken more than a few times an hour.
pub const PING_IDLE: core::time::Duration = core::time::Duration::from_secs(240);

/// How long the hub waits for the answer to its ping before closing the stream with
/// `connection-timeout`.
pub const PING_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(60);

impl HubConfig {
    /// A configuration for `domain` with STARTTLS required, no `-PLUS`, 4096 iterations and
    /// no accounts.
    pub fn new(domain: BareJid) -> Self {
        let mut stream = ServerConfig::new(domain.clone());
        apply_plus(&mut stream, PlusPolicy::Off);
        // XEP-0198 with resumption (a 300 s window); the hub keeps detached sessions.
        stream.sm = xmpp_stream::SmConfig::on();
        // XEP-0199: a client silent for `PING_IDLE` is pinged; no answer within
        // `PING_TIMEOUT` closes its stream with `connection-timeout` (then, with resumption
        // granted, the session is detached as for any lost connection).
        stream.ping = Some(xmpp_stream::PingConfig::new(PING_IDLE, PING_TIMEOUT));
        // Issue 17: messages and presence routed as bytes (envelopes), elements where needed;
        // this switch also turns envelopes on for component and s2s streams.
        stream.envelopes = true;
        HubConfig {
            other_domains: Vec::new(),
            users: Vec::new(),
            components: Vec::new(),
            iterations: 4096,
            database: None,
            plus: PlusPolicy::Off,
            record: None,
            stream,
            component_stream: ComponentServerConfig::new(),
            s2s: None,
            test_rewrite: None,
            im: xmpp_im::ServerConfig::new(domain.domain()),
            features: Vec::new(),
            unix_epoch_millis: 0,
            domain,
        }
    }

    /// Federate: server-to-server streams for our domain, STARTTLS required, SASL EXTERNAL
    /// with certificates, and dialback (XEP-0220) with `secret` as the fallback.
    #[must_use]
    pub fn with_s2s(mut self, secret: DialbackSecret) -> Self {
        let mut s2s = S2sConfig::new(self.domains());
        s2s.dialback_secret = Some(secret);
        self.s2s = Some(s2s);
        self
    }

    /// Serve `domain` too (its accounts are added as `name@domain`, see
    /// [`users`](Self::users)); the c2s and s2s templates learn it.
    #[must_use]
    pub fn with_domain(mut self, domain: BareJid) -> Self {
        if domain == self.domain || self.other_domains.contains(&domain) {
            return self;
        }
        self.stream.other_domains.push(domain.clone());
        if let Some(s2s) = &mut self.s2s {
            s2s.local_domains.push(domain.clone());
        }
        self.other_domains.push(domain);
        self
    }

    /// Every domain served, [`domain`](Self::domain) first.
    pub fn domains(&self) -> Vec<BareJid> {
        std::iter::once(self.domain.clone())
            .chain(self.other_domains.iter().cloned())
            .collect()
    }

    /// Whether `domain` is one of ours.
    pub fn serves(&self, domain: &BareJid) -> bool {
        *domain == self.domain || self.other_domains.contains(domain)
    }

    /// Everything advertised: the IM machine's rows, then the host's.
    pub fn service_features(&self) -> Vec<xmpp_im::ServiceFeature> {
        let mut rows = self.im.features();
        rows.extend(self.features.iter().cloned());
        // XEP-0077 §9: in-band registration is announced in `disco#info` (the stream feature
        // is the stream machine's own).
        if self.stream.allow_registration {
            rows.push(xmpp_im::ServiceFeature::disco(xmpp_stream::register::NS));
        }
        rows
    }

    /// The c2s stream template with the advertised rows appended to its feature list.
    pub(super) fn stream_with_features(&self) -> ServerConfig {
        let mut stream = self.stream.clone();
        for row in self.service_features() {
            if let Some(el) = row.stream {
                stream.extra_features.push(if row.before_auth {
                    HostFeature::before_auth(el)
                } else {
                    HostFeature::after_auth(el)
                });
            }
        }
        stream
    }

    /// The s2s stream template ([`HubConfig::s2s`], or the defaults for our domain), with
    /// envelopes when the c2s template has them (issue 17: one switch for the hub).
    pub(super) fn s2s_config(&self) -> S2sConfig {
        let mut s2s = self
            .s2s
            .clone()
            .unwrap_or_else(|| S2sConfig::new(self.domains()));
        s2s.envelopes = self.stream.envelopes;
        s2s
    }

    /// The component stream template ([`HubConfig::component_stream`]), with envelopes when
    /// the c2s template has them.
    pub(super) fn component_config(&self) -> ComponentServerConfig {
        let mut component = self.component_stream.clone();
        component.envelopes = self.stream.envelopes;
        component
    }

    /// Add an account.
    #[must_use]
    pub fn with_user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Add an XEP-0114 component: the domain it serves (with its subdomains) and its shared
    /// secret.
    #[must_use]
    pub fn with_component(mut self, domain: BareJid, secret: &str) -> Self {
        self.components.push((domain, secret.to_owned()));
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
