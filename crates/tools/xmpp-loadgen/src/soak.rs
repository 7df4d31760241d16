//! The soak: N concurrent TLS c2s sessions on loopback, connections killed on purpose at
//! every negotiation step and in the middle of a stanza, a message storm between the
//! sessions, and an exact account of every message addressed to a session that stayed up.
//!
//! Every choice is drawn up front from one seeded generator ([`Plan`]s: which slots are
//! killed, where, how, to whom each message goes and when in the storm it leaves), so a
//! run is reproducible in its choices; only the interleaving depends on the machine.
//!
//! Phases, driven by [`soak`]:
//!
//! 1. **Connect**: every slot `i` logs in as `{prefix}{i}@{domain}/soak` (STARTTLS, SASL,
//!    bind, initial presence), at most `concurrency` logins in flight. A slot picked for a
//!    negotiation kill first opens a connection that it abandons at its kill point (after
//!    its stream header, during the TLS handshake, after the TLS handshake, or between the
//!    server's SCRAM challenge and its answer), by a clean close or a reset, then logs in.
//! 2. **Storm**: each slot sends `messages_per_session` chat messages, each to a random
//!    other slot at a random time in the storm window; the body is the message's sequence
//!    number (unique in the run). A slot picked for a stanza kill writes half a stanza at a
//!    random point of the storm and hangs up (half-close and wait for the server, or
//!    reset), reconnects (that reconnect itself killed mid-negotiation one time in two) and
//!    sends the rest of its messages.
//! 3. **Drain**: wait until every counted message arrived (or `drain_timeout`).
//! 4. **Close**: every session ends its stream and waits for the server's end.
//!
//! A message is *counted* when its recipient stayed connected for the whole run (it was
//! never killed and never dropped) and it was written in full on a connection that either
//! stayed up or was half-closed with the server hanging up in turn (a reset may discard bytes
//! the server had not read yet, which is the point of a reset; and a session replaced by our
//! reconnect before the server read its last bytes loses them by design, so a half-close
//! waits for the server). Every counted message must arrive exactly once:
//! [`SoakReport::lost`] lists the ones that did not.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant as StdInstant};

use minidom::Element;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant as TokioInstant;
use tokio_rustls::TlsConnector;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, Instant, Output, SeededEntropy, Transport,
};

use crate::procfs;
use crate::run::{Error, MAX_SESSIONS, connector};
use crate::session::{Conn, message};

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
        }
    }
}

/// Where a deliberately killed connection dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KillPoint {
    /// Right after our stream header went out (before TLS).
    AfterHeader,
    /// After the server's `<proceed/>`, instead of the TLS handshake.
    InTlsHandshake,
    /// Right after the TLS handshake, before the restarted stream header.
    AfterStartTls,
    /// After the server's SCRAM challenge, instead of our answer.
    MidSasl,
    /// After writing the first half of a stanza on a negotiated stream.
    MidStanza,
}

impl KillPoint {
    const NEGOTIATION: [KillPoint; 4] = [
        KillPoint::AfterHeader,
        KillPoint::InTlsHandshake,
        KillPoint::AfterStartTls,
        KillPoint::MidSasl,
    ];

    /// A short name for reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            KillPoint::AfterHeader => "after-header",
            KillPoint::InTlsHandshake => "in-tls-handshake",
            KillPoint::AfterStartTls => "after-starttls",
            KillPoint::MidSasl => "mid-sasl",
            KillPoint::MidStanza => "mid-stanza",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a deliberately killed connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HangUp {
    /// Close our sending side (TCP FIN, no TLS `close_notify`) and wait for the server to
    /// hang up: every byte written reaches the server.
    Close,
    /// Reset (`SO_LINGER` 0): the kernel drops what is unsent and the server sees
    /// `ECONNRESET`.
    Reset,
}

/// One kill: where and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kill {
    /// Where.
    pub point: KillPoint,
    /// How.
    pub hang_up: HangUp,
}

/// A stanza kill during the storm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StormKill {
    /// When, as a fraction of the storm window.
    pub at: f64,
    /// How the half-written stanza's connection ends.
    pub hang_up: HangUp,
    /// The reconnect that follows is itself killed here first, if set.
    pub reconnect_kill: Option<Kill>,
}

/// Everything one slot will do, drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The first connection dies here, before the slot logs in for good.
    pub negotiation_kill: Option<Kill>,
    /// The slot hangs up mid-stanza during the storm.
    pub storm_kill: Option<StormKill>,
    /// Recipient slot of each message, in sending order.
    pub recipients: Vec<u32>,
    /// When each message leaves, as a fraction of the storm window (increasing).
    pub offsets: Vec<f64>,
}

