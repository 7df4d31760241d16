//! The client-to-server negotiation the `stream` and `s2s` benches measure: a `ClientStream`
//! and a `ServerStream` in the in-memory [`Pair`], no TLS, SCRAM with cached client keys (so a
//! benchmarked login runs no PBKDF2), resource binding.
// Fixed test data: the unwraps cannot fail.
#![allow(clippy::missing_panics_doc, clippy::unwrap_used)]

use std::sync::OnceLock;

use xmpp_stream::pair::Pair;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Credentials, MemoryBackend, SeededEntropy, ServerConfig,
    ServerStream, TlsPolicy,
};

/// The server's account store: `juliet@im.example.com`, 4096 iterations, built once.
pub fn backend() -> MemoryBackend {
    static BACKEND: OnceLock<MemoryBackend> = OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096))
        .clone()
}

/// Juliet's client, no TLS, resource `balcony`.
pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new(
        BareJid::new("juliet@im.example.com").unwrap(),
        "r0m30myr0m30",
    );
    config.tls = TlsPolicy::Disabled;
    config.resource = Some("balcony".into());
    config
}

/// `im.example.com`, no TLS.
pub fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new(BareJid::new("im.example.com").unwrap());
    config.tls = TlsPolicy::Disabled;
    config
}

/// Client keys from one real login, so benchmarked logins run no PBKDF2.
pub fn cached_keys() -> Credentials {
    static KEYS: OnceLock<Credentials> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut pair = pair(Credentials::Password("r0m30myr0m30".into()));
        pair.drive();
        Credentials::ScramKeys(pair.client.scram_keys().unwrap().clone())
    })
    .clone()
}

/// A started pair (headers queued) whose client logs in with `credentials`.
pub fn pair(credentials: Credentials) -> Pair {
    let mut config = client_config();
    config.credentials = credentials;
    let client = ClientStream::new(config, SeededEntropy::new(1));
    let server = ServerStream::new(server_config(), SeededEntropy::new(2), backend());
    let mut pair = Pair::new(client, server);
    pair.start();
    pair
}
