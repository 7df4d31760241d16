//! Property test: two users on two servers exchange random subscription actions over an
//! at-least-once, in-order server-to-server link (stanzas lost and retried arrive twice). After
//! every action the network is drained and the two servers must agree (RFC 6121 §3, Appendix
//! A): Alice has `to` exactly when Bob has `from` and vice versa, and the pending flags mirror
//! each other. No available presence may reach a user who is not subscribed to the sender, and
//! each online client's roster cache (fed only by results and pushes) matches its server.
#![allow(clippy::unwrap_used, clippy::panic)] // test harness

use std::collections::VecDeque;

use minidom::Element;
use proptest::prelude::*;
use xmpp_im::{
    Iq, IqPayload, MemoryStore, Output, PushOutcome, RosterCache, RosterStore, Server,
    ServerConfig, Stanza, State, Subscription,
};
use xmpp_jid::{BareJid, FullJid};

#[derive(Debug, Clone, Copy)]
enum Action {
    Subscribe,
    Approve,
    Deny,
    Unsubscribe,
    Remove,
    Online,
    Offline,
    Presence,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Subscribe),
        Just(Action::Approve),
        Just(Action::Deny),
        Just(Action::Unsubscribe),
        Just(Action::Remove),
        Just(Action::Online),
        Just(Action::Offline),
        Just(Action::Presence),
    ]
}

struct Side {
    server: Server,
    store: MemoryStore,
    user: BareJid,
    session: FullJid,
    online: bool,
    cache: RosterCache,
}

struct World {
    sides: [Side; 2],
    /// In-flight stanzas, by destination side.
    links: [VecDeque<Element>; 2],
    dup: Vec<bool>,
    dup_at: usize,
}

fn side(domain: &str, user: &str) -> Side {
    let user = BareJid::new(&format!("{user}@{domain}")).unwrap();
    let mut store = MemoryStore::new();
    store.add_account(user.clone());
    Side {
        server: Server::new(ServerConfig::new(domain)),
        store,
        session: user.with_resource("res").unwrap(),
        cache: RosterCache::new(user.clone()),
        user,
        online: false,
    }
}

impl World {
    fn new(dup: Vec<bool>) -> Self {
        Self {
            sides: [side("a.example", "alice"), side("b.example", "bob")],
            links: [VecDeque::new(), VecDeque::new()],
            dup,
            dup_at: 0,
        }
    }

    fn other(i: usize) -> usize {
        1 - i
    }

    fn send(&mut self, i: usize, stanza: &Element) {
        let s = &mut self.sides[i];
        s.server
            .handle_session_stanza(&mut s.store, &s.session, stanza)
            .unwrap();
        self.pump();
    }

    fn act(&mut self, i: usize, action: Action) {
        let contact: BareJid = self.sides[Self::other(i)].user.clone();
        let presence = |t: &str| -> Element {
            format!("<presence xmlns='jabber:client' type='{t}' to='{contact}'/>")
                .parse()
                .unwrap()
        };
        match action {
            Action::Subscribe => self.send_if_online(i, &presence("subscribe")),
            Action::Approve => self.send_if_online(i, &presence("subscribed")),
            Action::Deny => self.send_if_online(i, &presence("unsubscribed")),
            Action::Unsubscribe => self.send_if_online(i, &presence("unsubscribe")),
            Action::Remove => {
                let iq = RosterCache::remove_item("rm", contact);
                self.send_if_online(i, &iq.to_element());
            }
            Action::Presence => {
                self.send_if_online(i, &"<presence xmlns='jabber:client'/>".parse().unwrap());
            }
            Action::Online => {
                if !self.sides[i].online {
                    let s = &mut self.sides[i];
                    s.server.session_started(s.session.clone()).unwrap();
                    s.online = true;
                    let get = s.cache.request("roster", true).to_element();
                    self.send(i, &get);
                    self.send(i, &"<presence xmlns='jabber:client'/>".parse().unwrap());
                }
            }
            Action::Offline => {
                if self.sides[i].online {
                    let s = &mut self.sides[i];
                    s.online = false;
                    s.server.session_ended(&mut s.store, &s.session).unwrap();
                    self.pump();
                }
            }
        }
    }

    fn send_if_online(&mut self, i: usize, stanza: &Element) {
        if self.sides[i].online {
            self.send(i, stanza);
        }
    }

    fn state(&self, i: usize) -> State {
        let s = &self.sides[i];
        let contact = &self.sides[Self::other(i)].user;
        s.store
            .entry(&s.user, contact)
            .map_or(State::None, |e| e.state.state)
    }

