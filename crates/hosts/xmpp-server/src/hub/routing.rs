//! What the hub does with its streams' events: it registers a negotiated session's JID with
//! the RFC 6121 [`xmpp_im::Server`], hands it the session's stanzas, and acts on what that
//! machine decides (delivery to a session, offline storage, bounces: there is no
//! server-to-server here).

use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_stream::{
    Event, Instant, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition,
};

use super::{Hub, HubOutput, SessionId};

/// Offline messages kept per account; beyond this the newest are bounced.
pub const MAX_OFFLINE_PER_ACCOUNT: usize = 100;

impl Hub {
    /// Act on an event of session `id`'s stream.
    pub(super) fn on_event(&mut self, id: SessionId, now: Instant, event: Event) {
        match event {
            Event::Negotiated { jid, .. } => self.on_negotiated(id, now, jid),
            Event::Stanza(stanza) => self.on_stanza(id, now, &stanza),
            Event::Closed { reason } => {
                self.log.push(format!("{id}: closed ({reason:?})"));
                self.closed.push(id);
                let jid = self.sessions.get_mut(&id).and_then(|s| s.jid.take());
                self.out.push_back(HubOutput::Close(id));
                if let Some(jid) = jid {
                    self.by_jid.remove(&jid);
                    let _ = self.im.session_ended(&mut self.store, &jid);
                    self.route_im(now);
                }
            }
            Event::Authenticated { jid, mechanism } => {
                self.log
                    .push(format!("{id}: authenticated {jid} with {mechanism}"));
            }
            _ => {}
        }
    }

    fn on_negotiated(&mut self, id: SessionId, now: Instant, jid: FullJid) {
        // One session per full JID: the newer one wins, the older gets `conflict`
        // (RFC 6120 §7.7.2.2, the "override" policy).
        if let Some(old) = self.by_jid.remove(&jid) {
            if let Some(session) = self.sessions.get_mut(&old) {
                session.jid = None;
                session.rec.unreplayable();
                let error = StreamError::new(StreamErrorCondition::Conflict);
                let _ = session.stream.close_with_error(now, error);
                self.dirty.insert(old);
            }
            let _ = self.im.session_ended(&mut self.store, &jid);
        }
        match self.im.session_started(jid.clone()) {
            Ok(()) => {
                self.log.push(format!("{id}: bound {jid}"));
                self.by_jid.insert(jid.clone(), id);
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.jid = Some(jid);
                }
            }
            Err(error) => {
                self.log.push(format!("{id}: cannot start {jid}: {error}"));
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.rec.unreplayable();
                    let error = StreamError::new(StreamErrorCondition::ResourceConstraint);
                    let _ = session.stream.close_with_error(now, error);
                }
            }
        }
        self.route_im(now);
    }

    fn on_stanza(&mut self, id: SessionId, now: Instant, stanza: &Element) {
        let Some(jid) = self.sessions.get(&id).and_then(|s| s.jid.clone()) else {
            return;
        };
        let was_available = self.im.is_available(&jid);
        if self
            .im
            .handle_session_stanza(&mut self.store, &jid, stanza)
            .is_err()
        {
            return;
        }
        self.route_im(now);
        // Initial presence: hand over what was stored while no resource was available.
        if !was_available
            && self.im.is_available(&jid)
            && let Some(stored) = self.offline.remove(&jid.to_bare())
        {
            for message in stored {
                self.deliver(now, &jid, &message);
            }
        }
    }

    /// Act on everything the IM server decided.
    fn route_im(&mut self, now: Instant) {
        while let Some(output) = self.im.poll_output() {
            match output {
                xmpp_im::Output::Deliver { to, stanza } => self.deliver(now, &to, &stanza),
                xmpp_im::Output::Route(stanza) => {
                    // No server-to-server here: remote domains are unreachable.
                    self.log.push(format!(
                        "no s2s: bouncing stanza to {}",
                        stanza.attr("to").unwrap_or_default()
                    ));
                    self.error_reply(now, &stanza, StanzaErrorCondition::RemoteServerNotFound);
                }
                xmpp_im::Output::Offline { user, stanza } => {
                    // Store (RFC 6121 §8.5.2.2.1), or bounce once the account's box is full.
                    let queue = self.offline.entry(user).or_default();
                    if queue.len() < MAX_OFFLINE_PER_ACCOUNT {
                        queue.push_back(stanza);
                    } else {
                        self.im.bounce(&mut self.store, &stanza);
                    }
                }
                xmpp_im::Output::Unhandled(stanza) => self.unhandled(now, &stanza),
                _ => {}
            }
        }
    }

    fn deliver(&mut self, now: Instant, to: &FullJid, stanza: &Element) {
        let Some(id) = self.by_jid.get(to).copied() else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(&id) {
            // Serialized for the transcript only when recording: this is every delivery.
            session
                .rec
                .line(now, || format!("H server: send {}", String::from(stanza)));
            if session.stream.send_stanza(now, stanza).is_ok() {
                session.drain(now);
                self.dirty.insert(id);
            }
        }
    }

    /// Answer a stanza's sender (a local session) with an error, unless it is an error.
    pub(super) fn error_reply(
        &mut self,
        now: Instant,
        stanza: &Element,
        condition: StanzaErrorCondition,
    ) {
        if stanza.attr("type") == Some("error") {
            return;
        }
        let reply = StanzaError::new(condition).reply_to(stanza);
        self.reply_to_sender(now, stanza, &reply);
    }

    pub(super) fn reply_to_sender(&mut self, now: Instant, stanza: &Element, reply: &Element) {
        let Some(from) = stanza.attr("from").and_then(|f| FullJid::new(f).ok()) else {
            return;
        };
        self.deliver(now, &from, reply);
    }
}
