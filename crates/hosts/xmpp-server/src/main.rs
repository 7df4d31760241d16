//! `xmpp-server`: the example server's command line.
//!
//! `cargo run -p xmpp-server -- --port 5222 --user alice:pw --user bob:pw` (`--help` lists
//! every flag)
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use xmpp_server::db::Location;
use xmpp_server::{
    Dns, HubConfig, Listeners, PlusPolicy, RuntimeConfig, S2sSettings, S2sTls, TlsMaterial,
};
use xmpp_stream::BareJid;
use xmpp_stream::dialback::DialbackSecret;

#[cfg(feature = "alloc-stats")]
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// The toolkit's example XMPP c2s server: STARTTLS (and optionally direct TLS), SCRAM and PLAIN,
/// resource binding, rosters, presence and messages, accounts in a SQLite file or PostgreSQL
/// (--db);
/// optionally XEP-0114
/// components on a loopback port of their own (--component-port, --component); optionally
/// federation with other servers (--s2s-port, --s2s-route).
///
/// Durations are in seconds, decimals allowed (e.g. 0.5). Ctrl-C stops it.
#[derive(Debug, Parser)]
#[command(name = "xmpp-server", version, args_override_self = true)]
struct Cli {
    /// Account management on the database instead of serving
    #[command(subcommand)]
    command: Option<Command>,
    /// Where accounts, rosters, privacy lists and offline messages live: `sqlite:PATH` (created
    /// if missing, schema migrated), `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (schema
    /// migrated; the password is never printed) or `memory` (nothing survives the process)
    #[arg(long, value_name = "URL", default_value = "sqlite:xmpp-server.db", value_parser = database, global = true)]
    db: Database,
    /// TCP port for STARTTLS c2s
    #[arg(long, default_value_t = 5222)]
    port: u16,
    /// Also serve XEP-0368 direct TLS on this port (e.g. 5223)
    #[arg(long, value_name = "PORT")]
    tls_port: Option<u16>,
    /// Also serve XMPP over WebSocket (RFC 7395) on this port, endpoint /xmpp-websocket
    /// (subprotocol `xmpp`): `ws:` on a loopback --bind, `wss:` with the server's certificate
    /// otherwise or with --wss
    #[arg(long, value_name = "PORT")]
    ws_port: Option<u16>,
    /// Serve the WebSocket port with TLS (`wss:`) even on loopback
    #[arg(long)]
    wss: bool,
    /// Also serve the browser demo page over plain HTTP on this port: the files of --web-root
    /// (crates/hosts/xmpp-host-wasm/web with its wasm-bindgen output in pkg/)
    #[arg(long, value_name = "PORT", requires = "web_root")]
    web_port: Option<u16>,
    /// The directory --web-port serves
    #[arg(long, value_name = "DIR")]
    web_root: Option<PathBuf>,
    /// Listen address (loopback only by default)
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// An XMPP domain served (repeatable: the first is the main one; accounts of another are
    /// given as --user NAME@DOMAIN:PASSWORD)
    #[arg(long = "domain", value_name = "NAME", default_value = "localhost")]
    domains: Vec<String>,
    /// The certificate of one domain, for c2s and s2s, chosen by the peer's SNI and presented
    /// when dialing out from that domain (repeatable) [default: --cert, --s2s-cert]
    #[arg(long = "domain-cert", value_name = "DOMAIN=CERT,KEY", value_parser = domain_cert)]
    domain_certs: Vec<(String, PathBuf, PathBuf)>,
    /// Negotiate XEP-0288 bidirectional server-to-server streams when the peer offers them
    /// (and offer them): one connection carries stanzas both ways
    #[arg(long)]
    s2s_bidi: bool,
    /// An account, created or given this password at start (repeatable)
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = user)]
    users: Vec<(String, String)>,
    /// Let clients create accounts in band (XEP-0077), before authenticating, and change
    /// their password or delete their account after [default: off]
    #[arg(long)]
    allow_registration: bool,
    /// Accept XEP-0114 components on this port (loopback only) [default: off]
    ///
    /// Plain TCP on the loopback address of --bind's family (127.0.0.1 or ::1), never another
    /// interface: the component protocol has no TLS.
    #[arg(long, value_name = "PORT", requires = "components")]
    component_port: Option<u16>,
    /// An XEP-0114 component: the domain it serves (and every subdomain of it, e.g.
    /// comp.localhost) and its shared secret (repeatable; needs --component-port)
    #[arg(long = "component", value_name = "NAME:SECRET", value_parser = component, requires = "component_port")]
    components: Vec<(BareJid, String)>,
    /// Accept peer servers (server-to-server, RFC 6120 §13) on this port, on the loopback
    /// address of --bind's family [default: off]
    ///
    /// Federation needs a certificate for the domain (--s2s-cert/--s2s-key, or --cert/--key).
    #[arg(long, value_name = "PORT")]
    s2s_port: Option<u16>,
    /// Also accept peer servers over XEP-0368 direct TLS (TLS first, no STARTTLS) on this
    /// port, on the loopback address of --bind's family [default: off]
    ///
    /// Peers find it by SRV `_xmpps-server._tcp.DOMAIN`, which outgoing lookups here try
    /// before `_xmpp-server._tcp.DOMAIN`.
    #[arg(long, value_name = "PORT", requires = "s2s_port")]
    s2s_tls_port: Option<u16>,
    /// A static route to a peer server: stanzas for DOMAIN go to HOST:PORT (repeatable)
    ///
    /// A domain without a route is looked up in DNS (RFC 6120 §3.2): SRV
    /// `_xmpp-server._tcp.DOMAIN`, else its A/AAAA on port 5269; with neither, its stanzas
    /// bounce with remote-server-not-found.
    #[arg(long = "s2s-route", value_name = "DOMAIN=HOST:PORT", value_parser = route)]
    s2s_routes: Vec<(String, SocketAddr)>,
    /// The one nameserver that outgoing s2s lookups ask [default: the system configuration]
    ///
    /// Nothing else is asked: no /etc/resolv.conf, no hosts file.
    #[arg(long, value_name = "IP:PORT")]
    resolver: Option<SocketAddr>,
    /// PEM certificate chain presented to peer servers, both ways [default: --cert]
    #[arg(long, value_name = "FILE", requires = "s2s_key")]
    s2s_cert: Option<PathBuf>,
    /// PEM private key of --s2s-cert [default: --key]
    #[arg(long, value_name = "FILE", requires = "s2s_cert")]
    s2s_key: Option<PathBuf>,
    /// PEM CA certificates that peer servers' certificates must chain to for SASL EXTERNAL
    /// [default: none, every peer authenticates by dialback]
    #[arg(long, value_name = "FILE")]
    s2s_ca: Option<PathBuf>,
    /// PEM CA certificates that clients' certificates must chain to for SASL EXTERNAL
    /// (XEP-0178: the certificate's XmppAddr names the account) [default: none, no EXTERNAL]
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// The dialback secret (XEP-0185), read from this file [default: random, drawn at start
    /// from OS entropy]
    #[arg(long, value_name = "FILE")]
    dialback_secret_file: Option<PathBuf>,
    /// PEM certificate chain (with --key) [default: self-signed, made at start]
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key (with --cert)
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Offer SCRAM-*-PLUS with tls-exporter and tls-server-end-point (XEP-0440)
    ///
    /// Off by default because clients that bind only with tls-unique then fail.
    #[arg(long)]
    channel_binding: bool,
    /// No connection log
    #[arg(long)]
    quiet: bool,
    /// Log every XML byte in and out (inside TLS)
    #[arg(long)]
    trace: bool,
    /// Every SECS seconds (at least 0.1), print the live heap (needs the alloc-stats feature)
    #[arg(long, value_name = "SECS", value_parser = heap_period)]
    heap_stats: Option<Duration>,
}

