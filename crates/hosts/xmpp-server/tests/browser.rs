//! The toolkit in a real browser: the client machine compiled to `wasm32-unknown-unknown`,
//! bound with `wasm-bindgen`, used by the demo page (`crates/hosts/xmpp-host-wasm/web`) in
//! Debian's headless Chromium, driven through chromedriver's WebDriver HTTP API. Against our
//! server's WebSocket endpoint on loopback, the page logs in (SCRAM), gets its roster, sees a
//! second account's presence come and go, exchanges a message each way with it (that account
//! is our Rust client over WebSocket), and closes cleanly (`<close/>` both ways).
//!
//! The same page against Prosody 0.12 (`mod_websocket`) and ejabberd 23.01
//! (`ejabberd_http_ws`), started by `xmpp-testpeers`: the page is served by our static file
//! server on one loopback port and opens the peer's WebSocket on another. WebSocket is not
//! subject to CORS, but a server may check the upgrade's `Origin`: ejabberd is configured to
//! accept the page's origin only (`websocket_origin`), Prosody 0.12 checks none. Bob is our
//! Rust client over TCP with STARTTLS; Alice's roster holds Bob (set before the page logs in).
//!
//! `wss:` in the browser: the peer (or our server's `--wss`) serves a certificate the system
//! does not trust (a fresh `TestCa`'s, or our server's self-signed one). Chromium is started
//! with `--ignore-certificate-errors-spki-list=<SHA-256 of that leaf's public key>`, which
//! lets exactly that key through and nothing else: a certificate with any other key still
//! fails as on any machine. chromedriver's `acceptInsecureCerts` would accept every
//! certificate, so the test would pass even if the page talked to the wrong server; adding
//! the CA to a system or NSS store would touch the machine. Our own client is checked over
//! `wss:` with a real chain and name check against our server here (and against the peers in
//! `xmpp-host`'s `interop_websocket`).
//!
//! Needs the wasm32 target, `wasm-bindgen` (the CLI, the same version as the crate in
//! `Cargo.lock`; `.ci/run` installs it), `/usr/bin/chromium` and `/usr/bin/chromedriver`;
//! without one of them it skips and says which (fails under `XMPP_INTEROP=require`). The
//! strophe.js test needs only Chromium, chromedriver and npm with a reachable registry.
//! `XMPP_SCREENSHOT=FILE` saves a PNG of the page in the middle of the session.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

mod common;

