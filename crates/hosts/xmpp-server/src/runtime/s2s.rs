//! Server-to-server I/O: the TLS configurations of both ends, the names of a peer's
//! certificate, outgoing connections (static route, else DNS: [`super::dns`]), and the
//! dialback verification connection.
//!
//! TLS ([`xmpp_host::tls::s2s_configs`]): both ends accept any certificate during the
//! handshake (its signature over the handshake is still checked: the peer holds the key) and
//! validate the chain against the CA peers must chain to (`--s2s-ca`) afterwards. A peer whose chain checks out gets its names
//! passed to the stream (`set_peer_identities`), which then offers or uses SASL EXTERNAL; a
//! peer whose chain does not, or that presents none, is encrypted but unauthenticated and
//! falls back to dialback. Rejecting untrusted certificates in the handshake itself (as
//! `WebPkiClientVerifier` does) would make dialback impossible with any peer we cannot verify.
//!
//! Names are read with `x509-parser` (well kept, used by rcgen, no unsafe, parses the
//! `otherName` SANs that rustls-webpki does not expose): dNSName SANs, SRVName
//! (`_xmpp-server.`) otherNames, XmppAddr otherNames, and the subject's CN; the stream layer
//! decides which of them may match (RFC 6125, `xmpp_stream::identity`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use xmpp_host::OsEntropy;
use xmpp_host::tls::tls_name;
use xmpp_stream::dialback::{DialbackKey, StreamId};
use xmpp_stream::identity::PresentedId;
use xmpp_stream::{BareJid, DialbackOutcome, StanzaErrorCondition};

use super::connection::{Conn, Upgrade, connection};
use super::dns::{Candidate, Dns, Resolver};
use super::outbox::Outbox;
use super::shared::{Shared, lock};
use crate::hub::{SessionId, Verification};

/// OID of the SRVName otherName (RFC 4985).
const OID_SRV_NAME: &str = "1.3.6.1.5.5.7.8.7";
/// OID of the XmppAddr otherName (RFC 6120 §13.7.1.4).
const OID_XMPP_ADDR: &str = "1.3.6.1.5.5.7.8.5";

/// How long a dialback verification connection may live.
const VERIFY_DEADLINE: Duration = Duration::from_secs(30);

/// How the example server federates: where the peers are, and the TLS of both ends.
#[derive(Clone, Debug)]
pub struct S2sSettings {
    /// Static routes: domain to address, tried before any DNS lookup.
    pub routes: BTreeMap<String, SocketAddr>,
    /// How a domain without a static route is looked up (SRV, then A/AAAA; RFC 6120 §3.2).
    pub dns: Dns,
    /// The TLS of both ends.
    pub tls: S2sTls,
    /// How long opening a connection (TCP) may take; past it, queued stanzas bounce with
    /// `remote-server-timeout`. The stream's own negotiation deadline covers the rest.
    pub connect_timeout: Duration,
}

/// The TLS of server-to-server connections: our certificate on both ends, and the CA peers'
/// certificates must chain to.
#[derive(Clone, Debug)]
pub struct S2sTls {
    /// Receiving end: asks for a client certificate, does not require one.
    pub(super) server: Arc<rustls::ServerConfig>,
    /// Initiating end: presents our certificate.
    pub(super) client: Arc<rustls::ClientConfig>,
    /// Initiating end for our other domains, each presenting its own certificate.
    clients: BTreeMap<String, Arc<rustls::ClientConfig>>,
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

fn config_error(what: &str, error: impl std::fmt::Display) -> xmpp_host::Error {
    xmpp_host::Error::Config(format!("{what}: {error}"))
}

impl S2sTls {
    /// Our certificate chain and key (PEM), and the CA certificates (PEM) peers must chain to
    /// (`None`: no peer certificate is trusted, every peer authenticates by dialback).
    pub fn from_pem(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, xmpp_host::Error> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.unwrap_or_default()) {
            roots.add(cert.map_err(|e| config_error("CA PEM", e))?)?;
        }
        if ca_pem.is_some() && roots.is_empty() {
            return Err(xmpp_host::Error::Config(
                "no certificate in the CA PEM".to_owned(),
            ));
        }
        let (server, client) = configs(cert_chain_pem, key_pem)?;
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        Ok(S2sTls {
            server,
            client,
            clients: BTreeMap::new(),
            roots: Arc::new(roots),
            algorithms,
        })
    }

