//! Replays every transcript recorded against a real server (`testdata/transcripts/real/`,
//! written by `tests/interop_client.rs` with `XMPP_RECORD=1`) through a fresh `ClientStream`,
//! offline: the servers' bytes are fed in with the recorded entropy and channel bindings, and
//! every output of ours must match what went on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use xmpp_stream::transcript::{Role, Transcript};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/transcripts/real")
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

fn load(path: &PathBuf) -> Transcript {
    let text = std::fs::read_to_string(path).unwrap();
    Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_real_transcript_replays_as_the_client() {
    let files = files();
    assert!(
        !files.is_empty(),
        "no transcripts under {}",
        dir().display()
    );
    for path in &files {
        if let Err(e) = load(path).replay(Role::Client) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// The replay is a real check: change one byte of the recorded entropy (our SCRAM nonce) or
/// the password, and our outputs no longer match what the real server accepted.
#[test]
fn replay_detects_changed_entropy_or_password() {
    for path in files() {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("mechanism='SCRAM-") {
            continue;
        }
        let entropy = text
            .lines()
            .find(|l| l.starts_with("!client entropy "))
            .expect("SCRAM transcripts record entropy");
        // The low hex digit of the first byte: the nonce uses each byte's low six bits.
        let at = "!client entropy ".len() + 1;
        let digit = if entropy.as_bytes()[at] == b'0' {
            "1"
        } else {
            "0"
        };
        let flipped = format!("{}{digit}{}", &entropy[..at], &entropy[at + 1..]);
        let changed = text.replacen(entropy, &flipped, 1);
        assert!(
            Transcript::parse(&changed)
                .unwrap()
                .replay(Role::Client)
                .is_err(),
            "{}: a different nonce still replayed",
            path.display()
        );
        if !text.contains("not-authorized") {
            let changed = text.replacen("!client password ", "!client password x", 1);
            assert!(
                Transcript::parse(&changed)
                    .unwrap()
                    .replay(Role::Client)
                    .is_err(),
                "{}: a different password still replayed",
                path.display()
            );
        }
    }
}
