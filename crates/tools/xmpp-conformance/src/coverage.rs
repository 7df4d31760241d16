//! Which rows of the negotiation table the checker cannot check, and why. Every other row
//! has at least one case in [`xmpp_stream::conformance::CASES`] (a test proves the two
//! lists cover the table exactly).

const CLIENT_SIDE: &str = "a rule of the initiating side (client or component): the checker initiates, the server never applies it";
const S2S_OUT: &str = "the server's initiating server-to-server end: checking it needs the server to connect out to the checker (a route or DNS to it), not done yet";
const S2S_AUTH: &str = "needs a server-to-server stream past TLS and authentication (a certificate the server trusts, or dialback it verifies by connecting back to the checker): the checker authenticates only by SASL EXTERNAL and answers no dialback or XEP-0288 request";

/// `(rule name, why no case checks it from outside)`.
pub const NOT_CHECKABLE: &[(&str, &str)] = &[
    ("header.from-server", CLIENT_SIDE),
    ("features.choose", CLIENT_SIDE),
    ("features.expected", CLIENT_SIDE),
    ("starttls.proceed", CLIENT_SIDE),
    ("starttls.failure", CLIENT_SIDE),
    ("sasl.challenge", CLIENT_SIDE),
    ("sasl.success", CLIENT_SIDE),
    ("sasl.failure", CLIENT_SIDE),
    ("sasl.aborted", CLIENT_SIDE),
    ("sasl.crossed-abort", CLIENT_SIDE),
    ("bind.reply", CLIENT_SIDE),
    ("register.reply", CLIENT_SIDE),
    ("established.stanza", CLIENT_SIDE),
    ("closing.stanza", CLIENT_SIDE),
    ("component.header", CLIENT_SIDE),
    ("component.accepted", CLIENT_SIDE),
    (
        "component.second-handshake",
        "XEP-0114 does not say what a second <handshake/> gets: the table's unsupported-stanza-type is our reading, not a requirement to hold other servers to",
    ),
    ("s2s.header-from-receiving", S2S_OUT),
    ("s2s.features", S2S_OUT),
    ("s2s.external-success", S2S_OUT),
    ("s2s.external-failure", S2S_OUT),
    ("s2s.dialback-answer", S2S_OUT),
    ("s2s.piggyback-answer", S2S_OUT),
    ("s2s.no-bidi", S2S_OUT),
    ("s2s.dialback-request", S2S_AUTH),
    ("s2s.dialback-piggyback", S2S_AUTH),
    ("closing.s2s-ignore", S2S_OUT),
    ("s2s.bidi-stanza", S2S_OUT),
    ("s2s.bidi-request", S2S_AUTH),
    ("s2s.bidi-dialback", S2S_AUTH),
    ("sm.resumed", CLIENT_SIDE),
    ("sm.resume-failed", CLIENT_SIDE),
    ("sm.enabled", CLIENT_SIDE),
    ("sm.refused", CLIENT_SIDE),
    (
        "sm.misplaced",
        "XEP-0198 does not say what a server answers to <resume/> after binding or to <enabled/> from a client: the table's choice is ours",
    ),
    (
        "ping.iq",
        "the server's side of this row consumes answers to its own XEP-0199 pings, sent after minutes of silence: too slow for a bounded case",
    ),
    (
        "established.nonza",
        "what a server does with a nonza (XEP-0198 <r/>, ...) is its host's choice, not RFC 6120's",
    ),
    (
        "closing.ignore",
        "bytes after the server closed its stream are dropped: nothing is observable from outside",
    ),
];

#[cfg(test)]
mod tests {
    use super::NOT_CHECKABLE;
    use xmpp_stream::conformance::CASES;
    use xmpp_stream::rules::RULES;

    #[test]
    fn case_numbers_and_names_are_unique() {
        for (i, case) in CASES.iter().enumerate() {
            for other in &CASES[i + 1..] {
                assert_ne!(
                    case.id, other.id,
                    "{} and {} share a number",
                    case.name, other.name
                );
                assert_ne!(case.name, other.name, "two cases are named {}", case.name);
            }
        }
    }

    #[test]
    fn every_rule_is_a_case_or_not_checkable_with_a_reason() {
        for rule in RULES {
            let cases = CASES.iter().filter(|c| c.rule == Some(rule.name)).count();
            let excused = NOT_CHECKABLE
                .iter()
                .filter(|(r, _)| *r == rule.name)
                .count();
            assert!(
                (cases > 0) != (excused > 0),
                "rule {}: {cases} case(s), listed {excused} time(s) as not checkable: \
                 give it a case in xmpp_stream::conformance or a reason here, not both",
                rule.name
            );
            assert!(excused <= 1, "{} listed twice", rule.name);
        }
        for (name, reason) in NOT_CHECKABLE {
            assert!(RULES.iter().any(|r| r.name == *name), "no rule {name}");
            assert!(!reason.is_empty());
        }
    }
}
