//! What the sessions of one run share: options, the TLS configuration, the phase they follow,
//! counters and samples. The run creates it; sessions only read options and record.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::{Notify, Semaphore, watch};

use crate::options::Options;

/// Round-trip samples kept (the rest are counted, not stored).
const MAX_SAMPLES: usize = 1_000_000;

/// Phases every session follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Login,
    Idle,
    Messages,
    Stop,
}

/// What happened, counted across sessions.
#[derive(Default)]
pub(crate) struct Counters {
    pub login_failed: AtomicU64,
    pub logged_in: AtomicU64,
    pub dropped: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Messages that came back as errors.
    pub bounced: AtomicU64,
}

/// What the run reports beyond counts.
#[derive(Default)]
pub(crate) struct Samples {
    pub mechanism: Option<String>,
    pub rtt_us: Vec<u64>,
    pub last_login: Duration,
    /// The first few bounces: their error condition and body, for the report.
    pub bounces: Vec<String>,
}

/// A server the sessions log in to: in federation mode, even sessions use the first side and
/// odd ones the second; otherwise both sides are the one server.
pub(crate) struct Side {
    pub addr: SocketAddr,
    pub tls: Arc<rustls::ClientConfig>,
    /// The domain of its accounts (and its TLS server name).
    pub domain: String,
}

/// State the sessions share.
pub(crate) struct Shared {
    pub options: Options,
    pub sides: [Side; 2],
    /// Federation mode: the two sides are two servers.
    pub federated: bool,
    pub epoch: StdInstant,
    pub phase: watch::Sender<Phase>,
    pub login_permits: Arc<Semaphore>,
    pub logins_settled: Notify,
    pub stats: Counters,
    pub samples: Mutex<Samples>,
}

impl Shared {
    /// The server session `index` logs in to.
    pub(crate) fn side(&self, index: usize) -> &Side {
        &self.sides[index % 2]
    }

    pub(crate) fn record_login(&self, _took: Duration) {
        self.stats.logged_in.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut samples) = self.samples.lock() {
            samples.last_login = self.epoch.elapsed();
        }
    }

    pub(crate) fn record_mechanism(&self, name: &str) {
        if let Ok(mut samples) = self.samples.lock()
            && samples.mechanism.is_none()
        {
            samples.mechanism = Some(name.to_owned());
        }
    }

    pub(crate) fn record_bounce(&self, stanza: &minidom::Element) {
        const KEPT: usize = 3;
        if let Ok(mut samples) = self.samples.lock()
            && samples.bounces.len() < KEPT
        {
            let condition = stanza
                .get_child("error", "jabber:client")
                .and_then(|e| e.children().next())
                .map_or_else(|| "?".to_owned(), |c| c.name().to_owned());
            let body = stanza
                .get_child("body", "jabber:client")
                .map(minidom::Element::text)
                .unwrap_or_default();
            samples.bounces.push(format!(
                "bounce from {}: {condition} (body {body:?})",
                stanza.attr("from").unwrap_or("?")
            ));
        }
    }

    pub(crate) fn record_rtt(&self, micros: u64) {
        if let Ok(mut samples) = self.samples.lock()
            && samples.rtt_us.len() < MAX_SAMPLES
        {
            samples.rtt_us.push(micros);
        }
    }
}
