//! A command-line XMPP client for any server: connects (STARTTLS or direct TLS), logs in,
//! binds, sends presence, optionally a message, and closes.
//!
//! ```text
//! cargo run -p xmpp-host --example client -- \
//!     --jid alice@example.org (--password secret | --cert me.pem --key me.key) \
//!     [--host 203.0.113.5] [--port 5222] \
//!     [--direct-tls] [--ca ca.pem | --insecure] [--resource laptop] \
//!     [--to bob@example.org --body "hello"] [--mechanism SCRAM-SHA-1]
//! ```
//!
//! Without `--host` it connects to the JID's domain (no SRV lookup); the certificate must be
//! valid for the JID's domain and signed by the `--ca` PEM file. `--insecure` skips the check
//! (testing only). The password may come from `XMPP_PASSWORD` instead of the command line.
//! `--help` lists every flag; `tests/client_cli.rs` runs this file's tests.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use minidom::Element;
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config, client_config_with_certificate};
use xmpp_stream::{BareJid, ClientConfig, Event, Mechanism};

/// A command-line XMPP client for any server: connects (STARTTLS or direct TLS), logs in,
/// binds, sends presence, optionally a message, and closes.
///
/// Without --host it connects to the JID's domain (no SRV lookup); the certificate must be
/// valid for the JID's domain and signed by the --ca PEM file. Durations are in seconds,
/// decimals allowed (e.g. 0.5).
#[derive(Debug, Parser)]
#[command(name = "client", version, args_override_self = true)]
struct Cli {
    /// The account's bare JID, e.g. alice@example.org
    #[arg(long)]
    jid: String,
    /// The account's password (not needed with --cert)
    #[arg(
        long,
        env = "XMPP_PASSWORD",
        hide_env_values = true,
        required_unless_present = "cert"
    )]
    password: Option<String>,
    /// PEM client certificate (with --key) whose XmppAddr names the account: log in with
    /// SASL EXTERNAL (XEP-0178), then the password if one is given too
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Connect to this host instead of the JID's domain
    #[arg(long)]
    host: Option<String>,
    /// TCP port [default: 5222, or 5223 with --direct-tls]
    #[arg(long)]
    port: Option<u16>,
    /// XEP-0368 direct TLS (TLS first) instead of STARTTLS
    #[arg(long)]
    direct_tls: bool,
    /// PEM file of the CA (or certificate) the server's certificate must chain to
    #[arg(long, value_name = "FILE", required_unless_present = "insecure")]
    ca: Option<PathBuf>,
    /// Skip the server certificate check (test servers only)
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
    /// The resource to ask for (the server picks one otherwise)
    #[arg(long)]
    resource: Option<String>,
    /// Send a chat message to this JID (with --body)
    #[arg(long, value_name = "JID", requires = "body")]
    to: Option<String>,
    /// The message's text (with --to)
    #[arg(long, value_name = "TEXT", requires = "to")]
    body: Option<String>,
    /// Offer only this SASL mechanism (and its -PLUS variant), e.g. SCRAM-SHA-1
    #[arg(long, value_name = "NAME")]
    mechanism: Option<String>,
    /// Longest wait for the server at each step, in seconds
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = xmpp_host::cli::seconds)]
    timeout: Duration,
}

