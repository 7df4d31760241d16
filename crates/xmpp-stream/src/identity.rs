//! Certificate identity checks (RFC 6125 with the XMPP rules of RFC 6120 §13.7 and the domain
//! rules of RFC 7622): does the peer's certificate name the domain it claims?
//!
//! This is the decision SASL EXTERNAL on a server-to-server stream rests on (RFC 6120 §6.4 and
//! §13.7.2.1: the receiving server's reference identifier is the `from` domain of the initiating
//! server's stream header; the initiating server's is the `to` domain it opened the stream for).
//! It is a pure function over values: the host validates the certificate chain and extracts the
//! presented identifiers with its X.509 library, hands them over as [`PresentedId`]s, and
//! [`verify`] says which one names the [`ReferenceId`] ([`Match`]) or why none does
//! ([`Mismatch`], with a typed [`Rejection`] per identifier).
//!
//! ```
//! use xmpp_stream::identity::{IdKind, Mismatch, PresentedId, ReferenceId, Rejection, Service};
//! use xmpp_stream::identity::verify;
//!
//! // The initiating server said from='im.example.com'; its certificate has these SANs.
//! let peer = ReferenceId::new("im.example.com", Service::XmppServer)?;
//! let presented = [
//!     PresentedId::Dns("www.example.com".into()),
//!     PresentedId::Srv("_xmpp-server.IM.example.com".into()),
//!     PresentedId::CommonName("im.example.com".into()),
//! ];
//! let found = verify(&peer, &presented)?;
//! assert_eq!((found.index, found.kind, found.wildcard), (1, IdKind::Srv, false));
//!
//! // A wildcard covers exactly one label, and a CN counts only without subjectAltNames.
//! let other = ReferenceId::new("example.com", Service::XmppServer)?;
//! let presented = [
//!     PresentedId::Dns("*.example.com".into()),
//!     PresentedId::CommonName("example.com".into()),
//! ];
//! let Err(Mismatch::NoneMatched(why)) = verify(&other, &presented) else { unreachable!() };
//! assert_eq!(why[0].reason, Rejection::OtherDomain);
//! assert_eq!(why[1].reason, Rejection::CommonNameIgnored);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The rules, and where they come from
//!
//! - **Comparison form** (RFC 6125 §6.4.1, §6.4.2): names match when their labels match one by
//!   one, ASCII case-insensitively, internationalized labels compared as A-labels. Both sides
//!   are brought to the RFC 7622 domainpart form by `xmpp-jid` (the IDNA2008 implementation
//!   that also checks the `from`/`to` of stream headers): lowercase, one trailing dot removed,
//!   A-labels validated and turned into U-labels. `xmpp-jid` accepts an A-label only when its
//!   U-label encodes back to exactly that A-label (RFC 5891 §5.4), so the conversion is
//!   one-to-one and equal forms mean equal A-labels: a U-label reference `bücher.example`
//!   matches a DNS-ID `xn--bcher-kva.example`, and a name whose A-label does not round-trip
//!   is [`Rejection::InvalidDomain`]. Labels must be LDH or valid IDNA2008 labels; empty labels
//!   (`a..b`, a leading dot, two trailing dots) are invalid.
//! - **Identifier syntax**: DNS-IDs and SRV-IDs are IA5Strings (RFC 5280 §4.2.1.6 and §7.2,
//!   RFC 4985 §2), so a non-ASCII one is [`Rejection::NotAscii`]; internationalized names appear in
//!   them as A-labels only. A CN-ID is held to the same form. IP addresses are not DNS names
//!   (RFC 6125 §1.7.2 leaves IP-IDs out): [`Rejection::NotADnsName`].
//! - **Wildcards** (RFC 6125 §6.4.3, RFC 6120 §13.7.1.2): only in DNS-IDs (and CN-IDs, which
//!   §6.4.4 compares as DNS-IDs), only as the complete left-most label (`*.example.com`), and
//!   covering exactly one label of the reference: `*.example.com` matches `im.example.com`
//!   but neither `example.com` nor `a.im.example.com`. Partial-label wildcards (`f*.example`,
//!   `xn--*.example`), which §6.4.3 lets a client match and forbids inside A-labels, are never
//!   matched here ([`Rejection::WildcardPosition`]), and neither are wildcards in other labels.
//!   The reference's left-most label may itself be an internationalized label.
//! - **Wildcards too broad to mean anything** (our decision, RFC 6125 §7.2 discusses the
//!   risk): `*` alone and a wildcard over a single label (`*.com`, `*.test`) never match
//!   ([`Rejection::WildcardTooBroad`]). Without a public suffix list, which a Sans-IO machine
//!   does not carry, `*.co.uk` still passes this rule; CA policy (the CA/Browser Forum
//!   Baseline Requirements forbid such certificates) is the guard there.
//! - **SRV-IDs** (RFC 6125 §6.5.1, RFC 4985, RFC 6120 §13.7.1.2): `_service.domain`, the
//!   service compared ASCII case-insensitively with the caller's [`Service`] (`xmpp-server`
//!   for s2s, `xmpp-client` for c2s), the domain as a DNS-ID without wildcards (RFC 4985
//!   defines no wildcard SRVName: [`Rejection::WildcardNotAllowed`]).
//! - **XmppAddr** (RFC 6120 §13.7.1.4): an `id-on-xmppAddr` otherName, a UTF8String holding a
//!   JID, prepared per RFC 7622 (so U-labels and A-labels both work) and compared with the
//!   reference domain. A server is named by a domain JID only: a localpart or a resourcepart
//!   is [`Rejection::NotDomainJid`]. No wildcards.
//! - **URI-IDs** (RFC 6125 §6.5.2): XMPP defines no URI-ID for its services (RFC 6120 §13.7.1.2
//!   lists DNS-ID, SRV-ID and XmppAddr), so they never match
//!   ([`Rejection::UriIdNotUsed`]); they still count as subjectAltNames for the CN rule.
//! - **CN-IDs** (RFC 6125 §6.4.4): checked only when the certificate presents no DNS-ID,
//!   SRV-ID, URI-ID, nor the application-specific type this client supports (XmppAddr);
//!   otherwise [`Rejection::CommonNameIgnored`].
//! - **Which one wins**: the first presented identifier, in the host's order, that matches.

