//! One routed chat message end to end in memory (issue 17): bytes in on session A, through
//! `ServerStream`, `xmpp-im` and the hub, bytes out on session B; the envelope path
//! (`ServerConfig::envelopes`) and the element path side by side in one criterion group.
//!
//! A second group, `presence_fanout`: one presence broadcast from alice to her
//! [`CONTACTS`] contacts (all subscribed and available) and her own resource, bytes in to
//! bytes out on every recipient's session, both paths.
//!
//! Before criterion runs, prints allocations per message (per presence recipient) and the
//! best of 10 interleaved timings of each path. `ROUTING_BENCH_ONLY=element|envelope`
//! routes 20 000 messages on one path and exits (`presence-element|presence-envelope`: 200
//! presence broadcasts), for `valgrind --tool=callgrind`; setup included, reported apart by
//! running with `ROUTING_BENCH_MESSAGES=0`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "../tests/routed/mod.rs"]
mod routed;

use std::alloc::System;
use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use routed::{Routed, chat, status};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const INPUTS: u64 = 256;

fn inputs() -> Vec<Vec<u8>> {
    (0..INPUTS).map(chat).collect()
}

/// Route `n` messages, clearing B's buffer as a socket write would.
fn run(r: &mut Routed, inputs: &[Vec<u8>], n: usize) {
    for input in inputs.iter().cycle().take(n) {
        r.route(input);
        black_box(&r.to_b);
        r.to_b.clear();
    }
}

fn summary() {
    let inputs = inputs();
    let mut paths = [(false, Routed::new(false)), (true, Routed::new(true))];
    for (envelopes, r) in &mut paths {
        run(r, &inputs, 1_000);
        let n = 2_000;
        let region = Region::new(GLOBAL);
        run(r, &inputs, n);
        let stats = region.change();
        #[allow(clippy::cast_precision_loss)]
        let per = stats.allocations as f64 / n as f64;
        #[allow(clippy::cast_precision_loss)]
        let bytes = stats.bytes_allocated as f64 / n as f64;
        let name = if *envelopes { "envelope" } else { "element" };
        println!("routed chat, {name} path: {per:.1} allocations ({bytes:.0} B) per message");
    }
    // With XEP-0198 enabled by the clients, the recipient's unacknowledged queue keeps a
    // copy of the spliced bytes (the element path: a clone of the element). Measured with
    // B's client machine reading its bytes and acknowledging (its cost is in both figures).
    for sm in [false, true] {
        for envelopes in [false, true] {
            let mut r = Routed::with_sm(envelopes, sm);
            for input in inputs.iter().cycle().take(1_000) {
                r.route_acked(input);
            }
            let n = 2_000;
            let region = Region::new(GLOBAL);
            for input in inputs.iter().cycle().take(n) {
                r.route_acked(input);
            }
            let stats = region.change();
            #[allow(clippy::cast_precision_loss)]
            let per = stats.allocations as f64 / n as f64;
            let name = if envelopes { "envelope" } else { "element" };
            let sm = if sm { "on" } else { "off" };
            println!(
                "routed chat read by B's client, XEP-0198 {sm}, {name} path: {per:.1} allocations per message"
            );
        }
    }
    let mut best = [f64::MAX; 2];
    for _ in 0..10 {
        for (i, (_, r)) in paths.iter_mut().enumerate() {
            let n = 20_000;
            let start = std::time::Instant::now();
            run(r, &inputs, n);
            let spent = start.elapsed().as_secs_f64();
            if spent > 0.0 {
                #[allow(clippy::cast_precision_loss)]
                let rate = n as f64 / spent;
                best[i] = best[i].min(1.0 / rate);
            }
        }
    }
    println!(
        "routed chat, best of 10 runs of 20 000 (wall clock, the minimum filters the noise): element {:.2} us, envelope {:.2} us per message: envelope path {:.2}x",
        best[0] * 1e6,
        best[1] * 1e6,
        best[0] / best[1]
    );
}

