//! Routing without trees (issue 17): a session's message decided on its envelope (the
//! validated bytes and decoded header `xmpp-xml` gives in envelope mode), delivered as the
//! same shared bytes to every recipient with the stamp each needs, no element built; and a
//! session's availability presence fanned out to its local recipients as the same shared
//! bytes.
//!
//! The decision is the element path's, not a copy of it: the same §8.5 function
//! ([`Server::message_decision`], over [`crate::delivery::message_decision`]) and the same
//! recipient selection. The envelope path only takes the messages for which nothing else of
//! the element path applies, and hands every other stanza to the element path
//! ([`Envelope::element`], then the unit of work of [`Server::handle_client_stanza`]):
//!
//! - iq (roster, privacy lists, the server's own services read the payload);
//! - presence, with one difference for availability presence (no `type`, or
//!   `unavailable`; RFC 6121 §4.2, §4.4, §4.5, §4.6): the element path decides it on the
//!   typed presence built once (it reads the payload: validation, `<priority/>`, the
//!   presence kept for probes and for new subscribers), with the privacy lists, blocklists,
//!   subscriptions and storage order of that path, and every *local* recipient (the user's
//!   resources, local subscribers, local directed-presence recipients) gets the envelope's
//!   bytes ([`Output::Forward`], one `Arc` for all) instead of a copy of the element.
//!   Recipients on remote domains get the element ([`Output::Route`]). Subscription
//!   requests, probes and errors stay on the element path entirely;
//! - a message of type `error`, or of a type outside RFC 6121 §5.2.2 (the element path
//!   answers those after parsing the payload);
//! - a message to a remote domain or to the server itself, or to an account with no
//!   session (offline storage and bounces need the element);
//! - a message whenever privacy lists or a blocklist (XEP-0016, XEP-0191) are loaded for the
//!   sender or the recipient, or either account is not loaded, or any storage work is in
//!   flight (so a forwarded message never overtakes earlier work);
//! - when the §8.5 decision is anything but delivery to at least one session.
//!
//! One difference is deliberate and documented: the envelope path does not parse a
//! message's payload, so a message the typed parser would refuse for its payload alone (two
//! `<body/>` of one language, two `<thread/>`...) is forwarded as sent, where the element
//! path answers `bad-request`. The recipient's client sees the sender's bytes, as it would
//! through any server that does not inspect payloads. Presence has no such difference: it
//! is parsed.

use std::sync::Arc;

use minidom::Element;
use xmpp_jid::{FullJid, Jid};
use xmpp_xml::{Envelope, NS_CLIENT, ParseError, Stamp, StanzaKind};

use super::routing::Shared;
use super::sessions::bare_str;
use super::storage::Work;
use super::{Output, Server, UsageError};
use crate::delivery::{MessageDecision, message_decision};
use crate::stanza::{MessageType, PresenceType};
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
    /// Its sender's full JID, stamped as `from` (RFC 6120 §8.1.2.1).
    pub from: FullJid,
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

impl Server {
    /// A stanza from the local session `from` as an envelope, with a synchronous store: see
    /// [`Server::handle_client_envelope`].
    pub fn handle_session_envelope(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        envelope: Envelope,
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
    /// as it would, except that the local recipients of availability presence get
    /// [`Output::Forward`] where that path gives [`Output::Deliver`] of the same stanza. A
    /// stanza whose bytes do not rebuild (never for a validated envelope) is dropped.
    pub fn handle_client_envelope(
        &mut self,
        from: &FullJid,
        envelope: Envelope,
    ) -> Result<(), UsageError> {
        if self.session(from).is_none() {
            return Err(UsageError::NoSession);
        }
        if let Some((to, targets)) = self.forward_plan(from, &envelope) {
            let envelope = Arc::new(envelope);
            let last = targets.len().saturating_sub(1);
            let mut to = Some(to);
            for (i, target) in targets.into_iter().enumerate() {
                // The routed `to` is moved into the last forward, copied into the others.
                let stanza_to = if i == last { to.take() } else { to.clone() };
                let Some(stanza_to) = stanza_to else { break };
                self.out.push_back(Output::Forward(Forward {
                    to: target,
                    envelope: Arc::clone(&envelope),
                    from: from.clone(),
                    stanza_to,
                }));
            }
            return Ok(());
        }
        let Ok(mut element) = envelope.element() else {
            return Ok(());
        };
        // As the stream's element path hands it over: `from` stamped (RFC 6120 §8.1.2.1), so
        // error replies are addressed as they would be.
        let stamp = Stamp {
            from: Some(from.as_str()),
            ..Stamp::new(envelope.namespace())
        };
        xmpp_xml::stamp_element(&mut element, &stamp);
        let shared = Self::shares_presence(&envelope).then(|| Shared {
            envelope: Arc::new(envelope),
            from: from.clone(),
        });
        self.submit(Work::Session {
            from: from.clone(),
            stanza: element,
            shared,
        });
        Ok(())
    }

    /// Whether a presence's local recipients get its bytes: availability presence (RFC 6121
    /// §4.2, §4.4, §4.5, §4.6: `type` absent or `unavailable`) in `jabber:client`. It still
    /// takes the element path's unit of work, with the one element built from the envelope:
    /// the typed presence decides (its priority, the presence kept for probes, privacy
    /// lists, subscriptions) and goes to remote domains; each local recipient gets the
    /// shared bytes instead of a copy of the element. Subscription requests, probes and
    /// errors stay on the element path entirely.
    fn shares_presence(envelope: &Envelope) -> bool {
        envelope.kind() == StanzaKind::Presence
            && envelope.namespace() == NS_CLIENT
            && envelope
                .stanza_type()
                .is_none_or(|t| t.parse() == Ok(PresenceType::Unavailable))
    }

    /// The recipients of a message the envelope path decides, and its `to` as routed; `None`
    /// hands it to the element path. Changes nothing.
    fn forward_plan(&self, from: &FullJid, envelope: &Envelope) -> Option<(Jid, Vec<FullJid>)> {
        if envelope.kind() != StanzaKind::Message || envelope.namespace() != NS_CLIENT {
            return None;
        }
        let kind = match envelope.stanza_type() {
            None => MessageType::Normal,
            Some(t) => t.parse::<MessageType>().ok()?,
        };
        if kind == MessageType::Error || self.storage_in_flight() != 0 {
            return None;
        }
        let to: Jid = match envelope.to() {
            Some(to) => Jid::new(to).ok()?,
            None => from.to_bare().into(),
        };
        if to.node().is_none() || !self.is_local(to.domain()) {
            return None;
        }
        // Both accounts loaded, neither with privacy state: looked up by their enforced bare
        // strings, no `BareJid` built.
        let plain = |u: &str| self.cache.has_str(u) && !self.privacy.contains_key(u);
        if !plain(bare_str(from.as_str())) || !plain(bare_str(to.as_str())) {
            return None;
        }
        // The recipient's sessions, looked up once for the decision and the targets.
        let list = self.sessions.get(bare_str(to.as_str()))?;
        match message_decision(self.config.delivery, Some(list), to.resource(), kind) {
            MessageDecision::Deliver(recipients) => {
                let targets: Vec<FullJid> = recipients
                    .select(list)
                    .filter_map(|i| list.get(i).map(|s| s.jid.clone()))
                    .collect();
                (!targets.is_empty()).then_some((to, targets))
            }
            _ => None,
        }
    }
}
