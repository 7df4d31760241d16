//! Server-to-server sessions recorded as transcripts (`testdata/transcripts/s2s-*.txt`) and
//! replayed as both ends: SASL EXTERNAL, and dialback with the host's verification. The
//! recording is made here from the two machines in memory; the checked-in files must equal
//! it (`BLESS=1` rewrites them) and replay byte-exact.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::PathBuf;

use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::identity::PresentedId;
use xmpp_stream::transcript::{Role, Transcript, escape_bytes, event_summary};
use xmpp_stream::{
    AnyStream, BareJid, DialbackOutcome, Event, Instant, Output, S2sConfig, S2sInitiatingStream,
    S2sReceivingStream, SeededEntropy, Transport,
};

const SECRET: &str = "a-example-dialback-secret";

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/transcripts")
        .join(name)
}

struct Scenario {
    name: &'static str,
    about: &'static str,
    external: bool,
    /// XEP-0368: the TCP connection ran its TLS handshake first (no STARTTLS).
    direct_tls: bool,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "s2s-external.txt",
        about: "STARTTLS, then SASL EXTERNAL: b.example's end finds a.example in the \
                certificate's names",
        external: true,
        direct_tls: false,
    },
    Scenario {
        name: "s2s-dialback.txt",
        about: "STARTTLS, no certificate b.example can check: dialback, the key verified \
                by b.example's host",
        external: false,
        direct_tls: false,
    },
    Scenario {
        name: "s2s-direct-tls-external.txt",
        about: "XEP-0368 direct TLS (the stream starts secure, no STARTTLS), then SASL \
                EXTERNAL",
        external: true,
        direct_tls: true,
    },
];

/// Runs the scenario and returns each end's view (initiating, receiving) in the transcript
/// format: its inputs as delivered and its outputs as emitted. Deliveries go through a FIFO
/// and each is followed by draining the end that received it, which is how the replayer
/// runs one end; an end's TLS switch and dialback verification are handled as it emits
/// them, as a host does.
fn record(scenario: &Scenario) -> [String; 2] {
    let a = BareJid::new("a.example").unwrap();
    let b = BareJid::new("b.example").unwrap();
    let mut setup = String::new();
    let mut config_a = S2sConfig::new(vec![a.clone()]);
    let mut config_b = S2sConfig::new(vec![b.clone()]);
    let _ = writeln!(setup, "# {}\n# {}", scenario.name, scenario.about);
    setup.push_str("# Recorded by crates/xmpp-stream/tests/s2s_transcripts.rs (one end's view).\n");
    setup.push_str("!both compare exact\n");
    setup.push_str("!s2s-initiating local a.example\n!s2s-initiating remote b.example\n");
    setup.push_str("!s2s-initiating peer-id dns b.example\n!s2s-receiving domain b.example\n");
    setup.push_str("!s2s-receiving seed 2\n");
    if scenario.direct_tls {
        setup.push_str("!s2s-initiating transport tls\n!s2s-receiving transport tls\n");
    }
    if scenario.external {
        setup.push_str("!s2s-receiving peer-id dns a.example\n");
    } else {
        config_a.dialback_secret = Some(DialbackSecret::new(SECRET.as_bytes()));
        config_b.dialback_secret = Some(DialbackSecret::new(b"b-example-dialback-secret"));
        let _ = writeln!(setup, "!s2s-initiating dialback-secret {SECRET}");
        setup.push_str("!s2s-receiving dialback-secret b-example-dialback-secret\n");
    }
    let mut out = S2sInitiatingStream::new(config_a, a, b, SeededEntropy::new(1));
    out.set_peer_identities(vec![PresentedId::Dns("b.example".into())]);
    let mut inc = S2sReceivingStream::new(config_b, SeededEntropy::new(2));
    if scenario.external {
        inc.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
    }
    let mut ends: [AnyStream; 2] = [out.into(), inc.into()];
    for end in &mut ends {
        let transport = if scenario.direct_tls {
            Transport::Tls(Vec::new())
        } else {
            Transport::Plain
        };
        end.start(Instant::ZERO, transport).unwrap();
    }
    let mut run = Run {
        views: [setup.clone(), setup],
        queue: std::collections::VecDeque::new(),
    };
    run.drain(&mut ends, 0);
    run.drain(&mut ends, 1);
    run.deliver_all(&mut ends);
    let message = "<message xmlns='jabber:server' from='alice@a.example' to='bob@b.example' id='m1'><body>hi</body></message>";
    let _ = writeln!(run.views[0], "H s2s-initiating: send {message}");
    ends[0]
        .send_stanza(Instant::ZERO, &message.parse().unwrap())
        .unwrap();
    run.drain(&mut ends, 0);
    run.deliver_all(&mut ends);
    run.views[0].push_str("H s2s-initiating: close\n");
    ends[0].close(Instant::ZERO).unwrap();
    run.drain(&mut ends, 0);
    run.deliver_all(&mut ends);
    run.views
}

