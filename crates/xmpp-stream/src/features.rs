//! Stream features as data.
//!
//! Each feature is described once, in [`FEATURES`]: its element name and namespace, the
//! session flags it needs, the flags that make it pointless, the flags it grants and whether
//! negotiating it restarts the stream. The server lists from this table, the client parses
//! against it and picks the next feature to negotiate from it, for both roles. Adding a feature
//! (XEP-0198 `sm`, SASL2 `authentication`, dialback) means a row here, a variant of
//! [`Advertised`] and a negotiation module: no state enum is reshaped.

use minidom::Element;

use crate::flags::SessionFlags;

/// The XML namespaces this crate speaks.
pub mod ns {
    /// Client-to-server content namespace.
    pub const JABBER_CLIENT: &str = "jabber:client";
    /// The `stream:` prefix namespace.
    pub const STREAMS: &str = "http://etherx.jabber.org/streams";
    /// STARTTLS (RFC 6120 §5).
    pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
    /// SASL (RFC 6120 §6).
    pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
    /// Resource binding (RFC 6120 §7).
    pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
    /// Legacy session establishment (RFC 3921 §3, draft-cridland-xmpp-session).
    pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
    /// XEP-0440 SASL channel-binding type capability.
    pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
    /// XEP-0288 bidirectional server-to-server streams: the request.
    pub const BIDI: &str = "urn:xmpp:bidi";
    /// XEP-0288: the stream feature.
    pub const BIDI_FEATURE: &str = "urn:xmpp:features:bidi";
    /// XEP-0198 stream management (version 3).
    pub const SM: &str = crate::sm::NS;
}

/// The features this crate negotiates itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FeatureKind {
    /// `<starttls/>`.
    StartTls,
    /// `<mechanisms/>`: SASL.
    Sasl,
    /// `<bind/>`: resource binding.
    Bind,
    /// `<session/>`: legacy session establishment.
    Session,
    /// `<sasl-channel-binding/>` (XEP-0440): which channel-binding types the server supports.
    /// Informational: it shapes SASL mechanism selection and is never negotiated itself.
    ChannelBindingTypes,
    /// `<sm xmlns='urn:xmpp:sm:3'/>` (XEP-0198): stream management, enabled after binding or
    /// used to resume instead of binding.
    StreamManagement,
    /// `<register xmlns='http://jabber.org/features/iq-register'/>` (XEP-0077 §8): in-band
    /// registration, before authentication.
    Register,
}

/// The description of one feature: everything both roles need to know about it as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Which feature.
    pub kind: FeatureKind,
    /// Element name inside `<stream:features/>`.
    pub name: &'static str,
    /// Element namespace.
    pub namespace: &'static str,
    /// Flags that must all be set before the feature is listed or negotiated.
    pub needs: SessionFlags,
    /// Flags any of which makes the feature pointless (never listed then).
    pub forbidden_by: SessionFlags,
    /// Flags set once the feature is negotiated.
    pub grants: SessionFlags,
    /// Whether success restarts the stream.
    pub restarts: bool,
}

/// The one gate of every feature row, built-in or the host's: all of `needs`, none of
/// `forbidden_by`.
const fn gate(flags: SessionFlags, needs: SessionFlags, forbidden_by: SessionFlags) -> bool {
    flags.contains(needs) && !flags.intersects(forbidden_by)
}

impl FeatureSpec {
    /// Whether the feature may be listed / negotiated in session state `flags`.
    pub const fn available(&self, flags: SessionFlags) -> bool {
        gate(flags, self.needs, self.forbidden_by)
    }

    /// The row for `(name, namespace)`, if this crate knows the feature.
    pub fn lookup(name: &str, namespace: &str) -> Option<&'static FeatureSpec> {
        FEATURES
            .iter()
            .find(|spec| spec.name == name && spec.namespace == namespace)
    }

    /// The row for `kind`.
    pub fn of(kind: FeatureKind) -> &'static FeatureSpec {
        match kind {
            FeatureKind::StartTls => &FEATURES[0],
            FeatureKind::Register => &FEATURES[1],
            FeatureKind::Sasl => &FEATURES[2],
            FeatureKind::Bind => &FEATURES[3],
            FeatureKind::Session => &FEATURES[4],
            FeatureKind::ChannelBindingTypes => &FEATURES[5],
            FeatureKind::StreamManagement => &FEATURES[6],
        }
    }
}

