//! Mechanism selection against what real servers advertised (`../shared/peers/`: Prosody
//! 0.12.3 and ejabberd 23.01, TLS 1.2 and 1.3) and the policy rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

use xmpp_sasl::{
    ChannelBindingType as Cb, ClientPolicy, Gs2Binding, Mechanism, Selection,
    acceptable_mechanisms, select_mechanism,
};

fn parse(names: &[&str]) -> Vec<Mechanism> {
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

/// ejabberd 23.01, post-TLS (identical over TLS 1.2 and 1.3).
fn ejabberd() -> Vec<Mechanism> {
    parse(&[
        "PLAIN",
        "SCRAM-SHA-512-PLUS",
        "SCRAM-SHA-512",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-1",
    ])
}

/// Prosody 0.12.3 with channel binding enabled.
fn prosody_plus() -> Vec<Mechanism> {
    parse(&[
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256-PLUS",
        "PLAIN",
    ])
}

/// Prosody 0.12.3 without channel binding.
fn prosody() -> Vec<Mechanism> {
    parse(&["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "X-UNKNOWN"])
}

#[allow(clippy::unnecessary_wraps)] // compared with Option results
fn sel(mechanism: Mechanism, gs2: Gs2Binding) -> Option<(Mechanism, Gs2Binding)> {
    Some((mechanism, gs2))
}

fn pick(
    offered: &[Mechanism],
    cb: Option<&[Cb]>,
    p: &ClientPolicy,
) -> Option<(Mechanism, Gs2Binding)> {
    select_mechanism(offered, cb, p).map(|s: Selection| (s.mechanism, s.gs2))
}

#[test]
fn rustls_client_against_ejabberd_over_tls13() {
    // rustls: tls-exporter and tls-server-end-point, no tls-unique. ejabberd advertises no
    // XEP-0440 list, so it binds with tls-unique: -PLUS is unusable, and since -PLUS *was*
    // offered the flag must be `n` (a `y` would make ejabberd abort as a downgrade).
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .binding_types(vec![Cb::TlsExporter, Cb::TlsServerEndPoint]);
    assert_eq!(
        pick(&ejabberd(), None, &p),
        sel(Mechanism::ScramSha512, Gs2Binding::None)
    );
}

#[test]
fn tls_unique_client_against_ejabberd_over_tls12() {
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .binding_types(vec![Cb::TlsUnique, Cb::TlsExporter]);
    assert_eq!(
        pick(&ejabberd(), None, &p),
        sel(Mechanism::ScramSha512Plus, Gs2Binding::Bound(Cb::TlsUnique))
    );
    assert_eq!(
        pick(&prosody_plus(), None, &p),
        sel(Mechanism::ScramSha256Plus, Gs2Binding::Bound(Cb::TlsUnique))
    );
}

#[test]
fn xep0440_list_chooses_the_type() {
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .binding_types(vec![Cb::TlsExporter, Cb::TlsServerEndPoint]);
    assert_eq!(
        pick(
            &ejabberd(),
            Some(&[Cb::TlsServerEndPoint, Cb::TlsExporter]),
            &p
        ),
        sel(
            Mechanism::ScramSha512Plus,
            Gs2Binding::Bound(Cb::TlsExporter)
        )
    );
    assert_eq!(
        pick(&ejabberd(), Some(&[Cb::TlsServerEndPoint]), &p),
        sel(
            Mechanism::ScramSha512Plus,
            Gs2Binding::Bound(Cb::TlsServerEndPoint)
        )
    );
    // Advertised types the client cannot produce: no -PLUS, and `n`.
    assert_eq!(
        pick(&ejabberd(), Some(&[Cb::TlsUnique]), &p),
        sel(Mechanism::ScramSha512, Gs2Binding::None)
    );
}

#[test]
fn server_without_plus_gets_y_from_a_binding_capable_client() {
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .binding_types(vec![Cb::TlsExporter]);
    assert_eq!(
        pick(&prosody(), None, &p),
        sel(Mechanism::ScramSha256, Gs2Binding::ClientOnly)
    );
    // A client with no binding at all says `n`.
    let p = ClientPolicy::new().tls(true).password(true);
    assert_eq!(
        pick(&prosody(), None, &p),
        sel(Mechanism::ScramSha256, Gs2Binding::None)
    );
}

#[test]
fn plain_rules() {
    let plain_only = [Mechanism::Plain];
    let p = ClientPolicy::new().password(true);
    assert_eq!(pick(&plain_only, None, &p), None, "never PLAIN without TLS");
    assert_eq!(
        pick(&plain_only, None, &p.clone().allow_plain_without_tls(true)),
        sel(Mechanism::Plain, Gs2Binding::None)
    );
    let tls = ClientPolicy::new().password(true).tls(true);
    assert_eq!(
        pick(&plain_only, None, &tls),
        sel(Mechanism::Plain, Gs2Binding::None)
    );
    assert_eq!(
        pick(&plain_only, None, &tls.clone().forbid_plain(true)),
        None
    );
    // SCRAM is preferred to PLAIN whatever the server's order.
    assert_eq!(
        pick(&ejabberd(), None, &tls),
        sel(Mechanism::ScramSha512, Gs2Binding::None)
    );
}

#[test]
fn external_anonymous_and_requirements() {
    let offered = [
        Mechanism::External,
        Mechanism::ScramSha256,
        Mechanism::Anonymous,
    ];
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .certificate(true);
    assert_eq!(
        pick(&offered, None, &p),
        sel(Mechanism::External, Gs2Binding::None)
    );
    // No certificate, no TLS for the certificate: no EXTERNAL.
    let p = ClientPolicy::new().certificate(true).password(true);
    assert_eq!(
        pick(&offered, None, &p),
        sel(Mechanism::ScramSha256, Gs2Binding::None)
    );
    // ANONYMOUS only when allowed, and only without a password.
    let p = ClientPolicy::new().tls(true);
    assert_eq!(pick(&offered, None, &p), None);
    assert_eq!(
        pick(&offered, None, &p.allow_anonymous(true)),
        sel(Mechanism::Anonymous, Gs2Binding::None)
    );
    // Channel binding required: nothing when -PLUS is unusable.
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .binding_types(vec![Cb::TlsExporter])
        .require_channel_binding(true);
    assert_eq!(pick(&ejabberd(), None, &p), None);
    assert_eq!(
        pick(&ejabberd(), Some(&[Cb::TlsExporter]), &p),
        sel(
            Mechanism::ScramSha512Plus,
            Gs2Binding::Bound(Cb::TlsExporter)
        )
    );
    // No -PLUS without TLS, even with binding types configured.
    let p = ClientPolicy::new()
        .password(true)
        .binding_types(vec![Cb::TlsUnique]);
    assert_eq!(
        pick(&ejabberd(), None, &p),
        sel(Mechanism::ScramSha512, Gs2Binding::None)
    );
}

fn ranked(
    offered: &[Mechanism],
    cb: Option<&[Cb]>,
    p: &ClientPolicy,
) -> Vec<(Mechanism, Gs2Binding)> {
    acceptable_mechanisms(offered, cb, p)
        .into_iter()
        .map(|s| (s.mechanism, s.gs2))
        .collect()
}

#[test]
fn ranking_follows_the_default_order_and_keeps_gs2_from_the_whole_offer() {
    // rustls over TLS 1.3 against ejabberd: -PLUS unusable (tls-unique only), so every SCRAM
    // carries `n` (ejabberd does bind), then PLAIN.
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .binding_types(vec![Cb::TlsExporter, Cb::TlsServerEndPoint]);
    assert_eq!(
        ranked(&ejabberd(), None, &p),
        vec![
            (Mechanism::ScramSha512, Gs2Binding::None),
            (Mechanism::ScramSha256, Gs2Binding::None),
            (Mechanism::ScramSha1, Gs2Binding::None),
            (Mechanism::Plain, Gs2Binding::None),
        ]
    );
    // With a usable binding the -PLUS variants come first, each bound.
    let bound = Gs2Binding::Bound(Cb::TlsExporter);
    assert_eq!(
        ranked(&ejabberd(), Some(&[Cb::TlsExporter]), &p)[..3],
        [
            (Mechanism::ScramSha512Plus, bound),
            (Mechanism::ScramSha256Plus, bound),
            (Mechanism::ScramSha1Plus, bound),
        ]
    );
    // Prosody without -PLUS: `y` on every SCRAM entry, not only the first.
    assert_eq!(
        ranked(&prosody(), None, &p),
        vec![
            (Mechanism::ScramSha256, Gs2Binding::ClientOnly),
            (Mechanism::ScramSha1, Gs2Binding::ClientOnly),
            (Mechanism::Plain, Gs2Binding::None),
        ]
    );
}

#[test]
fn preference_orders_and_narrows() {
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .preference(vec![
            Mechanism::ScramSha1,
            Mechanism::Plain,
            Mechanism::ScramSha1,
        ]);
    assert_eq!(
        ranked(&ejabberd(), None, &p),
        vec![
            (Mechanism::ScramSha1, Gs2Binding::None),
            (Mechanism::Plain, Gs2Binding::None)
        ]
    );
    // The rules still apply to listed mechanisms: no PLAIN without TLS, no -PLUS without a
    // common binding type, no EXTERNAL without a certificate.
    let p = ClientPolicy::new().password(true).preference(vec![
        Mechanism::External,
        Mechanism::ScramSha256Plus,
        Mechanism::Plain,
    ]);
    assert_eq!(pick(&ejabberd(), None, &p), None);
    assert_eq!(
        pick(&ejabberd(), None, &p.allow_plain_without_tls(true)),
        sel(Mechanism::Plain, Gs2Binding::None)
    );
    // A preferred mechanism the server does not offer is skipped.
    let p = ClientPolicy::new()
        .tls(true)
        .password(true)
        .preference(vec![Mechanism::ScramSha512, Mechanism::ScramSha1]);
    assert_eq!(
        pick(&prosody(), None, &p),
        sel(Mechanism::ScramSha1, Gs2Binding::None)
    );
}
