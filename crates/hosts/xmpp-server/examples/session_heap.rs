//! Where the heap of one idle authenticated TLS session of the example server goes, piece by
//! piece, measured with a counting allocator (no sockets: every piece runs in memory).
//!
//! `cargo run --release -p xmpp-server --features alloc-stats --example session_heap`
//!
//! Each figure is (live heap after K sessions, with every client-side object dropped) minus
//! (live heap before), divided by K. The hub figure includes its `ServerStream` (shown alone
//! too) and the boxed `Session`; the rustls figure excludes the connection's inline size
//! (boxed inside the task as part of the `TlsStream`, shown last). Peers here hand over whole
//! flights at once, so parser buffers can be larger than behind a socket: compare the sum
//! with the server binary's own `--heap-stats` under the load generator.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

use std::alloc::System;
use std::io::{Read as _, Write as _};
use std::sync::Arc;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_server::{Hub, HubConfig, HubOutput, SessionId, TlsMaterial};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, Instant, Output, SeededEntropy, Transport,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const K: usize = 200;

fn live() -> i128 {
    let s = GLOBAL.stats();
    i128::try_from(s.bytes_allocated).unwrap() - i128::try_from(s.bytes_deallocated).unwrap()
        + i128::try_from(s.bytes_reallocated).unwrap()
}

fn per_session(before: i128, after: i128) -> f64 {
    (after - before) as f64 / K as f64
}

/// K sessions through the hub, negotiated (SCRAM, bind) with initial presence, clients dropped.
fn hub_sessions() -> f64 {
    let mut config = HubConfig::new(BareJid::new("localhost").unwrap());
    for i in 0..K {
        config = config.with_user(&format!("user{i}"), "load-test-pw");
    }
    let mut hub = Hub::new(config);
    let before = live();
    let mut now = Instant::ZERO;
    for i in 0..K {
        let jid = BareJid::new(&format!("user{i}@localhost")).unwrap();
        let mut client = ClientStream::new(
            ClientConfig::new(jid, "load-test-pw"),
            SeededEntropy::new(i as u64),
        );
        // Direct TLS (XEP-0368): the hub sees the same secure stream as after STARTTLS.
        let transport = Transport::Tls(Vec::new());
        let id: SessionId =
            hub.accept(now, transport.clone(), SeededEntropy::new(1_000 + i as u64));
        client.start(now, transport).unwrap();
        let mut presence_sent = false;
        for _ in 0..100 {
            now = Instant::from_millis(now.as_millis() + 1);
            let mut moved = false;
            let mut to_client = Vec::new();
            while let Some(out) = hub.poll_output() {
                moved = true;
                if let HubOutput::Transmit(_, bytes) = out {
                    to_client.extend(bytes);
                }
            }
            if !to_client.is_empty() {
                let _ = client.handle_input(now, &to_client);
            }
            let mut to_hub = Vec::new();
            while let Some(out) = client.poll_output() {
                moved = true;
                match out {
                    Output::Transmit(bytes) => to_hub.extend(bytes),
                    Output::Event(Event::Negotiated { .. }) if !presence_sent => {
                        presence_sent = true;
                        let presence: minidom::Element =
                            "<presence xmlns='jabber:client'/>".parse().unwrap();
                        client.send_stanza(now, &presence).unwrap();
                    }
                    _ => {}
                }
            }
            if !to_hub.is_empty() {
                hub.handle_input(id, now, &to_hub);
            }
            if !moved {
                break;
            }
        }
        assert!(presence_sent, "session {i} did not negotiate");
    }
    let _ = hub.take_log();
    assert_eq!(hub.session_count(), K);
    let after = live();
    drop(hub);
    per_session(before, after)
}

fn pump(from: &mut impl FnMut(&mut Vec<u8>) -> usize, to: &mut impl FnMut(&[u8])) -> bool {
    let mut buf = Vec::new();
    from(&mut buf);
    if buf.is_empty() {
        return false;
    }
    to(&buf);
    true
}

/// K rustls server connections after a TLS 1.3 handshake and one record each way (the
/// stream restart after STARTTLS), clients dropped.
fn rustls_sessions() -> (f64, f64) {
    let tls = TlsMaterial::self_signed(&["localhost"]).unwrap();
    let client_config = client_config(
        &Trust::Pem(tls.cert_pem.clone().into_bytes()),
        Versions::Any,
    )
    .unwrap();
    let mut servers = Vec::with_capacity(K);
    let before = live();
    let mut idle_after_cache = 0;
    for i in 0..K {
        let mut server = rustls::ServerConnection::new(tls.config.clone()).unwrap();
        let mut client =
            rustls::ClientConnection::new(client_config.clone(), "localhost".try_into().unwrap())
                .unwrap();
        client
            .writer()
            .write_all(b"<stream:stream to='localhost'>")
            .unwrap();
        for _ in 0..20 {
            let c2s = pump(&mut |b| client.write_tls(b).unwrap(), &mut |b| {
                let mut r = b;
                while !r.is_empty() {
                    server.read_tls(&mut r).unwrap();
                    server.process_new_packets().unwrap();
                }
            });
            let s2c = pump(&mut |b| server.write_tls(b).unwrap(), &mut |b| {
                let mut r = b;
                while !r.is_empty() {
                    client.read_tls(&mut r).unwrap();
                    client.process_new_packets().unwrap();
                }
            });
            let mut plain = [0u8; 256];
            if let Ok(n) = server.reader().read(&mut plain)
                && n > 0
            {
                server
                    .writer()
                    .write_all(b"<stream:stream from='localhost'>")
                    .unwrap();
            }
            let _ = client.reader().read(&mut plain);
            if !c2s && !s2c && !server.is_handshaking() {
                break;
            }
        }
        assert!(!server.is_handshaking());
        drop(client);
        servers.push(server);
        if i == 0 {
            idle_after_cache = live();
        }
    }
    let after = live();
    drop(servers);
    // The first connection also fills rustls's shared session cache: report it apart.
    let first = (idle_after_cache - before) as f64;
    (per_session(before, after), first)
}

