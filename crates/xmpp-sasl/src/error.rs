//! Failure vocabulary: the RFC 6120 §6.5 conditions sent on the wire, the RFC 5802 `e=` values,
//! and the detailed [`Error`] kept for logs.

use core::fmt;
use core::str::FromStr;

use crate::mechanism::{ChannelBindingType, UnknownName};

/// An RFC 6120 §6.5 SASL failure condition, the child element of `<failure/>`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// `aborted`: the initiating entity sent `<abort/>`.
    Aborted,
    /// `account-disabled`: the account is (temporarily) disabled.
    AccountDisabled,
    /// `credentials-expired`: the credentials have expired.
    CredentialsExpired,
    /// `encryption-required`: the mechanism may be used only over an encrypted stream.
    EncryptionRequired,
    /// `incorrect-encoding`: base64 data could not be decoded.
    IncorrectEncoding,
    /// `invalid-authzid`: the authorization identity is malformed or not permitted.
    InvalidAuthzid,
    /// `invalid-mechanism`: the mechanism is not offered.
    InvalidMechanism,
    /// `malformed-request`: the request is syntactically invalid.
    MalformedRequest,
    /// `mechanism-too-weak`: policy requires a stronger mechanism.
    MechanismTooWeak,
    /// `not-authorized`: wrong credentials (deliberately vague).
    NotAuthorized,
    /// `temporary-auth-failure`: a temporary error on the receiving side.
    TemporaryAuthFailure,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 11] = [
        Condition::Aborted,
        Condition::AccountDisabled,
        Condition::CredentialsExpired,
        Condition::EncryptionRequired,
        Condition::IncorrectEncoding,
        Condition::InvalidAuthzid,
        Condition::InvalidMechanism,
        Condition::MalformedRequest,
        Condition::MechanismTooWeak,
        Condition::NotAuthorized,
        Condition::TemporaryAuthFailure,
    ];

    /// The element name, e.g. `not-authorized`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Condition::Aborted => "aborted",
            Condition::AccountDisabled => "account-disabled",
            Condition::CredentialsExpired => "credentials-expired",
            Condition::EncryptionRequired => "encryption-required",
            Condition::IncorrectEncoding => "incorrect-encoding",
            Condition::InvalidAuthzid => "invalid-authzid",
            Condition::InvalidMechanism => "invalid-mechanism",
            Condition::MalformedRequest => "malformed-request",
            Condition::MechanismTooWeak => "mechanism-too-weak",
            Condition::NotAuthorized => "not-authorized",
            Condition::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Condition {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Condition::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or(UnknownName)
    }
}

/// An RFC 5802 `server-error-value` (the `e=` attribute of a SCRAM server-final-message).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramError {
    /// `invalid-encoding`
    InvalidEncoding,
    /// `extensions-not-supported`
    ExtensionsNotSupported,
    /// `invalid-proof`
    InvalidProof,
    /// `channel-bindings-dont-match`
    ChannelBindingsDontMatch,
    /// `server-does-support-channel-binding`
    ServerDoesSupportChannelBinding,
    /// `channel-binding-not-supported`
    ChannelBindingNotSupported,
    /// `unsupported-channel-binding-type`
    UnsupportedChannelBindingType,
    /// `unknown-user`
    UnknownUser,
    /// `invalid-username-encoding`
    InvalidUsernameEncoding,
    /// `no-resources`
    NoResources,
    /// `other-error`, and any unrecognised value (RFC 5802 requires treating those so).
    OtherError,
}

impl ScramError {
    const ALL: [ScramError; 11] = [
        ScramError::InvalidEncoding,
        ScramError::ExtensionsNotSupported,
        ScramError::InvalidProof,
        ScramError::ChannelBindingsDontMatch,
        ScramError::ServerDoesSupportChannelBinding,
        ScramError::ChannelBindingNotSupported,
        ScramError::UnsupportedChannelBindingType,
        ScramError::UnknownUser,
        ScramError::InvalidUsernameEncoding,
        ScramError::NoResources,
        ScramError::OtherError,
    ];

