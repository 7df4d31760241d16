//! Events as JSON text: the one encoding the ABI hands the JavaScript side.
//!
//! Hand-written rather than `serde_json` so the module stays dependency-free; the shapes are
//! small and flat. Every object has `type` and `summary` (the transcript summary from
//! [`xmpp_stream::transcript::event_summary`], so JavaScript output reads like a transcript).

use core::fmt::Write as _;

use minidom::Element;
use xmpp_stream::transcript::event_summary;
use xmpp_stream::{Event, Output};

/// `text` as a JSON string literal, quotes included.
pub(crate) fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn optional(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_owned(), string)
}

/// An element serialized as XML text (lossy only if minidom refuses to write it, which it
/// does not for elements it parsed or built).
pub(crate) fn xml(element: &Element) -> String {
    let mut bytes = Vec::new();
    let _ = element.write_to(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One output that is not a `Transmit`, as a JSON object (`None` for `Transmit`, which goes
/// to the byte buffer instead).
pub(crate) fn output(output: &Output) -> Option<String> {
    match output {
        Output::Transmit(_) => None,
        Output::StartTls => Some(r#"{"type":"StartTls","summary":"StartTls"}"#.to_owned()),
        Output::Event(e) => Some(event(e)),
        other => Some(format!(
            r#"{{"type":"Other","summary":{}}}"#,
            string(&format!("{other:?}"))
        )),
    }
}

/// One event as a JSON object.
pub(crate) fn event(event: &Event) -> String {
    let summary = string(&event_summary(event));
    match event {
        Event::StreamOpened { id, from, lang } => format!(
            r#"{{"type":"StreamOpened","summary":{summary},"id":{},"from":{},"lang":{}}}"#,
            optional(id.as_deref()),
            optional(from.as_ref().map(xmpp_stream::Jid::as_str)),
            optional(lang.as_deref()),
        ),
        Event::Secured => format!(r#"{{"type":"Secured","summary":{summary}}}"#),
        Event::SaslAttemptFailed {
            mechanism,
            condition,
            text,
            next,
        } => format!(
            r#"{{"type":"SaslAttemptFailed","summary":{summary},"mechanism":{},"condition":{},"text":{},"next":{}}}"#,
            string(mechanism.as_str()),
            string(&condition.to_string()),
            optional(text.as_deref()),
            optional(next.map(xmpp_stream::Mechanism::as_str)),
        ),
        Event::Authenticated { jid, mechanism } => format!(
            r#"{{"type":"Authenticated","summary":{summary},"jid":{},"mechanism":{}}}"#,
            string(jid.as_str()),
            string(mechanism.as_str()),
        ),
        Event::Negotiated {
            jid,
            extra_features,
        } => {
            let extra: Vec<String> = extra_features.iter().map(|e| string(&xml(e))).collect();
            format!(
                r#"{{"type":"Negotiated","summary":{summary},"jid":{},"extra_features":[{}]}}"#,
                string(jid.as_str()),
                extra.join(","),
            )
        }
        Event::Stanza(stanza) => format!(
            r#"{{"type":"Stanza","summary":{summary},"name":{},"from":{},"to":{},"xml":{}}}"#,
            string(stanza.name()),
            optional(stanza.attr("from")),
            optional(stanza.attr("to")),
            string(&xml(stanza)),
        ),
        Event::Nonza(element) => format!(
            r#"{{"type":"Nonza","summary":{summary},"name":{},"xml":{}}}"#,
            string(element.name()),
            string(&xml(element)),
        ),
        Event::Redirect { to } => format!(
            r#"{{"type":"Redirect","summary":{summary},"host":{},"port":{}}}"#,
            string(&to.host),
            to.port
                .map_or_else(|| "null".to_owned(), |port| port.to_string()),
        ),
        Event::Closed { .. } => {
            let full = event_summary(event);
            let reason = full.strip_prefix("Closed ").unwrap_or(&full);
            format!(
                r#"{{"type":"Closed","summary":{summary},"reason":{}}}"#,
                string(reason)
            )
        }
        _ => format!(r#"{{"type":"Other","summary":{summary}}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(string("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
        assert_eq!(string(""), r#""""#);
    }

    #[test]
    fn sasl_attempt_failures_carry_their_fields() {
        let json = event(&Event::SaslAttemptFailed {
            mechanism: xmpp_stream::Mechanism::ScramSha512,
            condition: xmpp_stream::SaslCondition::InvalidMechanism,
            text: None,
            next: Some(xmpp_stream::Mechanism::ScramSha256),
        });
        assert_eq!(
            json,
            r#"{"type":"SaslAttemptFailed","summary":"SaslAttemptFailed SCRAM-SHA-512 invalid-mechanism next SCRAM-SHA-256","mechanism":"SCRAM-SHA-512","condition":"invalid-mechanism","text":null,"next":"SCRAM-SHA-256"}"#
        );
    }

    #[test]
    fn closed_carries_the_reason_without_prefix() {
        let json = event(&Event::Closed {
            reason: xmpp_stream::CloseReason::Graceful,
        });
        assert_eq!(
            json,
            r#"{"type":"Closed","summary":"Closed Graceful","reason":"Graceful"}"#
        );
    }

    #[test]
    fn stanzas_carry_their_xml() {
        let stanza: Element =
            "<message xmlns='jabber:client' to='a@b' id='1'><body>x&lt;</body></message>"
                .parse()
                .unwrap();
        let json = event(&Event::Stanza(stanza));
        assert!(json.starts_with(r#"{"type":"Stanza","summary":"Stanza message 1","name":"message","from":null,"to":"a@b","xml":"#), "{json}");
        assert!(json.contains("x&lt;</body>"), "{json}");
    }
}
