//! What the interop tests share: temp directories, finding and building the peers, running
//! a peer process with a deadline, and reading its `RESULT` lines.
// Each test file uses its own subset.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_server::{HubConfig, RuntimeConfig, ServerHandle, TlsMaterial};
use xmpp_stream::{BareJid, ClientConfig, ClientStream};

const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

pub(crate) fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

pub(crate) fn body(stanza: &Element) -> Option<String> {
    stanza
        .children()
        .find(|c| c.name() == "body")
        .map(Element::text)
}

/// The stanza error condition of an error stanza.
pub(crate) fn error_condition(stanza: &Element) -> Option<String> {
    if stanza.attr("type") != Some("error") {
        return None;
    }
    let error = stanza.children().find(|c| c.name() == "error")?;
    error
        .children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// `user@domain/resource` (password `user-pw`) logged in on `server` over STARTTLS (our
/// `ClientStream` through xmpp-host's blocking `Connection`), available (initial presence
/// sent).
pub(crate) fn login(
    server: &ServerHandle,
    domain: &str,
    user: &str,
    resource: &str,
    wait: Duration,
) -> Connection<ClientStream> {
    login_at(server.addr, &server.cert_pem, domain, user, resource, wait)
}

/// [`login`] on any server at `addr` whose certificate chains to `trust_pem`.
pub(crate) fn login_at(
    addr: SocketAddr,
    trust_pem: &str,
    domain: &str,
    user: &str,
    resource: &str,
    wait: Duration,
) -> Connection<ClientStream> {
    let tls = client_config(&Trust::Pem(trust_pem.as_bytes().to_vec()), Versions::Any).unwrap();
    let options = ClientOptions::new(addr, domain, tls);
    let mut config = ClientConfig::new(
        BareJid::new(&format!("{user}@{domain}")).unwrap(),
        format!("{user}-pw"),
    );
    config.resource = Some(resource.to_owned());
    let mut conn = Connection::connect(&options, config, OsEntropy::new()).unwrap();
    let jid = conn.negotiate(wait).unwrap();
    assert_eq!(jid.as_str(), format!("{user}@{domain}/{resource}"));
    conn.send(&parse("<presence xmlns='jabber:client'/>"))
        .unwrap();
    conn
}

/// How long a peer process may run before it is killed.
pub(crate) const PEER_DEADLINE: Duration = Duration::from_secs(40);

/// Skip (or fail under `XMPP_INTEROP=require`) when a peer is missing.
pub(crate) fn missing(what: &str) {
    xmpp_testpeers::skip_or_fail(what);
}

/// The shell's configuration for `hub`: a fresh self-signed certificate for `domain`, the
/// server log under `XMPP_C2S_LOG`, every XML byte under `XMPP_C2S_TRACE`.
pub(crate) fn runtime_config(hub: HubConfig, domain: &str) -> RuntimeConfig {
    RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&[domain]).unwrap(),
        log: std::env::var("XMPP_C2S_LOG").is_ok(),
        trace: std::env::var("XMPP_C2S_TRACE").is_ok(),
        s2s: None,
    }
}

/// 127.0.0.1 on a free port.
pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A fresh directory under the system temp dir.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "xmpp-server-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// This crate's own peers (`tests/peers/`).
pub(crate) fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The peers shared by the workspace (`crates/tools/xmpp-testpeers/peers/`).
pub(crate) fn shared_peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/xmpp-testpeers/peers")
}

