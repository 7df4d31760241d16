//! Blocking communication with our client's helpers (`xmpp_im::privacy::request`, in the
//! blocking driver) against real Prosody 0.12 and ejabberd 23.01 on loopback. Every wait is
//! bounded.
//!
//! - XEP-0191 blocking command (Prosody `mod_blocklist`, ejabberd `mod_blocking`): alice
//!   blocks bob (the blocklist then lists him), bob's message is not delivered, alice unblocks
//!   him, his next message is.
//! - XEP-0016 privacy lists, RFC 3921 §10 (Prosody `mod_privacy_lists` from Debian's
//!   `prosody-modules`, ejabberd `mod_privacy`): lists stored, listed, read back; an active
//!   list, then a default list, that deny bob's messages and presence: the peer server
//!   really stops them, and lets them through once the list is declined; the errors §10
//!   names; removal. Where a peer departs from RFC 3921 the test says so in [`departure`]
//!   and pins what it does instead.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use minidom::Element;
use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_im::Iq;
use xmpp_im::privacy::{
    Action, Kind, Limits, Matcher, NS_BLOCKING, NS_PRIVACY, PrivacyList, Rule, request,
};
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
/// included) go to `bodies`, and the `<status/>` of presence as `status:TEXT`, so that no
/// delivered message or status goes unnoticed.
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
                if s.name() == "presence"
                    && let Some(status) = s.get_child("status", "jabber:client")
                {
                    bodies.push(format!("status:{}", status.text()));
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

/// Send an iq request to the account and wait for its answer, `result` or `error`.
fn exchange(
    conn: &mut Connection<ClientStream>,
    bodies: &mut Vec<String>,
    iq: &Iq,
) -> Result<Element> {
    let id = iq.header.id.clone().unwrap_or_default();
    conn.send(&iq.to_element()).map_err(|e| e.to_string())?;
    wait(conn, bodies, |s| {
        s.name() == "iq"
            && s.attr("id") == Some(id.as_str())
            && matches!(s.attr("type"), Some("result" | "error"))
    })
    .map_err(|e| format!("iq {id}: {e}"))
}

/// [`exchange`], where only a `result` will do.
fn ask(conn: &mut Connection<ClientStream>, bodies: &mut Vec<String>, iq: &Iq) -> Result<Element> {
    let reply = exchange(conn, bodies, iq)?;
    if reply.attr("type") == Some("result") {
        Ok(reply)
    } else {
        Err(format!(
            "iq {} refused: {}",
            iq.header.id.as_deref().unwrap_or_default(),
            String::from(&reply)
        ))
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

fn scenario(_kind: PeerKind, server: &PeerServer) -> Result<()> {
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

const BLOCKING_ROW: &str =
    "XEP-0191 blocking: block (listed), blocked message not delivered, unblock, delivered";
const PRIVACY_ROW: &str = "XEP-0016 privacy lists: stored, listed, read back; active and default lists stop bob's messages and presence until declined; §10 errors; removal";

/// Starts `kind` with `options` and accounts alice and bob, runs `scenario`, records the
/// matrix `row`.
fn run(
    kind: PeerKind,
    options: &PeerOptions,
    row: &str,
    scenario: fn(PeerKind, &PeerServer) -> Result<()>,
) {
    let Some(server) = start_for_test_with(kind, &[("alice", "pw-a"), ("bob", "pw-b")], options)
    else {
        return;
    };
    let outcome = scenario(kind, &server);
    xmpp_host::matrix::record(&kind.to_string().to_lowercase(), row, outcome.is_ok());
    if let Err(e) = outcome {
        panic!("{}", server.failure(&e));
    }
}

#[test]
fn prosody_blocks_and_unblocks_a_contact() {
    run(
        PeerKind::Prosody,
        &PeerOptions::new().with_blocking(),
        BLOCKING_ROW,
        scenario,
    );
}

#[test]
fn ejabberd_blocks_and_unblocks_a_contact() {
    run(
        PeerKind::Ejabberd,
        &PeerOptions::new().with_blocking(),
        BLOCKING_ROW,
        scenario,
    );
}

// ----- XEP-0016 privacy lists (RFC 3921 §10) -----

/// Where `kind` departs from RFC 3921 §10 in the check named `check`: the stanza error it
/// answers instead of the one the RFC names, and why. Our side is not changed for it.
fn departure(kind: PeerKind, check: &str) -> Option<(&'static str, &'static str)> {
    match (kind, check) {
        (PeerKind::Ejabberd, "remove the active list of another resource (§10.8)") => {
            Some(("result", "mod_privacy 23.01 removes it anyway"))
        }
        (PeerKind::Ejabberd, "remove an unknown list (§10.8)") => Some((
            "result",
            "mod_privacy 23.01 acknowledges the removal of a list it lacks",
        )),
        (
            PeerKind::Ejabberd,
            "change the default another resource uses (§10.5)"
            | "decline the default another resource uses (§10.5)",
        ) => Some((
            "result",
            "mod_privacy 23.01 never checks the other sessions before changing the default",
        )),
        (PeerKind::Prosody, "remove an unknown list (§10.8)") => Some((
            "bad-request",
            "mod_privacy_lists answers the removal of a list it lacks so",
        )),
        _ => None,
    }
}

/// The stanza error condition of an iq `error` answer.
fn condition(reply: &Element) -> Option<String> {
    let error = reply.get_child("error", "jabber:client")?;
    error
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// Ask `iq` of the account and check the answer: `rfc` is what RFC 3921 §10 prescribes
/// (`result`, or the stanza error condition). A peer's documented [`departure`] is
/// accepted and printed. The answer's type or condition comes back.
fn expect(
    kind: PeerKind,
    check: &str,
    conn: &mut Connection<ClientStream>,
    bodies: &mut Vec<String>,
    iq: &Iq,
    rfc: &str,
) -> Result<String> {
    let reply = exchange(conn, bodies, iq)?;
    let got = if reply.attr("type") == Some("result") {
        "result".to_owned()
    } else {
        condition(&reply).unwrap_or_else(|| "(no condition)".to_owned())
    };
    if got == rfc {
        return Ok(got);
    }
    match departure(kind, check) {
        Some((instead, why)) if got == instead => {
            eprintln!(
                "{kind} departs from RFC 3921 in {check}: {instead} instead of {rfc} ({why})"
            );
            Ok(got)
        }
        _ => Err(format!(
            "{check}: RFC 3921 §10 says {rfc}, {kind} answered {}",
            String::from(&reply)
        )),
    }
}

fn list_names(reply: &Element) -> Vec<String> {
    reply
        .get_child("query", NS_PRIVACY)
        .map(|q| {
            q.children()
                .filter(|c| c.is("list", NS_PRIVACY))
                .filter_map(|c| c.attr("name").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn presence_to(to: &FullJid, status: &str) -> Element {
    format!("<presence xmlns='jabber:client' to='{to}'><status>{status}</status></presence>")
        .parse()
        .unwrap()
}

/// bob's message and directed presence to alice's first resource, then his ping: once the
/// ping is answered, both have been routed (delivered or stopped).
fn bob_says(
    bob: &mut Connection<ClientStream>,
    to: &FullJid,
    what: &str,
    domain: &str,
) -> Result<()> {
    bob.send(&presence_to(to, what))
        .map_err(|e| e.to_string())?;
    bob.send(&chat(to, what)).map_err(|e| e.to_string())?;
    ping(bob, domain)
}

/// alice's first resource waits for bob's message `what` (his presence with that status
/// was sent just before it).
fn alice_hears(
    alice: &mut Connection<ClientStream>,
    bodies: &mut Vec<String>,
    what: &str,
) -> Result<()> {
    wait(alice, bodies, |s| {
        s.name() == "message"
            && s.attr("from").is_some_and(|f| f.starts_with("bob@"))
            && s.get_child("body", "jabber:client")
                .is_some_and(|b| b.text() == what)
    })
    .map(drop)
    .map_err(|e| format!("bob's {what:?} never reached alice: {e}"))
}

#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn privacy_scenario(kind: PeerKind, server: &PeerServer) -> Result<()> {
    let (mut one, one_jid) = login(server, "alice", "pw-a")?;
    let (mut two, _) = login(server, "alice", "pw-a")?;
    let (mut bob, _) = login(server, "bob", "pw-b")?;
    let domain = server.domain.clone();
    let bob_bare: Jid = format!("bob@{domain}")
        .parse()
        .map_err(|e| format!("{e:?}"))?;
    // Everything alice's first resource receives from bob, in order; the second's.
    let mut heard = Vec::new();
    let mut other = Vec::new();

    // Two lists: one denying bob's messages and presence notifications, one open.
    let nobob = PrivacyList {
        name: "nobob".into(),
        rules: vec![
            Rule::new(Matcher::Jid(bob_bare.clone()), Action::Deny, 1)
                .only(&[Kind::Message, Kind::PresenceIn]),
        ],
    };
    let open = PrivacyList {
        name: "open".into(),
        rules: vec![Rule::new(Matcher::All, Action::Allow, 1)],
    };
    ask(
        &mut one,
        &mut heard,
        &Iq::set("edit-1", request::edit(&nobob)),
    )?;
    ask(
        &mut one,
        &mut heard,
        &Iq::set("edit-2", request::edit(&open)),
    )?;
    let names = list_names(&ask(
        &mut one,
        &mut heard,
        &Iq::get("names-1", request::lists(None)),
    )?);
    if !(names.contains(&"nobob".to_owned()) && names.contains(&"open".to_owned())) {
        return Err(format!("lists after edits: {names:?}"));
    }
    let read = ask(
        &mut one,
        &mut heard,
        &Iq::get("read-1", request::lists(Some("nobob"))),
    )?;
    let list = read
        .get_child("query", NS_PRIVACY)
        .and_then(|q| q.get_child("list", NS_PRIVACY))
        .ok_or_else(|| format!("no list in {}", String::from(&read)))?;
    let back = PrivacyList::parse(list, &[], &Limits::default()).map_err(|e| {
        format!(
            "list read back does not parse ({e:?}): {}",
            String::from(&read)
        )
    })?;
    if back != nobob {
        return Err(format!("list read back: {back:?}"));
    }

    // Active list on the first resource: bob's message and presence to it are stopped.
    ask(
        &mut one,
        &mut heard,
        &Iq::set("active-1", request::choose("active", Some("nobob"))),
    )?;
    bob_says(&mut bob, &one_jid, "while-active", &domain)?;

    // The errors of RFC 3921 §10.
    let removed = expect(
        kind,
        "remove the active list of another resource (§10.8)",
        &mut two,
        &mut other,
        &Iq::set("err-1", request::remove("nobob")),
        "conflict",
    )?;
    if removed == "result" {
        // The departure removed it: store it again for what follows.
        ask(
            &mut one,
            &mut heard,
            &Iq::set("edit-3", request::edit(&nobob)),
        )?;
    }
    expect(
        kind,
        "activate an unknown list (§10.4)",
        &mut one,
        &mut heard,
        &Iq::set("err-2", request::choose("active", Some("nope"))),
        "item-not-found",
    )?;
    expect(
        kind,
        "make an unknown list the default (§10.5)",
        &mut one,
        &mut heard,
        &Iq::set("err-3", request::choose("default", Some("nope"))),
        "item-not-found",
    )?;
    expect(
        kind,
        "retrieve an unknown list (§10.3)",
        &mut one,
        &mut heard,
        &Iq::get("err-4", request::lists(Some("nope"))),
        "item-not-found",
    )?;
    expect(
        kind,
        "remove an unknown list (§10.8)",
        &mut one,
        &mut heard,
        &Iq::set("err-5", request::remove("nope")),
        "item-not-found",
    )?;

    // Declined: bob gets through again.
    ask(
        &mut one,
        &mut heard,
        &Iq::set("active-2", request::choose("active", None)),
    )?;
    bob_says(&mut bob, &one_jid, "after-active", &domain)?;
    alice_hears(&mut one, &mut heard, "after-active")?;

    // The same list as the default: the second resource has an active list of its own, so
    // no other resource uses the default and setting it is no conflict (§10.5). The first
    // resource, without an active list, is then under the default.
    ask(
        &mut two,
        &mut other,
        &Iq::set("active-3", request::choose("active", Some("open"))),
    )?;
    expect(
        kind,
        "set a default no other resource uses (§10.5)",
        &mut one,
        &mut heard,
        &Iq::set("default-1", request::choose("default", Some("nobob"))),
        "result",
    )?;
    bob_says(&mut bob, &one_jid, "while-default", &domain)?;
    // The second resource declines its active list: it now relies on the default, which
    // can be neither changed nor declined by the first (§10.5).
    ask(
        &mut two,
        &mut other,
        &Iq::set("active-4", request::choose("active", None)),
    )?;
    expect(
        kind,
        "change the default another resource uses (§10.5)",
        &mut one,
        &mut heard,
        &Iq::set("err-6", request::choose("default", Some("open"))),
        "conflict",
    )?;
    expect(
        kind,
        "decline the default another resource uses (§10.5)",
        &mut one,
        &mut heard,
        &Iq::set("err-7", request::choose("default", None)),
        "conflict",
    )?;
    ask(
        &mut two,
        &mut other,
        &Iq::set("active-5", request::choose("active", Some("open"))),
    )?;
    ask(
        &mut one,
        &mut heard,
        &Iq::set("default-2", request::choose("default", None)),
    )?;
    bob_says(&mut bob, &one_jid, "after-default", &domain)?;
    alice_hears(&mut one, &mut heard, "after-default")?;

    // Removal: gone from the names.
    ask(
        &mut two,
        &mut other,
        &Iq::set("active-6", request::choose("active", None)),
    )?;
    ask(
        &mut one,
        &mut heard,
        &Iq::set("remove-1", request::remove("nobob")),
    )?;
    let names = list_names(&ask(
        &mut one,
        &mut heard,
        &Iq::get("names-2", request::lists(None)),
    )?);
    if names.contains(&"nobob".to_owned()) {
        return Err(format!("lists after removal: {names:?}"));
    }

    // What bob's messages and presence brought the first resource: only what was sent while
    // no list stopped him.
    let expected = [
        "status:after-active",
        "after-active",
        "status:after-default",
        "after-default",
    ];
    if heard != expected {
        return Err(format!("alice's first resource received {heard:?}"));
    }
    for conn in [&mut one, &mut two, &mut bob] {
        let _ = conn.close(WAIT);
    }
    Ok(())
}

#[test]
fn prosody_privacy_lists_block_and_unblock() {
    run(
        PeerKind::Prosody,
        &PeerOptions::new().with_privacy_lists(),
        PRIVACY_ROW,
        privacy_scenario,
    );
}

#[test]
fn ejabberd_privacy_lists_block_and_unblock() {
    run(
        PeerKind::Ejabberd,
        &PeerOptions::new().with_privacy_lists(),
        PRIVACY_ROW,
        privacy_scenario,
    );
}
