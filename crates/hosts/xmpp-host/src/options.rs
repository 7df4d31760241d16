//! [`ClientOptions`] and [`ComponentOptions`]: where and how a client or a XEP-0114 component
//! connects, for both connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where and how a client connects ([`blocking::Connection::connect`] and
/// [`asynchronous::AsyncConnection::connect_with`]).
///
/// [`blocking::Connection::connect`]: crate::blocking::Connection::connect
/// [`asynchronous::AsyncConnection::connect_with`]: crate::asynchronous::AsyncConnection::connect_with
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The server's address (for the interop tests always on 127.0.0.1).
    pub addr: SocketAddr,
    /// The name the certificate must carry (and SNI): normally the JID's domain.
    pub server_name: String,
    /// XEP-0368 direct TLS: TLS first, no STARTTLS.
    pub direct_tls: bool,
    /// The `rustls` client configuration ([`tls::client_config`](crate::tls::client_config)).
    pub tls: Arc<rustls::ClientConfig>,
    /// How long to wait for the TCP connection and the TLS handshake.
    pub connect_timeout: Duration,
    /// Give the machine the TLS session's channel bindings (so SCRAM `-PLUS` can be chosen).
    /// `false` reports none: a load generator that wants the same mechanism on every server.
    pub channel_binding: bool,
    /// Bytes read from the socket at most at once (the connection keeps a buffer this size).
    pub read_buffer: usize,
}

impl ClientOptions {
    /// Options for `addr`, verifying the certificate for `server_name`, STARTTLS, channel
    /// bindings on, a 16 KiB read buffer.
    pub fn new(addr: SocketAddr, server_name: &str, tls: Arc<rustls::ClientConfig>) -> Self {
        ClientOptions {
            addr,
            server_name: server_name.to_owned(),
            direct_tls: false,
            tls,
            connect_timeout: Duration::from_secs(10),
            channel_binding: true,
            read_buffer: READ_BUFFER,
        }
    }
}

/// Where and how a XEP-0114 component connects ([`blocking::Connection::connect_component`]
/// and [`asynchronous::AsyncConnection::connect_component`]).
///
/// Plain TCP only: XEP-0114 has no TLS step, and servers offer their component port on
/// loopback or a trusted network.
///
/// [`blocking::Connection::connect_component`]: crate::blocking::Connection::connect_component
/// [`asynchronous::AsyncConnection::connect_component`]: crate::asynchronous::AsyncConnection::connect_component
#[derive(Clone, Debug)]
pub struct ComponentOptions {
    /// The server's component port (Prosody and ejabberd use 5347 by convention).
    pub addr: SocketAddr,
    /// How long to wait for the TCP connection.
    pub connect_timeout: Duration,
    /// Bytes read from the socket at most at once (the connection keeps a buffer this size).
    pub read_buffer: usize,
}

impl ComponentOptions {
    /// Options for `addr`: a 10 s connection timeout, a 16 KiB read buffer.
    pub fn new(addr: SocketAddr) -> Self {
        ComponentOptions {
            addr,
            connect_timeout: Duration::from_secs(10),
            read_buffer: READ_BUFFER,
        }
    }
}

/// The read buffer a connection has unless told otherwise.
pub(crate) const READ_BUFFER: usize = 16 * 1024;
