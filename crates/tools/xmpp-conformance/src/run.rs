//! Running cases against a server: negotiate up to the case's [`Phase`] (by hand for the
//! phases before binding, with our `ClientStream` for bound sessions), send the case's bytes,
//! read what comes back until [`Expect::judge`] decides or the case's deadline passes.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection, RawTransport};
use xmpp_stream::conformance::{Act, Case, Expect, Observer, Phase, Seen, Vars, Verdict, Who};
use xmpp_stream::features::ns;
use xmpp_stream::{BareJid, ClientConfig};

/// Bytes kept from the server per case (reads stop there: a case never floods us).
pub const MAX_CASE_BYTES: usize = 64 * 1024;
/// At most this many cases run at once (each holds one or two connections).
pub const MAX_JOBS: usize = 8;
/// How long a [`Expect::settles`] case listens after the answer, for bytes that must not come.
const SETTLE: Duration = Duration::from_millis(300);
/// How much of the received bytes a report shows.
const SHOWN: usize = 400;

/// An account on the server under test.
#[derive(Clone, Debug)]
pub struct Account {
    /// Its localpart.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// The server under test and how to reach it.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where it listens (STARTTLS, or direct TLS with `direct_tls`).
    pub addr: SocketAddr,
    /// The XMPP domain it serves.
    pub domain: String,
    /// The name its certificate must carry (usually the domain).
    pub server_name: String,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    pub direct_tls: bool,
    /// The client TLS configuration (trust a CA file, or accept anything).
    pub tls: Arc<rustls::ClientConfig>,
    /// The first test account.
    pub a: Account,
    /// The second, for the cases with two accounts.
    pub b: Option<Account>,
    /// Each case's deadline: a server silent that long fails the case.
    pub timeout: Duration,
    /// The server's XEP-0114 component port and a component it accepts, for the cases
    /// where the checker plays a component (without it they are n/a).
    pub component: Option<ComponentTarget>,
    /// The server's server-to-server port (plain TCP first, as a remote server connects),
    /// for the cases where the checker plays a remote server (without it they are n/a).
    pub s2s: Option<SocketAddr>,
    /// The server's plain `ws:` XMPP-over-WebSocket endpoint (RFC 7395): its address and
    /// path, for the WebSocket cases (without it they are n/a).
    pub websocket: Option<(SocketAddr, String)>,
    /// A domain the checker authenticates as on the server-to-server port (SASL EXTERNAL
    /// with a certificate the server trusts), for the cases after authentication (without
    /// it, or without `s2s`, they are n/a).
    pub s2s_identity: Option<S2sIdentity>,
}

/// The checker as an authenticated remote server (RFC 6120 §13.8, XEP-0178 §3).
#[derive(Clone, Debug)]
pub struct S2sIdentity {
    /// The domain its certificate names (the `from` of its stream headers).
    pub domain: String,
    /// TLS presenting that certificate, trusting the server's s2s certificate.
    pub tls: Arc<rustls::ClientConfig>,
}

/// A component the server accepts (XEP-0114): the checker connects as it.
#[derive(Clone, Debug)]
pub struct ComponentTarget {
    /// The server's component port (plain TCP: the protocol has no TLS).
    pub addr: SocketAddr,
    /// The component's domain (the `to` of its stream header).
    pub domain: String,
    /// The shared secret its handshake proves.
    pub secret: String,
}

/// A case's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The server did what the RFC requires.
    Pass,
    /// It did not.
    Fail,
    /// The case does not apply (direct TLS has no STARTTLS, no second account, ...).
    NotApplicable,
}

impl Status {
    /// `pass`, `FAIL` or `n/a`.
    pub const fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::NotApplicable => "n/a",
        }
    }
}

/// One case's outcome, for the reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The case.
    pub case: &'static Case,
    /// Its result.
    pub status: Status,
    /// What the RFC requires, in words.
    pub expected: String,
    /// What came back: the verdict's reason and the server's bytes, shortened.
    pub received: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// Run `cases` against `target`, at most `jobs` at a time (bounded by [`MAX_JOBS`]); the
/// outcomes in the order of `cases`.
pub fn run_cases(target: &Target, cases: &[&'static Case], jobs: usize) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; cases.len()];
    let slots: Vec<std::sync::Mutex<Option<Outcome>>> =
        cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, MAX_JOBS) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let outcome = run_case(target, case);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(outcome);
                    }
                }
            });
        }
    });
    for (slot, out) in slots.into_iter().zip(outcomes.iter_mut()) {
        *out = slot.into_inner().ok().flatten();
    }
    outcomes.into_iter().flatten().collect()
}

