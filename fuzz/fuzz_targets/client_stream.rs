#![no_main]
//! Arbitrary server bytes, in arbitrary chunks, with TLS switches and time jumps, into a
//! `ClientStream`: no panic, outputs stop after `Closed`, protocol errors are sticky.

use xmpp_stream::{
    BareJid, ChannelBinding, ChannelBindingType, ClientConfig, ClientStream, Event, Instant,
    Output, SeededEntropy, TlsPolicy, Transport,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let Ok(jid) = BareJid::new("juliet@im.example.com") else {
        return;
    };
    let mut config = ClientConfig::new(jid, "r0m30myr0m30");
    config.tls = [
        TlsPolicy::Required,
        TlsPolicy::Optional,
        TlsPolicy::Disabled,
    ][usize::from(mode % 3)];
    config.allow_plain_without_tls = mode & 4 != 0;
    config.resource = (mode & 8 != 0).then(|| "balcony".to_owned());
    let binding = vec![ChannelBinding::new(
        ChannelBindingType::TlsExporter,
        [7u8; 32],
    )];
    let transport = if mode & 16 != 0 {
        Transport::Tls(binding.clone())
    } else {
        Transport::Plain
    };
    let mut client = ClientStream::new(config, SeededEntropy::new(u64::from(mode)));
    let mut now = Instant::ZERO;
    if client.start(now, transport).is_err() {
        return;
    }
    let mut closed = false;
    let mut sticky = None;
    // Each chunk: one length byte, then that many bytes (the top bit of the length byte
    // advances the clock by a minute instead).
    while let Some((&len, tail)) = rest.split_first() {
        if len & 0x80 != 0 {
            now = now + core::time::Duration::from_secs(60);
            client.handle_timeout(now);
        }
        let take = usize::from(len & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(take);
        rest = tail;
        let result = client.handle_input(now, chunk);
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
        while let Some(output) = client.poll_output() {
            assert!(!closed, "no output after Closed");
            match output {
                Output::StartTls => {
                    let _ = client.tls_established(now, binding.clone());
                }
                Output::Event(Event::Closed { .. }) => closed = true,
                _ => {}
            }
        }
    }
});
