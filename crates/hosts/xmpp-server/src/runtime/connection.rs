//! One connection's task: its transport (plain TCP, then TLS after STARTTLS, or TLS from the
//! start for XEP-0368) and the loop between the socket and the hub.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use xmpp_host::tls;
use xmpp_host::tls::TlsMaterial;
use xmpp_stream::identity::PresentedId;
use xmpp_stream::{ChannelBinding, Transport};

use super::s2s::S2sTls;

use super::outbox::{Command, Outbox};
use super::shared::{Accepted, Shared, closed, lock, register};
use crate::hub::SessionId;

/// Bytes read per poll of a connection: one TLS record's worth of plaintext, on the stack.
const READ_CHUNK: usize = 16 * 1024;

/// XEP-0368: the TLS handshake comes first, then the stream starts as already secure.
pub(super) async fn direct_tls_connection(
    shared: Arc<Mutex<Shared>>,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    material: Arc<TlsMaterial>,
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
    let bindings = channel_bindings(&tls, &material);
    let ids = client_ids(&tls, &material);
    let (id, outbox) = register(&shared, Accepted::C2s(Transport::Tls(bindings)), peer);
    if let Some(ids) = ids {
        // Before the first input: the client's header is what makes the stream list its
        // features, EXTERNAL among them.
        lock(&shared).hub.set_peer_identities(id, ids);
    }
    connection(
        shared,
        id,
        Conn::Tls(Box::new(tls)),
        outbox,
        Upgrade::C2s { acceptor, material },
    )
    .await;
}

/// XEP-0368 for peer servers: the TLS handshake first (asking for the peer's certificate),
/// then the stream starts secure.
pub(super) async fn direct_tls_s2s_connection(
    shared: Arc<Mutex<Shared>>,
    tcp: TcpStream,
    peer: SocketAddr,
    s2s: S2sTls,
) {
    let tls = match TlsAcceptor::from(s2s.server.clone()).accept(tcp).await {
        Ok(tls) => tls,
        Err(error) => {
            if lock(&shared).log {
                eprintln!("s2s direct TLS handshake from {peer} failed: {error}");
            }
            return;
        }
    };
    let ids = s2s.peer_ids(tls.get_ref().1.peer_certificates());
    let (id, outbox) = register(&shared, Accepted::S2sDirectTls(ids), peer);
    connection(
        shared,
        id,
        Conn::Tls(Box::new(tls)),
        outbox,
        Upgrade::S2sIn(s2s),
    )
    .await;
}

/// How a connection runs TLS when its stream asks for it.
#[derive(Clone)]
pub(super) enum Upgrade {
    /// A client's: the server side, our c2s identity, channel bindings.
    C2s {
        acceptor: TlsAcceptor,
        material: Arc<TlsMaterial>,
    },
    /// A peer server connected to us: the server side, asking for its certificate.
    S2sIn(S2sTls),
    /// Our connection to `name`: the client side, presenting our certificate.
    S2sOut(S2sTls, rustls::pki_types::ServerName<'static>),
}

/// What a finished handshake yields: the channel bindings, and the names of the peer's
/// certificate (a server's, or a client's) when it chains to the CA we trust for it.
type Upgraded = (Vec<ChannelBinding>, Option<Vec<PresentedId>>);

/// The transport of one connection: plain TCP, then TLS after STARTTLS.
pub(super) enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
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
                Conn::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, &mut buf),
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
            Conn::ClientTls(s) => write_flush(s.as_mut(), bytes).await,
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
            Conn::ClientTls(s) => {
                let _ = s.shutdown().await;
            }
            Conn::Gone => {}
        }
    }

    /// Run the TLS handshake `upgrade` says.
    async fn upgrade(&mut self, upgrade: &Upgrade) -> io::Result<Upgraded> {
        let Conn::Plain(tcp) = std::mem::replace(self, Conn::Gone) else {
            return Err(io::Error::other("STARTTLS on a non-plain connection"));
        };
        match upgrade {
            Upgrade::C2s { acceptor, material } => {
                let tls = acceptor.accept(tcp).await?;
                let bindings = channel_bindings(&tls, material);
                let ids = client_ids(&tls, material);
                *self = Conn::Tls(Box::new(tls));
                Ok((bindings, ids))
            }
            Upgrade::S2sIn(s2s) => {
                let tls = TlsAcceptor::from(s2s.server.clone()).accept(tcp).await?;
                let ids = s2s.peer_ids(tls.get_ref().1.peer_certificates());
                *self = Conn::Tls(Box::new(tls));
                Ok((Vec::new(), ids))
            }
            Upgrade::S2sOut(s2s, name) => {
                let tls = TlsConnector::from(s2s.client.clone())
                    .connect(name.clone(), tcp)
                    .await?;
                let ids = s2s.peer_ids(tls.get_ref().1.peer_certificates());
                *self = Conn::ClientTls(Box::new(tls));
                Ok((Vec::new(), ids))
            }
        }
    }
}

/// The channel bindings of a finished server handshake (see [`tls::channel_bindings`]:
/// `tls-exporter` where RFC 9266 allows it, `tls-server-end-point` of our own certificate
/// with RFC 5929's hash for its signature algorithm, the certificate the client's SNI chose;
/// never `tls-unique`).
pub(super) fn channel_bindings(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
    material: &TlsMaterial,
) -> Vec<ChannelBinding> {
    let connection = tls.get_ref().1;
    tls::channel_bindings(
        connection,
        Some(&material.leaf_for(connection.server_name())),
    )
}

/// The names of the client's certificate when it chains to the client CA (`--client-ca`):
/// the stream then offers SASL EXTERNAL (XEP-0178). Read as a peer server's are.
fn client_ids(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
    material: &TlsMaterial,
) -> Option<Vec<PresentedId>> {
    material
        .verified_client_certificate(tls.get_ref().1)
        .map(|leaf| super::s2s::presented_ids(leaf))
}

async fn write_flush<S: AsyncWrite + AsyncRead + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

pub(super) async fn connection(
    shared: Arc<Mutex<Shared>>,
    id: SessionId,
    mut conn: Conn,
    outbox: Arc<Outbox>,
    upgrade: Upgrade,
) {
    loop {
        tokio::select! {
            // Outputs first: a queued `<proceed/>` must be written before anything else.
            biased;
            command = outbox.recv() => match command {
                Command::Write(bytes) => {
                    // Everything else already queued goes out with it: under load an s2s
                    // link carries many stanzas per wakeup, and one write per stanza was one
                    // TLS record and one syscall each.
                    let bytes = outbox.with_queued_writes(bytes);
                    if conn.write_all(&bytes).await.is_err() {
                        closed(&shared, id);
                        break;
                    }
                }
                // Boxed: the handshake's state (a whole `ServerConnection` mid-handshake) would
                // otherwise size every connection's task for its whole life.
                Command::StartTls => match Box::pin(conn.upgrade(&upgrade)).await {
                    Ok((bindings, ids)) => {
                        let mut guard = lock(&shared);
                        let now = guard.now();
                        if let Some(ids) = ids {
                            guard.hub.set_peer_identities(id, ids);
                        }
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
