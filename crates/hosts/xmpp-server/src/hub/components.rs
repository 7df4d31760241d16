//! XEP-0114 components: which domains they serve, with which secrets, and which are
//! connected now. The hub's [`Components`] is the [`ComponentBackend`] every
//! `ComponentServerStream` asks for secrets and for `conflict`; routing to and from the
//! components is `routing`'s.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use xmpp_jid::{BareJid, Jid};
use xmpp_stream::ComponentBackend;

use super::SessionId;

/// The configured components and the session each connected one runs on. Shared (`Arc`)
/// between the hub and every component stream: the streams read it during the handshake,
/// the hub updates it when a handshake succeeds and when a component's stream ends.
#[derive(Debug, Default)]
pub(super) struct Components {
    /// Secrets by component domain, from the configuration.
    secrets: BTreeMap<BareJid, String>,
    /// The session of each connected component. Behind a mutex only because the streams
    /// hold the backend by `Arc`: the hub is single-threaded and never holds the lock while
    /// it drives a stream.
    connected: Mutex<BTreeMap<BareJid, SessionId>>,
}

impl Components {
    pub(super) fn new(configured: &[(BareJid, String)]) -> Self {
        Components {
            secrets: configured.iter().cloned().collect(),
            connected: Mutex::default(),
        }
    }

    fn connected(&self) -> MutexGuard<'_, BTreeMap<BareJid, SessionId>> {
        // Inserts and removes cannot panic half-way: a poisoned map is still consistent.
        self.connected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The configured component domains, in order.
    pub(super) fn domains(&self) -> impl Iterator<Item = &BareJid> {
        self.secrets.keys()
    }

    /// The configured component serving `address`: its domain is the component's domain or a
    /// subdomain of it (XEP-0114 §3: a component handles its whole subtree); the longest
    /// configured domain wins. `None` for an address that is not a JID.
    pub(super) fn serving(&self, address: &str) -> Option<BareJid> {
        let jid = Jid::new(address).ok()?;
        let domain = jid.domain();
        self.secrets
            .keys()
            .filter(|component| {
                let component = component.as_str();
                domain == component
                    || domain
                        .strip_suffix(component)
                        .is_some_and(|head| head.ends_with('.'))
            })
            .max_by_key(|component| component.as_str().len())
            .cloned()
    }

    /// The session of the connected component `domain`.
    pub(super) fn session(&self, domain: &BareJid) -> Option<SessionId> {
        self.connected().get(domain).copied()
    }

    /// Record that `domain` is now served by session `id`. `false` (nothing changed) when
    /// another session already serves it.
    pub(super) fn connect(&self, domain: &BareJid, id: SessionId) -> bool {
        let mut connected = self.connected();
        match connected.get(domain) {
            Some(other) if *other != id => false,
            _ => {
                connected.insert(domain.clone(), id);
                true
            }
        }
    }

    /// Session `id` (which served `domain`) is gone.
    pub(super) fn disconnect(&self, domain: &BareJid, id: SessionId) {
        let mut connected = self.connected();
        if connected.get(domain) == Some(&id) {
            connected.remove(domain);
        }
    }
}

impl ComponentBackend for Components {
    fn secret(&self, domain: &BareJid) -> Option<String> {
        self.secrets.get(domain).cloned()
    }

    fn is_connected(&self, domain: &BareJid) -> bool {
        self.connected().contains_key(domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn a_component_serves_its_domain_and_every_subdomain() {
        let components = Components::new(&[
            (jid("comp.localhost"), "a".to_owned()),
            (jid("deep.comp.localhost"), "b".to_owned()),
        ]);
        let serving = |to: &str| components.serving(to).map(|d| d.to_string());
        assert_eq!(serving("comp.localhost").as_deref(), Some("comp.localhost"));
        assert_eq!(
            serving("bot@comp.localhost/r").as_deref(),
            Some("comp.localhost")
        );
        assert_eq!(
            serving("room@muc.comp.localhost").as_deref(),
            Some("comp.localhost")
        );
        // The longest configured domain wins.
        assert_eq!(
            serving("x@a.deep.comp.localhost").as_deref(),
            Some("deep.comp.localhost")
        );
        // A suffix that is not a whole label, the parent domain, another domain.
        assert_eq!(serving("xcomp.localhost"), None);
        assert_eq!(serving("localhost"), None);
        assert_eq!(serving("alice@example.test"), None);
        assert_eq!(serving("not a jid@@"), None);
    }

    #[test]
    fn one_session_per_component_domain() {
        let components = Components::new(&[(jid("comp.localhost"), "s".to_owned())]);
        let domain = jid("comp.localhost");
        assert_eq!(components.secret(&domain).as_deref(), Some("s"));
        assert_eq!(components.secret(&jid("other.localhost")), None);
        assert!(!components.is_connected(&domain));
        assert!(components.connect(&domain, SessionId(1)));
        assert!(components.is_connected(&domain));
        assert!(!components.connect(&domain, SessionId(2)));
        // Only the session that serves it disconnects it.
        components.disconnect(&domain, SessionId(2));
        assert_eq!(components.session(&domain), Some(SessionId(1)));
        components.disconnect(&domain, SessionId(1));
        assert!(!components.is_connected(&domain));
        assert_eq!(components.session(&domain), None);
    }
}
