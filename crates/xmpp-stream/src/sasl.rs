//! SASL (RFC 6120 §6) on the wire: the `<auth/>`, `<challenge/>`, `<response/>`,
//! `<success/>`, `<failure/>` and `<abort/>` elements, base64 payloads with `=` for empty.
//! The mechanisms themselves are `xmpp-sasl`'s; this module never sees a password hash.

use minidom::Element;
use xmpp_sasl::Condition;

use crate::codec::{sasl_payload_decode, sasl_payload_text};
use crate::features::ns;

/// A SASL element, parsed. Payloads are decoded; `None` means absent, `Some(empty)` means `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SaslElement {
    Auth {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Challenge(Option<Vec<u8>>),
    Response(Option<Vec<u8>>),
    Success(Option<Vec<u8>>),
    Failure {
        condition: Condition,
        text: Option<String>,
    },
    Abort,
}

/// Why a SASL element could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SaslParseError {
    /// Not base64: `incorrect-encoding`.
    Encoding,
    /// Not a SASL element we know: `malformed-request` / not for this module.
    Unknown,
}

/// Longest `<failure/>` text kept.
const MAX_TEXT: usize = 1024;

impl SaslElement {
    pub(crate) fn parse(element: &Element) -> Result<SaslElement, SaslParseError> {
        if !element.has_ns(ns::SASL) {
            return Err(SaslParseError::Unknown);
        }
        let payload =
            || sasl_payload_decode(&element.text()).map_err(|()| SaslParseError::Encoding);
        Ok(match element.name() {
            "auth" => SaslElement::Auth {
                mechanism: element.attr("mechanism").unwrap_or_default().to_owned(),
                initial: payload()?,
            },
            "challenge" => SaslElement::Challenge(payload()?),
            "response" => SaslElement::Response(payload()?),
            "success" => SaslElement::Success(payload()?),
            "abort" => SaslElement::Abort,
            "failure" => {
                // No condition, or one this crate does not know: `not-authorized`, RFC 6120
                // §6.5's catch-all (and never a reason to fall back to another mechanism).
                let condition = element
                    .children()
                    .find(|c| c.has_ns(ns::SASL) && c.name() != "text")
                    .and_then(|c| c.name().parse().ok())
                    .unwrap_or(Condition::NotAuthorized);
                let text = element
                    .get_child("text", ns::SASL)
                    .map(|t| t.text().chars().take(MAX_TEXT).collect::<String>());
                SaslElement::Failure { condition, text }
            }
            _ => return Err(SaslParseError::Unknown),
        })
    }

    pub(crate) fn to_element(&self) -> Element {
        let with_payload = |name: &str, payload: Option<&[u8]>| {
            let text = sasl_payload_text(payload);
            let mut el = Element::bare(name, ns::SASL);
            if !text.is_empty() {
                el.append_text_node(text);
            }
            el
        };
        match self {
            SaslElement::Auth { mechanism, initial } => {
                let mut el = with_payload("auth", initial.as_deref());
                crate::codec::set_attr(&mut el, "mechanism", mechanism);
                el
            }
            SaslElement::Challenge(data) => with_payload("challenge", data.as_deref()),
            SaslElement::Response(data) => with_payload("response", data.as_deref()),
            SaslElement::Success(data) => with_payload("success", data.as_deref()),
            SaslElement::Abort => Element::bare("abort", ns::SASL),
            SaslElement::Failure { condition, text } => {
                let mut el = Element::bare("failure", ns::SASL);
                el.append_child(Element::bare(condition.to_string(), ns::SASL));
                if let Some(text) = text {
                    el.append_child(
                        Element::builder("text", ns::SASL)
                            .append(text.as_str())
                            .build(),
                    );
                }
                el
            }
        }
    }

    pub(crate) fn failure(condition: Condition) -> SaslElement {
        SaslElement::Failure {
            condition,
            text: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        for el in [
            SaslElement::Auth {
                mechanism: "PLAIN".into(),
                initial: Some(b"\0juliet\0pw".to_vec()),
            },
            SaslElement::Auth {
                mechanism: "EXTERNAL".into(),
                initial: Some(Vec::new()),
            },
            SaslElement::Auth {
                mechanism: "SCRAM-SHA-1".into(),
                initial: None,
            },
            SaslElement::Challenge(Some(b"r=abc".to_vec())),
            SaslElement::Response(None),
            SaslElement::Success(Some(b"v=xyz".to_vec())),
            SaslElement::Abort,
            SaslElement::Failure {
                condition: Condition::NotAuthorized,
                text: None,
            },
        ] {
            assert_eq!(SaslElement::parse(&el.to_element()), Ok(el));
        }
    }

    #[test]
    fn empty_initial_response_is_an_equals_sign() {
        let el = SaslElement::Auth {
            mechanism: "EXTERNAL".into(),
            initial: Some(Vec::new()),
        }
        .to_element();
        assert_eq!(el.text(), "=");
    }

    #[test]
    fn bad_base64_is_an_encoding_error() {
        let el = Element::builder("response", ns::SASL).append("***").build();
        assert_eq!(SaslElement::parse(&el), Err(SaslParseError::Encoding));
    }
}
