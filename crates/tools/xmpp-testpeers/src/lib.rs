//! Test support for interoperability tests: starts real XMPP servers nobody here wrote
//! (Prosody, ejabberd) on loopback, each with its own configuration, certificate, data and
//! accounts in a fresh temporary directory, and stops them by pid when dropped.
//!
//! This crate does I/O on purpose (processes, files, sockets); it is never a dependency of the
//! library crates.
//!
//! Rules it keeps: servers listen on `127.0.0.1` only, on ports picked free at start; no
//! HTTP; the Erlang port mapper that ejabberd needs is bound to loopback. Server-to-server
//! only when asked ([`PeerOptions::with_s2s`]), for `.test` domains found through a private
//! DNS server on loopback ([`PrivateDns`]), never the machine's own resolver.
//!
//! ```no_run
//! use xmpp_testpeers::{PeerKind, PeerServer};
//!
//! let server = PeerServer::start(PeerKind::Prosody, &[("alice", "secret-a")]).unwrap();
//! println!("STARTTLS on 127.0.0.1:{}", server.starttls_port);
//! drop(server); // stops it by pid and removes its directory
//! ```
//!
//! With [`PeerOptions::with_component`] the server also accepts one XEP-0114 component
//! (`jabber:component:accept`) on a loopback port of its own:
//!
//! ```no_run
//! use xmpp_testpeers::{PeerKind, PeerOptions, PeerServer};
//!
//! let options = PeerOptions::new().with_component("comp.localhost", "s3cret");
//! let server = PeerServer::start_with(PeerKind::Ejabberd, &[("alice", "pw-a")], &options).unwrap();
//! let component = server.component.as_ref().unwrap();
//! println!("{} connects to 127.0.0.1:{}", component.domain, component.port);
//! ```
//!
//! [`transcripts`] lists and replays the sessions recorded against such peers.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod postgres;
pub mod s2s;
pub mod transcripts;

pub use postgres::PostgresServer;
pub use s2s::{PrivateDns, S2sAuth, S2sOptions, ServerCert, SrvRecord, TestCa};

use std::fmt;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// Prosody (Debian package `prosody`, 0.12 on Debian 12).
    Prosody,
    /// ejabberd (Debian package `ejabberd`, 23.01 on Debian 12).
    Ejabberd,
}

impl PeerKind {
    /// The program that must be on the machine for this peer.
    #[must_use]
    pub fn program(self) -> &'static str {
        match self {
            Self::Prosody => "prosody",
            Self::Ejabberd => "ejabberdctl",
        }
    }

    /// Whether the server's program is installed.
    #[must_use]
    pub fn is_installed(self) -> bool {
        which(self.program()).is_some()
    }
}

impl fmt::Display for PeerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prosody => "Prosody",
            Self::Ejabberd => "ejabberd",
        })
    }
}

/// Why a peer could not be started.
#[derive(Debug)]
pub enum PeerError {
    /// The server's program is not installed.
    NotInstalled(PeerKind),
    /// A file or process operation failed.
    Io(io::Error),
    /// The server did not start listening in time; carries the tail of its log.
    StartTimeout(String),
    /// Registering an account failed; carries the tool's output.
    Register(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled(kind) => write!(f, "{kind} is not installed"),
            Self::Io(e) => write!(f, "i/o: {e}"),
            Self::StartTimeout(log) => write!(f, "server did not start in time; log:\n{log}"),
            Self::Register(out) => write!(f, "account registration failed: {out}"),
        }
    }
}

impl std::error::Error for PeerError {}

impl From<io::Error> for PeerError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// One [`Read::read`](io::Read::read), retried while a signal interrupts it.
///
/// `read` reports an interrupted system call (`EINTR`) as an error of kind
/// [`Interrupted`](io::ErrorKind::Interrupted), which says nothing about the stream. Linux
/// returns it from a read on a socket with a timeout whenever the process is stopped and
/// continued, even with no signal handler installed; a test treating it as the end of the
/// stream fails at random (seen: an ejabberd component handshake read as empty).
pub fn read_some(reader: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Whether interop tests must run (set `XMPP_INTEROP=require`, as `.ci/run` does) or may be
/// skipped on a machine without the peers.
#[must_use]
pub fn interop_required() -> bool {
    std::env::var("XMPP_INTEROP").is_ok_and(|v| v == "require")
}

/// Says that a test is skipped because `what` is missing from this machine, or fails it when
/// interop is required ([`interop_required`]), so CI cannot skip silently.
///
/// The message goes straight to the process's standard error, past the test harness's output
/// capture (which swallows `eprintln!` of a passing test), so a plain `cargo test` shows every
/// skip and its reason.
pub fn skip_or_fail(what: &str) {
    assert!(!interop_required(), "XMPP_INTEROP=require but {what}");
    let message = format!("SKIPPED: {what} (set XMPP_INTEROP=require to make this an error)\n");
    let _ = io::Write::write_all(&mut io::stderr().lock(), message.as_bytes());
}

/// The WebAssembly target the wasm tests build for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Whether the active toolchain can build for [`WASM_TARGET`]: rustup lists it as installed
/// (asked with `RUSTUP_AUTO_INSTALL=0`, so asking never installs it) and its standard library
/// is really there (`rustc --print target-libdir` names the directory whether or not it
/// exists, and `.ci/fresh-machine` hides its contents: look for `libcore` in it). `rustc`
/// is rustup's proxy, which picks the toolchain of the `cargo` running the test.
#[must_use]
pub fn wasm_target_installed() -> bool {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET)
        });
    let Ok(out) = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
    else {
        return false;
    };
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    listed
        && out.status.success()
        && fs::read_dir(libdir).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                let path = entry.path();
                path.extension().is_some_and(|ext| ext == "rlib")
                    && path
                        .file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with("libcore-"))
            })
        })
}

