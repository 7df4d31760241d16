//! The stream-management soak against the tokio example server (issue #18): every session
//! enables XEP-0198 with resumption over TLS on loopback; seeded cuts mid-stanza, mid-ack
//! (a stanza and its `<r/>` written, the `<a/>` not read) and mid-resumption (after
//! `<resume/>` went out and before `<resumed/>`, or right after `<resumed/>`); every cut
//! session resumes. Checked: every message sent arrives exactly once and in order per
//! sender and recipient, every cut session resumed (none fell back to a fresh session);
//! then the sessions abandoned at the end stay detached for their resumption window, and
//! once it passed the server holds nothing (no session, connection, detached session,
//! offline message, task but its timer) and its live heap is back to the baseline within
//! `common::TOLERANCE_FIXED` + `common::TOLERANCE_PER_SESSION` per session.
//!
//! A separate test binary from `soak.rs`: each counts the heap of its own process.
//! `XMPP_SM_SOAK_SESSIONS=3000 cargo test -p xmpp-loadgen --test soak_sm -- --nocapture`
//! runs a larger size (the default is sized for a lean `cargo test`);
//! `XMPP_SM_SOAK_CUT_RATE` sets the share of slots cut during the storm (default 0.3).
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use std::time::{Duration, Instant};

use common::{Harness, live_heap, mib};

/// Sessions when `XMPP_SM_SOAK_SESSIONS` is not set: a few hundred, so that the test takes
/// well under a minute in the debug profile.
const DEFAULT_SESSIONS: usize = 300;

/// The resumption window every session asks for, in seconds: far longer than a reconnect
/// (a cut resumption and the one after it) takes here, so that no window expires during the
/// storm, short enough that the test waits little for the abandoned sessions to expire.
/// Longer at full size, where a loaded server takes seconds per login.
fn window_secs(sessions: usize) -> u64 {
    if sessions > 1000 { 30 } else { 8 }
}

#[test]
fn sm_soak_against_the_example_server() {
    let sessions = common::sessions_from_env("XMPP_SM_SOAK_SESSIONS", DEFAULT_SESSIONS);
    // The server keeps its own 300 s window: the shorter one each client asks for
    // (`<enable max=''/>`) is what it must honour.
    let mut harness = Harness::start(sessions, |_| {});
    let baseline = harness.baseline;
    let window = window_secs(sessions);
    let mut args = harness.args(sessions);
    let storm = if sessions > 1000 { "20" } else { "8" };
    // Each cut costs the server one or two more TLS logins during the storm: at 10 000
    // sessions 30% is more logins per second than the server makes (see the README).
    let cut_rate = std::env::var("XMPP_SM_SOAK_CUT_RATE").unwrap_or_else(|_| "0.3".to_owned());
    for (flag, value) in [
        ("--sm-window", window.to_string()),
        ("--storm", storm.to_owned()),
        ("--stanza-kill-rate", cut_rate),
        ("--negotiation-kill-rate", "0.05".to_owned()),
    ] {
        args.extend([flag.to_owned(), value]);
    }
    args.push("--sm".to_owned());
    let mut at_end = None;
    let run = harness.run(&args, |server, line| {
        if line.starts_with("soak-result") {
            // Printed once every session closed or hung up: the abandoned ones are detached.
            at_end = Some(server.stats().unwrap_or_default());
        }
    });
    let (summary, get) = (&run.summary, |key: &str| run.get(key));
    let (peak, soak_time) = (run.peak, run.time);
    assert_eq!(run.result["sm"], "true");
    for zero in [
        "login_failures",
        "lost",
        "duplicates",
        "misdelivered",
        "out_of_order",
        "unexpected_drops",
        "resume_failures",
    ] {
        assert_eq!(get(zero), 0, "{zero}: {summary}");
    }
    assert_eq!(get("sent"), get("planned"), "{summary}");
    assert_eq!(
        get("counted"),
        get("sent"),
        "every message counts: {summary}"
    );
    assert_eq!(get("counted_received"), get("counted"), "{summary}");
    for kind in [
        "kill_mid_stanza",
        "kill_mid_ack",
        "kill_mid_resume",
        "kill_after_resumed",
    ] {
        assert!(get(kind) > 0, "no {kind}: {summary}");
    }
    // Every storm cut ends in exactly one resumption (a cut resumption is tried again).
    assert_eq!(
        get("resumptions"),
        get("kill_mid_stanza") + get("kill_mid_ack"),
        "{summary}"
    );
    let abandoned = get("abandoned");
    assert!(abandoned > 0, "{summary}");
    assert_eq!(get("clean_closes") + abandoned, sessions as u64);
    let at_end = at_end.unwrap();
    assert_eq!(
        at_end.detached as u64, abandoned,
        "sessions detached when the load generator finished: {at_end:?}"
    );

    // The abandoned sessions expire after their window; then everything must be gone.
    let expired = Instant::now();
    let after_stats = harness.wait_for(Duration::from_secs(window + 30), |s| {
        s.sessions == 0
            && s.connections == 0
            && s.detached == 0
            && s.offline_messages == 0
            && s.tasks == 1
    });
    let waited = expired.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let after = live_heap();
    let tolerance = common::tolerance(sessions);
    println!(
        "sm soak figures: {sessions} sessions; setup {:.1} s; soak process {:.1} s; cuts: \
         mid-stanza {}, mid-ack {}, mid-resume {}, after-resumed {}; {} resumptions ({} \
         stanzas re-sent by clients), {} failed; {} messages, lost {}, duplicated {}, out of \
         order {}; {abandoned} sessions abandoned, detached at the end {}; server heap: \
         baseline {}, peak {}, after the windows expired ({:.1} s later) {} (after - baseline \
         = {} bytes, tolerance {tolerance}); server at the end: {after_stats:?}",
        harness.setup.as_secs_f64(),
        soak_time.as_secs_f64(),
        get("kill_mid_stanza"),
        get("kill_mid_ack"),
        get("kill_mid_resume"),
        get("kill_after_resumed"),
        get("resumptions"),
        get("resent"),
        get("resume_failures"),
        get("counted"),
        get("lost"),
        get("duplicates"),
        get("out_of_order"),
        at_end.detached,
        mib(baseline),
        mib(peak),
        waited.as_secs_f64(),
        mib(after),
        after - baseline,
    );
    harness.assert_emptied(&after_stats, after, sessions);
    assert!(
        peak > baseline + 4096 * i64::try_from(sessions).unwrap(),
        "the load did not show in the heap"
    );
    harness.probe(&harness.args(sessions));
    harness.stop();
}
