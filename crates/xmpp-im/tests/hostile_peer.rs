//! Hostile peers at the IM layer (issue 8): roster pushes and iq responses from strangers.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;

use minidom::Element;
use xmpp_im::{Iq, IqTracker, PushOutcome, RosterCache, RosterItem};
use xmpp_jid::BareJid;

const OWN: &str = "juliet@example.com";

fn iq(xml: &str) -> Iq {
    let element: Element = xml.parse().unwrap();
    Iq::try_from(&element).unwrap()
}

fn push_from(from: Option<&str>, contact: &str) -> Iq {
    let from = from.map(|f| format!(" from='{f}'")).unwrap_or_default();
    iq(&format!(
        "<iq xmlns='jabber:client' type='set' id='push1'{from}>\
         <query xmlns='jabber:iq:roster'><item jid='{contact}' subscription='both'/></query></iq>"
    ))
}

fn cache() -> RosterCache {
    RosterCache::restore(
        BareJid::new(OWN).unwrap(),
        "v1".to_owned(),
        vec![RosterItem::new(BareJid::new("nurse@example.com").unwrap())],
    )
}

fn error_condition(reply: &Iq) -> String {
    let element = reply.to_element();
    assert_eq!(element.attr("type"), Some("error"));
    let error = element.get_child("error", "jabber:client").unwrap();
    error
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas")
        .map(|c| c.name().to_owned())
        .unwrap()
}

/// RFC 6121 §2.1.6: a push from anyone but the account's bare JID (or the server, with no
/// `from`) is roster poisoning: refused, the cache unchanged.
#[test]
fn roster_push_from_a_stranger_is_refused_and_ignored() {
    for stranger in [
        "romeo@example.net",
        "romeo@example.net/orchard",
        "example.com",
        "juliet@example.com/balcony", // one of our own resources is not the server either
        "juliet@evil.example",
    ] {
        let mut roster = cache();
        let before = roster.clone();
        match roster.handle_push(&push_from(Some(stranger), "mallory@evil.example")) {
            PushOutcome::Rejected { reply } => {
                assert_eq!(error_condition(&reply), "service-unavailable", "{stranger}");
                assert_eq!(reply.to_element().attr("id"), Some("push1"));
            }
            other => panic!("{stranger}: {other:?}"),
        }
        assert_eq!(roster, before, "{stranger}: the cache changed");
        assert!(
            roster
                .get(&BareJid::new("mallory@evil.example").unwrap())
                .is_none()
        );
    }
}

#[test]
fn roster_push_from_the_account_or_the_server_is_applied() {
    for from in [None, Some(OWN)] {
        let mut roster = cache();
        match roster.handle_push(&push_from(from, "romeo@example.net")) {
            PushOutcome::Applied { item, reply } => {
                assert_eq!(item.jid.as_str(), "romeo@example.net");
                assert_eq!(reply.to_element().attr("type"), Some("result"));
            }
            other => panic!("{from:?}: {other:?}"),
        }
        assert!(
            roster
                .get(&BareJid::new("romeo@example.net").unwrap())
                .is_some()
        );
    }
}

#[test]
fn roster_result_from_a_stranger_is_not_applied() {
    let mut roster = cache();
    let before = roster.clone();
    let forged = iq(
        "<iq xmlns='jabber:client' type='result' id='r1' from='romeo@example.net'>\
         <query xmlns='jabber:iq:roster' ver='evil'><item jid='mallory@evil.example'/></query></iq>",
    );
    assert!(roster.handle_result(&forged).is_err());
    assert_eq!(roster, before);
}

/// An iq result nobody asked for (unknown id), or a response to our request from someone
/// other than the entity we asked, is not matched with anything.
#[test]
fn iq_result_nobody_asked_for_is_not_matched() {
    let mut tracker = IqTracker::new(BareJid::new(OWN).unwrap(), "q", Duration::from_secs(30), 8);
    let request: Element = "<query xmlns='jabber:iq:version'/>".parse().unwrap();
    let mut sent = Iq::get("x", request);
    sent.header.to = Some("example.com".parse().unwrap());
    let sent = tracker.send(Duration::ZERO, sent).unwrap();
    let id = sent.id().to_owned();
    let unsolicited =
        iq("<iq xmlns='jabber:client' type='result' id='nobody-asked' from='example.com'/>");
    assert!(tracker.handle_response(&unsolicited).is_none());
    let spoofed = iq(&format!(
        "<iq xmlns='jabber:client' type='result' id='{id}' from='romeo@example.net'/>"
    ));
    assert!(tracker.handle_response(&spoofed).is_none());
    assert_eq!(tracker.len(), 1, "the real request is still pending");
    let genuine = iq(&format!(
        "<iq xmlns='jabber:client' type='result' id='{id}' from='example.com'/>"
    ));
    assert!(tracker.handle_response(&genuine).is_some());
    assert!(tracker.is_empty());
}
