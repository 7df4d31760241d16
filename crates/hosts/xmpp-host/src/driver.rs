//! [`Driver`]: the half of a host loop that does no I/O, shared by the blocking and the
//! `tokio` connections (and any other loop: copy the shape of either).
//!
//! It owns the machine ([`AnyStream`]: a client, a server, or either end of a XEP-0114
//! component stream), the clock, the queue of events the application has not taken yet and
//! the optional transcript [`Recorder`]. The I/O loop around it does four things:
//!
//! 1. after every input or command, drain [`next_action`](Driver::next_action) and carry out
//!    each [`Action`] in order: write the bytes, or run the TLS handshake and report it with
//!    [`tls_established`](Driver::tls_established); a failure of either is
//!    [`transport_closed`](Driver::transport_closed) (events are queued meanwhile);
//! 2. ask [`poll_event`](Driver::poll_event) what comes next: an event, the end, the
//!    caller's deadline, or [`Next::Read`] with how long to wait for the transport;
//! 3. feed what the transport gave to [`input`](Driver::input) (end of stream or a read
//!    error: [`transport_closed`](Driver::transport_closed)), or call
//!    [`timeout`](Driver::timeout) when the wait ran out;
//! 4. go back to 1.
//!
//! ```
//! use xmpp_host::driver::{Action, Driver, Next};
//! use xmpp_stream::{BareJid, ClientConfig, ClientStream, Instant, SeededEntropy, Transport};
//!
//! let config = ClientConfig::new(BareJid::new("juliet@im.example.com")?, "secret");
//! let mut driver = Driver::new(ClientStream::new(config, SeededEntropy::new(1)));
//! driver.start(Transport::Plain)?;
//! let mut wire = Vec::new();
//! while let Some(action) = driver.next_action() {
//!     match action {
//!         Action::Write(bytes) => wire.extend_from_slice(&bytes),
//!         Action::StartTls => unreachable!("no TLS before the server's features"),
//!         _ => {}
//!     }
//! }
//! assert!(String::from_utf8_lossy(&wire).contains("<stream:stream"));
//! // Nothing to report yet: read the socket, at most until the negotiation deadline.
//! let deadline = driver.now().saturating_add(std::time::Duration::from_secs(5));
//! assert!(matches!(driver.poll_event(deadline), Next::Read(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::Duration;

use minidom::Element;
use xmpp_stream::{
    AnyStream, BareJid, ChannelBinding, ClientStream, CloseReason, ComponentConfig,
    ComponentServerStream, ComponentStream, Event, FullJid, Instant, Output, ServerStream,
    Transport, UsageError,
};

use crate::record::Recorder;
use crate::{Clock, Error, OsEntropy};

/// What the machine needs the I/O loop to do, in order (from [`Driver::next_action`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write these bytes to the transport (TLS included once it is up). If the write fails,
    /// call [`Driver::transport_closed`].
    Write(Vec<u8>),
    /// Run the TLS handshake on the transport now, then call [`Driver::tls_established`] with
    /// its channel bindings, or [`Driver::transport_closed`] if it failed. The machine asks
    /// for nothing else until then.
    StartTls,
}

/// What comes next for a loop waiting for an event (from [`Driver::poll_event`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Next {
    /// An event for the application.
    Event(Event),
    /// The stream is over and every event was taken.
    Closed,
    /// The caller's deadline passed first.
    Expired,
    /// Read the transport for at most this long (possibly zero: the machine's timer is due),
    /// then [`Driver::input`] what arrived or [`Driver::timeout`] if nothing did.
    Read(Duration),
}

/// One stream machine with its clock, pending events and optional recorder: everything of a
/// connection except the transport. See the [module docs](self) for the loop around it.
pub struct Driver {
    machine: AnyStream,
    clock: Clock,
    events: VecDeque<Event>,
    /// Boxed: most connections record nothing, and this keeps them a pointer smaller.
    recorder: Option<Box<Recorder>>,
}

