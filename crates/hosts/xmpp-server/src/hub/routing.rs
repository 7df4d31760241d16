//! What the hub does with its streams' events: it registers a negotiated session's JID with
//! the RFC 6121 [`xmpp_im::Server`], hands it the session's stanzas, and acts on what that
//! machine decides (delivery to a session, offline storage, bounces).
//!
//! One routing path for every stanza: what a client sends goes through the IM machine; what
//! it routes out of the served domain ([`xmpp_im::Output::Route`]) goes to the XEP-0114
//! component serving the address's domain ([`Hub::route_out`]); what a component sends to a
//! local address goes through the IM machine as a stanza from a remote domain would
//! ([`xmpp_im::Server::handle_remote_stanza`]), so the same delivery, offline and bounce
//! rules apply. Stanzas for any other domain go to the outgoing server-to-server connection
//! for it (`s2s`), when federation is on; what a peer server sends enters the IM machine the
//! same way as a component's stanza to a local address.

use std::sync::Arc;

use minidom::Element;
use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_stream::{
    Event, Instant, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition,
};

use super::routed::Routed;
use super::{Hub, HubOutput, SessionId, StorageRequest};

/// Offline messages kept per account (RFC 6121 §8.5.2.2.1). Each is stamped with an XEP-0203
/// `<delay/>` (from our domain, at the time it was stored) and they are delivered in the
/// order they arrived, before anything newer, to the first resource of the account that
/// sends initial presence. When the box is full, a new message is not stored: it bounces to
/// its sender with `service-unavailable` (what RFC 6121 §8.5.2.2.1 prescribes when a
/// message is not stored), and the stored ones stay as they were.
pub const MAX_OFFLINE_PER_ACCOUNT: usize = 100;

/// A client's stanza, as the stream handed it out.
enum ClientStanza<'a> {
    /// The element path.
    Element(&'a Element),
    /// An envelope (`ServerConfig::envelopes`).
    Envelope(Arc<xmpp_stream::Envelope>),
}

