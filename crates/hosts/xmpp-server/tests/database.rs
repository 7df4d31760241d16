//! The server on a database (`HubConfig::database`), SQLite and PostgreSQL: what clients were
//! told is stored survives a restart on the same database; account management works on it; a
//! stopped or frozen PostgreSQL, or a database locked by another writer, degrades into clear
//! stanza errors and bounded queues, never a hang nor a lost acknowledged write.
//!
//! The PostgreSQL tests run a private server (`xmpp_testpeers::PostgresServer`) and are
//! skipped (`SKIPPED: ` on standard error) where Debian's `postgresql` is not installed, or
//! fail there under `XMPP_INTEROP=require`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A host test: files, processes, the clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::{TestDb, error_condition, login, loopback, parse, runtime_config, temp_dir};
use xmpp_server::{HubConfig, ServerHandle};
use xmpp_stream::BareJid;

const WAIT: Duration = Duration::from_secs(10);

fn config(db: &TestDb) -> HubConfig {
    let mut hub = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw");
    hub.database = Some(db.location());
    hub
}

fn has_id(id: &'static str) -> impl Fn(&minidom::Element) -> bool {
    move |s| s.attr("id") == Some(id)
}

#[test]
fn roster_subscription_blocklist_and_offline_messages_survive_a_restart_sqlite() {
    let dir = temp_dir("database");
    survive_a_restart(&TestDb::sqlite(&dir, "server.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn roster_subscription_blocklist_and_offline_messages_survive_a_restart_postgres() {
    if let Some(db) = TestDb::postgres() {
        survive_a_restart(&db);
    }
}

fn survive_a_restart(path: &TestDb) {
    let server =
        ServerHandle::spawn(loopback(), runtime_config(config(path), "localhost")).unwrap();
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
        let mut db = path.open();
        assert_eq!(
            db.offline_count(&BareJid::new("bob@localhost").unwrap())
                .unwrap(),
            3
        );
    }

    // Same file, new process state.
    let server =
        ServerHandle::spawn(loopback(), runtime_config(config(path), "localhost")).unwrap();
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
    let mut db = path.open();
    assert_eq!(
        db.offline_count(&BareJid::new("bob@localhost").unwrap())
            .unwrap(),
        0
    );
}

/// `xmpp-server adduser/passwd/deluser` on a database file: the account logs in with the
/// password given (read from standard input), then with the new one, then not at all.
#[test]
fn adduser_passwd_deluser_sqlite() {
    let dir = temp_dir("accounts");
    adduser_passwd_deluser(&TestDb::sqlite(&dir, "accounts.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same on PostgreSQL; the URL's password is never printed.
#[test]
fn adduser_passwd_deluser_postgres() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    adduser_passwd_deluser(&db);
    // The URL with a password (trust authentication ignores it): printed without it.
    if let TestDb::Postgres(server) = &db {
        let url = server.url().replace("xmpp@", "xmpp:secret-url-pw@");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xmpp-server"))
            .args(["--db", &url, "deluser", "nobody"])
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success());
        assert!(printed.contains("no such account"), "{printed}");
        assert!(!printed.contains("secret-url-pw"), "{printed}");
        // Nor when the database cannot be reached: the error names the place only.
        let closed = url.replace(&format!(":{}/", server.port()), ":1/");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xmpp-server"))
            .args(["--db", &closed, "deluser", "nobody"])
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(printed.contains("127.0.0.1:1"), "{printed}");
        assert!(!printed.contains("secret-url-pw"), "{printed}");
    }
}

fn adduser_passwd_deluser(store: &TestDb) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let db = store.spec();
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
    let users = store.open().users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].0.as_str(), "carol@localhost");
    // Never the password: only salted keys (the account itself is found where it is looked
    // for).
    assert!(store.any_file_contains(b"carol@localhost"));
    assert!(!store.any_file_contains(b"carol-pw"));

    let mut hub = HubConfig::new(BareJid::new("localhost").unwrap());
    hub.database = Some(store.location());
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
    assert!(store.open().users().unwrap().is_empty());
}

fn roster_set(id: &str, contact: &str) -> minidom::Element {
    parse(&format!(
        "<iq xmlns='jabber:client' type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='{contact}@localhost'/></query></iq>"
    ))
}

fn contacts(db: &TestDb, user: &str) -> Vec<String> {
    db.open()
        .load(&BareJid::new(user).unwrap())
        .unwrap()
        .entries
        .iter()
        .map(|e| e.jid.to_string())
        .collect()
}

