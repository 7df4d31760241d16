//! Builds this crate for `wasm32-unknown-unknown` and runs `tests/node/negotiate.mjs` on the
//! module with Node.js: a client and a server machine negotiate inside WebAssembly, every byte
//! carried by hand in JavaScript. Skipped (with a message) when `node` or the
//! `wasm32-unknown-unknown` target is missing (a fresh machine with only rustup and cargo has
//! neither, and `RUSTUP_AUTO_INSTALL=0` keeps rustup from fetching the target on first use),
//! unless `XMPP_INTEROP=require`, which `.ci/run` sets after installing both.
//!
//! The wasm build uses its own target directory (`target/wasm-host-test` at the workspace
//! root): the `cargo test` running this test holds the lock on the usual one.
// A test harness reads its environment and runs processes; the Sans-IO rules are for the
// library code.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

use xmpp_testpeers::{WASM_TARGET, wasm_target_installed};

/// Why this machine cannot run the WebAssembly test, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let missing = if !node_available() {
        Some("`node` is not on PATH".to_owned())
    } else if !wasm_target_installed() {
        Some(format!(
            "the {WASM_TARGET} target is not installed (`rustup target add {WASM_TARGET}`)"
        ))
    } else {
        None
    }?;
    Some(missing)
}

fn build_wasm() -> PathBuf {
    let target_dir = workspace().join("target/wasm-host-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--target",
            WASM_TARGET,
            "-p",
            "xmpp-host-wasm",
            "--release",
        ])
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "building xmpp-host-wasm for wasm32 failed"
    );
    let wasm = target_dir.join(format!("{WASM_TARGET}/release/xmpp_host_wasm.wasm"));
    assert!(wasm.is_file(), "{} missing", wasm.display());
    wasm
}

#[test]
fn node_drives_a_full_negotiation_inside_wasm() {
    if let Some(missing) = missing_prerequisite() {
        xmpp_testpeers::skip_or_fail(&missing);
        return;
    }
    let wasm = build_wasm();
    let transcripts = workspace().join("testdata/transcripts");
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/negotiate.mjs"))
        .arg(&wasm)
        .arg(transcripts.join("starttls-scram-plus-bind.client.txt"))
        .arg(transcripts.join("starttls-scram-plus-bind.server.txt"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "node failed:\n{stdout}\n{stderr}");
    for line in [
        "C: <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        "S event: StartTls",
        "C event: Secured",
        "mechanism='SCRAM-SHA-256'",
        "C event: Authenticated juliet@im.example.com SCRAM-SHA-256",
        "C event: Negotiated juliet@im.example.com/balcony",
        "S event: Negotiated juliet@im.example.com/balcony",
        "S event: Stanza message c1",
        "C event: Stanza message s1",
        "S event: Closed Graceful",
        "C event: Closed Graceful",
        "OK session PLAIN",
        "OK session SCRAM-SHA-256-PLUS",
        "OK direct TLS: StreamOpened | Authenticated juliet@im.example.com SCRAM-SHA-512-PLUS",
        "OK chunked: 3-byte pieces give the same",
        "OK timeout: Closed Timeout Negotiation at 60000ms",
        "OK wrong password: Closed AuthenticationFailed not-authorized",
        "OK replay starttls-scram-plus-bind.client.txt as client",
        "OK replay starttls-scram-plus-bind.server.txt as server",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert_eq!(stdout.lines().last(), Some("PASS"));
}

#[test]
fn the_script_fails_loudly_on_a_bad_module() {
    if !node_available() {
        xmpp_testpeers::skip_or_fail("`node` is not on PATH");
        return;
    }
    // Not WebAssembly at all: the script must exit non-zero with FAIL, not pass vacuously.
    let bogus =
        std::env::temp_dir().join(format!("xmpp-host-wasm-bogus-{}.wasm", std::process::id()));
    std::fs::write(&bogus, b"not a wasm module").unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/negotiate.mjs"))
        .arg(&bogus)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&bogus);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
}
