#![no_main]
//! Arbitrary client bytes, in arbitrary chunks, with TLS switches and time jumps, into a
//! `ServerStream`: no panic, outputs stop after `Closed`, protocol errors are sticky.

use std::sync::OnceLock;

use xmpp_stream::pair::MemoryBackend;
use xmpp_stream::{
    BareJid, ChannelBinding, ChannelBindingType, Event, Instant, Output, SeededEntropy,
    ServerConfig, ServerStream, TlsPolicy, Transport,
};

fn backend() -> MemoryBackend {
    static BACKEND: OnceLock<MemoryBackend> = OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096))
        .clone()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let Ok(domain) = BareJid::new("im.example.com") else {
        return;
    };
    let mut config = ServerConfig::new(domain);
    config.tls = [
        TlsPolicy::Required,
        TlsPolicy::Optional,
        TlsPolicy::Disabled,
    ][usize::from(mode % 3)];
    config.allow_plain_without_tls = mode & 4 != 0;
    config.max_auth_attempts = u32::from(mode >> 5) + 1;
    let binding = vec![ChannelBinding::new(
        ChannelBindingType::TlsExporter,
        [7u8; 32],
    )];
    let transport = if mode & 16 != 0 {
        Transport::Tls(binding.clone())
    } else {
        Transport::Plain
    };
    let mut server = ServerStream::new(config, SeededEntropy::new(u64::from(mode)), backend());
    let mut now = Instant::ZERO;
    if server.start(now, transport).is_err() {
        return;
    }
    let mut closed = false;
    let mut sticky = None;
    while let Some((&len, tail)) = rest.split_first() {
        if len & 0x80 != 0 {
            now = now + core::time::Duration::from_secs(60);
            server.handle_timeout(now);
        }
        let take = usize::from(len & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(take);
        rest = tail;
        let result = server.handle_input(now, chunk);
        if let Some(previous) = &sticky {
            assert_eq!(
                result.as_ref().err(),
                Some(previous),
                "protocol errors are sticky"
            );
        }
        if let Err(e) = result {
            sticky = Some(e);
        }
        while let Some(output) = server.poll_output() {
            assert!(!closed, "no output after Closed");
            match output {
                Output::StartTls => {
                    let _ = server.tls_established(now, binding.clone());
                }
                Output::Event(Event::Closed { .. }) => closed = true,
                _ => {}
            }
        }
    }
});
