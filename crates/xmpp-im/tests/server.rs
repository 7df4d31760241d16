//! The server machine end to end: roster (§2), subscriptions (§3), presence (§4) and delivery
//! (§8) between local accounts and to a remote domain.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use std::fmt::Write as _;

use minidom::Element;
use xmpp_im::{
    MemoryStore, Output, RosterQuery, RosterStore, Server, ServerConfig, State, Subscription,
};
use xmpp_jid::{BareJid, FullJid};

struct World {
    server: Server,
    store: MemoryStore,
}

fn full(s: &str) -> FullJid {
    FullJid::new(s).unwrap()
}

fn bare(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn el(xml: &str) -> Element {
    let first_tag = &xml[..xml.find('>').unwrap()];
    let xml = if first_tag.contains("xmlns=") {
        xml.to_owned()
    } else {
        // Give the stanza the client namespace.
        let end = xml.find([' ', '>', '/']).unwrap();
        format!("{} xmlns='jabber:client'{}", &xml[..end], &xml[end..])
    };
    xml.parse().unwrap()
}

impl World {
    fn new() -> Self {
        let mut store = MemoryStore::new();
        for u in [
            "juliet@example.com",
            "romeo@example.com",
            "nurse@example.com",
        ] {
            store.add_account(bare(u));
        }
        Self {
            server: Server::new(ServerConfig::new("example.com")),
            store,
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.server.poll_output()).collect()
    }

    fn connect(&mut self, jid: &str) -> Vec<Output> {
        self.server.session_started(full(jid)).unwrap();
        self.drain()
    }

    fn send(&mut self, from: &str, xml: &str) -> Vec<Output> {
        self.server
            .handle_session_stanza(&mut self.store, &full(from), &el(xml))
            .unwrap();
        self.drain()
    }

    /// Connects, requests the roster and sends initial presence.
    fn online(&mut self, jid: &str, priority: i8) -> Vec<Output> {
        self.connect(jid);
        self.send(
            jid,
            "<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>",
        );
        self.send(
            jid,
            &format!("<presence><priority>{priority}</priority></presence>"),
        )
    }

    fn state(&self, user: &str, contact: &str) -> State {
        self.store
            .entry(&bare(user), &bare(contact))
            .map_or(State::None, |e| e.state.state)
    }
}

fn delivered<'a>(outs: &'a [Output], to: &str) -> Vec<&'a Element> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Deliver { to: t, stanza } if t.as_str() == to => Some(&**stanza),
            _ => None,
        })
        .collect()
}

fn routed(outs: &[Output]) -> Vec<&Element> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Route(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn presences_from<'a>(stanzas: &[&'a Element], from_prefix: &str) -> Vec<&'a Element> {
    stanzas
        .iter()
        .filter(|e| {
            e.name() == "presence" && e.attr("from").is_some_and(|f| f.starts_with(from_prefix))
        })
        .copied()
        .collect()
}

fn error_condition(e: &Element) -> Option<String> {
    let err = e.children().find(|c| c.name() == "error")?;
    err.children().next().map(|c| c.name().to_owned())
}

fn push_items(stanzas: &[&Element]) -> Vec<xmpp_im::RosterItem> {
    stanzas
        .iter()
        .filter(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .filter_map(|e| e.get_child("query", "jabber:iq:roster"))
        .flat_map(|q| RosterQuery::from_element(q).unwrap().items)
        .collect()
}

#[test]
fn s2_roster_get_set_push_and_versioning() {
    let mut w = World::new();
    w.connect("juliet@example.com/balcony");
    w.connect("juliet@example.com/chamber");
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver=''/></iq>",
    );
    let reply = delivered(&outs, "juliet@example.com/balcony");
    let q = RosterQuery::from_element(reply[0].get_child("query", "jabber:iq:roster").unwrap())
        .unwrap();
    assert!(q.items.is_empty());
    let ver0 = q.ver.clone().unwrap();
    // §2.3: add an item; the push goes to the interested resource only (chamber never asked).
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='s1'><query xmlns='jabber:iq:roster'>\
         <item jid='nurse@example.com' name='Nurse'><group>Servants</group></item></query></iq>",
    );
    let to_balcony = delivered(&outs, "juliet@example.com/balcony");
    let pushed = push_items(&to_balcony);
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].subscription, Subscription::None);
    assert_eq!(pushed[0].groups, ["Servants"]);
    assert!(
        to_balcony
            .iter()
            .any(|e| e.attr("type") == Some("result") && e.attr("id") == Some("s1"))
    );
    assert!(delivered(&outs, "juliet@example.com/chamber").is_empty());
    // §2.6.3: the old version gets the full roster, the current one an empty result.
    let outs = w.send(
        "juliet@example.com/balcony",
        &format!("<iq type='get' id='r2'><query xmlns='jabber:iq:roster' ver='{ver0}'/></iq>"),
    );
    let q = delivered(&outs, "juliet@example.com/balcony")[0]
        .get_child("query", "jabber:iq:roster")
        .map(|q| RosterQuery::from_element(q).unwrap())
        .unwrap();
    assert_eq!(q.items.len(), 1);
    let current = q.ver.unwrap();
    assert_ne!(current, ver0);
    let outs = w.send(
        "juliet@example.com/balcony",
        &format!("<iq type='get' id='r3'><query xmlns='jabber:iq:roster' ver='{current}'/></iq>"),
    );
    let r = delivered(&outs, "juliet@example.com/balcony")[0];
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(r.children().count(), 0);
}

#[test]
fn s2_3_3_roster_set_errors() {
    let mut w = World::new();
    w.connect("juliet@example.com/balcony");
    let long = "x".repeat(2000);
    for (query, condition) in [
        (
            "<item jid='a@example.net'/><item jid='b@example.net'/>".to_owned(),
            "bad-request",
        ),
        (
            "<item jid='a@example.net'><group>G</group><group>G</group></item>".to_owned(),
            "bad-request",
        ),
        (
            format!("<item jid='a@example.net' name='{long}'/>"),
            "not-acceptable",
        ),
        (
            "<item jid='a@example.net'><group></group></item>".to_owned(),
            "not-acceptable",
        ),
        (
            "<item jid='a@example.net' subscription='remove'/>".to_owned(),
            "item-not-found",
        ),
    ] {
        let outs = w.send(
            "juliet@example.com/balcony",
            &format!("<iq type='set' id='e'><query xmlns='jabber:iq:roster'>{query}</query></iq>"),
        );
        let reply = delivered(&outs, "juliet@example.com/balcony");
        assert_eq!(reply.len(), 1, "{query}");
        assert_eq!(reply[0].attr("type"), Some("error"));
        assert_eq!(
            error_condition(reply[0]).as_deref(),
            Some(condition),
            "{query}"
        );
    }
    assert!(w.store.entries(&bare("juliet@example.com")).is_empty());
}

