//! A test aid: make a client use one SASL mechanism family by hiding the others from it.
//!
//! `ClientConfig` picks the strongest mechanism the server offers; an interop test that must
//! exercise SCRAM-SHA-1 or PLAIN against a server that also offers SCRAM-SHA-256 removes the
//! others from the server's `<mechanisms/>` before the machine sees them. The machine then
//! decides exactly as it would against a server offering only that family, including the
//! `-PLUS` decision when `NAME-PLUS` is kept alongside `NAME`.

/// Removes `<mechanism>X</mechanism>` elements whose `X` is neither the kept name nor its
/// `-PLUS` variant. Chunk-safe: a possibly incomplete element at the end of a chunk is held
/// back until the rest arrives.
#[derive(Clone, Debug)]
pub struct MechanismFilter {
    keep: String,
    pending: Vec<u8>,
}

const OPEN: &[u8] = b"<mechanism>";
const CLOSE: &[u8] = b"</mechanism>";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl MechanismFilter {
    /// Keep only `keep` (for example `SCRAM-SHA-1`) and `keep-PLUS`.
    pub fn new(keep: impl Into<String>) -> Self {
        MechanismFilter {
            keep: keep.into(),
            pending: Vec::new(),
        }
    }

    /// Filter the next chunk; returns what may be fed to the machine now.
    pub fn filter(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        // Hold back an unfinished tag or an unfinished <mechanism> element.
        let mut cut = self.pending.len();
        if let Some(lt) = self.pending.iter().rposition(|b| *b == b'<')
            && !self.pending[lt..].contains(&b'>')
        {
            cut = lt;
        }
        if let Some(open) = self.pending[..cut]
            .windows(OPEN.len())
            .rposition(|w| w == OPEN)
            && find(&self.pending[open..cut], CLOSE).is_none()
        {
            cut = open;
        }
        let rest = self.pending.split_off(cut);
        let ready = std::mem::replace(&mut self.pending, rest);
        self.strip(&ready)
    }

    /// Whatever is held back (call when filtering stops).
    pub fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    fn strip(&self, mut input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        while let Some(open) = find(input, OPEN) {
            out.extend_from_slice(&input[..open]);
            let body = &input[open + OPEN.len()..];
            let Some(close) = find(body, CLOSE) else {
                out.extend_from_slice(&input[open..]);
                return out;
            };
            let name = &body[..close];
            let plus = format!("{}-PLUS", self.keep);
            if name == self.keep.as_bytes() || name == plus.as_bytes() {
                out.extend_from_slice(&input[open..open + OPEN.len() + close + CLOSE.len()]);
            }
            input = &body[close + CLOSE.len()..];
        }
        out.extend_from_slice(input);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::MechanismFilter;

    const FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
    const SHA1_ONLY: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";

    #[test]
    fn keeps_one_family_at_any_chunking() {
        for split in 0..=FEATURES.len() {
            let mut filter = MechanismFilter::new("SCRAM-SHA-1");
            let mut out = filter.filter(&FEATURES.as_bytes()[..split]);
            out.extend(filter.filter(&FEATURES.as_bytes()[split..]));
            out.extend(filter.flush());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                SHA1_ONLY,
                "split at {split}"
            );
        }
    }

    #[test]
    fn keeps_plus_variant() {
        let mut filter = MechanismFilter::new("SCRAM-SHA-256");
        let out = String::from_utf8(filter.filter(FEATURES.as_bytes())).unwrap();
        assert!(out.contains("<mechanism>SCRAM-SHA-256-PLUS</mechanism>"));
        assert!(out.contains("<mechanism>SCRAM-SHA-256</mechanism>"));
        assert!(!out.contains("PLAIN") && !out.contains("SCRAM-SHA-1<"));
    }
}
