//! The async driver: the same machines under `tokio` + `tokio-rustls`.
//!
//! The machines do not care who calls them: this is the blocking connection's loop around
//! the same [`Driver`], with `.await` on reads and writes and a `tokio::time::timeout` for
//! the machine's timers. One task per connection; the machine lives inside the task.
//!
//! [`next_event`](AsyncConnection::next_event) is the whole loop. A task that also waits for
//! other things (a ticker, a channel) runs it in parts: [`receive`](AsyncConnection::receive)
//! (cancel-safe, so it can sit in `tokio::select!`), then [`flush`](AsyncConnection::flush),
//! then [`take_event`](AsyncConnection::take_event) until `None`.
//!
//! As in [`blocking`](crate::blocking), one [`AsyncConnection`] type serves every machine:
//! [`connect`](AsyncConnection::connect) / [`connect_with`](AsyncConnection::connect_with)
//! (client; [`connect_following`](AsyncConnection::connect_following) follows redirects),
//! [`accept`](AsyncConnection::accept) (server),
//! [`connect_component`](AsyncConnection::connect_component) /
//! [`connect_component_recorded`](AsyncConnection::connect_component_recorded) (a XEP-0114
//! component, plain TCP) and [`accept_component`](AsyncConnection::accept_component) (the
//! server's end of a component port); the rest, [`negotiate`](AsyncConnection::negotiate)
//! included, is shared.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use xmpp_host::asynchronous::{AsyncConnection, ComponentOptions};
//! use xmpp_host::OsEntropy;
//! use xmpp_stream::{BareJid, ComponentConfig};
//!
//! let options = ComponentOptions::new("127.0.0.1:5347".parse()?);
//! let config = ComponentConfig::new(BareJid::new("bot.localhost")?, "shared-secret");
//! let mut component = AsyncConnection::connect_component(&options, config, OsEntropy::new()).await?;
//! let domain = component.negotiate(Duration::from_secs(10)).await?;
//! println!("serving {domain}");
//! component.close(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use minidom::Element;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};
use tokio_tungstenite::tungstenite::Message;
use xmpp_stream::{
    AnyStream, ChannelBinding, ClientConfig, ClientStream, CloseReason, ComponentConfig,
    ComponentServerStream, ComponentStream, Entropy, Event, ServerStream, Transport,
};

use crate::driver::{self, Action, Driver, Negotiates, Next};
use crate::options::READ_BUFFER;
pub use crate::options::{ClientOptions, ComponentOptions};
use crate::record::Recorder;
use crate::websocket::{self, WebSocketOptions};
use crate::{Error, OsEntropy, Redirects, tls};

/// The transport, before and after TLS.
enum Io {
    Plain(TcpStream),
    Client(Box<client::TlsStream<TcpStream>>),
    Server(Box<server::TlsStream<TcpStream>>),
    /// RFC 7395: one text message per element, whatever carries the WebSocket.
    WebSocket(Box<websocket::Socket>),
    Gone,
}

/// What one read gave.
enum Received {
    /// Bytes of a TCP stream, in the connection's buffer (0: end of stream).
    Bytes(usize),
    /// One whole WebSocket message.
    Message(Vec<u8>),
    /// A WebSocket control message (ping, pong): nothing for the machine.
    Nothing,
}

impl Io {
    /// One read; cancel-safe (a WebSocket's `next` is, like a socket's `read`).
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<Received> {
        let n = match self {
            Io::Plain(s) => s.read(buf).await?,
            Io::Client(s) => s.read(buf).await?,
            Io::Server(s) => s.read(buf).await?,
            Io::WebSocket(ws) => {
                return match ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        Ok(Received::Message(text.as_bytes().to_vec()))
                    }
                    // Not text (RFC 7395 §3.2): the machine judges the bytes as a message.
                    Some(Ok(Message::Binary(bytes))) => Ok(Received::Message(bytes.to_vec())),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        Ok(Received::Nothing)
                    }
                    Some(Ok(Message::Close(_))) | None => Ok(Received::Bytes(0)),
                    Some(Err(e)) => Err(std::io::Error::other(e)),
                };
            }
            Io::Gone => 0,
        };
        Ok(Received::Bytes(n))
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        async fn write<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> std::io::Result<()> {
            s.write_all(bytes).await?;
            s.flush().await
        }
        match self {
            Io::Plain(s) => write(s, bytes).await,
            Io::Client(s) => write(s, bytes).await,
            Io::Server(s) => write(s, bytes).await,
            Io::WebSocket(ws) => {
                // The machine writes one element of XML 1.0 text: UTF-8.
                let text = String::from_utf8_lossy(bytes).into_owned();
                ws.send(Message::text(text))
                    .await
                    .map_err(std::io::Error::other)
            }
            Io::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    /// TLS close_notify (if TLS is up) and TCP shutdown.
    async fn shutdown(&mut self) {
        async fn down<S: AsyncWrite + AsyncRead + Unpin>(s: &mut S) {
            let _ = s.shutdown().await;
        }
        match self {
            Io::Plain(s) => down(s).await,
            Io::Client(s) => down(s).await,
            Io::Server(s) => down(s).await,
            Io::WebSocket(ws) => {
                // The socket's own close (a close frame), not `SinkExt::close` on the `Box`
                // (a `Sink` too once futures-sink's `alloc` feature is on in the build).
                let _ = websocket::Socket::close(ws, None).await;
            }
            Io::Gone => {}
        }
        *self = Io::Gone;
    }
}