/// Where Debian's `prosody-modules` puts the module [`PeerOptions::with_privacy_lists`] loads.
const PROSODY_PRIVACY_LISTS: &str =
    "/usr/lib/prosody/modules/mod_privacy_lists/mod_privacy_lists.lua";

/// Starts `kind` for a test, or returns `None` (after saying so on stderr) when the server is
/// not installed and interop is not required. Panics when interop is required and the server
/// cannot be started, so CI cannot silently skip.
#[must_use]
pub fn start_for_test(kind: PeerKind, accounts: &[(&str, &str)]) -> Option<PeerServer> {
    start_for_test_with(kind, accounts, &PeerOptions::new())
}

/// [`start_for_test`] with [`PeerOptions`] (e.g. a component listener).
#[must_use]
#[allow(clippy::panic)] // test support: failing loudly is the point
pub fn start_for_test_with(
    kind: PeerKind,
    accounts: &[(&str, &str)],
    options: &PeerOptions,
) -> Option<PeerServer> {
    if options.privacy_lists
        && kind == PeerKind::Prosody
        && !Path::new(PROSODY_PRIVACY_LISTS).exists()
    {
        skip_or_fail("prosody-modules (mod_privacy_lists) is not installed");
        return None;
    }
    match PeerServer::start_with(kind, accounts, options) {
        Ok(server) => Some(server),
        Err(PeerError::NotInstalled(_)) if !interop_required() => {
            skip_or_fail(&format!("{kind} is not installed"));
            None
        }
        Err(e) => panic!("could not start {kind}: {e}"),
    }
}

/// A running server on loopback. Dropping it stops the server by pid and removes its files.
#[derive(Debug)]
pub struct PeerServer {
    /// Which server this is.
    pub kind: PeerKind,
    /// The XMPP domain it serves.
    pub domain: String,
    /// Loopback port for client connections that negotiate STARTTLS.
    pub starttls_port: u16,
    /// Loopback port for direct-TLS client connections (XEP-0368).
    pub direct_tls_port: u16,
    /// The server's self-signed certificate (PEM), for the client's trust store.
    pub certificate_pem: String,
    /// The XEP-0114 component listener, when [`PeerOptions::with_component`] asked for one.
    pub component: Option<ComponentListener>,
    /// The loopback port of its s2s listener, when [`PeerOptions::with_s2s`] asked for one.
    pub s2s_port: Option<u16>,
    /// The loopback port of its plain-HTTP XMPP-over-WebSocket endpoint (RFC 7395), when
    /// [`PeerOptions::with_websocket`] asked for one; the URL is
    /// [`websocket_url`](Self::websocket_url).
    pub websocket_port: Option<u16>,
    /// The loopback port of its HTTPS XMPP-over-WebSocket endpoint (`wss:`), when
    /// [`PeerOptions::with_secure_websocket`] asked for one; the URL is
    /// [`secure_websocket_url`](Self::secure_websocket_url).
    pub secure_websocket_port: Option<u16>,
    websocket_origin: Option<String>,
    s2s: Option<S2sOptions>,
    dir: PathBuf,
    child: Option<Child>,
    node_name: String,
    log_level: LogLevel,
    stream_management: bool,
    blocking: bool,
    privacy_lists: bool,
    registration: bool,
}

