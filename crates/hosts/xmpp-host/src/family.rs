//! Forcing one SASL mechanism (interop tests, the CLI's `--mechanism`): a
//! [`ClientConfig::mechanisms`](xmpp_stream::ClientConfig::mechanisms) list, not a rewrite of
//! what the server sent.

use xmpp_stream::Mechanism;

use crate::Error;

/// The mechanism list that makes a client use `name`'s family only: for a SCRAM name, its
/// `-PLUS` variant first and then the name itself (so the client still binds the channel
/// when it can, and picks the GS2 flag from the server's whole offer); otherwise just `name`.
pub fn mechanism_family(name: &str) -> Result<Vec<Mechanism>, Error> {
    let mechanism: Mechanism = name
        .parse()
        .map_err(|_| Error::Config(format!("unknown SASL mechanism {name:?}")))?;
    Ok(match mechanism.scram_hash() {
        Some(hash) if !mechanism.is_plus() => vec![Mechanism::scram(hash, true), mechanism],
        _ => vec![mechanism],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_names_keep_their_plus_variant() {
        assert_eq!(
            mechanism_family("SCRAM-SHA-1").unwrap(),
            [Mechanism::ScramSha1Plus, Mechanism::ScramSha1]
        );
        assert_eq!(
            mechanism_family("SCRAM-SHA-256-PLUS").unwrap(),
            [Mechanism::ScramSha256Plus]
        );
        assert_eq!(mechanism_family("PLAIN").unwrap(), [Mechanism::Plain]);
        assert!(mechanism_family("DIGEST-MD5").is_err());
    }
}
