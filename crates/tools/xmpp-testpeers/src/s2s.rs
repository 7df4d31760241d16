//! What federation tests need beside the peers themselves: a test certificate authority that
//! issues server certificates in the one form every peer accepts, and a private DNS server
//! (Debian's `dnsmasq`) on a loopback port that answers the SRV records of the test domains,
//! so that no test domain ever reaches the machine's own resolver.
//!
//! Measured needs (`crates/tools/xmpp-testpeers/README.md`, issue 16): Prosody 0.12 has no
//! static s2s routes and dials port 5269 unless an SRV record says otherwise; ejabberd 23.01
//! looks SRV records up with Erlang's resolver and resolves their targets through glibc, so
//! targets are `localhost`. Server certificates carry a DNS-ID and an SRV-ID
//! (`_xmpp-server.<domain>`) and never an XmppAddr, which crashes ejabberd 23.01's s2s
//! handler.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use super::{civil_date, stop_pid, which};

/// A test certificate authority (made with rcgen in memory, valid from yesterday for 30
/// days: ejabberd 23.01 cannot hold a certificate that expires more than 49 days away).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate and its key, both PEM.
#[derive(Clone, Debug)]
pub struct ServerCert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
}

/// Valid from yesterday for 30 days (see [`TestCa`]).
pub(crate) fn short_validity(params: &mut CertificateParams) {
    const DAY: u64 = 86_400;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let date = |(year, month, day)| rcgen::date_time_ymd(year, month, day);
    params.not_before = date(civil_date(now.saturating_sub(DAY)));
    params.not_after = date(civil_date(now + 30 * DAY));
}

impl TestCa {
    /// A new CA whose certificate's common name is `name`.
    ///
    /// # Errors
    /// When rcgen cannot make the key or the certificate.
    pub fn new(name: &str) -> Result<TestCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        short_validity(&mut params);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(TestCa { issuer })
    }

    /// The CA's certificate (PEM), for trust stores.
    #[must_use]
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `domain`: subject CN `domain`, subjectAltName dNSName
    /// `domain` and SRVName `_xmpp-server.<domain>` (RFC 4985, an IA5String: written by hand,
    /// rcgen writes otherNames as UTF8String), server and client authentication.
    ///
    /// # Errors
    /// When rcgen cannot make the key or the certificate.
    pub fn issue(&self, domain: &str) -> Result<ServerCert, rcgen::Error> {
        self.issue_for(&[domain])
    }

    /// [`issue`](Self::issue) for several domains: a DNS-ID and an SRV-ID for each, the
    /// subject CN the first.
    ///
    /// # Errors
    /// As [`issue`](Self::issue).
    pub fn issue_for(&self, domains: &[&str]) -> Result<ServerCert, rcgen::Error> {
        self.issue_with(
            domains,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// [`issue`](Self::issue) with the server authentication key usage only, as Let's
    /// Encrypt issues them since 2025 (no client authentication, though s2s presents the
    /// certificate as a TLS client too). Measured: Prosody 0.12 and our server accept such a
    /// certificate from a dialing server; ejabberd 23.01 refuses it for SASL EXTERNAL
    /// (OpenSSL's "unsupported certificate purpose").
    ///
    /// # Errors
    /// As [`issue`](Self::issue).
    pub fn issue_server_auth_only(&self, domain: &str) -> Result<ServerCert, rcgen::Error> {
        self.issue_with(&[domain], &[ExtendedKeyUsagePurpose::ServerAuth])
    }

    /// A fresh key and its certificate of `params`, signed by this CA, valid 30 days.
    fn sign(&self, mut params: CertificateParams) -> Result<ServerCert, rcgen::Error> {
        short_validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate for SASL EXTERNAL (XEP-0178 §2): subject CN `jid`, one
    /// subjectAltName, the XmppAddr otherName `jid` (RFC 6120 §13.7.1.4, a UTF8String),
    /// client authentication only.
    ///
    /// # Errors
    /// As [`issue`](Self::issue).
    pub fn issue_client(&self, jid: &str) -> Result<ServerCert, rcgen::Error> {
        const ID_ON_XMPP_ADDR: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 8, 5];
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, jid);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.subject_alt_names = vec![rcgen::SanType::OtherName((
            ID_ON_XMPP_ADDR.to_vec(),
            jid.into(),
        ))];
        self.sign(params)
    }

    /// [`issue`](Self::issue) with these extended key usages.
    fn issue_with(
        &self,
        domains: &[&str],
        usages: &[ExtendedKeyUsagePurpose],
    ) -> Result<ServerCert, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        if let Some(first) = domains.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.extended_key_usages = usages.to_vec();
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                subject_alt_names(domains),
            ));
        self.sign(params)
    }
}

