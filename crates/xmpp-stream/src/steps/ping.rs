//! XEP-0199 pings on a negotiated c2s stream, both roles: a ping when the peer has been
//! silent for [`PingConfig::idle`](crate::PingConfig::idle), `connection-timeout` when it
//! stays silent [`PingConfig::timeout`](crate::PingConfig::timeout) longer; the reply to our
//! ping is consumed; a client answers the pings it receives.

use minidom::Element;

use crate::codec::set_attr;
use crate::error::ProtocolError;
use crate::features::ns;
use crate::machine::{Machine, Side};
use crate::rules::Step;
use crate::sm::{PING_NS, PingConfig};
use crate::steps;
use crate::time::Instant;
use crate::timers::Timer;

/// A machine's ping state (boxed: most streams have none).
pub(crate) struct Ping {
    config: PingConfig,
    /// The id of our last ping, until its reply arrives.
    id: Option<String>,
    /// A ping is out and nothing was heard since.
    waiting: bool,
}

impl Ping {
    pub(crate) fn new(config: PingConfig) -> Ping {
        Ping {
            config,
            id: None,
            waiting: false,
        }
    }
}

/// Bytes arrived: the peer is alive. Re-arm the idle timer on a negotiated stream.
pub(crate) fn heard(m: &mut Machine) {
    if m.step != Step::Established {
        return;
    }
    let Some(ping) = m.ping.as_deref_mut() else {
        return;
    };
    ping.waiting = false;
    let at = m.core.now() + ping.config.idle;
    m.core.timers.set(Timer::Ping, at);
}

/// Time passed: ping after the idle interval; close when the ping went unanswered.
pub(crate) fn on_timeout(m: &mut Machine, now: Instant) {
    if m.core.timers.get(Timer::Ping).is_none_or(|at| at > now) {
        return;
    }
    m.core.timers.stop(Timer::Ping);
    if m.step != Step::Established {
        return;
    }
    let Some(ping) = m.ping.as_deref() else {
        return;
    };
    let timeout = ping.config.timeout;
    if ping.waiting {
        m.step = Step::Done;
        m.core.time_out(Timer::Ping);
        return;
    }
    let id = format!(
        "ping-{}",
        crate::entropy::random_token(m.core.entropy.as_mut(), 6)
    );
    let mut iq = Element::builder("iq", ns::JABBER_CLIENT)
        .append(Element::bare("ping", PING_NS))
        .build();
    set_attr(&mut iq, "type", "get");
    set_attr(&mut iq, "id", &id);
    // A stanza like any other: counted and kept when stream management is on.
    let _ = m.transmit_stanza(&iq);
    if let Some(ping) = m.ping.as_deref_mut() {
        ping.id = Some(id);
        ping.waiting = true;
    }
    m.core.timers.set(Timer::Ping, now + timeout);
}

/// An `<iq/>` on a negotiated c2s stream: the reply to our ping is consumed; a client answers
/// a ping addressed to it; every other iq goes on to the stanza rule of its role.
pub(crate) fn iq(m: &mut Machine, el: Element) -> Result<(), ProtocolError> {
    let kind = el.attr("type");
    let ours = m
        .ping
        .as_deref()
        .and_then(|ping| ping.id.as_deref())
        .is_some_and(|id| el.attr("id") == Some(id));
    if ours && matches!(kind, Some("result" | "error")) {
        if let Some(ping) = m.ping.as_deref_mut() {
            ping.id = None;
        }
        steps::sm::handled_here(m);
        return Ok(());
    }
    let client = matches!(m.side, Side::Client(_));
    if client && kind == Some("get") && el.has_child("ping", PING_NS) {
        let mut reply = Element::bare("iq", ns::JABBER_CLIENT);
        set_attr(&mut reply, "type", "result");
        if let Some(id) = el.attr("id") {
            set_attr(&mut reply, "id", id);
        }
        if let Some(from) = el.attr("from") {
            set_attr(&mut reply, "to", from);
        }
        steps::sm::handled_here(m);
        let _ = m.transmit_stanza(&reply);
        return Ok(());
    }
    if client {
        steps::established::stanza(m, el)
    } else {
        steps::established::from_client(m, el)
    }
}
