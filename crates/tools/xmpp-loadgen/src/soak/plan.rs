//! Every slot's choices, drawn up front from one seeded generator: which slots are killed,
//! where and how, to whom each message goes and when in the storm it leaves.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::SoakOptions;

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
    /// Stream management: right after a stanza and its `<r/>` went out, before the server's
    /// `<a/>` arrived.
    MidAck,
    /// Stream management, on a reconnect: after `<resume/>` went out, before `<resumed/>`.
    MidResume,
    /// Stream management, on a reconnect: right after `<resumed/>` arrived, before the
    /// stanzas the server re-sent with it were taken.
    AfterResumed,
}

impl KillPoint {
    const NEGOTIATION: [KillPoint; 4] = [
        KillPoint::AfterHeader,
        KillPoint::InTlsHandshake,
        KillPoint::AfterStartTls,
        KillPoint::MidSasl,
    ];

    /// Every point, in declaration order (the order of [`SoakReport::kills`](super::SoakReport::kills)).
    pub const ALL: [KillPoint; 8] = [
        KillPoint::AfterHeader,
        KillPoint::InTlsHandshake,
        KillPoint::AfterStartTls,
        KillPoint::MidSasl,
        KillPoint::MidStanza,
        KillPoint::MidAck,
        KillPoint::MidResume,
        KillPoint::AfterResumed,
    ];

    /// A short name for reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            KillPoint::AfterHeader => "after-header",
            KillPoint::InTlsHandshake => "in-tls-handshake",
            KillPoint::AfterStartTls => "after-starttls",
            KillPoint::MidSasl => "mid-sasl",
            KillPoint::MidStanza => "mid-stanza",
            KillPoint::MidAck => "mid-ack",
            KillPoint::MidResume => "mid-resume",
            KillPoint::AfterResumed => "after-resumed",
        }
    }

    pub(super) fn index(self) -> usize {
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
    /// Where: [`KillPoint::MidStanza`], or with stream management [`KillPoint::MidAck`].
    pub point: KillPoint,
    /// How the half-written stanza's connection ends.
    pub hang_up: HangUp,
    /// The reconnect that follows is itself killed here first, if set (with stream
    /// management: in its resumption, [`KillPoint::MidResume`] or [`KillPoint::AfterResumed`]).
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
    /// Stream management: at the end, hang up without closing the stream (after
    /// acknowledging everything received), leaving the server a detached session to expire.
    pub abandon: bool,
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
    let sm = options.sm.is_some();
    // With stream management the reconnect after a cut resumes: that is what gets cut.
    let reconnect_kill = |rng: &mut ChaCha8Rng| {
        if sm {
            let point = if rng.random_bool(0.5) {
                KillPoint::MidResume
            } else {
                KillPoint::AfterResumed
            };
            Kill {
                point,
                hang_up: hang_up(rng),
            }
        } else {
            negotiation_kill(rng)
        }
    };
    let abandon_rate = options.sm.as_ref().map_or(0.0, |sm| sm.abandon_rate);
    (0..n)
        .map(|slot| {
            let negotiation = rng
                .random_bool(options.negotiation_kill_rate)
                .then(|| negotiation_kill(&mut rng));
            let storm_kill = rng
                .random_bool(options.stanza_kill_rate)
                .then(|| StormKill {
                    at: rng.random_range(0.1..0.9),
                    point: if sm && rng.random_bool(0.5) {
                        KillPoint::MidAck
                    } else {
                        KillPoint::MidStanza
                    },
                    hang_up: hang_up(&mut rng),
                    reconnect_kill: rng.random_bool(0.5).then(|| reconnect_kill(&mut rng)),
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
                abandon: sm && rng.random_bool(abandon_rate),
            }
        })
        .collect()
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
    fn stream_management_plans_cut_mid_ack_and_mid_resume() {
        use std::time::Duration;
        let mut options = SoakOptions::new(1000);
        options.stanza_kill_rate = 0.3;
        let plain = plans(&options);
        assert!(plain.iter().all(|p| !p.abandon));
        assert!(plain.iter().filter_map(|p| p.storm_kill).all(|k| {
            k.point == KillPoint::MidStanza
                && k.reconnect_kill
                    .is_none_or(|r| r.point < KillPoint::MidStanza)
        }));
        options.sm = Some(super::super::SmSoak::new(Duration::from_secs(10)));
        let sm = plans(&options);
        let kills: Vec<StormKill> = sm.iter().filter_map(|p| p.storm_kill).collect();
        let count = |point| kills.iter().filter(|k| k.point == point).count();
        assert!(count(KillPoint::MidStanza) > 100 && count(KillPoint::MidAck) > 100);
        assert_eq!(
            count(KillPoint::MidStanza) + count(KillPoint::MidAck),
            kills.len()
        );
        let resume = |point| {
            kills
                .iter()
                .filter(|k| k.reconnect_kill.is_some_and(|r| r.point == point))
                .count()
        };
        assert!(resume(KillPoint::MidResume) > 30 && resume(KillPoint::AfterResumed) > 30);
        let abandoned = sm.iter().filter(|p| p.abandon).count();
        assert!((50..=150).contains(&abandoned), "{abandoned}");
    }
}
