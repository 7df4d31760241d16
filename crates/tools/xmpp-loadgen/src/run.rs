//! The run: open the sessions, hold them idle, exchange messages, stop, report.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio_rustls::TlsConnector;
use xmpp_host::tls::{self, Trust, Versions};

use crate::options::Options;
use crate::procfs;
use crate::session::{Outcome, Session};
use crate::shared::{Counters, Phase, Samples, Shared, Side};

/// Longest idle hold or message phase accepted, so a run always stops by itself.
pub const MAX_PHASE: Duration = Duration::from_secs(600);
/// Most sessions one run opens, whatever the descriptor limit.
pub const MAX_SESSIONS: usize = 50_000;

/// The server under load.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Target {
    /// Its STARTTLS c2s address: must be a loopback address.
    pub addr: SocketAddr,
    /// The certificate (or CA) to trust, PEM.
    pub trust_pem: String,
    /// Its pid, to read its resident memory; `None` skips the memory figures.
    pub server_pid: Option<u32>,
}

impl Target {
    /// A target at `addr` trusting `trust_pem`.
    pub fn new(addr: SocketAddr, trust_pem: impl Into<String>, server_pid: Option<u32>) -> Self {
        Target {
            addr,
            trust_pem: trust_pem.into(),
            server_pid,
        }
    }
}

/// The second server of a federation run ([`run_federated`]): where its users log in and
/// the domain of their accounts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Remote {
    /// Its STARTTLS c2s address (loopback) and trust anchor; its pid is not used.
    pub target: Target,
    /// Its users' domain (also its TLS server name).
    pub domain: String,
}

impl Remote {
    /// The server at `target` serving `domain`.
    pub fn new(target: Target, domain: impl Into<String>) -> Self {
        Remote {
            target,
            domain: domain.into(),
        }
    }
}

/// Why a run could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The target is not on loopback.
    NotLoopback(SocketAddr),
    /// The options are out of bounds.
    Bounds(String),
    /// The trust PEM holds no usable certificate.
    Trust(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotLoopback(addr) => write!(f, "refusing {addr}: only loopback targets"),
            Error::Bounds(why) => write!(f, "out of bounds: {why}"),
            Error::Trust(why) => write!(f, "trust anchor: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// What a run measured.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Report {
    /// Sessions asked for.
    pub sessions: usize,
    /// Sessions that authenticated, bound and sent presence.
    pub logged_in: u64,
    /// Sessions that failed to log in.
    pub login_failed: u64,
    /// The SASL mechanism the sessions used (the first one seen).
    pub mechanism: Option<String>,
    /// Sessions the server dropped after login.
    pub dropped: u64,
    /// From the first connect to the last successful login.
    pub login_time: Duration,
    /// `logged_in / login_time`.
    pub logins_per_sec: f64,
    /// Server RSS before any session, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS with all sessions idle, KiB.
    pub rss_idle_kib: Option<u64>,
    /// `(rss_idle - rss_before) / logged_in`, KiB.
    pub kib_per_session: Option<f64>,
    /// Messages (pings and pongs) sent during the message phase.
    pub messages_sent: u64,
    /// Messages received during the message phase.
    pub messages_received: u64,
    /// Messages that came back as errors (bounces), over the whole run; a bounced warm-up
    /// message of [`run_federated`] (its partner not online yet) is not counted.
    pub messages_bounced: u64,
    /// `messages_received / message phase length`.
    pub messages_per_sec: f64,
    /// Round trips timed.
    pub round_trips: usize,
    /// Round-trip percentiles p50, p90, p99 in milliseconds.
    pub rtt_ms: Option<[f64; 3]>,
    /// The first few failure reasons, for diagnosis.
    pub failures: Vec<String>,
    /// Why the run was cut short, if it was (then the idle and message figures are absent).
    pub aborted: Option<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sessions {} logged in {} with {} (failed {}, dropped later {})",
            self.sessions,
            self.logged_in,
            self.mechanism.as_deref().unwrap_or("-"),
            self.login_failed,
            self.dropped
        )?;
        writeln!(
            f,
            "logins: {:.1} s, {:.0}/s",
            self.login_time.as_secs_f64(),
            self.logins_per_sec
        )?;
        if let (Some(before), Some(idle), Some(per)) =
            (self.rss_before_kib, self.rss_idle_kib, self.kib_per_session)
        {
            writeln!(
                f,
                "server RSS: {before} KiB before, {idle} KiB idle: {per:.1} KiB per session"
            )?;
        }
        write!(
            f,
            "messages: {} sent, {} received, {:.0}/s",
            self.messages_sent, self.messages_received, self.messages_per_sec
        )?;
        if self.messages_bounced > 0 {
            write!(f, ", {} bounced", self.messages_bounced)?;
        }
        if let Some([p50, p90, p99]) = self.rtt_ms {
            write!(
                f,
                "; round trip p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms ({} timed)",
                self.round_trips
            )?;
        }
        if let Some(why) = &self.aborted {
            write!(f, "\n  ABORTED: {why}")?;
        }
        for failure in &self.failures {
            write!(f, "\n  failure: {failure}")?;
        }
        Ok(())
    }
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// The TLS client configuration trusting exactly the certificates in `trust_pem` (the shared
/// helper's, so it keeps the workspace's TLS rules).
pub(crate) fn client_config(trust_pem: &str) -> Result<Arc<rustls::ClientConfig>, Error> {
    let trust = Trust::Pem(trust_pem.as_bytes().to_vec());
    tls::client_config(&trust, Versions::Any).map_err(|e| Error::Trust(e.to_string()))
}

