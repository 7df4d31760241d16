//! The XML stream parser over a ~10 MB realistic client stream, side by side in one run with
//! the alternatives, at 4 KiB and 64-byte chunks:
//!
//! - `rxml_raw`: `rxml` 0.14 `RawParser` events, no tree: the speed limit for anything built
//!   on `rxml`.
//! - `rxml_minidom`: `rxml` raw events into `minidom` 0.19's `TreeBuilder`, taking each
//!   depth-1 child off the root as it completes (what xmpp-rs's tokio-xmpp does).
//! - `quick_xml_raw`: `quick-xml` 0.42's raw reader over a `BufReader` of the chunk size (not
//!   a validating parser: no namespaces, no character checks, no tree).
//! - `xmpp_xml`: our full pipeline (`StreamParser`: validation, bounds, namespaces,
//!   `minidom::Element` per stanza).
//! - `xmpp_rs_routing`: what xmpp-rs routes with: `rxml_minidom` plus `Element::write_to` of
//!   each stanza into a reused buffer (issue 17's reference leg).
//! - `xmpp_xml_envelope`: our routing pipeline (issue 17): `StreamParser` in envelope mode,
//!   each stanza's start tag spliced (`from` stamped, `jabber:client` to `jabber:server`)
//!   into a reused buffer; stanzas that need the element path take it.
//!
//! Before timing, it prints allocations per stanza for each pipeline (counted with a global
//! counting allocator, 4 KiB chunks). Run:
//! `cargo bench -p xmpp-benches --bench xml -- --measurement-time 3 --warm-up-time 1`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_precision_loss
)]
// The interleaved min-of-N timing below reads the clock: this is a bench, not a library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::alloc::System;
use std::hint::black_box;
use std::io::BufReader;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use minidom::tree_builder::TreeBuilder;
use rxml::error::EndOrError;
use rxml::{Parse, RawEvent, RawParser};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xmpp_benches::corpus::{ClientStream, client_stream};
use xmpp_xml::{Event, NS_SERVER, Stamp, StreamParser, stamp_element};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SEED: u64 = 0x5EED_0003;
const TARGET: usize = 10 * 1024 * 1024;
const CHUNKS: [usize; 2] = [4096, 64];

fn corpus() -> &'static ClientStream {
    static CORPUS: OnceLock<ClientStream> = OnceLock::new();
    CORPUS.get_or_init(|| client_stream(SEED, TARGET))
}

/// Raw rxml events; returns the number of events.
fn rxml_raw(bytes: &[u8], chunk: usize) -> usize {
    let mut parser = RawParser::new();
    let mut events = 0;
    for piece in bytes.chunks(chunk) {
        let mut input = piece;
        loop {
            match parser.parse(&mut input, false) {
                Ok(Some(event)) => {
                    black_box(&event);
                    events += 1;
                }
                Ok(None) | Err(EndOrError::NeedMoreData) => break,
                Err(EndOrError::Error(e)) => panic!("rxml: {e}"),
            }
        }
    }
    events
}

/// Raw rxml events into minidom's TreeBuilder, each depth-1 child handed to `each`; returns
/// the number of stanzas.
fn rxml_tree(bytes: &[u8], chunk: usize, mut each: impl FnMut(minidom::Element)) -> usize {
    let mut parser = RawParser::new();
    let mut tree = TreeBuilder::new();
    let mut stanzas = 0;
    for piece in bytes.chunks(chunk) {
        let mut input = piece;
        loop {
            match parser.parse(&mut input, false) {
                Ok(Some(event)) => {
                    let foot = matches!(event, RawEvent::ElementFoot(_));
                    tree.process_event(event).unwrap();
                    if foot && tree.depth() == 1 {
                        if let Some(stanza) = tree.unshift_child() {
                            each(stanza);
                            stanzas += 1;
                        }
                    }
                }
                Ok(None) | Err(EndOrError::NeedMoreData) => break,
                Err(EndOrError::Error(e)) => panic!("rxml: {e}"),
            }
        }
    }
    stanzas
}

