//! `xmpp-conformance`: check an XMPP server against RFC 6120 / RFC 6121, case by case.
//!
//! `cargo run -p xmpp-conformance -- --domain localhost --user alice:pw --user2 bob:pw --ca ca.pem`
//! (`--help` lists every flag)
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use xmpp_conformance::run::{
    Account, ComponentTarget, MAX_JOBS, S2sIdentity, Status, Target, run_cases,
};
use xmpp_conformance::{report, select};
use xmpp_host::tls::{Trust, Versions, client_config, client_config_with_certificate};

/// Check an XMPP server's behaviour against RFC 6120 and RFC 6121, one numbered case per
/// rule: stream headers, restricted XML, STARTTLS, SASL, binding, stanza rules and errors,
/// roster, subscriptions, presence and delivery, the closing handshake; XEP-0198 stream
/// management, and with --component-port, --s2s-port and --ws-port XEP-0114 components,
/// server-to-server streams (after authentication too with --s2s-domain) and RFC 7395
/// WebSocket framing.
///
/// It connects only to the address given, one connection (two for two-account cases) per
/// case, at most --jobs cases at once, each bounded in time and bytes. Use test accounts:
/// cases log in with wrong passwords on purpose and change account A's roster.
#[derive(Debug, Parser)]
#[command(name = "xmpp-conformance", version, args_override_self = true)]
struct Cli {
    /// The server's host name or IP address (nothing else is contacted)
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Its c2s port (STARTTLS; with --direct-tls, its XEP-0368 port)
    #[arg(long, default_value_t = 5222)]
    port: u16,
    /// The XMPP domain it serves
    #[arg(long, value_name = "NAME")]
    domain: String,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS
    #[arg(long)]
    direct_tls: bool,
    /// The name the certificate must carry [default: --domain]
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// PEM CA (or self-signed) certificates to trust
    #[arg(long, value_name = "FILE", required_unless_present = "insecure")]
    ca: Option<PathBuf>,
    /// Accept any certificate (a test server only)
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
    /// Test account A
    #[arg(long, value_name = "NAME:PASSWORD", value_parser = account)]
    user: Account,
    /// Test account B, for the cases with two accounts (without it they are n/a)
    #[arg(long, value_name = "NAME:PASSWORD", value_parser = account)]
    user2: Option<Account>,
    /// The server's XEP-0114 component port, for the cases where the checker plays a
    /// component (on --host; without it they are n/a)
    #[arg(long, value_name = "PORT", requires = "component")]
    component_port: Option<u16>,
    /// A component the server accepts on --component-port, and its shared secret
    #[arg(long, value_name = "DOMAIN:SECRET", requires = "component_port", value_parser = component)]
    component: Option<(String, String)>,
    /// The server's server-to-server port, for the cases where the checker plays a remote
    /// server (on --host; without it they are n/a)
    #[arg(long, value_name = "PORT")]
    s2s_port: Option<u16>,
    /// A domain the checker authenticates as on --s2s-port (STARTTLS, then SASL EXTERNAL
    /// with --s2s-cert), for the server-to-server cases after authentication: the server
    /// must trust the certificate's CA (without it they are n/a)
    #[arg(long, value_name = "DOMAIN", requires_all = ["s2s_port", "s2s_cert", "s2s_key"])]
    s2s_domain: Option<String>,
    /// PEM certificate (chain) naming --s2s-domain
    #[arg(long, value_name = "FILE", requires = "s2s_domain")]
    s2s_cert: Option<PathBuf>,
    /// PEM private key of --s2s-cert
    #[arg(long, value_name = "FILE", requires = "s2s_domain")]
    s2s_key: Option<PathBuf>,
    /// The server's plain-HTTP XMPP-over-WebSocket port (RFC 7395), for the WebSocket cases
    /// (on --host; without it they are n/a)
    #[arg(long, value_name = "PORT")]
    ws_port: Option<u16>,
    /// The WebSocket endpoint's path
    #[arg(long, value_name = "PATH", default_value = "/xmpp-websocket")]
    ws_path: String,
    /// Run only this case (number or name; repeatable)
    #[arg(long = "case", value_name = "N")]
    cases: Vec<String>,
    /// Run only cases whose section contains this text, e.g. "§6.4" or "6121" (repeatable)
    #[arg(long = "section", value_name = "TEXT")]
    sections: Vec<String>,
    /// Seconds a case waits for the server's answer (silence is a failure)
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    /// Cases run at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=MAX_JOBS as i64))]
    jobs: u8,
    /// Print JSON instead of the table
    #[arg(long)]
    json: bool,
    /// List the cases and exit
    #[arg(long)]
    list: bool,
}

fn account(spec: &str) -> Result<Account, String> {
    let (user, password) = spec.split_once(':').ok_or("takes NAME:PASSWORD")?;
    Ok(Account {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

fn component(spec: &str) -> Result<(String, String), String> {
    let (domain, secret) = spec.split_once(':').ok_or("takes DOMAIN:SECRET")?;
    Ok((domain.to_owned(), secret.to_owned()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cases = select(&cli.cases, &cli.sections);
    if cli.list {
        for case in &cases {
            println!(
                "{:>3}  {:<28} {:<26} {}",
                case.id, case.name, case.section, case.requires
            );
        }
        return ExitCode::SUCCESS;
    }
    if cases.is_empty() {
        eprintln!("no case matches --case / --section");
        return ExitCode::from(2);
    }
    match run(&cli, &cases) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("xmpp-conformance: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli, cases: &[&'static xmpp_stream::conformance::Case]) -> Result<bool, String> {
    let addr = (cli.host.as_str(), cli.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", cli.host))?
        .next()
        .ok_or_else(|| format!("{}: no address", cli.host))?;
    let trust = match &cli.ca {
        Some(path) => {
            Trust::Pem(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => Trust::InsecureAcceptAny,
    };
    let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let s2s_identity = match (&cli.s2s_domain, &cli.s2s_cert, &cli.s2s_key) {
        (Some(domain), Some(cert), Some(key)) => Some(S2sIdentity {
            domain: domain.clone(),
            tls: client_config_with_certificate(&trust, Versions::Any, &read(cert)?, &read(key)?)
                .map_err(|e| e.to_string())?,
        }),
        _ => None,
    };
    if !(cli.timeout > 0.0 && cli.timeout <= 120.0) {
        return Err("--timeout takes 0 < SECS <= 120".to_owned());
    }
    let target = Target {
        addr,
        domain: cli.domain.clone(),
        server_name: cli
            .server_name
            .clone()
            .unwrap_or_else(|| cli.domain.clone()),
        direct_tls: cli.direct_tls,
        tls: client_config(&trust, Versions::Any).map_err(|e| e.to_string())?,
        a: cli.user.clone(),
        b: cli.user2.clone(),
        timeout: Duration::from_secs_f64(cli.timeout),
        component: cli
            .component_port
            .zip(cli.component.clone())
            .map(|(port, (domain, secret))| ComponentTarget {
                addr: SocketAddr::new(addr.ip(), port),
                domain,
                secret,
            }),
        s2s: cli.s2s_port.map(|port| SocketAddr::new(addr.ip(), port)),
        websocket: cli
            .ws_port
            .map(|port| (SocketAddr::new(addr.ip(), port), cli.ws_path.clone())),
        s2s_identity,
    };
    let outcomes = run_cases(&target, cases, usize::from(cli.jobs));
    if cli.json {
        print!("{}", report::json(&outcomes));
    } else {
        print!("{}", report::table(&outcomes));
    }
    Ok(outcomes.iter().all(|o| o.status != Status::Fail))
}
