//! One client session: a `ClientStream` on `xmpp-host`'s tokio connection (which runs the
//! loop, STARTTLS included), logging in, then answering and timing pings until the run stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as StdInstant};

use minidom::Element;
use tokio::sync::watch;
use xmpp_host::Error as HostError;
use xmpp_host::asynchronous::{AsyncConnection, ClientOptions};
use xmpp_stream::{BareJid, ClientConfig, ClientStream, CloseReason, Event, SeededEntropy};

// The soak drives its own sockets; it takes them from here.
pub(crate) use crate::conn::Conn;
use crate::shared::{Phase, Shared};

/// Bytes read at once: sessions are many and their traffic small, so a small buffer keeps the
/// load generator's own memory per session low.
const READ_BUFFER: usize = 4096;

/// The body of the unmeasured message each federation session sends its partner first.
const WARM_UP: &str = "warm-up";

/// How long a stopping session waits for the server's end of the stream.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How a session ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Logged in and ran until told to stop.
    Completed,
    /// Failed before or after login; the text says where.
    Failed(String),
}

/// What a session knows about itself.
pub(crate) struct Session {
    pub index: usize,
    pub shared: Arc<Shared>,
}

/// What one event means to the session.
enum Seen {
    Nothing,
    Negotiated,
    Closed(String),
}

/// The connection of a session.
type Connection = AsyncConnection<ClientStream>;

