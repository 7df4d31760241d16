//! Client-side mechanism selection.

use alloc::vec::Vec;

use crate::codec::Gs2Binding;
use crate::mechanism::{ChannelBindingType, Mechanism};

/// What the client has and accepts, for [`select_mechanism`]. Built with chained setters.
#[derive(Clone, Debug, Default)]
pub struct ClientPolicy {
    tls: bool,
    bindings: Vec<ChannelBindingType>,
    certificate: bool,
    password: bool,
    plain_without_tls: bool,
    no_plain: bool,
    anonymous: bool,
    require_channel_binding: bool,
    preference: Option<Vec<Mechanism>>,
}

impl ClientPolicy {
    /// A policy for a client with nothing: set what it has below.
    pub fn new() -> Self {
        ClientPolicy::default()
    }

    /// The stream is encrypted.
    #[must_use]
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The channel-binding types the client can produce on this connection (`rustls`, for
    /// example, offers `tls-exporter` and `tls-server-end-point` but not `tls-unique`).
    #[must_use]
    pub fn binding_types(mut self, types: Vec<ChannelBindingType>) -> Self {
        self.bindings = types;
        self
    }

    /// The client presents a TLS certificate (EXTERNAL becomes possible).
    #[must_use]
    pub fn certificate(mut self, has: bool) -> Self {
        self.certificate = has;
        self
    }

    /// The client has a password or cached SCRAM keys.
    #[must_use]
    pub fn password(mut self, has: bool) -> Self {
        self.password = has;
        self
    }

    /// Allow PLAIN without TLS (default no).
    #[must_use]
    pub fn allow_plain_without_tls(mut self, allow: bool) -> Self {
        self.plain_without_tls = allow;
        self
    }

    /// Never use PLAIN, even over TLS.
    #[must_use]
    pub fn forbid_plain(mut self, forbid: bool) -> Self {
        self.no_plain = forbid;
        self
    }

    /// Accept ANONYMOUS as a last resort (default no).
    #[must_use]
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.anonymous = allow;
        self
    }

    /// Accept only channel-bound SCRAM or EXTERNAL.
    #[must_use]
    pub fn require_channel_binding(mut self, require: bool) -> Self {
        self.require_channel_binding = require;
        self
    }

    /// The mechanisms the client accepts, in its order of preference (default:
    /// [`Mechanism::ALL`], strongest first). Mechanisms left out are never selected; the
    /// other rules still apply to those listed (PLAIN needs TLS unless allowed, `-PLUS` needs
    /// a binding type both ends support, EXTERNAL a certificate, ANONYMOUS
    /// [`allow_anonymous`](Self::allow_anonymous)).
    #[must_use]
    pub fn preference(mut self, mechanisms: Vec<Mechanism>) -> Self {
        self.preference = Some(mechanisms);
        self
    }
}

/// The chosen mechanism and the GS2 flag to use with it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The mechanism to name in `<auth/>`.
    pub mechanism: Mechanism,
    /// For SCRAM, the GS2 flag (pass to [`crate::ClientConfig::gs2`]); [`Gs2Binding::None`]
    /// otherwise.
    pub gs2: Gs2Binding,
}

/// Picks the most preferred acceptable mechanism from the server's list: the first of
/// [`acceptable_mechanisms`].
pub fn select_mechanism(
    offered: &[Mechanism],
    server_binding_types: Option<&[ChannelBindingType]>,
    policy: &ClientPolicy,
) -> Option<Selection> {
    acceptable_mechanisms(offered, server_binding_types, policy)
        .into_iter()
        .next()
}

/// Every mechanism of the server's list this client may use, most preferred first, each with
/// its GS2 flag. A client that falls back after a mechanism-level `<failure/>` walks this
/// list; the GS2 flags are computed from the whole offer, so they stay right for later
/// entries.
///
/// `server_binding_types` is the XEP-0440 list when the server advertised one. Without it the
/// server is assumed to bind with `tls-unique` (RFC 5802's default, and all Prosody 0.12 and
/// ejabberd 23.01 support), so a client that cannot produce `tls-unique` (e.g. over TLS 1.3,
/// or with `rustls`) does not pick `-PLUS` there.
///
/// Default order ([`Mechanism::ALL`]): EXTERNAL (with a certificate and TLS),
/// SCRAM-SHA-512/256/1-PLUS, SCRAM-SHA-512/256/1, PLAIN (with TLS, or when allowed),
/// ANONYMOUS (when allowed); [`ClientPolicy::preference`] replaces the order and narrows the
/// set.
///
/// The GS2 flag for a non-PLUS SCRAM follows RFC 5802 §6: `y` when the client could bind but
/// the server offered no `-PLUS` (so a stripped `-PLUS` is detected by the server); `n` when
/// the server did offer `-PLUS` with a type this client lacks (sending `y` then would make the
/// server abort as if downgraded) or the client has no binding.
pub fn acceptable_mechanisms(
    offered: &[Mechanism],
    server_binding_types: Option<&[ChannelBindingType]>,
    policy: &ClientPolicy,
) -> Vec<Selection> {
    let binding = if policy.tls {
        match server_binding_types {
            Some(server) => ChannelBindingType::PREFERENCE
                .into_iter()
                .find(|t| server.contains(t) && policy.bindings.contains(t)),
            None => policy
                .bindings
                .contains(&ChannelBindingType::TlsUnique)
                .then_some(ChannelBindingType::TlsUnique),
        }
    } else {
        None
    };
    let server_plus = offered.iter().any(|m| m.is_plus());
    let unbound_gs2 = if policy.tls && !policy.bindings.is_empty() && !server_plus {
        Gs2Binding::ClientOnly
    } else {
        Gs2Binding::None
    };
    // The GS2 flag to use with `m`, or `None` when the policy rules it out.
    let usable = |m: Mechanism| -> Option<Gs2Binding> {
        let unbound_ok = !policy.require_channel_binding;
        match m {
            Mechanism::External => (policy.certificate && policy.tls).then_some(Gs2Binding::None),
            m if m.is_plus() => binding.filter(|_| policy.password).map(Gs2Binding::Bound),
            m if m.scram_hash().is_some() => (policy.password && unbound_ok).then_some(unbound_gs2),
            Mechanism::Plain => (policy.password
                && unbound_ok
                && !policy.no_plain
                && (policy.tls || policy.plain_without_tls))
                .then_some(Gs2Binding::None),
            Mechanism::Anonymous => (policy.anonymous && unbound_ok).then_some(Gs2Binding::None),
            _ => None,
        }
    };
    let order: &[Mechanism] = policy.preference.as_deref().unwrap_or(&Mechanism::ALL);
    let mut out: Vec<Selection> = Vec::new();
    for &mechanism in order {
        if !offered.contains(&mechanism) || out.iter().any(|s| s.mechanism == mechanism) {
            continue;
        }
        if let Some(gs2) = usable(mechanism) {
            out.push(Selection { mechanism, gs2 });
        }
    }
    out
}
