//! The channel-binding data a finished handshake offers (RFC 9266 `tls-exporter`, RFC 5929
//! `tls-server-end-point`), computed the same way by both roles.

use rustls::ProtocolVersion;
use rustls::pki_types::CertificateDer;
use xmpp_stream::{ChannelBinding, ChannelBindingType};

/// RFC 9266 §2: the exporter label; the context is absent and the length 32 bytes.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// The channel-binding data a finished handshake offers, strongest first: `tls-exporter`
/// (see [`tls_exporter`]) and `tls-server-end-point` (see [`server_end_point`]: a hash of
/// the server's certificate; the client passes the peer's leaf, from [`peer_certificate`],
/// the server its own). `tls-unique` is absent: `rustls` does not implement it.
///
/// Both ends of one connection compute identical values, which is what SCRAM `-PLUS`
/// compares.
pub fn channel_bindings<D>(
    connection: &rustls::ConnectionCommon<D>,
    server_certificate: Option<&CertificateDer<'_>>,
) -> Vec<ChannelBinding> {
    let mut bindings = Vec::new();
    if let Some(exporter) = tls_exporter(connection) {
        bindings.push(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            exporter,
        ));
    }
    if let Some(hash) = server_certificate.and_then(server_end_point) {
        bindings.push(ChannelBinding::new(
            ChannelBindingType::TlsServerEndPoint,
            hash,
        ));
    }
    bindings
}

/// RFC 9266 `tls-exporter`: 32 bytes exported with the label `EXPORTER-Channel-Binding` and
/// no context, or `None` where RFC 9266 does not allow it.
///
/// RFC 9266 §3 defines it for TLS 1.3, and for TLS 1.2 only with the Extended Master Secret
/// (RFC 7627): without EMS a TLS 1.2 master secret can be made equal on two connections (the
/// triple-handshake attack), so the exporter would not bind the authentication to one
/// connection. `rustls` 0.23 does not say whether a TLS 1.2 connection used EMS, so the rule
/// here is enforced at configuration time instead: every configuration this module builds
/// ([`client_config`](super::client_config), [`server_config`](super::server_config),
/// [`TlsMaterial`](super::TlsMaterial)) sets `require_ems`, which makes `rustls` abort any
/// TLS 1.2 handshake without EMS. Every TLS 1.2 connection made from them therefore has EMS
/// and gets `tls-exporter`. A host that builds its own `rustls` configuration must set
/// `require_ems = true` itself before handing its connections here. Any other protocol
/// version, or a handshake still in progress, gives `None`.
pub fn tls_exporter<D>(connection: &rustls::ConnectionCommon<D>) -> Option<Vec<u8>> {
    if connection.is_handshaking() {
        return None;
    }
    match connection.protocol_version()? {
        ProtocolVersion::TLSv1_3 | ProtocolVersion::TLSv1_2 => connection
            .export_keying_material(vec![0u8; 32], EXPORTER_LABEL, None)
            .ok(),
        _ => None,
    }
}

/// The client's input to `tls-server-end-point`: the peer's leaf certificate.
pub fn peer_certificate(connection: &rustls::ClientConnection) -> Option<CertificateDer<'static>> {
    connection
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| cert.clone().into_owned())
}

/// RFC 5929 §4.1 `tls-server-end-point`: the DER certificate hashed with the hash function of
/// its `signatureAlgorithm`, SHA-256 when that is MD5 or SHA-1. `None` when the algorithm has
/// no single hash this function knows (Ed25519 and Ed448 hash nothing of their own, RSA-PSS
/// names its hash in parameters not parsed here, SHA-224 has no `ring` digest): RFC 5929
/// leaves the binding undefined there, and no binding is better than a wrong one.
pub fn server_end_point(certificate: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let algorithm = end_point_hash(signature_algorithm_oid(certificate.as_ref())?)?;
    Some(
        ring::digest::digest(algorithm, certificate.as_ref())
            .as_ref()
            .to_vec(),
    )
}

