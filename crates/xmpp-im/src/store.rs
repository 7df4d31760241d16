//! Account storage, the Sans-IO way: the [`Server`](crate::Server) asks for an account's data
//! with [`Output::Load`](crate::Output::Load) and is answered with
//! [`Server::handle_load`](crate::Server::handle_load) whenever the host's database answers;
//! it hands its changes out as [`Output::Write`](crate::Output::Write) and learns with
//! [`Server::handle_write`](crate::Server::handle_write) when they are durable. The vocabulary
//! of both directions lives here: [`LoadId`], [`AccountData`], [`WriteId`], [`Change`],
//! [`StoreError`].
//!
//! [`RosterStore`] is the synchronous convenience on top: a store that answers at once (such as
//! [`MemoryStore`], for tests and examples) is passed to the server's `&mut impl RosterStore`
//! methods, which answer every load and write from it before they return.

use std::collections::{BTreeMap, HashMap};

use minidom::Element;
use xmpp_jid::BareJid;

use crate::privacy::PrivacyData;
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
    /// The user's privacy lists and blocklist (XEP-0016, XEP-0191); `None` when none.
    fn privacy(&self, user: &BareJid) -> Option<PrivacyData>;
    /// Replaces the user's privacy lists and blocklist.
    fn set_privacy(&mut self, user: &BareJid, data: PrivacyData);

    /// Everything the server keeps about the account, as one [`Output::Load`] asks for it.
    ///
    /// [`Output::Load`]: crate::Output::Load
    fn load(&self, user: &BareJid) -> AccountData {
        if !self.account_exists(user) {
            return AccountData::missing();
        }
        AccountData {
            exists: true,
            version: self.version(user),
            entries: self.entries(user),
            privacy: self.privacy(user),
        }
    }

    /// Applies one change of an [`Output::Write`].
    ///
    /// [`Output::Write`]: crate::Output::Write
    fn apply(&mut self, change: Change) {
        match change {
            Change::PutEntry { user, entry } => self.put(&user, entry),
            Change::DeleteEntry { user, contact } => self.delete(&user, &contact),
            Change::Version { user, version } => self.set_version(&user, version),
            Change::Privacy { user, data } => self.set_privacy(&user, data),
        }
    }
}

/// Names one [`Output::Load`](crate::Output::Load); the host answers it with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LoadId(pub u64);

/// Names one [`Output::Write`](crate::Output::Write); the host reports it durable (or failed)
/// with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// A point in the sequence of units of work the machine has queued (one per input that needs
/// stored state and could not run at once): [`Server::work_mark`](crate::Server::work_mark)
/// before and after handing an input in brackets the units it queued, and
/// [`Server::queued_between`](crate::Server::queued_between) says whether any of them still
/// waits. A host that counts an input as handled only once its storage is durable (XEP-0198
/// with a database) waits for the requests such a unit makes when it runs, and for no other
/// unit's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkMark(pub u64);

/// One account as the host's storage holds it: the answer to a load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountData {
    /// Whether the account exists. A missing account gets the answers RFC 6121 §8.5.1
    /// prescribes, and nothing is ever written for it.
    pub exists: bool,
    /// The roster version counter (RFC 6121 §2.6).
    pub version: u64,
    /// Every roster entry (items and pending-in contacts).
    pub entries: Vec<RosterEntry>,
    /// The privacy lists and blocklist, if any.
    pub privacy: Option<PrivacyData>,
}

impl AccountData {
    /// The answer for an account that does not exist.
    #[must_use]
    pub fn missing() -> Self {
        Self::default()
    }

    /// An existing account with nothing stored yet.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            exists: true,
            ..Self::default()
        }
    }
}

/// One change of an [`Output::Write`](crate::Output::Write). The changes of one write are one
/// transaction: the host makes all of them durable or none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Insert or replace the entry for `entry.jid`.
    PutEntry {
        /// The account.
        user: BareJid,
        /// The entry.
        entry: RosterEntry,
    },
    /// Delete the entry for `contact`.
    DeleteEntry {
        /// The account.
        user: BareJid,
        /// The contact.
        contact: BareJid,
    },
    /// Set the roster version counter.
    Version {
        /// The account.
        user: BareJid,
        /// The new version.
        version: u64,
    },
    /// Replace the privacy lists and blocklist.
    Privacy {
        /// The account.
        user: BareJid,
        /// The new state.
        data: PrivacyData,
    },
}

impl Change {
    /// The account the change is about.
    #[must_use]
    pub fn user(&self) -> &BareJid {
        match self {
            Self::PutEntry { user, .. }
            | Self::DeleteEntry { user, .. }
            | Self::Version { user, .. }
            | Self::Privacy { user, .. } => user,
        }
    }
}

/// Why the host's storage could not answer a load or make a write durable. The machine answers
/// the work that needed it with `internal-server-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "storage failed: {}", self.0)
    }
}

impl core::error::Error for StoreError {}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct MemAccount {
    version: u64,
    entries: BTreeMap<BareJid, RosterEntry>,
    privacy: Option<PrivacyData>,
}

/// An in-memory [`RosterStore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    /// Fixed-key hasher: reproducible, and one probe per lookup on large stores. Never
    /// iterated.
    accounts: HashMap<BareJid, MemAccount, crate::FixedHasher>,
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

    fn privacy(&self, user: &BareJid) -> Option<PrivacyData> {
        self.accounts.get(user)?.privacy.clone()
    }

    fn set_privacy(&mut self, user: &BareJid, data: PrivacyData) {
        if let Some(a) = self.accounts.get_mut(user) {
            a.privacy = Some(data);
        }
    }
}
