//! Table-driven byte scans for the ASCII fast paths.
//!
//! Each scan ORs per-byte flags from a 256-entry table over the whole slice, without
//! branches or early exit (one load and one OR per byte); the slow search for the offending
//! byte runs only when a scan reports a problem.

/// Some byte is an ASCII byte the part does not allow.
pub(crate) const BAD: u8 = 1;
/// Some byte is an ASCII uppercase letter.
pub(crate) const UPPER: u8 = 2;
/// Some byte is not ASCII: take the Unicode path.
pub(crate) const NON_ASCII: u8 = 4;

/// Which bytes a table allows.
#[derive(Clone, Copy)]
enum Allow {
    /// Localpart: `!`..=`~` minus RFC 7622's `" & ' / : < > @`.
    Localpart,
    /// PRECIS IdentifierClass on ASCII: `!`..=`~`.
    Identifier,
    /// PRECIS FreeformClass on ASCII: ` `..=`~`.
    Freeform,
    /// DNS names: letters, digits, `-` and `.`.
    Domain,
}

const fn allowed(kind: Allow, c: u8) -> bool {
    match kind {
        Allow::Localpart => {
            c >= b'!'
                && c <= b'~'
                && !matches!(c, b'"' | b'&' | b'\'' | b'/' | b':' | b'<' | b'>' | b'@')
        }
        Allow::Identifier => c >= b'!' && c <= b'~',
        Allow::Freeform => c >= b' ' && c <= b'~',
        Allow::Domain => c.is_ascii_alphanumeric() || c == b'-' || c == b'.',
    }
}

const fn table(kind: Allow) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        // `i < 256`, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let c = i as u8;
        t[i] = if c >= 0x80 {
            NON_ASCII
        } else if !allowed(kind, c) {
            BAD
        } else if c.is_ascii_uppercase() {
            UPPER
        } else {
            0
        };
        i += 1;
    }
    t
}

static LOCALPART: [u8; 256] = table(Allow::Localpart);
static IDENTIFIER: [u8; 256] = table(Allow::Identifier);
static FREEFORM: [u8; 256] = table(Allow::Freeform);
static DOMAIN: [u8; 256] = table(Allow::Domain);

#[inline]
fn fold(bytes: &[u8], t: &[u8; 256]) -> u8 {
    bytes.iter().fold(0, |acc, &b| acc | t[usize::from(b)])
}

#[inline]
fn first_bad(bytes: &[u8], t: &[u8; 256]) -> char {
    bytes
        .iter()
        .find(|&&b| t[usize::from(b)] & BAD != 0)
        .map_or(char::REPLACEMENT_CHARACTER, |&b| char::from(b))
}

/// Flags of a localpart.
pub(crate) fn scan_localpart(bytes: &[u8]) -> u8 {
    fold(bytes, &LOCALPART)
}

/// The first byte a localpart forbids (call only when [`scan_localpart`] reported [`BAD`]).
pub(crate) fn bad_in_localpart(bytes: &[u8]) -> char {
    first_bad(bytes, &LOCALPART)
}

fn precis_table(freeform: bool) -> &'static [u8; 256] {
    if freeform { &FREEFORM } else { &IDENTIFIER }
}

/// Flags of a string under a PRECIS string class.
pub(crate) fn scan_precis(bytes: &[u8], freeform: bool) -> u8 {
    fold(bytes, precis_table(freeform))
}

/// The first byte the class forbids.
pub(crate) fn bad_in_precis(bytes: &[u8], freeform: bool) -> char {
    first_bad(bytes, precis_table(freeform))
}

/// Flags of an ASCII domain name.
pub(crate) fn scan_domain(bytes: &[u8]) -> u8 {
    fold(bytes, &DOMAIN)
}

/// The first byte a domain name forbids.
pub(crate) fn bad_in_domain(bytes: &[u8]) -> char {
    first_bad(bytes, &DOMAIN)
}

/// Position of the first `needle` in `bytes`, eight bytes at a time (SWAR: a byte of
/// `v ^ needle*0x01..01` is zero exactly where `v` holds `needle`). Faster than `memchr`'s
/// set-up on JID-sized inputs, and branch-light.
#[inline]
pub(crate) fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            // The lowest flagged byte is exact (borrows only propagate upwards).
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == needle)
        .map(|i| base + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_matches_position() {
        let hay = b"juliet@example.com/balcony@x/y....0123456789abcdef/";
        for needle in [b'/', b'@', b'.', b'j', b'y', b'z', 0, 0xFF] {
            for start in 0..hay.len() {
                for end in start..=hay.len() {
                    let h = &hay[start..end];
                    assert_eq!(
                        find_byte(h, needle),
                        h.iter().position(|&c| c == needle),
                        "{needle} in {h:?}"
                    );
                }
            }
        }
        // Bytes next to the needle value must not confuse the borrow trick.
        assert_eq!(
            find_byte(&[0x2E, 0x2F, 0x30, 0xAF, 0x2F, 0, 0, 0, 0x2F], 0x2F),
            Some(1)
        );
        assert_eq!(
            find_byte(
                &[0x01, 0x00, 0x01, 0x80, 0x81, 0x7F, 0xFF, 0xFE, 0x00],
                0x00
            ),
            Some(1)
        );
    }
}