    /// Another of our domains with its own certificate chain and key (PEM): a peer whose SNI
    /// names `domain` gets it, and our connections from `domain` present it.
    pub fn with_domain(
        mut self,
        domain: &str,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, xmpp_host::Error> {
        let (server, client) = configs(cert_chain_pem, key_pem)?;
        // Peers send the SNI name in A-label form.
        self.server = xmpp_host::tls::with_sni(&self.server, &[(tls_name(domain), server)]);
        self.clients.insert(domain.to_ascii_lowercase(), client);
        Ok(self)
    }

    /// The configuration for a connection from our domain `local`: its own certificate when
    /// it has one ([`with_domain`](Self::with_domain)), else the default.
    pub(super) fn for_local(&self, local: &str) -> Self {
        let mut tls = self.clone();
        if let Some(client) = self.clients.get(&local.to_ascii_lowercase()) {
            tls.client = Arc::clone(client);
        }
        tls
    }

    /// [`from_pem`](Self::from_pem), reading the files.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        ca: Option<&Path>,
    ) -> Result<Self, xmpp_host::Error> {
        let ca = ca.map(std::fs::read).transpose()?;
        Self::from_pem(&std::fs::read(cert)?, &std::fs::read(key)?, ca.as_deref())
    }

    /// The names of a peer's certificate chain (leaf first) when it chains to our CA; `None`
    /// when it does not, or when there is none.
    pub(super) fn peer_ids(
        &self,
        chain: Option<&[CertificateDer<'_>]>,
    ) -> Option<Vec<PresentedId>> {
        let (leaf, intermediates) = chain?.split_first()?;
        let parsed = rustls::server::ParsedCertificate::try_from(leaf).ok()?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            UnixTime::now(),
            self.algorithms.all,
        )
        .ok()?;
        Some(presented_ids(leaf))
    }
}

/// Both ends' configurations for one certificate chain and key (PEM).
fn configs(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>), xmpp_host::Error> {
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error("certificate PEM", e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| config_error("key PEM", e))?;
    xmpp_host::tls::s2s_configs(chain, key)
}

/// Every name of a certificate the RFC 6125 matcher may consider: dNSName, SRVName and
/// XmppAddr subjectAltNames, and the subject's Common Names. Empty for a certificate that
/// does not parse.
pub fn presented_ids(der: &[u8]) -> Vec<PresentedId> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::FromDer as _;
    let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => ids.push(PresentedId::Dns((*dns).to_owned())),
                GeneralName::URI(uri) => ids.push(PresentedId::Uri((*uri).to_owned())),
                GeneralName::OtherName(oid, value) => {
                    let oid = oid.to_id_string();
                    if oid == OID_SRV_NAME
                        && let Some(text) =
                            other_name_text(value, x509_parser::asn1_rs::Tag::Ia5String)
                    {
                        ids.push(PresentedId::Srv(text));
                    } else if oid == OID_XMPP_ADDR
                        && let Some(text) =
                            other_name_text(value, x509_parser::asn1_rs::Tag::Utf8String)
                    {
                        ids.push(PresentedId::XmppAddr(text));
                    }
                }
                _ => {}
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(text) = cn.as_str() {
            ids.push(PresentedId::CommonName(text.to_owned()));
        }
    }
    ids
}

/// The string inside an otherName value (`[0] EXPLICIT` around a string of type `tag`).
fn other_name_text(value: &[u8], tag: x509_parser::asn1_rs::Tag) -> Option<String> {
    use x509_parser::asn1_rs::{Any, FromDer as _, TaggedExplicit};
    let (_, tagged) =
        TaggedExplicit::<Any, x509_parser::asn1_rs::Error, 0>::from_der(value).ok()?;
    let inner = tagged.into_inner();
    if inner.tag() != tag {
        return None;
    }
    std::str::from_utf8(inner.data).ok().map(str::to_owned)
}

