//! The example server routes a chat message from socket bytes to socket bytes with no
//! element built when its client streams hand out envelopes (issue 17): checked by counting
//! heap allocations per routed message, against the element path on the same hub.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod routed;

use std::alloc::System;

use routed::{Routed, chat};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

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
