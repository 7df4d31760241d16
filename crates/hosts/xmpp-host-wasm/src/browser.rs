//! The client machine in a web page, through `wasm-bindgen` (feature `browser`).
//!
//! [`BrowserClient`] is a [`ClientStream`] switched to RFC 7395 framing: the page's JavaScript
//! owns the browser's `WebSocket` (subprotocol `xmpp`) and moves whole messages both ways;
//! the machine gets its randomness from `crypto.getRandomValues` and its time from
//! `performance.now()` (monotonic milliseconds since the page loaded), both imported here.
//! Nothing else crosses: outputs come out one at a time from [`poll`](BrowserClient::poll) as
//! JSON text (`{"type":"Transmit","text":...}` for a message to send, the events in the
//! shapes the C ABI uses, see the crate docs).
//!
//! ```js
//! import init, { BrowserClient } from "./pkg/xmpp_host_wasm.js";
//! await init();
//! const client = new BrowserClient("alice@localhost", "secret", false);
//! const ws = new WebSocket("ws://127.0.0.1:5280/xmpp-websocket", "xmpp");
//! const pump = () => { for (let o; (o = client.poll()); ) { o = JSON.parse(o);
//!   if (o.type === "Transmit") ws.send(o.text); else console.log(o.summary); } };
//! ws.onopen = () => { client.start(); pump(); };
//! ws.onmessage = (m) => { client.message(m.data); pump(); };
//! ws.onclose = () => { client.transport_closed(); pump(); };
//! ```
//!
//! **Unsafe code.** `#[wasm_bindgen]` expands to exported symbols and FFI shims, which the
//! `unsafe_code` lint counts; as in [`abi`](crate::abi), it is allowed in this module alone,
//! and the module itself writes no `unsafe` block.
#![allow(unsafe_code)]

use wasm_bindgen::prelude::*;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Entropy, Instant, Output, TlsPolicy, Transport,
};

use crate::json;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues`: the browser's CSPRNG.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);

    /// `performance.now()`: monotonic milliseconds.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Randomness from `crypto.getRandomValues` (at most 65 536 bytes per call, its limit).
struct BrowserEntropy;

impl Entropy for BrowserEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(65_536) {
            get_random_values(chunk);
        }
    }
}

/// Now, from `performance.now()` (never negative, never going back).
fn now() -> Instant {
    // Milliseconds since the page loaded: non-negative and far below 2^53.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Instant::from_millis(performance_now().max(0.0) as u64)
}

/// One XMPP client session in the page: the machine, fed and polled by the page's script.
#[wasm_bindgen]
pub struct BrowserClient {
    stream: ClientStream,
    secure: bool,
}

#[wasm_bindgen]
impl BrowserClient {
    /// A client for `jid` with `password`. `secure`: the WebSocket is `wss:` (TLS by the
    /// browser); on `ws:` the machine is told there is no TLS at all, as it must be to log in.
    #[wasm_bindgen(constructor)]
    pub fn new(jid: &str, password: &str, secure: bool) -> Result<BrowserClient, JsError> {
        let jid = BareJid::new(jid).map_err(|e| JsError::new(&format!("JID {jid:?}: {e}")))?;
        let mut config = ClientConfig::new(jid, password);
        if !secure {
            config.tls = TlsPolicy::Disabled;
        }
        Ok(BrowserClient {
            stream: ClientStream::new(config, BrowserEntropy).websocket(),
            secure,
        })
    }

    /// The WebSocket is open: send `<open/>`. On `wss:` the page has no channel binding to
    /// give (browsers expose none), so SCRAM runs without `-PLUS`.
    pub fn start(&mut self) -> Result<(), JsError> {
        let transport = if self.secure {
            Transport::Tls(Vec::new())
        } else {
            Transport::Plain
        };
        self.stream
            .start(now(), transport)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// One WebSocket message from the server (a protocol error in it comes out of
    /// [`poll`](Self::poll) as the stream error to send and a `Closed` event).
    pub fn message(&mut self, text: &str) {
        let _ = self.stream.handle_message(now(), text.as_bytes());
    }

    /// Send a stanza given as XML text in `jabber:client`.
    pub fn send(&mut self, xml: &str) -> Result<(), JsError> {
        let stanza: minidom::Element = xml
            .parse()
            .map_err(|e| JsError::new(&format!("not a stanza: {e}")))?;
        self.stream
            .send_stanza(now(), &stanza)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Close the stream: `<close/>`, then wait (bounded) for the server's.
    pub fn close(&mut self) -> Result<(), JsError> {
        if self.stream.is_closed() {
            return Ok(());
        }
        self.stream
            .close(now())
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The WebSocket closed or failed.
    pub fn transport_closed(&mut self) {
        self.stream.transport_closed(now());
    }

    /// Milliseconds until [`timeout`](Self::timeout) should be called, if a timer runs.
    pub fn next_timeout_ms(&self) -> Option<f64> {
        let now = now();
        self.stream.poll_timeout().map(|at| {
            #[allow(clippy::cast_precision_loss)]
            let ms = at.saturating_duration_since(now).as_millis() as f64;
            ms
        })
    }

    /// A timer the page set from [`next_timeout_ms`](Self::next_timeout_ms) fired.
    pub fn timeout(&mut self) {
        self.stream.handle_timeout(now());
    }

    /// Whether the stream is over.
    pub fn is_closed(&self) -> bool {
        self.stream.is_closed()
    }

    /// The next output as JSON text, or `undefined` when there is none: a message to send
    /// (`{"type":"Transmit","text":"<open .../>"}`) or an event.
    pub fn poll(&mut self) -> Option<String> {
        let output = self.stream.poll_output()?;
        Some(match &output {
            Output::Transmit(bytes) => format!(
                r#"{{"type":"Transmit","text":{}}}"#,
                json::string(&String::from_utf8_lossy(bytes))
            ),
            other => json::output(other).unwrap_or_default(),
        })
    }
}
