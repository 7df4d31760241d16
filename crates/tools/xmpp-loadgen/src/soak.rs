//! The soak: N concurrent TLS c2s sessions on loopback, connections killed on purpose at
//! every negotiation step and in the middle of a stanza, a message storm between the
//! sessions, and an exact account of every message addressed to a session that stayed up.
//!
//! Every choice is drawn up front from one seeded generator ([`Plan`]s: which slots are
//! killed, where, how, to whom each message goes and when in the storm it leaves), so a
//! run is reproducible in its choices; only the interleaving depends on the machine.
//!
//! Phases, driven by [`soak`]:
//!
//! 1. **Connect**: every slot `i` logs in as `{prefix}{i}@{domain}/soak` (STARTTLS, SASL,
//!    bind, initial presence), at most `concurrency` logins in flight. A slot picked for a
//!    negotiation kill first opens a connection that it abandons at its kill point (after
//!    its stream header, during the TLS handshake, after the TLS handshake, or between the
//!    server's SCRAM challenge and its answer), by a clean close or a reset, then logs in.
//! 2. **Storm**: each slot sends `messages_per_session` chat messages, each to a random
//!    other slot at a random time in the storm window; the body is the message's sequence
//!    number (unique in the run). A slot picked for a stanza kill writes half a stanza at a
//!    random point of the storm and hangs up (half-close and wait for the server, or
//!    reset), reconnects (that reconnect itself killed mid-negotiation one time in two) and
//!    sends the rest of its messages.
//! 3. **Drain**: wait until every counted message arrived (or `drain_timeout`).
//! 4. **Close**: every session ends its stream and waits for the server's end.
//!
//! A message is *counted* when its recipient stayed connected for the whole run (it was
//! never killed and never dropped) and it was written in full on a connection that either
//! stayed up or was half-closed with the server hanging up in turn (a reset may discard bytes
//! the server had not read yet, which is the point of a reset; and a session replaced by our
//! reconnect before the server read its last bytes loses them by design, so a half-close
//! waits for the server). Every counted message must arrive exactly once:
//! [`SoakReport::lost`] lists the ones that did not.
//!
//! **Stream management** ([`SoakOptions::sm`], `soak --sm`): every session enables XEP-0198
//! with resumption (asking for a short window, [`SmSoak::window`]) and asks for an
//! acknowledgement after every stanza. A slot picked for a storm kill is cut either
//! mid-stanza (half of its next message written) or mid-ack (its next message and the `<r/>`
//! after it written, the server's `<a/>` not read), by a reset or a half-close; its reconnect
//! resumes the session, and one time in two that resumption is cut too: right after
//! `<resume/>` went out ([`KillPoint::MidResume`]) or right after `<resumed/>` arrived, before
//! what the server re-sent with it was taken ([`KillPoint::AfterResumed`]); then the slot
//! resumes again (from the older state when `<resumed/>` never arrived). Every message
//! handed to a session counts, whoever was cut and however: resumption must deliver each
//! exactly once (a failed resumption re-sends what the machine reports as not delivered and
//! is counted in [`SoakReport::resume_failures`]). At the end a share of the slots
//! ([`SmSoak::abandon_rate`]) acknowledge everything and hang up without closing their
//! stream, leaving the server detached sessions that its resumption window must end.
//!
//! In both modes, messages from one slot to another must arrive in the order sent
//! ([`SoakReport::out_of_order`]).
//!
//! One concern per file under `soak/`: `options` (what to run, and its bounds), `plan` (the
//! seeded choices), `shared` (the state the slots share, and the message ledger), `login` (one
//! connection's negotiation and its kill points), `kill` (hanging up on purpose), `slot` (one
//! slot's life) and `report` (the tally); this file drives the phases.

mod kill;
mod login;
mod options;
mod plan;
mod report;
mod shared;
mod slot;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as StdInstant};

use tokio::time::Instant as TokioInstant;

use crate::run::{Error, connector};

pub use options::{
    MAX_DURATION, MAX_MESSAGES, RESOURCE, SmSoak, SoakOptions, SoakTarget, check, raise_fd_limit,
};
pub use plan::{HangUp, Kill, KillPoint, Plan, StormKill, plans};
use report::account;
pub use report::{Lost, SoakReport};
use shared::{Phase, Shared};
use slot::run_slot;

/// Runs the soak against `target`. Must run inside a tokio runtime with time and I/O.
pub async fn soak(target: &SoakTarget, options: SoakOptions) -> Result<SoakReport, Error> {
    check(target, &options)?;
    let tls = connector(&target.trust_pem)?;
    let shared = Arc::new(Shared::new(options, target.addr, tls));
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..shared.options.sessions {
        tasks.spawn(run_slot(shared.clone(), slot));
    }
    let mut times = Times::default();
    let timeout = shared.options.timeout;
    let aborted = match tokio::time::timeout(timeout, coordinate(&shared, &mut times)).await {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(_) => Some(format!(
            "global timeout of {} s reached in the {:?} phase",
            timeout.as_secs(),
            *shared.phase.borrow()
        )),
    };
    // The figures are taken before the sessions close: arrivals after this do not count.
    let mut report = account(&shared);
    let close_start = StdInstant::now();
    let _ = shared.phase.send(Phase::Close);
    shared.progress("closing");
    let join = async { while tasks.join_next().await.is_some() {} };
    let aborted = if tokio::time::timeout(Duration::from_secs(60), join)
        .await
        .is_err()
    {
        tasks.abort_all();
        aborted.or_else(|| Some("sessions did not close within 60 s".to_owned()))
    } else {
        aborted
    };
    report.close_time = close_start.elapsed();
    report.connect_time = times.connect;
    report.storm_time = times.storm;
    report.drain_time = times.drain;
    report.total_time = shared.epoch.elapsed();
    report.clean_closes = shared.counters.clean_closes.load(Ordering::Relaxed);
    report.abandoned = shared.counters.abandoned.load(Ordering::Relaxed);
    report.failures = shared
        .failures
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    report.aborted = aborted;
    Ok(report)
}

#[derive(Default)]
struct Times {
    connect: Duration,
    storm: Duration,
    drain: Duration,
}

async fn coordinate(shared: &Shared, times: &mut Times) -> Result<(), String> {
    let n = shared.options.sessions;
    let start = StdInstant::now();
    while shared.settled.load(Ordering::Relaxed) < n {
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.wake.notified()).await;
    }
    times.connect = start.elapsed();
    let logins = shared.counters.logins.load(Ordering::Relaxed);
    shared.progress(&format!(
        "connected sessions={n} logins={logins} failures={}",
        shared.counters.login_failures.load(Ordering::Relaxed)
    ));
    let storm = shared.options.storm;
    let storm_start = TokioInstant::now() + Duration::from_millis(50);
    let _ = shared.storm_start.set(storm_start);
    let _ = shared.phase.send(Phase::Storm);
    tokio::time::sleep_until(storm_start + storm).await;
    times.storm = storm;
    let _ = shared.phase.send(Phase::Drain);
    shared.progress("storm-end");
    let drain_start = StdInstant::now();
    let deadline = TokioInstant::now() + shared.options.drain_timeout;
    loop {
        let all_sent = shared.done_sending.load(Ordering::Relaxed) >= n;
        if all_sent && shared.outstanding() == 0 {
            break;
        }
        if TokioInstant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.drain = drain_start.elapsed();
    // A moment for duplicates and late uncounted arrivals to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.progress("drained");
    Ok(())
}
