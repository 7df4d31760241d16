//! What the server stores (never a password) and what the client may cache (never PBKDF2 twice).

use alloc::vec::Vec;
use core::fmt;

use crate::crypto::{self, Key};
use crate::error::{Condition, Error};
use crate::mechanism::ScramHash;
use crate::prep::PasswordPrep;

/// Stored SCRAM credentials for one account and one hash (RFC 5802 §2.2, §3). The keys are
/// zeroized when dropped.
///
/// `StoredKey = H(ClientKey)` and `ServerKey` let a server verify a SCRAM proof (and a PLAIN
/// password, after one PBKDF2) without ever holding the password.
#[derive(Clone)]
pub struct StoredCredentials {
    hash: ScramHash,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Key,
    server_key: Key,
}

impl StoredCredentials {
    /// Derives credentials from a password (prepared with `prep`), a salt the host drew from its
    /// random source, and an iteration count (4096 or more; RFC 7677 recommends at least 4096).
    pub fn derive(
        hash: ScramHash,
        password: &str,
        prep: PasswordPrep,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, Error> {
        if salt.is_empty() {
            return Err(Error::EmptySalt);
        }
        if iterations == 0 {
            return Err(Error::Usage("iteration count must be positive"));
        }
        let prepared = prep.prepare(password)?;
        let salted = crypto::salted_password(hash, prepared.as_bytes(), salt, iterations);
        let (client_key, server_key) = crypto::client_server_keys(hash, &salted);
        Ok(StoredCredentials {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: crypto::h(hash, client_key.as_slice()),
            server_key,
        })
    }

    /// Rebuilds credentials from stored values (e.g. a database row). Fails when the key
    /// lengths do not match `hash`, or the salt is empty, or `iterations` is zero.
    pub fn from_parts(
        hash: ScramHash,
        salt: &[u8],
        iterations: u32,
        stored_key: &[u8],
        server_key: &[u8],
    ) -> Result<Self, Error> {
        let n = hash.output_len();
        if stored_key.len() != n || server_key.len() != n {
            return Err(Error::Usage("key length does not match the hash"));
        }
        if salt.is_empty() {
            return Err(Error::EmptySalt);
        }
        if iterations == 0 {
            return Err(Error::Usage("iteration count must be positive"));
        }
        Ok(StoredCredentials {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: Key::copy_of(stored_key),
            server_key: Key::copy_of(server_key),
        })
    }

    /// The hash these credentials are for.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }
    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }
    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
    /// `StoredKey = H(ClientKey)`.
    pub fn stored_key(&self) -> &[u8] {
        self.stored_key.as_slice()
    }
    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub fn server_key(&self) -> &[u8] {
        self.server_key.as_slice()
    }

    pub(crate) fn stored_key_ref(&self) -> &Key {
        &self.stored_key
    }
}

impl fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The host's credential database, as the server side sees it.
///
/// Lookups are synchronous: a host with an asynchronous database fetches the row when it sees
/// the mechanism and username and then drives the session (the server session asks for
/// credentials only inside `step`).
pub trait CredentialStore {
    /// The SCRAM credentials of `authcid` for `hash`.
    ///
    /// `Ok(None)` means "no such user" (or no credentials for that hash): the exchange then
    /// runs to the end with made-up parameters and fails as `not-authorized`, so the peer
    /// cannot tell unknown users from wrong passwords. `Err` carries an account condition such
    /// as [`Condition::AccountDisabled`], [`Condition::CredentialsExpired`] or
    /// [`Condition::TemporaryAuthFailure`].
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition>;

    /// Whether the authenticated `authcid` (or, for EXTERNAL, the identity the host set from
    /// the certificate) may act as `authzid`. The default refuses every authorization
    /// identity that differs from the authentication identity.
    fn authorize(&self, authcid: &str, authzid: &str) -> Result<(), Condition> {
        if authcid == authzid {
            Ok(())
        } else {
            Err(Condition::InvalidAuthzid)
        }
    }
}

/// One database shared by every connection: a server holds one store behind an `Arc` and hands
/// each session a clone of the pointer, not of the accounts.
impl<T: CredentialStore + ?Sized> CredentialStore for alloc::sync::Arc<T> {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        (**self).scram_credentials(authcid, hash)
    }

    fn authorize(&self, authcid: &str, authzid: &str) -> Result<(), Condition> {
        (**self).authorize(authcid, authzid)
    }
}

/// Client-side cached keys for one (hash, salt, iteration count): with them a reconnect skips
/// PBKDF2 entirely, and the host need not keep the password at all.
#[derive(Clone)]
pub struct ScramKeys {
    hash: ScramHash,
    salt: Vec<u8>,
    iterations: u32,
    client_key: Key,
    server_key: Key,
}

impl ScramKeys {
    pub(crate) fn new(
        hash: ScramHash,
        salt: &[u8],
        iterations: u32,
        client_key: Key,
        server_key: Key,
    ) -> Self {
        ScramKeys {
            hash,
            salt: salt.to_vec(),
            iterations,
            client_key,
            server_key,
        }
    }

    /// Derives the keys from a password, for hosts that want to pre-compute them.
    pub fn derive(
        hash: ScramHash,
        password: &str,
        prep: PasswordPrep,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, Error> {
        let prepared = prep.prepare(password)?;
        let salted = crypto::salted_password(hash, prepared.as_bytes(), salt, iterations);
        let (client_key, server_key) = crypto::client_server_keys(hash, &salted);
        Ok(ScramKeys::new(
            hash, salt, iterations, client_key, server_key,
        ))
    }

    /// Rebuilds cached keys from persisted values.
    pub fn from_parts(
        hash: ScramHash,
        salt: &[u8],
        iterations: u32,
        client_key: &[u8],
        server_key: &[u8],
    ) -> Result<Self, Error> {
        let n = hash.output_len();
        if client_key.len() != n || server_key.len() != n {
            return Err(Error::Usage("key length does not match the hash"));
        }
        Ok(ScramKeys::new(
            hash,
            salt,
            iterations,
            Key::copy_of(client_key),
            Key::copy_of(server_key),
        ))
    }

    /// Whether these keys apply to a server-first-message with this salt and count.
    pub fn matches(&self, hash: ScramHash, salt: &[u8], iterations: u32) -> bool {
        self.hash == hash && self.iterations == iterations && self.salt == salt
    }

    /// The hash.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }
    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }
    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
    /// `ClientKey` (secret: whoever holds it can log in).
    pub fn client_key(&self) -> &[u8] {
        self.client_key.as_slice()
    }
    /// `ServerKey`.
    pub fn server_key(&self) -> &[u8] {
        self.server_key.as_slice()
    }

    pub(crate) fn keys(&self) -> (&Key, &Key) {
        (&self.client_key, &self.server_key)
    }
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}