/// Every feature this crate negotiates, in negotiation order.
pub const FEATURES: [FeatureSpec; 7] = [
    FeatureSpec {
        kind: FeatureKind::StartTls,
        name: "starttls",
        namespace: ns::TLS,
        needs: SessionFlags::EMPTY,
        forbidden_by: SessionFlags::SECURE.union(SessionFlags::AUTHENTICATED),
        grants: SessionFlags::SECURE,
        restarts: true,
    },
    // Listed only when the server allows registration; negotiated only by a client asked to
    // register, before SASL.
    FeatureSpec {
        kind: FeatureKind::Register,
        name: "register",
        namespace: crate::register::FEATURE_NS,
        needs: SessionFlags::EMPTY,
        forbidden_by: SessionFlags::AUTHENTICATED,
        grants: SessionFlags::EMPTY,
        restarts: false,
    },
    FeatureSpec {
        kind: FeatureKind::Sasl,
        name: "mechanisms",
        namespace: ns::SASL,
        needs: SessionFlags::EMPTY,
        forbidden_by: SessionFlags::AUTHENTICATED,
        grants: SessionFlags::AUTHENTICATED,
        restarts: true,
    },
    FeatureSpec {
        kind: FeatureKind::Bind,
        name: "bind",
        namespace: ns::BIND,
        needs: SessionFlags::AUTHENTICATED,
        forbidden_by: SessionFlags::BOUND,
        grants: SessionFlags::BOUND,
        restarts: false,
    },
    FeatureSpec {
        kind: FeatureKind::Session,
        name: "session",
        namespace: ns::SESSION,
        needs: SessionFlags::AUTHENTICATED,
        forbidden_by: SessionFlags::EMPTY,
        grants: SessionFlags::EMPTY,
        restarts: false,
    },
    FeatureSpec {
        kind: FeatureKind::ChannelBindingTypes,
        name: "sasl-channel-binding",
        namespace: ns::SASL_CB,
        needs: SessionFlags::SECURE,
        forbidden_by: SessionFlags::AUTHENTICATED,
        grants: SessionFlags::EMPTY,
        restarts: false,
    },
    FeatureSpec {
        kind: FeatureKind::StreamManagement,
        name: "sm",
        namespace: ns::SM,
        needs: SessionFlags::AUTHENTICATED,
        forbidden_by: SessionFlags::EMPTY,
        grants: SessionFlags::EMPTY,
        restarts: false,
    },
];

/// A feature row the host adds to what a receiving c2s stream lists
/// ([`ServerConfig::extra_features`](crate::ServerConfig::extra_features)): a feature this
/// crate does not negotiate itself but whose protocol the host (or `xmpp-im`) implements
/// once the session is established, such as roster versioning (`<ver/>`, RFC 6121 §2.6),
/// subscription pre-approval (`<sub/>`, §3.4), entity capabilities (`<c/>`, XEP-0115),
/// client state indication (`<csi/>`, XEP-0352) or in-band registration (`<register/>`,
/// XEP-0077). It is gated by the session flags exactly as the rows of [`FEATURES`] are, and
/// listed after them, in the host's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFeature {
    /// The child of `<stream:features/>` listed as is.
    pub element: Element,
    /// Flags that must all be set before the row is listed.
    pub needs: SessionFlags,
    /// Flags any of which hides the row.
    pub forbidden_by: SessionFlags,
}

impl HostFeature {
    /// A row listed once the client is authenticated (where Prosody and ejabberd list
    /// `<ver/>`, `<sub/>`, `<c/>` and `<csi/>`), on every later features list.
    #[must_use]
    pub fn after_auth(element: Element) -> Self {
        HostFeature {
            element,
            needs: SessionFlags::AUTHENTICATED,
            forbidden_by: SessionFlags::EMPTY,
        }
    }