fn run(args: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let jid = BareJid::new(&args.jid)?;
    let password = args.password.clone();
    let domain = jid.domain().to_string();
    let trust = match (&args.ca, args.insecure) {
        (Some(path), false) => Trust::Pem(std::fs::read(path)?),
        (None, true) => {
            println!("! --insecure: the server's certificate is NOT checked");
            Trust::InsecureAcceptAny
        }
        _ => return Err("give exactly one of --ca FILE and --insecure".into()),
    };
    let host = args.host.unwrap_or_else(|| domain.clone());
    let port = args
        .port
        .unwrap_or(if args.direct_tls { 5223 } else { 5222 });
    let addr = (host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or("the host has no address")?;
    let timeout = args.timeout;

    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => client_config_with_certificate(
            &trust,
            Versions::Any,
            &std::fs::read(cert)?,
            &std::fs::read(key)?,
        )?,
        _ => client_config(&trust, Versions::Any)?,
    };
    let mut options = ClientOptions::new(addr, &domain, tls);
    options.direct_tls = args.direct_tls;
    let mut config = ClientConfig::new(jid, password.clone().unwrap_or_default());
    config.resource = args.resource;
    if let Some(mechanism) = &args.mechanism {
        config.mechanisms = xmpp_host::mechanism_family(mechanism)?;
    }
    if args.cert.is_some() {
        if password.is_none() {
            config.mechanisms.clear();
        }
        config.mechanisms.insert(0, Mechanism::External);
    }
    println!(
        "connecting to {addr} ({})",
        if args.direct_tls {
            "direct TLS"
        } else {
            "STARTTLS"
        }
    );
    let mut client = Connection::connect(&options, config, OsEntropy::new())?;
    let jid = loop {
        match client.next_event(timeout)? {
            Some(Event::Secured) => println!("TLS established"),
            Some(Event::Authenticated { mechanism, .. }) => {
                println!("authenticated with {mechanism}");
            }
            Some(Event::Negotiated { jid, .. }) => break jid,
            Some(Event::Closed { reason }) => return Err(format!("closed: {reason:?}").into()),
            Some(_) => {}
            None => return Err("connection closed".into()),
        }
    };
    println!("bound as {jid}");

    client.send(&Element::builder("presence", "jabber:client").build())?;
    println!("sent presence");
    if let (Some(to), Some(body)) = (args.to, args.body) {
        let message = Element::builder("message", "jabber:client")
            .attr("to".try_into()?, to.as_str())
            .attr("type".try_into()?, "chat")
            .append(
                Element::builder("body", "jabber:client")
                    .append(body)
                    .build(),
            )
            .build();
        client.send(&message)?;
        println!("sent a message to {to}");
    }
    let reason = client.close(timeout)?;
    println!("closed: {reason:?}");
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("client").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_every_flag() {
        let cli = parse(&[
            "--jid",
            "alice@example.org",
            "--password",
            "secret",
            "--ca",
            "ca.pem",
            "--host",
            "127.0.0.1",
            "--port",
            "5223",
            "--direct-tls",
            "--resource",
            "laptop",
            "--to",
            "bob@example.org",
            "--body",
            "hello",
            "--mechanism",
            "SCRAM-SHA-1",
            "--timeout",
            "2.5",
        ])
        .unwrap();
        assert_eq!(cli.jid, "alice@example.org");
        assert_eq!(cli.password.as_deref(), Some("secret"));
        assert_eq!(cli.ca, Some(PathBuf::from("ca.pem")));
        assert!(!cli.insecure);
        assert_eq!(cli.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(cli.port, Some(5223));
        assert!(cli.direct_tls);
        assert_eq!(cli.resource.as_deref(), Some("laptop"));
        assert_eq!(cli.to.as_deref(), Some("bob@example.org"));
        assert_eq!(cli.body.as_deref(), Some("hello"));
        assert_eq!(cli.mechanism.as_deref(), Some("SCRAM-SHA-1"));
        assert_eq!(cli.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn defaults_and_the_last_of_a_repeated_flag() {
        let cli = parse(&[
            "--jid",
            "a@b",
            "--password",
            "pw",
            "--insecure",
            "--port",
            "1",
            "--port",
            "2",
        ])
        .unwrap();
        assert!(cli.insecure && cli.ca.is_none());
        assert_eq!(cli.port, Some(2));
        assert_eq!(cli.timeout, Duration::from_secs(15));
        assert!(cli.host.is_none() && cli.to.is_none() && !cli.direct_tls);
    }

    #[test]
    fn refuses_what_the_client_cannot_use() {
        let base = ["--jid", "a@b", "--password", "pw"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        assert!(with(&[]).is_err(), "neither --ca nor --insecure");
        let no_password =
            |extra: &[&str]| parse(&[&["--jid", "a@b", "--insecure"], extra].concat());
        assert!(no_password(&[]).is_err(), "neither --password nor --cert");
        assert!(
            no_password(&["--cert", "c.pem"]).is_err(),
            "--cert without --key"
        );
        let cli = no_password(&["--cert", "c.pem", "--key", "k.pem"]).unwrap();
        assert!(cli.password.is_none() && cli.key == Some(PathBuf::from("k.pem")));
        assert!(with(&["--ca", "x", "--insecure"]).is_err());
        assert!(with(&["--insecure", "--to", "c@d"]).is_err(), "--to alone");
        assert!(
            with(&["--insecure", "--body", "hi"]).is_err(),
            "--body alone"
        );
        assert!(with(&["--insecure", "--timeout", "-1"]).is_err());
        assert!(with(&["--insecure", "--port", "70000"]).is_err());
        assert!(with(&["--insecure", "--unknown"]).is_err());
    }
}
