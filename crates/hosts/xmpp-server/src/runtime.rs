//! The tokio shell around the [`Hub`]: a TCP accept loop, one task per connection moving
//! bytes (through tokio-rustls after STARTTLS), a ticker for the hub's timers.
//!
//! All protocol decisions are the hub's; this file only does I/O. The hub sits behind one
//! mutex: every input locks it, feeds it, and hands the outputs to the connection tasks
//! through per-connection channels, so each connection's bytes stay in order.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Poll;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio_rustls::TlsAcceptor;
use xmpp_stream::{ChannelBinding, ChannelBindingType, Entropy, Instant, Transport};

use crate::hub::{Hub, HubConfig, HubOutput, SessionId};

/// Bytes read per poll of a connection: one TLS record's worth of plaintext, on the stack.
const READ_CHUNK: usize = 16 * 1024;

/// The server's TLS identity.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// The rustls configuration (ring provider, TLS 1.2 and 1.3).
    pub config: Arc<rustls::ServerConfig>,
    /// The end-entity certificate, DER (clients of a self-signed server trust exactly this).
    pub cert_der: Vec<u8>,
    /// The certificate chain as PEM, for peers that load a CA file.
    pub cert_pem: String,
}

impl TlsMaterial {
    /// A fresh self-signed certificate (rcgen, ECDSA P-256) for `names`.
    pub fn self_signed(names: &[&str]) -> io::Result<Self> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let certified = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
        let cert_der = certified.cert.der().to_vec();
        let cert_pem = certified.cert.pem();
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        Self::build(vec![CertificateDer::from(cert_der.clone())], key, cert_pem)
    }

    /// A certificate chain and private key from PEM files.
    pub fn from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> io::Result<Self> {
        let cert_pem = std::fs::read_to_string(cert)?;
        let chain: Vec<CertificateDer<'static>> =
            rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        let key_pem = std::fs::read(key)?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())?
            .ok_or_else(|| io::Error::other("no private key in the key file"))?;
        Self::build(chain, key, cert_pem)
    }

    fn build(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_pem: String,
    ) -> io::Result<Self> {
        let cert_der = chain
            .first()
            .ok_or_else(|| io::Error::other("empty certificate chain"))?
            .to_vec();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(io::Error::other)?;
        Ok(TlsMaterial {
            config: Arc::new(config),
            cert_der,
            cert_pem,
        })
    }
}

/// Randomness from the operating system's CSPRNG (through `ring`).
#[derive(Debug)]
pub struct OsEntropy(ring::rand::SystemRandom);

impl Default for OsEntropy {
    fn default() -> Self {
        OsEntropy(ring::rand::SystemRandom::new())
    }
}

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        use ring::rand::SecureRandom as _;
        // The OS generator failing is unrecoverable for a server that needs nonces.
        #[allow(clippy::expect_used)]
        self.0.fill(buf).expect("OS random generator");
    }
}

/// How the shell runs: the hub, TLS, and logging.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The hub (domain, accounts, stream policy).
    pub hub: HubConfig,
    /// The TLS identity.
    pub tls: TlsMaterial,
    /// Log connections and hub decisions to stderr.
    pub log: bool,
    /// Also log every byte of XML in and out (inside TLS), for debugging interop.
    pub trace: bool,
}

enum Command {
    Write(Vec<u8>),
    StartTls,
    Close,
}

/// The hub's commands for one connection task, in order.
///
/// Lighter than a tokio channel (which allocates a 32-slot block per channel, about 1.3 KiB
/// with its header): an idle connection holds an empty queue with no allocation, and the
/// queue's buffer is released whenever it drains.
#[derive(Default)]
struct Outbox {
    queue: Mutex<VecDeque<Command>>,
    ready: Notify,
}

impl Outbox {
    fn push(&self, command: Command) {
        lock_queue(&self.queue).push_back(command);
        // Stores a permit when the task is not waiting: no wakeup is lost.
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Command> {
        let mut queue = lock_queue(&self.queue);
        let command = queue.pop_front();
        if queue.is_empty() && queue.capacity() > 0 {
            *queue = VecDeque::new();
        }
        command
    }

    /// The next command. Cancel-safe: a command is only taken when it is returned.
    async fn recv(&self) -> Command {
        loop {
            if let Some(command) = self.pop() {
                return command;
            }
            self.ready.notified().await;
        }
    }
}

fn lock_queue(queue: &Mutex<VecDeque<Command>>) -> MutexGuard<'_, VecDeque<Command>> {
    // Pushing and popping cannot panic half-way: a poisoned queue is still consistent.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The hub plus the channels to the connection tasks.
struct Shared {
    hub: Hub,
    conns: BTreeMap<SessionId, Arc<Outbox>>,
    start: std::time::Instant,
    log: bool,
    trace: bool,
}

impl Shared {
    fn now(&self) -> Instant {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Instant::from_millis(millis)
    }