/// Every slot's plan for `options` (deterministic in `options.seed`).
pub fn plans(options: &SoakOptions) -> Vec<Plan> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let n = options.sessions;
    let per = options.messages_per_session;
    let hang_up = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.5) {
            HangUp::Close
        } else {
            HangUp::Reset
        }
    };
    let negotiation_kill = |rng: &mut ChaCha8Rng| Kill {
        point: KillPoint::NEGOTIATION[rng.random_range(0..KillPoint::NEGOTIATION.len())],
        hang_up: hang_up(rng),
    };
    (0..n)
        .map(|slot| {
            let negotiation = rng
                .random_bool(options.negotiation_kill_rate)
                .then(|| negotiation_kill(&mut rng));
            let storm_kill = rng
                .random_bool(options.stanza_kill_rate)
                .then(|| StormKill {
                    at: rng.random_range(0.1..0.9),
                    hang_up: hang_up(&mut rng),
                    reconnect_kill: rng.random_bool(0.5).then(|| negotiation_kill(&mut rng)),
                });
            let mut recipients = Vec::with_capacity(per);
            let mut offsets = Vec::with_capacity(per);
            for k in 0..per {
                // Any other slot; a single slot writes to itself.
                let to = if n > 1 {
                    let r = rng.random_range(0..n - 1);
                    if r >= slot { r + 1 } else { r }
                } else {
                    slot
                };
                recipients.push(u32::try_from(to).unwrap_or(u32::MAX));
                #[allow(clippy::cast_precision_loss)] // per is far below 2^52
                offsets.push((k as f64 + rng.random::<f64>()) / per as f64);
            }
            Plan {
                negotiation_kill: negotiation,
                storm_kill,
                recipients,
                offsets,
            }
        })
        .collect()
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Connect,
    Storm,
    Drain,
    Close,
}

/// Per message: not sent yet, sent in full, or sent on a connection that ended without the
/// server confirming it read everything (a reset, or a half-close it did not answer).
const UNSENT: u8 = 0;
const SENT: u8 = 1;
const SENDER_RESET: u8 = 2;

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    logins: AtomicU64,
    login_failures: AtomicU64,
    reconnects: AtomicU64,
    kills: [AtomicU64; 5],
    kills_reset: AtomicU64,
    unconfirmed_closes: AtomicU64,
    unexpected_drops: AtomicU64,
    misdelivered: AtomicU64,
    bounced: AtomicU64,
    strays: AtomicU64,
    send_failures: AtomicU64,
    clean_closes: AtomicU64,
}

