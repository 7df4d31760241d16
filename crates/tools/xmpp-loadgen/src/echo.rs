//! A trivial echo peer: the load generator's measuring instrument, **not an XMPP server**.
//!
//! It exists to measure the load generator's own ceiling, so that a figure against a real
//! server can be recognized as client-bound (issue 17). It does as little work per message as
//! it can while the generator's sessions run unchanged, over real TLS:
//!
//! - It speaks only what [`run`](crate::run) sends: stream header, STARTTLS, SCRAM-SHA-1 or
//!   SCRAM-SHA-256, resource binding, initial presence, chat messages, the stream's end.
//!   Negotiation is answered with canned bytes (the SCRAM exchange itself is the
//!   `xmpp-sasl` server's, because the client checks the server signature; every account has
//!   the one password the peer was given, whatever the user name). Nothing is validated as
//!   XML.
//! - After binding, each top-level element is framed by byte search (`<name ...>` up to the
//!   first `</name>`, or a self-closing tag), never parsed. A `<message>` is routed to the
//!   session bound to the bare JID in its `to='...'` attribute, found by byte search, with
//!   one rewrite: `from='<sender's full JID>'` inserted after `<message`, so that the partner
//!   can answer. Messages to no one are dropped; presence, IQs and anything else are ignored.
//! - It must only listen on 127.0.0.1: [`EchoPeer::bind`] takes a port, not an address.
//!
//! Robustness, though it only meets the generator: every buffer is bounded (a top-level
//! element of more than [`MAX_ELEMENT`] bytes closes the session, each session's outgoing
//! queue holds at most [`QUEUE`] messages), negotiation must finish within
//! [`NEGOTIATION_TIMEOUT`], and input it cannot frame closes the session; nothing panics.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use xmpp_sasl::{
    Condition, CredentialStore, Mechanism, PasswordPrep, ScramHash, Server, ServerConfig,
    ServerStep, StoredCredentials,
};

/// Largest top-level element (stream header, SASL element, stanza) the peer buffers.
pub const MAX_ELEMENT: usize = 64 * 1024;
/// Messages queued for one session before the senders to it wait.
pub const QUEUE: usize = 4096;
/// How long a connection may take from TCP accept to bound resource.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(60);
/// SCRAM iteration count of the one set of credentials (the client's minimum).
const ITERATIONS: u32 = 4096;
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes one write gathers from a session's queue before it writes them.
const WRITE_BATCH: usize = 64 * 1024;

const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const CLOSE: &[u8] = b"</stream:stream>";

/// What the peer needs to know: the domain its sessions log in to and their one password.
#[derive(Clone, Debug)]
pub struct EchoConfig {
    /// The XMPP domain (the `from` of its stream headers and the domain of bound JIDs).
    pub domain: String,
    /// The password of every account.
    pub password: String,
}

/// The peer's state shared by every connection.
struct State {
    domain: String,
    store: Store,
    mechanisms: Vec<Mechanism>,
    /// Bare JID to the queue of the session bound to it (the last one bound wins).
    routes: Mutex<HashMap<Vec<u8>, mpsc::Sender<Vec<u8>>>>,
    /// Connections accepted, for stream ids and SCRAM nonces.
    accepted: AtomicU64,
    /// A per-process prefix of the SCRAM nonces (not secret: a measuring instrument).
    nonce_prefix: String,
}

/// The one set of SCRAM credentials every user name gets.
struct Store {
    sha1: StoredCredentials,
    sha256: StoredCredentials,
}

impl CredentialStore for Store {
    fn scram_credentials(
        &self,
        _authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        Ok(match hash {
            ScramHash::Sha1 => Some(self.sha1.clone()),
            ScramHash::Sha256 => Some(self.sha256.clone()),
            _ => None,
        })
    }
}

/// An echo peer listening on 127.0.0.1; [`EchoPeer::serve`] runs it.
pub struct EchoPeer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
}