/// Open the outgoing connection of session `id` to `remote` (static route, else DNS), on a
/// task of its own; report it to the hub ([`Hub::s2s_connected`](crate::Hub::s2s_connected) or
/// [`Hub::s2s_connect_failed`](crate::Hub::s2s_connect_failed)).
pub(super) fn spawn_connect(shared: &Shared, id: SessionId, local: &BareJid, remote: BareJid) {
    let (Some(me), Some(settings)) = (shared.me.upgrade(), shared.s2s.clone()) else {
        return;
    };
    let resolver = shared.resolver.clone();
    let tls = settings.tls.for_local(local.as_str());
    tokio::spawn(async move {
        let failed = |condition| {
            let mut guard = lock(&me);
            let now = guard.now();
            guard.hub.s2s_connect_failed(id, now, condition);
            guard.dispatch();
        };
        let Ok(name) = ServerName::try_from(tls_name(remote.as_str())) else {
            failed(StanzaErrorCondition::RemoteServerNotFound);
            return;
        };
        // TCP, and the TLS handshake on a direct TLS address, within one deadline.
        let connected = tokio::time::timeout(settings.connect_timeout, async {
            let (tcp, candidate) = open(&settings, &resolver, remote.as_str()).await?;
            let _ = tcp.set_nodelay(true);
            if candidate.direct_tls {
                let (stream, ids) = direct_tls(&tls, name.clone(), tcp).await?;
                Some((Conn::ClientTls(Box::new(stream)), Some(ids), candidate.addr))
            } else {
                Some((Conn::Plain(tcp), None, candidate.addr))
            }
        })
        .await;
        let (conn, ids, addr) = match connected {
            Ok(Some(connected)) => connected,
            Ok(None) => {
                failed(StanzaErrorCondition::RemoteServerNotFound);
                return;
            }
            Err(_) => {
                failed(StanzaErrorCondition::RemoteServerTimeout);
                return;
            }
        };
        let outbox = Arc::new(Outbox::default());
        {
            let mut guard = lock(&me);
            guard.conns.insert(id, Arc::clone(&outbox));
            if guard.log {
                let how = if ids.is_some() { " (direct TLS)" } else { "" };
                eprintln!("c2s {id}: s2s connection to {remote} at {addr}{how}");
            }
            let now = guard.now();
            match ids {
                Some(ids) => guard
                    .hub
                    .s2s_connected_direct_tls(id, now, OsEntropy::new(), ids),
                None => guard.hub.s2s_connected(id, now, OsEntropy::new()),
            }
            guard.dispatch();
        }
        connection(me, id, conn, outbox, Upgrade::S2sOut(tls, name)).await;
    });
}

/// Run the dialback verification connection `id` asked for, on a task of its own: a
/// [`Verification`] to `originating`'s authoritative server, found as an outgoing connection
/// finds its peer (static route, else DNS with XEP-0368: a direct TLS address gets the TLS
/// handshake first, presenting the certificate of our domain `receiving`; on a STARTTLS one,
/// TLS when offered), bounded by the connect timeout (lookup, connection, handshake) and by
/// the stream's dialback deadline for the answer.
pub(super) fn spawn_verification(
    shared: &Shared,
    id: SessionId,
    originating: BareJid,
    receiving: BareJid,
    stream_id: StreamId,
    key: DialbackKey,
) {
    let (Some(me), Some(settings)) = (shared.me.upgrade(), shared.s2s.clone()) else {
        return;
    };
    let resolver = shared.resolver.clone();
    let tls = settings.tls.for_local(receiving.as_str());
    tokio::spawn(async move {
        let outcome = match Verification::new(&originating, &receiving, stream_id, key) {
            Some(verification) => {
                // Past the stream's own dialback deadline (30 s by default) the answer is
                // moot: the socket is not kept for a peer that never answers.
                tokio::time::timeout(
                    VERIFY_DEADLINE,
                    verify(
                        verification,
                        &settings,
                        &tls,
                        &resolver,
                        originating.as_str(),
                    ),
                )
                .await
                .unwrap_or(DialbackOutcome::Error(
                    StanzaErrorCondition::RemoteServerTimeout.into(),
                ))
            }
            None => DialbackOutcome::Error(StanzaErrorCondition::RemoteServerNotFound.into()),
        };
        let mut guard = lock(&me);
        let now = guard.now();
        if guard.log {
            eprintln!("c2s {id}: dialback verification of {originating}: {outcome:?}");
        }
        guard
            .hub
            .dialback_verified(id, now, &originating, &receiving, outcome);
        guard.dispatch();
    });
}

