//! Our client (`ClientStream` in the blocking driver) against real Prosody 0.12 and ejabberd
//! 23.01 on loopback, started once per server by `xmpp-testpeers`. Each server's scenarios run
//! in sequence in one test function; every scenario appends a row to the interop matrix
//! (`cargo run -p xmpp-host --example matrix` prints it). Every wait is bounded.
//!
//! Run with `XMPP_INTEROP=require cargo test -p xmpp-host --test interop_client`; add
//! `XMPP_RECORD=1` to rewrite the transcripts under `testdata/transcripts/real/`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use minidom::Element;
use xmpp_host::asynchronous::AsyncConnection;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_host::{Error, OsEntropy, matrix, mechanism_family};
use xmpp_stream::transcript::{Role, Transcript};
use xmpp_stream::{BareJid, ClientConfig, ClientStream, CloseReason, Event, FullJid};
use xmpp_testpeers::{PeerKind, PeerServer, start_for_test};

const WAIT: Duration = Duration::from_secs(10);
const NS: &str = "jabber:client";
const ROSTER: &str = "jabber:iq:roster";
/// Prefix of a scenario error meaning the server does not offer what the scenario needs.
const NOT_OFFERED: &str = "not offered: ";

struct Peer {
    server: PeerServer,
    name: &'static str,
    failures: Vec<String>,
}

/// How to log in.
#[derive(Clone, Copy, Default)]
struct Login<'a> {
    direct_tls: bool,
    mechanism: Option<&'a str>,
    tls12_only: bool,
    resource: Option<&'a str>,
}

/// A negotiated (or failed) session with what it saw on the way.
struct Session {
    conn: Connection<ClientStream>,
    events: Vec<Event>,
    result: Result<FullJid, Error>,
}

impl Session {
    fn mechanism(&self) -> Option<String> {
        self.events.iter().find_map(|e| match e {
            Event::Authenticated { mechanism, .. } => Some(mechanism.to_string()),
            _ => None,
        })
    }

    /// The GS2 header flag of the SCRAM initial response we sent (`n`, `y` or `p`).
    fn gs2_flag(&self) -> Option<char> {
        let transcript = self.conn.transcript()?;
        let line = transcript.lines().find(|l| l.contains(" C: <auth "))?;
        let start = line.find('>')? + 1;
        let end = line.find("</auth>")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&line[start..end])
            .ok()?;
        decoded.first().map(|b| char::from(*b))
    }

    fn jid(&self) -> Result<FullJid, String> {
        match &self.result {
            Ok(jid) => Ok(jid.clone()),
            Err(e) => Err(format!(
                "login failed: {e}\n{}",
                tail(&self.conn.transcript().unwrap_or_default(), 12)
            )),
        }
    }
}

fn stanza(name: &str) -> minidom::ElementBuilder {
    Element::builder(name, NS)
}

impl Peer {
    fn start(kind: PeerKind) -> Option<Peer> {
        let server = start_for_test(kind, &[("alice", "pw-a"), ("bob", "pw-b")])?;
        let name = match kind {
            PeerKind::Prosody => "prosody",
            PeerKind::Ejabberd => "ejabberd",
        };
        Some(Peer {
            server,
            name,
            failures: Vec::new(),
        })
    }