impl core::fmt::Debug for Driver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("machine", &self.machine)
            .field("events", &self.events.len())
            .field("recording", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver for `machine` (a [`ClientStream`], [`ServerStream`], [`ComponentStream`],
    /// [`ComponentServerStream`] or [`AnyStream`]), its clock starting now.
    pub fn new(machine: impl Into<AnyStream>) -> Self {
        Driver {
            machine: machine.into(),
            clock: Clock::new(),
            events: VecDeque::new(),
            recorder: None,
        }
    }

    /// The same, writing every input, output, command and the TLS switch to `recorder`.
    pub fn recorded(machine: impl Into<AnyStream>, recorder: Recorder) -> Self {
        Driver {
            recorder: Some(Box::new(recorder)),
            ..Driver::new(machine)
        }
    }

    // ----- getters -----

    /// The machine, for its getters.
    pub fn machine(&self) -> &AnyStream {
        &self.machine
    }

    /// The recorder, if this driver has one.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_deref()
    }

    /// Now, on the machine's clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Whether the stream is over (events may still be waiting).
    pub fn is_closed(&self) -> bool {
        self.machine.is_closed()
    }

    /// How long until the machine's next timer is due, if it has one.
    pub fn next_timer(&self) -> Option<Duration> {
        let now = self.clock.now();
        self.machine
            .poll_timeout()
            .map(|at| at.saturating_duration_since(now))
    }

    // ----- outputs -----

    /// The next thing the I/O loop must do, in order; events met on the way are queued for
    /// [`take_event`](Self::take_event). `None`: nothing until the next input or command.
    pub fn next_action(&mut self) -> Option<Action> {
        while let Some(output) = self.machine.poll_output() {
            if let Some(recorder) = &mut self.recorder {
                recorder.output(self.clock.now(), &output);
            }
            match output {
                Output::Transmit(bytes) => return Some(Action::Write(bytes)),
                Output::StartTls => return Some(Action::StartTls),
                Output::Event(event) => self.events.push_back(event),
                _ => {}
            }
        }
        None
    }

    /// The oldest event not taken yet.
    pub fn take_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// What a loop that wants the next event does now, given its `deadline`. Drain
    /// [`next_action`](Self::next_action) first.
    pub fn poll_event(&mut self, deadline: Instant) -> Next {
        if let Some(event) = self.events.pop_front() {
            return Next::Event(event);
        }
        if self.machine.is_closed() {
            return Next::Closed;
        }
        let now = self.clock.now();
        if now >= deadline {
            return Next::Expired;
        }
        let wake = self
            .machine
            .poll_timeout()
            .map_or(deadline, |at| at.min(deadline));
        Next::Read(wake.saturating_duration_since(now))
    }

    // ----- commands -----

    /// Open the stream on `transport` (with its channel bindings for direct TLS).
    pub fn start(&mut self, transport: Transport) -> Result<(), UsageError> {
        if let (Some(recorder), Transport::Tls(bindings)) = (&mut self.recorder, &transport) {
            recorder.tls(bindings);
        }
        let now = self.clock.now();
        self.machine.start(now, transport)
    }

    /// Send a stanza.
    pub fn send(&mut self, stanza: &Element) -> Result<(), UsageError> {
        let now = self.clock.now();
        if let Some(recorder) = &mut self.recorder {
            recorder.command(now, &format!("send {}", String::from(stanza)));
        }
        self.machine.send_stanza(now, stanza)
    }

    /// Begin the closing handshake, unless the stream is already over.
    pub fn close(&mut self) -> Result<(), UsageError> {
        if self.machine.is_closed() {
            return Ok(());
        }
        let now = self.clock.now();
        if let Some(recorder) = &mut self.recorder {
            recorder.command(now, "close");
        }
        self.machine.close(now)
    }

    // ----- inputs -----

    /// Bytes the transport gave. A protocol error in them comes back as the stream error to
    /// write and a `Closed` event, through [`next_action`](Self::next_action).
    pub fn input(&mut self, bytes: &[u8]) {
        let now = self.clock.now();
        if let Some(recorder) = &mut self.recorder {
            recorder.input(now, bytes);
        }
        let _ = self.machine.handle_input(now, bytes);
    }

    /// One whole WebSocket message (RFC 7395: one element) on a machine switched to
    /// WebSocket framing; on a TCP stream the same as [`input`](Self::input).
    pub fn message(&mut self, message: &[u8]) {
        let now = self.clock.now();
        if let Some(recorder) = &mut self.recorder {
            recorder.input(now, message);
        }
        let _ = self.machine.handle_message(now, message);
    }

    /// The wait [`Next::Read`] allowed ran out: fire the machine's due timers.
    pub fn timeout(&mut self) {
        let now = self.clock.now();
        self.machine.handle_timeout(now);
    }

    /// The TLS handshake [`Action::StartTls`] asked for is done, with these channel bindings.
    pub fn tls_established(&mut self, bindings: Vec<ChannelBinding>) {
        if let Some(recorder) = &mut self.recorder {
            recorder.tls(&bindings);
        }
        let now = self.clock.now();
        // The machine asked for TLS, so it expects this call.
        let _ = self.machine.tls_established(now, bindings);
    }

    /// The transport ended: end of stream, a failed read or write, a failed TLS handshake.
    pub fn transport_closed(&mut self) {
        let now = self.clock.now();
        if let Some(recorder) = &mut self.recorder {
            recorder.command(now, "transport-closed");
        }
        self.machine.transport_closed(now);
    }
}

