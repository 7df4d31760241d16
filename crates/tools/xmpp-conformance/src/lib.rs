//! `xmpp-conformance`: a conformance checker for any XMPP server, rule by rule, as h2spec is
//! for HTTP/2. It connects over TCP (STARTTLS or direct TLS), negotiates with one or two
//! test accounts up to the point each case needs, sends the case's bytes and judges the
//! answer against RFC 6120 / RFC 6121; XEP-0198 stream management where the server offers
//! it, XEP-0114 components (the checker plays the component) where given a component port
//! and secret, server-to-server rules (the checker plays a remote server) where given the s2s
//! port, before authentication and, given a certificate the server trusts, after SASL
//! EXTERNAL, and RFC 7395 framing where given a `ws:` endpoint.
//!
//! The cases are not written here: they are [`xmpp_stream::conformance::CASES`], the table
//! the library's own hostile-peer suite runs in memory, each tied to a row of the negotiation
//! table ([`xmpp_stream::rules::RULES`]) or to an RFC 6121 section. A rule the checker cannot
//! check from outside is listed in [`coverage::NOT_CHECKABLE`] with the reason; a test keeps
//! the two lists covering the table exactly, so a rule added to the library becomes a case.
//!
//! - [`run`]: negotiation up to a case's phase (by hand before binding; our `ClientStream`
//!   through `xmpp_host` for bound sessions), then raw bytes; a deadline per case, bounded
//!   bytes, at most [`run::MAX_JOBS`] cases at once, and only the address given.
//! - [`report`]: a table, JSON, and several servers side by side.
//! - [`coverage`]: the table rows no case can check, and why.
// A tool does real I/O (sockets, clocks, OS randomness, threads), unlike the library crates.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![forbid(unsafe_code)]

pub mod coverage;
pub mod report;
pub mod run;

use xmpp_stream::conformance::{CASES, Case};

/// The cases a command line selects: by number or name (`cases`), by a piece of their
/// section (`sections`, e.g. `§6.4` or `6121`); every case when both are empty.
pub fn select(cases: &[String], sections: &[String]) -> Vec<&'static Case> {
    CASES
        .iter()
        .filter(|c| {
            cases.is_empty()
                || cases
                    .iter()
                    .any(|want| *want == c.id.to_string() || want == c.name)
        })
        .filter(|c| sections.is_empty() || sections.iter().any(|s| c.section.contains(s.as_str())))
        .collect()
}
