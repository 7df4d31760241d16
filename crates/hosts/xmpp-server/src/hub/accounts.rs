//! The accounts of every domain the hub serves: one [`MemoryBackend`] per domain, so that
//! alice@a.test and alice@a2.test are two accounts with two passwords. The c2s stream asks
//! with the domain the client's stream is `to` ([`ServerBackend::domain_credentials`]).

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use xmpp_jid::BareJid;
use xmpp_sasl::{Condition, ScramHash, StoredCredentials};
use xmpp_stream::backend::ServerBackend;
use xmpp_stream::{CredentialStore, MemoryBackend};

/// Accounts by domain; the primary domain's answer a stream that names no other. Behind a
/// lock: in-band registration (XEP-0077) adds, changes and removes accounts while the
/// streams that share this read it.
#[derive(Debug)]
pub(super) struct Accounts {
    primary: BareJid,
    by_domain: RwLock<BTreeMap<BareJid, MemoryBackend>>,
}

impl Accounts {
    pub(super) fn new(primary: BareJid) -> Self {
        Accounts {
            primary,
            by_domain: RwLock::new(BTreeMap::new()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<BareJid, MemoryBackend>> {
        self.by_domain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<BareJid, MemoryBackend>> {
        self.by_domain
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Add `name` at `domain`.
    pub(super) fn add(&mut self, domain: &BareJid, name: &str, password: &str, iterations: u32) {
        let mut by_domain = self.write();
        let backend = by_domain.remove(domain).unwrap_or_default();
        by_domain.insert(
            domain.clone(),
            backend.with_user(name, password, iterations),
        );
    }

    /// Add or replace `name` at `domain` with credentials derived elsewhere (the database's,
    /// or a registration's).
    pub(super) fn add_stored(
        &self,
        domain: &BareJid,
        name: &str,
        credentials: Vec<xmpp_sasl::StoredCredentials>,
    ) {
        self.write()
            .entry(domain.clone())
            .or_default()
            .set_credentials(name, credentials);
    }

    /// Add or replace the account `jid`.
    pub(super) fn set(&self, jid: &BareJid, credentials: Vec<xmpp_sasl::StoredCredentials>) {
        if let (Some(node), Ok(domain)) = (jid.node(), BareJid::from_parts(None, jid.domain())) {
            self.add_stored(&domain, node, credentials);
        }
    }

    /// Whether the account `jid` exists.
    pub(super) fn exists(&self, jid: &BareJid) -> bool {
        let (Some(node), Ok(domain)) = (jid.node(), BareJid::from_parts(None, jid.domain())) else {
            return false;
        };
        self.read()
            .get(&domain)
            .is_some_and(|backend| backend.has_user(node))
    }

    /// Remove the account `jid`; returns whether it existed.
    pub(super) fn remove(&self, jid: &BareJid) -> bool {
        let (Some(node), Ok(domain)) = (jid.node(), BareJid::from_parts(None, jid.domain())) else {
            return false;
        };
        self.write()
            .get_mut(&domain)
            .is_some_and(|backend| backend.remove_user(node))
    }
}

impl CredentialStore for Accounts {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        self.domain_credentials(&self.primary, authcid, hash)
    }
}

impl ServerBackend for Accounts {
    fn domain_credentials(
        &self,
        domain: &BareJid,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        match self.read().get(domain) {
            Some(backend) => backend.scram_credentials(authcid, hash),
            None => Ok(None),
        }
    }

    /// The certificate's XmppAddr accounts that exist at `domain` (SASL EXTERNAL, XEP-0178).
    fn certificate_accounts(
        &self,
        domain: &BareJid,
        presented: &[xmpp_stream::identity::PresentedId],
    ) -> Vec<BareJid> {
        self.read().get(domain).map_or_else(Vec::new, |backend| {
            backend.certificate_accounts(domain, presented)
        })
    }
}
