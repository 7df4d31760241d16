//! XMPP over WebSocket (RFC 7395) on the example server's `ws:` endpoint: a client logs in
//! and chats with one text message per element, and hostile frames get their exact stream
//! error with nothing delivered that should not be.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{WebSocketStream, client_async};
use xmpp_server::{HubConfig, RuntimeConfig, ServerHandle, TlsMaterial};
use xmpp_stream::BareJid;

const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
/// PLAIN `\0juliet\0r0m30`.
const AUTH: &str =
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMA==</auth>";
const BIND: &str = "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>ws</resource></bind></iq>";

fn server() -> ServerHandle {
    let mut hub = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("juliet", "r0m30")
        .with_user("romeo", "j4l13t");
    hub.stream.tls = xmpp_stream::TlsPolicy::Optional;
    hub.stream.allow_plain_without_tls = true;
    let config = RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&["localhost"]).unwrap(),
        log: false,
        trace: false,
        s2s: None,
    };
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    ServerHandle::spawn_websocket(any, any, false, config).unwrap()
}

type Ws = WebSocketStream<TcpStream>;

async fn connect(addr: SocketAddr, subprotocol: Option<&str>) -> Result<Ws, String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("ws://{addr}/xmpp-websocket")
        .into_client_request()
        .unwrap();
    if let Some(protocol) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    client_async(request, tcp)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// The next text message, `None` at the close.
async fn next(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(text))) => return Some(text.as_str().to_owned()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

/// Open, PLAIN, restart, bind: returns the socket on a negotiated stream.
async fn login(addr: SocketAddr) -> Ws {
    let mut ws = connect(addr, Some("xmpp")).await.unwrap();
    send(&mut ws, OPEN).await;
    assert!(
        next(&mut ws)
            .await
            .unwrap()
            .starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost'")
    );
    let features = next(&mut ws).await.unwrap();
    assert!(
        features.contains("PLAIN") && !features.contains("starttls"),
        "{features}"
    );
    send(&mut ws, AUTH).await;
    assert!(next(&mut ws).await.unwrap().starts_with("<success"));
    send(&mut ws, OPEN).await;
    next(&mut ws).await.unwrap();
    next(&mut ws).await.unwrap();
    send(&mut ws, BIND).await;
    assert!(next(&mut ws).await.unwrap().contains("juliet@localhost/ws"));
    ws
}

/// What the server sends after `frame`: every message up to its close.
async fn after(ws: &mut Ws, frame: Message) -> Vec<String> {
    ws.send(frame).await.unwrap();
    let mut got = Vec::new();
    while let Some(text) = next(ws).await {
        got.push(text);
    }
    got
}

fn error(condition: &str) -> [String; 2] {
    [
        format!(
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
        ),
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".to_owned(),
    ]
}

#[tokio::test]
async fn subprotocol_and_path_are_required() {
    let server = server();
    let addr = server.websocket_addr.unwrap();
    assert!(connect(addr, None).await.is_err());
    assert!(connect(addr, Some("chat")).await.is_err());
    let ws = connect(addr, Some("chat, xmpp")).await.unwrap();
    drop(ws);
}

#[tokio::test]
async fn logs_in_chats_and_closes_one_element_per_message() {
    let server = server();
    let addr = server.websocket_addr.unwrap();
    let mut juliet = login(addr).await;
    send(&mut juliet, "<message xmlns='jabber:client' to='juliet@localhost/ws' id='m1'><body>to myself</body></message>").await;
    let echoed = next(&mut juliet).await.unwrap();
    // One message, a document of its own declaring its namespace (RFC 7395 §3.3.3), in
    // whatever attribute order the server writes (the bytes as sent, spliced).
    let element: minidom::Element = echoed.parse().unwrap_or_else(|e| panic!("{e}: {echoed}"));
    assert!(element.is("message", "jabber:client"), "{echoed}");
    assert_eq!(
        element.attr("from"),
        Some("juliet@localhost/ws"),
        "{echoed}"
    );
    assert_eq!(
        element
            .get_child("body", "jabber:client")
            .map(minidom::Element::text),
        Some("to myself".to_owned()),
        "{echoed}"
    );
    let rest = after(
        &mut juliet,
        Message::text("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"),
    )
    .await;
    assert_eq!(
        rest,
        ["<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"]
    );
}

#[tokio::test]
async fn hostile_frames_get_their_exact_errors() {
    let server = server();
    let addr = server.websocket_addr.unwrap();
    let big = format!(
        "<message xmlns='jabber:client' to='juliet@localhost/ws'><body>{}</body></message>",
        "x".repeat(xmpp_server::MAX_MESSAGE_BYTES)
    );
    let cases: Vec<(&str, Message, &str)> = vec![
        (
            "partial element",
            Message::text("<message xmlns='jabber:client' to='juliet@localhost/ws'><body>x"),
            "not-well-formed",
        ),
        (
            "two elements",
            Message::text(
                "<message xmlns='jabber:client' to='juliet@localhost/ws'><body>1</body></message><message xmlns='jabber:client' to='juliet@localhost/ws'><body>2</body></message>",
            ),
            "not-well-formed",
        ),
        (
            "stream header in a frame",
            Message::text(
                "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
            ),
            "invalid-namespace",
        ),
        (
            "binary frame",
            Message::binary(b"<presence xmlns='jabber:client'/>".to_vec()),
            "unsupported-encoding",
        ),
        ("oversized message", Message::text(big), "policy-violation"),
    ];
    for (what, frame, condition) in cases {
        let mut ws = login(addr).await;
        let got = after(&mut ws, frame).await;
        // Exactly the error and the close: no message delivered back to us.
        assert_eq!(got, error(condition), "{what}");
    }
    // Before the open: wrong framing namespace, wrong version.
    for (open, condition) in [
        (
            "<open xmlns='urn:example:wrong' to='localhost' version='1.0'/>",
            "invalid-namespace",
        ),
        (
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='2.0'/>",
            "unsupported-version",
        ),
    ] {
        let mut ws = connect(addr, Some("xmpp")).await.unwrap();
        let got = after(&mut ws, Message::text(open)).await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1..], error(condition), "{open}");
    }
}

#[tokio::test]
async fn text_after_close_is_not_delivered() {
    let server = server();
    let addr = server.websocket_addr.unwrap();
    let mut juliet = login(addr).await;
    send(
        &mut juliet,
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
    )
    .await;
    // Sent right behind the close, before the server's close arrives.
    let _ = juliet
        .send(Message::text(
            "<message xmlns='jabber:client' to='juliet@localhost/ws'><body>late</body></message>",
        ))
        .await;
    let mut got = Vec::new();
    while let Some(text) = next(&mut juliet).await {
        got.push(text);
    }
    assert_eq!(
        got,
        ["<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"]
    );
}
