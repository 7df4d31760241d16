//! Server-role interop: real clients nobody here wrote (slixmpp, libstrophe) against the
//! example server, started in-process on a free 127.0.0.1 port with a fresh self-signed
//! certificate that the peers trust explicitly (written to a temp file as their CA).
//!
//! Peers missing: the tests skip with a message, unless `XMPP_INTEROP=require` (as in CI),
//! in which case they fail. Every peer process is killed after a deadline.
//!
//! Each peer prints `RESULT <feature> pass|fail` lines; the tests print them as matrix rows
//! (`cargo test -p xmpp-server --test interop -- --nocapture`) and, when `XMPP_C2S_MATRIX` names
//! a file, append them there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    build_strophe_program, loopback, missing, peers_dir, results, run_peer, runtime_config,
    slixmpp_python, temp_dir,
};

use xmpp_server::{HubConfig, PlusPolicy, ServerHandle, TranscriptSink};
use xmpp_stream::{BareJid, Mechanism};

const DOMAIN: &str = "localhost";

struct Server {
    handle: ServerHandle,
    /// Finished sessions' transcripts, under `XMPP_RECORD=1`.
    sink: Option<TranscriptSink>,
    cafile: PathBuf,
    dir: PathBuf,
}

fn start_server(name: &str, mechanisms: Option<Vec<Mechanism>>, plus: PlusPolicy) -> Server {
    start_server_for(name, mechanisms, plus, "alice-pw")
}

fn start_server_for(
    name: &str,
    mechanisms: Option<Vec<Mechanism>>,
    plus: PlusPolicy,
    alice_password: &str,
) -> Server {
    start_server_with_ca(name, mechanisms, plus, alice_password, None)
}

/// [`start_server_for`], trusting client certificates from `client_ca` (PEM) for SASL
/// EXTERNAL: what the binary's `--client-ca` sets up.
fn start_server_with_ca(
    name: &str,
    mechanisms: Option<Vec<Mechanism>>,
    plus: PlusPolicy,
    alice_password: &str,
    client_ca: Option<&str>,
) -> Server {
    let mut hub = HubConfig::new(BareJid::new(DOMAIN).unwrap())
        .with_user("alice", alice_password)
        .with_user("bob", "bob-pw")
        .with_plus(plus);
    if let Some(mechanisms) = mechanisms {
        hub.stream.mechanisms = mechanisms;
    }
    let sink = std::env::var("XMPP_RECORD")
        .is_ok_and(|v| v == "1")
        .then(TranscriptSink::default);
    hub.record.clone_from(&sink);
    let mut config = runtime_config(hub, DOMAIN);
    if let Some(ca) = client_ca {
        config.tls = config.tls.with_client_ca(ca.as_bytes()).unwrap();
    }
    let handle = ServerHandle::spawn_with(loopback(), Some(loopback()), config).unwrap();
    let dir = temp_dir(name);
    let cafile = dir.join("server.pem");
    std::fs::write(&cafile, &handle.cert_pem).unwrap();
    Server {
        handle,
        sink,
        cafile,
        dir,
    }
}

fn record(peer: &str, variant: &str, rows: &[(String, bool)]) {
    let mut lines = String::new();
    for (feature, pass) in rows {
        let mark = if *pass { "pass" } else { "FAIL" };
        let _ = writeln!(lines, "| {peer} | {variant} | {feature} | {mark} |");
    }
    println!("{lines}");
    if let Ok(path) = std::env::var("XMPP_C2S_MATRIX") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(lines.as_bytes()).unwrap();
    }
}

