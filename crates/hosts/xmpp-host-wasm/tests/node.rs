//! Builds this crate for `wasm32-unknown-unknown` and runs `tests/node/negotiate.mjs` on the
//! module with Node.js: a client and a server machine negotiate inside WebAssembly, every byte
//! carried by hand in JavaScript. Skipped (with a message) when `node` is missing, unless
//! `XMPP_INTEROP=require`.
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

fn build_wasm() -> PathBuf {
    let target_dir = workspace().join("target/wasm-host-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--target",
            "wasm32-unknown-unknown",
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
    let wasm = target_dir.join("wasm32-unknown-unknown/release/xmpp_host_wasm.wasm");
    assert!(wasm.is_file(), "{} missing", wasm.display());
    wasm
}

#[test]
fn node_drives_a_full_negotiation_inside_wasm() {
    if !node_available() {
        let required = std::env::var("XMPP_INTEROP").is_ok_and(|v| v == "require");
        assert!(!required, "node is missing and XMPP_INTEROP=require");
        eprintln!("skipping: `node` is not on PATH (set XMPP_INTEROP=require to fail instead)");
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
        eprintln!("skipping: `node` is not on PATH");
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
