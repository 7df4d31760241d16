//! Transcript recording, for tests ([`HubConfig::record`]): each session's stream is written
//! down in the format of `testdata/README.md`, so that `tests/replay_real.rs` can replay
//! offline what real peers did: a client's `ServerStream` as the role `server`, a
//! component's `ComponentServerStream` as the role `component-server` (setup
//! `!component-server component DOMAIN SECRET` per configured component, then `entropy`; the
//! component's bytes are the `C:` lines, as the initiating entity's).
//!
//! A hub that does not record pays nothing for it: its sessions' entropy is not tapped and
//! no transcript line is formatted ([`Recorder::line`] takes a closure it calls only when
//! recording).

use core::fmt::Write as _;
use std::sync::{Arc, Mutex};

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
    /// The role name of the recorded stream in the transcript (`server`, `component-server`).
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
            // Server-to-server sessions are not recorded (their setup has no transcript form).
            Kind::S2sIn | Kind::S2sOut => return Recorder::off(),
        };
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

    /// Record the line `text()` at `now`; `text` is called only when recording, so that an
    /// unrecorded session never formats a stanza it delivers.
    pub(super) fn line(&mut self, now: Instant, text: impl FnOnce() -> String) {
        if let Some(rec) = &mut self.0 {
            rec.line(now, &text());
        }
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
        let text = match output {
            Output::Transmit(bytes) => Some(format!(
                "S: {}",
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
        if let Some(rec) = &mut self.0 {
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
