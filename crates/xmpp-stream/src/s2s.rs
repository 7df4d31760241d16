//! Server-to-server streams (RFC 6120 §13): [`S2sInitiatingStream`] is the end that opens
//! the connection (our server, sending stanzas to a remote domain), [`S2sReceivingStream`]
//! the end that accepts it. Both are rows of the negotiation table ([`crate::rules`]) over
//! the same machine as the other kinds.
//!
//! What the host does around them: DNS (SRV `_xmpp-server._tcp`, then A/AAAA), TCP, the TLS
//! handshake with certificate-chain validation, extracting the names of the peer's
//! certificate ([`crate::identity::PresentedId`], given with `set_peer_identities` before
//! `tls_established`), and, on the receiving end, the dialback verification connection to the
//! authoritative server ([`Event::DialbackVerify`](crate::Event::DialbackVerify), answered
//! with [`S2sReceivingStream::dialback_verified`]). A `<db:verify/>` the machine receives as
//! the authoritative server it answers itself, with the configured secret.
//!
//! ```
//! use xmpp_stream::identity::PresentedId;
//! use xmpp_stream::{AnyStream, BareJid, Event, Instant, Output, S2sConfig, S2sInitiatingStream};
//! use xmpp_stream::{S2sReceivingStream, SeededEntropy, Transport};
//!
//! let a = BareJid::new("a.example")?;
//! let b = BareJid::new("b.example")?;
//! let mut out = S2sInitiatingStream::new(S2sConfig::new(vec![a.clone()]), a.clone(), b.clone(), SeededEntropy::new(1));
//! let mut inc = S2sReceivingStream::new(S2sConfig::new(vec![b.clone()]), SeededEntropy::new(2));
//! // Both certificates check out (the host validated the chains); these are their names.
//! out.set_peer_identities(vec![PresentedId::Dns("b.example".into())]);
//! inc.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
//! let mut ends: [AnyStream; 2] = [out.into(), inc.into()];
//! let now = Instant::ZERO;
//! for end in &mut ends {
//!     end.start(now, Transport::Plain)?;
//! }
//! let mut events = Vec::new();
//! for _ in 0..8 {
//!     for from in 0..2 {
//!         while let Some(output) = ends[from].poll_output() {
//!             match output {
//!                 Output::Transmit(bytes) => {
//!                     let _ = ends[1 - from].handle_input(now, &bytes);
//!                 }
//!                 Output::StartTls => ends[from].tls_established(now, Vec::new())?,
//!                 Output::Event(event) => events.push(event),
//!                 _ => {}
//!             }
//!         }
//!     }
//! }
//! // STARTTLS, then SASL EXTERNAL: the pair a.example -> b.example is authenticated.
//! assert!(events.iter().any(|e| matches!(e, Event::ServerAuthenticated { .. })));
//! assert!(ends.iter().all(AnyStream::is_negotiated));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use minidom::Element;
use xmpp_jid::BareJid;
use xmpp_xml::Envelope;

use crate::config::S2sConfig;
use crate::core::Core;
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
use crate::flags::SessionFlags;
use crate::identity::PresentedId;
use crate::kind::{Role, StreamKind};
use crate::machine::{Machine, Side};
use crate::steps::s2s::{self, S2sSide};
use crate::surface::stream_surface;
use crate::time::Instant;

pub use crate::steps::s2s::DialbackOutcome;

fn machine(
    config: S2sConfig,
    role: Role,
    local: Option<BareJid>,
    remote: Option<BareJid>,
    entropy: Box<dyn Entropy + Send>,
) -> Machine {
    let mut core = Core::new(
        config.timeouts,
        config.limits.clone(),
        config.max_output_bytes,
        entropy,
    );
    core.envelopes = config.envelopes;
    let side = Side::S2s(Box::new(S2sSide::new(config, local, remote)));
    Machine::new(core, StreamKind::Server, role, side)
}

fn side(machine: &Machine) -> Option<&S2sSide> {
    match &machine.side {
        Side::S2s(side) => Some(side),
        _ => None,
    }
}

fn set_peer_identities(machine: &mut Machine, ids: Vec<PresentedId>) {
    if let Side::S2s(side) = &mut machine.side {
        side.peer_ids = Some(ids);
    }
}

/// What `send_stanza` and `send_envelope` check first, either end: on a negotiated stream,
/// the stanza's `from` and `to` domains must be an authenticated pair, (ours, theirs).
fn check_pair(machine: &Machine, from: Option<&str>, to: Option<&str>) -> Result<(), UsageError> {
    if machine.is_negotiated() && !s2s::may_send(machine, from, to) {
        return Err(UsageError::InvalidStanza(
            "from and to are not an authenticated domain pair of this stream",
        ));
    }
    Ok(())
}