/// How to start a peer, beyond its kind and accounts (the defaults are what
/// [`PeerServer::start`] does).
#[derive(Debug, Clone)]
pub struct PeerOptions {
    component: Option<(String, String)>,
    s2s: Option<S2sOptions>,
    s2s_port: Option<u16>,
    log_level: LogLevel,
    stream_management: bool,
    blocking: bool,
    privacy_lists: bool,
    registration: bool,
    websocket: bool,
    secure_websocket: bool,
    websocket_origin: Option<String>,
    certificate: Option<ServerCert>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerOptions {
    /// No component, full logging (for interop tests' failure messages).
    #[must_use]
    pub fn new() -> Self {
        Self {
            component: None,
            s2s: None,
            s2s_port: None,
            log_level: LogLevel::Debug,
            stream_management: false,
            blocking: false,
            privacy_lists: false,
            registration: false,
            websocket: false,
            secure_websocket: false,
            websocket_origin: None,
            certificate: None,
        }
    }

    /// Federate: the server serves `s2s.domain` (instead of [`DOMAIN`]) with `s2s.cert` on
    /// c2s and s2s, listens for servers on a free loopback port
    /// ([`PeerServer::s2s_port`]), finds other domains through the SRV records of `s2s.dns`
    /// (Prosody's libunbound forwards there, with the `test.` zone made transparent, or it
    /// would answer NXDOMAIN itself; ejabberd's `inetrc` names it alone), requires TLS, and
    /// authenticates links as `s2s.auth` says.
    #[must_use]
    pub fn with_s2s(mut self, s2s: S2sOptions) -> Self {
        self.s2s = Some(s2s);
        self
    }

    /// With [`with_s2s`](Self::with_s2s): listen for servers on this loopback port instead of
    /// a free one picked at start, so that two peers can find each other through SRV records
    /// written before either starts (e.g. a Prosody⇄Prosody pair).
    #[must_use]
    pub fn with_s2s_port(mut self, port: u16) -> Self {
        self.s2s_port = Some(port);
        self
    }

    /// Log warnings and errors only, as [`PeerServer::start_for_load`] does: for load runs.
    #[must_use]
    pub fn warnings_only(mut self) -> Self {
        self.log_level = LogLevel::Warn;
        self
    }

    /// Also serve XMPP over WebSocket (RFC 7395) on `ws://127.0.0.1:PORT/xmpp-websocket`, a
    /// free loopback port ([`PeerServer::websocket_port`]): Prosody's `mod_websocket` over its
    /// `http` module (with `consider_websocket_secure`, since a loopback test has no TLS
    /// proxy in front), ejabberd's `ejabberd_http` listener with the `ejabberd_http_ws`
    /// request handler. Both require clients to offer `Sec-WebSocket-Protocol: xmpp`.
    ///
    /// The `Origin` of a browser page: Prosody 0.12 checks none on the upgrade (its
    /// `cross_domain_websocket` is deprecated and ignored, it logs so; its CORS options only
    /// shape HTTP answers), so a page from any origin may connect. ejabberd checks it against
    /// `websocket_origin`, `ignore` by default: see
    /// [`with_websocket_origin`](Self::with_websocket_origin).
    #[must_use]
    pub fn with_websocket(mut self) -> Self {
        self.websocket = true;
        self
    }

    /// Also serve XMPP over WebSocket with TLS (`wss:`) on a free loopback port
    /// ([`PeerServer::secure_websocket_url`]), with the server's certificate (see
    /// [`with_certificate`](Self::with_certificate)): Prosody's `https` service, an
    /// `ejabberd_http` listener with `tls: true`.
    #[must_use]
    pub fn with_secure_websocket(mut self) -> Self {
        self.secure_websocket = true;
        self
    }

    /// ejabberd accepts WebSocket upgrades only from pages of `origin` (e.g.
    /// `http://127.0.0.1:8080`): its `websocket_origin` option, which rejects any other
    /// `Origin` header. Prosody 0.12 has no such check (see
    /// [`with_websocket`](Self::with_websocket)) and ignores this.
    #[must_use]
    pub fn with_websocket_origin(mut self, origin: &str) -> Self {
        self.websocket_origin = Some(origin.to_owned());
        self
    }

    /// Serve clients with `cert` (e.g. issued for [`DOMAIN`] by a [`TestCa`]) instead of a
    /// self-signed certificate made at start. [`with_s2s`](Self::with_s2s) brings its own
    /// certificate and overrides this.
    #[must_use]
    pub fn with_certificate(mut self, cert: ServerCert) -> Self {
        self.certificate = Some(cert);
        self
    }

    /// Also accept the XEP-0114 component `domain` (a `jabber:component:accept` stream whose
    /// handshake proves `secret`) on a free loopback port: Prosody's `Component` with
    /// `component_secret` and `component_ports`, ejabberd's `ejabberd_service` listener. The
    /// port is in [`PeerServer::component`]. `domain` should be a subdomain of [`DOMAIN`]
    /// (e.g. `comp.localhost`) so that the server's users can address it.
    #[must_use]
    pub fn with_component(mut self, domain: &str, secret: &str) -> Self {
        self.component = Some((domain.to_owned(), secret.to_owned()));
        self
    }

    /// Also offer XEP-0198 stream management with resumption: Prosody's `mod_smacks`,
    /// ejabberd's `mod_stream_mgmt` (a 300 s resumption window on both).
    #[must_use]
    pub fn with_stream_management(mut self) -> Self {
        self.stream_management = true;
        self
    }

    /// Also offer XEP-0191 blocking command: Prosody's `mod_blocklist`, ejabberd's
    /// `mod_blocking` (with the `mod_privacy` it is built on).
    #[must_use]
    pub fn with_blocking(mut self) -> Self {
        self.blocking = true;
        self
    }

    /// Also offer XEP-0016 privacy lists (RFC 3921 §10): Prosody's `mod_privacy_lists`
    /// (Debian `prosody-modules`), ejabberd's `mod_privacy`.
    #[must_use]
    pub fn with_privacy_lists(mut self) -> Self {
        self.privacy_lists = true;
        self
    }

    /// Also allow XEP-0077 in-band registration (anyone may create an account, with no
    /// per-address throttle): Prosody's `mod_register` with `allow_registration = true`,
    /// ejabberd's `mod_register` with an `access` rule allowing all and
    /// `registration_timeout: infinity`.
    #[must_use]
    pub fn with_registration(mut self) -> Self {
        self.registration = true;
        self
    }
}

/// A running server's XEP-0114 component listener (see [`PeerOptions::with_component`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentListener {
    /// The component's domain: the `to` of its stream header.
    pub domain: String,
    /// The shared secret of its handshake.
    pub secret: String,
    /// The loopback port (`127.0.0.1`) accepting the component's plain TCP connection.
    pub port: u16,
}

/// How much the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogLevel {
    /// Everything (Prosody `debug`, ejabberd `info`): for interop tests' failure messages.
    Debug,
    /// Warnings and errors only: for load tests.
    Warn,
}

/// A `sh -c` script that raises the soft open-file limit to the hard one, then runs its
/// arguments (`$0` is the program).
const RAISE_FD_LIMIT_AND_EXEC: &str = r#"ulimit -S -n "$(ulimit -H -n)" && exec "$0" "$@""#;

/// The account domain every peer serves.
pub const DOMAIN: &str = "localhost";

impl PeerServer {
    /// Starts `kind` in a fresh temp dir with the given `(username, password)` accounts and
    /// waits until it accepts connections.
    pub fn start(kind: PeerKind, accounts: &[(&str, &str)]) -> Result<Self, PeerError> {
        Self::start_with(kind, accounts, &PeerOptions::new())
    }

    /// [`start`](Self::start) for load tests: the server logs warnings only, so that writing
    /// a debug line per stanza does not become the cost being measured.
    pub fn start_for_load(kind: PeerKind, accounts: &[(&str, &str)]) -> Result<Self, PeerError> {
        Self::start_with(kind, accounts, &PeerOptions::new().warnings_only())
    }