    /// A row listed before authentication only (in-band registration).
    #[must_use]
    pub fn before_auth(element: Element) -> Self {
        HostFeature {
            element,
            needs: SessionFlags::EMPTY,
            forbidden_by: SessionFlags::AUTHENTICATED,
        }
    }

    /// Whether the row is listed in session state `flags`.
    #[must_use]
    pub const fn available(&self, flags: SessionFlags) -> bool {
        gate(flags, self.needs, self.forbidden_by)
    }
}

/// Most mechanisms kept from one `<mechanisms/>` list; more are ignored (a bound on what the
/// peer makes us hold).
pub const MAX_MECHANISMS: usize = 32;
/// Longest mechanism name kept (RFC 4422 §3.1 allows 20 characters).
const MAX_MECHANISM_NAME: usize = 20;

/// One child of `<stream:features/>`, parsed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Advertised {
    /// STARTTLS, with or without `<required/>`.
    StartTls {
        /// `<required/>` was present.
        required: bool,
    },
    /// SASL with the listed mechanism names, in the server's order.
    Mechanisms(Vec<String>),
    /// Resource binding.
    Bind,
    /// Legacy session establishment.
    Session {
        /// `<optional/>` was present: the client should skip it.
        optional: bool,
    },
    /// XEP-0440: the channel-binding type names the server supports, in its order.
    ChannelBindingTypes(Vec<String>),
    /// XEP-0198 stream management.
    StreamManagement,
    /// XEP-0077 in-band registration.
    Register,
    /// A feature this crate does not negotiate, kept for the host.
    Other(Element),
}

impl Advertised {
    /// Parse one child of `<stream:features/>`. Never fails: what is not understood is kept as
    /// [`Advertised::Other`].
    pub fn parse(child: &Element) -> Advertised {
        let Some(spec) = FeatureSpec::lookup(child.name(), &child.ns()) else {
            return Advertised::Other(child.clone());
        };
        match spec.kind {
            FeatureKind::StartTls => Advertised::StartTls {
                required: child.has_child("required", ns::TLS),
            },
            FeatureKind::Sasl => Advertised::Mechanisms(
                child
                    .children()
                    .filter(|c| c.is("mechanism", ns::SASL))
                    .map(|c| c.text().trim().to_owned())
                    .filter(|name| !name.is_empty() && name.len() <= MAX_MECHANISM_NAME)
                    .take(MAX_MECHANISMS)
                    .collect(),
            ),
            FeatureKind::Bind => Advertised::Bind,
            FeatureKind::Session => Advertised::Session {
                optional: child.has_child("optional", ns::SESSION),
            },
            FeatureKind::ChannelBindingTypes => Advertised::ChannelBindingTypes(
                child
                    .children()
                    .filter(|c| c.is("channel-binding", ns::SASL_CB))
                    .filter_map(|c| c.attr("type"))
                    .filter(|name| name.len() <= MAX_MECHANISM_NAME)
                    .map(str::to_owned)
                    .take(MAX_MECHANISMS)
                    .collect(),
            ),
            FeatureKind::StreamManagement => Advertised::StreamManagement,
            FeatureKind::Register => Advertised::Register,
        }
    }

    /// Which known feature this is, if any.
    pub fn kind(&self) -> Option<FeatureKind> {
        match self {
            Advertised::StartTls { .. } => Some(FeatureKind::StartTls),
            Advertised::Mechanisms(_) => Some(FeatureKind::Sasl),
            Advertised::Bind => Some(FeatureKind::Bind),
            Advertised::Session { .. } => Some(FeatureKind::Session),
            Advertised::ChannelBindingTypes(_) => Some(FeatureKind::ChannelBindingTypes),
            Advertised::StreamManagement => Some(FeatureKind::StreamManagement),
            Advertised::Register => Some(FeatureKind::Register),
            Advertised::Other(_) => None,
        }
    }

