//! Storage as outputs and inputs: units of work, the accounts they need, loads, writes, and
//! the release of a unit's outputs once its changes are durable.
//!
//! Every input that may read or change stored state (a session's stanza, a remote stanza, a
//! session's end, a bounce) becomes one *unit*. A unit runs when
//! - every account it needs is loaded ([`Output::Load`], answered by [`Server::handle_load`]),
//! - none of them has a write in flight (so no unit ever builds on a change that may still
//!   fail), and
//! - no earlier waiting unit may touch any of them (so units that share an account run in the
//!   order they arrived: the outputs per account are those of an immediate store).
//!
//! A unit's changes leave as one [`Output::Write`]; its outputs (roster pushes, iq results,
//! subscription approvals, everything it produced) are held until [`Server::handle_write`]
//! reports the write durable (RFC 6121 §2.1.6 / §3.1.5 acknowledge only what is stored). A
//! failed write discards them, forgets the accounts (they are loaded again from the store's
//! truth) and answers the unit's stanza `internal-server-error`. Waiting units are bounded per
//! account ([`ServerConfig::max_parked`](super::ServerConfig::max_parked)); beyond, the stanza
//! is answered `resource-constraint`.

use std::collections::{BTreeSet, HashMap, VecDeque};

use minidom::Element;
use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::privacy::Account;
use super::sessions::Session;
use super::{Output, Server, UsageError};
use crate::stanza::{Message, Presence};
use crate::store::{AccountData, LoadId, RosterStore, StoreError, WorkMark, WriteId};

/// One input that may need stored state.
#[derive(Debug, Clone)]
pub(super) enum Work {
    /// A stanza from a local session; `shared`: its bytes when it arrived as an envelope.
    Session {
        from: FullJid,
        /// The [`Session::binding`] it came from.
        binding: u64,
        stanza: Received,
        shared: Option<super::routing::Shared>,
    },
    /// A stanza from a peer server or a component; `shared`: its bytes when it arrived as an
    /// envelope and is decided on them.
    Remote {
        stanza: Received,
        shared: Option<super::routing::Shared>,
    },
    /// A session ended: taken out of the session table at once (its JID may be bound again
    /// right away), put back only while its `unavailable` is broadcast.
    End {
        /// The session as it was.
        session: Box<Session>,
        /// Its place among the account's sessions (the order of deliveries).
        index: usize,
    },
    /// The host bounces a message it does not store offline.
    Bounce(Element),
}

/// A stanza as its unit of work holds it.
#[derive(Debug, Clone)]
pub(super) enum Received {
    /// An element (a session's with `from` stamped): the element path's, and every stanza
    /// the envelope path hands over.
    Element(Element),
    /// Availability presence read from its envelope's bytes (issue 17,
    /// [`Presence::without_payloads`]): the typed presence with no payloads; every
    /// recipient gets the unit's shared bytes, which hold them.
    Presence(Box<Presence>),
    /// A message decided on its envelope's header (issue 17, `Server::message_head` in
    /// `server::envelope`): the typed message with its header and type only; every
    /// recipient gets the unit's shared bytes, offline storage the element they rebuild.
    Message(Box<Message>),
}

impl Received {
    /// Its `to`, as written.
    fn to(&self) -> Option<&str> {
        match self {
            Self::Element(e) => e.attr("to"),
            Self::Presence(p) => p.header.to.as_ref().map(Jid::as_str),
            Self::Message(m) => m.header.to.as_ref().map(Jid::as_str),
        }
    }
}

/// A unit waiting to run.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    /// Its place in the order of queuing: `pending` stays sorted by it.
    mark: WorkMark,
    work: Work,
    /// The accounts the unit is counted against for the park bound.
    parked_on: Vec<BareJid>,
}

/// A unit that ran and whose write is in flight.
#[derive(Debug, Clone)]
pub(super) struct Held {
    /// The unit's mark: the outputs it releases are its own.
    mark: WorkMark,
    work: Work,
    outputs: VecDeque<Output>,
    accounts: Vec<BareJid>,
}

type Fixed<K, V> = HashMap<K, V, crate::FixedHasher>;

/// Below this many slots a table is not worth shrinking.
const MIN_CAPACITY: usize = 64;