/// PostgreSQL stopped under a running server: each request fails at once with a clear
/// answer (a roster set `internal-server-error`, a message for an offline account bounced),
/// nothing hangs; started again, the server connects again by itself,
/// and what it had acknowledged before is there, what it refused is not.
#[test]
fn postgres_stopped_fails_requests_clearly_then_reconnects() {
    let Some(mut db) = TestDb::postgres() else {
        return;
    };
    let server = ServerHandle::spawn(loopback(), runtime_config(config(&db), "localhost")).unwrap();
    let mut alice = login(&server, "localhost", "alice", "desk", WAIT);
    alice.send(&roster_set("r1", "c1")).unwrap();
    let result = alice.wait_stanza(WAIT, has_id("r1")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");
    alice
        .send(&parse(
            "<message xmlns='jabber:client' to='bob@localhost' id='m1'><body>kept</body></message>",
        ))
        .unwrap();
    // Stored before the database stops (PostgreSQL is read while the server runs).
    let bob = BareJid::new("bob@localhost").unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while db.open().offline_count(&bob).unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "m1 never stored");
        std::thread::sleep(Duration::from_millis(20));
    }

    db.postgres_server().unwrap().stop();
    let started = std::time::Instant::now();
    alice.send(&roster_set("r2", "c2")).unwrap();
    let error = alice.wait_stanza(WAIT, has_id("r2")).unwrap();
    assert_eq!(
        error_condition(&error).as_deref(),
        Some("internal-server-error"),
        "{error:?}"
    );
    alice
        .send(&parse(
            "<message xmlns='jabber:client' to='bob@localhost' id='m2'><body>bounced</body></message>",
        ))
        .unwrap();
    // Bob's account cannot be read (internal-server-error), or his box cannot be written to
    // (a bounce, service-unavailable): either way, at once.
    let bounce = alice.wait_stanza(WAIT, has_id("m2")).unwrap();
    assert!(
        matches!(
            error_condition(&bounce).as_deref(),
            Some("internal-server-error" | "service-unavailable")
        ),
        "{bounce:?}"
    );
    // A refused connection is answered at once, not after a timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    db.postgres_server().unwrap().restart().unwrap();
    alice.send(&roster_set("r3", "c3")).unwrap();
    let result = alice.wait_stanza(WAIT, has_id("r3")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");
    drop(alice);
    server.stop().unwrap();

    assert_eq!(
        contacts(&db, "alice@localhost"),
        ["c1@localhost", "c3@localhost"]
    );
    let kept = db.open().take_offline(&bob).unwrap();
    assert_eq!(
        kept.iter()
            .map(|m| m.attr("id").unwrap())
            .collect::<Vec<_>>(),
        ["m1"]
    );
}

