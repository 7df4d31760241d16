//! JIDs per RFC 7622: parse, enforce (normalize), compare; bare and full types.
//!
//! A JID (`localpart@domainpart/resourcepart`) is *enforced* when it is parsed: the localpart
//! goes through the PRECIS UsernameCaseMapped profile (RFC 8265) minus `" & ' / : < > @`, the
//! domainpart is an IPv4 literal, an `[IPv6]` literal or an IDNA2008 domain name (lowercased,
//! trailing dot removed, A-labels turned into U-labels), and the resourcepart goes through the
//! PRECIS OpaqueString profile. Each part is 1 to 1023 octets after enforcement. `Display`
//! prints the enforced form and `Eq`/`Ord`/`Hash` compare it, so equal JIDs are equal values.
//!
//! ```
//! use xmpp_jid::{BareJid, FullJid, Jid, JidErrorKind, JidPart};
//!
//! let jid: Jid = "Juliet@Example.COM/balcony".parse()?;
//! assert_eq!(jid.to_string(), "juliet@example.com/balcony");
//! assert_eq!((jid.node(), jid.domain(), jid.resource()),
//!            (Some("juliet"), "example.com", Some("balcony")));
//!
//! // Bare and full types; conversions are cheap (one shared buffer).
//! let full = FullJid::try_from(jid.clone())?;
//! let bare: BareJid = full.to_bare();
//! assert_eq!(bare, BareJid::new("juliet@example.com.")?);
//! assert_eq!(bare.with_resource("orchard")?.to_string(), "juliet@example.com/orchard");
//!
//! // Unicode: case mapping, NFC, IDNA A-labels to U-labels.
//! let j = Jid::new("ΣΩΚΡΑΤΗΣ@xn--bcher-kva.example/Ψυχή")?;
//! assert_eq!(j.as_str(), "σωκρατης@bücher.example/Ψυχή");
//!
//! // Errors say which part failed and why.
//! let err = Jid::new("juliet@example.com/").unwrap_err();
//! assert_eq!((err.part, err.kind), (JidPart::Resourcepart, JidErrorKind::Empty));
//! assert_eq!(Jid::new("ju liet@example.com").unwrap_err().to_string(),
//!            "forbidden code point U+0020 in localpart");
//! # Ok::<(), xmpp_jid::JidError>(())
//! ```
//!
//! The [`precis`] module exposes the PRECIS profiles themselves (e.g.
//! [`precis::opaque_string`] to prepare passwords), and [`escape`] the XEP-0106 escaping of
//! localparts.
//!
//! # Standards and versions
//!
//! The PRECIS and IDNA2008 derived-property tables are generated from the Unicode Character
//! Database 15.0.0 ([`precis::UNICODE_VERSION`]) by `tools/gen_tables.py`, committed with its
//! output. Normalization (NFC/NFKC) comes from the `unicode-normalization` crate and case
//! mapping from Rust's `str::to_lowercase` (which applies the Final_Sigma rule); both may use
//! a newer Unicode version, which only matters for code points the 15.0 tables treat as
//! UNASSIGNED (and therefore reject).
//!
//! # Conformance, and where we deliberately differ
//!
//! - **PRECIS vectors.** Every UsernameCaseMapped, UsernameCasePreserved, OpaqueString,
//!   NicknameCaseMapped and NicknameCasePreserved row of the `precis_i18n` 1.1.2 golden file
//!   (`testdata/vectors/precis.tsv`, 323 rows per profile) agrees with this crate, including
//!   rows whose note says they need a recent Unicode version. The file's IdentifierClass and
//!   FreeformClass rows are not tested: those bare string classes are not exposed as
//!   functions.
//! - **RFC 7622 §3.5.2 lists `juliet@example.com/ foo` as invalid** ("leading space in
//!   resourcepart"), but the OpaqueString profile that §3.4 prescribes (RFC 8265 §4.2) allows
//!   U+0020 anywhere, and so do `precis_i18n` and the vectors (`OpaqueString " "` is valid).
//!   We follow the profile: the resourcepart is `" foo"`.
//! - **Error code points are reported after mapping.** `henryⅣ@example.com` fails with
//!   U+2173 (the lowercased ROMAN NUMERAL FOUR), because PRECIS checks the string class after
//!   case mapping.
//! - **Nickname profiles** reapply their rules until the output is stable (RFC 8266 §2.4),
//!   giving up after five applications ([`PrecisError::Unstable`]); the username and OpaqueString
//!   profiles reject input whose enforcement is not idempotent after one round.
//! - **Domainparts** follow IDNA2008 strictly, with the RFC 5895 mappings only (label
//!   separators U+3002/U+FF0E/U+FF61, width, lowercase, NFC). UTS-46 compatibility mappings
//!   (e.g. `ℌ` to `h`) are not applied, so such names are rejected. ASCII labels must be LDH
//!   (letters, digits, hyphen; no underscore). A name whose last label is all digits is
//!   taken as an IPv4 literal and must be a canonical dotted quad. IPv6 literals are
//!   canonicalized (RFC 5952 text form, e.g. `juliet@[2001:DB8:0:0:0:0:0:1]` becomes
//!   `juliet@[2001:db8::1]`); zone identifiers are rejected. Why not keep the input form:
//!   RFC 7622 §3.2 takes the literal's grammar from RFC 3986 and says nothing of its
//!   spelling, while JIDs are compared, hashed and routed as strings of their enforced form.
//!   Kept as typed, `[2001:DB8::1]` and `[2001:db8:0::1]` would be two entities for one host
//!   (two rosters, two stream `to` values, a failed `from` check). RFC 3986 §6.2.2.1 already
//!   treats the hex digits as case-insensitive, and RFC 5952 §4 is the one text form every
//!   spelling maps to, so the enforced form is that one, as dotted quads are for IPv4.
//!   `tests/rfc7622.rs` (`ipv6_literals_have_one_canonical_form`) pins it.
//! - **Lengths** (1..=1023 octets per part) are measured after enforcement; a raw part longer
//!   than 4092 octets is rejected before any Unicode work (no mapping shrinks text more than
//!   threefold), with the raw length in [`JidErrorKind::TooLong`].
//!
//! # Legacy peers
//!
//! [`Jid::new_lenient`] accepts JIDs prepared with the older RFC 6122 stringprep profiles
//! (e.g. `henryⅣ@example.com`, which nodeprep's NFKC turned into `henryiv`): it retries a
//! failed parse after stringprep's mapping steps and always returns a strictly valid JID.
//!
//! # Performance
//!
//! Short all-ASCII JIDs take a fast path: table-driven byte scans, no normalization, and one
//! allocation (the shared buffer). See the crate README for figures against the `jid` crate.
//!
//! `no_std` with `alloc`; the default `std` feature adds nothing but is kept for the future.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod ascii;
mod domain;
mod error;
mod jid;
mod parse;
mod props;
mod punycode;
mod repr;
mod rules;
mod tables;

pub mod escape;
pub mod precis;

pub use error::{JidError, JidErrorKind, JidPart, LabelError, PrecisError};
pub use jid::{BareJid, FullJid, Jid};
