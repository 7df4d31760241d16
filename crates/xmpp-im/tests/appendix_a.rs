//! Every cell of RFC 6121 Appendix A (subscription states) as a test, plus pre-approval (§3.4).
//!
//! The tables are transcribed from the RFC as data: existing state, the RFC's verdict on the
//! stanza (route / deliver), and the new state ("no state change" written as the same name).

#![allow(clippy::panic, clippy::unwrap_used)] // test helpers

use xmpp_im::{ContactState, StanzaFate, State, SubscriptionKind};

fn state(name: &str) -> State {
    *State::ALL
        .iter()
        .find(|s| s.appendix_name() == name)
        .unwrap_or_else(|| panic!("no state named {name}"))
}

/// (existing state, stanza passed on?, new state)
type Table = [(&'static str, bool, &'static str); 9];

/// A.2.1 outbound subscribe: always routed ("MUST without exception route").
const A_2_1: Table = [
    ("None", true, "None + Pending Out"),
    ("None + Pending Out", true, "None + Pending Out"),
    ("None + Pending In", true, "None + Pending Out+In"),
    ("None + Pending Out+In", true, "None + Pending Out+In"),
    ("To", true, "To"),
    ("To + Pending In", true, "To + Pending In"),
    ("From", true, "From + Pending Out"),
    ("From + Pending Out", true, "From + Pending Out"),
    ("Both", true, "Both"),
];

/// A.2.2 outbound unsubscribe: always routed.
const A_2_2: Table = [
    ("None", true, "None"),
    ("None + Pending Out", true, "None"),
    ("None + Pending In", true, "None + Pending In"),
    ("None + Pending Out+In", true, "None + Pending In"),
    ("To", true, "None"),
    ("To + Pending In", true, "None + Pending In"),
    ("From", true, "From"),
    ("From + Pending Out", true, "From"),
    ("Both", true, "From"),
];

/// A.2.3 outbound subscribed: routed only on a state change.
const A_2_3: Table = [
    ("None", false, "None"),
    ("None + Pending Out", false, "None + Pending Out"),
    ("None + Pending In", true, "From"),
    ("None + Pending Out+In", true, "From + Pending Out"),
    ("To", false, "To"),
    ("To + Pending In", true, "Both"),
    ("From", false, "From"),
    ("From + Pending Out", false, "From + Pending Out"),
    ("Both", false, "Both"),
];

/// A.2.4 outbound unsubscribed: routed only on a state change.
const A_2_4: Table = [
    ("None", false, "None"),
    ("None + Pending Out", false, "None + Pending Out"),
    ("None + Pending In", true, "None"),
    ("None + Pending Out+In", true, "None + Pending Out"),
    ("To", false, "To"),
    ("To + Pending In", true, "To"),
    ("From", true, "None"),
    ("From + Pending Out", true, "None + Pending Out"),
    ("Both", true, "To"),
];

/// A.3.1 inbound subscribe.
const A_3_1: Table = [
    ("None", true, "None + Pending In"),
    ("None + Pending Out", true, "None + Pending Out+In"),
    ("None + Pending In", false, "None + Pending In"),
    ("None + Pending Out+In", false, "None + Pending Out+In"),
    ("To", true, "To + Pending In"),
    ("To + Pending In", false, "To + Pending In"),
    ("From", false, "From"),
    ("From + Pending Out", false, "From + Pending Out"),
    ("Both", false, "Both"),
];

/// A.3.2 inbound unsubscribe.
const A_3_2: Table = [
    ("None", false, "None"),
    ("None + Pending Out", false, "None + Pending Out"),
    ("None + Pending In", true, "None"),
    ("None + Pending Out+In", true, "None + Pending Out"),
    ("To", false, "To"),
    ("To + Pending In", true, "To"),
    ("From", true, "None"),
    ("From + Pending Out", true, "None + Pending Out"),
    ("Both", true, "To"),
];

