//! The blocking driver: `std::net::TcpStream` + `rustls`, one thread per connection.
//!
//! The loop is the one every host runs, around a [`Driver`]: carry out its actions in order
//! (write bytes, run the TLS handshake and report the channel bindings), feed it what the
//! socket gives, and never block longer than its next timer allows.

use std::io::{ErrorKind, Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, TcpStream};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use xmpp_stream::{
    AnyStream, ChannelBinding, ClientConfig, ClientStream, CloseReason, Entropy, Event, FullJid,
    ServerStream, Transport,
};

use crate::driver::{self, Action, Driver, Next};
pub use crate::options::ClientOptions;
use crate::options::READ_BUFFER;
use crate::record::Recorder;
use crate::{Error, OsEntropy, tls};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How this side runs TLS when the machine asks for it.
enum TlsRole {
    Client {
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        channel_binding: bool,
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

/// One stream over one TCP connection: a [`Driver`] with its machine ([`ClientStream`] or
/// [`ServerStream`], the type parameter) and its socket. Events are queued; read them with
/// [`next_event`](Self::next_event).
pub struct Connection<M> {
    driver: Driver,
    io: Io,
    tls: TlsRole,
    buf: Vec<u8>,
    role: PhantomData<fn() -> M>,
}

impl<M> core::fmt::Debug for Connection<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("driver", &self.driver)
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
        Self::connect_inner(options, Driver::new(ClientStream::new(config, entropy)))
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
        let machine = ClientStream::new(config, entropy);
        Self::connect_inner(options, Driver::recorded(machine, recorder))
    }

    fn connect_inner(options: &ClientOptions, driver: Driver) -> Result<Self, Error> {
        let socket = TcpStream::connect_timeout(&options.addr, options.connect_timeout)?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(options.connect_timeout))?;
        let name = tls::server_name(&options.server_name)?;
        let connection = Connection {
            driver,
            io: Io::Plain(socket),
            tls: TlsRole::Client {
                config: options.tls.clone(),
                name,
                channel_binding: options.channel_binding,
            },
            buf: vec![0; options.read_buffer.max(1)],
            role: PhantomData,
        };
        connection.begin(options.direct_tls)
    }

    /// Read until the stream is negotiated (bound) and return the full JID, or the reason it
    /// closed instead. `timeout` bounds the wait for each event.
    pub fn negotiate(&mut self, timeout: Duration) -> Result<FullJid, Error> {
        loop {
            if let ControlFlow::Break(done) = driver::negotiated(self.next_event(timeout)?) {
                return done;
            }
        }
    }

    /// The transcript recorded so far (only for [`connect_recorded`](Self::connect_recorded)).
    pub fn transcript(&self) -> Option<String> {
        self.driver.recorder().map(Recorder::finish)
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
        let connection = Connection {
            driver: Driver::new(machine),
            io: Io::Plain(socket),
            tls: TlsRole::Server {
                config: tls,
                certificate,
            },
            buf: vec![0; READ_BUFFER],
            role: PhantomData,
        };
        connection.begin(direct_tls)
    }
}

impl<M> Connection<M> {
    /// Run direct TLS if asked, start the machine and write what it says first.
    fn begin(mut self, direct_tls: bool) -> Result<Self, Error> {
        let transport = if direct_tls {
            Transport::Tls(self.start_tls()?)
        } else {
            Transport::Plain
        };
        self.driver.start(transport)?;
        self.pump();
        Ok(self)
    }

    /// The machine, for its getters (role-specific ones through
    /// [`AnyStream::as_client`] and [`AnyStream::as_server`]).
    pub fn machine(&self) -> &AnyStream {
        self.driver.machine()
    }

    /// Send a stanza (queued by a client machine until negotiation completes).
    pub fn send(&mut self, stanza: &Element) -> Result<(), Error> {
        self.driver.send(stanza)?;
        self.pump();
        Ok(())
    }

    /// The next event, reading the socket as needed for at most `timeout`. `Ok(None)` once
    /// the stream is closed and every event was taken.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, Error> {
        let deadline = self.driver.now().saturating_add(timeout);
        loop {
            match self.driver.poll_event(deadline) {
                Next::Event(event) => return Ok(Some(event)),
                Next::Closed => return Ok(None),
                Next::Expired => return Err(Error::Timeout),
                Next::Read(wait) => self.read_once(wait)?,
            }
        }
    }

    /// Wait for a stanza `accept` likes, discarding other stanzas and events; a `Closed`
    /// event on the way is an error.
    pub fn wait_stanza(
        &mut self,
        timeout: Duration,
        accept: impl Fn(&Element) -> bool,
    ) -> Result<Element, Error> {
        let deadline = self.driver.now().saturating_add(timeout);
        loop {
            let left = deadline.saturating_duration_since(self.driver.now());
            if let ControlFlow::Break(done) = driver::accepted(self.next_event(left)?, &accept) {
                return done;
            }
        }
    }

    /// Close the stream, wait for the peer's close (at most `timeout` in all), then close TLS
    /// and the socket. Returns how the stream ended.
    pub fn close(&mut self, timeout: Duration) -> Result<CloseReason, Error> {
        self.driver.close()?;
        self.pump();
        let deadline = self.driver.now().saturating_add(timeout);
        let result = loop {
            let left = deadline.saturating_duration_since(self.driver.now());
            if let ControlFlow::Break(done) = driver::closed(self.next_event(left)) {
                break done;
            }
        };
        self.io.shutdown();
        result
    }

    /// One read, waiting at most `wait` (then the machine's timers fire), fed to the machine.
    fn read_once(&mut self, wait: Duration) -> Result<(), Error> {
        let Some(socket) = self.io.socket() else {
            self.driver.transport_closed();
            self.pump();
            return Ok(());
        };
        // Zero means "no timeout" to the socket: wait at least a millisecond.
        socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match self.io.read(&mut self.buf) {
            Ok(0) => self.hang_up(),
            Ok(n) => self.driver.input(&self.buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.driver.timeout();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => self.hang_up(),
        }
        self.pump();
        Ok(())
    }

    /// Carry out the driver's actions, in order.
    fn pump(&mut self) {
        while let Some(action) = self.driver.next_action() {
            match action {
                Action::Write(bytes) => {
                    if self.io.write_all(&bytes).is_err() {
                        self.hang_up();
                    }
                }
                Action::StartTls => match self.start_tls() {
                    Ok(bindings) => self.driver.tls_established(bindings),
                    Err(_) => self.hang_up(),
                },
            }
        }
    }

    /// The transport is gone (end of stream, failed read, write or handshake).
    fn hang_up(&mut self) {
        self.io = Io::Gone;
        self.driver.transport_closed();
    }

    /// Wrap the socket in TLS, run the handshake and return the channel bindings.
    fn start_tls(&mut self) -> Result<Vec<ChannelBinding>, Error> {
        let Io::Plain(socket) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(Error::Config("TLS is already running".to_owned()));
        };
        // The last read may have left a short timeout (the machine's next timer): give the
        // handshake its own bound.
        socket.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let bindings = match &self.tls {
            TlsRole::Client {
                config,
                name,
                channel_binding,
            } => {
                let conn = ClientConnection::new(config.clone(), name.clone())?;
                let mut stream = StreamOwned::new(conn, socket);
                handshake(&mut stream)?;
                let bindings = if *channel_binding {
                    let peer = tls::peer_certificate(&stream.conn);
                    tls::channel_bindings(&stream.conn, peer.as_ref())
                } else {
                    Vec::new()
                };
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
        Ok(bindings)
    }
}