#[test]
fn s3_local_subscription_handshake_and_presence() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 1);
    w.online("romeo@example.com/orchard", 1);
    // §3.1.2: Juliet asks; her roster shows ask='subscribe'; §3.1.3 Romeo is asked.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='romeo@example.com'/>",
    );
    let items = push_items(&delivered(&outs, "juliet@example.com/balcony"));
    assert!(items[0].ask && items[0].subscription == Subscription::None);
    let req = delivered(&outs, "romeo@example.com/orchard");
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].attr("type"), Some("subscribe"));
    assert_eq!(
        req[0].attr("from"),
        Some("juliet@example.com"),
        "stamped with the bare JID"
    );
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.com"),
        State::NonePendingOut
    );
    assert_eq!(
        w.state("romeo@example.com", "juliet@example.com"),
        State::NonePendingIn
    );
    // No presence leaks before approval.
    assert!(presences_from(&delivered(&outs, "juliet@example.com/balcony"), "romeo@").is_empty());
    // §3.1.5: Romeo approves; both rosters are pushed; Juliet receives Romeo's presence.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<presence type='subscribed' to='juliet@example.com'/>",
    );
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.com"),
        State::To
    );
    assert_eq!(
        w.state("romeo@example.com", "juliet@example.com"),
        State::From
    );
    let to_juliet = delivered(&outs, "juliet@example.com/balcony");
    assert!(
        to_juliet
            .iter()
            .any(|e| e.attr("type") == Some("subscribed"))
    );
    assert_eq!(push_items(&to_juliet)[0].subscription, Subscription::To);
    let avail: Vec<_> = presences_from(&to_juliet, "romeo@example.com/orchard");
    assert_eq!(
        avail.len(),
        1,
        "§3.1.5: the new subscriber gets current presence"
    );
    assert_eq!(
        push_items(&delivered(&outs, "romeo@example.com/orchard"))[0].subscription,
        Subscription::From
    );
    // §4.4: Romeo's presence updates reach Juliet; Juliet's do not reach Romeo (no `from`).
    let outs = w.send(
        "romeo@example.com/orchard",
        "<presence><show>away</show></presence>",
    );
    assert_eq!(
        presences_from(&delivered(&outs, "juliet@example.com/balcony"), "romeo@").len(),
        1
    );
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence><show>dnd</show></presence>",
    );
    assert!(presences_from(&delivered(&outs, "romeo@example.com/orchard"), "juliet@").is_empty());
    // §3.3: Juliet unsubscribes; Romeo's server revokes, Juliet stops receiving presence.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='unsubscribe' to='romeo@example.com'/>",
    );
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.com"),
        State::None
    );
    assert_eq!(
        w.state("romeo@example.com", "juliet@example.com"),
        State::None
    );
    let unavailable: Vec<_> =
        presences_from(&delivered(&outs, "juliet@example.com/balcony"), "romeo@")
            .into_iter()
            .filter(|e| e.attr("type") == Some("unavailable"))
            .collect();
    assert_eq!(
        unavailable.len(),
        1,
        "§3.3.3: unavailable from each of Romeo's resources"
    );
    let outs = w.send(
        "romeo@example.com/orchard",
        "<presence><show>chat</show></presence>",
    );
    assert!(presences_from(&delivered(&outs, "juliet@example.com/balcony"), "romeo@").is_empty());
}

#[test]
fn s3_1_3_request_to_offline_user_is_delivered_on_initial_presence() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='romeo@example.com'/>",
    );
    assert!(delivered(&outs, "romeo@example.com/orchard").is_empty());
    let outs = w.online("romeo@example.com/orchard", 0);
    let to_romeo = delivered(&outs, "romeo@example.com/orchard");
    assert!(to_romeo.iter().any(
        |e| e.attr("type") == Some("subscribe") && e.attr("from") == Some("juliet@example.com")
    ));
    // A request already pending is not delivered twice (A.3.1 None + Pending In: no).
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='romeo@example.com'/>",
    );
    assert!(delivered(&outs, "romeo@example.com/orchard").is_empty());
}

#[test]
fn s3_4_pre_approval_through_the_server() {
    let mut w = World::new();
    w.online("romeo@example.com/orchard", 0);
    w.online("juliet@example.com/balcony", 0);
    let outs = w.send(
        "romeo@example.com/orchard",
        "<presence type='subscribed' to='juliet@example.com'/>",
    );
    assert!(
        delivered(&outs, "juliet@example.com/balcony").is_empty(),
        "§3.4.1: not routed"
    );
    let items = push_items(&delivered(&outs, "romeo@example.com/orchard"));
    assert!(items[0].approved);
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='romeo@example.com'/>",
    );
    assert!(
        !delivered(&outs, "romeo@example.com/orchard")
            .iter()
            .any(|e| e.attr("type") == Some("subscribe")),
        "§3.4.2: the pre-approved request is not shown to Romeo"
    );
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.com"),
        State::To
    );
    assert_eq!(
        w.state("romeo@example.com", "juliet@example.com"),
        State::From
    );
}

#[test]
fn s2_5_removing_an_item_cancels_both_directions() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    w.online("romeo@example.com/orchard", 0);
    for (from, to, t) in [
        ("juliet", "romeo", "subscribe"),
        ("romeo", "juliet", "subscribed"),
        ("romeo", "juliet", "subscribe"),
        ("juliet", "romeo", "subscribed"),
    ] {
        w.send(
            &format!(
                "{from}@example.com/{}",
                if from == "juliet" {
                    "balcony"
                } else {
                    "orchard"
                }
            ),
            &format!("<presence type='{t}' to='{to}@example.com'/>"),
        );
    }
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.com"),
        State::Both
    );
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>\
         <item jid='romeo@example.com' subscription='remove'/></query></iq>",
    );
    let items = push_items(&delivered(&outs, "juliet@example.com/balcony"));
    assert!(items[0].remove);
    assert_eq!(
        w.state("romeo@example.com", "juliet@example.com"),
        State::None
    );
    let to_romeo = delivered(&outs, "romeo@example.com/orchard");
    assert!(
        to_romeo
            .iter()
            .any(|e| e.attr("type") == Some("unsubscribe"))
    );
    assert!(
        to_romeo
            .iter()
            .any(|e| e.attr("type") == Some("unsubscribed"))
    );
    assert!(
        to_romeo
            .iter()
            .any(|e| e.attr("type") == Some("unavailable")
                && e.attr("from") == Some("juliet@example.com/balcony"))
    );
}

#[test]
fn s4_probes_unavailable_and_directed_presence() {
    let mut w = World::new();
    w.online("romeo@example.com/orchard", 3);
    w.online("juliet@example.com/balcony", 0);
    w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='romeo@example.com'/>",
    );
    w.send(
        "romeo@example.com/orchard",
        "<presence type='subscribed' to='juliet@example.com'/>",
    );
    // §4.2.2: on initial presence Juliet's server probes Romeo and she learns his presence.
    w.send(
        "juliet@example.com/balcony",
        "<presence type='unavailable'/>",
    );
    let outs = w.send("juliet@example.com/balcony", "<presence/>");
    let from_romeo = presences_from(
        &delivered(&outs, "juliet@example.com/balcony"),
        "romeo@example.com/orchard",
    );
    assert_eq!(from_romeo.len(), 1);
    // §4.6: Nurse gets directed presence from Juliet, then the unavailable owed at logout.
    w.online("nurse@example.com/kitchen", 0);
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence to='nurse@example.com'/>",
    );
    assert_eq!(
        presences_from(&delivered(&outs, "nurse@example.com/kitchen"), "juliet@").len(),
        1
    );
    w.server
        .session_ended(&mut w.store, &full("juliet@example.com/balcony"))
        .unwrap();
    let outs = w.drain();
    let to_nurse = presences_from(&delivered(&outs, "nurse@example.com/kitchen"), "juliet@");
    assert_eq!(to_nurse.len(), 1);
    assert_eq!(to_nurse[0].attr("type"), Some("unavailable"));
    // Romeo has no subscription from Juliet: he gets nothing.
    assert!(presences_from(&delivered(&outs, "romeo@example.com/orchard"), "juliet@").is_empty());
}

