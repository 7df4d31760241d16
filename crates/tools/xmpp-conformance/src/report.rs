//! The reports: a readable table, JSON for CI, and the side-by-side Markdown of several
//! servers (the README's compliance tables).

use std::fmt::Write as _;

use xmpp_stream::conformance::Case;

use crate::run::{Outcome, Status};

/// Keep a table cell on one line and its pipes literal.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// One line per case: number, section, name, result, and for a failure what was expected
/// and what came instead. A summary line ends it.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>3}  {:<6} {:<28} {:<26} detail",
        "#", "result", "case", "section"
    );
    for o in outcomes {
        let detail = match o.status {
            Status::Pass => String::new(),
            Status::Fail => format!("expected {}; got {}", o.expected, o.received),
            Status::NotApplicable => o.received.clone(),
        };
        let _ = writeln!(
            out,
            "{:>3}  {:<6} {:<28} {:<26} {}",
            o.case.id,
            o.status.label(),
            o.case.name,
            o.case.section,
            cell(&detail)
        );
    }
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let _ = writeln!(
        out,
        "{} passed, {} failed, {} not applicable",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::NotApplicable)
    );
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The outcomes as a JSON array, one object per case.
pub fn json(outcomes: &[Outcome]) -> String {
    let items: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "{{\"id\":{},\"name\":{},\"section\":{},\"rule\":{},\"requires\":{},\"result\":{},\"expected\":{},\"received\":{},\"ms\":{}}}",
                o.case.id,
                json_string(o.case.name),
                json_string(o.case.section),
                o.case.rule.map_or_else(|| "null".to_owned(), json_string),
                json_string(o.case.requires),
                json_string(match o.status {
                    Status::Pass => "pass",
                    Status::Fail => "fail",
                    Status::NotApplicable => "not-applicable",
                }),
                json_string(&o.expected),
                json_string(&o.received),
                o.elapsed.as_millis()
            )
        })
        .collect();
    format!("[\n  {}\n]\n", items.join(",\n  "))
}

/// Several servers side by side: one row per case, one column per server, then a note for
/// every case a server fails (what the RFC requires and what that server does instead).
/// `columns`: (server name, its outcomes in the order of `cases`).
pub fn side_by_side(cases: &[&'static Case], columns: &[(&str, &[Outcome])]) -> String {
    let mut out = String::from("| # | case | section |");
    for (name, _) in columns {
        let _ = write!(out, " {name} |");
    }
    out.push_str("\n|---|---|---|");
    for _ in columns {
        out.push_str("---|");
    }
    out.push('\n');
    let status = |outcomes: &[Outcome], case: &Case| {
        outcomes
            .iter()
            .find(|o| o.case.id == case.id)
            .map(|o| o.status)
    };
    for case in cases {
        let _ = write!(out, "| {} | `{}` | {} |", case.id, case.name, case.section);
        for (_, outcomes) in columns {
            let shown = match status(outcomes, case) {
                Some(Status::Pass) => "pass",
                Some(Status::Fail) => "**fail**",
                Some(Status::NotApplicable) => "n/a",
                None => "not run",
            };
            let _ = write!(out, " {shown} |");
        }
        out.push('\n');
    }
    let mut notes = String::new();
    for case in cases {
        for (name, outcomes) in columns {
            if let Some(o) = outcomes
                .iter()
                .find(|o| o.case.id == case.id && o.status == Status::Fail)
            {
                let received: String = o.received.chars().take(160).collect();
                let _ = writeln!(
                    notes,
                    "- **{name}, case {} `{}`** ({}): {}. Expected {}; got `{}`",
                    case.id,
                    case.name,
                    case.section,
                    case.requires,
                    o.expected,
                    cell(&received).replace('`', "'")
                );
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\nWhere a server departs from the RFC:\n\n");
        out.push_str(&notes);
    }
    out
}
