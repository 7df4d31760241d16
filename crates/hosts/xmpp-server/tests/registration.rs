//! XEP-0077 in-band registration on the running server, over real sockets: off by default;
//! with `allow_registration` an account created by our client logs in at once (with the
//! database and without), a taken name is a `conflict`, and an authenticated client changes
//! its password and cancels its account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A host test: files, processes, the clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::{error_condition, loopback, parse, runtime_config, temp_dir};
use xmpp_host::Error;
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_server::db::{Db, Store};
use xmpp_server::{HubConfig, ServerHandle};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, FeatureKind, StanzaErrorCondition,
    StreamErrorCondition, register,
};

const WAIT: Duration = Duration::from_secs(20);

fn hub(registration: bool, db: Option<&std::path::Path>) -> HubConfig {
    let mut hub = HubConfig::new(BareJid::new("localhost").unwrap()).with_user("alice", "alice-pw");
    hub.stream.allow_registration = registration;
    hub.database = db.map(|path| xmpp_server::db::Location::Sqlite(path.to_owned()));
    hub
}

fn connect(
    server: &ServerHandle,
    user: &str,
    password: &str,
    register: bool,
) -> Result<Connection<ClientStream>, Error> {
    let tls = client_config(
        &Trust::Pem(server.cert_pem.as_bytes().to_vec()),
        Versions::Any,
    )?;
    let options = ClientOptions::new(server.addr, "localhost", tls);
    let mut config = ClientConfig::new(
        BareJid::new(&format!("{user}@localhost")).unwrap(),
        password,
    );
    config.register = register;
    let mut conn = Connection::connect(&options, config, OsEntropy::new())?;
    conn.negotiate(WAIT)?;
    Ok(conn)
}

fn closed_with(result: Result<Connection<ClientStream>, Error>) -> CloseReason {
    match result {
        Err(Error::Closed(reason)) => *reason,
        Err(other) => panic!("not closed: {other}"),
        Ok(_) => panic!("negotiated"),
    }
}

fn registers_and_logs_in(db: Option<&std::path::Path>) {
    let server =
        ServerHandle::spawn(loopback(), runtime_config(hub(true, db), "localhost")).unwrap();
    let mut romeo = connect(&server, "romeo", "wherefore", true).expect("registered and bound");
    romeo.close(WAIT).unwrap();
    // A new connection, no registration: the account is there.
    let mut again = connect(&server, "romeo", "wherefore", false).expect("logs in");
    again.close(WAIT).unwrap();
    assert!(matches!(
        closed_with(connect(&server, "romeo", "wrong", false)),
        CloseReason::AuthenticationFailed { .. }
    ));
    server.stop().unwrap();
}

#[test]
fn a_registered_account_logs_in_at_once_and_survives_a_restart() {
    let dir = temp_dir("registration");
    let path = dir.join("server.db");
    registers_and_logs_in(Some(&path));
    // Stored as adduser stores it: SCRAM credentials for every hash.
    let users = Db::open(&path).unwrap().users().unwrap();
    let romeo = BareJid::new("romeo@localhost").unwrap();
    let (_, credentials) = users.iter().find(|(jid, _)| *jid == romeo).expect("stored");
    assert_eq!(credentials.len(), xmpp_sasl::ScramHash::ALL.len());
    // And after a restart on the same file.
    let server = ServerHandle::spawn(
        loopback(),
        runtime_config(hub(false, Some(&path)), "localhost"),
    )
    .unwrap();
    let mut romeo = connect(&server, "romeo", "wherefore", false).expect("logs in after restart");
    romeo.close(WAIT).unwrap();
    server.stop().unwrap();
}

#[test]
fn a_registered_account_logs_in_without_a_database() {
    registers_and_logs_in(None);
}

