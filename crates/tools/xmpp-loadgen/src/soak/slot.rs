//! The life of one slot: its login, the storm (its messages, its mid-stanza kill and
//! reconnects, unexpected drops), and its close. With stream management: the cut mid-stanza
//! or mid-ack, the resumption that follows, and at the end either a close or a hang-up that
//! leaves the server a detached session.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant as TokioInstant;
use xmpp_stream::{Event, Output, SmState};

use super::kill::hang_up;
use super::login::Live;
use super::shared::{Phase, SENDER_RESET, SENT, Shared};
use super::{HangUp, Kill, KillPoint, Plan, StormKill};
use crate::session::{Conn, message};

/// Write every queued output of the machine; hand stanzas to the accounting.
async fn drain(shared: &Shared, slot: usize, live: &mut Live) -> Result<(), String> {
    while let Some(output) = live.machine.poll_output() {
        match output {
            Output::Transmit(bytes) => live
                .conn
                .write_all(&bytes)
                .await
                .map_err(|e| format!("write: {e}"))?,
            Output::Event(Event::Stanza(stanza)) => shared.on_stanza(slot, &stanza),
            Output::Event(Event::Closed { reason }) => return Err(format!("closed: {reason:?}")),
            _ => {}
        }
    }
    Ok(())
}

pub(super) async fn run_slot(shared: Arc<Shared>, slot: usize) {
    let plan = shared.plans[slot].clone();
    let mut attempt = 0;
    let permit = shared.permits.acquire().await;
    let live = shared
        .login(slot, &mut attempt, plan.negotiation_kill, None)
        .await;
    drop(permit);
    let live = match live {
        Ok(live) => live,
        Err(why) => {
            shared
                .counters
                .login_failures
                .fetch_add(1, Ordering::Relaxed);
            shared.stable[slot].store(false, Ordering::Relaxed);
            shared.fail(slot, &format!("login: {why}"));
            shared.done_sending.fetch_add(1, Ordering::Relaxed);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            shared.wake.notify_one();
            return;
        }
    };
    shared.settled.fetch_add(1, Ordering::Relaxed);
    shared.wake.notify_one();
    if let Err(why) = Box::pin(hold(&shared, slot, &plan, live, &mut attempt)).await {
        shared.fail(slot, &why);
    }
}

/// The life of a logged-in slot: storm, kills and reconnects, close.
async fn hold(
    shared: &Shared,
    slot: usize,
    plan: &Plan,
    mut live: Box<Live>,
    attempt: &mut u64,
) -> Result<(), String> {
    let per = shared.options.messages_per_session;
    let mut phase_rx = shared.phase.subscribe();
    let mut next = 0usize;
    let mut storm_kill = plan.storm_kill;
    // Messages written on the current connection (marked if it is reset).
    let mut on_this_conn: Vec<usize> = Vec::new();
    let mut done_sending = false;
    let sm = shared.options.sm.is_some();
    loop {
        let phase = *phase_rx.borrow_and_update();
        if phase == Phase::Close {
            if !done_sending {
                shared.done_sending.fetch_add(1, Ordering::Relaxed);
            }
            if sm && plan.abandon {
                return Box::pin(abandon(shared, slot, live)).await;
            }
            return Box::pin(close(shared, slot, live)).await;
        }
        let storm_start = (phase >= Phase::Storm)
            .then(|| shared.storm_start.get().copied())
            .flatten();
        let at = |fraction: f64| storm_start.map(|s| s + shared.options.storm.mul_f64(fraction));
        if next >= per && !done_sending {
            done_sending = true;
            shared.done_sending.fetch_add(1, Ordering::Relaxed);
        }
        let send_at = plan.offsets.get(next).and_then(|&f| at(f));
        let kill_at = storm_kill.and_then(|k| at(k.at));
        let machine_at = live
            .machine
            .poll_timeout()
            .map(|t| TokioInstant::from_std(shared.epoch) + Duration::from_millis(t.as_millis()));
        let wake = [send_at, kill_at, machine_at].into_iter().flatten().min();
        let timer = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut woke = false;
        tokio::select! {
            read = live.conn.read(&mut live.buf) => match read {
                Ok(n) if n > 0 => {
                    let _ = live.machine.handle_input(shared.now(), &live.buf[..n]);
                }
                Ok(_) | Err(_) => {
                    let state = live.machine.sm_state();
                    live = unexpected_drop(shared, slot, "connection ended by the server", attempt, state).await?;
                    on_this_conn.clear();
                    continue;
                }
            },
            () = timer => woke = true,
            _ = phase_rx.changed() => {}
        }
        if woke {
            let now = TokioInstant::now();
            if let (Some(kill), Some(when)) = (storm_kill, kill_at)
                && when <= now
            {
                storm_kill = None;
                if sm {
                    live = Box::pin(sm_cut(shared, slot, plan, live, kill, &mut next, attempt))
                        .await?;
                    continue;
                }
                let (new_live, confirmed) =
                    Box::pin(stanza_kill(shared, slot, plan, live, kill, attempt)).await?;
                live = new_live;
                // Unconfirmed: the server may not have read our last messages (a reset, or a
                // close it did not answer in time): they are not counted.
                if !confirmed {
                    for &seq in &on_this_conn {
                        shared.status[seq].store(SENDER_RESET, Ordering::Relaxed);
                    }
                }
                on_this_conn.clear();
                continue;
            }
            if send_at.is_some_and(|when| when <= now) {
                let seq = slot * per + next;
                let to = plan.recipients[next] as usize;
                next += 1;
                let stanza = message(&shared.jid(to), &seq.to_string());
                if live.machine.send_stanza(shared.now(), &stanza).is_err() {
                    shared
                        .counters
                        .send_failures
                        .fetch_add(1, Ordering::Relaxed);
                } else if sm {
                    // Handed to a managed session: it goes out across any cut from now on.
                    shared.status[seq].store(SENT, Ordering::Relaxed);
                } else if let Err(why) = drain(shared, slot, &mut live).await {
                    live = unexpected_drop(shared, slot, &why, attempt, None).await?;
                    on_this_conn.clear();
                    continue;
                } else {
                    shared.status[seq].store(SENT, Ordering::Relaxed);
                    on_this_conn.push(seq);
                }
            }
            if machine_at.is_some_and(|when| when <= now) {
                live.machine.handle_timeout(shared.now());
            }
        }
        if let Err(why) = drain(shared, slot, &mut live).await {
            let state = live.machine.sm_state();
            live = unexpected_drop(shared, slot, &why, attempt, state).await?;
            on_this_conn.clear();
        }
    }
}