/// Gives back the slots a load spike left (a hash map never shrinks by itself): to twice the
/// length once a quarter is in use, O(1) amortized per removal.
pub(super) fn shrink<K: Eq + core::hash::Hash, V>(map: &mut Fixed<K, V>) {
    let capacity = map.capacity();
    if capacity > MIN_CAPACITY && map.len() < capacity / 4 {
        map.shrink_to((map.len() * 2).max(MIN_CAPACITY));
    }
}

/// The storage bookkeeping of the machine.
#[derive(Debug, Clone, Default)]
pub(super) struct Storage {
    pending: VecDeque<Unit>,
    /// Waiting units per account.
    parked: Fixed<BareJid, usize>,
    loading: Fixed<LoadId, BareJid>,
    loading_users: BTreeSet<BareJid>,
    writing: Fixed<WriteId, Held>,
    /// Accounts with a write in flight, and how many.
    busy: Fixed<BareJid, usize>,
    next_load: u64,
    next_write: u64,
    /// The mark the next queued unit gets.
    next_unit: u64,
    /// The accounts the units in `pending` claim, as the last pass of [`Server::pump`] left
    /// them and each unit queued since added to; `None`: one of them does not know its
    /// needs yet, so nothing may overtake it. Between passes it can only hold more than the
    /// units need now (their needs grow only on a load, which is followed by a pass).
    claims: Option<BTreeSet<BareJid>>,
    /// Outputs taken by [`Server::poll_output_made`] so far: with the queue's length, the
    /// absolute numbers of the outputs in it.
    taken: u64,
    /// Which unit of work made which outputs, by absolute number, oldest first: (the unit,
    /// the first output, the one after the last). Pruned as outputs are taken.
    made: VecDeque<(WorkMark, u64, u64)>,
    /// Tests only: how many times a unit's needs were worked out (the scheduling cost).
    #[cfg(test)]
    pub(super) needs_computed: core::cell::Cell<u64>,
}

/// The accounts a unit needs; `complete` is false while they cannot be known yet (a
/// broadcast's contacts, before the sender's account is loaded).
struct Needs {
    accounts: Vec<BareJid>,
    complete: bool,
}

impl Server {
    // ---- inputs and commands of the storage interface ----

    /// The answer to [`Output::Load`] `id`: the account's data, or why the store could not
    /// read it (the work waiting for it is answered `internal-server-error`).
    pub fn handle_load(
        &mut self,
        id: LoadId,
        result: Result<AccountData, StoreError>,
    ) -> Result<(), UsageError> {
        let user = self
            .storage
            .loading
            .remove(&id)
            .ok_or(UsageError::UnknownRequest)?;
        self.storage.loading_users.remove(&user);
        if let Ok(data) = result {
            let privacy = self.cache.insert(user.clone(), data);
            if let Some(p) = privacy {
                self.privacy
                    .insert(user.as_str().to_owned(), Account::from_data(p));
            } else {
                self.privacy.remove(user.as_str());
            }
        } else {
            let mut kept = VecDeque::new();
            while let Some(unit) = self.storage.pending.pop_front() {
                if self.needs(&unit.work).accounts.contains(&user) {
                    self.unpark(&unit);
                    self.fail(&unit.work, StanzaErrorCondition::InternalServerError);
                } else {
                    kept.push_back(unit);
                }
            }
            self.storage.pending = kept;
        }
        self.pump();
        // Loaded for work that failed meanwhile: nothing holds it.
        self.evict_idle(core::slice::from_ref(&user));
        Ok(())
    }

