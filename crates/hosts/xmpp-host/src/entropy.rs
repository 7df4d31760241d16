//! Entropy for real hosts: the operating system's CSPRNG, optionally recorded for transcripts.

use std::sync::{Arc, Mutex, PoisonError};

use ring::rand::{SecureRandom, SystemRandom};
use xmpp_stream::Entropy;

/// The operating system's CSPRNG (through `ring`). Optionally keeps a copy of every byte drawn
/// (see [`OsEntropy::recording`]) so a session can be written as a replayable transcript.
#[derive(Clone, Debug)]
pub struct OsEntropy {
    rng: SystemRandom,
    log: Option<Arc<Mutex<Vec<u8>>>>,
}

impl Default for OsEntropy {
    fn default() -> Self {
        OsEntropy::new()
    }
}

impl OsEntropy {
    /// Fresh randomness, not recorded.
    pub fn new() -> Self {
        OsEntropy {
            rng: SystemRandom::new(),
            log: None,
        }
    }

    /// Fresh randomness, and a handle that sees every byte drawn, in order (the machine owns
    /// the entropy source, so the host keeps this handle to read the draws afterwards).
    pub fn recording() -> (Self, Arc<Mutex<Vec<u8>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let entropy = OsEntropy {
            rng: SystemRandom::new(),
            log: Some(log.clone()),
        };
        (entropy, log)
    }
}

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // `ring` fails only if the OS has no randomness at all: nothing sensible can go on.
        #[allow(clippy::expect_used)]
        self.rng
            .fill(buf)
            .expect("the operating system's random number generator failed");
        if let Some(log) = &self.log {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
        }
    }
}
