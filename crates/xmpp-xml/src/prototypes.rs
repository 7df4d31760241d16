//! Empty elements of the common XMPP vocabulary, built once and shared by every parser.
//!
//! `minidom` only takes a namespace as a `String`, which it then puts behind a fresh `Arc`: two
//! allocations per element besides its name. Cloning a prepared empty element shares that
//! `Arc` instead. The table used to be a 64-slot cache inside every parser (7 KiB of slots per
//! stream plus its names); one immutable process-wide table costs a stream nothing, and an idle
//! stream's memory is what a server with many connections pays for. Elements outside the table
//! are built fresh, exactly as `minidom` would.

use std::sync::OnceLock;

use minidom::Element;

/// The vocabulary: RFC 6120/6121 stanzas and their children, stream negotiation, and the
/// payloads of widely deployed XEPs (chat states, receipts, markers, caps, disco, roster,
/// delay, stanza ids, hints, carbons, forwarding, MAM, MUC, ping, vCard updates, stream
/// management, CSI, OMEMO/OX containers are left out: their children vary too much).
const VOCABULARY: &[(&str, &[&str])] = &[
    (
        "jabber:client",
        &[
            "message", "presence", "iq", "body", "subject", "thread", "show", "status", "priority",
            "error",
        ],
    ),
    (
        "jabber:server",
        &[
            "message", "presence", "iq", "body", "subject", "thread", "show", "status", "priority",
            "error",
        ],
    ),
    (
        "urn:ietf:params:xml:ns:xmpp-stanzas",
        &[
            "text",
            "bad-request",
            "conflict",
            "feature-not-implemented",
            "forbidden",
            "item-not-found",
            "not-acceptable",
            "not-allowed",
            "not-authorized",
            "recipient-unavailable",
            "remote-server-not-found",
            "service-unavailable",
        ],
    ),
    (
        "urn:ietf:params:xml:ns:xmpp-bind",
        &["bind", "resource", "jid"],
    ),
    ("urn:ietf:params:xml:ns:xmpp-session", &["session"]),
    (
        "urn:ietf:params:xml:ns:xmpp-sasl",
        &[
            "auth",
            "response",
            "challenge",
            "success",
            "failure",
            "abort",
        ],
    ),
    ("urn:ietf:params:xml:ns:xmpp-tls", &["starttls", "proceed"]),
    ("jabber:iq:roster", &["query", "item", "group"]),
    (
        "http://jabber.org/protocol/chatstates",
        &["active", "composing", "paused", "inactive", "gone"],
    ),
    ("http://jabber.org/protocol/caps", &["c"]),
    (
        "http://jabber.org/protocol/disco#info",
        &["query", "identity", "feature"],
    ),
    ("http://jabber.org/protocol/disco#items", &["query", "item"]),
    ("urn:xmpp:receipts", &["request", "received"]),
    (
        "urn:xmpp:chat-markers:0",
        &["markable", "received", "displayed", "acknowledged"],
    ),
    ("urn:xmpp:delay", &["delay"]),
    ("urn:xmpp:sid:0", &["origin-id", "stanza-id"]),
    (
        "urn:xmpp:hints",
        &["store", "no-store", "no-copy", "no-permanent-store"],
    ),
    (
        "urn:xmpp:carbons:2",
        &["received", "sent", "private", "enable"],
    ),
    ("urn:xmpp:forward:0", &["forwarded"]),
    ("urn:xmpp:mam:2", &["result", "fin"]),
    ("http://jabber.org/protocol/muc", &["x"]),
    (
        "http://jabber.org/protocol/muc#user",
        &["x", "item", "status"],
    ),
    ("urn:xmpp:ping", &["ping"]),
    ("vcard-temp:x:update", &["x", "photo"]),
    ("urn:xmpp:sm:3", &["r", "a", "enable", "enabled"]),
    ("urn:xmpp:csi:0", &["active", "inactive"]),
    ("jabber:x:oob", &["x", "url", "desc"]),
];

/// Open addressing with linear probing; at most half full, so probes stay short.
const SLOTS: usize = 512;

struct Table {
    slots: Vec<Option<(u32, Element)>>,
}

static TABLE: OnceLock<Table> = OnceLock::new();

fn table() -> &'static Table {
    TABLE.get_or_init(|| {
        let mut slots: Vec<Option<(u32, Element)>> = (0..SLOTS).map(|_| None).collect();
        for (ns, names) in VOCABULARY {
            for name in *names {
                let hash = hash(name, ns);
                let mut at = hash as usize % SLOTS;
                while slots[at].is_some() {
                    at = (at + 1) % SLOTS;
                }
                slots[at] = Some((hash, Element::bare(*name, *ns)));
            }
        }
        Table { slots }
    })
}

/// A few bytes are enough to spread the vocabulary: the name's length, first and last bytes and
/// the namespace's length and last byte (namespaces share long prefixes). The slot is then
/// compared in full.
fn hash(name: &str, ns: &str) -> u32 {
    let (n, t) = (name.as_bytes(), ns.as_bytes());
    let mut hash = u32::try_from(n.len())
        .unwrap_or(0)
        .wrapping_mul(0x9E37_79B1);
    hash ^= u32::from(n.first().copied().unwrap_or(0)) << 5;
    hash ^= u32::from(n.last().copied().unwrap_or(0)) << 11;
    hash ^= u32::try_from(t.len())
        .unwrap_or(0)
        .wrapping_mul(0x85EB_CA77);
    hash ^= u32::from(t.last().copied().unwrap_or(0)) << 17;
    hash ^= u32::from(t.get(t.len().saturating_sub(3)).copied().unwrap_or(0)) << 23;
    hash = (hash ^ (hash >> 15)).wrapping_mul(0x2C1B_3C6D);
    hash ^ (hash >> 12)
}

/// An empty element `name` in `ns`: a clone of the shared prototype when the pair is in the
/// vocabulary (the namespace `Arc` is shared), a fresh element otherwise.
pub(crate) fn element(name: &str, ns: &str) -> Element {
    if let Some(proto) = lookup(name, ns) {
        return proto.clone();
    }
    Element::bare(name, ns)
}

fn lookup(name: &str, ns: &str) -> Option<&'static Element> {
    let table = table();
    let hash = hash(name, ns);
    let mut at = hash as usize % SLOTS;
    // The table is at most half full: an empty slot always ends the probe sequence.
    for _ in 0..SLOTS {
        match &table.slots[at] {
            None => return None,
            Some((h, proto)) if *h == hash && proto.name() == name && proto.has_ns(ns) => {
                return Some(proto);
            }
            Some(_) => at = (at + 1) % SLOTS,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_found_and_shared() {
        let entries: usize = VOCABULARY.iter().map(|(_, names)| names.len()).sum();
        assert!(entries * 2 <= SLOTS, "table over half full");
        for (ns, names) in VOCABULARY {
            for name in *names {
                let proto = lookup(name, ns).unwrap_or_else(|| panic!("{name} {ns} missing"));
                assert!(proto.is(*name, *ns));
                assert_eq!(element(name, ns), Element::bare(*name, *ns));
            }
        }
        assert!(lookup("message", "urn:example").is_none());
        assert_eq!(
            element("message", "urn:example"),
            Element::bare("message", "urn:example")
        );
    }
}
