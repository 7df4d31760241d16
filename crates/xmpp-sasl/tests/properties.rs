//! Property tests: arbitrary bytes at any step of either side never panic, and never produce a
//! success that was not earned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use common::Store;
use proptest::prelude::*;
use xmpp_sasl::{
    ChannelBinding, ChannelBindingType, Client, ClientConfig, Gs2Binding, Mechanism, Server,
    ServerConfig, ServerStep,
};

const CNONCE: &str = "cnonce";

fn cheap_store() -> Store {
    let mut s = Store::default();
    s.add("juliet", "pw", 1);
    s
}

fn server(m: Mechanism) -> Server {
    let c = ServerConfig::new("snonce")
        .tls(true)
        .offer(Mechanism::ALL.to_vec())
        .external_identity("juliet")
        .unknown_user_mock(b"k", 1)
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            [1u8; 32],
        ));
    Server::new(m, c).unwrap()
}

fn client(m: Mechanism) -> Client {
    let mut c = ClientConfig::new("juliet", CNONCE)
        .password("pw")
        .iteration_limits(1, 16)
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            [1u8; 32],
        ));
    if m.is_plus() {
        c = c.gs2(Gs2Binding::Bound(ChannelBindingType::TlsExporter));
    }
    Client::new(m, c).unwrap()
}

fn mechanism() -> impl Strategy<Value = Mechanism> {
    proptest::sample::select(Mechanism::ALL.to_vec())
}

/// Bytes biased toward SCRAM syntax so the parsers get past their first checks.
fn scramish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[nyp=a-z,rsivecm0-9A-Za-z+/]{0,120}".prop_map(String::into_bytes),
        "(n|y|p=tls-exporter),(a=[a-z=23CD]{0,6})?,n=[a-z=]{0,6},r=[a-z]{0,8}(,[a-z]=[a-z]{0,4}){0,3}"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_first_step_never_panics(m in mechanism(), msg in scramish()) {
        let store = cheap_store();
        let mut s = server(m);
        match s.step(&store, &msg) {
            // SCRAM never succeeds on the first message.
            Ok(ServerStep::Success { .. }) => prop_assert!(m.scram_hash().is_none()),
            Ok(ServerStep::Challenge(c)) => prop_assert!(m.scram_hash().is_some() && !c.is_empty()),
            Ok(_) => {}
            Err(e) => { let _ = (e.condition(), e.to_string()); }
        }
    }

    #[test]
    fn server_second_step_never_succeeds_on_garbage(hash in 0usize..3, plus: bool, msg in scramish()) {
        let m = Mechanism::scram(xmpp_sasl::ScramHash::ALL[hash], plus);
        let store = cheap_store();
        let mut s = server(m);
        let first = if plus { "p=tls-exporter,,n=juliet,r=abc" } else { "n,,n=juliet,r=abc" };
        prop_assert!(matches!(s.step(&store, first.as_bytes()), Ok(ServerStep::Challenge(_))));
        prop_assert!(s.step(&store, &msg).is_err());
        // And a failed session stays failed.
        prop_assert!(s.step(&store, &msg).is_err());
    }

    #[test]
    fn client_steps_never_panic(m in mechanism(), a in scramish(), b in scramish()) {
        let mut c = client(m);
        let _ = c.start();
        let _ = c.step(&a);
        let _ = c.step(&b);
        // Arbitrary success data never authenticates a SCRAM server.
        if m.scram_hash().is_some() {
            prop_assert!(c.finish(Some(&b)).is_err());
            prop_assert!(c.scram_keys().is_none());
        } else {
            let _ = c.finish(Some(&b));
        }
    }

    #[test]
    fn client_server_first_variants(salt in "[A-Za-z0-9+/]{0,12}={0,2}", i in "[0-9]{0,12}", ext in "(,[a-z]=[a-z]{0,3}){0,2}", fin in scramish()) {
        let mut c = client(Mechanism::ScramSha256);
        let _ = c.start();
        let sf = format!("r={CNONCE}xyz,s={salt},i={i}{ext}");
        if c.step(sf.as_bytes()).is_ok() {
            prop_assert!(c.finish(Some(&fin)).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Flipping any one byte of any client message makes the exchange fail; it never succeeds
    /// and never panics.
    #[test]
    fn any_tampered_byte_fails(m in mechanism(), step in 0usize..2, pos: prop::sample::Index, bit in 0u8..8) {
        prop_assume!(m != Mechanism::Anonymous && m != Mechanism::External);
        let store = cheap_store();
        let mut c = client(m);
        let mut s = server(m);
        let mut tampered = false;
        let result = common::run_with(&mut c, &mut s, &store, |i, mut msg| {
            if i == step && !msg.is_empty() {
                let p = pos.index(msg.len());
                msg[p] ^= 1 << bit;
                tampered = true;
            }
            msg
        });
        if tampered {
            prop_assert!(result.is_err(), "{m} step {step}: {result:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any username and authzid (with `,` and `=` to escape, non-ASCII, ...) survives the
    /// SCRAM round trip exactly.
    #[test]
    fn names_survive_scram_escaping(user in "[a-z,=\u{e9}\u{4e2d} ]{1,12}", authz in "[a-z,=@.]{1,12}") {
        let mut store = Store::default();
        store.add(&user, "pw", 1);
        store.grants.push((user.clone(), authz.clone()));
        let mut c = Client::new(
            Mechanism::ScramSha256,
            ClientConfig::new(user.clone(), CNONCE)
                .password("pw")
                .authzid(authz.clone())
                .iteration_limits(1, 16),
        )
        .unwrap();
        let mut s = server(Mechanism::ScramSha256);
        let id = common::run(&mut c, &mut s, &store).unwrap();
        prop_assert_eq!(id.authcid.as_deref(), Some(user.as_str()));
        prop_assert_eq!(id.authzid.as_deref(), Some(authz.as_str()));
    }

    /// SASLprep never panics, and what it accepts it accepts again unchanged when the input
    /// was already prepared ASCII.
    #[test]
    fn saslprep_total(s in "\\PC{0,16}", ascii in "[ -~]{0,16}") {
        let _ = xmpp_sasl::saslprep(&s);
        let prepared = xmpp_sasl::saslprep(&ascii).unwrap();
        prop_assert_eq!(prepared.as_str(), ascii.as_str());
    }
}
