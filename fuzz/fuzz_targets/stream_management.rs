#![no_main]
//! XEP-0198 stream management driven through its states: a client and a server (both with
//! stream management and resumption) negotiate in memory, then the input is a program of
//! operations: either end sends a message, bytes are delivered (all, or a few), time jumps
//! (acknowledgement requests by time), the connection is cut (bytes in flight lost) and the
//! client resumes on a new one, honestly or with a hostile `h` or id, or the server refuses
//! (expired); hostile `<a h=''/>` values are injected into either end. Properties: no panic;
//! nothing after `Closed`; and, for every run without a hostile operation, exact accounting:
//! each message reaches the other host at most once and in order, and every message sent is
//! received or reported (`ResumeFailed` undelivered to the client; the detached session's
//! unacknowledged stanzas to the server's host). A third of the server's messages are sent
//! as envelopes, so its queue holds spliced bytes beside the serializer's (both queues keep
//! the bytes written for a stanza sent as an element).

use std::collections::VecDeque;
use std::sync::OnceLock;

use minidom::Element;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, Instant, MemoryBackend, Output, SeededEntropy,
    ServerConfig, ServerStream, SmConfig, SmEvent, TlsPolicy, Transport, Unacked,
};

fn backend() -> MemoryBackend {
    static BACKEND: OnceLock<MemoryBackend> = OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 1))
        .clone()
}

fn client(seed: u64) -> Option<ClientStream> {
    let mut config = ClientConfig::new(BareJid::new("juliet@im.example.com").ok()?, "r0m30myr0m30");
    config.tls = TlsPolicy::Disabled;
    config.allow_plain_without_tls = true;
    config.mechanisms = vec![xmpp_stream::Mechanism::Plain];
    config.resource = Some("r".to_owned());
    config.sm = SmConfig::on();
    config.sm.max_unacked = 8;
    config.sm.overflow = xmpp_stream::UnackedOverflow::ForgetOldest;
    Some(ClientStream::new(config, SeededEntropy::new(seed)))
}

fn server(seed: u64) -> Option<ServerStream> {
    let mut config = ServerConfig::new(BareJid::new("im.example.com").ok()?);
    config.tls = TlsPolicy::Disabled;
    config.allow_plain_without_tls = true;
    config.sm = SmConfig::on();
    Some(ServerStream::new(
        config,
        SeededEntropy::new(seed),
        backend(),
    ))
}

/// Message ids a host received, and those reported as not delivered.
#[derive(Default)]
struct Book {
    received: Vec<u32>,
    reported: Vec<u32>,
}

fn id_of(stanza: &Element) -> Option<u32> {
    stanza.attr("id")?.strip_prefix('m')?.parse().ok()
}

/// The number of a stanza the unacknowledged queue handed back.
fn unacked_id(stanza: &Unacked) -> Option<u32> {
    id_of(&stanza.element().ok()?)
}

struct World {
    c: ClientStream,
    s: ServerStream,
    to_s: VecDeque<u8>,
    to_c: VecDeque<u8>,
    now: Instant,
    at_client: Book,
    at_server: Book,
    c_closed: bool,
    s_closed: bool,
    resume_asked: bool,
}

impl World {
    fn collect(&mut self) {
        while let Some(out) = self.c.poll_output() {
            assert!(!self.c_closed, "client output after Closed");
            match out {
                Output::Transmit(b) => self.to_s.extend(b),
                Output::Event(Event::Stanza(s)) => self.at_client.received.extend(id_of(&s)),
                Output::Event(Event::Sm(SmEvent::ResumeFailed { undelivered, .. })) => {
                    self.at_server
                        .reported
                        .extend(undelivered.iter().filter_map(unacked_id));
                }
                Output::Event(Event::Sm(SmEvent::Forgotten(s))) => {
                    self.at_server.reported.extend(unacked_id(&s));
                }
                Output::Event(Event::Closed { .. }) => self.c_closed = true,
                _ => {}
            }
        }
        while let Some(out) = self.s.poll_output() {
            assert!(!self.s_closed, "server output after Closed");
            match out {
                Output::Transmit(b) => self.to_c.extend(b),
                Output::Event(Event::Stanza(s)) => self.at_server.received.extend(id_of(&s)),
                Output::Event(Event::Sm(SmEvent::ResumeRequested { .. })) => {
                    self.resume_asked = true;
                }
                Output::Event(Event::Closed { .. }) => self.s_closed = true,
                _ => {}
            }
        }
    }

    fn deliver(&mut self, max: usize) {
        self.collect();
        let n = max.min(self.to_s.len());
        let bytes: Vec<u8> = self.to_s.drain(..n).collect();
        let _ = self.s.handle_input(self.now, &bytes);
        let n = max.min(self.to_c.len());
        let bytes: Vec<u8> = self.to_c.drain(..n).collect();
        let _ = self.c.handle_input(self.now, &bytes);
        self.collect();
    }

    fn pump(&mut self) {
        for _ in 0..64 {
            self.deliver(usize::MAX);
            if self.to_s.is_empty() && self.to_c.is_empty() {
                return;
            }
        }
    }
}

