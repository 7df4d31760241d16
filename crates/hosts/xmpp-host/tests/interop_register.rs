//! XEP-0077 in-band registration by our client (`ClientConfig::register`, in the blocking
//! driver) against real Prosody (`mod_register`, `allow_registration = true`) and ejabberd
//! (`mod_register` with an `access` rule allowing all) on loopback: the account is created
//! before SASL and the stream goes on to bind; a new connection logs in with it; a second
//! registration of the name is a `conflict`; the password is changed (§3.3) and the account
//! cancelled (§3.2) with the `xmpp_stream::register` builders. Every wait is bounded. Skips
//! (`SKIPPED: `) when the peer is missing, fails under `XMPP_INTEROP=require`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_host::{Error, OsEntropy};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, Event, StanzaErrorCondition, register,
};
use xmpp_testpeers::{PeerKind, PeerOptions, PeerServer, start_for_test_with};

const WAIT: Duration = Duration::from_secs(15);

type Result<T> = std::result::Result<T, String>;

fn connect(
    server: &PeerServer,
    user: &str,
    password: &str,
    register: bool,
) -> std::result::Result<(Connection<ClientStream>, Vec<Event>), Error> {
    let tls = client_config(
        &Trust::Pem(server.certificate_pem.clone().into_bytes()),
        Versions::Any,
    )?;
    let options = ClientOptions::new(
        SocketAddr::from((Ipv4Addr::LOCALHOST, server.starttls_port)),
        &server.domain,
        tls,
    );
    let jid = BareJid::new(&format!("{user}@{}", server.domain)).unwrap();
    let mut config = ClientConfig::new(jid, password);
    config.register = register;
    let mut conn = Connection::connect(&options, config, OsEntropy::new())?;
    let mut events = Vec::new();
    loop {
        match conn.next_event(WAIT)? {
            Some(Event::Closed { reason }) => return Err(Error::Closed(Box::new(reason))),
            Some(event @ Event::Negotiated { .. }) => {
                events.push(event);
                return Ok((conn, events));
            }
            Some(event) => events.push(event),
            None => return Err(Error::Closed(Box::new(CloseReason::TransportClosed))),
        }
    }
}

fn answer(conn: &mut Connection<ClientStream>, id: &str) -> Result<minidom::Element> {
    conn.wait_stanza(WAIT, |s| s.name() == "iq" && s.attr("id") == Some(id))
        .map_err(|e| format!("iq {id}: {e}"))
}

fn scenario(server: &PeerServer) -> Result<()> {
    // Registered, then authenticated and bound on the same stream.
    let (mut romeo, events) =
        connect(server, "romeo", "wherefore", true).map_err(|e| format!("register: {e}"))?;
    let registered = events
        .iter()
        .position(|e| matches!(e, Event::Registered { .. }));
    let authenticated = events
        .iter()
        .position(|e| matches!(e, Event::Authenticated { .. }));
    match (registered, authenticated) {
        (Some(r), Some(a)) if r < a => {}
        _ => return Err(format!("registered then authenticated? {events:?}")),
    }
    // A new connection logs in with it.
    let (mut again, _) =
        connect(server, "romeo", "wherefore", false).map_err(|e| format!("login: {e}"))?;
    // The name is taken now.
    match connect(server, "romeo", "other", true) {
        Err(Error::Closed(reason)) => match *reason {
            CloseReason::RegistrationFailed(error)
                if error.condition == StanzaErrorCondition::Conflict => {}
            other => return Err(format!("second registration: {other:?}")),
        },
        Err(e) => return Err(format!("second registration: {e}")),
        Ok(_) => return Err("a taken name was registered again".to_owned()),
    }
    // Password change (§3.3): the old one no longer logs in, the new one does.
    romeo
        .send(&register::password_change("p1", "romeo", "thou-art"))
        .map_err(|e| e.to_string())?;
    let changed = answer(&mut romeo, "p1")?;
    if register::outcome(&changed) != Some(Ok(())) {
        return Err(format!("password change: {}", String::from(&changed)));
    }
    drop(again.close(WAIT));
    match connect(server, "romeo", "wherefore", false) {
        Err(Error::Closed(reason))
            if matches!(*reason, CloseReason::AuthenticationFailed { .. }) => {}
        other => return Err(format!("old password: {:?}", other.map(|_| ()))),
    }
    let (mut renewed, _) =
        connect(server, "romeo", "thou-art", false).map_err(|e| format!("new password: {e}"))?;
    drop(renewed.close(WAIT));
    // Cancellation (§3.2): the result (or, as the XEP allows, the stream's end), then the
    // account is gone.
    romeo
        .send(&register::cancel("c1"))
        .map_err(|e| e.to_string())?;
    match romeo.wait_stanza(WAIT, |s| s.name() == "iq" && s.attr("id") == Some("c1")) {
        Ok(reply) if register::outcome(&reply) == Some(Ok(())) => {}
        Ok(reply) => return Err(format!("cancel: {}", String::from(&reply))),
        Err(Error::Closed(_)) => {}
        Err(e) => return Err(format!("cancel: {e}")),
    }
    match connect(server, "romeo", "thou-art", false) {
        Err(Error::Closed(reason))
            if matches!(*reason, CloseReason::AuthenticationFailed { .. }) =>
        {
            Ok(())
        }
        other => Err(format!("after cancel: {:?}", other.map(|_| ()))),
    }
}

fn run(kind: PeerKind) {
    let Some(server) = start_for_test_with(kind, &[], &PeerOptions::new().with_registration())
    else {
        return;
    };
    let outcome = scenario(&server);
    xmpp_host::matrix::record(
        &kind.to_string().to_lowercase(),
        "XEP-0077 in-band registration",
        outcome.is_ok(),
    );
    if let Err(e) = outcome {
        panic!("{}", server.failure(&e));
    }
}

#[test]
fn our_client_registers_on_prosody() {
    run(PeerKind::Prosody);
}

#[test]
fn our_client_registers_on_ejabberd() {
    run(PeerKind::Ejabberd);
}