    /// The wire value, e.g. `invalid-proof`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScramError::InvalidEncoding => "invalid-encoding",
            ScramError::ExtensionsNotSupported => "extensions-not-supported",
            ScramError::InvalidProof => "invalid-proof",
            ScramError::ChannelBindingsDontMatch => "channel-bindings-dont-match",
            ScramError::ServerDoesSupportChannelBinding => "server-does-support-channel-binding",
            ScramError::ChannelBindingNotSupported => "channel-binding-not-supported",
            ScramError::UnsupportedChannelBindingType => "unsupported-channel-binding-type",
            ScramError::UnknownUser => "unknown-user",
            ScramError::InvalidUsernameEncoding => "invalid-username-encoding",
            ScramError::NoResources => "no-resources",
            ScramError::OtherError => "other-error",
        }
    }

    /// Parses a wire value; unknown values become [`ScramError::OtherError`] as RFC 5802 §7
    /// requires.
    pub fn from_wire(s: &str) -> ScramError {
        ScramError::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .unwrap_or(ScramError::OtherError)
    }
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScramError {
    type Err = UnknownName;

    /// Strict parse (use [`ScramError::from_wire`] for the lenient RFC behaviour).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScramError::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or(UnknownName)
    }
}

/// Why an exchange failed: detailed for logs; [`Error::condition`] gives what goes on the wire.
///
/// Details such as "unknown user" versus "wrong password" must not be sent to the peer (both
/// are `not-authorized`), which is why the two are separate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A message did not follow the mechanism's grammar; the text names what was wrong.
    Malformed(&'static str),
    /// A message exceeded the size bound.
    TooLong,
    /// A base64 field inside a SCRAM message (`c=`, `p=`, `s=`, `v=`) did not decode.
    BadBase64(&'static str),
    /// Text was not UTF-8, or a SCRAM `saslname` had a stray `=`.
    BadEncoding,
    /// An unknown mandatory extension (`m=`) was present.
    MandatoryExtension,
    /// The server nonce does not start with the client nonce, or the client-final nonce is not
    /// the combined nonce.
    NonceMismatch,
    /// The server's iteration count is below the client's floor.
    IterationCountTooLow(u32),
    /// The server's iteration count is above the client's ceiling (CPU exhaustion guard).
    IterationCountTooHigh(u32),
    /// The salt is empty.
    EmptySalt,
    /// The server signature (`v=`) did not verify: the server does not know the credentials or
    /// the exchange was tampered with.
    ServerSignatureMismatch,
    /// Success was reported before the server proved knowledge of the credentials.
    PrematureSuccess,
    /// The server sent a SCRAM `e=` error.
    ServerError(ScramError),
    /// The client proof did not verify (wrong password or tampering).
    InvalidProof,
    /// The user is unknown to the credential store.
    UnknownUser,
    /// The `c=` value does not match the GS2 header and this connection's binding data.
    ChannelBindingMismatch,
    /// The client sent `y` although the server offers `-PLUS`: a possible downgrade attack.
    Downgrade,
    /// The GS2 flag does not fit the mechanism (`p=` with a non-PLUS mechanism or the
    /// reverse).
    ChannelBindingFlagMismatch,
    /// The requested channel-binding type is not available on this connection.
    UnsupportedChannelBinding(Option<ChannelBindingType>),
    /// XEP-0474: the server's `d=` hash does not match the mechanisms and channel-binding types
    /// this client saw advertised: the offer was tampered with.
    DowngradeDetected,
    /// Password preparation (SASLprep or the plugged profile) rejected the string.
    PasswordPreparation,
    /// No password and no usable cached keys for this salt and iteration count.
    MissingCredentials,
    /// An authorization identity was requested and refused, or is malformed.
    InvalidAuthzid,
    /// The mechanism is not offered or not supported by this side.
    InvalidMechanism,
    /// Policy requires a stronger mechanism (e.g. channel binding).
    MechanismTooWeak,
    /// The mechanism is not allowed without TLS.
    EncryptionRequired,
    /// The credential store reported a condition (disabled account, expired credentials,
    /// temporary failure).
    Store(Condition),
    /// The exchange was aborted.
    Aborted,
    /// The caller used the session out of order (e.g. `step` after completion) or passed an
    /// invalid parameter such as a nonce with a comma. The host's fault, not the peer's.
    Usage(&'static str),
}

impl Error {
    /// The RFC 6120 §6.5 condition to report for this failure.
    pub fn condition(&self) -> Condition {
        match self {
            Error::Malformed(_)
            | Error::TooLong
            | Error::MandatoryExtension
            | Error::NonceMismatch
            | Error::EmptySalt
            | Error::ChannelBindingFlagMismatch
            | Error::Usage(_) => Condition::MalformedRequest,
            Error::BadBase64(_) | Error::BadEncoding => Condition::IncorrectEncoding,
            Error::IterationCountTooLow(_) => Condition::MechanismTooWeak,
            Error::IterationCountTooHigh(_)
            | Error::ServerSignatureMismatch
            | Error::PrematureSuccess
            | Error::ServerError(_)
            | Error::InvalidProof
            | Error::UnknownUser
            | Error::ChannelBindingMismatch
            | Error::Downgrade
            | Error::UnsupportedChannelBinding(_)
            | Error::DowngradeDetected
            | Error::PasswordPreparation
            | Error::MissingCredentials => Condition::NotAuthorized,
            Error::InvalidAuthzid => Condition::InvalidAuthzid,
            Error::InvalidMechanism => Condition::InvalidMechanism,
            Error::MechanismTooWeak => Condition::MechanismTooWeak,
            Error::EncryptionRequired => Condition::EncryptionRequired,
            Error::Store(c) => *c,
            Error::Aborted => Condition::Aborted,
        }
    }

    /// The RFC 5802 `e=` value matching this failure, for servers that send a
    /// server-final-message with an error (as additional data of `<failure/>` is not defined in
    /// RFC 6120, most XMPP servers send only the condition).
    pub fn scram_error(&self) -> Option<ScramError> {
        Some(match self {
            Error::BadBase64(_) => ScramError::InvalidEncoding,
            Error::BadEncoding => ScramError::InvalidUsernameEncoding,
            Error::MandatoryExtension => ScramError::ExtensionsNotSupported,
            Error::InvalidProof => ScramError::InvalidProof,
            Error::ChannelBindingMismatch => ScramError::ChannelBindingsDontMatch,
            Error::Downgrade => ScramError::ServerDoesSupportChannelBinding,
            Error::ChannelBindingFlagMismatch => ScramError::ChannelBindingNotSupported,
            Error::UnsupportedChannelBinding(_) => ScramError::UnsupportedChannelBindingType,
            Error::UnknownUser => ScramError::UnknownUser,
            Error::Store(_) => ScramError::NoResources,
            Error::ServerError(e) => *e,
            _ => return None,
        })
    }

    /// Whether the failure is the caller's misuse rather than the peer's doing.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(what) => write!(f, "malformed message: {what}"),
            Error::TooLong => f.write_str("message too long"),
            Error::BadBase64(what) => write!(f, "bad base64 in {what}"),
            Error::BadEncoding => f.write_str("invalid text encoding"),
            Error::MandatoryExtension => f.write_str("unsupported mandatory extension (m=)"),
            Error::NonceMismatch => f.write_str("nonce mismatch"),
            Error::IterationCountTooLow(i) => write!(f, "iteration count {i} below the floor"),
            Error::IterationCountTooHigh(i) => write!(f, "iteration count {i} above the ceiling"),
            Error::EmptySalt => f.write_str("empty salt"),
            Error::ServerSignatureMismatch => f.write_str("server signature mismatch"),
            Error::PrematureSuccess => f.write_str("success before the server signature"),
            Error::ServerError(e) => write!(f, "server error: {e}"),
            Error::InvalidProof => f.write_str("invalid client proof"),
            Error::UnknownUser => f.write_str("unknown user"),
            Error::ChannelBindingMismatch => f.write_str("channel bindings do not match"),
            Error::Downgrade => f.write_str("client sent 'y' but the server offers -PLUS"),
            Error::ChannelBindingFlagMismatch => {
                f.write_str("GS2 channel-binding flag does not fit the mechanism")
            }
            Error::UnsupportedChannelBinding(Some(t)) => {
                write!(f, "channel binding {t} not available")
            }
            Error::UnsupportedChannelBinding(None) => {
                f.write_str("unknown channel-binding type requested")
            }
            Error::DowngradeDetected => f.write_str("XEP-0474 downgrade hash mismatch"),
            Error::PasswordPreparation => f.write_str("password preparation rejected the string"),
            Error::MissingCredentials => f.write_str("no password or cached keys"),
            Error::InvalidAuthzid => f.write_str("authorization identity refused"),
            Error::InvalidMechanism => f.write_str("mechanism not offered"),
            Error::MechanismTooWeak => f.write_str("mechanism too weak for policy"),
            Error::EncryptionRequired => f.write_str("mechanism requires TLS"),
            Error::Store(c) => write!(f, "credential store: {c}"),
            Error::Aborted => f.write_str("aborted"),
            Error::Usage(what) => write!(f, "usage error: {what}"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn conditions_round_trip() {
        for c in Condition::ALL {
            assert_eq!(c.to_string().parse::<Condition>(), Ok(c));
        }
        assert!("bad-auth".parse::<Condition>().is_err());
    }

    #[test]
    fn scram_errors_round_trip_and_unknown_is_other() {
        for e in ScramError::ALL {
            assert_eq!(ScramError::from_wire(e.as_str()), e);
            assert_eq!(e.as_str().parse::<ScramError>(), Ok(e));
        }
        assert_eq!(ScramError::from_wire("whatever"), ScramError::OtherError);
        assert!("whatever".parse::<ScramError>().is_err());
    }
}
