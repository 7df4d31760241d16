//! What the load generator reads from `/proc` (Linux): a process's resident memory, the pid
//! listening on a loopback port, and the open-file limit.

use std::fs;

/// `VmRSS` of `pid` in KiB, from `/proc/<pid>/status`.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, "VmRSS:")
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The pid of the process holding a listening TCP socket on `port` (IPv4), found through the
/// socket's inode in `/proc/net/tcp` and the processes' `fd` links. Needs permission to read
/// the owner's `/proc/<pid>/fd` (same user, or root).
pub fn listener_pid(port: u16) -> Option<u32> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = listening_inode(&table, port)?;
    let target = format!("socket:[{inode}]");
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str()) {
                return Some(pid);
            }
        }
    }
    None
}

/// The inode of the socket listening (state `0A`) on `port` in a `/proc/net/tcp` table.
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    let wanted = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let state = fields.get(3)?;
        if local.ends_with(&wanted) && *state == "0A" {
            fields.get(9)?.parse().ok()
        } else {
            None
        }
    })
}

/// The machine's total memory in KiB, from `/proc/meminfo`.
pub fn mem_total_kib() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    parse_status_kib(&meminfo, "MemTotal:")
}

/// This process's soft limit on open files, from `/proc/self/limits`.
pub fn open_file_limit() -> Option<u64> {
    open_file_limit_at("/proc/self/limits")
}

/// Another process's soft limit on open files (e.g. a server under load), from
/// `/proc/<pid>/limits`.
pub fn open_file_limit_of(pid: u32) -> Option<u64> {
    open_file_limit_at(&format!("/proc/{pid}/limits"))
}

fn open_file_limit_at(path: &str) -> Option<u64> {
    let limits = fs::read_to_string(path).ok()?;
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_rss() {
        let kib = resident_kib(std::process::id()).unwrap();
        assert!(kib > 0);
        assert_eq!(
            parse_status_kib("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS:"),
            Some(1234)
        );
    }

    #[test]
    fn finds_a_listening_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1466 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 35135 1 0\n   1: 0100007F:1466 0100007F:D3A2 01 00000000:00000000 00:00000000 00000000   105        0 99999 1 0\n";
        assert_eq!(listening_inode(table, 5222), Some(35135));
        assert_eq!(listening_inode(table, 5223), None);
    }

    #[test]
    fn finds_our_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
        assert!(open_file_limit().unwrap() > 0);
        assert_eq!(open_file_limit_of(std::process::id()), open_file_limit());
        assert!(mem_total_kib().unwrap() > 0);
    }
}
