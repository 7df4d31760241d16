//! `xmpp-stream` benchmarks, side by side in one run:
//!
//! - `negotiation/pair_no_tls_cached_keys`: a full client+server negotiation in the in-memory
//!   `Pair` (header, features, SCRAM-SHA-512 with cached client keys, bind), no TLS.
//! - `stanzas/server_stream` vs `stanzas/xmpp_xml_parser`: 1 000 chat messages (~150 B each)
//!   fed in 4 KiB chunks through an established `ServerStream` (parse, `from` check and
//!   stamping, `to` validation, event queue) versus `xmpp-xml`'s `StreamParser` alone on the
//!   same bytes. The goal is that the machine adds under 10%.
//!
//! - Before timing it prints the heap an established, idle `ServerStream` / `ClientStream`
//!   retains (allocated minus freed, counted with a global counting allocator over 100
//!   streams), with the test credential store's own copy subtracted. The goal is under 4 KiB
//!   besides configured buffers (the parser's input buffer is included in the figure).
//!
//! Run: `cargo bench -p xmpp-benches --bench stream -- --measurement-time 3 --warm-up-time 1`.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]
// A bench binary reads its run mode from the environment (`STREAM_BENCH_ONLY`,
// `STREAM_BENCH_CHUNK`) and the clock.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::cast_precision_loss
)]

use std::alloc::System;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use minidom::Element;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xmpp_benches::c2s::{backend, cached_keys, pair};
use xmpp_benches::heap::retained;
use xmpp_stream::pair::Pair;
use xmpp_stream::{ClientStream, Instant, Output, ServerStream};
use xmpp_xml::{Event, StreamParser};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn print_heap() {
    const N: usize = 100;
    let _ = cached_keys();
    let _ = backend();
    let _ = black_box(parser_after_header());
    let store = retained(GLOBAL, N, backend);
    // Boxed, so the figures include each machine's own size, as a server's session table pays.
    let server = retained(GLOBAL, N, || Box::new(negotiated_pair().server));
    let client = retained(GLOBAL, N, || Box::new(negotiated_pair().client));
    let parser = retained(GLOBAL, N, || {
        // A parser that has read a header and one stanza, then sits idle.
        let mut parser = StreamParser::new();
        parser.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'><iq type='set' id='a'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
        while let Ok(Some(_)) = parser.next_event() {}
        Box::new(parser)
    });
    let released = retained(GLOBAL, N, || {
        let mut parser = StreamParser::new();
        parser.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'><iq type='set' id='a'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
        while let Ok(Some(_)) = parser.next_event() {}
        assert!(parser.release_memory());
        Box::new(parser)
    });
    println!(
        "breakdown: an xmpp-xml StreamParser after a header and one stanza {parser} B, after release_memory {released} B (both with its own {} B struct); size_of ServerStream {} B, ClientStream {} B",
        std::mem::size_of::<StreamParser>(),
        std::mem::size_of::<ServerStream>(),
        std::mem::size_of::<ClientStream>(),
    );
    println!(
        "heap per established idle stream (boxed): ServerStream {} B (after subtracting its {} B test credential-store copy), ClientStream {} B",
        server.saturating_sub(store),
        store,
        client
    );
}

const MESSAGES: usize = 1_000;
const CHUNK: usize = 4096;

fn negotiated_pair() -> Pair {
    let mut pair = pair(cached_keys());
    pair.drive();
    assert!(pair.server.is_negotiated());
    while pair.server.poll_output().is_some() {}
    pair
}

