//! JIDs per RFC 7622 (PRECIS): parse, validate, normalize, compare; bare and full types.
//!
//! Scope: `Jid`, `BareJid`, `FullJid`; the PRECIS UsernameCaseMapped (localpart) and
//! OpaqueString (resourcepart) profiles implemented in-house from generated Unicode tables;
//! IDNA2008 domainparts and IP literals; XEP-0106 escaping. `no_std` + `alloc`.
//!
//! (Being built: see issue 2.)
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
