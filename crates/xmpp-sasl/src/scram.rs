//! SCRAM (RFC 5802, RFC 7677) client and server state machines, with channel binding and
//! XEP-0474 downgrade protection.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::codec::{self, Gs2Binding};
use crate::credentials::{CredentialStore, ScramKeys, StoredCredentials};
use crate::crypto::{self, Key};
use crate::error::{Condition, Error};
use crate::mechanism::{ChannelBinding, ScramHash};

/// XEP-0474: the `d=` value, `base64(H(sorted mechanisms joined by ',' [ '|' sorted
/// channel-binding types joined by ',' ]))`, over the names exactly as advertised.
pub fn downgrade_hash(
    hash: ScramHash,
    mechanisms: &[String],
    binding_types: Option<&[String]>,
) -> String {
    let mut m: Vec<&str> = mechanisms.iter().map(String::as_str).collect();
    m.sort_unstable();
    let mut s = m.join(",");
    if let Some(cb) = binding_types {
        let mut c: Vec<&str> = cb.iter().map(String::as_str).collect();
        c.sort_unstable();
        s.push('|');
        s.push_str(&c.join(","));
    }
    codec::b64(crypto::h(hash, s.as_bytes()).as_slice())
}

/// What the client saw advertised, for the XEP-0474 check.
#[derive(Clone, Debug, Default)]
pub(crate) struct Advertised {
    pub(crate) mechanisms: Vec<String>,
    pub(crate) binding_types: Option<Vec<String>>,
}

#[derive(Debug)]
enum ClientState {
    Initial,
    SentFirst,
    SentFinal(Key),
    Done,
    Failed,
}

/// The client side of one SCRAM exchange.
#[derive(Debug)]
pub(crate) struct ScramClient {
    hash: ScramHash,
    gs2: Gs2Binding,
    gs2_header: String,
    binding_data: Vec<u8>,
    nonce: String,
    bare: String,
    password: Option<Zeroizing<String>>,
    keys: Option<ScramKeys>,
    min_iterations: u32,
    max_iterations: u32,
    advertised: Option<Advertised>,
    state: ClientState,
}

pub(crate) struct ScramClientParams {
    pub(crate) hash: ScramHash,
    pub(crate) gs2: Gs2Binding,
    pub(crate) binding: Option<ChannelBinding>,
    pub(crate) authcid: String,
    pub(crate) authzid: Option<String>,
    pub(crate) nonce: String,
    pub(crate) password: Option<Zeroizing<String>>,
    pub(crate) cached: Option<ScramKeys>,
    pub(crate) min_iterations: u32,
    pub(crate) max_iterations: u32,
    pub(crate) advertised: Option<Advertised>,
}

impl ScramClient {
    pub(crate) fn new(p: ScramClientParams) -> Result<Self, Error> {
        if !codec::valid_nonce(&p.nonce) {
            return Err(Error::Usage("nonce must be printable ASCII without ','"));
        }
        if p.authcid.is_empty() {
            return Err(Error::Usage("empty username"));
        }
        let binding_data = match (p.gs2, &p.binding) {
            (Gs2Binding::Bound(t), Some(b)) if b.kind() == t => b.data().to_vec(),
            (Gs2Binding::Bound(t), _) => return Err(Error::UnsupportedChannelBinding(Some(t))),
            _ => Vec::new(),
        };
        let gs2_header = p.gs2.header(p.authzid.as_deref());
        let mut bare = String::from("n=");
        bare.push_str(&codec::escape_saslname(&p.authcid));
        bare.push_str(",r=");
        bare.push_str(&p.nonce);
        Ok(ScramClient {
            hash: p.hash,
            gs2: p.gs2,
            gs2_header,
            binding_data,
            nonce: p.nonce,
            bare,
            password: p.password,
            keys: p.cached,
            min_iterations: p.min_iterations,
            max_iterations: p.max_iterations,
            advertised: p.advertised,
            state: ClientState::Initial,
        })
    }

