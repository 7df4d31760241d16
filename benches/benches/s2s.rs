//! Server-to-server benchmarks (`xmpp-stream`'s s2s machines, RFC 6125 matcher, XEP-0185 keys):
//!
//! - `negotiation/s2s_external`, `negotiation/s2s_dialback`: both ends of an s2s stream
//!   (`S2sInitiatingStream` a.example -> `S2sReceivingStream` b.example) in memory, from
//!   `start` until each end has reported `ServerAuthenticated`: headers, STARTTLS with the TLS
//!   faked (`tls_established` with no channel bindings), restarted headers, then SASL EXTERNAL
//!   over the certificate's names, or dialback (no checkable certificate; the receiving host's
//!   `DialbackVerify` is answered in-process with a.example's secret, as its authoritative
//!   server would). Beside them, in the same run, `negotiation/c2s_pair_no_tls_cached_keys`:
//!   the `stream` bench's client-to-server negotiation (the `Pair`, no TLS, cached SCRAM keys,
//!   bind).
//! - `identity/*`: `xmpp_stream::identity::verify` for one certificate's names against a
//!   reference built beforehand (a stream builds it once): a typical certificate (2 DNS-IDs
//!   and 1 SRV-ID, the SRV-ID the one that matches, so all three are examined), a wildcard,
//!   an internationalized domain (U-label reference, A-label DNS-ID), and 50 DNS-IDs (the
//!   last one matching, and none matching: 50 typed rejections).
//! - `dialback_key/*`: XEP-0185 `DialbackSecret::key` and `verify` (HMAC-SHA256 keyed by the
//!   hashed secret, hex encoded or decoded and compared in constant time).
//!
//! Run: `cargo bench -p xmpp-benches --bench s2s -- --measurement-time 3 --warm-up-time 1`.
//! `S2S_BENCH_ONLY=external|dialback|c2s` (and `S2S_BENCH_N`, default 100) runs that
//! negotiation N times and exits, for `valgrind --tool=callgrind --toggle-collect='s2s::negotiate'`
//! (`'s2s::c2s_negotiate'` for `c2s`).
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]
// A bench binary reads its run mode from the environment.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group};
use xmpp_benches::c2s::{cached_keys, pair};
use xmpp_stream::dialback::{DialbackSecret, Domain, StreamId};
use xmpp_stream::identity::{self, IdKind, Mismatch, PresentedId, ReferenceId, Service};
use xmpp_stream::pair::Pair;
use xmpp_stream::pair::{authoritative_answer, drive_ends};
use xmpp_stream::{
    AnyStream, BareJid, Event, Instant, S2sAuthMethod, S2sConfig, S2sInitiatingStream,
    S2sReceivingStream, SeededEntropy, Transport,
};

const SECRET: &[u8] = b"a.example's dialback secret";

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn config(domain: &str, dialback: bool) -> S2sConfig {
    let mut config = S2sConfig::new(vec![jid(domain)]);
    if dialback {
        config.dialback_secret = Some(DialbackSecret::new(SECRET));
    }
    config
}

/// Both ends, not started: a.example's initiating end and b.example's receiving end. With
/// `method` EXTERNAL, a.example's certificate names a.example; with dialback it names nothing
/// the receiving end can check (no EXTERNAL offered) and both ends have the secret.
fn ends(method: S2sAuthMethod) -> [AnyStream; 2] {
    let dialback = method == S2sAuthMethod::Dialback;
    let mut out = S2sInitiatingStream::new(
        config("a.example", dialback),
        jid("a.example"),
        jid("b.example"),
        SeededEntropy::new(1),
    );
    out.set_peer_identities(vec![PresentedId::Dns("b.example".into())]);
    let mut inc = S2sReceivingStream::new(config("b.example", dialback), SeededEntropy::new(2));
    if !dialback {
        inc.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
    }
    [out.into(), inc.into()]
}

/// Starts both ends and moves bytes until both are quiet (TLS faked, dialback verifications
/// answered with `secret`); returns how many `ServerAuthenticated` each end reported.
#[inline(never)]
fn negotiate(ends: &mut [AnyStream; 2], secret: &DialbackSecret) -> [usize; 2] {
    let now = Instant::ZERO;
    for end in ends.iter_mut() {
        end.start(now, Transport::Plain).unwrap();
    }
    let events = drive_ends(ends, now, |originating, receiving, id, key| {
        Some(authoritative_answer(
            secret,
            originating,
            receiving,
            id,
            key,
        ))
    });
    events.map(|events| {
        for event in &events {
            if let Event::Closed { reason } = event {
                panic!("closed: {reason:?}");
            }
        }
        events
            .iter()
            .filter(|e| matches!(e, Event::ServerAuthenticated { .. }))
            .count()
    })
}

/// One negotiation, checked: both ends negotiated, one authenticated pair each.
fn negotiate_checked(method: S2sAuthMethod, secret: &DialbackSecret) -> [AnyStream; 2] {
    let mut ends = ends(method);
    let authenticated = negotiate(&mut ends, secret);
    assert_eq!(authenticated, [1, 1], "{method}");
    assert!(ends.iter().all(AnyStream::is_negotiated), "{method}");
    ends
}

#[inline(never)]
fn c2s_negotiate(pair: &mut Pair) -> bool {
    pair.drive();
    pair.client.is_negotiated() && pair.server.is_negotiated()
}