/// Raw rxml events into minidom's TreeBuilder; returns the number of stanzas.
fn rxml_minidom(bytes: &[u8], chunk: usize) -> usize {
    rxml_tree(bytes, chunk, |stanza| {
        black_box(stanza);
    })
}

/// quick-xml's raw reader; returns the number of events.
fn quick_xml_raw(bytes: &[u8], chunk: usize) -> usize {
    let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(chunk, bytes));
    let mut buf = Vec::with_capacity(4096);
    let mut events = 0;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(event) => {
                black_box(&event);
                events += 1;
            }
            Err(e) => panic!("quick-xml: {e}"),
        }
        buf.clear();
    }
    events
}

/// Our pipeline; returns the number of stanzas.
fn xmpp_xml(bytes: &[u8], chunk: usize) -> usize {
    let mut parser = StreamParser::new();
    let mut stanzas = 0;
    for piece in bytes.chunks(chunk) {
        parser.feed(piece);
        while let Some(event) = parser.next_event().unwrap() {
            if let Event::Element(stanza) = event {
                black_box(stanza);
                stanzas += 1;
            }
        }
    }
    stanzas
}

/// rxml + minidom + serialization of each stanza (xmpp-rs routing); returns the stanzas.
fn xmpp_rs_routing(bytes: &[u8], chunk: usize) -> usize {
    let mut out = Vec::with_capacity(64 * 1024);
    let stanzas = rxml_tree(bytes, chunk, |stanza| {
        if out.len() > 32 * 1024 {
            out.clear();
        }
        stanza.write_to(&mut out).unwrap();
    });
    black_box(&out);
    stanzas
}

/// Our envelope routing pipeline; returns the stanzas.
fn xmpp_xml_envelope(bytes: &[u8], chunk: usize) -> usize {
    let mut parser = StreamParser::new();
    parser.set_envelopes(true);
    let stamp = Stamp {
        from: Some("romeo@montague.example/orchard"),
        ..Stamp::new(NS_SERVER)
    };
    let mut out = Vec::with_capacity(64 * 1024);
    let mut stanzas = 0;
    for piece in bytes.chunks(chunk) {
        parser.feed(piece);
        while let Some(event) = parser.next_event().unwrap() {
            if out.len() > 32 * 1024 {
                out.clear();
            }
            match event {
                Event::Stanza(envelope) => {
                    if envelope.splice_into(&stamp, &mut out).is_err() {
                        let mut element = envelope.element().unwrap();
                        stamp_element(&mut element, &stamp);
                        element.write_to(&mut out).unwrap();
                    }
                    stanzas += 1;
                }
                Event::Element(element) => {
                    element.write_to(&mut out).unwrap();
                    stanzas += 1;
                }
                _ => {}
            }
        }
    }
    black_box(&out);
    stanzas
}

type Pipeline = fn(&[u8], usize) -> usize;

const PIPELINES: [(&str, Pipeline); 6] = [
    ("rxml_raw", rxml_raw),
    ("rxml_minidom", rxml_minidom),
    ("quick_xml_raw", quick_xml_raw),
    ("xmpp_xml", xmpp_xml),
    ("xmpp_rs_routing", xmpp_rs_routing),
    ("xmpp_xml_envelope", xmpp_xml_envelope),
];

