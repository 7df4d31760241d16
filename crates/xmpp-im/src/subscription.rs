//! The presence subscription state machine of RFC 6121 §3 and Appendix A, with pre-approval
//! (§3.4).
//!
//! A server keeps, for each (user, contact) pair, one of the nine states of Appendix A plus a
//! pre-approval flag. Every subscription stanza the user sends (outbound, §A.2) or receives
//! (inbound, §A.3) goes through [`ContactState::outbound`] or [`ContactState::inbound`], which
//! return the new state and what the server must do: route, deliver, drop, auto-reply, push the
//! roster, share or revoke presence. The two tables below are the only place these rules live.

use core::fmt;
use core::str::FromStr;

use crate::error::UnknownValue;

/// The `subscription` attribute of a roster item (RFC 6121 §2.1.2.5), without the `remove`
/// value a client uses to delete an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum Subscription {
    /// Neither party receives the other's presence.
    #[default]
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    /// Both receive each other's presence.
    Both,
}

impl Subscription {
    /// Every value.
    pub const ALL: &'static [Subscription] = &[Self::None, Self::To, Self::From, Self::Both];

    /// The name used on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        }
    }

    /// Whether the user receives the contact's presence (`to` or `both`).
    #[must_use]
    pub const fn has_to(self) -> bool {
        matches!(self, Self::To | Self::Both)
    }

    /// Whether the contact receives the user's presence (`from` or `both`).
    #[must_use]
    pub const fn has_from(self) -> bool {
        matches!(self, Self::From | Self::Both)
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Subscription {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or(UnknownValue("subscription"))
    }
}

/// The four subscription-management presence types (RFC 6121 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SubscriptionKind {
    /// `subscribe`: ask for the other party's presence.
    Subscribe,
    /// `subscribed`: approve the other party's request (or pre-approve, §3.4).
    Subscribed,
    /// `unsubscribe`: stop receiving the other party's presence.
    Unsubscribe,
    /// `unsubscribed`: deny a request, or cancel the other party's subscription.
    Unsubscribed,
}

impl SubscriptionKind {
    /// Every value, in Appendix A's order.
    pub const ALL: &'static [SubscriptionKind] = &[
        Self::Subscribe,
        Self::Unsubscribe,
        Self::Subscribed,
        Self::Unsubscribed,
    ];

    /// The presence `type` on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Subscribed => "subscribed",
            Self::Unsubscribe => "unsubscribe",
            Self::Unsubscribed => "unsubscribed",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Subscribe => 0,
            Self::Unsubscribe => 1,
            Self::Subscribed => 2,
            Self::Unsubscribed => 3,
        }
    }
}

impl fmt::Display for SubscriptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubscriptionKind {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or(UnknownValue("subscription presence type"))
    }
}

/// The nine subscription states of RFC 6121 Appendix A.1, seen from the user's side of a
/// (user, contact) pair. Impossible combinations (e.g. `to` with a pending outbound request)
/// cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum State {
    /// "None": no subscription either way, nothing pending.
    #[default]
    None,
    /// "None + Pending Out": the user asked for the contact's presence.
    NonePendingOut,
    /// "None + Pending In": the contact asked for the user's presence.
    NonePendingIn,
    /// "None + Pending Out+In": both asked, neither approved.
    NonePendingOutIn,
    /// "To": the user receives the contact's presence.
    To,
    /// "To + Pending In": ... and the contact asked for the user's.
    ToPendingIn,
    /// "From": the contact receives the user's presence.
    From,
    /// "From + Pending Out": ... and the user asked for the contact's.
    FromPendingOut,
    /// "Both": mutual subscription.
    Both,
}

