//! Server-to-server (RFC 6120 §13) in the hub: one outgoing [`S2sInitiatingStream`] per peer
//! server, opened on the first stanza for one of its domains and fed from a bounded queue per
//! remote domain until the stanza's domain pair is authenticated; further pairs on the same
//! connection (our other domains, and the peer's other domains its certificate names) by
//! XEP-0220 piggybacking; receiving streams, used both ways when XEP-0288 bidi was negotiated, ([`S2sReceivingStream`]) whose stanzas enter the IM
//! machine like a component's; and [`Verification`], the Sans-IO `<db:verify/>` exchange the
//! host runs against an authoritative server for a receiving stream's dialback request.
//!
//! What is the host's: the route to a domain (the example server has static routes, no DNS),
//! TCP, TLS and the certificate checks, and the deadline for opening a connection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use minidom::Element;
use xmpp_jid::BareJid;
use xmpp_stream::dialback::{Content, DbVerify, DialbackCondition, DialbackKey, Domain, StreamId};
use xmpp_stream::identity::PresentedId;
use xmpp_stream::{
    AnyStream, CloseReason, DialbackOutcome, Instant, S2sInitiatingStream, S2sReceivingStream,
    StanzaErrorCondition, Transport,
};
use xmpp_xml::{ContentNamespace, Event as XmlEvent, StreamHeader, StreamParser, StreamWriter};

use super::record::{Recorder, Tap};
use super::routed::Routed;
use super::{Hub, HubOutput, Kind, SessionId};

/// Stanzas held per remote domain while its connection is being set up; beyond this the
/// newest are bounced with `resource-constraint`.
pub const MAX_QUEUED_PER_DOMAIN: usize = 256;

/// Outgoing connections asked of the host ([`HubOutput::Connect`]) and not started yet (its
/// DNS lookups and TCP connect): past this, a stanza that needs one more bounces with
/// `resource-constraint` (RFC 6120 §8.3.3.18) and asks again with the next one. A client
/// chooses how many remote domains it writes to, and each new one costs the host lookups and
/// a connection attempt that an unreachable address holds until the host's deadline.
pub const MAX_S2S_CONNECTING: usize = 1024;

/// Outgoing connections to one remote domain beyond the first: one per further local domain
/// whose pair cannot be added to the first (no dialback secret, and no certificate naming
/// it). Past this, that local domain's stanzas bounce with `remote-server-not-found`.
pub const MAX_EXTRA_CONNECTIONS_PER_PEER: usize = 4;

/// An outgoing connection as it serves one remote domain. Several remote domains of one
/// peer server share a connection (the same `id`) when its certificate names them.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) id: SessionId,
    /// Our domain of the connection's first pair (its stream header's `from`).
    pub(super) local: BareJid,
    /// The domain the connection was opened to (its stream header's `to`).
    pub(super) peer: BareJid,
    /// Stanzas waiting for their pair to be authenticated, oldest first (bounded).
    pub(super) queue: VecDeque<Routed>,
    /// Our domains whose pair with this remote domain was asked for on the connection.
    pub(super) asked: BTreeSet<BareJid>,
}

/// The bounce condition for a connection that ended before it was authenticated: a deadline
/// is `remote-server-timeout` (RFC 6120 §8.3.3.15), anything else `remote-server-not-found`
/// (§8.3.3.14: the remote server could not be reached as an XMPP server).
pub(super) fn bounce_condition(reason: &CloseReason) -> StanzaErrorCondition {
    match reason {
        CloseReason::Timeout(_) => StanzaErrorCondition::RemoteServerTimeout,
        _ => StanzaErrorCondition::RemoteServerNotFound,
    }
}

/// The hub's s2s state beyond one outgoing connection per remote domain.
#[derive(Debug, Default)]
pub(super) struct MoreS2s {
    /// Outgoing connections of a local domain of their own, by pair (ours, theirs): opened
    /// when the pair could not be added to the connection to that remote domain.
    pub(super) dedicated: BTreeMap<(BareJid, BareJid), Outgoing>,
    /// Pairs (ours, theirs) asked for in the reverse direction on a bidirectional receiving
    /// stream (XEP-0288 §3): the stream, and the stanzas waiting for the answer (bounded).
    pub(super) bidi_pending: BTreeMap<(BareJid, BareJid), (SessionId, VecDeque<Routed>)>,
    /// What each outgoing connection serves: its keys in the hub's `outgoing` and in
    /// `dedicated`, so that a connection's events (started, failed, closed) find its entries
    /// without a walk over every outgoing connection (clients choose how many remote domains
    /// they write to: a walk per connection event made K connections cost K² steps).
    pub(super) by_id: BTreeMap<SessionId, Served>,
    /// The outgoing connections whose stream has started (a session exists): the only ones
    /// a new remote domain may share ([`Hub::certified_connection`]), looked at without the
    /// many still being set up.
    pub(super) started: BTreeSet<SessionId>,
}