use core::fmt;

use xmpp_jid::{BareJid, Jid, JidError, JidErrorKind, JidPart};

/// The XMPP service the reference identifier is checked for: it selects the SRV-ID service
/// name (RFC 6125 §6.5.1, RFC 6120 §13.7.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// Server-to-server (`_xmpp-server`): a server checking its peer server.
    XmppServer,
    /// Client-to-server (`_xmpp-client`): a client checking its server.
    XmppClient,
}

impl Service {
    /// The service name as it appears in an SRV-ID, without the leading underscore.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::XmppServer => "xmpp-server",
            Self::XmppClient => "xmpp-client",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of presented identifier (RFC 6125 §1.8, RFC 6120 §13.7.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// DNS-ID: a `dNSName` subjectAltName.
    Dns,
    /// SRV-ID: an `SRVName` otherName subjectAltName (RFC 4985).
    Srv,
    /// XmppAddr: an `id-on-xmppAddr` otherName subjectAltName (RFC 6120 §13.7.1.4).
    XmppAddr,
    /// URI-ID: a `uniformResourceIdentifier` subjectAltName.
    Uri,
    /// CN-ID: a Common Name attribute of the subject.
    CommonName,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dns => "DNS-ID",
            Self::Srv => "SRV-ID",
            Self::XmppAddr => "XmppAddr",
            Self::Uri => "URI-ID",
            Self::CommonName => "CN-ID",
        })
    }
}

/// One identifier the host extracted from the peer's certificate, as the certificate spells
/// it (the check does its own preparation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresentedId {
    /// A `dNSName` subjectAltName, e.g. `im.example.com` or `*.example.com`.
    Dns(String),
    /// An `SRVName` subjectAltName, e.g. `_xmpp-server.example.com`.
    Srv(String),
    /// An `id-on-xmppAddr` subjectAltName, e.g. `example.com`.
    XmppAddr(String),
    /// A `uniformResourceIdentifier` subjectAltName.
    Uri(String),
    /// A Common Name of the subject.
    CommonName(String),
}

impl PresentedId {
    /// The identifier's kind.
    pub const fn kind(&self) -> IdKind {
        match self {
            Self::Dns(_) => IdKind::Dns,
            Self::Srv(_) => IdKind::Srv,
            Self::XmppAddr(_) => IdKind::XmppAddr,
            Self::Uri(_) => IdKind::Uri,
            Self::CommonName(_) => IdKind::CommonName,
        }
    }

    /// The identifier as presented.
    pub fn value(&self) -> &str {
        match self {
            Self::Dns(s)
            | Self::Srv(s)
            | Self::XmppAddr(s)
            | Self::Uri(s)
            | Self::CommonName(s) => s,
        }
    }
}

/// Why a reference identifier could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Not a valid RFC 7622 domainpart.
    Invalid(JidError),
    /// An IP address literal: RFC 6125 matches DNS names only (§1.7.2).
    IpAddress,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "reference identifier: {e}"),
            Self::IpAddress => f.write_str("reference identifier is an IP address, not a DNS name"),
        }
    }
}

impl core::error::Error for ReferenceError {}

/// The identity the certificate must prove (RFC 6125 §6.2): the peer's domain, prepared as
/// an RFC 7622 domainpart, and the service it is checked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReferenceId {
    /// The enforced domainpart (lowercase, U-labels, no trailing dot).
    domain: String,
    service: Service,
}

impl ReferenceId {
    /// Prepares `domain` as an RFC 7622 domainpart (A-labels or U-labels, any case, one
    /// trailing dot allowed) for `service`.
    pub fn new(domain: &str, service: Service) -> Result<Self, ReferenceError> {
        // `prepare` fails in these two ways only.
        let domain = prepare(domain).map_err(|e| match e {
            Rejection::InvalidDomain(e) => ReferenceError::Invalid(e),
            _ => ReferenceError::IpAddress,
        })?;
        Ok(Self { domain, service })
    }

    /// The prepared domain, e.g. `bücher.example` for `XN--BCHER-KVA.example.`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The service the reference is checked for.
    pub const fn service(&self) -> Service {
        self.service
    }

    /// The domain without its left-most label, which a wildcard DNS-ID must equal; `None` for
    /// a single-label domain.
    fn parent(&self) -> Option<&str> {
        self.domain.split_once('.').map(|(_, parent)| parent)
    }
}

/// The presented identifier that names the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Match {
    /// Its position in the list given to [`verify`].
    pub index: usize,
    /// Its kind.
    pub kind: IdKind,
    /// Whether it matched through a wildcard left-most label (RFC 6125 §6.4.3).
    pub wildcard: bool,
}

