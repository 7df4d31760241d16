//! Session state as flags, shared by both roles.
//!
//! Which features a server lists, and which a client may negotiate, follows from these flags
//! alone (see [`crate::features`]): adding a feature never means adding a state to an enum.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

/// A set of [`SessionFlags`] constants.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SessionFlags(u8);

impl SessionFlags {
    /// No flag.
    pub const EMPTY: SessionFlags = SessionFlags(0);
    /// The transport is encrypted (STARTTLS finished or direct TLS).
    pub const SECURE: SessionFlags = SessionFlags(1);
    /// SASL succeeded.
    pub const AUTHENTICATED: SessionFlags = SessionFlags(1 << 1);
    /// A resource is bound: stanzas may flow.
    pub const BOUND: SessionFlags = SessionFlags(1 << 2);
    /// Server-to-server: XEP-0288 bidirectional streams were negotiated, stanzas flow both
    /// ways.
    pub const BIDI: SessionFlags = SessionFlags(1 << 3);

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: SessionFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: SessionFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` with the flags of `other` added.
    #[must_use]
    pub const fn union(self, other: SessionFlags) -> SessionFlags {
        SessionFlags(self.0 | other.0)
    }
}

impl BitOr for SessionFlags {
    type Output = SessionFlags;
    fn bitor(self, rhs: SessionFlags) -> SessionFlags {
        self.union(rhs)
    }
}

impl BitOrAssign for SessionFlags {
    fn bitor_assign(&mut self, rhs: SessionFlags) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for SessionFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (SessionFlags::SECURE, "Secure"),
            (SessionFlags::AUTHENTICATED, "Authenticated"),
            (SessionFlags::BOUND, "Bound"),
            (SessionFlags::BIDI, "Bidi"),
        ];
        let mut set = f.debug_set();
        for (flag, name) in names {
            if self.contains(flag) {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut flags = SessionFlags::EMPTY;
        assert!(flags.is_empty());
        flags |= SessionFlags::SECURE;
        assert!(flags.contains(SessionFlags::SECURE));
        assert!(!flags.contains(SessionFlags::SECURE | SessionFlags::AUTHENTICATED));
        assert!(flags.intersects(SessionFlags::SECURE | SessionFlags::BOUND));
        assert!(!flags.intersects(SessionFlags::BOUND));
        assert_eq!(
            format!("{:?}", flags | SessionFlags::BOUND),
            "{Secure, Bound}"
        );
    }
}
