//! The blocking driver: `std::net::TcpStream` + `rustls`, one thread per connection.
//!
//! The loop is the one every host runs, around a [`Driver`]: carry out its actions in order
//! (write bytes, run the TLS handshake and report the channel bindings), feed it what the
//! socket gives, and never block longer than its next timer allows.
//!
//! One [`Connection`] type for every machine of `xmpp_stream`, the type parameter naming it:
//!
//! | machine | constructor |
//! |---|---|
//! | [`ClientStream`] | [`connect`](Connection::connect), [`connect_recorded`](Connection::connect_recorded) (STARTTLS or direct TLS) |
//! | [`ServerStream`] | [`accept`](Connection::accept) |
//! | [`ComponentStream`] (XEP-0114) | [`connect_component`](Connection::connect_component), [`connect_component_recorded`](Connection::connect_component_recorded) (plain TCP) |
//! | [`ComponentServerStream`] (XEP-0114) | [`accept_component`](Connection::accept_component) |
//!
//! Everything else is the same for all four: [`negotiate`](Connection::negotiate) (the bound
//! JID, or the component's domain), [`send`](Connection::send),
//! [`next_event`](Connection::next_event), [`wait_stanza`](Connection::wait_stanza),
//! [`close`](Connection::close), [`transcript`](Connection::transcript).
//!
//! A component (XEP-0114) connecting to a server's component port:
//!
//! ```no_run
//! use std::time::Duration;
//! use xmpp_host::blocking::{ComponentOptions, Connection};
//! use xmpp_host::OsEntropy;
//! use xmpp_stream::{BareJid, ComponentConfig};
//!
//! let options = ComponentOptions::new("127.0.0.1:5347".parse()?);
//! let config = ComponentConfig::new(BareJid::new("bot.localhost")?, "shared-secret");
//! let mut component = Connection::connect_component(&options, config, OsEntropy::new())?;
//! let domain = component.negotiate(Duration::from_secs(10))?;
//! let hello = format!(
//!     "<message xmlns='jabber:component:accept' from='echo@{domain}' to='alice@localhost'>\
//!      <body>hello</body></message>"
//! );
//! component.send(&hello.parse()?)?;
//! component.close(Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{ErrorKind, Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use xmpp_stream::{
    AnyStream, ChannelBinding, ClientConfig, ClientStream, CloseReason, ComponentConfig,
    ComponentServerStream, ComponentStream, Entropy, Event, ServerStream, Transport,
};

use crate::driver::{self, Action, Driver, Negotiates, Next};
use crate::options::READ_BUFFER;
pub use crate::options::{ClientOptions, ComponentOptions};
use crate::record::Recorder;
use crate::{Error, OsEntropy, Redirects, tls};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How this side runs TLS when the machine asks for it.
enum TlsRole {
    /// No TLS: a component stream (XEP-0114) never asks for it.
    None,
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

/// One stream over one TCP connection: a [`Driver`] with its machine (the type parameter:
/// [`ClientStream`], [`ServerStream`], [`ComponentStream`] or [`ComponentServerStream`]; the
/// [module docs](self) list the constructors) and its socket. Events are queued; read them
/// with [`next_event`](Self::next_event).
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

    /// [`connect_recorded`](Self::connect_recorded), resuming the XEP-0198 session `state`
    /// ([`ClientStream::resume_with`]) instead of binding.
    pub fn connect_resumed_recorded(
        options: &ClientOptions,
        config: ClientConfig,
        state: xmpp_stream::SmState,
        comment: &str,
    ) -> Result<Self, Error> {
        let (entropy, log) = OsEntropy::recording();
        let mut recorder = Recorder::new(comment, &config, options.direct_tls, log);
        recorder.resume_with(&state);
        let mut machine = ClientStream::new(config, entropy);
        machine.resume_with(state).map_err(Error::Usage)?;
        Self::connect_inner(options, Driver::recorded(machine, recorder))
    }

