//! Transcript recording, for tests ([`HubConfig::record`]): each session's stream is written
//! down in the format of `testdata/README.md`, so that `tests/replay_real.rs` can replay
//! offline what real peers did: a client's `ServerStream` as the role `server`, a
//! component's `ComponentServerStream` as the role `component-server` (setup
//! `!component-server component DOMAIN SECRET` per configured component, then `entropy`; the
//! component's bytes are the `C:` lines, as the initiating entity's), and server-to-server
//! streams as `s2s-receiving` (setup: our domains) or `s2s-initiating` (setup: `local` and
//! `remote`; our bytes are its `C:` lines), each with the `peer-id` names the host found in
//! the peer's certificate, and the host's dialback answers as commands. The dialback secret
//! is not written: the hub only holds its hash (`DialbackSecret`), so whoever configured it
//! adds `!<role> dialback-secret ...` to the transcript.
//!
//! A hub that does not record pays nothing for it: its sessions' entropy is not tapped and
//! no transcript line is formatted ([`Recorder::line`] takes a closure it calls only when
//! recording).

use core::fmt::Write as _;
use std::sync::{Arc, Mutex};

use xmpp_jid::BareJid;
use xmpp_stream::identity::PresentedId;
use xmpp_stream::{ChannelBinding, Entropy, Instant, Output, Transport};

use super::{HubConfig, Kind};

/// Where a recording hub puts finished session transcripts (see [`HubConfig::record`]).
pub type TranscriptSink = Arc<Mutex<Vec<String>>>;

/// Entropy that also logs every byte drawn, for the transcript.
pub(super) struct Tap<E> {
    inner: E,
    log: Arc<Mutex<Vec<u8>>>,
}