/// [`client_config`] as a `tokio-rustls` connector.
pub(crate) fn connector(trust_pem: &str) -> Result<TlsConnector, Error> {
    client_config(trust_pem).map(TlsConnector::from)
}

/// The checks every run makes before anything connects: the server is on loopback, and
/// `sessions` fits the open-file limit (less 100 descriptors of headroom) and
/// [`MAX_SESSIONS`].
pub(crate) fn check_addr_and_sessions(addr: SocketAddr, sessions: usize) -> Result<(), Error> {
    if !addr.ip().is_loopback() {
        return Err(Error::NotLoopback(addr));
    }
    let descriptors = procfs::open_file_limit().unwrap_or(1024);
    let limit = usize::try_from(descriptors.saturating_sub(100))
        .unwrap_or(MAX_SESSIONS)
        .min(MAX_SESSIONS);
    if sessions == 0 || sessions > limit {
        return Err(Error::Bounds(format!(
            "sessions must be 1..={limit} (open-file limit {descriptors})"
        )));
    }
    Ok(())
}

/// Checks the target and options before anything connects.
pub fn check(target: &Target, options: &Options) -> Result<(), Error> {
    check_addr_and_sessions(target.addr, options.sessions)?;
    if options.idle > MAX_PHASE || options.message_duration > MAX_PHASE {
        return Err(Error::Bounds(format!(
            "phases last at most {} s",
            MAX_PHASE.as_secs()
        )));
    }
    if !(0.0..=1_000_000.0).contains(&options.message_rate) {
        return Err(Error::Bounds(
            "message rate must be 0..=1e6 per second".to_owned(),
        ));
    }
    if options.concurrency == 0 {
        return Err(Error::Bounds("concurrency must be at least 1".to_owned()));
    }
    Ok(())
}

/// Runs the whole load against `target` and reports. Must run inside a tokio runtime with
/// the time and I/O drivers enabled.
pub async fn run(target: &Target, options: Options) -> Result<Report, Error> {
    run_sides(target, None, options).await
}

/// Federation mode: the same run, with every pair split across two servers. Session `2k`
/// logs in to `local` (as `user2k@{options.domain}`), session `2k+1` to `remote` (as
/// `user2k+1@{remote.domain}`), so every ping goes from a user of `local` to a user of
/// `remote` through the servers' s2s link and every pong comes back through it. Both servers
/// need every account `user0..user<N-1>` (each uses half). Each session sends its partner one
/// unmeasured message right after login, so that both links are up before the message phase
/// (give the idle phase a second or two). No memory figures: the sessions
/// are split across two servers. Must run inside a tokio runtime with the time and I/O
/// drivers enabled.
pub async fn run_federated(
    local: &Target,
    remote: &Remote,
    options: Options,
) -> Result<Report, Error> {
    run_sides(local, Some(remote), options).await
}

