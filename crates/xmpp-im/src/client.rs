//! Client helpers: subscription requests and answers (RFC 6121 §3), presence, and an iq
//! tracker that correlates responses with requests and times them out with host-supplied time.

use core::time::Duration;
use std::collections::BTreeMap;

use xmpp_jid::{BareJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use crate::stanza::{Iq, IqPayload, LangText, Presence, Show};
use crate::subscription::SubscriptionKind;

/// Asks for `contact`'s presence (§3.1.1).
#[must_use]
pub fn subscribe(contact: BareJid) -> Presence {
    Presence::subscription(SubscriptionKind::Subscribe, contact.into())
}

/// Approves `contact`'s request, or pre-approves it (§3.1.4, §3.4).
#[must_use]
pub fn approve(contact: BareJid) -> Presence {
    Presence::subscription(SubscriptionKind::Subscribed, contact.into())
}

/// Denies `contact`'s request, or cancels its subscription (§3.1.4, §3.2).
#[must_use]
pub fn deny(contact: BareJid) -> Presence {
    Presence::subscription(SubscriptionKind::Unsubscribed, contact.into())
}

/// Stops receiving `contact`'s presence (§3.3).
#[must_use]
pub fn unsubscribe(contact: BareJid) -> Presence {
    Presence::subscription(SubscriptionKind::Unsubscribe, contact.into())
}

/// Available presence with show, an optional status and priority (§4.2, §4.7.2).
#[must_use]
pub fn presence(show: Option<Show>, status: Option<&str>, priority: i8) -> Presence {
    let mut p = Presence::available(show, priority);
    if let Some(text) = status {
        p.statuses.push(LangText {
            lang: None,
            text: text.to_owned(),
        });
    }
    p
}

/// What became of a tracked request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IqOutcome {
    /// The request with this id got its `result`.
    Result {
        /// The request's id.
        id: String,
    },
    /// The request with this id got an `error` response.
    Error {
        /// The request's id.
        id: String,
    },
    /// No response arrived in time; the request is forgotten.
    Timeout {
        /// The request's id.
        id: String,
    },
}

/// Why [`IqTracker::send`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackError {
    /// Too many requests are outstanding.
    Full,
    /// The iq is not a get or set.
    NotARequest,
}

impl core::fmt::Display for TrackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Full => "too many outstanding iq requests",
            Self::NotARequest => "only get and set requests are tracked",
        })
    }
}

impl core::error::Error for TrackError {}

#[derive(Debug, Clone)]
struct Pending {
    to: Option<Jid>,
    deadline: Duration,
}

/// Correlates iq responses with requests (RFC 6120 §8.2.3) and times requests out.
///
/// Time is a [`Duration`] since any epoch the host chooses; it never goes backwards. Ids are
/// `prefix` plus a counter: deterministic, and unique within the tracker.
#[derive(Debug, Clone)]
pub struct IqTracker {
    own: BareJid,
    prefix: String,
    timeout: Duration,
    max_pending: usize,
    next: u64,
    pending: BTreeMap<String, Pending>,
}

impl IqTracker {
    /// A tracker for the account `own`, giving each request `timeout` to be answered.
    #[must_use]
    pub fn new(own: BareJid, prefix: &str, timeout: Duration, max_pending: usize) -> Self {
        Self {
            own,
            prefix: prefix.to_owned(),
            timeout,
            max_pending,
            next: 0,
            pending: BTreeMap::new(),
        }
    }

    /// The number of outstanding requests.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is outstanding.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Gives `iq` a fresh id, remembers it, and returns it ready to send.
    pub fn send(&mut self, now: Duration, mut iq: Iq) -> Result<Iq, TrackError> {
        if iq.request_payload().is_none() {
            return Err(TrackError::NotARequest);
        }
        if self.pending.len() >= self.max_pending {
            return Err(TrackError::Full);
        }
        self.next += 1;
        let id = format!("{}{}", self.prefix, self.next);
        iq.header.id = Some(id.clone());
        self.pending.insert(
            id,
            Pending {
                to: iq.header.to.clone(),
                deadline: now.saturating_add(self.timeout),
            },
        );
        Ok(iq)
    }