    /// Drains both servers' outputs and both links until nothing moves.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..2 {
                while let Some(out) = self.sides[i].server.poll_output() {
                    moved = true;
                    self.output(i, out);
                }
            }
            for dest in 0..2 {
                if let Some(stanza) = self.links[dest].pop_front() {
                    moved = true;
                    let times = if self.next_dup() { 2 } else { 1 };
                    for _ in 0..times {
                        let s = &mut self.sides[dest];
                        s.server.handle_remote_stanza(&mut s.store, &stanza);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the two servers never went quiet");
    }

    fn next_dup(&mut self) -> bool {
        if self.dup.is_empty() {
            return false;
        }
        self.dup_at = (self.dup_at + 1) % self.dup.len();
        self.dup[self.dup_at]
    }

    fn output(&mut self, i: usize, out: Output) {
        match out {
            Output::Route(el) => {
                let to = el.attr("to").unwrap_or_default();
                let dest = usize::from(!to.ends_with("a.example"));
                assert_ne!(dest, i, "local stanzas never leave the server");
                self.links[dest].push_back(el);
            }
            Output::Deliver { to, stanza } => {
                assert_eq!(to, self.sides[i].session);
                self.client_receives(i, &stanza);
            }
            _ => {}
        }
    }

    fn client_receives(&mut self, i: usize, stanza: &Element) {
        let parsed = Stanza::try_from(stanza).unwrap();
        match parsed {
            Stanza::Presence(p) => {
                let from = p.header.from.as_ref().unwrap();
                let o = Self::other(i);
                if p.presence_type.is_none() && from.to_bare() == self.sides[o].user {
                    // No leak: the sender's server grants `from` to this user.
                    assert!(
                        self.state(o).subscription().has_from(),
                        "presence leaked to {} while the sender's state is {}",
                        self.sides[i].user,
                        self.state(o)
                    );
                }
            }
            Stanza::Iq(iq) => self.client_iq(i, &iq),
            _ => {}
        }
    }

    fn client_iq(&mut self, i: usize, iq: &Iq) {
        let s = &mut self.sides[i];
        match &iq.payload {
            IqPayload::Set(_) => match s.cache.handle_push(iq) {
                PushOutcome::Applied { reply, .. } => {
                    assert_eq!(reply.iq_type(), xmpp_im::IqType::Result);
                }
                other => panic!("the own server's push was rejected: {other:?}"),
            },
            IqPayload::Result(_) if iq.id() == "roster" => {
                s.cache.handle_result(iq).unwrap();
            }
            _ => {}
        }
    }

    fn check(&self) {
        let (a, b) = (self.state(0), self.state(1));
        let ctx = format!("alice: {a}, bob: {b}");
        assert_eq!(
            a.subscription().has_to(),
            b.subscription().has_from(),
            "{ctx}"
        );
        assert_eq!(
            a.subscription().has_from(),
            b.subscription().has_to(),
            "{ctx}"
        );
        assert_eq!(a.pending_out(), b.pending_in(), "{ctx}");
        assert_eq!(a.pending_in(), b.pending_out(), "{ctx}");
        for i in 0..2 {
            let s = &self.sides[i];
            if !s.online {
                continue;
            }
            let contact = &self.sides[Self::other(i)].user;
            let server = s.store.entry(&s.user, contact).filter(|e| e.in_roster);
            let cached = s.cache.get(contact);
            match (server, cached) {
                (None, None) => {}
                (Some(e), Some(item)) => {
                    assert_eq!(item.subscription, e.state.state.subscription(), "{ctx}");
                    assert_eq!(item.ask, e.state.state.pending_out(), "{ctx}");
                }
                (server, cached) => {
                    panic!("roster cache out of sync: server {server:?}, cache {cached:?}")
                }
            }
            if let Some(item) = cached {
                assert!(!item.remove, "removed items leave the cache");
                if item.subscription == Subscription::Both {
                    assert!(!item.ask, "both never has a pending request");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn two_servers_stay_consistent_and_leak_no_presence(
        actions in proptest::collection::vec((0usize..2, action()), 1..40),
        dup in proptest::collection::vec(any::<bool>(), 0..8),
    ) {
        let mut w = World::new(dup);
        w.act(0, Action::Online);
        w.act(1, Action::Online);
        w.check();
        for (who, a) in actions {
            w.act(who, a);
            w.check();
        }
    }
}

#[test]
fn a_scripted_run_reaches_both() {
    let mut w = World::new(vec![true, false]);
    w.act(0, Action::Online);
    w.act(1, Action::Online);
    for (who, a) in [
        (0, Action::Subscribe),
        (1, Action::Approve),
        (1, Action::Subscribe),
        (0, Action::Approve),
    ] {
        w.act(who, a);
        w.check();
    }
    assert_eq!(w.state(0), State::Both);
    assert_eq!(w.state(1), State::Both);
}
