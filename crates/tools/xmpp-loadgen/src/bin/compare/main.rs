//! `compare`: the same load against the toolkit's example server (`xmpp-server`), Prosody and
//! ejabberd, one after the other in one run, on loopback, with the same accounts and client.
//!
//! `cargo build --release -p xmpp-server -p xmpp-loadgen &&
//!  target/release/compare --sessions 1000`
//!
//! Accounts `user0..user<N-1>`: given to `xmpp-server` on its command line; for Prosody one is
//! registered with `prosodyctl` and its account file copied for the others (same password,
//! same salt); ejabberd imports them all from one XEP-0227 file (`ejabberdctl import_piefxis`).
//! Both run with warning-level logs, so per-stanza debug logging is not what gets measured.
//!
//! `--servers echo` runs the load generator's echo peer (the `echo-peer` binary next to this
//! one, [`xmpp_loadgen::echo`]): not an XMPP server, its row is the generator's own ceiling.
//!
//! `--federation` runs server pairs instead ([`federation`]): users of server A write to users
//! of server B through the pair's s2s link, for two `xmpp-server`s, Prosody⇄Prosody and
//! ejabberd⇄ejabberd.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser};
use xmpp_loadgen::cli::Load;
use xmpp_loadgen::{Options, Report, ScramChoice, Target, procfs};
use xmpp_testpeers::{PeerKind, PeerServer};

mod federation;

/// The same load against xmpp-server, Prosody and ejabberd, one after the other, on loopback,
/// with the same accounts and client; prints one table.
///
/// Durations are in seconds, decimals allowed (e.g. 0.5).
#[derive(Debug, Parser)]
#[command(name = "compare", version, args_override_self = true)]
struct Cli {
    /// Sessions per server (accounts user0, user1, ...)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    sessions: usize,
    /// Servers to run, in order, comma-separated (c2s is xmpp-server with accounts in memory,
    /// c2s-sqlite the same on a new SQLite file, its default store; echo is the load
    /// generator's own trivial echo peer, not an XMPP server: its row is the generator's
    /// ceiling)
    #[arg(
        long,
        action = ArgAction::Set,
        value_delimiter = ',',
        default_value = "c2s,prosody,ejabberd",
        value_parser = ["c2s", "c2s-sqlite", "prosody", "ejabberd", "echo"]
    )]
    servers: Vec<String>,
    /// The xmpp-server binary [default: next to this one]
    #[arg(long, value_name = "PATH")]
    c2s: Option<PathBuf>,
    /// SCRAM-SHA-1, SCRAM-SHA-256, or strongest (the client's pick from each server's offer)
    ///
    /// The servers store different SCRAM variants, so no single forced one suits all three.
    #[arg(long, default_value_t = ScramChoice::Strongest)]
    mechanism: ScramChoice,
    /// Run server pairs federating over s2s instead: users of server A write to users of
    /// server B (c2s is two xmpp-servers; prosody and ejabberd two of each)
    #[arg(long)]
    federation: bool,
    #[command(flatten)]
    load: Load,
}

impl Cli {
    fn options(&self) -> Options {
        let mut options = Options::new(self.sessions);
        options.mechanism = self.mechanism;
        self.load.apply(&mut options);
        options
    }
}

/// A started server and what it takes to load it. Dropping it stops the server.
struct Started {
    name: &'static str,
    target: Target,
    accounts: usize,
    setup: Duration,
    _guard: Guard,
}

