//! `soak`: N concurrent sessions, deliberate kills mid-negotiation and mid-stanza, a message
//! storm, and an exact account of lost messages, against one server on loopback.
//!
//! `soak --port 5222 --trust cert.pem --sessions 10000` (accounts `user0..`, password
//! `soak-pw`). Prints the report on stderr and one `soak-result key=value ...` line on
//! stdout; exits 0 only if every check passed. See `xmpp_loadgen::soak`; `--help` lists
//! every flag.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use xmpp_loadgen::cli::{LoopbackServer, secs};
use xmpp_loadgen::soak::{self, SmSoak, SoakOptions, SoakTarget};

/// N concurrent sessions, deliberate kills mid-negotiation and mid-stanza, a message storm,
/// and an exact account of lost messages, against one server on loopback.
///
/// Connects to 127.0.0.1:PORT only. Prints the report on stderr and one "soak-result
/// key=value ..." line on stdout; exits 0 only if every check passed. Durations are in
/// seconds, decimals allowed (e.g. 0.5).
#[derive(Debug, Parser)]
#[command(name = "soak", version, args_override_self = true)]
struct Cli {
    #[command(flatten)]
    server: LoopbackServer,
    /// Slots (accounts PREFIX0..), each one session at a time
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    sessions: usize,
    /// Seed of every choice (and of the sessions' SCRAM nonces)
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Messages each slot sends during the storm
    #[arg(long, value_name = "N", default_value_t = 10)]
    messages_per_session: usize,
    /// Length of the storm window, in seconds
    #[arg(long, value_name = "SECS", default_value = "20", value_parser = secs)]
    storm: Duration,
    /// Share of slots whose first connection is killed mid-negotiation (0..=1)
    #[arg(long, value_name = "SHARE", default_value_t = 0.1)]
    negotiation_kill_rate: f64,
    /// Share of slots that hang up mid-stanza during the storm, then reconnect (0..=1)
    #[arg(long, value_name = "SHARE", default_value_t = 0.05)]
    stanza_kill_rate: f64,
    /// Logins in flight at once during the connect phase
    #[arg(long, value_name = "N", default_value_t = 64)]
    concurrency: usize,
    /// Longest one login may take, in seconds
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = secs)]
    login_timeout: Duration,
    /// Longest wait for the last counted messages after the storm, in seconds
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = secs)]
    drain_timeout: Duration,
    /// The whole run, connect to close, in seconds: past it the run is cut short and fails
    #[arg(long, value_name = "SECS", default_value = "900", value_parser = secs)]
    timeout: Duration,
    /// Account name prefix
    #[arg(long, default_value = "user")]
    prefix: String,
    /// The password of every account
    #[arg(long, default_value = "soak-pw")]
    password: String,
    /// The XMPP domain (also the TLS server name)
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Print a "soak: ..." line on stdout at each phase change
    #[arg(long)]
    progress: bool,
    /// One session, no kills, three messages to itself (a fresh login check after a soak)
    #[arg(long)]
    probe: bool,
    /// Stream management (XEP-0198) with resumption on every session: the storm's cuts
    /// (--stanza-kill-rate) happen mid-stanza or mid-ack, the reconnect resumes (cut
    /// mid-resume one time in two), and every message must arrive exactly once, in order
    #[arg(long)]
    sm: bool,
    /// With --sm: the resumption window each session asks for, in seconds
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = secs)]
    sm_window: Duration,
    /// With --sm: share of slots that hang up at the end without closing their stream,
    /// leaving the server a detached session to expire (0..=1)
    #[arg(long, value_name = "SHARE", default_value_t = 0.1)]
    sm_abandon_rate: f64,
}

