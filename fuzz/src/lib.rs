//! Shared by the fuzz targets: a counting global allocator and a per-input memory check.
//!
//! Every target installs [`Counting`] as its `#[global_allocator]` and runs its body through
//! [`check`], which asserts two properties for each input:
//!
//! - **no retention across inputs**: the live Rust heap after the input has been handled and
//!   everything it built dropped equals the live heap before it. A library that keeps
//!   something per input (a leak, a cache that grows, a queue nobody drains) fails here;
//! - **bounded peak**: the most Rust heap live at any moment while handling the input, above
//!   the baseline, stays under a bound the target derives from the limits it configured
//!   (stanza bound, output bound, ...) plus what it legitimately scales with the input length.
//!
//! One-time lazy initialisation (a `OnceLock` in the target or a library, a thread-local)
//! allocates on the first input that reaches it and keeps the memory for good. So an input
//! that retains memory is run a second time: the targets are deterministic, so a real
//! per-input retention retains again, while a one-time initialisation does not.
//!
//! Only allocations through Rust's global allocator are counted: libFuzzer's own C++
//! allocations are not, and its `-rss_limit_mb` / `-malloc_limit_mb` stay as a second line.
//! Set `FUZZ_ALLOC_STATS=1` to print each new record of peak and of peak per input byte (for
//! calibrating a bound); `FUZZ_ALLOC_SCALE=N` divides every bound by N (to prove that the
//! assertions can fail: `FUZZ_ALLOC_SCALE=4 cargo fuzz run <target> corpus/<target>`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes currently allocated through [`Counting`].
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Highest value of [`LIVE`] since the last reset by [`measure`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes live and the peak.
///
/// Install it in a fuzz target with
/// `#[global_allocator] static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;`.
pub struct Counting;

fn grow(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

fn shrink(bytes: usize) {
    LIVE.fetch_sub(bytes, Relaxed);
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is bookkeeping on two atomics, which neither
// allocates nor touches the memory handed out. Sizes are counted only when the call
// succeeded (non-null), and `dealloc`/`realloc` receive the layout the block was allocated
// with (a caller obligation of `GlobalAlloc`), so the counts stay exact.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                shrink(layout.size() - new_size);
            }
        }
        new
    }
}

/// What one run of a closure did to the Rust heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Most bytes live at once during the run, above the live bytes at its start.
    pub peak: usize,
    /// Live bytes at the end minus live bytes at the start (negative: freed older memory).
    pub retained: isize,
}

/// Runs `f` and reports its heap usage. Not reentrant (one global peak).
pub fn measure(f: impl FnOnce()) -> Usage {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    f();
    let after = LIVE.load(Relaxed);
    Usage {
        peak: PEAK.load(Relaxed).saturating_sub(base),
        retained: after.cast_signed().wrapping_sub(base.cast_signed()),
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "a fuzz harness, not a library: its knobs come from the environment of the run"
)]
fn env_number(name: &str) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn stats_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| env_number("FUZZ_ALLOC_STATS") != 0)
}

fn scale() -> usize {
    static SCALE: OnceLock<usize> = OnceLock::new();
    *SCALE.get_or_init(|| env_number("FUZZ_ALLOC_SCALE").max(1))
}

/// Records for `FUZZ_ALLOC_STATS`: highest peak, highest peak per input byte (x1000).
static RECORD_PEAK: AtomicUsize = AtomicUsize::new(0);
static RECORD_RATIO: AtomicUsize = AtomicUsize::new(0);

/// Runs one fuzz input (`run` must be deterministic and drop everything it builds) and
/// asserts that it retains no heap and that its peak heap stays within `bound` bytes.
/// `len` is the input length, only reported.
///
/// # Panics
///
/// When the input (run twice if the first run retained memory, see the module docs)
/// retains heap, or its peak exceeds `bound`: that is the finding libFuzzer reports.
pub fn check(len: usize, bound: usize, run: impl Fn()) {
    // Warm the environment lookups before measuring: they allocate once.
    let (stats, scale) = (stats_enabled(), scale());
    let mut usage = measure(&run);
    if usage.retained != 0 {
        // Perhaps one-time initialisation: a second run must come back to its baseline.
        usage = measure(&run);
        assert!(
            usage.retained == 0,
            "input of {len} bytes retained {} bytes of heap after it was dropped",
            usage.retained
        );
    }
    if stats {
        let ratio = usage.peak * 1000 / (len + 1);
        let peak_record = RECORD_PEAK.fetch_max(usage.peak, Relaxed) < usage.peak;
        let ratio_record = RECORD_RATIO.fetch_max(ratio, Relaxed) < ratio;
        if peak_record || ratio_record {
            eprintln!("alloc-stats: len={len} peak={} bound={bound}", usage.peak);
        }
    }
    let bound = bound / scale;
    assert!(
        usage.peak <= bound,
        "input of {len} bytes peaked at {} bytes of heap, over its bound of {bound}",
        usage.peak
    );
}

