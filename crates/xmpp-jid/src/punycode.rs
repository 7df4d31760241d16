//! Punycode (RFC 3492) for IDNA A-labels, written from the RFC's pseudocode description.
//! Inputs are single labels, bounded by the caller, and all arithmetic is checked.
#![allow(clippy::many_single_char_names)] // the RFC's variable names, kept for checking against it

use alloc::string::String;
use alloc::vec::Vec;

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 0x80;

fn adapt(mut delta: u32, num_points: u32, first: bool) -> u32 {
    delta /= if first { DAMP } else { 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

fn threshold(k: u32, bias: u32) -> u32 {
    if k <= bias {
        T_MIN
    } else if k >= bias + T_MAX {
        T_MAX
    } else {
        k - bias
    }
}

fn digit_value(b: u8) -> Option<u32> {
    match b {
        b'a'..=b'z' => Some(u32::from(b - b'a')),
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 26),
        _ => None,
    }
}

fn digit_byte(d: u32) -> u8 {
    // d < 36 by construction of the callers; anything else maps to an invalid digit.
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let b = usize::try_from(d).ok().and_then(|i| alphabet.get(i));
    *b.unwrap_or(&b'?')
}

/// Decodes the part of an A-label after `xn--`. `None` on any malformation or overflow.
pub(crate) fn decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    if !input.is_ascii() {
        return None;
    }
    let (basic, rest) = match bytes.iter().rposition(|&b| b == b'-') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&bytes[..0], bytes),
    };
    let mut out: Vec<char> = basic.iter().map(|&b| char::from(b)).collect();
    let mut n = INITIAL_N;
    let mut i: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut pos = 0;
    while pos < rest.len() {
        let old_i = i;
        let mut w: u32 = 1;
        let mut k = BASE;
        loop {
            let digit = digit_value(*rest.get(pos)?)?;
            pos += 1;
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = threshold(k, bias);
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = u32::try_from(out.len()).ok()? + 1;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        let c = char::from_u32(n)?;
        out.insert(usize::try_from(i).ok()?, c);
        i += 1;
    }
    Some(out.into_iter().collect())
}

/// Encodes a label to its punycode (without `xn--`). `None` on overflow.
pub(crate) fn encode(input: &str) -> Option<String> {
    let chars: alloc::vec::Vec<u32> = input.chars().map(u32::from).collect();
    let mut out = String::with_capacity(chars.len() * 2);
    encode_with(&chars, |b| out.push(char::from(b)))?;
    Some(out)
}

/// The length of [`encode`]'s output, computed without allocating. `None` for labels of more
/// than 63 code points (whose A-label is necessarily longer than 63 octets) or on overflow.
pub(crate) fn encoded_len(input: &str) -> Option<usize> {
    let mut buf = [0u32; 63];
    let mut n = 0;
    for c in input.chars() {
        *buf.get_mut(n)? = u32::from(c);
        n += 1;
    }
    let mut len = 0;
    encode_with(buf.get(..n)?, |_| len += 1)?;
    Some(len)
}

/// RFC 3492 §6.3, emitting each output byte to `emit`.
fn encode_with(chars: &[u32], mut emit: impl FnMut(u8)) -> Option<()> {
    let mut b: u32 = 0;
    for &c in chars {
        if let Ok(ascii) = u8::try_from(c) {
            if ascii < 0x80 {
                emit(ascii);
                b += 1;
            }
        }
    }
    let mut h = b;
    if b > 0 {
        emit(b'-');
    }
    let mut n = INITIAL_N;
    let mut delta: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let total = u32::try_from(chars.len()).ok()?;
    while h < total {
        let m = chars.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(h + 1)?)?;
        n = m;
        for &c in chars {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = threshold(k, bias);
                    if q < t {
                        break;
                    }
                    emit(digit_byte(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                emit(digit_byte(q));
                bias = adapt(delta, h + 1, h == b);
                delta = 0;
                h += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3492 §7.1 sample strings (as code points) and their punycode.
    #[test]
    fn rfc3492_samples() {
        let cases = [
            // (A) Arabic (Egyptian)
            (
                "\u{644}\u{64A}\u{647}\u{645}\u{627}\u{628}\u{62A}\u{643}\u{644}\u{645}\u{648}\u{634}\u{639}\u{631}\u{628}\u{64A}\u{61F}",
                "egbpdaj6bu4bxfgehfvwxn",
            ),
            // (B) Chinese (simplified)
            (
                "\u{4ED6}\u{4EEC}\u{4E3A}\u{4EC0}\u{4E48}\u{4E0D}\u{8BF4}\u{4E2D}\u{6587}",
                "ihqwcrb4cv8a8dqg056pqjye",
            ),
            // (L) 3<nen>B<gumi><kinpachi><sensei>
            (
                "3\u{5E74}B\u{7D44}\u{91D1}\u{516B}\u{5148}\u{751F}",
                "3B-ww4c5e180e575a65lsy2b",
            ),
        ];
        for (u, a) in cases {
            assert_eq!(encode(u).as_deref(), Some(a));
            assert_eq!(decode(a).as_deref(), Some(u));
        }
        assert_eq!(decode("bcher-kva").as_deref(), Some("b\u{FC}cher"));
        assert_eq!(encode("b\u{FC}cher").as_deref(), Some("bcher-kva"));
        assert_eq!(encoded_len("b\u{FC}cher"), Some(9));
        assert_eq!(encoded_len(&"\u{E9}".repeat(63)).map(|l| l > 0), Some(true));
        assert_eq!(encoded_len(&"\u{E9}".repeat(64)), None);
        assert_eq!(decode("99999999999999"), None);
    }

    /// `domain::u_label` skips the length computation for labels of at most 7 code points,
    /// relying on their A-label never exceeding 63 octets; probe the extremes.
    #[test]
    fn seven_code_points_fit_in_a_label() {
        let set = [0x80, 0x7FF, 0xE000, 0x0010_FFFF, 0x61];
        let mut worst = 0;
        for mut i in 0..set.len().pow(7) {
            let mut s = String::new();
            for _ in 0..7 {
                s.push(char::from_u32(set[i % set.len()]).unwrap());
                i /= set.len();
            }
            worst = worst.max(encoded_len(&s).unwrap());
        }
        let descending: String = [
            0x0010_FFFF,
            0x000F_FFFF,
            0x000E_FFFF,
            0x0001_0000,
            0xFFFD,
            0x800,
            0x80,
        ]
        .iter()
        .map(|&c| char::from_u32(c).unwrap())
        .collect();
        worst = worst.max(encoded_len(&descending).unwrap());
        assert!(worst + 4 <= 63, "worst A-label length {}", worst + 4);
        assert_eq!(decode("a-!"), None);
    }
}