/// `send_envelope`, either end: the pair rule on the stamped `from` and `to`, each falling
/// back to the envelope's own when not stamped, then the stanza spliced into `jabber:server`.
fn send_envelope(
    machine: &mut Machine,
    now: Instant,
    envelope: &Envelope,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(), UsageError> {
    check_pair(machine, from.or(envelope.from()), to.or(envelope.to()))?;
    machine.send_envelope(now, envelope, from, to)
}

/// The host's answer to a dialback verification the machine asked for, either end.
fn dialback_verified(
    machine: &mut Machine,
    now: Instant,
    originating: &BareJid,
    receiving: &BareJid,
    outcome: DialbackOutcome,
) -> Result<(), UsageError> {
    let _ = machine.process_input(false);
    machine.core.tick(now);
    machine.core.check_open()?;
    if s2s::verified(machine, originating, receiving, outcome) {
        Ok(())
    } else {
        Err(UsageError::InvalidConfig(
            "no such dialback verification pending",
        ))
    }
}

/// The initiating end of a server-to-server stream: our server connecting to `remote` to
/// send it stanzas from `local` (RFC 6120 §13).
///
/// The four kinds of methods of every stream type, plus
/// [`set_peer_identities`](Self::set_peer_identities) (the names of the peer's certificate)
/// and [`add_domain`](Self::add_domain) (another of our domains on the same connection), and
/// [`dialback_verified`](Self::dialback_verified) on a bidirectional stream.
/// Each authenticated pair is reported as
/// [`Event::ServerAuthenticated`](crate::Event::ServerAuthenticated).
pub struct S2sInitiatingStream {
    machine: Machine,
}

impl core::fmt::Debug for S2sInitiatingStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("S2sInitiatingStream")
            .field("pairs", &self.pairs())
            .field("flags", &self.machine.core.flags)
            .finish_non_exhaustive()
    }
}

impl S2sInitiatingStream {
    /// A stream that will authenticate `local` (one of `config.local_domains`) to `remote`.
    pub fn new(
        config: S2sConfig,
        local: BareJid,
        remote: BareJid,
        entropy: impl Entropy + Send + 'static,
    ) -> Self {
        S2sInitiatingStream {
            machine: machine(
                config,
                Role::Initiating,
                Some(local),
                Some(remote),
                Box::new(entropy),
            ),
        }
    }

    /// The names in the peer's certificate, after the host validated its chain (call before
    /// `tls_established`, or before `start` with direct TLS). Kept for the host's own checks;
    /// the initiating end authenticates itself, not the peer.
    pub fn set_peer_identities(&mut self, ids: Vec<PresentedId>) {
        set_peer_identities(&mut self.machine, ids);
    }

    /// The domain pairs that carry stanzas, (ours, theirs): each reported by
    /// [`Event::ServerAuthenticated`](crate::Event::ServerAuthenticated).
    pub fn pairs(&self) -> &[(BareJid, BareJid)] {
        side(&self.machine).map_or(&[], S2sSide::usable_pairs)
    }

    /// Ask the peer to accept stanzas from another of our domains on this connection
    /// (XEP-0220 piggybacking): a `<db:result/>` for (`local`, the peer's domain). The answer
    /// is `ServerAuthenticated` or `ServerRefused`.
    pub fn add_domain(&mut self, now: Instant, local: &BareJid) -> Result<(), UsageError> {
        let Some(remote) = side(&self.machine).and_then(|side| side.remote.clone()) else {
            return Err(UsageError::NotNegotiated);
        };
        self.add_pair(now, local, &remote)
    }

    /// Ask the peer to authenticate (`local`, `remote`) on this connection (XEP-0220 §2.5):
    /// `remote` is the peer's domain or another domain its certificate names (see
    /// [`certifies`](Self::certifies)), so that one connection carries every pair between
    /// two servers. The answer is `ServerAuthenticated` or `ServerRefused`. A pair already
    /// authenticated or asked for is an error.
    pub fn add_pair(
        &mut self,
        now: Instant,
        local: &BareJid,
        remote: &BareJid,
    ) -> Result<(), UsageError> {
        self.machine.core.tick(now);
        self.machine.core.check_open()?;
        let serves = side(&self.machine).is_some_and(|side| side.config.serves(local));
        if !serves {
            return Err(UsageError::InvalidConfig("not one of our domains"));
        }
        if !self.machine.is_negotiated() {
            return Err(UsageError::NotNegotiated);
        }
        let peer = side(&self.machine).and_then(|side| side.remote.clone());
        if peer.as_ref() != Some(remote) && !self.certifies(remote) {
            return Err(UsageError::InvalidConfig(
                "the peer's certificate does not name that domain",
            ));
        }
        if s2s::add_pair(&mut self.machine, local, remote) {
            Ok(())
        } else {
            Err(UsageError::InvalidConfig(
                "dialback is not possible on this stream (no secret, or no TLS), or the pair is already there",
            ))
        }
    }

