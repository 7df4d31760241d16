//! The command line: filters, JSON, exit status, and a silent server failing in time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use xmpp_server::{HubConfig, RuntimeConfig, ServerHandle, TlsMaterial};
use xmpp_stream::BareJid;

fn checker(port: u16, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xmpp-conformance"))
        .args([
            "--port",
            &port.to_string(),
            "--domain",
            "localhost",
            "--insecure",
        ])
        .args(["--user", "alice:pw-a"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn filters_and_json_against_our_server() {
    let hub = HubConfig::new(BareJid::new("localhost").unwrap()).with_user("alice", "pw-a");
    let config = RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&["localhost"]).unwrap(),
        log: false,
        trace: false,
        s2s: None,
    };
    let server = ServerHandle::spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).unwrap();
    // Both filters apply: cases 1 and 13 are not in §4.4, an empty selection is a usage error.
    let out = checker(
        server.addr.port(),
        &["--case", "1", "--case", "sasl.plain", "--section", "§4.4"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case matches"));
    let out = checker(server.addr.port(), &["--section", "§4.4", "--json"]);
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    assert!(
        json.contains("\"name\":\"close.handshake\",\"section\":\"RFC 6120 §4.4\""),
        "{json}"
    );
    assert_eq!(json.matches("\"result\":").count(), 1, "{json}");
    let out = checker(
        server.addr.port(),
        &["--case", "1", "--case", "sasl.plain", "--json"],
    );
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    assert_eq!(json.matches("\"result\":\"pass\"").count(), 2, "{json}");
    assert!(
        json.contains("\"name\":\"header.content-namespace\""),
        "{json}"
    );
    // Case 37 needs the second account: not applicable, not a failure.
    let out = checker(server.addr.port(), &["--case", "37"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains("n/a") && table.contains("--user2"),
        "{table}"
    );
}

#[test]
fn a_silent_server_fails_in_time() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection, never answering.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().take(4) {
            held.push(socket);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let started = Instant::now();
    let out = checker(port, &["--case", "1", "--case", "5", "--timeout", "0.5"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert_eq!(table.matches("FAIL").count(), 2, "{table}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// `--s2s-domain`, `--s2s-cert`, `--s2s-key`: the checker reads its certificate from files and
/// authenticates as a remote server with it (SASL EXTERNAL); the domain alone is a usage error.
#[test]
fn s2s_identity_from_files() {
    use xmpp_server::{Dns, S2sSettings, S2sTls};
    let ca = xmpp_testpeers::TestCa::new("cli test CA").unwrap();
    let server_cert = ca.issue("localhost").unwrap();
    let hub = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("alice", "pw-a")
        .with_s2s(xmpp_stream::dialback::DialbackSecret::new(b"cli-dialback"));
    let config = RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&["localhost"]).unwrap(),
        log: false,
        trace: false,
        s2s: Some(S2sSettings {
            routes: std::collections::BTreeMap::new(),
            dns: Dns::Off,
            tls: S2sTls::from_pem(
                server_cert.cert_pem.as_bytes(),
                server_cert.key_pem.as_bytes(),
                Some(ca.pem().as_bytes()),
            )
            .unwrap(),
            connect_timeout: Duration::from_secs(3),
        }),
    };
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let listener = TcpListener::bind(loopback).unwrap();
    let s2s_port = listener.local_addr().unwrap().port().to_string();
    let server = ServerHandle::spawn_federating(loopback, listener, config).unwrap();
    let dir = std::env::temp_dir().join(format!("xmpp-conformance-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let checker_cert = ca.issue("checker.test").unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &checker_cert.cert_pem).unwrap();
    std::fs::write(&key, &checker_cert.key_pem).unwrap();
    let s2s = [
        "--s2s-port",
        &s2s_port,
        "--s2s-domain",
        "checker.test",
        "--s2s-cert",
        cert.to_str().unwrap(),
        "--s2s-key",
        key.to_str().unwrap(),
    ];
    let mut args = s2s.to_vec();
    args.extend(["--case", "61", "--case", "62", "--json"]);
    let out = checker(server.addr.port(), &args);
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    assert_eq!(json.matches("\"result\":\"pass\"").count(), 2, "{json}");
    let out = checker(server.addr.port(), &s2s[..4]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