impl EchoPeer {
    /// Listens on `127.0.0.1:port` (0 for any free port) with the TLS server configuration
    /// `tls` (e.g. `xmpp_host::tls::server_config`, the one `xmpp-server` uses).
    ///
    /// # Errors
    /// When the domain needs escaping (it goes into the peer's bytes as it is), the port
    /// cannot be bound or the credentials cannot be derived.
    pub async fn bind(
        port: u16,
        tls: Arc<rustls::ServerConfig>,
        config: &EchoConfig,
    ) -> Result<Self, String> {
        if !quotable(&config.domain) || config.domain.contains('/') {
            return Err(format!("domain {:?}: not a plain host name", config.domain));
        }
        let derive = |hash| {
            StoredCredentials::derive(
                hash,
                &config.password,
                PasswordPrep::SaslPrep,
                b"xmpp-loadgen-echo-salt",
                ITERATIONS,
            )
            .map_err(|e| format!("credentials: {e}"))
        };
        let store = Store {
            sha1: derive(ScramHash::Sha1)?,
            sha256: derive(ScramHash::Sha256)?,
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
        let nonce_prefix = format!(
            "echo{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        Ok(EchoPeer {
            listener,
            acceptor: TlsAcceptor::from(tls),
            state: Arc::new(State {
                domain: config.domain.clone(),
                store,
                mechanisms: vec![Mechanism::ScramSha256, Mechanism::ScramSha1],
                routes: Mutex::new(HashMap::new()),
                accepted: AtomicU64::new(0),
                nonce_prefix,
            }),
        })
    }

    /// The address it listens on (always 127.0.0.1).
    ///
    /// # Errors
    /// When the socket cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until the task is dropped, each on its own task. Must run inside
    /// a tokio runtime with the I/O driver enabled.
    pub async fn serve(self) {
        loop {
            let Ok((tcp, _)) = self.listener.accept().await else {
                // Out of descriptors or similar: let the sessions we have finish theirs.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let state = self.state.clone();
            let acceptor = self.acceptor.clone();
            tokio::spawn(async move {
                // Every way a session ends is the same to a measuring instrument: closed.
                let _ = session(tcp, acceptor, state).await;
            });
        }
    }
}

/// What [`frame`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// Bytes to skip: whitespace or an XML declaration.
    Skip(usize),
    /// A stream header of this many bytes.
    Header(usize),
    /// The stream's end tag, this many bytes.
    Close(usize),
    /// A top-level element: its start tag ends at `tag_end` (exclusive), the element at
    /// `end` (exclusive); `name_end` ends its name (it starts at 1).
    Element {
        name_end: usize,
        tag_end: usize,
        end: usize,
    },
    /// Something the peer cannot frame.
    Bad,
}