    /// Whether the peer's certificate, validated by the host, names `remote` over TLS: the
    /// peer is then authoritative for it and pairs with it may share this connection.
    pub fn certifies(&self, remote: &BareJid) -> bool {
        s2s::peer_certified_for(&self.machine, remote)
    }

    /// The host's answer to an [`Event::DialbackVerify`](crate::Event::DialbackVerify) on a
    /// bidirectional stream (XEP-0288 §3: the receiving server asked for a pair in the
    /// reverse direction): the peer's `<db:result/>` is answered with it, and a valid key
    /// authenticates the pair.
    pub fn dialback_verified(
        &mut self,
        now: Instant,
        originating: &BareJid,
        receiving: &BareJid,
        outcome: DialbackOutcome,
    ) -> Result<(), UsageError> {
        dialback_verified(&mut self.machine, now, originating, receiving, outcome)
    }

    /// Whether XEP-0288 bidirectional streams were negotiated: stanzas from the peer's
    /// domains to ours arrive on this connection too, checked against the same pairs.
    pub fn is_bidi(&self) -> bool {
        self.machine.core.flags.contains(SessionFlags::BIDI)
    }

    /// Send a stanza whose `from` and `to` domains are an authenticated pair (any content
    /// namespace: it is written as `jabber:server`).
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        check_pair(&self.machine, stanza.attr("from"), stanza.attr("to"))?;
        self.machine.send_stanza(now, stanza)
    }

    /// Forward a stanza received as an envelope (on any stream: `jabber:client`,
    /// `jabber:server` or `jabber:component:accept`) with `from` and `to` stamped (`None`
    /// keeps the envelope's own), as [`send_stanza`](Self::send_stanza) would send the
    /// stamped element: the stamped `from` and `to` domains must be an authenticated pair
    /// (the same [`UsageError`]). Its bytes are spliced with the start tag rewritten and the
    /// namespace moved into `jabber:server` (no element built), or go through the element
    /// path where the splice needs it (see
    /// [`ServerStream::send_envelope`](crate::ServerStream::send_envelope)).
    pub fn send_envelope(
        &mut self,
        now: Instant,
        envelope: &Envelope,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), UsageError> {
        send_envelope(&mut self.machine, now, envelope, from, to)
    }

    /// Bytes from the peer, in any chunking.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.machine.handle_input(now, bytes)
    }
}

stream_surface!(S2sInitiatingStream);

/// The receiving end of a server-to-server stream: a peer server connected to us to send
/// stanzas to our domains (RFC 6120 §13).
///
/// It offers STARTTLS, then SASL EXTERNAL when the peer's certificate names the domain it
/// claims, and dialback when configured; it asks the host to verify dialback keys
/// ([`Event::DialbackVerify`](crate::Event::DialbackVerify), answered with
/// [`dialback_verified`](Self::dialback_verified)), answers `<db:verify/>` itself, and checks
/// every stanza's `from` and `to` against the authenticated pairs. Stanzas flow one way
/// unless XEP-0288 bidirectional streams were negotiated ([`S2sConfig::bidi`]).
pub struct S2sReceivingStream {
    machine: Machine,
}

impl core::fmt::Debug for S2sReceivingStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("S2sReceivingStream")
            .field("pairs", &self.pairs())
            .field("flags", &self.machine.core.flags)
            .finish_non_exhaustive()
    }
}

impl S2sReceivingStream {
    /// A receiving end for one accepted connection; `entropy` supplies stream ids.
    pub fn new(config: S2sConfig, entropy: impl Entropy + Send + 'static) -> Self {
        S2sReceivingStream {
            machine: machine(config, Role::Receiving, None, None, Box::new(entropy)),
        }
    }

    /// The names in the peer's certificate, after the host validated its chain (call before
    /// `tls_established`, or before `start` with direct TLS). SASL EXTERNAL is offered only
    /// when they name the domain the peer claims ([`crate::identity::verify`]).
    pub fn set_peer_identities(&mut self, ids: Vec<PresentedId>) {
        set_peer_identities(&mut self.machine, ids);
    }

