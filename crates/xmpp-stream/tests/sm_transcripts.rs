//! XEP-0198 resumptions recorded against software nobody here wrote, replayed offline and
//! byte-exact (`testdata/transcripts/real-sm/`, see its README): our client resuming on
//! Prosody and ejabberd, and slixmpp cut from and resuming on the example server. A replay
//! of an altered transcript must fail: the replayer checks the resumption, it does not just
//! read it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use xmpp_stream::transcript::{Role, Transcript};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/transcripts/real-sm")
}

fn read(file: &str) -> String {
    std::fs::read_to_string(dir().join(file)).unwrap()
}

/// The role a recording was made for: the end whose setup it carries.
fn role_of(text: &str) -> Role {
    if text.lines().any(|l| l.starts_with("!client ")) {
        Role::Client
    } else {
        Role::Server
    }
}

fn replay(text: &str) -> Result<(), String> {
    Transcript::parse(text)
        .and_then(|t| t.replay(role_of(text)))
        .map_err(|e| e.to_string())
}

/// `text` with the first occurrence of `from` (on a line containing `on`) replaced by `to`.
fn altered(text: &str, on: &str, from: &str, to: &str) -> String {
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if !done && line.contains(on) && line.contains(from) {
                done = true;
                line.replacen(from, to, 1)
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(done, "no line with {on:?} and {from:?}");
    lines.join("\n") + "\n"
}

#[test]
fn every_recorded_resumption_replays_byte_exact() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ejabberd-resume-alice.txt",
            "prosody-resume-alice.txt",
            "slixmpp-alice-detached.txt",
            "slixmpp-alice-resumed.txt",
        ]
    );
    for file in &files {
        let text = read(file);
        replay(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[test]
fn the_recordings_are_resumptions() {
    for file in ["ejabberd-resume-alice.txt", "prosody-resume-alice.txt"] {
        let text = read(file);
        assert!(text.contains("!client resume-with "), "{file}");
        assert!(text.contains(" C: <resume xmlns='urn:xmpp:sm:3'"), "{file}");
        assert!(text.contains("E client: SmResumed "), "{file}");
        assert!(
            !text.contains("E client: Negotiated"),
            "{file}: bound afresh"
        );
    }
    let detached = read("slixmpp-alice-detached.txt");
    assert!(detached.contains("H server: detach "));
    let resumed = read("slixmpp-alice-resumed.txt");
    assert!(resumed.contains("H server: resume "));
    assert!(resumed.contains("E server: SmResumed "));
}

/// A client that saved another `h` sends another `<resume/>`: the replay sees it.
#[test]
fn an_altered_client_state_fails_the_replay() {
    for file in ["ejabberd-resume-alice.txt", "prosody-resume-alice.txt"] {
        let text = read(file);
        let line = text
            .lines()
            .find(|l| l.starts_with("!client resume-with "))
            .unwrap();
        let words: Vec<&str> = line.split(' ').collect();
        let handled: u32 = words[4].parse().unwrap();
        let mut changed = words.clone();
        let other = (handled + 1).to_string();
        changed[4] = &other;
        let bad = text.replacen(line, &changed.join(" "), 1);
        let error = replay(&bad).expect_err(file);
        assert!(error.contains("differs"), "{file}: {error}");
    }
}

/// The server side: a detached session with other counters, another queue, or none at
/// all, and bytes from the peer changed in flight, each fail the replay.
#[test]
fn an_altered_server_recording_fails_the_replay() {
    let resumed = read("slixmpp-alice-resumed.txt");
    let resume_line = resumed
        .lines()
        .find(|l| l.contains("H server: resume "))
        .unwrap()
        .to_owned();
    // The server's handled count for the session (sent back in <resumed h=''/>).
    let words: Vec<&str> = resume_line.split(' ').collect();
    let handled: u32 = words[6].parse().unwrap();
    let mut changed = words.clone();
    let other = (handled + 1).to_string();
    changed[6] = &other;
    let bad = resumed.replacen(&resume_line, &changed.join(" "), 1);
    assert!(replay(&bad).is_err(), "another handled count replayed");
    // One unacknowledged stanza fewer: one stanza fewer re-sent.
    let cut = resume_line.rfind(" <").unwrap();
    let bad = resumed.replacen(&resume_line, &resume_line[..cut], 1);
    assert!(replay(&bad).is_err(), "a shorter queue replayed");
    // The client's <resume h=''/> changed in flight.
    let bad = altered(&resumed, "C: <resume ", "h=\"", "h=\"1");
    assert!(replay(&bad).is_err(), "another client h replayed");
    // Refused instead of resumed.
    let bad = resumed.replacen(&resume_line, "23 H server: refuse_resume", 1);
    assert!(replay(&bad).is_err(), "a refusal replayed as a resumption");

    let detached = read("slixmpp-alice-detached.txt");
    let bad = altered(&detached, "H server: detach ", " 4", " 3");
    let error = replay(&bad).unwrap_err();
    assert!(error.contains("detach"), "{error}");
}