/// Account management (`--db` and `--domain` say where and which domain).
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create an account (the password is read from standard input when not given)
    Adduser {
        /// The account: a localpart of the main --domain, or NAME@DOMAIN
        name: String,
        /// The password (visible to other local users in the process list: prefer stdin)
        password: Option<String>,
    },
    /// Delete an account and everything stored for it
    Deluser {
        /// The account
        name: String,
    },
    /// Give an account a new password (read from standard input when not given)
    Passwd {
        /// The account
        name: String,
        /// The new password
        password: Option<String>,
    },
}

/// The `--db` choice.
#[derive(Clone, PartialEq, Eq)]
enum Database {
    Stored(Location),
    Memory,
}

impl std::fmt::Debug for Database {
    // Through Location's Display: never a password of the URL (clap may print the value).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Stored(location) => write!(f, "{location}"),
            Database::Memory => f.write_str("memory"),
        }
    }
}

/// `sqlite:PATH`, `postgres://...` or `memory` for `--db`.
fn database(spec: &str) -> Result<Database, String> {
    if spec == "memory" {
        return Ok(Database::Memory);
    }
    Location::parse(spec)
        .map(Database::Stored)
        .ok_or_else(|| "takes sqlite:PATH, postgres://... or memory".to_owned())
}

/// `adduser`, `deluser`, `passwd`: on the database, then exit.
fn manage(args: &Cli, command: &Command) -> Result<(), Box<dyn std::error::Error>> {
    let Database::Stored(location) = &args.db else {
        return Err("account management needs --db sqlite:PATH or postgres://...".into());
    };
    let domain = BareJid::new(args.domains.first().map_or("localhost", String::as_str))?;
    let mut config = HubConfig::new(domain);
    for other in args.domains.iter().skip(1) {
        config = config.with_domain(BareJid::new(other)?);
    }
    let mut db = location.open().map_err(|e| format!("{location}: {e}"))?;
    let password = |given: &Option<String>| -> Result<String, Box<dyn std::error::Error>> {
        if let Some(p) = given {
            return Ok(p.clone());
        }
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let p = line.trim_end_matches(['\r', '\n']).to_owned();
        if p.is_empty() {
            return Err("empty password".into());
        }
        Ok(p)
    };
    let salt = || {
        let mut salt = [0u8; 16];
        xmpp_stream::Entropy::fill(&mut xmpp_host::OsEntropy::new(), &mut salt);
        salt
    };
    match command {
        Command::Adduser {
            name,
            password: given,
        } => {
            let jid = xmpp_server::account_jid(&config, name)?;
            if db.has_user(&jid)? {
                return Err(format!("{jid} exists (passwd changes its password)").into());
            }
            db.set_user(&jid, &password(given)?, &salt(), config.iterations)?;
            eprintln!("xmpp-server: added {jid}");
        }
        Command::Deluser { name } => {
            let jid = xmpp_server::account_jid(&config, name)?;
            if !db.delete_user(&jid)? {
                return Err(format!("{jid}: no such account").into());
            }
            eprintln!("xmpp-server: deleted {jid}");
        }
        Command::Passwd {
            name,
            password: given,
        } => {
            let jid = xmpp_server::account_jid(&config, name)?;
            if !db.has_user(&jid)? {
                return Err(format!("{jid}: no such account").into());
            }
            db.set_user(&jid, &password(given)?, &salt(), config.iterations)?;
            eprintln!("xmpp-server: new password for {jid}");
        }
    }
    Ok(())
}