    /// The element a server lists for this feature.
    pub fn to_element(&self) -> Element {
        match self {
            Advertised::StartTls { required } => {
                let mut el = Element::bare("starttls", ns::TLS);
                if *required {
                    el.append_child(Element::bare("required", ns::TLS));
                }
                el
            }
            Advertised::Mechanisms(names) => {
                let mut el = Element::bare("mechanisms", ns::SASL);
                for name in names {
                    el.append_child(
                        Element::builder("mechanism", ns::SASL)
                            .append(name.as_str())
                            .build(),
                    );
                }
                el
            }
            Advertised::Bind => Element::bare("bind", ns::BIND),
            Advertised::Session { optional } => {
                let mut el = Element::bare("session", ns::SESSION);
                if *optional {
                    el.append_child(Element::bare("optional", ns::SESSION));
                }
                el
            }
            Advertised::ChannelBindingTypes(types) => {
                let mut el = Element::bare("sasl-channel-binding", ns::SASL_CB);
                for kind in types {
                    let mut child = Element::bare("channel-binding", ns::SASL_CB);
                    crate::codec::set_attr(&mut child, "type", kind);
                    el.append_child(child);
                }
                el
            }
            Advertised::StreamManagement => Element::bare("sm", ns::SM),
            Advertised::Register => Element::bare("register", crate::register::FEATURE_NS),
            Advertised::Other(el) => el.clone(),
        }
    }
}

/// The parsed content of one `<stream:features/>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Features {
    /// The features, in the order listed.
    pub items: Vec<Advertised>,
}

impl Features {
    /// Parse `<stream:features/>`. Unknown children are kept as [`Advertised::Other`].
    pub fn parse(features: &Element) -> Features {
        Features {
            items: features.children().map(Advertised::parse).collect(),
        }
    }

    /// The `<stream:features/>` element listing these features.
    pub fn to_element(&self) -> Element {
        let mut el = Element::bare("features", ns::STREAMS);
        for item in &self.items {
            el.append_child(item.to_element());
        }
        el
    }

    /// The listed feature of kind `kind`, if any.
    pub fn get(&self, kind: FeatureKind) -> Option<&Advertised> {
        self.items.iter().find(|item| item.kind() == Some(kind))
    }

    /// The mechanism names, if SASL is listed.
    pub fn mechanisms(&self) -> Option<&[String]> {
        self.items.iter().find_map(|item| match item {
            Advertised::Mechanisms(names) => Some(names.as_slice()),
            _ => None,
        })
    }

    /// The XEP-0440 channel-binding types, if listed.
    pub fn channel_binding_types(&self) -> Option<&[String]> {
        self.items.iter().find_map(|item| match item {
            Advertised::ChannelBindingTypes(names) => Some(names.as_slice()),
            _ => None,
        })
    }

    /// Features listed that this crate does not negotiate.
    pub fn others(&self) -> impl Iterator<Item = &Element> {
        self.items.iter().filter_map(|item| match item {
            Advertised::Other(el) => Some(el),
            _ => None,
        })
    }

