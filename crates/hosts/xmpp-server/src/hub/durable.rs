//! Nothing acknowledged is lost (XEP-0198 with a database): a client's stanza counts as
//! handled in `<a h=''/>` only once every storage request its handling caused is answered:
//! the writes and offline stores made while it was handled, and those its units of work make
//! later. A unit the IM machine queued behind other work (an account loading, a write in
//! flight) runs during some later answer; the machine says which unit made each output
//! ([`xmpp_im::Server::poll_output_made`]), so the requests routing that output makes are
//! its stanza's, and nobody else's. A stanza counts once its units have all left the queue
//! ([`xmpp_im::WorkMark`]s bracket them) and its requests are answered: never on another
//! stanza's requests, so under sustained load (the machine never idle, every answer running
//! other units) each is acknowledged as soon as its own storage is durable. A stanza that
//! causes no storage and is not queued counts at once, as without a database: delivering to
//! an online session acknowledges as fast as before. A failed write counts too: the client
//! was answered with an error, nothing is pending. Loads are no request to wait for: they
//! make nothing durable, and a unit waiting for one is still queued.

use std::collections::{BTreeMap, BTreeSet};

use xmpp_im::WorkMark;
use xmpp_jid::FullJid;
use xmpp_stream::Instant;

use super::{Hub, HubOutput, SessionId, StorageRequest};

/// A storage request in flight that makes something durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Key {
    Write(xmpp_im::WriteId),
    Offline(u64),
}

/// A stanza waiting for storage.
struct Waiting {
    jid: FullJid,
    /// Its XEP-0198 number on the session's stream.
    seq: u32,
    /// Requests not answered yet.
    outstanding: usize,
    /// The units of work its handling queued: the marks bracketing them.
    units: (WorkMark, WorkMark),
    /// Some of them are still queued.
    parked: bool,
}

/// Where things stood before a client stanza was handled: the output queue's length and the
/// IM machine's next work mark.
#[derive(Clone, Copy)]
pub(super) struct Before {
    out: usize,
    mark: WorkMark,
}

/// The stanzas waiting, and the requests they wait for.
#[derive(Default)]
pub(super) struct Durable {
    next_offline: u64,
    next: u64,
    waiting: BTreeMap<u64, Waiting>,
    /// The stanzas of `waiting` that are `parked`: the only ones a unit leaving the queue
    /// can change. As many as the IM machine has units queued, at most.
    parked: BTreeSet<u64>,
    /// The stanzas of `waiting` that queued units of work, by the first unit's mark.
    by_unit: BTreeMap<WorkMark, u64>,
    by_request: BTreeMap<Key, Vec<u64>>,
    /// The IM machine's next work mark and its units queued when its outputs were last
    /// drained: fewer of those units queued now means some ran.
    seen: (WorkMark, usize),
}

impl Durable {
    /// A fresh [`StorageRequest::StoreOffline`] id.
    pub(super) fn next_offline(&mut self) -> u64 {
        self.next_offline = self.next_offline.wrapping_add(1);
        self.next_offline
    }

    /// Stanzas waiting for storage.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The waiting stanza that queued unit `mark`.
    fn stanza_of(&self, mark: WorkMark) -> Option<u64> {
        let (_, &n) = self.by_unit.range(..=mark).next_back()?;
        let w = self.waiting.get(&n)?;
        (mark < w.units.1).then_some(n)
    }

    /// Stanza `n` waits for `keys` too.
    fn wait_for(&mut self, n: u64, keys: &[Key]) {
        if let Some(w) = self.waiting.get_mut(&n) {
            w.outstanding += keys.len();
            for key in keys {
                self.by_request.entry(*key).or_default().push(n);
            }
        }
    }

    /// Stanza `n`, if it waits for nothing any more: forgotten, its (JID, number) given.
    fn take_if_done(&mut self, n: u64) -> Option<(FullJid, u32)> {
        let w = self.waiting.get(&n)?;
        if w.outstanding > 0 || w.parked {
            return None;
        }
        let w = self.waiting.remove(&n)?;
        self.parked.remove(&n);
        if self.by_unit.get(&w.units.0) == Some(&n) {
            self.by_unit.remove(&w.units.0);
        }
        Some((w.jid, w.seq))
    }
}

/// The requests among `out[start..]` that make something durable.
fn requests(out: &std::collections::VecDeque<HubOutput>, start: usize) -> Vec<Key> {
    out.range(start.min(out.len())..)
        .filter_map(|output| match output {
            HubOutput::Storage(StorageRequest::Write { id, .. }) => Some(Key::Write(*id)),
            HubOutput::Storage(StorageRequest::StoreOffline { id, .. }) => Some(Key::Offline(*id)),
            _ => None,
        })
        .collect()
}

