//! What a soak runs with and against, and the bounds both must keep.

use std::net::SocketAddr;
use std::time::Duration;

use crate::procfs;
use crate::run::{Error, check_addr_and_sessions};

/// The resource every soak session binds.
pub const RESOURCE: &str = "soak";
/// Most messages one run sends.
pub const MAX_MESSAGES: usize = 10_000_000;
/// Longest storm, drain or global timeout accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// What to run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SoakOptions {
    /// Slots (accounts `{user_prefix}0` ..), each one session at a time.
    pub sessions: usize,
    /// Account name prefix.
    pub user_prefix: String,
    /// The password of every account.
    pub password: String,
    /// The XMPP domain (also the TLS server name).
    pub domain: String,
    /// Seed of every choice (and of the sessions' SCRAM nonces).
    pub seed: u64,
    /// Share of slots whose first connection is killed mid-negotiation.
    pub negotiation_kill_rate: f64,
    /// Share of slots that hang up mid-stanza during the storm, then reconnect.
    pub stanza_kill_rate: f64,
    /// Messages each slot sends during the storm.
    pub messages_per_session: usize,
    /// Length of the storm window (messages leave spread over it).
    pub storm: Duration,
    /// Logins in flight at once during the connect phase.
    pub concurrency: usize,
    /// Longest one login may take.
    pub login_timeout: Duration,
    /// Longest wait for the last counted messages after the storm.
    pub drain_timeout: Duration,
    /// The whole run, connect to close: past it the run is cut short and fails.
    pub timeout: Duration,
    /// Print a line on stdout at each phase change (`soak: connected ...`), for a harness
    /// that samples the server between phases.
    pub progress: bool,
    /// Stream management (XEP-0198) with resumption on every session, if set: the storm's
    /// cuts ([`stanza_kill_rate`](Self::stanza_kill_rate) of the slots) happen mid-stanza or
    /// mid-ack, the reconnect resumes (itself cut mid-resume one time in two), and every
    /// message sent counts, whoever was cut.
    pub sm: Option<SmSoak>,
}

/// The stream-management mode of a soak.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SmSoak {
    /// The resumption window every session asks for (`<enable max=''/>`; the server grants
    /// at most its own). Longer than any reconnect takes, so that no window expires during
    /// the storm; a harness waits this long after the run for the abandoned sessions to end.
    pub window: Duration,
    /// Share of slots that end by hanging up instead of closing their stream, leaving a
    /// detached session for the server to expire.
    pub abandon_rate: f64,
}

impl SmSoak {
    /// A window of `window`, 10% of the slots abandoned at the end.
    pub fn new(window: Duration) -> Self {
        SmSoak {
            window,
            abandon_rate: 0.10,
        }
    }
}

impl SoakOptions {
    /// `sessions` slots with the defaults: accounts `user0..` with password `soak-pw` at
    /// `localhost`, seed 1, 10% negotiation kills, 5% stanza kills, 10 messages per slot
    /// over a 20 s storm, 64 logins in flight, 60 s per login, 30 s drain, 15 min in all.
    pub fn new(sessions: usize) -> Self {
        SoakOptions {
            sessions,
            user_prefix: "user".to_owned(),
            password: "soak-pw".to_owned(),
            domain: "localhost".to_owned(),
            seed: 1,
            negotiation_kill_rate: 0.10,
            stanza_kill_rate: 0.05,
            messages_per_session: 10,
            storm: Duration::from_secs(20),
            concurrency: 64,
            login_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(900),
            progress: false,
            sm: None,
        }
    }
}

/// Where the server is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SoakTarget {
    /// Its STARTTLS c2s address: must be a loopback address.
    pub addr: SocketAddr,
    /// The certificate (or CA) to trust, PEM.
    pub trust_pem: String,
}

impl SoakTarget {
    /// A target at `addr` trusting `trust_pem`.
    pub fn new(addr: SocketAddr, trust_pem: impl Into<String>) -> Self {
        SoakTarget {
            addr,
            trust_pem: trust_pem.into(),
        }
    }
}