/// `NAME:PASSWORD` (the password may contain `:`).
fn user(spec: &str) -> Result<(String, String), String> {
    let (name, password) = spec.split_once(':').ok_or("takes NAME:PASSWORD")?;
    Ok((name.to_owned(), password.to_owned()))
}

/// `NAME:SECRET` for `--component`: NAME a domain (no `@`, no `/`); the secret may contain `:`.
fn component(spec: &str) -> Result<(BareJid, String), String> {
    let (name, secret) = spec.split_once(':').ok_or("takes NAME:SECRET")?;
    let domain = BareJid::new(name).map_err(|e| format!("{name:?}: {e}"))?;
    if domain.node().is_some() {
        return Err(format!("{name:?} is not a domain (it has a localpart)"));
    }
    if secret.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    Ok((domain, secret.to_owned()))
}

/// `DOMAIN=CERT,KEY` for `--domain-cert`: PEM files.
fn domain_cert(spec: &str) -> Result<(String, PathBuf, PathBuf), String> {
    let (domain, files) = spec.split_once('=').ok_or("takes DOMAIN=CERT,KEY")?;
    let (cert, key) = files.split_once(',').ok_or("takes DOMAIN=CERT,KEY")?;
    let jid = BareJid::new(domain).map_err(|e| format!("{domain:?}: {e}"))?;
    if jid.node().is_some() || cert.is_empty() || key.is_empty() {
        return Err("takes DOMAIN=CERT,KEY".to_owned());
    }
    Ok((jid.as_str().to_owned(), cert.into(), key.into()))
}