    /// The outcome of [`Output::Write`] `id`: durable (the unit's held outputs leave now), or
    /// failed (they are discarded, its stanza is answered `internal-server-error`, and the
    /// accounts it changed are loaded again before they are used).
    // The outcome is the host's to hand over, like a load's answer; its text is for the host's
    // log, not for the client.
    #[allow(clippy::needless_pass_by_value)]
    pub fn handle_write(
        &mut self,
        id: WriteId,
        result: Result<(), StoreError>,
    ) -> Result<(), UsageError> {
        let held = self
            .storage
            .writing
            .remove(&id)
            .ok_or(UsageError::UnknownRequest)?;
        for a in &held.accounts {
            if let Some(n) = self.storage.busy.get_mut(a) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.storage.busy.remove(a);
                }
            }
        }
        if result.is_ok() {
            self.queue_made(held.mark, held.outputs);
        } else {
            for a in &held.accounts {
                self.cache.remove(a);
                self.privacy.remove(a.as_str());
            }
            self.fail(&held.work, StanzaErrorCondition::InternalServerError);
        }
        self.evict_idle(&held.accounts);
        self.pump();
        Ok(())
    }

    /// Loads and writes in flight, and units waiting: zero when the machine waits for nothing
    /// from the host's storage.
    #[must_use]
    pub fn storage_in_flight(&self) -> usize {
        self.storage.loading.len() + self.storage.writing.len() + self.storage.pending.len()
    }

    /// Units waiting to run (for an account to load, or for an earlier write on one of its
    /// accounts): zero when every input handed in so far has run.
    #[must_use]
    pub fn storage_waiting(&self) -> usize {
        self.storage.pending.len()
    }

    /// Queues `outputs`, made by unit `mark` (see [`poll_output_made`](Self::poll_output_made)).
    fn queue_made(&mut self, mark: WorkMark, outputs: impl IntoIterator<Item = Output>) {
        let first = self.storage.taken + self.out.len() as u64;
        self.out.extend(outputs);
        let end = self.storage.taken + self.out.len() as u64;
        if end > first {
            self.storage.made.push_back((mark, first, end));
        }
    }

    /// The next output, as [`poll_output`](Self::poll_output), with the unit of work that
    /// made it: its write, or what it produced (delivered when it ran, or when its write was
    /// durable). `None` for every other output (a load, an answer the machine gave before
    /// or without running a unit). A host that counts an input as handled once what it
    /// caused is durable (XEP-0198 with a database) attributes the requests each output
    /// leads to, and waits for those of its input's units alone.
    pub fn poll_output_made(&mut self) -> Option<(Output, Option<WorkMark>)> {
        let output = self.out.pop_front()?;
        let number = self.storage.taken;
        self.storage.taken += 1;
        while self
            .storage
            .made
            .front()
            .is_some_and(|&(_, _, end)| end <= number)
        {
            self.storage.made.pop_front();
        }
        let maker = self
            .storage
            .made
            .front()
            .filter(|&&(_, first, _)| first <= number)
            .map(|&(mark, _, _)| mark);
        Some((output, maker))
    }

    /// The mark the next unit of work queued will get: taken before and after an input, it
    /// brackets the units that input queued (see [`WorkMark`]).
    #[must_use]
    pub fn work_mark(&self) -> WorkMark {
        WorkMark(self.storage.next_unit)
    }

    /// How many units queued in `from..to` (two [`work_mark`](Self::work_mark)s) still wait
    /// to run: until it runs, a unit has made none of the writes its input will cause. Once
    /// none waits, every request they made was output by the call that ran them.
    /// `WorkMark(0)..work_mark()` counts every unit waiting. Logarithmic in the units
    /// waiting.
    #[must_use]
    pub fn queued_between(&self, from: WorkMark, to: WorkMark) -> usize {
        // `pending` is in queuing order (units leave from anywhere, none is put back).
        let pending = &self.storage.pending;
        let (first, end) = (
            pending.partition_point(|u| u.mark < from),
            pending.partition_point(|u| u.mark < to),
        );
        end.saturating_sub(first)
    }

    // ---- the synchronous adapter ----

    /// Answers every load and write waiting in the output queue from `store`, at once, until
    /// none is left; every other output stays, in order.
    pub(super) fn serve(&mut self, store: &mut impl RosterStore) {
        // Most stanzas ask nothing of the store: their outputs stay where they are.
        let asks = |o: &Output| matches!(o, Output::Load { .. } | Output::Write { .. });
        if !self.out.iter().any(asks) {
            return;
        }
        // Who made what is for hosts that answer later (`poll_output_made`): the queue is
        // rewritten here.
        self.storage.made.clear();
        let mut kept = VecDeque::with_capacity(self.out.len());
        while let Some(o) = self.out.pop_front() {
            // A host's error is impossible here: the ids come from the queue itself.
            match o {
                Output::Load { id, user } => {
                    let data = store.load(&user);
                    let _ = self.handle_load(id, Ok(data));
                }
                Output::Write { id, changes } => {
                    for c in changes {
                        store.apply(c);
                    }
                    let _ = self.handle_write(id, Ok(()));
                }
                other => kept.push_back(other),
            }
        }
        self.out = kept;
        self.storage.made.clear();
    }

    // ---- scheduling ----

    /// Queues a unit, unless an account it waits on has as many waiting as allowed.
    pub(super) fn submit(&mut self, work: Work) {
        let parked_on = self.base_accounts(&work);
        let max = self.config.max_parked;
        if parked_on
            .iter()
            .any(|a| self.storage.parked.get(a).copied().unwrap_or(0) >= max)
        {
            self.fail(&work, StanzaErrorCondition::ResourceConstraint);
            return;
        }
        for a in &parked_on {
            *self.storage.parked.entry(a.clone()).or_default() += 1;
        }
        let mark = WorkMark(self.storage.next_unit);
        self.storage.next_unit = self.storage.next_unit.wrapping_add(1);
        let unit = Unit {
            mark,
            work,
            parked_on,
        };
        if self.storage.pending.is_empty() {
            self.storage.pending.push_back(unit);
            self.pump();
        } else {
            self.admit(unit);
        }
    }

    /// A new unit behind units already waiting: it runs now if a pass would run it, else it
    /// waits too. Nothing else can have become ready since the last pass (loads and writes
    /// answered make one), so only the new unit is looked at: a pass per input cost each
    /// input a step per waiting unit, and a stalled store let them pile up by the thousand.
    fn admit(&mut self, unit: Unit) {
        let needs = self.needs(&unit.work);
        for a in &needs.accounts {
            self.request_load(a);
        }
        #[cfg(test)]
        self.check_claims();
        if self.can_run(&needs, self.storage.claims.as_ref()) {
            self.unpark(&unit);
            self.run(unit.mark, unit.work, &needs.accounts);
            return;
        }
        match self.storage.claims.as_mut() {
            Some(claims) if needs.complete => claims.extend(needs.accounts),
            _ => self.storage.claims = None,
        }
        self.storage.pending.push_back(unit);
    }

    /// Tests only: the claims kept between passes hold at least what the waiting units claim
    /// now (else a unit could overtake one it must follow).
    #[cfg(test)]
    fn check_claims(&self) {
        let Some(kept) = self.storage.claims.as_ref() else {
            return;
        };
        // Not counted: the check is the tests', not the scheduler's.
        let counted = self.storage.needs_computed.get();
        for unit in &self.storage.pending {
            let needs = self.needs(&unit.work);
            assert!(
                needs.complete,
                "a unit with unknown needs, not in the claims"
            );
            for a in &needs.accounts {
                assert!(
                    kept.contains(a),
                    "{a} claimed by a waiting unit, not in the claims"
                );
            }
        }
        self.storage.needs_computed.set(counted);
    }

    fn unpark(&mut self, unit: &Unit) {
        for a in &unit.parked_on {
            if let Some(n) = self.storage.parked.get_mut(a) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.storage.parked.remove(a);
                }
            }
        }
        shrink(&mut self.storage.parked);
    }

    /// Runs every unit that can run, in order; asks for the accounts the others need.
    fn pump(&mut self) {
        // Accounts claimed by earlier units still waiting; `None`: an earlier unit's needs
        // are not known yet, so nothing may overtake it.
        let mut claimed: Option<BTreeSet<BareJid>> = Some(BTreeSet::new());
        let mut i = 0;
        while i < self.storage.pending.len() {
            let needs = match self.storage.pending.get(i) {
                Some(unit) => self.needs(&unit.work),
                None => break,
            };
            for a in &needs.accounts {
                self.request_load(a);
            }
            if self.can_run(&needs, claimed.as_ref()) {
                if let Some(unit) = self.storage.pending.remove(i) {
                    self.unpark(&unit);
                    self.run(unit.mark, unit.work, &needs.accounts);
                }
            } else {
                if needs.complete {
                    if let Some(c) = claimed.as_mut() {
                        c.extend(needs.accounts);
                    }
                } else {
                    claimed = None;
                }
                i += 1;
            }
        }
        self.storage.claims = claimed;
    }

    /// Whether a unit needing `needs` runs now: they are known, loaded, with no write in
    /// flight, and none is claimed by a unit before it (`None`: one before it does not know
    /// its needs yet).
    fn can_run(&self, needs: &Needs, claimed: Option<&BTreeSet<BareJid>>) -> bool {
        needs.complete
            && needs
                .accounts
                .iter()
                .all(|a| self.cache.has(a) && !self.storage.busy.contains_key(a))
            && claimed.is_some_and(|c| needs.accounts.iter().all(|a| !c.contains(a)))
    }

    fn request_load(&mut self, user: &BareJid) {
        if self.cache.has(user) || self.storage.loading_users.contains(user) {
            return;
        }
        let id = LoadId(self.storage.next_load);
        self.storage.next_load = self.storage.next_load.wrapping_add(1);
        self.storage.loading.insert(id, user.clone());
        self.storage.loading_users.insert(user.clone());
        self.out.push_back(Output::Load {
            id,
            user: user.clone(),
        });
    }

    /// Runs one unit against the loaded accounts; its outputs leave now, or with its write.
    fn run(&mut self, mark: WorkMark, work: Work, accounts: &[BareJid]) {
        let saved = core::mem::take(&mut self.out);
        let mut cache = core::mem::take(&mut self.cache);
        match &work {
            Work::Session {
                from,
                binding,
                stanza,
                shared,
            } => {
                // Ended while it waited, and maybe bound again since: not that session's.
                if self.session(from).is_some_and(|s| s.binding == *binding) {
                    self.session_stanza_now(&mut cache, from, stanza, shared.as_ref());
                }
            }
            Work::Remote { stanza, shared } => {
                self.remote_stanza_now(&mut cache, stanza, shared.as_ref());
            }
            Work::End { session, index } => {
                self.session_end_now(&mut cache, session.as_ref().clone(), *index);
            }
            Work::Bounce(stanza) => {
                self.bounce_with(stanza, StanzaErrorCondition::ServiceUnavailable);
                self.drain_local(&mut cache);
            }
        }
        self.cache = cache;
        let produced = core::mem::replace(&mut self.out, saved);
        for user in core::mem::take(&mut self.privacy_dirty) {
            let data = self
                .privacy
                .get(user.as_str())
                .map(|a| a.data.clone())
                .unwrap_or_default();
            self.cache.journal_privacy(user, data);
        }
        let changes = self.cache.take_journal();
        if changes.is_empty() {
            self.queue_made(mark, produced);
        } else {
            let mut touched: Vec<BareJid> = Vec::new();
            for c in &changes {
                if !touched.contains(c.user()) {
                    touched.push(c.user().clone());
                }
            }
            for a in &touched {
                *self.storage.busy.entry(a.clone()).or_default() += 1;
            }
            let id = WriteId(self.storage.next_write);
            self.storage.next_write = self.storage.next_write.wrapping_add(1);
            self.queue_made(mark, [Output::Write { id, changes }]);
            self.storage.writing.insert(
                id,
                Held {
                    mark,
                    work,
                    outputs: produced,
                    accounts: touched,
                },
            );
        }
        self.evict_idle(accounts);
    }

    /// Forgets the accounts among `candidates` that nothing needs any more: no session, no
    /// write in flight, no waiting unit. A host's database stays the truth for them.
    fn evict_idle(&mut self, candidates: &[BareJid]) {
        let idle: Vec<&BareJid> = candidates
            .iter()
            .filter(|a| {
                self.cache.has(a)
                    && !self.sessions.contains_key(a.as_str())
                    && !self.storage.busy.contains_key(*a)
            })
            .collect();
        // What the waiting units need, gathered once (not once per candidate: a broadcast's
        // candidates are all the account's contacts).
        let wanted: BTreeSet<BareJid> = if idle.is_empty() {
            BTreeSet::new()
        } else {
            self.storage
                .pending
                .iter()
                .flat_map(|u| self.needs(&u.work).accounts)
                .collect()
        };
        let evicted: Vec<BareJid> = idle
            .into_iter()
            .filter(|a| !wanted.contains(*a))
            .cloned()
            .collect();
        for a in &evicted {
            self.cache.remove(a);
            self.privacy.remove(a.as_str());
        }
        self.cache.shrink();
        shrink(&mut self.privacy);
        shrink(&mut self.storage.busy);
        shrink(&mut self.storage.writing);
        shrink(&mut self.storage.loading);
    }

    // ---- what a unit needs ----

    /// A local account's bare JID from an address attribute.
    fn local_account(&self, attr: Option<&str>) -> Option<BareJid> {
        let jid = Jid::new(attr?).ok()?;
        (jid.node().is_some() && self.is_local(jid.domain())).then(|| jid.to_bare())
    }

    /// The accounts known from the input alone: the park bound counts against these.
    fn base_accounts(&self, work: &Work) -> Vec<BareJid> {
        match work {
            Work::Session { from, stanza, .. } => {
                let user = from.to_bare();
                let mut v = vec![user.clone()];
                let target = self.local_account(stanza.to());
                v.extend(target.filter(|t| t != &user));
                v
            }
            Work::End { session, .. } => vec![session.jid.to_bare()],
            Work::Remote { stanza, .. } => self.local_account(stanza.to()).into_iter().collect(),
            Work::Bounce(stanza) => self
                .local_account(stanza.attr("from"))
                .into_iter()
                .collect(),
        }
    }

    fn needs(&self, work: &Work) -> Needs {
        #[cfg(test)]
        self.storage
            .needs_computed
            .set(self.storage.needs_computed.get() + 1);
        let mut accounts = self.base_accounts(work);
        let (from, reach) = match work {
            Work::Session { from, stanza, .. } => (from, reach(from, stanza)),
            Work::End { session, .. } => (&session.jid, Reach::Contacts),
            Work::Remote { .. } | Work::Bounce(_) => {
                return Needs {
                    accounts,
                    complete: true,
                };
            }
        };
        match reach {
            Reach::Nobody => {
                return Needs {
                    accounts,
                    complete: true,
                };
            }
            Reach::Listed(jids) => {
                // Each once, in order, in O(n log n): a list can be as long as a stanza.
                let base = accounts.len();
                let mut listed: BTreeSet<BareJid> = BTreeSet::new();
                for c in jids {
                    let new = c.node().is_some()
                        && self.is_local(c.domain())
                        && !accounts.get(..base).is_some_and(|b| b.contains(&c))
                        && listed.insert(c.clone());
                    if new {
                        accounts.push(c);
                    }
                }
                return Needs {
                    accounts,
                    complete: true,
                };
            }
            Reach::Contacts => {}
        }
        let user = from.to_bare();
        if !self.cache.has(&user) {
            return Needs {
                accounts,
                complete: false,
            };
        }
        let mut extra: BTreeSet<BareJid> = self
            .cache
            .contacts(&user)
            .into_iter()
            .filter(|c| self.is_local(c.domain()))
            .collect();
        let ending = match work {
            Work::End { session, .. } => Some(session.as_ref()),
            _ => None,
        };
        for s in self.resources_of(&user).chain(ending) {
            for d in &s.directed {
                if d.node().is_some() && self.is_local(d.domain()) {
                    extra.insert(d.to_bare());
                }
            }
        }
        // `extra` holds each contact once: only the one or two accounts known from the input
        // can repeat one (a contact's list can be long: no quadratic check).
        let base = accounts.len();
        for c in extra {
            if !accounts.get(..base).is_some_and(|b| b.contains(&c)) {
                accounts.push(c);
            }
        }
        Needs {
            accounts,
            complete: true,
        }
    }

    /// Answers the stanza of a unit that cannot be done with `condition` (never an error, nor
    /// an iq result, is answered).
    fn fail(&mut self, work: &Work, condition: StanzaErrorCondition) {
        match work {
            Work::Session {
                from,
                stanza,
                shared,
                ..
            } => {
                let stamped = match stanza {
                    Received::Element(stanza) => {
                        let kind = stanza.attr("type");
                        if matches!(kind, Some("error" | "result")) {
                            return;
                        }
                        if stanza.name() == "iq" && !matches!(kind, Some("get" | "set")) {
                            return;
                        }
                        let mut stamped = stanza.clone();
                        stamped.set_attr(
                            minidom::rxml::Namespace::NONE,
                            crate::stanza::header::nc("from"),
                            from.as_str(),
                        );
                        stamped
                    }
                    // Availability presence or a message decided on its header (never an
                    // error): the element its bytes stand for, `from` stamped.
                    Received::Presence(_) | Received::Message(_) => {
                        match shared.as_ref().and_then(super::routing::Shared::stamped) {
                            Some(element) => element,
                            None => return,
                        }
                    }
                };
                let reply = StanzaError::new(condition).reply_to(&stamped);
                self.deliver(from, reply);
            }
            Work::Remote { stanza, shared } => {
                let element;
                let stanza = match stanza {
                    Received::Element(stanza) => stanza,
                    // Read from its bytes: the element they stand for.
                    Received::Presence(_) | Received::Message(_) => {
                        match shared.as_ref().and_then(|s| s.envelope.element().ok()) {
                            Some(built) => {
                                element = built;
                                &element
                            }
                            None => return,
                        }
                    }
                };
                let kind = stanza.attr("type");
                if stanza.attr("from").is_none() || matches!(kind, Some("error" | "result")) {
                    return;
                }
                if self.local_account(stanza.attr("from")).is_none() {
                    let reply = StanzaError::new(condition).reply_to(stanza);
                    self.out.push_back(Output::Route(reply));
                }
            }
            Work::End { .. } | Work::Bounce(_) => {}
        }
    }
}