impl<E> Tap<E> {
    pub(super) fn new(inner: E) -> Self {
        Tap {
            inner,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<E: Entropy> Entropy for Tap<E> {
    fn fill(&mut self, buf: &mut [u8]) {
        self.inner.fill(buf);
        if let Ok(mut log) = self.log.lock() {
            log.extend_from_slice(buf);
        }
    }
}

/// One session's transcript being recorded.
struct Recording {
    /// The role name of the recorded stream in the transcript (`server`, `component-server`,
    /// `s2s-receiving`, `s2s-initiating`).
    who: &'static str,
    sink: TranscriptSink,
    start: Instant,
    setup: Vec<String>,
    lines: Vec<String>,
    entropy: Arc<Mutex<Vec<u8>>>,
    /// Something happened that a transcript cannot express (`close_with_error`).
    unreplayable: bool,
}

impl Recording {
    fn line(&mut self, now: Instant, text: &str) {
        let ms = now.as_millis().saturating_sub(self.start.as_millis());
        self.lines.push(format!("{ms} {text}"));
    }

    fn render(&self) -> String {
        let machine = match self.who {
            SERVER => "ServerStream",
            S2S_RECEIVING => "S2sReceivingStream",
            S2S_INITIATING => "S2sInitiatingStream",
            _ => "ComponentServerStream",
        };
        let mut out = format!(
            "# Recorded by crates/hosts/xmpp-server (HubConfig::record): one {machine} of the hub.\n",
        );
        for line in &self.setup {
            out.push_str(line);
            out.push('\n');
        }
        if let Ok(entropy) = self.entropy.lock()
            && !entropy.is_empty()
        {
            let _ = write!(out, "!{} entropy {}", self.who, hex(&entropy));
            out.push('\n');
        }
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// One session's recorder; every method is a no-op when it is off.
///
/// Boxed: an unrecorded session (every session outside tests) carries one pointer.
pub(super) struct Recorder(Option<Box<Recording>>);

impl Recorder {
    /// A recorder that records nothing.
    pub(super) fn off() -> Self {
        Recorder(None)
    }

    /// Start recording a session of `kind` of the hub configured by `config`, on
    /// `transport` (its bindings already filtered by the `-PLUS` policy), drawing from
    /// `entropy`; the transcript goes to `sink` when the session ends.
    pub(super) fn start<E>(
        config: &HubConfig,
        kind: Kind,
        sink: &TranscriptSink,
        now: Instant,
        transport: &Transport,
        entropy: &Tap<E>,
    ) -> Self {
        let (who, setup) = match kind {
            Kind::C2s => (SERVER, server_setup(config, transport)),
            Kind::Component => (COMPONENT_SERVER, component_setup(config)),
            Kind::S2sIn => (
                S2S_RECEIVING,
                config
                    .s2s_config()
                    .local_domains
                    .iter()
                    .map(|domain| format!("!{S2S_RECEIVING} domain {domain}"))
                    .chain(s2s_transport(S2S_RECEIVING, transport))
                    .collect(),
            ),
            // Made by `start_initiating`, which knows the remote domain.
            Kind::S2sOut => return Recorder::off(),
        };
        Self::recording(who, setup, sink, now, entropy)
    }

    /// Start recording our outgoing s2s stream from `local` to `remote` on `transport`
    /// (plain, or TLS already up on a XEP-0368 direct TLS connection).
    pub(super) fn start_initiating<E>(
        local: &BareJid,
        remote: &BareJid,
        sink: &TranscriptSink,
        now: Instant,
        transport: &Transport,
        entropy: &Tap<E>,
    ) -> Self {
        let mut setup = vec![
            format!("!{S2S_INITIATING} local {local}"),
            format!("!{S2S_INITIATING} remote {remote}"),
        ];
        setup.extend(s2s_transport(S2S_INITIATING, transport));
        Self::recording(S2S_INITIATING, setup, sink, now, entropy)
    }

    fn recording<E>(
        who: &'static str,
        setup: Vec<String>,
        sink: &TranscriptSink,
        now: Instant,
        entropy: &Tap<E>,
    ) -> Self {
        Recorder(Some(Box::new(Recording {
            who,
            sink: Arc::clone(sink),
            start: now,
            setup,
            lines: Vec::new(),
            entropy: Arc::clone(&entropy.log),
            unreplayable: false,
        })))
    }

    /// Record bytes read from the peer (`C:`, or `S:` on our initiating s2s stream).
    pub(super) fn input(&mut self, now: Instant, bytes: &[u8]) {
        if let Some(rec) = &mut self.0 {
            let side = if rec.who == S2S_INITIATING { "S" } else { "C" };
            let line = format!("{side}: {}", xmpp_stream::transcript::escape_bytes(bytes));
            rec.line(now, &line);
        }
    }

    /// The host found these names in the peer's (validated) certificate.
    pub(super) fn peer_ids(&mut self, ids: &[PresentedId]) {
        if let Some(rec) = &mut self.0 {
            for id in ids {
                let (kind, name) = match id {
                    PresentedId::Dns(name) => ("dns", name),
                    PresentedId::Srv(name) => ("srv", name),
                    PresentedId::XmppAddr(name) => ("xmpp", name),
                    PresentedId::CommonName(name) => ("cn", name),
                    // Never matched for XMPP (RFC 6125 §6.4: no URI-ID for xmpp-server).
                    _ => continue,
                };
                rec.setup
                    .push(format!("!{} peer-id {kind} {name}", rec.who));
            }
        }
    }

    /// Whether this session is being recorded.
    pub(super) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Record the host command `text()` (`send <stanza/>`, `timeout`, ...) run on the
    /// stream at `now`; `text` is called only when recording.
    pub(super) fn command(&mut self, now: Instant, text: impl FnOnce() -> String) {
        if let Some(rec) = &mut self.0 {
            let line = format!("H {}: {}", rec.who, text());
            rec.line(now, &line);
        }
    }

    /// Record what the stream asked of the host.
    pub(super) fn output(&mut self, now: Instant, output: &Output) {
        let Some(rec) = &mut self.0 else {
            return;
        };
        let side = if rec.who == S2S_INITIATING { "C" } else { "S" };
        let text = match output {
            Output::Transmit(bytes) => Some(format!(
                "{side}: {}",
                xmpp_stream::transcript::escape_bytes(bytes)
            )),
            Output::StartTls => Some("[TLS]".to_owned()),
            Output::Event(event) => Some(format!(
                "E {}: {}",
                rec.who,
                xmpp_stream::transcript::event_summary(event)
            )),
            _ => None,
        };
        if let Some(text) = text {
            rec.line(now, &text);
        }
    }

    /// The TLS handshake gave the stream these bindings.
    pub(super) fn bindings(&mut self, bindings: &[ChannelBinding]) {
        // Server-to-server streams use no channel binding (EXTERNAL over the certificate).
        if let Some(rec) = &mut self.0
            && rec.who == SERVER
        {
            rec.setup.extend(bindings.iter().map(binding_line));
        }
    }

    /// The session did something a transcript cannot express (the hub closed its stream
    /// with an error): it will not be kept.
    pub(super) fn unreplayable(&mut self) {
        if let Some(rec) = &mut self.0 {
            rec.unreplayable = true;
        }
    }

    /// The session is over: hand a replayable transcript to the sink.
    pub(super) fn finish(self) {
        if let Some(rec) = self.0
            && !rec.unreplayable
            && let Ok(mut sink) = rec.sink.lock()
        {
            sink.push(rec.render());
        }
    }
}

/// The role name of a client's `ServerStream` in a transcript.
const SERVER: &str = "server";
/// The role name of a component's `ComponentServerStream` in a transcript.
const COMPONENT_SERVER: &str = "component-server";
/// The role name of a peer's connection to us (`S2sReceivingStream`) in a transcript.
const S2S_RECEIVING: &str = "s2s-receiving";
/// The role name of our connection to a peer (`S2sInitiatingStream`) in a transcript.
const S2S_INITIATING: &str = "s2s-initiating";

/// The setup line of an s2s stream that starts with TLS up (XEP-0368): `!<who> transport
/// tls` (no channel bindings: s2s streams use none).
fn s2s_transport(who: &str, transport: &Transport) -> Option<String> {
    matches!(transport, Transport::Tls(_)).then(|| format!("!{who} transport tls"))
}

/// The setup of a client session: the domain, the SASL policy, the accounts, direct TLS.
fn server_setup(config: &HubConfig, transport: &Transport) -> Vec<String> {
    let stream = &config.stream;
    let mut setup = vec![format!("!server domain {}", config.domain)];
    let names: Vec<String> = stream.mechanisms.iter().map(ToString::to_string).collect();
    setup.push(format!("!server mechanisms {}", names.join(",")));
    setup.push(format!(
        "!server cb-types {}",
        stream.advertise_channel_binding_types
    ));
    for (name, password) in &config.users {
        setup.push(format!(
            "!server user {name} {password} salt-of-{name} {}",
            config.iterations
        ));
    }
    for feature in &stream.extra_features {
        let when = if feature
            .needs
            .contains(xmpp_stream::SessionFlags::AUTHENTICATED)
        {
            "after"
        } else {
            "before"
        };
        setup.push(format!(
            "!server feature-{when}-auth {}",
            String::from(&feature.element)
        ));
    }
    if stream.sm.enabled {
        let sm = &stream.sm;
        let secs = sm
            .max_resume
            .map_or("none".to_owned(), |d| d.as_secs().to_string());
        let ms = sm
            .request_after
            .map_or("none".to_owned(), |d| d.as_millis().to_string());
        setup.push("!server sm true".to_owned());
        setup.push(format!("!server sm-resume {}", sm.resume));
        setup.push(format!("!server sm-max-resume {secs}"));
        setup.push(format!("!server sm-max-unacked {}", sm.max_unacked));
        setup.push(format!("!server sm-request-every {}", sm.request_every));
        setup.push(format!("!server sm-request-after-ms {ms}"));
    }
    if let Some(ping) = &stream.ping {
        setup.push(format!(
            "!server ping {} {}",
            ping.idle.as_millis(),
            ping.timeout.as_millis()
        ));
    }
    if let Transport::Tls(bindings) = transport {
        setup.push("!server transport tls".to_owned());
        setup.extend(bindings.iter().map(binding_line));
    }
    setup
}

/// The setup of a component session: every configured component and its secret (the stream
/// learns which one connects from the header's `to`).
fn component_setup(config: &HubConfig) -> Vec<String> {
    config
        .components
        .iter()
        .map(|(domain, secret)| format!("!{COMPONENT_SERVER} component {domain} {secret}"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn binding_line(binding: &ChannelBinding) -> String {
    format!("!server binding {} {}", binding.kind(), hex(binding.data()))
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;
    use core::fmt;

    use xmpp_jid::BareJid;
    use xmpp_stream::SeededEntropy;

    use super::*;

    /// Stands for a stanza; counts how often it is formatted.
    struct Counted(Cell<usize>);

    impl fmt::Display for Counted {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.set(self.0.get() + 1);
            f.write_str("<message/>")
        }
    }

    /// The line every delivery records (`Hub::deliver`), through the same call.
    fn deliver_line(rec: &mut Recorder, now: Instant, stanza: &Counted) {
        rec.command(now, || format!("send {stanza}"));
    }

    #[test]
    fn a_session_not_recorded_formats_no_line() {
        let stanza = Counted(Cell::new(0));
        let mut rec = Recorder::off();
        deliver_line(&mut rec, Instant::ZERO, &stanza);
        rec.finish();
        assert_eq!(stanza.0.get(), 0, "formatted with recording off");

        // Recording on: formatted once, kept with its time since the session started.
        let config = HubConfig::new(BareJid::new("localhost").unwrap());
        let sink = TranscriptSink::default();
        let entropy = Tap::new(SeededEntropy::new(1));
        let start = Instant::from_millis(100);
        let mut rec = Recorder::start(
            &config,
            Kind::C2s,
            &sink,
            start,
            &Transport::Plain,
            &entropy,
        );
        deliver_line(&mut rec, Instant::from_millis(107), &stanza);
        rec.finish();
        assert_eq!(stanza.0.get(), 1);
        let transcripts = sink.lock().unwrap();
        assert_eq!(transcripts.len(), 1);
        assert!(
            transcripts[0].ends_with("\n7 H server: send <message/>\n"),
            "{}",
            transcripts[0]
        );
    }
}
