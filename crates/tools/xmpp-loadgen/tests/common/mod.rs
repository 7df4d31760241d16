//! What the soak tests share: the example server in-process under a counting global
//! allocator, a sampler of its heap while the load runs, and the `soak` binary in its own
//! process (each process may hold at most 20 000 descriptors here).
#![allow(dead_code)] // each test binary uses its own share

use std::alloc::System;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use xmpp_loadgen::procfs;
use xmpp_loadgen::soak::raise_fd_limit;
use xmpp_server::{HubConfig, RuntimeConfig, ServerHandle, ServerStats, TlsMaterial};
use xmpp_stream::BareJid;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The password of every soak account.
pub(crate) const PASSWORD: &str = "soak-pw";

/// How far above the baseline the server's live heap may stay once every client is gone:
/// `TOLERANCE_FIXED + TOLERANCE_PER_SESSION * sessions`. What legitimately stays (measured
/// with heaptrack at 1 500 sessions, and 10 000 in the README) is capacity kept by design,
/// not per-session state: the empty root node of the hub's session map (~100 KiB: eleven
/// inline streams), rustls's session-ticket cache (256 entries, ~45 KiB), and tokio's run
/// queue, which keeps the capacity of its busiest moment (8 bytes per task that was runnable
/// at once: up to one per session when all close together). A leaked session costs tens of
/// KiB, and a leak of one JID-sized allocation (24+ bytes) per connection (about 1.2
/// connections per session in a soak) is above the per-session allowance.
pub(crate) const TOLERANCE_FIXED: i64 = 256 * 1024;
/// See [`TOLERANCE_FIXED`].
pub(crate) const TOLERANCE_PER_SESSION: i64 = 16;

/// [`TOLERANCE_FIXED`] + [`TOLERANCE_PER_SESSION`] per session.
pub(crate) fn tolerance(sessions: usize) -> i64 {
    TOLERANCE_FIXED + TOLERANCE_PER_SESSION * i64::try_from(sessions).unwrap()
}

/// Bytes the process's heap holds right now. (`stats_alloc` already books a `realloc`'s
/// growth in `bytes_allocated` and its shrinking in `bytes_deallocated`; its
/// `bytes_reallocated` is the same change again, so it must not be added.)
pub(crate) fn live_heap() -> i64 {
    let stats = GLOBAL.stats();
    let allocated = i64::try_from(stats.bytes_allocated).unwrap();
    let freed = i64::try_from(stats.bytes_deallocated).unwrap();
    allocated - freed
}

pub(crate) fn mib(bytes: i64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let m = bytes as f64 / (1024.0 * 1024.0);
    format!("{m:.2} MiB")
}

pub(crate) fn rss_kib() -> u64 {
    procfs::resident_kib(std::process::id()).unwrap_or(0)
}

/// Sessions to run: `var` from the environment, else `default`.
pub(crate) fn sessions_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .map_or(default, |v| v.parse().expect(var))
}

/// The example server in-process with accounts `user0..user{sessions-1}`, its heap and RSS
/// baselines taken once it serves, and a thread sampling its heap peak until
/// [`stop_sampling`](Self::stop_sampling).
pub(crate) struct Harness {
    pub(crate) server: ServerHandle,
    dir: PathBuf,
    pub(crate) trust: String,
    /// From the test's start until the server served (deriving the accounts' credentials).
    pub(crate) setup: Duration,
    pub(crate) baseline: i64,
    pub(crate) rss_baseline: u64,
    peak: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<u64>>,
}

