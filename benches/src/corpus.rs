//! A seeded, realistic client-to-server XMPP stream for benchmarks.
//!
//! [`client_stream`] writes a `jabber:client` stream header, then stanzas until the target
//! size is reached, then `</stream:stream>`. The mix follows what a busy client receives:
//! about 60% messages (bodies of varied length with entity references, chat states, receipts,
//! origin IDs), 25% presences (show, status, priority, XEP-0115 caps, vCard avatar hash) and
//! 15% iqs (a third of them 50-item roster results, the rest pings, disco#info results and
//! small results). The same seed and target always give the same bytes: the generator uses
//! its own xorshift, no external RNG.

use std::fmt::Write as _;

/// A generated stream and what is in it.
#[derive(Debug, Clone)]
pub struct ClientStream {
    /// The whole stream: header, stanzas, close tag.
    pub bytes: Vec<u8>,
    /// Length of the stream header at the start of `bytes`.
    pub header_len: usize,
    /// Number of depth-1 elements (stanzas).
    pub stanzas: usize,
    /// Number of `<message/>` stanzas.
    pub messages: usize,
    /// Number of `<presence/>` stanzas.
    pub presences: usize,
    /// Number of `<iq/>` stanzas.
    pub iqs: usize,
    /// Number of `<iq/>` roster results with 50 items.
    pub roster_results: usize,
    /// Number of entity and character references in the stream.
    pub references: usize,
}

/// The stream header every generated stream starts with.
pub const CLIENT_STREAM_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' from='capulet.lit' \
     id='c2s-3f8a7c21b9' to='juliet@capulet.lit' version='1.0' xml:lang='en'>";

/// Generates a client stream of about `target_bytes` bytes (it stops at the first stanza
/// boundary past the target) from `seed`. Deterministic: same arguments, same bytes.
#[must_use]
pub fn client_stream(seed: u64, target_bytes: usize) -> ClientStream {
    let mut g = Gen {
        rng: XorShift::new(seed),
        out: String::with_capacity(target_bytes + 8192),
        references: 0,
    };
    g.out.push_str(CLIENT_STREAM_HEADER);
    let header_len = g.out.len();
    let mut stream = ClientStream {
        bytes: Vec::new(),
        header_len,
        stanzas: 0,
        messages: 0,
        presences: 0,
        iqs: 0,
        roster_results: 0,
        references: 0,
    };
    let mut n = 0u64;
    while g.out.len() < target_bytes {
        n += 1;
        match g.rng.below(100) {
            0..60 => {
                g.message(n);
                stream.messages += 1;
            }
            60..85 => {
                g.presence(n);
                stream.presences += 1;
            }
            _ => {
                if g.iq(n) {
                    stream.roster_results += 1;
                }
                stream.iqs += 1;
            }
        }
        stream.stanzas += 1;
    }
    g.out.push_str("</stream:stream>");
    stream.references = g.references;
    stream.bytes = g.out.into_bytes();
    stream
}

/// Marsaglia's xorshift64: tiny, deterministic, good enough to vary a corpus.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // A zero state would stay zero.
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items[i]
    }
}

const USERS: &[&str] = &[
    "juliet",
    "romeo",
    "nurse",
    "benvolio",
    "mercutio",
    "tybalt",
    "paris",
    "laurence",
    "balthasar",
    "rosaline",
    "montague",
    "capulet",
    "escalus",
    "sampson",
    "gregory",
];
const DOMAINS: &[&str] = &[
    "capulet.lit",
    "montague.lit",
    "verona.example",
    "shakespeare.lit",
    "example.org",
];
const RESOURCES: &[&str] = &[
    "balcony",
    "orchard",
    "phone",
    "laptop-4f2a",
    "Conversations.x7Rk",
    "gajim.QW3E",
];
const WORDS: &[&str] = &[
    "the",
    "and",
    "thou",
    "art",
    "not",
    "Romeo",
    "what's",
    "in",
    "a",
    "name",
    "that",
    "which",
    "we",
    "call",
    "rose",
    "by",
    "any",
    "other",
    "word",
    "would",
    "smell",
    "as",
    "sweet",
    "O",
    "wherefore",
    "love",
    "night",
    "light",
    "soft",
    "window",
    "breaks",
    "east",
    "sun",
    "ok",
    "see",
    "you",
    "at",
    "8",
    "tomorrow",
    "lol",
    "😀",
    "café",
    "naïve",
    "über",
    "sure",
];
/// Fragments that need escaping: most stanzas carry a few entity references.
const SPECIAL: &[&str] = &["&", "<", ">", "'", "\"", "it's", "R&D", "a<b", "\"quoted\""];
const CHAT_STATES: &[&str] = &["active", "composing", "paused", "inactive"];
const SHOWS: &[&str] = &["away", "chat", "dnd", "xa"];
const CAPS_NODES: &[&str] = &[
    "https://conversations.im",
    "https://gajim.org",
    "https://dino.im",
    "http://psi-im.org",
];
const GROUPS: &[&str] = &[
    "Friends",
    "Family",
    "Work",
    "Montagues & Capulets",
    "Verona",
];
const SUBSCRIPTIONS: &[&str] = &["both", "to", "from", "none"];

