//! Typed `<message/>`, `<presence/>` and `<iq/>` stanzas (RFC 6120 §8, RFC 6121 §4-5) with
//! conversion to and from `minidom::Element`.
//!
//! Parsing never panics; a malformed stanza gives a [`StanzaParseError`] whose
//! [`condition`](StanzaParseError::condition) is the stanza error to answer with. Conversion is
//! lossless for the stanza's meaning: addresses, id, `xml:lang`, type, every known child with
//! its language, and every extension child in order. (Known children are written before the
//! extensions, and attributes other than the RFC's are not kept.)

use minidom::Element;

/// `jabber:client`, the client-to-server stanza namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// `jabber:server`, the server-to-server stanza namespace.
pub const NS_SERVER: &str = "jabber:server";

/// The parses and `into_element` of a typed stanza that keeps its unknown children in
/// `payloads` and reads an element with `read(el, payload)`, which hands each payload child
/// (its position among the child elements, and the child) to `payload`: the borrowed parse
/// copies them, the owned one moves them out, `into_element` moves them back in.
macro_rules! with_payloads {
    ($ty:ident) => {
        impl TryFrom<&Element> for $ty {
            type Error = StanzaParseError;

            fn try_from(el: &Element) -> Result<Self, StanzaParseError> {
                let mut payloads = Vec::new();
                let mut parsed = Self::read(el, &mut |_, child| payloads.push(child.clone()))?;
                parsed.payloads = payloads;
                Ok(parsed)
            }
        }

        /// Parses the element it owns: the payloads are moved out of it, not copied.
        impl TryFrom<Element> for $ty {
            type Error = StanzaParseError;

            fn try_from(el: Element) -> Result<Self, StanzaParseError> {
                let mut at = Vec::new();
                let mut parsed = Self::read(&el, &mut |i, _| at.push(i))?;
                parsed.payloads = super::children_at(el, &at);
                Ok(parsed)
            }
        }

        impl $ty {
            /// [`to_element`](Self::to_element), moving the payloads in (no copy of them).
            #[must_use]
            pub fn into_element(mut self) -> Element {
                let payloads = core::mem::take(&mut self.payloads);
                let mut el = self.to_element();
                for p in payloads {
                    el.append_child(p);
                }
                el
            }
        }
    };
}

/// Defines a vocabulary enum with `ALL`, `as_str`, `Display` and `FromStr`.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $wire:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The name used on the wire.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $wire,)+ }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::error::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$v),)+
                    _ => Err($crate::error::UnknownValue($what)),
                }
            }
        }
    };
}

// One file per stanza kind: `message.rs` (RFC 6121 §5), `presence.rs` (RFC 6121 §4),
// `iq.rs` (RFC 6120 §8.2.3); `header.rs` holds what they share (RFC 6120 §8.1 addressing,
// `xml:lang` texts) and `parse_error.rs` the parse errors and their stanza errors (RFC 6120
// §8.3). This file holds `Stanza`, any of the three.
pub(crate) mod header;
mod iq;
mod message;
mod parse_error;
mod presence;

pub(crate) use header::nc;
pub use header::{Header, LangText, StanzaNamespace};
pub use iq::{Iq, IqPayload, IqType};
pub use message::{Message, MessageType, Thread};
pub use parse_error::StanzaParseError;
pub use presence::{Presence, PresenceType, Show};

/// Any of the three stanzas.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Stanza {
    /// A message.
    Message(Message),
    /// A presence.
    Presence(Presence),
    /// An iq.
    Iq(Iq),
}

impl Stanza {
    /// The addressing.
    #[must_use]
    pub fn header(&self) -> &Header {
        match self {
            Self::Message(m) => &m.header,
            Self::Presence(p) => &p.header,
            Self::Iq(i) => &i.header,
        }
    }

    /// Mutable addressing.
    pub fn header_mut(&mut self) -> &mut Header {
        match self {
            Self::Message(m) => &mut m.header,
            Self::Presence(p) => &mut p.header,
            Self::Iq(i) => &mut i.header,
        }
    }

    /// Builds the element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        match self {
            Self::Message(m) => m.to_element(),
            Self::Presence(p) => p.to_element(),
            Self::Iq(i) => i.to_element(),
        }
    }

    /// Builds the element, moving the payloads and texts in (no copy of them).
    #[must_use]
    pub fn into_element(self) -> Element {
        match self {
            Self::Message(m) => m.into_element(),
            Self::Presence(p) => p.into_element(),
            Self::Iq(i) => i.into_element(),
        }
    }
}

