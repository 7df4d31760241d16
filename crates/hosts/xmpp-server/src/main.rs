//! `xmpp-server`: the example server's command line.
//!
//! `cargo run -p xmpp-server -- --port 5222 --user alice:pw --user bob:pw`
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use xmpp_server::{HubConfig, PlusPolicy, RuntimeConfig, TlsMaterial};
use xmpp_stream::BareJid;

#[cfg(feature = "alloc-stats")]
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

const USAGE: &str =
    "usage: xmpp-server [--port N] [--bind ADDR] [--domain NAME] [--user NAME:PASSWORD]...
                [--cert FILE --key FILE] [--channel-binding] [--quiet] [--trace]

  --port N            TCP port for STARTTLS c2s (default 5222)
  --tls-port N        also serve XEP-0368 direct TLS on this port (e.g. 5223)
  --bind ADDR         listen address (default 127.0.0.1: loopback only)
  --domain NAME       the XMPP domain served (default localhost)
  --user NAME:PW      an in-memory account (repeatable)
  --cert/--key FILE   PEM certificate chain and private key (default: self-signed, made at start)
  --channel-binding   offer SCRAM-*-PLUS with tls-exporter and tls-server-end-point (XEP-0440);
                      off by default because clients that bind only with tls-unique then fail
  --quiet             no connection log
  --trace             log every XML byte in and out (inside TLS)
  --heap-stats SECS   every SECS seconds, print the live heap (needs the alloc-stats feature)";

struct Args {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    domain: String,
    users: Vec<(String, String)>,
    cert: Option<(PathBuf, PathBuf)>,
    plus: bool,
    quiet: bool,
    trace: bool,
    heap_stats: Option<f64>,
}

fn parse() -> Result<Args, String> {
    let mut port = 5222u16;
    let mut tls_port: Option<u16> = None;
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut domain = "localhost".to_owned();
    let mut users = Vec::new();
    let (mut cert, mut key) = (None, None);
    let (mut plus, mut quiet, mut trace) = (false, false, false);
    let mut heap_stats = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{arg} needs {what}"));
        match arg.as_str() {
            "--port" => {
                port = value("a port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?;
            }
            "--tls-port" => {
                tls_port = Some(
                    value("a port")?
                        .parse()
                        .map_err(|e| format!("--tls-port: {e}"))?,
                );
            }
            "--bind" => {
                ip = value("an address")?
                    .parse()
                    .map_err(|e| format!("--bind: {e}"))?;
            }
            "--domain" => domain = value("a domain")?,
            "--user" => {
                let spec = value("NAME:PASSWORD")?;
                let (name, password) = spec.split_once(':').ok_or("--user takes NAME:PASSWORD")?;
                users.push((name.to_owned(), password.to_owned()));
            }
            "--cert" => cert = Some(PathBuf::from(value("a file")?)),
            "--key" => key = Some(PathBuf::from(value("a file")?)),
            "--channel-binding" => plus = true,
            "--quiet" => quiet = true,
            "--trace" => trace = true,
            "--heap-stats" => {
                let secs: f64 = value("seconds")?
                    .parse()
                    .map_err(|e| format!("--heap-stats: {e}"))?;
                if !(secs.is_finite() && secs >= 0.1) {
                    return Err("--heap-stats takes at least 0.1 seconds".to_owned());
                }
                heap_stats = Some(secs);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--cert and --key go together".to_owned()),
    };
    Ok(Args {
        addr: SocketAddr::new(ip, port),
        tls_addr: tls_port.map(|p| SocketAddr::new(ip, p)),
        domain,
        users,
        cert,
        plus,
        quiet,
        trace,
        heap_stats,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xmpp-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Print the live heap every `secs` seconds on a thread of its own.
#[cfg(feature = "alloc-stats")]
fn heap_stats(secs: f64) {
    let period = std::time::Duration::from_secs_f64(secs);
    std::thread::spawn(move || {
        loop {
            let stats = GLOBAL.stats();
            // A realloc's growth is already in `bytes_allocated` (its shrinking in
            // `bytes_deallocated`): `bytes_reallocated` would count it twice.
            let live = i128::try_from(stats.bytes_allocated).unwrap_or(0)
                - i128::try_from(stats.bytes_deallocated).unwrap_or(0);
            let blocks = stats.allocations.saturating_sub(stats.deallocations);
            eprintln!("heap: {live} bytes live in {blocks} blocks");
            std::thread::sleep(period);
        }
    });
}

#[cfg(not(feature = "alloc-stats"))]
fn heap_stats(_secs: f64) {
    eprintln!("xmpp-server: --heap-stats needs the alloc-stats feature; ignored");
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(secs) = args.heap_stats {
        heap_stats(secs);
    }
    let domain = BareJid::new(&args.domain)?;
    let mut hub = HubConfig::new(domain).with_plus(if args.plus {
        PlusPolicy::Advertise
    } else {
        PlusPolicy::Off
    });
    for (name, password) in &args.users {
        hub = hub.with_user(name, password);
    }
    let tls = match &args.cert {
        Some((cert, key)) => TlsMaterial::from_pem_files(cert, key)?,
        None => TlsMaterial::self_signed(&[args.domain.as_str()])?,
    };
    let config = RuntimeConfig {
        hub,
        tls,
        log: !args.quiet,
        trace: args.trace,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        let direct = match args.tls_addr {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
            None => None,
        };
        eprintln!(
            "xmpp-server: serving {} on {} (STARTTLS){} ({} accounts); Ctrl-C stops",
            args.domain,
            listener.local_addr()?,
            match &direct {
                Some(l) => format!(" and {} (direct TLS)", l.local_addr()?),
                None => String::new(),
            },
            args.users.len()
        );
        xmpp_server::serve_with(listener, direct, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(())
}
