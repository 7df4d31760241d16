//! `--db sqlite:PATH`: the database on a thread of its own, so that no SQL runs on the event
//! loop. The hub's [`StorageRequest`]s reach it through a bounded queue; each answer is fed
//! back to the hub under the one mutex, and what it releases is dispatched at once. A full
//! queue is answered at once as a failure (the client gets `internal-server-error`, a message
//! for an offline account bounces): a slow database degrades into errors, never a hang.

use std::io;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, Weak};

use xmpp_host::OsEntropy;
use xmpp_im::StoreError;
use xmpp_jid::BareJid;
use xmpp_sasl::{PasswordPrep, ScramHash, StoredCredentials};
use xmpp_stream::register::Password;
use xmpp_stream::{Entropy, RegistrationRefused};

use super::shared::{Shared, lock};
use crate::db::Db;
use crate::hub::{HubConfig, MAX_OFFLINE_PER_ACCOUNT, SessionId, StorageRequest};

/// Requests waiting for the database at most.
pub const DB_QUEUE: usize = 4096;

/// Opens the configured database, stores the `--user` accounts in it (credentials derived
/// with a fresh salt each start) and reads every account's credentials.
pub(super) fn open(config: &HubConfig) -> io::Result<Option<(Db, crate::db::Accounts)>> {
    let Some(path) = &config.database else {
        return Ok(None);
    };
    let mut db = Db::open(path).map_err(io::Error::other)?;
    for (name, password) in &config.users {
        let jid = account_jid(config, name)?;
        let mut salt = [0u8; 16];
        OsEntropy::new().fill(&mut salt);
        db.set_user(&jid, password, &salt, config.iterations)
            .map_err(io::Error::other)?;
    }
    let users = db.users().map_err(io::Error::other)?;
    Ok(Some((db, users)))
}

/// The account a `--user` name means: `name@domain` for one of the served domains, else
/// `name` at the main domain.
pub fn account_jid(config: &HubConfig, name: &str) -> io::Result<BareJid> {
    if let Ok(jid) = BareJid::new(name)
        && jid.node().is_some()
        && BareJid::from_parts(None, jid.domain()).is_ok_and(|d| config.serves(&d))
    {
        return Ok(jid);
    }
    BareJid::from_parts(Some(name), config.domain.domain())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {e}")))
}

/// Starts the database thread; the sender is the hub's way to it.
pub(super) fn start(
    mut db: Db,
    shared: Weak<Mutex<Shared>>,
) -> io::Result<SyncSender<StorageRequest>> {
    let (tx, rx) = sync_channel::<StorageRequest>(DB_QUEUE);
    std::thread::Builder::new()
        .name("xmpp-db".to_owned())
        .spawn(move || {
            for request in rx {
                let answer = serve(&mut db, request);
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                let mut guard = lock(&shared);
                answer.deliver(&mut guard);
                guard.dispatch();
            }
        })?;
    Ok(tx)
}

/// Credentials derived from an account request's password, or why not.
type Derived = Result<Vec<xmpp_sasl::StoredCredentials>, RegistrationRefused>;

/// What the database thread hands back to the hub.
enum Answer {
    Loaded(xmpp_im::LoadId, Result<xmpp_im::AccountData, StoreError>),
    Written(xmpp_im::WriteId, Result<(), StoreError>),
    Refused(minidom::Element),
    Taken(xmpp_jid::FullJid, Vec<minidom::Element>),
    Stored,
    Created(SessionId, BareJid, Derived),
    PasswordSet(SessionId, BareJid, minidom::Element, Derived),
    Deleted(
        SessionId,
        BareJid,
        minidom::Element,
        Result<(), RegistrationRefused>,
    ),
}

impl Answer {
    fn deliver(self, shared: &mut Shared) {
        let now = shared.now();
        match self {
            Answer::Loaded(id, result) => shared.hub.storage_loaded(now, id, result),
            Answer::Written(id, result) => shared.hub.storage_written(now, id, result),
            Answer::Refused(stanza) => shared.hub.offline_refused(now, &stanza),
            Answer::Taken(jid, messages) => shared.hub.offline_taken(now, &jid, messages),
            Answer::Stored => {}
            Answer::Created(session, jid, result) => {
                shared.hub.account_created(now, session, &jid, result);
            }
            Answer::PasswordSet(session, jid, iq, result) => {
                shared.hub.password_changed(now, session, &jid, &iq, result);
            }
            Answer::Deleted(session, jid, iq, result) => {
                shared.hub.account_deleted(now, session, &jid, &iq, result);
            }
        }
    }
}

/// SCRAM credentials for every hash from `password`, with a fresh salt: what
/// [`Db::set_user`] stores (the same derivation, the same salt). A password SASLprep refuses
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

