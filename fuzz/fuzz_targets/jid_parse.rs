#![no_main]
//! Any byte string, read as UTF-8 (lossily), must parse without panicking; every accepted JID
//! must re-parse from its display form to an equal JID whose display is unchanged, and its
//! parts must reassemble to the whole. The PRECIS profiles must be idempotent. The
//! allocation-free `Jid::validate` must accept exactly what `Jid::new` accepts.

use xmpp_jid::{BareJid, FullJid, Jid, precis};

fn run(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let parsed = Jid::new(&input);
    assert_eq!(
        Jid::validate(&input).is_ok(),
        parsed.is_ok(),
        "validate and new disagree on {input:?}"
    );
    if let Ok(jid) = parsed {
        let shown = jid.to_string();
        let again = Jid::new(&shown).expect("display form re-parses");
        assert_eq!(again, jid);
        assert_eq!(again.to_string(), shown, "display is idempotent");

        let mut whole = String::new();
        if let Some(node) = jid.node() {
            whole.push_str(node);
            whole.push('@');
        }
        whole.push_str(jid.domain());
        if let Some(resource) = jid.resource() {
            whole.push('/');
            whole.push_str(resource);
        }
        assert_eq!(whole, shown);

        let bare = BareJid::from_parts(jid.node(), jid.domain()).expect("parts re-enforce");
        assert_eq!(bare, jid.to_bare());
        if let Some(resource) = jid.resource() {
            let full = FullJid::from_parts(jid.node(), jid.domain(), resource).expect("parts");
            assert_eq!(full, jid);
        }
    }
    let _ = BareJid::new(&input);
    let _ = FullJid::new(&input);
    for profile in [
        precis::username_case_mapped,
        precis::username_case_preserved,
        precis::opaque_string,
        precis::nickname_case_mapped,
        precis::nickname_case_preserved,
    ] {
        if let Ok(once) = profile(&input) {
            let twice = profile(&once).expect("enforced output is accepted");
            assert_eq!(twice, once, "enforcement is idempotent");
        }
    }
    let escaped = xmpp_jid::escape::escape_localpart(&input);
    assert_eq!(xmpp_jid::escape::unescape_localpart(&escaped), input);
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use. The lossy UTF-8 reading triples invalid bytes, and up to
/// ~8 copies of the text live at once (the input, the JID, its display form, the reassembled
/// whole, bare and full JIDs from parts, profile outputs): measured up to 22 bytes per input
/// byte (`6K6/` then 340 bytes of 0xC6: a 1020-byte resource of U+FFFD), so 32 per byte plus
/// 2 KiB fixed. (A first bound of 16 per byte was tripped by such an input after 11 minutes of
/// fuzzing: kept as `corpus/jid_parse/peak-lossy-resource`.) Anything quadratic, or a buffer
/// sized by something other than the input, trips this.
fn bound(len: usize) -> usize {
    2 * 1024 + 32 * len
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});