/// Why a case could not reach its phase.
enum Setup {
    /// The case does not apply to this server or set-up.
    NotApplicable(String),
    /// Negotiation up to the phase failed.
    Failed(String),
}

/// Run one case.
pub fn run_case(target: &Target, case: &'static Case) -> Outcome {
    let started = Instant::now();
    let vars = target.vars();
    let expected = case.expect.describe(&vars);
    let (status, received) = match attempt(target, case, vars) {
        Ok((verdict, bytes)) => {
            let shown = shorten(&bytes);
            match verdict {
                Verdict::Pass => (Status::Pass, shown),
                Verdict::Fail(why) => (Status::Fail, format!("{why}: {shown}")),
                Verdict::Pending => (Status::Fail, format!("undecided: {shown}")),
            }
        }
        Err(Setup::NotApplicable(why)) => (Status::NotApplicable, why),
        Err(Setup::Failed(why)) => (Status::Fail, format!("set-up failed: {why}")),
    };
    Outcome {
        case,
        status,
        expected,
        received,
        elapsed: started.elapsed(),
    }
}

/// The server's bytes as text, shortened to 400 characters.
pub fn shorten(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut shown: String = text.chars().take(SHOWN).collect();
    if text.chars().count() > SHOWN {
        shown.push('…');
    }
    shown
}

impl Target {
    fn options(&self) -> ClientOptions {
        let mut options = ClientOptions::new(self.addr, &self.server_name, self.tls.clone());
        options.direct_tls = self.direct_tls;
        options.connect_timeout = self.timeout;
        options
    }

    /// The placeholders' values (the full JIDs are filled once bound).
    pub fn vars(&self) -> Vars {
        let b64 = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
        let plain = |password: &str| b64(format!("\0{}\0{password}", self.a.user));
        Vars {
            domain: self.domain.clone(),
            a: format!("{}@{}", self.a.user, self.domain),
            b: self
                .b
                .as_ref()
                .map(|b| format!("{}@{}", b.user, self.domain))
                .unwrap_or_default(),
            plain: plain(&self.a.password),
            plain_wrong: plain(&format!("{}-but-wrong", self.a.password)),
            scram_first: b64(format!("n,,n={},r=conformance0123456789", self.a.user)),
            component: self
                .component
                .as_ref()
                .map(|c| c.domain.clone())
                .unwrap_or_default(),
            remote: self
                .s2s_identity
                .as_ref()
                .map(|i| i.domain.clone())
                .unwrap_or_default(),
            ..Vars::default()
        }
    }
}

/// A WebSocket connection (RFC 7395), plain `ws:`.
type WebSocket = tungstenite::WebSocket<std::net::TcpStream>;

/// How a case's connection carries bytes.
enum Link {
    /// TCP (and TLS once started): a byte stream.
    Tcp(RawTransport),
    /// WebSocket: one message per element.
    Ws(Box<WebSocket>),
}

/// One connection of a case: its link and every byte read since the case began.
struct Wire {
    link: Link,
    buf: Vec<u8>,
    log: Vec<u8>,
}

impl Wire {
    fn new(raw: RawTransport) -> Self {
        Self::on(Link::Tcp(raw))
    }

    fn on(link: Link) -> Self {
        Wire {
            link,
            buf: vec![0; 16 * 1024],
            log: Vec::new(),
        }
    }

    /// The TCP transport (`None` on a WebSocket).
    fn raw(&mut self) -> Option<&mut RawTransport> {
        match &mut self.link {
            Link::Tcp(raw) => Some(raw),
            Link::Ws(_) => None,
        }
    }