const WORDS: [&str; 2] = ["s2s-initiating", "s2s-receiving"];

struct Run {
    views: [String; 2],
    /// Bytes on their way: (to which end, bytes).
    queue: std::collections::VecDeque<(usize, Vec<u8>)>,
}

impl Run {
    fn line(&mut self, at: usize, text: &str) {
        self.views[at].push_str(text);
        self.views[at].push('\n');
    }

    fn drain(&mut self, ends: &mut [AnyStream; 2], at: usize) {
        while let Some(output) = ends[at].poll_output() {
            match output {
                Output::Transmit(bytes) => {
                    let side = if at == 0 { "C" } else { "S" };
                    self.line(at, &format!("{side}: {}", escape_bytes(&bytes)));
                    self.queue.push_back((1 - at, bytes));
                }
                Output::StartTls => {
                    self.line(at, "[TLS]");
                    ends[at].tls_established(Instant::ZERO, Vec::new()).unwrap();
                }
                Output::Event(event) => {
                    self.line(at, &format!("E {}: {}", WORDS[at], event_summary(&event)));
                    if let Event::DialbackVerify {
                        originating,
                        receiving,
                        ..
                    } = &event
                    {
                        self.line(
                            at,
                            &format!(
                                "H s2s-receiving: dialback-verified {originating} {receiving} valid"
                            ),
                        );
                        let AnyStream::S2sReceiving(inc) = &mut ends[at] else {
                            panic!("only the receiving end asks");
                        };
                        inc.dialback_verified(
                            Instant::ZERO,
                            originating,
                            receiving,
                            DialbackOutcome::Valid,
                        )
                        .unwrap();
                    }
                }
                _ => {}
            }
        }
    }

    fn deliver_all(&mut self, ends: &mut [AnyStream; 2]) {
        while let Some((to, bytes)) = self.queue.pop_front() {
            let side = if to == 0 { "S" } else { "C" };
            self.line(to, &format!("{side}: {}", escape_bytes(&bytes)));
            let _ = ends[to].handle_input(Instant::ZERO, &bytes);
            self.drain(ends, to);
        }
    }
}

#[test]
fn s2s_transcripts_are_current_and_replay_as_both_ends() {
    for scenario in &SCENARIOS {
        let views = record(scenario);
        for (view, role) in views.iter().zip([Role::Client, Role::Server]) {
            let name = file_name(scenario, role);
            let file = path(&name);
            if std::env::var_os("BLESS").is_some() {
                std::fs::write(&file, view).unwrap();
            }
            let stored = std::fs::read_to_string(&file).unwrap_or_default();
            assert_eq!(&stored, view, "{name} is stale: BLESS=1 rewrites it");
            let transcript = Transcript::parse(&stored).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Err(e) = transcript.replay(role) {
                panic!("{name}: {e}");
            }
        }
    }
}

/// `s2s-external.initiating.txt`, `s2s-external.receiving.txt`...
fn file_name(scenario: &Scenario, role: Role) -> String {
    let end = if role == Role::Client {
        "initiating"
    } else {
        "receiving"
    };
    scenario.name.replace(".txt", &format!(".{end}.txt"))
}