/// Derive, then store with [`Db::set_user`] (`create`: only if the account does not exist).
fn set_account(
    db: &mut Db,
    jid: &BareJid,
    password: &Password,
    iterations: u32,
    create: bool,
) -> Derived {
    if create {
        match db.users() {
            Ok(users) if users.iter().any(|(user, _)| user == jid) => {
                return Err(RegistrationRefused::Conflict);
            }
            Ok(_) => {}
            Err(_) => return Err(RegistrationRefused::Storage),
        }
    }
    let (salt, derived) = derive(password, iterations);
    let credentials = derived?;
    db.set_user(jid, password.expose(), &salt, iterations)
        .map_err(|_| RegistrationRefused::Storage)?;
    Ok(credentials)
}

/// Without a database: derive the credentials on a thread of their own (PBKDF2 is not for the
/// event loop) and hand them to the hub; nothing else to store.
fn answer_in_memory(shared: &Shared, request: StorageRequest) {
    let me = shared.me.clone();
    let work = move || {
        let answer = match request {
            StorageRequest::CreateAccount {
                session,
                jid,
                password,
                iterations,
            } => Answer::Created(session, jid, derive(&password, iterations).1),
            StorageRequest::ChangePassword {
                session,
                jid,
                password,
                iterations,
                iq,
            } => Answer::PasswordSet(session, jid, iq, derive(&password, iterations).1),
            StorageRequest::DeleteAccount { session, jid, iq } => {
                Answer::Deleted(session, jid, iq, Ok(()))
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

fn store_error(e: &crate::db::DbError) -> StoreError {
    StoreError(e.to_string())
}

fn serve(db: &mut Db, request: StorageRequest) -> Answer {
    match request {
        StorageRequest::Load { id, user } => {
            Answer::Loaded(id, db.load(&user).map_err(|e| store_error(&e)))
        }
        StorageRequest::Write { id, changes } => {
            Answer::Written(id, db.write(&changes).map_err(|e| store_error(&e)))
        }
        StorageRequest::StoreOffline { user, stanza } => {
            match db.store_offline(&user, &stanza, MAX_OFFLINE_PER_ACCOUNT) {
                Ok(true) => Answer::Stored,
                Ok(false) | Err(_) => Answer::Refused(stanza),
            }
        }
        StorageRequest::TakeOffline { jid } => {
            // A failure leaves them stored: the next initial presence asks again.
            Answer::Taken(
                jid.clone(),
                db.take_offline(&jid.to_bare()).unwrap_or_default(),
            )
        }
        StorageRequest::CreateAccount {
            session,
            jid,
            password,
            iterations,
        } => {
            let result = set_account(db, &jid, &password, iterations, true);
            Answer::Created(session, jid, result)
        }
        StorageRequest::ChangePassword {
            session,
            jid,
            password,
            iterations,
            iq,
        } => {
            let result = set_account(db, &jid, &password, iterations, false);
            Answer::PasswordSet(session, jid, iq, result)
        }
        StorageRequest::DeleteAccount { session, jid, iq } => {
            let result = db
                .delete_user(&jid)
                .map(|_| ())
                .map_err(|_| RegistrationRefused::Storage);
            Answer::Deleted(session, jid, iq, result)
        }
    }
}

/// Hands a request to the database thread, or answers it as failed when the queue is full
/// or there is no database.
pub(super) fn submit(shared: &mut Shared, request: StorageRequest) {
    let request = match &shared.db {
        Some(tx) => match tx.try_send(request) {
            Ok(()) => return,
            Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) => r,
        },
        None if matches!(
            request,
            StorageRequest::CreateAccount { .. }
                | StorageRequest::ChangePassword { .. }
                | StorageRequest::DeleteAccount { .. }
        ) =>
        {
            answer_in_memory(shared, request);
            return;
        }
        None => request,
    };
    let failure = StoreError("database queue full".to_owned());
    let answer = match request {
        StorageRequest::Load { id, .. } => Answer::Loaded(id, Err(failure)),
        StorageRequest::Write { id, .. } => Answer::Written(id, Err(failure)),
        StorageRequest::StoreOffline { stanza, .. } => Answer::Refused(stanza),
        // Nothing taken: the messages stay stored for the next initial presence.
        StorageRequest::TakeOffline { .. } => Answer::Stored,
        StorageRequest::CreateAccount { session, jid, .. } => {
            Answer::Created(session, jid, Err(RegistrationRefused::Storage))
        }
        StorageRequest::ChangePassword {
            session, jid, iq, ..
        } => Answer::PasswordSet(session, jid, iq, Err(RegistrationRefused::Storage)),
        StorageRequest::DeleteAccount { session, jid, iq } => {
            Answer::Deleted(session, jid, iq, Err(RegistrationRefused::Storage))
        }
    };
    answer.deliver(shared);
}
