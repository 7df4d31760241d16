//! XEP-0191 blocking command: our client's helpers (`xmpp_im::privacy::request`, in the
//! blocking driver) against real Prosody 0.12 (`mod_blocklist`) and ejabberd 23.01
//! (`mod_blocking`) on loopback. alice blocks bob (the blocklist then lists him), bob's
//! message is not delivered, alice unblocks him, his next message is. Every wait is bounded.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use minidom::Element;
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_im::Iq;
use xmpp_im::privacy::{NS_BLOCKING, request};
use xmpp_stream::{BareJid, ClientConfig, ClientStream, Event, FullJid, Jid};
use xmpp_testpeers::{PeerKind, PeerOptions, PeerServer, start_for_test_with};

const WAIT: Duration = Duration::from_secs(10);

type Result<T> = std::result::Result<T, String>;

fn login(
    server: &PeerServer,
    user: &str,
    password: &str,
) -> Result<(Connection<ClientStream>, FullJid)> {
    let tls = client_config(
        &Trust::Pem(server.certificate_pem.clone().into_bytes()),
        Versions::Any,
    )
    .map_err(|e| e.to_string())?;
    let options = ClientOptions::new(
        SocketAddr::from((Ipv4Addr::LOCALHOST, server.starttls_port)),
        &server.domain,
        tls,
    );
    let jid = BareJid::new(&format!("{user}@{}", server.domain)).map_err(|e| e.to_string())?;
    let mut conn =
        Connection::connect(&options, ClientConfig::new(jid, password), OsEntropy::new())
            .map_err(|e| e.to_string())?;
    let full = conn.negotiate(WAIT).map_err(|e| format!("{user}: {e}"))?;
    let presence: Element = "<presence xmlns='jabber:client'/>".parse().unwrap();
    conn.send(&presence).map_err(|e| e.to_string())?;
    Ok((conn, full))
}

/// Read until a stanza `accept` likes; the bodies of the messages seen on the way (that one
/// included) go to `bodies`, so that no delivered message goes unnoticed.
fn wait(
    conn: &mut Connection<ClientStream>,
    bodies: &mut Vec<String>,
    accept: impl Fn(&Element) -> bool,
) -> Result<Element> {
    loop {
        match conn.next_event(WAIT) {
            Ok(Some(Event::Stanza(s))) => {
                if s.name() == "message"
                    && let Some(body) = s.get_child("body", "jabber:client")
                {
                    bodies.push(body.text());
                }
                if accept(&s) {
                    return Ok(s);
                }
            }
            Ok(Some(Event::Closed { reason })) => return Err(format!("closed: {reason:?}")),
            Ok(Some(_)) => {}
            Ok(None) => return Err("closed".to_owned()),
            Err(e) => return Err(format!("{e}; messages so far {bodies:?}")),
        }
    }
}

/// Send an iq request to the account and wait for its answer (a `result`, or an error).
fn ask(conn: &mut Connection<ClientStream>, bodies: &mut Vec<String>, iq: &Iq) -> Result<Element> {
    let id = iq.header.id.clone().unwrap_or_default();
    conn.send(&iq.to_element()).map_err(|e| e.to_string())?;
    let reply = wait(conn, bodies, |s| {
        s.name() == "iq"
            && s.attr("id") == Some(id.as_str())
            && matches!(s.attr("type"), Some("result" | "error"))
    })
    .map_err(|e| format!("iq {id}: {e}"))?;
    if reply.attr("type") == Some("result") {
        Ok(reply)
    } else {
        Err(format!("iq {id} refused: {}", String::from(&reply)))
    }
}

fn chat(to: &FullJid, body: &str) -> Element {
    format!("<message xmlns='jabber:client' type='chat' to='{to}'><body>{body}</body></message>")
        .parse()
        .unwrap()
}

/// bob's stanzas so far have been routed once the server answers his ping.
fn ping(conn: &mut Connection<ClientStream>, domain: &str) -> Result<()> {
    let ping: Element = format!(
        "<iq xmlns='jabber:client' type='get' id='bob-ping' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    .parse()
    .unwrap();
    conn.send(&ping).map_err(|e| e.to_string())?;
    wait(conn, &mut Vec::new(), |s| s.attr("id") == Some("bob-ping"))
        .map(drop)
        .map_err(|e| format!("ping: {e}"))
}

fn scenario(server: &PeerServer) -> Result<()> {
    let (mut alice, alice_jid) = login(server, "alice", "pw-a")?;
    let (mut bob, _) = login(server, "bob", "pw-b")?;
    let bob_bare: Jid = format!("bob@{}", server.domain)
        .parse()
        .map_err(|e| format!("{e:?}"))?;

    // Every message body alice receives, in order.
    let mut bodies = Vec::new();
    ask(
        &mut alice,
        &mut bodies,
        &Iq::set("block-1", request::block([&bob_bare])),
    )?;
    let list = ask(
        &mut alice,
        &mut bodies,
        &Iq::get("list-1", request::blocklist()),
    )?;
    let listed: Vec<&str> = list
        .get_child("blocklist", NS_BLOCKING)
        .map(|l| l.children().filter_map(|i| i.attr("jid")).collect())
        .unwrap_or_default();
    if listed != [bob_bare.to_string().as_str()] {
        return Err(format!("blocklist after block: {}", String::from(&list)));
    }

    bob.send(&chat(&alice_jid, "while-blocked"))
        .map_err(|e| e.to_string())?;
    ping(&mut bob, &server.domain)?;

    ask(
        &mut alice,
        &mut bodies,
        &Iq::set("unblock-1", request::unblock([&bob_bare])),
    )?;
    bob.send(&chat(&alice_jid, "after-unblock"))
        .map_err(|e| e.to_string())?;
    wait(&mut alice, &mut bodies, |s| {
        s.name() == "message" && s.attr("from").is_some_and(|f| f.starts_with("bob@"))
    })
    .map_err(|e| format!("no message after unblock: {e}"))?;
    // Only the message sent after the unblock reached alice.
    if bodies != ["after-unblock"] {
        return Err(format!("alice received {bodies:?}"));
    }
    let _ = alice.close(WAIT);
    let _ = bob.close(WAIT);
    Ok(())
}

fn run(kind: PeerKind) {
    let Some(server) = start_for_test_with(
        kind,
        &[("alice", "pw-a"), ("bob", "pw-b")],
        &PeerOptions::new().with_blocking(),
    ) else {
        return;
    };
    let outcome = scenario(&server);
    xmpp_host::matrix::record(
        &kind.to_string().to_lowercase(),
        "XEP-0191 blocking: block (listed), blocked message not delivered, unblock, delivered",
        outcome.is_ok(),
    );
    if let Err(e) = outcome {
        panic!("{}", server.failure(&e));
    }
}

#[test]
fn prosody_blocks_and_unblocks_a_contact() {
    run(PeerKind::Prosody);
}

#[test]
fn ejabberd_blocks_and_unblocks_a_contact() {
    run(PeerKind::Ejabberd);
}
