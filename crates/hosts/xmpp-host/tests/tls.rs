//! The TLS helper against real `rustls` handshakes, run in memory: a client and a server
//! connection object pumped through byte buffers (no sockets). Checks which channel bindings
//! each TLS version yields, that both ends compute the same values, that the
//! `tls-server-end-point` hash follows the certificate's signature algorithm (RFC 5929 §4.1),
//! and that TLS 1.2 without the Extended Master Secret never completes (RFC 9266 §3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConnection, ConnectionCommon, PeerIncompatible, ProtocolVersion};
use xmpp_host::tls::{
    TlsMaterial, Trust, Versions, channel_bindings, client_config, peer_certificate,
    server_end_point, server_name, tls_exporter,
};
use xmpp_stream::{ChannelBinding, ChannelBindingType};

/// Which end failed the handshake.
#[derive(Debug, PartialEq)]
enum Side {
    Client,
    Server,
}

/// Everything `from` has to send.
fn flight<D>(from: &mut ConnectionCommon<D>) -> Vec<u8> {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    bytes
}

fn deliver<D>(to: &mut ConnectionCommon<D>, mut bytes: &[u8]) -> Result<(), rustls::Error> {
    while !bytes.is_empty() {
        to.read_tls(&mut bytes).unwrap();
        to.process_new_packets()?;
    }
    Ok(())
}

/// A client and a server connection; `handshake` moves bytes between them.
struct Pair {
    client: ClientConnection,
    server: rustls::ServerConnection,
}

impl Pair {
    fn new(client: Arc<rustls::ClientConfig>, server: Arc<rustls::ServerConfig>) -> Self {
        Pair {
            client: ClientConnection::new(client, server_name("localhost").unwrap()).unwrap(),
            server: rustls::ServerConnection::new(server).unwrap(),
        }
    }