    pub(crate) fn gs2(&self) -> Gs2Binding {
        self.gs2
    }

    pub(crate) fn start(&mut self) -> Result<Vec<u8>, Error> {
        if !matches!(self.state, ClientState::Initial) {
            return Err(Error::Usage("start called twice"));
        }
        self.state = ClientState::SentFirst;
        let mut out = String::with_capacity(self.gs2_header.len() + self.bare.len());
        out.push_str(&self.gs2_header);
        out.push_str(&self.bare);
        Ok(out.into_bytes())
    }

    pub(crate) fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        match core::mem::replace(&mut self.state, ClientState::Failed) {
            ClientState::SentFirst => {
                let (out, sig) = self.client_final(challenge)?;
                self.state = ClientState::SentFinal(sig);
                Ok(out)
            }
            // RFC 6120 §6.3.10 allows the server-final-message as a last challenge, answered
            // with an empty response and followed by an empty <success/>.
            ClientState::SentFinal(sig) => {
                verify_server_final(challenge, &sig)?;
                self.state = ClientState::Done;
                Ok(Vec::new())
            }
            ClientState::Initial => {
                // A usage error changes nothing.
                self.state = ClientState::Initial;
                Err(Error::Usage("step before start"))
            }
            ClientState::Done => Err(Error::Malformed("challenge after the server signature")),
            ClientState::Failed => Err(Error::Usage("session already failed")),
        }
    }

    pub(crate) fn finish(&mut self, additional: Option<&[u8]>) -> Result<(), Error> {
        match (
            core::mem::replace(&mut self.state, ClientState::Failed),
            additional,
        ) {
            (ClientState::SentFinal(sig), Some(data)) => {
                verify_server_final(data, &sig)?;
                self.state = ClientState::Done;
                Ok(())
            }
            (ClientState::Done, None) => {
                self.state = ClientState::Done;
                Ok(())
            }
            (ClientState::Done, Some([])) => {
                self.state = ClientState::Done;
                Ok(())
            }
            (ClientState::Done, Some(_)) => Err(Error::Malformed("second server-final-message")),
            (ClientState::Failed, _) => Err(Error::Usage("session already failed")),
            _ => Err(Error::PrematureSuccess),
        }
    }

    pub(crate) fn keys(&self) -> Option<&ScramKeys> {
        if matches!(self.state, ClientState::Done) {
            self.keys.as_ref()
        } else {
            None
        }
    }

    fn client_final(&mut self, challenge: &[u8]) -> Result<(Vec<u8>, Key), Error> {
        let server_first = codec::utf8(challenge)?;
        let attrs = codec::attrs(server_first)?;
        let mut it = attrs.iter();
        let nonce = codec::expect(&mut it, b'r', "nonce")?;
        let salt = codec::expect(&mut it, b's', "salt")?;
        let iterations = codec::expect(&mut it, b'i', "iteration count")?;
        let mut ssdp = None;
        for a in it {
            if a.name == b'd' {
                ssdp = Some(a.value);
            }
        }
        if !codec::valid_nonce(nonce)
            || !nonce.starts_with(self.nonce.as_str())
            || nonce.len() == self.nonce.len()
        {
            return Err(Error::NonceMismatch);
        }
        let salt = codec::unb64(salt, "salt")?;
        if salt.is_empty() {
            return Err(Error::EmptySalt);
        }
        let iterations = codec::parse_iterations(iterations)?;
        if iterations < self.min_iterations {
            return Err(Error::IterationCountTooLow(iterations));
        }
        if iterations > self.max_iterations {
            return Err(Error::IterationCountTooHigh(iterations));
        }
        if let (Some(adv), Some(d)) = (&self.advertised, ssdp) {
            let expected = downgrade_hash(self.hash, &adv.mechanisms, adv.binding_types.as_deref());
            if expected != d {
                return Err(Error::DowngradeDetected);
            }
        }
        let cached = self
            .keys
            .as_ref()
            .is_some_and(|k| k.matches(self.hash, &salt, iterations));
        if !cached {
            let password = self.password.as_ref().ok_or(Error::MissingCredentials)?;
            let salted = crypto::salted_password(self.hash, password.as_bytes(), &salt, iterations);
            let (ck, sk) = crypto::client_server_keys(self.hash, &salted);
            self.keys = Some(ScramKeys::new(self.hash, &salt, iterations, ck, sk));
        }
        let Some(keys) = self.keys.as_ref() else {
            return Err(Error::MissingCredentials);
        };
        let (client_key, server_key) = keys.keys();

        let mut cbind = Vec::with_capacity(self.gs2_header.len() + self.binding_data.len());
        cbind.extend_from_slice(self.gs2_header.as_bytes());
        cbind.extend_from_slice(&self.binding_data);
        let mut without_proof = String::from("c=");
        without_proof.push_str(&codec::b64(&cbind));
        without_proof.push_str(",r=");
        without_proof.push_str(nonce);

        let auth = [
            self.bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let stored_key = crypto::h(self.hash, client_key.as_slice());
        let client_sig = crypto::hmac(self.hash, stored_key.as_slice(), &auth);
        let proof = client_key.xor(client_sig.as_slice());
        let server_sig = crypto::hmac(self.hash, server_key.as_slice(), &auth);

        let mut out = without_proof;
        out.push_str(",p=");
        out.push_str(&codec::b64(proof.as_slice()));
        Ok((out.into_bytes(), server_sig))
    }
}

