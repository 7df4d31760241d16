//! Routing without trees (issue 17): a message decided on its envelope (the validated bytes
//! and decoded header `xmpp-xml` gives in envelope mode), delivered as the same shared bytes
//! to every recipient with the stamp each needs, no element built; and a session's
//! availability presence fanned out as the same shared bytes.
//!
//! The decision is the element path's, not a copy of it: the same §8.5 function
//! ([`Server::message_decision`], over [`crate::delivery::message_decision`]) and the same
//! recipient selection. A fast path takes the messages for which nothing else of the element
//! path applies, with no unit of work:
//!
//! - a session's message to a local account's sessions ([`Output::Forward`], one per
//!   recipient), both accounts loaded with no privacy state and no storage work in flight;
//! - a session's message out of the served domains, to a component or a peer server
//!   ([`Output::Relay`], where the element path gives [`Output::Route`]);
//! - a message from a component or a peer server ([`Server::handle_server_envelope`]) to a
//!   local account's sessions ([`Output::Forward`], `from` as the peer gave it,
//!   normalized);
//! - an iq (RFC 6120 §8.2.3, its id, type and payload count read from the bytes) to another
//!   entity's full JID (§8.5.3.1: delivered to that connected resource, [`Output::Forward`])
//!   or, from a session, out of the served domains ([`Output::Relay`]), with the accounts
//!   involved loaded and free of privacy state.
//!
//! Every other message of a type of RFC 6121 §5.2.2 but `error` runs the element path's
//! unit of work on its header alone (the typed message with its header and type, the bytes
//! beside it): privacy lists and blocklists (XEP-0016, XEP-0191; they read addresses and
//! kinds, never the payload), accounts loaded from storage first, storage order, offline
//! accounts, unknown accounts and the server itself. Its recipients get the bytes
//! ([`Output::Forward`], [`Output::Relay`]); offline storage gets the element rebuilt from
//! them ([`Output::Offline`] keeps a whole stanza); refusals and bounces are answered from
//! the header, as on the element path (an error reply carries the original's addresses and
//! id, not its payload).
//!
//! Availability presence (no `type`, or `unavailable`; RFC 6121 §4.2, §4.4, §4.5, §4.6) is
//! read from the bytes, no tree built ([`Presence::without_payloads`]: its `<show/>`,
//! `<status/>` and `<priority/>` exactly as the typed parser reads them, the payloads left in
//! the bytes), then takes the element path's unit of work with that typed presence: the
//! same privacy lists, blocklists, subscriptions and storage order. Every recipient (the
//! user's resources, subscribers, directed-presence recipients, local or remote) gets the
//! envelope's bytes ([`Output::Forward`] or [`Output::Relay`], one `Arc` for all), and the
//! session keeps the bytes as its presence: probes, new subscribers, the user's new
//! resources and privacy changes send them on too. A peer's availability presence to a
//! local account is read and delivered the same way.
//!
//! Everything else takes the element path ([`Envelope::element`], then the unit of work of
//! [`Server::handle_client_stanza`] or [`Server::handle_server_stanza`]):
//!
//! - every other iq: to the server or to an account's bare JID (roster, privacy lists, the
//!   services the host answers on the account's behalf read the payload), to a resource not
//!   connected (an error reply), of type `error`, or under privacy state;
//! - subscription presence, probes and presence errors, and a presence the typed parser
//!   would refuse (two `<show/>`, a `<priority/>` out of range...: it answers
//!   `bad-request`);
//! - a message of type `error` (its `<error/>` is read), or of a type outside RFC 6121
//!   §5.2.2 (the typed parser rewrites it as `normal`), or whose `to` is no JID.
//!
//! One difference is deliberate and documented: the envelope path does not parse a
//! message's payload, so a message the typed parser would refuse for its payload alone (two
//! `<body/>` of one language, two `<thread/>`...) is forwarded as sent, where the element
//! path answers `bad-request`. The recipient sees the sender's bytes, as it would through
//! any server that does not inspect payloads. Presence has no such difference: what the
//! typed parser reads of it is read from the bytes.

