//! The accounts of every domain the hub serves: one [`MemoryBackend`] per domain, so that
//! alice@a.test and alice@a2.test are two accounts with two passwords. The c2s stream asks
//! with the domain the client's stream is `to` ([`ServerBackend::domain_credentials`]).

use std::collections::BTreeMap;

use xmpp_jid::BareJid;
use xmpp_sasl::{Condition, ScramHash, StoredCredentials};
use xmpp_stream::backend::ServerBackend;
use xmpp_stream::{CredentialStore, MemoryBackend};

/// Accounts by domain; the primary domain's answer a stream that names no other.
#[derive(Debug)]
pub(super) struct Accounts {
    primary: BareJid,
    by_domain: BTreeMap<BareJid, MemoryBackend>,
}

impl Accounts {
    pub(super) fn new(primary: BareJid) -> Self {
        Accounts {
            primary,
            by_domain: BTreeMap::new(),
        }
    }

    /// Add `name` at `domain`.
    pub(super) fn add(&mut self, domain: &BareJid, name: &str, password: &str, iterations: u32) {
        let backend = self.by_domain.remove(domain).unwrap_or_default();
        self.by_domain.insert(
            domain.clone(),
            backend.with_user(name, password, iterations),
        );
    }
}

impl Accounts {
    /// Add `name` at `domain` with credentials derived elsewhere (the database's).
    pub(super) fn add_stored(
        &mut self,
        domain: &BareJid,
        name: &str,
        credentials: Vec<xmpp_sasl::StoredCredentials>,
    ) {
        let backend = self.by_domain.remove(domain).unwrap_or_default();
        self.by_domain
            .insert(domain.clone(), backend.with_credentials(name, credentials));
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
        match self.by_domain.get(domain) {
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
        self.by_domain.get(domain).map_or_else(Vec::new, |backend| {
            backend.certificate_accounts(domain, presented)
        })
    }
}
