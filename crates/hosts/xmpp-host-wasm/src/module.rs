//! [`Module`]: the ABI's state and logic, in safe Rust. The exported functions in
//! [`crate::abi`] are one-line wrappers over these methods, so native tests drive exactly
//! what JavaScript drives.
//!
//! Data crosses the boundary through two buffers the module owns, never through pointers the
//! caller owns: the caller asks for an input buffer of `len` bytes ([`Module::input_buffer`]),
//! writes into it, then calls a function that names `len`; results longer than a number land
//! in the output buffer ([`Module::output`]) and the call returns their length.

use xmpp_stream::transcript::Role;
use xmpp_stream::{ChannelBindingType, Instant};

use crate::host::{Handle, Host, HostError};

/// The largest input buffer a caller may ask for (one feed, setup, stanza or transcript).
pub const MAX_INPUT: usize = 1 << 20;

/// The host table plus the two transfer buffers and the last error's text.
#[derive(Default)]
pub struct Module {
    host: Host,
    input: Vec<u8>,
    output: Vec<u8>,
    last_error: String,
}

fn staged(input: &[u8], len: u32) -> Result<&[u8], HostError> {
    usize::try_from(len)
        .ok()
        .and_then(|len| input.get(..len))
        .ok_or_else(|| HostError::BadInput("length exceeds the input buffer".to_owned()))
}

fn staged_str(input: &[u8], len: u32) -> Result<&str, HostError> {
    core::str::from_utf8(staged(input, len)?)
        .map_err(|_| HostError::BadInput("text is not UTF-8".to_owned()))
}

fn binding_kind(kind: u32) -> Result<Option<ChannelBindingType>, HostError> {
    match kind {
        0 => Ok(None),
        1 => Ok(Some(ChannelBindingType::TlsExporter)),
        2 => Ok(Some(ChannelBindingType::TlsServerEndPoint)),
        3 => Ok(Some(ChannelBindingType::TlsUnique)),
        _ => Err(HostError::BadInput(format!(
            "channel-binding kind {kind} (0 none, 1 tls-exporter, 2 tls-server-end-point, 3 tls-unique)"
        ))),
    }
}

impl Module {
    /// An empty module.
    pub const fn new() -> Self {
        Module {
            host: Host::new(),
            input: Vec::new(),
            output: Vec::new(),
            last_error: String::new(),
        }
    }

    /// The host table, for native callers that prefer slices to the staging buffers.
    pub fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    /// Make the input buffer exactly `len` bytes (zeroed) and return it; `None` above
    /// [`MAX_INPUT`].
    pub fn input_buffer(&mut self, len: u32) -> Option<&mut [u8]> {
        let len = usize::try_from(len).ok().filter(|len| *len <= MAX_INPUT)?;
        self.input.clear();
        self.input.resize(len, 0);
        Some(&mut self.input)
    }

    /// The output buffer: what the last `take_*`, `last_error` call put there.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Turn a result into the ABI's number, remembering the error's text.
    fn report(&mut self, result: Result<i32, HostError>) -> i32 {
        match result {
            Ok(n) => n,
            Err(e) => {
                let code = e.code();
                self.last_error = e.to_string();
                code
            }
        }
    }

    fn put(&mut self, bytes: Vec<u8>) -> Result<i32, HostError> {
        let len = i32::try_from(bytes.len()).map_err(|_| HostError::TooLarge)?;
        self.output = bytes;
        Ok(len)
    }

    fn handle(result: Result<Handle, HostError>) -> Result<i32, HostError> {
        result.and_then(|h| i32::try_from(h.get()).map_err(|_| HostError::TooLarge))
    }

    /// A client from the `len`-byte setup text in the input buffer; its handle, or negative.
    pub fn client_new(&mut self, seed: u64, len: u32) -> i32 {
        let result = staged_str(&self.input, len)
            .and_then(|setup| Self::handle(self.host.create_client(seed, setup)));
        self.report(result)
    }

    /// A server from the `len`-byte setup text in the input buffer; its handle, or negative.
    pub fn server_new(&mut self, seed: u64, len: u32) -> i32 {
        let result = staged_str(&self.input, len)
            .and_then(|setup| Self::handle(self.host.create_server(seed, setup)));
        self.report(result)
    }

    /// Drop a machine. 0 or negative.
    pub fn destroy(&mut self, handle: u32) -> i32 {
        let result = self.host.destroy(Handle::from_raw(handle)).map(|()| 0);
        self.report(result)
    }

    /// Open the stream. 0 or negative.
    pub fn start(&mut self, handle: u32, now: u64) -> i32 {
        let result = self
            .host
            .start(Handle::from_raw(handle), Instant::from_millis(now))
            .map(|()| 0);
        self.report(result)
    }