/// The entries of one outgoing connection ([`MoreS2s::by_id`]), in the maps' order.
#[derive(Debug, Default)]
pub(super) struct Served {
    remotes: BTreeSet<BareJid>,
    pairs: BTreeSet<(BareJid, BareJid)>,
}

impl Hub {
    /// Our domain a stanza to a remote domain is sent from: its `from` domain when it is one
    /// of ours, else our first domain (a component's stanza).
    fn local_of(&self, stanza: &Routed) -> BareJid {
        local_domain_of(&self.config, stanza)
    }

    /// `outgoing.insert`, indexed ([`MoreS2s::by_id`]).
    fn insert_outgoing(&mut self, remote: BareJid, out: Outgoing) {
        let id = out.id;
        if let Some(old) = self.outgoing.insert(remote.clone(), out)
            && let Some(served) = self.s2s_more.by_id.get_mut(&old.id)
        {
            served.remotes.remove(&remote);
        }
        self.s2s_more
            .by_id
            .entry(id)
            .or_default()
            .remotes
            .insert(remote);
    }

    /// `dedicated.insert`, indexed ([`MoreS2s::by_id`]).
    fn insert_dedicated(&mut self, pair: (BareJid, BareJid), out: Outgoing) {
        let id = out.id;
        if let Some(old) = self.s2s_more.dedicated.insert(pair.clone(), out)
            && let Some(served) = self.s2s_more.by_id.get_mut(&old.id)
        {
            served.pairs.remove(&pair);
        }
        self.s2s_more
            .by_id
            .entry(id)
            .or_default()
            .pairs
            .insert(pair);
    }

    /// Whether outgoing connection `id` serves anything ([`Hub::is_outgoing`]).
    pub(super) fn serves_outgoing(&self, id: SessionId) -> bool {
        self.s2s_more
            .by_id
            .get(&id)
            .is_some_and(|served| !served.remotes.is_empty() || !served.pairs.is_empty())
    }

    /// The initiating stream of session `id`, when it is one.
    fn initiating(&self, id: SessionId) -> Option<&S2sInitiatingStream> {
        match &self.sessions.get(&id)?.stream {
            AnyStream::S2sInitiating(stream) => Some(stream),
            _ => None,
        }
    }

    /// Whether the pair carries stanzas on outgoing connection `id`.
    fn pair_up(&self, id: SessionId, local: &BareJid, remote: &BareJid) -> bool {
        self.initiating(id).is_some_and(|stream| {
            stream
                .pairs()
                .iter()
                .any(|(l, r)| l == local && r == remote)
        })
    }

    /// A stanza for `remote`, a domain that is neither ours nor a component's: onto a
    /// connection that carries its domain pair (a bidirectional one the peer opened, or
    /// ours), else queued for the pair while it is asked for on the connection to `remote`
    /// (or on one to another domain of the same server, whose certificate names `remote`),
    /// else a new connection is opened.
    pub(super) fn route_s2s(&mut self, now: Instant, remote: BareJid, stanza: Routed) {
        let local = self.local_of(&stanza);
        if let Some(id) = self.bidi_in.get(&(local.clone(), remote.clone())).copied() {
            self.send_routed(now, id, &stanza);
            return;
        }
        let Some(stanza) = self.route_bidi_reverse(now, &local, &remote, stanza) else {
            return;
        };
        self.route_outgoing(now, local, remote, stanza);
    }

    /// [`route_s2s`](Self::route_s2s) on our own outgoing connections.
    fn route_outgoing(&mut self, now: Instant, local: BareJid, remote: BareJid, stanza: Routed) {
        let pair = (local.clone(), remote.clone());
        if let Some(id) = self.s2s_more.dedicated.get(&pair).map(|out| out.id) {
            if self.pair_up(id, &local, &remote) {
                self.send_routed(now, id, &stanza);
            } else {
                self.enqueue(now, &pair, stanza);
            }
            return;
        }
        if !self.outgoing.contains_key(&remote)
            && let Some(id) = self.certified_connection(&remote)
        {
            self.log
                .push(format!("{id}: s2s connection shared with {remote}"));
            let peer = self.remote_of(id).unwrap_or_else(|| remote.clone());
            self.insert_outgoing(
                remote.clone(),
                Outgoing {
                    id,
                    local: local.clone(),
                    peer,
                    queue: VecDeque::new(),
                    asked: BTreeSet::new(),
                },
            );
        }
        let Some(id) = self.outgoing.get(&remote).map(|out| out.id) else {
            self.open_outgoing(now, local, remote, stanza);
            return;
        };
        if self.pair_up(id, &local, &remote) {
            self.send_routed(now, id, &stanza);
            return;
        }
        if self.enqueue(now, &pair, stanza) {
            self.ask_pair(now, id, &local, &remote);
        }
    }