fn check(peer: &str, variant: &str, (ok, out, err): (bool, String, String), expect: &[&str]) {
    let rows = results(&out);
    record(peer, variant, &rows);
    for feature in expect {
        assert!(
            rows.iter().any(|(f, pass)| f == feature && *pass),
            "{peer} {variant}: {feature} did not pass\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
    assert!(
        ok,
        "{peer} {variant} exited with failure\nstdout:\n{out}\nstderr:\n{err}"
    );
}

// ----- slixmpp -----

/// Under `XMPP_RECORD=1`: write the transcripts of the peer's two sessions (alice, bob) to
/// `testdata/transcripts/real-server/NAME-USER.txt`, replayed by `tests/replay_real.rs`.
fn save_transcripts(server: &Server, name: &str, comment: &str) {
    let Some(sink) = &server.sink else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/transcripts/real-server");
    std::fs::create_dir_all(&dir).unwrap();
    let transcripts = sink.lock().unwrap().clone();
    assert_eq!(
        transcripts.len(),
        2,
        "{name}: expected two replayable sessions"
    );
    for text in transcripts {
        let user = text
            .lines()
            .find_map(|l| {
                l.split_once("E server: Authenticated ")
                    .map(|(_, rest)| rest)
            })
            .and_then(|rest| rest.split('@').next())
            .unwrap_or("unauthenticated")
            .to_owned();
        let file = dir.join(format!("{name}-{user}.txt"));
        std::fs::write(&file, format!("# {comment}\n{text}")).unwrap();
    }
}

fn slixmpp_with(mechanism: &str) {
    slixmpp_against(mechanism, PlusPolicy::Off);
}

fn slixmpp_against(mechanism: &str, plus: PlusPolicy) {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return;
    };
    let server = start_server(&format!("slix-{mechanism}"), None, plus);
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("slix_pair.py"))
        .arg("127.0.0.1")
        .arg(server.handle.addr.port().to_string())
        .arg(DOMAIN)
        .arg(&server.cafile)
        .arg(mechanism);
    check(
        "slixmpp",
        mechanism,
        run_peer(command),
        &[
            "login",
            "roster",
            "subscription",
            "presence",
            "message",
            "close",
        ],
    );
    if plus == PlusPolicy::Off {
        save_transcripts(
            &server,
            &format!("slixmpp-{}", mechanism.to_lowercase()),
            &format!(
                "slixmpp (tests/peers/slix_pair.py, mechanism {mechanism}) against the hub, STARTTLS."
            ),
        );
    }
}

#[test]
fn slixmpp_scram_sha_1() {
    slixmpp_with("SCRAM-SHA-1");
}

#[test]
fn slixmpp_scram_sha_256() {
    slixmpp_with("SCRAM-SHA-256");
}

#[test]
fn slixmpp_scram_sha_512() {
    slixmpp_with("SCRAM-SHA-512");
}

#[test]
fn slixmpp_plain_over_tls() {
    slixmpp_with("PLAIN");
}

/// slixmpp's own choice against the default server (no `-PLUS` offered).
#[test]
fn slixmpp_auto() {
    slixmpp_with("AUTO");
}

// ----- libstrophe -----

/// A compiled peer program's command line: `HOST PORT DOMAIN CAFILE` of `server`.
fn peer_command(program: PathBuf, server: &Server) -> Command {
    let mut command = Command::new(program);
    command
        .arg("127.0.0.1")
        .arg(server.handle.addr.port().to_string())
        .arg(DOMAIN)
        .arg(&server.cafile);
    command
}

fn strophe_with(mechanism: Mechanism) {
    let Some(peer) = build_strophe_program(&peers_dir().join("strophe_pair.c")) else {
        missing("libstrophe cannot be built against (Debian: libstrophe-dev, pkg-config, cc)");
        return;
    };
    // libstrophe picks its favourite mechanism itself: the server offers exactly one.
    let server = start_server(
        &format!("strophe-{mechanism}"),
        Some(vec![mechanism]),
        PlusPolicy::Off,
    );
    let command = peer_command(peer, &server);
    check(
        "libstrophe",
        &mechanism.to_string(),
        run_peer(command),
        &[
            "login",
            "roster",
            "subscription",
            "presence",
            "message",
            "close",
        ],
    );
    save_transcripts(
        &server,
        &format!("libstrophe-{}", mechanism.to_string().to_lowercase()),
        &format!(
            "libstrophe (tests/peers/strophe_pair.c) against the hub offering only {mechanism}, STARTTLS."
        ),
    );
}

#[test]
fn libstrophe_scram_sha_1() {
    strophe_with(Mechanism::ScramSha1);
}

#[test]
fn libstrophe_scram_sha_256() {
    strophe_with(Mechanism::ScramSha256);
}

#[test]
fn libstrophe_scram_sha_512() {
    strophe_with(Mechanism::ScramSha512);
}

#[test]
fn libstrophe_plain_over_tls() {
    strophe_with(Mechanism::Plain);
}

/// XEP-0368 direct TLS: slixmpp opens TLS first (`use_ssl`), the stream starts secure.
#[test]
fn slixmpp_direct_tls() {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return;
    };
    let server = start_server("slix-direct", None, PlusPolicy::Off);
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("slix_pair.py"))
        .arg("127.0.0.1")
        .arg(server.handle.direct_tls_addr.unwrap().port().to_string())
        .arg(DOMAIN)
        .arg(&server.cafile)
        .arg("SCRAM-SHA-256")
        .arg("direct");
    check(
        "slixmpp",
        "SCRAM-SHA-256, direct TLS",
        run_peer(command),
        &[
            "login",
            "roster",
            "subscription",
            "presence",
            "message",
            "close",
        ],
    );
}