/// Checks the target and options before anything connects.
pub fn check(target: &SoakTarget, options: &SoakOptions) -> Result<(), Error> {
    check_addr_and_sessions(target.addr, options.sessions)?;
    let bad = |why: String| Err(Error::Bounds(why));
    if options.messages_per_session == 0
        || options
            .sessions
            .saturating_mul(options.messages_per_session)
            > MAX_MESSAGES
    {
        return bad(format!(
            "messages per session must be at least 1 and {MAX_MESSAGES} in all at most"
        ));
    }
    let abandon = options.sm.as_ref().map_or(0.0, |sm| sm.abandon_rate);
    let rates = [
        options.negotiation_kill_rate,
        options.stanza_kill_rate,
        abandon,
    ];
    if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
        return bad("kill rates are shares in 0..=1".to_owned());
    }
    let durations = [
        options.storm,
        options.login_timeout,
        options.drain_timeout,
        options.timeout,
    ];
    if durations.iter().any(|d| d.is_zero() || *d > MAX_DURATION) {
        return bad(format!(
            "storm, login timeout, drain timeout and timeout are 0 < t <= {} s",
            MAX_DURATION.as_secs()
        ));
    }
    if let Some(sm) = &options.sm
        && (sm.window < Duration::from_secs(1) || sm.window > MAX_DURATION)
    {
        return bad(format!(
            "the resumption window is 1 s <= t <= {} s",
            MAX_DURATION.as_secs()
        ));
    }
    if options.concurrency == 0 {
        return bad("concurrency must be at least 1".to_owned());
    }
    Ok(())
}

/// Raise this process's soft limit on open files to its hard limit, at most `cap`; returns
/// the soft limit now in force.
pub fn raise_fd_limit(cap: u64) -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.unwrap_or(cap).min(cap);
    if limit.current.is_some_and(|current| current >= want) {
        return limit.current;
    }
    limit.current = Some(want);
    match setrlimit(Resource::Nofile, limit) {
        Ok(()) => Some(want),
        Err(_) => procfs::open_file_limit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unbounded_soaks() {
        let local = SoakTarget::new("127.0.0.1:5222".parse().unwrap(), "");
        assert!(check(&local, &SoakOptions::new(10)).is_ok());
        let remote = SoakTarget::new("192.0.2.1:5222".parse().unwrap(), "");
        assert!(matches!(
            check(&remote, &SoakOptions::new(10)),
            Err(Error::NotLoopback(_))
        ));
        let mut forever = SoakOptions::new(10);
        forever.timeout = MAX_DURATION + Duration::from_secs(1);
        assert!(matches!(check(&local, &forever), Err(Error::Bounds(_))));
        let mut rate = SoakOptions::new(10);
        rate.stanza_kill_rate = 1.5;
        assert!(matches!(check(&local, &rate), Err(Error::Bounds(_))));
        let mut sm = SoakOptions::new(10);
        sm.sm = Some(SmSoak::new(Duration::from_secs(10)));
        assert!(check(&local, &sm).is_ok());
        sm.sm = Some(SmSoak::new(Duration::from_millis(10)));
        assert!(matches!(check(&local, &sm), Err(Error::Bounds(_))));
        let mut abandon = SmSoak::new(Duration::from_secs(10));
        abandon.abandon_rate = -0.1;
        sm.sm = Some(abandon);
        assert!(matches!(check(&local, &sm), Err(Error::Bounds(_))));
        assert!(check(&local, &SoakOptions::new(0)).is_err());
    }

    #[test]
    fn raises_the_descriptor_limit_within_the_cap() {
        let now = raise_fd_limit(20_000).unwrap();
        assert!(now > 0 && now <= 20_000.max(procfs::open_file_limit().unwrap()));
        assert_eq!(procfs::open_file_limit(), Some(now));
    }
}
