//! Host-supplied randomness.
//!
//! Stream ids, SCRAM nonces, server-generated resources and stanza ids all draw from an
//! [`Entropy`] source the host passes in, so a seeded run is byte-for-byte reproducible and a
//! transcript can record exactly what was drawn.

use std::collections::VecDeque;

/// A source of random bytes. Production hosts wrap their operating system's CSPRNG; tests use
/// [`SeededEntropy`] or [`ScriptedEntropy`].
pub trait Entropy {
    /// Fill `buf` entirely with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<E: Entropy + ?Sized> Entropy for &mut E {
    fn fill(&mut self, buf: &mut [u8]) {
        (**self).fill(buf);
    }
}

impl<E: Entropy + ?Sized> Entropy for Box<E> {
    fn fill(&mut self, buf: &mut [u8]) {
        (**self).fill(buf);
    }
}

/// A deterministic generator (SplitMix64) for tests, benches and fuzzing.
///
/// **Not cryptographically secure**: never use it for a real deployment.
#[derive(Clone, Debug)]
pub struct SeededEntropy {
    state: u64,
}

impl SeededEntropy {
    /// A generator whose whole output is determined by `seed`.
    pub const fn new(seed: u64) -> Self {
        SeededEntropy { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Plays back a fixed byte script (for example the entropy recorded in a transcript).
///
/// Once the script is exhausted it yields zero bytes and remembers that it ran dry, so a replay
/// that draws more than was recorded is detected by [`ScriptedEntropy::exhausted`] rather than by
/// a panic.
#[derive(Clone, Debug, Default)]
pub struct ScriptedEntropy {
    script: VecDeque<u8>,
    exhausted: bool,
}

impl ScriptedEntropy {
    /// A source that yields `script` in order.
    pub fn new(script: impl Into<Vec<u8>>) -> Self {
        ScriptedEntropy {
            script: script.into().into(),
            exhausted: false,
        }
    }

    /// Append more bytes to the script.
    pub fn push(&mut self, bytes: &[u8]) {
        self.script.extend(bytes);
    }

    /// Whether a draw asked for more bytes than the script held.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Bytes of script not yet drawn.
    pub fn remaining(&self) -> usize {
        self.script.len()
    }
}

impl Entropy for ScriptedEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            if let Some(b) = self.script.pop_front() {
                *byte = b;
            } else {
                self.exhausted = true;
                *byte = 0;
            }
        }
    }
}

/// Wraps another source and keeps a copy of every byte drawn, for writing transcripts.
#[derive(Clone, Debug)]
pub struct RecordingEntropy<E> {
    inner: E,
    drawn: Vec<Vec<u8>>,
}

impl<E: Entropy> RecordingEntropy<E> {
    /// Record everything drawn from `inner`.
    pub fn new(inner: E) -> Self {
        RecordingEntropy {
            inner,
            drawn: Vec::new(),
        }
    }

    /// Take the draws recorded so far, one entry per `fill` call, oldest first.
    pub fn take_draws(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.drawn)
    }
}

impl<E: Entropy> Entropy for RecordingEntropy<E> {
    fn fill(&mut self, buf: &mut [u8]) {
        self.inner.fill(buf);
        self.drawn.push(buf.to_vec());
    }
}

/// Base64 (standard alphabet, padded) of `len` fresh random bytes: the shape used for stream
/// ids, nonces and generated resources, always safe inside an XML attribute.
pub(crate) fn random_token(entropy: &mut dyn Entropy, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    entropy.fill(&mut bytes);
    crate::codec::base64_encode(&bytes)
}

/// The 64 characters nonces are drawn from: letters, digits, `-` and `_` (printable, no `,`,
/// safe in SCRAM attributes and XML).
const NONCE_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A nonce of `len` characters, one random byte per character (its low six bits pick the
/// character, so each carries 6 bits of entropy). A transcript can script any nonce over the
/// alphabet by scripting the characters' indices.
pub(crate) fn random_nonce(entropy: &mut dyn Entropy, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    entropy.fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(NONCE_ALPHABET[usize::from(b & 63)]))
        .collect()
}

/// The entropy bytes that make [`random_nonce`] produce `nonce`, if it is over the alphabet.
pub(crate) fn nonce_script(nonce: &str) -> Option<Vec<u8>> {
    nonce
        .bytes()
        .map(|c| {
            NONCE_ALPHABET
                .iter()
                .position(|a| *a == c)
                .and_then(|i| u8::try_from(i).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_seed_dependent() {
        let draw = |seed| {
            let mut buf = [0u8; 21];
            SeededEntropy::new(seed).fill(&mut buf);
            buf
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert_ne!(draw(7), [0u8; 21]);
    }

    #[test]
    fn scripted_plays_back_then_reports_exhaustion() {
        let mut s = ScriptedEntropy::new(vec![1, 2, 3]);
        let mut buf = [9u8; 2];
        s.fill(&mut buf);
        assert_eq!(buf, [1, 2]);
        assert!(!s.exhausted());
        s.fill(&mut buf);
        assert_eq!(buf, [3, 0]);
        assert!(s.exhausted());
    }

    #[test]
    fn nonces_are_scriptable_and_printable() {
        let nonce = "e124695b-69a9-4de6-9c30-b51b3808c59e";
        let script = nonce_script(nonce).expect("nonce over the alphabet");
        assert_eq!(
            random_nonce(&mut ScriptedEntropy::new(script), nonce.len()),
            nonce
        );
        let drawn = random_nonce(&mut SeededEntropy::new(3), 32);
        assert_eq!(drawn.len(), 32);
        assert!(
            drawn
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(nonce_script("a,b"), None);
    }

    #[test]
    fn recording_keeps_each_draw() {
        let mut r = RecordingEntropy::new(ScriptedEntropy::new(vec![5, 6, 7]));
        let mut one = [0u8; 1];
        let mut two = [0u8; 2];
        r.fill(&mut one);
        r.fill(&mut two);
        assert_eq!(r.take_draws(), vec![vec![5], vec![6, 7]]);
    }
}