/// Why one presented identifier does not name the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// A well-formed name for another domain; for a wildcard, the reference is not exactly
    /// one label below the wildcard's parent (RFC 6125 §6.4.1, §6.4.3 rule 2).
    OtherDomain,
    /// An SRV-ID for another service than the one checked (RFC 6125 §6.5.1).
    OtherService,
    /// A `*` that is not the complete left-most label: in another label, or part of a label,
    /// including inside an A-label (RFC 6125 §6.4.3 rules 1 and 3).
    WildcardPosition,
    /// `*` alone, or a wildcard over a single label such as `*.com` (RFC 6125 §7.2; see the
    /// module docs).
    WildcardTooBroad,
    /// A wildcard in an identifier kind that has none: SRV-ID, XmppAddr.
    WildcardNotAllowed,
    /// Non-ASCII in a DNS-ID, SRV-ID or CN-ID, which carry internationalized names as
    /// A-labels (RFC 5280 §4.2.1.6 and §7.2, RFC 4985 §2).
    NotAscii,
    /// Not a valid domain name: an empty label, a non-LDH character, an A-label that does not
    /// convert (RFC 5891 §5.4), and so on (RFC 7622 §3.2).
    InvalidDomain(JidError),
    /// An IP address, not a DNS name (RFC 6125 §1.7.2).
    NotADnsName,
    /// An SRV-ID without the `_service.` prefix (RFC 4985 §2).
    MalformedSrvId,
    /// An XmppAddr that is not a JID (RFC 7622).
    InvalidJid(JidError),
    /// An XmppAddr with a localpart or a resourcepart: it names an account or a resource,
    /// not a server (RFC 6120 §13.7.1.4).
    NotDomainJid,
    /// A URI-ID: XMPP defines none for its services (RFC 6120 §13.7.1.2).
    UriIdNotUsed,
    /// A CN-ID in a certificate that also presents subjectAltNames of the kinds RFC 6125
    /// §6.4.4 lists (DNS-ID, SRV-ID, URI-ID, XmppAddr): it is not checked.
    CommonNameIgnored,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherDomain => f.write_str("names another domain"),
            Self::OtherService => f.write_str("names another service"),
            Self::WildcardPosition => f.write_str("wildcard not the complete left-most label"),
            Self::WildcardTooBroad => f.write_str("wildcard over fewer than two labels"),
            Self::WildcardNotAllowed => f.write_str("wildcard not allowed in this kind"),
            Self::NotAscii => f.write_str("non-ASCII where A-labels are required"),
            Self::InvalidDomain(e) => write!(f, "invalid domain name: {e}"),
            Self::NotADnsName => f.write_str("an IP address, not a DNS name"),
            Self::MalformedSrvId => f.write_str("SRV-ID without a _service. prefix"),
            Self::InvalidJid(e) => write!(f, "XmppAddr is not a JID: {e}"),
            Self::NotDomainJid => f.write_str("XmppAddr has a localpart or a resourcepart"),
            Self::UriIdNotUsed => f.write_str("URI-IDs are not used by XMPP"),
            Self::CommonNameIgnored => f.write_str("CN ignored: subjectAltNames present"),
        }
    }
}

/// One presented identifier that did not match, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Rejected {
    /// Its position in the list given to [`verify`].
    pub index: usize,
    /// Its kind.
    pub kind: IdKind,
    /// Why it does not name the reference.
    pub reason: Rejection,
}

/// Why no presented identifier names the reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mismatch {
    /// The certificate presents no identifier at all.
    NoIdentifiers,
    /// Every identifier was checked or skipped; one entry per identifier, in order.
    NoneMatched(Vec<Rejected>),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoIdentifiers => f.write_str("the certificate presents no identifier"),
            Self::NoneMatched(all) => {
                f.write_str("no presented identifier matches")?;
                for (n, r) in all.iter().enumerate() {
                    let sep = if n == 0 { ": " } else { "; " };
                    write!(f, "{sep}{} #{} {}", r.kind, r.index, r.reason)?;
                }
                Ok(())
            }
        }
    }
}

impl core::error::Error for Mismatch {}

/// Checks the presented identifiers against the reference (RFC 6125 §6, RFC 6120 §13.7.2.1):
/// the first that names it, or why none does. See the module docs for the rules.
pub fn verify(reference: &ReferenceId, presented: &[PresentedId]) -> Result<Match, Mismatch> {
    if presented.is_empty() {
        return Err(Mismatch::NoIdentifiers);
    }
    // RFC 6125 §6.4.4: any subjectAltName of a kind the client knows turns CN-IDs off.
    let has_san = presented.iter().any(|p| {
        matches!(
            p,
            PresentedId::Dns(_)
                | PresentedId::Srv(_)
                | PresentedId::Uri(_)
                | PresentedId::XmppAddr(_)
        )
    });
    let mut rejected = Vec::with_capacity(presented.len());
    for (index, id) in presented.iter().enumerate() {
        let outcome = match id {
            PresentedId::Dns(name) => dns_id(reference, name),
            PresentedId::CommonName(_) if has_san => Err(Rejection::CommonNameIgnored),
            PresentedId::CommonName(name) => dns_id(reference, name),
            PresentedId::Srv(name) => srv_id(reference, name).map(|()| false),
            PresentedId::XmppAddr(jid) => xmpp_addr(reference, jid).map(|()| false),
            PresentedId::Uri(_) => Err(Rejection::UriIdNotUsed),
        };
        let kind = id.kind();
        match outcome {
            Ok(wildcard) => {
                return Ok(Match {
                    index,
                    kind,
                    wildcard,
                });
            }
            Err(reason) => rejected.push(Rejected {
                index,
                kind,
                reason,
            }),
        }
    }
    Err(Mismatch::NoneMatched(rejected))
}

/// Why a client certificate does not log its holder in (XEP-0178 §2, RFC 6120 §6.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientRefusal {
    /// The certificate names no account of this domain: `not-authorized`.
    NoAccount,
    /// The certificate names several accounts and the client chose none (XEP-0178 §2: it
    /// must send the one it wants as the authorization identity): `not-authorized`.
    AuthzidRequired,
    /// The client asked for an account the certificate does not name: `invalid-authzid`.
    AuthzidNotNamed,
}

