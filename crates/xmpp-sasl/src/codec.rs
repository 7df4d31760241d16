//! SCRAM and GS2 message syntax (RFC 5802 §7): parsing and serialising, never state.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::Error;
use crate::mechanism::ChannelBindingType;

/// Upper bound on any message this crate accepts from the peer.
pub(crate) const MAX_MESSAGE: usize = 8192;

pub(crate) fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub(crate) fn unb64(data: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    STANDARD.decode(data).map_err(|_| Error::BadBase64(what))
}

pub(crate) fn check_len(msg: &[u8]) -> Result<(), Error> {
    if msg.len() > MAX_MESSAGE {
        Err(Error::TooLong)
    } else {
        Ok(())
    }
}

pub(crate) fn utf8(msg: &[u8]) -> Result<&str, Error> {
    check_len(msg)?;
    core::str::from_utf8(msg).map_err(|_| Error::BadEncoding)
}

/// A nonce is printable ASCII without a comma (RFC 5802 `printable`).
pub(crate) fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b',')
}

/// `saslname` escaping: `,` becomes `=2C` and `=` becomes `=3D`.
pub(crate) fn escape_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_saslname`]; any other `=` sequence is an encoding error.
pub(crate) fn unescape_saslname(s: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(Error::BadEncoding);
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One `x=value` attribute.
pub(crate) struct Attr<'a> {
    pub(crate) name: u8,
    pub(crate) value: &'a str,
}

/// Splits `x=value,y=value,...`; every attribute must have a one-letter name and `=`.
pub(crate) fn attrs(msg: &str) -> Result<Vec<Attr<'_>>, Error> {
    let mut out = Vec::new();
    for part in msg.split(',') {
        let b = part.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(Error::Malformed("attribute"));
        }
        out.push(Attr {
            name: b[0],
            value: &part[2..],
        });
    }
    Ok(out)
}

/// Takes the next attribute, which must be `name`.
pub(crate) fn expect<'a>(
    it: &mut core::slice::Iter<'_, Attr<'a>>,
    name: u8,
    what: &'static str,
) -> Result<&'a str, Error> {
    match it.next() {
        Some(a) if a.name == name => Ok(a.value),
        Some(a) if a.name == b'm' => Err(Error::MandatoryExtension),
        _ => Err(Error::Malformed(what)),
    }
}

/// The GS2 channel-binding flag (RFC 5802 §7 `gs2-cbind-flag`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gs2Binding {
    /// `n`: the client does not support channel binding (or cannot use the server's type).
    None,
    /// `y`: the client supports channel binding but thinks the server does not (it saw no
    /// `-PLUS` mechanism). A server that did offer `-PLUS` treats this as a downgrade.
    ClientOnly,
    /// `p=<type>`: channel binding of this type is used (`-PLUS` mechanisms only).
    Bound(ChannelBindingType),
}

impl Gs2Binding {
    pub(crate) fn header(self, authzid: Option<&str>) -> String {
        let mut h = String::new();
        match self {
            Gs2Binding::None => h.push('n'),
            Gs2Binding::ClientOnly => h.push('y'),
            Gs2Binding::Bound(t) => {
                h.push_str("p=");
                h.push_str(t.as_str());
            }
        }
        h.push(',');
        if let Some(a) = authzid {
            h.push_str("a=");
            h.push_str(&escape_saslname(a));
        }
        h.push(',');
        h
    }
}

/// A parsed GS2 header: the flag, the authzid and the header's length in bytes.
pub(crate) struct Gs2Header {
    pub(crate) binding: Result<Gs2Binding, Error>,
    pub(crate) authzid: Option<String>,
    pub(crate) len: usize,
}

pub(crate) fn parse_gs2(msg: &str) -> Result<Gs2Header, Error> {
    let (flag, rest) = msg.split_once(',').ok_or(Error::Malformed("gs2 header"))?;
    let binding = match flag {
        "n" => Ok(Gs2Binding::None),
        "y" => Ok(Gs2Binding::ClientOnly),
        _ => match flag.strip_prefix("p=") {
            Some(name)
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                name.parse::<ChannelBindingType>()
                    .map(Gs2Binding::Bound)
                    .map_err(|_| Error::UnsupportedChannelBinding(None))
            }
            _ => return Err(Error::Malformed("gs2 flag")),
        },
    };
    let (authz, _) = rest.split_once(',').ok_or(Error::Malformed("gs2 header"))?;
    let authzid = if authz.is_empty() {
        None
    } else {
        let a = authz
            .strip_prefix("a=")
            .ok_or(Error::Malformed("gs2 authzid"))?;
        let a = unescape_saslname(a)?;
        if a.is_empty() {
            return Err(Error::Malformed("empty authzid"));
        }
        Some(a)
    };
    Ok(Gs2Header {
        binding,
        authzid,
        len: flag.len() + 1 + authz.len() + 1,
    })
}

/// Parses a decimal iteration count; values above `u32::MAX` saturate (they fail the ceiling).
pub(crate) fn parse_iterations(s: &str) -> Result<u32, Error> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Malformed("iteration count"));
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_round_trip() {
        for s in ["user", "a,b", "x=y", "=2C", ",=,="] {
            assert_eq!(unescape_saslname(&escape_saslname(s)).unwrap(), s);
        }
        assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
        assert!(unescape_saslname("a=2").is_err());
        assert!(unescape_saslname("a=3d").is_err());
        assert!(unescape_saslname("=").is_err());
    }

    #[test]
    fn gs2_headers() {
        let h = parse_gs2("n,,n=u,r=x").unwrap();
        assert_eq!(h.binding, Ok(Gs2Binding::None));
        assert_eq!(h.len, 3);
        let h = parse_gs2("p=tls-exporter,a=admin=2Cx,n=u").unwrap();
        assert_eq!(
            h.binding,
            Ok(Gs2Binding::Bound(ChannelBindingType::TlsExporter))
        );
        assert_eq!(h.authzid.as_deref(), Some("admin,x"));
        assert_eq!(h.len, "p=tls-exporter,a=admin=2Cx,".len());
        assert!(parse_gs2("p=foo-bar,,n=u").unwrap().binding.is_err());
        assert!(parse_gs2("x,,n=u").is_err());
        assert!(parse_gs2("n,b=x,n=u").is_err());
        assert!(parse_gs2("n").is_err());
        assert_eq!(
            Gs2Binding::Bound(ChannelBindingType::TlsUnique).header(Some("a=b")),
            "p=tls-unique,a=a=3Db,"
        );
    }

    #[test]
    fn iterations() {
        assert_eq!(parse_iterations("4096").unwrap(), 4096);
        assert_eq!(parse_iterations("2147483648").unwrap(), 2_147_483_648);
        assert_eq!(parse_iterations("99999999999999").unwrap(), u32::MAX);
        assert!(parse_iterations("-1").is_err());
        assert!(parse_iterations("").is_err());
        assert!(parse_iterations("1e3").is_err());
    }
}
