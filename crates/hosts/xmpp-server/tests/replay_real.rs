//! Replays every transcript recorded by the hub's `ServerStream`s against real clients
//! (`testdata/transcripts/real-server/`, written by `tests/interop.rs` with `XMPP_RECORD=1`)
//! through a fresh `ServerStream`, offline: the clients' bytes are fed in with the recorded
//! entropy, the hub's commands are re-run, and every output of ours must match the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use xmpp_stream::transcript::{Role, Transcript};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/transcripts/real-server")
}

fn files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

fn replay(text: &str) -> Result<(), String> {
    Transcript::parse(text)
        .map_err(|e| e.to_string())?
        .replay(Role::Server)
        .map_err(|e| e.to_string())
}

#[test]
fn every_real_client_transcript_replays_as_the_server() {
    let files = files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("slixmpp-")), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("libstrophe-")),
        "{names:?}"
    );
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        if let Err(e) = replay(&text) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// The replay is a real check: a different entropy byte (stream id, SCRAM nonce) or a
/// different stored password, and our outputs no longer match what the real client accepted.
#[test]
fn replay_detects_changed_entropy_or_password() {
    for path in files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let entropy = text
            .lines()
            .find(|l| l.starts_with("!server entropy "))
            .expect("every session draws a stream id");
        let at = "!server entropy ".len() + 1;
        let digit = if entropy.as_bytes()[at] == b'0' {
            "1"
        } else {
            "0"
        };
        let flipped = format!("{}{digit}{}", &entropy[..at], &entropy[at + 1..]);
        assert!(
            replay(&text.replacen(entropy, &flipped, 1)).is_err(),
            "{}: different entropy still replayed",
            path.display()
        );
        // Every account's stored password changes: the session's own user is among them.
        assert!(text.contains("!server user alice alice-pw "));
        let changed = text
            .replace(" alice-pw ", " other-pw ")
            .replace(" bob-pw ", " other-pw ");
        assert!(
            replay(&changed).is_err(),
            "{}: a different password still replayed",
            path.display()
        );
    }
}
