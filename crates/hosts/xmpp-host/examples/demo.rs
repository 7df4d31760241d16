//! The "main job" in one process: a `ClientStream` and a `ServerStream` talking over two
//! in-memory byte pipes, with real TLS on both ends (rustls, a self-signed certificate made
//! with rcgen at start), SCRAM-SHA-256-PLUS bound to the TLS session with `tls-exporter`,
//! resource binding, a message each way and a clean close. Prints an annotated transcript.
//!
//! `cargo run -p xmpp-host --example demo`
//!
//! The state machines never see a socket or a TLS object: this file is the "host" that moves
//! bytes, runs TLS when asked (`Output::StartTls`) and reports the channel-binding data back.
//! The TLS set-up and the channel bindings come from [`xmpp_host::tls`], as in every host.
// An example is a host: failing loudly on a broken TLS setup is the right behaviour here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::io::{Read, Write};

use base64::Engine as _;
use minidom::Element;
use rustls::pki_types::CertificateDer;
use xmpp_host::tls::{
    TlsMaterial, Trust, Versions, channel_bindings, client_config, peer_certificate, server_name,
    tls_exporter,
};
use xmpp_stream::MemoryBackend;
use xmpp_stream::{
    AnyStream, BareJid, ClientConfig, ClientStream, Event, Instant, Mechanism, Output,
    SeededEntropy, ServerConfig, ServerStream, Transport,
};

/// One end of the connection: the machine (either role), its TLS session once started, and
/// its outbox.
struct Host {
    name: &'static str,
    arrow: &'static str,
    machine: AnyStream,
    tls: Option<rustls::Connection>,
    secured: bool,
    make_tls: Box<dyn Fn() -> rustls::Connection>,
    /// The server's own certificate (its `tls-server-end-point` input); `None` on the client,
    /// which hashes the peer's.
    certificate: Option<CertificateDer<'static>>,
    events: Vec<Event>,
}

impl Host {
    /// Drain the machine's outputs onto `wire`. Returns whether anything happened.
    fn pump(&mut self, wire: &mut Vec<u8>) -> bool {
        let mut any = false;
        while let Some(output) = self.machine.poll_output() {
            any = true;
            match output {
                Output::Transmit(bytes) => {
                    annotate(self.arrow, &bytes, self.tls.is_some());
                    match &mut self.tls {
                        Some(tls) => {
                            tls.writer().write_all(&bytes).unwrap();
                            while tls.wants_write() {
                                tls.write_tls(wire).unwrap();
                            }
                        }
                        None => wire.extend_from_slice(&bytes),
                    }
                }
                Output::StartTls => {
                    println!(
                        "   {:<6} ** StartTls: running the TLS handshake on the same pipe",
                        self.name
                    );
                    let mut tls = (self.make_tls)();
                    while tls.wants_write() {
                        tls.write_tls(wire).unwrap();
                    }
                    self.tls = Some(tls);
                }
                Output::Event(event) => {
                    println!(
                        "   {:<6} -> event: {}",
                        self.name,
                        xmpp_stream::transcript::event_summary(&event)
                    );
                    self.events.push(event);
                }
                _ => {}
            }
        }
        any
    }

