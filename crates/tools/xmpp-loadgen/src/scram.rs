//! Which SCRAM mechanism the sessions use.
//!
//! The choice becomes the client's own mechanism list (`ClientConfig::mechanisms`): the
//! machine sees the server's real offer, so XEP-0474 downgrade protection (which
//! `xmpp-server` implements) keeps working whatever is chosen.

use std::fmt;
use std::str::FromStr;

use xmpp_stream::{ClientConfig, Mechanism};

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
    /// The `ClientConfig::mechanisms` list for this choice.
    pub fn mechanisms(self) -> Vec<Mechanism> {
        match self {
            ScramChoice::Sha1 => vec![Mechanism::ScramSha1],
            ScramChoice::Sha256 => vec![Mechanism::ScramSha256],
            ScramChoice::Strongest => ClientConfig::DEFAULT_MECHANISMS.to_vec(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_become_mechanism_lists() {
        assert_eq!(ScramChoice::Sha1.mechanisms(), [Mechanism::ScramSha1]);
        assert_eq!(ScramChoice::Sha256.mechanisms(), [Mechanism::ScramSha256]);
        assert_eq!(
            ScramChoice::Strongest.mechanisms().first(),
            Some(&Mechanism::ScramSha512Plus)
        );
    }

    #[test]
    fn names_round_trip() {
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
