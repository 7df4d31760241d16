//! Every exchange of `testdata/vectors/scram.json` (RFC 5802, RFC 7677, RFC 6120 §9.1.2, the
//! scramp test suite, cross-checked computed rows) reproduced byte-exact on both sides, and
//! every negative case rejected with the right error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use xmpp_sasl::{
    ChannelBinding, ChannelBindingType, Client, ClientConfig, Condition, Error, Gs2Binding,
    Mechanism, ScramError, ScramHash, Server, ServerConfig, ServerStep, StoredCredentials,
};

use common::Store;

fn load() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/vectors/scram.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("missing {k}"))
}

fn b(v: &Value, k: &str) -> Vec<u8> {
    STANDARD.decode(s(v, k)).unwrap()
}

fn binding(v: &Value) -> Option<ChannelBinding> {
    let cb = &v["channel_binding"];
    if cb.is_null() {
        return None;
    }
    let kind: ChannelBindingType = s(cb, "type").parse().unwrap();
    Some(ChannelBinding::new(
        kind,
        STANDARD.decode(s(cb, "data_b64")).unwrap(),
    ))
}

/// The GS2 flag and authzid of a vector's header, e.g. `n,a=admin=2Cx,`.
fn gs2(v: &Value) -> (Gs2Binding, Option<String>) {
    let h = s(v, "gs2_header");
    let (flag, rest) = h.split_once(',').unwrap();
    let g = match flag {
        "n" => Gs2Binding::None,
        "y" => Gs2Binding::ClientOnly,
        p => Gs2Binding::Bound(p.strip_prefix("p=").unwrap().parse().unwrap()),
    };
    let authz = rest.trim_end_matches(',');
    let authz = authz
        .strip_prefix("a=")
        .map(|a| a.replace("=2C", ",").replace("=3D", "="));
    (g, authz)
}

fn client_for(v: &Value) -> Client {
    let mech: Mechanism = s(v, "mechanism").parse().unwrap();
    let (g, authz) = gs2(v);
    let mut cfg = ClientConfig::new(s(v, "user"), s(v, "client_nonce"))
        .password(s(v, "password"))
        .gs2(g);
    if let Some(a) = authz {
        cfg = cfg.authzid(a);
    }
    if let Some(cb) = binding(v) {
        cfg = cfg.channel_binding(cb);
    }
    Client::new(mech, cfg).unwrap()
}

fn store_for(v: &Value) -> Store {
    let mech: Mechanism = s(v, "mechanism").parse().unwrap();
    let hash = mech.scram_hash().unwrap();
    let creds = StoredCredentials::from_parts(
        hash,
        &b(v, "salt_b64"),
        u32::try_from(v["iterations"].as_u64().unwrap()).unwrap(),
        &b(v, "stored_key_b64"),
        &b(v, "server_key_b64"),
    )
    .unwrap();
    let mut store = Store::default();
    store.creds.insert((s(v, "user").to_owned(), hash), creds);
    if let (_, Some(a)) = gs2(v) {
        store.grants.push((s(v, "user").to_owned(), a));
    }
    store
}

fn server_for(v: &Value) -> Server {
    let mech: Mechanism = s(v, "mechanism").parse().unwrap();
    let hash = mech.scram_hash().unwrap();
    let mut cfg = ServerConfig::new(s(v, "server_nonce"))
        .tls(true)
        .downgrade_protection(false);
    // A `y` vector is only valid against a server that offers no -PLUS.
    cfg = if let Some(cb) = binding(v) {
        cfg.channel_binding(cb).offer(vec![
            Mechanism::scram(hash, true),
            Mechanism::scram(hash, false),
        ])
    } else {
        cfg.offer(vec![Mechanism::scram(hash, false)])
    };
    Server::new(mech, cfg).unwrap()
}

