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
mod rules;
mod tables;

pub mod escape;
pub mod precis;

pub use error::{JidError, JidErrorKind, JidPart, LabelError, PrecisError};
pub use jid::{BareJid, FullJid, Jid};