impl State {
    /// Every state, in Appendix A's order.
    pub const ALL: &'static [State] = &[
        Self::None,
        Self::NonePendingOut,
        Self::NonePendingIn,
        Self::NonePendingOutIn,
        Self::To,
        Self::ToPendingIn,
        Self::From,
        Self::FromPendingOut,
        Self::Both,
    ];

    /// The roster `subscription` attribute for this state.
    #[must_use]
    pub const fn subscription(self) -> Subscription {
        match self {
            Self::None | Self::NonePendingOut | Self::NonePendingIn | Self::NonePendingOutIn => {
                Subscription::None
            }
            Self::To | Self::ToPendingIn => Subscription::To,
            Self::From | Self::FromPendingOut => Subscription::From,
            Self::Both => Subscription::Both,
        }
    }

    /// Whether the user's request to the contact awaits an answer (roster `ask='subscribe'`).
    #[must_use]
    pub const fn pending_out(self) -> bool {
        matches!(
            self,
            Self::NonePendingOut | Self::NonePendingOutIn | Self::FromPendingOut
        )
    }

    /// Whether the contact's request awaits the user's answer.
    #[must_use]
    pub const fn pending_in(self) -> bool {
        matches!(
            self,
            Self::NonePendingIn | Self::NonePendingOutIn | Self::ToPendingIn
        )
    }

    /// Builds a state from its parts; `None` for the combinations Appendix A excludes (a
    /// pending request in a direction that is already subscribed).
    #[must_use]
    pub const fn from_parts(
        subscription: Subscription,
        pending_out: bool,
        pending_in: bool,
    ) -> Option<Self> {
        Some(match (subscription, pending_out, pending_in) {
            (Subscription::None, false, false) => Self::None,
            (Subscription::None, true, false) => Self::NonePendingOut,
            (Subscription::None, false, true) => Self::NonePendingIn,
            (Subscription::None, true, true) => Self::NonePendingOutIn,
            (Subscription::To, false, false) => Self::To,
            (Subscription::To, false, true) => Self::ToPendingIn,
            (Subscription::From, false, false) => Self::From,
            (Subscription::From, true, false) => Self::FromPendingOut,
            (Subscription::Both, false, false) => Self::Both,
            _ => return None,
        })
    }

    const fn index(self) -> usize {
        match self {
            Self::None => 0,
            Self::NonePendingOut => 1,
            Self::NonePendingIn => 2,
            Self::NonePendingOutIn => 3,
            Self::To => 4,
            Self::ToPendingIn => 5,
            Self::From => 6,
            Self::FromPendingOut => 7,
            Self::Both => 8,
        }
    }

    /// The state's name as RFC 6121 Appendix A writes it ("None + Pending Out", ...): "None +
    /// Pending Out+In" where RFC 3921 wrote "None + Pending Out/In".
    #[must_use]
    pub const fn appendix_name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::NonePendingOut => "None + Pending Out",
            Self::NonePendingIn => "None + Pending In",
            Self::NonePendingOutIn => "None + Pending Out+In",
            Self::To => "To",
            Self::ToPendingIn => "To + Pending In",
            Self::From => "From",
            Self::FromPendingOut => "From + Pending Out",
            Self::Both => "Both",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.appendix_name())
    }
}

/// What happens to the subscription stanza itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StanzaFate {
    /// Outbound: stamp it with the user's bare JID and route it to the contact.
    Route,
    /// Inbound: deliver it to the user's available resources (store it if there are none).
    Deliver,
    /// Neither routed nor delivered.
    Drop,
}

/// The outcome of one subscription stanza against a [`ContactState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub struct Transition {
    /// The state after the stanza (equal to the old one if nothing changed).
    pub state: ContactState,
    /// What to do with the stanza.
    pub fate: StanzaFate,
    /// A reply the server sends on the user's behalf to the contact (§3.1.3 auto-reply to a
    /// subscribe when the contact is already subscribed; §3.4 pre-approved requests).
    pub auto_reply: Option<SubscriptionKind>,
    /// Whether the roster item visibly changed (subscription, ask or approved), so a roster
    /// push is due to the user's interested resources (§3.1.2, §3.1.5, ...).
    pub roster_push: bool,
    /// The contact just gained `from`: send it the user's current presence from each
    /// available resource (§3.1.5).
    pub share_presence: bool,
    /// The contact just lost `from`: send it `unavailable` from each available resource
    /// (§3.2.2).
    pub revoke_presence: bool,
}

/// A (user, contact) pair's subscription state as the user's server stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ContactState {
    /// One of Appendix A's nine states.
    pub state: State,
    /// The user pre-approved a subscription request from the contact (§3.4; roster
    /// `approved='true'`). Only meaningful while the contact has neither `from` nor a pending
    /// request.
    pub pre_approved: bool,
}

