//! A server running on its own thread (with its own tokio runtime), for tests and tools.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::RuntimeConfig;
use super::serve::{Listeners, serve_probed};
use super::shared::{Shared, lock};

/// A server running on its own thread (with its own tokio runtime), for tests and tools.
pub struct ServerHandle {
    /// Where it listens (STARTTLS).
    pub addr: SocketAddr,
    /// Where it listens for direct TLS, if asked to.
    pub direct_tls_addr: Option<SocketAddr>,
    /// Where it listens for XEP-0114 components, if asked to.
    pub component_addr: Option<SocketAddr>,
    /// Where it listens for peer servers, if asked to.
    pub s2s_addr: Option<SocketAddr>,
    /// Where WebSocket clients connect (`ws:` or `wss:`, path `/xmpp-websocket`), if served.
    pub websocket_addr: Option<SocketAddr>,
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
    /// Client sessions kept detached for XEP-0198 resumption (their transport died).
    pub detached: usize,
    /// Tasks alive on the server's tokio runtime: the timer tick plus one per connection.
    pub tasks: usize,
    /// Server-to-server connections peers opened to us.
    pub s2s_incoming: usize,
    /// Server-to-server connections we opened to peers.
    pub s2s_outgoing: usize,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .field("direct_tls_addr", &self.direct_tls_addr)
            .field("component_addr", &self.component_addr)
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
        Self::spawn_on(addr, direct_tls, None, config)
    }

    /// [`spawn_with`](Self::spawn_with), plus XEP-0114 components (those of
    /// [`HubConfig::components`](crate::HubConfig::components)) on `component` if given:
    /// give it a loopback address, the component protocol has no TLS.
    pub fn spawn_on(
        addr: SocketAddr,
        direct_tls: Option<SocketAddr>,
        component: Option<SocketAddr>,
        config: RuntimeConfig,
    ) -> io::Result<Self> {
        Self::spawn_all(addr, direct_tls, component, None, None, None, config)
    }

    /// [`spawn`](Self::spawn), plus peer servers on `s2s`, a listener bound beforehand (so
    /// that two servers can be given routes to each other before either starts). Federation
    /// needs [`RuntimeConfig::s2s`] and [`HubConfig::s2s`](crate::HubConfig::s2s).
    pub fn spawn_federating(
        addr: SocketAddr,
        s2s: std::net::TcpListener,
        config: RuntimeConfig,
    ) -> io::Result<Self> {
        Self::spawn_all(addr, None, None, Some(s2s), None, None, config)
    }

    /// [`spawn_federating`](Self::spawn_federating), also accepting peer servers over
    /// XEP-0368 direct TLS on `s2s_direct_tls`.
    pub fn spawn_federating_with_direct_tls(
        addr: SocketAddr,
        s2s: std::net::TcpListener,
        s2s_direct_tls: std::net::TcpListener,
        config: RuntimeConfig,
    ) -> io::Result<Self> {
        s2s_direct_tls.set_nonblocking(true)?;
        Self::spawn_all(
            addr,
            None,
            None,
            Some(s2s),
            Some(s2s_direct_tls),
            None,
            config,
        )
    }

    /// [`spawn`](Self::spawn), plus XMPP over WebSocket on `websocket` (`wss:` if `wss`), at
    /// [`websocket_addr`](Self::websocket_addr).
    pub fn spawn_websocket(
        addr: SocketAddr,
        websocket: SocketAddr,
        wss: bool,
        config: RuntimeConfig,
    ) -> io::Result<Self> {
        Self::spawn_all(addr, None, None, None, None, Some((websocket, wss)), config)
    }

    fn spawn_all(
        addr: SocketAddr,
        direct_tls: Option<SocketAddr>,
        component: Option<SocketAddr>,
        s2s: Option<std::net::TcpListener>,
        s2s_direct_tls: Option<std::net::TcpListener>,
        websocket: Option<(SocketAddr, bool)>,
        config: RuntimeConfig,
    ) -> io::Result<Self> {
        let wss = websocket.is_some_and(|(_, wss)| wss);
        let (websocket_listener, websocket_addr) = bind_optional(websocket.map(|(a, _)| a))?;
        let (direct_listener, direct_tls_addr) = bind_optional(direct_tls)?;
        let (component_listener, component_addr) = bind_optional(component)?;
        let s2s_addr = s2s
            .as_ref()
            .map(std::net::TcpListener::local_addr)
            .transpose()?;
        if let Some(listener) = &s2s {
            listener.set_nonblocking(true)?;
        }
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
                    let listeners = Listeners {
                        c2s: TcpListener::from_std(std_listener)?,
                        direct_tls: direct_listener.map(TcpListener::from_std).transpose()?,
                        component: component_listener.map(TcpListener::from_std).transpose()?,
                        s2s: s2s.map(TcpListener::from_std).transpose()?,
                        s2s_direct_tls: s2s_direct_tls.map(TcpListener::from_std).transpose()?,
                        websocket: websocket_listener
                            .map(TcpListener::from_std)
                            .transpose()?
                            .map(|listener| (listener, wss)),
                    };
                    let shutdown = async move {
                        let _ = rx.await;
                    };
                    serve_probed(listeners, config, shutdown, Some(published)).await
                })
            })?;
        Ok(ServerHandle {
            addr,
            direct_tls_addr,
            component_addr,
            s2s_addr,
            websocket_addr,
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
        let (s2s_incoming, s2s_outgoing) = guard.hub.s2s_connection_count();
        Some(ServerStats {
            s2s_incoming,
            s2s_outgoing,
            sessions: guard.hub.session_count(),
            connections: guard.conns.len(),
            offline_messages: guard.hub.offline_total(),
            detached: guard.hub.detached_count(),
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

/// A non-blocking listener on `addr` and its bound address, if an address is given.
fn bind_optional(
    addr: Option<SocketAddr>,
) -> io::Result<(Option<std::net::TcpListener>, Option<SocketAddr>)> {
    let Some(addr) = addr else {
        return Ok((None, None));
    };
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    Ok((Some(listener), Some(bound)))
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
