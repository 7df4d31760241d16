//! Fuzzes the SASL server: the input picks a mechanism and supplies every client message.
//!
//! Properties: no panic at any step; SCRAM never succeeds on the first message nor on a forged
//! proof (the fuzzer cannot compute one); PLAIN succeeds only for the right password; every
//! error maps to a wire condition that round-trips.
#![no_main]

use xmpp_sasl::{
    ChannelBinding, ChannelBindingType, Condition, CredentialStore, Mechanism, PasswordPrep,
    ScramHash, Server, ServerConfig, ServerStep, StoredCredentials,
};

struct Store;

impl CredentialStore for Store {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        match authcid {
            "juliet" => {
                Ok(
                    StoredCredentials::derive(hash, "pencil", PasswordPrep::SaslPrep, b"salt", 2)
                        .ok(),
                )
            }
            "disabled" => Err(Condition::AccountDisabled),
            _ => Ok(None),
        }
    }
}

fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mechanism = Mechanism::ALL[usize::from(sel) % Mechanism::ALL.len()];
    let config = ServerConfig::new("3rfcNHYJY1ZVvWVs7j")
        .tls(sel & 0x80 != 0)
        .offer(Mechanism::ALL.to_vec())
        .external_identity("juliet")
        .unknown_user_mock(b"fuzz", 2)
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            [7u8; 32],
        ))
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsUnique,
            [9u8; 12],
        ));
    let mut server = match Server::new(mechanism, config) {
        Ok(s) => s,
        Err(e) => return check(e.condition()),
    };
    for (i, response) in rest.split(|b| *b == 0xFF).enumerate() {
        match server.step(&Store, response) {
            Ok(ServerStep::Challenge(c)) => {
                assert!(mechanism.scram_hash().is_some() && i == 0);
                assert!(!c.is_empty());
            }
            Ok(ServerStep::Success { identity, .. }) => {
                assert!(
                    mechanism.scram_hash().is_none(),
                    "SCRAM success on a forged proof"
                );
                if mechanism == Mechanism::Plain {
                    assert_eq!(identity.authcid.as_deref(), Some("juliet"));
                    assert!(response.ends_with(b"\0pencil"));
                }
            }
            Ok(_) => {}
            Err(e) => check(e.condition()),
        }
    }
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use: the mechanism state is fixed-size, and SCRAM keeps a few
/// copies of the client's messages (nonce, client-first-bare, the auth message): measured 5
/// bytes per input byte (20.9 KB for a 4000-byte nonce), so 12 per byte plus 4 KiB.
fn bound(len: usize) -> usize {
    4 * 1024 + 12 * len
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});

fn check(c: Condition) {
    assert_eq!(c.to_string().parse::<Condition>(), Ok(c));
}