/// One certificate: its names, the reference checked against them, and the expected outcome
/// (`Some((index, kind, wildcard))` of the match, `None` for no match).
struct Certificate {
    name: &'static str,
    reference: ReferenceId,
    presented: Vec<PresentedId>,
    expected: Option<(usize, IdKind, bool)>,
}

fn certificates() -> Vec<Certificate> {
    let reference = |d: &str| ReferenceId::new(d, Service::XmppServer).unwrap();
    let dns = |d: &str| PresentedId::Dns(d.into());
    let fifty: Vec<PresentedId> = (0..50)
        .map(|i| dns(&format!("host{i}.example.com")))
        .collect();
    vec![
        Certificate {
            name: "typical_2dns_1srv",
            reference: reference("im.example.net"),
            presented: vec![
                dns("example.net"),
                dns("www.example.net"),
                PresentedId::Srv("_xmpp-server.im.example.net".into()),
            ],
            expected: Some((2, IdKind::Srv, false)),
        },
        Certificate {
            name: "wildcard",
            reference: reference("chat.example.org"),
            presented: vec![dns("*.example.org"), dns("example.org")],
            expected: Some((0, IdKind::Dns, true)),
        },
        Certificate {
            name: "idn",
            reference: reference("bücher.example"),
            presented: vec![
                dns("xn--bcher-kva.example"),
                PresentedId::Srv("_xmpp-server.xn--bcher-kva.example".into()),
            ],
            expected: Some((0, IdKind::Dns, false)),
        },
        Certificate {
            name: "fifty_names_last_matches",
            reference: reference("host49.example.com"),
            presented: fifty.clone(),
            expected: Some((49, IdKind::Dns, false)),
        },
        Certificate {
            name: "fifty_names_none_matches",
            reference: reference("other.example.net"),
            presented: fifty,
            expected: None,
        },
    ]
}

fn check(certificate: &Certificate) {
    let got = identity::verify(&certificate.reference, &certificate.presented);
    match (got, certificate.expected) {
        (Ok(m), Some(expected)) => assert_eq!((m.index, m.kind, m.wildcard), expected),
        (Err(Mismatch::NoneMatched(why)), None) => {
            assert_eq!(why.len(), certificate.presented.len());
        }
        (got, _) => panic!("{}: unexpected {got:?}", certificate.name),
    }
}

fn bench(c: &mut Criterion) {
    let secret = DialbackSecret::new(SECRET);

    let mut group = c.benchmark_group("negotiation");
    group.bench_function("c2s_pair_no_tls_cached_keys", |b| {
        b.iter_batched(
            || pair(cached_keys()),
            |mut pair| black_box(c2s_negotiate(&mut pair)),
            BatchSize::SmallInput,
        );
    });
    for (name, method) in [
        ("s2s_external", S2sAuthMethod::SaslExternal),
        ("s2s_dialback", S2sAuthMethod::Dialback),
    ] {
        let _ = negotiate_checked(method, &secret);
        group.bench_function(name, |b| {
            b.iter_batched(
                || ends(method),
                |mut ends| {
                    black_box(negotiate(&mut ends, &secret));
                    ends
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();

    let mut group = c.benchmark_group("identity");
    for certificate in certificates() {
        check(&certificate);
        group.bench_function(certificate.name, |b| {
            b.iter(|| {
                black_box(identity::verify(
                    black_box(&certificate.reference),
                    black_box(&certificate.presented),
                ))
            });
        });
    }
    group.finish();

    let (receiving, originating) = (
        Domain::new("b.example").unwrap(),
        Domain::new("a.example").unwrap(),
    );
    let id = StreamId::new("D60000229F").unwrap();
    let key = secret.key(&receiving, &originating, &id);
    assert!(secret.verify(&receiving, &originating, &id, &key));
    let mut group = c.benchmark_group("dialback_key");
    group.bench_function("key", |b| {
        b.iter(|| black_box(secret.key(black_box(&receiving), &originating, &id)));
    });
    group.bench_function("verify", |b| {
        b.iter(|| black_box(secret.verify(black_box(&receiving), &originating, &id, &key)));
    });
    group.finish();
}

criterion_group!(benches, bench);

/// `S2S_BENCH_ONLY=external|dialback|c2s`: that negotiation `S2S_BENCH_N` times (default
/// 100), each on fresh machines built outside the measured function, then exit.
fn profile_only() -> bool {
    let Ok(what) = std::env::var("S2S_BENCH_ONLY") else {
        return false;
    };
    let n: usize = std::env::var("S2S_BENCH_N").map_or(100, |n| n.parse().unwrap());
    let secret = DialbackSecret::new(SECRET);
    let method = match what.as_str() {
        "external" => S2sAuthMethod::SaslExternal,
        "dialback" => S2sAuthMethod::Dialback,
        "c2s" => {
            let _ = cached_keys();
            for _ in 0..n {
                assert!(c2s_negotiate(&mut pair(cached_keys())));
            }
            println!("c2s: {n} negotiations");
            return true;
        }
        other => panic!("unknown S2S_BENCH_ONLY={other}"),
    };
    for _ in 0..n {
        black_box(negotiate_checked(method, &secret));
    }
    println!("{what}: {n} negotiations");
    true
}

fn main() {
    if profile_only() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