/// Against a server that offers `-PLUS` bound to `tls-exporter` / `tls-server-end-point`,
/// slixmpp (which binds only with `tls-unique`) picks a `-PLUS` mechanism with a binding we
/// cannot verify, then retries plain SCRAM with the GS2 flag `y`, which a server that offered
/// `-PLUS` must refuse as a downgrade (RFC 5802 §6). The server must refuse each attempt with a
/// SASL failure and end the stream after `max_auth_attempts`: fast, no hang. This is why the
/// example server's default is `PlusPolicy::Off`.
#[test]
fn slixmpp_against_plus_is_refused_cleanly() {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return;
    };
    let server = start_server("slix-plus", None, PlusPolicy::Advertise);
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("slix_pair.py"))
        .arg("127.0.0.1")
        .arg(server.handle.addr.port().to_string())
        .arg(DOMAIN)
        .arg(&server.cafile)
        .arg("AUTO");
    let started = Instant::now();
    let (ok, out, err) = run_peer(command);
    let elapsed = started.elapsed();
    let rows = results(&out);
    let login = rows.iter().find(|(f, _)| f == "login").map(|(_, p)| *p);
    let refused = !ok && login == Some(false) && out.contains("auth failed");
    record(
        "slixmpp",
        "AUTO vs -PLUS offered",
        &[("login refused cleanly".to_owned(), refused)],
    );
    assert!(refused, "stdout:\n{out}\nstderr:\n{err}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

/// XEP-0178: slixmpp logs in with a client certificate and SASL EXTERNAL alone (no
/// password configured) against a server with a client CA; a certificate of the same CA for
/// an account the server lacks gets `not-authorized`; one from another CA gets no EXTERNAL
/// offer at all.
#[test]
fn slixmpp_certificate_login_sasl_external() {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return;
    };
    let ca = xmpp_testpeers::TestCa::new("client CA").unwrap();
    let server = start_server_with_ca(
        "slix-external",
        None,
        PlusPolicy::Off,
        "alice-pw",
        Some(&ca.pem()),
    );
    let other_ca = xmpp_testpeers::TestCa::new("someone else").unwrap();
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("slix_external.py"))
        .arg("127.0.0.1")
        .arg(server.handle.addr.port().to_string())
        .arg(DOMAIN)
        .arg(&server.cafile);
    for (name, cert) in [
        (
            "alice",
            ca.issue_client(&format!("alice@{DOMAIN}")).unwrap(),
        ),
        (
            "mallory",
            ca.issue_client(&format!("mallory@{DOMAIN}")).unwrap(),
        ),
        (
            "forged",
            other_ca.issue_client(&format!("alice@{DOMAIN}")).unwrap(),
        ),
    ] {
        let cert_file = server.dir.join(format!("{name}-cert.pem"));
        let key_file = server.dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert_file, &cert.cert_pem).unwrap();
        std::fs::write(&key_file, &cert.key_pem).unwrap();
        command.arg(cert_file).arg(key_file);
    }
    check(
        "slixmpp",
        "EXTERNAL, client certificate",
        run_peer(command),
        &["external", "unknown-account", "foreign-ca"],
    );
}

/// A wrong password is refused with a SASL failure, quickly: the peer reports failed auth.
#[test]
fn slixmpp_wrong_password_is_refused() {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return;
    };
    // The peer logs in as alice with "alice-pw"; the server knows another password.
    let server = start_server_for(
        "slix-badpw",
        None,
        PlusPolicy::Off,
        "not-what-slixmpp-sends",
    );
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("slix_pair.py"))
        .arg("127.0.0.1")
        .arg(server.handle.addr.port().to_string())
        .arg(DOMAIN)
        .arg(&server.cafile)
        .arg("SCRAM-SHA-256");
    let started = Instant::now();
    let (ok, out, err) = run_peer(command);
    let elapsed = started.elapsed();
    let refused = !ok && out.contains("alice: auth failed (not-authorized)");
    record(
        "slixmpp",
        "SCRAM-SHA-256, wrong password",
        &[("refused (not-authorized)".to_owned(), refused)],
    );
    assert!(refused, "stdout:\n{out}\nstderr:\n{err}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

/// Runs `tests/peers/SCRIPT HOST PORT DOMAIN CAFILE` with slixmpp against a fresh server and
/// checks that every feature in `expect` passed (one matrix row per feature, as `variant`).
fn slixmpp_script(script: &str, variant: &str, expect: &[&str]) {
    let _ = slixmpp_script_on(script, variant, expect);
}

/// [`slixmpp_script`], handing back the server (its recorded transcripts) when it ran.
fn slixmpp_script_on(script: &str, variant: &str, expect: &[&str]) -> Option<Server> {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return None;
    };
    let server = start_server(&format!("slix-{variant}"), None, PlusPolicy::Off);
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join(script))
        .arg("127.0.0.1")
        .arg(server.handle.addr.port().to_string())
        .arg(DOMAIN)
        .arg(&server.cafile);
    check("slixmpp", variant, run_peer(command), expect);
    Some(server)
}