/// DER type-length-value (definite length, short or long form).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(content.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = content.len().to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let len = &bytes[skip..];
            out.push(0x80 | u8::try_from(len.len()).unwrap_or(0));
            out.extend_from_slice(len);
        }
    }
    out.extend_from_slice(content);
    out
}

/// `SubjectAltName ::= GeneralNames`: `[2] dNSName`, `[0] otherName { id-on-dnsSRV,
/// [0] EXPLICIT IA5String }`.
fn subject_alt_names(domains: &[&str]) -> Vec<u8> {
    const ID_ON_DNS_SRV: [u8; 8] = [0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07];
    let mut names = Vec::new();
    for domain in domains {
        names.extend(tlv(0x82, domain.as_bytes()));
        let srv = format!("_xmpp-server.{domain}");
        let mut other = tlv(0x06, &ID_ON_DNS_SRV);
        other.extend(tlv(0xA0, &tlv(0x16, srv.as_bytes())));
        names.extend(tlv(0xA0, &other));
    }
    tlv(0x30, &names)
}

/// An SRV record `_xmpp-server._tcp.<domain>` pointing at `localhost:<port>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvRecord {
    /// The XMPP domain.
    pub domain: String,
    /// The s2s port on `localhost`.
    pub port: u16,
}

/// `dnsmasq` answering on a loopback UDP and TCP port, authoritative for nothing but the
/// records given (no upstream, no `/etc/hosts`, no `/etc/resolv.conf`; everything under
/// `.test` it does not know is NXDOMAIN). Stopped by pid when dropped.
#[derive(Debug)]
pub struct PrivateDns {
    /// Where it answers (`127.0.0.1`, UDP and TCP).
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl PrivateDns {
    /// Whether `dnsmasq` is on this machine (Debian package `dnsmasq-base`).
    #[must_use]
    pub fn is_installed() -> bool {
        which("dnsmasq").is_some()
    }

    /// Starts `dnsmasq` with one SRV record per entry of `records`, on a free loopback
    /// port, and waits until it answers.
    ///
    /// # Errors
    /// When `dnsmasq` cannot be started or does not answer within 5 s.
    pub fn start(records: &[SrvRecord]) -> io::Result<PrivateDns> {
        // The port is free when picked but not held: another process (a parallel test) may
        // take its UDP or TCP side before dnsmasq binds both; then dnsmasq exits and a fresh
        // port is tried.
        let mut last = io::Error::other("dnsmasq did not start");
        for _ in 0..5 {
            match Self::start_once(records) {
                Ok(dns) => return Ok(dns),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once(records: &[SrvRecord]) -> io::Result<PrivateDns> {
        let Some(program) = which("dnsmasq") else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "dnsmasq is not installed",
            ));
        };
        let port = free_udp_and_tcp_port()?;
        let mut command = Command::new(program);
        command
            .arg("--keep-in-foreground")
            .arg("--conf-file=/dev/null")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg("--no-poll")
            .arg("--pid-file=")
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg(format!("--port={port}"))
            .arg("--local=/test/");
        // Running as root, dnsmasq would switch to `nobody`: it needs nothing of root's.
        command.arg("--user=").arg("--group=");
        for record in records {
            command.arg(format!(
                "--srv-host=_xmpp-server._tcp.{},localhost,{}",
                record.domain, record.port
            ));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let mut dns = PrivateDns {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: Some(child),
        };
        dns.wait_answering(
            records
                .first()
                .map_or("nothing.test", |r| r.domain.as_str()),
        )?;
        Ok(dns)
    }

    fn wait_answering(&mut self, domain: &str) -> io::Result<()> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let query = srv_query(&format!("_xmpp-server._tcp.{domain}"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = io::Read::read_to_string(&mut stderr, &mut err);
                }
                return Err(io::Error::other(format!(
                    "dnsmasq exited ({status}): {err}"
                )));
            }
            let _ = socket.send_to(&query, self.addr);
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && n >= 12
                && buf[..2] == query[..2]
            {
                return Ok(());
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "dnsmasq did not answer in 5 s",
        ))
    }
}

