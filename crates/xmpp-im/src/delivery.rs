//! The delivery rules of RFC 6121 §8.5 for stanzas addressed to a local account: which
//! resources receive a message, when it goes to offline storage, when it bounces and with which
//! error, and when it is dropped.
//!
//! [`message_decision`] is a pure function over a borrowed view of the account's sessions: it
//! allocates nothing, so a server can call it on every message.

use xmpp_xml::StanzaErrorCondition;

use crate::stanza::MessageType;

/// What the delivery rules need to know about one session of an account.
pub trait SessionInfo {
    /// The resourcepart.
    fn resource(&self) -> &str;
    /// Whether the session sent available presence (an "available resource"); otherwise it
    /// is only a "connected resource" (RFC 6120 §7, RFC 6121 §1.3).
    fn available(&self) -> bool;
    /// The priority of its last available presence.
    fn priority(&self) -> i8;
}

impl SessionInfo for SessionView<'_> {
    fn resource(&self) -> &str {
        self.resource
    }

    fn available(&self) -> bool {
        self.available
    }

    fn priority(&self) -> i8 {
        self.priority
    }
}

/// One session of an account as the delivery rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView<'a> {
    /// The resourcepart.
    pub resource: &'a str,
    /// Whether the session sent available presence (an "available resource"); otherwise it
    /// is only a "connected resource" (RFC 6121 §1.3 / RFC 6120 §7).
    pub available: bool,
    /// The priority of its last available presence.
    pub priority: i8,
}

/// How a server picks among several non-negative resources for a message to the bare JID
/// (RFC 6121 §8.5.2.1.1 leaves the choice to the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BareMessagePolicy {
    /// The "most available" resources: those with the highest priority (all of them on a
    /// tie).
    #[default]
    HighestPriority,
    /// Every available resource with a non-negative priority.
    AllNonNegative,
}

/// Which of the account's sessions receive the stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recipients {
    /// The session at this index of the slice given to the decision.
    One(usize),
    /// Available sessions with the highest priority, which is non-negative.
    HighestPriority,
    /// Every available session with a non-negative priority.
    AllNonNegative,
}

impl Recipients {
    /// Whether the session at `index` is one of the recipients.
    #[must_use]
    pub fn includes<S: SessionInfo>(self, sessions: &[S], index: usize) -> bool {
        let Some(s) = sessions.get(index) else {
            return false;
        };
        match self {
            Self::One(i) => i == index,
            Self::AllNonNegative => s.available() && s.priority() >= 0,
            Self::HighestPriority => {
                s.available() && s.priority() >= 0 && Some(s.priority()) == top_priority(sessions)
            }
        }
    }

    /// The indices of the recipients.
    pub fn select<S: SessionInfo>(self, sessions: &[S]) -> impl Iterator<Item = usize> + '_ {
        let top = top_priority(sessions);
        (0..sessions.len()).filter(move |&i| match self {
            Self::HighestPriority => sessions
                .get(i)
                .is_some_and(|s| s.available() && s.priority() >= 0 && Some(s.priority()) == top),
            _ => self.includes(sessions, i),
        })
    }
}

fn top_priority<S: SessionInfo>(sessions: &[S]) -> Option<i8> {
    sessions
        .iter()
        .filter(|s| s.available() && s.priority() >= 0)
        .map(SessionInfo::priority)
        .max()
}

/// What to do with a message addressed to a local account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum MessageDecision {
    /// Deliver to these sessions.
    Deliver(Recipients),
    /// No resource can take it now: store it offline, or (if the host does not store, or the
    /// store is full) bounce it with `service-unavailable` (§8.5.2.2.1).
    Offline,
    /// Return an error of this condition to the sender.
    Bounce(StanzaErrorCondition),
    /// Drop it silently.
    Drop,
}

/// Server policy for the choices §8.5 leaves open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// See [`BareMessagePolicy`].
    pub bare_messages: BareMessagePolicy,
    /// §8.5.1: a message to an account that does not exist is either ignored or bounced with
    /// `service-unavailable`; `true` bounces.
    pub bounce_unknown_account: bool,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            bare_messages: BareMessagePolicy::HighestPriority,
            bounce_unknown_account: true,
        }
    }
}

/// The RFC 6121 §8.5 decision for a message of `kind` addressed to a local account, where
/// `resource` is the `to` address's resourcepart (`None` for the bare JID) and `sessions` are
/// the account's current sessions (`None` when the account does not exist).
pub fn message_decision<S: SessionInfo>(
    policy: DeliveryPolicy,
    sessions: Option<&[S]>,
    resource: Option<&str>,
    kind: MessageType,
) -> MessageDecision {
    use MessageDecision as D;
    let Some(sessions) = sessions else {
        // §8.5.1: no such user. An error is never answered with an error (RFC 6120 §8.3.1).
        return if policy.bounce_unknown_account && kind != MessageType::Error {
            D::Bounce(StanzaErrorCondition::ServiceUnavailable)
        } else {
            D::Drop
        };
    };
    if let Some(resource) = resource {
        if let Some(i) = sessions.iter().position(|s| s.resource() == resource) {
            // §8.5.3.1: the resource matches an available or connected resource.
            return D::Deliver(Recipients::One(i));
        }
        // §8.5.3.2.1: no resource matches.
        match kind {
            MessageType::Chat => {} // handled as if sent to the bare JID, below
            MessageType::Normal | MessageType::Groupchat => {
                return D::Bounce(StanzaErrorCondition::ServiceUnavailable);
            }
            MessageType::Headline | MessageType::Error => return D::Drop,
        }
    }
    let eligible = top_priority(sessions).is_some();
    match kind {
        // §8.5.2.1.1 / §8.5.2.2.1: normal and chat go to the non-negative resources, or
        // offline when there are none (negative-only resources count as none).
        MessageType::Normal | MessageType::Chat => {
            if eligible {
                D::Deliver(match policy.bare_messages {
                    BareMessagePolicy::HighestPriority => Recipients::HighestPriority,
                    BareMessagePolicy::AllNonNegative => Recipients::AllNonNegative,
                })
            } else {
                D::Offline
            }
        }
        // §8.5.2.1.1: groupchat to a bare JID is an error whether or not resources exist.
        MessageType::Groupchat => D::Bounce(StanzaErrorCondition::ServiceUnavailable),
        // §8.5.2.1.1: headlines go to every non-negative resource; with none, dropped
        // (§8.5.2.2.1).
        MessageType::Headline => {
            if eligible {
                D::Deliver(Recipients::AllNonNegative)
            } else {
                D::Drop
            }
        }
        // §8.5.2.1.1 / §8.5.2.2.1: errors to the bare JID are silently ignored.
        MessageType::Error => D::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(resource: &str, available: bool, priority: i8) -> SessionView<'_> {
        SessionView {
            resource,
            available,
            priority,
        }
    }

    #[test]
    fn recipients_select_the_right_sessions() {
        let sessions = [
            s("a", true, 5),
            s("b", true, 5),
            s("c", true, 1),
            s("d", true, -1),
            s("e", false, 0),
        ];
        let top: Vec<_> = Recipients::HighestPriority.select(&sessions).collect();
        assert_eq!(top, [0, 1]);
        let all: Vec<_> = Recipients::AllNonNegative.select(&sessions).collect();
        assert_eq!(all, [0, 1, 2]);
        let one: Vec<_> = Recipients::One(4).select(&sessions).collect();
        assert_eq!(one, [4]);
        assert!(!Recipients::One(9).includes(&sessions, 9));
    }
}
