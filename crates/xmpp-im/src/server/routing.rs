//! Where a stanza goes next (RFC 6121 §8, RFC 6120 §10): to a local session, into the
//! queue of stanzas between local accounts processed before the call returns, or out to a
//! remote domain; and the error bounce of a stanza that cannot be delivered.

use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::{Output, Server};
use crate::stanza::Stanza;
use crate::store::RosterStore;

impl Server {
    /// Queues the stanza for the local session `to`.
    pub(super) fn deliver(&mut self, to: &FullJid, stanza: Element) {
        self.out.push_back(Output::Deliver {
            to: to.clone(),
            stanza,
        });
    }

    /// Sends a stanza on: local addresses are processed in this call, others leave.
    pub(super) fn route(&mut self, stanza: Stanza) {
        let local = stanza
            .header()
            .to
            .as_ref()
            .is_some_and(|to| self.is_local(to.domain()));
        if local {
            self.local.push_back(stanza);
        } else {
            self.out.push_back(Output::Route(stanza.to_element()));
        }
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
        while let Some(stanza) = self.local.pop_front() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                self.local.clear();
                break;
            }
            self.inbound(store, stanza);
        }
    }
}