/// What the client would send: `MESSAGES` chat messages as serialized by the client machine.
fn stanza_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut pair = negotiated_pair();
        while pair.client.poll_output().is_some() {}
        let mut bytes = Vec::new();
        for i in 0..MESSAGES {
            let message = Element::builder("message", "jabber:client")
                .attr("to".try_into().unwrap(), "romeo@example.net")
                .attr("id".try_into().unwrap(), format!("m{i}"))
                .attr("type".try_into().unwrap(), "chat")
                .append(
                    Element::builder("body", "jabber:client")
                        .append("Art thou not Romeo, and a Montague? So early?")
                        .build(),
                )
                .build();
            pair.client.send_stanza(pair.now, &message).unwrap();
            while let Some(out) = pair.client.poll_output() {
                if let Output::Transmit(b) = out {
                    bytes.extend(b);
                }
            }
        }
        bytes
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("negotiation");
    group.bench_function("pair_no_tls_cached_keys", |b| {
        b.iter_batched(
            || pair(cached_keys()),
            |mut pair| {
                pair.drive();
                black_box(pair.client.is_negotiated())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();

    let bytes = stanza_bytes();
    let mut group = c.benchmark_group("stanzas");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("server_stream", |b| {
        b.iter_batched(
            negotiated_pair,
            |mut pair| {
                black_box(server_run(&mut pair, bytes, false));
                pair
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("xmpp_xml_parser", |b| {
        b.iter_batched(
            parser_after_header,
            |mut parser| {
                black_box(parser_run(&mut parser, bytes, false));
                parser
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);

/// `STREAM_BENCH_ONLY=<what>` runs one thing once and exits, for `valgrind --tool=callgrind`
/// (`server`: the 1 000 stanzas through a `ServerStream`, `parser`: through the `StreamParser`
/// alone, both 10 times) or `--tool=dhat` (`idle-server`, `idle-client`: one negotiated stream
/// leaked at exit, so DHAT's "at t-end" lists every byte it holds by allocation site).
fn profile_only() -> bool {
    let Ok(what) = std::env::var("STREAM_BENCH_ONLY") else {
        return false;
    };
    let bytes = stanza_bytes();
    let per_stanza = std::env::var("STREAM_BENCH_CHUNK").is_ok_and(|c| c == "stanza");
    match what.as_str() {
        "server" => {
            let mut pair = negotiated_pair();
            let mut stanzas = 0usize;
            for _ in 0..10 {
                stanzas += server_run(&mut pair, bytes, per_stanza);
                pair = negotiated_pair();
            }
            println!("server: {stanzas} stanzas");
        }
        "parser" => {
            let mut stanzas = 0usize;
            for _ in 0..10 {
                stanzas += parser_run(&mut parser_after_header(), bytes, per_stanza);
            }
            println!("parser: {stanzas} stanzas");
        }
        "idle-server" => std::mem::forget(negotiated_pair().server),
        "idle-client" => std::mem::forget(negotiated_pair().client),
        other => panic!("unknown STREAM_BENCH_ONLY={other}"),
    }
    true
}

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";

fn parser_after_header() -> StreamParser {
    let mut parser = StreamParser::new();
    parser.feed(HEADER);
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    parser
}

/// The input in 4 KiB chunks, or (`STREAM_BENCH_CHUNK=stanza`) one read per stanza, as a
/// server sees an interactive client: then every read ends between stanzas.
fn chunks(bytes: &[u8], per_stanza: bool) -> Vec<&[u8]> {
    if per_stanza {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(at) = rest.windows(10).position(|w| w == b"</message>") {
            out.push(&rest[..at + 10]);
            rest = &rest[at + 10..];
        }
        out.push(rest);
        out
    } else {
        bytes.chunks(CHUNK).collect()
    }
}

fn parser_run(parser: &mut StreamParser, bytes: &[u8], per_stanza: bool) -> usize {
    let mut stanzas = 0usize;
    for chunk in chunks(bytes, per_stanza) {
        parser.feed(chunk);
        while let Some(event) = parser.next_event().unwrap() {
            if let Event::Element(element) = event {
                black_box(&element);
                stanzas += 1;
            }
        }
    }
    assert_eq!(stanzas, MESSAGES);
    stanzas
}

fn server_run(pair: &mut Pair, bytes: &[u8], per_stanza: bool) -> usize {
    let mut stanzas = 0usize;
    for chunk in chunks(bytes, per_stanza) {
        pair.server.handle_input(Instant::ZERO, chunk).unwrap();
        while let Some(out) = pair.server.poll_output() {
            if let Output::Event(xmpp_stream::Event::Stanza(stanza)) = out {
                black_box(&stanza);
                stanzas += 1;
            }
        }
    }
    assert_eq!(stanzas, MESSAGES);
    stanzas
}

/// Time this thread has spent on a CPU (Linux `schedstat`), so that waiting for a core on a
/// loaded machine is not counted; `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn timed(f: impl FnOnce()) -> Duration {
    let (cpu, wall) = (cpu_time(), std::time::Instant::now());
    f();
    match (cpu, cpu_time()) {
        (Some(start), Some(end)) => end.saturating_sub(start),
        _ => wall.elapsed(),
    }
}

/// The machine against the parser alone, interleaved `rounds` times, best on-CPU time of each
/// (setup excluded), in 4 KiB reads and in one read per stanza; then allocations per stanza.
fn report_ratios(rounds: usize) {
    // Each timed unit is `BATCH` runs on fresh machines made beforehand: long enough for the
    // scheduler's on-CPU accounting to resolve it.
    const BATCH: usize = 20;
    let bytes = stanza_bytes();
    for per_stanza in [false, true] {
        let (mut server, mut parser) = (Duration::MAX, Duration::MAX);
        for _ in 0..rounds {
            let mut pairs: Vec<Pair> = (0..BATCH).map(|_| negotiated_pair()).collect();
            server = server.min(timed(|| {
                for pair in &mut pairs {
                    black_box(server_run(pair, bytes, per_stanza));
                }
            }));
            let mut parsers: Vec<StreamParser> =
                (0..BATCH).map(|_| parser_after_header()).collect();
            parser = parser.min(timed(|| {
                for p in &mut parsers {
                    black_box(parser_run(p, bytes, per_stanza));
                }
            }));
        }
        let (server, parser) = (
            server / u32::try_from(BATCH).unwrap(),
            parser / u32::try_from(BATCH).unwrap(),
        );
        println!(
            "{}: ServerStream best {:.2} ms, parser alone {:.2} ms: the machine adds {:+.1}%",
            if per_stanza {
                "one read per stanza"
            } else {
                "4 KiB reads"
            },
            server.as_secs_f64() * 1e3,
            parser.as_secs_f64() * 1e3,
            (server.as_secs_f64() / parser.as_secs_f64() - 1.0) * 100.0
        );
    }
    let mut pair = negotiated_pair();
    let region = Region::new(GLOBAL);
    server_run(&mut pair, bytes, false);
    let server = region.change().allocations;
    let mut p = parser_after_header();
    let region = Region::new(GLOBAL);
    parser_run(&mut p, bytes, false);
    let parser = region.change().allocations;
    println!(
        "allocations per stanza: ServerStream {:.2}, parser alone {:.2}",
        server as f64 / MESSAGES as f64,
        parser as f64 / MESSAGES as f64
    );
}

fn main() {
    if profile_only() {
        return;
    }
    print_heap();
    if !std::env::args().any(|a| a == "--profile-time" || a == "--list") {
        report_ratios(7);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