async fn run_sides(
    target: &Target,
    remote: Option<&Remote>,
    options: Options,
) -> Result<Report, Error> {
    check(target, &options)?;
    let tls = client_config(&target.trust_pem)?;
    let first = Side {
        addr: target.addr,
        tls,
        domain: options.domain.clone(),
    };
    let second = match remote {
        Some(remote) => {
            check(&remote.target, &options)?;
            Side {
                addr: remote.target.addr,
                tls: client_config(&remote.target.trust_pem)?,
                domain: remote.domain.clone(),
            }
        }
        None => Side {
            addr: first.addr,
            tls: first.tls.clone(),
            domain: first.domain.clone(),
        },
    };
    // The memory figures divide one server's growth by every session: meaningless when the
    // sessions are split across two servers.
    let memory_pid = if remote.is_some() {
        None
    } else {
        target.server_pid
    };
    let rss_before = memory_pid.and_then(procfs::resident_kib);
    let (phase, _) = watch::channel(Phase::Login);
    let shared = Arc::new(Shared {
        sides: [first, second],
        federated: remote.is_some(),
        epoch: StdInstant::now(),
        phase,
        login_permits: Arc::new(Semaphore::new(options.concurrency)),
        logins_settled: Notify::new(),
        stats: Counters::default(),
        samples: Mutex::new(Samples::default()),
        options,
    });
    let sessions = shared.options.sessions;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..sessions {
        let session = Session {
            index,
            shared: shared.clone(),
        };
        tasks.spawn(session.run());
    }
    // Wait until every login succeeded or failed (each is bounded by the login timeout),
    // watching the server's memory against the cap.
    let mut aborted = None;
    loop {
        let settled = shared.stats.logged_in.load(Ordering::Relaxed)
            + shared.stats.login_failed.load(Ordering::Relaxed);
        if settled >= sessions as u64 {
            break;
        }
        if let (Some(pid), Some(cap)) = (target.server_pid, shared.options.max_server_rss_kib)
            && let Some(rss) = procfs::resident_kib(pid)
            && rss > cap
        {
            aborted = Some(format!(
                "server RSS {rss} KiB passed the cap of {cap} KiB after {settled} logins"
            ));
            break;
        }
        let _ =
            tokio::time::timeout(Duration::from_secs(1), shared.logins_settled.notified()).await;
    }
    let (idle, message_duration) = if aborted.is_some() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (shared.options.idle, shared.options.message_duration)
    };
    let _ = shared.phase.send(Phase::Idle);
    let (last_login, mechanism) = shared
        .samples
        .lock()
        .map(|s| (s.last_login, s.mechanism.clone()))
        .unwrap_or_default();
    tokio::time::sleep(idle).await;
    let rss_idle = if aborted.is_some() {
        None
    } else {
        memory_pid.and_then(procfs::resident_kib)
    };
    let logged_in = shared.stats.logged_in.load(Ordering::Relaxed);

    let sent_before = shared.stats.sent.load(Ordering::Relaxed);
    let received_before = shared.stats.received.load(Ordering::Relaxed);
    if aborted.is_none() {
        let _ = shared.phase.send(Phase::Messages);
    }
    let message_start = StdInstant::now();
    tokio::time::sleep(message_duration).await;
    let _ = shared.phase.send(Phase::Stop);
    let message_time = message_start.elapsed();
    let sent = shared.stats.sent.load(Ordering::Relaxed) - sent_before;
    let received = shared.stats.received.load(Ordering::Relaxed) - received_before;

    let mut failures = Vec::new();
    let drain = async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(Outcome::Failed(why)) = done
                && failures.len() < 5
            {
                failures.push(why);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }

    if let Ok(mut samples) = shared.samples.lock() {
        failures.append(&mut samples.bounces);
    }
    let mut rtt = shared
        .samples
        .lock()
        .map(|mut s| std::mem::take(&mut s.rtt_us))
        .unwrap_or_default();
    rtt.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let ms = |q| quantile(&rtt, q).map(|us| us as f64 / 1000.0);
    let rtt_ms = match (ms(0.5), ms(0.9), ms(0.99)) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    #[allow(clippy::cast_precision_loss)]
    let per_sec = |count: u64, time: Duration| {
        if time.is_zero() {
            0.0
        } else {
            count as f64 / time.as_secs_f64()
        }
    };
    #[allow(clippy::cast_precision_loss)]
    let kib_per_session = match (rss_before, rss_idle) {
        (Some(before), Some(idle)) if logged_in > 0 => {
            Some((idle as f64 - before as f64) / logged_in as f64)
        }
        _ => None,
    };
    Ok(Report {
        sessions,
        logged_in,
        login_failed: shared.stats.login_failed.load(Ordering::Relaxed),
        mechanism,
        dropped: shared.stats.dropped.load(Ordering::Relaxed),
        login_time: last_login,
        logins_per_sec: per_sec(logged_in, last_login),
        rss_before_kib: rss_before,
        rss_idle_kib: rss_idle,
        kib_per_session,
        messages_sent: sent,
        messages_received: received,
        messages_bounced: shared.stats.bounced.load(Ordering::Relaxed),
        messages_per_sec: per_sec(received, message_time),
        round_trips: rtt.len(),
        rtt_ms,
        failures,
        aborted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&sorted, 0.5), Some(50));
        assert_eq!(quantile(&sorted, 0.9), Some(90));
        assert_eq!(quantile(&sorted, 0.99), Some(99));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn refuses_non_loopback_and_unbounded_runs() {
        let remote = Target::new("192.0.2.1:5222".parse().unwrap(), "", None);
        assert!(matches!(
            check(&remote, &Options::new(10)),
            Err(Error::NotLoopback(_))
        ));
        let local = Target::new("127.0.0.1:5222".parse().unwrap(), "", None);
        assert!(check(&local, &Options::new(10)).is_ok());
        assert!(matches!(
            check(&local, &Options::new(0)),
            Err(Error::Bounds(_))
        ));
        assert!(matches!(
            check(&local, &Options::new(MAX_SESSIONS + 1)),
            Err(Error::Bounds(_))
        ));
        let mut long = Options::new(10);
        long.idle = MAX_PHASE + Duration::from_secs(1);
        assert!(matches!(check(&local, &long), Err(Error::Bounds(_))));
    }
}
