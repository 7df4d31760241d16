//! [`Host`]: a table of machines, each with its pending bytes and events, driven through
//! plain Rust calls. The exported ABI ([`crate::Module`]) is a thin layer over this; native
//! code and tests can use it directly.

use core::fmt;

use minidom::Element;
use xmpp_stream::transcript::{Role, Transcript};
use xmpp_stream::{
    AnyStream, ChannelBinding, ChannelBindingType, ClientStream, Instant, Output, ProtocolError,
    SeededEntropy, ServerStream, Transport, UsageError,
};

use crate::{json, setup};

/// Most machines one host holds at once (a bound on what a script can make us allocate).
pub const MAX_MACHINES: usize = 1024;

/// Most bytes (transmissions) and events a machine may have waiting to be taken: a host that
/// never takes its output gets an error instead of unbounded growth.
pub const MAX_PENDING: usize = 4 << 20;

/// Identifies a machine in a [`Host`]. Never zero, so zero can mean "none" across the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(u32);

impl Handle {
    /// The number JavaScript sees.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// A handle from the number JavaScript passed (not checked until used).
    pub const fn from_raw(raw: u32) -> Self {
        Handle(raw)
    }
}

/// Why a host call failed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HostError {
    /// No machine has this handle (never created, or destroyed).
    BadHandle,
    /// A setup text, XML text, channel-binding kind or transcript was malformed.
    BadInput(String),
    /// The machine refused the command (the host's mistake; nothing changed).
    Usage(UsageError),
    /// The peer broke the protocol: the machine is closing, its events say how.
    Protocol(ProtocolError),
    /// A buffer bound was hit ([`MAX_MACHINES`], [`MAX_PENDING`] or the input staging bound).
    TooLarge,
}

impl HostError {
    /// The negative number the ABI returns for this error.
    pub const fn code(&self) -> i32 {
        match self {
            HostError::BadHandle => -1,
            HostError::BadInput(_) => -2,
            HostError::Usage(_) => -3,
            HostError::Protocol(_) => -4,
            HostError::TooLarge => -5,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::BadHandle => f.write_str("no machine has this handle"),
            HostError::BadInput(why) => write!(f, "bad input: {why}"),
            HostError::Usage(e) => write!(f, "usage error: {e}"),
            HostError::Protocol(e) => write!(f, "protocol error: {e}"),
            HostError::TooLarge => f.write_str("a buffer bound was reached"),
        }
    }
}

impl core::error::Error for HostError {}

struct Slot {
    /// Boxed: a machine is about 2 KiB, and the table keeps its slots (free ones too) small.
    machine: Box<AnyStream>,
    bytes: Vec<u8>,
    events: Vec<String>,
    /// Total length of `events`, kept for the [`MAX_PENDING`] bound.
    event_bytes: usize,
}

impl Slot {
    /// Move every output the machine has into the pending buffers. The machine emits nothing
    /// after `StartTls` until `tls_established`, so keeping bytes and events in two buffers
    /// cannot reorder a transmission across the TLS switch.
    fn drain(&mut self) -> Result<(), HostError> {
        while let Some(output) = self.machine.poll_output() {
            if let Output::Transmit(bytes) = &output {
                self.bytes.extend_from_slice(bytes);
            } else if let Some(event) = json::output(&output) {
                self.event_bytes += event.len() + 1;
                self.events.push(event);
            }
        }
        if self.bytes.len() > MAX_PENDING || self.event_bytes > MAX_PENDING {
            return Err(HostError::TooLarge);
        }
        Ok(())
    }
}

/// Machines addressed by [`Handle`], each with the bytes and events it produced that the
/// host has not taken yet.
///
/// Every input and command drains the machine's outputs right away: transmissions append to
/// its byte buffer ([`take_bytes`](Self::take_bytes)), `StartTls` and events to its event list
/// ([`take_events`](Self::take_events), JSON). The host's loop: call, take bytes (write them
/// to the peer), take events (act on `StartTls` by calling
/// [`tls_established`](Self::tls_established)), repeat.
#[derive(Default)]
pub struct Host {
    slots: Vec<Option<Slot>>,
}

impl Host {
    /// An empty host.
    pub const fn new() -> Self {
        Host { slots: Vec::new() }
    }

    fn insert(&mut self, machine: AnyStream) -> Result<Handle, HostError> {
        let slot = Slot {
            machine: Box::new(machine),
            bytes: Vec::new(),
            events: Vec::new(),
            event_bytes: 0,
        };
        let index = if let Some(free) = self.slots.iter().position(Option::is_none) {
            self.slots[free] = Some(slot);
            free
        } else if self.slots.len() < MAX_MACHINES {
            self.slots.push(Some(slot));
            self.slots.len() - 1
        } else {
            return Err(HostError::TooLarge);
        };
        // The index is below MAX_MACHINES, far below u32::MAX.
        u32::try_from(index + 1)
            .map(Handle)
            .map_err(|_| HostError::TooLarge)
    }

