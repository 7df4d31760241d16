//! Writing a client session as a transcript (`testdata/README.md` describes the format) that
//! `xmpp_stream::transcript` replays offline: every chunk fed to the machine, every output,
//! the TLS switch with its channel-binding data, host commands, and the entropy drawn.
//!
//! The recorded machine is the initiating entity (a client, or a XEP-0114 component: role
//! `component`): its output is `C:`, what it was fed `S:`.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use xmpp_stream::transcript::{escape_bytes, event_summary};
use xmpp_stream::{
    ChannelBinding, ClientConfig, ComponentConfig, Credentials, Instant, Output, SmConfig, SmState,
};

/// Collects one session's records (a client's or a component's); [`Recorder::finish`] renders
/// the transcript.
#[derive(Debug)]
pub struct Recorder {
    /// The role name in `!ROLE`, `E ROLE:` and `H ROLE:` lines.
    role: &'static str,
    header: Vec<String>,
    lines: Vec<String>,
    bindings: Vec<ChannelBinding>,
    entropy: Arc<Mutex<Vec<u8>>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The `!ROLE sm...` directives for a stream-management configuration.
fn sm_header(role: &str, sm: &SmConfig) -> Vec<String> {
    let secs =
        |d: Option<core::time::Duration>| d.map_or("none".to_owned(), |d| d.as_secs().to_string());
    let ms = |d: Option<core::time::Duration>| {
        d.map_or("none".to_owned(), |d| d.as_millis().to_string())
    };
    vec![
        format!("!{role} sm true"),
        format!("!{role} sm-resume {}", sm.resume),
        format!("!{role} sm-max-resume {}", secs(sm.max_resume)),
        format!("!{role} sm-max-unacked {}", sm.max_unacked),
        format!("!{role} sm-request-every {}", sm.request_every),
        format!("!{role} sm-request-after-ms {}", ms(sm.request_after)),
    ]
}

impl Recorder {
    /// A recorder for a client with `config`, whose entropy draws appear in `entropy` (see
    /// [`crate::OsEntropy::recording`]). `comment` heads the file (one `#` line per line).
    pub fn new(
        comment: &str,
        config: &ClientConfig,
        direct_tls: bool,
        entropy: Arc<Mutex<Vec<u8>>>,
    ) -> Self {
        let mut header: Vec<String> = comment.lines().map(|l| format!("# {l}")).collect();
        header.push(format!("!client jid {}", config.jid));
        if let Credentials::Password(password) = &config.credentials {
            header.push(format!("!client password {password}"));
        }
        if let Some(resource) = &config.resource {
            header.push(format!("!client resource {resource}"));
        }
        if config.mechanisms != ClientConfig::DEFAULT_MECHANISMS {
            let names: Vec<&str> = config.mechanisms.iter().map(|m| m.as_str()).collect();
            header.push(format!("!client mechanisms {}", names.join(",")));
        }
        if direct_tls {
            header.push("!client transport tls".to_owned());
        }
        if config.sm.enabled {
            header.extend(sm_header("client", &config.sm));
        }
        if let Some(ping) = &config.ping {
            header.push(format!(
                "!client ping {} {}",
                ping.idle.as_millis(),
                ping.timeout.as_millis()
            ));
        }
        Recorder {
            role: "client",
            header,
            lines: Vec::new(),
            bindings: Vec::new(),
            entropy,
        }
    }

    /// A recorder for a XEP-0114 component with `config` (role `component`: `!component
    /// domain`, `!component secret`, `E component:` and `H component:` lines), otherwise as
    /// [`new`](Self::new).
    pub fn component(
        comment: &str,
        config: &ComponentConfig,
        entropy: Arc<Mutex<Vec<u8>>>,
    ) -> Self {
        let mut header: Vec<String> = comment.lines().map(|l| format!("# {l}")).collect();
        header.push(format!("!component domain {}", config.domain));
        header.push(format!("!component secret {}", config.secret));
        Recorder {
            role: "component",
            header,
            lines: Vec::new(),
            bindings: Vec::new(),
            entropy,
        }
    }

    /// The recorded client resumes `state` (`!client resume-with`) instead of binding.
    pub fn resume_with(&mut self, state: &SmState) {
        let mut line = format!(
            "!client resume-with {} {} {} {} {}",
            state.id, state.jid, state.handled, state.sent, state.acked
        );
        for stanza in &state.unacked {
            line.push(' ');
            line.push_str(&escape_bytes(stanza.as_bytes()));
        }
        self.header.push(line);
    }

    /// The machine produced `output` at `now`.
    pub fn output(&mut self, now: Instant, output: &Output) {
        let t = now.as_millis();
        match output {
            Output::Transmit(bytes) => self.lines.push(format!("{t} C: {}", escape_bytes(bytes))),
            Output::StartTls => self.lines.push(format!("{t} [TLS]")),
            Output::Event(event) => {
                let summary = event_summary(event);
                self.lines.push(format!("{t} E {}: {summary}", self.role));
            }
            _ => self.lines.push(format!("# {t} (unknown output)")),
        }
    }

    /// `bytes` were fed to the machine at `now`.
    pub fn input(&mut self, now: Instant, bytes: &[u8]) {
        self.lines
            .push(format!("{} S: {}", now.as_millis(), escape_bytes(bytes)));
    }

    /// A host command (`send <stanza/>`, `close`, `transport-closed`) ran at `now`.
    pub fn command(&mut self, now: Instant, command: &str) {
        self.lines
            .push(format!("{} H {}: {command}", now.as_millis(), self.role));
    }

    /// The TLS handshake finished with these bindings (the replayer reports the same ones).
    pub fn tls(&mut self, bindings: &[ChannelBinding]) {
        self.bindings = bindings.to_vec();
    }

    /// A free comment line in the body.
    pub fn note(&mut self, text: &str) {
        self.lines.push(format!("# {text}"));
    }

    /// The transcript text.
    pub fn finish(&self) -> String {
        let mut out = self.header.join("\n");
        out.push('\n');
        for binding in &self.bindings {
            let _ = writeln!(
                out,
                "!{} binding {} {}",
                self.role,
                binding.kind(),
                hex(binding.data())
            );
        }
        let drawn = self
            .entropy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for chunk in drawn.chunks(48) {
            let _ = writeln!(out, "!{} entropy {}", self.role, hex(chunk));
        }
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}