    /// Hand every hub output to its connection task.
    fn dispatch(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            let (id, command) = match output {
                HubOutput::Transmit(id, bytes) => {
                    if self.trace {
                        eprintln!("c2s {id} S: {}", String::from_utf8_lossy(&bytes));
                    }
                    (id, Command::Write(bytes))
                }
                HubOutput::StartTls(id) => (id, Command::StartTls),
                HubOutput::Close(id) => (id, Command::Close),
            };
            let close = matches!(command, Command::Close);
            if let Some(outbox) = self.conns.get(&id) {
                outbox.push(command);
            }
            if close {
                self.conns.remove(&id);
            }
        }
        for line in self.hub.take_log() {
            if self.log {
                eprintln!("c2s {line}");
            }
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock leaves the hub in an unknown state only for that
    // connection's step; the hub itself never panics on input, so keep serving.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serve STARTTLS c2s on `listener` until `shutdown` resolves, then close every stream with
/// `system-shutdown`.
pub async fn serve(
    listener: TcpListener,
    config: RuntimeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    serve_with(listener, None, config, shutdown).await
}

/// [`serve`], plus XEP-0368 direct TLS (TLS first, no STARTTLS) on `direct_tls` if given.
pub async fn serve_with(
    listener: TcpListener,
    direct_tls: Option<TcpListener>,
    config: RuntimeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    serve_probed(listener, direct_tls, config, shutdown, None).await
}

/// [`serve_with`], publishing the shared state to `probe` once the hub is built (for
/// [`ServerHandle::stats`]).
async fn serve_probed(
    listener: TcpListener,
    direct_tls: Option<TcpListener>,
    config: RuntimeConfig,
    shutdown: impl std::future::Future<Output = ()>,
    probe: Option<Arc<OnceLock<Arc<Mutex<Shared>>>>>,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config.tls.config.clone());
    let cert_der = Arc::new(config.tls.cert_der.clone());
    let shared = Arc::new(Mutex::new(Shared {
        hub: Hub::new(config.hub.clone()),
        conns: BTreeMap::new(),
        start: std::time::Instant::now(),
        log: config.log,
        trace: config.trace,
    }));
    if let Some(probe) = probe {
        let _ = probe.set(shared.clone());
    }
    let ticker = tokio::spawn(tick(shared.clone()));
    tokio::pin!(shutdown);
    loop {
        let direct = async {
            match &direct_tls {
                Some(listener) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let (id, outbox) = register(&shared, Transport::Plain, peer);
                    let task = connection(
                        shared.clone(),
                        id,
                        Conn::Plain(tcp),
                        outbox,
                        acceptor.clone(),
                        cert_der.clone(),
                    );
                    #[cfg(feature = "alloc-stats")]
                    if id.0 == 1 {
                        eprintln!("connection task: {} bytes", std::mem::size_of_val(&task));
                    }
                    tokio::spawn(task);
                }
                Err(error) => {
                    if config.log {
                        eprintln!("c2s accept: {error}");
                    }
                }
            },
            accepted = direct => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(direct_tls_connection(
                        shared.clone(),
                        tcp,
                        peer,
                        acceptor.clone(),
                        cert_der.clone(),
                    ));
                }
                Err(error) => {
                    if config.log {
                        eprintln!("c2s accept (direct TLS): {error}");
                    }
                }
            },
        }
    }
    {
        let mut guard = lock(&shared);
        let now = guard.now();
        guard.hub.shutdown(now);
        guard.dispatch();
    }
    ticker.abort();
    // Give the connection tasks a moment to flush the stream errors.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    Ok(())
}

/// Open a hub session for a new connection and the channel its outputs arrive on.
fn register(
    shared: &Mutex<Shared>,
    transport: Transport,
    peer: SocketAddr,
) -> (SessionId, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::default());
    let mut guard = lock(shared);
    let now = guard.now();
    let direct = matches!(transport, Transport::Tls(_));
    let id = guard.hub.accept(now, transport, OsEntropy::default());
    guard.conns.insert(id, Arc::clone(&outbox));
    if guard.log {
        let kind = if direct { " (direct TLS)" } else { "" };
        eprintln!("c2s {id}: connection from {peer}{kind}");
    }
    guard.dispatch();
    (id, outbox)
}

