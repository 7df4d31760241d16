//! `compare --federation`: the load generator's federation mode ([`run_federated`]) against
//! three server pairs in one run, one pair after the other: two `xmpp-server`s,
//! Prosody⇄Prosody and ejabberd⇄ejabberd. Users of server A write to users of server B: every
//! ping crosses the pair's s2s link one way and every pong the other way.
//!
//! Each pair: a test CA (xmpp-testpeers' `TestCa`) issues both servers' certificates (c2s and
//! s2s), both trust it, and links authenticate with TLS + SASL EXTERNAL (no dialback). The
//! peers find each other through SRV records on a private `dnsmasq` on a loopback port (the
//! s2s ports are picked before either starts); our servers take static routes
//! (`--s2s-route`). Everything is on 127.0.0.1 under `.test`, and stopped by pid.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xmpp_loadgen::{Options, Remote, Report, Target, run_federated};
use xmpp_testpeers::{
    PeerKind, PeerOptions, PeerServer, PrivateDns, S2sAuth, S2sOptions, SrvRecord, TestCa,
};

use crate::{Guard, c2s_path, fmt_opt, free_port, load_average, spawn_c2s};

/// A started pair: dropping it stops both servers, then the DNS server.
struct Pair {
    name: &'static str,
    a: Target,
    b: Remote,
    a_domain: String,
    setup: Duration,
    _servers: [Guard; 2],
    _dns: Option<PrivateDns>,
}