/// Which other accounts a session's stanza may reach besides its addressee.
enum Reach {
    /// None.
    Nobody,
    /// These contacts: the item of a roster removal (it cancels both subscriptions,
    /// RFC 6121 §2.5.2), the JIDs of a block or unblock (presence revoked or shared,
    /// XEP-0191 §3.3, §3.4).
    Listed(Vec<BareJid>),
    /// Every contact of the account: presence broadcast with no `to` (and the probes and
    /// pending requests of initial presence), an unblock of everyone, a privacy list change,
    /// a session's end.
    Contacts,
}

fn reach(from: &FullJid, stanza: &Received) -> Reach {
    let stanza = match stanza {
        Received::Element(element) => element,
        // As an element's below: broadcast reaches the contacts, directed presence nobody
        // else.
        Received::Presence(p) if p.header.to.is_none() => return Reach::Contacts,
        Received::Presence(_) | Received::Message(_) => return Reach::Nobody,
    };
    let own = match stanza.attr("to") {
        None => true,
        Some(to) => {
            Jid::new(to).is_ok_and(|j| j.is_bare() && j.as_str() == from.to_bare().as_str())
        }
    };
    match stanza.name() {
        "presence" if stanza.attr("to").is_none() => Reach::Contacts,
        "iq" if own && stanza.attr("type") == Some("set") => {
            let Some(payload) = stanza.children().next() else {
                return Reach::Nobody;
            };
            let jids = |removals_only: bool| -> Vec<BareJid> {
                payload
                    .children()
                    .filter(|i| i.name() == "item")
                    .filter(|i| !removals_only || i.attr("subscription") == Some("remove"))
                    .filter_map(|i| Jid::new(i.attr("jid")?).ok())
                    .map(|j| j.to_bare())
                    .collect()
            };
            if payload.is("query", crate::privacy::NS_PRIVACY) {
                // A list change may change what the contacts see of the user's presence
                // (XEP-0016 §2.11 sends them `unavailable` or the current presence).
                return Reach::Contacts;
            }
            let listed = if payload.is("query", crate::roster::NS_ROSTER) {
                jids(true)
            } else if payload.ns() == crate::privacy::NS_BLOCKING {
                let listed = jids(false);
                if listed.is_empty() && payload.name() == "unblock" {
                    return Reach::Contacts;
                }
                listed
            } else {
                Vec::new()
            };
            if listed.is_empty() {
                Reach::Nobody
            } else {
                Reach::Listed(listed)
            }
        }
        _ => Reach::Nobody,
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
