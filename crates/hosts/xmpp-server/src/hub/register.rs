//! XEP-0077 in-band registration (`--allow-registration`): the stream machine asks for an
//! account before authentication ([`xmpp_stream::Event::RegistrationRequested`]); after it,
//! a client changes its password (§3.3) or cancels its account (§3.2) with IQs to the
//! server. Every change goes to storage first ([`StorageRequest`]: the database thread, or a
//! thread deriving the SCRAM credentials without one) and is answered once it is durable.

use minidom::Element;
use xmpp_jid::{BareJid, FullJid};
use xmpp_sasl::StoredCredentials;
use xmpp_stream::register::{self, RegisterParseError, RegisterRequest};
use xmpp_stream::{
    Instant, Registration, RegistrationRefused, StanzaError, StanzaErrorCondition, StreamError,
    StreamErrorCondition,
};

use super::{Hub, HubOutput, SessionId, StorageRequest};

/// Whether `stanza` is a registration IQ for the server itself from the session `jid`: no
/// `to`, or our domain (XEP-0077 §3.2, §3.3).
pub(super) fn is_for_us(stanza: &Element, jid: &FullJid) -> bool {
    stanza.name() == "iq"
        && stanza.has_child("query", register::NS)
        && stanza.attr("to").is_none_or(|to| to == jid.domain())
}

/// An empty result answering `iq`, to its sender.
fn result_to(iq: &Element) -> Element {
    Element::builder("iq", "jabber:client")
        .attr(name("type"), "result")
        .attr(name("id"), iq.attr("id"))
        .attr(name("to"), iq.attr("from"))
        .attr(name("from"), iq.attr("to"))
        .build()
}

fn name(s: &'static str) -> minidom::rxml::NcName {
    // Static attribute names are valid NCNames.
    #[allow(clippy::expect_used)]
    s.try_into().expect("static NCName")
}

impl Hub {
    /// Registration asked on session `id`, before authentication: a taken name is a
    /// `conflict` at once; otherwise storage creates it.
    pub(super) fn on_registration(&mut self, id: SessionId, now: Instant, asked: Registration) {
        let taken = self.backend.exists(&asked.jid) || self.registering.contains(&asked.jid);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        // The host's answer is not in the transcript's vocabulary.
        session.rec.unreplayable();
        if taken {
            self.log.push(format!(
                "{id}: registration of {} refused: taken",
                asked.jid
            ));
            if let Some(server) = session.stream.as_server_mut() {
                let _ = server.registration_done(now, Err(RegistrationRefused::Conflict));
            }
            self.dirty.insert(id);
            return;
        }
        self.log.push(format!("{id}: registering {}", asked.jid));
        self.registering.insert(asked.jid.clone());
        self.out
            .push_back(HubOutput::Storage(StorageRequest::CreateAccount {
                session: id,
                jid: asked.jid,
                password: asked.password,
                iterations: self.config.iterations,
            }));
    }

    /// The answer to [`StorageRequest::CreateAccount`]: the account exists (with these
    /// credentials, and may log in at once), or why not. The registering stream, if still
    /// there, gets its IQ answer.
    pub fn account_created(
        &mut self,
        now: Instant,
        session: SessionId,
        jid: &BareJid,
        result: Result<Vec<StoredCredentials>, RegistrationRefused>,
    ) {
        self.registering.remove(jid);
        let outcome = match result {
            Ok(credentials) => {
                self.backend.set(jid, credentials);
                self.store.add_account(jid.clone());
                self.log.push(format!("{session}: registered {jid}"));
                Ok(())
            }
            Err(refused) => {
                self.log
                    .push(format!("{session}: registration of {jid}: {refused:?}"));
                Err(refused)
            }
        };
        if let Some(server) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.stream.as_server_mut())
        {
            let _ = server.registration_done(now, outcome);
            self.dirty.insert(session);
        }
        self.flush(now);
    }

    /// A `jabber:iq:register` IQ from the authenticated session `jid` (on connection `id`).
    pub(super) fn on_register_iq(
        &mut self,
        id: SessionId,
        now: Instant,
        jid: &FullJid,
        iq: &Element,
    ) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.rec.unreplayable();
        }
        let account = jid.to_bare();
        let node = account.node().unwrap_or_default().to_owned();
        let reply = match RegisterRequest::parse(iq) {
            // A result or an error: nobody's answer.
            Err(RegisterParseError::NotRegister) => return,
            Ok(RegisterRequest::Fields) => {
                // §3.1: a registered entity learns it is, and what it is registered as.
                let mut result = result_to(iq);
                result.append_child(
                    Element::builder("query", register::NS)
                        .append(Element::bare("registered", register::NS))
                        .append(
                            Element::builder("username", register::NS)
                                .append(node)
                                .build(),
                        )
                        .append(Element::bare("password", register::NS))
                        .build(),
                );
                result
            }
            Ok(RegisterRequest::Submit { username, password }) if username == node => {
                self.out
                    .push_back(HubOutput::Storage(StorageRequest::ChangePassword {
                        session: id,
                        jid: account,
                        password,
                        iterations: self.config.iterations,
                        iq: iq.clone(),
                    }));
                return;
            }
            Ok(RegisterRequest::Cancel) => {
                self.out
                    .push_back(HubOutput::Storage(StorageRequest::DeleteAccount {
                        session: id,
                        jid: account,
                        iq: iq.clone(),
                    }));
                return;
            }
            // §3.3: incomplete, or another account's username; §3.2: `<remove/>` with company.
            Ok(_) | Err(_) => StanzaError::new(StanzaErrorCondition::BadRequest).reply_to(iq),
        };
        self.send_on(now, id, &reply);
    }

    /// The answer to [`StorageRequest::ChangePassword`]: the new credentials hold from the
    /// next login; the session gets its IQ answer.
    pub fn password_changed(
        &mut self,
        now: Instant,
        session: SessionId,
        jid: &BareJid,
        iq: &Element,
        result: Result<Vec<StoredCredentials>, RegistrationRefused>,
    ) {
        let reply = match result {
            Ok(credentials) => {
                self.backend.set(jid, credentials);
                self.log
                    .push(format!("{session}: password of {jid} changed"));
                result_to(iq)
            }
            Err(refused) => refused.stanza_error().reply_to(iq),
        };
        self.send_on(now, session, &reply);
        self.flush(now);
    }

    /// The answer to [`StorageRequest::DeleteAccount`]: once deleted, the session gets its
    /// IQ result, then every session of the account is closed with `not-authorized`
    /// (XEP-0077 §3.2).
    pub fn account_deleted(
        &mut self,
        now: Instant,
        session: SessionId,
        jid: &BareJid,
        iq: &Element,
        result: Result<(), RegistrationRefused>,
    ) {
        if let Err(refused) = result {
            self.send_on(now, session, &refused.stanza_error().reply_to(iq));
            self.flush(now);
            return;
        }
        self.backend.remove(jid);
        self.log.push(format!("{session}: account {jid} deleted"));
        self.send_on(now, session, &result_to(iq));
        let sessions: Vec<SessionId> = self
            .by_jid
            .iter()
            .filter(|(full, _)| full.to_bare() == *jid)
            .map(|(_, id)| *id)
            .collect();
        for id in sessions {
            if let Some(session) = self.sessions.get_mut(&id) {
                let error = StreamError::new(StreamErrorCondition::NotAuthorized)
                    .with_text(None, "account deleted");
                if session.stream.close_with_error(now, error).is_ok() {
                    self.dirty.insert(id);
                }
            }
        }
        self.flush(now);
    }
}