/// The server ended a session we did not kill: count it, mark the slot, log in again
/// (resuming `resume`, with stream management).
async fn unexpected_drop(
    shared: &Shared,
    slot: usize,
    why: &str,
    attempt: &mut u64,
    resume: Option<SmState>,
) -> Result<Box<Live>, String> {
    shared
        .counters
        .unexpected_drops
        .fetch_add(1, Ordering::Relaxed);
    shared.stable[slot].store(false, Ordering::Relaxed);
    shared.fail(slot, &format!("unexpected drop: {why}"));
    let live = shared.login(slot, attempt, None, resume).await;
    if live.is_ok() {
        shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    live
}

/// Write half a stanza, hang up, log in again (maybe killed once more on the way); also
/// whether the server confirmed the hang-up (see [`hang_up`]).
async fn stanza_kill(
    shared: &Shared,
    slot: usize,
    plan: &Plan,
    mut live: Box<Live>,
    kill: StormKill,
    attempt: &mut u64,
) -> Result<(Box<Live>, bool), String> {
    let to = plan.recipients.first().map_or(slot, |&r| r as usize);
    // Not a sequence number: this one never arrives whole.
    let doomed = message(&shared.jid(to), &format!("half-of-{slot}"));
    live.machine
        .send_stanza(shared.now(), &doomed)
        .map_err(|e| format!("send: {e}"))?;
    let mut bytes = Vec::new();
    while let Some(output) = live.machine.poll_output() {
        if let Output::Transmit(b) = output {
            bytes.extend_from_slice(&b);
        }
    }
    let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
    live.conn
        .write_all(half)
        .await
        .map_err(|e| format!("write half a stanza: {e}"))?;
    let Live { conn, .. } = *live;
    let confirmed = storm_hang_up(shared, conn, KillPoint::MidStanza, kill.hang_up).await;
    let live = reconnect(shared, slot, kill, attempt, None).await?;
    Ok((live, confirmed))
}

/// Log in again after the storm kill `kill` (itself killed first when the plan says so),
/// resuming `resume` with stream management.
async fn reconnect(
    shared: &Shared,
    slot: usize,
    kill: StormKill,
    attempt: &mut u64,
    resume: Option<SmState>,
) -> Result<Box<Live>, String> {
    match shared
        .login(slot, attempt, kill.reconnect_kill, resume)
        .await
    {
        Ok(live) => {
            shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            Ok(live)
        }
        Err(why) => {
            shared
                .counters
                .login_failures
                .fetch_add(1, Ordering::Relaxed);
            Err(format!("reconnect: {why}"))
        }
    }
}

/// Stream management: cut the connection mid-stanza (half of the next message written) or
/// mid-ack (the next message and its `<r/>` written, the `<a/>` not read), then resume on a
/// new connection. The message counts from the moment the session took it: resumption must
/// deliver it exactly once, whatever the server read before the cut.
async fn sm_cut(
    shared: &Shared,
    slot: usize,
    plan: &Plan,
    mut live: Box<Live>,
    kill: StormKill,
    next: &mut usize,
    attempt: &mut u64,
) -> Result<Box<Live>, String> {
    let per = shared.options.messages_per_session;
    if *next < per {
        let seq = slot * per + *next;
        let to = plan.recipients[*next] as usize;
        *next += 1;
        let stanza = message(&shared.jid(to), &seq.to_string());
        live.machine
            .send_stanza(shared.now(), &stanza)
            .map_err(|e| format!("send: {e}"))?;
        shared.status[seq].store(SENT, Ordering::Relaxed);
    }
    let mut bytes = Vec::new();
    while let Some(output) = live.machine.poll_output() {
        match output {
            Output::Transmit(b) => bytes.extend_from_slice(&b),
            Output::Event(Event::Stanza(stanza)) => shared.on_stanza(slot, &stanza),
            _ => {}
        }
    }
    let upto = if kill.point == KillPoint::MidStanza {
        bytes.len() / 2
    } else {
        bytes.len()
    };
    // A write error is a cut too (the stanza stays unacknowledged either way).
    let _ = live.conn.write_all(&bytes[..upto]).await;
    let state = live.machine.sm_state();
    let Live { conn, .. } = *live;
    storm_hang_up(shared, conn, kill.point, kill.hang_up).await;
    reconnect(shared, slot, kill, attempt, state).await
}

/// Count a storm kill at `point` and hang up `how`; whether the server confirmed the
/// hang-up (see [`hang_up`]).
async fn storm_hang_up(shared: &Shared, conn: Conn, point: KillPoint, how: HangUp) -> bool {
    shared.count_kill(Kill {
        point,
        hang_up: how,
    });
    let confirmed = hang_up(conn, how, shared.options.login_timeout).await;
    if how == HangUp::Close && !confirmed {
        shared
            .counters
            .unconfirmed_closes
            .fetch_add(1, Ordering::Relaxed);
    }
    confirmed
}

/// Stream management, at the end: acknowledge everything received, then hang up without
/// closing the stream; the server keeps the session detached for its resumption window.
async fn abandon(shared: &Shared, slot: usize, mut live: Box<Live>) -> Result<(), String> {
    drain(shared, slot, &mut live).await?;
    let state = live
        .machine
        .sm_state()
        .ok_or("no stream-management state to abandon")?;
    // XEP-0198 §4 lets either side send `<a/>` unasked; the machine sends it only to answer
    // an `<r/>`, so it is written here: the detached session then holds no unacknowledged
    // message that its expiry would move to offline storage.
    let ack = format!("<a xmlns='urn:xmpp:sm:3' h='{}'/>", state.handled);
    live.conn
        .write_all(ack.as_bytes())
        .await
        .map_err(|e| format!("write <a/>: {e}"))?;
    let Live { conn, .. } = *live;
    if hang_up(conn, HangUp::Close, shared.options.login_timeout).await {
        shared.counters.abandoned.fetch_add(1, Ordering::Relaxed);
        Ok(())
    } else {
        Err("the server did not hang up after our half-close".to_owned())
    }
}

/// End the stream and wait for the server's end.
async fn close(shared: &Shared, slot: usize, mut live: Box<Live>) -> Result<(), String> {
    let _ = live.machine.close(shared.now());
    drain(shared, slot, &mut live).await?;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match live.conn.read(&mut live.buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    let _ = live.machine.handle_input(shared.now(), &live.buf[..n]);
                    while let Some(output) = live.machine.poll_output() {
                        match output {
                            Output::Event(Event::Closed { .. }) => return true,
                            Output::Event(Event::Stanza(stanza)) => shared.on_stanza(slot, &stanza),
                            _ => {}
                        }
                    }
                }
            }
        }
    })
    .await;
    live.conn.shutdown().await;
    if ended == Ok(true) {
        shared.counters.clean_closes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    } else {
        Err("the server did not end the stream".to_owned())
    }
}
