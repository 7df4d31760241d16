//! XEP-0198 stream management, both roles: enabling, acknowledgements, resumption. The
//! counters and queue are [`crate::sm::Sm`]; these handlers are what the `sm.*` rows of the
//! negotiation table run, plus the few hooks the machine calls when a stanza is sent, when
//! the host takes one, and when a timer fires.

use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_xml::StreamErrorCondition;

use crate::error::{ProtocolError, UsageError};
use crate::flags::SessionFlags;
use crate::machine::{Machine, Side};
use crate::output::Event;
use crate::rules::Step;
use crate::sm::{self, DetachedSession, Sm, SmConfig, SmEvent, SmState, Unacked, UnackedOverflow};
use crate::time::Instant;
use crate::timers::Timer;

/// The role's stream-management configuration.
pub(crate) fn config(m: &Machine) -> Option<SmConfig> {
    match &m.side {
        Side::Client(side) => Some(side.config.sm),
        Side::Server(side) => Some(side.config.sm),
        _ => None,
    }
}

fn resume_window_secs(config: &SmConfig) -> Option<u32> {
    config
        .max_resume
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

// ----- client -----

/// Client, negotiated: ask for stream management (`<enable/>`, with `resume` if configured).
/// Stanzas sent from here on count.
pub(crate) fn request_enable(m: &mut Machine) {
    let Some(config) = config(m) else { return };
    let mut el = sm::element("enable", &[]);
    if config.resume {
        crate::codec::set_attr(&mut el, "resume", "true");
        if let Some(max) = resume_window_secs(&config) {
            crate::codec::set_attr(&mut el, "max", &max.to_string());
        }
    }
    m.core.send(&el);
    m.sm = Some(Box::new(Sm::new(config)));
}

/// Client: `<enabled/>` (XEP-0198 §3): inbound stanzas count from here; note the resumption
/// id, window and location.
pub(crate) fn enabled(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let queued = m.core.queued_stanzas();
    let Some(state) = m.sm.as_deref_mut() else {
        return Err(m.reject());
    };
    if state.counting_in {
        return Err(m.reject());
    }
    state.counting_in = true;
    state.skip = queued;
    let resume = sm::truthy(el.attr("resume"));
    state.id = el
        .attr("id")
        .filter(|id| resume && !id.is_empty() && id.len() <= MAX_ID)
        .map(str::to_owned);
    state.location = el.attr("location").map(str::to_owned);
    state.max = el.attr("max").and_then(|v| v.parse().ok());
    let event = SmEvent::Enabled {
        id: state.id.clone(),
        max: state.max,
        location: state.location.clone(),
    };
    m.core.event(Event::Sm(event));
    Ok(())
}

/// Longest resumption id accepted from the peer.
const MAX_ID: usize = 256;

/// Client: `<failed/>` answering our `<enable/>`: no stream management on this stream.
pub(crate) fn enable_refused(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    if m.sm.as_ref().is_none_or(|s| s.counting_in) {
        return Err(m.reject());
    }
    m.sm = None;
    m.core.timers.stop(Timer::AckRequest);
    m.core.event(Event::Sm(SmEvent::Refused {
        condition: condition_name(&el),
    }));
    Ok(())
}

fn condition_name(el: &Element) -> Option<String> {
    el.children()
        .find(|c| c.ns() == sm::STANZAS_NS)
        .map(|c| c.name().to_owned())
}

/// Client, authenticated, the server offers `sm` and the host gave a state to resume: send
/// `<resume/>` instead of binding (XEP-0198 §5: resumption happens before binding).
pub(crate) fn request_resume(m: &mut Machine) {
    let Side::Client(side) = &mut m.side else {
        return;
    };
    let Some(state) = side.resume.as_ref() else {
        return;
    };
    let h = state.handled.to_string();
    let el = sm::element(
        "resume",
        &[("previd", state.id.as_str()), ("h", h.as_str())],
    );
    m.core.send(&el);
    m.step = Step::Resume;
}

/// Client: `<resumed/>`: the old session goes on. Drop what `h` acknowledges, re-send the
/// rest in order, report [`SmEvent::Resumed`].
pub(crate) fn resumed(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let Some(saved) = side.resume.take() else {
        return Err(m.reject());
    };
    if el.attr("previd") != Some(saved.id.as_str()) {
        return Err(m.fail(
            StreamErrorCondition::UndefinedCondition,
            "<resumed/> for another session",
        ));
    }
    let Ok(jid) = FullJid::new(&saved.jid) else {
        return Err(m.fail(
            StreamErrorCondition::UndefinedCondition,
            "the saved state's JID is not a full JID",
        ));
    };
    let mut state = restore(side.config.sm, *saved);
    let Some(h) = sm::h(&el) else {
        return Err(m.fail(StreamErrorCondition::InvalidXml, "<resumed/> without h"));
    };
    if let Err(error) = state.ack(h) {
        return Err(m.core.fail(ProtocolError::from_stream_error(
            *error,
            "<resumed h=''/> acknowledges more than was sent",
        )));
    }
    side.jid = Some(jid.clone());
    state.counting_in = true;
    state.skip = 0;
    let resent = state.unacked.len();
    m.sm = Some(Box::new(state));
    m.core.flags |= SessionFlags::BOUND;
    m.step = Step::Established;
    m.core.negotiated();
    m.core.event(Event::Sm(SmEvent::Resumed { jid, resent }));
    resend(m);
    flush_host_queue(m);
    Ok(())
}

/// Client: `<failed/>` answering `<resume/>`: every stanza the `h` on it (if any) does not
/// acknowledge is reported as not delivered, and the client binds afresh.
pub(crate) fn resume_failed(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let Some(saved) = side.resume.take() else {
        return Err(m.reject());
    };
    let mut state = restore(side.config.sm, *saved);
    if let Some(h) = sm::h(&el) {
        // An h above what was sent proves nothing was lost beyond it; report the rest.
        let _ = state.ack(h);
    }
    let requested = side.config.resource.is_some();
    let session = side.bind_session;
    let undelivered: Vec<Unacked> = state.unacked.into();
    m.core.event(Event::Sm(SmEvent::ResumeFailed {
        condition: condition_name(&el),
        undelivered,
    }));
    crate::steps::bind::request(m, requested, session);
    Ok(())
}

/// The machine state a saved [`SmState`] stands for (stanzas that no longer parse are
/// dropped: the host wrote them, and they were checked when first sent).
fn restore(config: SmConfig, saved: SmState) -> Sm {
    let mut state = Sm::new(config);
    state.id = Some(saved.id);
    state.location = saved.location;
    state.handled = saved.handled;
    state.taken = saved.handled;
    state.sent = saved.sent;
    state.acked = saved.acked;
    state.unacked = saved
        .unacked
        .iter()
        .filter_map(|xml| xml.parse::<Element>().ok())
        .map(Unacked::from)
        .collect();
    state
}

/// The client's resumable state, if resumption was granted.
pub(crate) fn snapshot(m: &Machine) -> Option<SmState> {
    let state = m.sm.as_deref()?;
    let id = state.id.clone()?;
    let Side::Client(side) = &m.side else {
        return None;
    };
    let jid = side.jid.as_ref()?.to_string();
    Some(SmState {
        id,
        jid,
        location: state.location.clone(),
        handled: state.handled,
        sent: state.sent,
        acked: state.acked,
        // Stanzas kept as bytes are parsed here (a host saves this rarely: when the
        // connection is lost), to be written as standalone XML text.
        unacked: state
            .unacked
            .iter()
            .filter_map(|stanza| stanza.element().ok())
            .map(|stanza| String::from(&stanza))
            .collect(),
    })
}

/// Send what the host queued before negotiation completed (counted, when managed).
pub(crate) fn flush_host_queue(m: &mut Machine) {
    loop {
        let Side::Client(side) = &mut m.side else {
            return;
        };
        let Some(stanza) = side.queue.pop_front() else {
            return;
        };
        // A stanza that does not serialize is skipped, as before negotiation.
        if m.transmit_stanza(&stanza) == Err(UsageError::Closed) {
            return;
        }
    }
}

// ----- server -----

/// Server, negotiated: `<enable/>`. Refused with `<failed/>` when not offered
/// (`feature-not-implemented`) or already enabled (`unexpected-request`).
pub(crate) fn enable(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let Some(config) = config(m).filter(|c| c.enabled) else {
        m.core.send(&sm::failed("feature-not-implemented", None));
        return Ok(());
    };
    if m.sm.is_some() {
        m.core.send(&sm::failed("unexpected-request", None));
        return Ok(());
    }
    let mut state = Sm::new(config);
    state.counting_in = true;
    // Stanzas parsed before `<enable/>` but not yet taken by the host do not count.
    state.skip = m.core.queued_stanzas();
    let mut attrs: Vec<(&'static str, String)> = Vec::new();
    if config.resume && sm::truthy(el.attr("resume")) {
        let id = crate::entropy::random_token(m.core.entropy.as_mut(), 15);
        attrs.push(("id", id.clone()));
        attrs.push(("resume", "true".to_owned()));
        state.id = Some(id);
        let granted = match (
            resume_window_secs(&config),
            el.attr("max").and_then(|v| v.parse::<u32>().ok()),
        ) {
            (Some(ours), Some(asked)) => Some(ours.min(asked)),
            (ours, _) => ours,
        };
        if let Some(max) = granted {
            attrs.push(("max", max.to_string()));
            state.max = Some(max);
        }
    }
    let attrs: Vec<(&'static str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    m.core.send(&sm::element("enabled", &attrs));
    let event = SmEvent::Enabled {
        id: state.id.clone(),
        max: state.max,
        location: None,
    };
    m.sm = Some(Box::new(state));
    m.core.event(Event::Sm(event));
    Ok(())
}

/// Server, authenticated but not bound: `<enable/>` comes too early (XEP-0198 §3:
/// `unexpected-request`).
pub(crate) fn enable_early(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    m.core.send(&sm::failed("unexpected-request", None));
    Ok(())
}

/// Server, authenticated, not bound: `<resume previd='' h=''/>`. The host looks the session
/// up ([`SmEvent::ResumeRequested`]) and answers with `resume` or `refuse_resume`.
pub(crate) fn resume(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let granted = config(m).is_some_and(|c| c.enabled && c.resume);
    let (Some(previd), Some(h)) = (el.attr("previd"), sm::h(&el)) else {
        m.core.send(&sm::failed("bad-request", None));
        return Ok(());
    };
    if !granted || previd.is_empty() || previd.len() > MAX_ID {
        m.core.send(&sm::failed("item-not-found", None));
        return Ok(());
    }
    // Until the host answers, the client's `h` waits in a placeholder without counters.
    let mut pending = Sm::new(config(m).unwrap_or_default());
    pending.acked = h;
    m.sm = Some(Box::new(pending));
    m.step = Step::Resume;
    m.core.event(Event::Sm(SmEvent::ResumeRequested {
        previd: previd.to_owned(),
        h,
    }));
    Ok(())
}

/// Server: the host found the session `previd` named: take it over. The account must be the
/// one this stream authenticated; `h` must not acknowledge more than was sent.
pub(crate) fn accept_resume(
    m: &mut Machine,
    detached: DetachedSession,
) -> Result<(), Box<DetachedSession>> {
    if m.step != Step::Resume {
        return Err(Box::new(detached));
    }
    let Side::Server(side) = &m.side else {
        return Err(Box::new(detached));
    };
    if side.account.as_ref() != Some(&detached.jid.to_bare()) {
        // Another account's session: as if unknown (XEP-0198 §5 leaks nothing).
        refuse_resume(m);
        return Err(Box::new(detached));
    }
    let Some(h) = m.sm.as_ref().map(|pending| pending.acked) else {
        return Err(Box::new(detached));
    };
    let DetachedSession { id, jid, mut sm } = detached;
    if let Err(error) = sm.ack(h) {
        m.sm = None;
        m.step = Step::Done;
        let _ = m.core.fail(ProtocolError::from_stream_error(
            *error,
            "<resume h=''/> acknowledges more than was sent",
        ));
        return Err(Box::new(DetachedSession { id, jid, sm }));
    }
    let Side::Server(side) = &mut m.side else {
        return Err(Box::new(DetachedSession { id, jid, sm }));
    };
    side.jid = Some(jid.clone());
    let handled = sm.handled.to_string();
    m.core.send(&sm::element(
        "resumed",
        &[("previd", id.as_str()), ("h", handled.as_str())],
    ));
    sm.counting_in = true;
    sm.skip = 0;
    sm.ack_due = false;
    let resent = sm.unacked.len();
    m.sm = Some(Box::new(sm));
    m.step = Step::Established;
    m.core.negotiated();
    m.core.event(Event::Sm(SmEvent::Resumed { jid, resent }));
    resend(m);
    Ok(())
}

/// Server: no such session (unknown or expired id): `<failed><item-not-found/></failed>`;
/// the client may bind afresh.
pub(crate) fn refuse_resume(m: &mut Machine) {
    if m.step == Step::Resume && matches!(m.side, Side::Server(_)) {
        m.sm = None;
        m.core.send(&sm::failed("item-not-found", None));
        m.step = Step::AwaitRequest;
    }
}

/// Server: take the managed session of a stream whose transport died (or any time after
/// resumption was granted), to keep it detached for the resumption window.
pub(crate) fn detach(m: &mut Machine) -> Option<DetachedSession> {
    let Side::Server(side) = &m.side else {
        return None;
    };
    let jid = side.jid.clone()?;
    let id = m.sm.as_ref()?.id.clone()?;
    let sm = *m.sm.take()?;
    Some(DetachedSession { id, jid, sm })
}

// ----- both roles -----

/// `<r/>`: answer with `<a h=''/>` once the host has taken what arrived before it. Without
/// stream management: the client reports it, the server answers `unexpected-request`.
pub(crate) fn request(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let pending = m.core.queued_stanzas();
    match m.sm.as_deref_mut() {
        Some(state) if state.counting_in => {
            state.ack_due = true;
            if pending == 0 {
                // The host has taken everything: the answer is exact now (and goes out
                // before a close that may follow in the same read).
                drained(m);
            }
            Ok(())
        }
        _ => not_enabled(m, el),
    }
}

fn not_enabled(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    if matches!(m.side, Side::Server(_)) {
        m.core.send(&sm::failed("unexpected-request", None));
    } else {
        m.core.event(Event::Nonza(el));
    }
    Ok(())
}

/// `<a h=''/>`: drop what it acknowledges; an `h` above what was sent is the stream error
/// XEP-0198 prescribes (`undefined-condition` with `<handled-count-too-high/>`).
pub(crate) fn answer(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let Some(state) = m.sm.as_deref_mut() else {
        return not_enabled(m, el);
    };
    let Some(h) = sm::h(&el) else {
        return Err(m.fail(StreamErrorCondition::InvalidXml, "<a/> without a valid h"));
    };
    if let Err(error) = state.ack(h) {
        m.step = Step::Done;
        return Err(m.core.fail(ProtocolError::from_stream_error(
            *error,
            "<a h=''/> acknowledges more than was sent",
        )));
    }
    let waiting = !state.unacked.is_empty();
    let after = state.config.request_after;
    match after {
        Some(after) if waiting => {
            let at = m.core.now() + after;
            m.core.timers.set(Timer::AckRequest, at);
        }
        _ => m.core.timers.stop(Timer::AckRequest),
    }
    Ok(())
}

/// Before a stanza is sent: the queue bound ([`SmConfig::overflow`]).
pub(crate) fn before_send(m: &mut Machine) -> Result<(), UsageError> {
    let Some(state) = m.sm.as_deref_mut() else {
        return Ok(());
    };
    if state.unacked.len() < state.config.max_unacked {
        return Ok(());
    }
    match state.config.overflow {
        UnackedOverflow::Refuse => {
            state.since_request = 0;
            m.core.send(&sm::element("r", &[]));
            Err(UsageError::Backpressure)
        }
        UnackedOverflow::ForgetOldest => {
            if let Some(oldest) = state.unacked.pop_front() {
                m.core.event(Event::Sm(SmEvent::Forgotten(oldest)));
            }
            Ok(())
        }
    }
}

/// A stanza went out: count it, keep it (what `keep` makes: called only when managed) until
/// acknowledged, ask for an ack by count or arm the timer.
pub(crate) fn sent(m: &mut Machine, keep: impl FnOnce() -> Unacked) {
    let Some(state) = m.sm.as_deref_mut() else {
        return;
    };
    state.record(keep());
    let every = state.config.request_every;
    if every > 0 && state.since_request >= every {
        state.since_request = 0;
        m.core.send(&sm::element("r", &[]));
    }
    if let Some(after) = state.config.request_after {
        if m.core.timers.get(Timer::AckRequest).is_none() {
            let at = m.core.now() + after;
            m.core.timers.set(Timer::AckRequest, at);
        }
    }
}

/// Re-send the unacknowledged queue in order (after resumption); it stays queued until
/// acknowledged, numbered from the peer's `h` (`Sm::renumber_for_resend`). Stanzas kept as
/// bytes go out verbatim when they mean the same on this stream (the same default
/// namespace, and on a WebSocket stream, bytes that declare it); otherwise, and for
/// elements, the element is serialized for this stream.
fn resend(m: &mut Machine) {
    let Some(state) = m.sm.as_deref_mut() else {
        return;
    };
    state.renumber_for_resend();
    let state = &*state;
    let namespace = m.kind.namespace();
    let framed = m.core.framed;
    let bytes: Vec<Vec<u8>> = state
        .unacked
        .iter()
        .filter_map(|stanza| match stanza.verbatim_for(namespace, framed) {
            Some(bytes) => Some(bytes.to_vec()),
            // A stanza that no longer parses cannot be sent again (never for what a splice
            // or the serializer wrote); the host's acknowledgement count still covers it.
            None => m.core.serialize(&stanza.element().ok()?),
        })
        .collect();
    let any = !bytes.is_empty();
    for chunk in bytes {
        if !m.core.send_bytes(chunk) {
            return;
        }
    }
    if any {
        m.core.send(&sm::element("r", &[]));
    }
}

/// The host took an output: a stanza now counts as handled (with
/// [`SmConfig::handled_by_host`](crate::SmConfig::handled_by_host), once the host says so).
pub(crate) fn taken(m: &mut Machine, stanza: bool) {
    let Some(state) = m.sm.as_deref_mut() else {
        return;
    };
    if stanza && state.counting_in {
        if state.skip > 0 {
            state.skip -= 1;
        } else {
            let later = state.config.handled_by_host;
            state.count_in(later);
        }
    }
}

/// The machine handled an inbound stanza itself (a ping or its reply): it counts as handled
/// now, as if the host had taken it.
pub(crate) fn handled_here(m: &mut Machine) {
    if let Some(state) = m.sm.as_deref_mut() {
        if state.counting_in {
            state.count_in(false);
        }
    }
}

/// The host handled inbound stanza `seq`: answer a pending `<r/>` once every stanza taken
/// is handled.
pub(crate) fn host_handled(m: &mut Machine, seq: u32) {
    let Some(state) = m.sm.as_deref_mut() else {
        return;
    };
    if state.release(seq) {
        drained(m);
    }
}

/// The output queue is empty: answer a pending `<r/>` with everything handled (with
/// [`SmConfig::handled_by_host`](crate::SmConfig::handled_by_host), once every stanza taken
/// is handled: the answer waits for the host).
pub(crate) fn drained(m: &mut Machine) {
    let Some(state) = m.sm.as_deref_mut() else {
        return;
    };
    if state.ack_due && state.all_handled() && m.step == Step::Established {
        state.ack_due = false;
        let h = state.handled.to_string();
        m.core.send(&sm::element("a", &[("h", h.as_str())]));
    }
}

/// Time passed: ask for an acknowledgement of stanzas that waited too long.
pub(crate) fn on_timeout(m: &mut Machine, now: Instant) {
    if m.core
        .timers
        .get(Timer::AckRequest)
        .is_none_or(|at| at > now)
    {
        return;
    }
    m.core.timers.stop(Timer::AckRequest);
    let Some(state) = m.sm.as_deref_mut() else {
        return;
    };
    if !state.unacked.is_empty() && m.step == Step::Established {
        state.since_request = 0;
        m.core.send(&sm::element("r", &[]));
    }
}