    /// Matches a received result or error with its request. A response whose `from` is not
    /// the entity the request went to is not a match (RFC 6120 §8.2.3; a request without
    /// `to` is answered by the account, with no `from` or the bare JID): `None`, like any iq
    /// that is not a tracked response.
    pub fn handle_response(&mut self, iq: &Iq) -> Option<IqOutcome> {
        if !matches!(iq.payload, IqPayload::Result(_) | IqPayload::Error { .. }) {
            return None;
        }
        let id = iq.header.id.as_ref()?;
        let pending = self.pending.get(id)?;
        let sender_ok = match (&pending.to, &iq.header.from) {
            (None, None) => true,
            (None, Some(from)) => from.as_str() == self.own.as_str(),
            (Some(to), Some(from)) => to == from,
            (Some(to), None) => to.as_str() == self.own.as_str(),
        };
        if !sender_ok {
            return None;
        }
        self.pending.remove(id);
        let id = id.clone();
        Some(match iq.payload {
            IqPayload::Result(_) => IqOutcome::Result { id },
            _ => IqOutcome::Error { id },
        })
    }

    /// The earliest deadline, if anything is outstanding.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Expires every request whose deadline is at or before `now` (calling early is
    /// harmless), in id order.
    pub fn handle_timeout(&mut self, now: Duration) -> Vec<IqOutcome> {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.pending.remove(id);
        }
        expired
            .into_iter()
            .map(|id| IqOutcome::Timeout { id })
            .collect()
    }

    /// The error a tracker-using host can synthesize for a timed-out request
    /// (`remote-server-timeout`, RFC 6120 §8.3.3.17), if it prefers one code path.
    #[must_use]
    pub fn timeout_error() -> StanzaError {
        StanzaError::new(StanzaErrorCondition::RemoteServerTimeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    fn ping() -> Element {
        Element::bare("ping", "urn:xmpp:ping")
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn correlates_results_checks_the_sender_and_times_out() {
        let own = BareJid::new("juliet@example.com").unwrap();
        let mut t = IqTracker::new(own, "q", secs(30), 8);
        let mut req = Iq::get("", ping());
        req.header.to = Some(Jid::new("example.com").unwrap());
        let sent = t.send(secs(0), req).unwrap();
        assert_eq!(sent.id(), "q1");
        let sent2 = t.send(secs(10), Iq::get("", ping())).unwrap();
        assert_eq!(t.poll_timeout(), Some(secs(30)));
        // A spoofed response from someone else does not match.
        let mut spoof = sent.result(None);
        spoof.header.from = Some(Jid::new("mallory@evil.example").unwrap());
        assert!(t.handle_response(&spoof).is_none());
        assert_eq!(t.len(), 2);
        let ok = sent.result(None);
        assert_eq!(
            t.handle_response(&ok),
            Some(IqOutcome::Result { id: "q1".into() })
        );
        assert_eq!(t.len(), 1);
        // No `to`: answered by the account (no from, or the bare JID).
        assert!(t.handle_timeout(secs(39)).is_empty());
        let expired = t.handle_timeout(secs(40));
        assert_eq!(
            expired,
            [IqOutcome::Timeout {
                id: sent2.id().to_owned()
            }]
        );
        assert!(t.is_empty() && t.poll_timeout().is_none());
        // A late response is no longer a match.
        assert!(t.handle_response(&sent2.result(None)).is_none());
    }

    #[test]
    fn bounded_and_requests_only() {
        let own = BareJid::new("juliet@example.com").unwrap();
        let mut t = IqTracker::new(own, "q", secs(1), 1);
        t.send(secs(0), Iq::get("", ping())).unwrap();
        assert_eq!(t.send(secs(0), Iq::get("", ping())), Err(TrackError::Full));
        let result = Iq::get("x", ping()).result(None);
        let mut t2 = IqTracker::new(BareJid::new("a@b").unwrap(), "q", secs(1), 1);
        assert_eq!(t2.send(secs(0), result), Err(TrackError::NotARequest));
    }

    #[test]
    fn helpers_build_the_right_stanzas() {
        let romeo = BareJid::new("romeo@example.net").unwrap();
        let p = subscribe(romeo.clone()).to_element();
        assert_eq!(p.attr("type"), Some("subscribe"));
        assert_eq!(p.attr("to"), Some("romeo@example.net"));
        assert_eq!(
            approve(romeo.clone()).to_element().attr("type"),
            Some("subscribed")
        );
        assert_eq!(
            deny(romeo.clone()).to_element().attr("type"),
            Some("unsubscribed")
        );
        assert_eq!(
            unsubscribe(romeo).to_element().attr("type"),
            Some("unsubscribe")
        );
        let p = presence(Some(Show::Dnd), Some("busy"), -1);
        let back = Presence::try_from(&p.to_element()).unwrap();
        assert_eq!(back.show, Some(Show::Dnd));
        assert_eq!(back.status(None), Some("busy"));
        assert_eq!(back.priority, Some(-1));
    }
}