impl ClientRefusal {
    /// The SASL `<failure/>` condition the server answers with.
    pub const fn condition(self) -> xmpp_sasl::Condition {
        match self {
            Self::NoAccount | Self::AuthzidRequired => xmpp_sasl::Condition::NotAuthorized,
            Self::AuthzidNotNamed => xmpp_sasl::Condition::InvalidAuthzid,
        }
    }
}

impl fmt::Display for ClientRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoAccount => "the certificate names no account of this domain",
            Self::AuthzidRequired => "the certificate names several accounts, none was chosen",
            Self::AuthzidNotNamed => "the certificate does not name the requested account",
        })
    }
}

impl core::error::Error for ClientRefusal {}

/// The accounts of `domain` a client certificate names (RFC 6120 §13.7.1.4, XEP-0178 §2):
/// its XmppAddr identifiers that are bare JIDs with a localpart at `domain`, prepared per
/// RFC 7622, in the certificate's order, without repeats. DNS-IDs, SRV-IDs and CNs name
/// servers, not accounts; a full JID names a resource; a JID of another domain is not ours to
/// log in. A host with its own mapping (a table from subject or fingerprint to account)
/// implements [`ServerBackend::certificate_accounts`](crate::ServerBackend::certificate_accounts)
/// instead.
pub fn client_accounts(domain: &BareJid, presented: &[PresentedId]) -> Vec<BareJid> {
    let mut accounts: Vec<BareJid> = Vec::new();
    // Repeats found in a set: a certificate may carry thousands of identifiers.
    let mut seen: std::collections::BTreeSet<BareJid> = std::collections::BTreeSet::new();
    for id in presented {
        let PresentedId::XmppAddr(text) = id else {
            continue;
        };
        let Ok(jid) = Jid::new(text) else {
            continue;
        };
        if jid.node().is_none() || jid.resource().is_some() || jid.domain() != domain.domain() {
            continue;
        }
        let account = jid.to_bare();
        if seen.insert(account.clone()) {
            accounts.push(account);
        }
    }
    accounts
}

/// The account a certificate logs in as (XEP-0178 §2): with an authorization identity (a bare
/// JID, or a localpart of `domain`), that account when the certificate names it; without
/// one, the certificate's only account. `accounts` is what
/// [`client_accounts`] (or the host's mapping) found.
pub fn client_account(
    domain: &BareJid,
    accounts: &[BareJid],
    authzid: Option<&str>,
) -> Result<BareJid, ClientRefusal> {
    match (authzid, accounts) {
        (_, []) => Err(ClientRefusal::NoAccount),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(ClientRefusal::AuthzidRequired),
        (Some(authzid), _) => {
            let wanted = match BareJid::new(authzid) {
                Ok(jid) if jid.node().is_some() => Some(jid),
                _ => BareJid::from_parts(Some(authzid), domain.domain()).ok(),
            };
            wanted
                .filter(|wanted| accounts.contains(wanted))
                .ok_or(ClientRefusal::AuthzidNotNamed)
        }
    }
}

/// A DNS-ID (or a CN-ID, compared the same way per RFC 6125 §6.4.4): `Ok(true)` when it
/// matched through a wildcard.
fn dns_id(reference: &ReferenceId, name: &str) -> Result<bool, Rejection> {
    if !name.is_ascii() {
        return Err(Rejection::NotAscii);
    }
    if !name.contains('*') {
        return same_domain(reference.domain(), &prepare(name)?).map(|()| false);
    }
    // RFC 6125 §6.4.3: `*` only as the complete left-most label.
    let (first, parent) = name.split_once('.').unwrap_or((name, ""));
    if first != "*" || parent.contains('*') {
        return Err(Rejection::WildcardPosition);
    }
    // `*`, `*.`, `*.com`, `*.com.`: nothing or a single label under the wildcard.
    let parent_trimmed = parent.strip_suffix('.').unwrap_or(parent);
    if !parent_trimmed.contains('.') {
        return Err(Rejection::WildcardTooBroad);
    }
    let parent = prepare(parent)?;
    // Rule 2: the wildcard stands for exactly the reference's left-most label.
    match reference.parent() {
        Some(reference_parent) => same_domain(reference_parent, &parent).map(|()| true),
        None => Err(Rejection::OtherDomain),
    }
}

/// An SRV-ID, `_service.domain` (RFC 6125 §6.5.1, RFC 4985).
fn srv_id(reference: &ReferenceId, name: &str) -> Result<(), Rejection> {
    if !name.is_ascii() {
        return Err(Rejection::NotAscii);
    }
    let (service, domain) = name
        .split_once('.')
        .and_then(|(service, domain)| Some((service.strip_prefix('_')?, domain)))
        .ok_or(Rejection::MalformedSrvId)?;
    if !service.eq_ignore_ascii_case(reference.service().as_str()) {
        return Err(Rejection::OtherService);
    }
    if domain.contains('*') {
        return Err(Rejection::WildcardNotAllowed);
    }
    same_domain(reference.domain(), &prepare(domain)?)
}

/// An XmppAddr: a domain JID prepared per RFC 7622 (RFC 6120 §13.7.1.4).
fn xmpp_addr(reference: &ReferenceId, jid: &str) -> Result<(), Rejection> {
    // `*` is a valid localpart or resourcepart character: only one in the domain is a
    // wildcard.
    let jid = Jid::new(jid).map_err(|e| match (e.part, e.kind) {
        (JidPart::Domainpart, JidErrorKind::Forbidden('*')) => Rejection::WildcardNotAllowed,
        _ => Rejection::InvalidJid(e),
    })?;
    if jid.node().is_some() || jid.resource().is_some() {
        return Err(Rejection::NotDomainJid);
    }
    if is_ip_literal(jid.domain()) {
        return Err(Rejection::NotADnsName);
    }
    same_domain(reference.domain(), jid.domain())
}

