//! What kind of stream a machine speaks and which end of it it is: the two coordinates of
//! every row of the negotiation table ([`crate::rules`]).

use core::fmt;

use xmpp_xml::ContentNamespace;

/// The kind of XML stream, named by its content namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamKind {
    /// `jabber:client`: a client and its server (RFC 6120).
    Client,
    /// `jabber:component:accept`: an external component and a server (XEP-0114).
    Component,
    /// `jabber:server`: two servers (RFC 6120 §13, server-to-server federation).
    Server,
}

impl StreamKind {
    /// Every kind, in table order.
    pub const ALL: [StreamKind; 3] = [
        StreamKind::Client,
        StreamKind::Component,
        StreamKind::Server,
    ];

    /// The content namespace of the stream header and of its stanzas.
    pub fn content_namespace(self) -> ContentNamespace {
        match self {
            StreamKind::Client => ContentNamespace::Client,
            StreamKind::Component => ContentNamespace::ComponentAccept,
            StreamKind::Server => ContentNamespace::Server,
        }
    }

    /// The namespace name, `jabber:client` or `jabber:component:accept`.
    pub const fn namespace(self) -> &'static str {
        match self {
            StreamKind::Client => xmpp_xml::NS_CLIENT,
            StreamKind::Component => xmpp_xml::NS_COMPONENT_ACCEPT,
            StreamKind::Server => xmpp_xml::NS_SERVER,
        }
    }

    /// A short name for tables and logs: `c2s`, `component`, `s2s`.
    pub const fn short_name(self) -> &'static str {
        match self {
            StreamKind::Client => "c2s",
            StreamKind::Component => "component",
            StreamKind::Server => "s2s",
        }
    }

    pub(crate) const fn bit(self) -> u8 {
        match self {
            StreamKind::Client => 1,
            StreamKind::Component => 2,
            StreamKind::Server => 4,
        }
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// Which end of the stream a machine is (RFC 6120 §1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The initiating entity: a client, a component connecting to its server, or the server
    /// that opens a server-to-server connection.
    Initiating,
    /// The receiving entity: the server a client, a component or another server connects to.
    Receiving,
}

impl Role {
    /// `initiating` or `receiving`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Initiating => "initiating",
            Role::Receiving => "receiving",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of stream kinds, for table rows that apply to several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kinds(u8);

impl Kinds {
    /// Every kind.
    pub const ALL: Kinds = Kinds(u8::MAX);
    /// `jabber:client` only.
    pub const CLIENT: Kinds = Kinds(StreamKind::Client.bit());
    /// `jabber:component:accept` only.
    pub const COMPONENT: Kinds = Kinds(StreamKind::Component.bit());
    /// `jabber:server` only.
    pub const SERVER: Kinds = Kinds(StreamKind::Server.bit());
    /// `jabber:client` and `jabber:server`: the streams with STARTTLS and SASL.
    pub const CLIENT_AND_SERVER: Kinds = Kinds(StreamKind::Client.bit() | StreamKind::Server.bit());

    /// The set with `kind` added.
    #[must_use]
    pub const fn with(self, kind: StreamKind) -> Kinds {
        Kinds(self.0 | kind.bit())
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: StreamKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// The roles a table row applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Roles {
    /// Only the initiating entity.
    Initiating,
    /// Only the receiving entity.
    Receiving,
    /// Both ends.
    Both,
}

impl Roles {
    /// Whether `role` is included.
    pub const fn contains(self, role: Role) -> bool {
        matches!(
            (self, role),
            (Roles::Both, _)
                | (Roles::Initiating, Role::Initiating)
                | (Roles::Receiving, Role::Receiving)
        )
    }
}
