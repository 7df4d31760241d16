//! The example server's database: SQLite (through rusqlite, SQLite compiled in), one file,
//! or PostgreSQL ([`postgres`]), both behind one trait, [`Store`], chosen by [`Location`].
//!
//! What it keeps: accounts with their SCRAM credentials (salt, iterations, `StoredKey`,
//! `ServerKey` per hash: never a password), rosters with their version (RFC 6121 §2.6),
//! privacy lists and blocklists (XEP-0016, XEP-0191) and offline messages (RFC 6121
//! §8.5.2.2.1). It answers the IM machine's storage requests ([`Db::load`], [`Db::write`]:
//! see [`xmpp_im::store`]); the runtime calls it from a thread of its own
//! ([`crate::runtime`]), never from the event loop.
//!
//! The schema is versioned: `schema_version` holds the number of [`MIGRATIONS`] applied, and
//! opening a file applies the missing ones in one transaction each. Every write is one
//! transaction, committed with `synchronous=FULL` in WAL mode: once [`Db::write`] returns,
//! the change survives the process being killed (and a power cut). [`postgres::PgDb`] keeps
//! the same data with the same version numbers and the same guarantees on PostgreSQL.

pub mod postgres;

use std::path::{Path, PathBuf};

use minidom::Element;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use xmpp_im::privacy::{Limits, PrivacyList};
use xmpp_im::{AccountData, Change, ContactState, PrivacyData, RosterEntry, State};
use xmpp_jid::{BareJid, Jid};
use xmpp_sasl::{PasswordPrep, ScramHash, StoredCredentials};

/// The schema, one step per version: step `n` takes a database from version `n` to `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: accounts, credentials, rosters, privacy, offline messages.
    "CREATE TABLE accounts (
        jid TEXT PRIMARY KEY,
        roster_version INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE credentials (
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL,
        stored_key BLOB NOT NULL,
        server_key BLOB NOT NULL,
        PRIMARY KEY (jid, hash)
    );
    CREATE TABLE roster (
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        contact TEXT NOT NULL,
        name TEXT,
        state TEXT NOT NULL,
        pre_approved INTEGER NOT NULL,
        in_roster INTEGER NOT NULL,
        request TEXT,
        PRIMARY KEY (jid, contact)
    );
    CREATE TABLE roster_groups (
        jid TEXT NOT NULL,
        contact TEXT NOT NULL,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (jid, contact, position),
        FOREIGN KEY (jid, contact) REFERENCES roster(jid, contact) ON DELETE CASCADE
    );
    CREATE TABLE privacy (
        jid TEXT PRIMARY KEY REFERENCES accounts(jid) ON DELETE CASCADE,
        default_list TEXT
    );
    CREATE TABLE privacy_lists (
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        list TEXT NOT NULL,
        PRIMARY KEY (jid, position)
    );
    CREATE TABLE blocked (
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        blocked TEXT NOT NULL,
        PRIMARY KEY (jid, position)
    );
    CREATE TABLE offline (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        stanza TEXT NOT NULL
    );
    CREATE INDEX offline_by_jid ON offline (jid, id);",
];

/// A database error, as text for the log and the machine's [`xmpp_im::StoreError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError(pub String);

impl core::fmt::Display for DbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError(e.to_string())
    }
}

