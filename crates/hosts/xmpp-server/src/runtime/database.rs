//! `--db sqlite:PATH` or `--db postgres://...`: the database on a thread of its own, so that
//! no SQL (and no network round trip to PostgreSQL) runs on the event loop. The hub's [`StorageRequest`]s reach it through a bounded queue; each answer is fed
//! back to the hub under the one mutex, and what it releases is dispatched at once. A full
//! queue is answered at once as a failure (the client gets `internal-server-error`, a message
//! for an offline account bounces): a slow database degrades into errors, never a hang. An
//! unreachable one fails each request that finds it so (`internal-server-error`, a bounce);
//! PostgreSQL is connected to again on the next request.

use std::io;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, Weak};

use xmpp_host::OsEntropy;
use xmpp_im::StoreError;
use xmpp_jid::BareJid;
use xmpp_stream::Entropy;

use super::shared::{Shared, lock};
use crate::db::Store;
use crate::hub::{HubConfig, MAX_OFFLINE_PER_ACCOUNT, StorageRequest};

/// Requests waiting for the database at most.
pub const DB_QUEUE: usize = 4096;

/// What [`open`] hands over: the database and every account's credentials.
type Opened = Option<(Box<dyn Store>, crate::db::Accounts)>;

/// Opens the configured database, stores the `--user` accounts in it (credentials derived
/// with a fresh salt each start) and reads every account's credentials. On a thread of its
/// own: the synchronous PostgreSQL client runs a runtime of its own, which cannot be
/// started on the caller's (an async task's) thread.
pub(super) fn open(config: &HubConfig) -> io::Result<Opened> {
    std::thread::scope(|s| {
        s.spawn(|| open_here(config))
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("opening the database panicked")))
    })
}

fn open_here(config: &HubConfig) -> io::Result<Opened> {
    let Some(location) = &config.database else {
        return Ok(None);
    };
    let mut db = location
        .open()
        .map_err(|e| io::Error::other(format!("{location}: {e}")))?;
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
    mut db: Box<dyn Store>,
    shared: Weak<Mutex<Shared>>,
) -> io::Result<SyncSender<StorageRequest>> {
    let (tx, rx) = sync_channel::<StorageRequest>(DB_QUEUE);
    std::thread::Builder::new()
        .name("xmpp-db".to_owned())
        .spawn(move || {
            for request in rx {
                let answer = serve(db.as_mut(), request);
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

/// What the database thread hands back to the hub.
enum Answer {
    /// XEP-0077 account work ([`super::register`]).
    Account(super::register::AccountAnswer),
    Loaded(xmpp_im::LoadId, Result<xmpp_im::AccountData, StoreError>),
    Written(xmpp_im::WriteId, Result<(), StoreError>),
    Refused(u64, minidom::Element),
    Taken(xmpp_jid::FullJid, Vec<minidom::Element>),
    Stored(u64),
    Nothing,
}

impl Answer {
    fn deliver(self, shared: &mut Shared) {
        let now = shared.now();
        match self {
            Answer::Account(answer) => answer.deliver(shared),
            Answer::Loaded(id, result) => shared.hub.storage_loaded(now, id, result),
            Answer::Written(id, result) => shared.hub.storage_written(now, id, result),
            Answer::Refused(id, stanza) => shared.hub.offline_refused(now, id, &stanza),
            Answer::Taken(jid, messages) => shared.hub.offline_taken(now, &jid, messages),
            Answer::Stored(id) => shared.hub.offline_stored(now, id),
            Answer::Nothing => {}
        }
    }
}

fn store_error(e: &crate::db::DbError) -> StoreError {
    StoreError(e.to_string())
}

fn serve(db: &mut dyn Store, request: StorageRequest) -> Answer {
    match request {
        request @ (StorageRequest::CreateAccount { .. }
        | StorageRequest::ChangePassword { .. }
        | StorageRequest::DeleteAccount { .. }) => {
            Answer::Account(super::register::serve(db, request))
        }
        StorageRequest::Load { id, user } => {
            Answer::Loaded(id, db.load(&user).map_err(|e| store_error(&e)))
        }
        StorageRequest::Write { id, changes } => {
            Answer::Written(id, db.write(&changes).map_err(|e| store_error(&e)))
        }
        StorageRequest::StoreOffline { id, user, stanza } => {
            match db.store_offline(&user, &stanza, MAX_OFFLINE_PER_ACCOUNT) {
                Ok(true) => Answer::Stored(id),
                Ok(false) | Err(_) => Answer::Refused(id, stanza),
            }
        }
        StorageRequest::TakeOffline { jid } => {
            // A failure leaves them stored: the next initial presence asks again.
            Answer::Taken(
                jid.clone(),
                db.take_offline(&jid.to_bare()).unwrap_or_default(),
            )
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
        None if super::register::is_account(&request) => {
            super::register::in_memory(shared, request);
            return;
        }
        None => request,
    };
    let failure = StoreError("database queue full".to_owned());
    let answer = match request {
        request @ (StorageRequest::CreateAccount { .. }
        | StorageRequest::ChangePassword { .. }
        | StorageRequest::DeleteAccount { .. }) => {
            Answer::Account(super::register::refused(request))
        }
        StorageRequest::Load { id, .. } => Answer::Loaded(id, Err(failure)),
        StorageRequest::Write { id, .. } => Answer::Written(id, Err(failure)),
        StorageRequest::StoreOffline { id, stanza, .. } => Answer::Refused(id, stanza),
        // Nothing taken: the messages stay stored for the next initial presence.
        StorageRequest::TakeOffline { .. } => Answer::Nothing,
    };
    answer.deliver(shared);
}
