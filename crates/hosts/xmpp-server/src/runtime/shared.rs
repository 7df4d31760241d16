//! The hub plus the outboxes of the connection tasks, behind the one mutex.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use xmpp_host::OsEntropy;
use xmpp_stream::{Instant, Transport};

use super::outbox::{Command, Outbox};
use crate::hub::{Hub, HubOutput, SessionId};

/// The hub plus the channels to the connection tasks.
pub(super) struct Shared {
    pub(super) hub: Hub,
    pub(super) conns: BTreeMap<SessionId, Arc<Outbox>>,
    pub(super) start: std::time::Instant,
    pub(super) log: bool,
    pub(super) trace: bool,
    /// Federation settings, when federating.
    pub(super) s2s: Option<super::s2s::S2sSettings>,
    /// Where peer servers without a static route are looked up (built from
    /// [`S2sSettings::dns`](super::s2s::S2sSettings::dns)).
    pub(super) resolver: super::dns::Resolver,
    /// The database thread's queue (`--db`); `None`: everything in memory.
    pub(super) db: Option<std::sync::mpsc::SyncSender<crate::hub::StorageRequest>>,
    /// This very state, for the tasks `dispatch` starts (outgoing s2s connections,
    /// dialback verifications).
    pub(super) me: Weak<Mutex<Shared>>,
}

impl Shared {
    pub(super) fn now(&self) -> Instant {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Instant::from_millis(millis)
    }

    /// Hand every hub output to its connection task.
    pub(super) fn dispatch(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            let (id, command) = match output {
                HubOutput::Transmit(id, bytes) => {
                    if self.trace {
                        eprintln!("c2s {id} S: {}", String::from_utf8_lossy(&bytes));
                    }
                    (id, Command::Write(bytes))
                }
                HubOutput::StartTls(id) => (id, Command::StartTls),
                HubOutput::Storage(request) => {
                    super::database::submit(self, request);
                    continue;
                }
                HubOutput::Close(id) => (id, Command::Close),
                HubOutput::Connect { id, local, remote } => {
                    super::s2s::spawn_connect(self, id, &local, remote);
                    continue;
                }
                HubOutput::DialbackVerify {
                    id,
                    originating,
                    receiving,
                    stream_id,
                    key,
                } => {
                    super::s2s::spawn_verification(
                        self,
                        id,
                        originating,
                        receiving,
                        stream_id,
                        key,
                    );
                    continue;
                }
            };
            let close = matches!(command, Command::Close);
            if let Some(outbox) = self.conns.get(&id) {
                outbox.push(command);
            }
            if close {
                self.conns.remove(&id);
            }
        }
        for line in self.hub.take_log() {
            if self.log {
                eprintln!("c2s {line}");
            }
        }
    }
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock leaves the hub in an unknown state only for that
    // connection's step; the hub itself never panics on input, so keep serving.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What kind of connection a listener accepted.
pub(super) enum Accepted {
    /// A client, on this transport (plain until STARTTLS, or direct TLS).
    C2s(Transport),
    /// A client over WebSocket (RFC 7395), plain on loopback or `wss:`.
    WebSocket(Transport),
    /// An XEP-0114 component (plain TCP on loopback).
    Component,
    /// A peer server (plain until STARTTLS).
    S2s,
    /// A peer server over XEP-0368 direct TLS: the names of its certificate when its chain
    /// checked out.
    S2sDirectTls(Option<Vec<xmpp_stream::identity::PresentedId>>),
}

/// Open a hub session for a new connection and the channel its outputs arrive on.
pub(super) fn register(
    shared: &Mutex<Shared>,
    accepted: Accepted,
    peer: SocketAddr,
) -> (SessionId, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::default());
    let mut guard = lock(shared);
    let now = guard.now();
    let (id, kind) = match accepted {
        Accepted::C2s(transport) => {
            let direct = matches!(transport, Transport::Tls(_));
            let id = guard.hub.accept(now, transport, OsEntropy::new());
            (id, if direct { " (direct TLS)" } else { "" })
        }
        Accepted::WebSocket(transport) => {
            let secure = matches!(transport, Transport::Tls(_));
            let id = guard.hub.accept_websocket(now, transport, OsEntropy::new());
            (id, if secure { " (wss)" } else { " (ws)" })
        }
        Accepted::Component => {
            let id = guard.hub.accept_component(now, OsEntropy::new());
            (id, " (component)")
        }
        Accepted::S2s => {
            let id = guard.hub.accept_s2s(now, OsEntropy::new());
            (id, " (s2s)")
        }
        Accepted::S2sDirectTls(ids) => {
            let id = guard.hub.accept_s2s_direct_tls(now, OsEntropy::new(), ids);
            (id, " (s2s, direct TLS)")
        }
    };
    guard.conns.insert(id, Arc::clone(&outbox));
    if guard.log {
        eprintln!("c2s {id}: connection from {peer}{kind}");
    }
    guard.dispatch();
    (id, outbox)
}

/// The transport of `id` ended.
pub(super) fn closed(shared: &Mutex<Shared>, id: SessionId) {
    let mut guard = lock(shared);
    let now = guard.now();
    guard.hub.transport_closed(id, now);
    guard.conns.remove(&id);
    guard.dispatch();
}