    /// Run the handshake to the end; `edit` may alter each client-to-server flight.
    fn handshake_with(
        &mut self,
        mut edit: impl FnMut(&mut Vec<u8>),
    ) -> Result<(), (Side, rustls::Error)> {
        for _ in 0..16 {
            let mut c2s = flight(&mut self.client);
            if !c2s.is_empty() {
                edit(&mut c2s);
                deliver(&mut self.server, &c2s).map_err(|e| (Side::Server, e))?;
            }
            let s2c = flight(&mut self.server);
            if !s2c.is_empty() {
                deliver(&mut self.client, &s2c).map_err(|e| (Side::Client, e))?;
            }
            if c2s.is_empty()
                && s2c.is_empty()
                && !self.client.is_handshaking()
                && !self.server.is_handshaking()
            {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    fn handshake(&mut self) {
        self.handshake_with(|_| {}).unwrap();
    }

    /// (client's bindings, server's bindings): the client hashes the peer's leaf, the server
    /// its own certificate.
    fn bindings(&self, material: &TlsMaterial) -> (Vec<ChannelBinding>, Vec<ChannelBinding>) {
        let peer = peer_certificate(&self.client).expect("the server sent a certificate");
        assert_eq!(peer.as_ref(), material.cert_der.as_slice());
        (
            channel_bindings(&self.client, Some(&peer)),
            channel_bindings(&self.server, Some(&material.leaf())),
        )
    }
}

fn kinds(bindings: &[ChannelBinding]) -> Vec<ChannelBindingType> {
    bindings.iter().map(ChannelBinding::kind).collect()
}

fn data(bindings: &[ChannelBinding], kind: ChannelBindingType) -> &[u8] {
    bindings
        .iter()
        .find(|b| b.kind() == kind)
        .map(ChannelBinding::data)
        .expect("binding present")
}

/// A self-signed identity for `localhost` signed with `algorithm`.
fn material(algorithm: &'static rcgen::SignatureAlgorithm) -> TlsMaterial {
    let key = rcgen::KeyPair::generate_for(algorithm).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    TlsMaterial::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap()
}

fn client_for(material: &TlsMaterial, versions: Versions) -> Arc<rustls::ClientConfig> {
    client_config(
        &Trust::Pem(material.cert_pem.clone().into_bytes()),
        versions,
    )
    .unwrap()
}

fn digest(algorithm: &'static ring::digest::Algorithm, bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(algorithm, bytes).as_ref().to_vec()
}

/// Handshake over `versions` with a certificate signed by `algorithm`; checks the version,
/// that both ends agree on every binding, and returns the (common) bindings.
fn agreed_bindings(
    algorithm: &'static rcgen::SignatureAlgorithm,
    versions: Versions,
    expected: ProtocolVersion,
) -> (TlsMaterial, Vec<ChannelBinding>) {
    let material = material(algorithm);
    let mut pair = Pair::new(client_for(&material, versions), material.config.clone());
    pair.handshake();
    assert_eq!(pair.client.protocol_version(), Some(expected));
    assert_eq!(pair.server.protocol_version(), Some(expected));
    let (client, server) = pair.bindings(&material);
    assert_eq!(client, server, "both ends must compute the same bindings");
    (material, client)
}

/// A P-256 handshake over `versions` yields both bindings, identical at both ends.
fn assert_exporter_and_end_point(versions: Versions, expected: ProtocolVersion) {
    let (material, bindings) = agreed_bindings(&rcgen::PKCS_ECDSA_P256_SHA256, versions, expected);
    assert_eq!(
        kinds(&bindings),
        [
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint
        ]
    );
    assert_eq!(data(&bindings, ChannelBindingType::TlsExporter).len(), 32);
    assert_eq!(
        data(&bindings, ChannelBindingType::TlsServerEndPoint),
        digest(&ring::digest::SHA256, &material.cert_der)
    );
}

#[test]
fn tls13_gives_exporter_and_end_point_identical_at_both_ends() {
    assert_exporter_and_end_point(Versions::Any, ProtocolVersion::TLSv1_3);
}

#[test]
fn tls12_with_ems_gives_exporter_and_end_point_identical_at_both_ends() {
    assert_exporter_and_end_point(Versions::Tls12Only, ProtocolVersion::TLSv1_2);
}

#[test]
fn the_exporter_is_the_rfc_9266_export_and_differs_per_connection() {
    let material = material(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut exporters = Vec::new();
    for _ in 0..2 {
        let mut pair = Pair::new(
            client_for(&material, Versions::Any),
            material.config.clone(),
        );
        pair.handshake();
        let exporter = tls_exporter(&pair.server).unwrap();
        let direct = pair
            .client
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
            .unwrap();
        assert_eq!(exporter, direct);
        exporters.push(exporter);
    }
    assert_ne!(exporters[0], exporters[1]);
}

#[test]
fn no_exporter_before_the_handshake_ends() {
    let material = material(&rcgen::PKCS_ECDSA_P256_SHA256);
    let pair = Pair::new(
        client_for(&material, Versions::Any),
        material.config.clone(),
    );
    assert_eq!(tls_exporter(&pair.client), None);
    assert!(channel_bindings(&pair.client, None).is_empty());
}

#[test]
fn p384_certificates_bind_with_sha384_over_both_versions() {
    for (versions, expected) in [
        (Versions::Any, ProtocolVersion::TLSv1_3),
        (Versions::Tls12Only, ProtocolVersion::TLSv1_2),
    ] {
        let (material, bindings) =
            agreed_bindings(&rcgen::PKCS_ECDSA_P384_SHA384, versions, expected);
        let end_point = data(&bindings, ChannelBindingType::TlsServerEndPoint);
        assert_eq!(end_point.len(), 48);
        assert_eq!(end_point, digest(&ring::digest::SHA384, &material.cert_der));
    }
}

#[test]
fn ed25519_certificates_have_no_end_point_binding() {
    let (material, bindings) = agreed_bindings(
        &rcgen::PKCS_ED25519,
        Versions::Any,
        ProtocolVersion::TLSv1_3,
    );
    assert_eq!(kinds(&bindings), [ChannelBindingType::TlsExporter]);
    assert_eq!(server_end_point(&material.leaf()), None);
}

/// Fixed RSA certificates (rcgen on ring cannot make RSA keys): see `testdata/tls/README.md`.
const RSA_SHA512: &[u8] = include_bytes!("../testdata/tls/rsa-sha512.der");
const RSA_SHA1: &[u8] = include_bytes!("../testdata/tls/rsa-sha1.der");

/// The fixture really carries `oid` (DER content bytes) as its signature algorithm.
fn assert_signed_with(der: &[u8], oid: &[u8]) {
    let mut encoded = vec![0x06, u8::try_from(oid.len()).unwrap()];
    encoded.extend_from_slice(oid);
    assert!(der.windows(encoded.len()).any(|w| w == encoded));
}

#[test]
fn rsa_sha512_certificates_bind_with_sha512() {
    let der = CertificateDer::from(RSA_SHA512);
    assert_signed_with(&der, &[42, 134, 72, 134, 247, 13, 1, 1, 13]);
    assert_eq!(
        server_end_point(&der),
        Some(digest(&ring::digest::SHA512, &der))
    );
}

#[test]
fn rsa_sha1_certificates_bind_with_sha256() {
    let der = CertificateDer::from(RSA_SHA1);
    assert_signed_with(&der, &[42, 134, 72, 134, 247, 13, 1, 1, 5]);
    assert_eq!(
        server_end_point(&der),
        Some(digest(&ring::digest::SHA256, &der))
    );
}

/// Remove the `extended_master_secret` extension (type 23, empty) from a ClientHello record,
/// fixing the three enclosing lengths, as a TLS 1.2 client without RFC 7627 would send it.
fn strip_ems(flight: &mut Vec<u8>) {
    const EMS: [u8; 4] = [0x00, 0x17, 0x00, 0x00];
    assert_eq!(flight[0], 0x16, "a handshake record");
    assert_eq!(flight[5], 0x01, "a ClientHello");
    let mut at = 5 + 4 + 2 + 32; // record header, handshake header, version, random
    at += 1 + usize::from(flight[at]); // session id
    at += 2 + usize::from(u16::from_be_bytes([flight[at], flight[at + 1]])); // cipher suites
    at += 1 + usize::from(flight[at]); // compression methods
    let extensions_len = at;
    let end = at + 2 + usize::from(u16::from_be_bytes([flight[at], flight[at + 1]]));
    let mut ext = at + 2;
    while ext < end {
        if flight[ext..ext + 4] == EMS {
            flight.drain(ext..ext + 4);
            let shrink = |bytes: &mut [u8]| {
                let mut value = bytes.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b));
                value -= 4;
                for byte in bytes.iter_mut().rev() {
                    *byte = (value & 0xff) as u8;
                    value >>= 8;
                }
            };
            shrink(&mut flight[3..5]);
            shrink(&mut flight[6..9]);
            shrink(&mut flight[extensions_len..extensions_len + 2]);
            return;
        }
        ext += 4 + usize::from(u16::from_be_bytes([flight[ext + 2], flight[ext + 3]]));
    }
    panic!("no extended_master_secret extension in the ClientHello");
}

/// Strips EMS from the first ClientHello only.
fn first_hello_without_ems() -> impl FnMut(&mut Vec<u8>) {
    let mut first = true;
    move |flight| {
        if std::mem::take(&mut first) {
            strip_ems(flight);
        }
    }
}

const EMS_REQUIRED: rustls::Error =
    rustls::Error::PeerIncompatible(PeerIncompatible::ExtendedMasterSecretExtensionRequired);

#[test]
fn our_server_refuses_tls12_without_extended_master_secret() {
    let material = material(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(
        client_for(&material, Versions::Tls12Only),
        material.config.clone(),
    );
    assert_eq!(
        pair.handshake_with(first_hello_without_ems()),
        Err((Side::Server, EMS_REQUIRED))
    );
    assert_eq!(tls_exporter(&pair.server), None);

    // The control: a server that does not require EMS reads the same hello on.
    let mut lax = (*material.config).clone();
    lax.require_ems = false;
    let mut pair = Pair::new(client_for(&material, Versions::Tls12Only), Arc::new(lax));
    let outcome = pair.handshake_with(first_hello_without_ems());
    assert!(
        !matches!(outcome, Err((Side::Server, ref e)) if *e == EMS_REQUIRED),
        "{outcome:?}"
    );
}

#[test]
fn our_client_refuses_tls12_without_extended_master_secret() {
    // The server (not ours) does not require EMS and sees no request for it, so it answers
    // without EMS: a TLS 1.2 handshake without RFC 7627.
    let material = material(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut lax = (*material.config).clone();
    lax.require_ems = false;
    let lax = Arc::new(lax);
    let mut pair = Pair::new(client_for(&material, Versions::Tls12Only), lax.clone());
    assert_eq!(
        pair.handshake_with(first_hello_without_ems()),
        Err((Side::Client, EMS_REQUIRED))
    );
    assert_eq!(tls_exporter(&pair.client), None);

    // The control: a client that does not require EMS takes that ServerHello (and only fails
    // later, because the hello was altered in flight).
    let mut lax_client = (*client_for(&material, Versions::Tls12Only)).clone();
    lax_client.require_ems = false;
    let mut pair = Pair::new(Arc::new(lax_client), lax);
    let outcome = pair.handshake_with(first_hello_without_ems());
    assert!(
        !matches!(outcome, Err((Side::Client, ref e)) if *e == EMS_REQUIRED),
        "{outcome:?}"
    );
}

/// A local domain configured with U-labels (`münchen.test`, the enforced form the server
/// holds) gets its own certificate for a client that sends the A-label as SNI, as clients
/// do (RFC 6066 §3): compared as U-labels, the client got the default certificate, which
/// does not name its domain, and the handshake failed.
#[test]
fn a_domain_given_with_u_labels_is_chosen_by_its_a_label_sni() {
    let default = TlsMaterial::self_signed(&["example.test"]).unwrap();
    let idn = TlsMaterial::self_signed(&["münchen.test"]).unwrap();
    let served = default.with_domain("münchen.test", &idn);
    let mut pair = Pair {
        client: ClientConnection::new(
            client_for(&idn, Versions::Any),
            server_name("xn--mnchen-3ya.test").unwrap(),
        )
        .unwrap(),
        server: rustls::ServerConnection::new(Arc::clone(&served.config)).unwrap(),
    };
    pair.handshake();
    let peer = peer_certificate(&pair.client).unwrap();
    assert_eq!(peer.as_ref(), idn.cert_der.as_slice());
    assert_eq!(pair.server.server_name(), Some("xn--mnchen-3ya.test"));
    assert_eq!(
        served.leaf_for(pair.server.server_name()).as_ref(),
        idn.cert_der.as_slice()
    );
}
