//! The connected resources of each account (RFC 6120 §7 binding, RFC 6121 §1.5
//! terminology): their availability and priority, whether they asked for the roster (RFC 6121
//! §2.1.6 interested resources), their last presence (§4) and the directed presence they
//! owe an `unavailable` to (§4.6); sessions starting and ending (§4.5.2, §4.6.3).

use std::collections::BTreeSet;
use std::sync::Arc;

use xmpp_jid::{BareJid, FullJid, Jid};

use super::routing::Shared;
use super::{Server, UsageError};
use crate::delivery::SessionInfo;
use crate::stanza::{Presence, PresenceType};
use crate::store::RosterStore;

/// One connected resource.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) jid: FullJid,
    /// Which binding of its JID this is: a stanza that waited for storage belongs to the
    /// session of its binding, never to a later one bound to the same JID.
    pub(super) binding: u64,
    pub(super) available: bool,
    pub(super) priority: i8,
    /// Requested the roster: receives roster pushes (§2.1.6 "interested resource").
    pub(super) interested: bool,
    /// The last broadcast presence, stamped with the session's JID.
    pub(super) presence: Option<Presence>,
    /// Its bytes, when it arrived as an envelope (issue 17): `presence` may then hold no
    /// payloads ([`Presence::without_payloads`]), and whoever is sent it later (a prober, a
    /// new subscriber, the session's other resources) gets these bytes.
    pub(super) presence_bytes: Option<Shared>,
    /// Entities that received directed available presence and are owed an unavailable.
    pub(super) directed: BTreeSet<Jid>,
    /// The XEP-0016 active list chosen by this session.
    pub(super) active_list: Option<String>,
    /// Asked for the XEP-0191 blocklist: receives block and unblock pushes.
    pub(super) wants_blocklist: bool,
}

impl SessionInfo for Session {
    fn resource(&self) -> &str {
        self.jid.resource()
    }

    fn available(&self) -> bool {
        self.available
    }

    fn priority(&self) -> i8 {
        self.priority
    }
}

/// Below this many slots the session table is not worth shrinking.
const MIN_SESSION_CAPACITY: usize = 64;

impl Server {
    /// A client bound `jid` (a "connected resource", RFC 6120 §7).
    pub fn session_started(&mut self, jid: FullJid) -> Result<(), UsageError> {
        if !self.is_local(jid.domain()) {
            return Err(UsageError::NotLocal);
        }
        let max = self.config.max_sessions;
        let list = self.sessions.entry(jid.bare_str().to_owned()).or_default();
        if list.iter().any(|s| s.jid == jid) {
            return Err(UsageError::SessionExists);
        }
        if list.len() >= max {
            return Err(UsageError::TooManySessions);
        }
        let binding = self.next_binding;
        self.next_binding = self.next_binding.wrapping_add(1);
        list.push(Session {
            jid,
            binding,
            available: false,
            priority: 0,
            interested: false,
            presence: None,
            presence_bytes: None,
            directed: BTreeSet::new(),
            active_list: None,
            wants_blocklist: false,
        });
        Ok(())
    }

    /// The session ended (closed or lost), with a synchronous store: if it was available,
    /// its contacts, the other resources and directed-presence recipients get `unavailable`
    /// (§4.5.2, §4.6.3).
    pub fn session_ended(
        &mut self,
        store: &mut impl RosterStore,
        jid: &FullJid,
    ) -> Result<(), UsageError> {
        self.end_session(jid)?;
        self.serve(store);
        Ok(())
    }

    /// The session ended: see [`Server::session_ended`]. It leaves the session table at once
    /// (its JID may be bound again right away); its contacts are loaded first if they are not.
    pub fn end_session(&mut self, jid: &FullJid) -> Result<(), UsageError> {
        let key = jid.bare_str();
        let list = self.sessions.get_mut(key).ok_or(UsageError::NoSession)?;
        let index = list
            .iter()
            .position(|s| &s.jid == jid)
            .ok_or(UsageError::NoSession)?;
        let session = list.remove(index);
        if list.is_empty() {
            self.sessions.remove(key);
            self.shrink_sessions();
        }
        self.submit(super::storage::Work::End {
            session: Box::new(session),
            index,
        });
        Ok(())
    }