impl Harness {
    pub(crate) fn start(sessions: usize, configure: impl FnOnce(&mut HubConfig)) -> Self {
        let fd_limit = raise_fd_limit(20_000).unwrap();
        assert!(
            fd_limit > sessions as u64 + 100,
            "open-file limit {fd_limit} too low for {sessions} sessions"
        );
        let test_start = Instant::now();
        let mut hub = HubConfig::new(BareJid::new("localhost").unwrap());
        for i in 0..sessions {
            hub = hub.with_user(&format!("user{i}"), PASSWORD);
        }
        configure(&mut hub);
        let tls = TlsMaterial::self_signed(&["localhost"]).unwrap();
        let dir = std::env::temp_dir().join(format!("xmpp-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trust = dir.join("cert.pem");
        std::fs::write(&trust, &tls.cert_pem).unwrap();
        let config = RuntimeConfig {
            hub,
            tls,
            log: false,
            trace: false,
            s2s: None,
        };
        let server = ServerHandle::spawn("127.0.0.1:0".parse().unwrap(), config).unwrap();
        // The hub derives every account's SCRAM credentials before it serves.
        let start = Instant::now();
        while server.stats().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "the server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let setup = test_start.elapsed();
        std::thread::sleep(Duration::from_millis(200));
        let baseline = live_heap();
        let rss_baseline = rss_kib();
        // Sample the heap while the load runs: the peak.
        let peak = Arc::new(AtomicI64::new(baseline));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut peak_rss = 0;
                let mut tick = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(live_heap(), Ordering::Relaxed);
                    if tick.is_multiple_of(50) {
                        peak_rss = peak_rss.max(rss_kib());
                    }
                    tick = tick.wrapping_add(1);
                    std::thread::sleep(Duration::from_millis(10));
                }
                peak_rss
            })
        };
        Harness {
            server,
            dir,
            trust: trust.to_string_lossy().into_owned(),
            setup,
            baseline,
            rss_baseline,
            peak,
            stop,
            sampler: Some(sampler),
        }
    }

    /// The soak binary's arguments against this server for `sessions` slots.
    pub(crate) fn args(&self, sessions: usize) -> Vec<String> {
        let port = self.server.addr.port().to_string();
        let mut args: Vec<String> = [
            "--port",
            &port,
            "--trust",
            &self.trust,
            "--password",
            PASSWORD,
            "--progress",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(["--sessions".to_owned(), sessions.to_string()]);
        args.extend(["--timeout".to_owned(), "600".to_owned()]);
        args
    }

    /// Run the soak binary with `args` to its end, calling `on_line` with each line it
    /// prints on stdout as it comes; print its report; stop the sampler.
    pub(crate) fn run(
        &mut self,
        args: &[String],
        mut on_line: impl FnMut(&ServerHandle, &str),
    ) -> SoakRun {
        let start = Instant::now();
        let (mut child, lines, errors) = spawn_soak(args);
        let mut summary = None;
        for line in &lines {
            on_line(&self.server, &line);
            if line.starts_with("soak-result") {
                summary = Some(line);
            }
        }
        let status = wait_child(&mut child, Duration::from_secs(660));
        let time = start.elapsed();
        let report = errors.join().unwrap();
        println!("{report}");
        let (peak, peak_rss) = self.stop_sampling();
        let summary = summary.expect("the soak printed its result line");
        println!("{summary}");
        let result = parse_summary(&summary);
        assert!(status.success(), "the soak failed: {summary}");
        assert_eq!(result["passed"], "true");
        SoakRun {
            time,
            summary,
            result,
            peak,
            peak_rss,
        }
    }

    /// Stop the sampler: the heap peak and the RSS peak (KiB).
    pub(crate) fn stop_sampling(&mut self) -> (i64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let peak_rss = self.sampler.take().map_or(0, |s| s.join().unwrap());
        (self.peak.load(Ordering::Relaxed), peak_rss)
    }

    /// Polls the server's stats until `done` holds or `limit` passes; the last stats seen.
    pub(crate) fn wait_for(
        &self,
        limit: Duration,
        done: impl Fn(&ServerStats) -> bool,
    ) -> ServerStats {
        let start = Instant::now();
        loop {
            let stats = self.server.stats().unwrap_or_default();
            if done(&stats) || start.elapsed() > limit {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Once every client is gone: the server holds no session, connection, detached
    /// session or offline message and only its timer task, and its heap (`after`) is back
    /// to the baseline within [`tolerance`].
    pub(crate) fn assert_emptied(&self, stats: &ServerStats, after: i64, sessions: usize) {
        assert_eq!(stats.sessions, 0, "sessions left: {stats:?}");
        assert_eq!(stats.connections, 0, "connections left: {stats:?}");
        assert_eq!(stats.detached, 0, "detached sessions left: {stats:?}");
        assert_eq!(stats.offline_messages, 0, "{stats:?}");
        assert_eq!(stats.tasks, 1, "tasks left: {stats:?}");
        let tolerance = tolerance(sessions);
        assert!(
            after - self.baseline <= tolerance,
            "server heap {} bytes above the baseline after the soak (tolerance {tolerance})",
            after - self.baseline
        );
    }

    /// A fresh login (and three messages to itself) still works.
    pub(crate) fn probe(&self, args: &[String]) {
        let mut probe_args = args.to_vec();
        probe_args.push("--probe".to_owned());
        let (mut probe, probe_lines, probe_errors) = spawn_soak(&probe_args);
        let probe_summary: Vec<String> = probe_lines.iter().collect();
        let probe_status = wait_child(&mut probe, Duration::from_secs(90));
        let probe_report = probe_errors.join().unwrap();
        assert!(
            probe_status.success(),
            "fresh login after the soak failed: {probe_report} {probe_summary:?}"
        );
        let probe_result = parse_summary(probe_summary.last().unwrap());
        assert_eq!(probe_result["counted_received"], "3");
        let final_stats = self.wait_for(Duration::from_secs(10), |s| s.sessions == 0);
        assert_eq!(final_stats.sessions, 0);
    }

    pub(crate) fn stop(self) {
        let dir = self.dir.clone();
        self.server.stop().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A soak process that passed.
pub(crate) struct SoakRun {
    /// How long the process ran.
    pub(crate) time: Duration,
    /// Its `soak-result` line, and that line's `key=value` pairs.
    pub(crate) summary: String,
    pub(crate) result: BTreeMap<String, String>,
    /// The server's heap peak and RSS peak (KiB) while it ran.
    pub(crate) peak: i64,
    pub(crate) peak_rss: u64,
}

impl SoakRun {
    /// The summary's number `key`.
    pub(crate) fn get(&self, key: &str) -> u64 {
        self.result[key].parse().unwrap()
    }
}

/// Runs the soak binary with `args`; its stdout lines arrive on the returned channel.
pub(crate) fn spawn_soak(
    args: &[String],
) -> (
    Child,
    mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the soak binary");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    (child, rx, errors)
}

/// Waits for the child, killing it past `limit`.
pub(crate) fn wait_child(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the soak process ran past {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn parse_summary(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