enum Guard {
    /// Held only so that dropping the guard stops the server.
    Peer(#[allow(dead_code)] Box<PeerServer>),
    Child(Child, PathBuf),
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Child(child, dir) = self {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

fn wait_listening(port: u16, child: &mut Child, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited early: {status}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("did not start listening in time".to_owned())
}

/// Wait until a server on `port` answers a stream header (its accept loop runs).
fn wait_serving(port: u16, domain: &str, limit: Duration) -> Result<(), String> {
    use std::io::Write as _;
    let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    tcp.write_all(header.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match xmpp_testpeers::read_some(&mut tcp, &mut buf) {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => Err("closed before answering a stream header".to_owned()),
        Err(e) => Err(format!("no stream header back: {e}")),
    }
}

/// Starts `xmpp-server` on `port` for `domain` with `dir`'s `cert.pem` and `key.pem`, every
/// account of `options`, quiet, on the database `db` (`--db`: `memory` or `sqlite:PATH`),
/// plus `extra` arguments, and waits until it serves.
fn spawn_c2s(
    path: &Path,
    port: u16,
    domain: &str,
    dir: &Path,
    options: &Options,
    db: &str,
    extra: &[String],
) -> Result<Child, String> {
    let mut command = Command::new(path);
    command
        .arg("--port")
        .arg(port.to_string())
        .arg("--domain")
        .arg(domain)
        .arg("--cert")
        .arg(dir.join("cert.pem"))
        .arg("--key")
        .arg(dir.join("key.pem"))
        .arg("--quiet")
        .arg("--db")
        .arg(db)
        .args(extra);
    for i in 0..options.sessions {
        command
            .arg("--user")
            .arg(format!("{}{i}:{}", options.user_prefix, options.password));
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let ready = wait_listening(port, &mut child, Duration::from_secs(120)).and_then(|()| {
        // The port is bound before the hub derives every account's SCRAM credentials
        // (seconds at 10 000 accounts): wait for a stream header back, so that the "before"
        // memory sample includes the account database, as it does for the other servers.
        wait_serving(port, domain, Duration::from_secs(300))
    });
    if let Err(e) = ready {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}

/// Starts `xmpp-server` with its accounts and rosters in memory (`sqlite` false) or in a new
/// SQLite file in its temp dir (the server's default store), and waits until it serves.
fn start_c2s(path: &Path, options: &Options, sqlite: bool) -> Result<Started, String> {
    let begin = Instant::now();
    let (dir, cert_pem) = dir_with_certificate("c2s", options)?;
    let port = free_port()?;
    let db = if sqlite {
        let file = dir.join("accounts.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", file.display()));
        }
        format!("sqlite:{}", file.display())
    } else {
        "memory".to_owned()
    };
    let child = spawn_c2s(path, port, &options.domain, &dir, options, &db, &[])?;
    let pid = child.id();
    Ok(Started {
        name: leak_name(if sqlite { "c2s-sqlite" } else { "c2s" }),
        target: Target::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            cert_pem,
            Some(pid),
        ),
        accounts: options.sessions,
        setup: begin.elapsed(),
        _guard: Guard::Child(child, dir),
    })
}

/// A temp dir `xmpp-loadgen-NAME-PID` holding a new self-signed certificate for the domain
/// (`cert.pem`, `key.pem`): the dir and the certificate's PEM.
fn dir_with_certificate(name: &str, options: &Options) -> Result<(PathBuf, String), String> {
    let dir = std::env::temp_dir().join(format!("xmpp-loadgen-{name}-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let certified = rcgen::generate_simple_self_signed(vec![options.domain.clone()])
        .map_err(|e| e.to_string())?;
    let cert_pem = certified.cert.pem();
    fs::write(dir.join("cert.pem"), &cert_pem).map_err(|e| e.to_string())?;
    fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem())
        .map_err(|e| e.to_string())?;
    Ok((dir, cert_pem))
}

/// Starts the load generator's echo peer (the `echo-peer` binary next to this one) on a free
/// port with a new self-signed certificate, and waits until it answers a stream header.
fn start_echo(options: &Options) -> Result<Started, String> {
    let begin = Instant::now();
    let path = sibling("echo-peer").ok_or(
        "echo-peer binary not found (build it with cargo build --release -p xmpp-loadgen)",
    )?;
    let (dir, cert_pem) = dir_with_certificate("echo", options)?;
    let port = free_port()?;
    let mut child = Command::new(&path)
        .arg("--port")
        .arg(port.to_string())
        .arg("--cert")
        .arg(dir.join("cert.pem"))
        .arg("--key")
        .arg(dir.join("key.pem"))
        .arg("--domain")
        .arg(&options.domain)
        .arg("--password")
        .arg(&options.password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let ready = wait_listening(port, &mut child, Duration::from_secs(30))
        .and_then(|()| wait_serving(port, &options.domain, Duration::from_secs(30)));
    if let Err(e) = ready {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let pid = child.id();
    Ok(Started {
        name: leak_name("echo"),
        target: Target::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            cert_pem,
            Some(pid),
        ),
        accounts: options.sessions,
        setup: begin.elapsed(),
        _guard: Guard::Child(child, dir),
    })
}

fn start_prosody(options: &Options) -> Result<Started, String> {
    let begin = Instant::now();
    let first = format!("{}0", options.user_prefix);
    let server =
        PeerServer::start_for_load(PeerKind::Prosody, &[(first.as_str(), &options.password)])
            .map_err(|e| e.to_string())?;
    federation::add_accounts(&server, options)?;
    let pid = procfs::listener_pid(server.starttls_port);
    Ok(Started {
        name: "Prosody",
        target: Target::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, server.starttls_port)),
            server.certificate_pem.clone(),
            pid,
        ),
        accounts: options.sessions,
        setup: begin.elapsed(),
        _guard: Guard::Peer(Box::new(server)),
    })
}

fn start_ejabberd(options: &Options) -> Result<Started, String> {
    let begin = Instant::now();
    let server = PeerServer::start_for_load(PeerKind::Ejabberd, &[]).map_err(|e| e.to_string())?;
    federation::add_accounts(&server, options)?;
    let cert_pem = server.certificate_pem.clone();
    let pid = procfs::listener_pid(server.starttls_port);
    Ok(Started {
        name: "ejabberd",
        target: Target::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, server.starttls_port)),
            cert_pem,
            pid,
        ),
        accounts: options.sessions,
        setup: begin.elapsed(),
        _guard: Guard::Peer(Box::new(server)),
    })
}

