//! The accounts the machine has loaded, as the [`RosterStore`] its rules read and write: reads
//! answer from memory, writes change memory and are journaled, so that the unit of work that
//! made them hands them to the host as one [`crate::Output::Write`].

use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::{BTreeMap, HashMap};

use xmpp_jid::BareJid;

use crate::privacy::PrivacyData;
use crate::store::{AccountData, Change, RosterEntry, RosterStore};

/// One loaded account.
#[derive(Debug, Clone, Default)]
struct Cached {
    exists: bool,
    version: u64,
    entries: BTreeMap<BareJid, RosterEntry>,
}

/// The loaded accounts and the journal of the unit being run.
#[derive(Debug, Clone, Default)]
pub(super) struct Cache {
    /// Fixed-key hasher: reproducible runs; never iterated for output.
    accounts: HashMap<BareJid, Cached, crate::FixedHasher>,
    /// Changes made since the last [`Cache::take_journal`].
    journal: Vec<Change>,
    /// Reads of accounts that were not loaded: a unit's needs were computed wrong. Counted so
    /// that tests prove it never happens.
    misses: Misses,
}

/// A counter behind `&self` that keeps the machine `Sync` (a `Cell` would not).
#[derive(Debug, Default)]
struct Misses(AtomicU64);

impl Clone for Misses {
    fn clone(&self) -> Self {
        Misses(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

impl Cache {
    /// Whether the account is loaded.
    pub(super) fn has(&self, user: &BareJid) -> bool {
        self.accounts.contains_key(user)
    }

    /// Whether the account of this enforced bare JID string is loaded (no `BareJid` built).
    pub(super) fn has_str(&self, user: &str) -> bool {
        self.accounts.contains_key(user)
    }

    /// Takes in a loaded account (its privacy state goes to the machine, returned).
    pub(super) fn insert(&mut self, user: BareJid, data: AccountData) -> Option<PrivacyData> {
        let cached = Cached {
            exists: data.exists,
            version: data.version,
            entries: data
                .entries
                .into_iter()
                .map(|e| (e.jid.clone(), e))
                .collect(),
        };
        self.accounts.insert(user, cached);
        data.privacy
    }

    /// Forgets an account (unloaded, or its storage failed and must be read again).
    pub(super) fn remove(&mut self, user: &BareJid) {
        self.accounts.remove(user);
    }

    /// Gives back the slots of accounts no longer loaded.
    pub(super) fn shrink(&mut self) {
        super::storage::shrink(&mut self.accounts);
    }

    /// The contacts of a loaded account.
    pub(super) fn contacts(&self, user: &BareJid) -> Vec<BareJid> {
        self.accounts
            .get(user)
            .map(|a| a.entries.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The changes journaled since the last call.
    pub(super) fn take_journal(&mut self) -> Vec<Change> {
        core::mem::take(&mut self.journal)
    }

    /// Records a privacy change (the state itself lives in the machine).
    pub(super) fn journal_privacy(&mut self, user: BareJid, data: PrivacyData) {
        if self.account(&user).is_some_and(|a| a.exists) {
            self.journal.push(Change::Privacy { user, data });
        }
    }

    /// How many reads found their account not loaded.
    #[cfg(test)]
    pub(super) fn misses(&self) -> u64 {
        self.misses.0.load(Ordering::Relaxed)
    }

    fn account(&self, user: &BareJid) -> Option<&Cached> {
        let found = self.accounts.get(user);
        if found.is_none() {
            self.misses.0.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    fn existing_mut(&mut self, user: &BareJid) -> Option<&mut Cached> {
        self.accounts.get_mut(user).filter(|a| a.exists)
    }
}

// An account that is not loaded reads as absent (the safe reading: nothing is revealed or
// granted) and is counted as a miss.
impl RosterStore for Cache {
    fn account_exists(&self, user: &BareJid) -> bool {
        self.account(user).is_some_and(|a| a.exists)
    }

    fn entry(&self, user: &BareJid, contact: &BareJid) -> Option<RosterEntry> {
        self.account(user)?.entries.get(contact).cloned()
    }

    fn entries(&self, user: &BareJid) -> Vec<RosterEntry> {
        self.account(user)
            .map(|a| a.entries.values().cloned().collect())
            .unwrap_or_default()
    }

    fn put(&mut self, user: &BareJid, entry: RosterEntry) {
        if self.account(user).is_none() {
            return;
        }
        if let Some(a) = self.existing_mut(user) {
            a.entries.insert(entry.jid.clone(), entry.clone());
            self.journal.push(Change::PutEntry {
                user: user.clone(),
                entry,
            });
        }
    }

    fn delete(&mut self, user: &BareJid, contact: &BareJid) {
        if self.account(user).is_none() {
            return;
        }
        let removed = self
            .existing_mut(user)
            .is_some_and(|a| a.entries.remove(contact).is_some());
        if removed {
            self.journal.push(Change::DeleteEntry {
                user: user.clone(),
                contact: contact.clone(),
            });
        }
    }

    fn version(&self, user: &BareJid) -> u64 {
        self.account(user).map_or(0, |a| a.version)
    }

    fn set_version(&mut self, user: &BareJid, version: u64) {
        if self.account(user).is_none() {
            return;
        }
        if let Some(a) = self.existing_mut(user) {
            a.version = version;
            self.journal.push(Change::Version {
                user: user.clone(),
                version,
            });
        }
    }

    fn privacy(&self, _user: &BareJid) -> Option<PrivacyData> {
        // The machine holds the privacy state of loaded accounts itself.
        None
    }

    fn set_privacy(&mut self, user: &BareJid, data: PrivacyData) {
        self.journal_privacy(user.clone(), data);
    }
}