fn verify_server_final(msg: &[u8], expected: &Key) -> Result<(), Error> {
    let text = codec::utf8(msg)?;
    let attrs = codec::attrs(text)?;
    let first = attrs.first().ok_or(Error::Malformed("server-final"))?;
    match first.name {
        b'e' => Err(Error::ServerError(crate::error::ScramError::from_wire(
            first.value,
        ))),
        b'v' => {
            // Undecodable is just another wrong signature (scram.json `wrong-server-signature`
            // has non-zero trailing bits).
            let v = codec::unb64(first.value, "server signature")
                .map_err(|_| Error::ServerSignatureMismatch)?;
            if expected.ct_eq(&v) {
                Ok(())
            } else {
                Err(Error::ServerSignatureMismatch)
            }
        }
        b'm' => Err(Error::MandatoryExtension),
        _ => Err(Error::Malformed("server-final")),
    }
}

/// Server-side settings a SCRAM exchange needs, copied out of the session configuration.
pub(crate) struct ScramServerParams<'a> {
    pub(crate) hash: ScramHash,
    pub(crate) plus: bool,
    pub(crate) offers_plus: bool,
    pub(crate) bindings: &'a [ChannelBinding],
    pub(crate) nonce: &'a str,
    pub(crate) ssdp: Option<String>,
    pub(crate) mock_iterations: u32,
    pub(crate) mock_secret: &'a [u8],
}

enum ServerState {
    Initial,
    SentFirst(Box<Pending>),
    Done,
    Failed,
}

struct Pending {
    /// The GS2 header followed by the binding data: what `c=` must decode to.
    cbind: Vec<u8>,
    bare: String,
    server_first: String,
    nonce: String,
    /// `None` for an unknown user: the exchange goes on and fails at the proof.
    creds: Option<StoredCredentials>,
    authcid: String,
    authzid: Option<String>,
}

/// What a successful SCRAM exchange established.
pub(crate) struct ScramSuccess {
    pub(crate) authcid: String,
    pub(crate) authzid: Option<String>,
    pub(crate) server_final: Vec<u8>,
}

/// The server side of one SCRAM exchange.
pub(crate) struct ScramServer {
    hash: ScramHash,
    plus: bool,
    offers_plus: bool,
    bindings: Vec<ChannelBinding>,
    nonce: String,
    ssdp: Option<String>,
    mock_iterations: u32,
    mock_secret: Vec<u8>,
    state: ServerState,
}