struct Shared {
    options: SoakOptions,
    plans: Vec<Plan>,
    addr: SocketAddr,
    tls: TlsConnector,
    epoch: StdInstant,
    phase: watch::Sender<Phase>,
    storm_start: OnceLock<TokioInstant>,
    permits: Semaphore,
    /// Slots that logged in (or failed to) in the connect phase.
    settled: AtomicUsize,
    /// Slots that sent all their messages (or gave up).
    done_sending: AtomicUsize,
    wake: Notify,
    status: Vec<AtomicU8>,
    received: Vec<AtomicU8>,
    stable: Vec<AtomicBool>,
    counters: Counters,
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn now(&self) -> Instant {
        let millis = self.epoch.elapsed().as_millis();
        Instant::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    fn fail(&self, slot: usize, why: &str) {
        if let Ok(mut failures) = self.failures.lock()
            && failures.len() < 20
        {
            failures.push(format!("slot {slot}: {why}"));
        }
    }

    fn jid(&self, slot: usize) -> String {
        format!(
            "{}{slot}@{}/{RESOURCE}",
            self.options.user_prefix, self.options.domain
        )
    }

    fn recipient(&self, seq: usize) -> Option<usize> {
        let per = self.options.messages_per_session;
        let plan = self.plans.get(seq / per)?;
        plan.recipients.get(seq % per).map(|&r| r as usize)
    }

    /// A message arrived at `slot`.
    fn on_stanza(&self, slot: usize, stanza: &Element) {
        // Our own initial presence comes back to us (RFC 6121 §4.2.2): expected.
        if stanza.is("presence", "jabber:client") {
            return;
        }
        if !stanza.is("message", "jabber:client") {
            self.counters.strays.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if stanza.attr("type") == Some("error") {
            self.counters.bounced.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let seq = stanza
            .get_child("body", "jabber:client")
            .and_then(|body| body.text().parse::<usize>().ok());
        match seq {
            Some(seq) if self.recipient(seq) == Some(slot) => {
                if let Some(count) = self.received.get(seq) {
                    let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                        Some(c.saturating_add(1))
                    });
                }
            }
            Some(_) => {
                self.counters.misdelivered.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.counters.strays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counted messages that have not arrived yet.
    fn outstanding(&self) -> usize {
        (0..self.status.len())
            .filter(|&seq| self.counted(seq) && self.received[seq].load(Ordering::Relaxed) == 0)
            .count()
    }

    fn counted(&self, seq: usize) -> bool {
        self.status[seq].load(Ordering::Relaxed) == SENT
            && self
                .recipient(seq)
                .is_some_and(|r| self.stable[r].load(Ordering::Relaxed))
    }

    fn progress(&self, line: &str) {
        if self.options.progress {
            #[allow(clippy::print_stdout)]
            {
                println!("soak: {line}");
            }
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

/// A counted message that did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// Its sequence number (the body).
    pub seq: usize,
    /// The sending slot.
    pub from: usize,
    /// The recipient slot (which stayed connected throughout).
    pub to: usize,
}

/// What a soak measured.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SoakReport {
    /// Slots.
    pub sessions: usize,
    /// TCP connections opened (logins, killed attempts, reconnects).
    pub connections: u64,
    /// Full logins (bound, presence sent).
    pub logins: u64,
    /// Logins that failed without being killed on purpose (must be 0).
    pub login_failures: u64,
    /// Connections killed on purpose, per [`KillPoint`] (in declaration order).
    pub kills: [u64; 5],
    /// Of those, how many by reset (the rest by a clean half-close).
    pub kills_reset: u64,
    /// Mid-stanza half-closes the server did not answer within the login timeout (their
    /// connection's messages are then not counted, as after a reset).
    pub unconfirmed_closes: u64,
    /// Logins after a kill.
    pub reconnects: u64,
    /// Connections the server ended that we did not kill (must be 0).
    pub unexpected_drops: u64,
    /// Slots connected from before the storm to the close, never killed or dropped.
    pub stable_recipients: usize,
    /// Messages planned.
    pub messages_planned: usize,
    /// Messages written in full.
    pub messages_sent: usize,
    /// Messages counted (see the module docs).
    pub messages_counted: usize,
    /// Counted messages that arrived.
    pub counted_received: usize,
    /// All arrivals of storm messages (counted or not).
    pub messages_received: u64,
    /// Uncounted messages (to a killed slot, or from a reset connection) that arrived.
    pub uncounted_received: usize,
    /// Messages that arrived more than once (must be 0).
    pub duplicates: usize,
    /// Messages that reached a slot they were not addressed to (must be 0).
    pub misdelivered: u64,
    /// Error bounces received.
    pub bounced: u64,
    /// Stanzas other than messages and presence received.
    pub strays: u64,
    /// Counted messages that never arrived (must be empty); at most 50 listed.
    pub lost: Vec<Lost>,
    /// How many counted messages never arrived.
    pub lost_count: usize,
    /// Sessions that ended their stream cleanly at the end.
    pub clean_closes: u64,
    /// Connect phase, storm, drain, close.
    pub connect_time: Duration,
    /// The storm window.
    pub storm_time: Duration,
    /// From the storm's end to the last counted arrival (or the drain timeout).
    pub drain_time: Duration,
    /// Closing every session.
    pub close_time: Duration,
    /// The whole run.
    pub total_time: Duration,
    /// First failure reasons.
    pub failures: Vec<String>,
    /// Why the run was cut short.
    pub aborted: Option<String>,
}

impl SoakReport {
    /// Whether every check passed: all sessions logged in (apart from the killed
    /// attempts), nothing lost, duplicated or misdelivered, no unexpected drop, every
    /// message sent, every session closed cleanly, not cut short.
    pub fn passed(&self) -> bool {
        self.aborted.is_none()
            && self.login_failures == 0
            && self.unexpected_drops == 0
            && self.lost_count == 0
            && self.duplicates == 0
            && self.misdelivered == 0
            && self.messages_sent == self.messages_planned
            && self.clean_closes == self.sessions as u64
    }

    /// Total deliberate kills.
    pub fn killed(&self) -> u64 {
        self.kills.iter().sum()
    }

    /// One `key=value` line for harnesses (prefixed `soak-result`).
    pub fn summary_line(&self) -> String {
        format!(
            "soak-result passed={} sessions={} connections={} logins={} login_failures={} killed={} \
             killed_reset={} unconfirmed_closes={} reconnects={} unexpected_drops={} stable={} planned={} sent={} \
             counted={} counted_received={} received={} lost={} duplicates={} misdelivered={} \
             bounced={} clean_closes={} connect_ms={} storm_ms={} drain_ms={} close_ms={} total_ms={}",
            self.passed(),
            self.sessions,
            self.connections,
            self.logins,
            self.login_failures,
            self.killed(),
            self.kills_reset,
            self.unconfirmed_closes,
            self.reconnects,
            self.unexpected_drops,
            self.stable_recipients,
            self.messages_planned,
            self.messages_sent,
            self.messages_counted,
            self.counted_received,
            self.messages_received,
            self.lost_count,
            self.duplicates,
            self.misdelivered,
            self.bounced,
            self.clean_closes,
            self.connect_time.as_millis(),
            self.storm_time.as_millis(),
            self.drain_time.as_millis(),
            self.close_time.as_millis(),
            self.total_time.as_millis(),
        )
    }
}

#[allow(clippy::cast_precision_loss)]
fn per_sec(count: f64, time: Duration) -> f64 {
    if time.is_zero() {
        0.0
    } else {
        count / time.as_secs_f64()
    }
}

impl fmt::Display for SoakReport {
    #[allow(clippy::cast_precision_loss)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "soak: {} slots, {} connections, {} logins ({} failed) in {:.1} s connect phase ({:.0} logins/s)",
            self.sessions,
            self.connections,
            self.logins,
            self.login_failures,
            self.connect_time.as_secs_f64(),
            per_sec(self.logins as f64, self.connect_time)
        )?;
        let points = [
            KillPoint::AfterHeader,
            KillPoint::InTlsHandshake,
            KillPoint::AfterStartTls,
            KillPoint::MidSasl,
            KillPoint::MidStanza,
        ];
        let kills: Vec<String> = points
            .iter()
            .map(|p| format!("{} {}", p.as_str(), self.kills[p.index()]))
            .collect();
        writeln!(
            f,
            "killed {} on purpose ({}; {} by reset, {} half-closes unanswered), {} reconnects, {} unexpected drops",
            self.killed(),
            kills.join(", "),
            self.kills_reset,
            self.unconfirmed_closes,
            self.reconnects,
            self.unexpected_drops
        )?;
        writeln!(
            f,
            "messages: {} planned, {} sent, {} counted (to the {} stable slots), {} of them received, \
             {} lost, {} duplicated, {} misdelivered; {} arrivals in all ({} uncounted), {} bounced, {} strays",
            self.messages_planned,
            self.messages_sent,
            self.messages_counted,
            self.stable_recipients,
            self.counted_received,
            self.lost_count,
            self.duplicates,
            self.misdelivered,
            self.messages_received,
            self.uncounted_received,
            self.bounced,
            self.strays
        )?;
        write!(
            f,
            "storm {:.1} s ({:.0} messages/s sent), drain {:.2} s, close {:.1} s ({} clean), total {:.1} s",
            self.storm_time.as_secs_f64(),
            per_sec(self.messages_sent as f64, self.storm_time),
            self.drain_time.as_secs_f64(),
            self.close_time.as_secs_f64(),
            self.clean_closes,
            self.total_time.as_secs_f64()
        )?;
        for lost in &self.lost {
            write!(
                f,
                "\n  LOST message {} from slot {} to slot {}",
                lost.seq, lost.from, lost.to
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

/// Checks the target and options before anything connects.
pub fn check(target: &SoakTarget, options: &SoakOptions) -> Result<(), Error> {
    if !target.addr.ip().is_loopback() {
        return Err(Error::NotLoopback(target.addr));
    }
    let descriptors = procfs::open_file_limit().unwrap_or(1024);
    let limit = usize::try_from(descriptors.saturating_sub(100))
        .unwrap_or(MAX_SESSIONS)
        .min(MAX_SESSIONS);
    let bad = |why: String| Err(Error::Bounds(why));
    if options.sessions == 0 || options.sessions > limit {
        return bad(format!(
            "sessions must be 1..={limit} (open-file limit {descriptors})"
        ));
    }
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
    let rates = [options.negotiation_kill_rate, options.stanza_kill_rate];
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
    if options.concurrency == 0 {
        return bad("concurrency must be at least 1".to_owned());
    }
    Ok(())
}

/// Runs the soak against `target`. Must run inside a tokio runtime with time and I/O.
pub async fn soak(target: &SoakTarget, options: SoakOptions) -> Result<SoakReport, Error> {
    check(target, &options)?;
    let tls = connector(&target.trust_pem)?;
    let plans = plans(&options);
    let total = options.sessions * options.messages_per_session;
    let (phase, _) = watch::channel(Phase::Connect);
    let shared = Arc::new(Shared {
        plans,
        addr: target.addr,
        tls,
        epoch: StdInstant::now(),
        phase,
        storm_start: OnceLock::new(),
        permits: Semaphore::new(options.concurrency),
        settled: AtomicUsize::new(0),
        done_sending: AtomicUsize::new(0),
        wake: Notify::new(),
        status: (0..total).map(|_| AtomicU8::new(UNSENT)).collect(),
        received: (0..total).map(|_| AtomicU8::new(0)).collect(),
        stable: (0..options.sessions)
            .map(|_| AtomicBool::new(true))
            .collect(),
        counters: Counters::default(),
        failures: Mutex::new(Vec::new()),
        options,
    });
    for (slot, plan) in shared.plans.iter().enumerate() {
        if plan.storm_kill.is_some() {
            shared.stable[slot].store(false, Ordering::Relaxed);
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..shared.options.sessions {
        tasks.spawn(run_slot(shared.clone(), slot));
    }
    let mut times = Times::default();
    let timeout = shared.options.timeout;
    let aborted = match tokio::time::timeout(timeout, coordinate(&shared, &mut times)).await {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(_) => Some(format!(
            "global timeout of {} s reached in the {:?} phase",
            timeout.as_secs(),
            *shared.phase.borrow()
        )),
    };
    // The figures are taken before the sessions close: arrivals after this do not count.
    let mut report = account(&shared);
    let close_start = StdInstant::now();
    let _ = shared.phase.send(Phase::Close);
    shared.progress("closing");
    let join = async { while tasks.join_next().await.is_some() {} };
    let aborted = if tokio::time::timeout(Duration::from_secs(60), join)
        .await
        .is_err()
    {
        tasks.abort_all();
        aborted.or_else(|| Some("sessions did not close within 60 s".to_owned()))
    } else {
        aborted
    };
    report.close_time = close_start.elapsed();
    report.connect_time = times.connect;
    report.storm_time = times.storm;
    report.drain_time = times.drain;
    report.total_time = shared.epoch.elapsed();
    report.clean_closes = shared.counters.clean_closes.load(Ordering::Relaxed);
    report.failures = shared
        .failures
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    report.aborted = aborted;
    Ok(report)
}

#[derive(Default)]
struct Times {
    connect: Duration,
    storm: Duration,
    drain: Duration,
}

async fn coordinate(shared: &Shared, times: &mut Times) -> Result<(), String> {
    let n = shared.options.sessions;
    let start = StdInstant::now();
    while shared.settled.load(Ordering::Relaxed) < n {
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.wake.notified()).await;
    }
    times.connect = start.elapsed();
    let logins = shared.counters.logins.load(Ordering::Relaxed);
    shared.progress(&format!(
        "connected sessions={n} logins={logins} failures={}",
        shared.counters.login_failures.load(Ordering::Relaxed)
    ));
    let storm = shared.options.storm;
    let storm_start = TokioInstant::now() + Duration::from_millis(50);
    let _ = shared.storm_start.set(storm_start);
    let _ = shared.phase.send(Phase::Storm);
    tokio::time::sleep_until(storm_start + storm).await;
    times.storm = storm;
    let _ = shared.phase.send(Phase::Drain);
    shared.progress("storm-end");
    let drain_start = StdInstant::now();
    let deadline = TokioInstant::now() + shared.options.drain_timeout;
    loop {
        let all_sent = shared.done_sending.load(Ordering::Relaxed) >= n;
        if all_sent && shared.outstanding() == 0 {
            break;
        }
        if TokioInstant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.drain = drain_start.elapsed();
    // A moment for duplicates and late uncounted arrivals to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.progress("drained");
    Ok(())
}

fn account(shared: &Shared) -> SoakReport {
    let c = &shared.counters;
    let total = shared.status.len();
    let mut report = SoakReport {
        sessions: shared.options.sessions,
        connections: c.connections.load(Ordering::Relaxed),
        logins: c.logins.load(Ordering::Relaxed),
        login_failures: c.login_failures.load(Ordering::Relaxed),
        kills: std::array::from_fn(|i| c.kills[i].load(Ordering::Relaxed)),
        kills_reset: c.kills_reset.load(Ordering::Relaxed),
        unconfirmed_closes: c.unconfirmed_closes.load(Ordering::Relaxed),
        reconnects: c.reconnects.load(Ordering::Relaxed),
        unexpected_drops: c.unexpected_drops.load(Ordering::Relaxed),
        stable_recipients: shared
            .stable
            .iter()
            .filter(|s| s.load(Ordering::Relaxed))
            .count(),
        messages_planned: total,
        misdelivered: c.misdelivered.load(Ordering::Relaxed),
        bounced: c.bounced.load(Ordering::Relaxed),
        strays: c.strays.load(Ordering::Relaxed),
        ..SoakReport::default()
    };
    for seq in 0..total {
        let status = shared.status[seq].load(Ordering::Relaxed);
        let arrivals = shared.received[seq].load(Ordering::Relaxed);
        report.messages_received += u64::from(arrivals);
        if status != UNSENT {
            report.messages_sent += 1;
        }
        if arrivals > 1 {
            report.duplicates += 1;
        }
        if shared.counted(seq) {
            report.messages_counted += 1;
            if arrivals > 0 {
                report.counted_received += 1;
            } else {
                report.lost_count += 1;
                if report.lost.len() < 50 {
                    report.lost.push(Lost {
                        seq,
                        from: seq / shared.options.messages_per_session,
                        to: shared.recipient(seq).unwrap_or(usize::MAX),
                    });
                }
            }
        } else if arrivals > 0 {
            report.uncounted_received += 1;
        }
    }
    report
}

/// A negotiated session.
struct Live {
    conn: Conn,
    machine: ClientStream,
    buf: Vec<u8>,
}

enum Attempt {
    Live(Box<Live>),
    Killed,
    Failed(String),
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn tcp(conn: &mut Conn) -> Option<&mut TcpStream> {
    match conn {
        Conn::Plain(tcp) => Some(tcp),
        Conn::Tls(tls) => Some(tls.get_mut().0),
        Conn::Gone => None,
    }
}

/// End a connection on purpose. For [`HangUp::Close`], whether the server hung up in turn
/// within `wait` (then it read every byte we wrote); a reset is never confirmed.
async fn hang_up(mut conn: Conn, how: HangUp, wait: Duration) -> bool {
    let Some(tcp) = tcp(&mut conn) else {
        return false;
    };
    let confirmed = match how {
        HangUp::Reset => {
            let _ = tcp.set_zero_linger();
            false
        }
        HangUp::Close => {
            // FIN after everything written; then wait for the server to hang up so that no
            // unread byte turns our close into a reset, and so that our reconnect does not
            // replace a session whose last bytes the server has not read yet.
            let _ = tcp.shutdown().await;
            let mut sink = [0u8; 4096];
            tokio::time::timeout(wait, async {
                while let Ok(n) = tcp.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await
            .is_ok()
        }
    };
    drop(conn);
    confirmed
}

impl Shared {
    /// Open one connection for `slot` and negotiate it, dying at `kill` if given.
    async fn connect(&self, slot: usize, attempt: u64, kill: Option<Kill>) -> Attempt {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let options = &self.options;
        let bare = format!("{}{slot}@{}", options.user_prefix, options.domain);
        let jid = match BareJid::new(&bare) {
            Ok(jid) => jid,
            Err(e) => return Attempt::Failed(format!("bad jid {bare}: {e}")),
        };
        let mut config = ClientConfig::new(jid, options.password.clone());
        config.resource = Some(RESOURCE.to_owned());
        let seed = options.seed
            ^ (slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ attempt.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut machine = ClientStream::new(config, SeededEntropy::new(seed));
        let tcp = match TcpStream::connect(self.addr).await {
            Ok(tcp) => tcp,
            Err(e) => return Attempt::Failed(format!("connect: {e}")),
        };
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn::Plain(tcp);
        if let Err(e) = machine.start(self.now(), Transport::Plain) {
            return Attempt::Failed(format!("start: {e}"));
        }
        let deadline = TokioInstant::now() + options.login_timeout;
        let mut buf = vec![0u8; 4096];
        let killed = |point: KillPoint| kill.filter(|k| k.point == point);
        loop {
            let mut negotiated = false;
            while let Some(output) = machine.poll_output() {
                match output {
                    Output::Transmit(bytes) => {
                        if let Some(k) = killed(KillPoint::MidSasl)
                            && contains(&bytes, b"<response")
                        {
                            return self.killed(conn, k).await;
                        }
                        if let Err(e) = conn.write_all(&bytes).await {
                            return Attempt::Failed(format!("write: {e}"));
                        }
                        if let Some(k) = killed(KillPoint::AfterHeader)
                            && contains(&bytes, b"<stream:stream")
                        {
                            return self.killed(conn, k).await;
                        }
                    }
                    Output::StartTls => {
                        if let Some(k) = killed(KillPoint::InTlsHandshake) {
                            return self.killed(conn, k).await;
                        }
                        let Conn::Plain(plain) = std::mem::replace(&mut conn, Conn::Gone) else {
                            return Attempt::Failed("StartTls twice".to_owned());
                        };
                        let name = match ServerName::try_from(options.domain.clone()) {
                            Ok(name) => name,
                            Err(e) => return Attempt::Failed(format!("server name: {e}")),
                        };
                        match tokio::time::timeout_at(deadline, self.tls.connect(name, plain)).await
                        {
                            Ok(Ok(tls)) => conn = Conn::Tls(Box::new(tls)),
                            Ok(Err(e)) => return Attempt::Failed(format!("TLS: {e}")),
                            Err(_) => return Attempt::Failed("TLS handshake timed out".to_owned()),
                        }
                        if let Some(k) = killed(KillPoint::AfterStartTls) {
                            return self.killed(conn, k).await;
                        }
                        if let Err(e) = machine.tls_established(self.now(), Vec::new()) {
                            return Attempt::Failed(format!("tls_established: {e}"));
                        }
                    }
                    Output::Event(Event::Negotiated { .. }) => negotiated = true,
                    Output::Event(Event::Stanza(stanza)) => self.on_stanza(slot, &stanza),
                    Output::Event(Event::Closed { reason }) => {
                        return Attempt::Failed(format!("closed during login: {reason:?}"));
                    }
                    _ => {}
                }
            }
            if negotiated {
                let presence = Element::builder("presence", "jabber:client").build();
                if let Err(e) = machine.send_stanza(self.now(), &presence) {
                    return Attempt::Failed(format!("presence: {e}"));
                }
                self.counters.logins.fetch_add(1, Ordering::Relaxed);
                return Attempt::Live(Box::new(Live { conn, machine, buf }));
            }
            let n = match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
                Err(_) => return Attempt::Failed("login timed out".to_owned()),
                Ok(Err(e)) => return Attempt::Failed(format!("read during login: {e}")),
                Ok(Ok(0)) => return Attempt::Failed("server closed during login".to_owned()),
                Ok(Ok(n)) => n,
            };
            let _ = machine.handle_input(self.now(), &buf[..n]);
        }
    }

    async fn killed(&self, conn: Conn, kill: Kill) -> Attempt {
        self.count_kill(kill);
        hang_up(conn, kill.hang_up, self.options.login_timeout).await;
        Attempt::Killed
    }

    fn count_kill(&self, kill: Kill) {
        self.counters.kills[kill.point.index()].fetch_add(1, Ordering::Relaxed);
        if kill.hang_up == HangUp::Reset {
            self.counters.kills_reset.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Log `slot` in, first dying at `kill` if given; `attempt` numbers the connections.
    async fn login(
        &self,
        slot: usize,
        attempt: &mut u64,
        kill: Option<Kill>,
    ) -> Result<Box<Live>, String> {
        if let Some(kill) = kill {
            *attempt += 1;
            match self.connect(slot, *attempt, Some(kill)).await {
                Attempt::Killed => self.counters.reconnects.fetch_add(1, Ordering::Relaxed),
                Attempt::Live(_) => return Err(format!("not killed at {}", kill.point.as_str())),
                Attempt::Failed(why) => return Err(why),
            };
        }
        *attempt += 1;
        match self.connect(slot, *attempt, None).await {
            Attempt::Live(live) => Ok(live),
            Attempt::Killed => Err("killed without a kill point".to_owned()),
            Attempt::Failed(why) => Err(why),
        }
    }
}

/// Write every queued output of the machine; hand stanzas to the accounting.
async fn drain(shared: &Shared, slot: usize, live: &mut Live) -> Result<(), String> {
    while let Some(output) = live.machine.poll_output() {
        match output {
            Output::Transmit(bytes) => live
                .conn
                .write_all(&bytes)
                .await
                .map_err(|e| format!("write: {e}"))?,
            Output::Event(Event::Stanza(stanza)) => shared.on_stanza(slot, &stanza),
            Output::Event(Event::Closed { reason }) => return Err(format!("closed: {reason:?}")),
            _ => {}
        }
    }
    Ok(())
}

async fn run_slot(shared: Arc<Shared>, slot: usize) {
    let plan = shared.plans[slot].clone();
    let mut attempt = 0;
    let permit = shared.permits.acquire().await;
    let live = shared
        .login(slot, &mut attempt, plan.negotiation_kill)
        .await;
    drop(permit);
    let live = match live {
        Ok(live) => live,
        Err(why) => {
            shared
                .counters
                .login_failures
                .fetch_add(1, Ordering::Relaxed);
            shared.stable[slot].store(false, Ordering::Relaxed);
            shared.fail(slot, &format!("login: {why}"));
            shared.done_sending.fetch_add(1, Ordering::Relaxed);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            shared.wake.notify_one();
            return;
        }
    };
    shared.settled.fetch_add(1, Ordering::Relaxed);
    shared.wake.notify_one();
    if let Err(why) = Box::pin(hold(&shared, slot, &plan, live, &mut attempt)).await {
        shared.fail(slot, &why);
    }
}

/// The life of a logged-in slot: storm, kills and reconnects, close.
async fn hold(
    shared: &Shared,
    slot: usize,
    plan: &Plan,
    mut live: Box<Live>,
    attempt: &mut u64,
) -> Result<(), String> {
    let per = shared.options.messages_per_session;
    let mut phase_rx = shared.phase.subscribe();
    let mut next = 0usize;
    let mut storm_kill = plan.storm_kill;
    // Messages written on the current connection (marked if it is reset).
    let mut on_this_conn: Vec<usize> = Vec::new();
    let mut done_sending = false;
    loop {
        let phase = *phase_rx.borrow_and_update();
        if phase == Phase::Close {
            if !done_sending {
                shared.done_sending.fetch_add(1, Ordering::Relaxed);
            }
            return Box::pin(close(shared, slot, live)).await;
        }
        let storm_start = (phase >= Phase::Storm)
            .then(|| shared.storm_start.get().copied())
            .flatten();
        let at = |fraction: f64| storm_start.map(|s| s + shared.options.storm.mul_f64(fraction));
        if next >= per && !done_sending {
            done_sending = true;
            shared.done_sending.fetch_add(1, Ordering::Relaxed);
        }
        let send_at = plan.offsets.get(next).and_then(|&f| at(f));
        let kill_at = storm_kill.and_then(|k| at(k.at));
        let machine_at = live
            .machine
            .poll_timeout()
            .map(|t| TokioInstant::from_std(shared.epoch) + Duration::from_millis(t.as_millis()));
        let wake = [send_at, kill_at, machine_at].into_iter().flatten().min();
        let timer = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut woke = false;
        tokio::select! {
            read = live.conn.read(&mut live.buf) => match read {
                Ok(n) if n > 0 => {
                    let _ = live.machine.handle_input(shared.now(), &live.buf[..n]);
                }
                Ok(_) | Err(_) => {
                    live = unexpected_drop(shared, slot, "connection ended by the server", attempt).await?;
                    on_this_conn.clear();
                    continue;
                }
            },
            () = timer => woke = true,
            _ = phase_rx.changed() => {}
        }
        if woke {
            let now = TokioInstant::now();
            if let (Some(kill), Some(when)) = (storm_kill, kill_at)
                && when <= now
            {
                storm_kill = None;
                let (new_live, confirmed) =
                    Box::pin(stanza_kill(shared, slot, plan, live, kill, attempt)).await?;
                live = new_live;
                // Unconfirmed: the server may not have read our last messages (a reset, or a
                // close it did not answer in time): they are not counted.
                if !confirmed {
                    for &seq in &on_this_conn {
                        shared.status[seq].store(SENDER_RESET, Ordering::Relaxed);
                    }
                }
                on_this_conn.clear();
                continue;
            }
            if send_at.is_some_and(|when| when <= now) {
                let seq = slot * per + next;
                let to = plan.recipients[next] as usize;
                next += 1;
                let stanza = message(&shared.jid(to), &seq.to_string());
                if live.machine.send_stanza(shared.now(), &stanza).is_err() {
                    shared
                        .counters
                        .send_failures
                        .fetch_add(1, Ordering::Relaxed);
                } else if let Err(why) = drain(shared, slot, &mut live).await {
                    live = unexpected_drop(shared, slot, &why, attempt).await?;
                    on_this_conn.clear();
                    continue;
                } else {
                    shared.status[seq].store(SENT, Ordering::Relaxed);
                    on_this_conn.push(seq);
                }
            }
            if machine_at.is_some_and(|when| when <= now) {
                live.machine.handle_timeout(shared.now());
            }
        }
        if let Err(why) = drain(shared, slot, &mut live).await {
            live = unexpected_drop(shared, slot, &why, attempt).await?;
            on_this_conn.clear();
        }
    }
}

/// The server ended a session we did not kill: count it, mark the slot, log in again.
async fn unexpected_drop(
    shared: &Shared,
    slot: usize,
    why: &str,
    attempt: &mut u64,
) -> Result<Box<Live>, String> {
    shared
        .counters
        .unexpected_drops
        .fetch_add(1, Ordering::Relaxed);
    shared.stable[slot].store(false, Ordering::Relaxed);
    shared.fail(slot, &format!("unexpected drop: {why}"));
    let live = shared.login(slot, attempt, None).await;
    if live.is_ok() {
        shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    live
}

/// Write half a stanza, hang up, log in again (maybe killed once more on the way); also
/// whether the server confirmed the hang-up (see [`hang_up`]).
async fn stanza_kill(
    shared: &Shared,
    slot: usize,
    plan: &Plan,
    mut live: Box<Live>,
    kill: StormKill,
    attempt: &mut u64,
) -> Result<(Box<Live>, bool), String> {
    let to = plan.recipients.first().map_or(slot, |&r| r as usize);
    // Not a sequence number: this one never arrives whole.
    let doomed = message(&shared.jid(to), &format!("half-of-{slot}"));
    live.machine
        .send_stanza(shared.now(), &doomed)
        .map_err(|e| format!("send: {e}"))?;
    let mut bytes = Vec::new();
    while let Some(output) = live.machine.poll_output() {
        if let Output::Transmit(b) = output {
            bytes.extend_from_slice(&b);
        }
    }
    let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
    live.conn
        .write_all(half)
        .await
        .map_err(|e| format!("write half a stanza: {e}"))?;
    shared.count_kill(Kill {
        point: KillPoint::MidStanza,
        hang_up: kill.hang_up,
    });
    let Live { conn, .. } = *live;
    let confirmed = hang_up(conn, kill.hang_up, shared.options.login_timeout).await;
    if kill.hang_up == HangUp::Close && !confirmed {
        shared
            .counters
            .unconfirmed_closes
            .fetch_add(1, Ordering::Relaxed);
    }
    let live = shared.login(slot, attempt, kill.reconnect_kill).await;
    match live {
        Ok(live) => {
            shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            Ok((live, confirmed))
        }
        Err(why) => {
            shared
                .counters
                .login_failures
                .fetch_add(1, Ordering::Relaxed);
            Err(format!("reconnect: {why}"))
        }
    }
}

/// End the stream and wait for the server's end.
async fn close(shared: &Shared, slot: usize, mut live: Box<Live>) -> Result<(), String> {
    let _ = live.machine.close(shared.now());
    drain(shared, slot, &mut live).await?;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match live.conn.read(&mut live.buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    let _ = live.machine.handle_input(shared.now(), &live.buf[..n]);
                    while let Some(output) = live.machine.poll_output() {
                        match output {
                            Output::Event(Event::Closed { .. }) => return true,
                            Output::Event(Event::Stanza(stanza)) => shared.on_stanza(slot, &stanza),
                            _ => {}
                        }
                    }
                }
            }
        }
    })
    .await;
    live.conn.shutdown().await;
    if ended == Ok(true) {
        shared.counters.clean_closes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    } else {
        Err("the server did not end the stream".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_reproducible_and_in_bounds() {
        let mut options = SoakOptions::new(500);
        options.seed = 7;
        let a = plans(&options);
        assert_eq!(a, plans(&options));
        options.seed = 8;
        assert_ne!(a, plans(&options));
        let negotiation = a.iter().filter(|p| p.negotiation_kill.is_some()).count();
        let storm = a.iter().filter(|p| p.storm_kill.is_some()).count();
        // 10% and 5% of 500, with room for chance.
        assert!((25..=80).contains(&negotiation), "{negotiation}");
        assert!((8..=45).contains(&storm), "{storm}");
        for (slot, plan) in a.iter().enumerate() {
            assert_eq!(plan.recipients.len(), 10);
            assert!(
                plan.recipients
                    .iter()
                    .all(|&r| r as usize != slot && r < 500)
            );
            assert!(plan.offsets.windows(2).all(|w| w[0] <= w[1]));
            assert!(plan.offsets.iter().all(|o| (0.0..1.0).contains(o)));
            if let Some(kill) = plan.negotiation_kill {
                assert_ne!(kill.point, KillPoint::MidStanza);
            }
        }
    }

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
        assert!(check(&local, &SoakOptions::new(0)).is_err());
    }

    #[test]
    fn raises_the_descriptor_limit_within_the_cap() {
        let now = raise_fd_limit(20_000).unwrap();
        assert!(now > 0 && now <= 20_000.max(procfs::open_file_limit().unwrap()));
        assert_eq!(procfs::open_file_limit(), Some(now));
    }
}