/// One step of a stateful stream target's input (`client_stream`, `server_stream`,
/// `component_server`): a length byte, then up to that many bytes (fewer at the end of the
/// input). See [`steps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    /// The length byte's top bit: advance the clock by a minute first (timers fire).
    pub tick: bool,
    /// A length byte of zero: the host reports the transport closed.
    pub transport_closed: bool,
    /// A length of 0x7f: the host sends a stanza first (targets that drive a host command).
    pub host_sends: bool,
    /// The peer's bytes to feed.
    pub bytes: &'a [u8],
}

/// Splits a stream target's input (after its selector byte) into [`Step`]s: each is one
/// length byte (low 7 bits: how many bytes follow; flags as documented on [`Step`]) and the
/// bytes.
pub fn steps(mut data: &[u8]) -> impl Iterator<Item = Step<'_>> {
    core::iter::from_fn(move || {
        let (&len, tail) = data.split_first()?;
        let take = usize::from(len & 0x7f).min(tail.len());
        let (bytes, rest) = tail.split_at(take);
        data = rest;
        Some(Step {
            tick: len & 0x80 != 0,
            transport_closed: len == 0,
            host_sends: len & 0x7f == 0x7f,
            bytes,
        })
    })
}

/// The bytes a stream machine writes, checked as its peer would read them: one well-formed
/// XML stream (per restart), nothing after its end. Shared by the stream targets that check
/// their output (`component_server`, `s2s_receiving`, `s2s_initiating`).
pub struct Wire {
    parser: xmpp_xml::StreamParser,
    ended: bool,
    max_stanza: usize,
}

impl Wire {
    /// A checker for output whose elements are at most `max_stanza` bytes.
    pub fn new(max_stanza: usize) -> Self {
        let mut limits = xmpp_xml::Limits::default();
        limits.max_stanza_bytes = max_stanza;
        Wire {
            parser: xmpp_xml::StreamParser::with_limits(limits),
            ended: false,
            max_stanza,
        }
    }

    /// The stream restarted (after STARTTLS or SASL success): the next bytes open a new one.
    pub fn restart(&mut self) {
        *self = Wire::new(self.max_stanza);
    }

    /// Feeds one `Transmit` of a machine that restarts its stream (STARTTLS, SASL success):
    /// a new stream begins at each XML declaration in `bytes`, wherever it is. Our streams
    /// open with one and nothing else we write holds `<?xml` (text and attribute values
    /// escape `<`), and a declaration need not start the chunk: `<success/>` and the
    /// restarted stream's header (with, say, its error) go out together when the peer's
    /// bytes after `</auth>` came in the same input.
    ///
    /// # Panics
    ///
    /// As [`feed`](Self::feed).
    pub fn feed_restarting(&mut self, mut bytes: &[u8], mut seen: impl FnMut(&xmpp_xml::Event)) {
        const DECLARATION: &[u8] = b"<?xml";
        loop {
            if bytes.starts_with(DECLARATION) {
                self.restart();
            }
            let next = bytes
                .windows(DECLARATION.len())
                .skip(1)
                .position(|window| window == DECLARATION)
                .map_or(bytes.len(), |at| at + 1);
            let (head, tail) = bytes.split_at(next);
            self.feed(head, &mut seen);
            if tail.is_empty() {
                return;
            }
            bytes = tail;
        }
    }