    /// Queue `stanza` for `pair` (ours, theirs) on the connection that serves it (a dedicated
    /// one, else the one to the remote domain), bounded: `false` when it bounced.
    fn enqueue(&mut self, now: Instant, pair: &(BareJid, BareJid), stanza: Routed) -> bool {
        let queue = match self.s2s_more.dedicated.get_mut(pair) {
            Some(out) => Some(&mut out.queue),
            None => self.outgoing.get_mut(&pair.1).map(|out| &mut out.queue),
        };
        match queue {
            Some(queue) if queue.len() < MAX_QUEUED_PER_DOMAIN => {
                queue.push_back(stanza);
                true
            }
            _ => {
                self.log
                    .push(format!("s2s queue for {} full: bouncing a stanza", pair.1));
                self.routed_error_reply(now, &stanza, StanzaErrorCondition::ResourceConstraint);
                false
            }
        }
    }

    /// With XEP-0288, a stanza for a pair that no bidirectional stream carries yet, while we
    /// have no connection of our own to `remote`: ask for the pair on a bidirectional
    /// receiving stream whose peer is authoritative for `remote` (XEP-0288 §3) and queue the
    /// stanza for the answer. The stanza is given back when there is no such stream or it
    /// cannot ask.
    fn route_bidi_reverse(
        &mut self,
        now: Instant,
        local: &BareJid,
        remote: &BareJid,
        stanza: Routed,
    ) -> Option<Routed> {
        let pair = (local.clone(), remote.clone());
        if let Some((_, queue)) = self.s2s_more.bidi_pending.get_mut(&pair) {
            if queue.len() < MAX_QUEUED_PER_DOMAIN {
                queue.push_back(stanza);
            } else {
                self.routed_error_reply(now, &stanza, StanzaErrorCondition::ResourceConstraint);
            }
            return None;
        }
        let ours =
            self.outgoing.contains_key(remote) || self.s2s_more.dedicated.contains_key(&pair);
        // Without XEP-0288 in the s2s template no receiving stream is bidirectional: nothing
        // to look for.
        let bidi = self.config.s2s.as_ref().is_some_and(|s2s| s2s.bidi);
        if ours || !bidi {
            return Some(stanza);
        }
        // A stream on which the peer authenticated `remote`, else one whose certificate
        // names it.
        let authenticated = self
            .bidi_in
            .iter()
            .find(|((_, r), _)| r == remote)
            .map(|(_, id)| *id);
        // Among the receiving streams only, in id order as a walk over every session finds
        // it: that walk cost each stanza to a domain we have no connection to (each new
        // domain a client writes to) a step per client.
        let certified = || {
            self.s2s_receiving.iter().copied().find(|id| {
                self.sessions
                    .get(id)
                    .is_some_and(|session| match &session.stream {
                        AnyStream::S2sReceiving(stream) => {
                            stream.is_bidi() && stream.is_negotiated() && stream.certifies(remote)
                        }
                        _ => false,
                    })
            })
        };
        let Some(id) = authenticated.or_else(certified) else {
            return Some(stanza);
        };
        let asked = match self.sessions.get_mut(&id).map(|s| &mut s.stream) {
            Some(AnyStream::S2sReceiving(stream)) => stream.add_pair(now, local, remote),
            _ => return Some(stanza),
        };
        self.dirty.insert(id);
        match asked {
            Ok(()) => {
                self.log.push(format!(
                    "{id}: asking for {local} / {remote} on the bidirectional stream"
                ));
                self.s2s_more
                    .bidi_pending
                    .insert(pair, (id, VecDeque::from([stanza])));
                None
            }
            Err(error) => {
                self.log
                    .push(format!("{id}: cannot add {local} / {remote}: {error}"));
                Some(stanza)
            }
        }
    }

    /// The pairs asked for on bidirectional stream `id` that will not come (refused, or the
    /// stream closed; all of them when `pair` is `None`): their stanzas take our own
    /// outgoing connections.
    fn reroute_bidi_pending(
        &mut self,
        now: Instant,
        id: SessionId,
        pair: Option<&(BareJid, BareJid)>,
    ) {
        let gone: Vec<(BareJid, BareJid)> = self
            .s2s_more
            .bidi_pending
            .iter()
            .filter(|(p, (session, _))| *session == id && pair.is_none_or(|pair| pair == *p))
            .map(|(p, _)| p.clone())
            .collect();
        for (local, remote) in gone {
            let Some((_, queue)) = self
                .s2s_more
                .bidi_pending
                .remove(&(local.clone(), remote.clone()))
            else {
                continue;
            };
            for stanza in queue {
                self.route_outgoing(now, local.clone(), remote.clone(), stanza);
            }
        }
    }

