//! Legacy session establishment (RFC 3921 §3, draft-cridland-xmpp-session), receiving end:
//! a session request to the server is answered with an empty result when the server lists
//! `<session/>`. (The client's request follows its bind: [`crate::steps::bind`].)

use minidom::Element;

use crate::bind;
use crate::error::ProtocolError;
use crate::machine::{Machine, Side};
use crate::output::Event;
use crate::steps::established::checked_from_client;

/// Server: `<iq type='set'><session/></iq>` from the bound client. The stanza passes the
/// usual checks first; it is answered here when legacy sessions are on and it is addressed
/// to the server, and handed to the host like any stanza otherwise.
pub(crate) fn request(m: &mut Machine, mut stanza: Element) -> Result<(), ProtocolError> {
    if !checked_from_client(m, &mut stanza)? {
        return Ok(());
    }
    let answer = match &m.side {
        Side::Server(side) => {
            side.config.legacy_session
                && bind::is_session_request(&stanza)
                && stanza
                    .attr("to")
                    .is_none_or(|to| to == side.config.domain.as_str())
        }
        _ => false,
    };
    if answer {
        let reply = bind::empty_result(stanza.attr("id").unwrap_or_default());
        m.core.send(&reply);
    } else {
        m.core.event(Event::Stanza(stanza));
    }
    Ok(())
}
