//! Roster storage: the host's, behind [`RosterStore`], with [`MemoryStore`] for tests and
//! examples.
//!
//! The server reads and writes through the trait synchronously while handling one input, so a
//! chain of effects inside one call (a subscription approved automatically, then its answer
//! processed locally) always sees its own writes.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, DefaultHasher};

use minidom::Element;
use xmpp_jid::BareJid;

use crate::roster::RosterItem;
use crate::subscription::{ContactState, State};

/// What the server stores about one contact of one account: the roster item fields and the
/// subscription state of RFC 6121 Appendix A.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The contact.
    pub jid: BareJid,
    /// The user-assigned name.
    pub name: Option<String>,
    /// The groups.
    pub groups: Vec<String>,
    /// The subscription state and pre-approval.
    pub state: ContactState,
    /// Whether the contact is an item of the user's roster. A contact whose request is only
    /// pending in (§3.1.3) is remembered but not shown until the user acts on it.
    pub in_roster: bool,
    /// The contact's subscription request while it awaits the user's answer: the complete
    /// stanza, extended content included (`<status/>`, XEP-0172 `<nick/>`), addressed from the
    /// contact's bare JID to the user's, delivered as such on the user's next login (RFC 6121
    /// §3.1.3). `None` once answered, and for requests stored before this field existed (a
    /// bare `<presence type='subscribe'/>` is delivered for those).
    pub request: Option<Element>,
}

impl RosterEntry {
    /// A fresh entry: no subscription, not in the roster.
    #[must_use]
    pub fn new(jid: BareJid) -> Self {
        Self {
            jid,
            name: None,
            groups: Vec::new(),
            state: ContactState::default(),
            in_roster: false,
            request: None,
        }
    }

    /// The roster item the user sees.
    #[must_use]
    pub fn item(&self) -> RosterItem {
        RosterItem {
            name: self.name.clone(),
            subscription: self.state.state.subscription(),
            ask: self.state.state.pending_out(),
            approved: self.state.pre_approved,
            groups: self.groups.clone(),
            subscription_given: true,
            ..RosterItem::new(self.jid.clone())
        }
    }

    /// Whether the entry holds nothing worth keeping.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.in_roster && self.state.state == State::None && !self.state.pre_approved
    }
}

/// The host's roster storage.
pub trait RosterStore {
    /// Whether the account exists.
    fn account_exists(&self, user: &BareJid) -> bool;
    /// The entry for a contact of the user.
    fn entry(&self, user: &BareJid, contact: &BareJid) -> Option<RosterEntry>;
    /// Every entry of the user (roster items and pending-in contacts).
    fn entries(&self, user: &BareJid) -> Vec<RosterEntry>;
    /// Inserts or replaces an entry.
    fn put(&mut self, user: &BareJid, entry: RosterEntry);
    /// Deletes an entry.
    fn delete(&mut self, user: &BareJid, contact: &BareJid);
    /// The user's roster version counter (RFC 6121 §2.6).
    fn version(&self, user: &BareJid) -> u64;
    /// Sets the user's roster version counter.
    fn set_version(&mut self, user: &BareJid, version: u64);
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct MemAccount {
    version: u64,
    entries: BTreeMap<BareJid, RosterEntry>,
}

/// An in-memory [`RosterStore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    /// Fixed-key hasher: reproducible, and one probe per lookup on large stores. Never
    /// iterated.
    accounts: HashMap<BareJid, MemAccount, BuildHasherDefault<DefaultHasher>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an account (no-op if it exists).
    pub fn add_account(&mut self, user: BareJid) {
        self.accounts.entry(user).or_default();
    }

    /// The number of accounts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there are no accounts.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

impl RosterStore for MemoryStore {
    fn account_exists(&self, user: &BareJid) -> bool {
        self.accounts.contains_key(user)
    }

    fn entry(&self, user: &BareJid, contact: &BareJid) -> Option<RosterEntry> {
        self.accounts.get(user)?.entries.get(contact).cloned()
    }

    fn entries(&self, user: &BareJid) -> Vec<RosterEntry> {
        self.accounts
            .get(user)
            .map(|a| a.entries.values().cloned().collect())
            .unwrap_or_default()
    }

    fn put(&mut self, user: &BareJid, entry: RosterEntry) {
        if let Some(a) = self.accounts.get_mut(user) {
            a.entries.insert(entry.jid.clone(), entry);
        }
    }

    fn delete(&mut self, user: &BareJid, contact: &BareJid) {
        if let Some(a) = self.accounts.get_mut(user) {
            a.entries.remove(contact);
        }
    }

    fn version(&self, user: &BareJid) -> u64 {
        self.accounts.get(user).map_or(0, |a| a.version)
    }

    fn set_version(&mut self, user: &BareJid, version: u64) {
        if let Some(a) = self.accounts.get_mut(user) {
            a.version = version;
        }
    }
}
