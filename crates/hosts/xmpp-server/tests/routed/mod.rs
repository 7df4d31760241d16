//! One routed chat message in memory (issue 17): bytes in on session A, through
//! `ServerStream`, `xmpp-im` and the hub, to bytes out on session B. Shared by
//! `tests/envelope_routing.rs` and `benches/routing.rs`.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use xmpp_server::{Hub, HubConfig, HubOutput, SessionId};
use xmpp_stream::pair::fake_tls_binding;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, Instant, Output, SeededEntropy, Transport,
};

/// A hub with alice (A) and bob (B) online, both available.
pub(crate) struct Routed {
    pub(crate) hub: Hub,
    pub(crate) now: Instant,
    clients: Vec<(ClientStream, SessionId, bool)>,
    /// What the hub transmitted to B since the last `take_b`.
    pub(crate) to_b: Vec<u8>,
    /// Bytes the hub sent to anyone else since the setup (should stay empty).
    pub(crate) elsewhere: usize,
    /// What the hub transmitted to each client since the last `receives` of it, by index
    /// (filled by [`Routed::send_from`] only).
    pub(crate) inbox: Vec<Vec<u8>>,
}

/// The presence alice broadcasts, `n` in its status.
pub(crate) fn status(n: u64) -> Vec<u8> {
    format!(
        "<presence><show>away</show><status>Out for lunch, back at {n}</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/client' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>"
    )
    .into_bytes()
}