impl Session {
    fn micros(&self) -> u64 {
        u64::try_from(self.shared.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Runs the session to the end. Never panics on anything the server sends.
    pub(crate) async fn run(self) -> Outcome {
        let shared = self.shared.clone();
        let permit = shared.login_permits.clone().acquire_owned().await;
        let started = StdInstant::now();
        let mut conn = match Box::pin(self.login()).await {
            Ok(conn) => conn,
            Err(e) => {
                shared.stats.login_failed.fetch_add(1, Ordering::Relaxed);
                shared.logins_settled.notify_one();
                return Outcome::Failed(e);
            }
        };
        drop(permit);
        shared.record_login(started.elapsed());
        shared.logins_settled.notify_one();
        match self.hold(&mut conn).await {
            Ok(()) => Outcome::Completed,
            Err(e) => {
                shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Outcome::Failed(e)
            }
        }
    }

    fn user(&self, index: usize) -> String {
        format!("{}{index}", self.shared.options.user_prefix)
    }

    /// Connects, negotiates (STARTTLS, SASL, bind) within the login timeout and sends initial
    /// presence.
    async fn login(&self) -> Result<Connection, String> {
        let options = &self.shared.options;
        let side = self.shared.side(self.index);
        let jid = BareJid::new(&format!("{}@{}", self.user(self.index), side.domain))
            .map_err(|e| format!("bad jid: {e}"))?;
        let mut config = ClientConfig::new(jid, options.password.clone());
        config.resource = Some(format!("load{}", self.index));
        config.mechanisms = options.mechanism.mechanisms();
        let seed = options.seed ^ (self.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut connect = ClientOptions::new(side.addr, &side.domain, side.tls.clone());
        // No channel-binding data: the same SCRAM mechanism on every server.
        connect.channel_binding = false;
        connect.read_buffer = READ_BUFFER;
        connect.connect_timeout = options.login_timeout;
        let mut conn = AsyncConnection::connect_with(&connect, config, SeededEntropy::new(seed))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let deadline = tokio::time::Instant::now() + options.login_timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = match conn.next_event(left).await {
                Ok(Some(event)) => event,
                Ok(None) => return Err("server closed during login".to_owned()),
                Err(HostError::Timeout) => return Err("login timed out".to_owned()),
                Err(e) => return Err(format!("login: {e}")),
            };
            match self.on_event(&mut conn, event).await {
                Seen::Negotiated => break,
                Seen::Closed(why) => return Err(why),
                Seen::Nothing => {}
            }
        }
        let presence = Element::builder("presence", "jabber:client").build();
        conn.send(&presence)
            .await
            .map_err(|e| format!("presence: {e}"))?;
        match self.take_events(&mut conn).await {
            Seen::Closed(why) => Err(why),
            _ => Ok(conn),
        }
    }

    /// Handles every event already received.
    async fn take_events(&self, conn: &mut Connection) -> Seen {
        let mut seen = Seen::Nothing;
        while let Some(event) = conn.take_event() {
            match self.on_event(conn, event).await {
                Seen::Closed(why) => return Seen::Closed(why),
                Seen::Negotiated => seen = Seen::Negotiated,
                Seen::Nothing => {}
            }
        }
        seen
    }

    /// Records the mechanism, answers and times messages, reports negotiation and the end.
    async fn on_event(&self, conn: &mut Connection, event: Event) -> Seen {
        match event {
            Event::Authenticated { mechanism, .. } => {
                self.shared.record_mechanism(mechanism.as_str());
            }
            Event::Negotiated { .. } => return Seen::Negotiated,
            Event::Stanza(stanza) => self.on_stanza(conn, &stanza).await,
            Event::Closed { reason } => return Seen::Closed(closed(&reason)),
            _ => {}
        }
        Seen::Nothing
    }

    /// Answers pings (the echo half of a pair) and times pongs (the sending half).
    async fn on_stanza(&self, conn: &mut Connection, stanza: &Element) {
        if !stanza.is("message", "jabber:client") {
            return;
        }
        let stats = &self.shared.stats;
        let body = stanza.get_child("body", "jabber:client").map(Element::text);
        if stanza.attr("type") == Some("error") {
            // A bounce (e.g. remote-server-not-found on a federation run): not a delivery.
            // A warm-up bounces when its partner is not online yet on a server that stores
            // no offline messages: not a lost measurement.
            // Servers need not return the payload (Prosody does not); the id comes back.
            if stanza.attr("id") != Some(WARM_UP) {
                stats.bounced.fetch_add(1, Ordering::Relaxed);
                self.shared.record_bounce(stanza);
            }
            return;
        }
        let Some(body) = body else {
            return;
        };
        if let Some(rest) = body.strip_prefix("ping ") {
            stats.received.fetch_add(1, Ordering::Relaxed);
            if let Some(from) = stanza.attr("from") {
                let reply = message(from, &format!("pong {rest}"));
                if conn.send(&reply).await.is_ok() {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else if let Some(rest) = body.strip_prefix("pong ") {
            stats.received.fetch_add(1, Ordering::Relaxed);
            if let Ok(sent_at) = rest.trim().parse::<u64>() {
                let rtt = self.micros().saturating_sub(sent_at);
                self.shared.record_rtt(rtt);
            }
        }
    }

    #[allow(clippy::cast_precision_loss)] // session counts are far below 2^52
    /// After login: stay connected, answer the server, send pings when it is time, close on
    /// `Phase::Stop`.
    async fn hold(&self, conn: &mut Connection) -> Result<(), String> {
        let options = &self.shared.options;
        let partner = self.index ^ 1;
        let sender = self.index.is_multiple_of(2) && partner < options.sessions;
        let partner_jid = format!(
            "{}@{}",
            self.user(partner),
            self.shared.side(partner).domain
        );
        let mut phase_rx: watch::Receiver<Phase> = self.shared.phase.subscribe();
        // Each sender pings at rate / senders per second, offset so they do not fire together.
        let senders = (options.sessions / 2).max(1);
        let period = if options.message_rate > 0.0 {
            Duration::from_secs_f64(senders as f64 / options.message_rate)
        } else {
            Duration::from_secs(3600)
        };
        let offset = period.mul_f64((self.index / 2) as f64 / senders as f64);
        if self.shared.federated && partner < options.sessions {
            // Opens the s2s link this session's messages take before the message phase, so
            // that the round trips measure established links, not their setup. The partner
            // ignores the body.
            let warm = Element::builder("message", "jabber:client")
                .attr(name("to"), partner_jid.as_str())
                .attr(name("id"), WARM_UP)
                .build();
            conn.send(&warm)
                .await
                .map_err(|e| format!("warm-up message: {e}"))?;
        }
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let phase = *phase_rx.borrow();
            if phase == Phase::Stop {
                // Wait briefly for the server's close; the socket is shut down either way.
                let _ = conn.close(CLOSE_WAIT).await;
                return Ok(());
            }
            let messaging = sender && phase == Phase::Messages;
            // `receive` writes nothing, so losing the race to the other branches is harmless.
            tokio::select! {
                () = conn.receive() => {}
                _ = phase_rx.changed() => {}
                _ = ticker.tick(), if messaging => {
                    let ping = message(&partner_jid, &format!("ping {}", self.micros()));
                    if conn.send(&ping).await.is_ok() {
                        self.shared.stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            conn.flush().await;
            if let Seen::Closed(why) = self.take_events(conn).await {
                return Err(why);
            }
        }
    }
}

/// A failure text for a stream that ended.
fn closed(reason: &CloseReason) -> String {
    match reason {
        CloseReason::TransportClosed => "server closed the connection".to_owned(),
        other => format!("closed: {other:?}"),
    }
}

pub(crate) fn message(to: &str, body: &str) -> Element {
    Element::builder("message", "jabber:client")
        .attr(name("to"), to)
        .attr(name("type"), "chat")
        .append(
            Element::builder("body", "jabber:client")
                .append(body)
                .build(),
        )
        .build()
}

/// An attribute name known at compile time.
#[allow(clippy::expect_used)] // only called with the constant names above, which are NCNames
fn name(text: &'static str) -> minidom::rxml::NcName {
    text.try_into().expect("a constant NCName")
}