/// XEP-0368: the TLS handshake comes first, then the stream starts as already secure.
async fn direct_tls_connection(
    shared: Arc<Mutex<Shared>>,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    cert_der: Arc<Vec<u8>>,
) {
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(error) => {
            if lock(&shared).log {
                eprintln!("c2s direct TLS handshake from {peer} failed: {error}");
            }
            return;
        }
    };
    let bindings = channel_bindings(&tls, &cert_der);
    let (id, outbox) = register(&shared, Transport::Tls(bindings), peer);
    connection(
        shared,
        id,
        Conn::Tls(Box::new(tls)),
        outbox,
        acceptor,
        cert_der,
    )
    .await;
}

/// Drive the hub's timers (keepalives, deadlines).
async fn tick(shared: Arc<Mutex<Shared>>) {
    let mut interval = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        interval.tick().await;
        let mut guard = lock(&shared);
        let now = guard.now();
        if guard.hub.poll_timeout().is_some_and(|t| t <= now) {
            guard.hub.handle_timeout(now);
            guard.dispatch();
        }
    }
}

/// The transport of one connection: plain TCP, then TLS after STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    /// Wait for bytes and hand them to `on_bytes` (`Ok(None)` at end of stream).
    ///
    /// The bytes land in a buffer on the stack of the poll that finds them, not in the
    /// connection's task: an idle connection holds no read buffer of its own (a per-task
    /// 16 KiB buffer was a third of the memory of an idle session). Correct for both
    /// transports because a pending `poll_read` leaves nothing in the buffer: TCP data
    /// waits in the kernel and TLS data in rustls until a poll has room for it.
    async fn read_with<R>(
        &mut self,
        mut on_bytes: impl FnMut(&[u8]) -> R,
    ) -> io::Result<Option<R>> {
        std::future::poll_fn(|cx| {
            let mut stack = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut stack);
            let polled = match self {
                Conn::Plain(s) => Pin::new(s).poll_read(cx, &mut buf),
                Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, &mut buf),
                Conn::Gone => return Poll::Pending,
            };
            match polled {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(None)),
                Poll::Ready(Ok(())) => Poll::Ready(Ok(Some(on_bytes(buf.filled())))),
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => write_flush(s, bytes).await,
            Conn::Tls(s) => write_flush(s.as_mut(), bytes).await,
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) {
        match self {
            Conn::Plain(s) => {
                let _ = s.shutdown().await;
            }
            Conn::Tls(s) => {
                let _ = s.shutdown().await;
            }
            Conn::Gone => {}
        }
    }

    /// Run the TLS handshake; return the channel bindings rustls can give (RFC 9266
    /// `tls-exporter`, RFC 5929 `tls-server-end-point`; never `tls-unique`).
    async fn upgrade(
        &mut self,
        acceptor: &TlsAcceptor,
        cert_der: &[u8],
    ) -> io::Result<Vec<ChannelBinding>> {
        let Conn::Plain(tcp) = std::mem::replace(self, Conn::Gone) else {
            return Err(io::Error::other("STARTTLS on a non-plain connection"));
        };
        let tls = acceptor.accept(tcp).await?;
        let bindings = channel_bindings(&tls, cert_der);
        *self = Conn::Tls(Box::new(tls));
        Ok(bindings)
    }
}

/// The channel bindings rustls can give (RFC 9266 `tls-exporter`, RFC 5929
/// `tls-server-end-point`; never `tls-unique`).
fn channel_bindings(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
    cert_der: &[u8],
) -> Vec<ChannelBinding> {
    let mut bindings = Vec::new();
    if let Ok(exporter) =
        tls.get_ref()
            .1
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
    {
        bindings.push(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            exporter.to_vec(),
        ));
    }
    // RFC 5929 §4.1: the hash of our certificate with its signature's hash (SHA-256 for
    // rcgen's ECDSA P-256 and for SHA-256-signed certificates; MD5/SHA-1 map to SHA-256).
    let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
    bindings.push(ChannelBinding::new(
        ChannelBindingType::TlsServerEndPoint,
        digest.as_ref().to_vec(),
    ));
    bindings
}

async fn write_flush<S: AsyncWrite + AsyncRead + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

