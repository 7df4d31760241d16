//! Shared test helpers: an in-memory credential store and an exchange driver.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a failure is the test failing

use std::collections::BTreeMap;

use xmpp_sasl::{
    Client, Condition, CredentialStore, Error, ScramHash, Server, ServerStep, StoredCredentials,
};

/// Accounts keyed by (user, hash); optional per-user conditions; authzid grants.
#[derive(Default)]
pub struct Store {
    pub creds: BTreeMap<(String, ScramHash), StoredCredentials>,
    pub conditions: BTreeMap<String, Condition>,
    pub grants: Vec<(String, String)>,
}

impl Store {
    /// A store holding `user`/`password` for every hash (4096 iterations, fixed salt).
    pub fn with_user(user: &str, password: &str) -> Store {
        let mut s = Store::default();
        s.add(user, password, 4096);
        s
    }

    pub fn add(&mut self, user: &str, password: &str, iterations: u32) {
        for hash in ScramHash::ALL {
            let c = StoredCredentials::derive(
                hash,
                password,
                xmpp_sasl::PasswordPrep::SaslPrep,
                b"NaCl-for-tests",
                iterations,
            )
            .unwrap();
            self.creds.insert((user.to_owned(), hash), c);
        }
    }
}

impl CredentialStore for Store {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        if let Some(c) = self.conditions.get(authcid) {
            return Err(*c);
        }
        Ok(self.creds.get(&(authcid.to_owned(), hash)).cloned())
    }

    fn authorize(&self, authcid: &str, authzid: &str) -> Result<(), Condition> {
        if authcid == authzid
            || self
                .grants
                .iter()
                .any(|(a, z)| a == authcid && z == authzid)
        {
            Ok(())
        } else {
            Err(Condition::InvalidAuthzid)
        }
    }
}

/// Which side failed an exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Failed {
    Client(Error),
    Server(Error),
}

impl Failed {
    pub fn error(&self) -> &Error {
        match self {
            Failed::Client(e) | Failed::Server(e) => e,
        }
    }
}

/// Drives a full exchange, with `tamper` applied to every client message (index, bytes).
pub fn run_with(
    client: &mut Client,
    server: &mut Server,
    store: &Store,
    mut tamper: impl FnMut(usize, Vec<u8>) -> Vec<u8>,
) -> Result<xmpp_sasl::Authenticated, Failed> {
    let mut msg = client.start().map_err(Failed::Client)?.unwrap_or_default();
    for i in 0..8 {
        let sent = tamper(i, msg);
        match server.step(store, &sent).map_err(Failed::Server)? {
            ServerStep::Challenge(c) => msg = client.step(&c).map_err(Failed::Client)?,
            ServerStep::Success {
                additional_data,
                identity,
            } => {
                client
                    .finish(additional_data.as_deref())
                    .map_err(Failed::Client)?;
                return Ok(identity);
            }
            _ => unreachable!(),
        }
    }
    panic!("exchange did not terminate");
}

pub fn run(
    client: &mut Client,
    server: &mut Server,
    store: &Store,
) -> Result<xmpp_sasl::Authenticated, Failed> {
    run_with(client, server, store, |_, m| m)
}