#[test]
fn s4_3_2_unauthorized_probe_reveals_nothing() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    w.server.handle_remote_stanza(
        &mut w.store,
        &el("<presence type='probe' from='mallory@evil.example' to='juliet@example.com'/>"),
    );
    let outs = w.drain();
    let r = routed(&outs);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].attr("type"), Some("unsubscribed"));
    assert_eq!(r[0].attr("from"), Some("juliet@example.com"));
}

#[test]
fn s8_delivery_through_the_server() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 5);
    w.online("juliet@example.com/chamber", 1);
    w.online("romeo@example.com/orchard", 0);
    // §8.5.2.1.1: chat to the bare JID goes to the highest-priority resource.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<message type='chat' to='juliet@example.com'><body>hi</body></message>",
    );
    assert_eq!(delivered(&outs, "juliet@example.com/balcony").len(), 1);
    assert!(delivered(&outs, "juliet@example.com/chamber").is_empty());
    // §8.5.3.1: to a full JID, exactly that resource.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<message type='chat' to='juliet@example.com/chamber'/>",
    );
    assert_eq!(delivered(&outs, "juliet@example.com/chamber").len(), 1);
    // §8.5.2.2.1: nobody online: offline storage, the host's decision.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<message type='chat' to='nurse@example.com'><body>x</body></message>",
    );
    assert!(
        matches!(&outs[..], [Output::Offline { user, .. }] if user.as_str() == "nurse@example.com")
    );
    // §8.5.1: no such account: service-unavailable back to the sender.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<message id='m1' type='chat' to='tybalt@example.com'/>",
    );
    let back = delivered(&outs, "romeo@example.com/orchard");
    assert_eq!(back.len(), 1);
    assert_eq!(
        error_condition(back[0]).as_deref(),
        Some("service-unavailable")
    );
    // §8.5.3.2.3: iq to a missing resource.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<iq type='get' id='q' to='juliet@example.com/gone'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    let back = delivered(&outs, "romeo@example.com/orchard");
    assert_eq!(
        error_condition(back[0]).as_deref(),
        Some("service-unavailable")
    );
    // §8.5.2.1.3: iq to the bare JID is the server's; a roster query of someone else is forbidden.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<iq type='get' id='q2' to='juliet@example.com'><query xmlns='jabber:iq:roster'/></iq>",
    );
    let back = delivered(&outs, "romeo@example.com/orchard");
    assert_eq!(error_condition(back[0]).as_deref(), Some("forbidden"));
    let outs = w.send(
        "romeo@example.com/orchard",
        "<iq type='get' id='q3' to='juliet@example.com'><vCard xmlns='vcard-temp'/></iq>",
    );
    assert!(matches!(&outs[..], [Output::Unhandled(_)]));
    // Remote domains are routed out, stamped with the sender's full JID.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<message type='chat' to='mercutio@example.net'/>",
    );
    let r = routed(&outs);
    assert_eq!(r[0].attr("from"), Some("romeo@example.com/orchard"));
    // A malformed stanza from a session gets the mapped stanza error.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<presence><priority>999</priority></presence>",
    );
    assert_eq!(
        error_condition(delivered(&outs, "romeo@example.com/orchard")[0]).as_deref(),
        Some("bad-request")
    );
}

#[test]
fn s3_remote_contact_subscription_is_routed_with_the_bare_jid() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='romeo@example.net/phone'/>",
    );
    let r = routed(&outs);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].attr("to"), Some("romeo@example.net"));
    assert_eq!(r[0].attr("from"), Some("juliet@example.com"));
    // The remote approval arrives.
    w.server.handle_remote_stanza(
        &mut w.store,
        &el("<presence type='subscribed' from='romeo@example.net' to='juliet@example.com'/>"),
    );
    let outs = w.drain();
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.net"),
        State::To
    );
    assert_eq!(
        push_items(&delivered(&outs, "juliet@example.com/balcony"))[0].subscription,
        Subscription::To
    );
}

#[test]
fn s8_5_presence_and_iq_rules() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 1);
    w.online("juliet@example.com/chamber", -1);
    w.connect("juliet@example.com/quiet"); // connected, never available
    let remote = |w: &mut World, xml: &str| {
        w.server.handle_remote_stanza(&mut w.store, &el(xml));
        w.drain()
    };
    // §8.5.2.1.2: availability presence to the bare JID reaches every available resource,
    // negative priority included, but not a merely connected one.
    let outs = remote(
        &mut w,
        "<presence from='mercutio@example.net/r' to='juliet@example.com'/>",
    );
    assert_eq!(delivered(&outs, "juliet@example.com/balcony").len(), 1);
    assert_eq!(delivered(&outs, "juliet@example.com/chamber").len(), 1);
    assert!(delivered(&outs, "juliet@example.com/quiet").is_empty());
    // §8.5.3.1: to a full JID, that resource only.
    let outs = remote(
        &mut w,
        "<presence from='mercutio@example.net/r' to='juliet@example.com/chamber'/>",
    );
    assert_eq!(outs.len(), 1);
    assert_eq!(delivered(&outs, "juliet@example.com/chamber").len(), 1);
    // §8.5.3.2.2: no such resource: silently ignored.
    let outs = remote(
        &mut w,
        "<presence from='mercutio@example.net/r' to='juliet@example.com/gone'/>",
    );
    assert!(outs.is_empty());
    // §8.5.2.2.2: no available resource: ignored.
    let outs = remote(
        &mut w,
        "<presence type='unavailable' from='mercutio@example.net/r' to='nurse@example.com'/>",
    );
    assert!(outs.is_empty());
    // §8.5.1: presence to a missing account is ignored, iq requests bounced.
    for t in ["", " type='subscribe'", " type='unavailable'"] {
        let outs = remote(
            &mut w,
            &format!("<presence{t} from='mercutio@example.net' to='tybalt@example.com'/>"),
        );
        assert!(outs.is_empty(), "{t}");
    }
    // §4.3.2 step 1: a probe of a missing account is answered `unsubscribed`.
    let outs = remote(
        &mut w,
        "<presence type='probe' from='mercutio@example.net' to='tybalt@example.com'/>",
    );
    assert_eq!(routed(&outs)[0].attr("type"), Some("unsubscribed"));
    let outs = remote(
        &mut w,
        "<iq type='get' id='i1' from='mercutio@example.net/r' to='tybalt@example.com'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    let r = routed(&outs);
    assert_eq!(
        error_condition(r[0]).as_deref(),
        Some("service-unavailable")
    );
    assert_eq!(r[0].attr("to"), Some("mercutio@example.net/r"));
    let outs = remote(
        &mut w,
        "<iq type='result' id='i2' from='mercutio@example.net/r' to='tybalt@example.com'/>",
    );
    assert!(outs.is_empty(), "responses are never answered");
    // §8.5.3.1: an iq to a connected (not available) resource is delivered.
    let outs = remote(
        &mut w,
        "<iq type='get' id='i3' from='mercutio@example.net/r' to='juliet@example.com/quiet'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(delivered(&outs, "juliet@example.com/quiet").len(), 1);
    // §8.5.3.2.3: iq result to a missing resource: dropped.
    let outs = remote(
        &mut w,
        "<iq type='result' id='i4' from='mercutio@example.net/r' to='juliet@example.com/gone'/>",
    );
    assert!(outs.is_empty());
    // §8.5.2.1.1 via the server: a headline to the bare JID reaches the non-negative resources.
    let outs = remote(
        &mut w,
        "<message type='headline' from='news.example.net' to='juliet@example.com'><body>x</body></message>",
    );
    assert_eq!(delivered(&outs, "juliet@example.com/balcony").len(), 1);
    assert!(delivered(&outs, "juliet@example.com/chamber").is_empty());
    // §8.5.2.1.1: groupchat to the bare JID bounces.
    let outs = remote(
        &mut w,
        "<message type='groupchat' id='g' from='room@muc.example.net/x' to='juliet@example.com'/>",
    );
    assert_eq!(
        error_condition(routed(&outs)[0]).as_deref(),
        Some("service-unavailable")
    );
}

#[test]
fn s4_6_directed_presence_from_a_session_that_never_broadcast() {
    let mut w = World::new();
    w.online("nurse@example.com/kitchen", 0);
    w.connect("juliet@example.com/balcony");
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence to='nurse@example.com'/>",
    );
    assert_eq!(
        presences_from(&delivered(&outs, "nurse@example.com/kitchen"), "juliet@").len(),
        1
    );
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='unavailable' to='nurse@example.com'/>",
    );
    assert_eq!(
        presences_from(&delivered(&outs, "nurse@example.com/kitchen"), "juliet@").len(),
        1
    );
    // Directed again, then the session ends: the unavailable is owed even without broadcast.
    w.send(
        "juliet@example.com/balcony",
        "<presence to='nurse@example.com'/>",
    );
    w.server
        .session_ended(&mut w.store, &full("juliet@example.com/balcony"))
        .unwrap();
    let outs = w.drain();
    let to_nurse = presences_from(&delivered(&outs, "nurse@example.com/kitchen"), "juliet@");
    assert_eq!(to_nurse.len(), 1);
    assert_eq!(to_nurse[0].attr("type"), Some("unavailable"));
}