/// What the server advertises and the IM features behind it, from slixmpp: `<ver/>` and
/// `<sub/>` in the stream features, `jabber:iq:roster` in `disco#info` (one list drives
/// both), a versioned roster get answered by pushes only (RFC 6121 §2.6) and pre-approval
/// (§3.4) from a real client.
#[test]
fn slixmpp_advertised_im_features() {
    slixmpp_script(
        "slix_im.py",
        "im",
        &["features", "disco", "rosterver", "preapproval"],
    );
}

/// slixmpp's XEP-0191 and XEP-0016 plugins against the server: blocklist, block with push,
/// the errors of both directions, unblock, and a privacy list stored, activated and obeyed.
#[test]
fn slixmpp_blocking_and_privacy_lists() {
    slixmpp_script(
        "slix_block.py",
        "blocking",
        &["block", "errors", "unblock", "privacy"],
    );
}

/// slixmpp's xep_0077 against the server started with registration allowed: an account
/// registered in band before SASL, the same stream then authenticated and bound; a new
/// connection logs in with it; an existing name is a `conflict`.
#[test]
fn slixmpp_registers_in_band() {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return;
    };
    let mut hub = HubConfig::new(BareJid::new(DOMAIN).unwrap()).with_user("alice", "alice-pw");
    hub.stream.allow_registration = true;
    let handle = ServerHandle::spawn(loopback(), runtime_config(hub, DOMAIN)).unwrap();
    let cafile = temp_dir("slix-register").join("server.pem");
    std::fs::write(&cafile, &handle.cert_pem).unwrap();
    let mut command = Command::new(python);
    command
        .arg(peers_dir().join("slix_register.py"))
        .arg("127.0.0.1")
        .arg(handle.addr.port().to_string())
        .arg(DOMAIN)
        .arg(&cafile);
    check(
        "slixmpp",
        "XEP-0077",
        run_peer(command),
        &["register", "login", "conflict"],
    );
}

// ----- XEP-0198 resumption, server side -----

/// slixmpp's xep_0198 resumes a session whose TCP connection was aborted without
/// `</stream>` while another account kept sending: every message exactly once, in order.
/// Under `XMPP_RECORD=1` the three sessions (alice cut and detached, alice resumed, bob) are
/// written to `testdata/transcripts/real-sm/`, replayed by `xmpp-stream`'s `sm_transcripts`.
#[test]
fn slixmpp_resumes_a_cut_session() {
    let Some(server) = slixmpp_script_on(
        "slix_sm.py",
        "XEP-0198",
        &["login", "enabled", "resume", "exactly-once"],
    ) else {
        return;
    };
    let Some(sink) = &server.sink else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let transcripts = sink.lock().unwrap().clone();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/transcripts/real-sm");
    std::fs::create_dir_all(&dir).unwrap();
    let mut written = Vec::new();
    for text in transcripts {
        let name = if text.contains("H server: detach ") {
            "slixmpp-alice-detached"
        } else if text.contains("H server: resume ") {
            "slixmpp-alice-resumed"
        } else {
            continue;
        };
        let comment = "slixmpp (crates/hosts/xmpp-server/tests/peers/slix_sm.py) against the hub";
        std::fs::write(
            dir.join(format!("{name}.txt")),
            format!("# {comment}\n{text}"),
        )
        .unwrap();
        written.push(name);
    }
    written.sort_unstable();
    assert_eq!(
        written,
        ["slixmpp-alice-detached", "slixmpp-alice-resumed"],
        "the cut and the resumed session must both be recorded and replayable"
    );
}

/// libstrophe 0.12 resumes on a new connection (`xmpp_conn_get_sm_state` from the cut one,
/// `xmpp_conn_set_sm_state` on the new one): every message exactly once, in order, and the
/// new connection resumed (`<resumed/>`), not bound afresh.
#[test]
fn libstrophe_resumes_a_cut_session() {
    let Some(peer) = build_strophe_program(&peers_dir().join("strophe_sm.c")) else {
        missing("libstrophe cannot be built against (Debian: libstrophe-dev, pkg-config, cc)");
        return;
    };
    let server = start_server("strophe-sm", None, PlusPolicy::Off);
    let command = peer_command(peer, &server);
    check(
        "libstrophe",
        "XEP-0198",
        run_peer(command),
        &["login", "enabled", "resume", "exactly-once"],
    );
}
