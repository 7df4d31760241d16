//! Where a peer server is (RFC 6120 §3.2): a static route first, else the SRV records
//! `_xmpp-server._tcp.<domain>` in priority and weight order (RFC 2782), each target resolved
//! to A/AAAA, else the domain's own A/AAAA on port 5269. An SRV answer whose only target is
//! `.` means the domain offers no service (RFC 2782): nothing is tried.
//!
//! XEP-0368 §3: `_xmpps-server._tcp.<domain>` (TLS from the first byte) is looked up first,
//! then `_xmpp-server._tcp.<domain>` (STARTTLS); the two lists merge by priority, direct TLS
//! first at equal priority, each candidate marked with how it starts ([`Candidate`]).
//!
//! Lookups go through `hickory-resolver` on tokio: either the system configuration or, with
//! [`Dns::Nameserver`], one nameserver and nothing else (no `/etc/resolv.conf`, no hosts
//! file), which is how the tests point it at a private DNS server on loopback.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::proto::rr::rdata::SRV;
use xmpp_stream::Entropy as _;

/// The default port of server-to-server streams (RFC 6120 §14.7).
pub const XMPP_SERVER_PORT: u16 = 5269;

/// How domains without a static route are looked up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Dns {
    /// No DNS: a domain without a static route is unreachable.
    #[default]
    Off,
    /// The system's resolver configuration (`/etc/resolv.conf` and the hosts file on Unix).
    System,
    /// This nameserver alone (UDP, TCP on truncation), with `timeout` per query; no system
    /// configuration, no hosts file.
    Nameserver {
        /// Where the nameserver listens.
        addr: SocketAddr,
        /// How long one query may take.
        timeout: Duration,
    },
}

/// A resolver built once from [`Dns`], shared by every outgoing connection.
#[derive(Clone, Default)]
pub(super) struct Resolver(Option<Arc<TokioResolver>>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Resolver(on)"
        } else {
            "Resolver(off)"
        })
    }
}

impl Resolver {
    /// The resolver `dns` describes.
    ///
    /// # Errors
    /// The system configuration cannot be read, or the resolver cannot be built.
    pub(super) fn new(dns: &Dns) -> Result<Resolver, xmpp_host::Error> {
        let fail = |e: hickory_resolver::net::NetError| {
            xmpp_host::Error::Io(std::io::Error::other(format!("DNS resolver: {e}")))
        };
        let resolver = match dns {
            Dns::Off => return Ok(Resolver(None)),
            Dns::System => TokioResolver::builder_tokio().map_err(fail)?.build(),
            Dns::Nameserver { addr, timeout } => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, Vec::new(), vec![server]);
                let mut options = ResolverOpts::default();
                options.use_hosts_file = ResolveHosts::Never;
                options.timeout = *timeout;
                options.attempts = 1;
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                    .with_options(options)
                    .build()
            }
        };
        Ok(Resolver(Some(Arc::new(resolver.map_err(fail)?))))
    }

    /// The addresses to try for `domain`, in order: empty when the domain is unreachable
    /// (no DNS, no records, or SRV says no service).
    pub(super) async fn lookup(&self, domain: &str) -> Vec<Candidate> {
        let Some(resolver) = &self.0 else {
            return Vec::new();
        };
        // Fully qualified: no search domains. XEP-0368 first.
        let direct = srv_records(resolver, &format!("_xmpps-server._tcp.{domain}.")).await;
        let starttls = srv_records(resolver, &format!("_xmpp-server._tcp.{domain}.")).await;
        if direct.is_empty() && starttls.is_empty() {
            return addresses(resolver, &format!("{domain}."), XMPP_SERVER_PORT)
                .await
                .into_iter()
                .map(|addr| Candidate {
                    addr,
                    direct_tls: false,
                })
                .collect();
        }
        // RFC 2782: a single record with target "." means "no service here".
        let no_service = |records: &[SRV]| records.len() == 1 && records[0].target.is_root();
        let (direct, starttls) = (
            if no_service(&direct) {
                Vec::new()
            } else {
                direct
            },
            if no_service(&starttls) {
                Vec::new()
            } else {
                starttls
            },
        );
        let mut entropy = xmpp_host::OsEntropy::new();
        let mut ordered: Vec<(SRV, bool)> =
            srv_order(direct, |bound| random_below(&mut entropy, bound))
                .into_iter()
                .map(|srv| (srv, true))
                .chain(
                    srv_order(starttls, |bound| random_below(&mut entropy, bound))
                        .into_iter()
                        .map(|srv| (srv, false)),
                )
                .collect();
        // XEP-0368 §3: by priority; at equal priority direct TLS first (a stable sort keeps
        // each list's RFC 2782 order).
        ordered.sort_by_key(|(srv, direct_tls)| (srv.priority, !*direct_tls));
        let mut out = Vec::new();
        for (srv, direct_tls) in ordered {
            if srv.target.is_root() {
                continue;
            }
            for addr in addresses(resolver, &srv.target.to_ascii(), srv.port).await {
                out.push(Candidate { addr, direct_tls });
            }
        }
        out
    }
}