use State as S;

/// Appendix A.2, outbound stanzas (sent by the user, processed by the user's server): the new
/// state for each (old state, kind); `Subscribe`, `Unsubscribe`, `Subscribed`, `Unsubscribed`
/// columns. Rows are in [`State::ALL`] order.
#[rustfmt::skip]
const OUTBOUND: [[State; 4]; 9] = [
    //  A.2.1 subscribe      A.2.2 unsubscribe  A.2.3 subscribed   A.2.4 unsubscribed
    [S::NonePendingOut,   S::None,           S::None,           S::None],           // None
    [S::NonePendingOut,   S::None,           S::NonePendingOut, S::NonePendingOut], // None + Pending Out
    [S::NonePendingOutIn, S::NonePendingIn,  S::From,           S::None],           // None + Pending In
    [S::NonePendingOutIn, S::NonePendingIn,  S::FromPendingOut, S::NonePendingOut], // None + Pending Out+In
    [S::To,               S::None,           S::To,             S::To],             // To
    [S::ToPendingIn,      S::NonePendingIn,  S::Both,           S::To],             // To + Pending In
    [S::FromPendingOut,   S::From,           S::From,           S::None],           // From
    [S::FromPendingOut,   S::From,           S::FromPendingOut, S::NonePendingOut], // From + Pending Out
    [S::Both,             S::From,           S::Both,           S::To],             // Both
];

/// Appendix A.3, inbound stanzas (sent by the contact, processed by the user's server): the
/// new state and whether the stanza is delivered to the user, for each (old state, kind).
#[rustfmt::skip]
const INBOUND: [[(State, bool); 4]; 9] = [
    //  A.3.1 subscribe               A.3.2 unsubscribe           A.3.3 subscribed            A.3.4 unsubscribed
    [(S::NonePendingIn, true),     (S::None, false),           (S::None, false),           (S::None, false)],          // None
    [(S::NonePendingOutIn, true),  (S::NonePendingOut, false), (S::To, true),              (S::None, true)],           // None + Pending Out
    [(S::NonePendingIn, false),    (S::None, true),            (S::NonePendingIn, false),  (S::NonePendingIn, false)], // None + Pending In
    [(S::NonePendingOutIn, false), (S::NonePendingOut, true),  (S::ToPendingIn, true),     (S::NonePendingIn, true)],  // None + Pending Out+In
    [(S::ToPendingIn, true),       (S::To, false),             (S::To, false),             (S::None, true)],           // To
    [(S::ToPendingIn, false),      (S::To, true),              (S::ToPendingIn, false),    (S::NonePendingIn, true)],  // To + Pending In
    [(S::From, false),             (S::None, true),            (S::From, false),           (S::From, false)],          // From
    [(S::FromPendingOut, false),   (S::NonePendingOut, true),  (S::Both, true),            (S::From, true)],           // From + Pending Out
    [(S::Both, false),             (S::To, true),              (S::Both, false),           (S::From, true)],           // Both
];

impl ContactState {
    /// A state without pre-approval.
    #[must_use]
    pub const fn new(state: State) -> Self {
        Self {
            state,
            pre_approved: false,
        }
    }

    /// The user sends `kind` to the contact (RFC 6121 Appendix A.2). `pre_approval` says
    /// whether the server supports pre-approval (§3.4, advertised with the
    /// `urn:xmpp:features:pre-approval` stream feature).
    pub fn outbound(self, kind: SubscriptionKind, pre_approval: bool) -> Transition {
        let new_state = OUTBOUND[self.state.index()][kind.index()];
        let mut pre_approved = self.pre_approved;
        let mut fate = match kind {
            // A.2: "MUST without exception route all outbound presence stanzas of type
            // subscribe or unsubscribe".
            SubscriptionKind::Subscribe | SubscriptionKind::Unsubscribe => StanzaFate::Route,
            // A.2: subscribed/unsubscribed are routed only when they change the state.
            SubscriptionKind::Subscribed | SubscriptionKind::Unsubscribed => {
                if new_state == self.state {
                    StanzaFate::Drop
                } else {
                    StanzaFate::Route
                }
            }
        };
        match kind {
            SubscriptionKind::Subscribed
                if !self.state.pending_in() && !self.state.subscription().has_from() =>
            {
                // §3.4.1: a `subscribed` with no pending request is a pre-approval, stored but
                // not routed; without server support it is ignored.
                if pre_approval {
                    pre_approved = true;
                }
                fate = StanzaFate::Drop;
            }
            // §3.4: `unsubscribed` cancels a pre-approval.
            SubscriptionKind::Unsubscribed => pre_approved = false,
            _ => {}
        }
        if new_state.subscription().has_from() || new_state.pending_in() {
            pre_approved = false;
        }
        self.finish(new_state, pre_approved, fate, None)
    }