/// K tokio unbounded channels of the runtime's command size, one message through each.
fn channels() -> f64 {
    let before = live();
    let mut kept = Vec::with_capacity(K);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let start = live();
    for _ in 0..K {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        tx.send(Vec::new()).unwrap();
        runtime.block_on(async { rx.recv().await });
        kept.push((tx, rx));
    }
    let after = live();
    drop(kept);
    let _ = before;
    per_session(start, after)
}

/// K bare `ServerStream`s with the hub's stream configuration, negotiated over a secure
/// transport without the hub, clients dropped: the machine's own share.
fn bare_streams(tls: bool) -> f64 {
    use xmpp_stream::ServerStream;
    let mut config = HubConfig::new(BareJid::new("localhost").unwrap());
    for i in 0..K {
        config = config.with_user(&format!("user{i}"), "load-test-pw");
    }
    if !tls {
        config.stream.tls = xmpp_stream::TlsPolicy::Disabled;
    }
    let mut backend = xmpp_stream::MemoryBackend::new();
    for (name, password) in &config.users {
        backend = backend.with_user(name, password, 4096);
    }
    let backend = Arc::new(backend);
    let mut kept = Vec::with_capacity(K);
    let before = live();
    let mut now = Instant::ZERO;
    for i in 0..K {
        let jid = BareJid::new(&format!("user{i}@localhost")).unwrap();
        let mut cc = ClientConfig::new(jid, "load-test-pw");
        let transport = if tls {
            Transport::Tls(Vec::new())
        } else {
            cc.tls = xmpp_stream::TlsPolicy::Disabled;
            Transport::Plain
        };
        let mut client = ClientStream::new(cc, SeededEntropy::new(i as u64));
        let mut server = ServerStream::new(
            config.stream.clone(),
            SeededEntropy::new(1_000 + i as u64),
            Arc::clone(&backend),
        );
        server.start(now, transport.clone()).unwrap();
        client.start(now, transport).unwrap();
        for _ in 0..100 {
            now = Instant::from_millis(now.as_millis() + 1);
            let mut moved = false;
            let mut to_client = Vec::new();
            while let Some(out) = server.poll_output() {
                moved = true;
                if let Output::Transmit(bytes) = out {
                    to_client.extend(bytes);
                }
            }
            if !to_client.is_empty() {
                let _ = client.handle_input(now, &to_client);
            }
            let mut to_server = Vec::new();
            while let Some(out) = client.poll_output() {
                moved = true;
                if let Output::Transmit(bytes) = out {
                    to_server.extend(bytes);
                }
            }
            if !to_server.is_empty() {
                let _ = server.handle_input(now, &to_server);
            }
            if !moved {
                break;
            }
        }
        assert!(server.is_negotiated());
        kept.push(server);
    }
    let after = live();
    drop(kept);
    per_session(before, after)
}

/// Where the heap of one idle authenticated TLS session of the example server goes, piece by
/// piece (needs the alloc-stats feature).
#[derive(clap::Parser)]
#[command(name = "session_heap", version)]
struct Cli {}

fn main() {
    <Cli as clap::Parser>::parse();
    let bare = bare_streams(true);
    let hub = hub_sessions();
    let (tls, first) = rustls_sessions();
    let chan = channels();
    println!("heap per idle session, K = {K} sessions each (bytes):");
    println!(
        "  ServerStream alone (heap), hub configuration:      {bare:8.0}  ({:.1} KiB)",
        bare / 1024.0
    );
    println!(
        "  ServerStream inline size (boxed in the hub):        {:8}",
        std::mem::size_of::<xmpp_stream::ServerStream>()
    );
    println!(
        "  hub session (ServerStream + hub maps + IM session): {hub:8.0}  ({:.1} KiB)",
        hub / 1024.0
    );
    println!(
        "  rustls ServerConnection after handshake:            {tls:8.0}  ({:.1} KiB; the first also filled the shared cache: {first:.0})",
        tls / 1024.0
    );
    println!(
        "  a tokio unbounded channel (the runtime now uses a lighter Outbox): {chan:8.0}  ({:.1} KiB)",
        chan / 1024.0
    );
    println!(
        "  TlsStream<TcpStream> inline size (boxed):           {:8}",
        std::mem::size_of::<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>()
    );
}