/// How this side runs TLS when the machine asks for it.
enum TlsRole {
    /// No TLS: a component stream (XEP-0114) never asks for it.
    None,
    Client {
        connector: TlsConnector,
        name: ServerName<'static>,
        channel_binding: bool,
    },
    Server {
        acceptor: TlsAcceptor,
        certificate: CertificateDer<'static>,
    },
}

/// One stream over one TCP connection, driven by `tokio`: a [`Driver`] with its machine (the
/// type parameter: [`ClientStream`], [`ServerStream`], [`ComponentStream`] or
/// [`ComponentServerStream`]; the [module docs](self) list the constructors) and its socket.
pub struct AsyncConnection<M> {
    driver: Driver,
    io: Io,
    tls: TlsRole,
    buf: Vec<u8>,
    role: PhantomData<fn() -> M>,
}

impl<M> core::fmt::Debug for AsyncConnection<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl AsyncConnection<ClientStream> {
    /// Connect to `addr` (certificate checked for `server_name`), with direct TLS or
    /// STARTTLS, and start the client. [`connect_with`](Self::connect_with) takes every
    /// option.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        direct_tls: bool,
        tls: Arc<rustls::ClientConfig>,
        config: ClientConfig,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        let mut options = ClientOptions::new(addr, server_name, tls);
        options.direct_tls = direct_tls;
        Self::connect_with(&options, config, entropy).await
    }

    /// Connect as `options` say (the TCP connection bounded by their `connect_timeout`), run
    /// direct TLS if asked, and start the client.
    pub async fn connect_with(
        options: &ClientOptions,
        config: ClientConfig,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        let name = tls::server_name(&options.server_name)?;
        let socket = dial(options.addr, options.connect_timeout).await?;
        let tls = TlsRole::Client {
            connector: TlsConnector::from(options.tls.clone()),
            name,
            channel_binding: options.channel_binding,
        };
        let driver = Driver::new(ClientStream::new(config, entropy));
        AsyncConnection::over(socket, driver, tls, options.read_buffer)?
            .begin(options.direct_tls)
            .await
    }
}

