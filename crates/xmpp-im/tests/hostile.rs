//! Hostile input: arbitrary stanzas from arbitrary senders (local sessions and a remote
//! server) never panic the server, every delivery goes to a session that exists, and no
//! available presence of a local user reaches anyone without a `from` subscription or
//! directed presence. (The same program drives the `im_server` fuzz target.)
#![allow(clippy::unwrap_used, clippy::panic)] // test harness

use std::collections::BTreeSet;

use minidom::Element;
use proptest::prelude::*;
use xmpp_im::{MemoryStore, Output, RosterStore, Server, ServerConfig};
use xmpp_jid::{BareJid, FullJid, Jid};

const SESSIONS: [&str; 3] = [
    "juliet@example.com/balcony",
    "juliet@example.com/chamber",
    "romeo@example.com/orchard",
];
const ADDRESSES: [&str; 10] = [
    "",
    "example.com",
    "juliet@example.com",
    "juliet@example.com/balcony",
    "juliet@example.com/gone",
    "romeo@example.com",
    "nurse@example.com",
    "tybalt@example.com",
    "mercutio@example.net",
    "mercutio@example.net/r",
];
/// Remote senders: the stream layer has verified that they are not local addresses.
const REMOTE_FROM: [&str; 4] = [
    "",
    "example.net",
    "mercutio@example.net",
    "mercutio@example.net/r",
];
const NAMES: [&str; 4] = ["message", "presence", "iq", "other"];
const TYPES: [&str; 16] = [
    "",
    "chat",
    "error",
    "groupchat",
    "headline",
    "normal",
    "unavailable",
    "subscribe",
    "subscribed",
    "unsubscribe",
    "unsubscribed",
    "probe",
    "get",
    "set",
    "result",
    "bogus",
];
const CHILDREN: [&str; 9] = [
    "",
    "<body>hi</body>",
    "<priority>-1</priority>",
    "<priority>5</priority>",
    "<priority>300</priority>",
    "<query xmlns='jabber:iq:roster'/>",
    "<query xmlns='jabber:iq:roster'><item jid='romeo@example.com' name='R'><group>G</group></item></query>",
    "<query xmlns='jabber:iq:roster'><item jid='nurse@example.com' subscription='remove'/></query>",
    "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
];

#[derive(Debug, Clone)]
enum Step {
    Toggle(usize),
    Stanza {
        sender: usize,
        name: usize,
        ty: usize,
        to: usize,
        from: usize,
        child: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0usize..3).prop_map(Step::Toggle),
        6 => (0usize..4, 0usize..4, 0usize..16, 0usize..10, 0usize..10, 0usize..9).prop_map(
            |(sender, name, ty, to, from, child)| Step::Stanza { sender, name, ty, to, from, child }
        ),
    ]
}

struct Harness {
    server: Server,
    store: MemoryStore,
    online: BTreeSet<&'static str>,
    directed: BTreeSet<(String, String)>,
}

impl Harness {
    fn drain(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Deliver { to, stanza } => {
                    assert!(
                        self.online.contains(to.as_str()),
                        "delivery to a missing session"
                    );
                    self.check_presence(&stanza, Some(to.to_bare()));
                }
                Output::Route(stanza) => {
                    let to = stanza.attr("to").and_then(|t| Jid::new(t).ok());
                    assert!(
                        to.is_none_or(|t| !self.server.is_local(t.domain())),
                        "local stanzas are processed, not routed"
                    );
                    self.check_presence(&stanza, None);
                }
                _ => {}
            }
        }
    }

    fn check_presence(&self, stanza: &Element, delivered_to: Option<BareJid>) {
        if stanza.name() != "presence" || stanza.attr("type").is_some() {
            return;
        }
        let (Some(from), Some(to)) = (stanza.attr("from"), stanza.attr("to")) else {
            return;
        };
        let (from, to) = (Jid::new(from).unwrap(), Jid::new(to).unwrap());
        let sender = from.to_bare();
        let recipient = delivered_to.unwrap_or_else(|| to.to_bare());
        if sender == recipient || !self.server.is_local(sender.domain()) {
            return;
        }
        let granted = self
            .store
            .entry(&sender, &recipient)
            .is_some_and(|e| e.state.state.subscription().has_from());
        let directed = self.directed.iter().any(|(f, t)| {
            f == from.as_str() && Jid::new(t).is_ok_and(|t| t.to_bare() == recipient)
        });
        assert!(
            granted || directed,
            "presence of {from} leaked to {recipient}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_stanzas_never_panic_or_leak(steps in proptest::collection::vec(step(), 1..60)) {
        let mut store = MemoryStore::new();
        for u in ["juliet@example.com", "romeo@example.com", "nurse@example.com"] {
            store.add_account(BareJid::new(u).unwrap());
        }
        let mut h = Harness {
            server: Server::new(ServerConfig::new("example.com")),
            store,
            online: BTreeSet::new(),
            directed: BTreeSet::new(),
        };
        for step in steps {
            match step {
                Step::Toggle(i) => {
                    let jid = SESSIONS[i];
                    let full = FullJid::new(jid).unwrap();
                    if h.online.insert(jid) {
                        h.server.session_started(full).unwrap();
                    } else {
                        h.server.session_ended(&mut h.store, &full).unwrap();
                        h.online.remove(jid);
                        h.directed.retain(|(f, _)| f != jid);
                    }
                }
                Step::Stanza { sender, name, ty, to, from, child } => {
                    let (name, ty, to, from) = (NAMES[name], TYPES[ty], ADDRESSES[to], REMOTE_FROM[from % 4]);
                    let attr = |name: &str, value: &str| {
                        if value.is_empty() { String::new() } else { format!(" {name}='{value}'") }
                    };
                    let from = if sender == 3 { from } else { "" };
                    let xml = format!(
                        "<{name} xmlns='jabber:client' id='f'{}{}{}>{}</{name}>",
                        attr("type", ty),
                        attr("to", to),
                        attr("from", from),
                        CHILDREN[child]
                    );
                    let el: Element = xml.parse().unwrap();
                    if sender == 3 {
                        h.server.handle_remote_stanza(&mut h.store, &el);
                    } else {
                        let jid = SESSIONS[sender];
                        if name == "presence" && ty.is_empty() && !to.is_empty() {
                            h.directed.insert((jid.to_owned(), to.to_owned()));
                        }
                        let result = h.server.handle_session_stanza(
                            &mut h.store,
                            &FullJid::new(jid).unwrap(),
                            &el,
                        );
                        prop_assert_eq!(result.is_ok(), h.online.contains(jid));
                    }
                }
            }
            h.drain();
        }
    }
}
