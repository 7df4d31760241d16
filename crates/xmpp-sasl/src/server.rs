//! The server side: one session type over every mechanism.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::codec;
use crate::credentials::CredentialStore;
use crate::crypto;
use crate::error::{Condition, Error};
use crate::mechanism::{ChannelBinding, ChannelBindingType, Mechanism, ScramHash};
use crate::prep::PasswordPrep;
use crate::scram::{self, ScramServer, ScramServerParams, ServerOut};

/// Server policy and per-connection facts. Built with chained setters.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    nonce: String,
    tls: bool,
    offered: Option<Vec<Mechanism>>,
    bindings: Vec<ChannelBinding>,
    advertised_binding_types: Option<Vec<ChannelBindingType>>,
    downgrade_protection: bool,
    external_identity: Option<String>,
    allow_plain_without_tls: bool,
    require_channel_binding: bool,
    prep: PasswordPrep,
    plain_hashes: Vec<ScramHash>,
    mock_iterations: u32,
    mock_secret: Vec<u8>,
}

impl ServerConfig {
    /// A configuration with the server nonce the host drew from its random source (printable
    /// ASCII without `,`; 24 or more characters recommended). Defaults: no TLS, SCRAM
    /// (SHA-512/256/1, `-PLUS` when binding data is set) and PLAIN (only with TLS), XEP-0474
    /// downgrade protection on, SASLprep.
    pub fn new(nonce: impl Into<String>) -> Self {
        ServerConfig {
            nonce: nonce.into(),
            tls: false,
            offered: None,
            bindings: Vec::new(),
            advertised_binding_types: None,
            downgrade_protection: true,
            external_identity: None,
            allow_plain_without_tls: false,
            require_channel_binding: false,
            prep: PasswordPrep::SaslPrep,
            plain_hashes: alloc::vec![ScramHash::Sha256, ScramHash::Sha512, ScramHash::Sha1],
            mock_iterations: 4096,
            mock_secret: Vec::new(),
        }
    }

    /// Whether the stream is encrypted (TLS established).
    #[must_use]
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The mechanisms the host is willing to offer (before the connection's constraints in
    /// [`ServerConfig::mechanisms`] filter them).
    #[must_use]
    pub fn offer(mut self, mechanisms: Vec<Mechanism>) -> Self {
        self.offered = Some(mechanisms);
        self
    }

    /// Adds this connection's channel-binding data for one type.
    #[must_use]
    pub fn channel_binding(mut self, binding: ChannelBinding) -> Self {
        self.bindings.retain(|b| b.kind() != binding.kind());
        self.bindings.push(binding);
        self
    }

    /// The channel-binding types advertised with XEP-0440 (`<sasl-channel-binding/>`), which
    /// also enter the XEP-0474 hash. Leave unset when not advertising them.
    #[must_use]
    pub fn advertised_binding_types(mut self, types: Vec<ChannelBindingType>) -> Self {
        self.advertised_binding_types = Some(types);
        self
    }

    /// Whether to send the XEP-0474 `d=` attribute in SCRAM (default on). The hash covers
    /// [`ServerConfig::mechanisms`] and the XEP-0440 types set here, so the host must advertise
    /// exactly those lists, or honest clients that check `d=` will refuse to log in.
    #[must_use]
    pub fn downgrade_protection(mut self, on: bool) -> Self {
        self.downgrade_protection = on;
        self
    }

    /// The identity the host established outside SASL (e.g. from the verified TLS client
    /// certificate); enables EXTERNAL.
    #[must_use]
    pub fn external_identity(mut self, identity: impl Into<String>) -> Self {
        self.external_identity = Some(identity.into());
        self
    }

    /// Allow PLAIN on an unencrypted stream (default no: RFC 6120 §13.8.3).
    #[must_use]
    pub fn allow_plain_without_tls(mut self, allow: bool) -> Self {
        self.allow_plain_without_tls = allow;
        self
    }

    /// Require channel binding: only `-PLUS` and EXTERNAL are acceptable.
    #[must_use]
    pub fn require_channel_binding(mut self, require: bool) -> Self {
        self.require_channel_binding = require;
        self
    }

    /// The password preparation used for PLAIN (must match the one the credentials were
    /// derived with).
    #[must_use]
    pub fn prep(mut self, prep: PasswordPrep) -> Self {
        self.prep = prep;
        self
    }

    /// The order in which PLAIN looks up stored SCRAM credentials (default SHA-256, SHA-512,
    /// SHA-1).
    #[must_use]
    pub fn plain_hashes(mut self, hashes: Vec<ScramHash>) -> Self {
        self.plain_hashes = hashes;
        self
    }

    /// For unknown users SCRAM runs to the end with a made-up salt (derived from this secret
    /// and the username, so it is stable across attempts) and this iteration count. Set a
    /// secret so outsiders cannot predict the made-up salt.
    #[must_use]
    pub fn unknown_user_mock(mut self, secret: &[u8], iterations: u32) -> Self {
        self.mock_secret = secret.to_vec();
        self.mock_iterations = iterations;
        self
    }

    /// The mechanisms to advertise on this connection: the offered ones, less `-PLUS` without
    /// TLS and binding data, PLAIN without TLS (unless allowed), EXTERNAL without an identity,
    /// and everything but `-PLUS`/EXTERNAL when channel binding is required.
    pub fn mechanisms(&self) -> Vec<Mechanism> {
        let default = [
            Mechanism::ScramSha512Plus,
            Mechanism::ScramSha256Plus,
            Mechanism::ScramSha1Plus,
            Mechanism::ScramSha512,
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
            Mechanism::External,
        ];
        let offered: &[Mechanism] = self.offered.as_deref().unwrap_or(&default);
        offered
            .iter()
            .copied()
            .filter(|m| self.refusal(*m).is_none())
            .collect()
    }

    fn refusal(&self, m: Mechanism) -> Option<Error> {
        if self.require_channel_binding && !(m.is_plus() || m == Mechanism::External) {
            return Some(Error::MechanismTooWeak);
        }
        match m {
            _ if m.is_plus() && (!self.tls || self.bindings.is_empty()) => {
                Some(Error::InvalidMechanism)
            }
            Mechanism::Plain if !self.tls && !self.allow_plain_without_tls => {
                Some(Error::EncryptionRequired)
            }
            Mechanism::External if self.external_identity.is_none() => {
                Some(Error::InvalidMechanism)
            }
            _ => None,
        }
    }
}

/// What the server learned from a successful exchange.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// The authentication identity (`None` for ANONYMOUS). For EXTERNAL, the host's
    /// external identity.
    pub authcid: Option<String>,
    /// The authorization identity the client asked for, already approved by
    /// [`CredentialStore::authorize`].
    pub authzid: Option<String>,
    /// ANONYMOUS trace information, if sent.
    pub trace: Option<String>,
}

