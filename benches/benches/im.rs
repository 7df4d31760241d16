//! `xmpp-im` server routing over 10 000 accounts with 100-item rosters (every contact `both`),
//! half of the accounts online with one to three sessions of mixed priorities:
//!
//! - `decision`: the RFC 6121 §8.5 routing decision for a message (`Server::message_decision`)
//!   over 4096 seeded targets: bare and full JIDs, online and offline accounts, every type.
//! - `deliver_chat`: the whole path for one chat message to an online bare JID, from a
//!   `minidom::Element` received from a remote server to the `Deliver` outputs drained.
//! - `presence_broadcast`: one presence update from a session, fanned out to its 100 contacts
//!   (all local here, so each is processed as an inbound presence too).
//!
//! Before timing, it prints allocations per decision on the message fast path (recipient
//! online) and on the offline path, counted with a global counting allocator. Run:
//! `cargo bench -p xmpp-benches --bench im -- --measurement-time 3 --warm-up-time 1`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_precision_loss
)]

use std::alloc::System;
use std::hint::black_box;
use std::sync::OnceLock;

use criterion::{Criterion, Throughput, criterion_group};
use minidom::Element;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xmpp_im::{
    ContactState, MemoryStore, MessageType, RosterEntry, RosterStore, Server, ServerConfig, State,
};
use xmpp_jid::{BareJid, FullJid, Jid};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ACCOUNTS: usize = 10_000;
const ROSTER: usize = 100;
const TARGETS: usize = 4096;
const SEED: u64 = 0x5EED_0006;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, good enough to spread targets.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

fn user(i: usize) -> BareJid {
    BareJid::new(&format!("user{i}@example.com")).unwrap()
}

struct World {
    server: Server,
    store: MemoryStore,
    targets: Vec<(Jid, MessageType)>,
    online_targets: Vec<(Jid, MessageType)>,
    offline_targets: Vec<(Jid, MessageType)>,
}

fn world() -> World {
    let mut rng = Rng(SEED);
    let mut store = MemoryStore::new();
    let users: Vec<BareJid> = (0..ACCOUNTS).map(user).collect();
    for u in &users {
        store.add_account(u.clone());
    }
    for (i, u) in users.iter().enumerate() {
        for k in 1..=ROSTER {
            // A symmetric contact graph: i and i±k·37 are contacts of each other.
            let c = &users[(i + k * 37) % ACCOUNTS];
            let mut e = RosterEntry::new(c.clone());
            e.state = ContactState::new(State::Both);
            e.in_roster = true;
            store.put(u, e);
            let mut back = RosterEntry::new(u.clone());
            back.state = ContactState::new(State::Both);
            back.in_roster = true;
            store.put(c, back);
        }
    }
    let mut server = Server::new(ServerConfig::new("example.com"));
    let mut sessions: Vec<FullJid> = Vec::new();
    for (i, u) in users.iter().enumerate() {
        if i % 2 == 1 {
            continue;
        }
        for r in 0..=rng.below(3) {
            let full = u.with_resource(&format!("r{r}")).unwrap();
            server.session_started(full.clone()).unwrap();
            sessions.push(full);
        }
    }
    // Initial presence from every session (broadcasts and probes included).
    for full in &sessions {
        let priority = i8::try_from(rng.below(10)).unwrap() - 2;
        let p: Element =
            format!("<presence xmlns='jabber:client'><priority>{priority}</priority></presence>")
                .parse()
                .unwrap();
        server.handle_session_stanza(&mut store, full, &p).unwrap();
        while server.poll_output().is_some() {}
    }
    let kinds = [
        MessageType::Chat,
        MessageType::Normal,
        MessageType::Headline,
        MessageType::Groupchat,
        MessageType::Error,
    ];
    let mut targets = Vec::new();
    let mut online_targets = Vec::new();
    let mut offline_targets = Vec::new();
    for _ in 0..TARGETS {
        let i = rng.below(ACCOUNTS);
        let kind = kinds[rng.below(kinds.len())];
        let jid: Jid = if rng.below(3) == 0 {
            users[i]
                .with_resource(&format!("r{}", rng.below(4)))
                .unwrap()
                .into()
        } else {
            users[i].clone().into()
        };
        targets.push((jid.clone(), kind));
        if i % 2 == 0 {
            online_targets.push((jid, kind));
        } else {
            offline_targets.push((jid, kind));
        }
    }
    World {
        server,
        store,
        targets,
        online_targets,
        offline_targets,
    }
}

fn shared() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(world)
}

fn report_allocations() {
    let w = shared();
    for (name, targets) in [
        ("online (fast path)", &w.online_targets),
        ("offline account", &w.offline_targets),
    ] {
        let region = Region::new(GLOBAL);
        for (jid, kind) in targets {
            let _ = black_box(w.server.message_decision(&w.store, jid, *kind));
        }
        let stats = region.change();
        println!(
            "allocations per routing decision, {name:>18}: {:.3} ({} decisions)",
            stats.allocations as f64 / targets.len() as f64,
            targets.len()
        );
    }
}

fn bench_im(c: &mut Criterion) {
    let w = shared();
    let mut group = c.benchmark_group("im");
    group.throughput(Throughput::Elements(TARGETS as u64));
    group.bench_function("decision", |b| {
        b.iter(|| {
            for (jid, kind) in &w.targets {
                let _ = black_box(w.server.message_decision(&w.store, jid, *kind));
            }
        });
    });
    group.throughput(Throughput::Elements(1));
    let chat: Element = "<message xmlns='jabber:client' type='chat' from='remote@example.net/x' \
                         to='user0@example.com' id='m1'><body>Hello</body></message>"
        .parse()
        .unwrap();
    let mut server = w.server.clone();
    let mut store = w.store.clone();
    group.bench_function("deliver_chat", |b| {
        b.iter(|| {
            server.handle_remote_stanza(&mut store, black_box(&chat));
            while let Some(out) = server.poll_output() {
                black_box(out);
            }
        });
    });
    let from = user(0).with_resource("r0").unwrap();
    let presence: Element = "<presence xmlns='jabber:client'><show>away</show></presence>"
        .parse()
        .unwrap();
    group.bench_function("presence_broadcast", |b| {
        b.iter(|| {
            server
                .handle_session_stanza(&mut store, &from, black_box(&presence))
                .unwrap();
            while let Some(out) = server.poll_output() {
                black_box(out);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_im);

fn main() {
    report_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