    /// Write `bytes`: as they are on TCP, as one text message on a WebSocket.
    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.link {
            Link::Tcp(raw) => raw.write_all(bytes).map_err(|e| format!("write: {e}")),
            Link::Ws(ws) => {
                let text = String::from_utf8_lossy(bytes).into_owned();
                ws.send(tungstenite::Message::text(text))
                    .map_err(|e| format!("write: {e}"))
            }
        }
    }

    /// Write `bytes` as they are: on a WebSocket, one binary message.
    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.link {
            Link::Tcp(_) => self.send(bytes),
            Link::Ws(ws) => ws
                .send(tungstenite::Message::binary(bytes.to_vec()))
                .map_err(|e| format!("write: {e}")),
        }
    }

    /// End the stream politely, then the connection.
    fn close(&mut self) {
        match &mut self.link {
            Link::Tcp(raw) => {
                let _ = raw.write_all(b"</stream:stream>");
                raw.shutdown();
            }
            Link::Ws(ws) => {
                let _ = ws.send(tungstenite::Message::text(
                    "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
                ));
                let _ = ws.close(None);
                let _ = ws.flush();
            }
        }
    }

    /// Read until `done(seen)` or `deadline`; `false` if the deadline passed first.
    fn until(
        &mut self,
        observer: &mut Observer,
        deadline: Instant,
        done: impl Fn(&Seen) -> bool,
    ) -> bool {
        while !done(observer.seen()) {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            if observer.seen().eof || observer.seen().garbage.is_some() {
                return false;
            }
            self.read_once(observer, wait);
        }
        true
    }

    fn read_once(&mut self, observer: &mut Observer, wait: Duration) {
        if self.log.len() >= MAX_CASE_BYTES {
            observer.eof();
            return;
        }
        let ws = match &mut self.link {
            Link::Tcp(raw) => raw.read(&mut self.buf, wait),
            Link::Ws(ws) => {
                let _ = ws
                    .get_ref()
                    .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
                match ws.read() {
                    Ok(tungstenite::Message::Text(text)) => {
                        self.record(observer, text.as_bytes());
                        return;
                    }
                    Ok(tungstenite::Message::Binary(bytes)) => {
                        self.record(observer, &bytes);
                        return;
                    }
                    Ok(tungstenite::Message::Close(_)) => Ok(0),
                    // Pings are answered by the library; nothing for the case.
                    Ok(_) => return,
                    Err(tungstenite::Error::Io(e)) => Err(e),
                    Err(_) => Ok(0),
                }
            }
        };
        match ws {
            Ok(0) => observer.eof(),
            Ok(n) => {
                let bytes = self.buf[..n].to_vec();
                self.record(observer, &bytes);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => observer.eof(),
        }
    }
}

impl Wire {
    /// Keep and parse what the server sent (up to the case's byte bound).
    fn record(&mut self, observer: &mut Observer, bytes: &[u8]) {
        let n = bytes.len().min(MAX_CASE_BYTES - self.log.len());
        self.log.extend_from_slice(&bytes[..n]);
        observer.raw(&bytes[..n]);
        observer.feed(&bytes[..n]);
    }
}

fn header(domain: &str, declaration: bool) -> String {
    format!(
        "{}<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
         to='{domain}' version='1.0'>",
        if declaration {
            "<?xml version='1.0'?>"
        } else {
            ""
        }
    )
}

fn has(seen: &Seen, name: &str, namespace: &str) -> bool {
    seen.elements.iter().any(|e| e.is(name, namespace))
}

/// Open a stream and read its features.
fn open(
    wire: &mut Wire,
    domain: &str,
    first: bool,
    deadline: Instant,
) -> Result<minidom::Element, Setup> {
    open_with(wire, &header(domain, first), deadline)
}

/// Send `header` and read the stream features.
fn open_with(wire: &mut Wire, header: &str, deadline: Instant) -> Result<minidom::Element, Setup> {
    wire.send(header.as_bytes()).map_err(Setup::Failed)?;
    let mut observer = Observer::before_header();
    let got = wire.until(&mut observer, deadline, |s| {
        has(s, "features", ns::STREAMS) || has(s, "error", ns::STREAMS)
    });
    observer
        .seen()
        .elements
        .iter()
        .find(|e| e.is("features", ns::STREAMS))
        .cloned()
        .ok_or_else(|| {
            Setup::Failed(format!(
                "no stream features ({}): {}",
                if got { "stream error" } else { "timeout" },
                shorten(&wire.log)
            ))
        })
}

/// Send `<starttls/>`, wait for the answer and start TLS with `options`.
fn starttls(wire: &mut Wire, options: &ClientOptions, deadline: Instant) -> Result<(), Setup> {
    wire.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .map_err(Setup::Failed)?;
    let mut observer = Observer::inside_stream();
    if !wire.until(&mut observer, deadline, |s| !s.elements.is_empty()) {
        return Err(Setup::Failed(format!(
            "no <proceed/>: {}",
            shorten(&wire.log)
        )));
    }
    wire.raw()
        .ok_or_else(|| Setup::Failed("STARTTLS on a WebSocket".to_owned()))?
        .start_tls(options)
        .map_err(|e| Setup::Failed(format!("TLS: {e}")))?;
    Ok(())
}