async fn connection(
    shared: Arc<Mutex<Shared>>,
    id: SessionId,
    mut conn: Conn,
    outbox: Arc<Outbox>,
    acceptor: TlsAcceptor,
    cert_der: Arc<Vec<u8>>,
) {
    loop {
        tokio::select! {
            // Outputs first: a queued `<proceed/>` must be written before anything else.
            biased;
            command = outbox.recv() => match command {
                Command::Write(bytes) => {
                    if conn.write_all(&bytes).await.is_err() {
                        closed(&shared, id);
                        break;
                    }
                }
                // Boxed: the handshake's state (a whole `ServerConnection` mid-handshake) would
                // otherwise size every connection's task for its whole life.
                Command::StartTls => match Box::pin(conn.upgrade(&acceptor, &cert_der)).await {
                    Ok(bindings) => {
                        let mut guard = lock(&shared);
                        let now = guard.now();
                        guard.hub.tls_established(id, now, bindings);
                        guard.dispatch();
                    }
                    Err(error) => {
                        if lock(&shared).log {
                            eprintln!("c2s {id}: TLS handshake failed: {error}");
                        }
                        closed(&shared, id);
                        break;
                    }
                },
                Command::Close => {
                    conn.shutdown().await;
                    break;
                }
            },
            read = conn.read_with(|bytes| {
                let mut guard = lock(&shared);
                if guard.trace {
                    eprintln!("c2s {id} C: {}", String::from_utf8_lossy(bytes));
                }
                let now = guard.now();
                guard.hub.handle_input(id, now, bytes);
                guard.dispatch();
            }) => {
                if !matches!(read, Ok(Some(()))) {
                    closed(&shared, id);
                    break;
                }
            }
        }
    }
}

fn closed(shared: &Mutex<Shared>, id: SessionId) {
    let mut guard = lock(shared);
    let now = guard.now();
    guard.hub.transport_closed(id, now);
    guard.conns.remove(&id);
    guard.dispatch();
}

/// A server running on its own thread (with its own tokio runtime), for tests and tools.
pub struct ServerHandle {
    /// Where it listens (STARTTLS).
    pub addr: SocketAddr,
    /// Where it listens for direct TLS, if asked to.
    pub direct_tls_addr: Option<SocketAddr>,
    /// Its certificate (DER).
    pub cert_der: Vec<u8>,
    /// Its certificate (PEM).
    pub cert_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    probe: Arc<OnceLock<Arc<Mutex<Shared>>>>,
    runtime: tokio::runtime::Handle,
}

/// What a running server holds right now (see [`ServerHandle::stats`]): after every client
/// has gone, a server that leaks nothing is back to zero sessions, zero connections, no
/// offline messages and one task (the timer tick).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Streams the hub holds (negotiating, negotiated or closing).
    pub sessions: usize,
    /// Connection tasks the hub can still send to.
    pub connections: usize,
    /// Offline messages stored for accounts with no available resource.
    pub offline_messages: usize,
    /// Tasks alive on the server's tokio runtime: the timer tick plus one per connection.
    pub tasks: usize,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .field("direct_tls_addr", &self.direct_tls_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// Bind `addr` (port 0 for a free port) and serve on a background thread.
    pub fn spawn(addr: SocketAddr, config: RuntimeConfig) -> io::Result<Self> {
        Self::spawn_with(addr, None, config)
    }

    /// [`spawn`](Self::spawn), plus direct TLS on `direct_tls` if given.
    pub fn spawn_with(
        addr: SocketAddr,
        direct_tls: Option<SocketAddr>,
        config: RuntimeConfig,
    ) -> io::Result<Self> {
        let direct_listener = match direct_tls {
            Some(addr) => {
                let listener = std::net::TcpListener::bind(addr)?;
                listener.set_nonblocking(true)?;
                Some(listener)
            }
            None => None,
        };
        let direct_tls_addr = match &direct_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let probe = Arc::new(OnceLock::new());
        let published = probe.clone();
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        let cert_der = config.tls.cert_der.clone();
        let cert_pem = config.tls.cert_pem.clone();
        let thread = std::thread::Builder::new()
            .name("xmpp-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener)?;
                    let direct = direct_listener.map(TcpListener::from_std).transpose()?;
                    let shutdown = async move {
                        let _ = rx.await;
                    };
                    serve_probed(listener, direct, config, shutdown, Some(published)).await
                })
            })?;
        Ok(ServerHandle {
            addr,
            direct_tls_addr,
            cert_der,
            cert_pem,
            shutdown: Some(tx),
            thread: Some(thread),
            probe,
            runtime: handle,
        })
    }

    /// What the server holds right now; `None` until its hub is built (deriving the
    /// accounts' credentials takes a moment) and after it stopped.
    pub fn stats(&self) -> Option<ServerStats> {
        self.thread.as_ref()?;
        let shared = self.probe.get()?;
        let guard = lock(shared);
        Some(ServerStats {
            sessions: guard.hub.session_count(),
            connections: guard.conns.len(),
            offline_messages: guard.hub.offline_total(),
            tasks: self.runtime.metrics().num_alive_tasks(),
        })
    }

    /// Stop serving (streams get `system-shutdown`) and wait for the thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
