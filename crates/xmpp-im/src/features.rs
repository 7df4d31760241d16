//! What a server implements, as clients learn it: stream features listed after
//! authentication (RFC 6120 §4.3.2) and `disco#info` features (XEP-0030), as one table of
//! data. [`ServerConfig::features`](crate::ServerConfig::features) gives the rows of what
//! this crate has switched on; a host appends its own rows (entity capabilities, client state
//! indication, in-band registration, ...) of the same type, and builds both its stream
//! features list and its `disco#info` answer from the one list, so the two never disagree.

use minidom::Element;

/// `urn:xmpp:features:rosterver`: the stream feature of roster versioning (RFC 6121 §2.6).
pub const NS_ROSTERVER: &str = "urn:xmpp:features:rosterver";
/// `urn:xmpp:features:pre-approval`: the stream feature of pre-approval (RFC 6121 §3.4).
pub const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";

/// One thing the server implements: the element listed in `<stream:features/>` once the
/// client is authenticated, the `var` of a `disco#info` `<feature/>`, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFeature {
    /// The stream feature child (`<ver xmlns='urn:xmpp:features:rosterver'/>`), if any.
    pub stream: Option<Element>,
    /// The `disco#info` feature `var` (`jabber:iq:roster`), if any.
    pub disco: Option<String>,
    /// List the stream feature before authentication instead of after (in-band
    /// registration, XEP-0077); default no.
    pub before_auth: bool,
}

impl ServiceFeature {
    /// A stream feature only: an empty element `name` in `namespace`.
    #[must_use]
    pub fn stream(name: &str, namespace: &str) -> Self {
        ServiceFeature {
            stream: Some(Element::bare(name, namespace)),
            disco: None,
            before_auth: false,
        }
    }

    /// A `disco#info` feature only.
    #[must_use]
    pub fn disco(var: &str) -> Self {
        ServiceFeature {
            stream: None,
            disco: Some(var.to_owned()),
            before_auth: false,
        }
    }

    /// The same row that is also listed in `disco#info` as `var`.
    #[must_use]
    pub fn with_disco(mut self, var: &str) -> Self {
        self.disco = Some(var.to_owned());
        self
    }
}

/// The `disco#info` feature `var`s of `rows`, in order, without repeats.
pub fn disco_vars(rows: &[ServiceFeature]) -> impl Iterator<Item = &str> {
    rows.iter().enumerate().filter_map(|(i, row)| {
        let var = row.disco.as_deref()?;
        let repeated = rows[..i].iter().any(|r| r.disco.as_deref() == Some(var));
        (!repeated).then_some(var)
    })
}

/// The stream feature children of `rows`, in order.
pub fn stream_elements(rows: &[ServiceFeature]) -> impl Iterator<Item = &Element> {
    rows.iter().filter_map(|row| row.stream.as_ref())
}
