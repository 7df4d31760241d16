//! XMPP over WebSocket (RFC 7395): the RFC 6455 upgrade on `/xmpp-websocket` with the `xmpp`
//! subprotocol required, then one text message per element each way. tokio-tungstenite does
//! the WebSocket protocol (masking, ping/pong, close handshake, the message size bound); the
//! framing of XMPP is the stream machine's (`ServerStream::websocket`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use xmpp_host::tls::TlsMaterial;
use xmpp_stream::{StreamError, StreamErrorCondition, Transport};

use super::outbox::Command;
use super::shared::{Accepted, Shared, closed, lock, register};

/// The endpoint path.
pub const WEBSOCKET_PATH: &str = "/xmpp-websocket";

/// Bound on one WebSocket message (and frame): a stanza at the stream's default bound.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Accept a WebSocket client on `tcp`: `wss:` when `acceptor` is given (TLS first).
pub(super) async fn websocket_connection(
    shared: Arc<Mutex<Shared>>,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    material: Arc<TlsMaterial>,
) {
    match acceptor {
        None => upgrade(shared, tcp, peer, Transport::Plain).await,
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(tls) => {
                let bindings = super::connection::channel_bindings(&tls, &material);
                upgrade(shared, tls, peer, Transport::Tls(bindings)).await;
            }
            Err(error) => {
                if lock(&shared).log {
                    eprintln!("wss TLS handshake from {peer} failed: {error}");
                }
            }
        },
    }
}

/// The RFC 6455 handshake: our path, and the `xmpp` subprotocol, which we echo.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn check_request(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let refuse = |status: StatusCode, why: &str| {
        let mut error = ErrorResponse::new(Some(why.to_owned()));
        *error.status_mut() = status;
        error
    };
    if request.uri().path() != WEBSOCKET_PATH {
        return Err(refuse(StatusCode::NOT_FOUND, "no such endpoint"));
    }
    let offers_xmpp = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == "xmpp");
    if !offers_xmpp {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the xmpp subprotocol is required (RFC 7395 §3.1)",
        ));
    }
    response
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));
    Ok(response)
}

async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Mutex<Shared>>,
    stream: S,
    peer: SocketAddr,
    transport: Transport,
) {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_MESSAGE_BYTES);
    config.max_frame_size = Some(MAX_MESSAGE_BYTES);
    let ws =
        match tokio_tungstenite::accept_hdr_async_with_config(stream, check_request, Some(config))
            .await
        {
            Ok(ws) => ws,
            Err(error) => {
                if lock(&shared).log {
                    eprintln!("WebSocket handshake from {peer} refused: {error}");
                }
                return;
            }
        };
    let (id, outbox) = register(&shared, Accepted::WebSocket(transport), peer);
    let (mut sink, mut source) = ws.split();
    loop {
        tokio::select! {
            biased;
            command = outbox.recv() => match command {
                Command::Write(bytes) => {
                    // The machine writes XML 1.0 text: always UTF-8.
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if sink.send(Message::text(text)).await.is_err() {
                        closed(&shared, id);
                        break;
                    }
                }
                // A framed stream never asks for STARTTLS (RFC 7395 §3.9).
                Command::StartTls => {}
                Command::Close => {
                    let _ = sink.close().await;
                    break;
                }
            },
            read = source.next() => {
                let refused = match read {
                    Some(Ok(Message::Text(text))) => {
                        let mut guard = lock(&shared);
                        if guard.trace {
                            eprintln!("ws {id} C: {}", text.as_str());
                        }
                        let now = guard.now();
                        guard.hub.handle_message(id, now, text.as_bytes());
                        guard.dispatch();
                        None
                    }
                    // XMPP is text (RFC 7395 §3.2): a binary message is not in an encoding
                    // the stream can take.
                    Some(Ok(Message::Binary(_))) => Some(StreamErrorCondition::UnsupportedEncoding),
                    // Over the message bound: as a stanza over the stanza bound.
                    Some(Err(WsError::Capacity(_))) => Some(StreamErrorCondition::PolicyViolation),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        closed(&shared, id);
                        break;
                    }
                };
                if let Some(condition) = refused {
                    let mut guard = lock(&shared);
                    let now = guard.now();
                    guard.hub.close_with_error(id, now, StreamError::new(condition));
                    guard.dispatch();
                }
            }
        }
    }
}
