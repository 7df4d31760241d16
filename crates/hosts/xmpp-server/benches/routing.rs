//! One routed chat message end to end in memory (issue 17): bytes in on session A, through
//! `ServerStream`, `xmpp-im` and the hub, bytes out on session B; the envelope path
//! (`ServerConfig::envelopes`) and the element path side by side in one criterion group.
//!
//! Before criterion runs, prints allocations per message and the best of 10 interleaved
//! timings of each path. `ROUTING_BENCH_ONLY=element|envelope` routes 20 000 messages
//! on one path and exits (for `valgrind --tool=callgrind`; setup included, reported apart
//! by running with `ROUTING_BENCH_MESSAGES=0`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "../tests/routed/mod.rs"]
mod routed;

use std::alloc::System;
use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use routed::{Routed, chat};
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

criterion_group!(benches, routed_chat);

fn main() {
    if let Ok(path) = std::env::var("ROUTING_BENCH_ONLY") {
        let n = std::env::var("ROUTING_BENCH_MESSAGES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        let mut r = Routed::new(path == "envelope");
        run(&mut r, &inputs(), n);
        return;
    }
    summary();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
