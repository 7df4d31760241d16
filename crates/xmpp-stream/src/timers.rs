//! Timers as a small fixed table indexed by an enum.
//!
//! The machine arms and stops entries; the host learns the earliest deadline from
//! `poll_timeout()` and calls `handle_timeout(now)` at or after it. An early call is harmless:
//! only entries whose deadline has passed fire.

use crate::time::Instant;

/// The timers a stream machine keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// Idle for the configured interval: send a whitespace keepalive.
    Keepalive,
    /// Negotiation (header, TLS, SASL, bind) must finish by this deadline.
    Negotiation,
    /// We sent `</stream:stream>`; the peer must close by this deadline.
    Close,
    /// A negotiated stream's input has been quiet for a moment ([`TRIM_AFTER`]): the machine
    /// gives back the parser's scratch memory, so that a server's idle connections cost a few
    /// kilobytes each. Nothing is sent.
    Trim,
    /// A server-to-server dialback verification the host was asked for
    /// ([`Event::DialbackVerify`](crate::Event::DialbackVerify)) must be answered by this
    /// deadline; past it the request is answered with `remote-server-timeout`.
    Dialback,
    /// XEP-0198: stanzas have waited unacknowledged for
    /// [`SmConfig::request_after`](crate::SmConfig::request_after): send `<r/>`.
    AckRequest,
    /// XEP-0199: the peer was silent for [`PingConfig::idle`](crate::PingConfig::idle) (send
    /// a ping), or did not answer it within [`PingConfig::timeout`](crate::PingConfig::timeout)
    /// (close with `connection-timeout`).
    Ping,
}

/// How long a negotiated stream's input must be quiet before [`Timer::Trim`] fires. Releasing
/// scratch memory after every read would cost allocations per stanza for interactive
/// traffic; after a quiet moment it costs a few per burst.
pub const TRIM_AFTER: core::time::Duration = core::time::Duration::from_secs(2);

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 7] = [
        Timer::Keepalive,
        Timer::Negotiation,
        Timer::Close,
        Timer::Trim,
        Timer::Dialback,
        Timer::AckRequest,
        Timer::Ping,
    ];

    const fn index(self) -> usize {
        match self {
            Timer::Keepalive => 0,
            Timer::Negotiation => 1,
            Timer::Close => 2,
            Timer::Trim => 3,
            Timer::Dialback => 4,
            Timer::AckRequest => 5,
            Timer::Ping => 6,
        }
    }
}

/// One optional deadline per [`Timer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; Timer::ALL.len()];
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarm and return the first (in table order) timer whose deadline is at or before `now`.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|at| at <= now))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_minimum_and_expiry_disarms() {
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.set(Timer::Keepalive, Instant::from_millis(300));
        table.set(Timer::Negotiation, Instant::from_millis(100));
        table.set(Timer::Close, Instant::from_millis(200));
        assert_eq!(table.next(), Some(Instant::from_millis(100)));
        assert_eq!(table.take_expired(Instant::from_millis(50)), None);
        assert_eq!(
            table.take_expired(Instant::from_millis(250)),
            Some(Timer::Negotiation)
        );
        assert_eq!(
            table.take_expired(Instant::from_millis(250)),
            Some(Timer::Close)
        );
        assert_eq!(table.take_expired(Instant::from_millis(250)), None);
        assert_eq!(table.next(), Some(Instant::from_millis(300)));
        table.stop_all();
        assert_eq!(table.next(), None);
    }
}
