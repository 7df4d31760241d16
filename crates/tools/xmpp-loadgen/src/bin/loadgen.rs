//! `loadgen`: N TLS c2s sessions against one server you started on loopback.
//!
//! `cargo run --release -p xmpp-loadgen --bin loadgen -- --port 5222 --trust cert.pem
//!  --pid 1234 --sessions 1000`
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use xmpp_loadgen::{Options, Target};

const USAGE: &str = "usage: loadgen --port N --trust PEMFILE [--pid PID] [--sessions N]
               [--mechanism SCRAM-SHA-1|SCRAM-SHA-256|strongest] [--password PW] [--prefix user]
               [--domain localhost] [--concurrency 32] [--idle SECS] [--rate PINGS_PER_SEC]
               [--duration SECS] [--seed N] [--max-server-rss-mib N]

Connects to 127.0.0.1:PORT only. Accounts are PREFIX0..PREFIX<N-1>, all with the same password.";

fn parse() -> Result<(Target, Options), String> {
    let mut options = Options::new(100);
    let (mut port, mut trust, mut pid) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{arg}: {e}");
        match arg.as_str() {
            "--port" => port = Some(value()?.parse::<u16>().map_err(|e| bad(&e))?),
            "--trust" => trust = Some(value()?),
            "--pid" => pid = Some(value()?.parse::<u32>().map_err(|e| bad(&e))?),
            "--sessions" => options.sessions = value()?.parse().map_err(|e| bad(&e))?,
            "--mechanism" => options.mechanism = value()?.parse().map_err(|e| bad(&e))?,
            "--password" => options.password = value()?,
            "--prefix" => options.user_prefix = value()?,
            "--domain" => options.domain = value()?,
            "--concurrency" => options.concurrency = value()?.parse().map_err(|e| bad(&e))?,
            "--idle" => {
                options.idle = Duration::from_secs_f64(value()?.parse().map_err(|e| bad(&e))?);
            }
            "--rate" => options.message_rate = value()?.parse().map_err(|e| bad(&e))?,
            "--duration" => {
                options.message_duration =
                    Duration::from_secs_f64(value()?.parse().map_err(|e| bad(&e))?);
            }
            "--seed" => options.seed = value()?.parse().map_err(|e| bad(&e))?,
            "--max-server-rss-mib" => {
                let mib: u64 = value()?.parse().map_err(|e| bad(&e))?;
                options.max_server_rss_kib = Some(mib.saturating_mul(1024));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let port = port.ok_or("--port is required")?;
    let trust = trust.ok_or("--trust is required")?;
    let pem = std::fs::read_to_string(&trust).map_err(|e| format!("{trust}: {e}"))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    Ok((Target::new(addr, pem, pid), options))
}

fn main() -> ExitCode {
    let (target, options) = match parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match xmpp_loadgen::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(xmpp_loadgen::run(&target, options)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