#[test]
fn s2_3_3_full_roster_refuses_new_items_from_subscriptions_too() {
    let mut config = ServerConfig::new("example.com");
    config.max_roster_items = 1;
    let mut w = World::new();
    w.server = Server::new(config);
    w.online("juliet@example.com/balcony", 0);
    w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='romeo@example.com'/>",
    );
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribe' to='nurse@example.com'/>",
    );
    let back = delivered(&outs, "juliet@example.com/balcony");
    assert_eq!(back.len(), 1);
    assert_eq!(error_condition(back[0]).as_deref(), Some("not-acceptable"));
    assert!(routed(&outs).is_empty());
    assert_eq!(
        w.state("juliet@example.com", "nurse@example.com"),
        State::None
    );
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='s'><query xmlns='jabber:iq:roster'><item jid='tybalt@example.com'/></query></iq>",
    );
    let back = delivered(&outs, "juliet@example.com/balcony");
    assert_eq!(error_condition(back[0]).as_deref(), Some("not-acceptable"));
}

#[test]
fn s3_1_3_stored_requests_from_strangers_are_bounded() {
    let mut config = ServerConfig::new("example.com");
    config.max_pending_requests = 3;
    let mut w = World::new();
    w.server = Server::new(config);
    for i in 0..10 {
        w.server.handle_remote_stanza(
            &mut w.store,
            &el(&format!(
                "<presence type='subscribe' from='spam{i}@evil.example' to='juliet@example.com'/>"
            )),
        );
    }
    assert_eq!(w.store.entries(&bare("juliet@example.com")).len(), 3);
    // Contacts already in the roster are not affected by the bound.
    w.online("juliet@example.com/balcony", 0);
    w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='a'><query xmlns='jabber:iq:roster'><item jid='romeo@example.net'/></query></iq>",
    );
    w.server.handle_remote_stanza(
        &mut w.store,
        &el("<presence type='subscribe' from='romeo@example.net' to='juliet@example.com'/>"),
    );
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.net"),
        State::NonePendingIn
    );
}

/// RFC 6121 §2.1.2.5 / §2.1.5: in a roster set the server MUST ignore every `subscription`
/// value other than "remove". Clients such as slixmpp send `subscription='none'` on every
/// update; a client cannot grant itself a subscription by sending `both`.
#[test]
fn s2_1_2_5_roster_set_ignores_subscription_values_other_than_remove() {
    let mut w = World::new();
    w.connect("juliet@example.com/balcony");
    for (value, name) in [
        ("both", "Nurse"),
        ("none", "Nurse2"),
        ("sometimes", "Nurse3"),
    ] {
        let outs = w.send(
            "juliet@example.com/balcony",
            &format!(
                "<iq type='set' id='s-{value}'><query xmlns='jabber:iq:roster'>\
                 <item jid='nurse@example.com' name='{name}' subscription='{value}'/>\
                 </query></iq>"
            ),
        );
        let replies = delivered(&outs, "juliet@example.com/balcony");
        assert!(
            replies.iter().any(|r| r.attr("type") == Some("result")
                && r.attr("id") == Some(&*format!("s-{value}"))),
            "{value}: {replies:?}"
        );
        let entry = w
            .store
            .entry(&bare("juliet@example.com"), &bare("nurse@example.com"))
            .expect("item added");
        assert_eq!(entry.name.as_deref(), Some(name));
        assert_eq!(entry.state.state, State::None, "{value}");
    }
}

#[test]
fn s3_2_2_cancelling_sends_unavailable_before_unsubscribed() {
    // Romeo (remote) is subscribed to Juliet's presence; Juliet cancels it with two resources
    // online. Every `unavailable` reaches the remote server before the `unsubscribed`.
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    w.online("juliet@example.com/chamber", 0);
    w.server.handle_remote_stanza(
        &mut w.store,
        &el("<presence type='subscribe' from='romeo@example.net' to='juliet@example.com'/>"),
    );
    w.drain();
    w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribed' to='romeo@example.net'/>",
    );
    assert_eq!(
        w.state("juliet@example.com", "romeo@example.net"),
        State::From
    );
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence type='unsubscribed' to='romeo@example.net'/>",
    );
    let kinds: Vec<(Option<&str>, Option<&str>)> = routed(&outs)
        .iter()
        .map(|e| (e.attr("type"), e.attr("from")))
        .collect();
    assert_eq!(
        kinds,
        [
            (Some("unavailable"), Some("juliet@example.com/balcony")),
            (Some("unavailable"), Some("juliet@example.com/chamber")),
            (Some("unsubscribed"), Some("juliet@example.com")),
        ]
    );
}

#[test]
fn s3_1_3_stored_request_is_delivered_complete() {
    // A request with a status and an XEP-0172 nick waits for Romeo and is delivered as it
    // came, extended content included; once answered, it is no longer stored.
    let mut w = World::new();
    w.server.handle_remote_stanza(
        &mut w.store,
        &el(
            "<presence type='subscribe' from='mercutio@example.net/x' to='romeo@example.com' \
             id='s1'><status>It is I</status><nick xmlns='http://jabber.org/protocol/nick'>\
             Merc</nick></presence>",
        ),
    );
    assert!(w.drain().is_empty());
    let stored = w
        .store
        .entry(&bare("romeo@example.com"), &bare("mercutio@example.net"))
        .unwrap();
    assert!(stored.request.is_some());
    let outs = w.online("romeo@example.com/orchard", 0);
    let reqs: Vec<&Element> = delivered(&outs, "romeo@example.com/orchard")
        .into_iter()
        .filter(|e| e.attr("type") == Some("subscribe"))
        .collect();
    assert_eq!(reqs.len(), 1);
    let req = reqs[0];
    assert_eq!(req.attr("from"), Some("mercutio@example.net"));
    assert_eq!(req.attr("id"), Some("s1"));
    assert_eq!(
        req.get_child("status", "jabber:client").map(Element::text),
        Some("It is I".to_owned())
    );
    assert_eq!(
        req.get_child("nick", "http://jabber.org/protocol/nick")
            .map(Element::text),
        Some("Merc".to_owned())
    );
    w.send(
        "romeo@example.com/orchard",
        "<presence type='subscribed' to='mercutio@example.net'/>",
    );
    let after = w
        .store
        .entry(&bare("romeo@example.com"), &bare("mercutio@example.net"))
        .unwrap();
    assert_eq!(after.state.state, State::From);
    assert!(after.request.is_none());
}

