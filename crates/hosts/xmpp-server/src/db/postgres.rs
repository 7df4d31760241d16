//! The example server's database on PostgreSQL (`--db postgres://...`): the same data and
//! the same semantics as the SQLite [`Db`](super::Db), through the synchronous `postgres`
//! client on the runtime's database thread.
//!
//! The schema is versioned as on SQLite: `schema_version` holds the number of
//! [`PG_MIGRATIONS`] applied (step `n` of both lists makes the same version `n + 1`), and
//! connecting applies the missing ones, one transaction each, under a lock on
//! `schema_version` (two servers starting on one database do not both migrate). Every
//! [`write`](PgDb::write) is one transaction; the session runs with
//! `synchronous_commit = on` (PostgreSQL's default, set again in case the database's default
//! was lowered), so a committed change is in the server's write-ahead log when the call
//! returns, and with lock and statement timeouts ([`SESSION`]).
//!
//! A lost connection (the database restarted, the network cut) fails the request that finds
//! it, as a [`DbError`]; the next request connects again. Connecting gives up after
//! [`CONNECT_TIMEOUT`] unless the URL says otherwise (`connect_timeout=SECS`).

use std::collections::BTreeMap;
use std::time::Duration;

use minidom::Element;
use postgres::{Client, Config, NoTls, Transaction};
use xmpp_im::{AccountData, Change, PrivacyData, RosterEntry};
use xmpp_jid::BareJid;

use super::{
    Accounts, DbError, Store, corrupt, derive_all, privacy_data, push_credentials, roster_entry,
};

/// How long connecting may take when the URL does not say (`connect_timeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Set on every connection: commits durable at return (PostgreSQL's default, set again in
/// case the database's was lowered); a lock held elsewhere is waited for 5 s at most (as
/// SQLite's busy timeout), any statement 30 s: a stuck database fails requests clearly
/// instead of holding the queue.
pub const SESSION: &str = "SET synchronous_commit TO on;
    SET lock_timeout TO '5s';
    SET statement_timeout TO '30s';";

/// The schema on PostgreSQL, one step per version, numbered as [`super::MIGRATIONS`]: step
/// `n` takes a database from version `n` to `n + 1`.
pub const PG_MIGRATIONS: &[&str] = &[
    // 1: accounts, credentials, rosters, privacy, offline messages.
    "CREATE TABLE accounts (
        jid TEXT PRIMARY KEY,
        roster_version BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE credentials (
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        salt BYTEA NOT NULL,
        iterations BIGINT NOT NULL,
        stored_key BYTEA NOT NULL,
        server_key BYTEA NOT NULL,
        PRIMARY KEY (jid, hash)
    );
    CREATE TABLE roster (
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        contact TEXT NOT NULL,
        name TEXT,
        state TEXT NOT NULL,
        pre_approved BOOLEAN NOT NULL,
        in_roster BOOLEAN NOT NULL,
        request TEXT,
        PRIMARY KEY (jid, contact)
    );
    CREATE TABLE roster_groups (
        jid TEXT NOT NULL,
        contact TEXT NOT NULL,
        position BIGINT NOT NULL,
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
        position BIGINT NOT NULL,
        list TEXT NOT NULL,
        PRIMARY KEY (jid, position)
    );
    CREATE TABLE blocked (
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        position BIGINT NOT NULL,
        blocked TEXT NOT NULL,
        PRIMARY KEY (jid, position)
    );
    CREATE TABLE offline (
        id BIGSERIAL PRIMARY KEY,
        jid TEXT NOT NULL REFERENCES accounts(jid) ON DELETE CASCADE,
        stanza TEXT NOT NULL
    );
    CREATE INDEX offline_by_jid ON offline (jid, id);",
];

/// What went wrong in one request: the connection's (drop it, connect again next time) or
/// the data's.
enum Failure {
    Pg(postgres::Error),
    Data(DbError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        Failure::Data(e)
    }
}

/// A PostgreSQL database: the connection's configuration and, while it is up, the
/// connection.
pub struct PgDb {
    config: Config,
    client: Option<Client>,
}

