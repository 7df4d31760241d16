//! Which SCRAM mechanism the sessions use.
//!
//! `ClientStream` picks the strongest mechanism a server offers and has no allow-list, so the
//! load generator narrows the server's offer itself: before authentication it removes every
//! `<mechanism/>` but the chosen one from the bytes it feeds in. A server's features element
//! arrives in one TLS record in practice; if it were split inside a `<mechanism>` element,
//! that piece would pass through unchanged and the session would use the server's default.
//!
//! A server that implements XEP-0474 (SASL SCRAM downgrade protection, as `xmpp-example-server` does)
//! sends a hash of its real mechanism list, and `ClientStream` rightly aborts when the list it
//! saw differs: against such a server only [`ScramChoice::Strongest`] works.

use std::fmt;
use std::str::FromStr;

/// The SCRAM variant every session authenticates with (never `-PLUS`: sessions pass no
/// channel-binding data, so all servers run the same mechanism).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramChoice {
    /// `SCRAM-SHA-1` (the only SCRAM variant Prosody 0.12 offers with hashed storage).
    Sha1,
    /// `SCRAM-SHA-256`.
    Sha256,
    /// Whatever `ClientStream` picks from the server's full offer (no `-PLUS`).
    Strongest,
}

impl ScramChoice {
    /// The SASL mechanism name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScramChoice::Sha1 => "SCRAM-SHA-1",
            ScramChoice::Sha256 => "SCRAM-SHA-256",
            ScramChoice::Strongest => "strongest",
        }
    }
}

impl fmt::Display for ScramChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScramChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-1" | "SHA-1" | "SHA1" => Ok(ScramChoice::Sha1),
            "SCRAM-SHA-256" | "SHA-256" | "SHA256" => Ok(ScramChoice::Sha256),
            "STRONGEST" => Ok(ScramChoice::Strongest),
            other => Err(format!("unknown SCRAM mechanism {other}")),
        }
    }
}

/// `bytes` with every `<mechanism>NAME</mechanism>` removed whose NAME is not `keep`. Bytes
/// that are not UTF-8 or hold no complete mechanism element come back unchanged.
pub(crate) fn keep_only_mechanism(bytes: &[u8], keep: ScramChoice) -> Vec<u8> {
    const OPEN: &str = "<mechanism>";
    const CLOSE: &str = "</mechanism>";
    if keep == ScramChoice::Strongest {
        return bytes.to_vec();
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bytes.to_vec();
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else {
            break;
        };
        out.push_str(&rest[..start]);
        if after[..end].trim() == keep.as_str() {
            out.push_str(&rest[start..start + OPEN.len() + end + CLOSE.len()]);
        }
        rest = &after[end + CLOSE.len()..];
    }
    out.push_str(rest);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
        <mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>\
        <mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
        </stream:features>";

    #[test]
    fn keeps_only_the_chosen_mechanism() {
        let sha1 =
            String::from_utf8(keep_only_mechanism(FEATURES.as_bytes(), ScramChoice::Sha1)).unwrap();
        assert_eq!(sha1.matches("<mechanism>").count(), 1);
        assert!(sha1.contains("<mechanism>SCRAM-SHA-1</mechanism>"));
        assert!(sha1.ends_with("</mechanisms></stream:features>"));
        let sha256 = String::from_utf8(keep_only_mechanism(
            FEATURES.as_bytes(),
            ScramChoice::Sha256,
        ))
        .unwrap();
        assert_eq!(sha256.matches("<mechanism>").count(), 1);
        assert!(sha256.contains("<mechanism>SCRAM-SHA-256</mechanism>"));
    }

    #[test]
    fn leaves_other_bytes_alone() {
        let split = "<mechanisms><mechanism>SCRAM-SHA-256</mecha";
        assert_eq!(
            keep_only_mechanism(split.as_bytes(), ScramChoice::Sha1),
            split.as_bytes()
        );
        let binary = [0xff, 0xfe, b'<'];
        assert_eq!(keep_only_mechanism(&binary, ScramChoice::Sha1), binary);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(
            keep_only_mechanism(FEATURES.as_bytes(), ScramChoice::Strongest),
            FEATURES.as_bytes()
        );
        for choice in [
            ScramChoice::Sha1,
            ScramChoice::Sha256,
            ScramChoice::Strongest,
        ] {
            assert_eq!(choice.to_string().parse::<ScramChoice>(), Ok(choice));
        }
        assert!("SCRAM-SHA-512".parse::<ScramChoice>().is_err());
    }
}