/// Whether `features` offer the SASL `mechanism`.
fn offers(features: &minidom::Element, mechanism: &str) -> bool {
    features
        .get_child("mechanisms", ns::SASL)
        .is_some_and(|m| m.children().any(|c| c.text() == mechanism))
}

/// Send an `<auth/>` and wait for `<success/>`; `what` names the attempt in the error.
fn authenticate(wire: &mut Wire, auth: &str, what: &str, deadline: Instant) -> Result<(), Setup> {
    wire.send(auth.as_bytes()).map_err(Setup::Failed)?;
    let mut observer = Observer::inside_stream();
    wire.until(&mut observer, deadline, |s| {
        has(s, "success", ns::SASL) || has(s, "failure", ns::SASL)
    });
    if has(observer.seen(), "success", ns::SASL) {
        Ok(())
    } else {
        Err(Setup::Failed(format!(
            "{what} failed: {}",
            shorten(&wire.log)
        )))
    }
}

/// Negotiate by hand up to `phase` (one of the phases before binding); the connection and
/// the last stream features read (none for [`Phase::Connected`]).
fn by_hand(
    target: &Target,
    phase: Phase,
    deadline: Instant,
) -> Result<(Wire, Option<minidom::Element>), Setup> {
    let options = target.options();
    let (raw, _) = RawTransport::open(&options).map_err(|e| Setup::Failed(e.to_string()))?;
    let mut wire = Wire::new(raw);
    if phase == Phase::Connected {
        return Ok((wire, None));
    }
    let mut features = open(&mut wire, &target.domain, true, deadline)?;
    if phase == Phase::Opened {
        return Ok((wire, Some(features)));
    }
    if !wire.raw().is_some_and(|raw| raw.is_tls()) {
        if features.get_child("starttls", ns::TLS).is_none() {
            return Err(Setup::NotApplicable("no STARTTLS offered".to_owned()));
        }
        starttls(&mut wire, &options, deadline)?;
        features = open(&mut wire, &target.domain, false, deadline)?;
    }
    if phase == Phase::Secured {
        return Ok((wire, Some(features)));
    }
    if !offers(&features, "PLAIN") {
        return Err(Setup::NotApplicable(
            "SASL PLAIN not offered over TLS (needed to stop before binding)".to_owned(),
        ));
    }
    let vars = target.vars();
    authenticate(
        &mut wire,
        &format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            vars.plain
        ),
        "PLAIN login",
        deadline,
    )?;
    let features = open(&mut wire, &target.domain, false, deadline)?;
    Ok((wire, Some(features)))
}