    /// The domain pairs that carry stanzas, (ours, theirs): each reported by
    /// [`Event::ServerAuthenticated`](crate::Event::ServerAuthenticated).
    pub fn pairs(&self) -> &[(BareJid, BareJid)] {
        side(&self.machine).map_or(&[], S2sSide::usable_pairs)
    }

    /// The host's answer to an [`Event::DialbackVerify`](crate::Event::DialbackVerify) for
    /// (`originating`, `receiving`): the peer's `<db:result/>` is answered with it, and a
    /// valid key authenticates the pair.
    pub fn dialback_verified(
        &mut self,
        now: Instant,
        originating: &BareJid,
        receiving: &BareJid,
        outcome: DialbackOutcome,
    ) -> Result<(), UsageError> {
        dialback_verified(&mut self.machine, now, originating, receiving, outcome)
    }

    /// With XEP-0288 bidi, ask the initiating server to accept stanzas from `local` (one of
    /// ours) to `remote` on this connection (XEP-0288 §3: a `<db:result/>` from our side):
    /// `remote` is a domain the peer authenticated on it or one its certificate names. The
    /// peer verifies the key with our authoritative server, or by our certificate
    /// (XEP-0344); the answer is `ServerAuthenticated` or `ServerRefused`.
    pub fn add_pair(
        &mut self,
        now: Instant,
        local: &BareJid,
        remote: &BareJid,
    ) -> Result<(), UsageError> {
        self.machine.core.tick(now);
        self.machine.core.check_open()?;
        if !self.machine.is_negotiated() {
            return Err(UsageError::NotNegotiated);
        }
        if !self.is_bidi() {
            return Err(UsageError::InvalidConfig(
                "pairs are asked for by the initiating server only (no XEP-0288 bidi)",
            ));
        }
        let serves = side(&self.machine).is_some_and(|side| side.config.serves(local));
        if !serves {
            return Err(UsageError::InvalidConfig("not one of our domains"));
        }
        if !s2s::peer_authenticated_for(&self.machine, remote) && !self.certifies(remote) {
            return Err(UsageError::InvalidConfig(
                "the peer neither authenticated that domain nor has a certificate naming it",
            ));
        }
        if s2s::add_pair(&mut self.machine, local, remote) {
            Ok(())
        } else {
            Err(UsageError::InvalidConfig(
                "dialback is not possible on this stream (no secret, or no TLS), or the pair is already there",
            ))
        }
    }

    /// Whether the peer's certificate, validated by the host, names `remote` over TLS.
    pub fn certifies(&self, remote: &BareJid) -> bool {
        s2s::peer_certified_for(&self.machine, remote)
    }

    /// Whether XEP-0288 bidirectional streams were negotiated: this end may then send
    /// stanzas too ([`send_stanza`](Self::send_stanza)).
    pub fn is_bidi(&self) -> bool {
        self.machine.core.flags.contains(SessionFlags::BIDI)
    }

    /// Send a stanza to the initiating server, once XEP-0288 bidirectional streams were
    /// negotiated: its `from` and `to` domains must be an authenticated pair, (ours, theirs).
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        self.check_bidi()?;
        check_pair(&self.machine, stanza.attr("from"), stanza.attr("to"))?;
        self.machine.send_stanza(now, stanza)
    }

    /// Forward a stanza received as an envelope to the initiating server, once XEP-0288
    /// bidirectional streams were negotiated, with `from` and `to` stamped (`None` keeps the
    /// envelope's own): refused as [`send_stanza`](Self::send_stanza) refuses the stamped
    /// element (no bidi, or not an authenticated pair: the same [`UsageError`]), else
    /// spliced into `jabber:server` as
    /// [`S2sInitiatingStream::send_envelope`] does.
    pub fn send_envelope(
        &mut self,
        now: Instant,
        envelope: &Envelope,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), UsageError> {
        self.check_bidi()?;
        send_envelope(&mut self.machine, now, envelope, from, to)
    }

    /// Stanzas flow this way only with XEP-0288 bidi.
    fn check_bidi(&self) -> Result<(), UsageError> {
        if self.is_bidi() {
            Ok(())
        } else {
            Err(UsageError::InvalidConfig(
                "stanzas flow from the initiating server only (no XEP-0288 bidi)",
            ))
        }
    }

    /// Bytes from the peer, in any chunking. As on
    /// [`ServerStream::handle_input`](crate::ServerStream::handle_input), stanzas of an
    /// established stream are processed as the host drains `poll_output`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.machine.handle_input(now, bytes)
    }
}

stream_surface!(S2sReceivingStream);
