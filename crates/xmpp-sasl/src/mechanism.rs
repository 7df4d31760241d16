//! The typed vocabulary: mechanism names, channel-binding types and the SCRAM hash functions.

use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

/// A SASL mechanism this crate implements, with its IANA wire name.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): the password in clear, only acceptable inside TLS.
    Plain,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-1-PLUS` (RFC 5802, with channel binding).
    ScramSha1Plus,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-256-PLUS` (RFC 7677, with channel binding).
    ScramSha256Plus,
    /// `SCRAM-SHA-512` (same construction with SHA-512).
    ScramSha512,
    /// `SCRAM-SHA-512-PLUS` (same construction with SHA-512, with channel binding).
    ScramSha512Plus,
    /// `EXTERNAL` (RFC 4422 appendix A): identity established outside SASL, e.g. a TLS client
    /// certificate.
    External,
    /// `ANONYMOUS` (RFC 4505).
    Anonymous,
}

impl Mechanism {
    /// Every mechanism, strongest first (the order [`crate::select_mechanism`] prefers when the
    /// client holds a certificate).
    pub const ALL: [Mechanism; 9] = [
        Mechanism::External,
        Mechanism::ScramSha512Plus,
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
        Mechanism::Anonymous,
    ];

    /// The IANA wire name, e.g. `SCRAM-SHA-256-PLUS`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::ScramSha512Plus => "SCRAM-SHA-512-PLUS",
            Mechanism::External => "EXTERNAL",
            Mechanism::Anonymous => "ANONYMOUS",
        }
    }

    /// The SCRAM hash, or `None` for non-SCRAM mechanisms.
    pub const fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Some(ScramHash::Sha1),
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => Some(ScramHash::Sha256),
            Mechanism::ScramSha512 | Mechanism::ScramSha512Plus => Some(ScramHash::Sha512),
            Mechanism::Plain | Mechanism::External | Mechanism::Anonymous => None,
        }
    }

    /// Whether this is a `-PLUS` (channel-binding) variant.
    pub const fn is_plus(self) -> bool {
        matches!(
            self,
            Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus | Mechanism::ScramSha512Plus
        )
    }

    /// The SCRAM mechanism for `hash`, with or without channel binding.
    pub const fn scram(hash: ScramHash, plus: bool) -> Mechanism {
        match (hash, plus) {
            (ScramHash::Sha1, false) => Mechanism::ScramSha1,
            (ScramHash::Sha1, true) => Mechanism::ScramSha1Plus,
            (ScramHash::Sha256, false) => Mechanism::ScramSha256,
            (ScramHash::Sha256, true) => Mechanism::ScramSha256Plus,
            (ScramHash::Sha512, false) => Mechanism::ScramSha512,
            (ScramHash::Sha512, true) => Mechanism::ScramSha512Plus,
        }
    }

    /// Whether the client sends data in the initial `<auth/>` (all of ours do, possibly empty).
    pub const fn client_first(self) -> bool {
        true
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a mechanism this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownName;

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown name")
    }
}

impl core::error::Error for UnknownName {}

impl FromStr for Mechanism {
    type Err = UnknownName;

    /// Parses a wire name. SASL mechanism names are upper case by definition (RFC 4422 §3.1),
    /// so matching is exact.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or(UnknownName)
    }
}

/// The hash function of a SCRAM mechanism.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramHash {
    /// SHA-1 (20-byte keys).
    Sha1,
    /// SHA-256 (32-byte keys).
    Sha256,
    /// SHA-512 (64-byte keys).
    Sha512,
}

impl ScramHash {
    /// All hashes, strongest first.
    pub const ALL: [ScramHash; 3] = [ScramHash::Sha512, ScramHash::Sha256, ScramHash::Sha1];

    /// The output (and key) length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }

    /// The name as used in the mechanism name, e.g. `SHA-256`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SHA-1",
            ScramHash::Sha256 => "SHA-256",
            ScramHash::Sha512 => "SHA-512",
        }
    }
}

impl fmt::Display for ScramHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScramHash {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScramHash::ALL
            .iter()
            .copied()
            .find(|h| h.as_str() == s)
            .ok_or(UnknownName)
    }
}

/// A TLS channel-binding type (RFC 5056 registry names).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelBindingType {
    /// `tls-unique` (RFC 5929): the first Finished message; undefined under TLS 1.3.
    TlsUnique,
    /// `tls-server-end-point` (RFC 5929): a hash of the server certificate.
    TlsServerEndPoint,
    /// `tls-exporter` (RFC 9266): a TLS exporter value; the TLS 1.3 binding.
    TlsExporter,
}

impl ChannelBindingType {
    /// Every type, in the client's order of preference (strongest binding first).
    pub const PREFERENCE: [ChannelBindingType; 3] = [
        ChannelBindingType::TlsExporter,
        ChannelBindingType::TlsUnique,
        ChannelBindingType::TlsServerEndPoint,
    ];

    /// The wire name, e.g. `tls-exporter`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelBindingType::TlsUnique => "tls-unique",
            ChannelBindingType::TlsServerEndPoint => "tls-server-end-point",
            ChannelBindingType::TlsExporter => "tls-exporter",
        }
    }
}

impl fmt::Display for ChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelBindingType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelBindingType::PREFERENCE
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or(UnknownName)
    }
}

/// Channel-binding data the host obtained from its TLS library for one binding type.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelBinding {
    kind: ChannelBindingType,
    data: Vec<u8>,
}

impl ChannelBinding {
    /// Wraps the binding data of type `kind` (e.g. the 32-byte `tls-exporter` value).
    pub fn new(kind: ChannelBindingType, data: impl Into<Vec<u8>>) -> Self {
        ChannelBinding {
            kind,
            data: data.into(),
        }
    }

    /// The binding type.
    pub fn kind(&self) -> ChannelBindingType {
        self.kind
    }

    /// The binding data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBinding")
            .field("kind", &self.kind)
            .field("len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(m.to_string().parse::<Mechanism>(), Ok(m));
        }
        for t in ChannelBindingType::PREFERENCE {
            assert_eq!(t.to_string().parse::<ChannelBindingType>(), Ok(t));
        }
        for h in ScramHash::ALL {
            assert_eq!(h.to_string().parse::<ScramHash>(), Ok(h));
        }
        assert_eq!("scram-sha-1".parse::<Mechanism>(), Err(UnknownName));
        assert_eq!("DIGEST-MD5".parse::<Mechanism>(), Err(UnknownName));
    }

    #[test]
    fn scram_constructor_agrees_with_accessors() {
        for h in ScramHash::ALL {
            for plus in [false, true] {
                let m = Mechanism::scram(h, plus);
                assert_eq!(m.scram_hash(), Some(h));
                assert_eq!(m.is_plus(), plus);
                assert!(m.as_str().contains(h.as_str()));
            }
        }
    }
}