/// A loopback port free for both UDP and TCP at the time of asking.
fn free_udp_and_tcp_port() -> io::Result<u16> {
    let mut last = io::Error::other("no free port");
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp.local_addr()?.port();
        match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(_) => return Ok(port),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A DNS query (id 0x7e57, recursion desired) for the SRV records of `name`.
fn srv_query(name: &str) -> Vec<u8> {
    let mut out = vec![0x7e, 0x57, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.extend_from_slice(&[0, 0, 33, 0, 1]);
    out
}

impl Drop for PrivateDns {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            stop_pid(&group, || matches!(child.try_wait(), Ok(None)));
            let _ = child.wait();
        }
    }
}

/// How a peer federates ([`PeerOptions::with_s2s`](crate::PeerOptions::with_s2s)).
#[derive(Clone, Debug)]
pub struct S2sOptions {
    /// The peer's domain (under `.test`): its only virtual host, for its users too.
    pub domain: String,
    /// Its certificate for `domain` (c2s and s2s), e.g. from [`TestCa::issue`].
    pub cert: ServerCert,
    /// How it authenticates peers and is authenticated by them.
    pub auth: S2sAuth,
    /// The private DNS server it asks for the SRV records of other domains.
    pub dns: SocketAddr,
}

/// How a federating peer authenticates server links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S2sAuth {
    /// TLS certificates only: it trusts this CA (PEM) for peers' certificates, requires a
    /// valid one, and has dialback turned off (Prosody `s2s_secure_auth`, no
    /// `mod_dialback`; ejabberd without `mod_s2s_dialback`), so SASL EXTERNAL is the only
    /// way in either direction.
    External {
        /// The CA (PEM) peers' certificates chain to.
        ca_pem: String,
    },
    /// Dialback (XEP-0220): it trusts no test CA, so no peer's certificate validates and
    /// dialback is the only way.
    Dialback,
}

/// Prosody's configuration lines for s2s (inserted before its `VirtualHost`).
pub(crate) fn prosody_config(s2s: &S2sOptions, port: u16, dir: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "s2s_ports = {{ {port} }}");
    out.push_str("s2s_interfaces = { \"127.0.0.1\" }\ns2s_require_encryption = true\n");
    let _ = writeln!(
        out,
        "unbound = {{ resolvconf = false; hoststxt = false; forward = \"{}@{}\"; \
         options = {{ [\"local-zone:\"] = \"test. transparent\" }} }}",
        s2s.dns.ip(),
        s2s.dns.port()
    );
    match &s2s.auth {
        S2sAuth::External { .. } => {
            out.push_str("s2s_secure_auth = true\n");
            let _ = writeln!(
                out,
                "ssl = {{ certificate = \"{dir}/cert.pem\"; key = \"{dir}/key.pem\"; \
                 cafile = \"{dir}/s2s-ca.pem\"; }}"
            );
        }
        S2sAuth::Dialback => {
            out.push_str("s2s_secure_auth = false\n");
            // A CA nobody's certificate chains to: the system roots would do too, but this
            // keeps the test independent of what the machine trusts.
            let _ = writeln!(
                out,
                "ssl = {{ certificate = \"{dir}/cert.pem\"; key = \"{dir}/key.pem\"; \
                 cafile = \"{dir}/cert.pem\"; }}"
            );
        }
    }
    out
}