fn message(from_client: bool, n: u32) -> Option<Element> {
    let to = if from_client {
        "romeo@example.net"
    } else {
        "juliet@im.example.com/r"
    };
    format!("<message xmlns='jabber:client' to='{to}' id='m{n}'/>")
        .parse()
        .ok()
}

fn run(data: &[u8]) -> Option<()> {
    let mut w = World {
        c: client(1)?,
        s: server(2)?,
        to_s: VecDeque::new(),
        to_c: VecDeque::new(),
        now: Instant::ZERO,
        at_client: Book::default(),
        at_server: Book::default(),
        c_closed: false,
        s_closed: false,
        resume_asked: false,
    };
    w.c.start(w.now, Transport::Plain).ok()?;
    w.s.start(w.now, Transport::Plain).ok()?;
    w.pump();
    assert!(w.c.is_negotiated() && w.s.is_negotiated());
    let (mut sent_c, mut sent_s) = (Vec::new(), Vec::new());
    let mut next = 0u32;
    let mut hostile = false;
    let mut seed = 10;
    let mut ops = data.iter().copied();
    while let Some(op) = ops.next() {
        match op % 12 {
            0..=2 => {
                if let Some(m) = message(true, next) {
                    if w.c.send_stanza(w.now, &m).is_ok() {
                        sent_c.push(next);
                    }
                }
                next += 1;
            }
            3 | 4 => {
                if let Some(m) = message(false, next) {
                    if w.s.send_stanza(w.now, &m).is_ok() {
                        sent_s.push(next);
                    }
                }
                next += 1;
            }
            5 => {
                // Forwarded as an envelope: the queue keeps the spliced bytes (issue 17).
                if let Some(e) = xmpp_fuzz::client_envelope(&format!(
                    "<message to='juliet@im.example.com/r' id='m{next}'/>"
                )) {
                    if w.s
                        .send_envelope(w.now, &e, Some("romeo@example.net/x"), None)
                        .is_ok()
                    {
                        sent_s.push(next);
                    }
                }
                next += 1;
            }
            6 => w.pump(),
            7 => w.deliver(usize::from(ops.next().unwrap_or(1))),
            8 => {
                w.now = w.now + core::time::Duration::from_secs(31);
                w.c.handle_timeout(w.now);
                w.s.handle_timeout(w.now);
                w.collect();
            }
            9 | 10 => {
                // Cut: what is in flight is lost; resume on a new connection.
                w.collect();
                w.to_s.clear();
                w.to_c.clear();
                w.c.transport_closed(w.now);
                w.s.transport_closed(w.now);
                w.collect();
                let (Some(mut state), detached) = (w.c.sm_state(), w.s.detach()) else {
                    break;
                };
                let mode = ops.next().unwrap_or(0) % 4;
                match mode {
                    1 => {
                        hostile = true;
                        state.handled = state
                            .handled
                            .wrapping_add(u32::from(ops.next().unwrap_or(1)));
                    }
                    2 => {
                        hostile = true;
                        state.id.push('x');
                    }
                    _ => {}
                }
                seed += 2;
                w.c = client(seed)?;
                w.s = server(seed + 1)?;
                w.c.resume_with(state).ok()?;
                w.c_closed = false;
                w.s_closed = false;
                w.resume_asked = false;
                w.c.start(w.now, Transport::Plain).ok()?;
                w.s.start(w.now, Transport::Plain).ok()?;
                w.pump();
                if !w.resume_asked {
                    break;
                }
                let mut detached = detached;
                if mode == 3 || mode == 2 {
                    w.s.refuse_resume(w.now);
                } else if let Some(session) = detached.take() {
                    if let Err(back) = w.s.resume(w.now, session) {
                        detached = Some(*back);
                    }
                }
                // A session not taken over is ended: its stanzas go back to the host.
                if let Some(session) = detached {
                    w.at_client
                        .reported
                        .extend(session.into_unacked().iter().filter_map(unacked_id));
                }
                w.pump();
                if !w.c.is_negotiated() || !w.s.is_negotiated() {
                    break;
                }
            }
            _ => {
                hostile = true;
                let h = u32::from_le_bytes([
                    ops.next().unwrap_or(0),
                    ops.next().unwrap_or(0),
                    ops.next().unwrap_or(0),
                    ops.next().unwrap_or(0),
                ]);
                let a = format!("<a xmlns='urn:xmpp:sm:3' h='{h}'/>");
                if op & 0x80 == 0 {
                    let _ = w.c.handle_input(w.now, a.as_bytes());
                } else {
                    let _ = w.s.handle_input(w.now, a.as_bytes());
                }
                w.collect();
            }
        }
        if w.c_closed || w.s_closed {
            break;
        }
    }
    w.pump();
    if hostile || w.c_closed || w.s_closed {
        return Some(());
    }
    for (book, sent) in [(&w.at_server, &sent_c), (&w.at_client, &sent_s)] {
        // At most once, in order.
        assert!(
            book.received.windows(2).all(|p| p[0] < p[1]),
            "duplicated or reordered: {:?}",
            book.received
        );
        // Every message received or reported.
        for id in sent {
            assert!(
                book.received.contains(id) || book.reported.contains(id),
                "message {id} lost: received {:?}, reported {:?}",
                book.received,
                book.reported
            );
        }
    }
    Some(())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
