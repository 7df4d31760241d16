//! Fuzzes the SASL client: the input picks a mechanism and supplies every server message.
//!
//! Properties: no panic at any step; a SCRAM client never reports success (the fuzzer cannot
//! forge the server signature, so any `Ok` from `finish` would be a verification bug); the
//! keys are only released after success; errors always map to a wire condition that
//! round-trips.
#![no_main]

use xmpp_sasl::{
    ChannelBinding, ChannelBindingType, Client, ClientConfig, Condition, Gs2Binding, Mechanism,
};

fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mechanism = Mechanism::ALL[usize::from(sel) % Mechanism::ALL.len()];
    let mut config = ClientConfig::new("juliet", "fyko+d2lbbFgONRv9qkxdawL")
        .password("pencil")
        .authzid("romeo")
        // Keep PBKDF2 cheap so the fuzzer explores parsing, not hashing.
        .iteration_limits(1, 64)
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            [7u8; 32],
        ))
        .advertised(vec!["SCRAM-SHA-1".into(), "SCRAM-SHA-256".into()], None);
    if mechanism.is_plus() {
        config = config.gs2(Gs2Binding::Bound(ChannelBindingType::TlsExporter));
    } else if sel & 0x80 != 0 {
        config = config.gs2(Gs2Binding::ClientOnly);
    }
    let Ok(mut client) = Client::new(mechanism, config) else {
        return;
    };
    let Ok(Some(_first)) = client.start() else {
        return;
    };
    // Messages separated by 0xFF (never valid UTF-8, so never inside a real SCRAM message);
    // the last one is the <success/> additional data. Split lazily: a collected list of
    // slices costs the harness 16 bytes per separator, which the heap bound would charge to
    // the client (an input of 1 000 separators once peaked over it that way).
    let (challenges, success) = match rest.iter().rposition(|b| *b == 0xFF) {
        Some(last) => (rest.get(..last), rest.get(last + 1..)),
        None => (None, Some(rest)),
    };
    let mut failed = false;
    let challenges = challenges.into_iter().flat_map(|c| c.split(|b| *b == 0xFF));
    for (i, challenge) in challenges.enumerate() {
        // Mostly give the first challenge the client nonce as prefix, so the fuzzer reaches the
        // salt, iteration count, extensions and the final message instead of stopping at the
        // nonce check.
        let mut owned = Vec::new();
        let challenge = if i == 0 && sel & 0x40 == 0 {
            owned.extend_from_slice(b"r=fyko+d2lbbFgONRv9qkxdawL");
            owned.extend_from_slice(challenge);
            &owned[..]
        } else {
            challenge
        };
        if let Err(e) = client.step(challenge) {
            check(e.condition());
            failed = true;
        }
    }
    let result = client.finish(success.filter(|s| !s.is_empty()));
    if mechanism.scram_hash().is_some() {
        assert!(
            result.is_err(),
            "SCRAM success without a verified server signature"
        );
        assert!(client.scram_keys().is_none());
    } else if failed {
        // A simple mechanism that got a challenge must not succeed afterwards.
        assert!(result.is_err());
    }
    if let Err(e) = result {
        check(e.condition());
    }
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use: fixed SCRAM state (hash contexts, keys, measured up to ~17
/// KB) plus a few copies of the server's messages (nonce, auth message; measured under 3
/// bytes per input byte): 6 per byte plus 20 KiB.
fn bound(len: usize) -> usize {
    20 * 1024 + 6 * len
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});

fn check(c: Condition) {
    assert_eq!(c.to_string().parse::<Condition>(), Ok(c));
}