    /// Open the stream on a transport that is already TLS (direct TLS), with the binding as
    /// for [`tls_established`](Self::tls_established). 0 or negative.
    pub fn start_direct_tls(&mut self, handle: u32, now: u64, kind: u32, len: u32) -> i32 {
        let result = binding_kind(kind).and_then(|kind| {
            let data = staged(&self.input, len)?;
            self.host
                .start_direct_tls(
                    Handle::from_raw(handle),
                    Instant::from_millis(now),
                    kind.map(|k| (k, data)),
                )
                .map(|()| 0)
        });
        self.report(result)
    }

    /// Feed the first `len` bytes of the input buffer. 0 or negative (-4: the peer broke the
    /// protocol; take bytes and events to send the stream error and see `Closed`).
    pub fn feed(&mut self, handle: u32, now: u64, len: u32) -> i32 {
        let result = staged(&self.input, len).and_then(|bytes| {
            self.host
                .feed(Handle::from_raw(handle), Instant::from_millis(now), bytes)
                .map(|()| 0)
        });
        self.report(result)
    }

    /// Fire due timers. 0 or negative.
    pub fn timeout(&mut self, handle: u32, now: u64) -> i32 {
        let result = self
            .host
            .timeout(Handle::from_raw(handle), Instant::from_millis(now))
            .map(|()| 0);
        self.report(result)
    }

    /// The next deadline in milliseconds; -1 for none (or a bad handle, see `last_error`).
    pub fn poll_timeout(&mut self, handle: u32) -> i64 {
        match self.host.poll_timeout(Handle::from_raw(handle)) {
            Ok(Some(at)) => i64::try_from(at.as_millis()).unwrap_or(i64::MAX),
            Ok(None) => -1,
            Err(e) => {
                self.last_error = e.to_string();
                -1
            }
        }
    }

    /// TLS is up: `kind` 0 (no binding), 1 `tls-exporter`, 2 `tls-server-end-point`, 3
    /// `tls-unique`, with the binding data in the first `len` bytes of the input buffer.
    pub fn tls_established(&mut self, handle: u32, now: u64, kind: u32, len: u32) -> i32 {
        let result = binding_kind(kind).and_then(|kind| {
            let data = staged(&self.input, len)?;
            self.host
                .tls_established(
                    Handle::from_raw(handle),
                    Instant::from_millis(now),
                    kind.map(|k| (k, data)),
                )
                .map(|()| 0)
        });
        self.report(result)
    }

    /// Send the stanza whose XML text is the first `len` bytes of the input buffer.
    pub fn send(&mut self, handle: u32, now: u64, len: u32) -> i32 {
        let result = staged_str(&self.input, len).and_then(|xml| {
            self.host
                .send(Handle::from_raw(handle), Instant::from_millis(now), xml)
                .map(|()| 0)
        });
        self.report(result)
    }

    /// Begin the closing handshake. 0 or negative.
    pub fn close(&mut self, handle: u32, now: u64) -> i32 {
        let result = self
            .host
            .close(Handle::from_raw(handle), Instant::from_millis(now))
            .map(|()| 0);
        self.report(result)
    }

    /// The transport ended. 0 or negative.
    pub fn transport_closed(&mut self, handle: u32, now: u64) -> i32 {
        let result = self
            .host
            .transport_closed(Handle::from_raw(handle), Instant::from_millis(now))
            .map(|()| 0);
        self.report(result)
    }

    /// 1 if the stream is over, 0 if not, negative on a bad handle.
    pub fn is_closed(&mut self, handle: u32) -> i32 {
        let result = self.host.is_closed(Handle::from_raw(handle)).map(i32::from);
        self.report(result)
    }

    /// Move the pending transmissions into the output buffer; their length, or negative.
    pub fn take_bytes(&mut self, handle: u32) -> i32 {
        let result = self
            .host
            .take_bytes(Handle::from_raw(handle))
            .and_then(|bytes| self.put(bytes));
        self.report(result)
    }

    /// Move the pending events (a JSON array) into the output buffer; its length, or negative.
    pub fn take_events(&mut self, handle: u32) -> i32 {
        let result = self
            .host
            .take_events(Handle::from_raw(handle))
            .and_then(|json| self.put(json.into_bytes()));
        self.report(result)
    }

    /// Copy the last error's text into the output buffer; its length.
    pub fn last_error(&mut self) -> i32 {
        let text = self.last_error.clone().into_bytes();
        let result = self.put(text);
        self.report(result)
    }

    /// Replay the `len`-byte transcript in the input buffer as `role` (0 client, 1 server).
    /// 0 when every output matched, negative with the mismatch in `last_error`.
    pub fn replay(&mut self, role: u32, len: u32) -> i32 {
        let role = match role {
            0 => Ok(Role::Client),
            1 => Ok(Role::Server),
            _ => Err(HostError::BadInput(format!(
                "role {role} (0 client, 1 server)"
            ))),
        };
        let result = role.and_then(|role| {
            let text = staged_str(&self.input, len)?;
            crate::host::replay(text, role).map(|()| 0)
        });
        self.report(result)
    }
}