impl AsyncConnection<ClientStream> {
    /// Connect and negotiate, following `see-other-host` redirects (RFC 6120 §4.9.3.19) at
    /// most `max_redirects` times; returns the connection and the bound JID. The blocking
    /// [`connect_following`](crate::blocking::Connection::connect_following) with `.await`,
    /// under the same rules ([`Redirects`]): each new host is dialled at
    /// `resolve(&host_port)` with the same `config`, TLS configuration and direct-TLS choice,
    /// the certificate still verified for `options.server_name` (the XMPP domain); past the
    /// bound the result is [`Error::TooManyRedirects`].
    pub async fn connect_following(
        options: &ClientOptions,
        config: &ClientConfig,
        max_redirects: usize,
        timeout: Duration,
        resolve: impl Fn(&xmpp_stream::HostPort) -> Result<SocketAddr, Error>,
    ) -> Result<(Self, xmpp_stream::FullJid), Error> {
        let mut options = options.clone();
        let mut redirects = Redirects::new(max_redirects);
        loop {
            let mut conn = Self::connect_with(&options, config.clone(), OsEntropy::new()).await?;
            match conn.negotiate(timeout).await {
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
}

impl AsyncConnection<ServerStream> {
    /// Serve one accepted connection (`certificate` is `tls`'s leaf, for
    /// `tls-server-end-point`).
    pub async fn accept(
        socket: TcpStream,
        machine: ServerStream,
        tls: Arc<rustls::ServerConfig>,
        certificate: CertificateDer<'static>,
        direct_tls: bool,
    ) -> Result<Self, Error> {
        let tls = TlsRole::Server {
            acceptor: TlsAcceptor::from(tls),
            certificate,
        };
        AsyncConnection::over(socket, Driver::new(machine), tls, READ_BUFFER)?
            .begin(direct_tls)
            .await
    }
}

impl AsyncConnection<ComponentStream> {
    /// Connect to a server's component port as `options` say (plain TCP) and open the
    /// XEP-0114 stream; the handshake proceeds as [`negotiate`](Self::negotiate) or
    /// [`next_event`](Self::next_event) read the socket.
    pub async fn connect_component(
        options: &ComponentOptions,
        config: ComponentConfig,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        let driver = Driver::new(ComponentStream::new(config, entropy));
        Self::connect_component_inner(options, driver).await
    }

    /// [`connect_component`](Self::connect_component) with OS entropy, recording the session
    /// as a transcript of role `component` (read it with [`transcript`](Self::transcript)).
    /// `comment` heads the file.
    pub async fn connect_component_recorded(
        options: &ComponentOptions,
        config: ComponentConfig,
        comment: &str,
    ) -> Result<Self, Error> {
        let driver = driver::recorded_component(config, comment);
        Self::connect_component_inner(options, driver).await
    }

    async fn connect_component_inner(
        options: &ComponentOptions,
        driver: Driver,
    ) -> Result<Self, Error> {
        let socket = dial(options.addr, options.connect_timeout).await?;
        AsyncConnection::over(socket, driver, TlsRole::None, options.read_buffer)?
            .begin(false)
            .await
    }
}

impl AsyncConnection<ComponentServerStream> {
    /// Serve one accepted connection on a component port (plain TCP): the component's header
    /// and handshake proceed as [`negotiate`](Self::negotiate) or
    /// [`next_event`](Self::next_event) read the socket.
    pub async fn accept_component(
        socket: TcpStream,
        machine: ComponentServerStream,
    ) -> Result<Self, Error> {
        AsyncConnection::over(socket, Driver::new(machine), TlsRole::None, READ_BUFFER)?
            .begin(false)
            .await
    }
}

impl AsyncConnection<ClientStream> {
    /// Connect over WebSocket (RFC 7395) as `options` say
    /// ([`websocket`] module: TCP, TLS for `wss:`, the upgrade with the `xmpp`
    /// subprotocol) and start the client switched to WebSocket framing. Everything after is
    /// the same as over TCP. On a `ws:` URL there is no TLS at all: the client's
    /// [`TlsPolicy`](xmpp_stream::TlsPolicy) must be `Disabled` (or `Optional`), or it refuses
    /// to authenticate, as it would on a TCP stream without TLS.
    pub async fn connect_websocket(
        options: &WebSocketOptions,
        config: ClientConfig,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        let (socket, transport) = websocket::open(options).await?;
        let mut connection = AsyncConnection {
            driver: Driver::new(ClientStream::new(config, entropy).websocket()),
            io: Io::WebSocket(Box::new(socket)),
            tls: TlsRole::None,
            buf: Vec::new(),
            role: PhantomData,
        };
        connection.driver.start(transport)?;
        connection.flush().await;
        Ok(connection)
    }
}

/// A TCP connection to `addr`, bounded by `timeout`.
async fn dial(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Error> {
    tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_elapsed| Error::Timeout)?
        .map_err(Error::from)
}

impl<M: Negotiates> AsyncConnection<M> {
    /// Run until negotiated; returns what that yields (a client's or server's bound full JID,
    /// a component's domain: see [`Negotiates`]) or why the stream closed. `timeout` bounds
    /// the wait for each event.
    pub async fn negotiate(&mut self, timeout: Duration) -> Result<M::Outcome, Error> {
        loop {
            let event = self.next_event(timeout).await?;
            if let ControlFlow::Break(done) = driver::negotiated::<M>(event) {
                return done;
            }
        }
    }
}

impl<M> AsyncConnection<M> {
    /// A connection over `socket` (Nagle off) with a read buffer of `read_buffer` bytes.
    fn over(
        socket: TcpStream,
        driver: Driver,
        tls: TlsRole,
        read_buffer: usize,
    ) -> Result<Self, Error> {
        socket.set_nodelay(true)?;
        Ok(AsyncConnection {
            driver,
            io: Io::Plain(socket),
            tls,
            buf: vec![0; read_buffer.max(1)],
            role: PhantomData,
        })
    }

    /// Run direct TLS if asked, start the machine and write what it says first.
    async fn begin(mut self, direct_tls: bool) -> Result<Self, Error> {
        let transport = if direct_tls {
            Transport::Tls(self.start_tls().await?)
        } else {
            Transport::Plain
        };
        self.driver.start(transport)?;
        self.flush().await;
        Ok(self)
    }

    /// The machine, for its getters (role-specific ones through [`AnyStream::as_client`],
    /// [`AnyStream::as_server`], [`AnyStream::as_component`] and
    /// [`AnyStream::as_component_server`]).
    pub fn machine(&self) -> &AnyStream {
        self.driver.machine()
    }

    /// The transcript recorded so far, for a recorded connection
    /// ([`connect_component_recorded`](AsyncConnection::connect_component_recorded)).
    pub fn transcript(&self) -> Option<String> {
        self.driver.recorder().map(Recorder::finish)
    }

    /// Send a stanza (queued by a client machine until negotiation completes).
    pub async fn send(&mut self, stanza: &Element) -> Result<(), Error> {
        self.driver.send(stanza)?;
        self.flush().await;
        Ok(())
    }

    /// The next event, reading for at most `timeout`; `Ok(None)` once closed and drained.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, Error> {
        let deadline = self.driver.now().saturating_add(timeout);
        loop {
            match self.driver.poll_event(deadline) {
                Next::Event(event) => return Ok(Some(event)),
                Next::Closed => return Ok(None),
                Next::Expired => return Err(Error::Timeout),
                Next::Read(wait) => {
                    self.read_for(Some(wait)).await;
                    self.flush().await;
                }
            }
        }
    }

    /// An event already received, if any (after [`receive`](Self::receive) and
    /// [`flush`](Self::flush)).
    pub fn take_event(&mut self) -> Option<Event> {
        self.driver.take_event()
    }

    /// Wait for the peer's next bytes and feed them to the machine, or fire its timers when
    /// the next one is due first (no timer: wait for bytes as long as it takes). Writes
    /// nothing, so it is cancel-safe: a `tokio::select!` may drop it unfinished and lose no
    /// byte. Then call [`flush`](Self::flush) and take the events.
    pub async fn receive(&mut self) {
        let wait = self.driver.next_timer();
        self.read_for(wait).await;
    }

    /// Carry out what the machine asked for, in order: write its bytes, run the TLS
    /// handshake. Not cancel-safe (a write may be cut short): do not race it.
    pub async fn flush(&mut self) {
        while let Some(action) = self.driver.next_action() {
            match action {
                Action::Write(bytes) => {
                    if self.io.write_all(&bytes).await.is_err() {
                        self.hang_up();
                    }
                }
                Action::StartTls => match self.start_tls().await {
                    Ok(bindings) => self.driver.tls_established(bindings),
                    Err(_) => self.hang_up(),
                },
            }
        }
    }

    /// Close the stream, wait for the peer's close (at most `timeout` in all), then close TLS
    /// and TCP.
    pub async fn close(&mut self, timeout: Duration) -> Result<CloseReason, Error> {
        self.driver.close()?;
        self.flush().await;
        let deadline = self.driver.now().saturating_add(timeout);
        let result = loop {
            let left = deadline.saturating_duration_since(self.driver.now());
            if let ControlFlow::Break(done) = driver::closed(self.next_event(left).await) {
                break done;
            }
        };
        self.io.shutdown().await;
        result
    }

    /// One read, waiting at most `wait` (then the machine's timers fire), fed to the machine.
    async fn read_for(&mut self, wait: Option<Duration>) {
        let read = self.io.read(&mut self.buf);
        let read = match wait {
            Some(wait) => match tokio::time::timeout(wait, read).await {
                Ok(read) => read,
                Err(_elapsed) => {
                    self.driver.timeout();
                    return;
                }
            },
            None => read.await,
        };
        match read {
            Ok(Received::Bytes(n)) if n > 0 => self.driver.input(&self.buf[..n]),
            Ok(Received::Message(message)) => self.driver.message(&message),
            Ok(Received::Nothing) => {}
            _ => self.hang_up(),
        }
    }

    /// The transport is gone (end of stream, failed read, write or handshake).
    fn hang_up(&mut self) {
        self.io = Io::Gone;
        self.driver.transport_closed();
    }

    async fn start_tls(&mut self) -> Result<Vec<ChannelBinding>, Error> {
        let Io::Plain(socket) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(Error::Config("TLS is already running".to_owned()));
        };
        let bindings = match &self.tls {
            TlsRole::Client {
                connector,
                name,
                channel_binding,
            } => {
                let stream = connector.connect(name.clone(), socket).await?;
                let conn = stream.get_ref().1;
                let bindings = if *channel_binding {
                    let peer = tls::peer_certificate(conn);
                    tls::channel_bindings(conn, peer.as_ref())
                } else {
                    Vec::new()
                };
                self.io = Io::Client(Box::new(stream));
                bindings
            }
            TlsRole::Server {
                acceptor,
                certificate,
            } => {
                let stream = acceptor.accept(socket).await?;
                let bindings = tls::channel_bindings(stream.get_ref().1, Some(certificate));
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
