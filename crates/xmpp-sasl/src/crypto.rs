//! The SCRAM primitives (RFC 5802 §2.2) over the three hashes, with fixed-size zeroizing keys.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::mechanism::ScramHash;

/// A hash output or key of up to 64 bytes, zeroized on drop.
#[derive(Clone)]
pub(crate) struct Key {
    bytes: [u8; 64],
    len: u8,
}

impl Key {
    pub(crate) fn copy_of(s: &[u8]) -> Key {
        Key::from_slice(s)
    }

    fn from_slice(s: &[u8]) -> Key {
        let mut bytes = [0u8; 64];
        let len = s.len().min(64);
        bytes[..len].copy_from_slice(&s[..len]);
        // `len` is at most 64, which fits a u8.
        Key {
            bytes,
            len: u8::try_from(len).unwrap_or(64),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Constant-time comparison with `other` (lengths are public).
    pub(crate) fn ct_eq(&self, other: &[u8]) -> bool {
        self.as_slice().ct_eq(other).into()
    }

    /// `self XOR other` over the shorter length (both are the hash length in practice).
    pub(crate) fn xor(&self, other: &[u8]) -> Key {
        let mut out = self.clone();
        for (a, b) in out.bytes.iter_mut().zip(other) {
            *a ^= b;
        }
        out
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Key({} bytes, redacted)", self.len)
    }
}

fn hmac_parts<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Key {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return Key::from_slice(&[]);
    };
    for p in parts {
        mac.update(p);
    }
    Key::from_slice(&mac.finalize().into_bytes())
}

/// `HMAC(key, parts[0] || parts[1] || ...)`.
pub(crate) fn hmac(hash: ScramHash, key: &[u8], parts: &[&[u8]]) -> Key {
    match hash {
        ScramHash::Sha1 => hmac_parts::<Hmac<Sha1>>(key, parts),
        ScramHash::Sha256 => hmac_parts::<Hmac<Sha256>>(key, parts),
        ScramHash::Sha512 => hmac_parts::<Hmac<Sha512>>(key, parts),
    }
}

/// `H(data)`.
pub(crate) fn h(hash: ScramHash, data: &[u8]) -> Key {
    match hash {
        ScramHash::Sha1 => Key::from_slice(&Sha1::digest(data)),
        ScramHash::Sha256 => Key::from_slice(&Sha256::digest(data)),
        ScramHash::Sha512 => Key::from_slice(&Sha512::digest(data)),
    }
}

/// `Hi(password, salt, i)`: PBKDF2 with HMAC over `hash`, one output block.
pub(crate) fn salted_password(hash: ScramHash, password: &[u8], salt: &[u8], i: u32) -> Key {
    let mut out = Key::from_slice(&[0u8; 64][..hash.output_len()]);
    let len = usize::from(out.len);
    let buf = &mut out.bytes[..len];
    match hash {
        ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, i, buf),
        ScramHash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, i, buf),
        ScramHash::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, i, buf),
    }
    out
}

/// `ClientKey` and `ServerKey` from a salted password.
pub(crate) fn client_server_keys(hash: ScramHash, salted: &Key) -> (Key, Key) {
    (
        hmac(hash, salted.as_slice(), &[b"Client Key"]),
        hmac(hash, salted.as_slice(), &[b"Server Key"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5802_keys() {
        // RFC 5802 §5 values (see testdata/vectors/scram.json).
        let salt = [
            0x41, 0x25, 0xc2, 0x47, 0xe4, 0x3a, 0xb1, 0xe9, 0x3c, 0x6d, 0xff, 0x76,
        ];
        let sp = salted_password(ScramHash::Sha1, b"pencil", &salt, 4096);
        assert_eq!(sp.as_slice().len(), 20);
        let (ck, _) = client_server_keys(ScramHash::Sha1, &sp);
        let stored = h(ScramHash::Sha1, ck.as_slice());
        // base64 "6dlGYMOdZcOPutkcNY8U2g7vK9Y=" starts with 0xe9 0xd9 0x46.
        assert_eq!(&stored.as_slice()[..3], &[0xe9, 0xd9, 0x46]);
        assert!(stored.ct_eq(stored.clone().as_slice()));
        assert!(!stored.ct_eq(&[0u8; 20]));
        assert!(!stored.ct_eq(&stored.as_slice()[..19]));
    }
}
