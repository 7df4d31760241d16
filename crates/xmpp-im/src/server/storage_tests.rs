//! Storage the Sans-IO way: a host that answers late, out of order, or fails.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)] // tests

use std::collections::BTreeMap;

use minidom::Element;
use proptest::prelude::*;
use xmpp_jid::{BareJid, FullJid};
use xmpp_xml::StanzaErrorCondition;

use crate::store::{Change, LoadId, MemoryStore, RosterStore, StoreError, WriteId};
use crate::{Output, Server, ServerConfig};

fn full(s: &str) -> FullJid {
    FullJid::new(s).unwrap()
}

fn bare(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn el(xml: &str) -> Element {
    xml.parse().unwrap()
}

const USERS: [&str; 4] = ["a", "b", "c", "d"];

/// Accounts a..d exist; a, b and c are connected as `/r`, d never is (an offline contact).
fn world(config: ServerConfig) -> (Server, MemoryStore) {
    let mut store = MemoryStore::new();
    for u in USERS {
        store.add_account(bare(&format!("{u}@example.com")));
    }
    let mut server = Server::new(config);
    for u in &USERS[..3] {
        server
            .session_started(full(&format!("{u}@example.com/r")))
            .unwrap();
    }
    (server, store)
}

/// A storage request the host has not answered yet.
#[derive(Debug)]
enum Request {
    Load(LoadId, BareJid),
    Write(WriteId, Vec<Change>),
}

/// A host that answers whenever it is told to, in any order.
struct LateHost {
    server: Server,
    store: MemoryStore,
    waiting: Vec<Request>,
    seen: Vec<Output>,
}

impl LateHost {
    fn new(config: ServerConfig) -> Self {
        let (server, store) = world(config);
        Self {
            server,
            store,
            waiting: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn collect(&mut self) {
        while let Some(o) = self.server.poll_output() {
            match o {
                Output::Load { id, user } => self.waiting.push(Request::Load(id, user)),
                Output::Write { id, changes } => self.waiting.push(Request::Write(id, changes)),
                other => self.seen.push(other),
            }
        }
    }

    fn input(&mut self, input: &Input) {
        match input {
            Input::Session(from, xml) => {
                self.server
                    .handle_client_stanza(&full(from), &el(xml))
                    .unwrap();
            }
            Input::Remote(xml) => self.server.handle_server_stanza(&el(xml)),
            Input::Reconnect(jid) => {
                self.server.end_session(&full(jid)).unwrap();
                self.server.session_started(full(jid)).unwrap();
            }
        }
        self.collect();
    }

    /// Answers the waiting request at `index` (modulo), a write as durable.
    fn answer(&mut self, index: usize) {
        if self.waiting.is_empty() {
            return;
        }
        let request = self.waiting.remove(index % self.waiting.len());
        match request {
            Request::Load(id, user) => {
                let data = self.store.load(&user);
                self.server.handle_load(id, Ok(data)).unwrap();
            }
            Request::Write(id, changes) => {
                for c in changes {
                    self.store.apply(c);
                }
                self.server.handle_write(id, Ok(())).unwrap();
            }
        }
        self.collect();
    }

    fn answer_all(&mut self) {
        while !self.waiting.is_empty() {
            self.answer(0);
        }
        assert_eq!(self.server.storage_in_flight(), 0);
    }
}

#[derive(Debug, Clone)]
enum Input {
    Session(String, String),
    Remote(String),
    /// The session ends (its unavailable broadcast is a unit of work) and binds again. Not
    /// among the proptest's inputs: the stanzas of a session that ends while they wait are
    /// dropped, where an immediate store ran them before it ended.
    Reconnect(String),
}

/// Runs `inputs` with a synchronous store answering at once.
fn immediate(inputs: &[Input]) -> (Vec<Output>, MemoryStore, u64) {
    let (mut server, mut store) = world(ServerConfig::new("example.com"));
    let mut seen = Vec::new();
    for i in inputs {
        match i {
            Input::Session(from, xml) => server
                .handle_session_stanza(&mut store, &full(from), &el(xml))
                .unwrap(),
            Input::Remote(xml) => server.handle_remote_stanza(&mut store, &el(xml)),
            Input::Reconnect(jid) => {
                server.session_ended(&mut store, &full(jid)).unwrap();
                server.session_started(full(jid)).unwrap();
            }
        }
        seen.extend(std::iter::from_fn(|| server.poll_output()));
    }
    (seen, store, server.cache.misses())
}

/// The outputs each local account sees, in order, with roster push ids (a global counter,
/// numbered in run order) made equal.
fn per_account(outputs: &[Output]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in outputs {
        let (key, stanza) = match o {
            Output::Deliver { to, stanza } => (to.to_bare().to_string(), &**stanza),
            Output::Route(stanza) => (
                format!("route from {}", stanza.attr("from").unwrap_or_default()),
                stanza,
            ),
            Output::Offline { user, stanza } => (format!("offline {user}"), stanza),
            Output::Unhandled(stanza) => ("unhandled".to_owned(), stanza),
            other => panic!("storage output left to the client side: {other:?}"),
        };
        let mut copy = stanza.clone();
        if copy.attr("id").is_some_and(|id| id.starts_with("push-")) {
            copy.set_attr(
                minidom::rxml::Namespace::NONE,
                crate::stanza::header::nc("id"),
                "push",
            );
        }
        map.entry(key).or_default().push(String::from(&copy));
    }
    map
}

fn session(from: &str, xml: &str) -> Input {
    Input::Session(format!("{from}@example.com/r"), xml.to_owned())
}

fn is_error(o: &Output, to: &str, condition: StanzaErrorCondition) -> bool {
    match o {
        Output::Deliver { to: t, stanza } => {
            t.as_str() == to
                && stanza.attr("type") == Some("error")
                && stanza
                    .get_child("error", stanza.ns().as_str())
                    .is_some_and(|e| {
                        e.get_child(condition.as_str(), xmpp_xml::conditions::NS_XMPP_STANZAS)
                            .is_some()
                    })
        }
        _ => false,
    }
}

/// Loads answered late and in reverse order across accounts: each account still sees its
/// results in order, the roster push before the iq result (RFC 6121 §2.3.2), and nothing is
/// acknowledged before its write is durable.
#[test]
fn late_out_of_order_loads_keep_each_account_in_order() {
    let inputs = vec![
        session(
            "a",
            "<iq xmlns='jabber:client' type='get' id='g0'><query xmlns='jabber:iq:roster'/></iq>",
        ),
        session(
            "a",
            "<iq xmlns='jabber:client' type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='d@example.com' name='D'/></query></iq>",
        ),
        session(
            "b",
            "<presence xmlns='jabber:client' type='subscribe' to='d@example.com'/>",
        ),
        session(
            "a",
            "<iq xmlns='jabber:client' type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>",
        ),
        session(
            "c",
            "<message xmlns='jabber:client' to='d@example.com' id='m1'><body>hi</body></message>",
        ),
        session(
            "b",
            "<iq xmlns='jabber:client' type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>",
        ),
    ];
    let mut host = LateHost::new(ServerConfig::new("example.com"));
    for i in &inputs {
        host.input(i);
    }
    // Nothing can run before a load is answered.
    assert!(host.seen.is_empty(), "{:?}", host.seen);
    let loads = host.waiting.len();
    assert_eq!(loads, 4, "one load per account: {:?}", host.waiting);
    // Answer the newest request first, over and over.
    while !host.waiting.is_empty() {
        let last = host.waiting.len() - 1;
        if let Some(Request::Write(..)) = host.waiting.last() {
            // Before the write of a's roster set is durable, a has no result.
            assert!(!host.seen.iter().any(|o| matches!(o,
                Output::Deliver { stanza, .. } if stanza.attr("id") == Some("s1"))));
        }
        host.answer(last);
    }
    let (expected, store, misses) = immediate(&inputs);
    assert_eq!(per_account(&host.seen), per_account(&expected));
    assert_eq!(host.store, store);
    assert_eq!((host.server.cache.misses(), misses), (0, 0));
    // a: its roster, the push, then the result of s1, then the roster with D.
    let a: Vec<&Element> = host
        .seen
        .iter()
        .filter_map(|o| match o {
            Output::Deliver { to, stanza } if to.as_str() == "a@example.com/r" => Some(&**stanza),
            _ => None,
        })
        .collect();
    let ids: Vec<&str> = a.iter().map(|s| s.attr("id").unwrap_or_default()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids[0], "g0");
    assert!(ids[1].starts_with("push-"));
    assert_eq!(&ids[2..], ["s1", "g1"]);
    assert!(String::from(a[3]).contains("d@example.com"));
    // c's message to the offline d is stored offline; b's request waits in d's roster.
    assert!(
        host.seen
            .iter()
            .any(|o| matches!(o, Output::Offline { user, .. } if user.as_str() == "d@example.com"))
    );
    let entry = store
        .entry(&bare("d@example.com"), &bare("b@example.com"))
        .unwrap();
    assert!(entry.state.state.pending_in());
}

/// A unit queued behind others is looked at alone: with an account's load outstanding and
/// its stanzas piling up, each input costs the same, not a step per unit already waiting.
/// Whatever waited runs as an immediate store would have run it once the load is answered.
#[test]
fn queuing_behind_waiting_units_costs_the_same_per_input() {
    const N: usize = 250;
    let inputs: Vec<Input> = (0..N)
        .map(|n| {
            // Alternating between two accounts: each queues behind the other's units too.
            let (from, to) = if n % 2 == 0 { ("a", "b") } else { ("c", "d") };
            session(
                from,
                &format!("<message xmlns='jabber:client' to='{to}@example.com' id='m{n}'><body>{n}</body></message>"),
            )
        })
        .collect();
    let mut host = LateHost::new(ServerConfig::new("example.com"));
    for i in &inputs {
        host.input(i);
    }
    assert_eq!(host.server.storage_waiting(), N);
    let computed = host.server.storage.needs_computed.get();
    // One look per input (a pass over every waiting unit per input was N²/2 of them).
    assert!(
        computed <= 2 * N as u64,
        "{computed} needs worked out for {N} inputs"
    );
    host.answer_all();
    let (expected, store, _) = immediate(&inputs);
    assert_eq!(per_account(&host.seen), per_account(&expected));
    assert_eq!(host.store, store);
}

/// A stanza that waited for storage while its session ended belongs to that session: it is
/// not applied to a new session bound to the same JID meanwhile (which would then be
/// available without having sent presence, RFC 6121 §4.2).
#[test]
fn a_waiting_stanza_is_not_applied_to_a_later_session_of_its_jid() {
    let mut host = LateHost::new(ServerConfig::new("example.com"));
    host.input(&session("a", "<presence xmlns='jabber:client'/>"));
    host.input(&session(
        "a",
        "<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    ));
    assert_eq!(host.server.storage_waiting(), 2);
    host.input(&Input::Reconnect("a@example.com/r".to_owned()));
    host.answer_all();
    let a = full("a@example.com/r");
    assert!(!host.server.is_available(&a));
    // Nothing of the old session's reached the new one: no roster result, no presence.
    let to_a = host
        .seen
        .iter()
        .filter(|o| matches!(o, Output::Deliver { to, .. } if to == &a))
        .count();
    assert_eq!(to_a, 0, "{:?}", host.seen);
    // The new session's own presence makes it available.
    host.input(&session("a", "<presence xmlns='jabber:client'/>"));
    host.answer_all();
    assert!(host.server.is_available(&a));
}

/// Work marks bracket the units an input queued: each waits until its own loads are in, not
/// until the machine has nothing queued; its write is output by the call that runs it.
#[test]
fn work_marks_tell_which_inputs_still_wait() {
    let mut host = LateHost::new(ServerConfig::new("example.com"));
    let mut marks = Vec::new();
    for (user, id) in [("a", "s1"), ("b", "s2"), ("c", "s3")] {
        let before = host.server.work_mark();
        host.input(&session(
            user,
            &format!("<iq xmlns='jabber:client' type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='d@example.com'/></query></iq>"),
        ));
        marks.push((before, host.server.work_mark()));
    }
    let queued = |host: &LateHost| -> Vec<bool> {
        marks
            .iter()
            .map(|&(from, to)| host.server.queued_between(from, to) > 0)
            .collect()
    };
    assert_eq!(queued(&host), [true, true, true]);
    assert!(marks.iter().all(|(from, to)| from < to));
    let writes = |host: &LateHost| {
        host.waiting
            .iter()
            .filter(|r| matches!(r, Request::Write(..)))
            .count()
    };
    // b's account is in: b's unit runs and its write leaves in the same call; a and c, whose
    // loads are still out, wait on (the machine is not idle, which is not what they wait for).
    let b = host
        .waiting
        .iter()
        .position(|r| matches!(r, Request::Load(_, user) if user.as_str() == "b@example.com"))
        .unwrap();
    host.answer(b);
    assert_eq!(queued(&host), [true, false, true]);
    assert_eq!(writes(&host), 1);
    assert!(host.server.storage_waiting() > 0);
    // An empty bracket holds nothing; one around everything holds what still waits.
    let (first, last) = (marks[0].0, marks[2].1);
    assert_eq!(host.server.queued_between(last, last), 0);
    assert_eq!(host.server.queued_between(first, last), 2);
    assert_eq!(
        host.server.queued_between(crate::WorkMark(0), last),
        host.server.storage_waiting()
    );
    host.answer_all();
    assert_eq!(queued(&host), [false, false, false]);
    assert_eq!(host.server.queued_between(first, last), 0);
}

/// Each output says which unit made it: a unit's write, and what it produced (released once
/// the write is durable, or at once when it wrote nothing); loads and what no unit made say
/// none.
#[test]
fn outputs_name_the_unit_that_made_them() {
    let (mut server, store) = world(ServerConfig::new("example.com"));
    let take = |server: &mut Server| -> Vec<(Output, Option<crate::WorkMark>)> {
        std::iter::from_fn(|| server.poll_output_made()).collect()
    };
    let a = full("a@example.com/r");
    let set = el(
        "<iq xmlns='jabber:client' type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='d@example.com'/></query></iq>",
    );
    let get =
        el("<iq xmlns='jabber:client' type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>");
    let first = server.work_mark();
    server.handle_client_stanza(&a, &set).unwrap();
    let second = server.work_mark();
    server.handle_client_stanza(&a, &get).unwrap();
    let loads = take(&mut server);
    assert!(
        matches!(loads.as_slice(), [(Output::Load { .. }, None)]),
        "{loads:?}"
    );
    let Output::Load { id, user } = &loads[0].0 else {
        unreachable!()
    };
    server.handle_load(*id, Ok(store.load(user))).unwrap();
    // The set ran and wrote; the get waits behind the write on a's account.
    let ran = take(&mut server);
    assert!(
        matches!(ran.as_slice(), [(Output::Write { .. }, Some(m))] if *m == first),
        "{ran:?}"
    );
    let Output::Write { id, .. } = &ran[0].0 else {
        unreachable!()
    };
    server.handle_write(*id, Ok(())).unwrap();
    // The set's result, released, then the get's (it wrote nothing), with the new item.
    let released = take(&mut server);
    let makers: Vec<Option<crate::WorkMark>> = released.iter().map(|(_, m)| *m).collect();
    assert_eq!(makers, [Some(first), Some(second)], "{released:?}");
    let Output::Deliver { stanza, .. } = &released[1].0 else {
        panic!("{released:?}")
    };
    assert!(String::from(&**stanza).contains("d@example.com"));
    assert!(server.poll_output_made().is_none());
}

/// A write the store cannot make durable: the client gets `internal-server-error` instead of
/// the push and the result, and the roster read again is the store's.
#[test]
fn failed_write_answers_internal_server_error() {
    let mut host = LateHost::new(ServerConfig::new("example.com"));
    host.input(&session("a", "<iq xmlns='jabber:client' type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='b@example.com'/></query></iq>"));
    host.answer(0); // the load
    let Some(Request::Write(id, changes)) = host.waiting.pop() else {
        panic!("no write: {:?}", host.waiting);
    };
    assert!(changes.iter().any(
        |c| matches!(c, Change::PutEntry { entry, .. } if entry.jid.as_str() == "b@example.com")
    ));
    assert!(
        host.seen.is_empty(),
        "acknowledged before durable: {:?}",
        host.seen
    );
    host.server
        .handle_write(id, Err(StoreError("disk full".into())))
        .unwrap();
    host.collect();
    assert_eq!(host.seen.len(), 1, "{:?}", host.seen);
    assert!(is_error(
        &host.seen[0],
        "a@example.com/r",
        StanzaErrorCondition::InternalServerError
    ));
    assert_eq!(host.seen[0].clone_stanza_id(), Some("s1".to_owned()));
    // The next request loads the account again and sees no item.
    host.seen.clear();
    host.input(&session(
        "a",
        "<iq xmlns='jabber:client' type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>",
    ));
    assert!(
        matches!(host.waiting.as_slice(), [Request::Load(..)]),
        "{:?}",
        host.waiting
    );
    host.answer_all();
    let [Output::Deliver { stanza, .. }] = host.seen.as_slice() else {
        panic!("{:?}", host.seen);
    };
    assert!(!String::from(&**stanza).contains("b@example.com"));
    // A stale id is the host's mistake, not a panic.
    assert_eq!(
        host.server.handle_write(id, Ok(())),
        Err(crate::UsageError::UnknownRequest)
    );
}

/// A load that fails answers the parked work `internal-server-error` too.
#[test]
fn failed_load_answers_internal_server_error() {
    let mut host = LateHost::new(ServerConfig::new("example.com"));
    host.input(&session(
        "a",
        "<message xmlns='jabber:client' to='b@example.com' id='m1'><body>x</body></message>",
    ));
    let Some(Request::Load(id, _)) = host.waiting.pop() else {
        panic!("{:?}", host.waiting);
    };
    host.server
        .handle_load(id, Err(StoreError("gone".into())))
        .unwrap();
    host.collect();
    assert!(
        host.seen.iter().any(|o| is_error(
            o,
            "a@example.com/r",
            StanzaErrorCondition::InternalServerError
        )),
        "{:?}",
        host.seen
    );
    assert!(
        !host
            .seen
            .iter()
            .any(|o| matches!(o, Output::Deliver { to, .. } if to.as_str() == "b@example.com/r"))
    );
}

/// Beyond `max_parked` units waiting on one account, a stanza is refused with
/// `resource-constraint`; the parked ones still run, in order, once the load is answered.
#[test]
fn park_bound_gives_resource_constraint() {
    let mut config = ServerConfig::new("example.com");
    config.max_parked = 2;
    let mut host = LateHost::new(config);
    for i in 0..3 {
        host.input(&session("a", &format!("<message xmlns='jabber:client' to='remote@other.test' id='m{i}'><body>x</body></message>")));
    }
    assert_eq!(host.seen.len(), 1, "{:?}", host.seen);
    assert!(is_error(
        &host.seen[0],
        "a@example.com/r",
        StanzaErrorCondition::ResourceConstraint
    ));
    assert_eq!(host.seen[0].clone_stanza_id(), Some("m2".to_owned()));
    host.seen.clear();
    host.answer_all();
    let ids: Vec<_> = host
        .seen
        .iter()
        .filter_map(Output::clone_stanza_id)
        .collect();
    assert_eq!(ids, ["m0", "m1"]);
    // Room again once they ran.
    host.input(&session(
        "a",
        "<message xmlns='jabber:client' to='remote@other.test' id='m3'><body>x</body></message>",
    ));
    assert!(
        host.seen
            .iter()
            .any(|o| o.clone_stanza_id().as_deref() == Some("m3"))
    );
}

impl Output {
    fn clone_stanza_id(&self) -> Option<String> {
        match self {
            Output::Deliver { stanza, .. } => stanza.attr("id").map(str::to_owned),
            Output::Route(stanza) | Output::Offline { stanza, .. } => {
                stanza.attr("id").map(str::to_owned)
            }
            _ => None,
        }
    }
}

fn op() -> impl Strategy<Value = Input> {
    let user = prop::sample::select(&USERS[..3]);
    let contact = prop::sample::select(vec!["a", "b", "c", "d", "ghost", "x@remote.test"]);
    (user, contact, 0..14u8, 0..3u8).prop_map(|(u, c, kind, n)| {
        let c = if c.contains('@') { c.to_owned() } else { format!("{c}@example.com") };
        let xml = match kind {
            0 => format!("<iq xmlns='jabber:client' type='set' id='i{n}'><query xmlns='jabber:iq:roster'><item jid='{c}' name='n{n}'/></query></iq>"),
            1 => format!("<iq xmlns='jabber:client' type='set' id='i{n}'><query xmlns='jabber:iq:roster'><item jid='{c}' subscription='remove'/></query></iq>"),
            2 => format!("<presence xmlns='jabber:client' type='subscribe' to='{c}'/>"),
            3 => format!("<presence xmlns='jabber:client' type='subscribed' to='{c}'/>"),
            4 => format!("<presence xmlns='jabber:client' type='unsubscribe' to='{c}'/>"),
            5 => format!("<presence xmlns='jabber:client' type='unsubscribed' to='{c}'/>"),
            6 => "<presence xmlns='jabber:client'/>".to_owned(),
            7 => "<presence xmlns='jabber:client' type='unavailable'/>".to_owned(),
            8 => format!("<message xmlns='jabber:client' to='{c}' id='m{n}'><body>x</body></message>"),
            9 => format!("<iq xmlns='jabber:client' type='set' id='b{n}'><block xmlns='urn:xmpp:blocking'><item jid='{c}'/></block></iq>"),
            10 => format!("<iq xmlns='jabber:client' type='set' id='u{n}'><unblock xmlns='urn:xmpp:blocking'><item jid='{c}'/></unblock></iq>"),
            11 => format!("<iq xmlns='jabber:client' type='get' id='g{n}'><query xmlns='jabber:iq:roster'/></iq>"),
            // Directed presence: the session's directed set grows what its broadcasts need.
            12 => format!("<presence xmlns='jabber:client' to='{c}'/>"),
            _ => {
                return Input::Remote(format!(
                    "<presence xmlns='jabber:server' type='subscribe' from='x@remote.test' to='{u}@example.com'/>"
                ));
            }
        };
        Input::Session(format!("{u}@example.com/r"), xml)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A store that answers late and in any order gives every account the outputs, in the
    /// order, of a store that answers at once; the stores end equal; no unit ever read an
    /// account it had not loaded.
    #[test]
    fn delayed_store_is_indistinguishable(
        inputs in prop::collection::vec(op(), 1..40),
        schedule in prop::collection::vec(0..64usize, 0..120),
    ) {
        let mut host = LateHost::new(ServerConfig::new("example.com"));
        let mut plan = schedule.into_iter();
        for i in &inputs {
            host.input(i);
            // Answer some of what waits, picked by the schedule; 0 moves on.
            for pick in plan.by_ref() {
                if pick == 0 || host.waiting.is_empty() {
                    break;
                }
                host.answer(pick);
            }
        }
        for pick in plan {
            host.answer(pick);
        }
        host.answer_all();
        let (expected, store, misses) = immediate(&inputs);
        prop_assert_eq!(per_account(&host.seen), per_account(&expected));
        prop_assert_eq!(&host.store, &store);
        prop_assert_eq!((host.server.cache.misses(), misses), (0, 0));
    }
}
