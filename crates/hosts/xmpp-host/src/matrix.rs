//! The interop matrix: tests append `peer<TAB>feature<TAB>pass|fail` rows to a file, and
//! [`render`] prints the peer x feature table (`cargo run -p xmpp-host --example matrix`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Where rows go: `$XMPP_MATRIX` if set, else `interop-matrix.tsv` in `$CARGO_TARGET_DIR`
/// if set, else in the workspace's `target/`.
pub fn path() -> PathBuf {
    if let Some(path) = std::env::var_os("XMPP_MATRIX") {
        return PathBuf::from(path);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target"),
            PathBuf::from,
        )
        .join("interop-matrix.tsv")
}

/// Append one pass/fail row.
pub fn record(peer: &str, feature: &str, pass: bool) {
    record_result(peer, feature, if pass { "pass" } else { "fail" });
}

/// Append one row with any result text (`n/a` when the peer does not offer the feature).
pub fn record_result(peer: &str, feature: &str, result: &str) {
    let path = path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(file, "{peer}\t{feature}\t{result}");
    }
}

/// A Markdown table from rows (the latest row for a peer and feature wins).
pub fn render(rows: &str) -> String {
    let mut peers: Vec<&str> = Vec::new();
    let mut features: Vec<&str> = Vec::new();
    let mut cells: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for line in rows.lines() {
        let mut parts = line.split('\t');
        let (Some(peer), Some(feature), Some(result)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !peers.contains(&peer) {
            peers.push(peer);
        }
        if !features.contains(&feature) {
            features.push(feature);
        }
        cells.insert((peer, feature), result);
    }
    let mut out = String::from("| feature |");
    for peer in &peers {
        let _ = write!(out, " {peer} |");
    }
    out.push_str("\n|---|");
    for _ in &peers {
        out.push_str("---|");
    }
    out.push('\n');
    for feature in &features {
        let _ = write!(out, "| {feature} |");
        for peer in &peers {
            let _ = write!(out, " {} |", cells.get(&(*peer, *feature)).unwrap_or(&"-"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_latest_result_per_cell() {
        let rows = "prosody\tbind\tfail\nejabberd\tbind\tpass\nprosody\tbind\tpass\nprosody\tplain\tfail\n";
        let table = super::render(rows);
        assert!(table.contains("| bind | pass | pass |"), "{table}");
        assert!(table.contains("| plain | fail | - |"), "{table}");
        assert!(table.starts_with("| feature | prosody | ejabberd |"));
    }
}
