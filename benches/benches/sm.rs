//! XEP-0198 figures, in memory:
//!
//! - printed before timing: the heap a detached server session holds (a `DetachedSession`
//!   from `ServerStream::detach`, boxed as a host keeps it, nothing queued), and the heap per
//!   queued stanza (a 150-byte chat message, cloned into the unacknowledged queue), both
//!   counted with a global counting allocator over 100 sessions;
//! - `resumption/resume_cached_keys` vs `resumption/fresh_login_cached_keys`: a whole
//!   resumption (header, features, SCRAM-SHA-512 with cached keys, `<resume/>`, the host's
//!   lookup, `<resumed/>`) against a fresh login of the same client with stream management
//!   (the same SASL, then bind and `<enable/>`/`<enabled/>`), both roles in the `Pair`.
//!
//! Run: `cargo bench -p xmpp-benches --bench sm -- --measurement-time 3 --warm-up-time 1`.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::alloc::System;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use minidom::Element;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use xmpp_benches::c2s::{backend, cached_keys, client_config, server_config};
use xmpp_benches::heap::retained;
use xmpp_stream::pair::Pair;
use xmpp_stream::{
    ClientStream, DetachedSession, Event, SeededEntropy, ServerStream, SmConfig, SmEvent, SmState,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn sm_pair(state: Option<SmState>) -> Pair {
    let mut config = client_config();
    config.credentials = cached_keys();
    config.sm = SmConfig::on();
    let mut client = ClientStream::new(config, SeededEntropy::new(1));
    if let Some(state) = state {
        client.resume_with(state).unwrap();
    }
    let mut server = server_config();
    server.sm = SmConfig::on();
    let server = ServerStream::new(server, SeededEntropy::new(2), backend());
    let mut pair = Pair::new(client, server);
    pair.start();
    pair
}

fn chat(n: usize) -> Element {
    format!(
        "<message xmlns='jabber:client' to='juliet@im.example.com/balcony' id='m{n}' type='chat'>\
         <body>Art thou not Romeo, and a Montague? So early?</body></message>"
    )
    .parse()
    .unwrap()
}

/// A session cut after login, with `queued` stanzas unacknowledged: the client's state and the
/// server's detached session.
fn cut_session(queued: usize) -> (SmState, DetachedSession) {
    let mut pair = sm_pair(None);
    pair.drive();
    assert!(pair.server.is_negotiated());
    for n in 0..queued {
        pair.server_send(&chat(n)).unwrap();
    }
    pair.client.transport_closed(pair.now);
    pair.server.transport_closed(pair.now);
    (
        pair.client.sm_state().unwrap(),
        pair.server.detach().unwrap(),
    )
}

/// Resume on a fresh pair; the server's host answers the lookup with `detached`.
fn resume(state: SmState, detached: DetachedSession) -> Pair {
    let mut pair = sm_pair(Some(state));
    pair.drive();
    assert!(
        pair.server_events
            .iter()
            .any(|e| matches!(e, Event::Sm(SmEvent::ResumeRequested { .. })))
    );
    pair.server.resume(pair.now, detached).unwrap();
    pair.drive();
    pair
}

fn print_heap() {
    const N: usize = 100;
    const QUEUED: usize = 50;
    // Warm lazily built tables and the credential cache.
    drop(cut_session(1));
    // Everything a cut session leaves behind but its detached session is freed again.
    let detached = retained(GLOBAL, N, || Box::new(cut_session(0).1));
    let stanzas: Vec<Element> = (0..QUEUED).map(chat).collect();
    let with_queue = retained(GLOBAL, N, || {
        let mut session = cut_session(0).1;
        for stanza in &stanzas {
            assert!(session.queue(stanza));
        }
        Box::new(session)
    });
    let per_stanza = with_queue.saturating_sub(detached) / QUEUED;
    println!(
        "heap: detached session {detached} B (boxed, empty queue); {per_stanza} B per queued \
         150-byte stanza"
    );
}

fn bench(c: &mut Criterion) {
    print_heap();
    let mut group = c.benchmark_group("resumption");
    group.bench_function("resume_cached_keys", |b| {
        b.iter_batched(
            || cut_session(5),
            |(state, detached)| black_box(resume(state, detached).client.is_negotiated()),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("fresh_login_cached_keys", |b| {
        b.iter_batched(
            || sm_pair(None),
            |mut pair| {
                pair.drive();
                black_box(pair.client.is_negotiated())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
