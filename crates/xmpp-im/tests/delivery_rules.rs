//! Every delivery rule of RFC 6121 §8.5 for messages, as a table citing the section, plus the
//! presence and iq rules exercised through the server.

use xmpp_im::{
    BareMessagePolicy, DeliveryPolicy, MessageDecision as D, MessageType as T, Recipients as R,
    SessionView, message_decision,
};
use xmpp_xml::StanzaErrorCondition as C;

const fn s(resource: &str, available: bool, priority: i8) -> SessionView<'_> {
    SessionView {
        resource,
        available,
        priority,
    }
}

const SU: D = D::Bounce(C::ServiceUnavailable);

/// Session sets used by the table.
const NONE: &[SessionView<'static>] = &[];
const ONE_POSITIVE: &[SessionView<'static>] = &[s("desk", true, 1)];
const NEGATIVE_ONLY: &[SessionView<'static>] = &[s("bot", true, -1)];
const CONNECTED_ONLY: &[SessionView<'static>] = &[s("quiet", false, 0)];
const MIXED: &[SessionView<'static>] =
    &[s("desk", true, 5), s("phone", true, 1), s("bot", true, -5)];

struct Case {
    section: &'static str,
    exists: bool,
    sessions: &'static [SessionView<'static>],
    resource: Option<&'static str>,
    kind: T,
    expected: D,
}

const fn c(
    section: &'static str,
    exists: bool,
    sessions: &'static [SessionView<'static>],
    resource: Option<&'static str>,
    kind: T,
    expected: D,
) -> Case {
    Case {
        section,
        exists,
        sessions,
        resource,
        kind,
        expected,
    }
}

const CASES: &[Case] = &[
    // §8.5.1 no such user: bounce service-unavailable (our policy of the two allowed), errors dropped.
    c("8.5.1", false, NONE, None, T::Chat, SU),
    c("8.5.1", false, NONE, None, T::Normal, SU),
    c("8.5.1", false, NONE, None, T::Groupchat, SU),
    c("8.5.1", false, NONE, None, T::Headline, SU),
    c("8.5.1", false, NONE, Some("r"), T::Chat, SU),
    c("8.5.1", false, NONE, None, T::Error, D::Drop),
    // §8.5.2.1.1 bare JID, available resources.
    c(
        "8.5.2.1.1",
        true,
        ONE_POSITIVE,
        None,
        T::Normal,
        D::Deliver(R::HighestPriority),
    ),
    c(
        "8.5.2.1.1",
        true,
        ONE_POSITIVE,
        None,
        T::Chat,
        D::Deliver(R::HighestPriority),
    ),
    c(
        "8.5.2.1.1",
        true,
        MIXED,
        None,
        T::Chat,
        D::Deliver(R::HighestPriority),
    ),
    c(
        "8.5.2.1.1",
        true,
        MIXED,
        None,
        T::Headline,
        D::Deliver(R::AllNonNegative),
    ),
    c("8.5.2.1.1", true, MIXED, None, T::Groupchat, SU),
    c("8.5.2.1.1", true, MIXED, None, T::Error, D::Drop),
    // §8.5.2.1.1: only negative-priority resources: as if none (§8.5.2.2).
    c(
        "8.5.2.1.1",
        true,
        NEGATIVE_ONLY,
        None,
        T::Normal,
        D::Offline,
    ),
    c("8.5.2.1.1", true, NEGATIVE_ONLY, None, T::Chat, D::Offline),
    c("8.5.2.1.1", true, NEGATIVE_ONLY, None, T::Headline, D::Drop),
    c("8.5.2.1.1", true, NEGATIVE_ONLY, None, T::Groupchat, SU),
    // §8.5.2.2.1 bare JID, no available resources (connected-only counts as none for messages).
    c("8.5.2.2.1", true, NONE, None, T::Normal, D::Offline),
    c("8.5.2.2.1", true, NONE, None, T::Chat, D::Offline),
    c("8.5.2.2.1", true, CONNECTED_ONLY, None, T::Chat, D::Offline),
    c("8.5.2.2.1", true, NONE, None, T::Groupchat, SU),
    c("8.5.2.2.1", true, NONE, None, T::Headline, D::Drop),
    c("8.5.2.2.1", true, NONE, None, T::Error, D::Drop),
    // §8.5.3.1 full JID, resource matches (available or merely connected): deliver, any type.
    c(
        "8.5.3.1",
        true,
        MIXED,
        Some("phone"),
        T::Chat,
        D::Deliver(R::One(1)),
    ),
    c(
        "8.5.3.1",
        true,
        MIXED,
        Some("bot"),
        T::Normal,
        D::Deliver(R::One(2)),
    ),
    c(
        "8.5.3.1",
        true,
        MIXED,
        Some("desk"),
        T::Groupchat,
        D::Deliver(R::One(0)),
    ),
    c(
        "8.5.3.1",
        true,
        MIXED,
        Some("desk"),
        T::Headline,
        D::Deliver(R::One(0)),
    ),
    c(
        "8.5.3.1",
        true,
        MIXED,
        Some("desk"),
        T::Error,
        D::Deliver(R::One(0)),
    ),
    c(
        "8.5.3.1",
        true,
        CONNECTED_ONLY,
        Some("quiet"),
        T::Chat,
        D::Deliver(R::One(0)),
    ),
    // §8.5.3.2.1 full JID, no matching resource.
    c("8.5.3.2.1", true, MIXED, Some("gone"), T::Normal, SU),
    c("8.5.3.2.1", true, MIXED, Some("gone"), T::Groupchat, SU),
    c("8.5.3.2.1", true, MIXED, Some("gone"), T::Headline, D::Drop),
    c("8.5.3.2.1", true, MIXED, Some("gone"), T::Error, D::Drop),
    c(
        "8.5.3.2.1",
        true,
        MIXED,
        Some("gone"),
        T::Chat,
        D::Deliver(R::HighestPriority),
    ),
    c(
        "8.5.3.2.1",
        true,
        NEGATIVE_ONLY,
        Some("gone"),
        T::Chat,
        D::Offline,
    ),
    c("8.5.3.2.1", true, NONE, Some("gone"), T::Chat, D::Offline),
];

#[test]
fn every_message_rule_of_section_8_5() {
    let policy = DeliveryPolicy::default();
    for (i, case) in CASES.iter().enumerate() {
        let sessions = case.exists.then_some(case.sessions);
        let got = message_decision(policy, sessions, case.resource, case.kind);
        assert_eq!(
            got, case.expected,
            "RFC 6121 §{} case {i}: {:?} to {:?} with {:?}",
            case.section, case.kind, case.resource, case.sessions
        );
    }
}

#[test]
fn recipients_resolve_per_policy_8_5_2_1_1() {
    // §8.5.2.1.1: "most available" (highest priority) vs all non-negative; never negative.
    let top: Vec<_> = R::HighestPriority.select(MIXED).collect();
    assert_eq!(top, [0]);
    let all: Vec<_> = R::AllNonNegative.select(MIXED).collect();
    assert_eq!(all, [0, 1]);
    let policy = DeliveryPolicy {
        bare_messages: BareMessagePolicy::AllNonNegative,
        ..DeliveryPolicy::default()
    };
    assert_eq!(
        message_decision(policy, Some(MIXED), None, T::Chat),
        D::Deliver(R::AllNonNegative)
    );
    let drop_unknown = DeliveryPolicy {
        bounce_unknown_account: false,
        ..DeliveryPolicy::default()
    };
    assert_eq!(
        message_decision::<SessionView<'_>>(drop_unknown, None, None, T::Chat),
        D::Drop,
        "§8.5.1 allows silently ignoring"
    );
}