/// The chat message A sends, `n` in its id.
pub(crate) fn chat(n: u64) -> Vec<u8> {
    format!(
        "<message to='bob@localhost' type='chat' id='m{n}'><body>Hello Bob, message {n}: how are you today?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
    .into_bytes()
}

impl Routed {
    /// Negotiated, roster fetched, initial presence sent; `envelopes` switches the hub's
    /// client streams to envelopes.
    pub(crate) fn new(envelopes: bool) -> Routed {
        Self::with_sm(envelopes, false)
    }

    /// As [`Routed::new`], with both clients enabling XEP-0198 when `sm` (the hub offers it).
    pub(crate) fn with_sm(envelopes: bool, sm: bool) -> Routed {
        let mut r = Self::connected(envelopes, sm, &["alice", "bob"]);
        for i in 0..2 {
            let presence: minidom::Element = "<presence xmlns='jabber:client'/>".parse().unwrap();
            r.clients[i].0.send_stanza(r.now, &presence).unwrap();
            r.drive();
        }
        r.to_b.clear();
        r.elsewhere = 0;
        r
    }

    /// alice (client 0) and `contacts` others (`c0`, `c1`...), each subscribed to alice's
    /// presence (`both`), all available: a presence broadcast from alice reaches every
    /// contact.
    pub(crate) fn with_contacts(envelopes: bool, contacts: usize) -> Routed {
        let names: Vec<String> = core::iter::once("alice".to_owned())
            .chain((0..contacts).map(|i| format!("c{i}")))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut r = Self::connected(envelopes, false, &names);
        let send = |r: &mut Routed, i: usize, stanza: &str| {
            let el: minidom::Element = stanza.parse().unwrap();
            let now = r.now;
            r.clients[i].0.send_stanza(now, &el).unwrap();
        };
        // Pre-approval (RFC 6121 §3.4) both ways, then requests both ways: `both`.
        for (i, name) in names.iter().enumerate().skip(1) {
            send(
                &mut r,
                0,
                &format!(
                    "<presence xmlns='jabber:client' type='subscribed' to='{name}@localhost'/>"
                ),
            );
            send(
                &mut r,
                i,
                "<presence xmlns='jabber:client' type='subscribed' to='alice@localhost'/>",
            );
        }
        r.drive();
        for (i, name) in names.iter().enumerate().skip(1) {
            send(
                &mut r,
                0,
                &format!(
                    "<presence xmlns='jabber:client' type='subscribe' to='{name}@localhost'/>"
                ),
            );
            send(
                &mut r,
                i,
                "<presence xmlns='jabber:client' type='subscribe' to='alice@localhost'/>",
            );
        }
        r.drive();
        for i in (1..names.len()).chain([0]) {
            send(&mut r, i, "<presence xmlns='jabber:client'/>");
            r.drive();
        }
        r.inbox = vec![Vec::new(); names.len()];
        r.to_b.clear();
        r.elsewhere = 0;
        r
    }

    /// As [`Routed::new`], every session recorded into `sink` (tests-only transcripts).
    pub(crate) fn recorded(envelopes: bool, sink: xmpp_server::TranscriptSink) -> Routed {
        let mut r = Self::connected_with(envelopes, false, &["alice", "bob"], Some(sink));
        for i in 0..2 {
            let presence: minidom::Element = "<presence xmlns='jabber:client'/>".parse().unwrap();
            r.clients[i].0.send_stanza(r.now, &presence).unwrap();
            r.drive();
        }
        r
    }

    /// Every client closes its stream; the hub ends the sessions.
    pub(crate) fn close_all(&mut self) {
        for (stream, _, _) in &mut self.clients {
            stream.close(self.now).unwrap();
        }
        self.drive();
    }

    /// Every user negotiated (resource `r`) and its roster fetched.
    fn connected(envelopes: bool, sm: bool, users: &[&str]) -> Routed {
        Self::connected_with(envelopes, sm, users, None)
    }

    fn connected_with(
        envelopes: bool,
        sm: bool,
        users: &[&str],
        record: Option<xmpp_server::TranscriptSink>,
    ) -> Routed {
        let mut config = HubConfig::new(BareJid::new("localhost").unwrap());
        for user in users {
            config = config.with_user(user, &format!("{user}-pw"));
        }
        config.stream.envelopes = envelopes;
        config.record = record;
        let mut r = Routed {
            hub: Hub::new(config),
            now: Instant::ZERO,
            clients: Vec::new(),
            to_b: Vec::new(),
            elsewhere: 0,
            inbox: Vec::new(),
        };
        for (i, user) in users.iter().enumerate() {
            let pw = format!("{user}-pw");
            let jid = BareJid::new(&format!("{user}@localhost")).unwrap();
            let mut cc = ClientConfig::new(jid, &pw);
            cc.resource = Some("r".to_owned());
            if sm {
                cc.sm = xmpp_stream::SmConfig::on();
            }
            let seed = 10 + 2 * i as u64;
            let mut stream = ClientStream::new(cc, SeededEntropy::new(seed));
            let id = r
                .hub
                .accept(r.now, Transport::Plain, SeededEntropy::new(seed + 1));
            stream.start(r.now, Transport::Plain).unwrap();
            r.clients.push((stream, id, false));
            r.drive();
            assert!(r.clients[i].0.is_negotiated(), "{user} negotiated");
        }
        r
    }

    fn drive(&mut self) {
        for _ in 0..10_000 {
            let mut progress = false;
            self.now = Instant::from_millis(self.now.as_millis() + 1);
            let mut inbox: Vec<(SessionId, Vec<u8>)> = Vec::new();
            while let Some(out) = self.hub.poll_output() {
                progress = true;
                match out {
                    HubOutput::Transmit(id, bytes) => inbox.push((id, bytes)),
                    HubOutput::StartTls(id) => {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.1 == id) {
                            c.2 = true;
                        }
                    }
                    _ => {}
                }
            }
            let now = self.now;
            for (id, bytes) in inbox {
                if let Some(c) = self.clients.iter_mut().find(|c| c.1 == id) {
                    let _ = c.0.handle_input(now, &bytes);
                }
            }
            for i in 0..self.clients.len() {
                let (stream, id, server_tls) = &mut self.clients[i];
                let id = *id;
                let mut to_hub = Vec::new();
                let mut tls = false;
                while let Some(out) = stream.poll_output() {
                    progress = true;
                    match out {
                        Output::Transmit(bytes) => to_hub.extend(bytes),
                        Output::StartTls => tls = true,
                        _ => {}
                    }
                }
                if !to_hub.is_empty() {
                    self.hub.handle_input(id, now, &to_hub);
                }
                if tls {
                    assert!(*server_tls);
                    *server_tls = false;
                    stream.tls_established(now, fake_tls_binding()).unwrap();
                    self.hub.tls_established(id, now, fake_tls_binding());
                }
            }
            if !progress {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// The hot path: `bytes` from A's socket into the hub, the hub's output drained; what
    /// goes to B is appended to `to_b`.
    pub(crate) fn route(&mut self, bytes: &[u8]) {
        let (a, b) = (self.clients[0].1, self.clients[1].1);
        self.hub.handle_input(a, self.now, bytes);
        while let Some(out) = self.hub.poll_output() {
            match out {
                HubOutput::Transmit(id, bytes) if id == b => self.to_b.extend_from_slice(&bytes),
                HubOutput::Transmit(_, bytes) => self.elsewhere += bytes.len(),
                _ => {}
            }
        }
    }

    /// `bytes` from client `from`'s socket into the hub, the hub's output drained into each
    /// client's [`Routed::inbox`].
    pub(crate) fn send_from(&mut self, from: usize, bytes: &[u8]) {
        let id = self.clients[from].1;
        self.hub.handle_input(id, self.now, bytes);
        while let Some(out) = self.hub.poll_output() {
            if let HubOutput::Transmit(id, bytes) = out {
                match self.clients.iter().position(|c| c.1 == id) {
                    Some(i) => self.inbox[i].extend_from_slice(&bytes),
                    None => self.elsewhere += bytes.len(),
                }
            }
        }
    }

    /// Client `i`'s machine reads its inbox: the stanzas it reports.
    pub(crate) fn receives(&mut self, i: usize) -> Vec<minidom::Element> {
        let bytes = core::mem::take(&mut self.inbox[i]);
        let now = self.now;
        let stream = &mut self.clients[i].0;
        stream.handle_input(now, &bytes).unwrap();
        let mut got = Vec::new();
        while let Some(out) = stream.poll_output() {
            if let Output::Event(Event::Stanza(s)) = out {
                got.push(s);
            }
        }
        got
    }

    /// [`Routed::route`], then B's client machine reads what it got and its answers (XEP-0198
    /// acknowledgements) go back to the hub, so an unacknowledged queue never fills.
    pub(crate) fn route_acked(&mut self, bytes: &[u8]) {
        self.route(bytes);
        let (b, now) = (self.clients[1].1, self.now);
        let stream = &mut self.clients[1].0;
        let _ = stream.handle_input(now, &self.to_b);
        self.to_b.clear();
        let mut answer = Vec::new();
        while let Some(out) = stream.poll_output() {
            if let Output::Transmit(bytes) = out {
                answer.extend(bytes);
            }
        }
        if !answer.is_empty() {
            self.hub.handle_input(b, now, &answer);
            while let Some(out) = self.hub.poll_output() {
                if let HubOutput::Transmit(_, bytes) = out {
                    self.elsewhere += bytes.len();
                }
            }
        }
    }

    /// B's client machine reads what the hub sent it: the stanzas it reports.
    pub(crate) fn b_receives(&mut self) -> Vec<minidom::Element> {
        let bytes = core::mem::take(&mut self.to_b);
        let now = self.now;
        let stream = &mut self.clients[1].0;
        stream.handle_input(now, &bytes).unwrap();
        let mut got = Vec::new();
        while let Some(out) = stream.poll_output() {
            if let Output::Event(Event::Stanza(s)) = out {
                got.push(s);
            }
        }
        got
    }
}
