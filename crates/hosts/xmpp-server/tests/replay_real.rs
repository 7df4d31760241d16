//! Replays every transcript recorded by the hub's `ServerStream`s against real clients
//! (`testdata/transcripts/real-server/`, written by `tests/interop.rs` with `XMPP_RECORD=1`)
//! through a fresh `ServerStream`, offline: the clients' bytes are fed in with the recorded
//! entropy, the hub's commands are re-run, and every output of ours must match the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use xmpp_stream::transcript::Role;
use xmpp_testpeers::transcripts::{self, dir, flip_entropy, replay};

/// Every file of `dir` replays as our server's end, and the peers named by `expected` are
/// among them.
fn replays(dir_name: &str, expected: &[&str]) {
    let names =
        transcripts::replay_all(&dir(dir_name), Role::Server).unwrap_or_else(|e| panic!("{e}"));
    for peer in expected {
        assert!(
            names.iter().any(|n| n.starts_with(peer)),
            "{peer}: {names:?}"
        );
    }
}

/// The replay is a real check: with one entropy byte changed (stream id, SCRAM nonce), or
/// with `change` applied to the stored secrets (which `marker` shows are there), our outputs
/// no longer match what the real peer accepted.
fn replay_detects_changes(dir_name: &str, marker: &str, change: fn(&str) -> String) {
    for file in transcripts::load(&dir(dir_name)).unwrap() {
        let text = &file.text;
        let changed = flip_entropy(text, Role::Server).expect("every session draws a stream id");
        assert!(
            replay(&changed, Role::Server).is_err(),
            "{}: different entropy still replayed",
            file.name
        );
        assert!(text.contains(marker), "{}: no {marker:?}", file.name);
        assert!(
            replay(&change(text), Role::Server).is_err(),
            "{}: a different secret still replayed",
            file.name
        );
    }
}

#[test]
fn every_real_client_transcript_replays_as_the_server() {
    replays("real-server", &["slixmpp-", "libstrophe-"]);
}

/// A different entropy byte or a different stored password (every account's changes: the
/// session's own user is among them).
#[test]
fn replay_detects_changed_entropy_or_password() {
    replay_detects_changes("real-server", "!server user alice alice-pw ", |text| {
        text.replace(" alice-pw ", " other-pw ")
            .replace(" bob-pw ", " other-pw ")
    });
}

/// The hub's component port against slixmpp and libstrophe components
/// (`testdata/transcripts/real-component-server/`, written by `tests/components.rs` with
/// `XMPP_RECORD=1`), replayed offline through a fresh `ComponentServerStream`.
#[test]
fn every_real_component_transcript_replays_as_the_server() {
    replays("real-component-server", &["slixmpp", "libstrophe"]);
}

/// A different stream id, or a different secret, and the component's recorded handshake no
/// longer matches.
#[test]
fn component_replay_detects_changed_entropy_or_secret() {
    replay_detects_changes(
        "real-component-server",
        "!component-server component comp.localhost comp-secret",
        |text| text.replace(" comp-secret", " other-secret"),
    );
}
