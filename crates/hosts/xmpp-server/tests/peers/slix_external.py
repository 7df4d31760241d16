"""slixmpp logging in with a client certificate (SASL EXTERNAL, XEP-0178) to the
xmpp-server example server configured with a client CA.

usage: slix_external.py HOST PORT DOMAIN CAFILE ALICE_CERT ALICE_KEY MALLORY_CERT MALLORY_KEY
       FORGED_CERT FORGED_KEY

Each client trusts exactly our server certificate (CAFILE), offers the certificate given
over STARTTLS and allows EXTERNAL only (no password is configured at all):
- external: alice's certificate (XmppAddr alice@DOMAIN, from the server's client CA) logs
  her in with EXTERNAL as alice@DOMAIN, and the session works (a roster get is answered);
- unknown-account: mallory's certificate from the same CA names an account the server does
  not have: the server answers <failure><not-authorized/></failure>;
- foreign-ca: a certificate for alice@DOMAIN from another CA: the server does not offer
  EXTERNAL, so slixmpp finds no mechanism it may use.

Prints one "RESULT <feature> pass|fail" line per feature and exits 0 only if all passed.
Written for this repository's interop tests.
"""

import asyncio
import sys

import slixmpp

from slix_common import CAFILE, DOMAIN, HOST, PORT, result, run, wait_for

ALICE, MALLORY, FORGED = (tuple(sys.argv[i : i + 2]) for i in (5, 7, 9))
FEATURES = ["external", "unknown-account", "foreign-ca"]


def cert_client(user, cert):
    xmpp = slixmpp.ClientXMPP(f"{user}@{DOMAIN}/cert", "")
    xmpp.ca_certs = CAFILE
    xmpp.certfile, xmpp.keyfile = cert
    # EXTERNAL only: a password mechanism can never be what logged the client in.
    xmpp["feature_mechanisms"].use_mech = "EXTERNAL"
    return xmpp


async def attempt(xmpp):
    """Connect; 'bound', ('failed', condition) or 'no-mechanism', whichever comes first."""
    loop = asyncio.get_running_loop()
    outcome = loop.create_future()

    def settle(value):
        if not outcome.done():
            outcome.set_result(value)

    xmpp.add_event_handler("session_bind", lambda _jid: settle("bound"))
    xmpp.add_event_handler("failed_auth", lambda e: settle(("failed", e["condition"])))
    xmpp.add_event_handler("no_auth", lambda _e: settle("no-mechanism"))
    xmpp.connect((HOST, PORT))
    return await wait_for(outcome, f"login of {xmpp.requested_jid}", 20)


async def steps():
    alice = cert_client("alice", ALICE)
    got = await attempt(alice)
    mech = alice["feature_mechanisms"].mech.name if alice["feature_mechanisms"].mech else None
    roster = None
    if got == "bound":
        roster = (await wait_for(alice.get_roster(), "roster get"))["type"]
    result(
        "external",
        got == "bound" and mech == "EXTERNAL" and alice.boundjid.bare == f"alice@{DOMAIN}" and roster == "result",
        f"{got} mech={mech} jid={alice.boundjid} roster={roster}",
    )
    await wait_for(alice.disconnect(wait=2), "disconnect")

    mallory = cert_client("mallory", MALLORY)
    got = await attempt(mallory)
    result("unknown-account", got == ("failed", "not-authorized"), f"{got}")
    mallory.abort()

    forged = cert_client("alice", FORGED)
    got = await attempt(forged)
    result("foreign-ca", got == "no-mechanism", f"{got}")
    forged.abort()


if __name__ == "__main__":
    run(steps, FEATURES)