    fn slot(&mut self, handle: Handle) -> Result<&mut Slot, HostError> {
        let index = usize::try_from(handle.0)
            .ok()
            .and_then(|h| h.checked_sub(1))
            .ok_or(HostError::BadHandle)?;
        self.slots
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or(HostError::BadHandle)
    }

    /// Run `f` on the machine, then drain its outputs (even when `f` failed: a protocol error
    /// still leaves a stream error to send and a `Closed` event).
    fn with<T>(
        &mut self,
        handle: Handle,
        f: impl FnOnce(&mut AnyStream) -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        let slot = self.slot(handle)?;
        let result = f(&mut slot.machine);
        slot.drain()?;
        result
    }

    /// A client machine configured by `setup` (see [`crate::setup`]'s keys), its entropy
    /// seeded with `seed`.
    pub fn create_client(&mut self, seed: u64, setup: &str) -> Result<Handle, HostError> {
        let config = setup::client(setup).map_err(HostError::BadInput)?;
        let machine = ClientStream::new(config, SeededEntropy::new(seed));
        self.insert(machine.into())
    }

    /// A server machine with an in-memory account database, configured by `setup` (see
    /// [`crate::setup`]'s keys), its entropy seeded with `seed`.
    pub fn create_server(&mut self, seed: u64, setup: &str) -> Result<Handle, HostError> {
        let (config, backend) = setup::server(setup).map_err(HostError::BadInput)?;
        let machine = ServerStream::new(config, SeededEntropy::new(seed), backend);
        self.insert(machine.into())
    }

    /// Drop a machine; its handle becomes invalid (and may be reused).
    pub fn destroy(&mut self, handle: Handle) -> Result<(), HostError> {
        self.slot(handle)?;
        let index = (handle.0 - 1) as usize;
        self.slots[index] = None;
        Ok(())
    }

    /// Open the stream on a plain transport (STARTTLS follows if configured).
    pub fn start(&mut self, handle: Handle, now: Instant) -> Result<(), HostError> {
        self.with(handle, |m| {
            m.start(now, Transport::Plain).map_err(HostError::Usage)
        })
    }

    /// Open the stream on a transport that is already TLS (XEP-0368 direct TLS): STARTTLS is
    /// skipped; `binding` is the channel-binding data the TLS library produced (`None`: none).
    pub fn start_direct_tls(
        &mut self,
        handle: Handle,
        now: Instant,
        binding: Option<(ChannelBindingType, &[u8])>,
    ) -> Result<(), HostError> {
        let transport = Transport::Tls(bindings(binding));
        self.with(handle, |m| {
            m.start(now, transport).map_err(HostError::Usage)
        })
    }

    /// Bytes from the peer, in any chunking.
    pub fn feed(&mut self, handle: Handle, now: Instant, bytes: &[u8]) -> Result<(), HostError> {
        self.with(handle, |m| {
            m.handle_input(now, bytes).map_err(HostError::Protocol)
        })
    }

    /// Time passed: fire due timers.
    pub fn timeout(&mut self, handle: Handle, now: Instant) -> Result<(), HostError> {
        self.with(handle, |m| {
            m.handle_timeout(now);
            Ok(())
        })
    }

    /// When [`timeout`](Self::timeout) should next be called.
    pub fn poll_timeout(&mut self, handle: Handle) -> Result<Option<Instant>, HostError> {
        Ok(self.slot(handle)?.machine.poll_timeout())
    }

    /// The TLS handshake asked for by a `StartTls` event finished; `binding` is the channel
    /// binding data it produced (`None`: none).
    pub fn tls_established(
        &mut self,
        handle: Handle,
        now: Instant,
        binding: Option<(ChannelBindingType, &[u8])>,
    ) -> Result<(), HostError> {
        let bindings = bindings(binding);
        self.with(handle, |m| {
            m.tls_established(now, bindings).map_err(HostError::Usage)
        })
    }

    /// Send a stanza given as XML text (with its namespace, `jabber:client`).
    pub fn send(&mut self, handle: Handle, now: Instant, xml: &str) -> Result<(), HostError> {
        let stanza: Element = xml
            .parse()
            .map_err(|e| HostError::BadInput(format!("stanza XML: {e}")))?;
        self.with(handle, |m| {
            m.send_stanza(now, &stanza).map_err(HostError::Usage)
        })
    }

    /// Begin the closing handshake.
    pub fn close(&mut self, handle: Handle, now: Instant) -> Result<(), HostError> {
        self.with(handle, |m| m.close(now).map_err(HostError::Usage))
    }

