//! What a [`ServerStream`](crate::ServerStream) needs from the host's account database, and
//! an in-memory implementation.
//!
//! [`ServerBackend`] is the whole interface: SASL credentials through `xmpp-sasl`'s
//! [`CredentialStore`] (derived SCRAM keys, never passwords) and a say on resource binding.
//! A server shares one backend among all its streams by handing each an `Arc` of it.
//!
//! [`MemoryBackend`] keeps accounts in memory. It is a real backend, not only a test aid: the
//! example server and the WASM host run on it, and tests, benches and fuzz targets use it.
//! A server with persistent accounts implements the two traits over its own store instead.
//!
//! ```
//! use std::sync::Arc;
//! use xmpp_stream::backend::{MemoryBackend, ServerBackend};
//! use xmpp_stream::{CredentialStore, FullJid};
//! use xmpp_sasl::ScramHash;
//!
//! let accounts = Arc::new(MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096));
//! // Each ServerStream::new(config, entropy, accounts.clone()) shares it.
//! assert!(accounts.scram_credentials("juliet", ScramHash::Sha256).is_ok_and(|c| c.is_some()));
//! assert!(accounts.scram_credentials("romeo", ScramHash::Sha256).is_ok_and(|c| c.is_none()));
//! assert!(accounts.check_bind(&FullJid::new("juliet@example.com/balcony")?).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use xmpp_jid::{BareJid, FullJid};

use crate::identity::PresentedId;
use xmpp_sasl::{Condition, CredentialStore, PasswordPrep, ScramHash, StoredCredentials};
use xmpp_xml::StanzaErrorCondition;

/// What the server needs from the host's account database: SASL credentials (through
/// `xmpp-sasl`'s [`CredentialStore`]) and a say on resource binding.
pub trait ServerBackend: CredentialStore {
    /// Whether `jid` may be bound on this stream. Return `Err(Conflict)` when another session
    /// holds it and the host does not replace sessions, `Err(NotAllowed)` to refuse the
    /// resource, `Err(ResourceConstraint)` when the account has too many sessions. The default
    /// accepts every resource.
    fn check_bind(&self, jid: &FullJid) -> Result<(), StanzaErrorCondition> {
        let _ = jid;
        Ok(())
    }

    /// The SCRAM credentials of `authcid` at `domain`, for a server of several domains
    /// ([`ServerConfig::other_domains`](crate::ServerConfig::other_domains)): the stream asks
    /// with the domain the client's stream is `to`. The default ignores the domain (one
    /// account database for every domain).
    fn domain_credentials(
        &self,
        domain: &BareJid,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        let _ = domain;
        self.scram_credentials(authcid, hash)
    }

    /// The accounts of `domain` a client certificate logs in as with SASL EXTERNAL
    /// (XEP-0178 §2). `presented` are the names of a certificate the host already verified
    /// against the CA it trusts for clients. The default takes the certificate's XmppAddr
    /// JIDs at `domain` ([`identity::client_accounts`](crate::identity::client_accounts));
    /// a host that maps certificates its own way (subject, fingerprint) returns its answer.
    fn certificate_accounts(&self, domain: &BareJid, presented: &[PresentedId]) -> Vec<BareJid> {
        crate::identity::client_accounts(domain, presented)
    }
}

/// The accounts a client certificate may log in as, for the SASL EXTERNAL exchange of one
/// stream: the authorization identity must be one of them.
pub(crate) struct Certified<'a> {
    pub(crate) domain: &'a BareJid,
    pub(crate) accounts: &'a [BareJid],
}

impl CredentialStore for Certified<'_> {
    fn scram_credentials(
        &self,
        _: &str,
        _: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        Ok(None)
    }

    fn authorize(&self, _: &str, authzid: &str) -> Result<(), Condition> {
        crate::identity::client_account(self.domain, self.accounts, Some(authzid))
            .map(|_| ())
            .map_err(crate::identity::ClientRefusal::condition)
    }
}

/// The credentials of one domain of a [`ServerBackend`]: what a SASL exchange on a stream
/// `to` that domain sees.
pub(crate) struct AtDomain<'a> {
    pub(crate) backend: &'a dyn ServerBackend,
    pub(crate) domain: &'a BareJid,
}