impl Hub {
    /// Act on an event of session `id`'s stream.
    pub(super) fn on_event(&mut self, id: SessionId, now: Instant, event: Event) {
        match event {
            Event::Negotiated { jid, .. } => self.on_negotiated(id, now, jid),
            Event::ComponentNegotiated { domain } => {
                self.on_component_negotiated(id, now, domain);
            }
            Event::Stanza(stanza) => self.on_stanza(id, now, &stanza),
            Event::StanzaEnvelope(envelope) => self.on_envelope(id, now, envelope),
            Event::ServerAuthenticated {
                local,
                remote,
                method,
            } => {
                self.log.push(format!(
                    "{id}: s2s pair {local} / {remote} authenticated ({method:?})"
                ));
                // The pair carries stanzas from now on: send what waited for it.
                self.on_pair_authenticated(id, now, &local, &remote);
            }
            Event::ServerRefused { local, remote } => {
                self.log
                    .push(format!("{id}: s2s pair {local} / {remote} refused"));
                self.on_pair_refused(id, now, &local, &remote);
            }
            Event::DialbackVerify {
                originating,
                receiving,
                stream_id,
                key,
            } => self.out.push_back(HubOutput::DialbackVerify {
                id,
                originating,
                receiving,
                stream_id,
                key,
            }),
            Event::Sm(event) => self.on_sm_event(id, now, event),
            Event::Closed { reason } => {
                self.log.push(format!("{id}: closed ({reason:?})"));
                self.closed.push(id);
                let s2s = self.sessions.get(&id).is_some_and(|session| {
                    matches!(session.kind, super::Kind::S2sIn | super::Kind::S2sOut)
                });
                if s2s || self.is_outgoing(id) {
                    self.on_s2s_closed(id, now, &reason);
                }
                let (jid, component) = match self.sessions.get_mut(&id) {
                    Some(session) => (session.jid.take(), session.component.take()),
                    None => (None, None),
                };
                self.out.push_back(HubOutput::Close(id));
                if let Some(domain) = component {
                    self.components.disconnect(&domain, id);
                    self.log
                        .push(format!("{id}: component {domain} disconnected"));
                }
                if let Some(jid) = jid {
                    self.by_jid.remove(&jid);
                    // XEP-0198: a session whose transport died waits for its client.
                    if !self.detach_on_close(id, now, &jid, &reason) {
                        self.im_session_ended(&jid);
                        self.route_im(now);
                    }
                }
            }
            Event::RegistrationRequested(registration) => {
                self.on_registration(id, now, *registration);
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
            self.im_session_ended(&jid);
        }
        match self.im.session_started(jid.clone()) {
            Ok(()) => {
                self.log.push(format!("{id}: bound {jid}"));
                if self.config.database.is_some() {
                    self.awaiting_presence.insert(jid.clone());
                }
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

    /// A component's handshake succeeded: stanzas for its domain now go to session `id`.
    fn on_component_negotiated(&mut self, id: SessionId, now: Instant, domain: BareJid) {
        // The stream already refused a second connection for a connected domain (`conflict`,
        // asked of the backend before it accepts the handshake); this keeps the map right
        // should the two ever disagree.
        if self.components.connect(&domain, id) {
            self.log.push(format!("{id}: component {domain} connected"));
            if let Some(session) = self.sessions.get_mut(&id) {
                session.component = Some(domain);
            }
        } else if let Some(session) = self.sessions.get_mut(&id) {
            self.log
                .push(format!("{id}: component {domain} is already connected"));
            session.rec.unreplayable();
            let error = StreamError::new(StreamErrorCondition::Conflict);
            let _ = session.stream.close_with_error(now, error);
        }
    }

    fn on_stanza(&mut self, id: SessionId, now: Instant, stanza: &Element) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        // A peer server's stanza: on its connection to us, or on ours when XEP-0288 bidi
        // was negotiated (the stream refuses it otherwise).
        let s2s = matches!(session.kind, super::Kind::S2sIn | super::Kind::S2sOut);
        if session.component.is_some() || s2s {
            self.on_remote_stanza(now, stanza);
            return;
        }
        let Some(jid) = &session.jid else {
            return;
        };
        // XEP-0077 after authentication: password change and cancellation, for the server.
        if self.config.stream.allow_registration && super::register::is_for_us(stanza, jid) {
            let jid = jid.clone();
            self.on_register_iq(id, now, &jid, stanza);
            return;
        }
        self.on_client_stanza(now, id, ClientStanza::Element(stanza));
    }

    /// A client's stanza as an envelope (`ServerConfig::envelopes` on the hub's stream
    /// template, issue 17): decided by the IM machine on the envelope where it can be, and
    /// forwarded as bytes ([`Hub::forward`]); otherwise the machine builds the element.
    fn on_envelope(&mut self, id: SessionId, now: Instant, envelope: Arc<xmpp_stream::Envelope>) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let s2s = matches!(session.kind, super::Kind::S2sIn | super::Kind::S2sOut);
        if session.component.is_some() || s2s {
            self.on_remote_envelope(now, envelope);
            return;
        }
        self.on_client_stanza(now, id, ClientStanza::Envelope(envelope));
    }

    /// A stanza from client session `id` (bound to a JID), as an element or an envelope:
    /// the same steps either way. The IM machine borrows the session's JID: a message costs
    /// no copy of it (a presence keeps one, for the initial-presence check after).
    fn on_client_stanza(&mut self, now: Instant, id: SessionId, stanza: ClientStanza<'_>) {
        let Some(jid) = self.sessions.get(&id).and_then(|s| s.jid.as_ref()) else {
            return;
        };
        if self.config.database.is_some() {
            // The machine may wait for the database: initial presence is noticed when the
            // machine has processed it (`route_im`).
            let presence = match &stanza {
                ClientStanza::Element(stanza) => stanza.name() == "presence",
                ClientStanza::Envelope(envelope) => {
                    envelope.kind() == xmpp_stream::StanzaKind::Presence
                }
            };
            if presence && self.awaiting_presence.contains(jid) {
                self.presence_sent.insert(jid.clone());
            }
            let handled = match stanza {
                ClientStanza::Element(stanza) => self.im.handle_client_stanza(jid, stanza),
                ClientStanza::Envelope(envelope) => self.im.handle_client_envelope(jid, envelope),
            };
            if handled.is_ok() {
                self.route_im(now);
            }
            return;
        }
        // Only a presence can make the session available (initial presence, below).
        let presence = match &stanza {
            ClientStanza::Element(stanza) => stanza.name() == "presence",
            ClientStanza::Envelope(envelope) => {
                envelope.kind() == xmpp_stream::StanzaKind::Presence
            }
        };
        let unavailable = (presence && !self.im.is_available(jid)).then(|| jid.clone());
        let handled = match stanza {
            ClientStanza::Element(stanza) => {
                self.im.handle_session_stanza(&mut self.store, jid, stanza)
            }
            ClientStanza::Envelope(envelope) => {
                self.im
                    .handle_session_envelope(&mut self.store, jid, envelope)
            }
        };
        if handled.is_err() {
            return;
        }
        self.route_im(now);
        // Initial presence: hand over what was stored while no resource was available.
        if let Some(jid) = unavailable
            && self.im.is_available(&jid)
            && let Some(stored) = self.offline.remove(&jid.to_bare())
        {
            for message in stored {
                self.deliver(now, &jid, &message);
            }
        }
    }

    /// A session ended, for the IM machine (with the database, its broadcast may wait for
    /// contacts to load).
    pub(super) fn im_session_ended(&mut self, jid: &FullJid) {
        self.awaiting_presence.remove(jid);
        self.presence_sent.remove(jid);
        if self.config.database.is_some() {
            let _ = self.im.end_session(jid);
        } else {
            let _ = self.im.session_ended(&mut self.store, jid);
        }
    }

    /// A stanza from a remote domain for the IM machine.
    pub(super) fn im_remote_stanza(&mut self, stanza: &Element) {
        if self.config.database.is_some() {
            self.im.handle_server_stanza(stanza);
        } else {
            self.im.handle_remote_stanza(&mut self.store, stanza);
        }
    }

    /// The IM machine's bounce of a message not stored offline.
    pub(super) fn im_bounce(&mut self, stanza: &Element) {
        if self.config.database.is_some() {
            self.im.bounce_message(stanza);
        } else {
            self.im.bounce(&mut self.store, stanza);
        }
    }

    /// A stanza from a component or a peer server; the stream checked that its `from` is in
    /// the component's domain or an authenticated pair's (else `invalid-from`) and that it
    /// has a `to` (else `improper-addressing`). For a local address it enters the IM machine
    /// as a stanza from another domain; anything else is routed out like a client's stanza
    /// to a foreign domain (a peer server's stream only lets our domains through).
    fn on_remote_stanza(&mut self, now: Instant, stanza: &Element) {
        let foreign = stanza
            .attr("to")
            .and_then(|to| Jid::new(to).ok())
            .is_some_and(|to| !self.im.is_local(to.domain()));
        if foreign {
            self.route_out(now, Routed::Element(stanza.clone()));
        } else {
            // A malformed `to` is the IM machine's to answer (`jid-malformed`).
            self.im_remote_stanza(stanza);
            self.route_im(now);
        }
    }

    /// [`Hub::on_remote_stanza`] for a stanza that arrived as an envelope: relayed as bytes
    /// when its `to` is not ours, else to the IM machine, which forwards a message to a
    /// local account's sessions as bytes when it can.
    fn on_remote_envelope(&mut self, now: Instant, envelope: Arc<xmpp_stream::Envelope>) {
        let foreign = envelope
            .to()
            .and_then(|to| Jid::new(to).ok())
            .is_some_and(|to| !self.im.is_local(to.domain()));
        if foreign {
            match Routed::relay(envelope) {
                Some(routed) => self.route_out(now, routed),
                None => self.log.push("a peer's envelope without addresses".into()),
            }
        } else if self.config.database.is_some() {
            self.im.handle_server_envelope(envelope);
            self.route_im(now);
        } else {
            self.im.handle_remote_envelope(&mut self.store, envelope);
            self.route_im(now);
        }
    }

    /// Act on everything the IM server decided.
    pub(super) fn route_im(&mut self, now: Instant) {
        let ran = self.im_units_ran();
        while let Some((output, maker)) = self.im.poll_output_made() {
            let start = self.out.len();
            match output {
                xmpp_im::Output::Deliver { to, stanza } => self.deliver(now, &to, &stanza),
                xmpp_im::Output::Forward(forward) => self.forward(now, &forward),
                xmpp_im::Output::Route(stanza) => self.route_out(now, Routed::Element(stanza)),
                xmpp_im::Output::Relay(relay) => self.route_out(now, Routed::Relay(relay)),
                xmpp_im::Output::Offline { user, stanza } => self.store_offline(now, user, &stanza),
                xmpp_im::Output::Unhandled(stanza) => self.unhandled(now, &stanza),
                xmpp_im::Output::Load { id, user } => self
                    .out
                    .push_back(HubOutput::Storage(StorageRequest::Load { id, user })),
                xmpp_im::Output::Write { id, changes } => self
                    .out
                    .push_back(HubOutput::Storage(StorageRequest::Write { id, changes })),
                _ => {}
            }
            // What a unit's output led to is its stanza's to wait for (XEP-0198 with a
            // database, `durable`).
            if maker.is_some() {
                self.made_by(maker, start);
            }
        }
        self.after_im_drained(now, ran);
        if self.config.database.is_some() && !self.presence_sent.is_empty() {
            // Initial presence processed: the account's stored messages, from the database.
            // Only sessions that sent a presence can have become available: looking at every
            // session still without one cost each stanza of any client a lookup per such
            // session.
            let ready: Vec<FullJid> = self
                .presence_sent
                .iter()
                .filter(|jid| self.im.is_available(jid))
                .cloned()
                .collect();
            for jid in ready {
                self.presence_sent.remove(&jid);
                self.awaiting_presence.remove(&jid);
                self.out
                    .push_back(HubOutput::Storage(StorageRequest::TakeOffline { jid }));
            }
            if self.im.storage_waiting() == 0 {
                // Every presence handed in has run: one that left its session unavailable
                // (directed, unavailable, refused) never makes it available later.
                self.presence_sent.clear();
            }
        }
    }

    /// Store a message for `user` (RFC 6121 §8.5.2.2.1), or bounce it once the account's box
    /// is full.
    /// A stored message carries an XEP-0203 `<delay/>` stamped with the host's time of
    /// storage, from the account's own domain.
    pub(super) fn store_offline(&mut self, now: Instant, user: BareJid, stanza: &Element) {
        let at = self
            .config
            .unix_epoch_millis
            .saturating_add(now.as_millis());
        let stamped = xmpp_im::delay::with_delay(stanza, user.domain(), at);
        if self.config.database.is_some() {
            let id = self.durable.next_offline();
            self.out
                .push_back(HubOutput::Storage(StorageRequest::StoreOffline {
                    id,
                    user,
                    stanza: stamped,
                }));
            return;
        }
        let queue = self.offline.entry(user).or_default();
        if queue.len() < MAX_OFFLINE_PER_ACCOUNT {
            queue.push_back(stamped);
        } else {
            self.im_bounce(stanza);
        }
    }

    /// A stanza for a domain not served here (its `to`): to the connected component serving
    /// that domain or a parent of it.
    ///
    /// A configured component that is not connected is a local service with nothing behind
    /// it, which RFC 6120 treats like an address of the served domain with no account
    /// (§10.5.3.1): an iq or a message gets `service-unavailable` (§8.3.3.19), a presence is
    /// dropped. Any other domain goes to its server-to-server connection when federation is
    /// on ([`HubConfig::s2s`](super::HubConfig::s2s)); else `remote-server-not-found`
    /// (§8.3.3.14: the remote server cannot be resolved).
    fn route_out(&mut self, now: Instant, stanza: Routed) {
        let to = stanza.to().unwrap_or_default();
        let Some(domain) = self.components.serving(to) else {
            if self.config.s2s.is_some()
                && let Some(remote) = stanza.domain_of(true)
            {
                self.route_s2s(now, remote, stanza);
                return;
            }
            self.log.push(format!("no s2s: bouncing stanza to {to}"));
            self.routed_error_reply(now, &stanza, StanzaErrorCondition::RemoteServerNotFound);
            return;
        };
        match self.components.session(&domain) {
            Some(id) => self.send_routed(now, id, &stanza),
            None if stanza.is_presence() => {
                self.log.push(format!(
                    "component {domain} not connected: dropping presence to {to}"
                ));
            }
            None => {
                self.log.push(format!(
                    "component {domain} not connected: bouncing stanza to {to}"
                ));
                self.routed_error_reply(now, &stanza, StanzaErrorCondition::ServiceUnavailable);
            }
        }
    }

    /// Send to the client session bound to `to`, if there is one.
    pub(super) fn deliver(&mut self, now: Instant, to: &FullJid, stanza: &Element) {
        if let Some(id) = self.by_jid.get(to).copied() {
            self.send_on(now, id, stanza);
        } else {
            // XEP-0198: a detached session queues it for its resumption.
            let _ = self.deliver_detached(now, to, stanza);
        }
    }

    /// Send a stanza the IM machine decided on its envelope to the client session bound to
    /// `forward.to`: its bytes, with the stamp spliced in, straight into the stream's output
    /// (no element built); a detached XEP-0198 session queues the spliced bytes. A queue that
    /// is full makes the element, for offline storage or a bounce. A recorded session's transcript cannot express the splice: it is not kept.
    pub(super) fn forward(&mut self, now: Instant, forward: &xmpp_im::Forward) {
        let Some(id) = self.by_jid.get(&forward.to).copied() else {
            // XEP-0198: a detached session queues the spliced bytes for its resumption.
            let _ = self.forward_detached(now, forward);
            return;
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.rec.is_on() {
            // A transcript's `send` is an element (tests only): the element path.
            if let Ok(stanza) = forward.to_element() {
                self.send_on(now, id, &stanza);
            }
            return;
        }
        let sent = session.stream.send_envelope(
            now,
            &forward.envelope,
            Some(forward.from.as_str()),
            Some(forward.stanza_to.as_str()),
        );
        match sent {
            Ok(()) => {
                session.drain(now, &mut self.spare);
                self.dirty.insert(id);
            }
            Err(xmpp_stream::UsageError::Backpressure) => {
                self.log.push(format!("{id}: unacknowledged queue full"));
                if let Ok(stanza) = forward.to_element() {
                    self.undeliverable(now, &stanza);
                }
            }
            Err(error) => self.log.push(format!("{id}: not sent: {error}")),
        }
    }

    /// Send on session `id`'s stream (a client's or a component's).
    pub(super) fn send_on(&mut self, now: Instant, id: SessionId, stanza: &Element) {
        if let Some(session) = self.sessions.get_mut(&id) {
            // Serialized for the transcript only when recording: this is every delivery.
            session
                .rec
                .command(now, || format!("send {}", String::from(stanza)));
            match session.stream.send_stanza(now, stanza) {
                Ok(()) => {
                    session.drain(now, &mut self.spare);
                    self.dirty.insert(id);
                }
                Err(xmpp_stream::UsageError::Backpressure) => {
                    // XEP-0198: the client acknowledges nothing and its queue is full.
                    self.log.push(format!("{id}: unacknowledged queue full"));
                    self.undeliverable(now, stanza);
                }
                Err(error) => self.log.push(format!("{id}: not sent: {error}")),
            }
        }
    }

    /// Send a stanza routed out on session `id` (a component's or a peer server's stream):
    /// an element as [`Hub::send_on`] does, a relay as its bytes with the stamp spliced in
    /// (a recorded session, whose transcript holds elements, gets the element).
    pub(super) fn send_routed(&mut self, now: Instant, id: SessionId, stanza: &Routed) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if let Routed::Element(element) = stanza {
            self.send_on(now, id, element);
            return;
        }
        if session.rec.is_on() {
            if let Some(element) = stanza.element() {
                self.send_on(now, id, &element);
            }
            return;
        }
        match stanza.send(&mut session.stream, now) {
            Ok(()) => {
                session.drain(now, &mut self.spare);
                self.dirty.insert(id);
            }
            Err(error) => {
                self.log.push(format!("{id}: not sent: {error}"));
            }
        }
    }

    /// [`Hub::error_reply`] for a stanza routed out.
    pub(super) fn routed_error_reply(
        &mut self,
        now: Instant,
        stanza: &Routed,
        condition: StanzaErrorCondition,
    ) {
        if let Some(element) = stanza.element() {
            self.error_reply(now, &element, condition);
        }
    }

    /// Answer a stanza's sender (a local session or a component) with an error, unless it
    /// is an error.
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

    /// Send `reply` (addressed to `stanza`'s sender) to that sender: a component, or a
    /// client session by its full JID.
    pub(super) fn reply_to_sender(&mut self, now: Instant, stanza: &Element, reply: &Element) {
        let Some(from) = stanza.attr("from") else {
            return;
        };
        let remote = Jid::new(from).is_ok_and(|from| !self.im.is_local(from.domain()));
        if self.components.serving(from).is_some() || (remote && self.config.s2s.is_some()) {
            self.route_out(now, Routed::Element(reply.clone()));
        } else if let Ok(from) = FullJid::new(from) {
            self.deliver(now, &from, reply);
        }
    }
}
