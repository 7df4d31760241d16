//! Every row of `testdata/vectors/precis.tsv` (the precis_i18n 1.1.2 golden file) for the
//! profiles this crate implements must agree with our enforcement.
//!
//! Deliberate divergences are listed in `KNOWN_DIVERGENCES` (and in the crate docs) with their
//! reason; the test fails if one of them starts agreeing, so the list cannot go stale.

mod common;

use std::borrow::Cow;

use xmpp_jid::PrecisError;
use xmpp_jid::precis;

type Profile = fn(&str) -> Result<Cow<'_, str>, PrecisError>;

/// (profile, input as escaped in the file, why we differ).
const KNOWN_DIVERGENCES: &[(&str, &str, &str)] = &[];

fn profile(name: &str) -> Option<Profile> {
    Some(match name {
        "UsernameCaseMapped" => precis::username_case_mapped,
        "UsernameCasePreserved" => precis::username_case_preserved,
        "OpaqueString" => precis::opaque_string,
        "NicknameCaseMapped" => precis::nickname_case_mapped,
        "NicknameCasePreserved" => precis::nickname_case_preserved,
        _ => return None,
    })
}

#[test]
fn precis_i18n_golden_rows_agree() {
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for (line, f) in common::rows("precis.tsv") {
        let (name, input, expected) = (&f[0], &f[1], &f[2]);
        let note = f.get(3).map_or("", String::as_str);
        let Some(enforce) = profile(name) else {
            continue;
        };
        let decoded = common::unescape(input);
        let got = enforce(&decoded);
        let agrees = match (expected.as_str(), &got) {
            ("ERROR", Err(_)) => true,
            ("ERROR", Ok(_)) => false,
            (exp, Ok(out)) => common::unescape(exp) == **out,
            (_, Err(_)) => false,
        };
        let known = KNOWN_DIVERGENCES
            .iter()
            .find(|(p, i, _)| p == name && i == input);
        match (agrees, known) {
            (true, None) | (false, Some(_)) => {}
            (true, Some(_)) => failures.push(format!(
                "line {line}: {name} {input:?} is listed as a divergence but now agrees"
            )),
            (false, None) => failures.push(format!(
                "line {line}: {name} {input:?}: expected {expected:?} ({note}), got {got:?}"
            )),
        }
        *checked.entry(name.clone()).or_default() += 1;
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for p in [
        "UsernameCaseMapped",
        "UsernameCasePreserved",
        "OpaqueString",
    ] {
        assert!(
            checked.get(p).copied().unwrap_or(0) > 300,
            "too few {p} rows: {checked:?}"
        );
    }
}