    /// Bytes arrived from the peer: through TLS if it is up, then into the machine.
    fn receive(&mut self, now: Instant, mut bytes: &[u8], reply: &mut Vec<u8>) {
        let Some(tls) = &mut self.tls else {
            let _ = self.machine.handle_input(now, bytes);
            return;
        };
        while !bytes.is_empty() {
            tls.read_tls(&mut bytes).unwrap();
            tls.process_new_packets().expect("TLS error");
        }
        while tls.wants_write() {
            tls.write_tls(reply).unwrap();
        }
        if !tls.is_handshaking() && !self.secured {
            self.secured = true;
            let bindings = match tls {
                rustls::Connection::Client(c) => channel_bindings(c, peer_certificate(c).as_ref()),
                rustls::Connection::Server(s) => channel_bindings(s, self.certificate.as_ref()),
            };
            let exporter = match tls {
                rustls::Connection::Client(c) => tls_exporter(c),
                rustls::Connection::Server(s) => tls_exporter(s),
            }
            .expect("TLS 1.3 has tls-exporter");
            println!(
                "   {:<6} ** TLS up: {:?}, {:?}; tls-exporter = {}...",
                self.name,
                tls.protocol_version().unwrap(),
                tls.negotiated_cipher_suite().unwrap().suite(),
                hex(&exporter[..8])
            );
            self.machine.tls_established(now, bindings).unwrap();
        }
        let mut plaintext = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => plaintext.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("TLS read: {e}"),
            }
        }
        if !plaintext.is_empty()
            && let Err(e) = self.machine.handle_input(now, &plaintext)
        {
            println!("   {:<6} !! protocol error: {e}", self.name);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Print one transmission, decoding SASL payloads so the SCRAM exchange is readable.
fn annotate(arrow: &str, bytes: &[u8], encrypted: bool) {
    let text = String::from_utf8_lossy(bytes);
    let lock = if encrypted { "[tls]" } else { "[   ]" };
    if text.trim().is_empty() {
        println!("{arrow} {lock} (whitespace keepalive)");
        return;
    }
    println!("{arrow} {lock} {text}");
    for tag in ["auth", "challenge", "response", "success"] {
        if let Some(start) = text.find(&format!("<{tag} ")) {
            let body = &text[start..];
            if let (Some(open), Some(close)) = (body.find('>'), body.find(&format!("</{tag}>")))
                && let Ok(decoded) =
                    base64::engine::general_purpose::STANDARD.decode(&body[open + 1..close])
            {
                println!(
                    "              (SASL {tag}: {})",
                    String::from_utf8_lossy(&decoded)
                );
            }
        }
    }
}

fn message(to: &str, body: &str) -> Element {
    Element::builder("message", "jabber:client")
        .attr("to".try_into().unwrap(), to)
        .attr("type".try_into().unwrap(), "chat")
        .append(
            Element::builder("body", "jabber:client")
                .append(body)
                .build(),
        )
        .build()
}

fn main() {
    // --- TLS material, made fresh at start -------------------------------------------------
    let material = TlsMaterial::self_signed(&["im.example.com"]).unwrap();
    let server_certificate = material.leaf().into_owned();
    let server_tls = material.config.clone();
    let client_tls = client_config(
        &Trust::Pem(material.cert_pem.clone().into_bytes()),
        Versions::Any,
    )
    .unwrap();

    // --- The two machines -------------------------------------------------------------------
    let domain = BareJid::new("im.example.com").unwrap();
    let mut server_config = ServerConfig::new(domain);
    server_config.mechanisms = vec![Mechanism::ScramSha256Plus, Mechanism::ScramSha256];
    let accounts = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
    let server = ServerStream::new(server_config, SeededEntropy::new(2), accounts);

    let mut client_config = ClientConfig::new(
        BareJid::new("juliet@im.example.com").unwrap(),
        "r0m30myr0m30",
    );
    client_config.resource = Some("balcony".to_owned());
    let client = ClientStream::new(client_config, SeededEntropy::new(1));

    let mut client = Host {
        name: "client",
        arrow: "C -> S",
        machine: client.into(),
        tls: None,
        secured: false,
        make_tls: Box::new(move || {
            let name = server_name("im.example.com").unwrap();
            rustls::ClientConnection::new(client_tls.clone(), name)
                .unwrap()
                .into()
        }),
        certificate: None,
        events: Vec::new(),
    };
    let mut server = Host {
        name: "server",
        arrow: "S -> C",
        machine: server.into(),
        tls: None,
        secured: false,
        make_tls: Box::new(move || {
            rustls::ServerConnection::new(server_tls.clone())
                .unwrap()
                .into()
        }),
        certificate: Some(server_certificate),
        events: Vec::new(),
    };

    println!(
        "XMPP c2s in memory: juliet@im.example.com -> im.example.com (STARTTLS, SCRAM-SHA-256-PLUS, bind)\n"
    );
    let mut now = Instant::ZERO;
    server.machine.start(now, Transport::Plain).unwrap();
    client.machine.start(now, Transport::Plain).unwrap();

    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    let mut phase = 0;
    loop {
        now = Instant::from_millis(now.as_millis() + 1);
        let mut progress = client.pump(&mut to_server) | server.pump(&mut to_client);
        if !to_server.is_empty() {
            let bytes = std::mem::take(&mut to_server);
            server.receive(now, &bytes, &mut to_client);
            progress = true;
        }
        if !to_client.is_empty() {
            let bytes = std::mem::take(&mut to_client);
            client.receive(now, &bytes, &mut to_server);
            progress = true;
        }
        if progress {
            continue;
        }
        // Quiet: move the story on.
        match phase {
            0 => {
                let jid = client.machine.jid().expect("negotiated").to_string();
                println!("\n-- negotiated as {jid}; a message each way --");
                client
                    .machine
                    .send_stanza(
                        now,
                        &message("romeo@example.net", "Art thou not Romeo, and a Montague?"),
                    )
                    .unwrap();
                server
                    .machine
                    .send_stanza(
                        now,
                        &message(&jid, "Neither, fair saint, if either thee dislike."),
                    )
                    .unwrap();
            }
            1 => {
                println!("\n-- the client closes the stream --");
                client.machine.close(now).unwrap();
            }
            _ => break,
        }
        phase += 1;
    }
    let closed = |events: &[Event]| events.iter().any(|e| matches!(e, Event::Closed { .. }));
    assert!(
        closed(&client.events) && closed(&server.events),
        "both sides closed"
    );
    println!(
        "\nBoth sides closed cleanly; the host would now send TLS close_notify and close the socket."
    );
}