    /// The transport ended (EOF or error).
    pub fn transport_closed(&mut self, handle: Handle, now: Instant) -> Result<(), HostError> {
        self.with(handle, |m| {
            m.transport_closed(now);
            Ok(())
        })
    }

    /// Whether the machine's stream is over.
    pub fn is_closed(&mut self, handle: Handle) -> Result<bool, HostError> {
        Ok(self.slot(handle)?.machine.is_closed())
    }

    /// The bytes to write to the peer, in order, since the last call.
    pub fn take_bytes(&mut self, handle: Handle) -> Result<Vec<u8>, HostError> {
        Ok(core::mem::take(&mut self.slot(handle)?.bytes))
    }

    /// The events since the last call as a JSON array of objects, each with `type` and
    /// `summary` (see the crate docs for the shapes).
    pub fn take_events(&mut self, handle: Handle) -> Result<String, HostError> {
        let slot = self.slot(handle)?;
        let events = core::mem::take(&mut slot.events);
        slot.event_bytes = 0;
        Ok(format!("[{}]", events.join(",")))
    }
}

fn bindings(binding: Option<(ChannelBindingType, &[u8])>) -> Vec<ChannelBinding> {
    binding
        .map(|(kind, data)| ChannelBinding::new(kind, data))
        .into_iter()
        .collect()
}

/// Replay a transcript (the `xmpp-stream` format) against a fresh machine of `role`,
/// checking every output. No [`Host`] state is involved.
pub fn replay(text: &str, role: Role) -> Result<(), HostError> {
    Transcript::parse(text)
        .and_then(|t| t.replay(role))
        .map_err(|e| HostError::BadInput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "jid=juliet@im.example.com\npassword=r0m30\nresource=balcony";
    const SERVER: &str = "domain=im.example.com\nuser=juliet r0m30\nmechanisms=SCRAM-SHA-256";

    #[test]
    fn handles_are_checked_and_reused() {
        let mut host = Host::new();
        assert_eq!(
            host.start(Handle::from_raw(0), Instant::ZERO),
            Err(HostError::BadHandle)
        );
        let a = host.create_client(1, CLIENT).unwrap();
        let b = host.create_server(2, SERVER).unwrap();
        assert_ne!(a, b);
        assert_ne!(a.get(), 0);
        host.destroy(a).unwrap();
        assert_eq!(host.take_bytes(a), Err(HostError::BadHandle));
        assert_eq!(host.destroy(a), Err(HostError::BadHandle));
        let c = host.create_client(3, CLIENT).unwrap();
        assert_eq!(c, a, "the freed slot is reused");
        assert!(host.take_events(b).is_ok());
    }

    #[test]
    fn bad_setups_and_stanzas_are_input_errors() {
        let mut host = Host::new();
        assert!(matches!(
            host.create_client(1, "password=x"),
            Err(HostError::BadInput(_))
        ));
        let c = host.create_client(1, CLIENT).unwrap();
        let err = host.send(c, Instant::ZERO, "<message").unwrap_err();
        assert_eq!(err.code(), -2);
        let err = host
            .send(c, Instant::ZERO, "<nonza xmlns='urn:x'/>")
            .unwrap_err();
        assert!(matches!(err, HostError::Usage(_)), "{err}");
    }

    #[test]
    fn start_transmits_a_header_and_a_second_start_is_a_usage_error() {
        let mut host = Host::new();
        let c = host.create_client(1, CLIENT).unwrap();
        host.start(c, Instant::ZERO).unwrap();
        let bytes = String::from_utf8(host.take_bytes(c).unwrap()).unwrap();
        assert!(bytes.contains("<stream:stream"), "{bytes}");
        assert!(bytes.contains("to='im.example.com'") || bytes.contains("to=\"im.example.com\""));
        assert!(host.take_bytes(c).unwrap().is_empty(), "taking empties");
        assert!(matches!(
            host.start(c, Instant::ZERO),
            Err(HostError::Usage(_))
        ));
        assert!(
            host.poll_timeout(c).unwrap().is_some(),
            "negotiation deadline"
        );
    }

    #[test]
    fn garbage_is_a_protocol_error_and_the_stream_closes() {
        let mut host = Host::new();
        let s = host.create_server(2, SERVER).unwrap();
        host.start(s, Instant::ZERO).unwrap();
        let err = host.feed(s, Instant::ZERO, b"<<<not xml").unwrap_err();
        assert_eq!(err.code(), -4, "{err}");
        let bytes = String::from_utf8(host.take_bytes(s).unwrap()).unwrap();
        assert!(bytes.contains("stream:error"), "{bytes}");
        let events = host.take_events(s).unwrap();
        assert!(events.contains(r#""type":"Closed""#), "{events}");
        assert!(host.is_closed(s).unwrap());
    }
}