    /// Connect and negotiate, following `see-other-host` redirects (RFC 6120 §4.9.3.19) at
    /// most `max_redirects` times; returns the connection and the bound JID.
    ///
    /// Each new host is dialled at `resolve(&host_port)` (a host without a port means 5222,
    /// or the direct TLS port the host chooses) with everything else unchanged, under the
    /// rules of [`Redirects`]: the same `config` (so the same TLS policy, mechanisms and
    /// stream `to`), the same TLS configuration and direct-TLS choice, and the certificate
    /// still verified for `options.server_name`, the XMPP domain. A redirect can therefore
    /// neither turn TLS or certificate checks off nor move the identity check to a name it
    /// picked. Past the bound (a redirect loop) the result is [`Error::TooManyRedirects`].
    pub fn connect_following(
        options: &ClientOptions,
        config: &ClientConfig,
        max_redirects: usize,
        timeout: Duration,
        resolve: impl Fn(&xmpp_stream::HostPort) -> Result<SocketAddr, Error>,
    ) -> Result<(Self, xmpp_stream::FullJid), Error> {
        let mut options = options.clone();
        let mut redirects = Redirects::new(max_redirects);
        loop {
            let mut conn = Self::connect(&options, config.clone(), OsEntropy::new())?;
            match conn.negotiate(timeout) {
                Ok(jid) => return Ok((conn, jid)),
                Err(Error::Closed(reason)) => {
                    if redirects.follow(&reason, &mut options, &resolve)?.is_none() {
                        return Err(Error::Closed(reason));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`connect`](Self::connect) with a machine the host prepared: for example one that
    /// resumes an XEP-0198 session ([`ClientStream::resume_with`]).
    pub fn connect_stream(options: &ClientOptions, machine: ClientStream) -> Result<Self, Error> {
        Self::connect_inner(options, Driver::new(machine))
    }

    fn connect_inner(options: &ClientOptions, driver: Driver) -> Result<Self, Error> {
        let name = tls::server_name(&options.server_name)?;
        let socket = dial(options.addr, options.connect_timeout)?;
        let tls = TlsRole::Client {
            config: options.tls.clone(),
            name,
            channel_binding: options.channel_binding,
        };
        Connection::over(socket, driver, tls, options.read_buffer)?.begin(options.direct_tls)
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
        let tls = TlsRole::Server {
            config: tls,
            certificate,
        };
        Connection::serve(socket, Driver::new(machine), tls)?.begin(direct_tls)
    }
}

impl Connection<ComponentStream> {
    /// Connect to a server's component port as `options` say (plain TCP) and open the
    /// XEP-0114 stream; the handshake proceeds as [`negotiate`](Self::negotiate) or
    /// [`next_event`](Self::next_event) read the socket.
    pub fn connect_component(
        options: &ComponentOptions,
        config: ComponentConfig,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        Self::connect_component_inner(options, Driver::new(ComponentStream::new(config, entropy)))
    }

    /// [`connect_component`](Self::connect_component) with OS entropy, recording the session
    /// as a transcript of role `component` (read it with [`transcript`](Self::transcript)).
    /// `comment` heads the file.
    pub fn connect_component_recorded(
        options: &ComponentOptions,
        config: ComponentConfig,
        comment: &str,
    ) -> Result<Self, Error> {
        Self::connect_component_inner(options, driver::recorded_component(config, comment))
    }

    fn connect_component_inner(options: &ComponentOptions, driver: Driver) -> Result<Self, Error> {
        let socket = dial(options.addr, options.connect_timeout)?;
        Connection::over(socket, driver, TlsRole::None, options.read_buffer)?.begin(false)
    }
}

impl Connection<ComponentServerStream> {
    /// Serve one accepted connection on a component port (plain TCP): the component's header
    /// and handshake proceed as [`negotiate`](Self::negotiate) or
    /// [`next_event`](Self::next_event) read the socket.
    pub fn accept_component(
        socket: TcpStream,
        machine: ComponentServerStream,
    ) -> Result<Self, Error> {
        Connection::serve(socket, Driver::new(machine), TlsRole::None)?.begin(false)
    }
}

/// A TCP connection to `addr`, bounded by `timeout`, with Nagle off.
fn dial(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Error> {
    let socket = TcpStream::connect_timeout(&addr, timeout)?;
    socket.set_read_timeout(Some(timeout))?;
    Ok(socket)
}

impl<M: Negotiates> Connection<M> {
    /// Read until the stream is negotiated and return what that yields (a client's or
    /// server's bound full JID, a component's domain: see [`Negotiates`]), or the reason it
    /// closed instead. `timeout` bounds the wait for each event.
    pub fn negotiate(&mut self, timeout: Duration) -> Result<M::Outcome, Error> {
        loop {
            if let ControlFlow::Break(done) = driver::negotiated::<M>(self.next_event(timeout)?) {
                return done;
            }
        }
    }
}

impl<M> Connection<M> {
    /// A connection over `socket` (Nagle off) with a read buffer of `read_buffer` bytes.
    fn over(
        socket: TcpStream,
        driver: Driver,
        tls: TlsRole,
        read_buffer: usize,
    ) -> Result<Self, Error> {
        socket.set_nodelay(true)?;
        Ok(Connection {
            driver,
            io: Io::Plain(socket),
            tls,
            buf: vec![0; read_buffer.max(1)],
            role: PhantomData,
        })
    }

    /// An accepted connection: a first read timeout, the default read buffer.
    fn serve(socket: TcpStream, driver: Driver, tls: TlsRole) -> Result<Self, Error> {
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        Connection::over(socket, driver, tls, READ_BUFFER)
    }

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

    /// The machine, for its getters (role-specific ones through [`AnyStream::as_client`],
    /// [`AnyStream::as_server`], [`AnyStream::as_component`] and
    /// [`AnyStream::as_component_server`]).
    pub fn machine(&self) -> &AnyStream {
        self.driver.machine()
    }

    /// The transcript recorded so far, for a recorded connection
    /// ([`connect_recorded`](Connection::connect_recorded),
    /// [`connect_component_recorded`](Connection::connect_component_recorded)).
    pub fn transcript(&self) -> Option<String> {
        self.driver.recorder().map(Recorder::finish)
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
            TlsRole::None => {
                self.io = Io::Plain(socket);
                return Err(Error::Config("TLS on a component stream".to_owned()));
            }
        };
        Ok(bindings)
    }
}

/// A client connection's transport with no machine: raw bytes over TCP, or over TLS once
/// [`start_tls`](Self::start_tls) ran. For hosts that must send what no conforming machine
/// would (a conformance checker): open one with [`open`](Self::open) and negotiate by hand,
/// or let a [`ClientStream`] negotiate and take over with [`Connection::into_raw`].
pub struct RawTransport {
    io: Io,
}

impl core::fmt::Debug for RawTransport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match self.io {
            Io::Plain(_) => "plain",
            Io::Client(_) | Io::Server(_) => "tls",
            Io::Gone => "gone",
        };
        f.debug_struct("RawTransport").field("io", &state).finish()
    }
}

impl RawTransport {
    /// Connect as `options` say (direct TLS included, with its channel bindings returned).
    pub fn open(options: &ClientOptions) -> Result<(Self, Vec<ChannelBinding>), Error> {
        let socket = dial(options.addr, options.connect_timeout)?;
        socket.set_nodelay(true)?;
        let mut raw = RawTransport {
            io: Io::Plain(socket),
        };
        let bindings = if options.direct_tls {
            raw.start_tls(options)?
        } else {
            Vec::new()
        };
        Ok((raw, bindings))
    }

    /// Run the TLS handshake over the plain connection (after `<proceed/>`), as `options`
    /// say; the channel bindings when `options.channel_binding` is set.
    pub fn start_tls(&mut self, options: &ClientOptions) -> Result<Vec<ChannelBinding>, Error> {
        let Io::Plain(socket) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(Error::Config("TLS is already running".to_owned()));
        };
        socket.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let conn =
            ClientConnection::new(options.tls.clone(), tls::server_name(&options.server_name)?)?;
        let mut stream = StreamOwned::new(conn, socket);
        handshake(&mut stream)?;
        let bindings = if options.channel_binding {
            let peer = tls::peer_certificate(&stream.conn);
            tls::channel_bindings(&stream.conn, peer.as_ref())
        } else {
            Vec::new()
        };
        self.io = Io::Client(Box::new(stream));
        Ok(bindings)
    }

    /// Read what is there, waiting at most `wait`: `Ok(0)` at the end of the stream, an
    /// error of kind `WouldBlock` or `TimedOut` when nothing came in time. A read a signal
    /// interrupts (`EINTR`) is retried, never reported.
    pub fn read(&mut self, buf: &mut [u8], wait: Duration) -> std::io::Result<usize> {
        if let Some(socket) = self.io.socket() {
            socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        }
        loop {
            match self.io.read(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Write all of `bytes` (and flush TLS).
    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes)
    }

    /// Whether TLS is up.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Client(_))
    }

    /// TLS close_notify (if TLS is up), then TCP shutdown.
    pub fn shutdown(&mut self) {
        self.io.shutdown();
    }
}

impl Connection<ClientStream> {
    /// Drop the machine and keep the transport, to speak raw bytes on a negotiated stream.
    /// Bytes already read are the machine's (events not taken are lost with it).
    pub fn into_raw(mut self) -> RawTransport {
        RawTransport {
            io: std::mem::replace(&mut self.io, Io::Gone),
        }
    }
}