#[test]
fn features_follow_the_configuration_and_versioning_can_be_off() {
    use xmpp_im::features::{disco_vars, stream_elements};
    let on = ServerConfig::new("example.com").features();
    let names: Vec<(String, String)> = stream_elements(&on)
        .map(|e| (e.name().to_owned(), e.ns()))
        .collect();
    assert_eq!(
        names,
        [
            ("ver".to_owned(), "urn:xmpp:features:rosterver".to_owned()),
            (
                "sub".to_owned(),
                "urn:xmpp:features:pre-approval".to_owned()
            ),
        ]
    );
    assert_eq!(
        disco_vars(&on).collect::<Vec<_>>(),
        ["jabber:iq:roster", "jabber:iq:privacy", "urn:xmpp:blocking"]
    );
    let mut config = ServerConfig::new("example.com");
    config.pre_approval = false;
    config.roster_versioning = false;
    assert_eq!(stream_elements(&config.features()).count(), 0);

    // Versioning off: the roster result carries no `ver`, and a client's `ver` is ignored.
    let mut w = World::new();
    w.server = Server::new(config);
    w.connect("juliet@example.com/balcony");
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver='0'/></iq>",
    );
    let reply = delivered(&outs, "juliet@example.com/balcony")[0];
    let query = reply
        .get_child("query", "jabber:iq:roster")
        .expect("whole roster");
    assert_eq!(query.attr("ver"), None);
}

#[test]
fn s2_6_client_with_current_ver_gets_pushes_only() {
    let mut w = World::new();
    w.connect("juliet@example.com/balcony");
    w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='a'><query xmlns='jabber:iq:roster'>\
         <item jid='nurse@example.com'/></query></iq>",
    );
    let version = w.store.version(&bare("juliet@example.com"));
    assert!(version > 0);
    // A second resource that knows the version gets an empty result...
    w.connect("juliet@example.com/chamber");
    let outs = w.send(
        "juliet@example.com/chamber",
        &format!("<iq type='get' id='g'><query xmlns='jabber:iq:roster' ver='{version}'/></iq>"),
    );
    let reply = delivered(&outs, "juliet@example.com/chamber")[0];
    assert_eq!(reply.attr("type"), Some("result"));
    assert!(reply.children().next().is_none(), "no roster in the result");
    // ... then pushes, each with the next version.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='b'><query xmlns='jabber:iq:roster'><item jid='romeo@example.com'/></query></iq>",
    );
    let push = delivered(&outs, "juliet@example.com/chamber")[0];
    let next = (version + 1).to_string();
    assert_eq!(
        push.get_child("query", "jabber:iq:roster")
            .and_then(|q| q.attr("ver")),
        Some(next.as_str())
    );
}

fn error_of<'a>(outs: &'a [Output], to: &str, id: &str) -> Option<&'a Element> {
    delivered(outs, to)
        .into_iter()
        .find(|e| e.attr("id") == Some(id) && e.attr("type") == Some("error"))
}

#[test]
fn xep_0191_block_push_errors_and_unblock() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    w.online("juliet@example.com/chamber", 0);
    w.online("romeo@example.com/orchard", 0);
    for r in ["balcony", "chamber"] {
        let outs = w.send(
            &format!("juliet@example.com/{r}"),
            "<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
        );
        let list = delivered(&outs, &format!("juliet@example.com/{r}"))[0];
        assert_eq!(list.attr("type"), Some("result"));
        assert_eq!(
            list.get_child("blocklist", "urn:xmpp:blocking")
                .map(|b| b.children().count()),
            Some(0)
        );
    }
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='romeo@example.com'/></block></iq>",
    );
    // The result to the requester, a push to every resource that asked for the list.
    for r in ["balcony", "chamber"] {
        let to = format!("juliet@example.com/{r}");
        assert!(
            delivered(&outs, &to)
                .iter()
                .any(|e| e.attr("type") == Some("set")
                    && e.get_child("block", "urn:xmpp:blocking").is_some()),
            "push to {r}"
        );
    }
    // Romeo's message is refused with service-unavailable and never reaches Juliet.
    let outs = w.send(
        "romeo@example.com/orchard",
        "<message to='juliet@example.com' id='m1' type='chat'><body>hi</body></message>",
    );
    assert!(delivered(&outs, "juliet@example.com/balcony").is_empty());
    let e = error_of(&outs, "romeo@example.com/orchard", "m1").expect("bounced");
    assert_eq!(error_condition(e).as_deref(), Some("service-unavailable"));
    // Juliet's message to Romeo: not-acceptable with <blocked/>.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<message to='romeo@example.com' id='m2' type='chat'><body>hi</body></message>",
    );
    assert!(delivered(&outs, "romeo@example.com/orchard").is_empty());
    let e = error_of(&outs, "juliet@example.com/balcony", "m2").expect("refused");
    assert_eq!(error_condition(e).as_deref(), Some("not-acceptable"));
    assert!(
        e.get_child("error", "jabber:client")
            .and_then(|x| x.get_child("blocked", "urn:xmpp:blocking:errors"))
            .is_some()
    );
    // An empty block is a bad request; unblock-all lets messages through again.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'/></iq>",
    );
    let e = error_of(&outs, "juliet@example.com/balcony", "b2").expect("bad request");
    assert_eq!(error_condition(e).as_deref(), Some("bad-request"));
    w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'/></iq>",
    );
    let outs = w.send(
        "romeo@example.com/orchard",
        "<message to='juliet@example.com' id='m3' type='chat'><body>hi</body></message>",
    );
    assert!(!delivered(&outs, "juliet@example.com/balcony").is_empty());
}

