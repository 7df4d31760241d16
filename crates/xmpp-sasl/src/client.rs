//! The client side: one session type over every mechanism.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::codec::Gs2Binding;
use crate::credentials::ScramKeys;
use crate::error::Error;
use crate::mechanism::{ChannelBinding, ChannelBindingType, Mechanism};
use crate::prep::PasswordPrep;
use crate::scram::{Advertised, ScramClient, ScramClientParams};

/// Default floor on the SCRAM iteration count (RFC 7677 §4 recommends at least 4096).
pub const DEFAULT_MIN_ITERATIONS: u32 = 4096;
/// Default ceiling on the SCRAM iteration count: a hostile server cannot make the client spend
/// more than about a million HMAC blocks.
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

/// What the client authenticates with. Built with chained setters.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    authcid: String,
    password: Option<Zeroizing<String>>,
    authzid: Option<String>,
    nonce: String,
    gs2: Option<Gs2Binding>,
    bindings: Vec<ChannelBinding>,
    min_iterations: u32,
    max_iterations: u32,
    prep: PasswordPrep,
    cached: Option<ScramKeys>,
    advertised: Option<Advertised>,
    trace: Option<String>,
}

impl ClientConfig {
    /// A configuration for the authentication identity `authcid` (for XMPP c2s, the JID's
    /// localpart; ignored by EXTERNAL and ANONYMOUS) and the client nonce the host drew from
    /// its random source (printable ASCII without `,`; 24 or more characters recommended).
    pub fn new(authcid: impl Into<String>, nonce: impl Into<String>) -> Self {
        ClientConfig {
            authcid: authcid.into(),
            password: None,
            authzid: None,
            nonce: nonce.into(),
            gs2: None,
            bindings: Vec::new(),
            min_iterations: DEFAULT_MIN_ITERATIONS,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            prep: PasswordPrep::SaslPrep,
            cached: None,
            advertised: None,
            trace: None,
        }
    }