impl CredentialStore for AtDomain<'_> {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        self.backend.domain_credentials(self.domain, authcid, hash)
    }

    fn authorize(&self, authcid: &str, authzid: &str) -> Result<(), Condition> {
        self.backend.authorize(authcid, authzid)
    }
}

/// One backend shared by every stream of a server: each `ServerStream` gets a clone of the
/// pointer, so memory per connection does not grow with the number of accounts.
impl<T: ServerBackend + ?Sized> ServerBackend for std::sync::Arc<T> {
    fn check_bind(&self, jid: &FullJid) -> Result<(), StanzaErrorCondition> {
        (**self).check_bind(jid)
    }

    fn domain_credentials(
        &self,
        domain: &BareJid,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        (**self).domain_credentials(domain, authcid, hash)
    }

    fn certificate_accounts(&self, domain: &BareJid, presented: &[PresentedId]) -> Vec<BareJid> {
        (**self).certificate_accounts(domain, presented)
    }
}

/// An in-memory account database: SCRAM credentials derived once per user and hash (the
/// passwords themselves are not kept); every bind accepted except full JIDs marked taken.
/// Lookups are `O(log n)` in the number of accounts.
#[derive(Clone, Debug, Default)]
pub struct MemoryBackend {
    users: BTreeMap<String, Vec<StoredCredentials>>,
    taken: Vec<String>,
}

impl MemoryBackend {
    /// An empty database.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    /// Add a user, deriving SCRAM credentials for every hash with `iterations` (4096 is the
    /// RFC 7677 floor and the client's default minimum) and the salt `salt-of-<name>`.
    #[must_use]
    pub fn with_user(self, name: &str, password: &str, iterations: u32) -> Self {
        let salt = format!("salt-of-{name}");
        self.with_user_salted(name, password, salt.as_bytes(), iterations)
    }

    /// Add a user, deriving SCRAM credentials for every hash from `password` with the given
    /// salt and iteration count (hashes whose derivation fails are left out).
    #[must_use]
    pub fn with_user_salted(
        mut self,
        name: &str,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let creds = ScramHash::ALL
            .iter()
            .filter_map(|hash| {
                StoredCredentials::derive(*hash, password, PasswordPrep::SaslPrep, salt, iterations)
                    .ok()
            })
            .collect();
        self.users.insert(name.to_owned(), creds);
        self
    }

    /// Add a user with credentials derived elsewhere.
    #[must_use]
    pub fn with_credentials(mut self, name: &str, credentials: Vec<StoredCredentials>) -> Self {
        self.users.insert(name.to_owned(), credentials);
        self
    }

    /// Add or replace a user with credentials derived elsewhere, in place (an account
    /// created by in-band registration, a changed password).
    pub fn set_credentials(&mut self, name: &str, credentials: Vec<StoredCredentials>) {
        self.users.insert(name.to_owned(), credentials);
    }

    /// Remove a user; returns whether it existed.
    pub fn remove_user(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
    }

    /// Whether the user exists.
    pub fn has_user(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// Mark a full JID as already bound elsewhere: binding it yields `conflict`.
    #[must_use]
    pub fn with_taken(mut self, full_jid: &str) -> Self {
        self.taken.push(full_jid.to_owned());
        self
    }
}

impl CredentialStore for MemoryBackend {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        Ok(self
            .users
            .get(authcid)
            .and_then(|creds| creds.iter().find(|c| c.hash() == hash).cloned()))
    }
}

impl ServerBackend for MemoryBackend {
    fn check_bind(&self, jid: &FullJid) -> Result<(), StanzaErrorCondition> {
        if self.taken.iter().any(|taken| taken == jid.as_str()) {
            Err(StanzaErrorCondition::Conflict)
        } else {
            Ok(())
        }
    }

    /// The certificate's XmppAddr accounts that exist here.
    fn certificate_accounts(&self, domain: &BareJid, presented: &[PresentedId]) -> Vec<BareJid> {
        let mut accounts = crate::identity::client_accounts(domain, presented);
        accounts.retain(|account| {
            account
                .node()
                .is_some_and(|node| self.users.contains_key(node))
        });
        accounts
    }
}