#[test]
fn every_vector_client_side_byte_exact() {
    let data = load();
    let vectors = data["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 12);
    for v in vectors {
        let name = s(v, "name");
        let mut client = client_for(v);
        let first = client.start().unwrap().unwrap();
        assert_eq!(
            first,
            s(v, "client_first").as_bytes(),
            "{name}: client-first"
        );
        let last = client.step(s(v, "server_first").as_bytes()).unwrap();
        assert_eq!(
            last,
            s(v, "client_final").as_bytes(),
            "{name}: client-final"
        );
        client
            .finish(Some(s(v, "server_final").as_bytes()))
            .unwrap();
        let keys = client.scram_keys().expect("keys after success");
        assert_eq!(
            keys.client_key(),
            b(v, "client_key_b64"),
            "{name}: ClientKey"
        );
        assert_eq!(
            keys.server_key(),
            b(v, "server_key_b64"),
            "{name}: ServerKey"
        );
        if let Some(x) = v.get("xmpp_auth_b64") {
            assert_eq!(
                STANDARD.encode(&first),
                x.as_str().unwrap(),
                "{name}: <auth/>"
            );
            assert_eq!(
                STANDARD.encode(&last),
                s(v, "xmpp_response_b64"),
                "{name}: <response/>"
            );
        }
    }
}

#[test]
fn every_vector_server_side_byte_exact() {
    let data = load();
    for v in data["vectors"].as_array().unwrap() {
        let name = s(v, "name");
        let store = store_for(v);
        let mut server = server_for(v);
        let ServerStep::Challenge(c) = server
            .step(&store, s(v, "client_first").as_bytes())
            .unwrap()
        else {
            panic!("{name}: expected a challenge");
        };
        assert_eq!(c, s(v, "server_first").as_bytes(), "{name}: server-first");
        match server
            .step(&store, s(v, "client_final").as_bytes())
            .unwrap()
        {
            ServerStep::Success {
                additional_data,
                identity,
            } => {
                assert_eq!(
                    additional_data.as_deref(),
                    Some(s(v, "server_final").as_bytes()),
                    "{name}: server-final"
                );
                assert_eq!(identity.authcid.as_deref(), Some(s(v, "user")));
                assert_eq!(identity.authzid, gs2(v).1, "{name}: authzid");
            }
            other => panic!("{name}: {other:?}"),
        }
        if let Some(x) = v.get("xmpp_success_b64") {
            assert_eq!(
                STANDARD.encode(s(v, "server_final")),
                x.as_str().unwrap(),
                "{name}: <success/>"
            );
        }
    }
}

#[test]
fn derived_credentials_match_every_vector() {
    let data = load();
    for v in data["vectors"].as_array().unwrap() {
        let mech: Mechanism = s(v, "mechanism").parse().unwrap();
        let c = StoredCredentials::derive(
            mech.scram_hash().unwrap(),
            s(v, "password"),
            xmpp_sasl::PasswordPrep::SaslPrep,
            &b(v, "salt_b64"),
            u32::try_from(v["iterations"].as_u64().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(c.stored_key(), b(v, "stored_key_b64"), "{}", s(v, "name"));
        assert_eq!(c.server_key(), b(v, "server_key_b64"), "{}", s(v, "name"));
    }
}

fn negative<'a>(data: &'a Value, name: &str) -> &'a Value {
    data["negative"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| s(n, "name") == name)
        .unwrap_or_else(|| panic!("negative case {name}"))
}

fn vector<'a>(data: &'a Value, name: &str) -> &'a Value {
    data["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| s(n, "name") == name)
        .unwrap()
}

/// A client that has sent the given client-first (user/nonce of RFC 7677).
fn client_after_first(client_first: &str) -> Client {
    let bare = client_first.strip_prefix("n,,").unwrap();
    let user = bare.split(',').next().unwrap().strip_prefix("n=").unwrap();
    let nonce = bare.split(',').nth(1).unwrap().strip_prefix("r=").unwrap();
    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientConfig::new(user, nonce).password("pencil"),
    )
    .unwrap();
    assert_eq!(c.start().unwrap().unwrap(), client_first.as_bytes());
    c
}

