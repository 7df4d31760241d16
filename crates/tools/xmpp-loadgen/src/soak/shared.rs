//! The state every slot's task shares: the phase, the per-message ledger, the counters, and
//! the accounting of each arriving stanza.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant as StdInstant;

use minidom::Element;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant as TokioInstant;
use tokio_rustls::TlsConnector;
use xmpp_stream::Instant;

use super::{KillPoint, Plan, RESOURCE, SoakOptions, plans};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    Connect,
    Storm,
    Drain,
    Close,
}

/// Per message: not sent yet, sent in full, or sent on a connection that ended without the
/// server confirming it read everything (a reset, or a half-close it did not answer).
pub(super) const UNSENT: u8 = 0;
pub(super) const SENT: u8 = 1;
pub(super) const SENDER_RESET: u8 = 2;

#[derive(Default)]
pub(super) struct Counters {
    pub(super) connections: AtomicU64,
    pub(super) logins: AtomicU64,
    pub(super) login_failures: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) kills: [AtomicU64; KillPoint::ALL.len()],
    pub(super) kills_reset: AtomicU64,
    pub(super) unconfirmed_closes: AtomicU64,
    pub(super) unexpected_drops: AtomicU64,
    pub(super) misdelivered: AtomicU64,
    pub(super) bounced: AtomicU64,
    pub(super) strays: AtomicU64,
    pub(super) send_failures: AtomicU64,
    pub(super) clean_closes: AtomicU64,
    /// Stream management: reconnects that resumed their session.
    pub(super) resumptions: AtomicU64,
    /// Stream management: reconnects whose resumption failed (a fresh session instead).
    pub(super) resume_failures: AtomicU64,
    /// Stream management: stanzas we re-sent on resumption (not acknowledged before a cut).
    pub(super) resent_by_us: AtomicU64,
    /// Stream management: sessions left detached at the end (hung up after acknowledging).
    pub(super) abandoned: AtomicU64,
    /// Messages that arrived after a later one from the same sender to the same recipient.
    pub(super) out_of_order: AtomicU64,
}

pub(super) struct Shared {
    pub(super) options: SoakOptions,
    pub(super) plans: Vec<Plan>,
    pub(super) addr: SocketAddr,
    pub(super) tls: TlsConnector,
    pub(super) epoch: StdInstant,
    pub(super) phase: watch::Sender<Phase>,
    pub(super) storm_start: OnceLock<TokioInstant>,
    pub(super) permits: Semaphore,
    /// Slots that logged in (or failed to) in the connect phase.
    pub(super) settled: AtomicUsize,
    /// Slots that sent all their messages (or gave up).
    pub(super) done_sending: AtomicUsize,
    pub(super) wake: Notify,
    pub(super) status: Vec<AtomicU8>,
    pub(super) received: Vec<AtomicU8>,
    pub(super) stable: Vec<AtomicBool>,
    pub(super) counters: Counters,
    pub(super) failures: Mutex<Vec<String>>,
}

impl Shared {
    /// The state of a run of `options` against `addr`, before anything connects: every
    /// message unsent, every slot without a storm kill a stable recipient.
    pub(super) fn new(options: SoakOptions, addr: SocketAddr, tls: TlsConnector) -> Self {
        let plans = plans(&options);
        let total = options.sessions * options.messages_per_session;
        let (phase, _) = watch::channel(Phase::Connect);
        let shared = Shared {
            plans,
            addr,
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
        };
        for (slot, plan) in shared.plans.iter().enumerate() {
            if plan.storm_kill.is_some() {
                shared.stable[slot].store(false, Ordering::Relaxed);
            }
        }
        shared
    }

    pub(super) fn now(&self) -> Instant {
        let millis = self.epoch.elapsed().as_millis();
        Instant::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    pub(super) fn fail(&self, slot: usize, why: &str) {
        if let Ok(mut failures) = self.failures.lock()
            && failures.len() < 20
        {
            failures.push(format!("slot {slot}: {why}"));
        }
    }

    pub(super) fn jid(&self, slot: usize) -> String {
        format!(
            "{}{slot}@{}/{RESOURCE}",
            self.options.user_prefix, self.options.domain
        )
    }

    pub(super) fn recipient(&self, seq: usize) -> Option<usize> {
        let per = self.options.messages_per_session;
        let plan = self.plans.get(seq / per)?;
        plan.recipients.get(seq % per).map(|&r| r as usize)
    }

    /// A message arrived at `slot`.
    pub(super) fn on_stanza(&self, slot: usize, stanza: &Element) {
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
                if self.overtaken(seq) {
                    self.counters.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
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

    /// Whether a later message of `seq`'s sender to the same recipient arrived already
    /// (each slot's messages go out in sequence order).
    fn overtaken(&self, seq: usize) -> bool {
        let per = self.options.messages_per_session;
        let (sender, k) = (seq / per, seq % per);
        let Some(plan) = self.plans.get(sender) else {
            return false;
        };
        let to = plan.recipients.get(k);
        (k + 1..per).any(|later| {
            plan.recipients.get(later) == to
                && self.received[sender * per + later].load(Ordering::Relaxed) > 0
        })
    }

    /// Counted messages that have not arrived yet.
    pub(super) fn outstanding(&self) -> usize {
        (0..self.status.len())
            .filter(|&seq| self.counted(seq) && self.received[seq].load(Ordering::Relaxed) == 0)
            .count()
    }

    /// Whether message `seq` must arrive exactly once. With stream management, every
    /// message handed to a session counts (its unacknowledged queue survives every cut);
    /// without, see the module docs.
    pub(super) fn counted(&self, seq: usize) -> bool {
        if self.options.sm.is_some() {
            return self.status[seq].load(Ordering::Relaxed) != UNSENT;
        }
        self.status[seq].load(Ordering::Relaxed) == SENT
            && self
                .recipient(seq)
                .is_some_and(|r| self.stable[r].load(Ordering::Relaxed))
    }

    pub(super) fn progress(&self, line: &str) {
        if self.options.progress {
            #[allow(clippy::print_stdout)]
            {
                println!("soak: {line}");
            }
        }
    }
}
