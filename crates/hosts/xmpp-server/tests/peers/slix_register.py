"""slixmpp's XEP-0077 (in-band registration) against the xmpp-server example server started
with registration allowed.

usage: slix_register.py HOST PORT DOMAIN CAFILE

- register: carol (password carol-pw) connects over STARTTLS, trusting exactly our
  self-signed certificate, registers in band before authenticating (xep_0077 with
  force_registration), and the same stream goes on to SASL and binds;
- login: a new client logs in as carol with that password;
- conflict: registering alice (who exists) is refused with conflict.

Prints one "RESULT <feature> pass|fail" line per feature and exits 0 only if all passed.
Written for this repository's interop tests.
"""

import asyncio

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from slix_common import CAFILE, DOMAIN, HOST, PORT, client, login, result, run, wait_for

FEATURES = ["register", "login", "conflict"]


def registering(user, password):
    xmpp = slixmpp.ClientXMPP(f"{user}@{DOMAIN}/slix", password)
    xmpp.ca_certs = CAFILE
    for plugin in ["xep_0030", "xep_0004", "xep_0066", "xep_0077"]:
        xmpp.register_plugin(plugin)
    xmpp["xep_0077"].force_registration = True
    # slixmpp 1.8.3 queues every stanza but bind and session until the session starts, its
    # own in-band registration IQs included (they are never sent): let them through.
    xmpp._always_send_everything = True
    return xmpp


async def register(user, password):
    """Connect USER registering in band; return (the registration's outcome, whether the
    stream then bound)."""
    loop = asyncio.get_running_loop()
    xmpp = registering(user, password)
    outcome = loop.create_future()
    bound = loop.create_future()

    async def on_register(_form):
        resp = xmpp.Iq()
        resp["type"] = "set"
        resp["register"]["username"] = xmpp.boundjid.user
        resp["register"]["password"] = xmpp.password
        try:
            await resp.send(timeout=10)
            outcome.done() or outcome.set_result("ok")
        except IqError as error:
            outcome.done() or outcome.set_result(error.iq["error"]["condition"])
        except IqTimeout:
            outcome.done() or outcome.set_result("timeout")

    xmpp.add_event_handler("register", on_register)
    xmpp.add_event_handler("session_bind", lambda _jid: bound.done() or bound.set_result(True))
    xmpp.add_event_handler("failed_auth", lambda _: bound.done() or bound.set_result(False))
    xmpp.connect((HOST, PORT))
    got = await wait_for(outcome, f"registration of {user}", 20)
    did_bind = False
    if got == "ok":
        did_bind = await wait_for(bound, f"login of {user} after registration", 20)
    xmpp.disconnect()
    return got, did_bind


async def steps():
    got, did_bind = await register("carol", "carol-pw")
    result("register", got == "ok" and did_bind, f"{got} bound={did_bind}")
    again = client("carol", "again")
    await login(again)
    result("login", True)
    again.disconnect()
    got, _ = await register("alice", "not-alices")
    result("conflict", got == "conflict", got)


run(steps, FEATURES)