    /// A connection of its own for (`local`, `remote`), taking the stanzas queued for the pair
    /// on the connection to `remote` (which cannot carry it), bounded per remote domain
    /// ([`MAX_EXTRA_CONNECTIONS_PER_PEER`]): past the bound they bounce.
    fn open_dedicated(&mut self, now: Instant, local: &BareJid, remote: &BareJid) {
        let Some(out) = self.outgoing.get_mut(remote) else {
            return;
        };
        let (mine, kept): (VecDeque<Routed>, VecDeque<Routed>) = std::mem::take(&mut out.queue)
            .into_iter()
            .partition(|stanza| local_domain_of(&self.config, stanza) == *local);
        out.queue = kept;
        let extra = self
            .s2s_more
            .dedicated
            .keys()
            .filter(|(_, r)| r == remote)
            .count();
        let refused = if extra >= MAX_EXTRA_CONNECTIONS_PER_PEER {
            Some(StanzaErrorCondition::RemoteServerNotFound)
        } else if self.s2s_connecting() >= MAX_S2S_CONNECTING {
            Some(StanzaErrorCondition::ResourceConstraint)
        } else {
            None
        };
        if let Some(condition) = refused {
            // Asked for again (and bounced again) with the next stanza.
            if let Some(out) = self.outgoing.get_mut(remote) {
                out.asked.remove(local);
            }
            self.log.push(format!(
                "too many s2s connections to {remote}: bouncing for {local}"
            ));
            for stanza in mine {
                self.routed_error_reply(now, &stanza, condition);
            }
            return;
        }
        let id = self.reserve_id();
        self.log.push(format!(
            "{id}: s2s connection from {local} to {remote} wanted"
        ));
        self.insert_dedicated(
            (local.clone(), remote.clone()),
            Outgoing {
                id,
                local: local.clone(),
                peer: remote.clone(),
                queue: mine,
                asked: BTreeSet::from([local.clone()]),
            },
        );
        self.out.push_back(HubOutput::Connect {
            id,
            local: local.clone(),
            remote: remote.clone(),
        });
    }

    /// Outgoing connections asked of the host and not started yet.
    fn s2s_connecting(&self) -> usize {
        // Every started one has its entries until it is dropped, with its start.
        let more = &self.s2s_more;
        more.by_id.len().saturating_sub(more.started.len())
    }

    /// A new outgoing connection for `remote`, its first stanza queued, unless
    /// [`MAX_S2S_CONNECTING`] are being set up already (the stanza bounces then).
    fn open_outgoing(&mut self, now: Instant, local: BareJid, remote: BareJid, stanza: Routed) {
        if self.s2s_connecting() >= MAX_S2S_CONNECTING {
            self.log.push(format!(
                "{MAX_S2S_CONNECTING} s2s connections being set up: bouncing a stanza for {remote}"
            ));
            self.routed_error_reply(now, &stanza, StanzaErrorCondition::ResourceConstraint);
            return;
        }
        let id = self.reserve_id();
        self.log
            .push(format!("{id}: s2s connection to {remote} wanted"));
        self.insert_outgoing(
            remote.clone(),
            Outgoing {
                id,
                local: local.clone(),
                peer: remote.clone(),
                queue: VecDeque::from([stanza]),
                asked: BTreeSet::from([local.clone()]),
            },
        );
        self.out.push_back(HubOutput::Connect { id, local, remote });
    }

    /// An established outgoing connection whose peer's certificate names `remote`, or on
    /// which the peer authenticated `remote` (a pair it asked for over XEP-0288 bidi).
    fn certified_connection(&self, remote: &BareJid) -> Option<SessionId> {
        // The connection of the first entry of `outgoing`, in its order, that qualifies, as a
        // walk over `outgoing` finds it; only started connections have a stream to qualify,
        // and a walk over every entry cost each new remote domain a step per connection still
        // being set up (K new domains at once: K² steps).
        let qualifies = |id: SessionId| {
            self.initiating(id).is_some_and(|stream| {
                stream.is_negotiated()
                    && (stream.certifies(remote) || stream.pairs().iter().any(|(_, r)| r == remote))
            })
        };
        self.s2s_more
            .started
            .iter()
            .filter(|id| qualifies(**id))
            .filter_map(|id| {
                let served = self.s2s_more.by_id.get(id)?;
                let first = served
                    .remotes
                    .iter()
                    .find(|r| self.outgoing.get(*r).is_some_and(|out| out.id == *id))?;
                Some((first, *id))
            })
            .min_by(|a, b| a.0.cmp(b.0))
            .map(|(_, id)| id)
    }

    /// Ask for (`local`, `remote`) on the established connection `id`, once (XEP-0220 §2.5);
    /// when it cannot be asked for, its queued stanzas take a connection of their own
    /// ([`open_dedicated`](Self::open_dedicated)).
    fn ask_pair(&mut self, now: Instant, id: SessionId, local: &BareJid, remote: &BareJid) {
        let negotiated = self
            .initiating(id)
            .is_some_and(S2sInitiatingStream::is_negotiated);
        let Some(out) = self.outgoing.get_mut(remote) else {
            return;
        };
        if !negotiated || !out.asked.insert(local.clone()) {
            return;
        }
        let asked = match self.sessions.get_mut(&id).map(|s| &mut s.stream) {
            Some(AnyStream::S2sInitiating(stream)) => stream.add_pair(now, local, remote),
            _ => return,
        };
        self.dirty.insert(id);
        if let Err(error) = asked {
            self.log
                .push(format!("{id}: cannot add {local} / {remote}: {error}"));
            self.open_dedicated(now, local, remote);
        }
    }