/// The server's answer to one client message.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the challenge or success must be sent"]
pub enum ServerStep {
    /// Send `<challenge/>` with these bytes.
    Challenge(Vec<u8>),
    /// Send `<success/>` with this additional data (the SCRAM server-final-message), and
    /// treat the client as authenticated.
    Success {
        /// The `<success/>` payload, if any.
        additional_data: Option<Vec<u8>>,
        /// Who authenticated.
        identity: Authenticated,
    },
}

#[derive(Debug)]
enum Inner {
    Scram(ScramServer),
    Simple(bool),
}

/// A server-side SASL exchange for any [`Mechanism`].
///
/// Created when `<auth mechanism=.../>` arrives; fed the decoded initial response and each
/// `<response/>` through [`Server::step`]. An `Err` ends the exchange: send `<failure/>` with
/// [`Error::condition`] and log the error itself.
#[derive(Debug)]
pub struct Server {
    mechanism: Mechanism,
    config: ServerConfig,
    inner: Inner,
}

impl Server {
    /// Starts an exchange for the mechanism the client chose. Fails with `invalid-mechanism`,
    /// `encryption-required` or `mechanism-too-weak` when this connection does not offer it.
    pub fn new(mechanism: Mechanism, config: ServerConfig) -> Result<Self, Error> {
        if let Some(e) = config.refusal(mechanism) {
            return Err(e);
        }
        if config
            .offered
            .as_ref()
            .is_some_and(|o| !o.contains(&mechanism))
        {
            return Err(Error::InvalidMechanism);
        }
        let inner = match mechanism.scram_hash() {
            Some(hash) => {
                let advertised = config.mechanisms();
                let ssdp = config.downgrade_protection.then(|| {
                    let names: Vec<String> = advertised.iter().map(ToString::to_string).collect();
                    let cb: Option<Vec<String>> = config
                        .advertised_binding_types
                        .as_ref()
                        .map(|t| t.iter().map(ToString::to_string).collect());
                    scram::downgrade_hash(hash, &names, cb.as_deref())
                });
                Inner::Scram(ScramServer::new(ScramServerParams {
                    hash,
                    plus: mechanism.is_plus(),
                    offers_plus: advertised.iter().any(|m| m.is_plus()),
                    bindings: &config.bindings,
                    nonce: &config.nonce,
                    ssdp,
                    mock_iterations: config.mock_iterations,
                    mock_secret: &config.mock_secret,
                })?)
            }
            None => Inner::Simple(false),
        };
        Ok(Server {
            mechanism,
            config,
            inner,
        })
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Processes the initial response or a `<response/>`.
    ///
    /// A missing initial response is the stream's business (it sends the empty challenge of
    /// RFC 6120 §6.4.2 and passes the answer here); an empty slice here means a zero-length
    /// message (`=`), which PLAIN and SCRAM reject as malformed.
    pub fn step<S: CredentialStore + ?Sized>(
        &mut self,
        store: &S,
        response: &[u8],
    ) -> Result<ServerStep, Error> {
        codec::check_len(response)?;
        match &mut self.inner {
            Inner::Scram(s) => match s.step(store, response)? {
                ServerOut::Challenge(c) => Ok(ServerStep::Challenge(c)),
                ServerOut::Success(ok) => Ok(ServerStep::Success {
                    additional_data: Some(ok.server_final),
                    identity: Authenticated {
                        mechanism: self.mechanism,
                        authcid: Some(ok.authcid),
                        authzid: ok.authzid,
                        trace: None,
                    },
                }),
            },
            Inner::Simple(done) => {
                if *done {
                    return Err(Error::Malformed("response after completion"));
                }
                *done = true;
                let identity = match self.mechanism {
                    Mechanism::Plain => plain(&self.config, store, response)?,
                    Mechanism::External => external(&self.config, store, response)?,
                    Mechanism::Anonymous => anonymous(response)?,
                    _ => return Err(Error::InvalidMechanism),
                };
                Ok(ServerStep::Success {
                    additional_data: None,
                    identity: Authenticated {
                        mechanism: self.mechanism,
                        ..identity
                    },
                })
            }
        }
    }
}

fn authorize<S: CredentialStore + ?Sized>(
    store: &S,
    authcid: &str,
    authzid: &str,
) -> Result<(), Error> {
    store.authorize(authcid, authzid).map_err(|c| match c {
        Condition::InvalidAuthzid => Error::InvalidAuthzid,
        c => Error::Store(c),
    })
}

/// RFC 4616 field bound: implementations must accept 255 octets; XMPP localparts go to 1023.
const MAX_FIELD: usize = 1023;

fn plain<S: CredentialStore + ?Sized>(
    config: &ServerConfig,
    store: &S,
    msg: &[u8],
) -> Result<Authenticated, Error> {
    let mut parts = msg.split(|b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed("PLAIN needs exactly three fields"));
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(Error::Malformed("empty PLAIN field"));
    }
    if authzid.len() > MAX_FIELD || authcid.len() > MAX_FIELD || password.len() > MAX_FIELD {
        return Err(Error::TooLong);
    }
    let to_str = |b| core::str::from_utf8(b).map_err(|_| Error::BadEncoding);
    let (authzid, authcid, password) = (to_str(authzid)?, to_str(authcid)?, to_str(password)?);
    let prepared = config.prep.prepare(password)?;
    let mut found = None;
    for &hash in &config.plain_hashes {
        if let Some(c) = store
            .scram_credentials(authcid, hash)
            .map_err(Error::Store)?
        {
            if c.hash() == hash {
                found = Some(c);
                break;
            }
        }
    }
    let Some(creds) = found else {
        // Pay the same PBKDF2 as for a known user, so timing does not reveal absence.
        let _ = crypto::salted_password(
            ScramHash::Sha256,
            prepared.as_bytes(),
            b"xmpp-sasl mock",
            config.mock_iterations,
        );
        return Err(Error::UnknownUser);
    };
    let salted = crypto::salted_password(
        creds.hash(),
        prepared.as_bytes(),
        creds.salt(),
        creds.iterations(),
    );
    let (client_key, _) = crypto::client_server_keys(creds.hash(), &salted);
    let stored = crypto::h(creds.hash(), client_key.as_slice());
    if !creds.stored_key_ref().ct_eq(stored.as_slice()) {
        return Err(Error::InvalidProof);
    }
    let authzid = if authzid.is_empty() {
        None
    } else {
        authorize(store, authcid, authzid)?;
        Some(String::from(authzid))
    };
    Ok(Authenticated {
        mechanism: Mechanism::Plain,
        authcid: Some(String::from(authcid)),
        authzid,
        trace: None,
    })
}

