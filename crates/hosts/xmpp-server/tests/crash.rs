//! Crash safety on SQLite and on PostgreSQL: the server process is killed (`SIGKILL`) in the
//! middle of a storm of roster sets, subscription requests and messages to an offline account,
//! restarted on the same database, and everything it had acknowledged must be there, nothing
//! twice. With stream management (XEP-0198), every message the server counted in an
//! `<a h=''/>` before it died is stored for its offline recipient after the restart.
//!
//! The PostgreSQL runs use a private server (`xmpp_testpeers::PostgresServer`) and are skipped
//! (`SKIPPED: `) where Debian's `postgresql` is not installed, or fail there under
//! `XMPP_INTEROP=require`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A host test: processes, sockets, files, the clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDb, parse, temp_dir};
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_stream::{BareJid, ClientConfig, ClientStream, Event, SmConfig};

const WAIT: Duration = Duration::from_secs(15);
const SETS: usize = 300;
const SUBSCRIPTIONS: usize = 100;
/// Below the offline box's bound (100): none is refused, so what is stored is a prefix.
const MESSAGES: usize = 80;

fn start(db: &TestDb) -> (Child, SocketAddr) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_xmpp-server"))
        .args(["--db", &db.spec()])
        .args(["--port", &port.to_string(), "--quiet"])
        .args(["--user", "alice:alice-pw", "--user", "bob:bob-pw"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

fn login(addr: SocketAddr, user: &str) -> Connection<ClientStream> {
    login_with(addr, user, false)
}

fn login_with(addr: SocketAddr, user: &str, sm: bool) -> Connection<ClientStream> {
    let tls = client_config(&Trust::InsecureAcceptAny, Versions::Any).unwrap();
    let options = ClientOptions::new(addr, "localhost", tls);
    let mut config = ClientConfig::new(
        BareJid::new(&format!("{user}@localhost")).unwrap(),
        format!("{user}-pw"),
    );
    config.resource = Some("r".to_owned());
    if sm {
        config.sm = SmConfig::on();
        config.sm.request_every = 1;
    }
    let mut conn = Connection::connect(&options, config, OsEntropy::new()).unwrap();
    conn.negotiate(WAIT).unwrap();
    conn
}

/// What the server acknowledged: roster set results and the roster pushes of subscription
/// requests (RFC 6121 §3.1.2: the push comes once the item is stored).
#[derive(Default)]
struct Acks {
    sets: BTreeSet<usize>,
    subscriptions: BTreeSet<usize>,
}

impl Acks {
    fn take(&mut self, stanza: &minidom::Element) {
        if stanza.name() != "iq" {
            return;
        }
        if stanza.attr("type") == Some("result")
            && let Some(i) = stanza.attr("id").and_then(|id| id.strip_prefix("set-"))
        {
            self.sets.insert(i.parse().unwrap());
        }
        if stanza.attr("type") == Some("set") {
            for item in stanza
                .children()
                .flat_map(minidom::Element::children)
                .filter(|i| i.attr("ask") == Some("subscribe"))
            {
                if let Some(i) = item
                    .attr("jid")
                    .and_then(|j| j.strip_prefix("sub"))
                    .and_then(|j| j.strip_suffix("@localhost"))
                {
                    self.subscriptions.insert(i.parse().unwrap());
                }
            }
        }
    }

    fn count(&self) -> usize {
        self.sets.len() + self.subscriptions.len()
    }
}

fn roster(conn: &mut Connection<ClientStream>) -> Vec<minidom::Element> {
    conn.send(&parse(
        "<iq xmlns='jabber:client' type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>",
    ))
    .unwrap();
    let result = conn
        .wait_stanza(WAIT, |s| s.attr("id") == Some("roster"))
        .unwrap();
    result
        .children()
        .flat_map(minidom::Element::children)
        .cloned()
        .collect()
}

#[test]
fn sigkill_mid_storm_loses_nothing_acknowledged_and_duplicates_nothing_sqlite() {
    let dir = temp_dir("crash");
    storm(&TestDb::sqlite(&dir, "crash.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_mid_storm_loses_nothing_acknowledged_and_duplicates_nothing_postgres() {
    if let Some(db) = TestDb::postgres() {
        storm(&db);
    }
}

fn storm(db: &TestDb) {
    let (mut server, addr) = start(db);
    let mut alice = login(addr, "alice");
    // Interested in roster pushes (§2.1.6).
    assert!(roster(&mut alice).is_empty());
    let mut acks = Acks::default();
    let mut killed = false;
    // Roster sets, with a subscription request and a message to the offline bob woven in.
    let mut storm = Vec::new();
    for k in 0..SETS {
        storm.push(format!(
            "<iq xmlns='jabber:client' type='set' id='set-{k}'><query xmlns='jabber:iq:roster'><item jid='contact{k}@localhost' name='n{k}'/></query></iq>"
        ));
        if k % 3 == 0 && k / 3 < SUBSCRIPTIONS {
            storm.push(format!(
                "<presence xmlns='jabber:client' type='subscribe' to='sub{}@localhost'/>",
                k / 3
            ));
        }
        if k % 3 == 1 && k / 3 < MESSAGES {
            storm.push(format!(
                "<message xmlns='jabber:client' to='bob@localhost' id='msg-{0}'><body>{0}</body></message>",
                k / 3
            ));
        }
    }
    let total = storm.len();
    let mut sent = 0;
    'storm: for xml in &storm {
        if alice.send(&parse(xml)).is_err() {
            break;
        }
        sent += 1;
        // Read what has arrived, without waiting long.
        while let Ok(Some(Event::Stanza(s))) = alice.next_event(Duration::from_millis(1)) {
            acks.take(&s);
        }
        if !killed && acks.count() >= 150 {
            server.kill().unwrap(); // SIGKILL
            killed = true;
        }
        if killed {
            break 'storm;
        }
    }
    // All sent before 150 acknowledgements: the server is still working through them.
    let deadline = Instant::now() + WAIT;
    while !killed && Instant::now() < deadline {
        match alice.next_event(Duration::from_millis(10)) {
            Ok(Some(Event::Stanza(s))) => acks.take(&s),
            Ok(Some(_)) | Err(xmpp_host::Error::Timeout) => {}
            _ => break,
        }
        if acks.count() >= 150 {
            server.kill().unwrap(); // SIGKILL
            killed = true;
        }
    }
    // Everything the server sent before it died.
    while let Ok(Some(event)) = alice.next_event(Duration::from_millis(500)) {
        if let Event::Stanza(s) = event {
            acks.take(&s);
        }
    }
    if !killed {
        server.kill().unwrap();
    }
    server.wait().unwrap();
    assert!(killed, "150 acknowledgements never came");
    assert!(
        acks.count() < SETS + SUBSCRIPTIONS,
        "killed only after the storm was over"
    );
    drop(alice);

    // The same file, a new process.
    let (mut server, addr) = start(db);
    let mut alice = login(addr, "alice");
    let items = roster(&mut alice);
    let jids: Vec<&str> = items.iter().filter_map(|i| i.attr("jid")).collect();
    let unique: BTreeSet<&str> = jids.iter().copied().collect();
    assert_eq!(unique.len(), jids.len(), "an item twice: {jids:?}");
    let item = |jid: String| {
        items
            .iter()
            .find(|it| it.attr("jid") == Some(jid.as_str()))
            .unwrap_or_else(|| panic!("acknowledged {jid} lost"))
    };
    for i in &acks.sets {
        let name = item(format!("contact{i}@localhost")).attr("name");
        assert_eq!(name, Some(format!("n{i}").as_str()));
    }
    for i in &acks.subscriptions {
        let ask = item(format!("sub{i}@localhost")).attr("ask");
        assert_eq!(ask, Some("subscribe"));
    }
    // Offline messages: distinct, in order, a prefix of what was sent (none is refused below
    // the box's bound, and they are stored in arrival order).
    drop(alice);
    server.kill().unwrap();
    server.wait().unwrap();
    let bob = BareJid::new("bob@localhost").unwrap();
    let stored = db.open().take_offline(&bob).unwrap();
    let ids: Vec<String> = stored
        .iter()
        .map(|m| m.attr("id").unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..ids.len()).map(|i| format!("msg-{i}")).collect();
    assert_eq!(
        ids, expected,
        "stored messages are not a prefix of those sent, once each"
    );
    eprintln!(
        "crash: {sent} of {total} stanzas sent, {} sets and {} subscriptions acknowledged, {} items and {} offline messages after restart",
        acks.sets.len(),
        acks.subscriptions.len(),
        items.len(),
        ids.len()
    );
}

/// The last `h` the server sent (stanzas it counts as handled, from the first after
/// `<enable/>`).
fn acked(conn: &Connection<ClientStream>) -> u32 {
    conn.machine()
        .as_client()
        .and_then(ClientStream::sm_state)
        .map_or(0, |state| state.acked)
}

/// Messages the offline bob has stored, by id, once each and in order.
fn stored_for_bob(db: &TestDb) -> Vec<String> {
    let bob = BareJid::new("bob@localhost").unwrap();
    db.open()
        .take_offline(&bob)
        .unwrap()
        .iter()
        .map(|m| m.attr("id").unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn sigkill_loses_no_message_acknowledged_by_stream_management_sqlite() {
    let dir = temp_dir("crash-sm");
    sm_storm(&TestDb::sqlite(&dir, "crash-sm.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_loses_no_message_acknowledged_by_stream_management_postgres() {
    if let Some(db) = TestDb::postgres() {
        sm_storm(&db);
    }
}

fn sm_storm(db: &TestDb) {
    const STORM: u32 = 90;
    const KILL_AT: u32 = 30;
    let (mut server, addr) = start(db);
    let mut alice = login_with(addr, "alice", true);
    // Counting starts with `<enable/>`: every stanza from here on is one of the messages.
    let deadline = Instant::now() + WAIT;
    while alice
        .machine()
        .as_client()
        .and_then(ClientStream::sm_state)
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "stream management was not enabled"
        );
        match alice.next_event(Duration::from_millis(50)) {
            Ok(_) | Err(xmpp_host::Error::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // All at once, each followed by `<r/>` (request_every 1): the server answers each `<r/>`
    // with what is durable then, while later messages are still on their way to the
    // database, so the kill comes with work in flight. (With the hub's `handled_by_host`
    // switched off, this failed 5 runs in 5 on each store: counted, not stored.)
    let mut sent = 0;
    while sent < STORM {
        let xml = format!(
            "<message xmlns='jabber:client' to='bob@localhost' id='msg-{sent}'><body>{sent}</body></message>"
        );
        alice.send(&parse(&xml)).unwrap();
        sent += 1;
    }
    let mut killed = false;
    let deadline = Instant::now() + WAIT;
    while !killed && Instant::now() < deadline {
        match alice.next_event(Duration::from_millis(1)) {
            Ok(_) | Err(xmpp_host::Error::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
        if acked(&alice) >= KILL_AT {
            server.kill().unwrap(); // SIGKILL
            killed = true;
        }
    }
    // Every acknowledgement the server sent before it died.
    while let Ok(Some(_)) = alice.next_event(Duration::from_millis(500)) {}
    let acked = acked(&alice);
    if !killed {
        server.kill().unwrap();
    }
    server.wait().unwrap();
    assert!(killed, "{KILL_AT} acknowledgements never came");
    drop(alice);

    // A new process on the same file: it stores nothing more by itself.
    let (mut server, _) = start(db);
    server.kill().unwrap();
    server.wait().unwrap();
    let ids = stored_for_bob(db);
    let expected: Vec<String> = (0..ids.len()).map(|i| format!("msg-{i}")).collect();
    assert_eq!(
        ids, expected,
        "stored messages are not a prefix of those sent, once each"
    );
    assert!(
        ids.len() >= usize::try_from(acked).unwrap(),
        "the server acknowledged {acked} messages and stored only {}",
        ids.len()
    );
    eprintln!(
        "crash (sm): {sent} of {STORM} messages sent, {acked} acknowledged, {} stored",
        ids.len()
    );
}