impl Hub {
    /// Where things stand before a client stanza is handled (see
    /// [`hold_until_durable`](Self::hold_until_durable)).
    pub(super) fn before_handling(&self) -> Before {
        Before {
            out: self.out.len(),
            mark: self.im.work_mark(),
        }
    }

    /// Stanzas of clients not yet counted as handled because storage they caused is not
    /// durable yet.
    pub fn waiting_for_storage(&self) -> usize {
        self.durable.waiting()
    }

    /// Client stanza number `seq` of session `id` was handled since `before`: it counts as
    /// handled now, or once the storage requests among its outputs are answered, the units
    /// of work it queued have run, and the requests their outputs led to are answered.
    pub(super) fn hold_until_durable(
        &mut self,
        now: Instant,
        id: SessionId,
        seq: u32,
        before: Before,
    ) {
        let keys = requests(&self.out, before.out);
        let units = (before.mark, self.im.work_mark());
        let parked = self.im.queued_between(units.0, units.1) > 0;
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        // The stream's `<a h=''/>` now follows the host's word, which a transcript does
        // not record.
        session.rec.unreplayable();
        let jid = session.jid.clone();
        match jid {
            Some(jid) if parked || !keys.is_empty() => {
                let d = &mut self.durable;
                d.next = d.next.wrapping_add(1);
                let n = d.next;
                d.waiting.insert(
                    n,
                    Waiting {
                        jid,
                        seq,
                        outstanding: 0,
                        units,
                        parked,
                    },
                );
                d.wait_for(n, &keys);
                if parked {
                    d.parked.insert(n);
                }
                if units.0 < units.1 {
                    d.by_unit.insert(units.0, n);
                }
            }
            _ => {
                if let Some(stream) = session.stream.as_server_mut() {
                    stream.stanza_handled(now, seq);
                    self.dirty.insert(id);
                }
            }
        }
    }

    /// An output of the IM machine's unit `maker` was routed, making the outputs from
    /// `start` on: the stanza that queued the unit waits for the requests among them.
    pub(super) fn made_by(&mut self, maker: Option<WorkMark>, start: usize) {
        let Some(n) = maker.and_then(|mark| self.durable.stanza_of(mark)) else {
            return;
        };
        let keys = requests(&self.out, start);
        self.durable.wait_for(n, &keys);
    }

    /// Whether units of work queued when the IM machine's outputs were last drained have
    /// run since (see [`after_im_drained`](Self::after_im_drained)).
    pub(super) fn im_units_ran(&self) -> bool {
        let (mark, queued) = self.durable.seen;
        !self.durable.parked.is_empty() && self.im.queued_between(WorkMark(0), mark) < queued
    }

    /// The IM machine's outputs were drained; `ran`: units had run since the last drain
    /// ([`im_units_ran`](Self::im_units_ran)). The parked stanzas whose units all left the
    /// queue no longer wait for it (what their units' outputs led to was attributed while
    /// they were routed); those left waiting for nothing count as handled.
    pub(super) fn after_im_drained(&mut self, now: Instant, ran: bool) {
        self.durable.seen = (self.im.work_mark(), self.im.storage_waiting());
        if !ran {
            return;
        }
        let mut left = Vec::new();
        for &n in &self.durable.parked {
            let still = self
                .durable
                .waiting
                .get(&n)
                .is_some_and(|w| self.im.queued_between(w.units.0, w.units.1) > 0);
            if !still {
                left.push(n);
            }
        }
        let mut done = Vec::new();
        for n in left {
            self.durable.parked.remove(&n);
            if let Some(w) = self.durable.waiting.get_mut(&n) {
                w.parked = false;
            }
            done.extend(self.durable.take_if_done(n));
        }
        for (jid, seq) in done {
            self.count_handled(now, &jid, seq);
        }
    }

    /// Request `key` was answered (what the answer's outputs led to was attributed while
    /// they were routed): the stanzas left waiting for nothing count as handled.
    pub(super) fn answered(&mut self, now: Instant, key: Key) {
        let answered = self.durable.by_request.remove(&key).unwrap_or_default();
        let mut done = Vec::new();
        for n in answered {
            if let Some(w) = self.durable.waiting.get_mut(&n) {
                w.outstanding = w.outstanding.saturating_sub(1);
            }
            done.extend(self.durable.take_if_done(n));
        }
        for (jid, seq) in done {
            self.count_handled(now, &jid, seq);
        }
    }

    /// Stanza `seq` of `jid`'s session counts as handled, on its stream or, while it waits
    /// for resumption, in its detached state.
    fn count_handled(&mut self, now: Instant, jid: &FullJid, seq: u32) {
        if let Some(id) = self.by_jid.get(jid).copied()
            && let Some(stream) = self
                .sessions
                .get_mut(&id)
                .and_then(|s| s.stream.as_server_mut())
        {
            stream.stanza_handled(now, seq);
            self.dirty.insert(id);
            return;
        }
        self.detached_handled(jid, seq);
    }
}