/// A.3.3 inbound subscribed.
const A_3_3: Table = [
    ("None", false, "None"),
    ("None + Pending Out", true, "To"),
    ("None + Pending In", false, "None + Pending In"),
    ("None + Pending Out+In", true, "To + Pending In"),
    ("To", false, "To"),
    ("To + Pending In", false, "To + Pending In"),
    ("From", false, "From"),
    ("From + Pending Out", true, "Both"),
    ("Both", false, "Both"),
];

/// A.3.4 inbound unsubscribed.
const A_3_4: Table = [
    ("None", false, "None"),
    ("None + Pending Out", true, "None"),
    ("None + Pending In", false, "None + Pending In"),
    ("None + Pending Out+In", true, "None + Pending In"),
    ("To", true, "None"),
    ("To + Pending In", true, "None + Pending In"),
    ("From", false, "From"),
    ("From + Pending Out", true, "From"),
    ("Both", true, "From"),
];

fn check_outbound(section: &str, kind: SubscriptionKind, table: &Table) {
    for (i, (old, routed, new)) in table.iter().enumerate() {
        let t = ContactState::new(state(old)).outbound(kind, true);
        let cell = format!("RFC 6121 §{section} row {} ({old})", i + 1);
        assert_eq!(t.state.state, state(new), "{cell}: new state");
        let expected = if *routed {
            StanzaFate::Route
        } else {
            StanzaFate::Drop
        };
        assert_eq!(t.fate, expected, "{cell}: routing");
        assert_eq!(
            t.auto_reply, None,
            "{cell}: outbound stanzas never auto-reply"
        );
    }
}

fn check_inbound(section: &str, kind: SubscriptionKind, table: &Table) {
    for (i, (old, delivered, new)) in table.iter().enumerate() {
        let t = ContactState::new(state(old)).inbound(kind);
        let cell = format!("RFC 6121 §{section} row {} ({old})", i + 1);
        assert_eq!(t.state.state, state(new), "{cell}: new state");
        let expected = if *delivered {
            StanzaFate::Deliver
        } else {
            StanzaFate::Drop
        };
        assert_eq!(t.fate, expected, "{cell}: delivery");
    }
}

#[test]
fn a_2_1_outbound_subscribe() {
    check_outbound("A.2.1", SubscriptionKind::Subscribe, &A_2_1);
}

#[test]
fn a_2_2_outbound_unsubscribe() {
    check_outbound("A.2.2", SubscriptionKind::Unsubscribe, &A_2_2);
}

#[test]
fn a_2_3_outbound_subscribed() {
    check_outbound("A.2.3", SubscriptionKind::Subscribed, &A_2_3);
}

#[test]
fn a_2_4_outbound_unsubscribed() {
    check_outbound("A.2.4", SubscriptionKind::Unsubscribed, &A_2_4);
}

#[test]
fn a_3_1_inbound_subscribe() {
    check_inbound("A.3.1", SubscriptionKind::Subscribe, &A_3_1);
}

#[test]
fn a_3_1_auto_reply_when_already_subscribed() {
    // A.3.1 footnote / §3.1.3: a subscribe from a contact that already has `from` is answered
    // by the server with `subscribed` and not delivered.
    for name in ["From", "From + Pending Out", "Both"] {
        let t = ContactState::new(state(name)).inbound(SubscriptionKind::Subscribe);
        assert_eq!(t.auto_reply, Some(SubscriptionKind::Subscribed), "{name}");
        assert!(!t.roster_push, "{name}");
    }
    for name in ["None", "None + Pending Out", "To", "None + Pending In"] {
        let t = ContactState::new(state(name)).inbound(SubscriptionKind::Subscribe);
        assert_eq!(t.auto_reply, None, "{name}");
    }
}

#[test]
fn a_3_2_inbound_unsubscribe() {
    check_inbound("A.3.2", SubscriptionKind::Unsubscribe, &A_3_2);
}

#[test]
fn a_3_3_inbound_subscribed() {
    check_inbound("A.3.3", SubscriptionKind::Subscribed, &A_3_3);
}

#[test]
fn a_3_4_inbound_unsubscribed() {
    check_inbound("A.3.4", SubscriptionKind::Unsubscribed, &A_3_4);
}