/// What the server keeps, on SQLite ([`Db`]) or PostgreSQL ([`postgres::PgDb`]); the
/// methods are those of [`Db`], which documents each.
pub trait Store: Send {
    /// The schema version.
    fn version(&mut self) -> Result<usize, DbError>;
    /// See [`Db::set_user`].
    fn set_user(
        &mut self,
        jid: &BareJid,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<bool, DbError>;
    /// Whether the account exists (one indexed lookup).
    fn has_user(&mut self, jid: &BareJid) -> Result<bool, DbError>;
    /// See [`Db::delete_user`].
    fn delete_user(&mut self, jid: &BareJid) -> Result<bool, DbError>;
    /// See [`Db::users`].
    fn users(&mut self) -> Result<Accounts, DbError>;
    /// See [`Db::load`].
    fn load(&mut self, user: &BareJid) -> Result<AccountData, DbError>;
    /// See [`Db::write`].
    fn write(&mut self, changes: &[Change]) -> Result<(), DbError>;
    /// See [`Db::store_offline`].
    fn store_offline(
        &mut self,
        user: &BareJid,
        stanza: &Element,
        max: usize,
    ) -> Result<bool, DbError>;
    /// See [`Db::take_offline`].
    fn take_offline(&mut self, user: &BareJid) -> Result<Vec<Element>, DbError>;
    /// See [`Db::offline_count`].
    fn offline_count(&mut self, user: &BareJid) -> Result<usize, DbError>;
}

/// Where the database is: `--db sqlite:PATH` or `--db postgres://...` (`postgresql://`).
///
/// Its [`Display`](core::fmt::Display) never shows a password the URL holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl Location {
    /// `sqlite:PATH`, `postgres://...` or `postgresql://...`.
    pub fn parse(spec: &str) -> Option<Self> {
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            return Some(Location::Postgres(spec.to_owned()));
        }
        match spec.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => Some(Location::Sqlite(path.into())),
            _ => None,
        }
    }

    /// Opens the database and brings its schema up to date.
    pub fn open(&self) -> Result<Box<dyn Store>, DbError> {
        Ok(match self {
            Location::Sqlite(path) => Box::new(Db::open(path)?),
            Location::Postgres(url) => Box::new(postgres::PgDb::connect(url)?),
        })
    }
}

impl core::fmt::Display for Location {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            // The URL may hold a password: user, hosts, ports and database only.
            Location::Postgres(url) => match url.parse::<::postgres::Config>() {
                Ok(config) => {
                    f.write_str("postgres://")?;
                    if let Some(user) = config.get_user() {
                        write!(f, "{user}@")?;
                    }
                    for (i, host) in config.get_hosts().iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        match host {
                            ::postgres::config::Host::Tcp(name) => f.write_str(name)?,
                            ::postgres::config::Host::Unix(path) => {
                                write!(f, "{}", path.display())?;
                            }
                        }
                        if let Some(port) = config.get_ports().get(i) {
                            write!(f, ":{port}")?;
                        }
                    }
                    write!(f, "/{}", config.get_dbname().unwrap_or_default())
                }
                Err(_) => f.write_str("postgres://(unparsable URL)"),
            },
        }
    }
}

/// Every account with its SCRAM credentials, as [`Store::users`] reads them.
pub type Accounts = Vec<(BareJid, Vec<StoredCredentials>)>;

/// One open database file.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

/// A stored value that does not parse back (written by something else, or corrupted).
pub(crate) fn corrupt(what: &str, value: &str) -> DbError {
    DbError(format!("stored {what} does not parse: {value:?}"))
}

pub(crate) fn state_from(name: &str) -> Option<State> {
    State::ALL.iter().copied().find(|s| s.to_string() == name)
}

pub(crate) fn hash_from(name: &str) -> Option<ScramHash> {
    ScramHash::ALL.iter().copied().find(|h| h.as_str() == name)
}