impl core::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Not the configuration: it may hold a password.
        f.debug_struct("PgDb")
            .field(
                "connected",
                &self.client.as_ref().is_some_and(|c| !c.is_closed()),
            )
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL error as text: the server's own message when it answered one.
fn describe(e: &postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError(format!(
            "PostgreSQL: {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        )),
        None => DbError(format!("PostgreSQL: {e}")),
    }
}

/// `i64` for a count or position (saturating: no stored count comes near).
fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgDb {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DB`, or the
    /// key=value form) and brings its schema up to date. No TLS: meant for a database on the
    /// same host or a private network.
    pub fn connect(url: &str) -> Result<Self, DbError> {
        let mut config: Config = url
            .parse()
            // Not the URL itself: it may hold a password.
            .map_err(|e| DbError(format!("PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A peer that vanishes without closing (a cut network) is noticed, not waited for.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let mut db = PgDb {
            config,
            client: None,
        };
        db.run(Self::migrate)?;
        Ok(db)
    }

    /// Runs `f` on the connection, connecting first when there is none (or it was lost). A
    /// failure that is not the database's answer to a statement drops the connection.
    fn run<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, Failure>) -> Result<T, DbError> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => {
                let mut client = self.config.connect(NoTls).map_err(|e| describe(&e))?;
                client.batch_execute(SESSION).map_err(|e| describe(&e))?;
                client
            }
        };
        let client = self.client.insert(client);
        match f(client) {
            Ok(value) => Ok(value),
            Err(Failure::Data(e)) => Err(e),
            Err(Failure::Pg(e)) => {
                if e.as_db_error().is_none() || client.is_closed() {
                    self.client = None;
                }
                Err(describe(&e))
            }
        }
    }

    fn migrate(client: &mut Client) -> Result<(), Failure> {
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        )?;
        loop {
            let mut tx = client.transaction()?;
            tx.batch_execute(
                "LOCK TABLE schema_version IN EXCLUSIVE MODE;
                 INSERT INTO schema_version SELECT 0
                 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
            )?;
            let current: i32 = tx
                .query_one("SELECT version FROM schema_version", &[])?
                .get(0);
            let current = usize::try_from(current).unwrap_or(0);
            if current > PG_MIGRATIONS.len() {
                return Err(Failure::Data(DbError(format!(
                    "the database has schema version {current}, newer than this server's {}",
                    PG_MIGRATIONS.len()
                ))));
            }
            let Some(step) = PG_MIGRATIONS.get(current) else {
                tx.commit()?;
                return Ok(());
            };
            tx.batch_execute(step)?;
            let next = i32::try_from(current + 1).unwrap_or(i32::MAX);
            tx.execute("UPDATE schema_version SET version = $1", &[&next])?;
            tx.commit()?;
        }
    }
}

impl Store for PgDb {
    /// The schema version of the database.
    fn version(&mut self) -> Result<usize, DbError> {
        self.run(|c| {
            let v: i32 = c
                .query_one("SELECT version FROM schema_version", &[])?
                .get(0);
            Ok(usize::try_from(v).unwrap_or(0))
        })
    }

    // ---- accounts ----

    /// As [`Db::set_user`](super::Db::set_user): SCRAM credentials only, never the password.
    fn set_user(
        &mut self,
        jid: &BareJid,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<bool, DbError> {
        let creds = derive_all(password, salt, iterations)?;
        self.run(|c| {
            let mut tx = c.transaction()?;
            let new = tx.execute(
                "INSERT INTO accounts (jid) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&jid.as_str()],
            )? == 1;
            tx.execute("DELETE FROM credentials WHERE jid = $1", &[&jid.as_str()])?;
            for cred in &creds {
                tx.execute(
                    "INSERT INTO credentials (jid, hash, salt, iterations, stored_key, server_key)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &jid.as_str(),
                        &cred.hash().as_str(),
                        &cred.salt(),
                        &i64::from(cred.iterations()),
                        &cred.stored_key(),
                        &cred.server_key(),
                    ],
                )?;
            }
            tx.commit()?;
            Ok(new)
        })
    }

    /// As [`Db::delete_user`](super::Db::delete_user).
    fn has_user(&mut self, jid: &BareJid) -> Result<bool, DbError> {
        self.run(|c| {
            let rows = c.query("SELECT 1 FROM accounts WHERE jid = $1", &[&jid.as_str()])?;
            Ok(!rows.is_empty())
        })
    }

    fn delete_user(&mut self, jid: &BareJid) -> Result<bool, DbError> {
        self.run(|c| Ok(c.execute("DELETE FROM accounts WHERE jid = $1", &[&jid.as_str()])? == 1))
    }

    /// As [`Db::users`](super::Db::users).
    fn users(&mut self) -> Result<Accounts, DbError> {
        self.run(|c| {
            let rows = c.query(
                "SELECT a.jid, c.hash, c.salt, c.iterations, c.stored_key, c.server_key
                 FROM accounts a LEFT JOIN credentials c ON c.jid = a.jid
                 ORDER BY a.jid, c.hash",
                &[],
            )?;
            let mut out = Accounts::new();
            for row in rows {
                let jid: String = row.try_get(0)?;
                let iterations = match row.try_get::<_, Option<i64>>(3)? {
                    Some(n) => {
                        Some(u32::try_from(n).map_err(|_| corrupt("iterations", &n.to_string()))?)
                    }
                    None => None,
                };
                push_credentials(
                    &mut out,
                    &jid,
                    (
                        row.try_get(1)?,
                        row.try_get(2)?,
                        iterations,
                        row.try_get(4)?,
                        row.try_get(5)?,
                    ),
                )?;
            }
            Ok(out)
        })
    }

    // ---- the IM machine's requests ----

    /// As [`Db::load`](super::Db::load): everything about one account, read in one
    /// repeatable-read transaction (one snapshot).
    fn load(&mut self, user: &BareJid) -> Result<AccountData, DbError> {
        self.run(|c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let data = load_in(&mut tx, user)?;
            tx.commit()?;
            Ok(data)
        })
    }

    /// As [`Db::write`](super::Db::write): all or none, committed (durable) at return.
    fn write(&mut self, changes: &[Change]) -> Result<(), DbError> {
        self.run(|c| {
            let mut tx = c.transaction()?;
            for change in changes {
                apply(&mut tx, change)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    // ---- offline messages ----

    /// As [`Db::store_offline`](super::Db::store_offline): bounded by `max`, nothing for a
    /// missing account.
    fn store_offline(
        &mut self,
        user: &BareJid,
        stanza: &Element,
        max: usize,
    ) -> Result<bool, DbError> {
        let xml = String::from(stanza);
        self.run(|c| {
            let mut tx = c.transaction()?;
            // The account's row locked: the count and the insert are one step for anyone
            // else storing for it.
            if tx
                .query_opt(
                    "SELECT 1 FROM accounts WHERE jid = $1 FOR UPDATE",
                    &[&user.as_str()],
                )?
                .is_none()
            {
                return Ok(false);
            }
            let count: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM offline WHERE jid = $1",
                    &[&user.as_str()],
                )?
                .get(0);
            if usize::try_from(count).unwrap_or(usize::MAX) >= max {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO offline (jid, stanza) VALUES ($1, $2)",
                &[&user.as_str(), &xml],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// As [`Db::take_offline`](super::Db::take_offline): read and deleted in one statement,
    /// oldest first.
    fn take_offline(&mut self, user: &BareJid) -> Result<Vec<Element>, DbError> {
        self.run(|c| {
            let rows = c.query(
                "DELETE FROM offline WHERE jid = $1 RETURNING id, stanza",
                &[&user.as_str()],
            )?;
            let mut taken = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get(0)?;
                let xml: String = row.try_get(1)?;
                taken.push((id, xml));
            }
            taken.sort_by_key(|(id, _)| *id);
            // A row that does not parse is dropped with the others: it could never be
            // delivered.
            Ok(taken
                .into_iter()
                .filter_map(|(_, xml)| xml.parse::<Element>().ok())
                .collect())
        })
    }

    /// As [`Db::offline_count`](super::Db::offline_count).
    fn offline_count(&mut self, user: &BareJid) -> Result<usize, DbError> {
        self.run(|c| {
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM offline WHERE jid = $1",
                    &[&user.as_str()],
                )?
                .get(0);
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }
}

fn load_in(tx: &mut Transaction<'_>, user: &BareJid) -> Result<AccountData, Failure> {
    let jid = user.as_str();
    let Some(row) = tx.query_opt(
        "SELECT roster_version FROM accounts WHERE jid = $1",
        &[&jid],
    )?
    else {
        return Ok(AccountData::missing());
    };
    let version: i64 = row.try_get(0)?;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in tx.query(
        "SELECT contact, name FROM roster_groups WHERE jid = $1 ORDER BY contact, position",
        &[&jid],
    )? {
        groups
            .entry(row.try_get(0)?)
            .or_default()
            .push(row.try_get(1)?);
    }
    let mut entries = Vec::new();
    for row in tx.query(
        "SELECT contact, name, state, pre_approved, in_roster, request FROM roster
         WHERE jid = $1 ORDER BY contact",
        &[&jid],
    )? {
        let contact: String = row.try_get(0)?;
        let state: String = row.try_get(2)?;
        let in_groups = groups.remove(&contact).unwrap_or_default();
        entries.push(roster_entry(
            &contact,
            row.try_get(1)?,
            &state,
            [row.try_get(3)?, row.try_get(4)?],
            row.try_get(5)?,
            in_groups,
        )?);
    }
    let privacy = load_privacy(tx, jid, &entries)?;
    Ok(AccountData {
        exists: true,
        version: u64::try_from(version).unwrap_or(0),
        privacy,
        entries,
    })
}

fn load_privacy(
    tx: &mut Transaction<'_>,
    jid: &str,
    entries: &[RosterEntry],
) -> Result<Option<PrivacyData>, Failure> {
    let Some(row) = tx.query_opt("SELECT default_list FROM privacy WHERE jid = $1", &[&jid])?
    else {
        return Ok(None);
    };
    let default: Option<String> = row.try_get(0)?;
    let lists = tx
        .query(
            "SELECT list FROM privacy_lists WHERE jid = $1 ORDER BY position",
            &[&jid],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    let blocked = tx
        .query(
            "SELECT blocked FROM blocked WHERE jid = $1 ORDER BY position",
            &[&jid],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Some(privacy_data(default, &lists, &blocked, entries)?))
}

fn apply(tx: &mut Transaction<'_>, change: &Change) -> Result<(), Failure> {
    let user = change.user().as_str();
    match change {
        Change::PutEntry { entry, .. } => {
            let contact = entry.jid.as_str();
            let state = entry.state.state.to_string();
            let request = entry.request.as_ref().map(String::from);
            tx.execute(
                "INSERT INTO roster (jid, contact, name, state, pre_approved, in_roster, request)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (jid, contact) DO UPDATE SET name = $3, state = $4,
                    pre_approved = $5, in_roster = $6, request = $7",
                &[
                    &user,
                    &contact,
                    &entry.name,
                    &state,
                    &entry.state.pre_approved,
                    &entry.in_roster,
                    &request,
                ],
            )?;
            tx.execute(
                "DELETE FROM roster_groups WHERE jid = $1 AND contact = $2",
                &[&user, &contact],
            )?;
            for (i, g) in entry.groups.iter().enumerate() {
                tx.execute(
                    "INSERT INTO roster_groups (jid, contact, position, name)
                     VALUES ($1, $2, $3, $4)",
                    &[&user, &contact, &int(i), g],
                )?;
            }
        }
        Change::DeleteEntry { contact, .. } => {
            tx.execute(
                "DELETE FROM roster WHERE jid = $1 AND contact = $2",
                &[&user, &contact.as_str()],
            )?;
        }
        Change::Version { version, .. } => {
            let version = i64::try_from(*version).unwrap_or(i64::MAX);
            tx.execute(
                "UPDATE accounts SET roster_version = $2 WHERE jid = $1",
                &[&user, &version],
            )?;
        }
        Change::Privacy { data, .. } => {
            tx.execute(
                "INSERT INTO privacy (jid, default_list) VALUES ($1, $2)
                 ON CONFLICT (jid) DO UPDATE SET default_list = $2",
                &[&user, &data.default],
            )?;
            tx.execute("DELETE FROM privacy_lists WHERE jid = $1", &[&user])?;
            for (i, l) in data.lists.iter().enumerate() {
                tx.execute(
                    "INSERT INTO privacy_lists (jid, position, list) VALUES ($1, $2, $3)",
                    &[&user, &int(i), &String::from(&l.to_element())],
                )?;
            }
            tx.execute("DELETE FROM blocked WHERE jid = $1", &[&user])?;
            for (i, j) in data.blocked.iter().enumerate() {
                tx.execute(
                    "INSERT INTO blocked (jid, position, blocked) VALUES ($1, $2, $3)",
                    &[&user, &int(i), &j.as_str()],
                )?;
            }
        }
        other => return Err(Failure::Data(DbError(format!("unknown change {other:?}")))),
    }
    Ok(())
}