impl core::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScramServer")
            .field("hash", &self.hash)
            .field("plus", &self.plus)
            .finish_non_exhaustive()
    }
}

pub(crate) enum ServerOut {
    Challenge(Vec<u8>),
    Success(ScramSuccess),
}

impl ScramServer {
    pub(crate) fn new(p: ScramServerParams<'_>) -> Result<Self, Error> {
        if !codec::valid_nonce(p.nonce) {
            return Err(Error::Usage("nonce must be printable ASCII without ','"));
        }
        Ok(ScramServer {
            hash: p.hash,
            plus: p.plus,
            offers_plus: p.offers_plus,
            bindings: p.bindings.to_vec(),
            nonce: String::from(p.nonce),
            ssdp: p.ssdp,
            mock_iterations: p.mock_iterations,
            mock_secret: p.mock_secret.to_vec(),
            state: ServerState::Initial,
        })
    }

    pub(crate) fn step<S: CredentialStore + ?Sized>(
        &mut self,
        store: &S,
        msg: &[u8],
    ) -> Result<ServerOut, Error> {
        match core::mem::replace(&mut self.state, ServerState::Failed) {
            ServerState::Initial => {
                let pending = self.first(store, msg)?;
                let out = pending.server_first.clone().into_bytes();
                self.state = ServerState::SentFirst(Box::new(pending));
                Ok(ServerOut::Challenge(out))
            }
            ServerState::SentFirst(p) => {
                let ok = self.last(store, &p, msg)?;
                self.state = ServerState::Done;
                Ok(ServerOut::Success(ok))
            }
            ServerState::Done => Err(Error::Malformed("response after success")),
            ServerState::Failed => Err(Error::Usage("session already failed")),
        }
    }

    fn first<S: CredentialStore + ?Sized>(&self, store: &S, msg: &[u8]) -> Result<Pending, Error> {
        let text = codec::utf8(msg)?;
        let gs2 = codec::parse_gs2(text)?;
        let binding = gs2.binding?;
        let binding_data: &[u8] = match binding {
            Gs2Binding::Bound(t) => {
                if !self.plus {
                    return Err(Error::ChannelBindingFlagMismatch);
                }
                self.bindings
                    .iter()
                    .find(|b| b.kind() == t)
                    .map(ChannelBinding::data)
                    .ok_or(Error::UnsupportedChannelBinding(Some(t)))?
            }
            _ if self.plus => return Err(Error::ChannelBindingFlagMismatch),
            Gs2Binding::ClientOnly if self.offers_plus => return Err(Error::Downgrade),
            _ => &[],
        };
        let bare = &text[gs2.len..];
        let attrs = codec::attrs(bare)?;
        let mut it = attrs.iter();
        let user = codec::expect(&mut it, b'n', "username")?;
        let cnonce = codec::expect(&mut it, b'r', "nonce")?;
        let authcid = codec::unescape_saslname(user)?;
        if authcid.is_empty() {
            return Err(Error::Malformed("empty username"));
        }
        if !codec::valid_nonce(cnonce) {
            return Err(Error::Malformed("nonce"));
        }
        let creds = store
            .scram_credentials(&authcid, self.hash)
            .map_err(Error::Store)?
            .filter(|c| c.hash() == self.hash);
        let (salt, iterations) = if let Some(c) = &creds {
            (c.salt().to_vec(), c.iterations())
        } else {
            // A stable made-up salt per user, so probing twice does not reveal absence.
            let mut seed = Vec::with_capacity(authcid.len() + self.mock_secret.len() + 16);
            seed.extend_from_slice(b"xmpp-sasl mock salt\0");
            seed.extend_from_slice(&self.mock_secret);
            seed.extend_from_slice(authcid.as_bytes());
            let h = crypto::h(self.hash, &seed);
            (h.as_slice()[..16].to_vec(), self.mock_iterations)
        };
        let mut nonce = String::with_capacity(cnonce.len() + self.nonce.len());
        nonce.push_str(cnonce);
        nonce.push_str(&self.nonce);
        let mut server_first = String::from("r=");
        server_first.push_str(&nonce);
        server_first.push_str(",s=");
        server_first.push_str(&codec::b64(&salt));
        server_first.push_str(",i=");
        push_u32(&mut server_first, iterations);
        if let Some(d) = &self.ssdp {
            server_first.push_str(",d=");
            server_first.push_str(d);
        }
        let mut cbind = Vec::with_capacity(gs2.len + binding_data.len());
        cbind.extend_from_slice(&text.as_bytes()[..gs2.len]);
        cbind.extend_from_slice(binding_data);
        Ok(Pending {
            cbind,
            bare: String::from(bare),
            server_first,
            nonce,
            creds,
            authcid,
            authzid: gs2.authzid,
        })
    }