fn external<S: CredentialStore + ?Sized>(
    config: &ServerConfig,
    store: &S,
    msg: &[u8],
) -> Result<Authenticated, Error> {
    let identity = config
        .external_identity
        .as_ref()
        .ok_or(Error::MissingCredentials)?;
    if msg.len() > MAX_FIELD {
        return Err(Error::TooLong);
    }
    let authzid = core::str::from_utf8(msg).map_err(|_| Error::BadEncoding)?;
    if authzid.contains('\0') {
        return Err(Error::InvalidAuthzid);
    }
    let authzid = if authzid.is_empty() {
        None
    } else {
        authorize(store, identity, authzid)?;
        Some(String::from(authzid))
    };
    Ok(Authenticated {
        mechanism: Mechanism::External,
        authcid: Some(identity.clone()),
        authzid,
        trace: None,
    })
}

fn anonymous(msg: &[u8]) -> Result<Authenticated, Error> {
    // RFC 4505: trace is at most 255 characters (UTF-8, so at most 1020 bytes).
    let trace = core::str::from_utf8(msg).map_err(|_| Error::BadEncoding)?;
    if trace.chars().count() > 255 {
        return Err(Error::TooLong);
    }
    if trace.contains('\0') {
        return Err(Error::Malformed("NUL in trace"));
    }
    Ok(Authenticated {
        mechanism: Mechanism::Anonymous,
        authcid: None,
        authzid: None,
        trace: (!trace.is_empty()).then(|| String::from(trace)),
    })
}
