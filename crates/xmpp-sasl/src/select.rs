//! Client-side mechanism selection.

use alloc::vec::Vec;

use crate::codec::Gs2Binding;
use crate::mechanism::{ChannelBindingType, Mechanism, ScramHash};

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

/// Picks the strongest acceptable mechanism from the server's list.
///
/// `server_binding_types` is the XEP-0440 list when the server advertised one. Without it the
/// server is assumed to bind with `tls-unique` (RFC 5802's default, and all Prosody 0.12 and
/// ejabberd 23.01 support), so a client that cannot produce `tls-unique` (e.g. over TLS 1.3,
/// or with `rustls`) does not pick `-PLUS` there.
///
/// Order: EXTERNAL (with a certificate and TLS), SCRAM-SHA-512/256/1-PLUS, SCRAM-SHA-512/256/1,
/// PLAIN (with TLS, or when allowed), ANONYMOUS (when allowed).
///
/// The GS2 flag for a non-PLUS SCRAM follows RFC 5802 §6: `y` when the client could bind but
/// the server offered no `-PLUS` (so a stripped `-PLUS` is detected by the server); `n` when
/// the server did offer `-PLUS` with a type this client lacks (sending `y` then would make the
/// server abort as if downgraded) or the client has no binding.
pub fn select_mechanism(
    offered: &[Mechanism],
    server_binding_types: Option<&[ChannelBindingType]>,
    policy: &ClientPolicy,
) -> Option<Selection> {
    let has = |m: Mechanism| offered.contains(&m);
    let pick = |mechanism, gs2| Some(Selection { mechanism, gs2 });
    if policy.certificate && policy.tls && has(Mechanism::External) {
        return pick(Mechanism::External, Gs2Binding::None);
    }
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
    if policy.password {
        if let Some(t) = binding {
            for hash in ScramHash::ALL {
                let m = Mechanism::scram(hash, true);
                if has(m) {
                    return pick(m, Gs2Binding::Bound(t));
                }
            }
        }
        if policy.require_channel_binding {
            return None;
        }
        let server_plus = offered.iter().any(|m| m.is_plus());
        let gs2 = if policy.tls && !policy.bindings.is_empty() && !server_plus {
            Gs2Binding::ClientOnly
        } else {
            Gs2Binding::None
        };
        for hash in ScramHash::ALL {
            let m = Mechanism::scram(hash, false);
            if has(m) {
                return pick(m, gs2);
            }
        }
        if has(Mechanism::Plain) && !policy.no_plain && (policy.tls || policy.plain_without_tls) {
            return pick(Mechanism::Plain, Gs2Binding::None);
        }
    }
    if policy.require_channel_binding {
        return None;
    }
    if policy.anonymous && has(Mechanism::Anonymous) {
        return pick(Mechanism::Anonymous, Gs2Binding::None);
    }
    None
}
