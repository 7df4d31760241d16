//! The server on SQLite (`HubConfig::database`): what clients were told is stored survives a
//! restart on the same file; account management works on the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A host test: files, processes, the clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::{login, loopback, parse, runtime_config, temp_dir};
use xmpp_server::db::Db;
use xmpp_server::{HubConfig, ServerHandle};
use xmpp_stream::BareJid;

const WAIT: Duration = Duration::from_secs(10);

fn config(db: &std::path::Path) -> HubConfig {
    let mut hub = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw");
    hub.database = Some(db.to_owned());
    hub
}

fn has_id(id: &'static str) -> impl Fn(&minidom::Element) -> bool {
    move |s| s.attr("id") == Some(id)
}

#[test]
fn roster_subscription_blocklist_and_offline_messages_survive_a_restart() {
    let dir = temp_dir("database");
    let path = dir.join("server.db");
    let server =
        ServerHandle::spawn(loopback(), runtime_config(config(&path), "localhost")).unwrap();
    let mut alice = login(&server, "localhost", "alice", "desk", WAIT);
    alice
        .send(&parse(
            "<iq xmlns='jabber:client' type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>",
        ))
        .unwrap();
    let result = alice.wait_stanza(WAIT, has_id("r1")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");
    alice
        .send(&parse(
            "<iq xmlns='jabber:client' type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='eve@localhost'/></block></iq>",
        ))
        .unwrap();
    let result = alice.wait_stanza(WAIT, has_id("b1")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");
    // Bob is offline: the request waits in his roster, the message in his offline box.
    alice
        .send(&parse(
            "<presence xmlns='jabber:client' type='subscribe' to='bob@localhost'><status>it is alice</status></presence>",
        ))
        .unwrap();
    for i in 0..3 {
        alice
            .send(&parse(&format!(
                "<message xmlns='jabber:client' to='bob@localhost' id='m{i}'><body>offline {i}</body></message>"
            )))
            .unwrap();
    }
    // A round trip: everything sent before it was processed.
    alice
        .send(&parse(
            "<iq xmlns='jabber:client' type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>",
        ))
        .unwrap();
    let roster = alice.wait_stanza(WAIT, has_id("g1")).unwrap();
    assert!(
        String::from(&roster).contains("ask='subscribe'"),
        "{roster:?}"
    );
    drop(alice);
    server.stop().unwrap();
    {
        let db = Db::open(&path).unwrap();
        assert_eq!(
            db.offline_count(&BareJid::new("bob@localhost").unwrap())
                .unwrap(),
            3
        );
    }

    // Same file, new process state.
    let server =
        ServerHandle::spawn(loopback(), runtime_config(config(&path), "localhost")).unwrap();
    let mut bob = login(&server, "localhost", "bob", "phone", WAIT);
    let request = bob
        .wait_stanza(WAIT, |s| s.attr("type") == Some("subscribe"))
        .unwrap();
    assert_eq!(request.attr("from"), Some("alice@localhost"));
    assert!(String::from(&request).contains("it is alice"));
    for i in 0..3 {
        let id = format!("m{i}");
        let m = bob
            .wait_stanza(WAIT, |s| s.name() == "message" && s.attr("id") == Some(&id))
            .unwrap();
        assert_eq!(
            common::body(&m).as_deref(),
            Some(format!("offline {i}").as_str())
        );
    }
    let mut alice = login(&server, "localhost", "alice", "desk", WAIT);
    alice
        .send(&parse(
            "<iq xmlns='jabber:client' type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>",
        ))
        .unwrap();
    let roster = String::from(&alice.wait_stanza(WAIT, has_id("g2")).unwrap());
    assert!(roster.contains("name='Bob'"), "{roster}");
    assert!(roster.contains("Friends"), "{roster}");
    assert!(roster.contains("ask='subscribe'"), "{roster}");
    alice
        .send(&parse(
            "<iq xmlns='jabber:client' type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
        ))
        .unwrap();
    let list = String::from(&alice.wait_stanza(WAIT, has_id("bl")).unwrap());
    assert!(list.contains("eve@localhost"), "{list}");
    // Bob's box was emptied by delivering it.
    drop((alice, bob));
    server.stop().unwrap();
    let db = Db::open(&path).unwrap();
    assert_eq!(
        db.offline_count(&BareJid::new("bob@localhost").unwrap())
            .unwrap(),
        0
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `xmpp-server adduser/passwd/deluser` on a database file: the account logs in with the
/// password given (read from standard input), then with the new one, then not at all.
#[test]
fn adduser_passwd_deluser() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let dir = temp_dir("accounts");
    let db = format!("sqlite:{}", dir.join("accounts.db").display());
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xmpp-server"))
            .args(["--db", &db])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command that fails before reading its password closes stdin early: a broken
        // pipe here is its answer, read below.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(run(&["adduser", "carol"], "carol-pw\n").0);
    let (ok, err) = run(&["adduser", "carol"], "other\n");
    assert!(!ok && err.contains("exists"), "{err}");
    let path = dir.join("accounts.db");
    let users = Db::open(&path).unwrap().users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].0.as_str(), "carol@localhost");
    // Never the password: only salted keys.
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(8).any(|w| w == b"carol-pw"));

    let mut hub = HubConfig::new(BareJid::new("localhost").unwrap());
    hub.database = Some(path.clone());
    let server = ServerHandle::spawn(loopback(), runtime_config(hub.clone(), "localhost")).unwrap();
    drop(login(&server, "localhost", "carol", "r", WAIT));
    server.stop().unwrap();

    assert!(run(&["passwd", "carol", "second"], "").0);
    let (ok, err) = run(&["passwd", "nobody", "x"], "");
    assert!(!ok && err.contains("no such account"), "{err}");
    let server = ServerHandle::spawn(loopback(), runtime_config(hub.clone(), "localhost")).unwrap();
    let tls = xmpp_host::tls::client_config(
        &xmpp_host::tls::Trust::Pem(server.cert_pem.as_bytes().to_vec()),
        xmpp_host::tls::Versions::Any,
    )
    .unwrap();
    let options = xmpp_host::blocking::ClientOptions::new(server.addr, "localhost", tls);
    let try_login = |password: &str| {
        let config = xmpp_stream::ClientConfig::new(
            BareJid::new("carol@localhost").unwrap(),
            password.to_owned(),
        );
        xmpp_host::blocking::Connection::connect(&options, config, xmpp_host::OsEntropy::new())
            .and_then(|mut c| c.negotiate(WAIT))
            .is_ok()
    };
    assert!(!try_login("carol-pw"));
    assert!(try_login("second"));
    server.stop().unwrap();

    assert!(run(&["deluser", "carol"], "").0);
    assert!(Db::open(&path).unwrap().users().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