/// The replay checks what matters: with another secret (dialback) or a certificate that
/// names another domain (EXTERNAL), the receiving end's outputs differ.
#[test]
fn s2s_replay_detects_a_wrong_secret_or_certificate() {
    let dialback = std::fs::read_to_string(path("s2s-dialback.initiating.txt")).unwrap();
    let wrong = dialback.replace(
        &format!("!s2s-initiating dialback-secret {SECRET}"),
        "!s2s-initiating dialback-secret another",
    );
    assert!(
        Transcript::parse(&wrong)
            .unwrap()
            .replay(Role::Client)
            .is_err()
    );
    let external = std::fs::read_to_string(path("s2s-external.receiving.txt")).unwrap();
    let wrong = external.replace(
        "!s2s-receiving peer-id dns a.example",
        "!s2s-receiving peer-id dns evil.example",
    );
    assert!(
        Transcript::parse(&wrong)
            .unwrap()
            .replay(Role::Server)
            .is_err()
    );
}

/// The role of a transcript in `real-s2s/` by its file name: `*-initiating.txt` is our
/// `S2sInitiatingStream`, `*-receiving.txt` and `*-verify.txt` our `S2sReceivingStream`.
fn real_role(name: &str) -> Role {
    if name.ends_with("-initiating.txt") {
        Role::Client
    } else {
        Role::Server
    }
}

/// Every transcript in `testdata/transcripts/real-s2s/`: (file name, text), sorted.
fn real_s2s_transcripts() -> Vec<(String, String)> {
    let dir = path("real-s2s");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Real sessions of the example server's hub with Prosody 0.12 and ejabberd 23.01
/// (`crates/hosts/xmpp-server/tests/federation_peers.rs` with `XMPP_RECORD=1`): SASL
/// EXTERNAL and dialback, both ends, replayed offline through fresh machines, byte-exact.
#[test]
fn real_s2s_sessions_replay_as_our_end() {
    let files = real_s2s_transcripts();
    for peer in ["prosody", "ejabberd"] {
        for mode in ["external", "dialback"] {
            for end in ["initiating", "receiving"] {
                let name = format!("{peer}-{mode}-{end}.txt");
                assert!(files.iter().any(|(n, _)| *n == name), "{name} is missing");
            }
        }
    }
    for (name, text) in &files {
        let transcript = Transcript::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(e) = transcript.replay(real_role(name)) {
            panic!("{name}: {e}");
        }
    }
}

/// The replay of the real sessions is a real check: another dialback secret changes the
/// keys we sent (initiating) or our answers to `<db:verify/>`, another verdict of the host
/// our answer to `<db:result/>`, and without the peer's certificate names a receiving end
/// offers no EXTERNAL.
#[test]
fn real_s2s_replay_detects_a_wrong_secret_or_certificate() {
    let mut checked = 0;
    for (name, text) in real_s2s_transcripts() {
        let role = real_role(&name);
        // Our secret decides the key we send (initiating) and our answer to the peer's
        // `<db:verify/>`; the peer's `<db:result/>` is answered from the host's verdict.
        let uses_secret = role == Role::Client || text.contains(" C: <db:verify");
        let changed = if name.contains("-dialback-") && uses_secret {
            text.replace(
                " dialback-secret rust-s2s-test-dialback-secret",
                " dialback-secret another",
            )
        } else if name.contains("-dialback-") {
            text.replace(" valid\n", " invalid\n")
        } else if name.contains("-external") && name.ends_with("-receiving.txt") {
            let kept: Vec<&str> = text.lines().filter(|l| !l.contains(" peer-id ")).collect();
            kept.join("\n") + "\n"
        } else {
            continue;
        };
        assert_ne!(changed, text, "{name}: nothing to change");
        let replayed = Transcript::parse(&changed).unwrap().replay(role);
        assert!(replayed.is_err(), "{name}: replayed after the change");
        checked += 1;
    }
    assert!(checked >= 7, "{checked} transcripts checked");
}
