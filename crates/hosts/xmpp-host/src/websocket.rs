//! XMPP over WebSocket (RFC 7395) for a client: where to connect ([`WebSocketOptions`]) and
//! the RFC 6455 opening handshake, offering the `xmpp` subprotocol and insisting that the
//! server chose it. The connection itself is an ordinary
//! [`AsyncConnection`](crate::asynchronous::AsyncConnection)
//! ([`connect_websocket`](crate::asynchronous::AsyncConnection::connect_websocket)): the
//! same loop, with one WebSocket text message per [`Action::Write`](crate::driver::Action)
//! and each message received handed whole to [`Driver::message`](crate::driver::Driver::message).
//!
//! `tokio-tungstenite` does the WebSocket protocol (masking, ping/pong, the close handshake,
//! the message size bound); the XMPP framing (`<open/>`, `<close/>`, one element per message)
//! is the machine's ([`ClientStream::websocket`](xmpp_stream::ClientStream::websocket)).
//! `wss:` runs TLS first with the `rustls` configuration of the options, and hands the
//! session's channel bindings to the machine, so SCRAM `-PLUS` works as over TCP.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use xmpp_host::asynchronous::AsyncConnection;
//! use xmpp_host::websocket::WebSocketOptions;
//! use xmpp_host::OsEntropy;
//! use xmpp_stream::{BareJid, ClientConfig};
//!
//! let options = WebSocketOptions::new("127.0.0.1:5280".parse()?, "ws://localhost:5280/xmpp-websocket");
//! let mut config = ClientConfig::new(BareJid::new("alice@localhost")?, "secret");
//! config.tls = xmpp_stream::TlsPolicy::Disabled; // `ws:` on loopback: no TLS anywhere
//! let mut client = AsyncConnection::connect_websocket(&options, config, OsEntropy::new()).await?;
//! let jid = client.negotiate(Duration::from_secs(10)).await?;
//! println!("bound as {jid} over WebSocket");
//! client.close(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use xmpp_stream::Transport;

use crate::{Error, tls};

/// The subprotocol RFC 7395 §3.1 registers, offered and required.
pub const SUBPROTOCOL: &str = "xmpp";

/// Where and how a client connects over WebSocket
/// ([`AsyncConnection::connect_websocket`](crate::asynchronous::AsyncConnection::connect_websocket)).
#[derive(Clone, Debug)]
pub struct WebSocketOptions {
    /// The address to open the TCP connection to (the URL's host is not resolved: tests stay
    /// on loopback, and a real host resolves it however it likes).
    pub addr: SocketAddr,
    /// The endpoint, `ws://host[:port]/path` or `wss://...`: its host goes in the `Host`
    /// header (and, for `wss:`, is the name the certificate must carry), its path in the
    /// request line.
    pub url: String,
    /// The `rustls` client configuration for a `wss:` URL
    /// ([`tls::client_config`]); unused for `ws:`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// How long to wait for the TCP connection, TLS and the WebSocket handshake.
    pub connect_timeout: Duration,
    /// Give the machine the TLS session's channel bindings on `wss:`.
    pub channel_binding: bool,
    /// Bound on one message (and frame) from the server.
    pub max_message: usize,
}

impl WebSocketOptions {
    /// Options for `url` at `addr`: no TLS configuration (set [`tls`](Self::tls) for `wss:`),
    /// a 10 s connection timeout, channel bindings on, messages up to 256 KiB.
    pub fn new(addr: SocketAddr, url: &str) -> Self {
        WebSocketOptions {
            addr,
            url: url.to_owned(),
            tls: None,
            connect_timeout: Duration::from_secs(10),
            channel_binding: true,
            max_message: 256 * 1024,
        }
    }
}

/// Any byte stream a WebSocket can run over (TCP, or TLS over TCP).
pub(crate) trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// An open WebSocket, whatever carries it.
pub(crate) type Socket = WebSocketStream<Box<dyn Duplex>>;

fn handshake_error(why: impl std::fmt::Display) -> Error {
    Error::Io(std::io::Error::other(format!("WebSocket handshake: {why}")))
}

/// Connect as `options` say: TCP, TLS for `wss:`, then the RFC 6455 upgrade offering
/// `Sec-WebSocket-Protocol: xmpp`. Returns the socket and the transport to start the machine
/// on (with the channel bindings for `wss:`).
pub(crate) async fn open(options: &WebSocketOptions) -> Result<(Socket, Transport), Error> {
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .map_err(handshake_error)?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let secure = match request.uri().scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        other => {
            return Err(Error::Config(format!(
                "not a WebSocket URL scheme: {other:?}"
            )));
        }
    };
    let host = request.uri().host().unwrap_or_default().to_owned();
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(options.max_message);
    config.max_frame_size = Some(options.max_message);
    let connect = async {
        let tcp = TcpStream::connect(options.addr).await?;
        tcp.set_nodelay(true)?;
        let (stream, transport): (Box<dyn Duplex>, Transport) = if secure {
            let Some(tls_config) = options.tls.clone() else {
                return Err(Error::Config(
                    "a wss: URL needs a TLS configuration".to_owned(),
                ));
            };
            let name = tls::server_name(host.trim_start_matches('[').trim_end_matches(']'))?;
            let stream = TlsConnector::from(tls_config).connect(name, tcp).await?;
            let conn = stream.get_ref().1;
            let bindings = if options.channel_binding {
                tls::channel_bindings(conn, tls::peer_certificate(conn).as_ref())
            } else {
                Vec::new()
            };
            (Box::new(stream), Transport::Tls(bindings))
        } else {
            (Box::new(tcp), Transport::Plain)
        };
        let (socket, response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(handshake_error)?;
        let chosen = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if chosen.map(str::trim) != Some(SUBPROTOCOL) {
            return Err(handshake_error(format!(
                "the server did not choose the xmpp subprotocol (RFC 7395 §3.1): {chosen:?}"
            )));
        }
        Ok((socket, transport))
    };
    tokio::time::timeout(options.connect_timeout, connect)
        .await
        .map_err(|_elapsed| Error::Timeout)?
}