    /// Bounce the stanzas queued for (`local`, `remote`).
    fn bounce_pair(
        &mut self,
        now: Instant,
        local: &BareJid,
        remote: &BareJid,
        condition: StanzaErrorCondition,
    ) {
        let Some(out) = self.outgoing.get_mut(remote) else {
            return;
        };
        let (bounced, kept) = std::mem::take(&mut out.queue)
            .into_iter()
            .partition(|stanza| local_domain_of(&self.config, stanza) == *local);
        out.queue = kept;
        let bounced: VecDeque<Routed> = bounced;
        for stanza in bounced {
            self.routed_error_reply(now, &stanza, condition);
        }
    }

    /// The host opened the TCP connection asked for by [`HubOutput::Connect`]: the stream
    /// starts (its header goes out).
    pub fn s2s_connected(
        &mut self,
        id: SessionId,
        now: Instant,
        entropy: impl xmpp_stream::Entropy + Send + 'static,
    ) {
        self.start_outgoing(id, now, entropy, Transport::Plain, None);
    }

    /// As [`s2s_connected`](Self::s2s_connected), on a connection that ran its TLS handshake
    /// first (XEP-0368, found by `_xmpps-server._tcp`): the stream starts secure, without
    /// STARTTLS. `peer_ids` are the names of the peer's certificate when its chain checked
    /// out, as for [`set_peer_identities`](Self::set_peer_identities).
    pub fn s2s_connected_direct_tls(
        &mut self,
        id: SessionId,
        now: Instant,
        entropy: impl xmpp_stream::Entropy + Send + 'static,
        peer_ids: Option<Vec<PresentedId>>,
    ) {
        self.start_outgoing(id, now, entropy, Transport::Tls(Vec::new()), peer_ids);
    }

    /// A peer server connected to our XEP-0368 direct TLS s2s port and the handshake is done:
    /// its stream starts secure. `peer_ids` as for [`s2s_connected_direct_tls`](Self::s2s_connected_direct_tls).
    pub fn accept_s2s_direct_tls(
        &mut self,
        now: Instant,
        entropy: impl xmpp_stream::Entropy + Send + 'static,
        peer_ids: Option<Vec<PresentedId>>,
    ) -> SessionId {
        let id = self.reserve_id();
        let transport = Transport::Tls(Vec::new());
        let (mut stream, mut rec) = match &self.config.record {
            Some(sink) => {
                let entropy = Tap::new(entropy);
                let rec =
                    Recorder::start(&self.config, Kind::S2sIn, sink, now, &transport, &entropy);
                (
                    S2sReceivingStream::new(self.config.s2s_config(), entropy),
                    rec,
                )
            }
            None => (
                S2sReceivingStream::new(self.config.s2s_config(), entropy),
                Recorder::off(),
            ),
        };
        if let Some(ids) = peer_ids {
            rec.peer_ids(&ids);
            stream.set_peer_identities(ids);
        }
        self.insert_session(now, id, Kind::S2sIn, stream.into(), rec, transport);
        id
    }

    /// Start the stream of outgoing connection `id` on `transport` (plain after the TCP
    /// connection, TLS after a direct TLS handshake, with the peer's names when they checked
    /// out).
    fn start_outgoing(
        &mut self,
        id: SessionId,
        now: Instant,
        entropy: impl xmpp_stream::Entropy + Send + 'static,
        transport: Transport,
        peer_ids: Option<Vec<PresentedId>>,
    ) {
        let Some((local, remote)) = self
            .outgoing_by_id(id)
            .map(|out| (out.local.clone(), out.peer.clone()))
        else {
            return;
        };
        let (mut stream, mut rec) = match &self.config.record {
            Some(sink) => {
                let entropy = Tap::new(entropy);
                let rec =
                    Recorder::start_initiating(&local, &remote, sink, now, &transport, &entropy);
                let config = self.config.s2s_config();
                (
                    S2sInitiatingStream::new(config, local, remote, entropy),
                    rec,
                )
            }
            _ => (
                S2sInitiatingStream::new(self.config.s2s_config(), local, remote, entropy),
                Recorder::off(),
            ),
        };
        if let Some(ids) = peer_ids {
            rec.peer_ids(&ids);
            stream.set_peer_identities(ids);
        }
        self.insert_session(now, id, Kind::S2sOut, stream.into(), rec, transport);
        self.s2s_more.started.insert(id);
    }

    /// The host could not open the connection asked for by [`HubOutput::Connect`] (no route:
    /// `remote-server-not-found`; no answer in time: `remote-server-timeout`): the queued
    /// stanzas bounce with `condition`.
    pub fn s2s_connect_failed(
        &mut self,
        id: SessionId,
        now: Instant,
        condition: StanzaErrorCondition,
    ) {
        if let Some(remote) = self.remote_of(id) {
            self.log.push(format!(
                "{id}: s2s connection to {remote} failed ({condition})"
            ));
        }
        self.drop_outgoing(now, id, condition);
        self.flush(now);
    }

