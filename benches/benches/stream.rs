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

use std::alloc::System;
use std::hint::black_box;
use std::sync::OnceLock;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use minidom::Element;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xmpp_stream::MemoryBackend;
use xmpp_stream::pair::Pair;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Credentials, Instant, Output, SeededEntropy, ServerConfig,
    ServerStream, TlsPolicy,
};
use xmpp_xml::{Event, StreamParser};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net heap bytes still held after `make` ran `n` times and its results were kept.
fn retained<T>(n: usize, mut make: impl FnMut() -> T) -> usize {
    let mut kept = Vec::with_capacity(n);
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        kept.push(make());
    }
    let stats = region.change();
    let allocated = isize::try_from(stats.bytes_allocated).unwrap();
    let freed = isize::try_from(stats.bytes_deallocated).unwrap();
    let net = allocated - freed + stats.bytes_reallocated;
    black_box(&kept);
    usize::try_from(net.max(0)).unwrap() / n
}

fn print_heap() {
    const N: usize = 100;
    let _ = cached_keys();
    let _ = backend();
    let store = retained(N, backend);
    let server = retained(N, || {
        let pair = negotiated_pair();
        let Pair { server, .. } = pair;
        server
    });
    let client = retained(N, || {
        let pair = negotiated_pair();
        let Pair { client, .. } = pair;
        client
    });
    let parser = retained(N, || {
        // A parser that has read a header and one stanza, then sits idle.
        let mut parser = StreamParser::new();
        parser.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'><iq type='set' id='a'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
        while let Ok(Some(_)) = parser.next_event() {}
        parser
    });
    let fresh = retained(N, || {
        ServerStream::new(server_config(), SeededEntropy::new(2), backend())
    });
    println!(
        "breakdown: an idle xmpp-xml StreamParser after a header and one stanza {parser} B; a ServerStream before start {} B",
        fresh.saturating_sub(store)
    );
    println!(
        "heap per established idle stream: ServerStream {} B (after subtracting its {} B credential-store copy), ClientStream {} B",
        server.saturating_sub(store),
        store,
        client
    );
}

const MESSAGES: usize = 1_000;
const CHUNK: usize = 4096;

fn backend() -> MemoryBackend {
    static BACKEND: OnceLock<MemoryBackend> = OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096))
        .clone()
}

fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new(
        BareJid::new("juliet@im.example.com").unwrap(),
        "r0m30myr0m30",
    );
    config.tls = TlsPolicy::Disabled;
    config.resource = Some("balcony".into());
    config
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new(BareJid::new("im.example.com").unwrap());
    config.tls = TlsPolicy::Disabled;
    config
}

/// Client keys from one real login, so benchmarked logins run no PBKDF2.
fn cached_keys() -> Credentials {
    static KEYS: OnceLock<Credentials> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut pair = pair(Credentials::Password("r0m30myr0m30".into()));
        pair.drive();
        Credentials::ScramKeys(pair.client.scram_keys().unwrap().clone())
    })
    .clone()
}

fn pair(credentials: Credentials) -> Pair {
    let mut config = client_config();
    config.credentials = credentials;
    let client = ClientStream::new(config, SeededEntropy::new(1));
    let server = ServerStream::new(server_config(), SeededEntropy::new(2), backend());
    let mut pair = Pair::new(client, server);
    pair.start();
    pair
}

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
                let mut stanzas = 0usize;
                for chunk in bytes.chunks(CHUNK) {
                    pair.server.handle_input(Instant::ZERO, chunk).unwrap();
                    while let Some(out) = pair.server.poll_output() {
                        if matches!(out, Output::Event(xmpp_stream::Event::Stanza(_))) {
                            stanzas += 1;
                        }
                    }
                }
                assert_eq!(stanzas, MESSAGES);
                pair
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("xmpp_xml_parser", |b| {
        let header: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
        b.iter_batched(
            || {
                let mut parser = StreamParser::new();
                parser.feed(header);
                assert!(matches!(parser.next_event(), Ok(Some(Event::StreamStart(_)))));
                parser
            },
            |mut parser| {
                let mut stanzas = 0usize;
                for chunk in bytes.chunks(CHUNK) {
                    parser.feed(chunk);
                    while let Some(event) = parser.next_event().unwrap() {
                        if let Event::Element(element) = event {
                            black_box(&element);
                            stanzas += 1;
                        }
                    }
                }
                assert_eq!(stanzas, MESSAGES);
                parser
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    print_heap();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