    /// The password (prepared with the [`PasswordPrep`] in force when the session starts).
    #[must_use]
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(Zeroizing::new(String::from(password)));
        self
    }

    /// An authorization identity (`a=` in SCRAM, the first field of PLAIN, the EXTERNAL
    /// message).
    #[must_use]
    pub fn authzid(mut self, authzid: impl Into<String>) -> Self {
        self.authzid = Some(authzid.into());
        self
    }

    /// Adds channel-binding data this connection can provide.
    #[must_use]
    pub fn channel_binding(mut self, binding: ChannelBinding) -> Self {
        self.bindings.retain(|b| b.kind() != binding.kind());
        self.bindings.push(binding);
        self
    }

    /// The GS2 channel-binding flag to send, normally from [`crate::Selection`]. Without it
    /// a `-PLUS` mechanism binds with the strongest type held, and other SCRAM mechanisms send
    /// `n`.
    #[must_use]
    pub fn gs2(mut self, gs2: Gs2Binding) -> Self {
        self.gs2 = Some(gs2);
        self
    }

    /// Bounds on the server's SCRAM iteration count (defaults [`DEFAULT_MIN_ITERATIONS`] and
    /// [`DEFAULT_MAX_ITERATIONS`]).
    #[must_use]
    pub fn iteration_limits(mut self, min: u32, max: u32) -> Self {
        self.min_iterations = min;
        self.max_iterations = max;
        self
    }

    /// The password preparation (default SASLprep).
    #[must_use]
    pub fn prep(mut self, prep: PasswordPrep) -> Self {
        self.prep = prep;
        self
    }

    /// Keys cached from an earlier login ([`Client::scram_keys`]); used when the server sends
    /// the same hash, salt and iteration count, so no PBKDF2 runs. With them the password may
    /// be omitted.
    #[must_use]
    pub fn cached_keys(mut self, keys: ScramKeys) -> Self {
        self.cached = Some(keys);
        self
    }

    /// XEP-0474: the mechanism names and (XEP-0440) channel-binding type names exactly as the
    /// server advertised them. When set, a server-first-message carrying `d=` is checked
    /// against them and a mismatch fails as a detected downgrade.
    #[must_use]
    pub fn advertised(
        mut self,
        mechanisms: Vec<String>,
        binding_types: Option<Vec<String>>,
    ) -> Self {
        self.advertised = Some(Advertised {
            mechanisms,
            binding_types,
        });
        self
    }

    /// ANONYMOUS trace information (RFC 4505: an email address or opaque token).
    #[must_use]
    pub fn anonymous_trace(mut self, trace: impl Into<String>) -> Self {
        self.trace = Some(trace.into());
        self
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Simple {
    Initial,
    Sent,
    Done,
    Failed,
}

#[derive(Debug)]
enum Inner {
    Scram(Box<ScramClient>),
    /// PLAIN (message prepared at construction), EXTERNAL and ANONYMOUS: one message, no
    /// challenge.
    Simple(Zeroizing<Vec<u8>>, Simple),
}

/// A client-side SASL exchange for any [`Mechanism`].
///
/// The host (the stream crate) base64-frames what this returns into `<auth/>` and
/// `<response/>`, and passes decoded `<challenge/>` and `<success/>` payloads back in:
///
/// 1. [`Client::start`] gives the initial response.
/// 2. [`Client::step`] answers each challenge.
/// 3. [`Client::finish`] checks `<success/>` and its additional data. Only when it returns `Ok`
///    has the server proved itself (SCRAM); a `<success/>` without that proof is an error.
#[derive(Debug)]
pub struct Client {
    mechanism: Mechanism,
    inner: Inner,
}

impl Client {
    /// Prepares an exchange. Fails when the configuration lacks what `mechanism` needs (a
    /// password or keys, binding data for `-PLUS`, a valid nonce) or the password is refused
    /// by preparation.
    pub fn new(mechanism: Mechanism, config: ClientConfig) -> Result<Self, Error> {
        let password = match &config.password {
            Some(p) => Some(config.prep.prepare(p)?),
            None => None,
        };
        #[allow(clippy::single_match_else)] // two peers of equal weight read better as a match
        let inner = match mechanism.scram_hash() {
            Some(hash) => {
                let plus = mechanism.is_plus();
                let gs2 = match config.gs2 {
                    Some(g) => g,
                    None if plus => ChannelBindingType::PREFERENCE
                        .into_iter()
                        .find(|t| config.bindings.iter().any(|b| b.kind() == *t))
                        .map(Gs2Binding::Bound)
                        .ok_or(Error::UnsupportedChannelBinding(None))?,
                    None => Gs2Binding::None,
                };
                if plus != matches!(gs2, Gs2Binding::Bound(_)) {
                    return Err(Error::ChannelBindingFlagMismatch);
                }
                let binding = match gs2 {
                    Gs2Binding::Bound(t) => config.bindings.iter().find(|b| b.kind() == t).cloned(),
                    _ => None,
                };
                let cached = config.cached.filter(|k| k.hash() == hash);
                if password.is_none() && cached.is_none() {
                    return Err(Error::MissingCredentials);
                }
                Inner::Scram(Box::new(ScramClient::new(ScramClientParams {
                    hash,
                    gs2,
                    binding,
                    authcid: config.authcid,
                    authzid: config.authzid,
                    nonce: config.nonce,
                    password,
                    cached,
                    min_iterations: config.min_iterations,
                    max_iterations: config.max_iterations,
                    advertised: config.advertised,
                })?))
            }
            None => {
                let msg = match mechanism {
                    Mechanism::Plain => {
                        let pw = password.ok_or(Error::MissingCredentials)?;
                        if config.authcid.is_empty() || config.authcid.contains('\0') {
                            return Err(Error::Usage("PLAIN needs a username without NUL"));
                        }
                        if pw.contains('\0')
                            || config.authzid.as_deref().is_some_and(|a| a.contains('\0'))
                        {
                            return Err(Error::Usage("PLAIN fields must not contain NUL"));
                        }
                        let mut m = Zeroizing::new(Vec::new());
                        if let Some(a) = &config.authzid {
                            m.extend_from_slice(a.as_bytes());
                        }
                        m.push(0);
                        m.extend_from_slice(config.authcid.as_bytes());
                        m.push(0);
                        m.extend_from_slice(pw.as_bytes());
                        m
                    }
                    Mechanism::External => {
                        Zeroizing::new(config.authzid.unwrap_or_default().into_bytes())
                    }
                    Mechanism::Anonymous => {
                        Zeroizing::new(config.trace.unwrap_or_default().into_bytes())
                    }
                    _ => return Err(Error::InvalidMechanism),
                };
                Inner::Simple(msg, Simple::Initial)
            }
        };
        Ok(Client { mechanism, inner })
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The GS2 flag sent (SCRAM only).
    pub fn gs2(&self) -> Option<Gs2Binding> {
        match &self.inner {
            Inner::Scram(s) => Some(s.gs2()),
            Inner::Simple(..) => None,
        }
    }

    /// The initial response for `<auth/>`. `Some(empty)` is an empty response (sent as `=`);
    /// every mechanism here sends one.
    #[must_use = "the initial response must be sent"]
    pub fn start(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match &mut self.inner {
            Inner::Scram(s) => s.start().map(Some),
            Inner::Simple(msg, state) => {
                if *state != Simple::Initial {
                    return Err(Error::Usage("start called twice"));
                }
                *state = Simple::Sent;
                Ok(Some(msg.to_vec()))
            }
        }
    }

    /// Answers a decoded `<challenge/>`.
    #[must_use = "the response must be sent"]
    pub fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        match &mut self.inner {
            Inner::Scram(s) => s.step(challenge),
            Inner::Simple(_, state) => {
                *state = Simple::Failed;
                Err(Error::Malformed("unexpected challenge"))
            }
        }
    }

    /// Checks `<success/>`: `additional_data` is its decoded content (`None` when empty).
    /// `Ok` means authenticated; for SCRAM only after the server signature verified.
    pub fn finish(&mut self, additional_data: Option<&[u8]>) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Scram(s) => s.finish(additional_data),
            Inner::Simple(_, state) => match (&*state, additional_data) {
                (Simple::Sent, None) => {
                    *state = Simple::Done;
                    Ok(())
                }
                (Simple::Sent, Some([])) => {
                    *state = Simple::Done;
                    Ok(())
                }
                (Simple::Sent, Some(_)) => {
                    *state = Simple::Failed;
                    Err(Error::Malformed("unexpected additional data"))
                }
                (Simple::Initial, _) => Err(Error::Usage("finish before start")),
                _ => Err(Error::Usage("session already finished")),
            },
        }
    }

    /// The keys derived (or reused) by a completed SCRAM exchange, for the host's cache.
    pub fn scram_keys(&self) -> Option<&ScramKeys> {
        match &self.inner {
            Inner::Scram(s) => s.keys(),
            Inner::Simple(..) => None,
        }
    }
}