/// `needle`'s first position in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + i;
        if hay.get(at + 1..at + needle.len())? == rest {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Frames the top-level item at the start of `buf` by byte search (see the module docs).
fn frame(buf: &[u8]) -> Frame {
    let Some(&first) = buf.first() else {
        return Frame::Incomplete;
    };
    if first.is_ascii_whitespace() {
        let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        return Frame::Skip(n);
    }
    if first != b'<' {
        return Frame::Bad;
    }
    let Some(&second) = buf.get(1) else {
        return Frame::Incomplete;
    };
    if second == b'?' {
        return find(buf, b"?>").map_or(Frame::Incomplete, |i| Frame::Skip(i + 2));
    }
    let Some(gt) = buf.iter().position(|&b| b == b'>') else {
        return Frame::Incomplete;
    };
    if second == b'/' {
        return if buf.get(..gt + 1) == Some(CLOSE) {
            Frame::Close(gt + 1)
        } else {
            Frame::Bad
        };
    }
    let name_end = buf
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
        .unwrap_or(gt);
    let Some(name) = buf.get(1..name_end).filter(|n| !n.is_empty()) else {
        return Frame::Bad;
    };
    if name == b"stream:stream" {
        return Frame::Header(gt + 1);
    }
    if buf.get(gt.wrapping_sub(1)) == Some(&b'/') {
        return Frame::Element {
            name_end,
            tag_end: gt + 1,
            end: gt + 1,
        };
    }
    let mut close = Vec::with_capacity(name.len() + 3);
    close.extend_from_slice(b"</");
    close.extend_from_slice(name);
    close.push(b'>');
    let body = buf.get(gt + 1..).unwrap_or_default();
    match find(body, &close) {
        Some(i) => Frame::Element {
            name_end,
            tag_end: gt + 1,
            end: gt + 1 + i + close.len(),
        },
        None => Frame::Incomplete,
    }
}

/// The value of attribute `name` in the start tag `tag` (either quote), by byte search.
fn attr<'a>(tag: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    loop {
        let at = from + find(tag.get(from..)?, name)?;
        let before = tag.get(at.checked_sub(1)?)?;
        let after = at + name.len();
        if before.is_ascii_whitespace() && tag.get(after) == Some(&b'=') {
            let quote = *tag.get(after + 1)?;
            if quote != b'\'' && quote != b'"' {
                return None;
            }
            let value = tag.get(after + 2..)?;
            let len = value.iter().position(|&b| b == quote)?;
            return value.get(..len);
        }
        from = after;
    }
}

/// A session's input buffer: bytes read and not yet framed, bounded by [`MAX_ELEMENT`].
struct Input {
    buf: Vec<u8>,
    start: usize,
}

/// One framed top-level item, copied out (negotiation only).
enum Item {
    Header,
    Close,
    Element {
        name: Vec<u8>,
        tag: Vec<u8>,
        content: Vec<u8>,
    },
}

impl Input {
    fn new() -> Self {
        Input {
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Reads more bytes; `Err` on end of input, error, or an element over the bound.
    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<(), String> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() >= MAX_ELEMENT {
            return Err("element over the size bound".to_owned());
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let read = r.read(self.buf.get_mut(old..).unwrap_or_default()).await;
        let n = *read.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        match read {
            Ok(0) => Err("connection closed".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The next item, reading as needed (negotiation: copies it out).
    async fn next<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Item, String> {
        loop {
            let pending = self.pending();
            match frame(pending) {
                Frame::Incomplete => self.fill(r).await?,
                Frame::Skip(n) => self.start += n,
                Frame::Header(n) => {
                    self.start += n;
                    return Ok(Item::Header);
                }
                Frame::Close(_) => return Ok(Item::Close),
                Frame::Element {
                    name_end,
                    tag_end,
                    end,
                } => {
                    let item = Item::Element {
                        name: pending.get(1..name_end).unwrap_or_default().to_vec(),
                        tag: pending.get(..tag_end).unwrap_or_default().to_vec(),
                        content: pending
                            .get(tag_end..end)
                            .and_then(|c| c.get(..c.iter().rposition(|&b| b == b'<')?))
                            .unwrap_or_default()
                            .to_vec(),
                    };
                    self.start += end;
                    return Ok(item);
                }
                Frame::Bad => return Err("input the echo peer cannot frame".to_owned()),
            }
        }
    }

    /// The next item, which must be an element named `name`: its start tag and content.
    async fn expect<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        name: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        match self.next(r).await? {
            Item::Element {
                name: got,
                tag,
                content,
            } if got == name => Ok((tag, content)),
            _ => Err(format!("expected <{}>", String::from_utf8_lossy(name))),
        }
    }

    async fn expect_header<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<(), String> {
        match self.next(r).await? {
            Item::Header => Ok(()),
            _ => Err("expected a stream header".to_owned()),
        }
    }
}

type Reader = ReadHalf<TlsStream<TcpStream>>;
type Writer = WriteHalf<TlsStream<TcpStream>>;

async fn send<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), String> {
    w.write_all(bytes).await.map_err(|e| e.to_string())?;
    w.flush().await.map_err(|e| e.to_string())
}

impl State {
    fn header(&self, id: u64, features: &str) -> Vec<u8> {
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' id='echo{id}' from='{}' \
             version='1.0' xml:lang='en'><stream:features>{features}</stream:features>",
            self.domain
        )
        .into_bytes()
    }
}

/// A user name safe to put in a JID and an attribute without escaping.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Printable ASCII that can go between single quotes as it is.
fn quotable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"'\"<>&".contains(&b))
}

