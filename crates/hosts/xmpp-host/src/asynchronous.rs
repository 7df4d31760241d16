//! The async driver: the same machines under `tokio` + `tokio-rustls`.
//!
//! The machines do not care who calls them: this is the blocking driver's loop with `.await`
//! on reads and writes and a `tokio::time::timeout` for the machine's timers. One task per
//! connection; the machine lives inside the task.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};
use xmpp_stream::{
    ChannelBinding, ClientConfig, ClientStream, CloseReason, Entropy, Event, FullJid, Output,
    ServerStream, Transport,
};

use crate::machine::Machine;
use crate::{Clock, Error, tls};

/// The transport, before and after TLS.
enum Io {
    Plain(TcpStream),
    Client(Box<client::TlsStream<TcpStream>>),
    Server(Box<server::TlsStream<TcpStream>>),
    Gone,
}

impl Io {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf).await,
            Io::Client(s) => s.read(buf).await,
            Io::Server(s) => s.read(buf).await,
            Io::Gone => Ok(0),
        }
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
            Io::Gone => {}
        }
        *self = Io::Gone;
    }
}

enum TlsRole {
    Client {
        connector: TlsConnector,
        name: ServerName<'static>,
    },
    Server {
        acceptor: TlsAcceptor,
        certificate: CertificateDer<'static>,
    },
}

/// One stream over one TCP connection, driven by `tokio`.
pub struct AsyncConnection<M> {
    machine: M,
    io: Io,
    tls: TlsRole,
    clock: Clock,
    events: VecDeque<Event>,
    buf: Vec<u8>,
}

impl<M> core::fmt::Debug for AsyncConnection<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl AsyncConnection<ClientStream> {
    /// Connect to `addr` (certificate checked for `server_name`), with direct TLS or
    /// STARTTLS, and start the client.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        direct_tls: bool,
        tls: Arc<rustls::ClientConfig>,
        config: ClientConfig,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        let socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let mut connection = AsyncConnection {
            machine: ClientStream::new(config, entropy),
            io: Io::Plain(socket),
            tls: TlsRole::Client {
                connector: TlsConnector::from(tls),
                name: tls::server_name(server_name)?,
            },
            clock: Clock::new(),
            events: VecDeque::new(),
            buf: vec![0; 16 * 1024],
        };
        connection.begin(direct_tls).await?;
        Ok(connection)
    }

    /// Run until negotiated; returns the bound JID or why the stream closed.
    pub async fn negotiate(&mut self, timeout: Duration) -> Result<FullJid, Error> {
        loop {
            match self.next_event(timeout).await? {
                Some(Event::Negotiated { jid, .. }) => return Ok(jid),
                Some(Event::Closed { reason }) => return Err(Error::from(reason)),
                Some(_) => {}
                None => return Err(Error::from(CloseReason::TransportClosed)),
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
        socket.set_nodelay(true)?;
        let mut connection = AsyncConnection {
            machine,
            io: Io::Plain(socket),
            tls: TlsRole::Server {
                acceptor: TlsAcceptor::from(tls),
                certificate,
            },
            clock: Clock::new(),
            events: VecDeque::new(),
            buf: vec![0; 16 * 1024],
        };
        connection.begin(direct_tls).await?;
        Ok(connection)
    }
}

impl<M: Machine> AsyncConnection<M> {
    async fn begin(&mut self, direct_tls: bool) -> Result<(), Error> {
        let transport = if direct_tls {
            Transport::Tls(self.start_tls().await?)
        } else {
            Transport::Plain
        };
        let now = self.clock.now();
        self.machine.start(now, transport)?;
        self.pump().await;
        Ok(())
    }

    /// The machine, for its getters.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// Send a stanza.
    pub async fn send(&mut self, stanza: &Element) -> Result<(), Error> {
        let now = self.clock.now();
        self.machine.send_stanza(now, stanza)?;
        self.pump().await;
        Ok(())
    }

    /// The next event, reading for at most `timeout`; `Ok(None)` once closed and drained.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, Error> {
        let deadline = self.clock.now().saturating_add(timeout);
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if self.machine.is_closed() {
                return Ok(None);
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(Error::Timeout);
            }
            let wake = self
                .machine
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            let wait = wake.saturating_duration_since(now);
            let read = tokio::time::timeout(wait, self.io.read(&mut self.buf)).await;
            let now = self.clock.now();
            match read {
                Err(_elapsed) => self.machine.handle_timeout(now),
                Ok(Ok(n)) if n > 0 => {
                    // A protocol error comes back as a `Closed` event.
                    let _ = self.machine.handle_input(now, &self.buf[..n]);
                }
                Ok(_) => {
                    self.io = Io::Gone;
                    self.machine.transport_closed(now);
                }
            }
            self.pump().await;
        }
    }

    /// Close the stream, wait for the peer's close, then close TLS and TCP.
    pub async fn close(&mut self, timeout: Duration) -> Result<CloseReason, Error> {
        if !self.machine.is_closed() {
            let now = self.clock.now();
            self.machine.close(now)?;
            self.pump().await;
        }
        let result = loop {
            match self.next_event(timeout).await {
                Ok(Some(Event::Closed { reason })) => break Ok(reason),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(CloseReason::TransportClosed),
                Err(e) => break Err(e),
            }
        };
        self.io.shutdown().await;
        result
    }

    /// Drain the machine's outputs in order.
    async fn pump(&mut self) {
        while let Some(output) = self.machine.poll_output() {
            let now = self.clock.now();
            match output {
                Output::Transmit(bytes) => self.transmit(now, &bytes).await,
                Output::StartTls => self.upgrade(now).await,
                Output::Event(event) => self.events.push_back(event),
                _ => {}
            }
        }
    }

    /// Write one `Transmit`; a failed write ends the transport.
    async fn transmit(&mut self, now: xmpp_stream::Instant, bytes: &[u8]) {
        if self.io.write_all(bytes).await.is_err() {
            self.io = Io::Gone;
            self.machine.transport_closed(now);
        }
    }

    /// The machine asked for TLS: run it and report the bindings; a failure ends the transport.
    async fn upgrade(&mut self, now: xmpp_stream::Instant) {
        if let Ok(bindings) = self.start_tls().await {
            let now = self.clock.now();
            let _ = self.machine.tls_established(now, bindings);
        } else {
            self.io = Io::Gone;
            self.machine.transport_closed(now);
        }
    }

    async fn start_tls(&mut self) -> Result<Vec<ChannelBinding>, Error> {
        let Io::Plain(socket) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(Error::Config("TLS is already running".to_owned()));
        };
        let bindings = match &self.tls {
            TlsRole::Client { connector, name } => {
                let stream = connector.connect(name.clone(), socket).await?;
                let conn = stream.get_ref().1;
                let peer = tls::peer_certificate(conn);
                let bindings = tls::channel_bindings(conn, peer.as_ref());
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
        };
        Ok(bindings)
    }
}
