//! Replays every transcript under `testdata/transcripts/` (format: `testdata/README.md`).
//! `NAME.client.txt` / `NAME.server.txt` replay as that role; other files as both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use xmpp_stream::transcript::{Role, Transcript};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/transcripts")
}

fn replay(name: &str, roles: &[Role]) {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let transcript = Transcript::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    for role in roles {
        if let Err(e) = transcript.replay(*role) {
            panic!("{name} as {role:?}: {e}");
        }
    }
}

#[test]
fn rfc6120_9_1_as_client() {
    replay("rfc6120-9.1-c2s.txt", &[Role::Client]);
}

#[test]
fn rfc6120_9_1_as_server() {
    replay("rfc6120-9.1-c2s.txt", &[Role::Server]);
}

#[test]
fn xep0114_component_as_both_ends() {
    replay("xep0114-component.txt", &[Role::Client, Role::Server]);
}

/// A wrong handshake in the component transcript must not replay: the server's end closes
/// with not-authorized instead of answering `<handshake/>`.
#[test]
fn component_replay_detects_a_wrong_secret() {
    let text = std::fs::read_to_string(dir().join("xep0114-component.txt")).unwrap();
    let wrong = text.replace(
        "!component-server component comp.example.com s3cr3t",
        "!component-server component comp.example.com other",
    );
    let transcript = Transcript::parse(&wrong).unwrap();
    assert!(transcript.replay(Role::Server).is_err());
    assert!(
        transcript.replay(Role::Client).is_ok(),
        "the component's end does not see the secret"
    );
}

/// The replayer must catch a wrong byte in either direction, a wrong event and wrong entropy.
#[test]
fn replay_detects_mismatches() {
    let text = std::fs::read_to_string(dir().join("rfc6120-9.1-c2s.txt")).unwrap();
    let mutations: [(&str, &str, Role); 6] = [
        // The client's SCRAM proof changes when the nonce does.
        (
            "!client nonce oMsTAAwAAAAMAAAANP0TAAAAAABPU0AA",
            "!client nonce oMsTAAwAAAAMAAAANP0TAAAAAABPU0AB",
            Role::Client,
        ),
        // A different expected stream id.
        (
            "id='t7AMCin9zjMNwQKDnplntZPIDEI='",
            "id='t7AMCin9zjMNwQKDnplntZPIDEJ='",
            Role::Server,
        ),
        // A feature the server does not list.
        (
            "<mechanism>PLAIN</mechanism>",
            "<mechanism>PLAIN</mechanism><mechanism>X</mechanism>",
            Role::Server,
        ),
        // A wrong expected event.
        (
            "E client: Negotiated juliet@im.example.com/balcony",
            "E client: Negotiated juliet@im.example.com/garden",
            Role::Client,
        ),
        // A wrong password on the server side makes its SCRAM verification fail.
        (
            "!server user juliet r0m30myr0m30",
            "!server user juliet r0m30myr0m31",
            Role::Server,
        ),
        // The client expects the bind request id from its entropy.
        (
            "<iq id='yhc13a95' type='set'>",
            "<iq id='yhc13a96' type='set'>",
            Role::Client,
        ),
    ];
    for (from, to, role) in mutations {
        assert!(text.contains(from), "{from}");
        let mutated = text.replacen(from, to, 1);
        let transcript = Transcript::parse(&mutated).unwrap();
        assert!(
            transcript.replay(role).is_err(),
            "mutation {from:?} -> {to:?} went unnoticed"
        );
    }
}

mod recorded {
    //! Byte-exact transcripts recorded from `Pair` runs. `bless` (ignored) rewrites them;
    //! `recorded_transcripts_are_current` checks a fresh run still produces them, and the
    //! replays check each role against its file.
    use core::time::Duration;

    use minidom::Element;
    use xmpp_stream::MemoryBackend;
    use xmpp_stream::pair::{Direction, Pair};
    use xmpp_stream::transcript::{Role, Transcript};
    use xmpp_stream::{
        BareJid, ClientConfig, ClientStream, Mechanism, SeededEntropy, ServerConfig, ServerStream,
        TlsPolicy,
    };

    const BINDING: &str = "!both binding tls-exporter 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