/// PostgreSQL frozen (`SIGSTOP`: connected, answering nothing, as an overloaded database)
/// under a storm of roster sets: the account's queue is bounded, and every set past the
/// bound is answered `resource-constraint` at once while the database is frozen. Thawed,
/// the queued sets are stored and answered: every set gets exactly one answer, every
/// acknowledged one is stored and no refused one is.
#[test]
fn postgres_frozen_bounds_the_queue_with_resource_constraint() {
    const SETS: usize = 400;
    let Some(mut db) = TestDb::postgres() else {
        return;
    };
    let server = ServerHandle::spawn(loopback(), runtime_config(config(&db), "localhost")).unwrap();
    let mut alice = login(&server, "localhost", "alice", "desk", WAIT);
    alice.send(&roster_set("warm", "c-warm")).unwrap();
    let result = alice.wait_stanza(WAIT, has_id("warm")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");

    db.postgres_server().unwrap().pause();
    for k in 0..SETS {
        alice
            .send(&roster_set(&format!("s{k}"), &format!("c{k}")))
            .unwrap();
    }
    // Answers while frozen: only refusals, and they come.
    let mut answers = std::collections::BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        match alice.next_event(Duration::from_millis(100)) {
            Ok(Some(xmpp_stream::Event::Stanza(s))) => {
                if let Some(k) = s.attr("id").and_then(|id| id.strip_prefix('s')) {
                    let k: usize = k.parse().unwrap();
                    assert_eq!(
                        error_condition(&s).as_deref(),
                        Some("resource-constraint"),
                        "answered while the database is frozen: {s:?}"
                    );
                    assert!(answers.insert(k, false).is_none(), "s{k} answered twice");
                }
            }
            Ok(_) | Err(xmpp_host::Error::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let refused = answers.len();
    assert!(refused > 0, "no set was refused: the queue is not bounded");
    assert!(refused < SETS, "every set was refused: nothing was queued");

    db.postgres_server().unwrap().resume();
    let thawed = std::time::Instant::now();
    let deadline = thawed + WAIT * 3;
    while answers.len() < SETS {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {SETS} sets answered after the thaw",
            answers.len()
        );
        if let Ok(Some(xmpp_stream::Event::Stanza(s))) =
            alice.next_event(Duration::from_millis(100))
            && let Some(k) = s.attr("id").and_then(|id| id.strip_prefix('s'))
        {
            let k: usize = k.parse().unwrap();
            let ok = s.attr("type") == Some("result");
            if !ok {
                assert_eq!(
                    error_condition(&s).as_deref(),
                    Some("resource-constraint"),
                    "{s:?}"
                );
            }
            assert!(answers.insert(k, ok).is_none(), "s{k} answered twice");
        }
    }
    let thaw = thawed.elapsed();
    drop(alice);
    server.stop().unwrap();
    let stored: std::collections::BTreeSet<String> =
        contacts(&db, "alice@localhost").into_iter().collect();
    for (k, ok) in &answers {
        assert_eq!(
            stored.contains(&format!("c{k}@localhost")),
            *ok,
            "s{k}: acknowledged {ok}, stored {}",
            !ok
        );
    }
    eprintln!(
        "frozen postgres: {refused} of {SETS} sets refused while frozen, {} stored, answered in {thaw:?} after the thaw",
        stored.len() - 1
    );
}

/// What the IM machine writes comes back as the same account (and as a `MemoryStore`
/// holding the same changes has it); credentials, never the password; offline messages
/// bounded, in order, taken once; deleting an account deletes everything; opening again
/// keeps the data and applies no migration twice. The same on both stores.
fn store_semantics(db: &TestDb) {
    use xmpp_im::privacy::{Limits, PrivacyList};
    use xmpp_im::{
        AccountData, Change, ContactState, MemoryStore, PrivacyData, RosterEntry, RosterStore,
        State,
    };
    use xmpp_sasl::{PasswordPrep, ScramHash, StoredCredentials};
    let bare = |s: &str| BareJid::new(s).unwrap();
    let mut store = db.open();
    assert_eq!(store.version().unwrap(), xmpp_server::db::MIGRATIONS.len());
    let alice = bare("alice@localhost");
    assert!(!store.has_user(&alice).unwrap());
    assert!(store.set_user(&alice, "pw", b"salt", 4096).unwrap());
    assert!(!store.set_user(&alice, "pw2", b"salt", 4096).unwrap());
    assert!(store.has_user(&alice).unwrap());
    assert!(!store.has_user(&bare("alicia@localhost")).unwrap());
    let mut mem = MemoryStore::new();
    mem.add_account(alice.clone());
    let mut entry = RosterEntry::new(bare("bob@localhost"));
    entry.name = Some("Bob".into());
    entry.groups = vec!["Friends".into(), "Work".into()];
    entry.in_roster = true;
    entry.state = ContactState {
        state: State::NonePendingIn,
        pre_approved: false,
    };
    entry.request = Some(parse(
        "<presence xmlns='jabber:client' type='subscribe' from='bob@localhost'><status>hi</status></presence>",
    ));
    let mut zed = RosterEntry::new(bare("zed@localhost"));
    zed.groups = vec!["Work".into()];
    zed.state = ContactState {
        state: State::Both,
        pre_approved: true,
    };
    let list = parse(
        "<list xmlns='jabber:iq:privacy' name='l'><item type='group' value='Work' action='deny' order='1'/><item action='allow' order='2'/></list>",
    );
    let privacy = PrivacyData {
        lists: vec![PrivacyList::parse(&list, &["Work".into()], &Limits::default()).unwrap()],
        default: Some("l".into()),
        blocked: vec![xmpp_jid::Jid::new("eve@localhost").unwrap()],
    };
    let changes = vec![
        Change::PutEntry {
            user: alice.clone(),
            entry: entry.clone(),
        },
        Change::PutEntry {
            user: alice.clone(),
            entry: zed,
        },
        Change::PutEntry {
            user: alice.clone(),
            entry: RosterEntry::new(bare("carol@localhost")),
        },
        Change::DeleteEntry {
            user: alice.clone(),
            contact: bare("carol@localhost"),
        },
        Change::Version {
            user: alice.clone(),
            version: 7,
        },
        Change::Privacy {
            user: alice.clone(),
            data: privacy,
        },
    ];
    store.write(&changes).unwrap();
    for c in changes {
        mem.apply(c);
    }
    let loaded = store.load(&alice).unwrap();
    assert_eq!(loaded, mem.load(&alice));
    assert_eq!(loaded.entries.len(), 2);
    assert_eq!(loaded.version, 7);
    assert_eq!(
        store.load(&bare("nobody@localhost")).unwrap(),
        AccountData::missing()
    );
    // A write that fails changes nothing (all or none): an entry for a missing account
    // violates the foreign key after a change that would have succeeded.
    let failing = [
        Change::Version {
            user: alice.clone(),
            version: 8,
        },
        Change::PutEntry {
            user: bare("nobody@localhost"),
            entry: RosterEntry::new(bare("x@localhost")),
        },
    ];
    assert!(store.write(&failing).is_err());
    assert_eq!(store.load(&alice).unwrap().version, 7);
    // Credentials, never the password.
    let users = store.users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].1.len(), ScramHash::ALL.len());
    let expected = StoredCredentials::derive(
        ScramHash::Sha256,
        "pw2",
        PasswordPrep::SaslPrep,
        b"salt",
        4096,
    )
    .unwrap();
    assert!(
        users[0]
            .1
            .iter()
            .any(|c| c.stored_key() == expected.stored_key())
    );
    // Offline messages: bounded, taken once, in order.
    let m = |i: u32| parse(&format!("<message xmlns='jabber:client' id='m{i}'/>"));
    assert!(store.store_offline(&alice, &m(1), 2).unwrap());
    assert!(store.store_offline(&alice, &m(2), 2).unwrap());
    assert!(!store.store_offline(&alice, &m(3), 2).unwrap());
    assert!(
        !store
            .store_offline(&bare("nobody@localhost"), &m(4), 2)
            .unwrap()
    );
    assert_eq!(store.offline_count(&alice).unwrap(), 2);
    drop(store);
    // Opened again: the same data, the same schema version.
    let mut store = db.open();
    assert_eq!(store.version().unwrap(), xmpp_server::db::MIGRATIONS.len());
    assert_eq!(store.load(&alice).unwrap(), mem.load(&alice));
    let taken = store.take_offline(&alice).unwrap();
    assert_eq!(
        taken
            .iter()
            .map(|e| e.attr("id").unwrap())
            .collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert!(store.take_offline(&alice).unwrap().is_empty());
    // Deleting the account deletes everything.
    assert!(store.store_offline(&alice, &m(5), 2).unwrap());
    assert!(store.delete_user(&alice).unwrap());
    assert_eq!(store.load(&alice).unwrap(), AccountData::missing());
    assert_eq!(store.offline_count(&alice).unwrap(), 0);
    assert!(store.users().unwrap().is_empty());
    assert!(!store.has_user(&alice).unwrap());
    assert!(!store.delete_user(&alice).unwrap());
}

#[test]
fn store_semantics_sqlite() {
    let dir = temp_dir("store");
    store_semantics(&TestDb::sqlite(&dir, "store.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn store_semantics_postgres() {
    assert_eq!(
        xmpp_server::db::postgres::PG_MIGRATIONS.len(),
        xmpp_server::db::MIGRATIONS.len(),
        "both stores number their schema versions alike"
    );
    if let Some(db) = TestDb::postgres() {
        store_semantics(&db);
    }
}

/// The database locked by another writer (a long transaction elsewhere, as with a slow disk
/// or a maintenance job): a write waits the lock timeout (5 s on both stores), then fails
/// clearly (`internal-server-error`), with no hang; once the lock is gone, writes are
/// acknowledged again, and what was acknowledged is there, what was refused is not.
fn locked_fails_writes_clearly_then_recovers(db: &TestDb) {
    let server = ServerHandle::spawn(loopback(), runtime_config(config(db), "localhost")).unwrap();
    let mut alice = login(&server, "localhost", "alice", "desk", WAIT);
    alice.send(&roster_set("r1", "c1")).unwrap();
    let result = alice.wait_stanza(WAIT, has_id("r1")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");

    // Another writer holds the lock until released.
    let release: Box<dyn FnOnce()> = match db.location() {
        xmpp_server::db::Location::Sqlite(path) => {
            let lock = rusqlite::Connection::open(&path).unwrap();
            lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
            Box::new(move || lock.execute_batch("ROLLBACK").unwrap())
        }
        xmpp_server::db::Location::Postgres(url) => {
            let mut lock = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            lock.batch_execute("BEGIN; LOCK TABLE roster IN ACCESS EXCLUSIVE MODE")
                .unwrap();
            Box::new(move || lock.batch_execute("ROLLBACK").unwrap())
        }
    };
    let started = std::time::Instant::now();
    alice.send(&roster_set("r2", "c2")).unwrap();
    let error = alice.wait_stanza(WAIT, has_id("r2")).unwrap();
    assert_eq!(
        error_condition(&error).as_deref(),
        Some("internal-server-error"),
        "{error:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    release();

    alice.send(&roster_set("r3", "c3")).unwrap();
    let result = alice.wait_stanza(WAIT, has_id("r3")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");
    drop(alice);
    server.stop().unwrap();
    assert_eq!(
        contacts(db, "alice@localhost"),
        ["c1@localhost", "c3@localhost"]
    );
}

#[test]
fn locked_database_fails_writes_clearly_then_recovers_sqlite() {
    let dir = temp_dir("locked");
    locked_fails_writes_clearly_then_recovers(&TestDb::sqlite(&dir, "locked.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn locked_database_fails_writes_clearly_then_recovers_postgres() {
    if let Some(db) = TestDb::postgres() {
        locked_fails_writes_clearly_then_recovers(&db);
    }
}
