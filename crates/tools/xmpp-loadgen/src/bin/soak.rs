//! `soak`: N concurrent sessions, deliberate kills mid-negotiation and mid-stanza, a message
//! storm, and an exact account of lost messages, against one server on loopback.
//!
//! `soak --port 5222 --trust cert.pem --sessions 10000` (accounts `user0..`, password
//! `soak-pw`). Prints the report on stderr and one `soak-result key=value ...` line on
//! stdout; exits 0 only if every check passed. See `xmpp_loadgen::soak`.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use xmpp_loadgen::soak::{self, SoakOptions, SoakTarget};

const USAGE: &str = "usage: soak --port N --trust PEMFILE [--sessions 10000] [--seed 1]
            [--messages-per-session 10] [--storm SECS] [--negotiation-kill-rate 0.1]
            [--stanza-kill-rate 0.05] [--concurrency 64] [--login-timeout SECS]
            [--drain-timeout SECS] [--timeout SECS] [--prefix user] [--password soak-pw]
            [--domain localhost] [--progress] [--probe]

Connects to 127.0.0.1:PORT only. --probe: one session, no kills, three messages to itself
(a fresh login check after a soak).";

fn parse() -> Result<(SoakTarget, SoakOptions), String> {
    let mut options = SoakOptions::new(10_000);
    let (mut port, mut trust, mut probe) = (None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{arg}: {e}");
        let secs = |text: String| -> Result<Duration, String> {
            let n: f64 = text.parse().map_err(|e| bad(&e))?;
            Duration::try_from_secs_f64(n).map_err(|e| bad(&e))
        };
        match arg.as_str() {
            "--port" => port = Some(value()?.parse::<u16>().map_err(|e| bad(&e))?),
            "--trust" => trust = Some(value()?),
            "--sessions" => options.sessions = value()?.parse().map_err(|e| bad(&e))?,
            "--seed" => options.seed = value()?.parse().map_err(|e| bad(&e))?,
            "--messages-per-session" => {
                options.messages_per_session = value()?.parse().map_err(|e| bad(&e))?;
            }
            "--storm" => options.storm = secs(value()?)?,
            "--negotiation-kill-rate" => {
                options.negotiation_kill_rate = value()?.parse().map_err(|e| bad(&e))?;
            }
            "--stanza-kill-rate" => {
                options.stanza_kill_rate = value()?.parse().map_err(|e| bad(&e))?;
            }
            "--concurrency" => options.concurrency = value()?.parse().map_err(|e| bad(&e))?,
            "--login-timeout" => options.login_timeout = secs(value()?)?,
            "--drain-timeout" => options.drain_timeout = secs(value()?)?,
            "--timeout" => options.timeout = secs(value()?)?,
            "--prefix" => options.user_prefix = value()?,
            "--password" => options.password = value()?,
            "--domain" => options.domain = value()?,
            "--progress" => options.progress = true,
            "--probe" => probe = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if probe {
        options.sessions = 1;
        options.negotiation_kill_rate = 0.0;
        options.stanza_kill_rate = 0.0;
        options.messages_per_session = 3;
        options.storm = Duration::from_millis(300);
        options.drain_timeout = Duration::from_secs(10);
        options.timeout = options.timeout.min(Duration::from_secs(60));
    }
    let port = port.ok_or("--port is required")?;
    let trust = trust.ok_or("--trust is required")?;
    let pem = std::fs::read_to_string(&trust).map_err(|e| format!("{trust}: {e}"))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    Ok((SoakTarget::new(addr, pem), options))
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
    // Each session holds one descriptor; the machine allows at most 20 000 per process.
    let limit = soak::raise_fd_limit(20_000);
    eprintln!("soak: open-file limit {limit:?}");
    let runtime = match xmpp_loadgen::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(soak::soak(&target, options)) {
        Ok(report) => {
            eprintln!("{report}");
            println!("{}", report.summary_line());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}
