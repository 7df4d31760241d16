//! Transcripts recorded against real peers (`testdata/transcripts/real/` for our client,
//! `real-server/` for our server), listed and replayed offline through a fresh machine by the
//! tests of the crate that recorded them.
//!
//! ```no_run
//! use xmpp_stream::transcript::Role;
//! use xmpp_testpeers::transcripts;
//!
//! let replayed = transcripts::replay_all(&transcripts::dir("real"), Role::Client)
//!     .unwrap_or_else(|failures| panic!("{failures}"));
//! assert!(!replayed.is_empty());
//! ```

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use xmpp_stream::transcript::{Role, Transcript};

/// One transcript file.
#[derive(Clone, Debug)]
pub struct TranscriptFile {
    /// Its file name (`prosody-starttls-default.txt`).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// The workspace's `testdata/transcripts/<sub>` directory.
#[must_use]
pub fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../testdata/transcripts")
        .join(sub)
}

/// Every `*.txt` file in `dir`, sorted by name.
///
/// # Errors
/// When the directory or a file cannot be read, or `dir` holds no transcript.
pub fn load(dir: &Path) -> Result<Vec<TranscriptFile>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        files.push(TranscriptFile { name, text });
    }
    if files.is_empty() {
        return Err(format!("no transcripts under {}", dir.display()));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Parses `text` and replays it through a fresh machine of `role`.
///
/// # Errors
/// The parse or replay error, as text.
pub fn replay(text: &str, role: Role) -> Result<(), String> {
    Transcript::parse(text)
        .and_then(|transcript| transcript.replay(role))
        .map_err(|e| e.to_string())
}

/// Replays every transcript in `dir` (see [`load`]) as `role` and returns their names.
///
/// # Errors
/// Every failure, one line per file, each starting with the file's name (or why the
/// directory could not be read).
pub fn replay_all(dir: &Path, role: Role) -> Result<Vec<String>, String> {
    let files = load(dir)?;
    let mut failures = String::new();
    let mut failed = 0;
    for file in &files {
        if let Err(e) = replay(&file.text, role) {
            failed += 1;
            let _ = writeln!(failures, "{}: as {role:?}: {e}", file.name);
        }
    }
    if failed == 0 {
        Ok(files.into_iter().map(|file| file.name).collect())
    } else {
        Err(format!(
            "{failed} of {} transcripts in {} failed:\n{failures}",
            files.len(),
            dir.display()
        ))
    }
}

/// `text` with one recorded entropy byte of `role` changed (the low hex digit of the first
/// byte: nonces and ids use each byte's low bits), or `None` when it records no entropy for
/// `role`. A replay of the result must fail if the entropy mattered.
#[must_use]
pub fn flip_entropy(text: &str, role: Role) -> Option<String> {
    // A component transcript names the ends `component` and `component-server`.
    let prefixes: [&str; 2] = match role {
        Role::Client => ["!client entropy ", "!component entropy "],
        Role::Server => ["!server entropy ", "!component-server entropy "],
    };
    let (line, prefix) = text.lines().find_map(|l| {
        prefixes
            .iter()
            .find(|p| l.starts_with(**p))
            .map(|p| (l, *p))
    })?;
    let at = prefix.len() + 1;
    let digit = line.as_bytes().get(at)?;
    let flipped = if *digit == b'0' { "1" } else { "0" };
    let changed = format!("{}{flipped}{}", line.get(..at)?, line.get(at + 1..)?);
    Some(text.replacen(line, &changed, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_the_first_entropy_digit_of_the_role() {
        let text = "!client entropy 0a1b\n!server entropy 2c3d\n";
        assert_eq!(
            flip_entropy(text, Role::Client).unwrap(),
            "!client entropy 001b\n!server entropy 2c3d\n"
        );
        assert_eq!(
            flip_entropy(text, Role::Server).unwrap(),
            "!client entropy 0a1b\n!server entropy 203d\n"
        );
        assert_eq!(
            flip_entropy("!client entropy 1f\n", Role::Client).unwrap(),
            "!client entropy 10\n"
        );
        assert_eq!(flip_entropy("!client jid a@b\n", Role::Client), None);
        assert_eq!(
            flip_entropy("!component-server entropy 4b92\n", Role::Server).unwrap(),
            "!component-server entropy 4092\n"
        );
    }

    #[test]
    fn replay_all_names_every_failing_file() {
        let dir =
            std::env::temp_dir().join(format!("xmpp-testpeers-transcripts-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let good = fs::read_to_string(super::dir("starttls-scram-plus-bind.client.txt")).unwrap();
        fs::write(dir.join("a-good.txt"), &good).unwrap();
        fs::write(
            dir.join("b-bad.txt"),
            good.replacen("to='im.example.com'", "to='x'", 1),
        )
        .unwrap();
        fs::write(dir.join("c-worse.txt"), "not a transcript\n").unwrap();
        fs::write(dir.join("ignored.md"), "not a transcript either").unwrap();
        let report = replay_all(&dir, Role::Client).unwrap_err();
        fs::remove_dir_all(&dir).unwrap();
        assert!(report.starts_with("2 of 3 transcripts"), "{report}");
        assert!(!report.contains("a-good.txt"), "{report}");
        assert!(report.contains("b-bad.txt: as Client: "), "{report}");
        assert!(report.contains("c-worse.txt: as Client: "), "{report}");
        assert!(
            replay_all(&dir, Role::Client).is_err(),
            "a missing directory is an error"
        );
    }
}
