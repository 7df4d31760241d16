//! Replays every transcript recorded by the hub's `ServerStream`s against real clients
//! (`testdata/transcripts/real-server/`, written by `tests/interop.rs` with `XMPP_RECORD=1`)
//! through a fresh `ServerStream`, offline: the clients' bytes are fed in with the recorded
//! entropy, the hub's commands are re-run, and every output of ours must match the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use xmpp_stream::transcript::Role;
use xmpp_testpeers::transcripts::{self, dir, flip_entropy, replay};

#[test]
fn every_real_client_transcript_replays_as_the_server() {
    let names = transcripts::replay_all(&dir("real-server"), Role::Server)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(names.iter().any(|n| n.starts_with("slixmpp-")), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("libstrophe-")),
        "{names:?}"
    );
}

/// The replay is a real check: a different entropy byte (stream id, SCRAM nonce) or a
/// different stored password, and our outputs no longer match what the real client accepted.
#[test]
fn replay_detects_changed_entropy_or_password() {
    for file in transcripts::load(&dir("real-server")).unwrap() {
        let text = &file.text;
        let changed = flip_entropy(text, Role::Server).expect("every session draws a stream id");
        assert!(
            replay(&changed, Role::Server).is_err(),
            "{}: different entropy still replayed",
            file.name
        );
        // Every account's stored password changes: the session's own user is among them.
        assert!(text.contains("!server user alice alice-pw "));
        let changed = text
            .replace(" alice-pw ", " other-pw ")
            .replace(" bob-pw ", " other-pw ");
        assert!(
            replay(&changed, Role::Server).is_err(),
            "{}: a different password still replayed",
            file.name
        );
    }
}

/// The hub's component port against slixmpp and libstrophe components
/// (`testdata/transcripts/real-component-server/`, written by `tests/components.rs` with
/// `XMPP_RECORD=1`), replayed offline through a fresh `ComponentServerStream`.
#[test]
fn every_real_component_transcript_replays_as_the_server() {
    let names = transcripts::replay_all(&dir("real-component-server"), Role::Server)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(names.iter().any(|n| n.starts_with("slixmpp")), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("libstrophe")),
        "{names:?}"
    );
}

/// A different stream id, or a different secret, and the component's recorded handshake no
/// longer matches: the replay must fail.
#[test]
fn component_replay_detects_changed_entropy_or_secret() {
    for file in transcripts::load(&dir("real-component-server")).unwrap() {
        let text = &file.text;
        let changed = flip_entropy(text, Role::Server).expect("every session draws a stream id");
        assert!(
            replay(&changed, Role::Server).is_err(),
            "{}: different entropy still replayed",
            file.name
        );
        assert!(text.contains("!component-server component comp.localhost comp-secret"));
        let changed = text.replace(" comp-secret", " other-secret");
        assert!(
            replay(&changed, Role::Server).is_err(),
            "{}: a different secret still replayed",
            file.name
        );
    }
}