    fn login(&self, user: &str, password: &str, how: Login<'_>) -> Session {
        let tls = client_config(
            &Trust::Pem(self.server.certificate_pem.clone().into_bytes()),
            if how.tls12_only {
                Versions::Tls12Only
            } else {
                Versions::Any
            },
        )
        .unwrap();
        let port = if how.direct_tls {
            self.server.direct_tls_port
        } else {
            self.server.starttls_port
        };
        let mut options = ClientOptions::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            &self.server.domain,
            tls,
        );
        options.direct_tls = how.direct_tls;
        let jid = BareJid::new(&format!("{user}@{}", self.server.domain)).unwrap();
        let mut config = ClientConfig::new(jid, password);
        config.resource = how.resource.map(str::to_owned);
        if let Some(mechanism) = how.mechanism {
            config.mechanisms = mechanism_family(mechanism).unwrap();
        }
        let comment = format!(
            "Recorded against a real {} by crates/hosts/xmpp-host/tests/interop_client.rs: {user}, {}, {}{}.\nReplayed as the client by crates/hosts/xmpp-host/tests/replay_real.rs.",
            match self.name {
                "prosody" => "Prosody 0.12",
                _ => "ejabberd 23.01",
            },
            if how.direct_tls {
                "direct TLS"
            } else {
                "STARTTLS"
            },
            how.mechanism.unwrap_or("strongest mechanism offered"),
            if how.tls12_only { ", TLS 1.2" } else { "" },
        );
        let mut conn =
            Connection::connect_recorded(&options, config, &comment).unwrap_or_else(|e| {
                panic!(
                    "{}: connect: {e}\n--- server log tail ---\n{}",
                    self.name,
                    tail(&self.server.log(), 200)
                )
            });
        let mut events = Vec::new();
        let result = loop {
            match conn.next_event(WAIT) {
                Ok(Some(Event::Negotiated { jid, .. })) => break Ok(jid),
                Ok(Some(Event::Closed { reason })) => break Err(Error::from(reason)),
                Ok(Some(event)) => events.push(event),
                Ok(None) => break Err(Error::from(CloseReason::TransportClosed)),
                Err(e) => break Err(e),
            }
        };
        Session {
            conn,
            events,
            result,
        }
    }

    /// Run one scenario and put its row in the matrix.
    fn check(&mut self, feature: &str, scenario: impl FnOnce(&Peer) -> Result<(), String>) {
        let outcome = scenario(self);
        if let Err(e) = &outcome
            && let Some(why) = e.strip_prefix(NOT_OFFERED)
        {
            // The server's configuration, not our client: recorded, not failed.
            eprintln!("{} / {feature}: n/a: {why}", self.name);
            matrix::record_result(self.name, feature, "n/a");
            return;
        }
        matrix::record(self.name, feature, outcome.is_ok());
        if let Err(e) = outcome {
            eprintln!("{} / {feature}: FAIL: {e}", self.name);
            self.failures.push(format!("{feature}: {e}"));
        } else {
            eprintln!("{} / {feature}: pass", self.name);
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} failures:\n{}\n--- server log tail ---\n{}",
            self.name,
            self.failures.join("\n"),
            tail(&self.server.log(), 400)
        );
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The recorded transcript must replay against a fresh machine; with `XMPP_RECORD` set it is
/// also written under `testdata/transcripts/real/`.
fn keep_transcript(session: &Session, file: &str) -> Result<(), String> {
    let text = session.conn.transcript().ok_or("no transcript")?;
    let transcript = Transcript::parse(&text).map_err(|e| format!("parse: {e}"))?;
    transcript
        .replay(Role::Client)
        .map_err(|e| format!("replay of the fresh recording: {e}"))?;
    if std::env::var_os("XMPP_RECORD").is_some() {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/transcripts/real");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(file), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn close_gracefully(session: &mut Session) -> Result<(), String> {
    match session.conn.close(WAIT) {
        Ok(CloseReason::Graceful) => Ok(()),
        other => Err(format!("close: {other:?}")),
    }
}

/// Log in forcing `mechanism` and check it was the one used.
fn forced(peer: &Peer, mechanism: &str, direct_tls: bool) -> Result<Session, String> {
    let mut session = peer.login(
        "alice",
        "pw-a",
        Login {
            mechanism: Some(mechanism),
            direct_tls,
            ..Login::default()
        },
    );
    if let Err(Error::Closed(reason)) = &session.result
        && **reason == CloseReason::NoMechanism
    {
        return Err(format!("{NOT_OFFERED}the server does not list {mechanism}"));
    }
    session.jid()?;
    match session.mechanism() {
        Some(m) if m == mechanism => {}
        other => return Err(format!("authenticated with {other:?}, wanted {mechanism}")),
    }
    close_gracefully(&mut session)?;
    Ok(session)
}

fn iq(kind: &str, id: &str, query: Element) -> Element {
    stanza("iq")
        .attr("type".try_into().unwrap(), kind)
        .attr("id".try_into().unwrap(), id)
        .append(query)
        .build()
}

fn roster_query(item: Option<(&str, Option<&str>)>) -> Element {
    let mut query = Element::builder("query", ROSTER);
    if let Some((jid, subscription)) = item {
        let mut el = Element::builder("item", ROSTER).attr("jid".try_into().unwrap(), jid);
        if let Some(sub) = subscription {
            el = el.attr("subscription".try_into().unwrap(), sub);
        } else {
            el = el.attr("name".try_into().unwrap(), "Carol");
        }
        query = query.append(el.build());
    }
    query.build()
}

fn is_iq_result(id: &'static str) -> impl Fn(&Element) -> bool {
    move |s| s.name() == "iq" && s.attr("id") == Some(id) && s.attr("type") == Some("result")
}

/// Wait for the roster push for `jid` (answered, as RFC 6121 §2.1.6 asks) and the result
/// of our request `id`, in either order; returns the pushed item's subscription.
fn wait_push(
    conn: &mut Connection<ClientStream>,
    jid: &str,
    id: &'static str,
) -> Result<String, String> {
    let is_push = |s: &Element| {
        s.name() == "iq"
            && s.attr("type") == Some("set")
            && s.get_child("query", ROSTER)
                .and_then(|q| q.get_child("item", ROSTER))
                .is_some_and(|i| i.attr("jid") == Some(jid))
    };
    let is_result = is_iq_result(id);
    let found = wait_all(conn, "roster push and result", &[&is_push, &is_result])?;
    let push = &found[0];
    let subscription = push
        .get_child("query", ROSTER)
        .and_then(|q| q.get_child("item", ROSTER))
        .and_then(|i| i.attr("subscription"))
        .unwrap_or("none")
        .to_owned();
    if let Some(push_id) = push.attr("id") {
        let reply = stanza("iq")
            .attr("type".try_into().unwrap(), "result")
            .attr("id".try_into().unwrap(), push_id)
            .build();
        conn.send(&reply).map_err(|e| e.to_string())?;
    }
    Ok(subscription)
}

fn presence_of(kind: Option<&'static str>, from: String) -> impl Fn(&Element) -> bool {
    move |s| {
        s.name() == "presence"
            && s.attr("type") == kind
            && s.attr("from").is_some_and(|f| f.starts_with(&from))
    }
}

/// Wait until every predicate has matched one stanza, in any order (servers differ in the
/// order of a roster push and the iq result, for example).
fn wait_all(
    conn: &mut Connection<ClientStream>,
    what: &str,
    preds: &[&dyn Fn(&Element) -> bool],
) -> Result<Vec<Element>, String> {
    let mut found: Vec<Option<Element>> = vec![None; preds.len()];
    let deadline = std::time::Instant::now() + WAIT;
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let stanza = conn
            .wait_stanza(left, |s| {
                preds.iter().zip(&found).any(|(p, f)| f.is_none() && p(s))
            })
            .map_err(|e| format!("{what}: {e}"))?;
        if let Some(slot) = preds
            .iter()
            .zip(found.iter_mut())
            .find_map(|(p, f)| (f.is_none() && p(&stanza)).then_some(f))
        {
            *slot = Some(stanza);
        }
    }
    Ok(found.into_iter().flatten().collect())
}