    /// The domain outgoing connection `id` was opened to.
    fn remote_of(&self, id: SessionId) -> Option<BareJid> {
        self.outgoing_by_id(id).map(|out| out.peer.clone())
    }

    /// Outgoing connection `id`, the first to its remote domain or a dedicated one.
    fn outgoing_by_id(&self, id: SessionId) -> Option<&Outgoing> {
        // The first in the maps' order, as a walk over `outgoing` then `dedicated` finds it.
        let served = self.s2s_more.by_id.get(&id)?;
        served
            .remotes
            .iter()
            .find_map(|remote| self.outgoing.get(remote))
            .or_else(|| {
                served
                    .pairs
                    .iter()
                    .find_map(|pair| self.s2s_more.dedicated.get(pair))
            })
    }

    /// Forget outgoing connection `id` for every remote domain it served, bouncing what
    /// they still held.
    pub(super) fn drop_outgoing(
        &mut self,
        now: Instant,
        id: SessionId,
        condition: StanzaErrorCondition,
    ) {
        self.s2s_more.started.remove(&id);
        let served = self.s2s_more.by_id.remove(&id).unwrap_or_default();
        for remote in served.remotes {
            // Only what is still this connection's (the index follows every insert).
            let ours = self.outgoing.get(&remote).is_some_and(|out| out.id == id);
            if !ours {
                continue;
            }
            if let Some(out) = self.outgoing.remove(&remote) {
                for stanza in out.queue {
                    self.routed_error_reply(now, &stanza, condition);
                }
            }
        }
        for pair in served.pairs {
            let ours = self
                .s2s_more
                .dedicated
                .get(&pair)
                .is_some_and(|out| out.id == id);
            if !ours {
                continue;
            }
            if let Some(out) = self.s2s_more.dedicated.remove(&pair) {
                for stanza in out.queue {
                    self.routed_error_reply(now, &stanza, condition);
                }
            }
            // The next stanza of the pair tries the first connection, then a new one.
            if let Some(out) = self.outgoing.get_mut(&pair.1) {
                out.asked.remove(&pair.0);
            }
        }
    }

    /// Session `id` reported `ServerAuthenticated` for (`local`, `remote`): an outgoing
    /// stream sends what waited for that pair and asks for the pairs the rest waits for; a
    /// bidirectional receiving stream (XEP-0288) carries our stanzas for the pair from now on.
    pub(super) fn on_pair_authenticated(
        &mut self,
        id: SessionId,
        now: Instant,
        local: &BareJid,
        remote: &BareJid,
    ) {
        match self.sessions.get(&id).map(|s| &s.stream) {
            Some(AnyStream::S2sReceiving(stream)) if stream.is_bidi() => {
                let pair = (local.clone(), remote.clone());
                self.bidi_in.insert(pair.clone(), id);
                // A pair we asked for in the reverse direction (XEP-0288 §3).
                if let Some((_, waiting)) = self
                    .s2s_more
                    .bidi_pending
                    .remove(&pair)
                    .filter(|(session, _)| *session == id)
                {
                    for stanza in waiting {
                        self.send_routed(now, id, &stanza);
                    }
                }
                return;
            }
            Some(AnyStream::S2sInitiating(_)) => {}
            _ => return,
        }
        let pair = (local.clone(), remote.clone());
        if let Some(out) = self
            .s2s_more
            .dedicated
            .get_mut(&pair)
            .filter(|out| out.id == id)
        {
            for stanza in std::mem::take(&mut out.queue) {
                self.send_routed(now, id, &stanza);
            }
            return;
        }
        let Some(out) = self.outgoing.get_mut(remote).filter(|out| out.id == id) else {
            return;
        };
        let (ready, waiting): (VecDeque<Routed>, VecDeque<Routed>) = std::mem::take(&mut out.queue)
            .into_iter()
            .partition(|stanza| local_domain_of(&self.config, stanza) == *local);
        let others: BTreeSet<BareJid> = waiting
            .iter()
            .map(|stanza| local_domain_of(&self.config, stanza))
            .collect();
        out.queue = waiting;
        for stanza in ready {
            self.send_routed(now, id, &stanza);
        }
        for other in others {
            self.ask_pair(now, id, &other, remote);
        }
    }

    /// Outgoing session `id` reported `ServerRefused` for a further pair: what waited for it
    /// bounces.
    pub(super) fn on_pair_refused(
        &mut self,
        id: SessionId,
        now: Instant,
        local: &BareJid,
        remote: &BareJid,
    ) {
        self.reroute_bidi_pending(now, id, Some(&(local.clone(), remote.clone())));
        if self.outgoing.get(remote).is_some_and(|out| out.id == id) {
            self.bounce_pair(
                now,
                local,
                remote,
                StanzaErrorCondition::RemoteServerNotFound,
            );
        }
    }