#[test]
fn xep_0016_lists_active_default_and_kinds() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    w.online("nurse@example.com/kitchen", 0);
    let set_list = "<iq type='set' id='l1'><query xmlns='jabber:iq:privacy'>\
        <list name='quiet'><item type='jid' value='nurse@example.com' action='deny' order='1'>\
        <message/></item><item action='allow' order='2'/></list></query></iq>";
    let outs = w.send("juliet@example.com/balcony", set_list);
    let to_j = delivered(&outs, "juliet@example.com/balcony");
    assert!(
        to_j.iter()
            .any(|e| e.attr("id") == Some("l1") && e.attr("type") == Some("result"))
    );
    assert!(
        to_j.iter().any(|e| e.attr("type") == Some("set")),
        "list push"
    );
    // Not active yet: the nurse's message gets through.
    let outs = w.send(
        "nurse@example.com/kitchen",
        "<message to='juliet@example.com/balcony' id='n1' type='chat'><body>1</body></message>",
    );
    assert_eq!(delivered(&outs, "juliet@example.com/balcony").len(), 1);
    // Active list for this session: messages denied, iqs still allowed.
    w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='a1'><query xmlns='jabber:iq:privacy'><active name='quiet'/></query></iq>",
    );
    let outs = w.send(
        "nurse@example.com/kitchen",
        "<message to='juliet@example.com/balcony' id='n2' type='chat'><body>2</body></message>",
    );
    assert!(delivered(&outs, "juliet@example.com/balcony").is_empty());
    let e = error_of(&outs, "nurse@example.com/kitchen", "n2").expect("bounced");
    assert_eq!(error_condition(e).as_deref(), Some("service-unavailable"));
    let outs = w.send(
        "nurse@example.com/kitchen",
        "<iq to='juliet@example.com/balcony' id='q1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(delivered(&outs, "juliet@example.com/balcony").len(), 1);
    // The names, the active and the default.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='get' id='g1'><query xmlns='jabber:iq:privacy'/></iq>",
    );
    let q = delivered(&outs, "juliet@example.com/balcony")[0]
        .get_child("query", "jabber:iq:privacy")
        .unwrap();
    assert_eq!(
        q.get_child("active", "jabber:iq:privacy")
            .and_then(|a| a.attr("name")),
        Some("quiet")
    );
    assert_eq!(
        q.get_child("default", "jabber:iq:privacy")
            .and_then(|a| a.attr("name")),
        None
    );
    // Unknown list: item-not-found; two lists at once: bad-request.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='a2'><query xmlns='jabber:iq:privacy'><active name='nope'/></query></iq>",
    );
    let e = error_of(&outs, "juliet@example.com/balcony", "a2").unwrap();
    assert_eq!(error_condition(e).as_deref(), Some("item-not-found"));
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='get' id='g2'><query xmlns='jabber:iq:privacy'><list name='a'/><list name='b'/></query></iq>",
    );
    let e = error_of(&outs, "juliet@example.com/balcony", "g2").unwrap();
    assert_eq!(error_condition(e).as_deref(), Some("bad-request"));
    // The active list cannot be removed by another session... nor the default while it
    // applies to another session (XEP-0016 §2.8; chamber has no active list of its own).
    w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='d1'><query xmlns='jabber:iq:privacy'><default name='quiet'/></query></iq>",
    );
    w.online("juliet@example.com/chamber", 0);
    for from in ["juliet@example.com/chamber", "juliet@example.com/balcony"] {
        let outs = w.send(
            from,
            "<iq type='set' id='r1'><query xmlns='jabber:iq:privacy'><list name='quiet'/></query></iq>",
        );
        let e = error_of(&outs, from, "r1").unwrap();
        assert_eq!(error_condition(e).as_deref(), Some("conflict"), "{from}");
    }
}

/// The answer to a `jabber:iq:privacy` request of `from`: `Ok(result)` or `Err(condition)`,
/// with the error's type checked against the one XEP-0016's examples show (`cancel` for
/// conflict and item-not-found, `modify` for bad-request).
fn privacy_answer(
    w: &mut World,
    from: &str,
    id: &str,
    kind: &str,
    query: &str,
) -> Result<Element, String> {
    let outs = w.send(
        from,
        &format!(
            "<iq type='{kind}' id='{id}'><query xmlns='jabber:iq:privacy'>{query}</query></iq>"
        ),
    );
    let answer = delivered(&outs, from)
        .into_iter()
        .find(|e| e.attr("id") == Some(id))
        .unwrap_or_else(|| panic!("no answer to {id}: {outs:?}"));
    if answer.attr("type") == Some("result") {
        return Ok(answer.clone());
    }
    let condition = error_condition(answer).unwrap();
    let error_type = answer
        .get_child("error", "jabber:client")
        .and_then(|e| e.attr("type"))
        .unwrap_or_default()
        .to_owned();
    let expected = if condition == "bad-request" {
        "modify"
    } else {
        "cancel"
    };
    assert_eq!(error_type, expected, "{id}: {condition}");
    Err(condition)
}

/// From the answer to `from`'s request for the names (XEP-0016 §2.3): the `name`s of the
/// `child` elements (`active`, `default` or `list`).
fn privacy_names(w: &mut World, from: &str, child: &str) -> Vec<String> {
    let names = privacy_answer(w, from, "names", "get", "").unwrap();
    names
        .get_child("query", "jabber:iq:privacy")
        .unwrap()
        .children()
        .filter(|c| c.name() == child)
        .filter_map(|c| c.attr("name").map(str::to_owned))
        .collect()
}

const LIST_A: &str = "<list name='a'><item type='jid' value='nurse@example.com' action='deny' order='1'><message/></item></list>";
const LIST_B: &str = "<list name='b'><item action='allow' order='1'/></list>";

/// XEP-0016 §2.5: changing or declining the default list is a `conflict` only while a
/// default list exists and applies to another connected resource (one without an active
/// list); §2.4 / §2.5 / §2.8 / §2.3: unknown names are `item-not-found`; §2.1: one child
/// per set, else `bad-request`; §2.8: removing a list in use by another resource is a
/// `conflict`, the sender's own use is not.
#[test]
fn xep_0016_default_and_removal_errors_are_exact() {
    let mut w = World::new();
    let balcony = "juliet@example.com/balcony";
    let chamber = "juliet@example.com/chamber";
    w.online(balcony, 0);
    w.online(chamber, 0);
    for (id, list) in [("la", LIST_A), ("lb", LIST_B)] {
        privacy_answer(&mut w, balcony, id, "set", list).unwrap();
    }
    // No default yet: setting one is no change of a list in use, even with chamber online.
    privacy_answer(&mut w, balcony, "d1", "set", "<default name='a'/>").unwrap();
    // Now chamber relies on 'a': changing or declining it is a conflict, and nothing changes.
    assert_eq!(
        privacy_answer(&mut w, balcony, "d2", "set", "<default name='b'/>"),
        Err("conflict".into())
    );
    assert_eq!(
        privacy_answer(&mut w, balcony, "d3", "set", "<default/>"),
        Err("conflict".into())
    );
    // Setting the same default again changes nothing: no conflict.
    privacy_answer(&mut w, balcony, "d4", "set", "<default name='a'/>").unwrap();
    assert_eq!(privacy_names(&mut w, balcony, "default"), ["a"]);
    // Unknown names.
    for (id, kind, query) in [
        ("u1", "set", "<default name='nope'/>"),
        ("u2", "set", "<active name='nope'/>"),
        ("u3", "set", "<list name='nope'/>"),
        ("u4", "get", "<list name='nope'/>"),
    ] {
        assert_eq!(
            privacy_answer(&mut w, balcony, id, kind, query),
            Err("item-not-found".into()),
            "{id}"
        );
    }
    // More than one child in a set; two lists removed at once.
    assert_eq!(
        privacy_answer(
            &mut w,
            balcony,
            "b1",
            "set",
            "<active name='a'/><default name='b'/>"
        ),
        Err("bad-request".into())
    );
    assert_eq!(
        privacy_answer(
            &mut w,
            balcony,
            "b2",
            "set",
            "<list name='a'/><list name='b'/>"
        ),
        Err("bad-request".into())
    );
    // Once chamber has an active list of its own, the default applies to nobody else: it
    // can be changed and declined.
    privacy_answer(&mut w, chamber, "c1", "set", "<active name='b'/>").unwrap();
    privacy_answer(&mut w, balcony, "d5", "set", "<default name='b'/>").unwrap();
    privacy_answer(&mut w, balcony, "d6", "set", "<default/>").unwrap();
    // 'b' is chamber's active list: balcony may not remove it.
    assert_eq!(
        privacy_answer(&mut w, balcony, "r1", "set", "<list name='b'/>"),
        Err("conflict".into())
    );
    // balcony's own active list is no obstacle: removed, and balcony has no active list.
    privacy_answer(&mut w, balcony, "a1", "set", "<active name='a'/>").unwrap();
    privacy_answer(&mut w, balcony, "r2", "set", "<list name='a'/>").unwrap();
    assert!(privacy_names(&mut w, balcony, "active").is_empty());
    assert_eq!(privacy_names(&mut w, balcony, "list"), ["b"]);
    // The default is removable when no other resource relies on it (chamber uses 'b').
    privacy_answer(&mut w, balcony, "lc", "set", &LIST_A.replace("'a'", "'c'")).unwrap();
    privacy_answer(&mut w, balcony, "d7", "set", "<default name='c'/>").unwrap();
    privacy_answer(&mut w, balcony, "r3", "set", "<list name='c'/>").unwrap();
    assert!(privacy_names(&mut w, balcony, "default").is_empty());
}

