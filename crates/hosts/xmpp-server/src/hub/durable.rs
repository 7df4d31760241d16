//! Nothing acknowledged is lost (XEP-0198 with a database): a client's stanza counts as
//! handled in `<a h=''/>` only once every storage request its handling caused is answered,
//! and so do the requests those answers cause in turn (a load the IM machine parked the
//! stanza on, then the write it made). A stanza the IM machine parked behind other work (an
//! account loading, a write in flight) makes its requests in the call that runs its unit of
//! work: it waits until its own units ([`xmpp_im::WorkMark`]s bracket them) have left the
//! queue, then for the requests made in that call. It does not wait for the machine to have
//! nothing queued: under sustained load that moment may never come, and every answer would
//! touch every stanza parked since the last one. A stanza that causes no storage and is not
//! parked counts at once, as without a database: delivering to an online session
//! acknowledges as fast as before. A failed write counts too: the client was answered with
//! an error, nothing is pending.

use std::collections::{BTreeMap, BTreeSet};

use xmpp_im::WorkMark;
use xmpp_jid::FullJid;
use xmpp_stream::Instant;

use super::{Hub, HubOutput, SessionId, StorageRequest};

/// A storage request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Key {
    Load(xmpp_im::LoadId),
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
    /// While the IM machine holds units of work its handling queued: the marks bracketing
    /// them.
    parked: Option<(WorkMark, WorkMark)>,
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
    /// The stanzas of `waiting` that are `parked`: with the answered ones, the only ones an
    /// answer can change (every other waits for a request not answered yet). As many as the
    /// IM machine has units queued, at most.
    parked: BTreeSet<u64>,
    by_request: BTreeMap<Key, Vec<u64>>,
    /// The IM machine's next work mark and its units queued when its outputs were last
    /// drained: fewer of those units queued now means some ran, and their requests are
    /// among the outputs not drained yet.
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
}

/// The requests among `out[start..]`.
fn requests(out: &std::collections::VecDeque<HubOutput>, start: usize) -> Vec<Key> {
    out.range(start.min(out.len())..)
        .filter_map(|output| match output {
            HubOutput::Storage(StorageRequest::Load { id, .. }) => Some(Key::Load(*id)),
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
    /// handled now, or once the storage requests among its outputs are answered (and those
    /// the units of work it queued make when they run).
    pub(super) fn hold_until_durable(
        &mut self,
        now: Instant,
        id: SessionId,
        seq: u32,
        before: Before,
    ) {
        let keys = requests(&self.out, before.out);
        let units = (before.mark, self.im.work_mark());
        let parked = (self.im.queued_between(units.0, units.1) > 0).then_some(units);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        // The stream's `<a h=''/>` now follows the host's word, which a transcript does
        // not record.
        session.rec.unreplayable();
        let jid = session.jid.clone();
        match jid {
            Some(jid) if parked.is_some() || !keys.is_empty() => {
                let d = &mut self.durable;
                d.next = d.next.wrapping_add(1);
                for key in &keys {
                    d.by_request.entry(*key).or_default().push(d.next);
                }
                if parked.is_some() {
                    d.parked.insert(d.next);
                }
                d.waiting.insert(
                    d.next,
                    Waiting {
                        jid,
                        seq,
                        outstanding: keys.len(),
                        parked,
                    },
                );
            }
            _ => {
                if let Some(stream) = session.stream.as_server_mut() {
                    stream.stanza_handled(now, seq);
                    self.dirty.insert(id);
                }
            }
        }
    }

    /// Whether units of work queued when the IM machine's outputs were last drained have
    /// run since (see [`after_im_drained`](Self::after_im_drained)).
    pub(super) fn im_units_ran(&self) -> bool {
        let (mark, queued) = self.durable.seen;
        !self.durable.parked.is_empty() && self.im.queued_between(WorkMark(0), mark) < queued
    }

    /// The IM machine's outputs were drained into `out[start..]`; `ran`: units had run since
    /// the last drain ([`im_units_ran`](Self::im_units_ran)). The parked stanzas whose units
    /// all left the queue wait for the requests among those outputs (their units made them)
    /// and no longer for the machine; those left waiting for nothing count as handled.
    pub(super) fn after_im_drained(&mut self, now: Instant, start: usize, ran: bool) {
        self.durable.seen = (self.im.work_mark(), self.im.storage_waiting());
        if !ran {
            return;
        }
        let more = requests(&self.out, start);
        let mut ran = Vec::new();
        for &n in &self.durable.parked {
            let still = self.durable.waiting.get(&n).and_then(|w| w.parked);
            if still.is_none_or(|(from, to)| self.im.queued_between(from, to) == 0) {
                ran.push(n);
            }
        }
        for n in &ran {
            self.durable.parked.remove(n);
            if let Some(w) = self.durable.waiting.get_mut(n) {
                w.parked = None;
            }
        }
        self.settle(now, ran, &more);
    }

    /// Request `key` was answered, and handling the answer made the outputs from `start` on:
    /// the stanzas waiting for it wait for the requests among those too; a stanza counts as
    /// handled once it waits for nothing.
    pub(super) fn answered(&mut self, now: Instant, key: Key, start: usize) {
        let answered = self.durable.by_request.remove(&key).unwrap_or_default();
        if answered.is_empty() {
            return;
        }
        let more = requests(&self.out, start);
        let d = &mut self.durable;
        for n in &answered {
            if let Some(w) = d.waiting.get_mut(n) {
                w.outstanding = w.outstanding.saturating_sub(1);
            }
        }
        self.settle(now, answered, &more);
    }

    /// The stanzas `touched` wait for the requests `more` too (made by the call that answered
    /// or ran them); those left waiting for nothing, and for no unit of work, count as
    /// handled.
    fn settle(&mut self, now: Instant, touched: Vec<u64>, more: &[Key]) {
        let d = &mut self.durable;
        // Only these stanzas change; every other one still waits for a request of its own
        // or for its units to run. In order, and each once (a request answered can name a
        // stanza more than once: it counted once per naming).
        let touched: BTreeSet<u64> = touched.into_iter().collect();
        let mut done = Vec::new();
        for n in touched {
            let Some(w) = d.waiting.get_mut(&n) else {
                continue;
            };
            w.outstanding += more.len();
            for key in more {
                d.by_request.entry(*key).or_default().push(n);
            }
            if w.outstanding == 0 && w.parked.is_none() {
                done.push(n);
            }
        }
        for n in done {
            if let Some(w) = self.durable.waiting.remove(&n) {
                self.count_handled(now, &w.jid, w.seq);
            }
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