    pub(super) struct Scenario {
        pub(super) name: &'static str,
        directives: &'static [&'static str],
        client: fn() -> ClientConfig,
        server: fn() -> ServerConfig,
        direct_tls: bool,
        run: fn(&mut Pair),
    }

    fn client() -> ClientConfig {
        ClientConfig::new(
            BareJid::new("juliet@im.example.com").unwrap(),
            "r0m30myr0m30",
        )
    }

    fn server() -> ServerConfig {
        ServerConfig::new(BareJid::new("im.example.com").unwrap())
    }

    fn message(to: &str, text: &str) -> Element {
        Element::builder("message", "jabber:client")
            .attr("to".try_into().unwrap(), to)
            .attr("id".try_into().unwrap(), "m1")
            .append(
                Element::builder("body", "jabber:client")
                    .append(text)
                    .build(),
            )
            .build()
    }

    pub(super) const SCENARIOS: &[Scenario] = &[
        Scenario {
            name: "starttls-scram-plus-bind",
            directives: &[
                "!client jid juliet@im.example.com",
                "!client password r0m30myr0m30",
                "!client seed 1",
                "!client keepalive-ms 30000",
                "!server domain im.example.com",
                "!server user juliet r0m30myr0m30 salt-of-juliet 4096",
                "!server seed 2",
                BINDING,
            ],
            client: || {
                let mut c = client();
                c.timeouts.keepalive = Some(Duration::from_secs(30));
                c
            },
            server,
            direct_tls: false,
            run: |pair| {
                pair.drive();
                let jid = pair.client.jid().unwrap().to_string();
                pair.client_send(&message("romeo@example.net", "Art thou not Romeo?"))
                    .unwrap();
                pair.server_send(&message(&jid, "Neither, fair saint"))
                    .unwrap();
                pair.drive();
                pair.advance(Duration::from_secs(31));
                pair.client_close().unwrap();
                pair.drive();
            },
        },
        Scenario {
            name: "direct-tls-plain-generated-resource",
            directives: &[
                "!client jid juliet@im.example.com",
                "!client password r0m30myr0m30",
                "!client seed 3",
                "!both transport tls",
                "!server domain im.example.com",
                "!server mechanisms PLAIN",
                "!server legacy-session false",
                "!server user juliet r0m30myr0m30 salt-of-juliet 4096",
                "!server seed 4",
                BINDING,
            ],
            client,
            server: || {
                let mut s = server();
                s.mechanisms = vec![Mechanism::Plain];
                s.legacy_session = false;
                s
            },
            direct_tls: true,
            run: |pair| {
                pair.drive();
                pair.server_close().unwrap();
                pair.drive();
            },
        },
        Scenario {
            name: "wrong-password",
            directives: &[
                "!client jid juliet@im.example.com",
                "!client password wrong",
                "!client seed 5",
                "!client tls optional",
                "!both tls disabled",
                "!server domain im.example.com",
                "!server user juliet r0m30myr0m30 salt-of-juliet 4096",
                "!server seed 6",
            ],
            client: || {
                let mut c =
                    ClientConfig::new(BareJid::new("juliet@im.example.com").unwrap(), "wrong");
                c.tls = TlsPolicy::Disabled;
                c
            },
            server: || {
                let mut s = server();
                s.tls = TlsPolicy::Disabled;
                s
            },
            direct_tls: false,
            run: |pair| pair.drive(),
        },
    ];

    impl Scenario {
        pub(super) fn record(&self) -> (String, String) {
            let backend = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
            let seeds: Vec<u64> = self
                .directives
                .iter()
                .filter_map(|d| d.split_once(" seed ").map(|(_, n)| n.parse().unwrap()))
                .collect();
            let client = ClientStream::new((self.client)(), SeededEntropy::new(seeds[0]));
            let server = ServerStream::new((self.server)(), SeededEntropy::new(seeds[1]), backend);
            let mut pair = Pair::new(client, server);
            if self.direct_tls {
                pair.start_direct_tls();
            } else {
                pair.start();
            }
            (self.run)(&mut pair);
            let header = |role: &str| {
                let mut text = format!(
                    "# Recorded from a Pair run ({}), {role}'s view. Regenerate with\n# `cargo test -p xmpp-stream --test transcripts -- --ignored bless`.\n",
                    self.name
                );
                for d in self.directives {
                    text.push_str(d);
                    text.push('\n');
                }
                text
            };
            (
                header("client") + &pair.transcript(Direction::ToServer),
                header("server") + &pair.transcript(Direction::ToClient),
            )
        }
    }

    pub(super) fn check(scenario: &Scenario, text: &str, role: Role) {
        let transcript =
            Transcript::parse(text).unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
        transcript
            .replay(role)
            .unwrap_or_else(|e| panic!("{} as {role:?}: {e}", scenario.name));
    }
}

fn recorded_path(name: &str, role: &str) -> PathBuf {
    dir().join(format!("{name}.{role}.txt"))
}

#[test]
#[ignore = "rewrites the recorded transcripts"]
fn bless() {
    for scenario in recorded::SCENARIOS {
        let (client, server) = scenario.record();
        std::fs::write(recorded_path(scenario.name, "client"), client).unwrap();
        std::fs::write(recorded_path(scenario.name, "server"), server).unwrap();
    }
}

#[test]
fn recorded_transcripts_are_current_and_replay() {
    for scenario in recorded::SCENARIOS {
        let (client, server) = scenario.record();
        let on_disk_client =
            std::fs::read_to_string(recorded_path(scenario.name, "client")).unwrap();
        let on_disk_server =
            std::fs::read_to_string(recorded_path(scenario.name, "server")).unwrap();
        assert_eq!(
            client, on_disk_client,
            "{}: client transcript changed (bless?)",
            scenario.name
        );
        assert_eq!(
            server, on_disk_server,
            "{}: server transcript changed (bless?)",
            scenario.name
        );
        recorded::check(scenario, &on_disk_client, Role::Client);
        recorded::check(scenario, &on_disk_server, Role::Server);
    }
}
