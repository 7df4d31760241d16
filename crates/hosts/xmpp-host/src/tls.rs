//! The one TLS helper every host uses: `rustls` configurations for both roles (ring
//! provider, TLS 1.2 and 1.3), a server's TLS identity ([`TlsMaterial`]: self-signed or from
//! PEM files), and the channel-binding data the machines want after a handshake
//! ([`channel_bindings`]).
//!
//! Every configuration built here requires the Extended Master Secret (RFC 7627) on TLS 1.2,
//! so every connection made from one may offer `tls-exporter` (see [`tls_exporter`]).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::Error;

mod bindings;
mod material;
mod verify;

pub use bindings::{channel_bindings, peer_certificate, server_end_point, tls_exporter};
pub use material::{TlsMaterial, server_config};

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

/// A `rustls` client configuration with the given trust and versions. TLS 1.2 servers that
/// do not negotiate the Extended Master Secret are refused (see [`tls_exporter`]).
pub fn client_config(
    trust: &Trust,
    versions: Versions,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    client_config_for(trust, versions, None)
}

/// [`client_config`] that also presents a client certificate (chain and key as PEM), for
/// SASL EXTERNAL (XEP-0178 §2: list `Mechanism::External` in the stream's
/// `ClientConfig::mechanisms`). The certificate names the account in an XmppAddr
/// subjectAltName and chains to a CA the server trusts for clients.
pub fn client_config_with_certificate(
    trust: &Trust,
    versions: Versions,
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("client certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Config(
            "no client certificate in the PEM text".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::Config(format!("client key PEM: {e}")))?;
    client_config_for(trust, versions, Some((chain, key)))
}

fn client_config_for(
    trust: &Trust,
    versions: Versions,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider());
    let builder = match versions {
        Versions::Any => builder.with_safe_default_protocol_versions(),
        Versions::Tls12Only => builder.with_protocol_versions(&[&rustls::version::TLS12]),
    }?;
    let mut config = match trust {
        Trust::Pem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(|e| Error::Config(format!("certificate PEM: {e}")))?)?;
            }
            if roots.is_empty() {
                return Err(Error::Config("no certificate in the PEM text".to_owned()));
            }
            let builder = builder.with_root_certificates(roots);
            match identity {
                Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
                None => builder.with_no_client_auth(),
            }
        }
        Trust::InsecureAcceptAny => {
            let builder = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::AcceptAny(provider())));
            match identity {
                Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
                None => builder.with_no_client_auth(),
            }
        }
    };
    config.require_ems = true;
    Ok(Arc::new(config))
}

/// Server-to-server TLS (RFC 6120 §13.7), both ends from one identity: the receiving end's
/// server configuration (asks for a client certificate, does not require one) and the
/// initiating end's client configuration (presents `chain` as its client certificate).
///
/// Both accept any peer certificate during the handshake (its signature over the handshake is
/// still checked, so the peer holds the key): the caller validates the chain afterwards and
/// authenticates a trusted peer with SASL EXTERNAL, anyone else with dialback. Refusing an
/// untrusted certificate in the handshake would leave dialback no connection to run on.
pub fn s2s_configs(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>), Error> {
    let verifier = Arc::new(verify::AcceptAny(provider()));
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(chain.clone(), key.clone_key())?;
    server.require_ems = true;
    let mut client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)?;
    client.require_ems = true;
    Ok((Arc::new(server), Arc::new(client)))
}

/// A server configuration that presents, to a client whose SNI (RFC 6066) names one of
/// `by_name`'s domains, that domain's certificate, and `default`'s otherwise: one listener
/// for a server of several domains, each with its certificate. Everything but the
/// certificate choice is `default`'s.
pub fn with_sni(
    default: &rustls::ServerConfig,
    by_name: &[(String, Arc<rustls::ServerConfig>)],
) -> Arc<rustls::ServerConfig> {
    let mut config = default.clone();
    config.cert_resolver = Arc::new(BySni {
        default: Arc::clone(&default.cert_resolver),
        by_name: by_name
            .iter()
            .map(|(name, config)| (tls_name(name), Arc::clone(&config.cert_resolver)))
            .collect(),
    });
    Arc::new(config)
}

/// The certificate resolver of [`with_sni`].
#[derive(Debug)]
struct BySni {
    default: Arc<dyn rustls::server::ResolvesServerCert>,
    by_name: Vec<(String, Arc<dyn rustls::server::ResolvesServerCert>)>,
}

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        // rustls hands the SNI name over lowercased and validated: A-labels, as the keys.
        let resolver = hello
            .server_name()
            .and_then(|name| self.by_name.iter().find(|(known, _)| known == name))
            .map_or(&self.default, |(_, resolver)| resolver);
        resolver.resolve(hello)
    }
}

/// The name TLS uses for an XMPP domain (SNI, RFC 6066 §3: "the hostname represented as a
/// byte string using ASCII encoding"; certificate names, RFC 6125 §6.4.2): every
/// internationalized label as its A-label, lowercase, e.g. `xn--mnchen-3ya.test` for
/// `münchen.test`. Domains are held enforced, with U-labels, which a client never sends as
/// SNI and rustls refuses as a server name. A string that is no domain stays as given,
/// lowercased.
pub fn tls_name(domain: &str) -> String {
    xmpp_jid::BareJid::new(domain).map_or_else(
        |_| domain.to_ascii_lowercase(),
        |jid| jid.domain_a_labels().to_ascii_lowercase(),
    )
}

/// The server name to verify and send in SNI.
pub fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(name.to_owned())
        .map_err(|e| Error::Config(format!("server name {name:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_names_are_lowercase_a_labels() {
        assert_eq!(tls_name("münchen.test"), "xn--mnchen-3ya.test");
        assert_eq!(tls_name("MÜNCHEN.test"), "xn--mnchen-3ya.test");
        assert_eq!(tls_name("Example.COM"), "example.com");
        assert_eq!(tls_name("a/b"), "a/b");
    }

    #[test]
    fn pem_trust_needs_a_certificate() {
        assert!(client_config(&Trust::Pem(b"not pem".to_vec()), Versions::Any).is_err());
    }

    #[test]
    fn s2s_configurations_present_our_certificate_both_ways() {
        let certified = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()]).unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let (server, client) = s2s_configs(vec![certified.cert.der().clone()], key.into()).unwrap();
        assert!(server.require_ems && client.require_ems);
        assert!(client.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn every_configuration_requires_the_extended_master_secret() {
        let material = TlsMaterial::self_signed(&["localhost"]).unwrap();
        assert!(material.config.require_ems);
        let pem = material.cert_pem.clone().into_bytes();
        for versions in [Versions::Any, Versions::Tls12Only] {
            for trust in [Trust::Pem(pem.clone()), Trust::InsecureAcceptAny] {
                assert!(client_config(&trust, versions).unwrap().require_ems);
            }
        }
    }
}