/// A Python with slixmpp: `XMPP_PYTHON`, Debian's `/usr/bin/python3`, or `python3`.
pub(crate) fn slixmpp_python() -> Option<PathBuf> {
    let candidates = std::env::var("XMPP_PYTHON")
        .ok()
        .into_iter()
        .chain(["/usr/bin/python3".to_owned(), "python3".to_owned()]);
    candidates.map(PathBuf::from).find(|python| {
        Command::new(python)
            .args(["-c", "import slixmpp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Compile a libstrophe program into a temp dir: `cc SOURCE $(pkg-config --cflags --libs
/// libstrophe)`. `None` when pkg-config, the library or the compiler is missing.
pub(crate) fn build_strophe_program(source: &Path) -> Option<PathBuf> {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libstrophe"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let flags = String::from_utf8(flags.stdout).ok()?;
    let name = source.file_stem()?.to_string_lossy().into_owned();
    let out = temp_dir(&format!("{name}-build")).join(&name);
    let status = Command::new("cc")
        .arg(source)
        .arg("-o")
        .arg(&out)
        .args(flags.split_whitespace())
        .status()
        .ok()?;
    status.success().then_some(out)
}

/// A peer process running with its output captured.
pub(crate) struct Peer {
    child: Child,
    started: Instant,
}

impl Peer {
    /// Start `command` with stdout and stderr captured.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Peer {
            child,
            started: Instant::now(),
        }
    }

    /// Wait for the process (killed at [`PEER_DEADLINE`] after its start); return (exited
    /// successfully, stdout, stderr).
    pub(crate) fn finish(mut self) -> (bool, String, String) {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if self.started.elapsed() > PEER_DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        let mut err = String::new();
        let mut stdout = self.child.stdout.take().unwrap();
        stdout.read_to_string(&mut out).unwrap();
        let mut stderr = self.child.stderr.take().unwrap();
        stderr.read_to_string(&mut err).unwrap();
        let ok = status.is_some_and(|s| s.success());
        if !ok {
            // How it ended is part of the failure report (a crash prints nothing).
            let _ = write!(err, "\n[peer ended: {status:?}]");
        }
        (ok, out, err)
    }
}

impl Drop for Peer {
    /// A test that fails half-way leaves no peer behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run a peer with a deadline; return (exit ok, stdout, stderr).
pub(crate) fn run_peer(command: Command) -> (bool, String, String) {
    Peer::spawn(command).finish()
}

/// The peer's `RESULT` lines as (feature, pass).
pub(crate) fn results(stdout: &str) -> Vec<(String, bool)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("RESULT ")?.split_whitespace();
            Some((words.next()?.to_owned(), words.next()? == "pass"))
        })
        .collect()
}

/// A database for a test: a fresh SQLite file, or a private PostgreSQL server (its own
/// cluster, stopped and removed when dropped).
pub(crate) enum TestDb {
    Sqlite(PathBuf),
    Postgres(xmpp_testpeers::PostgresServer),
}

impl TestDb {
    /// A SQLite file `name` in `dir` (not created yet).
    pub(crate) fn sqlite(dir: &Path, name: &str) -> Self {
        TestDb::Sqlite(dir.join(name))
    }

    /// A private PostgreSQL server, or `None` after saying the test is skipped (failing it
    /// under `XMPP_INTEROP=require`) when PostgreSQL's binaries are not installed. Present
    /// binaries that do not start fail the test.
    pub(crate) fn postgres() -> Option<Self> {
        if xmpp_testpeers::postgres::postgres_bin().is_none() {
            missing("PostgreSQL (Debian package postgresql) is not installed");
            return None;
        }
        Some(TestDb::Postgres(
            xmpp_testpeers::PostgresServer::start().unwrap(),
        ))
    }

    /// Where the server finds it.
    pub(crate) fn location(&self) -> xmpp_server::db::Location {
        match self {
            TestDb::Sqlite(path) => xmpp_server::db::Location::Sqlite(path.clone()),
            TestDb::Postgres(server) => xmpp_server::db::Location::Postgres(server.url()),
        }
    }

    /// The `--db` argument of the server binary.
    pub(crate) fn spec(&self) -> String {
        match self {
            TestDb::Sqlite(path) => format!("sqlite:{}", path.display()),
            TestDb::Postgres(server) => server.url(),
        }
    }

    /// Opened from the test (the server must not be writing to it meanwhile).
    pub(crate) fn open(&self) -> Box<dyn xmpp_server::db::Store> {
        self.location().open().unwrap()
    }

    /// The private PostgreSQL server, if this is one.
    pub(crate) fn postgres_server(&mut self) -> Option<&mut xmpp_testpeers::PostgresServer> {
        match self {
            TestDb::Sqlite(_) => None,
            TestDb::Postgres(server) => Some(server),
        }
    }

    /// Whether `needle` appears in any file of the database (the SQLite file and its WAL,
    /// or the PostgreSQL cluster's directory).
    pub(crate) fn any_file_contains(&self, needle: &[u8]) -> bool {
        fn walk(path: &Path, needle: &[u8]) -> bool {
            if path.is_dir() {
                return std::fs::read_dir(path)
                    .unwrap()
                    .filter_map(Result::ok)
                    .any(|e| walk(&e.path(), needle));
            }
            std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        }
        match self {
            TestDb::Sqlite(path) => {
                let wal = PathBuf::from(format!("{}-wal", path.display()));
                walk(path, needle) || walk(&wal, needle)
            }
            TestDb::Postgres(server) => walk(server.dir(), needle),
        }
    }
}