#[test]
fn negative_client_cases() {
    let data = load();
    let cases = [
        ("server-nonce-not-prefixed", Error::NonceMismatch),
        ("iteration-count-zero", Error::IterationCountTooLow(0)),
        ("mandatory-extension", Error::MandatoryExtension),
    ];
    for (name, expected) in cases {
        let n = negative(&data, name);
        let mut c = client_after_first(s(n, "client_first"));
        let err = c.step(s(n, "server_first").as_bytes()).unwrap_err();
        assert_eq!(err, expected, "{name}");
        // The session stays failed.
        assert!(c.finish(Some(b"v=AAAA")).is_err());
    }

    let v = vector(&data, "rfc7677-sha256");
    for (name, expected) in [
        ("wrong-server-signature", Error::ServerSignatureMismatch),
        ("server-error", Error::ServerError(ScramError::InvalidProof)),
    ] {
        let n = negative(&data, name);
        let mut c = client_for(v);
        c.start().unwrap();
        assert_eq!(
            c.step(s(v, "server_first").as_bytes()).unwrap(),
            s(v, "client_final").as_bytes()
        );
        let err = c.finish(Some(s(n, "server_final").as_bytes())).unwrap_err();
        assert_eq!(err, expected, "{name}");
        assert_eq!(err.condition(), Condition::NotAuthorized);
        assert!(c.scram_keys().is_none(), "{name}: no keys after failure");
    }
}

#[test]
fn negative_server_cases() {
    let data = load();

    // wrong-proof against the RFC 5802 exchange.
    let v = vector(&data, "rfc5802-sha1");
    let n = negative(&data, "wrong-proof");
    let store = store_for(v);
    let mut server = server_for(v);
    assert!(matches!(
        server.step(&store, s(v, "client_first").as_bytes()),
        Ok(ServerStep::Challenge(_))
    ));
    let err = server
        .step(&store, s(n, "client_final").as_bytes())
        .unwrap_err();
    assert_eq!(err, Error::InvalidProof);
    assert_eq!(err.condition(), Condition::NotAuthorized);
    assert_eq!(err.scram_error(), Some(ScramError::InvalidProof));

    // channel-binding-mismatch: a tls-exporter client-first, then c=biws.
    let n = negative(&data, "channel-binding-mismatch");
    let store = Store::with_user("user", "pencil");
    let mut server = Server::new(
        Mechanism::ScramSha256Plus,
        ServerConfig::new("srvnonce")
            .tls(true)
            .channel_binding(ChannelBinding::new(
                ChannelBindingType::TlsExporter,
                [1u8; 32],
            )),
    )
    .unwrap();
    let Ok(ServerStep::Challenge(c)) = server.step(&store, s(n, "client_first").as_bytes()) else {
        panic!("expected challenge");
    };
    let combined = std::str::from_utf8(&c)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let final_msg = format!(
        "{},{combined},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        s(n, "client_final_c")
    );
    let err = server.step(&store, final_msg.as_bytes()).unwrap_err();
    assert_eq!(err, Error::ChannelBindingMismatch);
    assert_eq!(
        err.scram_error(),
        Some(ScramError::ChannelBindingsDontMatch)
    );
    assert_eq!(err.condition(), Condition::NotAuthorized);

    // downgrade-y-flag: a server that advertises -PLUS refuses `y`.
    let n = negative(&data, "downgrade-y-flag");
    let mut server = Server::new(
        Mechanism::ScramSha256,
        ServerConfig::new("srvnonce")
            .tls(true)
            .channel_binding(ChannelBinding::new(
                ChannelBindingType::TlsExporter,
                [1u8; 32],
            )),
    )
    .unwrap();
    let err = server
        .step(&store, s(n, "client_first").as_bytes())
        .unwrap_err();
    assert_eq!(err, Error::Downgrade);
    assert_eq!(
        err.scram_error(),
        Some(ScramError::ServerDoesSupportChannelBinding)
    );
    // ...while one without -PLUS accepts it.
    let mut server = Server::new(
        Mechanism::ScramSha256,
        ServerConfig::new("srvnonce").tls(true),
    )
    .unwrap();
    assert!(matches!(
        server.step(&store, s(n, "client_first").as_bytes()),
        Ok(ServerStep::Challenge(_))
    ));
}

#[test]
fn hashes_cover_every_vector_family() {
    let data = load();
    let mut seen = std::collections::BTreeSet::new();
    for v in data["vectors"].as_array().unwrap() {
        let m: Mechanism = s(v, "mechanism").parse().unwrap();
        seen.insert((m.scram_hash().unwrap(), m.is_plus()));
    }
    for h in [ScramHash::Sha1, ScramHash::Sha256, ScramHash::Sha512] {
        assert!(
            seen.contains(&(h, false)) && seen.contains(&(h, true)),
            "{h}"
        );
    }
}