use base64::Engine as _;
use minidom::Element;
use serde_json::{Value, json};
use xmpp_host::OsEntropy;
use xmpp_host::asynchronous::AsyncConnection;
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_host::websocket::WebSocketOptions;
use xmpp_server::{HubConfig, ServerHandle};
use xmpp_stream::{BareJid, ClientConfig, ClientStream, Event, TlsPolicy};
use xmpp_testpeers::{
    DOMAIN, PeerKind, PeerOptions, PeerServer, TestCa, WASM_TARGET, skip_or_fail,
    start_for_test_with, wasm_target_installed,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(20);
const NS: &str = "jabber:client";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The version of the `wasm-bindgen` crate in `Cargo.lock` (the CLI must match it).
fn locked_wasm_bindgen() -> Option<String> {
    let lock = std::fs::read_to_string(workspace().join("Cargo.lock")).ok()?;
    let at = lock.find("name = \"wasm-bindgen\"\nversion = \"")?;
    let rest = &lock[at + "name = \"wasm-bindgen\"\nversion = \"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn wasm_bindgen_cli() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("WASM_BINDGEN").map(PathBuf::from),
        Some(PathBuf::from("wasm-bindgen")),
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/wasm-bindgen")),
    ];
    candidates.into_iter().flatten().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// What is missing to run the test, if anything.
fn missing() -> Option<String> {
    if !wasm_target_installed() {
        return Some(format!("the {WASM_TARGET} target is not installed"));
    }
    let version = locked_wasm_bindgen()?;
    let Some(cli) = wasm_bindgen_cli() else {
        return Some(format!(
            "wasm-bindgen is not installed (`cargo install wasm-bindgen-cli --locked --version {version}`)"
        ));
    };
    let out = Command::new(&cli).arg("--version").output().ok()?;
    if !String::from_utf8_lossy(&out.stdout).contains(&version) {
        return Some(format!(
            "wasm-bindgen {} is not {version}, the crate's version in Cargo.lock",
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    missing_browser()
}

/// Whether Chromium or chromedriver is missing.
fn missing_browser() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|program| !Path::new(program).exists())
        .map(|program| format!("{program} is not installed (Debian chromium, chromium-driver)"))
}

/// A runtime for Bob on the test's thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One headless Chromium at a time: on 2 cores, several at once make each slow for nothing.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// The page and its module, built once per run into `target/browser-test/site`.
fn site() -> &'static Path {
    static SITE: OnceLock<PathBuf> = OnceLock::new();
    SITE.get_or_init(|| {
        let dir = workspace().join("target/browser-test/site");
        std::fs::create_dir_all(&dir).unwrap();
        build_page(&dir);
        dir
    })
}

/// Base64 of the SHA-256 of a certificate's SubjectPublicKeyInfo: what Chromium's
/// `--ignore-certificate-errors-spki-list` names.
fn spki_sha256(cert_der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The DER of the first certificate in `pem`.
fn pem_to_der(pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    pem.contents
}

/// Build the module with the `browser` feature, bind it, and lay out the page in `dir`.
fn build_page(dir: &Path) {
    let target_dir = workspace().join("target/browser-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &target_dir)
        // Built for size, as a page would ship it (the README's sizes are of this build).
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "z")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .args(["build", "--release", "--target", WASM_TARGET])
        .args(["-p", "xmpp-host-wasm", "--features", "browser"])
        .status()
        .unwrap();
    assert!(status.success(), "the wasm build failed");
    let wasm = target_dir.join(format!("{WASM_TARGET}/release/xmpp_host_wasm.wasm"));
    let status = Command::new(wasm_bindgen_cli().unwrap())
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--remove-name-section",
        ])
        .args(["--remove-producers-section", "--out-dir"])
        .arg(dir.join("pkg"))
        .arg(&wasm)
        .status()
        .unwrap();
    assert!(status.success(), "wasm-bindgen failed");
    let web = workspace().join("crates/hosts/xmpp-host-wasm/web");
    for file in ["index.html", "app.js"] {
        std::fs::copy(web.join(file), dir.join(file)).unwrap();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One WebDriver command: `method path` with an optional JSON body; the answer's `value`.
fn webdriver(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open whatever we ask: read the head, then exactly
    // Content-Length bytes.
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let (head_end, length) = loop {
        let n = xmpp_testpeers::read_some(&mut socket, &mut buf).unwrap();
        assert!(n > 0, "chromedriver closed mid-answer");
        response.extend_from_slice(&buf[..n]);
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while response.len() < head_end + length {
        let n = xmpp_testpeers::read_some(&mut socket, &mut buf).unwrap();
        assert!(n > 0, "chromedriver closed mid-answer");
        response.extend_from_slice(&buf[..n]);
    }
    let response = String::from_utf8_lossy(&response);
    let json = &response[head_end..];
    let value: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("chromedriver answered {response:?}: {e}"));
    value["value"].clone()
}

/// chromedriver on a free port, stopped (by pid) on drop, with one headless session.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);
    impl Dir {
        pub(crate) fn new(tag: &str) -> Dir {
            Dir(super::common::temp_dir(&format!("browser-{tag}")))
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Browser {
    fn start() -> Browser {
        Browser::start_with(&[])
    }

    /// A browser with these command-line switches on top of the usual ones.
    fn start_with(extra: &[String]) -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < WAIT, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempdir::Dir::new("profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,720",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([format!("--user-data-dir={}", profile.0.display())])
        .chain(extra.iter().cloned())
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let value = webdriver(port, "POST", "/session", Some(&caps));
        value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {value}"))
            .clone_into(&mut browser.session);
        browser
    }

    fn command(&self, method: &str, what: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        webdriver(self.port, method, &path, body)
    }

    fn go(&self, url: &str) {
        self.command("POST", "url", Some(&json!({ "url": url })));
    }

    /// Run `script` in the page and return its value.
    fn run(&self, script: &str) -> Value {
        self.command(
            "POST",
            "execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// The page's `window.xmpp`.
    fn state(&self) -> Value {
        self.run("return window.xmpp || null;")
    }

    /// Wait until `ok` holds of the page's state.
    fn wait(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let state = self.state();
            if ok(&state) {
                return state;
            }
            assert!(
                start.elapsed() < WAIT,
                "the page never got to: {what}\nstate: {state:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| webdriver(self.port, "DELETE", &path, None));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Our server with Alice and Bob, its WebSocket endpoint `wss:` or, as the page on
/// http://127.0.0.1 uses it, `ws:` on loopback.
fn server(wss: bool) -> ServerHandle {
    let mut hub = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("alice", "pw-a")
        .with_user("bob", "pw-b");
    hub.stream.tls = if wss {
        TlsPolicy::Required
    } else {
        TlsPolicy::Optional
    };
    let config = common::runtime_config(hub, "localhost");
    ServerHandle::spawn_websocket(common::loopback(), common::loopback(), wss, config).unwrap()
}

/// Serve `root` with the server's static file server on its own runtime thread; its port.
fn serve_site(root: &Path, ws_url: Option<&str>) -> u16 {
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web_port = web.local_addr().unwrap().port();
    web.set_nonblocking(true).unwrap();
    let root = root.to_owned();
    let url_for_page = ws_url.map(str::to_owned);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(web).unwrap();
            xmpp_server::serve_web(listener, root, url_for_page).await;
        });
    });
    web_port
}

/// Bob, our Rust client over `ws:`, negotiated.
async fn bob(ws_addr: SocketAddr, ws_url: &str) -> AsyncConnection<ClientStream> {
    bob_over(&WebSocketOptions::new(ws_addr, ws_url)).await
}

/// Bob, our Rust client over WebSocket as `options` say (`ws:` or `wss:`), negotiated and
/// available.
async fn bob_over(options: &WebSocketOptions) -> AsyncConnection<ClientStream> {
    let mut config = ClientConfig::new(BareJid::new("bob@localhost").unwrap(), "pw-b");
    if options.url.starts_with("ws:") {
        config.tls = TlsPolicy::Disabled;
    }
    let mut bob = AsyncConnection::connect_websocket(options, config, OsEntropy::new())
        .await
        .unwrap();
    bob.negotiate(WAIT).await.unwrap();
    available(&mut bob).await;
    bob
}

/// Initial presence, so that messages to the bare JID reach this resource.
async fn available(conn: &mut AsyncConnection<ClientStream>) {
    conn.send(&Element::builder("presence", NS).build())
        .await
        .unwrap();
}

/// The next message Bob gets with this body; its sender.
async fn bob_receives(bob: &mut AsyncConnection<ClientStream>, body: &str) -> String {
    loop {
        match bob.next_event(WAIT).await.unwrap() {
            Some(Event::Stanza(s))
                if s.name() == "message"
                    && s.get_child("body", NS).map(Element::text).as_deref() == Some(body) =>
            {
                return s.attr("from").unwrap_or_default().to_owned();
            }
            Some(Event::Closed { reason }) => panic!("bob closed: {reason:?}"),
            Some(_) => {}
            None => panic!("bob's stream ended"),
        }
    }
}

/// strophe.js from npm, installed once into `target/npm-strophe`: its browser bundle, or why
/// not (no npm, no registry).
fn strophe() -> Result<PathBuf, String> {
    let dir = workspace().join("target/npm-strophe");
    let bundle = dir.join("node_modules/strophe.js/dist/strophe.umd.min.js");
    if bundle.exists() {
        return Ok(bundle);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg("strophe.js@5")
        .output()
        .map_err(|e| format!("npm: {e}"))?;
    if !out.status.success() || !bundle.exists() {
        return Err(format!(
            "npm could not install strophe.js: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
    }
    Ok(bundle)
}

/// A page that logs in with strophe.js, says hello to Bob, records what it gets back.
const STROPHE_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>strophe.js</title>
<script src="strophe.umd.min.js"></script>
<script>
const p = new URLSearchParams(location.search);
const s = window.xmpp = { status: [], messages: [], jid: null };
const { Strophe, $msg, $pres } = window.strophe || window;
const c = new Strophe.Connection(p.get("url"));
c.connect(p.get("jid"), p.get("password"), (status) => {
  s.status.push(status);
  if (status === Strophe.Status.CONNECTED) {
    s.jid = c.jid;
    c.addHandler((m) => {
      const body = m.getElementsByTagName("body")[0];
      if (body) s.messages.push({ from: m.getAttribute("from"), body: body.textContent });
      return true;
    }, null, "message");
    c.send($pres());
    c.send($msg({ to: "bob@localhost", type: "chat" }).c("body").t("hello from strophe.js"));
  }
  if (status === Strophe.Status.DISCONNECTED) s.disconnected = true;
});
window.stropheQuit = () => c.disconnect("done");
</script>"#;

/// Bob sends `to` a chat message.
async fn chat(bob: &mut AsyncConnection<ClientStream>, to: &str, body: &str) {
    bob.send(&stanza_with("message", to, Some("chat"), Some(body)))
        .await
        .unwrap();
}

fn stanza_with(name: &str, to: &str, kind: Option<&str>, body: Option<&str>) -> Element {
    let mut builder = Element::builder(name, NS).attr("to".try_into().unwrap(), to);
    if let Some(kind) = kind {
        builder = builder.attr("type".try_into().unwrap(), kind);
    }
    if let Some(body) = body {
        builder = builder.append(Element::builder("body", NS).append(body));
    }
    builder.build()
}

#[test]
fn the_page_logs_in_chats_and_closes_in_headless_chromium() {
    if let Some(why) = missing() {
        skip_or_fail(&format!("browser test: {why}"));
        return;
    }
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = server(false);
    let ws_addr = server.websocket_addr.expect("a WebSocket listener");
    let ws_url = format!("ws://{ws_addr}/xmpp-websocket");

    let web_port = serve_site(site(), Some(&ws_url));

    let browser = Browser::start();
    let alice = page_logs_in(&browser, web_port, &ws_url);

    // Bob: our Rust client, also over WebSocket.
    runtime().block_on(async {
        let mut bob = bob(ws_addr, &ws_url).await;
        if let Ok(file) = std::env::var("XMPP_SCREENSHOT") {
            bob.send(&stanza_with("presence", &alice, None, None))
                .await
                .unwrap();
            browser.wait("Bob available", |s| {
                s["roster"]["bob@localhost"]["show"] == "available"
            });
            chat(&mut bob, &alice, "Hello from a Rust client over WebSocket").await;
            browser.wait("the greeting", |s| {
                s["messages"].to_string().contains("Hello from")
            });
            browser.run("window.xmppSend('bob@localhost', 'Hi Bob, from the browser!');");
            browser.run("document.querySelector('#roster li').click();");
            let png = browser.command("GET", "screenshot", None);
            let png = base64::engine::general_purpose::STANDARD
                .decode(png.as_str().unwrap())
                .unwrap();
            std::fs::write(file, png).unwrap();
        }
        converse(&browser, &mut bob, &alice).await;
        bob.close(WAIT).await.unwrap();
    });
    page_logs_out(&browser);
}

/// The page at `web_port` logs in as Alice over `ws_url` and gets its roster; her full JID.
fn page_logs_in(browser: &Browser, web_port: u16, ws_url: &str) -> String {
    browser.go(&format!(
        "http://127.0.0.1:{web_port}/?jid=alice@localhost&password=pw-a&url={ws_url}&autologin"
    ));
    let state = browser.wait("online with its roster", |s| {
        s["jid"].as_str().is_some() && s["rosterLoaded"] == true
    });
    let alice = state["jid"].as_str().unwrap().to_owned();
    assert!(alice.starts_with("alice@localhost/"), "{state:#}");
    let log = state["log"].to_string();
    assert!(
        log.contains("Authenticated alice@localhost SCRAM-SHA-"),
        "{log}"
    );
    assert!(log.contains("subprotocol xmpp"), "{log}");
    alice
}

/// Bob's presence reaches the page, a message each way, Bob goes away and the page shows it.
async fn converse(browser: &Browser, bob: &mut AsyncConnection<ClientStream>, alice: &str) {
    bob.send(&stanza_with("presence", alice, None, None))
        .await
        .unwrap();
    browser.wait("Bob available", |s| {
        s["roster"]["bob@localhost"]["show"] == "available"
    });
    // A message each way.
    chat(bob, alice, "ping from bob").await;
    browser.wait("Bob's message", |s| {
        s["messages"].as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m["body"] == "ping from bob" && m["from"] == "bob@localhost")
        })
    });
    browser.run("window.xmppSend('bob@localhost', 'pong from the page');");
    let from = bob_receives(bob, "pong from the page").await;
    assert_eq!(from, alice);
    // Bob goes away: the page shows it.
    bob.send(&stanza_with("presence", alice, Some("unavailable"), None))
        .await
        .unwrap();
    browser.wait("Bob offline", |s| {
        s["roster"]["bob@localhost"]["show"] == "offline"
    });
}

/// The page logs out: `<close/>` both ways.
fn page_logs_out(browser: &Browser) {
    browser.run("window.xmppLogout();");
    let state = browser.wait("closed", |s| !s["closed"].is_null());
    assert_eq!(state["closed"], "Graceful", "{state:#}");
    let log = state["log"].to_string();
    assert!(
        log.contains("C: <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"),
        "{log}"
    );
}

#[test]
fn strophe_js_logs_in_and_chats_with_our_server_in_headless_chromium() {
    if let Some(why) = missing_browser() {
        skip_or_fail(&format!("strophe.js test: {why}"));
        return;
    }
    let bundle = match strophe() {
        Ok(bundle) => bundle,
        Err(why) => {
            skip_or_fail(&format!("strophe.js test: {why}"));
            return;
        }
    };
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let site = tempdir::Dir::new("strophe");
    std::fs::copy(&bundle, site.0.join("strophe.umd.min.js")).unwrap();
    std::fs::write(site.0.join("index.html"), STROPHE_PAGE).unwrap();
    let server = server(false);
    let ws_addr = server.websocket_addr.expect("a WebSocket listener");
    let ws_url = format!("ws://{ws_addr}/xmpp-websocket");
    let web_port = serve_site(&site.0, Some(&ws_url));
    runtime().block_on(async {
        let mut bob = bob(ws_addr, &ws_url).await;
        let browser = Browser::start();
        browser.go(&format!(
            "http://127.0.0.1:{web_port}/?jid=alice@localhost&password=pw-a&url={ws_url}"
        ));
        let from = bob_receives(&mut bob, "hello from strophe.js").await;
        assert!(from.starts_with("alice@localhost/"), "{from}");
        chat(&mut bob, &from, "hello, strophe.js").await;
        browser.wait("Bob's answer", |s| {
            s["messages"].to_string().contains("hello, strophe.js")
        });
        browser.run("window.stropheQuit();");
        browser.wait("disconnected", |s| s["disconnected"] == true);
        bob.close(WAIT).await.unwrap();
    });
}

/// `ws:` or `wss:` from the page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Ws,
    Wss,
}

/// Chromium trusting exactly the key of `cert_der` for `wss:` (see the file's top).
fn browser_pinning(cert_der: &[u8]) -> Browser {
    Browser::start_with(&[format!(
        "--ignore-certificate-errors-spki-list={}",
        spki_sha256(cert_der)
    )])
}

/// `user@localhost` (password `pw-` and the user's initial) logged in to `peer` over TCP with
/// STARTTLS, trusting only `ca`.
async fn peer_login(peer: &PeerServer, ca: &TestCa, user: &str) -> AsyncConnection<ClientStream> {
    let tls = client_config(&Trust::Pem(ca.pem().into_bytes()), Versions::Any).unwrap();
    let password = format!("pw-{}", &user[..1]);
    let config = ClientConfig::new(BareJid::new(&format!("{user}@{DOMAIN}")).unwrap(), password);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, peer.starttls_port));
    let mut conn =
        AsyncConnection::connect(addr, &peer.domain, false, tls, config, OsEntropy::new())
            .await
            .unwrap_or_else(|e| panic!("{}", peer.failure(&format!("{user} connects: {e}"))));
    conn.negotiate(WAIT)
        .await
        .unwrap_or_else(|e| panic!("{}", peer.failure(&format!("{user} logs in: {e}"))));
    conn
}

/// Put Bob in Alice's roster (one roster set, RFC 6121 §2.3), so the page has a roster to show.
async fn alice_adds_bob(peer: &PeerServer, ca: &TestCa) {
    let mut alice = peer_login(peer, ca, "alice").await;
    let set: Element = "<iq xmlns='jabber:client' type='set' id='add-bob'>\
         <query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>"
        .parse()
        .unwrap();
    alice.send(&set).await.unwrap();
    loop {
        match alice.next_event(WAIT).await.unwrap() {
            Some(Event::Stanza(s)) if s.name() == "iq" && s.attr("id") == Some("add-bob") => {
                assert_eq!(
                    s.attr("type"),
                    Some("result"),
                    "{}",
                    peer.failure("roster set")
                );
                break;
            }
            Some(Event::Closed { reason }) => panic!("{}", peer.failure(&format!("{reason:?}"))),
            Some(_) => {}
            None => panic!("{}", peer.failure("no answer to the roster set")),
        }
    }
    alice.close(WAIT).await.unwrap();
}

/// Whether the WebSocket upgrade at `ws_url` (a `ws:` URL on loopback) succeeds for a page of
/// `origin`.
async fn upgrade_accepted(ws_url: &str, origin: &str) -> bool {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = ws_url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
    headers.insert("Origin", origin.parse().unwrap());
    let host = ws_url.trim_start_matches("ws://");
    let host = &host[..host.find('/').unwrap()];
    let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    tokio_tungstenite::client_async(request, tcp).await.is_ok()
}

/// The page against a peer: log in, roster, presence, a message each way, close.
fn page_against(kind: PeerKind, transport: Transport) {
    if let Some(why) = missing() {
        skip_or_fail(&format!("browser test against {kind}: {why}"));
        return;
    }
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The page's origin first: ejabberd is told to accept upgrades from it alone.
    let web_port = serve_site(site(), None);
    let ca = TestCa::new("browser test CA").unwrap();
    let cert = ca.issue(DOMAIN).unwrap();
    let options = PeerOptions::new()
        .with_certificate(cert.clone())
        .with_websocket_origin(&format!("http://127.0.0.1:{web_port}"));
    let options = match transport {
        Transport::Ws => options.with_websocket(),
        Transport::Wss => options.with_secure_websocket(),
    };
    let accounts = [("alice", "pw-a"), ("bob", "pw-b")];
    let Some(peer) = start_for_test_with(kind, &accounts, &options) else {
        return;
    };
    let url = match transport {
        Transport::Ws => peer.websocket_url(),
        Transport::Wss => peer.secure_websocket_url(),
    }
    .expect("asked for a WebSocket endpoint");
    let origin = format!("http://127.0.0.1:{web_port}");
    runtime().block_on(async {
        if kind == PeerKind::Ejabberd && transport == Transport::Ws {
            // The origin check is live: another page's upgrade is refused, the page's is not.
            assert!(!upgrade_accepted(&url, "http://elsewhere.test").await);
            assert!(upgrade_accepted(&url, &origin).await);
        }
        alice_adds_bob(&peer, &ca).await;
        let mut bob = peer_login(&peer, &ca, "bob").await;
        available(&mut bob).await;
        let browser = match transport {
            Transport::Ws => Browser::start(),
            Transport::Wss => browser_pinning(&pem_to_der(&cert.cert_pem)),
        };
        let alice = page_logs_in(&browser, web_port, &url);
        let state = browser.state();
        assert_eq!(
            state["roster"]["bob@localhost"]["name"],
            "Bob",
            "{}",
            peer.failure(&format!("the page's roster: {state:#}"))
        );
        converse(&browser, &mut bob, &alice).await;
        page_logs_out(&browser);
        bob.close(WAIT).await.unwrap();
    });
}

#[test]
fn the_page_against_prosody_over_ws() {
    page_against(PeerKind::Prosody, Transport::Ws);
}

#[test]
fn the_page_against_ejabberd_over_ws() {
    page_against(PeerKind::Ejabberd, Transport::Ws);
}

#[test]
fn the_page_against_prosody_over_wss() {
    page_against(PeerKind::Prosody, Transport::Wss);
}

#[test]
fn the_page_against_ejabberd_over_wss() {
    page_against(PeerKind::Ejabberd, Transport::Wss);
}

/// Our server's `--wss`: our Rust client (chain and name checked against the server's
/// certificate) and the page (Chromium pinning that certificate's key) chat over it; pinned
/// to another key, the page cannot even open the WebSocket.
#[test]
fn the_page_and_our_client_over_wss_on_our_server() {
    if let Some(why) = missing() {
        skip_or_fail(&format!("browser test: {why}"));
        return;
    }
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = server(true);
    let port = server.websocket_addr.expect("a WebSocket listener").port();
    let url = format!("wss://localhost:{port}/xmpp-websocket");
    let web_port = serve_site(site(), Some(&url));
    runtime().block_on(async {
        let mut options =
            WebSocketOptions::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &url);
        options.tls = Some(
            client_config(
                &Trust::Pem(server.cert_pem.clone().into_bytes()),
                Versions::Any,
            )
            .unwrap(),
        );
        let mut bob = bob_over(&options).await;
        {
            // The pin is a real check: pinned to another key, Chromium refuses the server.
            let other = TestCa::new("another CA")
                .unwrap()
                .issue("localhost")
                .unwrap();
            let browser = browser_pinning(&pem_to_der(&other.cert_pem));
            browser.go(&format!(
                "http://127.0.0.1:{web_port}/?jid=alice@localhost&password=pw-a&url={url}&autologin"
            ));
            let state = browser.wait("the WebSocket refused", |s| {
                s["log"].to_string().contains("WebSocket closed")
            });
            assert!(state["jid"].is_null(), "{state:#}");
        }
        let browser = browser_pinning(&server.cert_der);
        let alice = page_logs_in(&browser, web_port, &url);
        converse(&browser, &mut bob, &alice).await;
        page_logs_out(&browser);
        bob.close(WAIT).await.unwrap();
    });
}