/// Our two servers, `a.rust.test` and `b.rust.test`, as child processes.
fn start_ours(path: &Path, options: &Options) -> Result<Pair, String> {
    let begin = Instant::now();
    let ca = TestCa::new("loadgen federation CA (xmpp-server)").map_err(|e| e.to_string())?;
    let domains = ["a.rust.test", "b.rust.test"];
    let s2s_ports = [free_port()?, free_port()?];
    let mut started = Vec::new();
    for (i, domain) in domains.iter().enumerate() {
        let dir =
            std::env::temp_dir().join(format!("xmpp-loadgen-fed-{}-{domain}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let cert = ca.issue(domain).map_err(|e| e.to_string())?;
        fs::write(dir.join("cert.pem"), &cert.cert_pem).map_err(|e| e.to_string())?;
        fs::write(dir.join("key.pem"), &cert.key_pem).map_err(|e| e.to_string())?;
        fs::write(dir.join("ca.pem"), ca.pem()).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let other = 1 - i;
        let extra = [
            "--s2s-port".to_owned(),
            s2s_ports[i].to_string(),
            "--s2s-route".to_owned(),
            format!("{}=127.0.0.1:{}", domains[other], s2s_ports[other]),
            "--s2s-ca".to_owned(),
            dir.join("ca.pem").to_string_lossy().into_owned(),
        ];
        let child = spawn_c2s(path, port, domain, &dir, options, "memory", &extra);
        let guard = match child {
            Ok(child) => Guard::Child(child, dir),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        started.push((port, guard));
    }
    let mut started = started.into_iter();
    let (Some((a_port, a_guard)), Some((b_port, b_guard))) = (started.next(), started.next())
    else {
        return Err("two servers expected".to_owned());
    };
    Ok(Pair {
        name: "xmpp-server ⇄ xmpp-server",
        a: Target::new(loopback(a_port), ca.pem(), None),
        b: Remote::new(Target::new(loopback(b_port), ca.pem(), None), domains[1]),
        a_domain: domains[0].to_owned(),
        setup: begin.elapsed(),
        _servers: [a_guard, b_guard],
        _dns: None,
    })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A directory name as Prosody's datamanager writes it: every non-alphanumeric byte as
/// `%xx` (lowercase hex).
fn prosody_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// Accounts `user0..user<N-1>` on a started peer: Prosody (started with `user0`) reads
/// account files at login time, so copies of `user0`'s file (same password and salt) are
/// accounts as good as registered ones; ejabberd imports them all with one `ejabberdctl
/// import_piefxis` (XEP-0227 file): `register` would start one Erlang VM per account (200
/// took most of 150 s).
pub(crate) fn add_accounts(server: &PeerServer, options: &Options) -> Result<(), String> {
    match server.kind {
        PeerKind::Prosody => {
            let first = format!("{}0", options.user_prefix);
            let accounts = server
                .dir()
                .join("data")
                .join(prosody_encode(&server.domain))
                .join("accounts");
            let template = fs::read(accounts.join(format!("{first}.dat")))
                .map_err(|e| format!("Prosody account file: {e}"))?;
            for i in 1..options.sessions {
                let file = accounts.join(format!("{}{i}.dat", options.user_prefix));
                fs::write(&file, &template).map_err(|e| e.to_string())?;
            }
            let _ = Command::new("chown")
                .arg("-R")
                .arg("prosody:prosody")
                .arg(&accounts)
                .status();
            Ok(())
        }
        PeerKind::Ejabberd => {
            let accounts: Vec<(String, String)> = (0..options.sessions)
                .map(|i| {
                    (
                        format!("{}{i}", options.user_prefix),
                        options.password.clone(),
                    )
                })
                .collect();
            server
                .register_many(&accounts)
                .map_err(|e| format!("registering {} accounts: {e}", accounts.len()))
        }
    }
}

/// Two peers of `kind`, `a.<kind>.test` and `b.<kind>.test`, finding each other by SRV.
fn start_peers(kind: PeerKind, options: &Options) -> Result<Pair, String> {
    let begin = Instant::now();
    if !PrivateDns::is_installed() {
        return Err("dnsmasq (Debian dnsmasq-base) is not installed".to_owned());
    }
    let (name, label) = match kind {
        PeerKind::Prosody => ("Prosody ⇄ Prosody", "prosody"),
        PeerKind::Ejabberd => ("ejabberd ⇄ ejabberd", "ejabberd"),
    };
    let domains = [format!("a.{label}.test"), format!("b.{label}.test")];
    let ca = TestCa::new(&format!("loadgen federation CA ({label})")).map_err(|e| e.to_string())?;
    let ports = [free_port()?, free_port()?];
    let dns = PrivateDns::start(&[
        SrvRecord {
            domain: domains[0].clone(),
            port: ports[0],
        },
        SrvRecord {
            domain: domains[1].clone(),
            port: ports[1],
        },
    ])
    .map_err(|e| format!("private DNS: {e}"))?;
    let first = format!("{}0", options.user_prefix);
    let mut servers = Vec::new();
    for (domain, port) in domains.iter().zip(ports) {
        let peer_options = PeerOptions::new()
            .with_s2s(S2sOptions {
                domain: domain.clone(),
                cert: ca.issue(domain).map_err(|e| e.to_string())?,
                auth: S2sAuth::External { ca_pem: ca.pem() },
                dns: dns.addr,
            })
            .with_s2s_port(port)
            .warnings_only();
        let accounts: &[(&str, &str)] = match kind {
            PeerKind::Prosody => &[(first.as_str(), options.password.as_str())],
            PeerKind::Ejabberd => &[],
        };
        let server =
            PeerServer::start_with(kind, accounts, &peer_options).map_err(|e| e.to_string())?;
        add_accounts(&server, options)?;
        servers.push(server);
    }
    let mut servers = servers.into_iter();
    let (Some(a), Some(b)) = (servers.next(), servers.next()) else {
        return Err("two servers expected".to_owned());
    };
    Ok(Pair {
        name,
        a: Target::new(loopback(a.starttls_port), ca.pem(), None),
        b: Remote::new(
            Target::new(loopback(b.starttls_port), ca.pem(), None),
            domains[1].clone(),
        ),
        a_domain: domains[0].clone(),
        setup: begin.elapsed(),
        _servers: [Guard::Peer(Box::new(a)), Guard::Peer(Box::new(b))],
        _dns: Some(dns),
    })
}

/// Runs the federation comparison for `servers` (`c2s`, `prosody`, `ejabberd`) and prints
/// one table.
pub(crate) fn run(
    servers: &[String],
    c2s: Option<&Path>,
    options: &Options,
    runtime: &tokio::runtime::Runtime,
) {
    println!(
        "compare --federation: {} sessions per pair (half on each server), {}, {} pings/s \
         for {} s after {} s idle; load average {}",
        options.sessions,
        options.mechanism,
        options.message_rate,
        options.message_duration.as_secs_f64(),
        options.idle.as_secs_f64(),
        load_average()
    );
    let mut rows: Vec<(String, Result<Report, String>)> = Vec::new();
    for server in servers {
        let started = match server.as_str() {
            "c2s" => match c2s_path(c2s.map(Path::to_path_buf)) {
                Some(path) => start_ours(&path, options),
                None => Err("xmpp-server binary not found (--c2s PATH)".to_owned()),
            },
            "prosody" => start_peers(PeerKind::Prosody, options),
            "ejabberd" => start_peers(PeerKind::Ejabberd, options),
            other => Err(format!("unknown server {other}")),
        };
        let pair = match started {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("{server}: could not start the pair: {e}");
                rows.push((server.clone(), Err(e)));
                continue;
            }
        };
        eprintln!(
            "{}: ready in {:.1} s; load average {}",
            pair.name,
            pair.setup.as_secs_f64(),
            load_average()
        );
        let mut options = options.clone();
        options.domain.clone_from(&pair.a_domain);
        let report = runtime
            .block_on(run_federated(&pair.a, &pair.b, options))
            .map_err(|e| e.to_string());
        match &report {
            Ok(report) => eprintln!("{}: {report}", pair.name),
            Err(e) => eprintln!("{}: {e}", pair.name),
        }
        rows.push((pair.name.to_owned(), report));
        drop(pair);
    }
    println!(
        "\n| pair | sessions | logged in | SASL | messages sent | received | bounced | messages/s | RTT p50 ms | p90 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, report) in &rows {
        match report {
            Ok(r) => {
                let [p50, p90, p99] = r.rtt_ms.map_or([None; 3], |q| q.map(Some));
                println!(
                    "| {name} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                    r.sessions,
                    r.logged_in,
                    r.mechanism.as_deref().unwrap_or("-"),
                    r.messages_sent,
                    r.messages_received,
                    r.messages_bounced,
                    r.messages_per_sec,
                    fmt_opt(p50, 2),
                    fmt_opt(p90, 2),
                    fmt_opt(p99, 2)
                );
            }
            Err(e) => println!("| {name} | not measured: {e} | | | | | | | | | |"),
        }
    }
    println!("\nload average at the end: {}", load_average());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prosody_directory_names_escape_every_non_alphanumeric_byte() {
        assert_eq!(prosody_encode("a.prosody.test"), "a%2eprosody%2etest");
        assert_eq!(prosody_encode("x-y"), "x%2dy");
        assert_eq!(prosody_encode("localhost"), "localhost");
    }
}