impl Cli {
    fn options(&self) -> SoakOptions {
        let mut options = SoakOptions::new(self.sessions);
        options.seed = self.seed;
        options.messages_per_session = self.messages_per_session;
        options.storm = self.storm;
        options.negotiation_kill_rate = self.negotiation_kill_rate;
        options.stanza_kill_rate = self.stanza_kill_rate;
        options.concurrency = self.concurrency;
        options.login_timeout = self.login_timeout;
        options.drain_timeout = self.drain_timeout;
        options.timeout = self.timeout;
        options.user_prefix.clone_from(&self.prefix);
        options.password.clone_from(&self.password);
        options.domain.clone_from(&self.domain);
        options.progress = self.progress;
        if self.sm {
            let mut sm = SmSoak::new(self.sm_window);
            sm.abandon_rate = self.sm_abandon_rate;
            options.sm = Some(sm);
        }
        if self.probe {
            options.sm = None;
            options.sessions = 1;
            options.negotiation_kill_rate = 0.0;
            options.stanza_kill_rate = 0.0;
            options.messages_per_session = 3;
            options.storm = Duration::from_millis(300);
            options.drain_timeout = Duration::from_secs(10);
            options.timeout = options.timeout.min(Duration::from_secs(60));
        }
        options
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = match cli.server.trust_pem() {
        Ok(pem) => SoakTarget::new(cli.server.addr(), pem),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let options = cli.options();
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let base = ["soak", "--port", "5222", "--trust", "cert.pem"];
        Cli::try_parse_from(base.iter().chain(args))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_defaults_are_the_library_defaults() {
        let (options, defaults) = (parse(&[]).unwrap().options(), SoakOptions::new(10_000));
        assert_eq!(options.sessions, defaults.sessions);
        assert_eq!(options.seed, defaults.seed);
        assert_eq!(options.messages_per_session, defaults.messages_per_session);
        assert_eq!(options.storm, defaults.storm);
        let rates = |o: &SoakOptions| (o.negotiation_kill_rate, o.stanza_kill_rate);
        assert_eq!(rates(&options), rates(&defaults));
        assert_eq!(options.concurrency, defaults.concurrency);
        assert_eq!(options.login_timeout, defaults.login_timeout);
        assert_eq!(options.drain_timeout, defaults.drain_timeout);
        assert_eq!(options.timeout, defaults.timeout);
        assert_eq!(options.user_prefix, defaults.user_prefix);
        assert_eq!(options.password, defaults.password);
        assert_eq!(options.domain, defaults.domain);
        assert_eq!(options.progress, defaults.progress);
        assert_eq!(options.sm, defaults.sm);
    }

    #[test]
    fn sm_flags_turn_stream_management_on() {
        let options = parse(&["--sm", "--sm-window", "7.5", "--sm-abandon-rate", "0.25"])
            .unwrap()
            .options();
        let sm = options.sm.unwrap();
        assert_eq!(sm.window, Duration::from_millis(7500));
        assert!((sm.abandon_rate - 0.25).abs() < f64::EPSILON);
        let default = parse(&["--sm"]).unwrap().options().sm.unwrap();
        assert_eq!(default, SmSoak::new(Duration::from_secs(30)));
        assert!(
            parse(&["--sm", "--probe"]).unwrap().options().sm.is_none(),
            "the probe is a plain login"
        );
    }

    #[test]
    fn parses_every_flag() {
        let cli = parse(&[
            "--sessions",
            "4000",
            "--seed",
            "3",
            "--messages-per-session",
            "5",
            "--storm",
            "2.5",
            "--negotiation-kill-rate",
            "0.2",
            "--stanza-kill-rate",
            "0",
            "--concurrency",
            "8",
            "--login-timeout",
            "1",
            "--drain-timeout",
            "2",
            "--timeout",
            "600",
            "--prefix",
            "soaker",
            "--password",
            "pw",
            "--domain",
            "example.test",
            "--progress",
        ])
        .unwrap();
        assert_eq!(cli.server.addr(), "127.0.0.1:5222".parse().unwrap());
        let options = cli.options();
        assert_eq!(options.sessions, 4000);
        assert_eq!(options.seed, 3);
        assert_eq!(options.messages_per_session, 5);
        assert_eq!(options.storm, Duration::from_millis(2500));
        assert_eq!(
            (options.negotiation_kill_rate, options.stanza_kill_rate),
            (0.2, 0.0)
        );
        assert_eq!(options.concurrency, 8);
        assert_eq!(options.login_timeout, Duration::from_secs(1));
        assert_eq!(options.drain_timeout, Duration::from_secs(2));
        assert_eq!(options.timeout, Duration::from_secs(600));
        assert_eq!(options.user_prefix, "soaker");
        assert_eq!(options.password, "pw");
        assert_eq!(options.domain, "example.test");
        assert!(options.progress);
    }

    #[test]
    fn probe_is_one_quiet_session() {
        // As tests/soak.rs runs it after the soak.
        let options = parse(&["--password", "pw", "--progress", "--sessions", "4000"])
            .map(|cli| cli.options())
            .unwrap();
        assert_eq!(options.sessions, 4000);
        let probe = parse(&["--sessions", "4000", "--timeout", "600", "--probe"])
            .unwrap()
            .options();
        assert_eq!(probe.sessions, 1);
        assert_eq!(
            (probe.negotiation_kill_rate, probe.stanza_kill_rate),
            (0.0, 0.0)
        );
        assert_eq!(probe.messages_per_session, 3);
        assert_eq!(probe.storm, Duration::from_millis(300));
        assert_eq!(probe.drain_timeout, Duration::from_secs(10));
        assert_eq!(probe.timeout, Duration::from_secs(60));
    }

    #[test]
    fn refuses_malformed_flags() {
        for bad in [
            &["--storm", "soon"][..],
            &["--timeout", "-1"],
            &["--negotiation-kill-rate", "x"],
            &["--probe", "yes"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            Cli::try_parse_from(["soak", "--trust", "cert.pem"]).is_err(),
            "no --port"
        );
    }
}