    fn last<S: CredentialStore + ?Sized>(
        &self,
        store: &S,
        p: &Pending,
        msg: &[u8],
    ) -> Result<ScramSuccess, Error> {
        let text = codec::utf8(msg)?;
        let attrs = codec::attrs(text)?;
        let mut it = attrs.iter();
        let c = codec::expect(&mut it, b'c', "channel binding")?;
        let r = codec::expect(&mut it, b'r', "nonce")?;
        let rest: Vec<_> = it.collect();
        let Some((proof_attr, extensions)) = rest.split_last() else {
            return Err(Error::Malformed("missing proof"));
        };
        if proof_attr.name != b'p' || extensions.iter().any(|a| a.name == b'p') {
            return Err(Error::Malformed("proof must be the last attribute"));
        }
        let c = codec::unb64(c, "channel binding")?;
        if c != p.cbind {
            return Err(Error::ChannelBindingMismatch);
        }
        if r != p.nonce {
            return Err(Error::NonceMismatch);
        }
        // A proof that is not even base64 is a wrong proof (scram.json `wrong-proof`).
        let proof = codec::unb64(proof_attr.value, "proof").map_err(|_| Error::InvalidProof)?;
        // `text` ends with ",p=<proof>"; the rest is client-final-message-without-proof.
        let without_proof = &text[..text.len() - proof_attr.value.len() - 3];
        let auth = [
            p.bare.as_bytes(),
            b",",
            p.server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        if proof.len() != self.hash.output_len() {
            return Err(Error::InvalidProof);
        }
        // For an unknown user the same work is done against a made-up key, so the answer does
        // not come measurably faster.
        let zero = [0u8; 64];
        let stored_key = p.creds.as_ref().map_or(
            &zero[..self.hash.output_len()],
            StoredCredentials::stored_key,
        );
        let client_sig = crypto::hmac(self.hash, stored_key, &auth);
        let client_key = client_sig.xor(&proof);
        let candidate = crypto::h(self.hash, client_key.as_slice());
        let Some(creds) = &p.creds else {
            return Err(Error::UnknownUser);
        };
        if !creds.stored_key_ref().ct_eq(candidate.as_slice()) {
            return Err(Error::InvalidProof);
        }
        if let Some(authzid) = &p.authzid {
            store.authorize(&p.authcid, authzid).map_err(|c| match c {
                Condition::InvalidAuthzid => Error::InvalidAuthzid,
                c => Error::Store(c),
            })?;
        }
        let server_sig = crypto::hmac(self.hash, creds.server_key(), &auth);
        let mut server_final = String::from("v=");
        server_final.push_str(&codec::b64(server_sig.as_slice()));
        Ok(ScramSuccess {
            authcid: p.authcid.clone(),
            authzid: p.authzid.clone(),
            server_final: server_final.into_bytes(),
        })
    }
}

fn push_u32(s: &mut String, v: u32) {
    use core::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(s, "{v}");
}
