//! The accept loops (STARTTLS, XEP-0368 direct TLS, XEP-0114 components, peer servers) and
//! the timer tick.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use xmpp_stream::Transport;

use super::RuntimeConfig;
use super::connection::{
    Conn, Upgrade, connection, direct_tls_connection, direct_tls_s2s_connection,
};
use super::shared::{Accepted, Shared, lock, register};
use crate::hub::{Hub, HubConfig};

/// The sockets a server accepts connections on (see [`serve_on`]).
#[derive(Debug)]
pub struct Listeners {
    /// Clients, plain until STARTTLS.
    pub c2s: TcpListener,
    /// Clients over XEP-0368 direct TLS (TLS first, no STARTTLS).
    pub direct_tls: Option<TcpListener>,
    /// XEP-0114 components (`jabber:component:accept`, plain TCP: bind it to loopback only,
    /// the protocol has no TLS). The components are [`HubConfig::components`](crate::HubConfig::components).
    pub component: Option<TcpListener>,
    /// Peer servers (`jabber:server`, STARTTLS), when [`RuntimeConfig::s2s`] is set.
    pub s2s: Option<TcpListener>,
    /// Peer servers over XEP-0368 direct TLS (TLS first), when [`RuntimeConfig::s2s`] is set.
    pub s2s_direct_tls: Option<TcpListener>,
    /// Clients over WebSocket (RFC 7395) on [`WEBSOCKET_PATH`](crate::WEBSOCKET_PATH), with
    /// `wss:` (our certificate) when the flag is set, else `ws:` (bind it to loopback).
    pub websocket: Option<(TcpListener, bool)>,
}

impl Listeners {
    /// Only STARTTLS c2s on `c2s`.
    pub fn c2s(c2s: TcpListener) -> Self {
        Listeners {
            c2s,
            direct_tls: None,
            component: None,
            s2s: None,
            s2s_direct_tls: None,
            websocket: None,
        }
    }
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
    let listeners = Listeners {
        direct_tls,
        ..Listeners::c2s(listener)
    };
    serve_on(listeners, config, shutdown).await
}

/// Serve on every listener of `listeners` until `shutdown` resolves, then close every stream
/// with `system-shutdown`.
pub async fn serve_on(
    listeners: Listeners,
    config: RuntimeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    serve_probed(listeners, config, shutdown, None).await
}

/// [`serve_on`], publishing the shared state to `probe` once the hub is built (for
/// [`ServerHandle::stats`](super::ServerHandle::stats)).
pub(super) async fn serve_probed(
    listeners: Listeners,
    config: RuntimeConfig,
    shutdown: impl std::future::Future<Output = ()>,
    probe: Option<Arc<OnceLock<Arc<Mutex<Shared>>>>>,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config.tls.config.clone());
    let material = Arc::new(config.tls.clone());
    let resolver = match &config.s2s {
        Some(s2s) => super::dns::Resolver::new(&s2s.dns).map_err(io::Error::other)?,
        None => super::dns::Resolver::default(),
    };
    let database = super::database::open(&config.hub)?;
    let mut hub = Hub::new(HubConfig {
        // The hub's clock starts now: its Instant::ZERO is this wall-clock time.
        unix_epoch_millis: unix_now_millis(),
        ..config.hub.clone()
    });
    let db = match database {
        Some((db, accounts)) => {
            hub.add_stored_accounts(accounts);
            Some(db)
        }
        None => None,
    };
    let shared = Arc::new_cyclic(|me| {
        Mutex::new(Shared {
            hub,
            db: None,
            conns: BTreeMap::new(),
            start: std::time::Instant::now(),
            log: config.log,
            trace: config.trace,
            s2s: config.s2s.clone(),
            resolver,
            me: me.clone(),
        })
    });
    if let Some(db) = db {
        let tx = super::database::start(db, Arc::downgrade(&shared))?;
        lock(&shared).db = Some(tx);
    }
    let c2s_upgrade = Upgrade::C2s {
        acceptor: acceptor.clone(),
        material: material.clone(),
    };
    if let Some(probe) = probe {
        let _ = probe.set(shared.clone());
    }
    let ticker = tokio::spawn(tick(shared.clone()));
    tokio::pin!(shutdown);
    let Listeners {
        c2s: listener,
        direct_tls,
        component,
        s2s,
        s2s_direct_tls,
        websocket,
    } = listeners;
    let (websocket, wss) = match websocket {
        Some((listener, wss)) => (Some(listener), wss),
        None => (None, false),
    };
    // Without federation settings the s2s listeners are not served.
    let s2s = s2s.filter(|_| config.s2s.is_some());
    let s2s_direct_tls = s2s_direct_tls.filter(|_| config.s2s.is_some());
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let (id, outbox) = register(&shared, Accepted::C2s(Transport::Plain), peer);
                    let task = connection(
                        shared.clone(),
                        id,
                        Conn::Plain(tcp),
                        outbox,
                        c2s_upgrade.clone(),
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
            accepted = accept_on(direct_tls.as_ref()) => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(direct_tls_connection(
                        shared.clone(),
                        tcp,
                        peer,
                        acceptor.clone(),
                        material.clone(),
                    ));
                }
                Err(error) => {
                    if config.log {
                        eprintln!("c2s accept (direct TLS): {error}");
                    }
                }
            },
            accepted = accept_on(websocket.as_ref()) => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(super::websocket::websocket_connection(
                        shared.clone(),
                        tcp,
                        peer,
                        wss.then(|| acceptor.clone()),
                        material.clone(),
                    ));
                }
                Err(error) => {
                    if config.log {
                        eprintln!("WebSocket accept: {error}");
                    }
                }
            },
            accepted = accept_on(component.as_ref()) => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    // The same task as a client's: it never gets a `StartTls` command.
                    let (id, outbox) = register(&shared, Accepted::Component, peer);
                    tokio::spawn(connection(
                        shared.clone(),
                        id,
                        Conn::Plain(tcp),
                        outbox,
                        c2s_upgrade.clone(),
                    ));
                }
                Err(error) => {
                    if config.log {
                        eprintln!("component accept: {error}");
                    }
                }
            },
            accepted = accept_on(s2s.as_ref()) => match (accepted, &config.s2s) {
                (Ok((tcp, peer)), Some(settings)) => {
                    let _ = tcp.set_nodelay(true);
                    let (id, outbox) = register(&shared, Accepted::S2s, peer);
                    tokio::spawn(connection(
                        shared.clone(),
                        id,
                        Conn::Plain(tcp),
                        outbox,
                        Upgrade::S2sIn(settings.tls.clone()),
                    ));
                }
                (Err(error), _) => {
                    if config.log {
                        eprintln!("s2s accept: {error}");
                    }
                }
                (Ok(_), None) => {}
            },
            accepted = accept_on(s2s_direct_tls.as_ref()) => match (accepted, &config.s2s) {
                (Ok((tcp, peer)), Some(settings)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(direct_tls_s2s_connection(
                        shared.clone(),
                        tcp,
                        peer,
                        settings.tls.clone(),
                    ));
                }
                (Err(error), _) => {
                    if config.log {
                        eprintln!("s2s accept (direct TLS): {error}");
                    }
                }
                (Ok(_), None) => {}
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

/// The next connection on `listener`; never, without one.
async fn accept_on(
    listener: Option<&TcpListener>,
) -> io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
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

/// The system clock in milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
