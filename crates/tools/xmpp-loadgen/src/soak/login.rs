//! One connection's login (STARTTLS, SASL, bind, initial presence), cut short at a
//! negotiation kill point when the plan says so. With stream management the login also
//! enables it (with resumption), or resumes a saved session instead of binding, and may be
//! cut in the middle of that resumption.

use std::sync::atomic::Ordering;

use minidom::Element;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, Output, SeededEntropy, SmConfig, SmEvent, SmState,
    Transport,
};

use super::kill::hang_up;
use super::shared::Shared;
use super::{Kill, KillPoint, RESOURCE};
use crate::session::Conn;

/// A negotiated session.
pub(super) struct Live {
    pub(super) conn: Conn,
    pub(super) machine: ClientStream,
    pub(super) buf: Vec<u8>,
}

enum Attempt {
    Live(Box<Live>),
    /// Killed on purpose; with stream management, the session's state to resume from then on
    /// (newer than the one this attempt resumed, when it was killed after `<resumed/>`).
    Killed(Option<SmState>),
    Failed(String),
}

/// How a login with stream management went: the resumption state to use when the next
/// connection dies is the live machine's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resumption {
    /// No resumption asked for.
    Fresh,
    /// `<resumed/>` arrived.
    Resumed,
    /// `<failed/>` arrived: the client bound afresh.
    Failed,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Shared {
    /// Open one connection for `slot` and negotiate it, dying at `kill` if given; with
    /// stream management, resume `resume` if given.
    #[allow(clippy::too_many_lines)] // one negotiation with its kill points, read top to bottom
    async fn connect(
        &self,
        slot: usize,
        attempt: u64,
        kill: Option<Kill>,
        resume: Option<SmState>,
    ) -> Attempt {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let options = &self.options;
        let bare = format!("{}{slot}@{}", options.user_prefix, options.domain);
        let jid = match BareJid::new(&bare) {
            Ok(jid) => jid,
            Err(e) => return Attempt::Failed(format!("bad jid {bare}: {e}")),
        };
        let mut config = ClientConfig::new(jid, options.password.clone());
        config.resource = Some(RESOURCE.to_owned());
        if let Some(sm) = &options.sm {
            config.sm = SmConfig::on();
            config.sm.max_resume = Some(sm.window);
            // Every stanza is followed by `<r/>`: a cut between the two is a cut mid-ack.
            config.sm.request_every = 1;
        }
        let seed = options.seed
            ^ (slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ attempt.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut machine = ClientStream::new(config, SeededEntropy::new(seed));
        let resuming = resume.is_some();
        let fallback = resume.clone();
        if let Some(state) = resume
            && let Err(e) = machine.resume_with(state)
        {
            return Attempt::Failed(format!("resume_with: {e}"));
        }
        let tcp = match TcpStream::connect(self.addr).await {
            Ok(tcp) => tcp,
            Err(e) => return Attempt::Failed(format!("connect: {e}")),
        };
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn::Plain(tcp);
        if let Err(e) = machine.start(self.now(), Transport::Plain) {
            return Attempt::Failed(format!("start: {e}"));
        }
        let deadline = TokioInstant::now() + options.login_timeout;
        let mut buf = vec![0u8; 4096];
        let killed = |point: KillPoint| kill.filter(|k| k.point == point);
        let sm = options.sm.is_some();
        let (mut negotiated, mut enabled) = (false, false);
        let mut resumption = Resumption::Fresh;
        let mut undelivered = Vec::new();
        loop {
            while let Some(output) = machine.poll_output() {
                match output {
                    Output::Transmit(bytes) => {
                        if let Some(k) = killed(KillPoint::MidSasl)
                            && contains(&bytes, b"<response")
                        {
                            return self.killed(conn, k, None).await;
                        }
                        if let Err(e) = conn.write_all(&bytes).await {
                            return Attempt::Failed(format!("write: {e}"));
                        }
                        if let Some(k) = killed(KillPoint::AfterHeader)
                            && contains(&bytes, b"<stream:stream")
                        {
                            return self.killed(conn, k, None).await;
                        }
                        if let Some(k) = killed(KillPoint::MidResume)
                            && contains(&bytes, b"<resume ")
                        {
                            // Not resumed: the state to resume next is still the old one.
                            return self.killed(conn, k, fallback).await;
                        }
                    }
                    Output::StartTls => {
                        if let Some(k) = killed(KillPoint::InTlsHandshake) {
                            return self.killed(conn, k, fallback).await;
                        }
                        let Conn::Plain(plain) = std::mem::replace(&mut conn, Conn::Gone) else {
                            return Attempt::Failed("StartTls twice".to_owned());
                        };
                        let name = match ServerName::try_from(options.domain.clone()) {
                            Ok(name) => name,
                            Err(e) => return Attempt::Failed(format!("server name: {e}")),
                        };
                        match tokio::time::timeout_at(deadline, self.tls.connect(name, plain)).await
                        {
                            Ok(Ok(tls)) => conn = Conn::Tls(Box::new(tls)),
                            Ok(Err(e)) => return Attempt::Failed(format!("TLS: {e}")),
                            Err(_) => return Attempt::Failed("TLS handshake timed out".to_owned()),
                        }
                        if let Some(k) = killed(KillPoint::AfterStartTls) {
                            return self.killed(conn, k, fallback).await;
                        }
                        if let Err(e) = machine.tls_established(self.now(), Vec::new()) {
                            return Attempt::Failed(format!("tls_established: {e}"));
                        }
                    }
                    Output::Event(Event::Negotiated { .. }) => negotiated = true,
                    Output::Event(Event::Stanza(stanza)) => self.on_stanza(slot, &stanza),
                    Output::Event(Event::Sm(SmEvent::Enabled { id, .. })) => {
                        if id.is_none() {
                            return Attempt::Failed("resumption not granted".to_owned());
                        }
                        enabled = true;
                    }
                    Output::Event(Event::Sm(SmEvent::Refused { condition })) => {
                        return Attempt::Failed(format!(
                            "stream management refused: {condition:?}"
                        ));
                    }
                    Output::Event(Event::Sm(SmEvent::Resumed { resent, .. })) => {
                        if let Some(k) = killed(KillPoint::AfterResumed) {
                            // Cut before the re-sent stanzas (and what the server re-sent)
                            // are taken: the state to resume next is this stream's.
                            let state = machine.sm_state().or(fallback);
                            return self.killed(conn, k, state).await;
                        }
                        self.counters
                            .resent_by_us
                            .fetch_add(resent as u64, Ordering::Relaxed);
                        resumption = Resumption::Resumed;
                    }
                    Output::Event(Event::Sm(SmEvent::ResumeFailed {
                        undelivered: lost, ..
                    })) => {
                        resumption = Resumption::Failed;
                        undelivered = lost;
                    }
                    Output::Event(Event::Closed { reason }) => {
                        return Attempt::Failed(format!("closed during login: {reason:?}"));
                    }
                    _ => {}
                }
            }
            let ready = match resumption {
                Resumption::Resumed => true,
                _ => negotiated && (enabled || !sm),
            };
            if ready {
                if resumption == Resumption::Resumed {
                    // The session goes on: its presence too.
                    self.counters.resumptions.fetch_add(1, Ordering::Relaxed);
                } else {
                    if resuming {
                        self.counters
                            .resume_failures
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    let presence = Element::builder("presence", "jabber:client").build();
                    if let Err(e) = machine.send_stanza(self.now(), &presence) {
                        return Attempt::Failed(format!("presence: {e}"));
                    }
                    // What a failed resumption reports as not delivered is sent again.
                    for stanza in &undelivered {
                        let stanza = match stanza.element() {
                            Ok(stanza) => stanza,
                            Err(e) => return Attempt::Failed(format!("re-send: {e}")),
                        };
                        if let Err(e) = machine.send_stanza(self.now(), &stanza) {
                            return Attempt::Failed(format!("re-send: {e}"));
                        }
                    }
                    self.counters.logins.fetch_add(1, Ordering::Relaxed);
                }
                return Attempt::Live(Box::new(Live { conn, machine, buf }));
            }
            let n = match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
                Err(_) => return Attempt::Failed("login timed out".to_owned()),
                Ok(Err(e)) => return Attempt::Failed(format!("read during login: {e}")),
                Ok(Ok(0)) => return Attempt::Failed("server closed during login".to_owned()),
                Ok(Ok(n)) => n,
            };
            let _ = machine.handle_input(self.now(), &buf[..n]);
        }
    }

    async fn killed(&self, conn: Conn, kill: Kill, state: Option<SmState>) -> Attempt {
        self.count_kill(kill);
        hang_up(conn, kill.hang_up, self.options.login_timeout).await;
        Attempt::Killed(state)
    }

    /// Log `slot` in, first dying at `kill` if given; `attempt` numbers the connections.
    /// With stream management, `resume` is the session to resume (from a connection that
    /// died), and a kill mid-resumption leaves the state to resume with for the next try.
    pub(super) async fn login(
        &self,
        slot: usize,
        attempt: &mut u64,
        kill: Option<Kill>,
        mut resume: Option<SmState>,
    ) -> Result<Box<Live>, String> {
        if let Some(kill) = kill {
            *attempt += 1;
            match self
                .connect(slot, *attempt, Some(kill), resume.clone())
                .await
            {
                Attempt::Killed(state) => {
                    self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    if state.is_some() {
                        resume = state;
                    }
                }
                Attempt::Live(_) => return Err(format!("not killed at {}", kill.point.as_str())),
                Attempt::Failed(why) => return Err(why),
            }
        }
        *attempt += 1;
        match self.connect(slot, *attempt, None, resume).await {
            Attempt::Live(live) => Ok(live),
            Attempt::Killed(_) => Err("killed without a kill point".to_owned()),
            Attempt::Failed(why) => Err(why),
        }
    }
}
