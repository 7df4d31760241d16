//! SCRAM-SHA-256, both sides, with the RFC 7677 §3 exchange (user `user`, password `pencil`,
//! 4096 iterations, the RFC's nonces and salt):
//!
//! - `scram_sha256_server`: a full server-side exchange (`Server::new` + two `step`s) from
//!   stored credentials. Goal: no PBKDF2 at all, a few microseconds.
//! - `scram_sha256_client`: a full client-side exchange (`Client::new` + `start` + `step` +
//!   `finish`), side by side with a bare `pbkdf2::pbkdf2_hmac::<Sha256>` call for the same 4096
//!   iterations (goal: within 5%), and the same client with cached keys (goal: no PBKDF2).
//!
//! Run: `cargo bench -p xmpp-benches --bench sasl -- --measurement-time 3 --warm-up-time 1`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench setup on constants

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use xmpp_sasl::{
    Client, ClientConfig, Condition, CredentialStore, Mechanism, PasswordPrep, ScramHash,
    ScramKeys, Server, ServerConfig, ServerStep, StoredCredentials,
};

const SALT: &[u8] = &[
    0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81,
]; // base64 "W22ZaJ0SNY7soEsUEjb6gQ==" (RFC 7677 §3)
const ITERATIONS: u32 = 4096;
const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

struct Store(StoredCredentials);

impl CredentialStore for Store {
    fn scram_credentials(
        &self,
        _: &str,
        _: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        Ok(Some(self.0.clone()))
    }
}

fn server_config() -> ServerConfig {
    ServerConfig::new(SERVER_NONCE)
        .tls(true)
        .downgrade_protection(false)
}

fn client_config() -> ClientConfig {
    ClientConfig::new("user", CLIENT_NONCE).password("pencil")
}

fn client_exchange(config: ClientConfig) -> Vec<u8> {
    let mut c = Client::new(Mechanism::ScramSha256, config).unwrap();
    let _ = c.start().unwrap();
    let last = c.step(SERVER_FIRST).unwrap();
    c.finish(Some(SERVER_FINAL)).unwrap();
    last
}

fn bench(c: &mut Criterion) {
    let store = Store(
        StoredCredentials::derive(
            ScramHash::Sha256,
            "pencil",
            PasswordPrep::SaslPrep,
            SALT,
            ITERATIONS,
        )
        .unwrap(),
    );
    // The client messages are deterministic given the nonces: compute them once.
    let client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO".to_vec();
    let client_final = client_exchange(client_config());

    c.bench_function(
        "scram_sha256_server/stored_credentials_full_exchange",
        |b| {
            b.iter(|| {
                let mut s = Server::new(Mechanism::ScramSha256, server_config()).unwrap();
                let ServerStep::Challenge(ch) = s.step(&store, black_box(&client_first)).unwrap()
                else {
                    panic!("challenge expected")
                };
                let ServerStep::Success {
                    additional_data, ..
                } = s.step(&store, black_box(&client_final)).unwrap()
                else {
                    panic!("success expected")
                };
                (ch, additional_data)
            });
        },
    );

    let mut group = c.benchmark_group("scram_sha256_client");
    group.bench_function("xmpp_sasl_full_exchange", |b| {
        b.iter(|| client_exchange(black_box(client_config())));
    });
    group.bench_function("bare_pbkdf2_hmac_sha256", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                black_box(b"pencil"),
                black_box(SALT),
                ITERATIONS,
                &mut out,
            );
            out
        });
    });
    let keys = ScramKeys::derive(
        ScramHash::Sha256,
        "pencil",
        PasswordPrep::SaslPrep,
        SALT,
        ITERATIONS,
    )
    .unwrap();
    group.bench_function("xmpp_sasl_full_exchange_cached_keys", |b| {
        b.iter(|| {
            client_exchange(black_box(
                ClientConfig::new("user", CLIENT_NONCE).cached_keys(keys.clone()),
            ))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