    /// [`start`](Self::start) with [`PeerOptions`] (e.g. a component listener).
    pub fn start_with(
        kind: PeerKind,
        accounts: &[(&str, &str)],
        options: &PeerOptions,
    ) -> Result<Self, PeerError> {
        if !kind.is_installed() {
            return Err(PeerError::NotInstalled(kind));
        }
        let dir = fresh_dir(kind)?;
        let (certificate_pem, key_pem) = match (&options.s2s, &options.certificate) {
            (Some(S2sOptions { cert, .. }), _) | (None, Some(cert)) => {
                (cert.cert_pem.clone(), cert.key_pem.clone())
            }
            (None, None) => short_lived_certificate(DOMAIN)
                .map_err(|e| PeerError::Io(io::Error::other(e.to_string())))?,
        };
        // Every port held until all are picked: one picked and released at once can be
        // handed out again by the next pick, and two listeners of one server on the same
        // port make clients reach the wrong one.
        let mut ports = HeldPorts::default();
        let s2s_port = match (&options.s2s, options.s2s_port) {
            (Some(_), Some(port)) => Some(port),
            (Some(_), None) => Some(ports.pick()?),
            (None, _) => None,
        };
        let websocket_port = options.websocket.then(|| ports.pick()).transpose()?;
        let secure_websocket_port = options.secure_websocket.then(|| ports.pick()).transpose()?;
        let starttls_port = ports.pick()?;
        let direct_tls_port = ports.pick()?;
        let component = match &options.component {
            Some((domain, secret)) => Some(ComponentListener {
                domain: domain.clone(),
                secret: secret.clone(),
                port: ports.pick()?,
            }),
            None => None,
        };
        // Released for the server to bind.
        drop(ports);
        let node_name = format!("xmppinterop{starttls_port}");
        let mut server = Self {
            kind,
            domain: options
                .s2s
                .as_ref()
                .map_or_else(|| DOMAIN.to_owned(), |s2s| s2s.domain.clone()),
            starttls_port,
            direct_tls_port,
            certificate_pem,
            component,
            s2s_port,
            websocket_port,
            secure_websocket_port,
            websocket_origin: options.websocket_origin.clone(),
            s2s: options.s2s.clone(),
            dir,
            child: None,
            node_name,
            log_level: options.log_level,
            stream_management: options.stream_management,
            blocking: options.blocking,
            privacy_lists: options.privacy_lists,
            registration: options.registration,
        };
        match kind {
            PeerKind::Prosody => server.start_prosody(&key_pem, accounts)?,
            PeerKind::Ejabberd => server.start_ejabberd(&key_pem, accounts)?,
        }
        Ok(server)
    }

    /// Writes the CA of [`S2sAuth::External`] to `s2s-ca.pem` in the server's directory.
    fn write_s2s_ca(&self) -> io::Result<()> {
        if let Some(S2sOptions {
            auth: S2sAuth::External { ca_pem },
            ..
        }) = &self.s2s
        {
            fs::write(self.dir.join("s2s-ca.pem"), ca_pem)?;
        }
        Ok(())
    }

    /// `ws://127.0.0.1:PORT/xmpp-websocket`, when [`PeerOptions::with_websocket`] asked for
    /// the endpoint.
    #[must_use]
    pub fn websocket_url(&self) -> Option<String> {
        self.websocket_port
            .map(|port| format!("ws://127.0.0.1:{port}/xmpp-websocket"))
    }

    /// `wss://localhost:PORT/xmpp-websocket` (the certificate's name; connect to
    /// `127.0.0.1:PORT`), when [`PeerOptions::with_secure_websocket`] asked for the endpoint.
    #[must_use]
    pub fn secure_websocket_url(&self) -> Option<String> {
        self.secure_websocket_port
            .map(|port| format!("wss://{DOMAIN}:{port}/xmpp-websocket"))
    }

