//! The load generator's federation mode against two instances of the example server in this
//! process: a.load.test and b.load.test, static routes to each other, certificates from one
//! xmpp-testpeers `TestCa` that both trust (SASL EXTERNAL, no dialback). Even sessions log in
//! to a, odd ones to b, so every ping and every pong crosses the s2s link. A few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use xmpp_loadgen::{Options, Remote, Target, run_federated};
use xmpp_server::{Dns, HubConfig, RuntimeConfig, S2sSettings, S2sTls, ServerHandle, TlsMaterial};
use xmpp_stream::BareJid;
use xmpp_stream::dialback::DialbackSecret;
use xmpp_testpeers::TestCa;

const SESSIONS: usize = 8;
const PASSWORD: &str = "fed-load-pw";

/// One server of the pair: `domain`, accounts `user0..user<SESSIONS-1>`, a route to `peer`.
fn spawn(
    ca: &TestCa,
    domain: &str,
    listener: TcpListener,
    peer: (&str, SocketAddr),
) -> ServerHandle {
    let mut hub = HubConfig::new(BareJid::new(domain).unwrap())
        .with_s2s(DialbackSecret::new(b"unused: EXTERNAL only"));
    for i in 0..SESSIONS {
        hub = hub.with_user(&format!("user{i}"), PASSWORD);
    }
    if let Some(s2s) = &mut hub.s2s {
        s2s.dialback_secret = None;
    }
    let cert = ca.issue(domain).unwrap();
    let s2s = S2sSettings {
        routes: [(peer.0.to_owned(), peer.1)].into_iter().collect(),
        dns: Dns::Off,
        tls: S2sTls::from_pem(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            Some(ca.pem().as_bytes()),
        )
        .unwrap(),
        connect_timeout: Duration::from_secs(5),
    };
    let config = RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&[domain]).unwrap(),
        log: false,
        trace: false,
        s2s: Some(s2s),
    };
    ServerHandle::spawn_federating(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), listener, config)
        .unwrap()
}

fn wait_ready(server: &ServerHandle) {
    let start = std::time::Instant::now();
    while server.stats().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn federation_mode_sends_every_message_across_the_s2s_link() {
    let ca = TestCa::new("loadgen federation CA").unwrap();
    let a_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let b_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let a_s2s = a_listener.local_addr().unwrap();
    let b_s2s = b_listener.local_addr().unwrap();
    let a = spawn(&ca, "a.load.test", a_listener, ("b.load.test", b_s2s));
    let b = spawn(&ca, "b.load.test", b_listener, ("a.load.test", a_s2s));
    wait_ready(&a);
    wait_ready(&b);

    let a_target = Target::new(a.addr, a.cert_pem.clone(), None);
    let b_remote = Remote::new(Target::new(b.addr, b.cert_pem.clone(), None), "b.load.test");
    let mut options = Options::new(SESSIONS);
    options.domain = "a.load.test".to_owned();
    options.password = PASSWORD.to_owned();
    options.idle = Duration::ZERO;
    options.message_rate = 40.0;
    options.message_duration = Duration::from_secs(2);
    let runtime = xmpp_loadgen::runtime().unwrap();
    let report = runtime
        .block_on(run_federated(&a_target, &b_remote, options))
        .unwrap();
    eprintln!("{report}");

    assert_eq!(report.logged_in, SESSIONS as u64, "{report}");
    assert_eq!(report.dropped, 0, "{report}");
    assert_eq!(report.messages_bounced, 0, "{report}");
    // 40 pings/s for 2 s: about 80 pings and their pongs.
    assert!(report.round_trips >= 40, "{report}");
    // Every pong timed was received, and every message received was sent.
    assert!(
        report.round_trips as u64 <= report.messages_received,
        "{report}"
    );
    assert!(report.messages_received <= report.messages_sent, "{report}");
    #[allow(clippy::cast_precision_loss)]
    let rate = report.messages_received as f64 / 2.0;
    assert!(
        (report.messages_per_sec - rate).abs() <= rate * 0.2,
        "{report}"
    );
    let [p50, p90, p99] = report.rtt_ms.unwrap();
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{report}");
    assert!(
        report.kib_per_session.is_none(),
        "no memory figure across two servers"
    );
    // The pings went through the link a -> b and the pongs through b -> a (or one
    // bidirectional link); the sessions logged in to both servers.
    let (a_stats, b_stats) = (a.stats().unwrap(), b.stats().unwrap());
    assert!(
        a_stats.s2s_outgoing + a_stats.s2s_incoming >= 1,
        "{a_stats:?}"
    );
    assert!(
        b_stats.s2s_outgoing + b_stats.s2s_incoming >= 1,
        "{b_stats:?}"
    );
}
