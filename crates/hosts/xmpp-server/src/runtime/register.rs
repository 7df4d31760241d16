//! XEP-0077 account work for the hub (`--allow-registration`): create an account, change its
//! password, delete it. With a database, on the database thread ([`super::database`]): the
//! SCRAM credentials derived with a fresh salt and stored with [`Store::set_user`], as `adduser`
//! stores them; without one, on a thread of their own (PBKDF2 is not for the event loop).
//! Either way the answer is handed to the hub under the one mutex.

use xmpp_host::OsEntropy;
use xmpp_jid::BareJid;
use xmpp_sasl::{PasswordPrep, ScramHash, StoredCredentials};
use xmpp_stream::register::Password;
use xmpp_stream::{Entropy, RegistrationRefused};

use super::shared::{Shared, lock};
use crate::db::Store;
use crate::hub::{SessionId, StorageRequest};

/// Credentials derived from a request's password, or why not.
type Derived = Result<Vec<StoredCredentials>, RegistrationRefused>;

/// What account work hands back to the hub.
pub(super) enum AccountAnswer {
    Created(SessionId, BareJid, Derived),
    PasswordSet(SessionId, BareJid, minidom::Element, Derived),
    Deleted(
        SessionId,
        BareJid,
        minidom::Element,
        Result<(), RegistrationRefused>,
    ),
    /// Not an account request.
    Nothing,
}

impl AccountAnswer {
    pub(super) fn deliver(self, shared: &mut Shared) {
        let now = shared.now();
        match self {
            AccountAnswer::Created(session, jid, result) => {
                shared.hub.account_created(now, session, &jid, result);
            }
            AccountAnswer::PasswordSet(session, jid, iq, result) => {
                shared.hub.password_changed(now, session, &jid, &iq, result);
            }
            AccountAnswer::Deleted(session, jid, iq, result) => {
                shared.hub.account_deleted(now, session, &jid, &iq, result);
            }
            AccountAnswer::Nothing => {}
        }
    }
}

/// Whether `request` is account work.
pub(super) fn is_account(request: &StorageRequest) -> bool {
    matches!(
        request,
        StorageRequest::CreateAccount { .. }
            | StorageRequest::ChangePassword { .. }
            | StorageRequest::DeleteAccount { .. }
    )
}

/// SCRAM credentials for every hash from `password`, with a fresh salt: what
/// [`Store::set_user`] stores (the same derivation, the same salt). A password SASLprep refuses
/// is `not-acceptable`.
fn derive(password: &Password, iterations: u32) -> ([u8; 16], Derived) {
    let mut salt = [0u8; 16];
    OsEntropy::new().fill(&mut salt);
    let derived = ScramHash::ALL
        .iter()
        .map(|hash| {
            StoredCredentials::derive(
                *hash,
                password.expose(),
                PasswordPrep::SaslPrep,
                &salt,
                iterations,
            )
            .map_err(|_| RegistrationRefused::NotAcceptable)
        })
        .collect();
    (salt, derived)
}

/// Derive, then store with [`Store::set_user`] (`create`: only if the account does not exist).
fn set_account(
    db: &mut dyn Store,
    jid: &BareJid,
    password: &Password,
    iterations: u32,
    create: bool,
) -> Derived {
    if create {
        match db.has_user(jid) {
            Ok(true) => return Err(RegistrationRefused::Conflict),
            Ok(false) => {}
            Err(_) => return Err(RegistrationRefused::Storage),
        }
    }
    let (salt, derived) = derive(password, iterations);
    let credentials = derived?;
    db.set_user(jid, password.expose(), &salt, iterations)
        .map_err(|_| RegistrationRefused::Storage)?;
    Ok(credentials)
}

/// On the database thread.
pub(super) fn serve(db: &mut dyn Store, request: StorageRequest) -> AccountAnswer {
    match request {
        StorageRequest::CreateAccount {
            session,
            jid,
            password,
            iterations,
        } => {
            let result = set_account(db, &jid, &password, iterations, true);
            AccountAnswer::Created(session, jid, result)
        }
        StorageRequest::ChangePassword {
            session,
            jid,
            password,
            iterations,
            iq,
        } => {
            let result = set_account(db, &jid, &password, iterations, false);
            AccountAnswer::PasswordSet(session, jid, iq, result)
        }
        StorageRequest::DeleteAccount { session, jid, iq } => {
            let result = db
                .delete_user(&jid)
                .map(|_| ())
                .map_err(|_| RegistrationRefused::Storage);
            AccountAnswer::Deleted(session, jid, iq, result)
        }
        _ => AccountAnswer::Nothing,
    }
}

/// The database queue is full or gone: refused at once.
pub(super) fn refused(request: StorageRequest) -> AccountAnswer {
    match request {
        StorageRequest::CreateAccount { session, jid, .. } => {
            AccountAnswer::Created(session, jid, Err(RegistrationRefused::Storage))
        }
        StorageRequest::ChangePassword {
            session, jid, iq, ..
        } => AccountAnswer::PasswordSet(session, jid, iq, Err(RegistrationRefused::Storage)),
        StorageRequest::DeleteAccount { session, jid, iq } => {
            AccountAnswer::Deleted(session, jid, iq, Err(RegistrationRefused::Storage))
        }
        _ => AccountAnswer::Nothing,
    }
}

/// Without a database: derive the credentials on a thread of their own and hand them to the
/// hub; nothing else to store.
pub(super) fn in_memory(shared: &Shared, request: StorageRequest) {
    let me = shared.me.clone();
    let work = move || {
        let answer = match request {
            StorageRequest::CreateAccount {
                session,
                jid,
                password,
                iterations,
            } => AccountAnswer::Created(session, jid, derive(&password, iterations).1),
            StorageRequest::ChangePassword {
                session,
                jid,
                password,
                iterations,
                iq,
            } => AccountAnswer::PasswordSet(session, jid, iq, derive(&password, iterations).1),
            StorageRequest::DeleteAccount { session, jid, iq } => {
                AccountAnswer::Deleted(session, jid, iq, Ok(()))
            }
            _ => return,
        };
        if let Some(shared) = me.upgrade() {
            let mut guard = lock(&shared);
            answer.deliver(&mut guard);
            guard.dispatch();
        }
    };
    let _ = std::thread::Builder::new()
        .name("xmpp-scram".to_owned())
        .spawn(work);
}
