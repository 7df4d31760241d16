//! The blocking driver: `std::net::TcpStream` + `rustls`, one thread per connection.
//!
//! The loop is the one every host runs: feed what the socket gives to `handle_input`, drain
//! `poll_output` (write `Transmit`s in order, run the TLS handshake on `StartTls` and report
//! the channel bindings with `tls_established`, hand `Event`s to the application), and never
//! block longer than `poll_timeout` says.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use xmpp_stream::{
    ClientConfig, ClientStream, CloseReason, Entropy, Event, FullJid, Instant, Output,
    ServerStream, Transport,
};

use crate::machine::Machine;
use crate::record::Recorder;
use crate::{Clock, Error, OsEntropy, tls};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how a client connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The server's address (for the interop tests always on 127.0.0.1).
    pub addr: SocketAddr,
    /// The name the certificate must carry (and SNI): normally the JID's domain.
    pub server_name: String,
    /// XEP-0368 direct TLS: TLS first, no STARTTLS.
    pub direct_tls: bool,
    /// The `rustls` client configuration ([`tls::client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// How long to wait for the TCP connection and the TLS handshake.
    pub connect_timeout: Duration,
}

impl ClientOptions {
    /// Options for `addr`, verifying the certificate for `server_name`, STARTTLS.
    pub fn new(addr: SocketAddr, server_name: &str, tls: Arc<rustls::ClientConfig>) -> Self {
        ClientOptions {
            addr,
            server_name: server_name.to_owned(),
            direct_tls: false,
            tls,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// How this side runs TLS when the machine asks for it.
enum TlsRole {
    Client {
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    },
    Server {
        config: Arc<rustls::ServerConfig>,
        certificate: CertificateDer<'static>,
    },
}

/// The transport, before and after TLS.
enum Io {
    Plain(TcpStream),
    Client(Box<StreamOwned<ClientConnection, TcpStream>>),
    Server(Box<StreamOwned<ServerConnection, TcpStream>>),
    Gone,
}

impl Io {
    fn socket(&self) -> Option<&TcpStream> {
        match self {
            Io::Plain(s) => Some(s),
            Io::Client(s) => Some(&s.sock),
            Io::Server(s) => Some(&s.sock),
            Io::Gone => None,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Client(s) => s.read(buf),
            Io::Server(s) => s.read(buf),
            Io::Gone => Ok(0),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(bytes),
            Io::Client(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Io::Server(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Io::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }

    /// TLS close_notify (if TLS is up), then TCP shutdown.
    fn shutdown(&mut self) {
        match self {
            Io::Client(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            Io::Server(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            Io::Plain(_) | Io::Gone => {}
        }
        if let Some(socket) = self.socket() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        *self = Io::Gone;
    }
}

/// One stream over one TCP connection: a machine ([`ClientStream`] or [`ServerStream`]) and
/// its socket. Events are queued; read them with [`next_event`](Self::next_event).
pub struct Connection<M> {
    machine: M,
    io: Io,
    tls: TlsRole,
    clock: Clock,
    events: VecDeque<Event>,
    recorder: Option<Recorder>,
}

impl<M> core::fmt::Debug for Connection<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// Run a `rustls` handshake to completion on a blocking socket.
fn handshake<C, D>(stream: &mut StreamOwned<C, TcpStream>) -> Result<(), Error>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(())
}

impl Connection<ClientStream> {
    /// Connect, run direct TLS if asked, and start the client. Negotiation proceeds as
    /// [`negotiate`](Self::negotiate) or [`next_event`](Self::next_event) read the socket.
    pub fn connect(
        options: &ClientOptions,
        config: ClientConfig,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        Self::connect_inner(options, ClientStream::new(config, entropy), None)
    }

    /// [`connect`](Self::connect) with OS entropy, recording the session as a transcript
    /// (read it with [`transcript`](Self::transcript)). `comment` heads the file.
    pub fn connect_recorded(
        options: &ClientOptions,
        config: ClientConfig,
        comment: &str,
    ) -> Result<Self, Error> {
        let (entropy, log) = OsEntropy::recording();
        let recorder = Recorder::new(comment, &config, options.direct_tls, log);
        Self::connect_inner(options, ClientStream::new(config, entropy), Some(recorder))
    }

    fn connect_inner(
        options: &ClientOptions,
        machine: ClientStream,
        recorder: Option<Recorder>,
    ) -> Result<Self, Error> {
        let socket = TcpStream::connect_timeout(&options.addr, options.connect_timeout)?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(options.connect_timeout))?;
        let name = tls::server_name(&options.server_name)?;
        let mut connection = Connection {
            machine,
            io: Io::Plain(socket),
            tls: TlsRole::Client {
                config: options.tls.clone(),
                name,
            },
            clock: Clock::new(),
            events: VecDeque::new(),
            recorder,
        };
        let transport = if options.direct_tls {
            Transport::Tls(connection.start_tls()?)
        } else {
            Transport::Plain
        };
        let now = connection.clock.now();
        connection.machine.start(now, transport)?;
        connection.pump();
        Ok(connection)
    }

    /// Read until the stream is negotiated (bound) and return the full JID, or the reason it
    /// closed instead.
    pub fn negotiate(&mut self, timeout: Duration) -> Result<FullJid, Error> {
        loop {
            match self.next_event(timeout)? {
                Some(Event::Negotiated { jid, .. }) => return Ok(jid),
                Some(Event::Closed { reason }) => return Err(Error::from(reason)),
                Some(_) => {}
                None => return Err(Error::from(CloseReason::TransportClosed)),
            }
        }
    }

    /// The transcript recorded so far (only for [`connect_recorded`](Self::connect_recorded)).
    pub fn transcript(&self) -> Option<String> {
        self.recorder.as_ref().map(Recorder::finish)
    }
}

impl Connection<ServerStream> {
    /// Serve one accepted connection. With `direct_tls` the TLS handshake runs first;
    /// otherwise the machine asks for it after `<proceed/>`. `certificate` is the leaf
    /// certificate of `tls` (for `tls-server-end-point`).
    pub fn accept(
        socket: TcpStream,
        machine: ServerStream,
        tls: Arc<rustls::ServerConfig>,
        certificate: CertificateDer<'static>,
        direct_tls: bool,
    ) -> Result<Self, Error> {
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut connection = Connection {
            machine,
            io: Io::Plain(socket),
            tls: TlsRole::Server {
                config: tls,
                certificate,
            },
            clock: Clock::new(),
            events: VecDeque::new(),
            recorder: None,
        };
        let transport = if direct_tls {
            Transport::Tls(connection.start_tls()?)
        } else {
            Transport::Plain
        };
        let now = connection.clock.now();
        connection.machine.start(now, transport)?;
        connection.pump();
        Ok(connection)
    }
}

impl<M: Machine> Connection<M> {
    /// The machine, for its getters.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// Send a stanza (queued by the machine until negotiation completes).
    pub fn send(&mut self, stanza: &Element) -> Result<(), Error> {
        let now = self.clock.now();
        if let Some(recorder) = &mut self.recorder {
            recorder.command(now, &format!("send {}", String::from(stanza)));
        }
        self.machine.send_stanza(now, stanza)?;
        self.pump();
        Ok(())
    }

    /// The next event, reading the socket as needed for at most `timeout`. `Ok(None)` once
    /// the stream is closed and every event was taken.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, Error> {
        let deadline = self.clock.now().saturating_add(timeout);
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if self.machine.is_closed() {
                return Ok(None);
            }
            if self.clock.now() >= deadline {
                return Err(Error::Timeout);
            }
            self.read_once(deadline)?;
        }
    }

    /// Wait for a stanza `accept` likes, discarding other stanzas and events; a `Closed`
    /// event on the way is an error.
    pub fn wait_stanza(
        &mut self,
        timeout: Duration,
        accept: impl Fn(&Element) -> bool,
    ) -> Result<Element, Error> {
        let deadline = self.clock.now().saturating_add(timeout);
        loop {
            let left = deadline.saturating_duration_since(self.clock.now());
            match self.next_event(left)? {
                Some(Event::Stanza(stanza)) if accept(&stanza) => return Ok(stanza),
                Some(Event::Closed { reason }) => return Err(Error::from(reason)),
                Some(_) => {}
                None => return Err(Error::from(CloseReason::TransportClosed)),
            }
        }
    }

    /// Close the stream, wait for the peer's close (at most `timeout`), then close TLS and
    /// the socket. Returns how the stream ended.
    pub fn close(&mut self, timeout: Duration) -> Result<CloseReason, Error> {
        let now = self.clock.now();
        if let Some(recorder) = &mut self.recorder {
            recorder.command(now, "close");
        }
        if !self.machine.is_closed() {
            self.machine.close(now)?;
            self.pump();
        }
        let result = loop {
            match self.next_event(timeout) {
                Ok(Some(Event::Closed { reason })) => break Ok(reason),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(CloseReason::TransportClosed),
                Err(e) => break Err(e),
            }
        };
        self.io.shutdown();
        result
    }

    /// One read (bounded by `deadline` and the machine's next timer), fed to the machine.
    fn read_once(&mut self, deadline: Instant) -> Result<(), Error> {
        let now = self.clock.now();
        let wake = self
            .machine
            .poll_timeout()
            .map_or(deadline, |t| t.min(deadline));
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        let Some(socket) = self.io.socket() else {
            let now = self.clock.now();
            self.machine.transport_closed(now);
            self.pump();
            return Ok(());
        };
        socket.set_read_timeout(Some(wait))?;
        let mut buf = [0u8; 16 * 1024];
        let read = self.io.read(&mut buf);
        let now = self.clock.now();
        match read {
            Ok(0) => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.command(now, "transport-closed");
                }
                self.io = Io::Gone;
                self.machine.transport_closed(now);
            }
            Ok(n) => self.feed(now, &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.machine.handle_timeout(now);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.command(now, "transport-closed");
                }
                self.io = Io::Gone;
                self.machine.transport_closed(now);
            }
        }
        self.pump();
        Ok(())
    }

    fn feed(&mut self, now: Instant, bytes: &[u8]) {
        if let Some(recorder) = &mut self.recorder {
            recorder.input(now, bytes);
        }
        // A protocol error is reported as a `Closed` event through the output queue.
        let _ = self.machine.handle_input(now, bytes);
    }

    /// Drain the machine's outputs, in order.
    fn pump(&mut self) {
        while let Some(output) = self.machine.poll_output() {
            let now = self.clock.now();
            if let Some(recorder) = &mut self.recorder {
                recorder.output(now, &output);
            }
            match output {
                Output::Transmit(bytes) => self.transmit(now, &bytes),
                Output::StartTls => self.upgrade(now),
                Output::Event(event) => self.events.push_back(event),
                _ => {}
            }
        }
    }

    /// Write one `Transmit`; a failed write ends the transport.
    fn transmit(&mut self, now: Instant, bytes: &[u8]) {
        if self.io.write_all(bytes).is_err() {
            self.io = Io::Gone;
            self.machine.transport_closed(now);
        }
    }

    /// The machine asked for TLS: run it and report the bindings; a failure ends the transport.
    fn upgrade(&mut self, now: Instant) {
        if let Ok(bindings) = self.start_tls() {
            let now = self.clock.now();
            // The machine asked for TLS, so it expects this call.
            let _ = self.machine.tls_established(now, bindings);
        } else {
            self.io = Io::Gone;
            self.machine.transport_closed(now);
        }
    }

    /// Wrap the socket in TLS, run the handshake and return the channel bindings.
    fn start_tls(&mut self) -> Result<Vec<xmpp_stream::ChannelBinding>, Error> {
        let Io::Plain(socket) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(Error::Config("TLS is already running".to_owned()));
        };
        // The last read may have left a short timeout (the machine's next timer): give the
        // handshake its own bound.
        socket.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let bindings = match &self.tls {
            TlsRole::Client { config, name } => {
                let conn = ClientConnection::new(config.clone(), name.clone())?;
                let mut stream = StreamOwned::new(conn, socket);
                handshake(&mut stream)?;
                let peer = tls::peer_certificate(&stream.conn);
                let bindings = tls::channel_bindings(&stream.conn, peer.as_ref());
                self.io = Io::Client(Box::new(stream));
                bindings
            }
            TlsRole::Server {
                config,
                certificate,
            } => {
                let conn = ServerConnection::new(config.clone())?;
                let mut stream = StreamOwned::new(conn, socket);
                handshake(&mut stream)?;
                let bindings = tls::channel_bindings(&stream.conn, Some(certificate));
                self.io = Io::Server(Box::new(stream));
                bindings
            }
        };
        if let Some(recorder) = &mut self.recorder {
            recorder.tls(&bindings);
        }
        Ok(bindings)
    }
}