/// The byte stream of a verification connection: TCP, TLS from the first byte on a direct
/// TLS address (XEP-0368), or TLS over TCP when the authoritative server offers STARTTLS.
trait VerifyIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> VerifyIo for T {}

async fn verify(
    mut verification: Verification,
    settings: &S2sSettings,
    tls: &S2sTls,
    resolver: &Resolver,
    originating: &str,
) -> DialbackOutcome {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let not_found = || DialbackOutcome::Error(StanzaErrorCondition::RemoteServerNotFound.into());
    let Ok(name) = ServerName::try_from(tls_name(originating)) else {
        return not_found();
    };
    // The same addresses as an outgoing connection, direct TLS ones included; the TLS
    // handshake within the connect deadline.
    let connected = tokio::time::timeout(settings.connect_timeout, async {
        let (tcp, candidate) = open(settings, resolver, originating).await?;
        let io: Box<dyn VerifyIo> = if candidate.direct_tls {
            let (stream, _) = direct_tls(tls, name.clone(), tcp).await?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        Some(io)
    })
    .await;
    let Ok(Some(mut io)) = connected else {
        return not_found();
    };
    if io.write_all(&verification.start()).await.is_err() {
        return not_found();
    }
    let mut buf = vec![0u8; 4096];
    loop {
        // The stream's dialback deadline answers for a peer that never does.
        let n = match io.read(&mut buf).await {
            Ok(0) | Err(_) => return not_found(),
            Ok(n) => n,
        };
        let (write, outcome) = verification.handle_input(buf.get(..n).unwrap_or_default());
        if !write.is_empty() && io.write_all(&write).await.is_err() && outcome.is_none() {
            return not_found();
        }
        if let Some(outcome) = outcome {
            let _ = io.shutdown().await;
            return outcome;
        }
        if verification.wants_tls() {
            // The authoritative server's certificate is not checked: its answer is about a
            // key only it can compute, and the stream being verified has its own TLS.
            let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
            let Ok(stream) = connector.connect(name.clone(), io).await else {
                return not_found();
            };
            io = Box::new(stream);
            if io.write_all(&verification.tls_established()).await.is_err() {
                return not_found();
            }
        }
    }
}

/// A TCP connection to `domain`: its static route, else the addresses DNS gives, tried in
/// order (RFC 6120 §3.2.1); `None` when none answers.
async fn open(
    settings: &S2sSettings,
    resolver: &Resolver,
    domain: &str,
) -> Option<(TcpStream, Candidate)> {
    let candidates = match settings.routes.get(domain) {
        Some(addr) => vec![Candidate {
            addr: *addr,
            direct_tls: false,
        }],
        None => resolver.lookup(domain).await,
    };
    for candidate in candidates {
        if let Ok(tcp) = TcpStream::connect(candidate.addr).await {
            return Some((tcp, candidate));
        }
    }
    None
}

/// XEP-0368: the TLS handshake first, on a connection found by `_xmpps-server._tcp`, with
/// the ALPN protocol `xmpp-server`; the names of the peer's certificate when it chains to
/// our CA.
async fn direct_tls(
    tls: &S2sTls,
    name: ServerName<'static>,
    tcp: TcpStream,
) -> Option<(
    tokio_rustls::client::TlsStream<TcpStream>,
    Option<Vec<PresentedId>>,
)> {
    let mut config = (*tls.client).clone();
    config.alpn_protocols = vec![b"xmpp-server".to_vec()];
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    let ids = tls.peer_ids(stream.get_ref().1.peer_certificates());
    Some((stream, ids))
}
