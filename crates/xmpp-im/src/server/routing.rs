//! Where a stanza goes next (RFC 6121 §8, RFC 6120 §10): to a local session, into the
//! queue of stanzas between local accounts processed before the call returns, or out to a
//! remote domain; and the error bounce of a stanza that cannot be delivered.

use std::sync::Arc;

use minidom::Element;
use xmpp_jid::{FullJid, Jid};
use xmpp_xml::{Envelope, StanzaError, StanzaErrorCondition};

use super::envelope::Forward;
use super::{Output, Server};
use crate::stanza::Stanza;
use crate::store::RosterStore;

/// A stanza that arrived as an envelope (issue 17), from a session or a peer: its bytes,
/// shared by every local recipient, and its sender, stamped as `from` (the session's full
/// JID, or the peer's `from`, normalized).
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub(super) envelope: Arc<Envelope>,
    pub(super) from: Jid,
}

impl Shared {
    /// The element the bytes stand for, `from` stamped: what the element path takes from
    /// `xmpp-stream` for the same stanza.
    pub(super) fn stamped(&self) -> Option<Element> {
        let mut element = self.envelope.element().ok()?;
        let stamp = xmpp_xml::Stamp {
            from: Some(self.from.as_str()),
            ..xmpp_xml::Stamp::new(self.envelope.namespace())
        };
        xmpp_xml::stamp_element(&mut element, &stamp);
        Some(element)
    }

    /// The presence the bytes hold, typed with its payloads (`from` stamped), for a reader
    /// that needs the whole of it (a copy to an address with no envelope path).
    pub(super) fn presence(&self) -> Option<crate::stanza::Presence> {
        crate::stanza::Presence::try_from(&self.stamped()?).ok()
    }

    /// The element the bytes stand for, stamped with `from` and `to`, in `jabber:client`
    /// (as [`Forward::to_element`] gives it).
    pub(super) fn element(&self, to: &Jid) -> Option<Element> {
        let mut element = self.envelope.element().ok()?;
        let stamp = xmpp_xml::Stamp {
            from: Some(self.from.as_str()),
            to: Some(to.as_str()),
            ..xmpp_xml::Stamp::new(xmpp_xml::NS_CLIENT)
        };
        xmpp_xml::stamp_element(&mut element, &stamp);
        Some(element)
    }
}

/// A stanza between local accounts, waiting in the unit's queue: typed (its header decides
/// where it goes), with its bytes when it is a copy of a session's envelope: then the typed
/// stanza carries the header only, and every local recipient gets the bytes
/// ([`Server::deliver_shared`]).
#[derive(Debug, Clone)]
pub(super) struct Local {
    pub(super) stanza: Stanza,
    pub(super) shared: Option<Shared>,
}

impl Server {
    /// Queues the stanza for the local session `to` (shared: several recipients of one
    /// stanza get one allocation).
    pub(super) fn deliver(&mut self, to: &FullJid, stanza: impl Into<Arc<Element>>) {
        self.out.push_back(Output::Deliver {
            to: to.clone(),
            stanza: stanza.into(),
        });
    }

    /// Queues `stanza` for the local session `to`: as the shared bytes with the stamp
    /// `stanza_to` when it came as an envelope ([`Output::Forward`]), else as an element
    /// built by `element`. The one place a stanza reaches a local session either way.
    pub(super) fn deliver_shared(
        &mut self,
        to: &FullJid,
        shared: Option<&Shared>,
        stanza_to: &Jid,
        element: impl FnOnce() -> Element,
    ) {
        match shared {
            Some(s) => self.forward(to, s, stanza_to),
            None => self.deliver(to, element()),
        }
    }

    /// Queues the shared bytes for the local session `to`, `stanza_to` stamped as `to`.
    pub(super) fn forward(&mut self, to: &FullJid, shared: &Shared, stanza_to: &Jid) {
        self.out.push_back(Output::Forward(Forward {
            to: to.clone(),
            envelope: Arc::clone(&shared.envelope),
            from: shared.from.clone(),
            stanza_to: stanza_to.clone(),
        }));
    }

    /// Sends a stanza on: local addresses are processed in this call, others leave.
    pub(super) fn route(&mut self, stanza: Stanza) {
        let local = stanza
            .header()
            .to
            .as_ref()
            .is_some_and(|to| self.is_local(to.domain()));
        if local {
            self.route_local(stanza);
        } else {
            self.out.push_back(Output::Route(stanza.into_element()));
        }
    }

    /// [`Server::route`] for a stanza decided on its header whose bytes are `shared`: a local
    /// address processes the header with the bytes beside it ([`Server::route_shared`]);
    /// any other leaves as the bytes ([`Output::Relay`]).
    pub(super) fn route_bytes(&mut self, head: Stanza, shared: &Shared) {
        let Some(to) = head.header().to.clone() else {
            return;
        };
        if self.is_local(to.domain()) {
            self.route_shared(head, shared.clone());
        } else {
            self.out.push_back(Output::Relay(super::Relay {
                envelope: Arc::clone(&shared.envelope),
                from: shared.from.clone(),
                to,
            }));
        }
    }

    /// Queues a stanza for a local address, to be processed in this unit.
    pub(super) fn route_local(&mut self, stanza: Stanza) {
        self.local.push_back(Local {
            stanza,
            shared: None,
        });
    }

    /// Sends on a copy of a session's stanza that arrived as an envelope, to a local
    /// account: `head` is its header and type only (no payload is copied per recipient),
    /// which decides its delivery as [`Server::route`] would; its recipients get the bytes.
    pub(super) fn route_shared(&mut self, head: Stanza, shared: Shared) {
        self.local.push_back(Local {
            stanza: head,
            shared: Some(shared),
        });
    }

    /// Routes the `condition` error reply to the stanza's sender; an error is never answered.
    pub(super) fn bounce_with(&mut self, stanza: &Element, condition: StanzaErrorCondition) {
        if stanza.attr("type") == Some("error") {
            return;
        }
        let reply = StanzaError::new(condition).reply_to(stanza);
        // The reply only fails to parse when the original's addresses are not JIDs: there is
        // nobody to send it to.
        if let Ok(s) = Stanza::try_from(&reply) {
            self.route(s);
        }
    }

    /// Processes the stanzas between local accounts until none is left.
    pub(super) fn drain_local(&mut self, store: &mut impl RosterStore) {
        // Each local stanza can cause at most a bounded chain (an auto-reply, its delivery);
        // the bound is a guard against a logic loop, never reached in practice.
        let mut budget = 10_000usize;
        while let Some(local) = self.local.pop_front() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                self.local.clear();
                break;
            }
            self.inbound(store, local.stanza, local.shared.as_ref());
        }
    }
}
