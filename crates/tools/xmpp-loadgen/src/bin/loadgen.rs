//! `loadgen`: N TLS c2s sessions against one server you started on loopback.
//!
//! `cargo run --release -p xmpp-loadgen --bin loadgen -- --port 5222 --trust cert.pem
//!  --pid 1234 --sessions 1000` (`--help` lists every flag)
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use std::process::ExitCode;

use clap::Parser;
use xmpp_loadgen::cli::{Load, LoopbackServer};
use xmpp_loadgen::{Options, ScramChoice, Target};

/// N TLS c2s sessions against one server you started on loopback: logins/s, messages/s,
/// round-trip percentiles and the server's memory per session.
///
/// Connects to 127.0.0.1:PORT only. Accounts are PREFIX0, PREFIX1, ..., all with the same
/// password. Durations are in seconds, decimals allowed (e.g. 0.5).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, args_override_self = true)]
struct Cli {
    #[command(flatten)]
    server: LoopbackServer,
    /// The server's process id, to sample its resident memory
    #[arg(long)]
    pid: Option<u32>,
    /// Sessions to open (one account each)
    #[arg(long, value_name = "N", default_value_t = 100)]
    sessions: usize,
    /// SCRAM-SHA-1, SCRAM-SHA-256, or strongest (the client's pick from the server's offer)
    #[arg(long, default_value_t = ScramChoice::Sha1)]
    mechanism: ScramChoice,
    /// The password of every account
    #[arg(long, default_value = "load-test-pw")]
    password: String,
    /// Account name prefix
    #[arg(long, default_value = "user")]
    prefix: String,
    /// The XMPP domain (also the TLS server name)
    #[arg(long, default_value = "localhost")]
    domain: String,
    #[command(flatten)]
    load: Load,
    /// Seed for the sessions' SCRAM nonces
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
}

impl Cli {
    fn options(&self) -> Options {
        let mut options = Options::new(self.sessions);
        options.mechanism = self.mechanism;
        options.password.clone_from(&self.password);
        options.user_prefix.clone_from(&self.prefix);
        options.domain.clone_from(&self.domain);
        options.seed = self.seed;
        self.load.apply(&mut options);
        options
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let pem = match cli.server.trust_pem() {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let target = Target::new(cli.server.addr(), pem, cli.pid);
    let runtime = match xmpp_loadgen::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(xmpp_loadgen::run(&target, cli.options())) {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_defaults_are_the_library_defaults() {
        let cli = parse(&["--port", "5222", "--trust", "cert.pem"]).unwrap();
        assert_eq!(cli.pid, None);
        let (options, defaults) = (cli.options(), Options::new(100));
        assert_eq!(options.sessions, defaults.sessions);
        assert_eq!(options.mechanism, defaults.mechanism);
        assert_eq!(options.password, defaults.password);
        assert_eq!(options.user_prefix, defaults.user_prefix);
        assert_eq!(options.domain, defaults.domain);
        assert_eq!(options.seed, defaults.seed);
    }

    #[test]
    fn parses_the_benchmarks_command_line() {
        // As BENCHMARKS.md runs it, plus the account flags.
        let cli = parse(&[
            "--port",
            "5222",
            "--trust",
            "cert.pem",
            "--pid",
            "1234",
            "--sessions",
            "1000",
            "--mechanism",
            "SCRAM-SHA-1",
            "--rate",
            "500",
            "--idle",
            "5",
            "--duration",
            "10",
            "--password",
            "pw",
            "--prefix",
            "load",
            "--domain",
            "example.test",
            "--concurrency",
            "16",
            "--seed",
            "9",
            "--max-server-rss-mib",
            "100",
        ])
        .unwrap();
        assert_eq!(cli.server.port, 5222);
        assert_eq!(cli.pid, Some(1234));
        let options = cli.options();
        assert_eq!(options.sessions, 1000);
        assert_eq!(options.mechanism, ScramChoice::Sha1);
        assert!((options.message_rate - 500.0).abs() < f64::EPSILON);
        assert_eq!(options.idle, Duration::from_secs(5));
        assert_eq!(options.message_duration, Duration::from_secs(10));
        assert_eq!(options.password, "pw");
        assert_eq!(options.user_prefix, "load");
        assert_eq!(options.domain, "example.test");
        assert_eq!(options.concurrency, 16);
        assert_eq!(options.seed, 9);
        assert_eq!(options.max_server_rss_kib, Some(100 * 1024));
    }

    #[test]
    fn refuses_malformed_flags() {
        let base = ["--port", "5222", "--trust", "cert.pem"];
        assert!(parse(&base[..2]).is_err(), "no --trust");
        assert!(parse(&base[2..]).is_err(), "no --port");
        for bad in [
            &["--mechanism", "SCRAM-SHA-512"][..],
            &["--sessions", "many"],
            &["--idle", "-5"],
            &["--pid", "-1"],
        ] {
            assert!(parse(&[&base[..], bad].concat()).is_err(), "{bad:?}");
        }
    }
}