    /// The first feature, in negotiation order, that is listed, available in `flags`, and that
    /// `wanted` accepts: what the client negotiates next.
    pub fn next_to_negotiate(
        &self,
        flags: SessionFlags,
        mut wanted: impl FnMut(&Advertised) -> bool,
    ) -> Option<&Advertised> {
        FEATURES
            .iter()
            .filter(|spec| spec.available(flags))
            .find_map(|spec| self.get(spec.kind).filter(|item| wanted(item)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Features {
        let xml = xml.replacen(
            "<stream:features>",
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>",
            1,
        );
        Features::parse(&xml.parse::<Element>().expect("test XML"))
    }

    // Captured from Prosody and ejabberd (shared/peers/features-*.txt).
    const PROSODY_PRE_TLS: &str = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
    const EJABBERD_POST_TLS: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-512-PLUS</mechanism><mechanism>SCRAM-SHA-512</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
    const PROSODY_POST_AUTH: &str = "<stream:features><c hash='sha-1' ver='j/Y94sSrQ04HC31Dsn52+Z4ESGQ=' node='http://prosody.im' xmlns='http://jabber.org/protocol/caps'/><ver xmlns='urn:xmpp:features:rosterver'/><csi xmlns='urn:xmpp:csi:0'/><sub xmlns='urn:xmpp:features:pre-approval'/><sm xmlns='urn:xmpp:sm:2'><optional/></sm><sm xmlns='urn:xmpp:sm:3'><optional/></sm><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>";

    #[test]
    fn parses_real_servers_features() {
        let pre = parse(PROSODY_PRE_TLS);
        assert_eq!(pre.items, vec![Advertised::StartTls { required: true }]);

        let post = parse(EJABBERD_POST_TLS);
        let mechs = post.mechanisms().expect("mechanisms listed");
        assert_eq!(mechs.len(), 7);
        assert_eq!(mechs[0], "PLAIN");
        assert_eq!(mechs[3], "SCRAM-SHA-256-PLUS");

        let auth = parse(PROSODY_POST_AUTH);
        assert_eq!(auth.get(FeatureKind::Bind), Some(&Advertised::Bind));
        assert_eq!(
            auth.get(FeatureKind::Session),
            Some(&Advertised::Session { optional: true })
        );
        // caps, rosterver, csi, pre-approval, sm:2 (sm:3 is XEP-0198, negotiated here).
        assert_eq!(auth.others().count(), 5);
        assert_eq!(
            auth.get(FeatureKind::StreamManagement),
            Some(&Advertised::StreamManagement)
        );
    }

    #[test]
    fn next_feature_follows_flags() {
        let all = Features {
            items: vec![
                Advertised::Session { optional: false },
                Advertised::Bind,
                Advertised::Mechanisms(vec!["PLAIN".into()]),
                Advertised::StartTls { required: false },
            ],
        };
        let next = |flags| {
            all.next_to_negotiate(flags, |_| true)
                .and_then(Advertised::kind)
        };
        assert_eq!(next(SessionFlags::EMPTY), Some(FeatureKind::StartTls));
        assert_eq!(next(SessionFlags::SECURE), Some(FeatureKind::Sasl));
        assert_eq!(
            next(SessionFlags::SECURE | SessionFlags::AUTHENTICATED),
            Some(FeatureKind::Bind)
        );
        assert_eq!(
            next(SessionFlags::SECURE | SessionFlags::AUTHENTICATED | SessionFlags::BOUND),
            Some(FeatureKind::Session)
        );
        // A client that declines TLS goes straight to SASL.
        let declined = all.next_to_negotiate(SessionFlags::EMPTY, |f| {
            f.kind() != Some(FeatureKind::StartTls)
        });
        assert_eq!(declined.and_then(Advertised::kind), Some(FeatureKind::Sasl));
    }

    #[test]
    fn list_then_parse_round_trips() {
        let features = Features {
            items: vec![
                Advertised::StartTls { required: true },
                Advertised::Mechanisms(vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]),
                Advertised::Bind,
                Advertised::Session { optional: true },
                Advertised::ChannelBindingTypes(vec![
                    "tls-exporter".into(),
                    "tls-server-end-point".into(),
                ]),
                Advertised::StreamManagement,
                Advertised::Register,
            ],
        };
        assert_eq!(Features::parse(&features.to_element()), features);
        for spec in FEATURES {
            assert_eq!(FeatureSpec::of(spec.kind), &spec);
            assert_eq!(FeatureSpec::lookup(spec.name, spec.namespace), Some(&spec));
        }
    }

    #[test]
    fn hostile_mechanism_lists_are_bounded() {
        let mut el = Element::bare("mechanisms", ns::SASL);
        for i in 0..100 {
            el.append_child(
                Element::builder("mechanism", ns::SASL)
                    .append(format!("M{i}"))
                    .build(),
            );
        }
        el.append_child(
            Element::builder("mechanism", ns::SASL)
                .append("X".repeat(500))
                .build(),
        );
        let Advertised::Mechanisms(names) = Advertised::parse(&el) else {
            panic!("not mechanisms")
        };
        assert_eq!(names.len(), MAX_MECHANISMS);
    }
}