/// One connection: negotiation with canned answers, then routing until either end closes.
async fn session(tcp: TcpStream, acceptor: TlsAcceptor, state: Arc<State>) -> Result<(), String> {
    let id = state.accepted.fetch_add(1, Ordering::Relaxed);
    let negotiated =
        tokio::time::timeout(NEGOTIATION_TIMEOUT, negotiate(tcp, acceptor, &state, id))
            .await
            .map_err(|_| "negotiation timed out".to_owned())??;
    let (reader, writer, input, full_jid, bare_jid) = negotiated;
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    let writer_task = tokio::spawn(write_loop(writer, rx, done_rx));
    if let Ok(mut routes) = state.routes.lock() {
        routes.insert(bare_jid.clone(), tx.clone());
    }
    let result = route_loop(reader, input, &state, &full_jid, &tx).await;
    if let Ok(mut routes) = state.routes.lock()
        && routes.get(&bare_jid).is_some_and(|t| t.same_channel(&tx))
    {
        routes.remove(&bare_jid);
    }
    let _ = tx.try_send(CLOSE.to_vec());
    drop(tx);
    let _ = done_tx.send(());
    let _ = writer_task.await;
    result
}

type Negotiated = (Reader, Writer, Input, Vec<u8>, Vec<u8>);

/// STARTTLS, SASL and bind; returns the halves, the unread input, the full and bare JIDs.
async fn negotiate(
    mut tcp: TcpStream,
    acceptor: TlsAcceptor,
    state: &State,
    id: u64,
) -> Result<Negotiated, String> {
    let mut input = Input::new();
    input.expect_header(&mut tcp).await?;
    let starttls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";
    send(&mut tcp, &state.header(id, starttls)).await?;
    input.expect(&mut tcp, b"starttls").await?;
    if !input.pending().is_empty() {
        return Err("bytes after <starttls/>".to_owned());
    }
    send(
        &mut tcp,
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    )
    .await?;
    let tls = acceptor
        .accept(tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut reader, mut writer) = tokio::io::split(tls);
    let mut input = Input::new();

    input.expect_header(&mut reader).await?;
    let mut offer = format!("<mechanisms xmlns='{SASL_NS}'>");
    for mechanism in &state.mechanisms {
        let _ = write!(offer, "<mechanism>{mechanism}</mechanism>");
    }
    offer.push_str("</mechanisms>");
    send(&mut writer, &state.header(id, &offer)).await?;
    let (tag, content) = input.expect(&mut reader, b"auth").await?;
    let mechanism = attr(&tag, b"mechanism")
        .and_then(|m| std::str::from_utf8(m).ok())
        .and_then(|m| m.parse::<Mechanism>().ok())
        .ok_or("no usable mechanism")?;
    let nonce = format!("{}x{id:016x}", state.nonce_prefix);
    let config = ServerConfig::new(nonce)
        .tls(true)
        .offer(state.mechanisms.clone());
    let mut sasl = Server::new(mechanism, config).map_err(|e| e.to_string())?;
    let decode = |content: &[u8]| STANDARD.decode(content).map_err(|e| e.to_string());
    let mut response = decode(&content)?;
    let authcid = loop {
        match sasl.step(&state.store, &response) {
            Ok(ServerStep::Challenge(challenge)) => {
                let text = format!(
                    "<challenge xmlns='{SASL_NS}'>{}</challenge>",
                    STANDARD.encode(challenge)
                );
                send(&mut writer, text.as_bytes()).await?;
                let (_, content) = input.expect(&mut reader, b"response").await?;
                response = decode(&content)?;
            }
            Ok(ServerStep::Success {
                additional_data,
                identity,
            }) => {
                let text = format!(
                    "<success xmlns='{SASL_NS}'>{}</success>",
                    STANDARD.encode(additional_data.unwrap_or_default())
                );
                send(&mut writer, text.as_bytes()).await?;
                break identity.authcid.unwrap_or_default();
            }
            Ok(_) => return Err("unexpected SASL step".to_owned()),
            Err(e) => {
                let text = format!(
                    "<failure xmlns='{SASL_NS}'><not-authorized/></failure></stream:stream>"
                );
                let _ = send(&mut writer, text.as_bytes()).await;
                return Err(format!("SASL: {e}"));
            }
        }
    };
    if !plain_name(&authcid) {
        return Err("user name outside [A-Za-z0-9._-]".to_owned());
    }

    input.expect_header(&mut reader).await?;
    let bind = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>";
    send(&mut writer, &state.header(id, bind)).await?;
    let (tag, content) = input.expect(&mut reader, b"iq").await?;
    let iq_id = attr(&tag, b"id")
        .and_then(|i| std::str::from_utf8(i).ok())
        .filter(|i| quotable(i))
        .ok_or("bind without a usable id")?
        .to_owned();
    let resource = find(&content, b"<resource>")
        .and_then(|at| {
            let rest = content.get(at + b"<resource>".len()..)?;
            rest.get(..find(rest, b"</resource>")?)
        })
        .and_then(|r| std::str::from_utf8(r).ok())
        .filter(|r| plain_name(r))
        .map_or_else(|| format!("echo{id}"), ToOwned::to_owned);
    let bare = format!("{authcid}@{}", state.domain);
    let full = format!("{bare}/{resource}");
    let result = format!(
        "<iq type='result' id='{iq_id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>{full}</jid></bind></iq>"
    );
    send(&mut writer, result.as_bytes()).await?;
    Ok((reader, writer, input, full.into_bytes(), bare.into_bytes()))
}

