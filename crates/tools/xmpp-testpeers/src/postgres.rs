//! A private PostgreSQL for database tests: Debian's binaries (`postgresql`, in
//! `/usr/lib/postgresql/<version>/bin`), a cluster made with `initdb` in a temp dir, the
//! server on loopback at a free port with its socket in that dir, stopped by pid when
//! dropped. Nothing of the machine's own PostgreSQL (if it runs one) is touched.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{PeerError, chown_to, free_port, run_as, service_user, stop_pid, tail};

/// The role and database the tests use (trust authentication, loopback only).
const ROLE: &str = "xmpp";

/// Clusters started by this process (their dirs).
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where Debian installs PostgreSQL's server binaries: the newest version present.
pub fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("postgres").exists() && bin.join("initdb").exists()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A running private PostgreSQL server.
#[derive(Debug)]
pub struct PostgresServer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl PostgresServer {
    /// `initdb` a cluster in a fresh temp dir and start the server on `127.0.0.1` at a free
    /// port. `Err(NotInstalled)`-like: `Io(NotFound)` when the binaries are missing.
    pub fn start() -> Result<Self, PeerError> {
        let bin = postgres_bin().ok_or_else(|| {
            PeerError::Io(io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL server binaries (Debian package postgresql) not found",
            ))
        })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "xmpp-testpeers-postgres-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(PeerError::Io)?;
        // PostgreSQL refuses to run as root: as its Debian service user then.
        let user = service_user("postgres");
        chown_to(&dir, user).map_err(PeerError::Io)?;
        let data = dir.join("data");
        let out = run_as(user, &bin.join("initdb").to_string_lossy())
            .arg("-D")
            .arg(&data)
            .args(["-U", ROLE, "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .map_err(PeerError::Io)?;
        if !out.status.success() {
            let _ = fs::remove_dir_all(&dir);
            return Err(PeerError::StartTimeout(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let port = free_port().map_err(PeerError::Io)?;
        let mut server = PostgresServer {
            child: None,
            dir,
            port,
        };
        server.restart()?;
        Ok(server)
    }

    /// Starts the server again on the same cluster and port after [`stop`](Self::stop) (or
    /// [`pause`](Self::pause)): what was committed before is there.
    pub fn restart(&mut self) -> Result<(), PeerError> {
        self.stop();
        let bin = postgres_bin().ok_or_else(|| {
            PeerError::Io(io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL server binaries (Debian package postgresql) not found",
            ))
        })?;
        let user = service_user("postgres");
        let log = fs::File::create(self.dir.join("postgres.log")).map_err(PeerError::Io)?;
        let log2 = log.try_clone().map_err(PeerError::Io)?;
        let child = run_as(user, &bin.join("postgres").to_string_lossy())
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-k")
            .arg(&self.dir)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            // Durable across a killed client process is what the tests need, not across a
            // power cut: no fsync keeps them fast.
            .args(["-c", "fsync=off", "-c", "max_connections=20"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(PeerError::Io)?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Stops the server (PostgreSQL's "fast" shutdown: open sessions are ended, everything
    /// committed is kept); [`restart`](Self::restart) starts it again. Its port is refused
    /// meanwhile.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group (runuser and postgres); INT is the fast shutdown (TERM, the
            // smart one, would wait for every client to disconnect).
            let group = format!("-{}", child.id());
            let _ = std::process::Command::new("kill")
                .args(["-INT", "--", &group])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                stop_pid(&group, || matches!(child.try_wait(), Ok(None)));
            }
            let _ = child.wait();
        }
    }

    /// Freezes the server (`SIGSTOP` to the postmaster and each of its processes, which
    /// PostgreSQL puts in sessions of their own): connections stay open and nothing is
    /// answered, as with an overloaded or hung database, until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d server run again (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
        // `runuser` stops itself when its child stops (job control): it too, or it would
        // never see the postmaster exit.
        if let Some(child) = &self.child {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", "--", &child.id().to_string()])
                .status();
        }
    }

    /// `signal` to the postmaster (its pid from `postmaster.pid`) and its children.
    fn signal(&self, signal: &str) {
        if self.child.is_none() {
            return;
        }
        let pid = fs::read_to_string(self.dir.join("data").join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        let Some(pid) = pid else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args([signal, "--", &pid])
            .status();
        let _ = std::process::Command::new("pkill")
            .args([signal, "-P", &pid])
            .status();
    }

    /// The connection URL (`postgres://xmpp@127.0.0.1:PORT/postgres`).
    pub fn url(&self) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's temp dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    fn wait_ready(&self) -> Result<(), PeerError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // Accepting on TCP, and past recovery ("ready to accept connections").
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
                && self.log().contains("ready to accept connections")
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(PeerError::StartTimeout(tail(&self.log(), 40)))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // A paused server would ignore the shutdown signal.
        self.resume();
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn starts_on_loopback_and_stops_by_pid() {
        if postgres_bin().is_none() {
            crate::skip_or_fail("PostgreSQL (Debian package postgresql) is not installed");
            return;
        }
        let mut server = PostgresServer::start().unwrap();
        let port = server.port();
        // Stopped, then started again on the same cluster and port.
        server.stop();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
        server.restart().unwrap();
        let dir = server.dir().to_owned();
        assert!(server.url().ends_with(&format!(":{port}/postgres")));
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
        assert!(dir.join("data").join("PG_VERSION").exists());
        // Paused and resumed, it still stops at once (runuser, stopped with its child by job
        // control, is resumed too).
        server.pause();
        server.resume();
        let started = Instant::now();
        drop(server);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
        assert!(!dir.exists());
    }
}