/// alice's contacts in the presence group.
const CONTACTS: usize = 100;

/// Broadcast `n` presences from alice, clearing every inbox as socket writes would.
fn broadcast(r: &mut Routed, inputs: &[Vec<u8>], n: usize) {
    for input in inputs.iter().cycle().take(n) {
        r.send_from(0, input);
        black_box(&r.inbox);
        for inbox in &mut r.inbox {
            inbox.clear();
        }
    }
}

fn presence_summary() {
    let inputs: Vec<Vec<u8>> = (0..INPUTS).map(status).collect();
    let mut paths = [
        Routed::with_contacts(false, CONTACTS),
        Routed::with_contacts(true, CONTACTS),
    ];
    #[allow(clippy::cast_precision_loss)]
    let recipients = (CONTACTS + 1) as f64;
    for (envelopes, r) in [false, true].into_iter().zip(paths.iter_mut()) {
        broadcast(r, &inputs, 20);
        let n = 100;
        let region = Region::new(GLOBAL);
        broadcast(r, &inputs, n);
        let stats = region.change();
        #[allow(clippy::cast_precision_loss)]
        let per = stats.allocations as f64 / (n as f64 * recipients);
        #[allow(clippy::cast_precision_loss)]
        let bytes = stats.bytes_allocated as f64 / (n as f64 * recipients);
        let name = if envelopes { "envelope" } else { "element" };
        println!(
            "presence to {CONTACTS} contacts, {name} path: {per:.1} allocations ({bytes:.0} B) per recipient"
        );
    }
    let mut best = [f64::MAX; 2];
    for _ in 0..10 {
        for (i, r) in paths.iter_mut().enumerate() {
            let n = 200;
            let start = std::time::Instant::now();
            broadcast(r, &inputs, n);
            #[allow(clippy::cast_precision_loss)]
            let per = start.elapsed().as_secs_f64() / n as f64;
            best[i] = best[i].min(per);
        }
    }
    println!(
        "presence to {CONTACTS} contacts, best of 10 runs of 200 (wall clock): element {:.1} us, envelope {:.1} us per broadcast ({:.2} / {:.2} us per recipient): envelope path {:.2}x",
        best[0] * 1e6,
        best[1] * 1e6,
        best[0] * 1e6 / recipients,
        best[1] * 1e6 / recipients,
        best[0] / best[1]
    );
}

fn presence_fanout(c: &mut Criterion) {
    let inputs: Vec<Vec<u8>> = (0..INPUTS).map(status).collect();
    let mut group = c.benchmark_group("presence_fanout");
    group.throughput(criterion::Throughput::Elements(CONTACTS as u64 + 1));
    for (name, envelopes) in [("element", false), ("envelope", true)] {
        let mut r = Routed::with_contacts(envelopes, CONTACTS);
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                let input = &inputs[i % inputs.len()];
                i = i.wrapping_add(1);
                broadcast(&mut r, core::slice::from_ref(input), 1);
            });
        });
    }
    group.finish();
}

fn routed_chat(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("routed_chat");
    group.throughput(criterion::Throughput::Elements(1));
    for (name, envelopes) in [("element", false), ("envelope", true)] {
        let mut r = Routed::new(envelopes);
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                let input = &inputs[i % inputs.len()];
                i = i.wrapping_add(1);
                r.route(input);
                black_box(&r.to_b);
                r.to_b.clear();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, routed_chat, presence_fanout);

fn main() {
    if let Ok(path) = std::env::var("ROUTING_BENCH_ONLY") {
        let n = std::env::var("ROUTING_BENCH_MESSAGES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        if let Some(path) = path.strip_prefix("presence-") {
            let mut r = Routed::with_contacts(path == "envelope", CONTACTS);
            let inputs: Vec<Vec<u8>> = (0..INPUTS).map(status).collect();
            broadcast(&mut r, &inputs, n / 100);
            return;
        }
        let mut r = Routed::new(path == "envelope");
        run(&mut r, &inputs(), n);
        return;
    }
    summary();
    presence_summary();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