/// Routes every message the session sends until it closes or sends what cannot be framed.
async fn route_loop(
    mut reader: Reader,
    mut input: Input,
    state: &State,
    full_jid: &[u8],
    own: &mpsc::Sender<Vec<u8>>,
) -> Result<(), String> {
    // The last destination and its queue: a generator session writes to one partner only,
    // so the shared table is consulted once per partner, not once per message.
    let mut cached: Option<(Vec<u8>, mpsc::Sender<Vec<u8>>)> = None;
    loop {
        let pending = input.pending();
        let (consumed, routed) = match frame(pending) {
            Frame::Incomplete => {
                input.fill(&mut reader).await?;
                continue;
            }
            Frame::Skip(n) => (n, None),
            Frame::Close(_) => return Ok(()),
            Frame::Header(_) | Frame::Bad => {
                return Err("input the echo peer cannot frame".to_owned());
            }
            Frame::Element {
                name_end,
                tag_end,
                end,
            } => {
                let tag = pending.get(..tag_end).unwrap_or_default();
                let routed = if pending.get(1..name_end) == Some(b"message")
                    && attr(tag, b"from").is_none()
                    && let Some(to) = attr(tag, b"to")
                {
                    let bare = to.split(|&b| b == b'/').next().unwrap_or_default();
                    let rest = pending.get(name_end..end).unwrap_or_default();
                    let mut out = Vec::with_capacity(end + full_jid.len() + 8);
                    out.extend_from_slice(b"<message from='");
                    out.extend_from_slice(full_jid);
                    out.push(b'\'');
                    out.extend_from_slice(rest);
                    Some((bare.to_vec(), out))
                } else {
                    None
                };
                (end, routed)
            }
        };
        input.start += consumed;
        let Some((bare, out)) = routed else {
            continue;
        };
        if cached.as_ref().is_none_or(|(to, _)| *to != bare) {
            let found = state
                .routes
                .lock()
                .ok()
                .and_then(|routes| routes.get(&bare).cloned());
            cached = found.map(|tx| (bare, tx));
        }
        if let Some((_, tx)) = &cached {
            // A session writing to itself must not wait on its own full queue.
            let sent = if tx.same_channel(own) {
                tx.try_send(out).map_err(|_| ())
            } else {
                tx.send(out).await.map_err(|_| ())
            };
            if sent.is_err() {
                // Gone: drop the message, look the address up again next time.
                cached = None;
            }
        }
    }
}

