//! XEP-0198 on the hub: sessions whose transport died are kept detached for the resumption
//! window (host time), a new stream resumes them, a second resumption replaces the first
//! transport; an expired session ends like a closed one (unavailable presence through the IM
//! machine) and its unacknowledged stanzas are handled as RFC 6121 §8.5 says for a resource
//! that is gone: messages to the account (offline storage when no resource is available),
//! `service-unavailable` for iqs, presence ignored; nothing is dropped without a trace.

use std::collections::BTreeMap;

use core::time::Duration;
use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_stream::{
    CloseReason, DetachedSession, Instant, ServerStream, SmEvent, StanzaErrorCondition,
    StreamError, StreamErrorCondition,
};

use super::{Hub, SessionId};

/// Used when the stream configuration names no window.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// A session waiting for its client to resume it.
pub(super) struct Detached {
    session: DetachedSession,
    expires: Instant,
}

/// The hub's stream-management bookkeeping.
#[derive(Default)]
pub(super) struct SmSessions {
    /// Detached sessions by resumption id.
    detached: BTreeMap<String, Detached>,
    /// The resumption id of each detached session's JID (deliveries go to its queue).
    detached_jid: BTreeMap<FullJid, String>,
    /// Live sessions with resumption granted, by resumption id.
    live: BTreeMap<String, SessionId>,
    /// The keys of `live` for each session: a closing session's entries are found without
    /// a walk over every live one.
    live_ids: BTreeMap<SessionId, Vec<String>>,
}

impl SmSessions {
    /// Session `id` may be resumed as `sm_id`.
    fn insert_live(&mut self, sm_id: String, id: SessionId) {
        if let Some(old) = self.live.insert(sm_id.clone(), id) {
            if old == id {
                return;
            }
            self.unlist(old, &sm_id);
        }
        self.live_ids.entry(id).or_default().push(sm_id);
    }

    /// Session `sm_id` is no longer live; the session it was, if any.
    fn remove_live(&mut self, sm_id: &str) -> Option<SessionId> {
        let id = self.live.remove(sm_id)?;
        self.unlist(id, sm_id);
        Some(id)
    }

    /// Every entry of `live` for session `id` (what `retain` over all of them removed).
    fn forget_live(&mut self, id: SessionId) {
        for sm_id in self.live_ids.remove(&id).unwrap_or_default() {
            if self.live.get(&sm_id) == Some(&id) {
                self.live.remove(&sm_id);
            }
        }
    }

    fn unlist(&mut self, id: SessionId, sm_id: &str) {
        if let Some(ids) = self.live_ids.get_mut(&id) {
            ids.retain(|k| k != sm_id);
            if ids.is_empty() {
                self.live_ids.remove(&id);
            }
        }
    }
}

impl SmSessions {
    /// The earliest end of a resumption window.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.detached.values().map(|d| d.expires).min()
    }

    /// Detached sessions.
    pub(super) fn detached_count(&self) -> usize {
        self.detached.len()
    }
}

impl Hub {
    /// Sessions kept detached for XEP-0198 resumption.
    pub fn detached_count(&self) -> usize {
        self.sm.detached_count()
    }

    /// Stanzas queued for detached sessions, all together.
    pub fn detached_queued(&self) -> usize {
        self.sm.detached.values().map(|d| d.session.queued()).sum()
    }