    /// Feeds `bytes`, passing each stream header and top-level element to `seen`.
    ///
    /// # Panics
    ///
    /// On malformed XML, or anything but whitespace after the stream's end.
    pub fn feed(&mut self, bytes: &[u8], mut seen: impl FnMut(&xmpp_xml::Event)) {
        self.parser.feed(bytes);
        loop {
            match self.parser.next_event() {
                Ok(Some(xmpp_xml::Event::StreamEnd)) => self.ended = true,
                Ok(Some(event)) => {
                    assert!(!self.ended, "output after our stream end");
                    seen(&event);
                }
                Ok(None) => break,
                Err(error) => panic!(
                    "the machine wrote malformed XML: {error}\nlast bytes: {}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        }
    }
}

/// How a stream target's machine ended: `Closed` seen, and the protocol error that is
/// returned again by every later input (errors are sticky).
#[derive(Default)]
pub struct Ending {
    /// `Event::Closed` was polled.
    pub closed: bool,
    /// The protocol error of the stream, once there is one.
    pub sticky: Option<xmpp_stream::ProtocolError>,
}

impl Ending {
    /// An `Event::Closed` with `reason` was polled.
    ///
    /// # Panics
    ///
    /// When its protocol error differs from the one inputs returned.
    pub fn closed(&mut self, reason: &xmpp_stream::CloseReason) {
        if let xmpp_stream::CloseReason::ProtocolError(error) = reason {
            match &self.sticky {
                Some(previous) => assert_eq!(previous, error),
                None => self.sticky = Some(error.clone()),
            }
        }
        self.closed = true;
    }

    /// The result of `handle_input`; `true` when it is an error (then the target drains and
    /// checks that the stream closed).
    ///
    /// # Panics
    ///
    /// When an earlier error is not returned again.
    pub fn input(&mut self, result: Result<(), xmpp_stream::ProtocolError>) -> bool {
        if let Some(previous) = &self.sticky {
            assert_eq!(result.as_ref().err(), Some(previous), "errors are sticky");
        }
        match result {
            Err(error) => {
                self.sticky = Some(error);
                true
            }
            Ok(()) => false,
        }
    }
}

/// What the authoritative server of `originating`, holding `secret`, answers to
/// `<db:verify/>` for a key `originating` gave `receiving` on stream `id` (XEP-0220 §2.1.2):
/// the answer the s2s targets' hosts give an `Event::DialbackVerify` when they check the key.
pub fn authoritative(
    secret: &[u8],
    originating: &xmpp_stream::BareJid,
    receiving: &xmpp_stream::BareJid,
    id: &xmpp_stream::dialback::StreamId,
    key: &xmpp_stream::dialback::DialbackKey,
) -> xmpp_stream::DialbackOutcome {
    use xmpp_stream::dialback::{DialbackSecret, Domain};
    let (Ok(originating), Ok(receiving)) = (
        Domain::try_from(originating.clone()),
        Domain::try_from(receiving.clone()),
    ) else {
        return xmpp_stream::DialbackOutcome::Invalid;
    };
    if DialbackSecret::new(secret).verify(&receiving, &originating, id, key) {
        xmpp_stream::DialbackOutcome::Valid
    } else {
        xmpp_stream::DialbackOutcome::Invalid
    }
}

/// Issue 17: `stanza`, sent on a `jabber:client` stream, as the parser in envelope mode hands
/// it out (`None` when it is not a stanza of that stream).
pub fn client_envelope(stanza: &str) -> Option<xmpp_xml::Envelope> {
    envelope_in(xmpp_xml::NS_CLIENT, stanza)
}

/// The envelope a stream whose content namespace is `namespace` (`jabber:server` for a peer
/// server, `jabber:component:accept` for a component) gives for `stanza`, if it is one.
pub fn envelope_in(namespace: &str, stanza: &str) -> Option<xmpp_xml::Envelope> {
    let mut parser = xmpp_xml::StreamParser::new();
    parser.set_envelopes(true);
    parser.feed(
        format!(
            "<stream:stream xmlns='{namespace}' xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        .as_bytes(),
    );
    parser.feed(stanza.as_bytes());
    parser.next_event().ok()??;
    match parser.next_event().ok()?? {
        xmpp_xml::Event::Stanza(envelope) => Some(envelope),
        _ => None,
    }
}

/// Issue 17: an envelope a server stream handed out must rebuild its element, and is
/// forwarded back to the client (`send_envelope`, splicing `from`), so the splice runs on
/// every accepted stanza and its bytes count in the output bound like any stanza sent.
pub fn forward_back(
    server: &mut xmpp_stream::ServerStream,
    now: xmpp_stream::Instant,
    envelope: &xmpp_xml::Envelope,
) {
    assert!(
        envelope.element().is_ok(),
        "an envelope that does not rebuild"
    );
    let _ = server.send_envelope(now, envelope, Some("juliet@im.example.com/balcony"), None);
}

/// Issue 17: the element of an envelope a stream handed out (`Event::StanzaEnvelope`),
/// checked against the envelope's decoded header. A stream gives envelopes only for
/// messages and presences (iqs stay elements: the stream may answer them) in its own content
/// namespace `namespace`; the element must rebuild, and its name, namespace, `from` and `to`
/// are the header's.
///
/// # Panics
///
/// When one of these does not hold.
pub fn envelope_element(envelope: &xmpp_xml::Envelope, namespace: &str) -> minidom::Element {
    assert_ne!(
        envelope.kind(),
        xmpp_xml::StanzaKind::Iq,
        "an iq handed out as an envelope"
    );
    assert_eq!(
        envelope.namespace(),
        namespace,
        "an envelope in another namespace"
    );
    let element = match envelope.element() {
        Ok(element) => element,
        Err(error) => panic!("an envelope that does not rebuild: {error}\n{envelope:?}"),
    };
    assert_eq!(element.name(), envelope.kind().name(), "{envelope:?}");
    assert_eq!(element.ns(), envelope.namespace(), "{envelope:?}");
    assert_eq!(element.attr("from"), envelope.from(), "{envelope:?}");
    assert_eq!(element.attr("to"), envelope.to(), "{envelope:?}");
    element
}

/// `envelope`'s element with `from` and `to` stamped, in `namespace`: what a host that took
/// the stanza as an element sends where another forwards the envelope with `send_envelope`
/// (as `AnyStream::send_envelope` does for streams without a splice). The element-mode twin
/// of a [`Trace`] comparison forwards this, so that both machines see the same host actions.
pub fn stamped(
    mut element: minidom::Element,
    namespace: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> minidom::Element {
    let stamp = xmpp_xml::Stamp {
        namespace,
        from,
        to,
        lang: None,
        standalone: false,
    };
    xmpp_xml::stamp_element(&mut element, &stamp);
    element
}

/// Issue 17's differential check for the stream targets with envelopes (`component_server`,
/// `s2s_receiving`, `s2s_initiating`): what one run of an input handed the host. A target
/// runs an input whose options turn envelopes on a second time with them off (same host
/// actions: it forwards each stanza back in both, the stamped element with `send_stanza` in
/// element mode) and compares the two with [`Trace::same_as`].
#[derive(Debug, Default)]
pub struct Trace {
    /// A hash of each stanza's serialization, in the order the host took them: the element
    /// of `Event::Stanza`, the element of `Event::StanzaEnvelope`.
    stanzas: Vec<u64>,
    /// The reason of `Event::Closed`, once polled.
    closed: Option<xmpp_stream::CloseReason>,
}

impl Trace {
    /// The host took a stanza (as an element, or an envelope's rebuilt element).
    pub fn stanza(&mut self, element: &minidom::Element) {
        use std::hash::{Hash, Hasher};
        let mut bytes = Vec::new();
        if element.write_to(&mut bytes).is_err() {
            bytes = format!("{element:?}").into_bytes();
        }
        // Fixed keys: the same element hashes the same in both runs.
        let mut hasher = std::hash::DefaultHasher::new();
        bytes.hash(&mut hasher);
        self.stanzas.push(hasher.finish());
    }

    /// The host polled `Event::Closed`.
    pub fn closed(&mut self, reason: &xmpp_stream::CloseReason) {
        self.closed = Some(reason.clone());
    }

    /// Whether the output bound ended the stream (`resource-constraint`).
    fn overflowed(&self) -> bool {
        matches!(
            &self.closed,
            Some(xmpp_stream::CloseReason::ProtocolError(error))
                if error.condition() == xmpp_xml::StreamErrorCondition::ResourceConstraint
        )
    }

    /// The envelope-mode run (`self`) handed the host the same stanzas, in the same order, and
    /// ended the same way as the element-mode run `elements`. A forwarded stanza is not the
    /// same bytes in both (a splice, a serialization): when the output bound ended either
    /// run, they agree up to where the shorter one stops.
    ///
    /// # Panics
    ///
    /// When they differ.
    pub fn same_as(&self, elements: &Trace) {
        if self.overflowed() || elements.overflowed() {
            let n = self.stanzas.len().min(elements.stanzas.len());
            assert_eq!(
                self.stanzas[..n],
                elements.stanzas[..n],
                "envelope and element mode handed out different stanzas (before an overflow)"
            );
        } else {
            assert_eq!(
                self.stanzas, elements.stanzas,
                "envelope and element mode handed out different stanzas"
            );
            assert_eq!(
                self.closed, elements.closed,
                "envelope and element mode ended differently"
            );
        }
    }
}