/// A stream machine whose negotiation ends in one event, and what that event yields: what the
/// connections' `negotiate` returns, for every role of `xmpp_stream`.
///
/// | machine | event | [`Outcome`](Self::Outcome) |
/// |---|---|---|
/// | [`ClientStream`], [`ServerStream`] | [`Event::Negotiated`] | the bound [`FullJid`] |
/// | [`ComponentStream`], [`ComponentServerStream`] | [`Event::ComponentNegotiated`] | the component's domain, a [`BareJid`] |
///
/// Sealed: implemented for those four machines only.
pub trait Negotiates: Into<AnyStream> + sealed::Sealed {
    /// What a finished negotiation yields.
    type Outcome;

    /// The outcome, if `event` is the one that ends this machine's negotiation.
    fn outcome(event: Event) -> Option<Self::Outcome>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for xmpp_stream::ClientStream {}
    impl Sealed for xmpp_stream::ServerStream {}
    impl Sealed for xmpp_stream::ComponentStream {}
    impl Sealed for xmpp_stream::ComponentServerStream {}
}

impl Negotiates for ClientStream {
    type Outcome = FullJid;

    fn outcome(event: Event) -> Option<FullJid> {
        match event {
            Event::Negotiated { jid, .. } => Some(jid),
            _ => None,
        }
    }
}

impl Negotiates for ServerStream {
    type Outcome = FullJid;

    fn outcome(event: Event) -> Option<FullJid> {
        ClientStream::outcome(event)
    }
}

impl Negotiates for ComponentStream {
    type Outcome = BareJid;

    fn outcome(event: Event) -> Option<BareJid> {
        match event {
            Event::ComponentNegotiated { domain } => Some(domain),
            _ => None,
        }
    }
}

impl Negotiates for ComponentServerStream {
    type Outcome = BareJid;

    fn outcome(event: Event) -> Option<BareJid> {
        ComponentStream::outcome(event)
    }
}

/// A driver for a component with `config` and OS entropy, recording the session as a
/// transcript headed by `comment` (role `component`).
pub(crate) fn recorded_component(config: ComponentConfig, comment: &str) -> Driver {
    let (entropy, log) = OsEntropy::recording();
    let recorder = Recorder::component(comment, &config, log);
    Driver::recorded(ComponentStream::new(config, entropy), recorder)
}

// The connections' helpers take one event (or the end) at a time and say whether they are
// done, so the blocking and the async versions share everything but the `.await`.

/// `negotiate`: what the machine's negotiation yields, why the stream closed instead, or
/// read on.
pub(crate) fn negotiated<M: Negotiates>(
    event: Option<Event>,
) -> ControlFlow<Result<M::Outcome, Error>> {
    match event {
        Some(Event::Closed { reason }) => ControlFlow::Break(Err(Error::from(reason))),
        Some(event) => match M::outcome(event) {
            Some(outcome) => ControlFlow::Break(Ok(outcome)),
            None => ControlFlow::Continue(()),
        },
        None => ControlFlow::Break(Err(Error::from(CloseReason::TransportClosed))),
    }
}

/// `wait_stanza`: a stanza `accept` likes, why the stream closed, or read on.
pub(crate) fn accepted(
    event: Option<Event>,
    accept: impl Fn(&Element) -> bool,
) -> ControlFlow<Result<Element, Error>> {
    match event {
        Some(Event::Stanza(stanza)) if accept(&stanza) => ControlFlow::Break(Ok(stanza)),
        Some(Event::Closed { reason }) => ControlFlow::Break(Err(Error::from(reason))),
        Some(_) => ControlFlow::Continue(()),
        None => ControlFlow::Break(Err(Error::from(CloseReason::TransportClosed))),
    }
}

/// `close`: how the stream ended, or read on.
pub(crate) fn closed(
    event: Result<Option<Event>, Error>,
) -> ControlFlow<Result<CloseReason, Error>> {
    match event {
        Ok(Some(Event::Closed { reason })) => ControlFlow::Break(Ok(reason)),
        Ok(Some(_)) => ControlFlow::Continue(()),
        Ok(None) => ControlFlow::Break(Ok(CloseReason::TransportClosed)),
        Err(e) => ControlFlow::Break(Err(e)),
    }
}