    /// The s2s stream `id` closed: an outgoing one bounces what it still held, a
    /// bidirectional receiving one no longer carries our stanzas.
    pub(super) fn on_s2s_closed(&mut self, id: SessionId, now: Instant, reason: &CloseReason) {
        self.bidi_in.retain(|_, session| *session != id);
        self.reroute_bidi_pending(now, id, None);
        self.drop_outgoing(now, id, bounce_condition(reason));
    }

    /// Server-to-server connections open now: (peers connected to us, ours to peers).
    pub fn s2s_connection_count(&self) -> (usize, usize) {
        let count = |kind| self.sessions.values().filter(|s| s.kind == kind).count();
        (self.s2s_receiving.len(), count(Kind::S2sOut))
    }

    /// The names of the peer's certificate on connection `id` (the host checked its chain
    /// against the CA peers, or clients, must chain to); call before
    /// [`Hub::tls_established`]. On a client's stream this enables SASL EXTERNAL.
    pub fn set_peer_identities(
        &mut self,
        id: SessionId,
        ids: Vec<xmpp_stream::identity::PresentedId>,
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.rec.peer_ids(&ids);
        match &mut session.stream {
            xmpp_stream::AnyStream::S2sReceiving(stream) => stream.set_peer_identities(ids),
            xmpp_stream::AnyStream::S2sInitiating(stream) => stream.set_peer_identities(ids),
            // A client's certificate, verified against the client CA: SASL EXTERNAL.
            xmpp_stream::AnyStream::Server(stream) => stream.set_peer_identities(ids),
            _ => {}
        }
    }

    /// The host's answer to a [`HubOutput::DialbackVerify`] for connection `id` (a receiving
    /// one, or an outgoing bidirectional one the peer asked for a pair on).
    pub fn dialback_verified(
        &mut self,
        id: SessionId,
        now: Instant,
        originating: &BareJid,
        receiving: &BareJid,
        outcome: DialbackOutcome,
    ) {
        let answer = match &outcome {
            DialbackOutcome::Valid => Some("valid".to_owned()),
            DialbackOutcome::Invalid => Some("invalid".to_owned()),
            DialbackOutcome::Error(DialbackCondition::Stanza(condition)) => {
                Some(format!("error {condition}"))
            }
            // A transcript's host command names stanza conditions only.
            _ => None,
        };
        if let Some(session) = self.sessions.get_mut(&id) {
            let answered = match &mut session.stream {
                AnyStream::S2sReceiving(stream) => {
                    match answer {
                        Some(answer) => session.rec.command(now, || {
                            format!("dialback-verified {originating} {receiving} {answer}")
                        }),
                        None => session.rec.unreplayable(),
                    }
                    Some(stream.dialback_verified(now, originating, receiving, outcome))
                }
                // XEP-0288 §3: the peer asked for a pair in the reverse direction (a host
                // command transcripts of initiating ends do not replay).
                AnyStream::S2sInitiating(stream) => {
                    session.rec.unreplayable();
                    Some(stream.dialback_verified(now, originating, receiving, outcome))
                }
                _ => None,
            };
            if let Some(Err(error)) = answered {
                self.log.push(format!("{id}: dialback answer: {error}"));
            }
            self.dirty.insert(id);
        }
        self.flush(now);
    }
}

/// The `<db:verify/>` exchange with an authoritative server (XEP-0220 §2.1.2), Sans-IO: the
/// host connects to the route of `originating`, writes [`Verification::start`], feeds what it
/// reads to [`Verification::handle_input`] until it returns an outcome, and hands that to
/// [`Hub::dialback_verified`].
///
/// The exchange: our stream header (`from` the receiving domain, `to` the originating one,
/// dialback declared), the peer's header and features, our `<db:verify/>` with the stream id
/// and key the peer gave us, its typed answer.
///
/// When the features offer STARTTLS, the exchange runs inside TLS (RFC 6120 §5.3.1, and
/// XEP-0220 §2.3 says the verification connection is secured like any other): `<starttls/>`,
/// `<proceed/>`, then [`Verification::wants_tls`] is true and the host does the handshake
/// (as the initiating end, with our certificate) and calls
/// [`Verification::tls_established`], which restarts the stream. ejabberd with
/// `s2s_use_starttls: required` closes a verification stream that skips it
/// (`policy-violation`).
#[derive(Debug)]
pub struct Verification {
    request: DbVerify,
    writer: StreamWriter,
    parser: StreamParser,
    sent_request: bool,
    tls: VerificationTls,
}

/// Where a [`Verification`] stands with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerificationTls {
    /// Not asked for (yet).
    None,
    /// `<starttls/>` sent, waiting for `<proceed/>`.
    Requested,
    /// `<proceed/>` read: the host must do the TLS handshake now.
    Wanted,
    /// Inside TLS.
    Established,
}

