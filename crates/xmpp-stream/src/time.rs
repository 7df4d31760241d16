//! The crate's own time value.
//!
//! `std::time::Instant` cannot be built in a test, serialized into a transcript or obtained on
//! `wasm32-unknown-unknown`, so the host passes this plain value instead: milliseconds since an
//! arbitrary epoch of its choosing (process start, Unix epoch, a virtual clock's zero).

use core::fmt;
use core::ops::Add;
use core::time::Duration;

/// A point in time: milliseconds since an arbitrary, host-chosen epoch.
///
/// Only differences between two values from the same host are meaningful. Time never goes
/// backwards: a machine given an earlier value than one it has already seen treats it as the
/// later one (it never panics and never re-fires a timer for it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the end of representable time instead of overflowing.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this instant is; zero if `earlier` is actually later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturating: a huge timeout means "never" rather than an overflow panic.
    fn add(self, duration: Duration) -> Instant {
        self.saturating_add(duration)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(1_500);
        assert_eq!((t + Duration::from_millis(250)).as_millis(), 1_750);
        assert_eq!(
            Instant::from_millis(u64::MAX - 1) + Duration::from_secs(10),
            Instant::from_millis(u64::MAX)
        );
        assert_eq!(
            t.saturating_duration_since(Instant::ZERO),
            Duration::from_millis(1_500)
        );
        assert_eq!(Instant::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(t.to_string(), "1500ms");
    }
}
