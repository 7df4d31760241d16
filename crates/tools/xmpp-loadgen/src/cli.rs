//! Command-line pieces the `loadgen`, `soak` and `compare` binaries share (each binary's own
//! `Cli` struct flattens them), so the same flag means the same thing in each.
//!
//! Durations are seconds, decimals allowed (`5`, `0.5`), as in every binary of the workspace.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::Options;

pub use xmpp_host::cli::seconds as secs;

/// The server under load: a port on 127.0.0.1 and the certificate to trust.
#[derive(Clone, Debug, Args)]
pub struct LoopbackServer {
    /// The server's STARTTLS c2s port on 127.0.0.1 (never anywhere else)
    #[arg(long)]
    pub port: u16,
    /// PEM file of the certificate (or CA) to trust
    #[arg(long, value_name = "PEMFILE")]
    pub trust: PathBuf,
}

impl LoopbackServer {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The trust file's text.
    ///
    /// # Errors
    /// When the file cannot be read, with its name.
    pub fn trust_pem(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.trust).map_err(|e| format!("{}: {e}", self.trust.display()))
    }
}

/// The load's shape, shared by `loadgen` and `compare`; defaults are [`Options::new`]'s.
#[derive(Clone, Debug, Args)]
pub struct Load {
    /// Logins in flight at once
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,
    /// How long every session stays idle before the server's memory is sampled, in seconds
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = secs)]
    pub idle: Duration,
    /// Pings per second across all session pairs (each answered by a pong); 0 for none
    #[arg(long, value_name = "PINGS_PER_SEC", default_value_t = 200.0)]
    pub rate: f64,
    /// How long the message phase lasts, in seconds
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = secs)]
    pub duration: Duration,
    /// Stop the run if the server's resident memory passes this many MiB while sessions log
    /// in [default: half the machine's memory]
    #[arg(long, value_name = "MIB")]
    pub max_server_rss_mib: Option<u64>,
}

impl Load {
    /// Writes these choices into `options`.
    pub fn apply(&self, options: &mut Options) {
        options.concurrency = self.concurrency;
        options.idle = self.idle;
        options.message_rate = self.rate;
        options.message_duration = self.duration;
        if let Some(mib) = self.max_server_rss_mib {
            options.max_server_rss_kib = Some(mib.saturating_mul(1024));
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Both {
        #[command(flatten)]
        server: LoopbackServer,
        #[command(flatten)]
        load: Load,
    }

    fn parse(args: &[&str]) -> Result<Both, clap::Error> {
        Both::try_parse_from(
            ["test", "--port", "5222", "--trust", "cert.pem"]
                .iter()
                .chain(args),
        )
    }

    #[test]
    fn the_shared_flags_are_well_formed() {
        Both::command().debug_assert();
    }

    #[test]
    fn the_defaults_are_the_library_defaults() {
        let both = parse(&[]).unwrap();
        assert_eq!(both.server.addr(), "127.0.0.1:5222".parse().unwrap());
        assert_eq!(both.server.trust, PathBuf::from("cert.pem"));
        let mut options = Options::new(7);
        both.load.apply(&mut options);
        let defaults = Options::new(7);
        assert_eq!(options.concurrency, defaults.concurrency);
        assert_eq!(options.idle, defaults.idle);
        assert_eq!(
            options.message_rate.to_bits(),
            defaults.message_rate.to_bits()
        );
        assert_eq!(options.message_duration, defaults.message_duration);
        assert_eq!(options.max_server_rss_kib, defaults.max_server_rss_kib);
    }

    #[test]
    fn parses_the_load_flags() {
        let both = parse(&[
            "--concurrency",
            "8",
            "--idle",
            "0.25",
            "--rate",
            "500",
            "--duration",
            "3",
            "--max-server-rss-mib",
            "2",
        ])
        .unwrap();
        let mut options = Options::new(1);
        both.load.apply(&mut options);
        assert_eq!(options.concurrency, 8);
        assert_eq!(options.idle, Duration::from_millis(250));
        assert!((options.message_rate - 500.0).abs() < f64::EPSILON);
        assert_eq!(options.message_duration, Duration::from_secs(3));
        assert_eq!(options.max_server_rss_kib, Some(2048));
    }

    #[test]
    fn durations_are_non_negative_seconds() {
        assert!(parse(&["--idle", "0.5"]).is_ok());
        assert!(parse(&["--idle", "-1"]).is_err());
        assert!(parse(&["--idle", "5s"]).is_err());
    }
}
