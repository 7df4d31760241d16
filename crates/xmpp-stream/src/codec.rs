//! Small wire codecs shared by the negotiation modules: base64 for SASL payloads.
//! Parses and serializes; never changes state.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Standard padded base64.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The text content of `<auth/>`, `<response/>`, `<challenge/>` or `<success/>`: `=` for an
/// empty payload that is present (RFC 6120 §6.4.2), nothing for no payload.
pub(crate) fn sasl_payload_text(payload: Option<&[u8]>) -> String {
    match payload {
        None => String::new(),
        Some([]) => "=".to_owned(),
        Some(bytes) => base64_encode(bytes),
    }
}

/// Decode a SASL payload element's text. `None` for absent data, `Some(vec![])` for `=`.
/// Whitespace is ignored (some servers wrap long payloads). Invalid base64 is `Err`
/// (`incorrect-encoding`).
pub(crate) fn sasl_payload_decode(text: &str) -> Result<Option<Vec<u8>>, ()> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match compact.as_str() {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        data => STANDARD.decode(data).map(Some).map_err(|_| ()),
    }
}

/// A byte as two lowercase hex digits.
pub(crate) const fn hex_pair(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[(byte >> 4) as usize], DIGITS[(byte & 0x0f) as usize]]
}

/// Bytes as lowercase hex (the XEP-0114 handshake, generated resources).
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| hex_pair(*b))
        .map(char::from)
        .collect()
}

/// An attribute name from a literal.
pub(crate) fn attr_name(local: &'static str) -> minidom::rxml::NcName {
    // Only called with literal ASCII names, which are valid NCNames.
    #[allow(clippy::expect_used)]
    minidom::rxml::NcName::try_from(local).expect("literal attribute names are valid NCNames")
}

/// Set an un-namespaced attribute.
pub(crate) fn set_attr(element: &mut minidom::Element, local: &'static str, value: &str) {
    element.set_attr(minidom::rxml::Namespace::NONE, attr_name(local), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_conventions() {
        assert_eq!(sasl_payload_text(None), "");
        assert_eq!(sasl_payload_text(Some(b"")), "=");
        assert_eq!(sasl_payload_text(Some(b"n,,n=juliet")), "biwsbj1qdWxpZXQ=");
        assert_eq!(sasl_payload_decode(""), Ok(None));
        assert_eq!(sasl_payload_decode("="), Ok(Some(vec![])));
        assert_eq!(
            sasl_payload_decode(" biwsbj1q\r\ndWxpZXQ= "),
            Ok(Some(b"n,,n=juliet".to_vec()))
        );
        assert_eq!(sasl_payload_decode("!!"), Err(()));
        assert_eq!(hex_lower(&[0x00, 0x9f, 0xff]), "009fff");
    }
}
