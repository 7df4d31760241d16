//! Client x server: every mechanism and binding type, and every failure the issue lists,
//! rejected with the right condition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use base64::Engine as _;
use sha2::Digest as _;

use common::{Failed, Store, run, run_with};
use xmpp_sasl::{
    ChannelBinding, ChannelBindingType, Client, ClientConfig, Condition, Error, Gs2Binding,
    Mechanism, ScramHash, ScramKeys, Server, ServerConfig, ServerStep, StoredCredentials,
};

const CNONCE: &str = "cli3nt-n0nce-fyko+d2lbbFgONRv9qkxdawL";
const SNONCE: &str = "s3rv3r-n0nce-3rfcNHYJY1ZVvWVs7j";

fn exporter() -> ChannelBinding {
    ChannelBinding::new(ChannelBindingType::TlsExporter, [0x5a; 32])
}

fn all_bindings() -> Vec<ChannelBinding> {
    vec![
        ChannelBinding::new(ChannelBindingType::TlsUnique, b"finished-msg".to_vec()),
        ChannelBinding::new(ChannelBindingType::TlsServerEndPoint, [0x33; 32]),
        exporter(),
    ]
}

fn server_config() -> ServerConfig {
    let mut c = ServerConfig::new(SNONCE)
        .tls(true)
        .offer(Mechanism::ALL.to_vec())
        .external_identity("juliet");
    for b in all_bindings() {
        c = c.channel_binding(b);
    }
    c
}

fn client_config() -> ClientConfig {
    ClientConfig::new("juliet", CNONCE).password("r0m30myr0m30")
}

fn scram_pair(mech: Mechanism, gs2: Gs2Binding) -> (Client, Server) {
    let mut cc = client_config().gs2(gs2);
    for b in all_bindings() {
        cc = cc.channel_binding(b);
    }
    (
        Client::new(mech, cc).unwrap(),
        Server::new(mech, server_config()).unwrap(),
    )
}

fn store() -> Store {
    Store::with_user("juliet", "r0m30myr0m30")
}

#[test]
fn every_scram_mechanism_and_binding_type() {
    let store = store();
    for hash in ScramHash::ALL {
        let (mut c, mut s) = scram_pair(Mechanism::scram(hash, false), Gs2Binding::None);
        let id = run(&mut c, &mut s, &store).unwrap();
        assert_eq!(id.authcid.as_deref(), Some("juliet"));
        assert_eq!(id.mechanism, Mechanism::scram(hash, false));
        for t in ChannelBindingType::PREFERENCE {
            let m = Mechanism::scram(hash, true);
            let (mut c, mut s) = scram_pair(m, Gs2Binding::Bound(t));
            let id = run(&mut c, &mut s, &store).unwrap();
            assert_eq!(id.mechanism, m, "{m} {t}");
            assert_eq!(c.gs2(), Some(Gs2Binding::Bound(t)));
        }
    }
}

#[test]
fn plain_external_anonymous() {
    let store = store();
    let mut c = Client::new(Mechanism::Plain, client_config()).unwrap();
    let mut s = Server::new(Mechanism::Plain, server_config()).unwrap();
    assert_eq!(
        run(&mut c, &mut s, &store).unwrap().authcid.as_deref(),
        Some("juliet")
    );

    // PLAIN against each hash's stored credentials.
    for hash in ScramHash::ALL {
        let mut c = Client::new(Mechanism::Plain, client_config()).unwrap();
        let mut s =
            Server::new(Mechanism::Plain, server_config().plain_hashes(vec![hash])).unwrap();
        assert!(run(&mut c, &mut s, &store).is_ok(), "{hash}");
    }

    let mut c = Client::new(Mechanism::External, ClientConfig::new("", CNONCE)).unwrap();
    let mut s = Server::new(Mechanism::External, server_config()).unwrap();
    let id = run(&mut c, &mut s, &store).unwrap();
    assert_eq!((id.authcid.as_deref(), id.authzid), (Some("juliet"), None));

    let mut c = Client::new(
        Mechanism::External,
        ClientConfig::new("", CNONCE).authzid("romeo"),
    )
    .unwrap();
    let mut s = Server::new(Mechanism::External, server_config()).unwrap();
    let err = run(&mut c, &mut s, &store).unwrap_err();
    assert_eq!(err, Failed::Server(Error::InvalidAuthzid));
    assert_eq!(err.error().condition(), Condition::InvalidAuthzid);

    let mut c = Client::new(
        Mechanism::Anonymous,
        ClientConfig::new("", CNONCE).anonymous_trace("sirhc@example.org"),
    )
    .unwrap();
    let mut s = Server::new(Mechanism::Anonymous, server_config()).unwrap();
    let id = run(&mut c, &mut s, &store).unwrap();
    assert_eq!(id.authcid, None);
    assert_eq!(id.trace.as_deref(), Some("sirhc@example.org"));
}