/// Writes a session's queue, gathering what is queued into one write, until `done` fires
/// (then what is queued is still written) or every sender is gone.
async fn write_loop(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut done: oneshot::Receiver<()>,
) {
    let mut out = Vec::with_capacity(WRITE_BATCH);
    let mut finishing = false;
    loop {
        let first = if finishing {
            rx.try_recv().ok()
        } else {
            tokio::select! {
                m = rx.recv() => m,
                _ = &mut done => {
                    finishing = true;
                    continue;
                }
            }
        };
        let Some(first) = first else {
            break;
        };
        out.clear();
        out.extend_from_slice(&first);
        while out.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => out.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if send(&mut writer, &out).await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_what_the_generator_sends() {
        assert_eq!(frame(b""), Frame::Incomplete);
        assert_eq!(frame(b" \n<"), Frame::Skip(2));
        assert_eq!(frame(b"<?xml version='1.0'?><"), Frame::Skip(21));
        let header = b"<stream:stream to='localhost' version='1.0'>";
        assert_eq!(frame(header), Frame::Header(header.len()));
        assert_eq!(frame(b"</stream:stream>"), Frame::Close(16));
        assert_eq!(
            frame(b"<presence/><m"),
            Frame::Element {
                name_end: 9,
                tag_end: 11,
                end: 11
            }
        );
        let message = b"<message to='u1@localhost' type='chat'><body>ping 1</body></message>";
        assert_eq!(
            frame(message),
            Frame::Element {
                name_end: 8,
                tag_end: 39,
                end: message.len()
            }
        );
        assert_eq!(frame(&message[..message.len() - 1]), Frame::Incomplete);
        assert_eq!(frame(b"<message to='u1'"), Frame::Incomplete);
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        assert_eq!(frame(b"text"), Frame::Bad);
        assert_eq!(frame(b"</message>"), Frame::Bad);
        assert_eq!(frame(b"<>"), Frame::Bad);
        assert_eq!(frame(b"< message/>"), Frame::Bad);
    }

    #[test]
    fn finds_attributes_by_byte_search() {
        let tag = b"<message xmlns=\"jabber:client\" to=\"a@b/c\" type='chat' xto='x'>";
        assert_eq!(attr(tag, b"to"), Some(&b"a@b/c"[..]));
        assert_eq!(attr(tag, b"type"), Some(&b"chat"[..]));
        assert_eq!(attr(tag, b"from"), None);
        assert_eq!(attr(b"<m to=x>", b"to"), None, "unquoted");
        assert_eq!(attr(b"<m to='x>", b"to"), None, "unterminated");
        assert_eq!(attr(b"<m xto='x'>", b"to"), None, "only whole names");
    }

    #[test]
    fn finds_needles() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"abc", b""), None);
    }

    #[test]
    fn user_names_must_need_no_escaping() {
        assert!(plain_name("user12"));
        assert!(plain_name("load-3.x_y"));
        assert!(!plain_name(""));
        assert!(!plain_name("a'b"));
        assert!(!plain_name("a<b"));
        assert!(quotable("a+b/c=:"));
        assert!(!quotable("a'b"));
        assert!(!quotable("a&b"));
        assert!(!quotable(""));
    }
}