fn send(conn: &mut Connection<ClientStream>, stanza: &Element) -> Result<(), String> {
    conn.send(stanza).map_err(|e| e.to_string())
}

fn subscribe_handshake(
    from: &mut Session,
    to: &mut Session,
    from_bare: &str,
    to_bare: &str,
) -> Result<(), String> {
    let presence = |kind, to| {
        stanza("presence")
            .attr("type".try_into().unwrap(), kind)
            .attr("to".try_into().unwrap(), to)
            .build()
    };
    send(&mut from.conn, &presence("subscribe", to_bare))?;
    to.conn
        .wait_stanza(WAIT, presence_of(Some("subscribe"), from_bare.to_owned()))
        .map_err(|e| format!("{to_bare} waiting for subscribe: {e}"))?;
    send(&mut to.conn, &presence("subscribed", from_bare))?;
    // The subscriber learns of the approval from a `subscribed` presence and a roster push
    // (RFC 6121 §3.1.6), then receives the contact's presence. Prosody 0.12 (with this
    // storage) sends neither `subscribed` nor the push when the subscriber already had a
    // `from` subscription, only the presence: any of the three completes the wait, and the
    // caller checks both rosters afterwards.
    let approved = |s: &Element| {
        presence_of(Some("subscribed"), to_bare.to_owned())(s)
            || presence_of(None, to_bare.to_owned())(s)
            || (s.name() == "iq"
                && s.get_child("query", ROSTER)
                    .and_then(|q| q.get_child("item", ROSTER))
                    .is_some_and(|i| {
                        i.attr("jid") == Some(to_bare)
                            && matches!(i.attr("subscription"), Some("to" | "both"))
                    }))
    };
    from.conn
        .wait_stanza(WAIT, approved)
        .map_err(|e| format!("{from_bare} waiting for subscribed: {e}"))?;
    Ok(())
}

