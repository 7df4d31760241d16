//! A command-line XMPP client for any server: connects (STARTTLS or direct TLS), logs in,
//! binds, sends presence, optionally a message, and closes.
//!
//! ```text
//! cargo run -p xmpp-host --example client -- \
//!     --jid alice@example.org --password secret [--host 203.0.113.5] [--port 5222] \
//!     [--direct-tls] [--ca ca.pem | --insecure] [--resource laptop] \
//!     [--to bob@example.org --body "hello"] [--mechanism SCRAM-SHA-1]
//! ```
//!
//! Without `--host` it connects to the JID's domain (no SRV lookup); the certificate must be
//! valid for the JID's domain and signed by the `--ca` PEM file. `--insecure` skips the check
//! (testing only). The password may come from `XMPP_PASSWORD` instead of the command line.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout
)]

use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use minidom::Element;
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_stream::{BareJid, ClientConfig, Event};

const USAGE: &str =
    "usage: client --jid JID (--password PW | env XMPP_PASSWORD) (--ca FILE | --insecure)
              [--host HOST] [--port PORT] [--direct-tls] [--resource RES]
              [--to JID --body TEXT] [--mechanism NAME] [--timeout SECONDS]";

#[derive(Default)]
struct Args {
    jid: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    direct_tls: bool,
    ca: Option<String>,
    insecure: bool,
    resource: Option<String>,
    to: Option<String>,
    body: Option<String>,
    mechanism: Option<String>,
    timeout: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        timeout: 15,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--jid" => args.jid = Some(value()?),
            "--password" => args.password = Some(value()?),
            "--host" => args.host = Some(value()?),
            "--port" => args.port = Some(value()?.parse().map_err(|e| format!("--port: {e}"))?),
            "--direct-tls" => args.direct_tls = true,
            "--ca" => args.ca = Some(value()?),
            "--insecure" => args.insecure = true,
            "--resource" => args.resource = Some(value()?),
            "--to" => args.to = Some(value()?),
            "--body" => args.body = Some(value()?),
            "--mechanism" => args.mechanism = Some(value()?),
            "--timeout" => {
                args.timeout = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.password.is_none() {
        args.password = std::env::var("XMPP_PASSWORD").ok();
    }
    Ok(args)
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let jid = BareJid::new(args.jid.as_deref().ok_or("--jid is required")?)?;
    let password = args
        .password
        .ok_or("--password or XMPP_PASSWORD is required")?;
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
    let timeout = Duration::from_secs(args.timeout);

    let mut options = ClientOptions::new(addr, &domain, client_config(&trust, Versions::Any)?);
    options.direct_tls = args.direct_tls;
    let mut config = ClientConfig::new(jid, password);
    config.resource = args.resource;
    if let Some(mechanism) = &args.mechanism {
        config.mechanisms = xmpp_host::mechanism_family(mechanism)?;
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
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