impl Db {
    /// Opens (creating it if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// A database in memory (tests).
    pub fn open_in_memory() -> Result<Self, DbError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Self, DbError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
        )?;
        let current = self.version()?;
        if current > MIGRATIONS.len() {
            return Err(DbError(format!(
                "the database has schema version {current}, newer than this server's {}",
                MIGRATIONS.len()
            )));
        }
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "UPDATE schema_version SET version = ?1",
                params![i64::try_from(step + 1).unwrap_or(i64::MAX)],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    fn load_privacy(
        &self,
        user: &BareJid,
        entries: &[RosterEntry],
    ) -> Result<Option<PrivacyData>, DbError> {
        let default: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT default_list FROM privacy WHERE jid = ?1",
                params![user.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(default) = default else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT list FROM privacy_lists WHERE jid = ?1 ORDER BY position")?;
        let lists = stmt
            .query_map(params![user.as_str()], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blocked FROM blocked WHERE jid = ?1 ORDER BY position")?;
        let blocked = stmt
            .query_map(params![user.as_str()], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        privacy_data(default, &lists, &blocked, entries).map(Some)
    }
}

impl Store for Db {
    /// The schema version of the open file.
    fn version(&mut self) -> Result<usize, DbError> {
        let v: i64 = self
            .conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    // ---- accounts ----

    /// Creates the account, or gives it a new password: SCRAM credentials for every hash are
    /// derived from `password` with `salt` and `iterations`; the password itself is not
    /// kept. Returns whether the account is new.
    fn set_user(
        &mut self,
        jid: &BareJid,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<bool, DbError> {
        let creds = derive_all(password, salt, iterations)?;
        let tx = self.conn.transaction()?;
        let new = tx.execute(
            "INSERT OR IGNORE INTO accounts (jid) VALUES (?1)",
            params![jid.as_str()],
        )? == 1;
        tx.execute(
            "DELETE FROM credentials WHERE jid = ?1",
            params![jid.as_str()],
        )?;
        for c in &creds {
            tx.execute(
                "INSERT INTO credentials (jid, hash, salt, iterations, stored_key, server_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    jid.as_str(),
                    c.hash().as_str(),
                    c.salt(),
                    c.iterations(),
                    c.stored_key(),
                    c.server_key()
                ],
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    fn has_user(&mut self, jid: &BareJid) -> Result<bool, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM accounts WHERE jid = ?1")?;
        Ok(stmt.exists(params![jid.as_str()])?)
    }

    /// Deletes the account and everything stored for it. Returns whether it existed.
    fn delete_user(&mut self, jid: &BareJid) -> Result<bool, DbError> {
        Ok(self
            .conn
            .execute("DELETE FROM accounts WHERE jid = ?1", params![jid.as_str()])?
            == 1)
    }

    /// Every account with its credentials.
    fn users(&mut self) -> Result<Accounts, DbError> {
        let mut stmt = self.conn.prepare(
            "SELECT a.jid, c.hash, c.salt, c.iterations, c.stored_key, c.server_key
             FROM accounts a LEFT JOIN credentials c ON c.jid = a.jid ORDER BY a.jid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, Option<u32>>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?;
        let mut out = Accounts::new();
        for row in rows {
            let (jid, hash, salt, iterations, stored, server) = row?;
            push_credentials(&mut out, &jid, (hash, salt, iterations, stored, server))?;
        }
        Ok(out)
    }

    // ---- the IM machine's requests ----

    /// Everything about one account, as [`xmpp_im::Output::Load`] asks.
    fn load(&mut self, user: &BareJid) -> Result<AccountData, DbError> {
        let version: Option<i64> = self
            .conn
            .query_row(
                "SELECT roster_version FROM accounts WHERE jid = ?1",
                params![user.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(version) = version else {
            return Ok(AccountData::missing());
        };
        let mut entries = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT contact, name, state, pre_approved, in_roster, request FROM roster
             WHERE jid = ?1 ORDER BY contact",
        )?;
        let rows = stmt.query_map(params![user.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut groups_stmt = self.conn.prepare_cached(
            "SELECT name FROM roster_groups WHERE jid = ?1 AND contact = ?2 ORDER BY position",
        )?;
        for row in rows {
            let (contact, name, state, pre_approved, in_roster, request) = row?;
            let groups = groups_stmt
                .query_map(params![user.as_str(), contact], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            entries.push(roster_entry(
                &contact,
                name,
                &state,
                [pre_approved, in_roster],
                request,
                groups,
            )?);
        }
        Ok(AccountData {
            exists: true,
            version: u64::try_from(version).unwrap_or(0),
            privacy: self.load_privacy(user, &entries)?,
            entries,
        })
    }

    /// Makes the changes of one [`xmpp_im::Output::Write`] durable, all or none.
    fn write(&mut self, changes: &[Change]) -> Result<(), DbError> {
        let tx = self.conn.transaction()?;
        for change in changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }

    // ---- offline messages ----

    /// Stores a message for `user` unless `max` are already waiting; returns whether it was
    /// stored (a missing account stores nothing).
    fn store_offline(
        &mut self,
        user: &BareJid,
        stanza: &Element,
        max: usize,
    ) -> Result<bool, DbError> {
        let tx = self.conn.transaction()?;
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM offline WHERE jid = ?1",
            params![user.as_str()],
            |r| r.get(0),
        )?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max {
            return Ok(false);
        }
        let stored = tx.execute(
            "INSERT INTO offline (jid, stanza) SELECT ?1, ?2
             WHERE EXISTS (SELECT 1 FROM accounts WHERE jid = ?1)",
            params![user.as_str(), String::from(stanza)],
        )? == 1;
        tx.commit()?;
        Ok(stored)
    }

    /// Takes (reads and deletes, in one transaction) the messages waiting for `user`, oldest
    /// first.
    fn take_offline(&mut self, user: &BareJid) -> Result<Vec<Element>, DbError> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::new();
        {
            let mut stmt =
                tx.prepare_cached("SELECT stanza FROM offline WHERE jid = ?1 ORDER BY id")?;
            for xml in stmt.query_map(params![user.as_str()], |r| r.get::<_, String>(0))? {
                let xml = xml?;
                // A row that does not parse is dropped with the others: it could never be
                // delivered.
                if let Ok(el) = xml.parse::<Element>() {
                    out.push(el);
                }
            }
        }
        tx.execute("DELETE FROM offline WHERE jid = ?1", params![user.as_str()])?;
        tx.commit()?;
        Ok(out)
    }

    /// Messages waiting for `user`.
    fn offline_count(&mut self, user: &BareJid) -> Result<usize, DbError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM offline WHERE jid = ?1",
            params![user.as_str()],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// A roster entry from its stored columns (`flags`: pre-approved, in the roster).
pub(crate) fn roster_entry(
    contact: &str,
    name: Option<String>,
    state: &str,
    flags: [bool; 2],
    request: Option<String>,
    groups: Vec<String>,
) -> Result<RosterEntry, DbError> {
    let [pre_approved, in_roster] = flags;
    let jid = BareJid::new(contact).map_err(|_| corrupt("contact", contact))?;
    let state = state_from(state).ok_or_else(|| corrupt("state", state))?;
    let request = match request {
        Some(xml) => Some(
            xml.parse::<Element>()
                .map_err(|_| corrupt("request", &xml))?,
        ),
        None => None,
    };
    let mut entry = RosterEntry::new(jid);
    entry.name = name;
    entry.groups = groups;
    entry.state = ContactState {
        state,
        pre_approved,
    };
    entry.in_roster = in_roster;
    entry.request = request;
    Ok(entry)
}

/// Privacy data from its stored lists (XML, in order) and blocked JIDs.
pub(crate) fn privacy_data(
    default: Option<String>,
    lists: &[String],
    blocked: &[String],
    entries: &[RosterEntry],
) -> Result<PrivacyData, DbError> {
    let groups: Vec<String> = entries.iter().flat_map(|e| e.groups.clone()).collect();
    // What was accepted once is read back whatever today's limits are.
    let limits = Limits {
        max_items: usize::MAX,
        max_lists: usize::MAX,
        max_name: usize::MAX,
    };
    let mut parsed = Vec::new();
    for xml in lists {
        let el: Element = xml.parse().map_err(|_| corrupt("privacy list", xml))?;
        parsed.push(
            PrivacyList::parse(&el, &groups, &limits).map_err(|_| corrupt("privacy list", xml))?,
        );
    }
    let mut jids = Vec::new();
    for jid in blocked {
        jids.push(Jid::new(jid).map_err(|_| corrupt("blocked JID", jid))?);
    }
    Ok(PrivacyData {
        lists: parsed,
        default,
        blocked: jids,
    })
}

/// One stored credentials row: hash, salt, iterations, `StoredKey`, `ServerKey` (all `None`:
/// an account without credentials).
pub(crate) type CredentialsRow = (
    Option<String>,
    Option<Vec<u8>>,
    Option<u32>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// One account's credentials row (`None` columns: an account without credentials).
pub(crate) fn push_credentials(
    out: &mut Accounts,
    jid: &str,
    row: CredentialsRow,
) -> Result<(), DbError> {
    let bare = BareJid::new(jid).map_err(|_| corrupt("account", jid))?;
    if out.last().is_none_or(|(j, _)| j != &bare) {
        out.push((bare, Vec::new()));
    }
    if let (Some(hash), Some(salt), Some(iterations), Some(stored), Some(server)) = row {
        let hash = hash_from(&hash).ok_or_else(|| corrupt("hash", &hash))?;
        let c = StoredCredentials::from_parts(hash, &salt, iterations, &stored, &server)
            .map_err(|e| DbError(format!("credentials of {jid}: {e}")))?;
        if let Some((_, list)) = out.last_mut() {
            list.push(c);
        }
    }
    Ok(())
}

/// SCRAM credentials for every hash, derived from `password` (which is not kept).
pub(crate) fn derive_all(
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<StoredCredentials>, DbError> {
    let mut creds = Vec::new();
    for hash in ScramHash::ALL {
        let c = StoredCredentials::derive(hash, password, PasswordPrep::SaslPrep, salt, iterations)
            .map_err(|e| DbError(format!("password: {e}")))?;
        creds.push(c);
    }
    Ok(creds)
}

fn apply(tx: &Transaction<'_>, change: &Change) -> Result<(), DbError> {
    let user = change.user().as_str();
    match change {
        Change::PutEntry { entry, .. } => {
            let contact = entry.jid.as_str();
            tx.execute(
                "INSERT INTO roster (jid, contact, name, state, pre_approved, in_roster, request)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (jid, contact) DO UPDATE SET name = ?3, state = ?4,
                    pre_approved = ?5, in_roster = ?6, request = ?7",
                params![
                    user,
                    contact,
                    entry.name,
                    entry.state.state.to_string(),
                    entry.state.pre_approved,
                    entry.in_roster,
                    entry.request.as_ref().map(String::from),
                ],
            )?;
            tx.execute(
                "DELETE FROM roster_groups WHERE jid = ?1 AND contact = ?2",
                params![user, contact],
            )?;
            for (i, g) in entry.groups.iter().enumerate() {
                tx.execute(
                    "INSERT INTO roster_groups (jid, contact, position, name) VALUES (?1, ?2, ?3, ?4)",
                    params![user, contact, i64::try_from(i).unwrap_or(i64::MAX), g],
                )?;
            }
        }
        Change::DeleteEntry { contact, .. } => {
            tx.execute(
                "DELETE FROM roster WHERE jid = ?1 AND contact = ?2",
                params![user, contact.as_str()],
            )?;
        }
        Change::Version { version, .. } => {
            tx.execute(
                "UPDATE accounts SET roster_version = ?2 WHERE jid = ?1",
                params![user, i64::try_from(*version).unwrap_or(i64::MAX)],
            )?;
        }
        Change::Privacy { data, .. } => {
            tx.execute(
                "INSERT INTO privacy (jid, default_list) VALUES (?1, ?2)
                 ON CONFLICT (jid) DO UPDATE SET default_list = ?2",
                params![user, data.default],
            )?;
            tx.execute("DELETE FROM privacy_lists WHERE jid = ?1", params![user])?;
            for (i, l) in data.lists.iter().enumerate() {
                tx.execute(
                    "INSERT INTO privacy_lists (jid, position, list) VALUES (?1, ?2, ?3)",
                    params![
                        user,
                        i64::try_from(i).unwrap_or(i64::MAX),
                        String::from(&l.to_element())
                    ],
                )?;
            }
            tx.execute("DELETE FROM blocked WHERE jid = ?1", params![user])?;
            for (i, j) in data.blocked.iter().enumerate() {
                tx.execute(
                    "INSERT INTO blocked (jid, position, blocked) VALUES (?1, ?2, ?3)",
                    params![user, i64::try_from(i).unwrap_or(i64::MAX), j.as_str()],
                )?;
            }
        }
        other => return Err(DbError(format!("unknown change {other:?}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use xmpp_im::{MemoryStore, RosterStore};

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    /// What the machine writes comes back as the same account, and as a MemoryStore
    /// holding the same changes has it.
    #[test]
    fn writes_load_back_like_the_memory_store() {
        let mut db = Db::open_in_memory().unwrap();
        assert_eq!(db.version().unwrap(), MIGRATIONS.len());
        let alice = bare("alice@localhost");
        assert!(db.set_user(&alice, "pw", b"salt", 4096).unwrap());
        assert!(!db.set_user(&alice, "pw2", b"salt", 4096).unwrap());
        let mut mem = MemoryStore::new();
        mem.add_account(alice.clone());
        let mut entry = RosterEntry::new(bare("bob@localhost"));
        entry.name = Some("Bob".into());
        entry.groups = vec!["Friends".into(), "Work".into()];
        entry.in_roster = true;
        entry.state = ContactState {
            state: State::NonePendingIn,
            pre_approved: false,
        };
        entry.request = Some(
            "<presence xmlns='jabber:client' type='subscribe' from='bob@localhost'><status>hi</status></presence>"
                .parse()
                .unwrap(),
        );
        let list: Element = "<list xmlns='jabber:iq:privacy' name='l'><item type='group' value='Work' action='deny' order='1'/><item action='allow' order='2'/></list>".parse().unwrap();
        let privacy = PrivacyData {
            lists: vec![PrivacyList::parse(&list, &["Work".into()], &Limits::default()).unwrap()],
            default: Some("l".into()),
            blocked: vec![Jid::new("eve@localhost").unwrap()],
        };
        let changes = vec![
            Change::PutEntry {
                user: alice.clone(),
                entry: entry.clone(),
            },
            Change::PutEntry {
                user: alice.clone(),
                entry: RosterEntry::new(bare("carol@localhost")),
            },
            Change::DeleteEntry {
                user: alice.clone(),
                contact: bare("carol@localhost"),
            },
            Change::Version {
                user: alice.clone(),
                version: 7,
            },
            Change::Privacy {
                user: alice.clone(),
                data: privacy,
            },
        ];
        db.write(&changes).unwrap();
        for c in changes {
            mem.apply(c);
        }
        assert_eq!(db.load(&alice).unwrap(), mem.load(&alice));
        assert_eq!(
            db.load(&bare("nobody@localhost")).unwrap(),
            AccountData::missing()
        );
        // Credentials, never the password.
        let users = db.users().unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].1.len(), ScramHash::ALL.len());
        let expected = StoredCredentials::derive(
            ScramHash::Sha256,
            "pw2",
            PasswordPrep::SaslPrep,
            b"salt",
            4096,
        )
        .unwrap();
        assert!(
            users[0]
                .1
                .iter()
                .any(|c| c.stored_key() == expected.stored_key())
        );
        // Offline messages: bounded, taken once, in order.
        let m = |i: u32| -> Element {
            format!("<message xmlns='jabber:client' id='m{i}'/>")
                .parse()
                .unwrap()
        };
        assert!(db.store_offline(&alice, &m(1), 2).unwrap());
        assert!(db.store_offline(&alice, &m(2), 2).unwrap());
        assert!(!db.store_offline(&alice, &m(3), 2).unwrap());
        assert!(
            !db.store_offline(&bare("nobody@localhost"), &m(4), 2)
                .unwrap()
        );
        let taken = db.take_offline(&alice).unwrap();
        assert_eq!(
            taken
                .iter()
                .map(|e| e.attr("id").unwrap())
                .collect::<Vec<_>>(),
            ["m1", "m2"]
        );
        assert!(db.take_offline(&alice).unwrap().is_empty());
        // Deleting the account deletes everything.
        assert!(db.delete_user(&alice).unwrap());
        assert_eq!(db.load(&alice).unwrap(), AccountData::missing());
        assert!(!db.delete_user(&alice).unwrap());
    }

    /// `--db` values: SQLite paths, PostgreSQL URLs (shown without their password), nothing
    /// else.
    #[test]
    fn locations_parse_and_never_show_a_password() {
        assert_eq!(
            Location::parse("sqlite:/tmp/x.db"),
            Some(Location::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(Location::parse("sqlite:"), None);
        assert_eq!(Location::parse("mysql://h/db"), None);
        for url in [
            "postgres://xmpp:s3cret@db.example:5433/chat",
            "postgresql://xmpp:s3cret@db.example:5433/chat?connect_timeout=2",
            "postgres://xmpp@db.example:5433/chat?password=s3cret",
        ] {
            let location = Location::parse(url).unwrap();
            assert_eq!(location, Location::Postgres(url.to_owned()));
            assert_eq!(location.to_string(), "postgres://xmpp@db.example:5433/chat");
        }
        let odd = Location::parse("postgres://xmpp:s3cret@[bad").unwrap();
        assert!(!odd.to_string().contains("s3cret"), "{odd}");
    }

    /// Opening an existing file keeps its data and applies no migration twice.
    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = std::env::temp_dir().join(format!("xmpp-db-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("reopen.db");
        let _ = std::fs::remove_file(&path);
        let alice = bare("alice@localhost");
        {
            let mut db = Db::open(&path).unwrap();
            db.set_user(&alice, "pw", b"salt", 4096).unwrap();
            db.write(&[Change::Version {
                user: alice.clone(),
                version: 3,
            }])
            .unwrap();
        }
        let mut db = Db::open(&path).unwrap();
        assert_eq!(db.version().unwrap(), MIGRATIONS.len());
        assert_eq!(db.load(&alice).unwrap().version, 3);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