/// Parses the element it owns: the payloads are moved out of it, not copied.
impl TryFrom<Element> for Stanza {
    type Error = StanzaParseError;

    fn try_from(el: Element) -> Result<Self, StanzaParseError> {
        match el.name() {
            "message" => Message::try_from(el).map(Self::Message),
            "presence" => Presence::try_from(el).map(Self::Presence),
            "iq" => Iq::try_from(el).map(Self::Iq),
            _ => Err(StanzaParseError::NotAStanza),
        }
    }
}

/// The child elements of `el` at the ascending positions `at` (among its child elements),
/// moved out of it: the payloads of a stanza parsed by value.
fn children_at(mut el: Element, at: &[usize]) -> Vec<Element> {
    if at.is_empty() {
        return Vec::new();
    }
    el.take_nodes()
        .into_iter()
        .filter_map(|node| match node {
            minidom::Node::Element(child) => Some(child),
            minidom::Node::Text(_) => None,
        })
        .enumerate()
        .filter(|(i, _)| at.binary_search(i).is_ok())
        .map(|(_, child)| child)
        .collect()
}

impl TryFrom<&Element> for Stanza {
    type Error = StanzaParseError;

    fn try_from(el: &Element) -> Result<Self, StanzaParseError> {
        match el.name() {
            "message" => Message::try_from(el).map(Self::Message),
            "presence" => Presence::try_from(el).map(Self::Presence),
            "iq" => Iq::try_from(el).map(Self::Iq),
            _ => Err(StanzaParseError::NotAStanza),
        }
    }
}

impl From<Message> for Stanza {
    fn from(m: Message) -> Self {
        Self::Message(m)
    }
}

impl From<Presence> for Stanza {
    fn from(p: Presence) -> Self {
        Self::Presence(p)
    }
}

impl From<Iq> for Stanza {
    fn from(i: Iq) -> Self {
        Self::Iq(i)
    }
}

/// Parses test XML.
#[cfg(test)]
fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

#[cfg(test)]
mod by_value_tests {
    use super::{Stanza, parse};

    /// Parsing an owned element moves its payloads out and gives what parsing a borrowed
    /// one gives (the same stanza, or the same error); `into_element` gives `to_element`.
    #[test]
    fn owned_and_borrowed_parses_agree() {
        for xml in [
            "<message xmlns='jabber:client' to='a@b' type='chat' id='1'>text<body>hi</body>\
             <x xmlns='urn:x'><y/></x> more <active xmlns='http://jabber.org/protocol/chatstates'/>\
             <thread>t</thread><unknown/></message>",
            "<message xmlns='jabber:client'><body>one</body><body>two</body></message>",
            "<presence xmlns='jabber:client'><show>dnd</show><c xmlns='urn:caps' v='1'/>\
             <priority>3</priority><status xml:lang='en'>s</status><d xmlns='urn:d'/></presence>",
            "<presence xmlns='jabber:client'><priority>300</priority></presence>",
            "<presence xmlns='jabber:client' type='error'><e xmlns='urn:e'/><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
            "<iq xmlns='jabber:client' id='1' type='get'><query xmlns='jabber:iq:roster'/></iq>",
            "<iq xmlns='jabber:client' id='1' type='set'>  <q xmlns='x'><i/></q> </iq>",
            "<iq xmlns='jabber:client' id='1' type='result'/>",
            "<iq xmlns='jabber:client' id='1' type='result'><r xmlns='x'/></iq>",
            "<iq xmlns='jabber:client' id='1' type='result'><r xmlns='x'/><s xmlns='x'/></iq>",
            "<iq xmlns='jabber:client' id='1' type='set'/>",
            "<iq xmlns='jabber:client' type='get'><q xmlns='x'/></iq>",
            "<iq xmlns='jabber:client' id='1' type='error'><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>\
             <q xmlns='x'/></iq>",
            "<iq xmlns='jabber:client' id='1' type='error'><q xmlns='x'/><error type='auth'>\
             <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
            "<other xmlns='jabber:client'/>",
        ] {
            let el = parse(xml);
            let borrowed = Stanza::try_from(&el);
            let owned = Stanza::try_from(el.clone());
            assert_eq!(owned, borrowed, "{xml}");
            if let Ok(s) = borrowed {
                assert_eq!(s.clone().into_element(), s.to_element(), "{xml}");
            }
        }
    }
}
