//! JID parse + enforce, side by side with the `jid` crate 0.12 in one run.
//!
//! Three corpora: already-lowercase ASCII JIDs, mixed-case ASCII JIDs (enforcement must
//! lowercase the localpart and domainpart), and non-ASCII JIDs (case mapping, NFC, IDNA).
//! Each iteration parses the whole corpus; criterion reports the time per JID (throughput in
//! elements). Run: `cargo bench -p xmpp-benches --bench jid -- --measurement-time 3
//! --warm-up-time 1`, and compare the two functions of each group.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LOWERCASE_ASCII: &[&str] = &[
    "juliet@example.com/balcony",
    "romeo@montague.lit/orchard",
    "benvolio@capulet.example.org",
    "conference.example.net",
    "user123@xmpp.example.com/mobile-4f2a",
    "pubsub.shakespeare.lit",
    "nurse@capulet.lit/kitchen",
    "mercutio@verona.example/laptop",
];

const MIXED_CASE_ASCII: &[&str] = &[
    "Juliet@Example.COM/balcony",
    "Romeo@Montague.LIT/orchard",
    "BENVOLIO@Capulet.Example.org",
    "Conference.Example.NET",
    "User123@XMPP.example.com/Mobile-4F2A",
    "PubSub.Shakespeare.LIT",
    "Nurse@Capulet.lit/Kitchen",
    "Mercutio@Verona.Example/Laptop",
];

const NON_ASCII: &[&str] = &[
    "j\u{FC}rgen@m\u{FC}ller.de/k\u{FC}che",
    "\u{D1}and\u{FA}@example.com/jard\u{ED}n",
    "\u{43F}\u{440}\u{438}\u{43C}\u{435}\u{440}@\u{43F}\u{440}\u{438}\u{43C}\u{435}\u{440}.\u{440}\u{444}/\u{440}\u{435}\u{441}\u{443}\u{440}\u{441}",
    "\u{6771}\u{4EAC}@\u{4F8B}\u{3048}.jp/\u{8CC7}\u{6E90}",
    "\u{3C3}\u{3C9}\u{3BA}\u{3C1}\u{3AC}\u{3C4}\u{3B7}\u{3C2}@\u{3B5}\u{3BB}\u{3BB}\u{3AC}\u{3B4}\u{3B1}.gr/\u{3A8}\u{3C5}\u{3C7}\u{3AE}",
    "Fran\u{E7}ois@Caf\u{E9}.example/T\u{E9}l\u{E9}phone",
    "stra\u{DF}e@b\u{FC}cher.example/\u{2665}",
    "\u{C5}sa@s\u{F8}rensen.dk/b\u{E5}t",
];

fn ours(corpus: &[&str]) -> usize {
    corpus
        .iter()
        .map(|s| xmpp_jid::Jid::new(black_box(s)).map_or(0, |j| j.as_str().len()))
        .sum()
}

fn theirs(corpus: &[&str]) -> usize {
    corpus
        .iter()
        .map(|s| jid::Jid::new(black_box(s)).map_or(0, |j| j.as_str().len()))
        .sum()
}

fn bench(c: &mut Criterion) {
    for (name, corpus) in [
        ("lowercase_ascii", LOWERCASE_ASCII),
        ("mixed_case_ascii", MIXED_CASE_ASCII),
        ("non_ascii", NON_ASCII),
    ] {
        // Both implementations must accept every JID, or the comparison is meaningless.
        for s in corpus {
            assert!(xmpp_jid::Jid::new(s).is_ok(), "xmpp-jid rejects {s:?}");
            assert!(jid::Jid::new(s).is_ok(), "jid rejects {s:?}");
        }
        let mut group = c.benchmark_group(format!("jid_parse/{name}"));
        group.throughput(Throughput::Elements(corpus.len() as u64));
        group.bench_function("xmpp-jid", |b| b.iter(|| ours(black_box(corpus))));
        group.bench_function("jid-0.12", |b| b.iter(|| theirs(black_box(corpus))));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
