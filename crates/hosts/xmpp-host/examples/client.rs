//! A command-line XMPP client for any server: connects (STARTTLS or direct TLS), logs in,
//! binds, sends presence, optionally a message, and closes.
//!
//! ```text
//! cargo run -p xmpp-host --example client -- \
//!     --jid alice@example.org (--password secret | --cert me.pem --key me.key) \
//!     [--host 203.0.113.5] [--port 5222] \
//!     [--direct-tls] [--ca ca.pem | --insecure] [--resource laptop] \
//!     [--to bob@example.org --body "hello"] [--mechanism SCRAM-SHA-1] [--max-redirects 3] \
//!     [--register]
//! ```
//!
//! Without `--host` it connects to the JID's domain (no SRV lookup); the certificate must be
//! valid for the JID's domain and signed by the `--ca` PEM file. `--insecure` skips the check
//! (testing only). The password may come from `XMPP_PASSWORD` instead of the command line.
//! A server's `see-other-host` redirect (RFC 6120 §4.9.3.19) is followed under
//! `xmpp_host::Redirects`, the drivers' policy: at most `--max-redirects` times, with the same
//! TLS settings and the certificate still checked for the JID's domain.
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
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config, client_config_with_certificate};
use xmpp_host::{OsEntropy, Redirects};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, Event, FullJid, HostPort, Mechanism,
};

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
    /// Create the account first, by in-band registration (XEP-0077) before logging in; the
    /// server must offer it (needs the password)
    #[arg(long)]
    register: bool,
    /// Longest wait for the server at each step, in seconds
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = xmpp_host::cli::seconds)]
    timeout: Duration,
    /// Follow at most this many see-other-host redirects (same TLS settings, certificate
    /// still checked for the JID's domain; the port defaults as --port does)
    #[arg(long, value_name = "N", default_value = "3")]
    max_redirects: usize,
}

/// An address of `host`, at `port` unless it names its own.
fn resolve(to: &HostPort, port: u16) -> Result<std::net::SocketAddr, xmpp_host::Error> {
    (to.host.as_str(), to.port.unwrap_or(port))
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| xmpp_host::Error::Config(format!("{} has no address", to.host)))
}

/// Read events until the stream is negotiated (the bound JID) or closed (why), printing the
/// steps.
fn negotiate(
    client: &mut Connection<ClientStream>,
    timeout: Duration,
) -> Result<Result<FullJid, CloseReason>, xmpp_host::Error> {
    loop {
        match client.next_event(timeout)? {
            Some(Event::Secured) => println!("TLS established"),
            Some(Event::Registered { jid }) => println!("registered {jid}"),
            Some(Event::Authenticated { mechanism, .. }) => {
                println!("authenticated with {mechanism}");
            }
            Some(Event::Negotiated { jid, .. }) => return Ok(Ok(jid)),
            Some(Event::Closed { reason }) => return Ok(Err(reason)),
            Some(_) => {}
            None => return Ok(Err(CloseReason::TransportClosed)),
        }
    }
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
    if args.register && password.is_none() {
        return Err("--register needs a password (--password or XMPP_PASSWORD)".into());
    }
    config.register = args.register;
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
    let mut redirects = Redirects::new(args.max_redirects);
    let (mut client, jid) = loop {
        let mut client = Connection::connect(&options, config.clone(), OsEntropy::new())?;
        let reason = match negotiate(&mut client, timeout)? {
            Ok(jid) => break (client, jid),
            Err(reason) => reason,
        };
        match redirects.follow(&reason, &mut options, |to| resolve(to, port))? {
            Some(to) => println!("redirected to {to}, connecting to {}", options.addr),
            None => return Err(format!("closed: {reason:?}").into()),
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
            "--register",
        ])
        .unwrap();
        assert!(cli.register);
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
        assert!(cli.host.is_none() && cli.to.is_none() && !cli.direct_tls && !cli.register);
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

    /// A fake server on loopback that answers every stream header with `see-other-host`
    /// naming `to()`; returns its port and how many connections it took.
    fn redirecting(
        to: impl Fn() -> String + Send + 'static,
    ) -> (
        std::net::TcpListener,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (accept, count) = (listener.try_clone().unwrap(), served.clone());
        std::thread::spawn(move || {
            for socket in accept.incoming() {
                let Ok(mut socket) = socket else { return };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut header = [0u8; 1024];
                let _ = socket.read(&mut header);
                let reply = format!(
                    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                     xmlns:stream='http://etherx.jabber.org/streams' from='localhost' \
                     id='r' version='1.0'><stream:error><see-other-host \
                     xmlns='urn:ietf:params:xml:ns:xmpp-streams'>{}</see-other-host>\
                     </stream:error></stream:stream>",
                    to()
                );
                let _ = socket.write_all(reply.as_bytes());
            }
        });
        (listener, served)
    }

    #[test]
    fn follows_redirects_and_stops_a_loop_at_the_bound() {
        // Two servers sending the client to each other: first, second, first (two redirects
        // followed); the first's next redirect, to the second, is one too many.
        let second_port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
        let later = second_port.clone();
        let (first, first_served) =
            redirecting(move || format!("127.0.0.1:{}", later.get().unwrap()));
        let first_port = first.local_addr().unwrap().port();
        let (second, second_served) = redirecting(move || format!("127.0.0.1:{first_port}"));
        second_port
            .set(second.local_addr().unwrap().port())
            .unwrap();
        let port = first_port.to_string();
        let cli = parse(&[
            "--jid",
            "alice@localhost",
            "--password",
            "pw",
            "--insecure",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--timeout",
            "5",
            "--max-redirects",
            "2",
        ])
        .unwrap();
        let error = run(cli).unwrap_err();
        match error.downcast_ref::<xmpp_host::Error>() {
            Some(xmpp_host::Error::TooManyRedirects(to)) => {
                assert_eq!(to.port, second_port.get().copied());
            }
            _ => panic!("expected TooManyRedirects, got {error}"),
        }
        let served =
            |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!((served(&first_served), served(&second_served)), (2, 1));
    }
}
