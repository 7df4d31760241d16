//! The example server routes a chat message from socket bytes to socket bytes with no
//! element built when its client streams hand out envelopes (issue 17): checked by counting
//! heap allocations per routed message, against the element path on the same hub.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod routed;

use std::alloc::System;

use routed::{Routed, chat, status};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The allocator's counts are global: the tests of this file measure one at a time.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measuring() -> std::sync::MutexGuard<'static, ()> {
    MEASURING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Allocations per message over `n` messages (after a warm-up), and what B received.
fn allocations(envelopes: bool, n: u64) -> (f64, Vec<minidom::Element>) {
    let mut r = Routed::new(envelopes);
    let inputs: Vec<Vec<u8>> = (0..n + 10).map(chat).collect();
    for input in &inputs[..10] {
        r.route(input);
    }
    let warm = r.b_receives();
    assert_eq!(warm.len(), 10);
    r.to_b.reserve(64 * 1024);
    let region = Region::new(GLOBAL);
    for input in &inputs[10..] {
        r.route(input);
    }
    let stats = region.change();
    assert_eq!(r.elsewhere, 0, "only B gets bytes");
    #[allow(clippy::cast_precision_loss)]
    let per = stats.allocations as f64 / n as f64;
    (per, r.b_receives())
}

#[test]
fn chat_messages_are_routed_without_building_an_element() {
    let _measuring = measuring();
    let (by_element, got_element) = allocations(false, 200);
    let (by_envelope, got_envelope) = allocations(true, 200);
    println!(
        "allocations per routed message: element path {by_element:.1}, envelope path {by_envelope:.1}"
    );
    // B's client gets the same stanzas either way.
    assert_eq!(got_element.len(), 200);
    assert_eq!(got_element, got_envelope);
    let first = &got_envelope[0];
    assert_eq!(first.attr("from"), Some("alice@localhost/r"));
    assert_eq!(first.attr("to"), Some("bob@localhost"));
    // Parsing this message into a minidom element alone costs more than the budget's
    // margin (names, attribute maps, children, text: see the xmpp-xml README), so a tree
    // built anywhere on the path breaks the bound.
    assert!(
        by_envelope <= ENVELOPE_BUDGET,
        "{by_envelope:.1} allocations per message: an element is being built"
    );
    assert!(
        by_envelope * 2.0 <= by_element,
        "{by_envelope:.1} vs {by_element:.1}"
    );
}

/// Measured allocations per message on the envelope path, plus a margin smaller than what
/// one minidom element of the message costs.
const ENVELOPE_BUDGET: f64 = 30.0;

/// Allocations per message over `n` messages (after a warm-up) with B's client machine
/// reading what it gets and answering (XEP-0198 acknowledgements when `sm`).
fn allocations_acked(envelopes: bool, sm: bool, n: u64) -> f64 {
    let mut r = Routed::with_sm(envelopes, sm);
    let inputs: Vec<Vec<u8>> = (0..n + 100).map(chat).collect();
    for input in &inputs[..100] {
        r.route_acked(input);
    }
    let region = Region::new(GLOBAL);
    for input in &inputs[100..] {
        r.route_acked(input);
    }
    let stats = region.change();
    #[allow(clippy::cast_precision_loss)]
    let per = stats.allocations as f64 / n as f64;
    per
}

#[test]
fn a_managed_recipient_keeps_the_spliced_bytes_not_an_element() {
    let _measuring = measuring();
    let off = allocations_acked(true, false, 500);
    let on = allocations_acked(true, true, 500);
    let on_element = allocations_acked(false, true, 500);
    let off_element = allocations_acked(false, false, 500);
    println!(
        "allocations per routed message read by B: envelope path, XEP-0198 off {off:.1}, on {on:.1}; element path, off {off_element:.1}, on {on_element:.1}"
    );
    // XEP-0198 adds the queue's copy of the bytes (one allocation) and, every fifth
    // message, an `<r/>` and B's `<a/>` (built, sent, parsed): nothing near the tree of the
    // message (see ENVELOPE_BUDGET), which the unacknowledged queue used to keep.
    assert!(
        on <= off + SM_MARGIN,
        "{on:.1} allocations per message with XEP-0198 vs {off:.1} without: an element is being built"
    );
    assert!(on * 2.0 <= on_element, "{on:.1} vs {on_element:.1}");
    // The element path too: the queue keeps the bytes the stream wrote for the element,
    // not a copy of it (which cost 11 more allocations per message here).
    assert!(
        on_element <= off_element + SM_MARGIN,
        "{on_element:.1} allocations per message with XEP-0198 vs {off_element:.1} without: \
         the unacknowledged queue copies the element"
    );
}

/// Allocations per message XEP-0198 may add, on either path: 6.4 measured (debug build:
/// envelope path 38.0 off, 44.4 on; element path 99.0 off, 105.4 on, and 116.4 on when the
/// queue kept a copy of the element), plus a margin below what copying the message's element
/// costs.
const SM_MARGIN: f64 = 8.0;

/// Allocations per presence recipient over `n` broadcasts from alice to `contacts` contacts
/// (after a warm-up), and what every client received.
fn presence_allocations(
    envelopes: bool,
    contacts: usize,
    n: u64,
) -> (f64, Vec<Vec<minidom::Element>>) {
    let mut r = Routed::with_contacts(envelopes, contacts);
    let inputs: Vec<Vec<u8>> = (0..n + 4).map(status).collect();
    for input in &inputs[..4] {
        r.send_from(0, input);
    }
    let warm: Vec<Vec<minidom::Element>> = (0..=contacts).map(|i| r.receives(i)).collect();
    assert!(warm.iter().all(|got| got.len() == 4), "{warm:?}");
    for inbox in &mut r.inbox {
        inbox.reserve(64 * 1024);
    }
    let region = Region::new(GLOBAL);
    for input in &inputs[4..] {
        r.send_from(0, input);
    }
    let stats = region.change();
    assert_eq!(r.elsewhere, 0);
    // Every contact and alice's own resource (RFC 6121 §4.4.2).
    #[allow(clippy::cast_precision_loss)]
    let per = stats.allocations as f64 / (n as f64 * (contacts + 1) as f64);
    (per, (0..=contacts).map(|i| r.receives(i)).collect())
}

#[test]
fn presence_broadcast_is_fanned_out_without_an_element_per_recipient() {
    const CONTACTS: usize = 20;
    let _turn = measuring();
    let (by_element, got_element) = presence_allocations(false, CONTACTS, 20);
    let (by_envelope, got_envelope) = presence_allocations(true, CONTACTS, 20);
    println!(
        "allocations per presence recipient ({CONTACTS} contacts + own resource): element path {by_element:.1}, envelope path {by_envelope:.1}"
    );
    // Every recipient gets the same stanzas either way.
    assert!(got_element.iter().all(|got| got.len() == 20));
    assert_eq!(got_element, got_envelope);
    let first = &got_envelope[1][0];
    assert_eq!(first.attr("from"), Some("alice@localhost/r"));
    assert_eq!(first.attr("to"), Some("c0@localhost"));
    assert_eq!(got_envelope[0][0].attr("to"), Some("alice@localhost/r"));
    // A copy of this presence as an element costs more than the budget (its children,
    // attributes and text), so an element built or cloned per recipient breaks it (none is
    // built per broadcast either: `presence_broadcast_builds_no_element_at_all`).
    assert!(
        by_envelope <= PRESENCE_BUDGET,
        "{by_envelope:.1} allocations per recipient: an element is built per recipient"
    );
    assert!(
        by_envelope * 2.0 <= by_element,
        "{by_envelope:.1} vs {by_element:.1}"
    );
}

/// Allocations per presence recipient on the envelope path, plus a margin smaller than
/// what one element copy of the presence costs.
const PRESENCE_BUDGET: f64 = 20.0;

/// Allocations per broadcast from alice to `contacts` contacts (after a warm-up).
fn per_broadcast(envelopes: bool, contacts: usize, n: u64) -> f64 {
    let mut r = Routed::with_contacts(envelopes, contacts);
    let inputs: Vec<Vec<u8>> = (0..n + 4).map(status).collect();
    for input in &inputs[..4] {
        r.send_from(0, input);
    }
    for inbox in &mut r.inbox {
        inbox.clear();
        inbox.reserve(64 * 1024);
    }
    let region = Region::new(GLOBAL);
    for input in &inputs[4..] {
        r.send_from(0, input);
    }
    let stats = region.change();
    assert_eq!(r.elsewhere, 0);
    #[allow(clippy::cast_precision_loss)]
    let per = stats.allocations as f64 / n as f64;
    per
}

/// What building the element of alice's presence from its envelope allocates (the
/// element path's tree, what the envelope path used to build once per broadcast), averaged
/// over repeated builds.
fn element_of_status() -> f64 {
    let mut parser = xmpp_xml::StreamParser::new();
    parser.set_envelopes(true);
    parser.feed(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    parser.feed(&status(7));
    parser.next_event().unwrap();
    let Some(xmpp_xml::Event::Stanza(envelope)) = parser.next_event().unwrap() else {
        panic!("no envelope")
    };
    drop(envelope.element().unwrap());
    let n = 10;
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        drop(envelope.element().unwrap());
    }
    let stats = region.change();
    #[allow(clippy::cast_precision_loss)]
    let per = stats.allocations as f64 / f64::from(n);
    per
}

/// The broadcast's own allocations (apart from each recipient's), on the element path and
/// the envelope path: allocations are a line in the number of recipients, measured at two.
fn own_allocations() -> [(f64, f64); 2] {
    let (small, large) = (4, 24);
    [false, true].map(|envelopes| {
        let a = per_broadcast(envelopes, small, 20);
        let b = per_broadcast(envelopes, large, 20);
        #[allow(clippy::cast_precision_loss)]
        let slope = (b - a) / (large - small) as f64;
        #[allow(clippy::cast_precision_loss)]
        let own = a - slope * (small + 1) as f64;
        (own, slope)
    })
}

/// The presence's own cost holds no element (issue 17: "chat messages and presence
/// broadcast with no element built"): the broadcast is decided on the presence read from the
/// bytes (`Presence::without_payloads`), stored as the bytes, and fanned out as the bytes.
#[test]
fn presence_broadcast_builds_no_element_at_all() {
    let _turn = measuring();
    let element = element_of_status();
    let [(by_element, per_element), (by_envelope, per_envelope)] = own_allocations();
    println!(
        "presence broadcast, own allocations + per recipient: element path {by_element:.1} + {per_element:.1}, envelope path {by_envelope:.1} + {per_envelope:.1}; building its element: {element:.1}"
    );
    // Measured (debug build): 33.2 + 2.1 on the envelope path, where the element built once
    // per broadcast made it 104.2 + 2.1. The bound is the measured cost plus a margin below
    // one element, so one element built anywhere on the path breaks it.
    assert!(
        element > PRESENCE_OWN_BUDGET - PRESENCE_OWN_MEASURED,
        "{element:.1} allocations per element: the margin must stay below one"
    );
    assert!(
        by_envelope <= PRESENCE_OWN_BUDGET,
        "{by_envelope:.1} allocations per broadcast: an element is built"
    );
    assert!(
        by_envelope * 1.5 <= by_element,
        "{by_envelope:.1} vs {by_element:.1}"
    );
    assert!(per_envelope <= 4.0, "{per_envelope:.1} per recipient");
}

/// The envelope path's own allocations per presence broadcast (debug build).
const PRESENCE_OWN_MEASURED: f64 = 33.2;

/// [`PRESENCE_OWN_MEASURED`] plus a margin well below what one element of the presence
/// costs (55 allocations, see `element_of_status`).
const PRESENCE_OWN_BUDGET: f64 = 45.0;