    /// The broadcast of an ended session: put back in its place while its `unavailable` goes
    /// out (a session bound to the same JID since then is set aside meanwhile), then gone.
    pub(super) fn session_end_now(
        &mut self,
        store: &mut impl RosterStore,
        session: Session,
        index: usize,
    ) {
        let jid = session.jid.clone();
        let key = jid.bare_str().to_owned();
        let list = self.sessions.entry(key.clone()).or_default();
        let newer = list
            .iter()
            .position(|s| s.jid == jid)
            .map(|i| (i, list.remove(i)));
        list.insert(index.min(list.len()), session);
        // The ended session itself is gone: it is not among the recipients. With
        // `ServerConfig::envelopes`, every recipient gets the same shared bytes.
        let shared = self.unavailable.as_ref().map(|envelope| Shared {
            envelope: Arc::clone(envelope),
            from: jid.clone().into(),
        });
        self.go_unavailable(
            store,
            &jid,
            Presence::new(Some(PresenceType::Unavailable)),
            false,
            shared.as_ref(),
        );
        if let Some(list) = self.sessions.get_mut(&key) {
            list.retain(|s| s.jid != jid);
            if let Some((i, newer)) = newer {
                list.insert(i.min(list.len()), newer);
            }
            if list.is_empty() {
                self.sessions.remove(&key);
                self.shrink_sessions();
            }
        }
        self.drain_local(store);
    }

    /// Give back the table a load spike grew (a hash map never shrinks by itself, so a
    /// server would keep the memory of its busiest moment forever). Shrinking to twice the
    /// length once a quarter is in use keeps the cost O(1) amortized per removal.
    fn shrink_sessions(&mut self) {
        let capacity = self.sessions.capacity();
        if capacity > MIN_SESSION_CAPACITY && self.sessions.len() < capacity / 4 {
            self.sessions
                .shrink_to((self.sessions.len() * 2).max(MIN_SESSION_CAPACITY));
        }
    }

    /// The session bound to `jid`.
    /// The [`Session::binding`] of the session bound to `jid` (`u64::MAX`, which no session
    /// gets, when none is).
    pub(super) fn binding_of(&self, jid: &FullJid) -> u64 {
        self.session(jid).map_or(u64::MAX, |s| s.binding)
    }

    pub(super) fn session(&self, jid: &FullJid) -> Option<&Session> {
        self.sessions
            .get(jid.bare_str())?
            .iter()
            .find(|s| &s.jid == jid)
    }

    /// The session bound to `jid`, to change it.
    pub(super) fn session_mut(&mut self, jid: &FullJid) -> Option<&mut Session> {
        self.sessions
            .get_mut(jid.bare_str())?
            .iter_mut()
            .find(|s| &s.jid == jid)
    }

    /// The connected resources of an account.
    pub(super) fn resources_of(&self, user: &BareJid) -> impl Iterator<Item = &Session> {
        self.sessions.get(user.as_str()).into_iter().flatten()
    }

    /// The account's available resources.
    pub(super) fn available_sessions(&self, user: &BareJid) -> Vec<FullJid> {
        self.resources_of(user)
            .filter(|s| s.available)
            .map(|s| s.jid.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, ServerConfig};

    /// Found by the soak of `xmpp-loadgen` (heap after the load above the baseline):
    /// once a spike of sessions came and went, the table kept its peak capacity.
    #[test]
    fn session_table_shrinks_after_a_spike() {
        let mut server = Server::new(ServerConfig::new("example.com"));
        let mut store = MemoryStore::new();
        let jids: Vec<FullJid> = (0..5000)
            .map(|i| FullJid::new(&format!("user{i}@example.com/r")).unwrap())
            .collect();
        for jid in &jids {
            server.session_started(jid.clone()).unwrap();
        }
        assert!(server.sessions.capacity() >= 5000);
        for jid in &jids {
            server.session_ended(&mut store, jid).unwrap();
        }
        assert!(server.sessions.is_empty());
        assert!(
            server.sessions.capacity() <= 2 * MIN_SESSION_CAPACITY,
            "capacity {} after every session ended",
            server.sessions.capacity()
        );
        // A second spike grows it again and still works.
        for jid in &jids[..100] {
            server.session_started(jid.clone()).unwrap();
        }
        assert_eq!(server.sessions.len(), 100);
        assert_eq!(server.sessions_of(&jids[0].to_bare()).count(), 1);
        assert_eq!(server.sessions_of(&jids[100].to_bare()).count(), 0);
    }
}