    /// A stream event of XEP-0198.
    pub(super) fn on_sm_event(&mut self, id: SessionId, now: Instant, event: SmEvent) {
        match event {
            SmEvent::Enabled {
                id: Some(sm_id), ..
            } => {
                self.sm.insert_live(sm_id, id);
            }
            SmEvent::ResumeRequested { previd, .. } => self.on_resume_requested(id, now, &previd),
            SmEvent::Resumed { jid, resent } => {
                self.log
                    .push(format!("{id}: resumed {jid}, {resent} stanzas re-sent"));
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.jid = Some(jid.clone());
                    if let Some(sm_id) = session.stream.as_server().and_then(ServerStream::sm_id) {
                        self.sm.insert_live(sm_id.to_owned(), id);
                    }
                }
                self.by_jid.insert(jid, id);
            }
            _ => {}
        }
    }

    /// A client's stream closed. When its transport died (not a clean close, not a protocol
    /// error) and resumption was granted, keep the session detached: `true` then, and the
    /// IM session goes on.
    pub(super) fn detach_on_close(
        &mut self,
        id: SessionId,
        now: Instant,
        jid: &FullJid,
        reason: &CloseReason,
    ) -> bool {
        if !matches!(
            reason,
            CloseReason::TransportClosed | CloseReason::Timeout(_)
        ) {
            self.forget_live(id);
            return false;
        }
        let Some(live) = self.sessions.get_mut(&id) else {
            return false;
        };
        let Some(session) = live.stream.as_server_mut().and_then(ServerStream::detach) else {
            return false;
        };
        live.rec
            .command(now, || xmpp_stream::transcript::detach_command(&session));
        self.forget_live(id);
        let window = self.window(&session);
        self.log.push(format!(
            "{id}: {jid} detached with {} unacknowledged stanzas",
            session.queued()
        ));
        self.keep_detached(now + window, session);
        true
    }

    /// How long `session` stays detached: the window granted in its `<enabled max=''/>`
    /// (which is shorter than ours when the client asked for less), else ours.
    fn window(&self, session: &DetachedSession) -> Duration {
        session
            .max_resume()
            .unwrap_or_else(|| self.config.stream.sm.max_resume.unwrap_or(DEFAULT_WINDOW))
    }

    fn keep_detached(&mut self, expires: Instant, session: DetachedSession) {
        let sm_id = session.id().to_owned();
        self.sm
            .detached_jid
            .insert(session.jid().clone(), sm_id.clone());
        self.sm
            .detached
            .insert(sm_id, Detached { session, expires });
    }

    /// Per closing session: a walk over every live session here (`retain`) made closing
    /// L sessions cost L² steps.
    fn forget_live(&mut self, id: SessionId) {
        self.sm.forget_live(id);
    }

    /// XEP-0198: stanza `seq` of detached session `jid` counts as handled (its storage is
    /// durable); nothing when `jid` is not detached.
    pub(super) fn detached_handled(&mut self, jid: &FullJid, seq: u32) {
        if let Some(sm_id) = self.sm.detached_jid.get(jid)
            && let Some(detached) = self.sm.detached.get_mut(sm_id)
        {
            detached.session.stanza_handled(seq);
        }
    }

    /// Deliver to a detached session's queue: `false` when `to` is not detached. A full
    /// queue makes the stanza undeliverable.
    pub(super) fn deliver_detached(
        &mut self,
        now: Instant,
        to: &FullJid,
        stanza: &Element,
    ) -> bool {
        let Some(sm_id) = self.sm.detached_jid.get(to) else {
            return false;
        };
        let queued = self
            .sm
            .detached
            .get_mut(sm_id)
            .is_some_and(|d| d.session.queue(stanza));
        if !queued {
            self.undeliverable(now, stanza);
        }
        true
    }

    /// [`Hub::deliver_detached`] for a stanza the IM machine decided on its envelope: the
    /// session's queue keeps the spliced bytes (no element built).
    pub(super) fn forward_detached(&mut self, now: Instant, forward: &xmpp_im::Forward) -> bool {
        let Some(sm_id) = self.sm.detached_jid.get(&forward.to) else {
            return false;
        };
        let queued = self.sm.detached.get_mut(sm_id).is_some_and(|d| {
            d.session.queue_envelope(
                &forward.envelope,
                Some(forward.from.as_str()),
                Some(forward.stanza_to.as_str()),
            )
        });
        if !queued && let Ok(stanza) = forward.to_element() {
            self.undeliverable(now, &stanza);
        }
        true
    }

    /// A stanza for a session that cannot take it (its queue is full): a message goes to
    /// the account's offline storage (bounced when that is full), an iq gets
    /// `service-unavailable`, a presence is ignored (RFC 6121 §8.5.3.2.3).
    pub(super) fn undeliverable(&mut self, now: Instant, stanza: &Element) {
        match stanza.name() {
            "message" => {
                let user = stanza
                    .attr("to")
                    .and_then(|to| FullJid::new(to).ok())
                    .map(|to| to.to_bare());
                match user {
                    Some(user) => self.store_offline(now, user, stanza),
                    None => self.error_reply(now, stanza, StanzaErrorCondition::ServiceUnavailable),
                }
            }
            "iq" => self.error_reply(now, stanza, StanzaErrorCondition::ServiceUnavailable),
            _ => self
                .log
                .push("presence for a session that cannot take it: ignored".to_owned()),
        }
    }

    /// `SmEvent::ResumeRequested` on session `id`: find the session, detached or (a second
    /// resumption) still attached to an older transport, which is then closed with
    /// `conflict`; unknown or expired: `item-not-found`.
    fn on_resume_requested(&mut self, id: SessionId, now: Instant, previd: &str) {
        let found = match self.sm.detached.remove(previd) {
            Some(detached) => {
                self.sm.detached_jid.remove(detached.session.jid());
                Some(detached.session)
            }
            None => self.take_live(now, previd),
        };
        let Some((stream, rec)) = self
            .sessions
            .get_mut(&id)
            .and_then(|s| Some((s.stream.as_server_mut()?, &mut s.rec)))
        else {
            if let Some(session) = found {
                self.keep_detached(now, session);
            }
            return;
        };
        let Some(session) = found else {
            self.log.push(format!("{id}: resume of unknown id refused"));
            rec.command(now, || "refuse_resume".to_owned());
            stream.refuse_resume(now);
            self.dirty.insert(id);
            return;
        };
        rec.command(now, || xmpp_stream::transcript::resume_command(&session));
        if let Err(back) = stream.resume(now, session) {
            // Another account, or a hostile `h`: the session stays detached as it was.
            self.log.push(format!("{id}: resume refused"));
            let window = self.window(&back);
            self.keep_detached(now + window, *back);
        }
        self.dirty.insert(id);
    }

    /// The session `sm_id` is still attached to an older transport (its death not noticed
    /// yet): take it from that stream, which is closed with `conflict`.
    fn take_live(&mut self, now: Instant, sm_id: &str) -> Option<DetachedSession> {
        let old = self.sm.remove_live(sm_id)?;
        let session = self.sessions.get_mut(&old)?;
        let detached = session.stream.as_server_mut()?.detach()?;
        // Its close must not end the IM session: the new stream carries it on.
        if let Some(jid) = session.jid.take() {
            self.by_jid.remove(&jid);
        }
        session.rec.unreplayable();
        let _ = session
            .stream
            .close_with_error(now, StreamError::new(StreamErrorCondition::Conflict));
        self.dirty.insert(old);
        self.log
            .push(format!("{old}: replaced by a resumption of its session"));
        Some(detached)
    }

    /// End detached sessions whose window passed: the IM machine sends unavailable presence,
    /// and the unacknowledged stanzas are handled as for a resource that is gone.
    pub(super) fn expire_detached(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .sm
            .detached
            .iter()
            .filter(|(_, d)| d.expires <= now)
            .map(|(sm_id, _)| sm_id.clone())
            .collect();
        for sm_id in expired {
            let Some(detached) = self.sm.detached.remove(&sm_id) else {
                continue;
            };
            let jid = detached.session.jid().clone();
            self.sm.detached_jid.remove(&jid);
            self.log.push(format!("{jid}: resumption window over"));
            self.im_session_ended(&jid);
            self.route_im(now);
            for unacked in detached.session.into_unacked() {
                // A forwarded envelope is kept as its spliced bytes: the element is built
                // only now, as the stanza leaves the queue.
                let stanza = match unacked.into_element() {
                    Ok(stanza) => stanza,
                    Err(error) => {
                        self.log
                            .push(format!("{jid}: unacknowledged stanza lost: {error}"));
                        continue;
                    }
                };
                if stanza.attr("from").is_some() {
                    // Addressed to a resource that is gone: the IM machine's delivery rules.
                    self.im_remote_stanza(&stanza);
                    self.route_im(now);
                } else {
                    self.log.push(format!(
                        "{jid}: unacknowledged {} from the server itself dropped",
                        stanza.name()
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SessionId, SmSessions};

    #[test]
    fn live_sessions_are_forgotten_by_their_own_entries() {
        let mut sm = SmSessions::default();
        for n in 0..1000 {
            sm.insert_live(format!("sm{n}"), SessionId(n));
        }
        // A resumption id taken over by another session belongs to that one alone.
        sm.insert_live("sm7".to_owned(), SessionId(8));
        sm.insert_live("sm8".to_owned(), SessionId(8));
        sm.forget_live(SessionId(7));
        assert_eq!(sm.live.get("sm7"), Some(&SessionId(8)));
        assert!(!sm.live_ids.contains_key(&SessionId(7)));
        assert_eq!(sm.remove_live("sm7"), Some(SessionId(8)));
        assert_eq!(sm.live_ids.get(&SessionId(8)).map(Vec::len), Some(1));
        // Each close looks at its own entries only; all gone, nothing is left behind.
        for n in 0..1000 {
            sm.forget_live(SessionId(n));
            assert!(!sm.live.values().any(|id| *id == SessionId(n)));
        }
        assert!(sm.live.is_empty() && sm.live_ids.is_empty());
        assert_eq!(sm.remove_live("sm1"), None);
    }
}