fn session_scenarios(peer: &mut Peer) {
    let domain = peer.server.domain.clone();
    let alice_bare = format!("alice@{domain}");
    let bob_bare = format!("bob@{domain}");
    let carol = format!("carol@{domain}");
    let mut alice = peer.login(
        "alice",
        "pw-a",
        Login {
            resource: Some("interop"),
            ..Login::default()
        },
    );
    let mut bob = peer.login(
        "bob",
        "pw-b",
        Login {
            resource: Some("interop"),
            ..Login::default()
        },
    );
    peer.check("bind (requested resource)", |_| {
        let jid = alice.jid()?;
        if jid.resource() != "interop" {
            return Err(format!("bound {jid}"));
        }
        bob.jid().map(|_| ())
    });
    peer.check("roster get", |_| {
        send(&mut alice.conn, &iq("get", "r1", roster_query(None)))?;
        let result = alice
            .conn
            .wait_stanza(WAIT, is_iq_result("r1"))
            .map_err(|e| e.to_string())?;
        result
            .get_child("query", ROSTER)
            .map(|_| ())
            .ok_or_else(|| "result without <query/>".to_owned())
    });
    peer.check("roster set + push", |_| {
        send(
            &mut alice.conn,
            &iq("set", "r2", roster_query(Some((&carol, None)))),
        )?;
        match wait_push(&mut alice.conn, &carol, "r2")?.as_str() {
            "none" => Ok(()),
            sub => Err(format!("pushed subscription {sub}")),
        }
    });
    peer.check("roster remove + push", |_| {
        send(
            &mut alice.conn,
            &iq("set", "r3", roster_query(Some((&carol, Some("remove"))))),
        )?;
        match wait_push(&mut alice.conn, &carol, "r3")?.as_str() {
            "remove" => Ok(()),
            sub => Err(format!("pushed subscription {sub}")),
        }
    });
    peer.check("subscription handshake", |_| {
        send(&mut alice.conn, &stanza("presence").build())?;
        send(&mut bob.conn, &stanza("presence").build())?;
        subscribe_handshake(&mut alice, &mut bob, &alice_bare, &bob_bare)?;
        subscribe_handshake(&mut bob, &mut alice, &bob_bare, &alice_bare)?;
        for (session, contact, id) in [(&mut alice, &bob_bare, "r4"), (&mut bob, &alice_bare, "r5")]
        {
            send(&mut session.conn, &iq("get", id, roster_query(None)))?;
            let is_result = is_iq_result(id);
            let roster = session
                .conn
                .wait_stanza(WAIT, is_result)
                .map_err(|e| e.to_string())?;
            let sub = roster
                .get_child("query", ROSTER)
                .and_then(|q| {
                    q.children()
                        .find(|i| i.attr("jid") == Some(contact.as_str()))
                })
                .and_then(|i| i.attr("subscription"));
            if sub != Some("both") {
                return Err(format!("{contact}'s subscription in the roster: {sub:?}"));
            }
        }
        Ok(())
    });
    peer.check("presence", |_| {
        let status = |text: &str| {
            stanza("presence")
                .append(stanza("status").append(text).build())
                .build()
        };
        send(&mut alice.conn, &status("alice here"))?;
        let got = bob
            .conn
            .wait_stanza(WAIT, |s| {
                presence_of(None, alice_bare.clone())(s)
                    && s.get_child("status", NS).map(Element::text).as_deref() == Some("alice here")
            })
            .map_err(|e| format!("bob waiting for alice's presence: {e}"))?;
        drop(got);
        send(&mut bob.conn, &status("bob here"))?;
        bob.conn.machine();
        alice
            .conn
            .wait_stanza(WAIT, |s| {
                presence_of(None, bob_bare.clone())(s)
                    && s.get_child("status", NS).map(Element::text).as_deref() == Some("bob here")
            })
            .map(|_| ())
            .map_err(|e| format!("alice waiting for bob's presence: {e}"))
    });
    peer.check("messages both ways", |_| {
        let message = |to: &str, body: &str| {
            stanza("message")
                .attr("to".try_into().unwrap(), to)
                .attr("type".try_into().unwrap(), "chat")
                .attr("id".try_into().unwrap(), format!("m-{body}"))
                .append(stanza("body").append(body).build())
                .build()
        };
        let body_is = |text: &'static str| {
            move |s: &Element| {
                s.name() == "message"
                    && s.get_child("body", NS).map(Element::text).as_deref() == Some(text)
            }
        };
        send(&mut alice.conn, &message(&bob_bare, "ping"))?;
        let got = bob
            .conn
            .wait_stanza(WAIT, body_is("ping"))
            .map_err(|e| format!("bob: {e}"))?;
        if !got.attr("from").is_some_and(|f| f.starts_with(&alice_bare)) {
            return Err(format!("from {:?}", got.attr("from")));
        }
        send(&mut bob.conn, &message(&alice_bare, "pong"))?;
        alice
            .conn
            .wait_stanza(WAIT, body_is("pong"))
            .map(|_| ())
            .map_err(|e| format!("alice: {e}"))
    });
    peer.check("clean close", |_| {
        close_gracefully(&mut alice)?;
        close_gracefully(&mut bob)
    });
    let file = format!("{}-session-alice.txt", peer.name);
    peer.check("transcript of the session replays", |_| {
        keep_transcript(&alice, &file)
    });
}