/// Both names are prepared, so equality of the strings is equality of the A-labels.
fn same_domain(reference: &str, presented: &str) -> Result<(), Rejection> {
    if reference == presented {
        Ok(())
    } else {
        Err(Rejection::OtherDomain)
    }
}

/// Prepares a DNS name as an RFC 7622 domainpart: the comparison form (module docs).
fn prepare(name: &str) -> Result<String, Rejection> {
    let jid = BareJid::from_parts(None, name).map_err(Rejection::InvalidDomain)?;
    let domain = jid.domain();
    if is_ip_literal(domain) {
        return Err(Rejection::NotADnsName);
    }
    Ok(domain.to_owned())
}

/// An enforced domainpart that is an IP literal: `[v6]`, or a dotted quad (RFC 7622 §3.2
/// takes any name whose last label is numeric as IPv4).
fn is_ip_literal(domain: &str) -> bool {
    domain.starts_with('[')
        || domain
            .rsplit('.')
            .next()
            .is_some_and(|last| !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Rejection as R;
    use proptest::prelude::*;

    fn server(domain: &str) -> ReferenceId {
        ReferenceId::new(domain, Service::XmppServer).unwrap()
    }

    fn dns(s: &str) -> PresentedId {
        PresentedId::Dns(s.into())
    }

    fn srv(s: &str) -> PresentedId {
        PresentedId::Srv(s.into())
    }

    fn addr(s: &str) -> PresentedId {
        PresentedId::XmppAddr(s.into())
    }

    fn cn(s: &str) -> PresentedId {
        PresentedId::CommonName(s.into())
    }

    /// The match of a single presented identifier.
    fn one(reference: &str, id: PresentedId) -> Result<Match, Rejection> {
        match verify(&server(reference), &[id]) {
            Ok(m) => Ok(m),
            Err(Mismatch::NoneMatched(all)) => Err(all[0].reason),
            Err(Mismatch::NoIdentifiers) => unreachable!(),
        }
    }

    fn matches(reference: &str, id: PresentedId) -> bool {
        one(reference, id).is_ok()
    }

    fn rejection(reference: &str, id: PresentedId) -> Rejection {
        one(reference, id).unwrap_err()
    }

    #[track_caller]
    fn rejects(reference: &str, id: PresentedId, reason: Rejection) {
        let presented = id.value().to_owned();
        assert_eq!(
            rejection(reference, id),
            reason,
            "{presented:?} for {reference:?}"
        );
    }

    #[test]
    fn rfc6125_6_4_1_labels_compared_case_insensitively() {
        let m = one("www.example.com", dns("WWW.Example.Com")).unwrap();
        assert_eq!((m.index, m.kind, m.wildcard), (0, IdKind::Dns, false));
        assert!(matches("WWW.EXAMPLE.COM", dns("www.example.com")));
        rejects("www.example.com", dns("www.example.org"), R::OtherDomain);
        rejects("www.example.com", dns("example.com"), R::OtherDomain);
        rejects("example.com", dns("www.example.com"), R::OtherDomain);
    }

    #[test]
    fn rfc6125_6_4_2_internationalized_names_compared_as_a_labels() {
        // U-label reference, A-label DNS-ID (any case): the same A-labels.
        assert!(matches("bücher.example", dns("xn--bcher-kva.example")));
        assert!(matches("BÜCHER.example", dns("XN--BCHER-KVA.EXAMPLE")));
        // A-label reference.
        assert!(matches(
            "xn--bcher-kva.example",
            dns("xn--bcher-kva.example")
        ));
        assert_eq!(server("xn--bcher-kva.example").domain(), "bücher.example");
        // A damaged A-label, and a valid one for another name (büchen).
        assert!(matches!(
            rejection("bücher.example", dns("xn--bcher-kvb.example")),
            Rejection::InvalidDomain(_)
        ));
        assert_eq!(server("xn--bchen-kva.example").domain(), "büchen.example");
        rejects(
            "bücher.example",
            dns("xn--bchen-kva.example"),
            R::OtherDomain,
        );
    }

    #[test]
    fn rfc6125_6_4_2_a_label_conversion_failures() {
        // Empty punycode, a DISALLOWED code point (U+1F4A9), punycode that decodes to ASCII.
        for bad in [
            "xn--.example",
            "xn--ls8h.example",
            "xn--abc-.example",
            "xn--ab-.example",
        ] {
            assert!(
                matches!(rejection("example", dns(bad)), Rejection::InvalidDomain(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn rfc6125_6_4_3_rule_1_wildcard_only_in_the_left_most_label() {
        // "do not match bar.*.example.net"
        rejects(
            "bar.foo.example.net",
            dns("bar.*.example.net"),
            R::WildcardPosition,
        );
        rejects(
            "a.b.example.net",
            dns("*.*.example.net"),
            R::WildcardPosition,
        );
        rejects("foo.example.net", dns("foo.example.*"), R::WildcardPosition);
    }

    #[test]
    fn rfc6125_6_4_3_rule_2_wildcard_covers_exactly_one_label() {
        // "*.example.com would match foo.example.com but not bar.foo.example.com or
        // example.com"
        let m = one("foo.example.com", dns("*.example.com")).unwrap();
        assert_eq!((m.kind, m.wildcard), (IdKind::Dns, true));
        rejects("bar.foo.example.com", dns("*.example.com"), R::OtherDomain);
        rejects("example.com", dns("*.example.com"), R::OtherDomain);
        // Case and a trailing dot apply to the parent labels too.
        assert!(matches("FOO.example.com", dns("*.EXAMPLE.com.")));
    }

    #[test]
    fn rfc6125_6_4_3_rule_3_partial_label_wildcards_are_not_matched() {
        // The MAY of rule 3 (baz*, *baz, b*z) is not taken, and the SHOULD NOT for wildcards
        // inside A-labels is then a MUST NOT.
        for (reference, presented) in [
            ("baz1.example.net", "baz*.example.net"),
            ("foobaz.example.net", "*baz.example.net"),
            ("buzz.example.net", "b*z.example.net"),
            ("bücher.example.net", "xn--*.example.net"),
            ("bücher.example.net", "xn--bcher-*.example.net"),
            ("bücher.example.net", "*xn--bcher-kva.example.net"),
        ] {
            assert_eq!(
                rejection(reference, dns(presented)),
                Rejection::WildcardPosition,
                "{presented}"
            );
        }
    }

    #[test]
    fn rfc6125_6_4_3_wildcard_over_internationalized_names() {
        // The wildcard may stand for an internationalized label (only a wildcard *inside* a
        // label is excluded), and the parent may hold A-labels.
        assert!(matches("bücher.example.com", dns("*.example.com")));
        let m = one("im.bücher.example", dns("*.xn--bcher-kva.example")).unwrap();
        assert!(m.wildcard);
    }

    #[test]
    fn rfc6125_7_2_wildcards_too_broad_never_match() {
        // Our decision (module docs): `*` alone and a wildcard over a single label.
        for presented in ["*", "*.", "*.com", "*.com.", "*.test"] {
            rejects("example.com", dns(presented), R::WildcardTooBroad);
        }
        rejects("localhost", dns("*.localhost"), R::WildcardTooBroad);
        // A single-label reference is never under a wildcard.
        rejects("localhost", dns("*.example.com"), R::OtherDomain);
        assert!(matches("localhost", dns("localhost")));
    }

    #[test]
    fn rfc6125_6_4_4_cn_only_without_subject_alt_names() {
        let m = one("example.com", cn("Example.COM")).unwrap();
        assert_eq!((m.kind, m.wildcard), (IdKind::CommonName, false));
        // §6.4.4 refers to §6.4.3 for the CN's DNS name: wildcards as in a DNS-ID.
        assert!(one("im.example.com", cn("*.example.com")).unwrap().wildcard);
        rejects("example.com", cn("example.org"), R::OtherDomain);
        // Any DNS-ID, SRV-ID, URI-ID or XmppAddr turns it off, even one that does not match.
        for san in [
            dns("other.example"),
            srv("_xmpp-server.other.example"),
            PresentedId::Uri("xmpp:other.example".into()),
            addr("other.example"),
        ] {
            let kind = san.kind();
            let Err(Mismatch::NoneMatched(all)) =
                verify(&server("example.com"), &[cn("example.com"), san])
            else {
                panic!("CN matched next to a {kind}");
            };
            assert_eq!(all[0].reason, Rejection::CommonNameIgnored);
            assert_eq!(all[0].kind, IdKind::CommonName);
            assert_eq!(all[1].kind, kind);
        }
        // Several CNs and nothing else: any may match.
        let m = verify(
            &server("example.com"),
            &[cn("example.org"), cn("example.com")],
        )
        .unwrap();
        assert_eq!(m.index, 1);
    }

    #[test]
    fn rfc6125_6_4_4_cn_must_look_like_a_dns_name() {
        rejects(
            "example.com",
            cn("Example Corp"),
            R::InvalidDomain(BareJid::from_parts(None, "Example Corp").unwrap_err()),
        );
        rejects("bücher.example", cn("bücher.example"), R::NotAscii);
    }

    #[test]
    fn rfc6125_6_5_1_srv_id_service_and_domain() {
        let m = one("example.com", srv("_xmpp-server.example.com")).unwrap();
        assert_eq!((m.kind, m.wildcard), (IdKind::Srv, false));
        assert!(matches("example.com", srv("_XMPP-Server.EXAMPLE.com.")));
        assert!(matches(
            "bücher.example",
            srv("_xmpp-server.xn--bcher-kva.example")
        ));
        rejects(
            "example.com",
            srv("_xmpp-client.example.com"),
            R::OtherService,
        );
        rejects(
            "example.com",
            srv("_xmpps-server.example.com"),
            R::OtherService,
        );
        rejects("example.com", srv("_imap.example.com"), R::OtherService);
        rejects(
            "example.com",
            srv("_xmpp-server.example.org"),
            R::OtherDomain,
        );
        // The caller picks the service: a client checks `_xmpp-client`.
        let client = ReferenceId::new("example.com", Service::XmppClient).unwrap();
        assert_eq!(
            verify(&client, &[srv("_xmpp-client.example.com")])
                .unwrap()
                .kind,
            IdKind::Srv
        );
        assert!(verify(&client, &[srv("_xmpp-server.example.com")]).is_err());
    }

    #[test]
    fn rfc4985_srv_id_form() {
        for bad in [
            "xmpp-server.example.com",
            "_xmpp-server",
            "",
            "_xmpp-server",
        ] {
            assert_eq!(
                rejection("example.com", srv(bad)),
                Rejection::MalformedSrvId,
                "{bad:?}"
            );
        }
        rejects(
            "im.example.com",
            srv("_xmpp-server.*.example.com"),
            R::WildcardNotAllowed,
        );
        rejects(
            "example.com",
            srv("_xmpp-server."),
            R::InvalidDomain(BareJid::from_parts(None, "").unwrap_err()),
        );
        rejects(
            "bücher.example",
            srv("_xmpp-server.bücher.example"),
            R::NotAscii,
        );
    }

    #[test]
    fn rfc6125_6_5_2_uri_ids_are_not_used_by_xmpp() {
        let uri = PresentedId::Uri("xmpp:example.com".into());
        rejects("example.com", uri, R::UriIdNotUsed);
    }

    #[test]
    fn rfc6120_13_7_1_4_xmpp_addr() {
        let m = one("example.com", addr("example.com")).unwrap();
        assert_eq!((m.kind, m.wildcard), (IdKind::XmppAddr, false));
        // RFC 7622 preparation: case, trailing dot, U-labels (UTF8String) and A-labels.
        assert!(matches("example.com", addr("Example.COM.")));
        assert!(matches("xn--bcher-kva.example", addr("bücher.example")));
        assert!(matches("bücher.example", addr("BÜCHER.example")));
        rejects("example.com", addr("example.org"), R::OtherDomain);
        // A localpart or a resourcepart names something else than a server.
        rejects("example.com", addr("juliet@example.com"), R::NotDomainJid);
        rejects("example.com", addr("example.com/balcony"), R::NotDomainJid);
        rejects(
            "example.com",
            addr("example.com/"),
            R::InvalidJid(Jid::new("example.com/").unwrap_err()),
        );
        rejects(
            "im.example.com",
            addr("*.example.com"),
            R::WildcardNotAllowed,
        );
        // `*` is an ordinary character in a localpart.
        rejects("example.com", addr("a*b@example.com"), R::NotDomainJid);
        rejects("example.com", addr("192.0.2.1"), R::NotADnsName);
    }

    #[test]
    fn trailing_dots_and_empty_labels() {
        assert!(matches("example.com", dns("example.com.")));
        assert!(matches("example.com.", dns("example.com")));
        assert!(matches("im.example.com.", dns("*.example.com")));
        for bad in [
            "example.com..",
            ".example.com",
            "a..example.com",
            "",
            ".",
            "*.example..com",
        ] {
            assert!(
                matches!(
                    rejection("example.com", dns(bad)),
                    Rejection::InvalidDomain(_)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dns_ids_are_ascii_ldh_names() {
        // A U-label in a dNSName (an IA5String) is malformed, whatever it spells.
        rejects("bücher.example", dns("bücher.example"), R::NotAscii);
        // An SRV-ID spelled as a DNS-ID: `_` is not LDH.
        assert!(matches!(
            rejection("example.com", dns("_xmpp-server.example.com")),
            Rejection::InvalidDomain(_)
        ));
        rejects("example.com", dns("192.0.2.1"), R::NotADnsName);
        rejects("example.com", dns("[2001:db8::1]"), R::NotADnsName);
        rejects(
            "example.com",
            dns("*.0.2.1"),
            R::InvalidDomain(BareJid::from_parts(None, "0.2.1").unwrap_err()),
        );
    }

    #[test]
    fn reference_identifiers() {
        assert_eq!(server("Example.COM.").domain(), "example.com");
        assert_eq!(server("example.com").service(), Service::XmppServer);
        for bad in [
            "",
            "juliet@example.com",
            "example.com/balcony",
            "*.example.com",
            "a..b",
        ] {
            assert!(
                matches!(
                    ReferenceId::new(bad, Service::XmppServer),
                    Err(ReferenceError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        for ip in ["192.0.2.1", "[2001:DB8::1]"] {
            assert_eq!(
                ReferenceId::new(ip, Service::XmppServer),
                Err(ReferenceError::IpAddress)
            );
        }
    }

    #[test]
    fn outcomes_name_the_identifier() {
        let reference = server("example.com");
        assert_eq!(verify(&reference, &[]), Err(Mismatch::NoIdentifiers));
        let presented = [
            dns("example.org"),
            srv("_xmpp-server.example.com"),
            dns("example.com"),
        ];
        // The first match in the host's order.
        let m = verify(&reference, &presented).unwrap();
        assert_eq!((m.index, m.kind), (1, IdKind::Srv));
        let presented = [
            dns("*.com"),
            PresentedId::Uri("https://example.com/".into()),
            cn("example.com"),
        ];
        let err = verify(&reference, &presented).unwrap_err();
        let Mismatch::NoneMatched(all) = &err else {
            panic!("{err:?}")
        };
        let reasons: Vec<_> = all.iter().map(|r| (r.index, r.kind, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                (0, IdKind::Dns, Rejection::WildcardTooBroad),
                (1, IdKind::Uri, Rejection::UriIdNotUsed),
                (2, IdKind::CommonName, Rejection::CommonNameIgnored),
            ]
        );
        assert_eq!(
            err.to_string(),
            "no presented identifier matches: DNS-ID #0 wildcard over fewer than two labels; \
             URI-ID #1 URI-IDs are not used by XMPP; CN-ID #2 CN ignored: subjectAltNames present"
        );
        assert_eq!(presented[1].value(), "https://example.com/");
    }

    #[test]
    fn xep0178_client_certificates_name_accounts() {
        let domain = BareJid::new("example.com").unwrap();
        let juliet = BareJid::new("juliet@example.com").unwrap();
        let nurse = BareJid::new("nurse@example.com").unwrap();
        let presented = [
            dns("example.com"),
            addr("Juliet@Example.COM"),
            addr("juliet@example.com"),
            addr("romeo@example.org"),
            addr("example.com"),
            addr("tybalt@example.com/sword"),
            addr("not a jid@@"),
            cn("nurse@example.com"),
        ];
        // Prepared, deduplicated, ours only, bare JIDs with a localpart only.
        let accounts = client_accounts(&domain, &presented);
        assert_eq!(accounts, std::slice::from_ref(&juliet));
        assert_eq!(client_account(&domain, &accounts, None), Ok(juliet.clone()));
        for authzid in ["juliet@example.com", "JULIET@example.com", "juliet"] {
            assert_eq!(
                client_account(&domain, &accounts, Some(authzid)),
                Ok(juliet.clone())
            );
        }
        for authzid in ["nurse@example.com", "juliet@example.org", "", "@"] {
            assert_eq!(
                client_account(&domain, &accounts, Some(authzid)),
                Err(ClientRefusal::AuthzidNotNamed),
                "{authzid:?}"
            );
        }
        // Thousands of identifiers (each twice): each account once, in the certificate's
        // order, found with a set (they were compared with every account kept before).
        let many: Vec<PresentedId> = (0..3000)
            .rev()
            .chain(0..3000)
            .map(|i| addr(&format!("u{i}@example.com")))
            .collect();
        let accounts_of_many = client_accounts(&domain, &many);
        assert_eq!(accounts_of_many.len(), 3000);
        assert_eq!(accounts_of_many[0].as_str(), "u2999@example.com");
        assert_eq!(accounts_of_many[2999].as_str(), "u0@example.com");
        // Several accounts: the client must choose.
        let both = [juliet.clone(), nurse.clone()];
        assert_eq!(
            client_account(&domain, &both, None),
            Err(ClientRefusal::AuthzidRequired)
        );
        assert_eq!(client_account(&domain, &both, Some("nurse")), Ok(nurse));
        // None of ours.
        let other = client_accounts(&domain, &[addr("romeo@example.org"), dns("example.com")]);
        assert!(other.is_empty());
        assert_eq!(
            client_account(&domain, &other, Some("romeo@example.org")),
            Err(ClientRefusal::NoAccount)
        );
        assert_eq!(
            ClientRefusal::NoAccount.condition(),
            xmpp_sasl::Condition::NotAuthorized
        );
        assert_eq!(
            ClientRefusal::AuthzidNotNamed.condition(),
            xmpp_sasl::Condition::InvalidAuthzid
        );
    }

    /// Domains of 1 to 4 LDH labels, mixed case, whose last label is alphabetic (a numeric
    /// one would be an IPv4 address).
    fn domain() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", 0..4),
            "[a-zA-Z]{1,6}",
        )
            .prop_filter("no reserved hyphens", |(labels, _)| {
                labels.iter().all(|l| l.get(2..4) != Some("--"))
            })
            .prop_map(|(mut labels, last)| {
                labels.push(last);
                labels.join(".")
            })
    }

    fn flip_case(s: &str, flips: &[bool]) -> String {
        s.chars()
            .zip(flips.iter().cycle())
            .map(|(c, &flip)| {
                if flip {
                    if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                } else {
                    c
                }
            })
            .collect()
    }

    /// Strings built from the characters that matter to the parsers, and a few others.
    fn tricky() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9.*_@/:\\[\\]xn-ü\u{3002}\u{130}]{0,24}",
            "\\PC{0,24}",
            any::<String>(),
        ]
    }

    proptest! {
        // Property: a DNS-ID ASCII-case-insensitively equal to the reference always matches,
        // and so do the SRV-ID, XmppAddr and lone CN-ID built from it.
        #[test]
        fn same_name_in_any_case_matches(
            d in domain(),
            flips in proptest::collection::vec(any::<bool>(), 1..16),
            dot in any::<bool>(),
        ) {
            let reference = server(&d);
            let mut presented = flip_case(&d, &flips);
            if dot {
                presented.push('.');
            }
            let m = verify(&reference, &[PresentedId::Dns(presented.clone())]).unwrap();
            prop_assert_eq!((m.index, m.kind, m.wildcard), (0, IdKind::Dns, false));
            let srv_id = PresentedId::Srv(format!("_xmpp-server.{presented}"));
            prop_assert!(verify(&reference, &[srv_id]).is_ok());
            prop_assert!(verify(&reference, &[PresentedId::XmppAddr(presented.clone())]).is_ok());
            prop_assert!(verify(&reference, &[PresentedId::CommonName(presented)]).is_ok());
        }

        // Property: any other domain never matches, in any identifier kind.
        #[test]
        fn other_names_never_match(a in domain(), b in domain()) {
            prop_assume!(!a.eq_ignore_ascii_case(&b));
            let reference = server(&a);
            let presented = [
                PresentedId::Dns(b.clone()),
                PresentedId::Srv(format!("_xmpp-server.{b}")),
                PresentedId::XmppAddr(b.clone()),
            ];
            prop_assert!(verify(&reference, &presented).is_err());
            prop_assert!(verify(&reference, &[PresentedId::CommonName(b)]).is_err());
        }

        // Property: a wildcard over the reference's parent matches exactly when the parent
        // has two labels or more.
        #[test]
        fn wildcard_over_the_parent(d in domain()) {
            let reference = server(&d);
            let Some(parent) = reference.parent().map(str::to_owned) else {
                return Ok(());
            };
            let outcome = verify(&reference, &[PresentedId::Dns(format!("*.{parent}"))]);
            prop_assert_eq!(outcome.is_ok(), parent.contains('.'));
        }

        // No input panics, and the outcome accounts for every identifier.
        #[test]
        fn arbitrary_input_never_panics(
            reference in tricky(),
            client in any::<bool>(),
            ids in proptest::collection::vec((0..5u8, tricky()), 0..5),
        ) {
            let service = if client { Service::XmppClient } else { Service::XmppServer };
            let presented: Vec<PresentedId> = ids
                .into_iter()
                .map(|(kind, s)| match kind {
                    0 => PresentedId::Dns(s),
                    1 => PresentedId::Srv(s),
                    2 => PresentedId::XmppAddr(s),
                    3 => PresentedId::Uri(s),
                    _ => PresentedId::CommonName(s),
                })
                .collect();
            let Ok(reference) = ReferenceId::new(&reference, service) else {
                return Ok(());
            };
            match verify(&reference, &presented) {
                Ok(m) => {
                    prop_assert!(m.index < presented.len());
                    prop_assert_eq!(m.kind, presented[m.index].kind());
                }
                Err(Mismatch::NoIdentifiers) => prop_assert!(presented.is_empty()),
                Err(Mismatch::NoneMatched(all)) => {
                    prop_assert_eq!(all.len(), presented.len());
                    let _ = Mismatch::NoneMatched(all).to_string();
                }
            }
        }
    }
}