use std::sync::Arc;

use minidom::Element;
use xmpp_jid::{FullJid, Jid};
use xmpp_xml::{Envelope, NS_CLIENT, ParseError, Stamp, StanzaKind};

use super::routing::Shared;
use super::storage::{Received, Work};
use super::{Output, Server, UsageError};
use crate::delivery::{MessageDecision, message_decision};
use crate::stanza::{Header, IqType, Message, MessageType, Presence, PresenceType};
use crate::store::RosterStore;

/// A stanza to forward to a local session as bytes: the envelope (shared by every
/// recipient of one stanza) and the stamp to splice into its start tag
/// ([`Envelope::splice_into`], or `ServerStream::send_envelope` in `xmpp-stream`).
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// The session to send it to.
    pub to: FullJid,
    /// The stanza as received.
    pub envelope: Arc<Envelope>,
    /// Its sender, stamped as `from`: a local session's full JID (RFC 6120 §8.1.2.1), or
    /// the address a component or a peer server gave, normalized.
    pub from: Jid,
    /// Its `to` as routed (normalized; the sender's bare JID when it had none, RFC 6120
    /// §10.3), stamped as `to`.
    pub stanza_to: Jid,
}

impl Forward {
    /// The stamp for a `jabber:client` stream.
    #[must_use]
    pub fn stamp(&self) -> Stamp<'_> {
        Stamp {
            namespace: NS_CLIENT,
            from: Some(self.from.as_str()),
            to: Some(self.stanza_to.as_str()),
            lang: None,
            standalone: false,
        }
    }

    /// The element the bytes stand for, stamped: for a host that has no envelope path to
    /// this session (detached XEP-0198 sessions, transcripts).
    ///
    /// # Errors
    ///
    /// As [`Envelope::element`] (never for a validated envelope).
    pub fn to_element(&self) -> Result<Element, ParseError> {
        let mut element = self.envelope.element()?;
        xmpp_xml::stamp_element(&mut element, &self.stamp());
        Ok(element)
    }
}

/// A stanza to send out of the served domains as bytes (to the XEP-0114 component or the
/// peer server serving `to`'s domain): the envelope and the addresses to stamp into its
/// start tag. The same decision as an [`Output::Route`] of the element path, for a stanza
/// that arrived as an envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Relay {
    /// The stanza as received.
    pub envelope: Arc<Envelope>,
    /// Its sender, stamped as `from` (a local session's full JID, or the address a
    /// component gave).
    pub from: Jid,
    /// Its `to` as routed (normalized), stamped as `to`; its domain is not served here.
    pub to: Jid,
}

impl Relay {
    /// The stamp for a stream whose content namespace is `namespace` (`jabber:server` for a
    /// peer server, `jabber:component:accept` for a component).
    #[must_use]
    pub fn stamp<'a>(&'a self, namespace: &'a str) -> Stamp<'a> {
        Stamp {
            namespace,
            from: Some(self.from.as_str()),
            to: Some(self.to.as_str()),
            lang: None,
            standalone: false,
        }
    }

    /// The element the bytes stand for, stamped, in `jabber:client` (as the element path's
    /// [`Output::Route`] gives it): for a host with no envelope path to the destination.
    ///
    /// # Errors
    ///
    /// As [`Envelope::element`] (never for a validated envelope).
    pub fn to_element(&self) -> Result<Element, ParseError> {
        let mut element = self.envelope.element()?;
        xmpp_xml::stamp_element(&mut element, &self.stamp(NS_CLIENT));
        Ok(element)
    }
}

/// What the envelope path decided for a message (`None`: the element path decides).
enum Plan {
    /// Deliver to these local sessions, with `to` as routed.
    Local(Jid, Vec<FullJid>),
    /// Send out of the served domains, to `to`.
    Out(Jid),
}