fn run(kind: PeerKind) {
    let Some(mut peer) = Peer::start(kind) else {
        return;
    };
    let name = peer.name;
    let ejabberd = kind == PeerKind::Ejabberd;

    peer.check("STARTTLS", |p| {
        let mut session = p.login("alice", "pw-a", Login::default());
        session.jid()?;
        if !session.events.iter().any(|e| matches!(e, Event::Secured)) {
            return Err("no Secured event".to_owned());
        }
        close_gracefully(&mut session)?;
        keep_transcript(&session, &format!("{name}-starttls-default.txt"))
    });
    peer.check("direct TLS", |p| {
        let mut session = p.login(
            "alice",
            "pw-a",
            Login {
                direct_tls: true,
                ..Login::default()
            },
        );
        session.jid()?;
        close_gracefully(&mut session)
    });
    let mut mechanisms = vec!["SCRAM-SHA-1", "SCRAM-SHA-256"];
    if ejabberd {
        mechanisms.push("SCRAM-SHA-512");
    }
    for mechanism in mechanisms {
        peer.check(mechanism, |p| forced(p, mechanism, false).map(drop));
    }
    peer.check("PLAIN over TLS", |p| forced(p, "PLAIN", false).map(drop));
    peer.check("PLAIN over direct TLS", |p| {
        let session = forced(p, "PLAIN", true)?;
        keep_transcript(&session, &format!("{name}-direct-tls-plain.txt"))
    });
    peer.check("SCRAM-SHA-1 transcript", |p| {
        let session = forced(p, "SCRAM-SHA-1", false)?;
        keep_transcript(&session, &format!("{name}-starttls-scram-sha-1.txt"))
    });
    // The -PLUS decision: both servers bind only with tls-unique, which rustls lacks. Where
    // -PLUS is offered the client must take the plain SCRAM with GS2 flag `n` (RFC 5802 §6:
    // `y` then reads as a downgrade); where it is not offered, `y`.
    peer.check("-PLUS offered (tls-unique only): non-PLUS, gs2 n", |p| {
        // Prosody lists -PLUS only under TLS 1.2 (tls-unique is undefined in 1.3).
        let session = p.login(
            "alice",
            "pw-a",
            Login {
                tls12_only: !ejabberd,
                ..Login::default()
            },
        );
        session.jid()?;
        let offered_plus = session
            .conn
            .transcript()
            .is_some_and(|t| t.contains("-PLUS</mechanism>"));
        if !offered_plus {
            return Err("the server did not offer -PLUS".to_owned());
        }
        match (session.mechanism(), session.gs2_flag()) {
            (Some(m), Some('n')) if m.starts_with("SCRAM-") && !m.ends_with("-PLUS") => {}
            other => return Err(format!("mechanism and GS2 flag: {other:?}")),
        }
        if ejabberd {
            // ejabberd's default login (already recorded) is this case.
            Ok(())
        } else {
            keep_transcript(&session, &format!("{name}-tls12-plus-offered.txt"))
        }
    });
    if !ejabberd {
        peer.check("-PLUS not offered: non-PLUS, gs2 y", |p| {
            let session = p.login("alice", "pw-a", Login::default());
            session.jid()?;
            match (session.mechanism(), session.gs2_flag()) {
                (Some(m), Some('y')) if !m.ends_with("-PLUS") => Ok(()),
                other => Err(format!("mechanism and GS2 flag: {other:?}")),
            }
        });
    }
    peer.check("async driver (tokio): direct TLS login, close", |p| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let tls = client_config(
                &Trust::Pem(p.server.certificate_pem.clone().into_bytes()),
                Versions::Any,
            )
            .map_err(|e| e.to_string())?;
            let jid = BareJid::new(&format!("bob@{}", p.server.domain)).unwrap();
            let mut client = AsyncConnection::connect(
                SocketAddr::from((Ipv4Addr::LOCALHOST, p.server.direct_tls_port)),
                &p.server.domain,
                true,
                tls,
                ClientConfig::new(jid, "pw-b"),
                OsEntropy::new(),
            )
            .await
            .map_err(|e| e.to_string())?;
            client.negotiate(WAIT).await.map_err(|e| e.to_string())?;
            match client.close(WAIT).await {
                Ok(CloseReason::Graceful) => Ok(()),
                other => Err(format!("close: {other:?}")),
            }
        })
    });
    peer.check("example CLI client (examples/client.rs)", |p| {
        // `cargo test -p xmpp-host` builds the package's examples next to the test
        // binaries; with a `--test` filter it does not (building it here would take minutes).
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let client = exe
            .parent()
            .and_then(std::path::Path::parent)
            .map(|dir| dir.join("examples").join("client"))
            .ok_or("no examples dir")?;
        if !client.exists() {
            return Err(format!(
                "{NOT_OFFERED}{} is not built (run `cargo test -p xmpp-host` without --test)",
                client.display()
            ));
        }
        let ca = p.server.dir().join("drivers-ca.pem");
        std::fs::write(&ca, &p.server.certificate_pem).map_err(|e| e.to_string())?;
        let out = std::process::Command::new(&client)
            .args([
                "--jid",
                &format!("alice@{}", p.server.domain),
                "--password",
                "pw-a",
            ])
            .arg("--ca")
            .arg(&ca)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &p.server.starttls_port.to_string(),
            ])
            .args([
                "--to",
                &format!("bob@{}", p.server.domain),
                "--body",
                "from the CLI",
            ])
            .output()
            .map_err(|e| format!("{}: {e}", client.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && stdout.contains("bound as alice@") && stdout.contains("Graceful")
        {
            Ok(())
        } else {
            Err(format!(
                "{}\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    peer.check("wrong password: not-authorized", |p| {
        let session = p.login("alice", "not-the-password", Login::default());
        match &session.result {
            Err(Error::Closed(reason))
                if matches!(&**reason, CloseReason::AuthenticationFailed { condition, .. }
                    if condition.to_string() == "not-authorized") => {}
            other => return Err(format!("{other:?}")),
        }
        keep_transcript(&session, &format!("{name}-wrong-password.txt"))
    });
    session_scenarios(&mut peer);
    peer.finish();
}

#[test]
fn prosody() {
    run(PeerKind::Prosody);
}

#[test]
fn ejabberd() {
    run(PeerKind::Ejabberd);
}
