//! What a soak measured: tallied from the shared state once the drain ends, printed for
//! people ([`fmt::Display`]) and for harnesses ([`SoakReport::summary_line`]).

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::KillPoint;
use super::shared::{Shared, UNSENT};

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
    /// Connections killed on purpose, per [`KillPoint`] (in the order of [`KillPoint::ALL`]).
    pub kills: [u64; KillPoint::ALL.len()],
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
    /// Stream management was on.
    pub sm: bool,
    /// Stream management: reconnects that resumed their session.
    pub resumptions: u64,
    /// Stream management: reconnects whose resumption failed, that started a fresh session
    /// instead (the window expired, or the server lost the session).
    pub resume_failures: u64,
    /// Stream management: stanzas we re-sent on resumption (unacknowledged before a cut).
    pub resent: u64,
    /// Stream management: sessions that hung up at the end after acknowledging everything,
    /// leaving the server a detached session to expire.
    pub abandoned: u64,
    /// Messages that arrived after a later one from the same sender to the same recipient
    /// (must be 0).
    pub out_of_order: u64,
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
            && self.out_of_order == 0
            && self.messages_sent == self.messages_planned
            && self.clean_closes + self.abandoned == self.sessions as u64
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
             bounced={} clean_closes={} connect_ms={} storm_ms={} drain_ms={} close_ms={} total_ms={} \
             sm={} out_of_order={} resumptions={} resume_failures={} resent={} abandoned={} {}",
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
            self.sm,
            self.out_of_order,
            self.resumptions,
            self.resume_failures,
            self.resent,
            self.abandoned,
            KillPoint::ALL
                .iter()
                .map(|p| format!(
                    "kill_{}={}",
                    p.as_str().replace('-', "_"),
                    self.kills[p.index()]
                ))
                .collect::<Vec<_>>()
                .join(" "),
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
        let kills: Vec<String> = KillPoint::ALL
            .iter()
            .filter(|p| {
                self.sm
                    || !matches!(
                        p,
                        KillPoint::MidAck | KillPoint::MidResume | KillPoint::AfterResumed
                    )
            })
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
        if self.sm {
            writeln!(
                f,
                "stream management: {} resumptions ({} stanzas re-sent by us), {} failed (fresh sessions), {} sessions abandoned to expire",
                self.resumptions, self.resent, self.resume_failures, self.abandoned
            )?;
        }
        writeln!(
            f,
            "messages: {} planned, {} sent, {} counted (to the {} stable slots), {} of them received, \
             {} lost, {} duplicated, {} misdelivered, {} out of order; {} arrivals in all ({} uncounted), {} bounced, {} strays",
            self.messages_planned,
            self.messages_sent,
            self.messages_counted,
            self.stable_recipients,
            self.counted_received,
            self.lost_count,
            self.duplicates,
            self.misdelivered,
            self.out_of_order,
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

pub(super) fn account(shared: &Shared) -> SoakReport {
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
        sm: shared.options.sm.is_some(),
        resumptions: c.resumptions.load(Ordering::Relaxed),
        resume_failures: c.resume_failures.load(Ordering::Relaxed),
        resent: c.resent_by_us.load(Ordering::Relaxed),
        out_of_order: c.out_of_order.load(Ordering::Relaxed),
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