#[test]
fn registration_is_off_by_default() {
    let server =
        ServerHandle::spawn(loopback(), runtime_config(hub(false, None), "localhost")).unwrap();
    assert_eq!(
        closed_with(connect(&server, "romeo", "wherefore", true)),
        CloseReason::FeatureMissing(FeatureKind::Register)
    );
    assert!(matches!(
        closed_with(connect(&server, "romeo", "wherefore", false)),
        CloseReason::AuthenticationFailed { .. }
    ));
    // After authentication the IQ is no registration either: the IM server's answer.
    let mut alice = connect(&server, "alice", "alice-pw", false).unwrap();
    alice.send(&register::cancel("c1")).unwrap();
    let answer = alice
        .wait_stanza(WAIT, |s| s.attr("id") == Some("c1"))
        .unwrap();
    assert_eq!(answer.attr("type"), Some("error"), "{answer:?}");
    alice.close(WAIT).unwrap();
    server.stop().unwrap();
}

#[test]
fn a_taken_name_is_a_conflict() {
    let server =
        ServerHandle::spawn(loopback(), runtime_config(hub(true, None), "localhost")).unwrap();
    match closed_with(connect(&server, "alice", "other-pw", true)) {
        CloseReason::RegistrationFailed(error) => {
            assert_eq!(error.condition, StanzaErrorCondition::Conflict);
        }
        other => panic!("{other:?}"),
    }
    // Alice's password is untouched.
    let mut alice = connect(&server, "alice", "alice-pw", false).unwrap();
    alice.close(WAIT).unwrap();
    server.stop().unwrap();
}

#[test]
fn password_change_and_cancellation() {
    let dir = temp_dir("registration-cancel");
    let path = dir.join("server.db");
    let server = ServerHandle::spawn(
        loopback(),
        runtime_config(hub(true, Some(&path)), "localhost"),
    )
    .unwrap();
    let mut romeo = connect(&server, "romeo", "first", true).unwrap();
    // The service says it supports registration.
    romeo
        .send(&parse(
            "<iq xmlns='jabber:client' type='get' id='d1' to='localhost'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        ))
        .unwrap();
    let info = romeo
        .wait_stanza(WAIT, |s| s.attr("id") == Some("d1"))
        .unwrap();
    assert!(
        String::from(&info).contains("var='jabber:iq:register'")
            || String::from(&info).contains("var=\"jabber:iq:register\""),
        "{info:?}"
    );
    // Another account's username: bad-request.
    romeo
        .send(&register::password_change("p0", "alice", "mine"))
        .unwrap();
    let answer = romeo
        .wait_stanza(WAIT, |s| s.attr("id") == Some("p0"))
        .unwrap();
    assert_eq!(error_condition(&answer).as_deref(), Some("bad-request"));
    romeo
        .send(&register::password_change("p1", "romeo", "second"))
        .unwrap();
    let answer = romeo
        .wait_stanza(WAIT, |s| s.attr("id") == Some("p1"))
        .unwrap();
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    assert!(matches!(
        closed_with(connect(&server, "romeo", "first", false)),
        CloseReason::AuthenticationFailed { .. }
    ));
    let mut other = connect(&server, "romeo", "second", false).expect("new password");
    // The registered entity asks for the fields: it learns it is registered.
    other
        .send(&parse(
            "<iq xmlns='jabber:client' type='get' id='f1'><query xmlns='jabber:iq:register'/></iq>",
        ))
        .unwrap();
    let fields = other
        .wait_stanza(WAIT, |s| s.attr("id") == Some("f1"))
        .unwrap();
    assert!(String::from(&fields).contains("registered"), "{fields:?}");
    // Cancellation: the result, then every session of the account ends `not-authorized`.
    romeo.send(&register::cancel("c1")).unwrap();
    let answer = romeo
        .wait_stanza(WAIT, |s| s.attr("id") == Some("c1"))
        .unwrap();
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    for conn in [&mut romeo, &mut other] {
        match conn.wait_stanza(WAIT, |_| false) {
            Err(Error::Closed(reason)) => assert!(
                matches!(&*reason, CloseReason::StreamError(e) if e.condition == StreamErrorCondition::NotAuthorized),
                "{reason:?}"
            ),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        closed_with(connect(&server, "romeo", "second", false)),
        CloseReason::AuthenticationFailed { .. }
    ));
    server.stop().unwrap();
    let users = Db::open(&path).unwrap().users().unwrap();
    assert!(
        !users
            .iter()
            .any(|(jid, _)| jid.as_str() == "romeo@localhost")
    );
}