    /// The directory holding the server's configuration, data and logs.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far (for test failure messages).
    #[must_use]
    pub fn log(&self) -> String {
        let name = match self.kind {
            PeerKind::Prosody => "prosody.log",
            PeerKind::Ejabberd => "logs/ejabberd.log",
        };
        fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// The last `lines` lines of the server's [`log`](Self::log).
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// The failure message of a scenario run against this server: the server's kind, what
    /// went wrong, then the last 80 lines of its log.
    #[must_use]
    pub fn failure(&self, what: &str) -> String {
        format!(
            "{}: {what}\n--- server log tail ---\n{}",
            self.kind,
            self.log_tail(80)
        )
    }

    fn start_prosody(&mut self, key_pem: &str, accounts: &[(&str, &str)]) -> Result<(), PeerError> {
        let dir = &self.dir;
        fs::create_dir_all(dir.join("data"))?;
        fs::create_dir_all(dir.join("certs"))?;
        fs::write(dir.join("cert.pem"), &self.certificate_pem)?;
        fs::write(dir.join("key.pem"), key_pem)?;
        self.write_s2s_ca()?;
        let d = dir.display();
        let (s2s_config, s2s_ports, dialback, s2s_module) = match (&self.s2s, self.s2s_port) {
            (Some(s2s), Some(port)) => (
                s2s::prosody_config(s2s, port, &d.to_string()),
                String::new(),
                if s2s.auth == S2sAuth::Dialback {
                    " \"dialback\";"
                } else {
                    ""
                },
                "",
            ),
            _ => (
                String::new(),
                "s2s_ports = { }\n".to_owned(),
                "",
                " \"s2s\";",
            ),
        };
        let config = format!(
            r#"-- Written by xmpp-testpeers for one test run.
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
daemonize = false
log = {{ {level} = "{d}/prosody.log"; }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {starttls} }}
c2s_direct_tls_ports = {{ {direct} }}
{s2s_ports}{http}{https}modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "message"; "iq";{dialback}{smacks}{blocklist}{websocket}{register} }}
modules_disabled = {{{s2s_module} "offline"; "c2s_bosh";{no_http} "posix";{no_dialback} }}
{smacks_time}-- Plain storage so the server can offer every SCRAM variant it implements (SCRAM-SHA-1 and
-- SCRAM-SHA-256), as the deployments in shared/peers do; internal_hashed offers SHA-1 only.
authentication = "internal_plain"
c2s_require_encryption = true
allow_registration = {allow_registration}
{ssl}{component_ports}VirtualHost "{domain}"
{component}"#,
            starttls = self.starttls_port,
            direct = self.direct_tls_port,
            domain = self.domain,
            register = if self.registration {
                " \"register\";"
            } else {
                ""
            },
            allow_registration = self.registration,
            blocklist = match (self.blocking, self.privacy_lists) {
                (true, true) => " \"blocklist\"; \"privacy_lists\";",
                (true, false) => " \"blocklist\";",
                (false, true) => " \"privacy_lists\";",
                (false, false) => "",
            },
            smacks = if self.stream_management {
                " \"smacks\";"
            } else {
                ""
            },
            smacks_time = if self.stream_management {
                "smacks_hibernation_time = 300\n"
            } else {
                ""
            },
            http = self.websocket_port.map_or_else(
                || "http_ports = { }\n".to_owned(),
                |port| format!(
                    "http_ports = {{ {port} }}\nhttp_interfaces = {{ \"127.0.0.1\" }}\n\
                     consider_websocket_secure = true\n"
                )
            ),
            https = self.secure_websocket_port.map_or_else(
                || "https_ports = { }\n".to_owned(),
                |port| format!(
                    "https_ports = {{ {port} }}\nhttps_interfaces = {{ \"127.0.0.1\" }}\n\
                     https_ssl = {{ certificate = \"{d}/cert.pem\"; key = \"{d}/key.pem\"; }}\n"
                )
            ),
            websocket = if self.websocket_port.is_some() || self.secure_websocket_port.is_some() {
                " \"websocket\";"
            } else {
                ""
            },
            no_http = if self.websocket_port.is_some() || self.secure_websocket_port.is_some() {
                ""
            } else {
                " \"http\";"
            },
            no_dialback = if dialback.is_empty() && self.s2s.is_some() {
                " \"dialback\";"
            } else {
                ""
            },
            ssl = if s2s_config.is_empty() {
                format!("ssl = {{ certificate = \"{d}/cert.pem\"; key = \"{d}/key.pem\"; }}\n")
            } else {
                s2s_config
            },
            level = match self.log_level {
                LogLevel::Debug => "debug",
                LogLevel::Warn => "warn",
            },
            component_ports = self.component.as_ref().map_or(String::new(), |c| format!(
                "component_ports = {{ {} }}\ncomponent_interfaces = {{ \"127.0.0.1\" }}\n",
                c.port
            )),
            component = self.component.as_ref().map_or(String::new(), |c| format!(
                "Component {}\n  component_secret = {}\n",
                lua_string(&c.domain),
                lua_string(&c.secret)
            )),
        );
        let config_path = dir.join("prosody.cfg.lua");
        fs::write(&config_path, config)?;
        let as_user = service_user("prosody");
        chown_to(dir, as_user)?;
        for (user, password) in accounts {
            let out = run_as(as_user, "prosodyctl")
                .arg("--config")
                .arg(&config_path)
                .args(["register", user, &self.domain, password])
                .output()?;
            if !out.status.success() {
                return Err(PeerError::Register(output_text(&out)));
            }
        }
        // `runuser` applies PAM limits, which put the soft descriptor limit back at 1024:
        // raise it to the hard limit again, or Prosody stops accepting near 1 000 clients.
        let child = run_as(as_user, "sh")
            .arg("-c")
            .arg(RAISE_FD_LIMIT_AND_EXEC)
            .arg("prosody")
            .arg("--config")
            .arg(&config_path)
            .arg("-F")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        self.child = Some(child);
        self.wait_listening(Duration::from_secs(20))
    }

    fn start_ejabberd(
        &mut self,
        key_pem: &str,
        accounts: &[(&str, &str)],
    ) -> Result<(), PeerError> {
        let dir = &self.dir;
        fs::create_dir_all(dir.join("spool"))?;
        fs::create_dir_all(dir.join("logs"))?;
        fs::write(
            dir.join("server.pem"),
            format!("{key_pem}{}", self.certificate_pem),
        )?;
        fs::write(
            dir.join("inetrc"),
            self.s2s
                .as_ref()
                .map_or_else(String::new, |s2s| s2s::ejabberd_inetrc(s2s.dns)),
        )?;
        self.write_s2s_ca()?;
        let d = dir.display();
        let (s2s_top, s2s_listener, s2s_dialback) = match (&self.s2s, self.s2s_port) {
            (Some(s2s), Some(port)) => {
                let (top, listener) = s2s::ejabberd_config(s2s, port, &d.to_string());
                let dialback = if s2s.auth == S2sAuth::Dialback {
                    "  mod_s2s_dialback: {}\n"
                } else {
                    ""
                };
                (top, listener, dialback)
            }
            _ => (String::new(), String::new(), ""),
        };
        fs::write(
            dir.join("ejabberdctl.cfg"),
            format!(
                "ERLANG_NODE={node}@localhost\nINET_DIST_INTERFACE=127.0.0.1\n\
                 ERL_EPMD_ADDRESS=127.0.0.1\nEJABBERD_PID_PATH={d}/ejabberd.pid\n\
                 EJABBERD_CONFIG_PATH={d}/ejabberd.yml\n",
                node = self.node_name
            ),
        )?;
        // Passwords stored in plain form so the server can offer every SCRAM variant.
        let config = format!(
            r#"# Written by xmpp-testpeers for one test run.
hosts: [{domain}]
loglevel: {level}
certfiles: [{d}/server.pem]
{s2s_top}auth_method: internal
auth_password_format: plain
listen:
  - port: {starttls}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
  - port: {direct}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    tls: true
{s2s_listener}{component}{websocket}{secure_websocket}{origin}acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
{register_rule}modules:
  mod_roster: {{versioning: true}}
  mod_disco: {{}}
  mod_ping: {{}}
{s2s_dialback}{stream_mgmt}{blocking}{register}"#,
            domain = self.domain,
            starttls = self.starttls_port,
            direct = self.direct_tls_port,
            register_rule = if self.registration {
                "  register:\n    allow: all\nregistration_timeout: infinity\n"
            } else {
                ""
            },
            register = if self.registration {
                "  mod_register:\n    access: register\n    ip_access: all\n"
            } else {
                ""
            },
            blocking = match (self.blocking, self.privacy_lists) {
                (true, _) => "  mod_privacy: {}\n  mod_blocking: {}\n",
                (false, true) => "  mod_privacy: {}\n",
                (false, false) => "",
            },
            stream_mgmt = if self.stream_management {
                "  mod_stream_mgmt: {resume_timeout: 300}\n"
            } else {
                ""
            },
            level = match self.log_level {
                LogLevel::Debug => "info",
                LogLevel::Warn => "warning",
            },
            websocket = self.websocket_port.map_or(String::new(), |port| format!(
                "  - port: {port}\n    ip: \"127.0.0.1\"\n    module: ejabberd_http\n    \
                 request_handlers:\n      /xmpp-websocket: ejabberd_http_ws\n"
            )),
            secure_websocket = self.secure_websocket_port.map_or(String::new(), |port| format!(
                "  - port: {port}\n    ip: \"127.0.0.1\"\n    module: ejabberd_http\n    tls: true\n    \
                 request_handlers:\n      /xmpp-websocket: ejabberd_http_ws\n"
            )),
            origin = self.websocket_origin.as_ref().map_or(String::new(), |origin| format!(
                "websocket_origin: [{}]\n",
                yaml_string(origin)
            )),
            component = self.component.as_ref().map_or(String::new(), |c| format!(
                "  - port: {}\n    ip: \"127.0.0.1\"\n    module: ejabberd_service\n    \
                 hosts:\n      {}:\n        password: {}\n",
                c.port,
                yaml_string(&c.domain),
                yaml_string(&c.secret)
            )),
        );
        fs::write(dir.join("ejabberd.yml"), config)?;
        chown_to(dir, service_user("ejabberd"))?;
        let launcher_log = dir.join("launcher.log");
        // The Erlang port mapper is shared by every ejabberd on the machine, and each one's
        // drop runs `epmd -kill` (which succeeds whenever no node is registered yet): a node
        // starting at that moment exits with `econnrefused`. Start it again then.
        for attempt in 1.. {
            let child = self
                .ejabberdctl()
                .arg("foreground")
                // What the launcher says before ejabberd has a log of its own (why it exited).
                .stdout(fs::File::create(&launcher_log)?)
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()?;
            self.child = Some(child);
            match self.wait_listening(Duration::from_secs(60)) {
                Err(PeerError::StartTimeout(why))
                    if attempt < 3 && why.contains("econnrefused") =>
                {
                    std::thread::sleep(Duration::from_millis(300));
                }
                result => {
                    result?;
                    break;
                }
            }
        }
        for (user, password) in accounts {
            self.ctl_until_tables_ready(&["register", user, &self.domain, password])?;
        }
        Ok(())
    }

    /// Runs one registering `ejabberdctl` command. ejabberd opens its listeners before
    /// Mnesia has created every table, so a command right after start can abort with
    /// `no_exists` (nothing is written then): that case is retried for up to 30 s.
    fn ctl_until_tables_ready(&self, args: &[&str]) -> Result<(), PeerError> {
        let start = Instant::now();
        loop {
            let out = self.ejabberdctl().args(args).output()?;
            if out.status.success() {
                return Ok(());
            }
            let text = output_text(&out);
            if !text.contains("no_exists") || start.elapsed() > Duration::from_secs(30) {
                return Err(PeerError::Register(text));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Registers many accounts at once, with one `ejabberdctl import_piefxis` call: the
    /// accounts go into an XEP-0227 (PIEFXIS) file that ejabberd imports through its own
    /// registration path, so they are stored exactly as `ejabberdctl register` would store
    /// them (here: plain, per `auth_password_format`). One Erlang VM for all of them instead
    /// of one per account: 10 000 accounts take seconds, not hours. ejabberd only.
    pub fn register_many(&self, accounts: &[(String, String)]) -> Result<(), PeerError> {
        if self.kind != PeerKind::Ejabberd {
            return Err(PeerError::Register(
                "register_many is for ejabberd (Prosody: prosodyctl register)".to_owned(),
            ));
        }
        let mut xml = format!(
            "<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='{}'>\n",
            xml_escape(&self.domain)
        );
        for (user, password) in accounts {
            let _ = writeln!(
                xml,
                "<user name='{}' password='{}'/>",
                xml_escape(user),
                xml_escape(password)
            );
        }
        xml.push_str("</host>\n</server-data>\n");
        let file = self.dir.join("accounts.xml");
        fs::write(&file, xml)?;
        chown_to(&file, service_user("ejabberd"))?;
        let file = file.to_string_lossy();
        self.ctl_until_tables_ready(&["import_piefxis", &file])
    }

    /// An `ejabberdctl` command aimed at this ejabberd node (e.g. to register many accounts
    /// in parallel). Meaningless for Prosody.
    #[must_use]
    pub fn ejabberdctl(&self) -> Command {
        // As root, ejabberdctl switches to its user with `su`, whose PAM limits put the soft
        // descriptor limit back at 1024 (ejabberd then fails near 1 000 clients). Switch
        // first, raise the limit to the hard one, and let ejabberdctl run as its own user.
        let mut command = run_as(service_user("ejabberd"), "sh");
        command
            .arg("-c")
            .arg(RAISE_FD_LIMIT_AND_EXEC)
            .arg("ejabberdctl")
            .arg("--config-dir")
            .arg(&self.dir)
            .arg("--ctl-config")
            .arg(self.dir.join("ejabberdctl.cfg"))
            .arg("--spool")
            .arg(self.dir.join("spool"))
            .arg("--logs")
            .arg(self.dir.join("logs"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        command
    }

    fn wait_listening(&mut self, limit: Duration) -> Result<(), PeerError> {
        let start = Instant::now();
        let mut ports = vec![self.starttls_port, self.direct_tls_port];
        ports.extend(self.component.as_ref().map(|c| c.port));
        ports.extend(self.s2s_port);
        ports.extend(self.websocket_port);
        ports.extend(self.secure_websocket_port);
        while start.elapsed() < limit {
            if ports
                .iter()
                .all(|p| TcpStream::connect((Ipv4Addr::LOCALHOST, *p)).is_ok())
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let launcher =
                    fs::read_to_string(self.dir.join("launcher.log")).unwrap_or_default();
                return Err(PeerError::StartTimeout(format!(
                    "exited early with {status}\n{}\n{}",
                    tail(&launcher, 20),
                    tail(&self.log(), 40)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(PeerError::StartTimeout(tail(&self.log(), 40)))
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        // ejabberd's launcher switches user through `su`, which leaves the Erlang VM outside our
        // process group: stop it by the pid it writes to its pidfile first.
        if self.kind == PeerKind::Ejabberd
            && let Ok(text) = fs::read_to_string(self.dir.join("ejabberd.pid"))
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            stop_pid(&pid.to_string(), || {
                Path::new(&format!("/proc/{pid}")).exists()
            });
        }
        if let Some(mut child) = self.child.take() {
            // The launcher runs in its own process group: stop the whole group by its pid.
            let group = format!("-{}", child.id());
            stop_pid(&group, || matches!(child.try_wait(), Ok(None)));
            let _ = child.wait();
        }
        if self.kind == PeerKind::Ejabberd {
            // epmd detaches from the group; it refuses to exit while other nodes still use it.
            let _ = Command::new("epmd")
                .arg("-kill")
                .env("ERL_EPMD_ADDRESS", "127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Sends TERM to `target` (a pid, or `-pgid`), waits up to 10 s while `alive()`, then KILL.
fn stop_pid(target: &str, mut alive: impl FnMut() -> bool) {
    let _ = Command::new("kill").args(["-TERM", "--", target]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && alive() {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive() {
        let _ = Command::new("kill").args(["-KILL", "--", target]).status();
    }
}

/// A self-signed certificate for `domain`, valid from yesterday for 30 days: (cert, key) PEM.
///
/// Not rcgen's default (valid until 4096): ejabberd 23.01 arms an Erlang timer for the expiry,
/// and a timer further than 2^32 ms (about 49 days) away crashes its certificate manager, which
/// then serves no certificate and answers `<starttls/>` with `<failure/>`.
fn short_lived_certificate(domain: &str) -> Result<(String, String), rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
    s2s::short_validity(&mut params);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Seconds since the Unix epoch to the UTC (year, month, day) (days-to-civil conversion).
fn civil_date(unix_seconds: u64) -> (i32, u8, u8) {
    let days = i64::try_from(unix_seconds / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(2000),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

fn fresh_dir(kind: PeerKind) -> io::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "xmpp-testpeers-{}-{}-{n}",
        kind.program(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Free loopback ports for one server, distinct from each other: each stays bound until the
/// set is dropped.
#[derive(Default)]
struct HeldPorts(Vec<TcpListener>);

impl HeldPorts {
    fn pick(&mut self) -> io::Result<u16> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        self.0.push(listener);
        Ok(port)
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Servers refuse to run as root: when we are root, run them as their Debian service user.
fn service_user(name: &'static str) -> Option<&'static str> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    root.then_some(name)
}

fn run_as(user: Option<&str>, program: &str) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--", program]);
            command
        }
        None => Command::new(program),
    }
}

fn chown_to(dir: &Path, user: Option<&str>) -> io::Result<()> {
    if let Some(user) = user {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:{user}"))
            .arg(dir)
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!("chown to {user} failed")));
        }
    }
    Ok(())
}

/// Escapes text for an XML attribute in single quotes.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A Lua string literal (double quotes) holding `text`.
fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A YAML single-quoted scalar holding `text` (one line).
fn yaml_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Opens a stream to the peer and checks it answers with a stream header and features that
    /// require STARTTLS: proves the harness starts a real, reachable server.
    fn assert_speaks_xmpp(server: &PeerServer) {
        let mut socket = TcpStream::connect((Ipv4Addr::LOCALHOST, server.starttls_port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            socket,
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams'>",
            server.domain
        )
        .unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.contains("</stream:features>") && Instant::now() < deadline {
            let n = read_some(&mut socket, &mut buf).unwrap();
            assert!(n > 0, "server closed early; got {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(seen.contains("<stream:stream"), "{seen}");
        assert!(seen.contains("urn:ietf:params:xml:ns:xmpp-tls"), "{seen}");
        // A server without a usable certificate still advertises STARTTLS but answers
        // <failure/>: only <proceed/> proves TLS would work.
        socket
            .write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .unwrap();
        let mut reply = String::new();
        while !reply.contains("/>") && Instant::now() < deadline + Duration::from_secs(10) {
            let n = read_some(&mut socket, &mut buf).unwrap();
            assert!(n > 0, "server closed after <starttls/>; got {reply:?}");
            reply.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(
            reply.contains("<proceed"),
            "{reply}\n{}",
            tail(&server.log(), 20)
        );
    }

    /// The server process (Prosody's Lua interpreter, ejabberd's Erlang VM: found by its
    /// command line naming the server's directory) may open as many descriptors as its hard
    /// limit allows: the soft limit was raised after the PAM reset to 1024.
    fn assert_fd_limit_raised(server: &PeerServer) {
        let dir = server.dir().display().to_string();
        let mut checked = 0;
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let path = entry.path();
            let Ok(comm) = fs::read_to_string(path.join("comm")) else {
                continue;
            };
            let Ok(cmdline) = fs::read(path.join("cmdline")) else {
                continue;
            };
            let is_server = comm.starts_with("lua") || comm.starts_with("beam");
            if !is_server || !String::from_utf8_lossy(&cmdline).contains(&dir) {
                continue;
            }
            let limits = fs::read_to_string(path.join("limits")).unwrap();
            let line = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .unwrap();
            let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
            assert_eq!(numbers[0], numbers[1], "soft != hard: {line}");
            checked += 1;
        }
        assert!(checked > 0, "no {} process found for {dir}", server.kind);
    }

    /// Reads from `socket` until `done` holds for what arrived (or 10 s pass, or it closes).
    fn read_until(socket: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&seen) && Instant::now() < deadline {
            match read_some(socket, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        seen
    }

    /// Runs a XEP-0114 handshake by hand on the server's component port, proving `secret`
    /// (right or wrong); returns everything the server sent after the handshake.
    fn component_handshake(server: &PeerServer, secret: &str) -> String {
        use sha1::Digest as _;
        let component = server.component.as_ref().expect("started with a component");
        let mut socket = TcpStream::connect((Ipv4Addr::LOCALHOST, component.port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            socket,
            "<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams'>",
            component.domain
        )
        .unwrap();
        let header = read_until(&mut socket, |s| {
            s.contains("<stream:stream") && s[s.find("<stream:stream").unwrap()..].contains('>')
        });
        let id = header
            .split(" id='")
            .nth(1)
            .or_else(|| header.split(" id=\"").nth(1))
            .and_then(|rest| rest.split(['\'', '"']).next())
            .unwrap_or_else(|| panic!("no stream id in {header:?}\n{}", server.log()));
        let digest = sha1::Sha1::digest(format!("{id}{secret}").as_bytes());
        let hex = digest.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        });
        write!(socket, "<handshake>{hex}</handshake>").unwrap();
        read_until(&mut socket, |s| {
            s.contains("<handshake") || s.contains("</stream:stream>")
        })
    }

    fn assert_component_listener(kind: PeerKind) {
        let options = PeerOptions::new().with_component("comp.localhost", "s3cret'\"<&");
        let Some(server) = start_for_test_with(kind, &[], &options) else {
            return;
        };
        let component = server.component.clone().unwrap();
        assert_eq!(component.domain, "comp.localhost");
        let accepted = component_handshake(&server, &component.secret);
        assert!(
            accepted.contains("<handshake/>") || accepted.contains("<handshake></handshake>"),
            "{accepted:?}\n{}",
            tail(&server.log(), 40)
        );
        let refused = component_handshake(&server, "not-the-secret");
        assert!(
            refused.contains(
                "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            ),
            "{refused:?}"
        );
        assert!(!refused.contains("<handshake"), "{refused:?}");
        let port = component.port;
        drop(server);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }

    #[test]
    fn prosody_accepts_a_component_on_loopback() {
        assert_component_listener(PeerKind::Prosody);
    }

    #[test]
    fn ejabberd_accepts_a_component_on_loopback() {
        assert_component_listener(PeerKind::Ejabberd);
    }

    #[test]
    fn config_strings_are_quoted() {
        assert_eq!(lua_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(yaml_string("it's"), "'it''s'");
    }

    #[test]
    fn civil_dates_are_right() {
        // 2026-11-22 00:00:00 UTC and the leap day 2024-02-29.
        assert_eq!(civil_date(1_795_305_600), (2026, 11, 22));
        assert_eq!(civil_date(1_709_164_800 + 86_399), (2024, 2, 29));
        assert_eq!(civil_date(0), (1970, 1, 1));
    }

    #[test]
    fn prosody_starts_on_loopback_and_stops_by_pid() {
        let Some(server) = start_for_test(PeerKind::Prosody, &[("alice", "secret-a")]) else {
            return;
        };
        assert_speaks_xmpp(&server);
        assert_fd_limit_raised(&server);
        let port = server.starttls_port;
        let dir = server.dir().to_owned();
        drop(server);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
        assert!(!dir.exists());
    }

    #[test]
    fn ejabberd_registers_many_accounts_in_one_call() {
        let Some(server) = start_for_test(PeerKind::Ejabberd, &[]) else {
            return;
        };
        let accounts: Vec<(String, String)> = (0..50)
            .map(|i| (format!("bulk{i}"), format!("pw-{i}&'<")))
            .collect();
        server.register_many(&accounts).unwrap();
        let out = server
            .ejabberdctl()
            .args(["registered_users", DOMAIN])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        let mut names: Vec<&str> = listed.lines().collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = accounts.iter().map(|(u, _)| u.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(names, expected);
        // The stored passwords, as ejabberd exports them again (XEP-0227, one file per host).
        let export = server.dir().join("export");
        fs::create_dir_all(&export).unwrap();
        chown_to(&export, service_user("ejabberd")).unwrap();
        let out = server
            .ejabberdctl()
            .arg("export_piefxis_host")
            .arg(&export)
            .arg(DOMAIN)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        let mut exported = String::new();
        for entry in fs::read_dir(&export).unwrap() {
            exported.push_str(&fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        // ejabberd escapes attributes as `xml_escape` does (checked on 23.01).
        for (user, password) in &accounts {
            let stored = format!(
                "<user name='{}' password='{}'/>",
                xml_escape(user),
                xml_escape(password)
            );
            assert!(exported.contains(&stored), "{stored} not in the export");
        }
        assert!(!exported.contains("password='pw-7'"));
    }

    #[test]
    fn ejabberd_starts_on_loopback_and_stops_by_pid() {
        let Some(server) = start_for_test(PeerKind::Ejabberd, &[("alice", "secret-a")]) else {
            return;
        };
        assert_speaks_xmpp(&server);
        assert_fd_limit_raised(&server);
        let port = server.starttls_port;
        drop(server);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }
}
