//! The drivers' error type and clock.

use core::fmt;

use xmpp_stream::{CloseReason, Instant, UsageError};

/// What can go wrong in a driver.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed.
    Io(std::io::Error),
    /// TLS failed (handshake, certificate, configuration).
    Tls(rustls::Error),
    /// Bad configuration (certificate files, names).
    Config(String),
    /// The machine refused a command.
    Usage(UsageError),
    /// The stream ended, for this reason.
    Closed(Box<CloseReason>),
    /// Nothing happened before the deadline.
    Timeout,
    /// The server redirected us (`see-other-host`) more often than allowed; the last host
    /// it named.
    TooManyRedirects(xmpp_stream::HostPort),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O: {e}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Config(e) => write!(f, "configuration: {e}"),
            Error::Usage(e) => write!(f, "usage: {e}"),
            Error::Closed(reason) => write!(f, "stream closed: {reason:?}"),
            Error::Timeout => f.write_str("timed out"),
            Error::TooManyRedirects(to) => write!(f, "too many redirects (last to {to})"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e)
    }
}

impl From<CloseReason> for Error {
    fn from(reason: CloseReason) -> Self {
        Error::Closed(Box::new(reason))
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

/// The machines' clock for a real host: milliseconds since this clock was made.
#[derive(Clone, Copy, Debug)]
pub struct Clock(std::time::Instant);

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock(std::time::Instant::now())
    }

    /// Now, as the machines count time.
    pub fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}
