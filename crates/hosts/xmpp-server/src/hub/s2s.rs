//! Server-to-server (RFC 6120 §13) in the hub: one outgoing [`S2sInitiatingStream`] per remote
//! domain, opened on the first stanza for it and fed from a bounded queue until it is
//! authenticated; receiving streams ([`S2sReceivingStream`]) whose stanzas enter the IM
//! machine like a component's; and [`Verification`], the Sans-IO `<db:verify/>` exchange the
//! host runs against an authoritative server for a receiving stream's dialback request.
//!
//! What is the host's: the route to a domain (the example server has static routes, no DNS),
//! TCP, TLS and the certificate checks, and the deadline for opening a connection.

use std::collections::{BTreeMap, VecDeque};

use minidom::Element;
use xmpp_jid::{BareJid, Jid};
use xmpp_stream::dialback::{Content, DbVerify, DialbackCondition, DialbackKey, Domain, StreamId};
use xmpp_stream::{
    CloseReason, DialbackOutcome, Instant, S2sInitiatingStream, StanzaErrorCondition,
};
use xmpp_xml::{ContentNamespace, Event as XmlEvent, StreamHeader, StreamParser, StreamWriter};

use super::record::{Recorder, Tap};
use super::{Hub, HubOutput, Kind, SessionId};

/// Stanzas held per remote domain while its connection is being set up; beyond this the
/// newest are bounced with `resource-constraint`.
pub const MAX_QUEUED_PER_DOMAIN: usize = 256;

/// An outgoing connection to one remote domain.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) id: SessionId,
    /// Authenticated: stanzas go straight to the stream.
    pub(super) ready: bool,
    /// Stanzas waiting for the connection, oldest first (bounded).
    pub(super) queue: VecDeque<Element>,
}

/// The domain part of a stanza's `to`, as a domain-only JID.
pub(super) fn to_domain(stanza: &Element) -> Option<BareJid> {
    let to = Jid::new(stanza.attr("to")?).ok()?;
    BareJid::from_parts(None, to.domain()).ok()
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

impl Hub {
    /// A stanza for `remote`, a domain that is neither ours nor a component's: onto the
    /// outgoing connection for it, opened now if there is none.
    pub(super) fn route_s2s(&mut self, now: Instant, remote: BareJid, stanza: &Element) {
        if let Some(out) = self.outgoing.get_mut(&remote) {
            if out.ready {
                let id = out.id;
                self.send_on(now, id, stanza);
            } else if out.queue.len() < MAX_QUEUED_PER_DOMAIN {
                out.queue.push_back(stanza.clone());
            } else {
                self.log
                    .push(format!("s2s queue for {remote} full: bouncing a stanza"));
                self.error_reply(now, stanza, StanzaErrorCondition::ResourceConstraint);
            }
            return;
        }
        let id = self.reserve_id();
        self.log
            .push(format!("{id}: s2s connection to {remote} wanted"));
        self.outgoing.insert(
            remote.clone(),
            Outgoing {
                id,
                ready: false,
                queue: VecDeque::from([stanza.clone()]),
            },
        );
        self.out.push_back(HubOutput::Connect {
            id,
            local: self.config.domain.clone(),
            remote,
        });
    }

    /// The host opened the TCP connection asked for by [`HubOutput::Connect`]: the stream
    /// starts (its header goes out).
    pub fn s2s_connected(
        &mut self,
        id: SessionId,
        now: Instant,
        entropy: impl xmpp_stream::Entropy + Send + 'static,
    ) {
        let Some(remote) = self.remote_of(id) else {
            return;
        };
        let local = self.config.domain.clone();
        let (stream, rec) = match &self.config.record {
            Some(sink) => {
                let entropy = Tap::new(entropy);
                let rec = Recorder::start_initiating(&local, &remote, sink, now, &entropy);
                let stream =
                    S2sInitiatingStream::new(self.config.s2s_config(), local, remote, entropy);
                (stream, rec)
            }
            None => (
                S2sInitiatingStream::new(self.config.s2s_config(), local, remote, entropy),
                Recorder::off(),
            ),
        };
        self.insert_session(
            now,
            id,
            Kind::S2sOut,
            stream.into(),
            rec,
            xmpp_stream::Transport::Plain,
        );
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
            self.drop_outgoing(now, &remote, condition);
        }
        self.flush(now);
    }

    /// The remote domain of the outgoing connection `id`.
    fn remote_of(&self, id: SessionId) -> Option<BareJid> {
        self.outgoing
            .iter()
            .find(|(_, out)| out.id == id)
            .map(|(remote, _)| remote.clone())
    }

    /// Forget the outgoing connection to `remote`, bouncing what it still held.
    pub(super) fn drop_outgoing(
        &mut self,
        now: Instant,
        remote: &BareJid,
        condition: StanzaErrorCondition,
    ) {
        if let Some(out) = self.outgoing.remove(remote) {
            for stanza in out.queue {
                self.error_reply(now, &stanza, condition);
            }
        }
    }

    /// Session `id` reported `ServerAuthenticated`: when it is an outgoing stream, established
    /// (the event comes once the pair carries stanzas), send what was queued for its peer.
    pub(super) fn check_outgoing_ready(&mut self, id: SessionId, now: Instant) {
        let negotiated = self
            .sessions
            .get(&id)
            .is_some_and(|session| session.kind == Kind::S2sOut && session.stream.is_negotiated());
        if !negotiated {
            return;
        }
        let Some(remote) = self.remote_of(id) else {
            return;
        };
        let queued = match self.outgoing.get_mut(&remote) {
            Some(out) if !out.ready => {
                out.ready = true;
                std::mem::take(&mut out.queue)
            }
            _ => return,
        };
        for stanza in queued {
            self.send_on(now, id, &stanza);
        }
    }

    /// The outgoing stream `id` closed.
    pub(super) fn on_outgoing_closed(&mut self, id: SessionId, now: Instant, reason: &CloseReason) {
        if let Some(remote) = self.remote_of(id) {
            self.drop_outgoing(now, &remote, bounce_condition(reason));
        }
    }

    /// The names of the peer's certificate on s2s connection `id` (the host checked its
    /// chain against the CA peers must chain to); call before [`Hub::tls_established`].
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
            _ => {}
        }
    }

    /// The host's answer to a [`HubOutput::DialbackVerify`] for receiving connection `id`.
    pub fn dialback_verified(
        &mut self,
        id: SessionId,
        now: Instant,
        originating: &BareJid,
        receiving: &BareJid,
        outcome: DialbackOutcome,
    ) {
        if let Some(session) = self.sessions.get_mut(&id)
            && let xmpp_stream::AnyStream::S2sReceiving(stream) = &mut session.stream
        {
            let answer = match &outcome {
                DialbackOutcome::Valid => Some("valid".to_owned()),
                DialbackOutcome::Invalid => Some("invalid".to_owned()),
                DialbackOutcome::Error(DialbackCondition::Stanza(condition)) => {
                    Some(format!("error {condition}"))
                }
                // A transcript's host command names stanza conditions only.
                _ => None,
            };
            match answer {
                Some(answer) => session.rec.command(now, || {
                    format!("dialback-verified {originating} {receiving} {answer}")
                }),
                None => session.rec.unreplayable(),
            }
            if let Err(error) = stream.dialback_verified(now, originating, receiving, outcome) {
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
