//! Recording (tests only) writes a transcript of each hub session with `send <stanza/>` lines
//! for what the hub sent: with envelopes on, a recorded session gets forwarded stanzas
//! through the element path, so its transcript is kept and replays. (Not in
//! `envelope_routing.rs`: that file counts allocations process-wide.)
#![allow(clippy::unwrap_used, clippy::panic)]

mod routed;

use routed::{Routed, chat, status};

#[test]
fn recorded_sessions_stay_replayable_with_envelopes() {
    for envelopes in [false, true] {
        let sink = xmpp_server::TranscriptSink::default();
        let mut r = Routed::recorded(envelopes, sink.clone());
        r.route(&chat(1));
        r.route(&status(2));
        r.close_all();
        let transcripts = sink.lock().unwrap().clone();
        assert_eq!(
            transcripts.len(),
            2,
            "envelopes {envelopes}: both sessions kept"
        );
        // bob's session got alice's message and her presence, forwarded.
        assert!(
            transcripts
                .iter()
                .any(|t| t.contains("H server: send <message") && t.contains("to='bob@localhost")),
            "{transcripts:#?}"
        );
        for text in &transcripts {
            xmpp_testpeers::transcripts::replay(text, xmpp_stream::transcript::Role::Server)
                .unwrap_or_else(|e| panic!("envelopes {envelopes}: {e}\n{text}"));
        }
    }
}
