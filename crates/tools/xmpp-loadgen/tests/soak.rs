//! The soak against the tokio example server (issue #8, "Load").
//!
//! This test process runs `xmpp-server` in-process (its own thread and tokio
//! runtime) under a counting global allocator, so the server's live heap is exact; the load
//! comes from the `soak` binary in a separate process (each process may hold at most 20 000
//! descriptors here). Checked: every session negotiated apart from the attempts killed on
//! purpose, zero lost messages to sessions that stayed up, no duplicate or misdelivered
//! message, every session closed cleanly; then, once the load generator is gone, the server
//! holds zero sessions, zero connections, no offline message and only its timer task, its
//! live heap is back to the baseline within `common::TOLERANCE_FIXED` + `common::TOLERANCE_PER_SESSION`
//! per session, and a fresh login still works.
//!
//! `XMPP_SOAK_SESSIONS=10000 cargo test --release -p xmpp-loadgen --test soak --
//! --nocapture` runs the full size (the default is sized for the CI budget, see
//! [`DEFAULT_SESSIONS`]).
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::{Harness, live_heap, mib, rss_kib};

/// Sessions when `XMPP_SOAK_SESSIONS` is not set: sized so that the whole test stays under
/// about two minutes on the 2-core CI machine in the debug test profile (see the README).
const DEFAULT_SESSIONS: usize = 4000;

#[test]
fn soak_against_the_example_server() {
    let sessions = common::sessions_from_env("XMPP_SOAK_SESSIONS", DEFAULT_SESSIONS);
    let mut harness = Harness::start(sessions, |_| {});
    let baseline = harness.baseline;
    let args = harness.args(sessions);
    let mut connected = None;
    let run = harness.run(&args, |server, line| {
        if line.starts_with("soak: connected") {
            let stats = server.stats().unwrap_or_default();
            connected = Some((live_heap(), rss_kib(), stats));
        }
    });
    let (summary, get) = (&run.summary, |key: &str| run.get(key));
    let (peak, peak_rss, soak_time) = (run.peak, run.peak_rss, run.time);
    assert_eq!(get("sessions"), sessions as u64);
    assert_eq!(get("login_failures"), 0, "{summary}");
    assert_eq!(get("lost"), 0, "{summary}");
    assert_eq!(get("duplicates"), 0, "{summary}");
    assert_eq!(get("misdelivered"), 0, "{summary}");
    assert_eq!(get("unexpected_drops"), 0, "{summary}");
    assert_eq!(get("clean_closes"), sessions as u64, "{summary}");
    assert!(get("killed") > 0, "no connection was killed: {summary}");
    assert!(get("counted") > 0 && get("counted") == get("counted_received"));
    let (connected_heap, connected_rss, connected_stats) =
        connected.expect("the soak reported its sessions connected");
    assert!(
        connected_stats.sessions >= sessions,
        "server held {} sessions with all {sessions} connected",
        connected_stats.sessions
    );

    // Everything the clients left must go: sessions, connections, offline messages, tasks.
    let after_stats = harness.wait_for(Duration::from_secs(30), |s| {
        s.sessions == 0 && s.connections == 0 && s.offline_messages == 0 && s.tasks == 1
    });
    std::thread::sleep(Duration::from_millis(200));
    let after = live_heap();
    let rss_after = rss_kib();
    let tolerance = common::tolerance(sessions);
    #[allow(clippy::cast_precision_loss)]
    let per_session = (connected_heap - baseline) as f64 / sessions as f64 / 1024.0;
    println!(
        "soak figures: {sessions} sessions; setup {:.1} s; soak process {:.1} s; server heap: \
         baseline {}, all connected {} ({per_session:.1} KiB per session), peak {}, after {} \
         (after - baseline = {} bytes, tolerance {tolerance}); server process RSS: baseline \
         {} KiB, connected {connected_rss} KiB, peak {peak_rss} KiB, after \
         {rss_after} KiB; server at the end: {after_stats:?}",
        harness.setup.as_secs_f64(),
        soak_time.as_secs_f64(),
        mib(baseline),
        mib(connected_heap),
        mib(peak),
        mib(after),
        after - baseline,
        harness.rss_baseline,
    );
    harness.assert_emptied(&after_stats, after, sessions);
    assert!(
        peak > baseline + 100 * tolerance,
        "the load did not show in the heap"
    );

    // The server still serves: a fresh login (and three messages to itself) works.
    harness.probe(&args);
    harness.stop();
}
