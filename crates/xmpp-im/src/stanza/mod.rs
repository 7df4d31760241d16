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
