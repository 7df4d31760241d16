//! Following `see-other-host` (RFC 6120 §4.9.3.19): the one policy of every client host, the
//! blocking [`connect_following`](crate::blocking::Connection::connect_following), the async
//! [`connect_following`](crate::asynchronous::AsyncConnection::connect_following) and the
//! example command-line client. No I/O: the caller dials.
//!
//! The rules, all here:
//! - a bound: at most `max` redirects per login; one more is [`Error::TooManyRedirects`]
//!   (a redirect loop ends instead of hanging);
//! - only the address changes: the new host is dialled with the same [`ClientOptions`]
//!   otherwise (TLS configuration, direct TLS or STARTTLS, channel binding) and the caller
//!   keeps the same `xmpp_stream::ClientConfig` (TLS policy, mechanisms, stream `to`), so a
//!   redirect cannot turn TLS off or weaken the mechanisms;
//! - the certificate is still verified for `ClientOptions::server_name`, the XMPP domain, never
//!   for the host the redirect names, so a redirect cannot move the identity check either.

use std::net::SocketAddr;

use xmpp_stream::{CloseReason, HostPort};

use crate::Error;
use crate::options::ClientOptions;

/// The redirects one login has followed, against its bound. Feed it every close of a
/// negotiation with [`follow`](Self::follow).
#[derive(Clone, Debug)]
pub struct Redirects {
    max: usize,
    followed: usize,
}

impl Redirects {
    /// A login that may be redirected at most `max` times.
    pub fn new(max: usize) -> Self {
        Redirects { max, followed: 0 }
    }

    /// How many redirects were followed so far.
    pub fn followed(&self) -> usize {
        self.followed
    }

    /// A negotiation closed with `reason`. When it is a redirect within the bound, point
    /// `options` at the host it names (`resolve` turns that host into an address; nothing
    /// else of `options` changes) and return that host: dial again. `Ok(None)` when `reason`
    /// is no redirect (report the close as it is).
    ///
    /// # Errors
    /// [`Error::TooManyRedirects`] past the bound; what `resolve` returns.
    pub fn follow(
        &mut self,
        reason: &CloseReason,
        options: &mut ClientOptions,
        resolve: impl FnOnce(&HostPort) -> Result<SocketAddr, Error>,
    ) -> Result<Option<HostPort>, Error> {
        let Some(to) = redirect_target(reason) else {
            return Ok(None);
        };
        if self.followed >= self.max {
            return Err(Error::TooManyRedirects(to));
        }
        self.followed += 1;
        options.addr = resolve(&to)?;
        Ok(Some(to))
    }
}

/// The host a `see-other-host` close names, if it names one.
fn redirect_target(reason: &CloseReason) -> Option<HostPort> {
    match reason {
        CloseReason::StreamError(e) => e.other_host.as_deref()?.parse().ok(),
        _ => None,
    }
}
