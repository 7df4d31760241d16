//! [`Options`]: what a run does, read by the run and by every session.

use std::time::Duration;

use crate::procfs;
use crate::scram::ScramChoice;

/// What to run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Sessions to open (accounts `{user_prefix}0` .. `{user_prefix}{sessions-1}`).
    pub sessions: usize,
    /// Account name prefix.
    pub user_prefix: String,
    /// The password every account has.
    pub password: String,
    /// The XMPP domain (also the TLS server name).
    pub domain: String,
    /// The SCRAM mechanism.
    pub mechanism: ScramChoice,
    /// Logins in flight at once.
    pub concurrency: usize,
    /// How long one login may take before it counts as failed.
    pub login_timeout: Duration,
    /// How long to hold all sessions idle before sampling the server's memory.
    pub idle: Duration,
    /// Pings per second across all pairs (each ping is answered by a pong); 0 for none.
    pub message_rate: f64,
    /// How long the message phase lasts.
    pub message_duration: Duration,
    /// Seed for the sessions' SCRAM nonces.
    pub seed: u64,
    /// Stop the run (and close every session) if the server's RSS passes this many KiB while
    /// sessions log in; `None` for no cap. Protects a shared machine from a server whose
    /// memory per session turns out far larger than expected.
    pub max_server_rss_kib: Option<u64>,
}

impl Options {
    /// `sessions` sessions with the defaults: accounts `user0..`, password `load-test-pw`,
    /// domain `localhost`, SCRAM-SHA-1, 32 logins in flight, 5 s idle, 200 pings/s for 10 s.
    pub fn new(sessions: usize) -> Self {
        Options {
            sessions,
            user_prefix: "user".to_owned(),
            password: "load-test-pw".to_owned(),
            domain: "localhost".to_owned(),
            mechanism: ScramChoice::Sha1,
            concurrency: 32,
            login_timeout: Duration::from_secs(60),
            idle: Duration::from_secs(5),
            message_rate: 200.0,
            message_duration: Duration::from_secs(10),
            seed: 1,
            max_server_rss_kib: procfs::mem_total_kib().map(|total| total / 2),
        }
    }
}