/// `<presence type='unavailable'/>` in `jabber:client`, as the parser in envelope mode hands
/// it out: the presence a session's end broadcasts ([`ServerConfig::envelopes`]). `None`
/// never happens (the bytes are constant and valid).
///
/// [`ServerConfig::envelopes`]: super::ServerConfig::envelopes
pub(super) fn unavailable() -> Option<Envelope> {
    let mut parser = xmpp_xml::StreamParser::new();
    parser.set_envelopes(true);
    parser.feed(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    parser.feed(b"<presence type='unavailable'/>");
    parser.next_event().ok()??;
    match parser.next_event().ok()?? {
        xmpp_xml::Event::Stanza(envelope) => Some(envelope),
        _ => None,
    }
}

impl Server {
    /// A stanza from the local session `from` as an envelope, with a synchronous store: see
    /// [`Server::handle_client_envelope`].
    pub fn handle_session_envelope(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        envelope: impl Into<Arc<Envelope>>,
    ) -> Result<(), UsageError> {
        self.handle_client_envelope(from, envelope)?;
        self.serve(store);
        Ok(())
    }

    /// A stanza from the local session `from` as an envelope (its `from` as the client sent
    /// it: the server stamps `from`). A message the envelope path can decide (see the module
    /// documentation of `server::envelope`) leaves as [`Output::Forward`], one per recipient
    /// sharing the bytes; every other stanza takes the element path
    /// ([`Server::handle_client_stanza`]) with the element built from the envelope and `from`
    /// stamped (as `xmpp-stream`'s element path hands it over), and gives the same outputs
    /// as it would, except for availability presence: it is read from the bytes with no
    /// element built ([`Presence::without_payloads`]; one the typed parser would refuse takes
    /// the element), and its recipients get [`Output::Forward`] and [`Output::Relay`] of the
    /// bytes where that path gives [`Output::Deliver`] and [`Output::Route`] of the same
    /// stanza, then and whenever the session's stored presence is sent on. A
    /// stanza whose bytes do not rebuild (never for a validated envelope) is dropped. The
    /// envelope may come shared (`xmpp-stream`'s `Event::StanzaEnvelope` hands out an
    /// `Arc`): the outputs share that allocation, no copy.
    pub fn handle_client_envelope(
        &mut self,
        from: &FullJid,
        envelope: impl Into<Arc<Envelope>>,
    ) -> Result<(), UsageError> {
        if self.session(from).is_none() {
            return Err(UsageError::NoSession);
        }
        let envelope = envelope.into();
        match self.forward_plan(from, &envelope) {
            Some(Plan::Local(to, targets)) => {
                self.forward_to(envelope, from.clone().into(), to, targets);
                return Ok(());
            }
            Some(Plan::Out(to)) => {
                self.out.push_back(Output::Relay(Relay {
                    envelope,
                    from: from.clone().into(),
                    to,
                }));
                return Ok(());
            }
            None => {}
        }
        let shared = Shared {
            envelope,
            from: from.clone().into(),
        };
        if Self::shares_presence(&shared.envelope) {
            // Decided on the presence read from the bytes, no element built, when it reads
            // as the typed parser would accept it.
            let stanza = match Presence::without_payloads(&shared.envelope, from.clone().into()) {
                Some(p) => Received::Presence(Box::new(p)),
                None => match shared.stamped() {
                    Some(element) => Received::Element(element),
                    None => return Ok(()),
                },
            };
            self.submit(Work::Session {
                from: from.clone(),
                binding: self.binding_of(from),
                stanza,
                shared: Some(shared),
            });
            return Ok(());
        }
        // A message nothing of the fast path could decide (privacy state, an account not
        // loaded, storage in flight, offline storage, a bounce, out of the domains): the
        // element path's unit of work on its header, the bytes beside it.
        if let Some(m) = message_head(&shared.envelope, shared.from.clone()) {
            self.submit(Work::Session {
                from: from.clone(),
                binding: self.binding_of(from),
                stanza: Received::Message(Box::new(m)),
                shared: Some(shared),
            });
            return Ok(());
        }
        // As the stream's element path hands it over: `from` stamped (RFC 6120 §8.1.2.1), so
        // error replies are addressed as they would be.
        let Some(element) = shared.stamped() else {
            return Ok(());
        };
        self.submit(Work::Session {
            from: from.clone(),
            binding: self.binding_of(from),
            stanza: Received::Element(element),
            shared: None,
        });
        Ok(())
    }

    /// Whether a presence's recipients get its bytes: availability presence (RFC 6121
    /// §4.2, §4.4, §4.5, §4.6: `type` absent or `unavailable`) in `jabber:client`. It takes
    /// the element path's unit of work with the typed presence read from the bytes (its
    /// priority, privacy lists, subscriptions), and each recipient, local or remote, gets the
    /// shared bytes instead of a copy of the element. Subscription requests, probes and
    /// errors stay on the element path entirely.
    fn shares_presence(envelope: &Envelope) -> bool {
        envelope.kind() == StanzaKind::Presence
            && envelope.namespace() == NS_CLIENT
            && envelope
                .stanza_type()
                .is_none_or(|t| t.parse() == Ok(PresenceType::Unavailable))
    }

    /// Queues one [`Output::Forward`] per target, sharing the bytes; the envelope, the
    /// sender and the routed `to` are moved into the last forward, copied (reference-counted)
    /// into the others.
    fn forward_to(&mut self, envelope: Arc<Envelope>, from: Jid, to: Jid, targets: Vec<FullJid>) {
        let last = targets.len().saturating_sub(1);
        let mut shared = Some((envelope, from, to));
        for (i, target) in targets.into_iter().enumerate() {
            let taken = if i == last {
                shared.take()
            } else {
                shared.clone()
            };
            let Some((envelope, from, stanza_to)) = taken else {
                break;
            };
            self.out.push_back(Output::Forward(Forward {
                to: target,
                envelope,
                from,
                stanza_to,
            }));
        }
    }

    /// The type of a message the envelope path may decide: a type of RFC 6121 §5.2.2 other
    /// than `error`, with no storage work in flight (so a forwarded message never overtakes
    /// earlier work). `None` hands it to the element path.
    fn forwardable_message(&self, envelope: &Envelope) -> Option<MessageType> {
        if envelope.kind() != StanzaKind::Message {
            return None;
        }
        let kind = match envelope.stanza_type() {
            None => MessageType::Normal,
            Some(t) => t.parse::<MessageType>().ok()?,
        };
        (kind != MessageType::Error && self.storage_in_flight() == 0).then_some(kind)
    }

    /// Whether the account `user` (its enforced bare string) is loaded and has no privacy
    /// state (XEP-0016 lists or an XEP-0191 blocklist): then nothing of the element path's
    /// privacy rules applies to its traffic.
    fn plain_account(&self, user: &str) -> bool {
        self.cache.has_str(user) && !self.privacy.contains_key(user)
    }

    /// The local sessions a message of `kind` to `to` (a local account, loaded, with no
    /// privacy state) is delivered to by §8.5; `None` for any other decision.
    fn local_targets(&self, to: &Jid, kind: MessageType) -> Option<Vec<FullJid>> {
        let user = to.bare_str();
        if !self.plain_account(user) {
            return None;
        }
        // The recipient's sessions, looked up once for the decision and the targets.
        let list = self.sessions.get(user)?;
        match message_decision(self.config.delivery, Some(list), to.resource(), kind) {
            MessageDecision::Deliver(recipients) => {
                let targets: Vec<FullJid> = recipients
                    .select(list)
                    .filter_map(|i| list.get(i).map(|s| s.jid.clone()))
                    .collect();
                (!targets.is_empty()).then_some(targets)
            }
            _ => None,
        }
    }

    /// What the envelope path does with a session's message; `None` hands it to the element
    /// path. Changes nothing.
    fn forward_plan(&self, from: &FullJid, envelope: &Envelope) -> Option<Plan> {
        if envelope.namespace() != NS_CLIENT {
            return None;
        }
        if envelope.kind() == StanzaKind::Iq {
            return self.iq_plan(from, envelope);
        }
        let kind = self.forwardable_message(envelope)?;
        let to: Jid = match envelope.to() {
            Some(to) => Jid::new(to).ok()?,
            None => from.to_bare().into(),
        };
        // The sender's outbound rules (XEP-0016 §2.13, XEP-0191 §3.6) apply to every
        // destination: with privacy state, the element path decides.
        if !self.plain_account(from.bare_str()) {
            return None;
        }
        if !self.is_local(to.domain()) {
            // Out of the served domains (RFC 6120 §10.4): a component or a peer server.
            return Some(Plan::Out(to));
        }
        // No node: the server itself (§10.5.2), whose services read the payload.
        to.node()?;
        let targets = self.local_targets(&to, kind)?;
        Some(Plan::Local(to, targets))
    }

    /// What the envelope path does with a session's iq: one to another entity's full JID
    /// (RFC 6121 §8.5.3.1: delivered to that resource) or out of the served domains (a
    /// component or a peer server) goes as its bytes, when the sender's and a local
    /// recipient's accounts are loaded with no privacy state and no storage work is in
    /// flight. Every other iq takes the element path: one to the server or to an account's
    /// bare JID (answered on the account's behalf, from the payload), to a resource that is
    /// not connected (an error reply), or one the typed parser refuses. Changes nothing.
    fn iq_plan(&self, from: &FullJid, envelope: &Envelope) -> Option<Plan> {
        if self.storage_in_flight() != 0 {
            return None;
        }
        let to = Jid::new(envelope.to()?).ok()?;
        if !self.plain_account(from.bare_str()) {
            return None;
        }
        let plan = if self.is_local(to.domain()) {
            let target = self.iq_target(&to)?;
            Plan::Local(to, vec![target])
        } else {
            Plan::Out(to)
        };
        // The payload is counted last: only for an iq the addresses already let through.
        Self::iq_reads_as_typed(envelope).then_some(plan)
    }

    /// Whether the typed parser accepts this iq as far as routing goes (RFC 6120 §8.2.3: an
    /// id, a type, exactly one payload for get and set, at most one for a result), read from
    /// the bytes; `error` is left to the element path (its `<error/>` is read).
    fn iq_reads_as_typed(envelope: &Envelope) -> bool {
        let Some(Ok(kind)) = envelope.stanza_type().map(str::parse::<IqType>) else {
            return false;
        };
        if envelope.id().is_none() {
            return false;
        }
        let mut count = 0usize;
        for child in envelope.children().take(2) {
            if child.is_err() {
                return false;
            }
            count += 1;
        }
        match kind {
            IqType::Get | IqType::Set => count == 1,
            IqType::Result => count <= 1,
            IqType::Error => false,
        }
    }

    /// The session an iq to the full JID `to` of a local account is delivered to (§8.5.3.1),
    /// when that account is loaded with no privacy state; `None` for any other case.
    fn iq_target(&self, to: &Jid) -> Option<FullJid> {
        to.node()?;
        let resource = to.resource()?;
        let user = to.bare_str();
        if !self.plain_account(user) {
            return None;
        }
        self.sessions
            .get(user)?
            .iter()
            .find(|s| s.jid.resource() == resource)
            .map(|s| s.jid.clone())
    }

    /// A stanza from a component or a peer server as an envelope (its `from` and `to`
    /// checked by the stream: present, `from` in the peer's authenticated domain), with a
    /// synchronous store: see [`Server::handle_server_envelope`].
    pub fn handle_remote_envelope(
        &mut self,
        store: &mut impl RosterStore,
        envelope: impl Into<Arc<Envelope>>,
    ) {
        self.handle_server_envelope(envelope);
        self.serve(store);
    }

    /// A stanza from a component or a peer server as an envelope, for a local address: a
    /// message to an account's sessions that the envelope path can decide (the rules of the
    /// module documentation, with the recipient's account the only one that must be loaded
    /// and free of privacy state) leaves as [`Output::Forward`], one per recipient sharing
    /// the bytes, `from` normalized; every other stanza takes the element path
    /// ([`Server::handle_server_stanza`]) with the element built from the envelope, and
    /// gives the same outputs. Stanzas without `from` or `to`, or to other domains, are
    /// dropped (as on the element path).
    pub fn handle_server_envelope(&mut self, envelope: impl Into<Arc<Envelope>>) {
        let envelope = envelope.into();
        if let Some((from, to, targets)) = self.remote_plan(&envelope) {
            self.forward_to(envelope, from, to, targets);
            return;
        }
        if let Some((head, from)) = Self::remote_presence(&envelope) {
            self.submit(Work::Remote {
                stanza: Received::Presence(Box::new(head)),
                shared: Some(Shared { envelope, from }),
            });
            return;
        }
        if envelope.namespace() != NS_CLIENT
            && let Some(from) = envelope.from().and_then(|f| Jid::new(f).ok())
            && let Some(m) = message_head(&envelope, from.clone())
            && m.header.to.is_some()
        {
            self.submit(Work::Remote {
                stanza: Received::Message(Box::new(m)),
                shared: Some(Shared { envelope, from }),
            });
            return;
        }
        if let Ok(element) = envelope.element() {
            self.submit(Work::Remote {
                stanza: Received::Element(element),
                shared: None,
            });
        }
    }

    /// A peer's availability presence (`type` absent or `unavailable`) to a local account,
    /// read from its bytes ([`Presence::without_payloads`]), with its sender normalized:
    /// decided on the element path's rules (§8.5.2.1.2, §8.5.3, privacy lists), every
    /// recipient gets the bytes. `None` hands it to the element path (a presence the typed
    /// parser refuses, subscription presence, probes, errors).
    fn remote_presence(envelope: &Envelope) -> Option<(Presence, Jid)> {
        if envelope.kind() != StanzaKind::Presence || envelope.namespace() == NS_CLIENT {
            return None;
        }
        let kind = envelope.stanza_type();
        if kind.is_some_and(|t| t.parse() != Ok(PresenceType::Unavailable)) {
            return None;
        }
        let from = Jid::new(envelope.from()?).ok()?;
        let head = Presence::without_payloads(envelope, from.clone())?;
        head.header.to.as_ref()?.node()?;
        Some((head, from))
    }

    /// The sender, the routed `to` and the recipients of a remote message the envelope path
    /// decides; `None` hands it to the element path. Changes nothing.
    fn remote_plan(&self, envelope: &Envelope) -> Option<(Jid, Jid, Vec<FullJid>)> {
        if envelope.namespace() == NS_CLIENT {
            return None;
        }
        if envelope.kind() == StanzaKind::Iq {
            if self.storage_in_flight() != 0 {
                return None;
            }
            let from = Jid::new(envelope.from()?).ok()?;
            let to = Jid::new(envelope.to()?).ok()?;
            if !self.is_local(to.domain()) {
                return None;
            }
            let target = self.iq_target(&to)?;
            return Self::iq_reads_as_typed(envelope).then(|| (from, to, vec![target]));
        }
        let kind = self.forwardable_message(envelope)?;
        let from = Jid::new(envelope.from()?).ok()?;
        let to = Jid::new(envelope.to()?).ok()?;
        if to.node().is_none() || !self.is_local(to.domain()) {
            return None;
        }
        let targets = self.local_targets(&to, kind)?;
        Some((from, to, targets))
    }
}

/// A message decided on its header: the typed message with its header and type only (`from`
/// set to `from`; the payload stays in the bytes, which its recipients get). `None` hands it
/// to the element path: not a message, a type the typed parser rewrites (an unknown one
/// becomes `normal`) or reads the payload for (`error`), or a `to` that is no JID.
fn message_head(envelope: &Envelope, from: Jid) -> Option<Message> {
    if envelope.kind() != StanzaKind::Message {
        return None;
    }
    let message_type = match envelope.stanza_type() {
        None => None,
        Some(t) => Some(t.parse::<MessageType>().ok()?),
    };
    if message_type == Some(MessageType::Error) {
        return None;
    }
    let header = Header::of_envelope(envelope, from)?;
    Some(Message {
        header,
        message_type,
        ..Message::new(MessageType::Normal)
    })
}