    /// The contact's `kind` arrives for the user (RFC 6121 Appendix A.3).
    pub fn inbound(self, kind: SubscriptionKind) -> Transition {
        let (mut new_state, deliver) = INBOUND[self.state.index()][kind.index()];
        let mut fate = if deliver {
            StanzaFate::Deliver
        } else {
            StanzaFate::Drop
        };
        let mut auto_reply = None;
        let mut pre_approved = self.pre_approved;
        if kind == SubscriptionKind::Subscribe {
            if self.state.subscription().has_from() {
                // §3.1.3: the contact is already subscribed; answer on the user's behalf.
                auto_reply = Some(SubscriptionKind::Subscribed);
            } else if self.pre_approved && !self.state.pending_in() {
                // §3.4: pre-approved: approve automatically, do not bother the user.
                new_state = OUTBOUND[new_state.index()][SubscriptionKind::Subscribed.index()];
                fate = StanzaFate::Drop;
                auto_reply = Some(SubscriptionKind::Subscribed);
                pre_approved = false;
            }
        }
        if new_state.subscription().has_from() || new_state.pending_in() {
            pre_approved = false;
        }
        self.finish(new_state, pre_approved, fate, auto_reply)
    }

    fn finish(
        self,
        new_state: State,
        pre_approved: bool,
        fate: StanzaFate,
        auto_reply: Option<SubscriptionKind>,
    ) -> Transition {
        let old = self.state;
        let roster_push = old.subscription() != new_state.subscription()
            || old.pending_out() != new_state.pending_out()
            || self.pre_approved != pre_approved;
        let had_from = old.subscription().has_from();
        let has_from = new_state.subscription().has_from();
        Transition {
            state: ContactState {
                state: new_state,
                pre_approved,
            },
            fate,
            auto_reply,
            roster_push,
            share_presence: !had_from && has_from,
            revoke_presence: had_from && !has_from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_exclude_impossible_states() {
        for s in State::ALL {
            assert_eq!(
                State::from_parts(s.subscription(), s.pending_out(), s.pending_in()),
                Some(*s)
            );
        }
        assert_eq!(State::from_parts(Subscription::To, true, false), None);
        assert_eq!(State::from_parts(Subscription::From, false, true), None);
        assert_eq!(State::from_parts(Subscription::Both, true, true), None);
    }

    #[test]
    fn wire_names_round_trip() {
        for s in Subscription::ALL {
            assert_eq!(s.to_string().parse::<Subscription>(), Ok(*s));
        }
        for k in SubscriptionKind::ALL {
            assert_eq!(k.to_string().parse::<SubscriptionKind>(), Ok(*k));
        }
        assert!("remove".parse::<Subscription>().is_err());
        assert!("Subscribe".parse::<SubscriptionKind>().is_err());
    }

    #[test]
    fn every_transition_keeps_the_state_valid_and_the_flags_consistent() {
        for s in State::ALL {
            for pre in [false, true] {
                let start = ContactState {
                    state: *s,
                    pre_approved: pre,
                };
                for k in SubscriptionKind::ALL {
                    for t in [start.outbound(*k, true), start.inbound(*k)] {
                        let n = t.state;
                        if n.pre_approved {
                            assert!(!n.state.subscription().has_from() && !n.state.pending_in());
                        }
                        assert_eq!(
                            t.share_presence,
                            !s.subscription().has_from() && n.state.subscription().has_from()
                        );
                    }
                }
            }
        }
    }
}