#[test]
fn roster_push_exactly_when_the_visible_item_changes() {
    // §3.1.2 / §3.1.5 / §3.2.2 / §3.3.2: the server pushes the roster item whenever the
    // subscription attribute or the pending-out `ask` flag changes; pending-in is not part of
    // the roster item, so a change of it alone pushes nothing.
    let t = ContactState::new(State::None).inbound(SubscriptionKind::Subscribe);
    assert!(
        !t.roster_push,
        "§3.1.3: a request alone does not change the contact's roster"
    );
    let t = ContactState::new(State::None).outbound(SubscriptionKind::Subscribe, true);
    assert!(t.roster_push, "§3.1.2: ask='subscribe' appears");
    let t = ContactState::new(State::NonePendingIn).outbound(SubscriptionKind::Subscribed, true);
    assert!(
        t.roster_push && t.share_presence,
        "§3.1.5: from appears, presence shared"
    );
    let t = ContactState::new(State::Both).outbound(SubscriptionKind::Unsubscribed, true);
    assert!(
        t.roster_push && t.revoke_presence,
        "§3.2.2: from lost, unavailable sent"
    );
    let t = ContactState::new(State::Both).inbound(SubscriptionKind::Unsubscribe);
    assert!(t.roster_push && t.revoke_presence, "§3.3.3: from lost");
    let t = ContactState::new(State::Both).outbound(SubscriptionKind::Subscribe, true);
    assert!(!t.roster_push);
}

#[test]
fn s3_4_pre_approval_is_stored_not_routed() {
    for name in ["None", "None + Pending Out", "To"] {
        let t = ContactState::new(state(name)).outbound(SubscriptionKind::Subscribed, true);
        assert!(t.state.pre_approved, "§3.4.1 {name}");
        assert_eq!(t.state.state, state(name));
        assert_eq!(t.fate, StanzaFate::Drop, "§3.4.1: not routed");
        assert!(t.roster_push, "§3.4.1: approved='true' is pushed");
        // Without server support the stanza changes nothing.
        let t = ContactState::new(state(name)).outbound(SubscriptionKind::Subscribed, false);
        assert!(!t.state.pre_approved && !t.roster_push, "{name}");
    }
}

#[test]
fn s3_4_pre_approved_request_is_approved_automatically() {
    for (old, new) in [
        ("None", "From"),
        ("None + Pending Out", "From + Pending Out"),
        ("To", "Both"),
    ] {
        let pre = ContactState {
            state: state(old),
            pre_approved: true,
        };
        let t = pre.inbound(SubscriptionKind::Subscribe);
        assert_eq!(t.state.state, state(new), "§3.4.2 {old}");
        assert!(!t.state.pre_approved, "§3.4.2: the approval is used up");
        assert_eq!(
            t.fate,
            StanzaFate::Drop,
            "§3.4.2: not delivered to the user"
        );
        assert_eq!(t.auto_reply, Some(SubscriptionKind::Subscribed));
        assert!(t.roster_push && t.share_presence);
    }
}

#[test]
fn s3_4_unsubscribed_cancels_pre_approval() {
    let pre = ContactState {
        state: State::None,
        pre_approved: true,
    };
    let t = pre.outbound(SubscriptionKind::Unsubscribed, true);
    assert!(!t.state.pre_approved);
    assert!(t.roster_push);
    assert_eq!(
        t.state.inbound(SubscriptionKind::Subscribe).fate,
        StanzaFate::Deliver
    );
}

#[test]
fn s4_3_2_inbound_unsubscribed_keeps_a_pre_approval() {
    // §4.3.2: the `unsubscribed` answering a probe "MUST NOT result in cancellation of a
    // subscription pre-approval".
    for old in ["None", "None + Pending Out", "To"] {
        let pre = ContactState {
            state: state(old),
            pre_approved: true,
        };
        let t = pre.inbound(SubscriptionKind::Unsubscribed);
        assert!(t.state.pre_approved, "{old}");
        let again = t.state.inbound(SubscriptionKind::Subscribe);
        assert_eq!(
            again.auto_reply,
            Some(SubscriptionKind::Subscribed),
            "{old}"
        );
    }
}
