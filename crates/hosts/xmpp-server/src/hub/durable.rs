//! Nothing acknowledged is lost (XEP-0198 with a database): a client's stanza counts as
//! handled in `<a h=''/>` only once every storage request its handling caused is answered,
//! and so do the requests those answers cause in turn (a load the IM machine parked the
//! stanza on, then the write it made). A stanza the IM machine parked behind other work (an
//! account loading, a write in flight) may make its requests during any later answer: it
//! waits for every request made until the machine has no work parked. A stanza that causes
//! no storage and is not parked counts at once, as without a database: delivering to an
//! online session acknowledges as fast as before. A failed write counts too: the client was
//! answered with an error, nothing is pending.

use std::collections::{BTreeMap, BTreeSet};

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
    /// The IM machine had work parked after handling it: it may be among it.
    parked: bool,
}

/// The stanzas waiting, and the requests they wait for.
#[derive(Default)]
pub(super) struct Durable {
    next_offline: u64,
    next: u64,
    waiting: BTreeMap<u64, Waiting>,
    /// The stanzas of `waiting` that are `parked`: with the answered ones, the only ones an
    /// answer can change (every other waits for a request not answered yet).
    parked: BTreeSet<u64>,
    by_request: BTreeMap<Key, Vec<u64>>,
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
    /// Stanzas of clients not yet counted as handled because storage they caused is not
    /// durable yet.
    pub fn waiting_for_storage(&self) -> usize {
        self.durable.waiting()
    }

    /// Client stanza number `seq` of session `id` was handled, its outputs from `start` on:
    /// it counts as handled now, or once the storage requests among them are answered (and
    /// those made while it may be parked).
    pub(super) fn hold_until_durable(
        &mut self,
        now: Instant,
        id: SessionId,
        seq: u32,
        start: usize,
    ) {
        let keys = requests(&self.out, start);
        let parked = self.im.storage_waiting() > 0;
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
                for key in &keys {
                    d.by_request.entry(*key).or_default().push(d.next);
                }
                if parked {
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

    /// Request `key` was answered, and handling the answer made the outputs from `start` on:
    /// the stanzas waiting for it, and those that may be parked, wait for the requests among
    /// those too; a stanza counts as handled once it waits for nothing.
    pub(super) fn answered(&mut self, now: Instant, key: Key, start: usize) {
        let answered = self.durable.by_request.remove(&key).unwrap_or_default();
        if answered.is_empty() && self.durable.parked.is_empty() {
            return;
        }
        let more = requests(&self.out, start);
        let idle = self.im.storage_waiting() == 0;
        let d = &mut self.durable;
        for n in &answered {
            if let Some(w) = d.waiting.get_mut(n) {
                w.outstanding = w.outstanding.saturating_sub(1);
            }
        }
        // Only the answered and the parked stanzas change; every other one still waits for
        // a request of its own (it has one outstanding, or it would be parked or done). In
        // order, as a walk over every waiting stanza visits them, but without that walk
        // (all the clients' stanzas in flight, per answer) nor a search of `answered` per
        // stanza (all the parked ones, when the request was made while they were parked).
        let mut touched: BTreeSet<u64> = answered.into_iter().collect();
        touched.extend(d.parked.iter().copied());
        let mut done = Vec::new();
        for n in touched {
            let Some(w) = d.waiting.get_mut(&n) else {
                continue;
            };
            w.outstanding += more.len();
            for key in &more {
                d.by_request.entry(*key).or_default().push(n);
            }
            w.parked &= !idle;
            if !w.parked {
                d.parked.remove(&n);
            }
            if w.outstanding == 0 && !w.parked {
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