/// XEP-0016 §2.2 rules 1–2: a stanza to the bare JID is judged, for each resource it would
/// reach, by that resource's active list, else the default: never by the default alone.
#[test]
fn xep_0016_bare_jid_stanzas_are_judged_per_receiving_resource() {
    let mut w = World::new();
    let balcony = "juliet@example.com/balcony";
    let chamber = "juliet@example.com/chamber";
    w.online(balcony, 5);
    w.online(chamber, 5);
    w.online("nurse@example.com/kitchen", 0);
    let deny_nurse = "<list name='deny'><item type='jid' value='nurse@example.com' action='deny' order='1'><message/><presence-in/></item></list>";
    privacy_answer(&mut w, balcony, "l1", "set", deny_nurse).unwrap();
    privacy_answer(&mut w, balcony, "l2", "set", LIST_B).unwrap();
    let to_bare = |n: u8| {
        format!("<message to='juliet@example.com' id='m{n}' type='chat'><body>{n}</body></message>")
    };
    // The default denies, but each resource's active list allows: delivered to both.
    privacy_answer(&mut w, balcony, "d", "set", "<default name='deny'/>").unwrap();
    privacy_answer(&mut w, balcony, "a1", "set", "<active name='b'/>").unwrap();
    privacy_answer(&mut w, chamber, "a2", "set", "<active name='b'/>").unwrap();
    let outs = w.send("nurse@example.com/kitchen", &to_bare(1));
    assert_eq!(delivered(&outs, balcony).len(), 1, "{outs:?}");
    assert_eq!(delivered(&outs, chamber).len(), 1, "{outs:?}");
    assert!(error_of(&outs, "nurse@example.com/kitchen", "m1").is_none());
    // chamber falls back to the default (it denies): only balcony gets the message, and
    // the nurse gets no error since it was delivered.
    privacy_answer(&mut w, chamber, "a3", "set", "<active/>").unwrap();
    let outs = w.send("nurse@example.com/kitchen", &to_bare(2));
    assert_eq!(delivered(&outs, balcony).len(), 1, "{outs:?}");
    assert!(delivered(&outs, chamber).is_empty(), "{outs:?}");
    assert!(error_of(&outs, "nurse@example.com/kitchen", "m2").is_none());
    // Presence to the bare JID likewise (presence-in): only balcony sees it.
    let outs = w.send(
        "nurse@example.com/kitchen",
        "<presence to='juliet@example.com'><show>dnd</show></presence>",
    );
    assert_eq!(delivered(&outs, balcony).len(), 1, "{outs:?}");
    assert!(delivered(&outs, chamber).is_empty(), "{outs:?}");
    // Every recipient refuses: service-unavailable (§2.14), nothing delivered.
    privacy_answer(&mut w, balcony, "a4", "set", "<active name='deny'/>").unwrap();
    let outs = w.send("nurse@example.com/kitchen", &to_bare(3));
    assert!(delivered(&outs, balcony).is_empty() && delivered(&outs, chamber).is_empty());
    let e = error_of(&outs, "nurse@example.com/kitchen", "m3").expect("bounced");
    assert_eq!(error_condition(e).as_deref(), Some("service-unavailable"));
    // Offline: the default decides whether the message is stored.
    for r in [balcony, chamber] {
        w.server.session_ended(&mut w.store, &full(r)).unwrap();
    }
    w.drain();
    let outs = w.send("nurse@example.com/kitchen", &to_bare(4));
    assert!(!outs.iter().any(|o| matches!(o, Output::Offline { .. })));
    let e = error_of(&outs, "nurse@example.com/kitchen", "m4").expect("bounced");
    assert_eq!(error_condition(e).as_deref(), Some("service-unavailable"));
}

/// XEP-0016 §2.11 (its note): `<presence-out/>` blocks presence notifications only — the
/// user's subscription requests and answers still leave; §2.13: an item naming no kind
/// blocks every stanza to and from the peer, subscriptions included (not-acceptable out,
/// §2.14; dropped without a word in).
#[test]
fn xep_0016_presence_out_spares_subscriptions_an_all_item_does_not() {
    let mut w = World::new();
    let balcony = "juliet@example.com/balcony";
    w.online(balcony, 0);
    w.online("romeo@example.com/orchard", 0);
    let presence_out = "<list name='po'><item type='jid' value='romeo@example.com' action='deny' order='1'><presence-out/><presence-in/></item></list>";
    privacy_answer(&mut w, balcony, "l1", "set", presence_out).unwrap();
    privacy_answer(&mut w, balcony, "a1", "set", "<active name='po'/>").unwrap();
    // Directed availability to romeo: not-acceptable.
    let outs = w.send(balcony, "<presence to='romeo@example.com' id='p1'/>");
    assert!(delivered(&outs, "romeo@example.com/orchard").is_empty());
    let e = error_of(&outs, balcony, "p1").expect("refused");
    assert_eq!(error_condition(e).as_deref(), Some("not-acceptable"));
    // A subscription request is no presence notification: it goes through both ways.
    let outs = w.send(
        balcony,
        "<presence to='romeo@example.com' type='subscribe' id='s1'/>",
    );
    assert!(error_of(&outs, balcony, "s1").is_none(), "{outs:?}");
    assert!(
        delivered(&outs, "romeo@example.com/orchard")
            .iter()
            .any(|e| e.attr("type") == Some("subscribe")),
        "{outs:?}"
    );
    let outs = w.send(
        "romeo@example.com/orchard",
        "<presence to='juliet@example.com' type='subscribe'/>",
    );
    assert!(
        delivered(&outs, balcony)
            .iter()
            .any(|e| e.attr("type") == Some("subscribe")),
        "{outs:?}"
    );
    // An item naming no kind: everything stops, both ways.
    let all = "<list name='all'><item type='jid' value='romeo@example.com' action='deny' order='1'/></list>";
    privacy_answer(&mut w, balcony, "l2", "set", all).unwrap();
    privacy_answer(&mut w, balcony, "a2", "set", "<active name='all'/>").unwrap();
    for (id, stanza) in [
        (
            "s2",
            "<presence to='romeo@example.com' type='subscribed' id='s2'/>",
        ),
        (
            "m1",
            "<message to='romeo@example.com' id='m1'><body>hi</body></message>",
        ),
        (
            "q1",
            "<iq to='romeo@example.com/orchard' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>",
        ),
    ] {
        let outs = w.send(balcony, stanza);
        assert!(
            delivered(&outs, "romeo@example.com/orchard").is_empty(),
            "{id}: {outs:?}"
        );
        let e = error_of(&outs, balcony, id).unwrap_or_else(|| panic!("{id}: {outs:?}"));
        assert_eq!(
            error_condition(e).as_deref(),
            Some("not-acceptable"),
            "{id}"
        );
        assert!(
            e.get_child("error", "jabber:client")
                .and_then(|x| x.get_child("blocked", "urn:xmpp:blocking:errors"))
                .is_none(),
            "a privacy list is not the blocklist"
        );
    }
    // romeo's unsubscribe is dropped: no error to him, nothing to juliet, no roster change.
    let before = w.state("juliet@example.com", "romeo@example.com");
    let outs = w.send(
        "romeo@example.com/orchard",
        "<presence to='juliet@example.com' type='unsubscribe' id='u1'/>",
    );
    assert!(delivered(&outs, balcony).is_empty(), "{outs:?}");
    assert!(
        error_of(&outs, "romeo@example.com/orchard", "u1").is_none(),
        "{outs:?}"
    );
    assert_eq!(w.state("juliet@example.com", "romeo@example.com"), before);
}