/// One address to try for a peer server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Candidate {
    /// Where.
    pub(super) addr: SocketAddr,
    /// XEP-0368: TLS from the first byte (found by `_xmpps-server._tcp`), else STARTTLS.
    pub(super) direct_tls: bool,
}

/// The SRV records of `name`; none when the lookup fails.
async fn srv_records(resolver: &TokioResolver, name: &str) -> Vec<SRV> {
    match resolver.srv_lookup(name).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(srv.clone()),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The A and AAAA addresses of `host`, on `port`.
async fn addresses(resolver: &TokioResolver, host: &str, port: u16) -> Vec<SocketAddr> {
    match resolver.lookup_ip(host).await {
        Ok(ips) => ips
            .iter()
            .map(|ip: IpAddr| SocketAddr::new(ip, port))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A number in `0..=bound` from the OS.
fn random_below(entropy: &mut xmpp_host::OsEntropy, bound: u32) -> u32 {
    let mut bytes = [0u8; 4];
    entropy.fill(&mut bytes);
    let n = u32::from_le_bytes(bytes);
    n.checked_rem(bound.saturating_add(1)).unwrap_or(n)
}

/// RFC 2782 order: lowest priority first; within a priority, weighted random selection
/// (`pick(total)` gives a number in `0..=total`), zero-weight records with a small chance.
///
/// The records are the remote domain's to choose (as many as a DNS answer holds): each
/// selection finds its record and takes it out through two Fenwick trees (weights, and which
/// records remain) in O(log n), where summing, searching and removing from a list cost O(n)
/// each, O(n²) per priority.
fn srv_order(mut records: Vec<SRV>, mut pick: impl FnMut(u32) -> u32) -> Vec<SRV> {
    records.sort_by_key(|srv| (srv.priority, srv.weight));
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.peek() {
        let priority = first.priority;
        let mut group: Vec<Option<SRV>> = Vec::new();
        while let Some(srv) = rest.next_if(|srv| srv.priority == priority) {
            group.push(Some(srv));
        }
        let mut weights = Fenwick::new(group.len());
        let mut remaining = Fenwick::new(group.len());
        let mut total = 0u64;
        for (i, srv) in group.iter().enumerate() {
            let weight = srv.as_ref().map_or(0, |srv| u64::from(srv.weight));
            weights.add(i, weight);
            remaining.add(i, 1);
            total += weight;
        }
        for _ in 0..group.len() {
            let chosen = u64::from(pick(u32::try_from(total).unwrap_or(u32::MAX)));
            // The first remaining record whose running sum reaches `chosen`: a zero weight
            // adds nothing, so for `chosen` >= 1 it is the first whose prefix sum of weights
            // reaches it; for 0 (or past the total) the first remaining one.
            let first_left = remaining.lower_bound(1);
            let index = if chosen == 0 {
                first_left
            } else {
                weights.lower_bound(chosen).or(first_left)
            };
            let Some(srv) = index.and_then(|i| group.get_mut(i)).and_then(Option::take) else {
                break;
            };
            if let Some(i) = index {
                weights.sub(i, u64::from(srv.weight));
                remaining.sub(i, 1);
            }
            total -= u64::from(srv.weight);
            out.push(srv);
        }
    }
    out
}

/// A Fenwick (binary indexed) tree of non-negative counts: prefix sums and the first index
/// whose prefix sum reaches a value, in O(log n).
struct Fenwick(Vec<u64>);

impl Fenwick {
    fn new(len: usize) -> Self {
        Fenwick(vec![0; len])
    }

    fn add(&mut self, index: usize, delta: u64) {
        let mut i = index + 1;
        while let Some(slot) = self.0.get_mut(i - 1) {
            *slot += delta;
            i += i & i.wrapping_neg();
        }
    }

    fn sub(&mut self, index: usize, delta: u64) {
        let mut i = index + 1;
        while let Some(slot) = self.0.get_mut(i - 1) {
            *slot = slot.saturating_sub(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// The smallest index whose prefix sum (itself included) is at least `target` (>= 1).
    fn lower_bound(&self, target: u64) -> Option<usize> {
        let len = self.0.len();
        let mut step = len.checked_next_power_of_two()?;
        if step > len {
            step /= 2;
        }
        let (mut at, mut left) = (0usize, target);
        while step > 0 {
            let next = at + step;
            if let Some(&sum) = self.0.get(next - 1)
                && sum < left
            {
                at = next;
                left -= sum;
            }
            step /= 2;
        }
        (at < len).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hickory_resolver::proto::rr::Name;

    fn srv(priority: u16, weight: u16, port: u16) -> SRV {
        SRV::new(priority, weight, port, Name::from_ascii("h.test.").unwrap())
    }

    fn ports(records: &[SRV]) -> Vec<u16> {
        records.iter().map(|srv| srv.port).collect()
    }

    #[test]
    fn lower_priority_comes_first_whatever_the_weights() {
        let records = vec![srv(20, 100, 1), srv(10, 0, 2), srv(30, 5, 3)];
        assert_eq!(ports(&srv_order(records, |_| 0)), vec![2, 1, 3]);
    }

    /// The selection as RFC 2782 words it, one pass over the remaining records per pick.
    fn srv_order_by_scanning(mut records: Vec<SRV>, mut pick: impl FnMut(u32) -> u32) -> Vec<SRV> {
        records.sort_by_key(|srv| (srv.priority, srv.weight));
        let mut out = Vec::with_capacity(records.len());
        while let Some(first) = records.first() {
            let priority = first.priority;
            let end = records
                .iter()
                .position(|srv| srv.priority != priority)
                .unwrap_or(records.len());
            let mut group: Vec<SRV> = records.drain(..end).collect();
            while !group.is_empty() {
                let total: u32 = group.iter().map(|srv| u32::from(srv.weight)).sum();
                let chosen = pick(total);
                let mut running = 0u32;
                let index = group
                    .iter()
                    .position(|srv| {
                        running += u32::from(srv.weight);
                        running >= chosen
                    })
                    .unwrap_or(0);
                out.push(group.remove(index));
            }
        }
        out
    }

    /// Picks anywhere in `0..=total`, and in some rounds past it (a host's bug).
    fn chooser(picks: Vec<u64>, round: usize) -> impl FnMut(u32) -> u32 {
        let mut k = 0;
        move |total: u32| {
            let p = picks.get(k).copied().unwrap_or(0);
            k += 1;
            let bound = u64::from(total) + if round.is_multiple_of(7) { 3 } else { 1 };
            u32::try_from(p % bound).unwrap()
        }
    }

    #[test]
    fn the_fenwick_selection_is_the_scanning_one() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..400 {
            let len = usize::try_from(next() % 40).unwrap();
            let records: Vec<SRV> = (0..len)
                .map(|i| {
                    let priority = u16::try_from(next() % 4).unwrap();
                    // Zero weights often: they sort first and take a pick of 0.
                    let weight =
                        u16::try_from(next() % 5).unwrap() * u16::try_from(next() % 3).unwrap();
                    srv(priority, weight, u16::try_from(i).unwrap())
                })
                .collect();
            let picks: Vec<u64> = (0..len).map(|_| next()).collect();
            assert_eq!(
                ports(&srv_order(records.clone(), chooser(picks.clone(), round))),
                ports(&srv_order_by_scanning(records, chooser(picks, round))),
                "round {round}"
            );
        }
    }

    #[test]
    fn weights_choose_within_a_priority() {
        // Sorted by weight: 0 (port 1), 10 (port 2), 30 (port 3); running sums 0, 10, 40.
        let records = vec![srv(5, 30, 3), srv(5, 0, 1), srv(5, 10, 2)];
        // Always the top of the range: the heaviest remaining record each round.
        assert_eq!(
            ports(&srv_order(records.clone(), |total| total)),
            vec![3, 2, 1]
        );
        // A pick of 0 lands on the zero-weight record (the first whose running sum >= 0).
        assert_eq!(ports(&srv_order(records.clone(), |_| 0)), vec![1, 2, 3]);
        // 1..=10: the weight-10 record.
        assert_eq!(ports(&srv_order(records, |_| 7))[0], 2);
    }
}