/// A WebSocket connection with the `xmpp` subprotocol; for [`Phase::WsOpened`], `<open/>`
/// sent and the features read.
fn websocket(target: &Target, phase: Phase, deadline: Instant) -> Result<Wire, Setup> {
    use tungstenite::client::IntoClientRequest as _;
    let (addr, path) = target.websocket.as_ref().ok_or_else(|| {
        Setup::NotApplicable("no WebSocket endpoint given (--ws-port)".to_owned())
    })?;
    let tcp = std::net::TcpStream::connect_timeout(addr, target.timeout)
        .map_err(|e| Setup::Failed(format!("{addr}: {e}")))?;
    tcp.set_read_timeout(Some(target.timeout))
        .map_err(|e| Setup::Failed(e.to_string()))?;
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .map_err(|e| Setup::Failed(format!("WebSocket request: {e}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tungstenite::http::HeaderValue::from_static("xmpp"),
    );
    let (ws, _) = tungstenite::client(request, tcp)
        .map_err(|e| Setup::Failed(format!("WebSocket upgrade: {e}")))?;
    let mut wire = Wire::on(Link::Ws(Box::new(ws)));
    if phase == Phase::WsConnected {
        return Ok(wire);
    }
    wire.send(
        format!(
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{}' version='1.0'/>",
            target.domain
        )
        .as_bytes(),
    )
    .map_err(Setup::Failed)?;
    let mut observer = Observer::inside_stream();
    wire.until(&mut observer, deadline, |s| has(s, "features", ns::STREAMS));
    if has(observer.seen(), "features", ns::STREAMS) {
        Ok(wire)
    } else {
        Err(Setup::Failed(format!(
            "no features after <open/>: {}",
            shorten(&wire.log)
        )))
    }
}

/// Authenticate on the server-to-server port as `identity` (STARTTLS, SASL EXTERNAL with
/// its certificate, the stream restarted: [`Phase::S2sAuthenticated`]); also whether the
/// server offered dialback over TLS (`urn:xmpp:features:dialback`, XEP-0220 §2.4.2).
fn as_remote_server(
    target: &Target,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<(Wire, bool), Setup> {
    let identity = target.s2s_identity.as_ref().ok_or_else(|| {
        Setup::NotApplicable("no server-to-server identity given (--s2s-domain)".to_owned())
    })?;
    let header = |declaration: &str| {
        format!(
            "{declaration}<stream:stream xmlns='jabber:server' \
             xmlns:stream='http://etherx.jabber.org/streams' \
             xmlns:db='jabber:server:dialback' from='{}' to='{}' version='1.0'>",
            identity.domain, target.domain
        )
    };
    let mut wire = plain(target, addr)?;
    let features = open_with(&mut wire, &header("<?xml version='1.0'?>"), deadline)?;
    if features.get_child("starttls", ns::TLS).is_none() {
        return Err(Setup::Failed(format!(
            "no STARTTLS offered on the s2s port: {}",
            shorten(&wire.log)
        )));
    }
    let mut options = ClientOptions::new(addr, &target.server_name, identity.tls.clone());
    options.connect_timeout = target.timeout;
    starttls(&mut wire, &options, deadline)?;
    let features = open_with(&mut wire, &header(""), deadline)?;
    let dialback = features
        .get_child("dialback", xmpp_stream::dialback::NS_FEATURE)
        .is_some();
    if !offers(&features, "EXTERNAL") {
        return Err(Setup::NotApplicable(format!(
            "SASL EXTERNAL not offered to {} over TLS: {}",
            identity.domain,
            shorten(&wire.log)
        )));
    }
    authenticate(
        &mut wire,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
        &format!("EXTERNAL as {}", identity.domain),
        deadline,
    )?;
    open_with(&mut wire, &header(""), deadline)?;
    Ok((wire, dialback))
}

/// A plain TCP connection to `addr` (a component or server-to-server port).
fn plain(target: &Target, addr: SocketAddr) -> Result<Wire, Setup> {
    let mut options = ClientOptions::new(addr, &target.server_name, target.tls.clone());
    options.connect_timeout = target.timeout;
    let (raw, _) =
        RawTransport::open(&options).map_err(|e| Setup::Failed(format!("{addr}: {e}")))?;
    Ok(Wire::new(raw))
}

/// Connect to the component port; for [`Phase::Component`], open the stream and hand-shake.
fn as_component(target: &Target, phase: Phase, deadline: Instant) -> Result<Wire, Setup> {
    let component = target.component.as_ref().ok_or_else(|| {
        Setup::NotApplicable("no component port and secret given (--component)".to_owned())
    })?;
    // Plain TCP: the component protocol has no TLS.
    let mut options = ClientOptions::new(component.addr, &target.server_name, target.tls.clone());
    options.connect_timeout = target.timeout;
    let (raw, _) =
        RawTransport::open(&options).map_err(|e| Setup::Failed(format!("component port: {e}")))?;
    let mut wire = Wire::new(raw);
    if phase == Phase::ComponentConnected {
        return Ok(wire);
    }
    wire.send(
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
            component.domain
        )
        .as_bytes(),
    )
    .map_err(Setup::Failed)?;
    let mut observer = Observer::before_header();
    wire.until(&mut observer, deadline, |s| s.stream_id.is_some());
    let Some(id) = observer.seen().stream_id.clone() else {
        return Err(Setup::Failed(format!(
            "no component stream header with an id: {}",
            shorten(&wire.log)
        )));
    };
    let digest = xmpp_stream::conformance::component_handshake(&id, &component.secret);
    wire.send(format!("<handshake>{digest}</handshake>").as_bytes())
        .map_err(Setup::Failed)?;
    wire.until(&mut observer, deadline, |s| !s.elements.is_empty());
    match observer.seen().elements.first() {
        Some(e) if e.name() == "handshake" => Ok(wire),
        _ => Err(Setup::Failed(format!(
            "handshake not accepted: {}",
            shorten(&wire.log)
        ))),
    }
}

/// XEP-0198 cases apply only where the server offers stream management.
fn stream_management(case: &Case) -> bool {
    case.section.starts_with("XEP-0198")
}

/// Enable XEP-0198 stream management on a bound connection by hand (`<enable/>`, then
/// `<enabled/>`); a server that answers otherwise does not offer it to this case.
fn enable(wire: &mut Wire, deadline: Instant) -> Result<(), Setup> {
    wire.send(b"<enable xmlns='urn:xmpp:sm:3'/>")
        .map_err(Setup::Failed)?;
    let mut observer = Observer::inside_stream();
    wire.until(&mut observer, deadline, |s| {
        has(s, "enabled", ns::SM) || has(s, "failed", ns::SM)
    });
    if has(observer.seen(), "enabled", ns::SM) {
        Ok(())
    } else {
        Err(Setup::NotApplicable(format!(
            "stream management not enabled: {}",
            shorten(&wire.log)
        )))
    }
}

/// Negotiate `account` completely with our client machine, then take the transport over.
fn bound(
    target: &Target,
    account: &Account,
    resource: String,
    deadline: Instant,
) -> Result<(Wire, String), Setup> {
    let jid = BareJid::new(&format!("{}@{}", account.user, target.domain))
        .map_err(|e| Setup::Failed(format!("account JID: {e}")))?;
    let mut config = ClientConfig::new(jid, account.password.clone());
    config.resource = Some(resource);
    let mut client = Connection::connect(&target.options(), config, OsEntropy::new())
        .map_err(|e| Setup::Failed(format!("connect: {e}")))?;
    let wait = deadline.saturating_duration_since(Instant::now());
    let full = client
        .negotiate(wait)
        .map_err(|e| Setup::Failed(format!("our client could not negotiate: {e}")))?;
    Ok((Wire::new(client.into_raw()), full.to_string()))
}

fn attempt(
    target: &Target,
    case: &'static Case,
    mut vars: Vars,
) -> Result<(Verdict, Vec<u8>), Setup> {
    let deadline = Instant::now() + target.timeout;
    if target.direct_tls && case.expect == Expect::ProceedAlone {
        return Err(Setup::NotApplicable("direct TLS: no STARTTLS".to_owned()));
    }
    let resource = format!("conformance-{}", case.id);
    let (mut a, mut b) = match case.phase {
        Phase::Bound | Phase::Pair => {
            let (wire, full) = bound(target, &target.a, resource.clone(), deadline)?;
            vars.a_full = full;
            let b = if case.phase == Phase::Pair {
                let account = target.b.as_ref().ok_or_else(|| {
                    Setup::NotApplicable("needs a second account (--user2)".to_owned())
                })?;
                let (wire, full) = bound(target, account, resource, deadline)?;
                vars.b_full = full;
                Some(wire)
            } else {
                None
            };
            (wire, b)
        }
        Phase::Rebind => {
            let (wire, full) = bound(target, &target.a, resource.clone(), deadline)?;
            vars.a_full = full;
            vars.resource = resource;
            (
                wire,
                Some(by_hand(target, Phase::Authenticated, deadline)?.0),
            )
        }
        Phase::Managed => {
            let (mut wire, full) = bound(target, &target.a, resource, deadline)?;
            vars.a_full = full;
            enable(&mut wire, deadline)?;
            (wire, None)
        }
        Phase::ComponentConnected | Phase::Component => {
            (as_component(target, case.phase, deadline)?, None)
        }
        Phase::WsConnected | Phase::WsOpened => (websocket(target, case.phase, deadline)?, None),
        Phase::S2sConnected => {
            let addr = target.s2s.ok_or_else(|| {
                Setup::NotApplicable("no server-to-server port given (--s2s-port)".to_owned())
            })?;
            (plain(target, addr)?, None)
        }
        Phase::S2sAuthenticated => {
            let addr = target.s2s.ok_or_else(|| {
                Setup::NotApplicable("no server-to-server port given (--s2s-port)".to_owned())
            })?;
            let (wire, dialback) = as_remote_server(target, addr, deadline)?;
            if case.section.starts_with("XEP-0220") && !dialback {
                return Err(Setup::NotApplicable(
                    "dialback (XEP-0220) not offered over TLS".to_owned(),
                ));
            }
            (wire, None)
        }
        phase => {
            let (wire, features) = by_hand(target, phase, deadline)?;
            let offered = features.is_some_and(|f| f.get_child("sm", ns::SM).is_some());
            if stream_management(case) && !offered {
                return Err(Setup::NotApplicable(
                    "stream management (XEP-0198) not offered".to_owned(),
                ));
            }
            (wire, None)
        }
    };
    if let Some(b) = b.as_mut() {
        b.log.clear();
    }
    a.log.clear();
    let mut a_seen = if matches!(
        case.phase,
        Phase::Connected | Phase::ComponentConnected | Phase::S2sConnected
    ) {
        Observer::before_header()
    } else if case.phase == Phase::S2sAuthenticated {
        Observer::inside_server_stream()
    } else {
        Observer::inside_stream()
    };
    let mut b_seen = Observer::inside_stream();
    // A fresh deadline for the case itself: set-up time is not the server's answer time.
    let deadline = Instant::now() + target.timeout;
    for act in case.acts {
        let (who, bytes) = match act {
            Act::Send(who, text) => (*who, vars.fill(text).into_bytes()),
            Act::Raw(bytes) => (Who::A, bytes.to_vec()),
            Act::Sync(who) => (
                *who,
                b"<iq type='get' id='sync'><query xmlns='jabber:iq:roster'/></iq>".to_vec(),
            ),
            _ => return Err(Setup::Failed(format!("unknown act {act:?}"))),
        };
        let (wire, observer) = match (who, b.as_mut()) {
            (Who::B, Some(b)) => (b, &mut b_seen),
            (Who::B, None) => return Err(Setup::Failed("no second connection".to_owned())),
            _ => (&mut a, &mut a_seen),
        };
        if matches!(act, Act::Raw(_)) {
            wire.send_raw(&bytes)
        } else {
            wire.send(&bytes)
        }
        .map_err(Setup::Failed)?;
        if matches!(act, Act::Sync(_)) {
            let synced = wire.until(observer, deadline, |s| {
                s.elements.iter().any(|e| e.attr("id") == Some("sync"))
            });
            if !synced {
                return Err(Setup::Failed(format!(
                    "no answer to the roster get that orders the case: {}",
                    shorten(&wire.log)
                )));
            }
        }
    }
    let expect = case.expect;
    let judge =
        |a: &Observer, b: &Observer, last: bool| expect.judge_both(a.seen(), b.seen(), &vars, last);
    // Read whichever connection has something, until the judge decides or the deadline.
    let mut answered = false;
    loop {
        let decided = judge(&a_seen, &b_seen, false) != Verdict::Pending;
        let first = if expect.on() == Who::B {
            &b_seen
        } else {
            &a_seen
        };
        if decided || (expect.settles() && !first.seen().elements.is_empty()) {
            answered = true;
            break;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let open = |o: &Observer| !o.seen().eof && o.seen().garbage.is_none();
        let mut wires: Vec<(&mut Wire, &mut Observer)> = Vec::new();
        if open(&a_seen) {
            wires.push((&mut a, &mut a_seen));
        }
        if let Some(b) = b.as_mut()
            && open(&b_seen)
        {
            wires.push((b, &mut b_seen));
        }
        if wires.is_empty() {
            break;
        }
        let slice = if wires.len() > 1 {
            Duration::from_millis(20).min(left)
        } else {
            left
        };
        for (wire, observer) in wires {
            wire.read_once(observer, slice);
        }
    }
    if answered && expect.settles() {
        let until = (Instant::now() + SETTLE).min(deadline);
        a.until(&mut a_seen, until, |_| false);
    }
    let verdict = judge(&a_seen, &b_seen, true);
    // The judged connection's bytes first, then the other's (two-connection cases).
    let mut log = match (expect.on(), b.as_ref()) {
        (Who::B, Some(b)) => b.log.clone(),
        _ => a.log.clone(),
    };
    if let Some(b) = b.as_ref() {
        let other = if expect.on() == Who::B {
            &a.log
        } else {
            &b.log
        };
        log.extend_from_slice(b" || other connection: ");
        log.extend_from_slice(other);
    }
    for wire in std::iter::once(&mut a).chain(b.as_mut()) {
        wire.close();
    }
    Ok((verdict, log))
}
