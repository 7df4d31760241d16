//! Machine configuration from `key=value` lines, the form the JavaScript side passes: the
//! setup text of `xw_client_new` / `xw_server_new` and of
//! [`Host::create_client`](crate::Host::create_client) /
//! [`Host::create_server`](crate::Host::create_server).
//!
//! Lines are trimmed; empty lines and lines starting with `#` are ignored. A value runs to the
//! end of its line, so a password may contain `=` and spaces but not a line break.
//!
//! Client keys: `jid` (required), `password`, `resource`, `tls` (`required` | `optional` |
//! `disabled`), `allow-plain`, `require-channel-binding` (`true` | `false`), `mechanisms`
//! (space-separated wire names the client may use, in its order of preference; default
//! strongest first).
//!
//! Server keys: `domain` (required), `user` (repeatable: `<name> <password>`), `iterations`
//! (SCRAM iteration count for those users, default 4096), `mechanisms` (space-separated wire
//! names to offer, in order; default `ServerConfig::DEFAULT_MECHANISMS`), `tls`, `allow-plain`.

use xmpp_stream::MemoryBackend;
use xmpp_stream::{BareJid, ClientConfig, Mechanism, ServerConfig, TlsPolicy};

/// Iterations when the server setup names none: the RFC 7677 floor, which the client also
/// requires by default.
const DEFAULT_ITERATIONS: u32 = 4096;

fn pairs(text: &str) -> Result<Vec<(&str, &str)>, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("expected key=value, got {line:?}"))
        })
        .collect()
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{key}: expected true or false, got {value:?}")),
    }
}

fn tls(value: &str) -> Result<TlsPolicy, String> {
    match value {
        "required" => Ok(TlsPolicy::Required),
        "optional" => Ok(TlsPolicy::Optional),
        "disabled" => Ok(TlsPolicy::Disabled),
        _ => Err(format!(
            "tls: expected required, optional or disabled, got {value:?}"
        )),
    }
}

fn bare(key: &str, value: &str) -> Result<BareJid, String> {
    BareJid::new(value).map_err(|e| format!("{key}: {e}"))
}

/// A client configuration from `text`.
pub(crate) fn client(text: &str) -> Result<ClientConfig, String> {
    let pairs = pairs(text)?;
    let jid = pairs
        .iter()
        .find(|(k, _)| *k == "jid")
        .ok_or("jid is required")?
        .1;
    let password = pairs
        .iter()
        .find(|(k, _)| *k == "password")
        .map_or("", |(_, v)| *v);
    let mut config = ClientConfig::new(bare("jid", jid)?, password);
    for (key, value) in pairs {
        match key {
            "jid" | "password" => {}
            "resource" => config.resource = Some(value.to_owned()),
            "tls" => config.tls = tls(value)?,
            "allow-plain" => config.allow_plain_without_tls = flag(key, value)?,
            "require-channel-binding" => config.require_channel_binding = flag(key, value)?,
            "mechanisms" => config.mechanisms = mechanisms(value)?,
            _ => return Err(format!("unknown client key {key:?}")),
        }
    }
    Ok(config)
}

/// A space-separated list of mechanism wire names, in order.
fn mechanisms(value: &str) -> Result<Vec<Mechanism>, String> {
    value
        .split_whitespace()
        .map(|name| {
            name.parse::<Mechanism>()
                .map_err(|_| format!("mechanisms: unknown mechanism {name:?}"))
        })
        .collect()
}

/// A server configuration and its account database from `text`.
pub(crate) fn server(text: &str) -> Result<(ServerConfig, MemoryBackend), String> {
    let pairs = pairs(text)?;
    let domain = pairs
        .iter()
        .find(|(k, _)| *k == "domain")
        .ok_or("domain is required")?
        .1;
    let mut config = ServerConfig::new(bare("domain", domain)?);
    let mut iterations = DEFAULT_ITERATIONS;
    for (key, value) in &pairs {
        match *key {
            "domain" | "user" => {}
            "iterations" => {
                iterations = value
                    .parse()
                    .map_err(|_| format!("iterations: not a number: {value:?}"))?;
            }
            "mechanisms" => config.mechanisms = mechanisms(value)?,
            "tls" => config.tls = tls(value)?,
            "allow-plain" => config.allow_plain_without_tls = flag(key, value)?,
            _ => return Err(format!("unknown server key {key:?}")),
        }
    }
    // Users last, so `iterations` applies wherever it is written.
    let mut backend = MemoryBackend::new();
    for (_, value) in pairs.iter().filter(|(k, _)| *k == "user") {
        let (name, password) = value
            .split_once(' ')
            .ok_or_else(|| format!("user: expected \"<name> <password>\", got {value:?}"))?;
        backend = backend.with_user(name, password, iterations);
    }
    Ok((config, backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_apply() {
        let config = client(
            "# a comment\n jid = juliet@im.example.com \npassword=a b=c\nresource=balcony\ntls=optional\nallow-plain=yes\nmechanisms=SCRAM-SHA-1 PLAIN\n",
        )
        .unwrap();
        assert_eq!(
            config.mechanisms,
            vec![Mechanism::ScramSha1, Mechanism::Plain]
        );
        assert_eq!(config.jid.as_str(), "juliet@im.example.com");
        assert_eq!(config.resource.as_deref(), Some("balcony"));
        assert_eq!(config.tls, TlsPolicy::Optional);
        assert!(config.allow_plain_without_tls);
    }

    #[test]
    fn bad_client_setups_are_refused_with_a_reason() {
        assert_eq!(client("password=x").unwrap_err(), "jid is required");
        assert!(client("jid=@@").unwrap_err().starts_with("jid:"));
        assert!(
            client("jid=a@b\ncolour=blue")
                .unwrap_err()
                .contains("colour")
        );
        assert!(client("jid=a@b\nno equals sign").is_err());
        assert!(client("jid=a@b\ntls=maybe").is_err());
        assert!(client("jid=a@b\nmechanisms=KERBEROS").is_err());
    }

    #[test]
    fn server_keys_apply() {
        let (config, _) = server(
            "domain=im.example.com\nuser=juliet r0m30\nmechanisms=SCRAM-SHA-256 PLAIN\niterations=4096\ntls=required",
        )
        .unwrap();
        assert_eq!(config.domain.as_str(), "im.example.com");
        assert_eq!(
            config.mechanisms,
            vec![Mechanism::ScramSha256, Mechanism::Plain]
        );
        assert!(server("domain=x\nmechanisms=KERBEROS").is_err());
        assert!(server("domain=x\nuser=nopassword").is_err());
        assert!(server("domain=x\niterations=lots").is_err());
        assert!(server("user=a b").is_err());
    }
}
