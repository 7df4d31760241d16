//! The JID types: [`Jid`], [`BareJid`], [`FullJid`].
//!
//! All three share one representation ([`Repr`], built by the parser): the enforced form in a
//! single `Arc<str>` plus three small offsets, so a clone is a reference-count increment and
//! the getters are slices.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::str::FromStr;

use crate::error::{JidError, JidErrorKind, JidPart};
use crate::parse;
use crate::repr::Repr;

macro_rules! string_traits {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $t {
            /// Compares the enforced forms as strings (byte order).
            fn cmp(&self, other: &Self) -> Ordering {
                self.as_str().cmp(other.as_str())
            }
        }
        impl Hash for $t {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }
        impl fmt::Display for $t {
            /// Writes the enforced form.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = JidError;
            fn from_str(s: &str) -> Result<Self, JidError> {
                Self::new(s)
            }
        }
        impl core::borrow::Borrow<str> for $t {
            /// `Eq`, `Ord` and `Hash` agree with the enforced string's, so maps keyed by JIDs
            /// can be queried with an already-enforced `&str`.
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl PartialEq<str> for $t {
            /// Compares with an already-enforced string (no enforcement is applied to `other`).
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            /// Compares with an already-enforced string (no enforcement is applied to `other`).
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

/// A JID, bare (`node@domain`, `domain`) or full (`node@domain/resource`), in enforced form.
///
/// Built by [`Jid::new`] / [`str::parse`], which apply RFC 7622 enforcement: the localpart is
/// case-folded (PRECIS UsernameCaseMapped), the domain lowercased and IDNA-checked, the
/// resource checked (PRECIS OpaqueString). `Eq`, `Ord` and `Hash` compare the enforced form, so
/// `Juliet@Example.COM` and `juliet@example.com` are equal.
///
/// ```
/// use xmpp_jid::Jid;
/// let j: Jid = "Juliet@Example.COM/balcony".parse()?;
/// assert_eq!(j.to_string(), "juliet@example.com/balcony");
/// assert_eq!(j.node(), Some("juliet"));
/// assert_eq!(j.resource(), Some("balcony"));
/// # Ok::<(), xmpp_jid::JidError>(())
/// ```
#[derive(Clone)]
pub struct Jid(Repr);

/// A JID without a resourcepart: `node@domain` or `domain`.
#[derive(Clone)]
pub struct BareJid(Repr);

/// A JID with a resourcepart: `node@domain/resource` or `domain/resource`.
#[derive(Clone)]
pub struct FullJid(Repr);

string_traits!(Jid);
string_traits!(BareJid);
string_traits!(FullJid);

impl Jid {
    /// Parses and enforces a JID (RFC 7622 §3).
    pub fn new(s: &str) -> Result<Self, JidError> {
        parse::parse(s).map(Self)
    }

    /// Checks that `s` is a valid JID exactly as [`Jid::new`] would, without building it: no
    /// allocation for the common all-ASCII case. For validating addresses that are passed on
    /// as they are (a server checking a stanza's `to`).
    ///
    /// ```
    /// use xmpp_jid::Jid;
    /// assert!(Jid::validate("Juliet@Example.com/balcony").is_ok());
    /// assert!(Jid::validate("juliet@@example.com").is_err());
    /// ```
    pub fn validate(s: &str) -> Result<(), JidError> {
        parse::validate(s)
    }

    /// Lenient (legacy) parsing, for JIDs from peers that still apply RFC 6122 stringprep.
    ///
    /// When strict parsing fails, the localpart and resourcepart are first mapped the way
    /// nodeprep/resourceprep would map them (the RFC 3454 table B.1 code points are dropped,
    /// then NFKC is applied) and the result is enforced strictly. So `henryⅣ@example.com`
    /// becomes `henryiv@example.com` and `ﬁle@example.com` becomes `file@example.com`.
    /// The domainpart is not treated differently. The JID returned is always valid under
    /// [`Jid::new`], so it round-trips; when the retry fails too, the strict error is
    /// returned. Use it at the edges that talk to legacy peers, never to decide identity on
    /// input you store (two different legacy strings may map to one JID).
    ///
    /// ```
    /// use xmpp_jid::Jid;
    /// assert!(Jid::new("henry\u{2163}@example.com").is_err());
    /// assert_eq!(Jid::new_lenient("henry\u{2163}@example.com")?.as_str(), "henryiv@example.com");
    /// # Ok::<(), xmpp_jid::JidError>(())
    /// ```
    pub fn new_lenient(s: &str) -> Result<Self, JidError> {
        parse::parse_lenient(s).map(Self)
    }

    /// The enforced form, e.g. `juliet@example.com/balcony`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The localpart, if any.
    pub fn node(&self) -> Option<&str> {
        self.0.node()
    }

    /// The domainpart (never empty).
    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    /// The resourcepart, if any.
    pub fn resource(&self) -> Option<&str> {
        self.0.resource()
    }

    /// `true` when there is no resourcepart.
    pub fn is_bare(&self) -> bool {
        !self.0.is_full()
    }

    /// `true` when there is a resourcepart.
    pub fn is_full(&self) -> bool {
        self.0.is_full()
    }

    /// The JID without its resourcepart (shares the buffer: no allocation).
    pub fn to_bare(&self) -> BareJid {
        BareJid(self.0.bare())
    }

    /// The JID without its resourcepart, as a string (borrowed: no copy, no search).
    #[must_use]
    pub fn bare_str(&self) -> &str {
        self.0.bare_str()
    }

    /// Splits into the bare or full type.
    pub fn into_either(self) -> Result<FullJid, BareJid> {
        if self.is_full() {
            Ok(FullJid(self.0))
        } else {
            Err(BareJid(self.0))
        }
    }
}

impl BareJid {
    /// Parses and enforces a bare JID; a resourcepart is an error
    /// ([`JidErrorKind::UnexpectedResource`]).
    pub fn new(s: &str) -> Result<Self, JidError> {
        Jid::new(s).and_then(Self::try_from)
    }

    /// Builds a bare JID from its parts, enforcing each one.
    ///
    /// `node` must not contain `@` or `/`, and `domain` must not contain `/` (the parts are
    /// not re-split).
    pub fn from_parts(node: Option<&str>, domain: &str) -> Result<Self, JidError> {
        parse::from_parts(node, domain, None).map(Self)
    }

    /// The enforced form, e.g. `juliet@example.com`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The localpart, if any.
    pub fn node(&self) -> Option<&str> {
        self.0.node()
    }

    /// The domainpart (never empty).
    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    /// Always `None`: present so code generic over JID types reads the same.
    pub fn resource(&self) -> Option<&str> {
        None
    }

    /// The domainpart with every internationalized label as its A-label (`xn--`…, RFC 5890
    /// §2.3.2.1), e.g. `xn--mnchen-3ya.example` for `münchen.example`: the form DNS queries,
    /// TLS server names (SNI, RFC 6066 §3) and certificate names (RFC 6125) use. The
    /// enforced form ([`domain`](Self::domain)) holds U-labels instead. Borrowed when the
    /// domain is all ASCII.
    pub fn domain_a_labels(&self) -> alloc::borrow::Cow<'_, str> {
        crate::domain::to_a_labels(self.domain())
    }

    /// Adds a resourcepart (enforced with PRECIS OpaqueString).
    pub fn with_resource(&self, resource: &str) -> Result<FullJid, JidError> {
        parse::from_parts(self.node(), self.domain(), Some(resource)).map(FullJid)
    }
}

impl FullJid {
    /// Parses and enforces a full JID; a missing resourcepart is an error
    /// ([`JidErrorKind::MissingResource`]).
    pub fn new(s: &str) -> Result<Self, JidError> {
        Jid::new(s).and_then(Self::try_from)
    }

    /// Builds a full JID from its parts, enforcing each one.
    ///
    /// `node` must not contain `@` or `/`, and `domain` must not contain `/`; `resource` may
    /// contain anything the OpaqueString profile allows, including `@` and `/`.
    pub fn from_parts(node: Option<&str>, domain: &str, resource: &str) -> Result<Self, JidError> {
        parse::from_parts(node, domain, Some(resource)).map(Self)
    }

    /// The enforced form, e.g. `juliet@example.com/balcony`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The localpart, if any.
    pub fn node(&self) -> Option<&str> {
        self.0.node()
    }

    /// The domainpart (never empty).
    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    /// The resourcepart (never empty).
    pub fn resource(&self) -> &str {
        self.0.resource().unwrap_or_default()
    }

    /// The JID without its resourcepart (shares the buffer: no allocation).
    pub fn to_bare(&self) -> BareJid {
        BareJid(self.0.bare())
    }

    /// The JID without its resourcepart, as a string (borrowed: no copy, no search).
    #[must_use]
    pub fn bare_str(&self) -> &str {
        self.0.bare_str()
    }
}

impl From<BareJid> for Jid {
    fn from(j: BareJid) -> Self {
        Self(j.0)
    }
}

impl From<FullJid> for Jid {
    fn from(j: FullJid) -> Self {
        Self(j.0)
    }
}

impl From<FullJid> for BareJid {
    /// Drops the resourcepart.
    fn from(j: FullJid) -> Self {
        j.to_bare()
    }
}

impl TryFrom<Jid> for FullJid {
    type Error = JidError;
    /// Fails with [`JidErrorKind::MissingResource`] for a bare JID.
    fn try_from(j: Jid) -> Result<Self, JidError> {
        j.into_either()
            .map_err(|_| JidError::new(JidPart::Resourcepart, JidErrorKind::MissingResource))
    }
}

impl TryFrom<Jid> for BareJid {
    type Error = JidError;
    /// Fails with [`JidErrorKind::UnexpectedResource`] for a full JID (use
    /// [`Jid::to_bare`] to drop the resource instead).
    fn try_from(j: Jid) -> Result<Self, JidError> {
        match j.into_either() {
            Ok(_) => Err(JidError::new(
                JidPart::Resourcepart,
                JidErrorKind::UnexpectedResource,
            )),
            Err(b) => Ok(b),
        }
    }
}

macro_rules! cross_eq {
    ($a:ty, $b:ty) => {
        impl PartialEq<$b> for $a {
            fn eq(&self, other: &$b) -> bool {
                self.as_str() == other.as_str()
            }
        }
        impl PartialEq<$a> for $b {
            fn eq(&self, other: &$a) -> bool {
                self.as_str() == other.as_str()
            }
        }
    };
}

cross_eq!(Jid, BareJid);
cross_eq!(Jid, FullJid);