/// The `inetrc` of ejabberd's config folder: the private DNS server alone.
pub(crate) fn ejabberd_inetrc(dns: SocketAddr) -> String {
    let octets = match dns.ip() {
        std::net::IpAddr::V4(ip) => ip.octets(),
        std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST.octets(),
    };
    format!(
        "{{resolv_conf, \"/dev/null\"}}.\n{{nameserver, {{{},{},{},{}}}, {}}}.\n",
        octets[0],
        octets[1],
        octets[2],
        octets[3],
        dns.port()
    )
}

/// ejabberd's top-level configuration for s2s, and its listener (a YAML list item).
pub(crate) fn ejabberd_config(s2s: &S2sOptions, port: u16, dir: &str) -> (String, String) {
    let mut top = String::from(
        "s2s_use_starttls: required\noutgoing_s2s_families: [ipv4]\ns2s_dns_timeout: 2\n\
         s2s_dns_retries: 1\ns2s_access: all\n",
    );
    if matches!(s2s.auth, S2sAuth::External { .. }) {
        let _ = writeln!(top, "s2s_cafile: {dir}/s2s-ca.pem");
    }
    let listener =
        format!("  - port: {port}\n    ip: \"127.0.0.1\"\n    module: ejabberd_s2s_in\n");
    (top, listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks `dns` for the SRV records of `name`: (response code, answer count, the reply).
    fn ask(dns: &PrivateDns, name: &str) -> (u8, u16, Vec<u8>) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        socket.send_to(&srv_query(name), dns.addr).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        (
            buf[3] & 0x0f,
            u16::from_be_bytes([buf[6], buf[7]]),
            buf[..n].to_vec(),
        )
    }

    #[test]
    fn private_dns_answers_its_srv_records_and_nxdomain_for_the_rest_of_test() {
        if !PrivateDns::is_installed() {
            crate::skip_or_fail("dnsmasq (Debian dnsmasq-base) is not installed");
            return;
        }
        let dns = PrivateDns::start(&[SrvRecord {
            domain: "a.s2s.test".to_owned(),
            port: 47_123,
        }])
        .unwrap();
        let (code, answers, reply) = ask(&dns, "_xmpp-server._tcp.a.s2s.test");
        assert_eq!((code, answers), (0, 1));
        // SRV RDATA: priority, weight, port 47123 (0xb813), then the target `localhost`.
        let target = b"\x09localhost\x00";
        let at = reply
            .windows(target.len())
            .position(|w| w == target)
            .unwrap();
        assert_eq!(&reply[at - 2..at], &47_123u16.to_be_bytes());
        assert_eq!(ask(&dns, "_xmpp-server._tcp.b.s2s.test").0, 3, "NXDOMAIN");
        let addr = dns.addr;
        drop(dns);
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        socket.send_to(&srv_query("a.s2s.test"), addr).unwrap();
        assert!(
            socket.recv_from(&mut [0u8; 512]).is_err(),
            "still answering"
        );
    }

    #[test]
    fn test_ca_certificates_carry_a_dns_id_and_an_srv_id() {
        let ca = TestCa::new("unit test CA").unwrap();
        let cert = ca.issue("peer.s2s.test").unwrap();
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let names = subject_alt_names(&["peer.s2s.test"]);
        assert!(names.windows(13).any(|w| w == b"peer.s2s.test"));
        assert!(
            names
                .windows(26)
                .any(|w| w == b"_xmpp-server.peer.s2s.test")
        );
        // A long name takes the long DER length form.
        assert_eq!(tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
    }
}