fn c2s_path(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| sibling("xmpp-server"))
}

/// The binary `name` next to this one, if there is one.
fn sibling(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let sibling = me.parent()?.join(name);
    sibling.is_file().then_some(sibling)
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn fmt_opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = cli.options();
    let runtime = match xmpp_loadgen::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.federation {
        federation::run(&cli.servers, cli.c2s.as_deref(), &options, &runtime);
        return ExitCode::SUCCESS;
    }
    println!(
        "compare: {} sessions, {}, {} pings/s for {} s after {} s idle; load average {}",
        options.sessions,
        options.mechanism,
        options.message_rate,
        options.message_duration.as_secs_f64(),
        options.idle.as_secs_f64(),
        load_average()
    );
    let mut rows: Vec<(&'static str, usize, Result<Report, String>)> = Vec::new();
    for server in &cli.servers {
        let started = match server.as_str() {
            "c2s" | "c2s-sqlite" => match c2s_path(cli.c2s.clone()) {
                Some(path) => start_c2s(&path, &options, server == "c2s-sqlite"),
                None => Err(
                    "xmpp-server binary not found (build it with cargo build --release \
                             -p xmpp-server, or pass --c2s PATH)"
                        .to_owned(),
                ),
            },
            "prosody" => start_prosody(&options),
            "ejabberd" => start_ejabberd(&options),
            "echo" => start_echo(&options),
            other => Err(format!("unknown server {other}")),
        };
        let started = match started {
            Ok(started) => started,
            Err(e) => {
                eprintln!("{server}: could not start: {e}");
                rows.push((leak_name(server), 0, Err(e)));
                continue;
            }
        };
        let mut options = options.clone();
        options.sessions = started.accounts.min(options.sessions);
        let fds = started
            .target
            .server_pid
            .and_then(procfs::open_file_limit_of)
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        eprintln!(
            "{}: ready in {:.1} s with {} accounts (pid {:?}, open-file limit {fds}); load average {}",
            started.name,
            started.setup.as_secs_f64(),
            options.sessions,
            started.target.server_pid,
            load_average()
        );
        let report = runtime
            .block_on(xmpp_loadgen::run(&started.target, options.clone()))
            .map_err(|e| e.to_string());
        match &report {
            Ok(report) => eprintln!("{}: {report}", started.name),
            Err(e) => eprintln!("{}: {e}", started.name),
        }
        rows.push((started.name, options.sessions, report));
        drop(started);
    }
    println!(
        "\n| server | sessions | logged in | SASL | logins/s | KiB per idle session | messages/s | RTT p50 ms | p90 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, sessions, report) in &rows {
        match report {
            Ok(r) if r.aborted.is_some() => println!(
                "| {name} | {sessions} | {} | aborted: {} | | | | | | |",
                r.logged_in,
                r.aborted.as_deref().unwrap_or_default()
            ),
            Ok(r) => {
                let [p50, p90, p99] = r.rtt_ms.map_or([None; 3], |q| q.map(Some));
                println!(
                    "| {name} | {sessions} | {} | {} | {:.0} | {} | {:.0} | {} | {} | {} |",
                    r.logged_in,
                    r.mechanism.as_deref().unwrap_or("-"),
                    r.logins_per_sec,
                    fmt_opt(r.kib_per_session, 1),
                    r.messages_per_sec,
                    fmt_opt(p50, 2),
                    fmt_opt(p90, 2),
                    fmt_opt(p99, 2)
                );
            }
            Err(e) => println!("| {name} | {sessions} | not measured: {e} | | | | | | | |"),
        }
    }
    println!("\nload average at the end: {}", load_average());
    ExitCode::SUCCESS
}

fn leak_name(name: &str) -> &'static str {
    match name {
        "c2s" => "xmpp-server (tokio example)",
        "c2s-sqlite" => "xmpp-server (tokio example, SQLite)",
        "prosody" => "Prosody",
        "ejabberd" => "ejabberd",
        "echo" => "echo peer (load generator's ceiling)",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("compare").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_run_every_server_with_the_strongest_mechanism() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.servers, ["c2s", "prosody", "ejabberd"]);
        assert_eq!(cli.c2s, None);
        assert!(!cli.federation);
        let options = cli.options();
        assert_eq!(options.sessions, 1000);
        assert_eq!(options.mechanism, ScramChoice::Strongest);
    }

    #[test]
    fn parses_the_benchmarks_command_line() {
        // As BENCHMARKS.md runs it, plus the other flags.
        let cli = parse(&[
            "--sessions",
            "200",
            "--servers",
            "c2s,ejabberd",
            "--rate",
            "20",
            "--idle",
            "2",
            "--duration",
            "3",
            "--c2s",
            "target/release/xmpp-server",
            "--mechanism",
            "SCRAM-SHA-256",
            "--concurrency",
            "4",
            "--max-server-rss-mib",
            "512",
        ])
        .unwrap();
        assert_eq!(cli.servers, ["c2s", "ejabberd"]);
        assert_eq!(cli.c2s, Some(PathBuf::from("target/release/xmpp-server")));
        let options = cli.options();
        assert_eq!(options.sessions, 200);
        assert_eq!(options.mechanism, ScramChoice::Sha256);
        assert!((options.message_rate - 20.0).abs() < f64::EPSILON);
        assert_eq!(options.idle, Duration::from_secs(2));
        assert_eq!(options.message_duration, Duration::from_secs(3));
        assert_eq!(options.concurrency, 4);
        assert_eq!(options.max_server_rss_kib, Some(512 * 1024));
    }

    #[test]
    fn the_last_servers_flag_wins_and_unknown_servers_are_refused() {
        let cli = parse(&["--servers", "prosody", "--servers", "c2s"]).unwrap();
        assert_eq!(cli.servers, ["c2s"]);
        assert!(parse(&["--federation"]).unwrap().federation);
        assert!(parse(&["--servers", "c2s,openfire"]).is_err());
        let cli = parse(&["--servers", "c2s-sqlite,c2s"]).unwrap();
        assert_eq!(cli.servers, ["c2s-sqlite", "c2s"]);
        let cli = parse(&["--servers", "echo,c2s"]).unwrap();
        assert_eq!(cli.servers, ["echo", "c2s"]);
        assert!(
            parse(&["--register-budget", "150"]).is_err(),
            "removed flag"
        );
    }
}