/// `DOMAIN=HOST:PORT` for `--s2s-route`: HOST an IP address (no DNS).
fn route(spec: &str) -> Result<(String, SocketAddr), String> {
    let (domain, addr) = spec.split_once('=').ok_or("takes DOMAIN=HOST:PORT")?;
    let jid = BareJid::new(domain).map_err(|e| format!("{domain:?}: {e}"))?;
    if jid.node().is_some() {
        return Err(format!("{domain:?} is not a domain"));
    }
    let addr = addr
        .parse::<SocketAddr>()
        .map_err(|e| format!("{addr:?}: {e} (an IP address and a port: no DNS)"))?;
    Ok((jid.as_str().to_owned(), addr))
}

/// The federation settings and the dialback secret, when federating.
fn federation(
    args: &Cli,
) -> Result<Option<(S2sSettings, DialbackSecret)>, Box<dyn std::error::Error>> {
    if args.s2s_port.is_none() && args.s2s_routes.is_empty() {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (
        args.s2s_cert.as_ref().or(args.cert.as_ref()),
        args.s2s_key.as_ref().or(args.key.as_ref()),
    ) else {
        return Err("federation needs a certificate: --s2s-cert/--s2s-key or --cert/--key".into());
    };
    let mut tls = S2sTls::from_pem_files(cert, key, args.s2s_ca.as_deref())?;
    for (domain, cert, key) in &args.domain_certs {
        tls = tls.with_domain(domain, &std::fs::read(cert)?, &std::fs::read(key)?)?;
    }
    let secret = if let Some(file) = &args.dialback_secret_file {
        DialbackSecret::new(&std::fs::read(file)?)
    } else {
        let mut bytes = [0u8; 32];
        xmpp_stream::Entropy::fill(&mut xmpp_host::OsEntropy::new(), &mut bytes);
        DialbackSecret::new(&bytes)
    };
    let settings = S2sSettings {
        routes: args.s2s_routes.iter().cloned().collect(),
        dns: match args.resolver {
            Some(addr) => Dns::Nameserver {
                addr,
                timeout: Duration::from_secs(5),
            },
            None => Dns::System,
        },
        tls,
        connect_timeout: Duration::from_secs(10),
    };
    Ok(Some((settings, secret)))
}

/// The loopback address of `bind`'s family: where components are accepted.
fn loopback_like(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

/// `--heap-stats`: seconds, at least 0.1 s.
fn heap_period(text: &str) -> Result<Duration, String> {
    let period = xmpp_host::cli::seconds(text)?;
    if period < Duration::from_millis(100) {
        return Err("takes at least 0.1 seconds".to_owned());
    }
    Ok(period)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xmpp-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Print the live heap every `secs` seconds on a thread of its own.
#[cfg(feature = "alloc-stats")]
fn heap_stats(period: Duration) {
    std::thread::spawn(move || {
        loop {
            let stats = GLOBAL.stats();
            // A realloc's growth is already in `bytes_allocated` (its shrinking in
            // `bytes_deallocated`): `bytes_reallocated` would count it twice.
            let live = i128::try_from(stats.bytes_allocated).unwrap_or(0)
                - i128::try_from(stats.bytes_deallocated).unwrap_or(0);
            let blocks = stats.allocations.saturating_sub(stats.deallocations);
            eprintln!("heap: {live} bytes live in {blocks} blocks");
            std::thread::sleep(period);
        }
    });
}

#[cfg(not(feature = "alloc-stats"))]
fn heap_stats(_period: Duration) {
    eprintln!("xmpp-server: --heap-stats needs the alloc-stats feature; ignored");
}

fn run(args: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(command) = &args.command {
        return manage(&args, command);
    }
    if let Some(period) = args.heap_stats {
        heap_stats(period);
    }
    let domains = args
        .domains
        .iter()
        .map(|domain| BareJid::new(domain))
        .collect::<Result<Vec<_>, _>>()?;
    let Some((primary, others)) = domains.split_first() else {
        return Err("no --domain".into());
    };
    let mut hub = HubConfig::new(primary.clone()).with_plus(if args.channel_binding {
        PlusPolicy::Advertise
    } else {
        PlusPolicy::Off
    });
    for domain in others {
        hub = hub.with_domain(domain.clone());
    }
    for (domain, _, _) in &args.domain_certs {
        if !domains.iter().any(|served| served.as_str() == domain) {
            return Err(format!("--domain-cert {domain}: not a served --domain").into());
        }
    }
    hub.stream.allow_registration = args.allow_registration;
    for (name, password) in &args.users {
        hub = hub.with_user(name, password);
    }
    if let Database::Stored(location) = &args.db {
        eprintln!("xmpp-server: database {location}");
        hub.database = Some(location.clone());
    }
    for (component, secret) in &args.components {
        // The served domain's stanzas never reach a component: such a component would
        // connect and never hear anything.
        if domains.contains(component) {
            return Err(format!("--component {component}: that is a served --domain").into());
        }
        hub = hub.with_component(component.clone(), secret);
    }
    let federation = federation(&args)?;
    if let Some((_, secret)) = &federation {
        hub = hub.with_s2s(secret.clone());
        if let Some(s2s) = &mut hub.s2s {
            s2s.bidi = args.s2s_bidi;
        }
    }
    let names: Vec<&str> = args.domains.iter().map(String::as_str).collect();
    let mut tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => TlsMaterial::from_pem_files(cert, key)?,
        _ => TlsMaterial::self_signed(&names)?,
    };
    for (domain, cert, key) in &args.domain_certs {
        tls = tls.with_domain(domain, &TlsMaterial::from_pem_files(cert, key)?);
    }
    if let Some(ca) = &args.client_ca {
        tls = tls.with_client_ca(&std::fs::read(ca)?)?;
    }
    let config = RuntimeConfig {
        hub,
        tls,
        log: !args.quiet,
        trace: args.trace,
        s2s: federation.map(|(settings, _)| settings),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
        let direct = match args.tls_port {
            Some(port) => {
                Some(tokio::net::TcpListener::bind(SocketAddr::new(args.bind, port)).await?)
            }
            None => None,
        };
        let component = match args.component_port {
            Some(port) => {
                let addr = SocketAddr::new(loopback_like(args.bind), port);
                Some(tokio::net::TcpListener::bind(addr).await?)
            }
            None => None,
        };
        let s2s = match args.s2s_port {
            Some(port) => {
                let addr = SocketAddr::new(loopback_like(args.bind), port);
                Some(tokio::net::TcpListener::bind(addr).await?)
            }
            None => None,
        };
        let s2s_direct_tls = match args.s2s_tls_port {
            Some(port) => {
                let addr = SocketAddr::new(loopback_like(args.bind), port);
                Some(tokio::net::TcpListener::bind(addr).await?)
            }
            None => None,
        };
        if let Some(listener) = &s2s {
            eprintln!("xmpp-server: peer servers on {}", listener.local_addr()?);
        }
        if let Some(listener) = &s2s_direct_tls {
            eprintln!(
                "xmpp-server: peer servers on {} (direct TLS)",
                listener.local_addr()?
            );
        }
        eprintln!(
            "xmpp-server: serving {} on {} (STARTTLS){}{} ({} accounts); Ctrl-C stops",
            args.domains.join(", "),
            listener.local_addr()?,
            match &direct {
                Some(l) => format!(" and {} (direct TLS)", l.local_addr()?),
                None => String::new(),
            },
            match &component {
                Some(l) => format!(
                    " and {} ({} component{})",
                    l.local_addr()?,
                    args.components.len(),
                    if args.components.len() == 1 { "" } else { "s" }
                ),
                None => String::new(),
            },
            args.users.len()
        );
        let websocket = match args.ws_port {
            Some(port) => {
                let listener =
                    tokio::net::TcpListener::bind(SocketAddr::new(args.bind, port)).await?;
                let wss = args.wss || !args.bind.is_loopback();
                eprintln!(
                    "xmpp-server: WebSocket on {}://{}{}",
                    if wss { "wss" } else { "ws" },
                    listener.local_addr()?,
                    xmpp_server::WEBSOCKET_PATH
                );
                Some((listener, wss))
            }
            None => None,
        };
        if let (Some(port), Some(root)) = (args.web_port, args.web_root.clone()) {
            let web = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, port)).await?;
            let ws_url = match &websocket {
                Some((l, wss)) => Some(format!(
                    "{}://{}{}",
                    if *wss { "wss" } else { "ws" },
                    l.local_addr()?,
                    xmpp_server::WEBSOCKET_PATH
                )),
                None => None,
            };
            eprintln!("xmpp-server: demo page on http://{}/", web.local_addr()?);
            tokio::spawn(xmpp_server::serve_web(web, root, ws_url));
        }
        let listeners = Listeners {
            c2s: listener,
            direct_tls: direct,
            component,
            s2s,
            s2s_direct_tls,
            websocket,
        };
        xmpp_server::serve_on(listeners, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xmpp-server").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.port, 5222);
        assert_eq!(cli.tls_port, None);
        assert_eq!(cli.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(cli.domains, ["localhost"]);
        assert!(cli.domain_certs.is_empty() && !cli.s2s_bidi);
        assert!(cli.users.is_empty() && cli.cert.is_none() && cli.key.is_none());
        assert!(cli.component_port.is_none() && cli.components.is_empty());
        assert!(cli.s2s_port.is_none() && cli.s2s_routes.is_empty());
        assert!(cli.s2s_cert.is_none() && cli.s2s_key.is_none() && cli.s2s_ca.is_none());
        assert!(cli.dialback_secret_file.is_none());
        assert!(
            federation(&cli).unwrap().is_none(),
            "federation is off by default"
        );
        assert!(!cli.channel_binding && !cli.quiet && !cli.trace);
        assert_eq!(cli.heap_stats, None);
    }

    #[test]
    fn parses_every_flag() {
        // As `compare` starts it, plus the rest.
        let cli = parse(&[
            "--port",
            "5333",
            "--tls-port",
            "5334",
            "--bind",
            "::1",
            "--domain",
            "example.test",
            "--user",
            "alice:pw",
            "--user",
            "bob:p:w",
            "--cert",
            "cert.pem",
            "--key",
            "key.pem",
            "--channel-binding",
            "--quiet",
            "--trace",
            "--heap-stats",
            "0.5",
            "--component-port",
            "5347",
            "--component",
            "comp.localhost:s3cret",
            "--component",
            "other.localhost:a:b",
        ])
        .unwrap();
        assert_eq!(cli.port, 5333);
        assert_eq!(cli.tls_port, Some(5334));
        assert_eq!(cli.bind, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(cli.domains, ["example.test"]);
        let users = [("alice", "pw"), ("bob", "p:w")].map(|(n, p)| (n.to_owned(), p.to_owned()));
        assert_eq!(cli.users, users);
        assert_eq!(cli.cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(cli.key, Some(PathBuf::from("key.pem")));
        assert!(cli.channel_binding && cli.quiet && cli.trace);
        assert_eq!(cli.heap_stats, Some(Duration::from_millis(500)));
        assert_eq!(cli.component_port, Some(5347));
        let components = [("comp.localhost", "s3cret"), ("other.localhost", "a:b")]
            .map(|(n, s)| (BareJid::new(n).unwrap(), s.to_owned()));
        assert_eq!(cli.components, components);
    }

    #[test]
    fn parses_the_federation_flags() {
        let cli = parse(&[
            "--s2s-port",
            "5269",
            "--s2s-route",
            "b.test=127.0.0.1:5270",
            "--s2s-route",
            "C.Test=[::1]:5271",
            "--s2s-cert",
            "s2s.pem",
            "--s2s-key",
            "s2s-key.pem",
            "--s2s-ca",
            "ca.pem",
            "--dialback-secret-file",
            "secret",
            "--resolver",
            "127.0.0.1:5353",
            "--s2s-tls-port",
            "5270",
        ])
        .unwrap();
        assert_eq!(cli.s2s_port, Some(5269));
        assert_eq!(cli.s2s_tls_port, Some(5270));
        assert_eq!(cli.resolver, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(
            cli.s2s_routes,
            vec![
                ("b.test".to_owned(), "127.0.0.1:5270".parse().unwrap()),
                ("c.test".to_owned(), "[::1]:5271".parse().unwrap()),
            ]
        );
        assert_eq!(cli.s2s_cert, Some(PathBuf::from("s2s.pem")));
        assert_eq!(cli.s2s_key, Some(PathBuf::from("s2s-key.pem")));
        assert_eq!(cli.s2s_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(cli.dialback_secret_file, Some(PathBuf::from("secret")));
        for bad in [
            &["--s2s-route", "b.test"][..],
            &["--s2s-route", "b.test=localhost:5269"],
            &["--s2s-route", "bob@b.test=127.0.0.1:5269"],
            &["--s2s-route", "b.test=127.0.0.1"],
            &["--s2s-cert", "s2s.pem"],
            &["--s2s-key", "s2s-key.pem"],
            &["--s2s-tls-port", "5270"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // Federating without any certificate is refused at start.
        let cli = parse(&["--s2s-port", "5269"]).unwrap();
        assert!(federation(&cli).is_err());
    }

    #[test]
    fn parses_several_domains_with_their_certificates() {
        let cli = parse(&[
            "--domain",
            "a.test",
            "--domain",
            "a2.test",
            "--domain-cert",
            "A2.test=a2.pem,a2-key.pem",
            "--s2s-bidi",
        ])
        .unwrap();
        assert_eq!(cli.domains, ["a.test", "a2.test"]);
        assert_eq!(
            cli.domain_certs,
            [(
                "a2.test".to_owned(),
                PathBuf::from("a2.pem"),
                PathBuf::from("a2-key.pem")
            )]
        );
        assert!(cli.s2s_bidi);
        for bad in [
            &["--domain-cert", "a2.test=a2.pem"][..],
            &["--domain-cert", "a2.pem,a2-key.pem"],
            &["--domain-cert", "u@a2.test=a2.pem,k.pem"],
            &["--domain-cert", "a2.test=,k.pem"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // A certificate for a domain that is not served is refused at start.
        let cli = parse(&["--domain-cert", "z.test=z.pem,z-key.pem"]).unwrap();
        assert!(run(cli).is_err());
    }

    #[test]
    fn components_listen_on_loopback_only() {
        assert_eq!(
            loopback_like("0.0.0.0".parse().unwrap()),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            loopback_like("192.0.2.1".parse().unwrap()),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            loopback_like("::".parse().unwrap()),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
    }

    #[test]
    fn refuses_malformed_flags() {
        for bad in [
            &["--user", "alice"][..],
            &["--cert", "cert.pem"],
            &["--key", "key.pem"],
            &["--heap-stats", "0.05"],
            &["--heap-stats", "soon"],
            &["--component", "comp.localhost:s"],
            &["--component-port", "5347"],
            &["--component-port", "5347", "--component", "comp.localhost"],
            &[
                "--component-port",
                "5347",
                "--component",
                "bot@comp.localhost:s",
            ],
            &["--component-port", "5347", "--component", "comp.localhost:"],
            &[
                "--component-port",
                "5347",
                "--component",
                "comp..localhost:s",
            ],
            &["--port", "65536"],
            &["--bind", "localhost"],
            &["--verbose"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
