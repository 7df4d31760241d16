//! Replays every transcript recorded against a real server through a fresh machine, offline:
//! the servers' bytes are fed in with the recorded entropy and channel bindings, and every
//! output of ours must match what went on the wire. `testdata/transcripts/real/` holds our
//! `ClientStream`'s sessions (written by `tests/interop_client.rs` with `XMPP_RECORD=1`),
//! `real-component/` our `ComponentStream`'s (role `component`, written by
//! `tests/interop_component.rs`).
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

/// The recorded component sessions replay offline, byte-exact, through a fresh
/// `ComponentStream`.
#[test]
fn every_real_component_transcript_replays_as_the_component() {
    let names = transcripts::replay_all(&dir("real-component"), Role::Client)
        .unwrap_or_else(|e| panic!("{e}"));
    for peer in ["prosody", "ejabberd"] {
        assert!(names.iter().any(|n| n.starts_with(peer)), "{names:?}");
    }
}

/// The replay is a real check: the handshake is SHA-1 of the server's stream id and the secret,
/// so another secret, or another id in the server's header, no longer reproduces what the real
/// server accepted. (The component draws no entropy: nothing to flip.)
#[test]
fn component_replay_detects_changed_secret_or_stream_id() {
    /// The secret `tests/interop_component.rs` configures.
    const SECRET: &str = "comp-secret";
    for file in transcripts::load(&dir("real-component")).unwrap() {
        let text = &file.text;
        assert_eq!(flip_entropy(text, Role::Client), None, "{}", file.name);
        let secret = format!("!component secret {SECRET}");
        assert!(text.contains(&secret), "{}", file.name);
        let changed = text.replace(&secret, "!component secret other-secret");
        assert!(
            replay(&changed, Role::Client).is_err(),
            "{}: a different secret still replayed",
            file.name
        );
        let header = text
            .lines()
            .find(|l| l.contains(" S: <?xml") && l.contains(" id='"))
            .expect("the server's header carries an id");
        let changed = text.replacen(header, &header.replacen(" id='", " id='0", 1), 1);
        assert!(
            replay(&changed, Role::Client).is_err(),
            "{}: a different stream id still replayed",
            file.name
        );
    }
}
