//! What a [`Hub`](super::Hub) is built from: the domain, the accounts, the XEP-0114
//! components, the `-PLUS` policy ([`PlusPolicy`]) and the stream configurations every
//! connection starts with.

use xmpp_jid::BareJid;
use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::{
    ChannelBinding, ComponentServerConfig, Mechanism, S2sConfig, ServerConfig, Transport,
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
    /// Accounts: (localpart, password).
    pub users: Vec<(String, String)>,
    /// XEP-0114 components: (domain, shared secret). A component serves its domain and every
    /// subdomain of it; connections come through [`Hub::accept_component`](super::Hub::accept_component).
    pub components: Vec<(BareJid, String)>,
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
    /// The stream configuration template for every component connection (timeouts, limits).
    pub component_stream: ComponentServerConfig,
    /// Server-to-server (RFC 6120 §13): the stream configuration template of every s2s
    /// connection, both ends. `None` (the default): no federation, a stanza for a domain
    /// that is neither ours nor a component's bounces with `remote-server-not-found`.
    pub s2s: Option<S2sConfig>,
}

impl HubConfig {
    /// A configuration for `domain` with STARTTLS required, no `-PLUS`, 4096 iterations and
    /// no accounts.
    pub fn new(domain: BareJid) -> Self {
        let mut stream = ServerConfig::new(domain.clone());
        apply_plus(&mut stream, PlusPolicy::Off);
        // XEP-0198 with resumption (a 300 s window); the hub keeps detached sessions.
        stream.sm = xmpp_stream::SmConfig::on();
        HubConfig {
            domain,
            users: Vec::new(),
            components: Vec::new(),
            iterations: 4096,
            plus: PlusPolicy::Off,
            record: None,
            stream,
            component_stream: ComponentServerConfig::new(),
            s2s: None,
        }
    }

    /// Federate: server-to-server streams for our domain, STARTTLS required, SASL EXTERNAL
    /// with certificates, and dialback (XEP-0220) with `secret` as the fallback.
    #[must_use]
    pub fn with_s2s(mut self, secret: DialbackSecret) -> Self {
        let mut s2s = S2sConfig::new(vec![self.domain.clone()]);
        s2s.dialback_secret = Some(secret);
        self.s2s = Some(s2s);
        self
    }

    /// The s2s stream template ([`HubConfig::s2s`], or the defaults for our domain).
    pub(super) fn s2s_config(&self) -> S2sConfig {
        self.s2s
            .clone()
            .unwrap_or_else(|| S2sConfig::new(vec![self.domain.clone()]))
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
