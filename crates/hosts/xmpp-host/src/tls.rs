//! TLS set-up with `rustls` (ring provider, TLS 1.2 and 1.3) and the channel-binding data the
//! machines want after a handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use xmpp_stream::{ChannelBinding, ChannelBindingType};

use crate::Error;

/// How the client decides whether to trust the server's certificate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Trust {
    /// Trust exactly the certificates (CA or self-signed leaf) in this PEM text.
    Pem(Vec<u8>),
    /// Accept any certificate. Only for testing against a server you control: anyone on the
    /// path can impersonate the server (channel binding with `tls-server-end-point` or
    /// `tls-exporter` still detects that, if the server supports it).
    InsecureAcceptAny,
}

/// Which TLS versions to offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Versions {
    /// TLS 1.3 and 1.2 (the default).
    #[default]
    Any,
    /// TLS 1.2 only (to see what a server offers there, such as `-PLUS` mechanisms bound to
    /// `tls-unique`, which `rustls` does not implement).
    Tls12Only,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A `rustls` client configuration with the given trust and versions.
pub fn client_config(
    trust: &Trust,
    versions: Versions,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider());
    let builder = match versions {
        Versions::Any => builder.with_safe_default_protocol_versions(),
        Versions::Tls12Only => builder.with_protocol_versions(&[&rustls::version::TLS12]),
    }?;
    let config = match trust {
        Trust::Pem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(|e| Error::Config(format!("certificate PEM: {e}")))?)?;
            }
            if roots.is_empty() {
                return Err(Error::Config("no certificate in the PEM text".to_owned()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::InsecureAcceptAny => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A `rustls` server configuration from a PEM certificate chain and a PEM private key. Also
/// returns the leaf certificate, whose hash is the server's `tls-server-end-point` binding.
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Arc<rustls::ServerConfig>, CertificateDer<'static>), Error> {
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("certificate PEM: {e}")))?;
    let leaf = chain
        .first()
        .cloned()
        .ok_or_else(|| Error::Config("no certificate in the PEM text".to_owned()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::Config(format!("private key PEM: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok((Arc::new(config), leaf))
}

/// The server name to verify and send in SNI.
pub fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(name.to_owned())
        .map_err(|e| Error::Config(format!("server name {name:?}: {e}")))
}

/// The channel-binding data a finished handshake offers: `tls-exporter` (RFC 9266: 32 bytes,
/// label `EXPORTER-Channel-Binding`, no context) and `tls-server-end-point` (RFC 5929: a hash
/// of the server's certificate; the client passes the peer's, the server its own).
/// `tls-unique` is absent: `rustls` does not implement it.
pub fn channel_bindings<D>(
    connection: &rustls::ConnectionCommon<D>,
    server_certificate: Option<&CertificateDer<'_>>,
) -> Vec<ChannelBinding> {
    let mut bindings = Vec::new();
    if let Ok(exporter) =
        connection.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
    {
        bindings.push(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            exporter.to_vec(),
        ));
    }
    if let Some(hash) = server_certificate.and_then(|cert| server_end_point(cert)) {
        bindings.push(ChannelBinding::new(
            ChannelBindingType::TlsServerEndPoint,
            hash,
        ));
    }
    bindings
}

/// The client's `tls-server-end-point` data: the peer's leaf certificate, hashed.
pub fn peer_certificate(connection: &rustls::ClientConnection) -> Option<CertificateDer<'static>> {
    connection
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| cert.clone().into_owned())
}

/// RFC 5929 §4.1: hash the DER certificate with the hash of its signature algorithm, SHA-256
/// when that is MD5 or SHA-1. `None` when the algorithm is not recognized (Ed25519, for
/// example, has no hash of its own: no binding is defined).
pub fn server_end_point(certificate: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let algorithm = match signature_algorithm_oid(certificate.as_ref())? {
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        [42, 134, 72, 134, 247, 13, 1, 1, 12] | [42, 134, 72, 206, 61, 4, 3, 3] => {
            &ring::digest::SHA384
        }
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        [42, 134, 72, 134, 247, 13, 1, 1, 13] | [42, 134, 72, 206, 61, 4, 3, 4] => {
            &ring::digest::SHA512
        }
        // md5/sha1/sha256 with RSA, ecdsa-with-SHA1/SHA256
        [42, 134, 72, 134, 247, 13, 1, 1, 4 | 5 | 11]
        | [42, 134, 72, 206, 61, 4, 1]
        | [42, 134, 72, 206, 61, 4, 3, 2] => &ring::digest::SHA256,
        _ => return None,
    };
    Some(
        ring::digest::digest(algorithm, certificate.as_ref())
            .as_ref()
            .to_vec(),
    )
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, .. }, .. }`:
/// the OID's content bytes, found by walking three DER headers.
fn signature_algorithm_oid(der: &[u8]) -> Option<&[u8]> {
    /// One TLV: (tag, content, rest).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[count..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, certificate, _) = tlv(der)? else {
        return None;
    };
    let (0x30, _tbs, rest) = tlv(certificate)? else {
        return None;
    };
    let (0x30, algorithm, _) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// The verifier behind [`Trust::InsecureAcceptAny`]: any certificate, but handshake
/// signatures are still checked so the TLS session itself is sound.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_end_point_hashes_an_ecdsa_sha256_certificate_with_sha256() {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let der = certified.cert.der().clone();
        let hash = server_end_point(&der).unwrap();
        assert_eq!(
            hash,
            ring::digest::digest(&ring::digest::SHA256, &der).as_ref()
        );
        // Not a certificate: no binding rather than a wrong one.
        assert_eq!(
            server_end_point(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
            None
        );
    }

    #[test]
    fn pem_trust_needs_a_certificate() {
        assert!(client_config(&Trust::Pem(b"not pem".to_vec()), Versions::Any).is_err());
    }
}
