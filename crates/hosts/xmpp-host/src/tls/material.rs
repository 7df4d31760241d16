//! A server's TLS identity: its `rustls` configuration plus the certificate it presents.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::provider;
use crate::Error;

/// A server's TLS identity: the `rustls` configuration (ring provider, TLS 1.2 with the
/// Extended Master Secret required, and TLS 1.3) and the certificate it presents, whose hash
/// is the server's `tls-server-end-point` binding (pass [`TlsMaterial::leaf`] to
/// [`channel_bindings`](super::channel_bindings)).
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// The `rustls` server configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// The end-entity certificate, DER (clients of a self-signed server trust exactly this).
    pub cert_der: Vec<u8>,
    /// The certificate chain as PEM, for peers that load a CA file (with
    /// [`with_domain`](Self::with_domain), every domain's, concatenated).
    pub cert_pem: String,
    /// Further domains' end-entity certificates (DER), chosen by SNI.
    by_name: Vec<(String, Vec<u8>)>,
    /// The CA client certificates must chain to ([`with_client_ca`](Self::with_client_ca)).
    client_ca: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
}

impl TlsMaterial {
    /// A fresh self-signed certificate (`rcgen`, ECDSA P-256 with SHA-256) for `names`
    /// (internationalized ones as A-labels, the form clients check, see
    /// [`tls_name`](super::tls_name)).
    pub fn self_signed(names: &[&str]) -> Result<Self, Error> {
        let names: Vec<String> = names.iter().map(|n| super::tls_name(n)).collect();
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| Error::Config(format!("self-signed certificate: {e}")))?;
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        Self::build(
            vec![certified.cert.der().clone()],
            key,
            certified.cert.pem(),
        )
    }

    /// A certificate chain (leaf first) and a private key (PKCS #8, PKCS #1 or SEC1), as PEM.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Config(format!("certificate PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| Error::Config(format!("private key PEM: {e}")))?;
        Self::build(
            chain,
            key,
            String::from_utf8_lossy(cert_chain_pem).into_owned(),
        )
    }

    /// [`from_pem`](Self::from_pem), reading the two files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, Error> {
        Self::from_pem(&std::fs::read(cert)?, &std::fs::read(key)?)
    }

    /// The end-entity certificate, for [`channel_bindings`](super::channel_bindings).
    pub fn leaf(&self) -> CertificateDer<'_> {
        CertificateDer::from(self.cert_der.as_slice())
    }

    /// Serve `domain` with `material`'s certificate too: a client whose SNI names it gets
    /// that certificate (RFC 6066), every other client this one's. An internationalized
    /// `domain` may be given with U-labels: clients send its A-labels, which are compared
    /// (see [`tls_name`](super::tls_name)).
    #[must_use]
    pub fn with_domain(mut self, domain: &str, material: &TlsMaterial) -> Self {
        self.by_name
            .push((super::tls_name(domain), material.cert_der.clone()));
        // Domains added before stay: their resolver is this configuration's default now.
        self.config = super::with_sni(
            &self.config,
            &[(domain.to_owned(), Arc::clone(&material.config))],
        );
        self.cert_pem.push_str(&material.cert_pem);
        self
    }

    /// Ask every client for a certificate (without requiring one) and trust those that chain
    /// to a CA of `ca_pem` for client authentication (SASL EXTERNAL, XEP-0178 §2). The
    /// handshake accepts any certificate (its signature over the handshake is still checked,
    /// so the client holds the key): a client whose certificate is not trusted still logs in
    /// with a password. [`verified_client_certificate`](Self::verified_client_certificate)
    /// says after the handshake whether the chain checks out.
    pub fn with_client_ca(mut self, ca_pem: &[u8]) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.map_err(|e| Error::Config(format!("client CA PEM: {e}")))?)?;
        }
        if roots.is_empty() {
            return Err(Error::Config(
                "no certificate in the client CA PEM".to_owned(),
            ));
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| Error::Config(format!("client CA: {e}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(super::verify::AcceptAny(provider())))
            .with_cert_resolver(Arc::clone(&self.config.cert_resolver));
        config.require_ems = true;
        config
            .alpn_protocols
            .clone_from(&self.config.alpn_protocols);
        self.config = Arc::new(config);
        self.client_ca = Some(verifier);
        Ok(self)
    }

    /// The client's end-entity certificate when it presented one whose chain the client CA
    /// ([`with_client_ca`](Self::with_client_ca)) verifies for client authentication now;
    /// `None` without a client CA, without a certificate, or when it does not verify.
    pub fn verified_client_certificate<'a>(
        &self,
        connection: &'a rustls::ServerConnection,
    ) -> Option<&'a CertificateDer<'static>> {
        let verifier = self.client_ca.as_ref()?;
        let (leaf, intermediates) = connection.peer_certificates()?.split_first()?;
        verifier
            .verify_client_cert(leaf, intermediates, rustls::pki_types::UnixTime::now())
            .ok()?;
        Some(leaf)
    }

    /// The end-entity certificate presented to a client that sent `sni` (see
    /// [`with_domain`](Self::with_domain)), for [`channel_bindings`](super::channel_bindings).
    pub fn leaf_for(&self, sni: Option<&str>) -> CertificateDer<'_> {
        let chosen = sni.and_then(|sni| {
            self.by_name
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(sni))
        });
        CertificateDer::from(chosen.map_or(self.cert_der.as_slice(), |(_, der)| der.as_slice()))
    }

    fn build(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_pem: String,
    ) -> Result<Self, Error> {
        let cert_der = chain
            .first()
            .ok_or_else(|| Error::Config("no certificate in the PEM text".to_owned()))?
            .to_vec();
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // See `tls_exporter`: TLS 1.2 without EMS must not happen, so it cannot be bound.
        config.require_ems = true;
        Ok(TlsMaterial {
            config: Arc::new(config),
            cert_der,
            cert_pem,
            by_name: Vec::new(),
            client_ca: None,
        })
    }
}

/// A `rustls` server configuration from a PEM certificate chain and a PEM private key (see
/// [`TlsMaterial::from_pem`]). Also returns the leaf certificate, whose hash is the server's
/// `tls-server-end-point` binding.
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Arc<rustls::ServerConfig>, CertificateDer<'static>), Error> {
    let material = TlsMaterial::from_pem(cert_chain_pem, key_pem)?;
    Ok((material.config, CertificateDer::from(material.cert_der)))
}