impl Verification {
    /// A verification of `key`, given on stream `stream_id` by `originating` to `receiving`;
    /// `None` when a domain is not a valid dialback domain.
    pub fn new(
        originating: &BareJid,
        receiving: &BareJid,
        stream_id: StreamId,
        key: DialbackKey,
    ) -> Option<Self> {
        let from = Domain::try_from(receiving.clone()).ok()?;
        let to = Domain::try_from(originating.clone()).ok()?;
        let mut header = StreamHeader::new(ContentNamespace::Server);
        header.from = Some(from.as_str().to_owned());
        header.to = Some(to.as_str().to_owned());
        header
            .namespace_declarations
            .push(("db".to_owned(), xmpp_stream::dialback::NS.to_owned()));
        Some(Verification {
            request: DbVerify::request(from, to, stream_id, key),
            writer: StreamWriter::new(&header),
            parser: StreamParser::new(),
            sent_request: false,
            tls: VerificationTls::None,
        })
    }

    /// Whether the peer said `<proceed/>`: the host must do the TLS handshake on the
    /// connection now, write nothing else before it, and then call
    /// [`tls_established`](Self::tls_established).
    #[must_use]
    pub fn wants_tls(&self) -> bool {
        self.tls == VerificationTls::Wanted
    }

    /// The TLS handshake is done: the stream restarts inside it. Returns our new stream
    /// header, to write on the TLS connection.
    pub fn tls_established(&mut self) -> Vec<u8> {
        self.tls = VerificationTls::Established;
        self.parser = StreamParser::new();
        self.start()
    }

    /// Our stream header.
    pub fn start(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Our own header of two checked domains always serializes.
        let _ = self.writer.write_header(&mut out);
        out
    }

    /// Bytes from the authoritative server: `(bytes to write, the outcome once known)`.
    /// A stream error, a parse error or the end of its stream is an outcome too
    /// (`remote-server-not-found`).
    pub fn handle_input(&mut self, bytes: &[u8]) -> (Vec<u8>, Option<DialbackOutcome>) {
        let mut write = Vec::new();
        self.parser.feed(bytes);
        loop {
            match self.parser.next_event() {
                Ok(Some(XmlEvent::Element(element))) => {
                    let offers_tls = element
                        .children()
                        .any(|c| c.is("starttls", xmpp_stream::features::ns::TLS));
                    if element.name() == "features"
                        && offers_tls
                        && self.tls == VerificationTls::None
                    {
                        self.tls = VerificationTls::Requested;
                        let starttls =
                            Element::builder("starttls", xmpp_stream::features::ns::TLS).build();
                        let _ = self.writer.write_element(&starttls, &mut write);
                    } else if element.is("proceed", xmpp_stream::features::ns::TLS)
                        && self.tls == VerificationTls::Requested
                    {
                        // Bytes pipelined after <proceed/> would be read as if inside TLS
                        // (the STARTTLS injection attack): the exchange fails instead.
                        if self.parser.has_unparsed_input() {
                            return (write, Some(not_found()));
                        }
                        self.tls = VerificationTls::Wanted;
                        return (write, None);
                    } else if element.name() == "features"
                        && self.tls != VerificationTls::Requested
                        && !self.sent_request
                    {
                        self.sent_request = true;
                        let _ = self
                            .writer
                            .write_element(&self.request.to_element(), &mut write);
                    } else if element.is("verify", xmpp_stream::dialback::NS)
                        && let Ok(answer) = DbVerify::parse(&element)
                        && answer.id == self.request.id
                        && answer.from == self.request.to
                    {
                        self.writer.write_end(&mut write);
                        return (write, Some(outcome_of(&answer.content)));
                    } else if element.name() == "error" {
                        return (write, Some(not_found()));
                    }
                }
                Ok(None) => return (write, None),
                Ok(Some(XmlEvent::StreamEnd)) | Err(_) => return (write, Some(not_found())),
                // The header, whitespace.
                Ok(Some(_)) => {}
            }
        }
    }
}

fn not_found() -> DialbackOutcome {
    DialbackOutcome::Error(StanzaErrorCondition::RemoteServerNotFound.into())
}

fn outcome_of(content: &Content) -> DialbackOutcome {
    match content {
        Content::Valid => DialbackOutcome::Valid,
        Content::Invalid => DialbackOutcome::Invalid,
        Content::Error(error) => DialbackOutcome::Error(error.condition),
        _ => not_found(),
    }
}

/// The outgoing connections, by remote domain.
pub(super) type OutgoingMap = BTreeMap<BareJid, Outgoing>;

/// Receiving streams with XEP-0288 bidi that carry our stanzas, by pair (ours, theirs).
pub(super) type BidiMap = BTreeMap<(BareJid, BareJid), SessionId>;

/// [`Hub::local_of`] without borrowing the hub (for use while its queues are borrowed).
fn local_domain_of(config: &super::HubConfig, stanza: &Routed) -> BareJid {
    stanza
        .domain_of(false)
        .filter(|domain| config.serves(domain))
        .unwrap_or_else(|| config.domain.clone())
}