struct Gen {
    rng: XorShift,
    out: String,
    references: usize,
}

impl Gen {
    /// Appends `s` escaped for text or attribute values, counting the references written.
    fn escaped(&mut self, s: &str) {
        for c in s.chars() {
            let r = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '\'' => "&apos;",
                '"' => "&quot;",
                c => {
                    self.out.push(c);
                    continue;
                }
            };
            self.references += 1;
            self.out.push_str(r);
        }
    }

    fn jid(&mut self, with_resource: bool) -> String {
        let user = self.rng.pick(USERS);
        let domain = self.rng.pick(DOMAINS);
        if with_resource {
            let resource = self.rng.pick(RESOURCES);
            format!("{user}@{domain}/{resource}")
        } else {
            format!("{user}@{domain}")
        }
    }

    fn sentence(&mut self, words: u64) {
        for i in 0..words {
            if i > 0 {
                self.out.push(' ');
            }
            if self.rng.below(12) == 0 {
                let s = self.rng.pick(SPECIAL);
                self.escaped(s);
            } else {
                let w = self.rng.pick(WORDS);
                self.escaped(w);
            }
        }
    }

    fn hex(&mut self, digits: usize) {
        for _ in 0..digits {
            let d = u32::try_from(self.rng.below(16)).unwrap_or(0);
            self.out.push(char::from_digit(d, 16).unwrap_or('0'));
        }
    }

    fn base64ish(&mut self, chars: usize) {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for _ in 0..chars {
            let i = usize::try_from(self.rng.below(64)).unwrap_or(0);
            self.out.push(char::from(ALPHABET[i]));
        }
    }

    fn message(&mut self, n: u64) {
        let from = self.jid(true);
        let to = self.jid(false);
        let _ = write!(
            self.out,
            "<message from='{from}' to='{to}' type='chat' id='m{n:x}-{:x}' xml:lang='en'>",
            self.rng.next() & 0xffff
        );
        // Bodies: mostly short chat lines, some long paragraphs.
        let words = match self.rng.below(10) {
            0..6 => 3 + self.rng.below(15),
            6..9 => 15 + self.rng.below(40),
            _ => 60 + self.rng.below(120),
        };
        self.out.push_str("<body>");
        self.sentence(words);
        self.out.push_str("</body>");
        let state = self.rng.pick(CHAT_STATES);
        let _ = write!(
            self.out,
            "<{state} xmlns='http://jabber.org/protocol/chatstates'/>"
        );
        if self.rng.below(2) == 0 {
            self.out.push_str("<request xmlns='urn:xmpp:receipts'/>");
        }
        if self.rng.below(3) != 0 {
            self.out.push_str("<origin-id xmlns='urn:xmpp:sid:0' id='");
            self.hex(8);
            self.out.push('-');
            self.hex(4);
            self.out.push('-');
            self.hex(12);
            self.out.push_str("'/>");
        }
        if self.rng.below(4) == 0 {
            self.out
                .push_str("<markable xmlns='urn:xmpp:chat-markers:0'/>");
        }
        self.out.push_str("</message>");
    }

    fn presence(&mut self, n: u64) {
        let from = self.jid(true);
        let to = self.jid(false);
        let _ = write!(self.out, "<presence from='{from}' to='{to}' id='p{n:x}'>");
        if self.rng.below(2) == 0 {
            let show = self.rng.pick(SHOWS);
            let _ = write!(self.out, "<show>{show}</show>");
        }
        if self.rng.below(2) == 0 {
            self.out.push_str("<status>");
            let words = 2 + self.rng.below(8);
            self.sentence(words);
            self.out.push_str("</status>");
        }
        let _ = write!(self.out, "<priority>{}</priority>", self.rng.below(50));
        let node = self.rng.pick(CAPS_NODES);
        let _ = write!(
            self.out,
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='{node}' ver='"
        );
        self.base64ish(27);
        self.out
            .push_str("='/><x xmlns='vcard-temp:x:update'><photo>");
        self.hex(40);
        self.out.push_str("</photo></x>");
        if self.rng.below(5) == 0 {
            self.out
                .push_str("<delay xmlns='urn:xmpp:delay' from='capulet.lit' stamp='2026-11-21T18:");
            let _ = write!(
                self.out,
                "{:02}:{:02}Z'/>",
                self.rng.below(60),
                self.rng.below(60)
            );
        }
        self.out.push_str("</presence>");
    }

    /// Returns whether a roster result was written.
    fn iq(&mut self, n: u64) -> bool {
        let to = self.jid(true);
        match self.rng.below(10) {
            0..3 => {
                let _ = write!(
                    self.out,
                    "<iq to='{to}' type='result' id='roster{n:x}'><query xmlns='jabber:iq:roster' ver='ver{n}'>"
                );
                for i in 0..50 {
                    let user = self.rng.pick(USERS);
                    let domain = self.rng.pick(DOMAINS);
                    let sub = self.rng.pick(SUBSCRIPTIONS);
                    let _ = write!(
                        self.out,
                        "<item jid='{user}{i}@{domain}' subscription='{sub}' name='"
                    );
                    let words = 1 + self.rng.below(3);
                    self.sentence(words);
                    self.out.push_str("'>");
                    if self.rng.below(3) != 0 {
                        let group = self.rng.pick(GROUPS);
                        self.out.push_str("<group>");
                        self.escaped(group);
                        self.out.push_str("</group>");
                    }
                    self.out.push_str("</item>");
                }
                self.out.push_str("</query></iq>");
                true
            }
            3..6 => {
                let from = self.rng.pick(DOMAINS);
                let _ = write!(
                    self.out,
                    "<iq from='{from}' to='{to}' type='get' id='ping{n:x}'><ping xmlns='urn:xmpp:ping'/></iq>"
                );
                false
            }
            6..8 => {
                let from = self.jid(true);
                let _ = write!(
                    self.out,
                    "<iq from='{from}' to='{to}' type='result' id='disco{n:x}'>\
                     <query xmlns='http://jabber.org/protocol/disco#info'>\
                     <identity category='client' type='phone' name='Conversations'/>\
                     <feature var='http://jabber.org/protocol/caps'/>\
                     <feature var='http://jabber.org/protocol/chatstates'/>\
                     <feature var='http://jabber.org/protocol/disco#info'/>\
                     <feature var='urn:xmpp:receipts'/>\
                     <feature var='urn:xmpp:ping'/>\
                     <feature var='urn:xmpp:chat-markers:0'/>\
                     <feature var='urn:xmpp:message-correct:0'/>\
                     </query></iq>"
                );
                false
            }
            _ => {
                let _ = write!(self.out, "<iq to='{to}' type='result' id='r{n:x}'/>");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_near_the_target() {
        let a = client_stream(7, 200_000);
        let b = client_stream(7, 200_000);
        assert_eq!(a.bytes, b.bytes);
        assert!(a.bytes.len() >= 200_000 && a.bytes.len() < 210_000);
        assert_ne!(client_stream(8, 200_000).bytes, a.bytes);
        assert_eq!(a.stanzas, a.messages + a.presences + a.iqs);
        assert!(a.messages > a.presences && a.presences > a.iqs && a.roster_results > 0);
        assert!(a.references > a.stanzas);
    }

    #[test]
    fn parses_as_a_valid_stream_with_every_stanza() {
        let c = client_stream(3, 1_000_000);
        let mut parser = xmpp_xml::StreamParser::new();
        parser.feed(&c.bytes);
        let mut stanzas = 0;
        let mut ended = false;
        while let Some(event) = parser.next_event().unwrap() {
            match event {
                xmpp_xml::Event::Element(_) => stanzas += 1,
                xmpp_xml::Event::StreamEnd => ended = true,
                _ => {}
            }
        }
        assert_eq!(stanzas, c.stanzas);
        assert!(ended);
    }
}
