//! Replays every transcript recorded against a real server (`testdata/transcripts/real/`,
//! written by `tests/interop_client.rs` with `XMPP_RECORD=1`) through a fresh `ClientStream`,
//! offline: the servers' bytes are fed in with the recorded entropy and channel bindings, and
//! every output of ours must match what went on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use xmpp_stream::transcript::Role;
use xmpp_testpeers::transcripts::{self, dir, flip_entropy, replay};

#[test]
fn every_real_transcript_replays_as_the_client() {
    let replayed =
        transcripts::replay_all(&dir("real"), Role::Client).unwrap_or_else(|e| panic!("{e}"));
    assert!(!replayed.is_empty());
}

/// The replay is a real check: change one byte of the recorded entropy (our SCRAM nonce) or
/// the password, and our outputs no longer match what the real server accepted.
#[test]
fn replay_detects_changed_entropy_or_password() {
    for file in transcripts::load(&dir("real")).unwrap() {
        let text = &file.text;
        if !text.contains("mechanism='SCRAM-") {
            continue;
        }
        let changed = flip_entropy(text, Role::Client).expect("SCRAM transcripts record entropy");
        assert!(
            replay(&changed, Role::Client).is_err(),
            "{}: a different nonce still replayed",
            file.name
        );
        if !text.contains("not-authorized") {
            let changed = text.replacen("!client password ", "!client password x", 1);
            assert!(
                replay(&changed, Role::Client).is_err(),
                "{}: a different password still replayed",
                file.name
            );
        }
    }
}