#[test]
fn xep_0016_presence_out_denied_contact_gets_no_broadcast() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    w.server.handle_remote_stanza(
        &mut w.store,
        &el("<presence type='subscribe' from='romeo@example.net' to='juliet@example.com'/>"),
    );
    w.drain();
    w.send(
        "juliet@example.com/balcony",
        "<presence type='subscribed' to='romeo@example.net'/>",
    );
    w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='l'><query xmlns='jabber:iq:privacy'><list name='invisible'>\
         <item type='subscription' value='from' action='deny' order='5'><presence-out/></item>\
         </list></query></iq>",
    );
    w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='a'><query xmlns='jabber:iq:privacy'><active name='invisible'/></query></iq>",
    );
    let outs = w.send(
        "juliet@example.com/balcony",
        "<presence><show>away</show></presence>",
    );
    assert!(
        routed(&outs)
            .iter()
            .all(|e| e.attr("to") != Some("romeo@example.net")),
        "{outs:?}"
    );
}

#[test]
fn privacy_hostile_lists() {
    let mut w = World::new();
    w.online("juliet@example.com/balcony", 0);
    // 10 000 items: refused with resource-constraint, quickly, and nothing stored.
    let mut big =
        String::from("<iq type='set' id='big'><query xmlns='jabber:iq:privacy'><list name='big'>");
    for i in 0..10_000 {
        let _ = write!(
            big,
            "<item type='jid' value='u{i}@example.org' action='deny' order='{i}'/>"
        );
    }
    big.push_str("</list></query></iq>");
    let outs = w.send("juliet@example.com/balcony", &big);
    let e = error_of(&outs, "juliet@example.com/balcony", "big").unwrap();
    assert_eq!(error_condition(e).as_deref(), Some("resource-constraint"));
    for (id, item) in [
        ("act", "<item action='shun' order='1'/>"),
        ("ord", "<item action='deny' order='x'/>"),
        (
            "dup",
            "<item action='deny' order='1'/><item action='allow' order='1'/>",
        ),
        (
            "typ",
            "<item type='color' value='red' action='deny' order='1'/>",
        ),
        ("kind", "<item action='deny' order='1'><telepathy/></item>"),
    ] {
        let outs = w.send(
            "juliet@example.com/balcony",
            &format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:privacy'><list name='x'>{item}</list></query></iq>"),
        );
        let e = error_of(&outs, "juliet@example.com/balcony", id).unwrap();
        assert_eq!(error_condition(e).as_deref(), Some("bad-request"), "{id}");
    }
    // A group the roster does not have: item-not-found.
    let outs = w.send(
        "juliet@example.com/balcony",
        "<iq type='set' id='grp'><query xmlns='jabber:iq:privacy'><list name='x'><item type='group' value='Nobody' action='deny' order='1'/></list></query></iq>",
    );
    let e = error_of(&outs, "juliet@example.com/balcony", "grp").unwrap();
    assert_eq!(error_condition(e).as_deref(), Some("item-not-found"));
}

/// XEP-0016 §2.2 / §2.11: a probe is answered with the presence of each available resource
/// whose own list in force lets presence out to the prober, not by the default list alone.
#[test]
fn xep_0016_probe_answers_follow_each_resource_list() {
    let mut w = World::new();
    let balcony = "juliet@example.com/balcony";
    let chamber = "juliet@example.com/chamber";
    w.online("romeo@example.com/orchard", 0);
    w.online(balcony, 0);
    w.online(chamber, 0);
    w.send(
        "romeo@example.com/orchard",
        "<presence type='subscribe' to='juliet@example.com'/>",
    );
    w.send(
        balcony,
        "<presence type='subscribed' to='romeo@example.com'/>",
    );
    let hide = "<list name='hide'><item type='jid' value='romeo@example.com' action='deny' order='1'><presence-out/></item></list>";
    privacy_answer(&mut w, balcony, "l", "set", hide).unwrap();
    privacy_answer(&mut w, balcony, "a", "set", "<active name='hide'/>").unwrap();
    // Romeo comes back: his server probes Juliet.
    w.send(
        "romeo@example.com/orchard",
        "<presence type='unavailable'/>",
    );
    let outs = w.send("romeo@example.com/orchard", "<presence/>");
    let to_romeo = delivered(&outs, "romeo@example.com/orchard");
    assert_eq!(presences_from(&to_romeo, chamber).len(), 1, "{outs:?}");
    assert!(presences_from(&to_romeo, balcony).is_empty(), "{outs:?}");
}

/// XEP-0016 §2.11 (its note): once a list in force blocks presence out to a subscribed
/// contact, the contact is sent `unavailable`; once it no longer does, the current presence.
#[test]
fn xep_0016_blocking_presence_out_sends_unavailable() {
    let mut w = World::new();
    let balcony = "juliet@example.com/balcony";
    w.online(balcony, 0);
    w.server.handle_remote_stanza(
        &mut w.store,
        &el("<presence type='subscribe' from='romeo@example.net' to='juliet@example.com'/>"),
    );
    w.drain();
    w.send(
        balcony,
        "<presence type='subscribed' to='romeo@example.net'/>",
    );
    w.send(balcony, "<presence><show>away</show></presence>");
    let hide = "<list name='hide'><item type='jid' value='romeo@example.net' action='deny' order='1'><presence-out/></item></list>";
    privacy_answer(&mut w, balcony, "l", "set", hide).unwrap();
    let to_romeo = |outs: &[Output]| -> Vec<Element> {
        routed(outs)
            .into_iter()
            .filter(|e| e.name() == "presence" && e.attr("to") == Some("romeo@example.net"))
            .cloned()
            .collect()
    };
    let outs = w.send(
        balcony,
        "<iq type='set' id='a1'><query xmlns='jabber:iq:privacy'><active name='hide'/></query></iq>",
    );
    let sent = to_romeo(&outs);
    assert_eq!(sent.len(), 1, "{outs:?}");
    assert_eq!(sent[0].attr("type"), Some("unavailable"));
    assert_eq!(sent[0].attr("from"), Some(balcony));
    // Editing the list so that it no longer matches romeo: his presence comes back.
    let other = "<list name='hide'><item type='jid' value='iago@example.net' action='deny' order='1'><presence-out/></item></list>";
    let outs = w.send(
        balcony,
        &format!("<iq type='set' id='l2'><query xmlns='jabber:iq:privacy'>{other}</query></iq>"),
    );
    let sent = to_romeo(&outs);
    assert_eq!(sent.len(), 1, "{outs:?}");
    assert_eq!(sent[0].attr("type"), None);
    assert_eq!(
        sent[0]
            .get_child("show", "jabber:client")
            .map(Element::text),
        Some("away".to_owned())
    );
    // Changes that do not touch romeo send him nothing.
    let outs = w.send(
        balcony,
        "<iq type='set' id='a2'><query xmlns='jabber:iq:privacy'><active/></query></iq>",
    );
    assert!(to_romeo(&outs).is_empty(), "{outs:?}");
}