/// The RFC 5929 §4.1 hash for a signature algorithm OID (its DER content bytes).
fn end_point_hash(oid: &[u8]) -> Option<&'static ring::digest::Algorithm> {
    /// 1.2.840.113549.1.1.x: PKCS #1 RSA signatures.
    const PKCS1: [u8; 8] = [42, 134, 72, 134, 247, 13, 1, 1];
    /// 1.2.840.10045.4: ECDSA signatures.
    const ECDSA: [u8; 6] = [42, 134, 72, 206, 61, 4];
    let hash = if let Some(last) = oid.strip_prefix(&PKCS1) {
        match last {
            // md5WithRSAEncryption (.4), sha1WithRSAEncryption (.5), sha256WithRSAEncryption
            // (.11): MD5 and SHA-1 are replaced by SHA-256.
            [4 | 5 | 11] => &ring::digest::SHA256,
            [12] => &ring::digest::SHA384,
            [13] => &ring::digest::SHA512,
            _ => return None,
        }
    } else if let Some(last) = oid.strip_prefix(&ECDSA) {
        match last {
            // ecdsa-with-SHA1 (.1), ecdsa-with-SHA256 (.3.2)
            [1] | [3, 2] => &ring::digest::SHA256,
            [3, 3] => &ring::digest::SHA384,
            [3, 4] => &ring::digest::SHA512,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(hash)
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
            let (len, rest) = rest.split_at(count);
            let len = len
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, rest)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER `Certificate` with an empty `tbsCertificate` and `oid` as its signature
    /// algorithm: enough for the hash choice, which reads nothing else.
    fn with_algorithm(oid: &[u8]) -> Vec<u8> {
        let oid_len = u8::try_from(oid.len()).unwrap();
        let mut algorithm = vec![0x30, oid_len + 2, 0x06, oid_len];
        algorithm.extend_from_slice(oid);
        let mut body = vec![0x30, 0x00];
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
        der.extend_from_slice(&body);
        der
    }

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

    fn hash_len(oid: &[u8]) -> Option<usize> {
        server_end_point(&CertificateDer::from(with_algorithm(oid))).map(|h| h.len())
    }

    #[test]
    fn the_hash_follows_rfc_5929_for_each_signature_algorithm() {
        let pkcs1 = |n: u8| [42, 134, 72, 134, 247, 13, 1, 1, n];
        assert_eq!(hash_len(&pkcs1(4)), Some(32), "md5WithRSA -> SHA-256");
        assert_eq!(hash_len(&pkcs1(5)), Some(32), "sha1WithRSA -> SHA-256");
        assert_eq!(hash_len(&pkcs1(11)), Some(32));
        assert_eq!(hash_len(&pkcs1(12)), Some(48));
        assert_eq!(hash_len(&pkcs1(13)), Some(64));
        assert_eq!(hash_len(&pkcs1(14)), None, "SHA-224: no ring digest");
        assert_eq!(hash_len(&pkcs1(10)), None, "RSASSA-PSS: hash in parameters");
        assert_eq!(
            hash_len(&[42, 134, 72, 206, 61, 4, 1]),
            Some(32),
            "ecdsa-with-SHA1"
        );
        assert_eq!(hash_len(&[42, 134, 72, 206, 61, 4, 3, 2]), Some(32));
        assert_eq!(hash_len(&[42, 134, 72, 206, 61, 4, 3, 3]), Some(48));
        assert_eq!(hash_len(&[42, 134, 72, 206, 61, 4, 3, 4]), Some(64));
        assert_eq!(hash_len(&[43, 101, 112]), None, "Ed25519");
        // A prefix of a known OID is not that OID.
        assert_eq!(hash_len(&[42, 134, 72, 206, 61, 4, 3]), None);
    }

    #[test]
    fn malformed_certificates_give_no_binding() {
        for der in [
            &[][..],
            &[0x30, 0x03, 1, 2, 3],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x80],
            &[0x31, 0x00],
        ] {
            assert_eq!(
                server_end_point(&CertificateDer::from(der)),
                None,
                "{der:?}"
            );
        }
        let mut truncated = with_algorithm(&[42, 134, 72, 206, 61, 4, 3, 2]);
        truncated.pop();
        assert_eq!(server_end_point(&CertificateDer::from(truncated)), None);
    }
}