#[test]
fn wrong_password_every_mechanism() {
    let store = store();
    for m in [
        Mechanism::Plain,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ] {
        let mut c = Client::new(m, ClientConfig::new("juliet", CNONCE).password("wrong")).unwrap();
        let mut s = Server::new(m, server_config()).unwrap();
        let err = run(&mut c, &mut s, &store).unwrap_err();
        assert_eq!(err, Failed::Server(Error::InvalidProof), "{m}");
        assert_eq!(err.error().condition(), Condition::NotAuthorized);
    }
}

#[test]
fn unknown_user_looks_like_wrong_password() {
    let store = store();
    for m in [Mechanism::Plain, Mechanism::ScramSha256] {
        let mut c = Client::new(m, ClientConfig::new("nobody", CNONCE).password("x")).unwrap();
        let mut s = Server::new(m, server_config()).unwrap();
        let err = run(&mut c, &mut s, &store).unwrap_err();
        assert_eq!(err, Failed::Server(Error::UnknownUser), "{m}");
        assert_eq!(err.error().condition(), Condition::NotAuthorized);
    }
    // Same salt for the same unknown user on two attempts.
    let first = |user: &str| {
        let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
        match s
            .step(&store, format!("n,,n={user},r=abc").as_bytes())
            .unwrap()
        {
            ServerStep::Challenge(c) => String::from_utf8(c).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(first("nobody"), first("nobody"));
    assert_ne!(first("nobody"), first("somebody"));
}

#[test]
fn wrong_binding_data() {
    let store = store();
    for t in ChannelBindingType::PREFERENCE {
        let m = Mechanism::ScramSha256Plus;
        let c_cfg = client_config()
            .gs2(Gs2Binding::Bound(t))
            .channel_binding(ChannelBinding::new(t, b"a different TLS session".to_vec()));
        let mut c = Client::new(m, c_cfg).unwrap();
        let mut s = Server::new(m, server_config()).unwrap();
        let err = run(&mut c, &mut s, &store).unwrap_err();
        assert_eq!(err, Failed::Server(Error::ChannelBindingMismatch), "{t}");
        assert_eq!(err.error().condition(), Condition::NotAuthorized);
    }
    // A type the server has no data for.
    let mut s = Server::new(
        Mechanism::ScramSha256Plus,
        ServerConfig::new(SNONCE)
            .tls(true)
            .channel_binding(exporter()),
    )
    .unwrap();
    let err = s.step(&store, b"p=tls-unique,,n=juliet,r=abc").unwrap_err();
    assert_eq!(
        err,
        Error::UnsupportedChannelBinding(Some(ChannelBindingType::TlsUnique))
    );
    let mut s = Server::new(
        Mechanism::ScramSha256Plus,
        ServerConfig::new(SNONCE)
            .tls(true)
            .channel_binding(exporter()),
    )
    .unwrap();
    let err = s.step(&store, b"p=tls-foo,,n=juliet,r=abc").unwrap_err();
    assert_eq!(err, Error::UnsupportedChannelBinding(None));
}

#[test]
fn gs2_flag_must_fit_the_mechanism() {
    let store = store();
    // p= with a non-PLUS mechanism, and n with a PLUS mechanism.
    let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
    assert_eq!(
        s.step(&store, b"p=tls-exporter,,n=juliet,r=abc")
            .unwrap_err(),
        Error::ChannelBindingFlagMismatch
    );
    let mut s = Server::new(Mechanism::ScramSha256Plus, server_config()).unwrap();
    assert_eq!(
        s.step(&store, b"n,,n=juliet,r=abc").unwrap_err(),
        Error::ChannelBindingFlagMismatch
    );
    // The client refuses the same combinations.
    assert_eq!(
        Client::new(
            Mechanism::ScramSha256,
            client_config().gs2(Gs2Binding::Bound(ChannelBindingType::TlsExporter))
        )
        .unwrap_err(),
        Error::ChannelBindingFlagMismatch
    );
    assert_eq!(
        Client::new(Mechanism::ScramSha256Plus, client_config()).unwrap_err(),
        Error::UnsupportedChannelBinding(None)
    );
}

/// Replaces the attribute `name` in a comma-separated SCRAM message.
fn edit_attr(msg: &[u8], name: char, f: impl Fn(&str) -> String) -> Vec<u8> {
    let s = String::from_utf8(msg.to_vec()).unwrap();
    s.split(',')
        .map(|a| {
            if a.starts_with(name) && a.as_bytes().get(1) == Some(&b'=') {
                f(a)
            } else {
                a.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

/// Runs SCRAM-SHA-256 with the client-final-message rewritten by `f`.
fn tampered_final(f: impl Fn(Vec<u8>) -> Vec<u8>) -> Failed {
    let store = store();
    let (mut c, mut s) = scram_pair(Mechanism::ScramSha256, Gs2Binding::None);
    run_with(&mut c, &mut s, &store, |i, m| if i == 1 { f(m) } else { m }).unwrap_err()
}

#[test]
fn tampered_client_final() {
    // Flipped proof bit.
    let err = tampered_final(|m| {
        edit_attr(&m, 'p', |a| {
            let mut p = a.to_owned();
            let last = if p.ends_with("A=") { "B=" } else { "A=" };
            p.truncate(p.len() - 2);
            p + last
        })
    });
    assert_eq!(err, Failed::Server(Error::InvalidProof));
    assert_eq!(err.error().condition(), Condition::NotAuthorized);
    // Truncated: proof missing; proof cut short.
    let err = tampered_final(|m| {
        let s = String::from_utf8(m).unwrap();
        s.as_bytes()[..s.find(",p=").unwrap()].to_vec()
    });
    assert_eq!(err, Failed::Server(Error::Malformed("missing proof")));
    assert_eq!(err.error().condition(), Condition::MalformedRequest);
    let err = tampered_final(|m| edit_attr(&m, 'p', |_| "p=AAAA".to_owned()));
    assert_eq!(err, Failed::Server(Error::InvalidProof));
    // Reordered: r before c; proof not last.
    let err = tampered_final(|m| {
        let s = String::from_utf8(m).unwrap();
        let v: Vec<&str> = s.split(',').collect();
        [v[1], v[0], v[2]].join(",").into_bytes()
    });
    assert_eq!(err.error().condition(), Condition::MalformedRequest);
    let err = tampered_final(|m| {
        let s = String::from_utf8(m).unwrap();
        let v: Vec<&str> = s.split(',').collect();
        [v[0], v[2], v[1]].join(",").into_bytes()
    });
    assert_eq!(err.error().condition(), Condition::MalformedRequest);
    // Unknown mandatory extension.
    let err = tampered_final(|m| {
        let mut v = b"m=foo,".to_vec();
        v.extend(m);
        v
    });
    assert_eq!(err, Failed::Server(Error::MandatoryExtension));
    // Bad base64 in c=.
    let err = tampered_final(|m| edit_attr(&m, 'c', |_| "c=b!ws".to_owned()));
    assert_eq!(err, Failed::Server(Error::BadBase64("channel binding")));
    assert_eq!(err.error().condition(), Condition::IncorrectEncoding);
    // Nonce mismatch.
    let err = tampered_final(|m| edit_attr(&m, 'r', |a| format!("{a}x")));
    assert_eq!(err, Failed::Server(Error::NonceMismatch));
    // An optional extension between r= and p= is ignored (but covered by the proof).
    let store = store();
    let (mut c, mut s) = scram_pair(Mechanism::ScramSha256, Gs2Binding::None);
    let err = run_with(&mut c, &mut s, &store, |i, m| {
        if i == 1 {
            let s = String::from_utf8(m).unwrap();
            s.replace(",p=", ",x=ext,p=").into_bytes()
        } else {
            m
        }
    })
    .unwrap_err();
    assert_eq!(err, Failed::Server(Error::InvalidProof));
}

#[test]
fn tampered_client_first() {
    let store = store();
    let cases: [(&[u8], Condition); 9] = [
        (b"m=x,n=juliet,r=abc", Condition::MalformedRequest),
        (b"n,,m=x,n=juliet,r=abc", Condition::MalformedRequest),
        (b"n,,r=abc,n=juliet", Condition::MalformedRequest),
        (b"n,,n=juliet", Condition::MalformedRequest),
        (b"n,,n=jul=ZZiet,r=abc", Condition::IncorrectEncoding),
        (b"n,,n=,r=abc", Condition::MalformedRequest),
        (b"n,,n=juliet,r=a,b", Condition::MalformedRequest),
        (b"n,,n=juliet,r=", Condition::MalformedRequest),
        (b"\xff,,n=juliet,r=abc", Condition::IncorrectEncoding),
    ];
    for (msg, cond) in cases {
        let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
        let err = s.step(&store, msg).unwrap_err();
        assert_eq!(
            err.condition(),
            cond,
            "{:?}: {err}",
            String::from_utf8_lossy(msg)
        );
    }
    let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
    assert_eq!(
        s.step(&store, &vec![b'a'; 10_000]).unwrap_err(),
        Error::TooLong
    );
}

/// A client that has sent its first message, and the server-first a hostile server sends.
fn client_sees(server_first: &str) -> Error {
    let mut c = Client::new(Mechanism::ScramSha256, client_config()).unwrap();
    let _ = c.start().unwrap();
    c.step(server_first.as_bytes()).unwrap_err()
}

#[test]
fn hostile_server_first() {
    let r = format!("r={CNONCE}srv");
    assert_eq!(
        client_sees(&format!("{r},s=QSXCR+Q6sek8bf92,i=1")),
        Error::IterationCountTooLow(1)
    );
    assert_eq!(
        client_sees(&format!("{r},s=QSXCR+Q6sek8bf92,i=2147483648")),
        Error::IterationCountTooHigh(2_147_483_648)
    );
    assert_eq!(
        client_sees(&format!("{r},s=QSXCR+Q6sek8bf92,i=-5")).condition(),
        Condition::MalformedRequest
    );
    assert_eq!(
        client_sees(&format!("{r},s=QSXCR+Q6sek8bf9!,i=4096")),
        Error::BadBase64("salt")
    );
    assert_eq!(client_sees(&format!("{r},s=,i=4096")), Error::EmptySalt);
    assert_eq!(
        client_sees(&format!("r={CNONCE},s=QSXCR+Q6sek8bf92,i=4096")),
        Error::NonceMismatch
    );
    assert_eq!(
        client_sees("r=other,s=QSXCR+Q6sek8bf92,i=4096"),
        Error::NonceMismatch
    );
    assert_eq!(
        client_sees(&format!("s=QSXCR+Q6sek8bf92,{r},i=4096")),
        Error::Malformed("nonce")
    );
    assert_eq!(
        client_sees(&format!("{r},s=QSXCR+Q6sek8bf92")),
        Error::Malformed("iteration count")
    );
    assert_eq!(
        client_sees(&format!("m=x,{r},s=QSXCR+Q6sek8bf92,i=4096")),
        Error::MandatoryExtension
    );
    assert_eq!(client_sees("e=other-error"), Error::Malformed("nonce"));
    // The ceiling is configurable.
    let mut c = Client::new(
        Mechanism::ScramSha256,
        client_config().iteration_limits(4096, 10_000),
    )
    .unwrap();
    let _ = c.start().unwrap();
    assert_eq!(
        c.step(format!("{r},s=QSXCR+Q6sek8bf92,i=10001").as_bytes())
            .unwrap_err(),
        Error::IterationCountTooHigh(10_001)
    );
}

#[test]
fn iteration_counts_one_and_two_to_the_31_end_to_end() {
    // Servers holding such credentials: the client refuses before any PBKDF2.
    for (iterations, expected) in [
        (1u32, Error::IterationCountTooLow(1)),
        (1u32 << 31, Error::IterationCountTooHigh(1 << 31)),
    ] {
        let mut store = Store::default();
        let creds = StoredCredentials::from_parts(
            ScramHash::Sha256,
            b"salt",
            iterations,
            &[1; 32],
            &[2; 32],
        )
        .unwrap();
        store
            .creds
            .insert(("juliet".into(), ScramHash::Sha256), creds);
        let (mut c, mut s) = scram_pair(Mechanism::ScramSha256, Gs2Binding::None);
        let err = run(&mut c, &mut s, &store).unwrap_err();
        assert_eq!(err, Failed::Client(expected));
    }
}

#[test]
fn success_without_server_proof_is_refused() {
    let store = store();
    let (mut c, mut s) = scram_pair(Mechanism::ScramSha256, Gs2Binding::None);
    let first = c.start().unwrap().unwrap();
    let ServerStep::Challenge(ch) = s.step(&store, &first).unwrap() else {
        panic!()
    };
    let _ = c.step(&ch).unwrap();
    // A MITM answers <success/> with no additional data.
    assert_eq!(c.finish(None).unwrap_err(), Error::PrematureSuccess);
    assert!(c.scram_keys().is_none());

    // Before even the first challenge.
    let (mut c, _) = scram_pair(Mechanism::ScramSha256, Gs2Binding::None);
    let _ = c.start().unwrap();
    assert_eq!(c.finish(None).unwrap_err(), Error::PrematureSuccess);
}

#[test]
fn server_final_as_challenge_then_empty_success() {
    // RFC 6120 §6.3.10 alternative: v= in a <challenge/>, then an empty <success/>.
    let store = store();
    let (mut c, mut s) = scram_pair(Mechanism::ScramSha1, Gs2Binding::None);
    let first = c.start().unwrap().unwrap();
    let ServerStep::Challenge(ch) = s.step(&store, &first).unwrap() else {
        panic!()
    };
    let last = c.step(&ch).unwrap();
    let ServerStep::Success {
        additional_data: Some(v),
        ..
    } = s.step(&store, &last).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.step(&v).unwrap(), b"");
    c.finish(None).unwrap();
    assert!(c.scram_keys().is_some());
}

#[test]
fn key_cache_skips_the_password() {
    let store = store();
    let (mut c, mut s) = scram_pair(Mechanism::ScramSha256, Gs2Binding::None);
    run(&mut c, &mut s, &store).unwrap();
    let keys: ScramKeys = c.scram_keys().unwrap().clone();
    assert_eq!(keys.iterations(), 4096);
    assert_eq!(keys.salt(), b"NaCl-for-tests");

    // No password at all: the cached keys suffice for the same salt and count.
    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientConfig::new("juliet", CNONCE).cached_keys(keys.clone()),
    )
    .unwrap();
    let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
    run(&mut c, &mut s, &store).unwrap();

    // The server re-salted: without a password the cache cannot help.
    let mut store2 = Store::default();
    store2.add("juliet", "r0m30myr0m30", 5000);
    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientConfig::new("juliet", CNONCE).cached_keys(keys.clone()),
    )
    .unwrap();
    let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
    assert_eq!(
        run(&mut c, &mut s, &store2).unwrap_err(),
        Failed::Client(Error::MissingCredentials)
    );
    // ...with the password it derives again and succeeds.
    let mut c = Client::new(
        Mechanism::ScramSha256,
        client_config().cached_keys(keys.clone()),
    )
    .unwrap();
    let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
    run(&mut c, &mut s, &store2).unwrap();
    assert_eq!(c.scram_keys().unwrap().iterations(), 5000);

    // Wrong cached keys fail like a wrong password.
    let bad = ScramKeys::from_parts(
        ScramHash::Sha256,
        b"NaCl-for-tests",
        4096,
        &[9; 32],
        &[9; 32],
    )
    .unwrap();
    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientConfig::new("juliet", CNONCE).cached_keys(bad),
    )
    .unwrap();
    let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
    assert_eq!(
        run(&mut c, &mut s, &store).unwrap_err(),
        Failed::Server(Error::InvalidProof)
    );
}

#[test]
fn xep0474_downgrade_protection_both_sides() {
    let store = store();
    let offered: Vec<String> = server_config()
        .mechanisms()
        .iter()
        .map(ToString::to_string)
        .collect();
    let cb = Some(vec![
        "tls-exporter".to_owned(),
        "tls-server-end-point".to_owned(),
    ]);
    let server = || {
        Server::new(
            Mechanism::ScramSha256,
            server_config().advertised_binding_types(vec![
                ChannelBindingType::TlsServerEndPoint,
                ChannelBindingType::TlsExporter,
            ]),
        )
        .unwrap()
    };
    // What the client saw matches: success.
    let mut c = Client::new(
        Mechanism::ScramSha256,
        client_config().advertised(offered.clone(), cb.clone()),
    )
    .unwrap();
    let mut s = server();
    run(&mut c, &mut s, &store).unwrap();

    // A MITM stripped the -PLUS mechanisms from the offer: detected.
    let stripped: Vec<String> = offered
        .iter()
        .filter(|m| !m.ends_with("-PLUS"))
        .cloned()
        .collect();
    let mut c = Client::new(
        Mechanism::ScramSha256,
        client_config().advertised(stripped, cb.clone()),
    )
    .unwrap();
    let mut s = server();
    let err = run(&mut c, &mut s, &store).unwrap_err();
    assert_eq!(err, Failed::Client(Error::DowngradeDetected));
    // ...or the XEP-0440 list.
    let mut c = Client::new(
        Mechanism::ScramSha256,
        client_config().advertised(
            offered.clone(),
            Some(vec!["tls-server-end-point".to_owned()]),
        ),
    )
    .unwrap();
    let mut s = server();
    assert_eq!(
        run(&mut c, &mut s, &store).unwrap_err(),
        Failed::Client(Error::DowngradeDetected)
    );

    // The d= value is the documented hash, sent in server-first.
    let mut s = server();
    let ServerStep::Challenge(ch) = s.step(&store, b"n,,n=juliet,r=abc").unwrap() else {
        panic!()
    };
    let ch = String::from_utf8(ch).unwrap();
    let d = ch.rsplit_once(",d=").unwrap().1;
    let mut sorted = offered.clone();
    sorted.sort();
    let text = format!("{}|tls-exporter,tls-server-end-point", sorted.join(","));
    assert_eq!(
        d,
        xmpp_sasl::downgrade_hash(ScramHash::Sha256, &offered, cb.as_deref())
    );
    assert_eq!(
        d,
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
    );

    // A server without XEP-0474 (no d=) is accepted.
    let mut c = Client::new(
        Mechanism::ScramSha256,
        client_config().advertised(vec!["bogus".into()], None),
    )
    .unwrap();
    let mut s = Server::new(
        Mechanism::ScramSha256,
        server_config().downgrade_protection(false),
    )
    .unwrap();
    run(&mut c, &mut s, &store).unwrap();
}

#[test]
fn authzid_handling() {
    let mut store = store();
    store.grants.push(("juliet".into(), "admin,x=y".into()));
    for m in [Mechanism::Plain, Mechanism::ScramSha256] {
        let mut c = Client::new(m, client_config().authzid("admin,x=y")).unwrap();
        let mut s = Server::new(m, server_config()).unwrap();
        assert_eq!(
            run(&mut c, &mut s, &store).unwrap().authzid.as_deref(),
            Some("admin,x=y")
        );
        let mut c = Client::new(m, client_config().authzid("root")).unwrap();
        let mut s = Server::new(m, server_config()).unwrap();
        let err = run(&mut c, &mut s, &store).unwrap_err();
        assert_eq!(err, Failed::Server(Error::InvalidAuthzid), "{m}");
        assert_eq!(err.error().condition(), Condition::InvalidAuthzid);
    }
}

#[test]
fn store_conditions_and_policy_conditions() {
    let mut store = store();
    for cond in [
        Condition::AccountDisabled,
        Condition::CredentialsExpired,
        Condition::TemporaryAuthFailure,
    ] {
        store.conditions.insert("juliet".into(), cond);
        for m in [Mechanism::Plain, Mechanism::ScramSha1] {
            let mut c = Client::new(m, client_config()).unwrap();
            let mut s = Server::new(m, server_config()).unwrap();
            let err = run(&mut c, &mut s, &store).unwrap_err();
            assert_eq!(err.error().condition(), cond, "{m}");
        }
    }
    // Policy at Server::new.
    let plain_no_tls = Server::new(Mechanism::Plain, ServerConfig::new(SNONCE)).unwrap_err();
    assert_eq!(plain_no_tls.condition(), Condition::EncryptionRequired);
    assert!(
        Server::new(
            Mechanism::Plain,
            ServerConfig::new(SNONCE).allow_plain_without_tls(true)
        )
        .is_ok()
    );
    let weak = Server::new(
        Mechanism::ScramSha256,
        server_config().require_channel_binding(true),
    )
    .unwrap_err();
    assert_eq!(weak.condition(), Condition::MechanismTooWeak);
    let not_offered = Server::new(
        Mechanism::ScramSha1,
        server_config().offer(vec![Mechanism::ScramSha256]),
    )
    .unwrap_err();
    assert_eq!(not_offered.condition(), Condition::InvalidMechanism);
    let plus_no_tls = Server::new(
        Mechanism::ScramSha256Plus,
        ServerConfig::new(SNONCE).channel_binding(exporter()),
    )
    .unwrap_err();
    assert_eq!(plus_no_tls.condition(), Condition::InvalidMechanism);
    assert_eq!(Error::Aborted.condition(), Condition::Aborted);
    // What a default TLS server advertises.
    assert_eq!(
        ServerConfig::new(SNONCE).tls(true).mechanisms(),
        [
            Mechanism::ScramSha512,
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain
        ]
    );
    assert_eq!(
        ServerConfig::new(SNONCE).mechanisms(),
        [
            Mechanism::ScramSha512,
            Mechanism::ScramSha256,
            Mechanism::ScramSha1
        ]
    );
}

#[test]
fn plain_server_rejects_malformed() {
    let store = store();
    let cases: [(&[u8], Condition); 6] = [
        (b"juliet\0r0m30myr0m30", Condition::MalformedRequest),
        (b"\0juliet\0r0m30myr0m30\0", Condition::MalformedRequest),
        (b"\0\0r0m30myr0m30", Condition::MalformedRequest),
        (b"\0juliet\0", Condition::MalformedRequest),
        (b"\0jul\xffiet\0r0m30myr0m30", Condition::IncorrectEncoding),
        (b"\0juliet\0pass\x07word", Condition::NotAuthorized),
    ];
    for (msg, cond) in cases {
        let mut s = Server::new(Mechanism::Plain, server_config()).unwrap();
        assert_eq!(
            s.step(&store, msg).unwrap_err().condition(),
            cond,
            "{msg:?}"
        );
    }
    let mut s = Server::new(Mechanism::Plain, server_config()).unwrap();
    assert!(s.step(&store, b"\0juliet\0r0m30myr0m30").is_ok());
    assert!(
        s.step(&store, b"\0juliet\0r0m30myr0m30").is_err(),
        "one message only"
    );
}

#[test]
fn usage_errors() {
    assert!(
        Client::new(
            Mechanism::ScramSha256,
            ClientConfig::new("juliet", "bad,nonce").password("x")
        )
        .unwrap_err()
        .is_usage()
    );
    assert_eq!(
        Client::new(Mechanism::ScramSha256, ClientConfig::new("juliet", CNONCE)).unwrap_err(),
        Error::MissingCredentials
    );
    assert!(
        Server::new(Mechanism::ScramSha256, ServerConfig::new("").tls(true))
            .unwrap_err()
            .is_usage()
    );
    let mut c = Client::new(Mechanism::ScramSha256, client_config()).unwrap();
    assert!(c.step(b"r=x").unwrap_err().is_usage());
    let _ = c.start().unwrap();
    assert!(c.start().unwrap_err().is_usage());
    let mut c = Client::new(Mechanism::Plain, client_config()).unwrap();
    let _ = c.start().unwrap();
    assert!(c.step(b"").is_err());
}

#[test]
fn pluggable_password_preparation_must_match_on_both_sides() {
    // A stand-in for PRECIS OpaqueString: keeps compatibility characters that SASLprep's NFKC
    // folds (U+FF50 FULLWIDTH P stays as is).
    fn keep(s: &str) -> Option<String> {
        (!s.is_empty()).then(|| s.to_owned())
    }
    fn refuse(_: &str) -> Option<String> {
        None
    }
    let password = "\u{FF50}ass";
    let mut store = Store::default();
    for hash in ScramHash::ALL {
        let c = StoredCredentials::derive(
            hash,
            password,
            xmpp_sasl::PasswordPrep::Custom(keep),
            b"salt",
            4096,
        )
        .unwrap();
        store.creds.insert(("juliet".into(), hash), c);
    }
    for m in [Mechanism::Plain, Mechanism::ScramSha256] {
        let cfg = || ClientConfig::new("juliet", CNONCE).password(password);
        let server = || {
            Server::new(
                m,
                server_config().prep(xmpp_sasl::PasswordPrep::Custom(keep)),
            )
        };
        // Same profile: success.
        let mut c = Client::new(m, cfg().prep(xmpp_sasl::PasswordPrep::Custom(keep))).unwrap();
        run(&mut c, &mut server().unwrap(), &store).unwrap();
        // SASLprep on the client maps U+FF50 to 'p': a different password.
        let mut c = Client::new(m, cfg()).unwrap();
        assert_eq!(
            run(&mut c, &mut server().unwrap(), &store).unwrap_err(),
            Failed::Server(Error::InvalidProof),
            "{m}"
        );
    }
    // A profile that refuses the password fails before anything is sent.
    assert_eq!(
        Client::new(
            Mechanism::ScramSha256,
            client_config().prep(xmpp_sasl::PasswordPrep::Custom(refuse))
        )
        .unwrap_err(),
        Error::PasswordPreparation
    );
}

#[test]
fn zero_length_message() {
    // `=` in <auth/>: malformed for PLAIN and SCRAM, "no authzid"/"no trace" otherwise.
    let store = store();
    for m in [
        Mechanism::Plain,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256Plus,
    ] {
        let mut s = Server::new(m, server_config()).unwrap();
        assert_eq!(
            s.step(&store, b"").unwrap_err().condition(),
            Condition::MalformedRequest,
            "{m}"
        );
    }
    for m in [Mechanism::External, Mechanism::Anonymous] {
        let mut s = Server::new(m, server_config()).unwrap();
        assert!(
            matches!(s.step(&store, b""), Ok(ServerStep::Success { .. })),
            "{m}"
        );
    }
}