fn report_allocations() {
    let c = corpus();
    println!(
        "corpus: {} bytes, {} stanzas ({} messages, {} presences, {} iqs of which {} 50-item \
         rosters), {} references, {:.0} bytes per stanza",
        c.bytes.len(),
        c.stanzas,
        c.messages,
        c.presences,
        c.iqs,
        c.roster_results,
        c.references,
        c.bytes.len() as f64 / c.stanzas as f64
    );
    assert_eq!(rxml_minidom(&c.bytes, 4096), c.stanzas);
    assert_eq!(xmpp_xml(&c.bytes, 64), c.stanzas);
    assert_eq!(xmpp_rs_routing(&c.bytes, 4096), c.stanzas);
    assert_eq!(xmpp_xml_envelope(&c.bytes, 64), c.stanzas);
    for (name, pipeline) in PIPELINES {
        let region = Region::new(GLOBAL);
        black_box(pipeline(&c.bytes, 4096));
        let stats = region.change();
        println!(
            "allocations per stanza, {name:>17}: {:6.1} ({:7.0} bytes requested per stanza)",
            stats.allocations as f64 / c.stanzas as f64,
            stats.bytes_allocated as f64 / c.stanzas as f64,
        );
    }
}

/// Time this thread has spent on a CPU (Linux `schedstat`), so that waiting for a core on a
/// loaded machine is not counted; wall-clock time elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn timed(f: impl FnOnce()) -> Duration {
    let (cpu, wall) = (cpu_time(), Instant::now());
    f();
    match (cpu, cpu_time()) {
        (Some(start), Some(end)) => end.saturating_sub(start),
        _ => wall.elapsed(),
    }
}

/// Runs the pipelines interleaved, `rounds` times, and prints each one's best on-CPU time and
/// its throughput ratio to raw rxml events and to rxml + minidom. Interleaving, counting only
/// on-CPU time and taking the minimum make the ratios robust to a noisy shared machine.
fn report_ratios(rounds: usize) {
    let c = corpus();
    for chunk in CHUNKS {
        let mut best = [Duration::MAX; PIPELINES.len()];
        for _ in 0..rounds {
            for (i, (_, pipeline)) in PIPELINES.iter().enumerate() {
                let t = timed(|| {
                    black_box(pipeline(black_box(&c.bytes), chunk));
                });
                best[i] = best[i].min(t);
            }
        }
        let secs = |i: usize| best[i].as_secs_f64();
        for (i, (name, _)) in PIPELINES.iter().enumerate() {
            println!(
                "chunk {chunk:>4} {name:>17}: best {:7.1} ms, {:6.1} MB/s, {:.2}x raw rxml, {:.2}x rxml+minidom",
                secs(i) * 1e3,
                c.bytes.len() as f64 / secs(i) / 1e6,
                secs(0) / secs(i),
                secs(1) / secs(i),
            );
        }
    }
}

fn bench_xml(crit: &mut Criterion) {
    let c = corpus();
    for chunk in CHUNKS {
        let mut group = crit.benchmark_group(format!("xml/chunk{chunk}"));
        group.throughput(Throughput::Bytes(c.bytes.len() as u64));
        group.sample_size(10);
        for (name, pipeline) in PIPELINES {
            group.bench_with_input(BenchmarkId::from_parameter(name), &chunk, |b, &chunk| {
                b.iter(|| pipeline(black_box(&c.bytes), chunk));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_xml);

/// `XML_BENCH_ONLY=<pipeline>[:<chunk>]` runs one pipeline once over a 2 MiB corpus and exits:
/// a short, repeatable run for `valgrind --tool=callgrind`.
fn profile_only() -> bool {
    let Ok(spec) = std::env::var("XML_BENCH_ONLY") else {
        return false;
    };
    let (name, chunk) = spec.split_once(':').unwrap_or((&spec, "4096"));
    let chunk: usize = chunk.parse().unwrap();
    let stream = client_stream(SEED, 2 * 1024 * 1024);
    let (_, pipeline) = PIPELINES.iter().find(|(n, _)| *n == name).unwrap();
    println!("{name}: {}", pipeline(&stream.bytes, chunk));
    true
}

fn main() {
    if profile_only() {
        return;
    }
    // `--profile-time` runs are for profilers: keep the reports out of the profile.
    if !std::env::args().any(|a| a == "--profile-time") {
        report_allocations();
        report_ratios(10);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
