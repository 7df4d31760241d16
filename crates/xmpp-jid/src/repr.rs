//! The representation the three JID types share: the parser builds it, the types in
//! [`crate::jid`] wrap it. Its own module so that dependencies point one way
//! (`jid` -> `parse` -> `repr`).

use alloc::sync::Arc;

/// Shared representation: `buf[..len]` is this JID's enforced form.
///
/// Invariants (established by [`crate::parse`] only): `buf[..len]` is a valid enforced JID;
/// `at` is the index of the `@` ending the localpart, or 0 when there is none (a localpart is
/// never empty, so `@` is never at index 0); `slash` is the index of the `/` starting the
/// resourcepart, or `len` when there is none. Every part is at most 1023 octets, so all
/// offsets fit in `u16`.
#[derive(Clone)]
pub(crate) struct Repr {
    buf: Arc<str>,
    at: u16,
    slash: u16,
    len: u16,
}

impl Repr {
    pub(crate) fn new(buf: Arc<str>, at: Option<usize>, slash: Option<usize>) -> Self {
        // Parts are bounded by 1023 octets each, so the whole JID is at most 3071 octets.
        let len = buf.len();
        let to16 = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
        Self {
            at: to16(at.unwrap_or(0)),
            slash: to16(slash.unwrap_or(len)),
            len: to16(len),
            buf,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.buf[..usize::from(self.len)]
    }

    /// Everything that defines the value (for tests comparing two construction paths).
    #[cfg(test)]
    pub(crate) fn parts(&self) -> (&str, Option<&str>, &str, Option<&str>) {
        (self.as_str(), self.node(), self.domain(), self.resource())
    }

    pub(crate) fn node(&self) -> Option<&str> {
        (self.at > 0).then(|| &self.buf[..usize::from(self.at)])
    }

    pub(crate) fn domain(&self) -> &str {
        let start = if self.at > 0 {
            usize::from(self.at) + 1
        } else {
            0
        };
        &self.buf[start..usize::from(self.slash)]
    }

    pub(crate) fn resource(&self) -> Option<&str> {
        (self.slash < self.len)
            .then(|| &self.buf[usize::from(self.slash) + 1..usize::from(self.len)])
    }

    /// `buf[..slash]`: the JID without its resourcepart, borrowed.
    pub(crate) fn bare_str(&self) -> &str {
        &self.buf[..usize::from(self.slash)]
    }

    pub(crate) fn is_full(&self) -> bool {
        self.slash < self.len
    }

    /// The bare view: shares the buffer, ends before the `/`.
    pub(crate) fn bare(&self) -> Self {
        Self {
            buf: Arc::clone(&self.buf),
            at: self.at,
            slash: self.slash,
            len: self.slash,
        }
    }
}
