#!/usr/bin/env python3
"""Writes the small seed corpora for the stateful stream targets (run from fuzz/).

Input format of client_stream / server_stream: byte 0 picks the negotiation state (low
nibble) and options; then chunks of `len` (low 7 bits; top bit: advance the clock a minute
first) followed by that many bytes. Each seed is the next message a real peer would send
in that state, cut into chunks of at most 127 bytes, so mutations start from valid traffic.
Sources: the RFC 6120 §9.1 example (testdata/transcripts/rfc6120-9.1-c2s.txt).
"""
import os

def chunks(data):
    out = bytearray()
    for i in range(0, len(data), 127):
        piece = data[i:i + 127]
        out.append(len(piece))
        out += piece
    return bytes(out)

def write(target, name, state, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(bytes([state]) + chunks(data))

SERVER_NEXT = {
    0: b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>",
    1: b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    2: b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1meXprbytkMmxiYkZnT05Sdjlxa3hkYXdM</auth>",
    3: b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdldWczdqLHA9djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ==</response><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    4: b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>",
    5: b"<message to='romeo@example.net' type='chat'><body>Art thou not Romeo?</body></message><iq type='result' id='x'/></stream:stream>",
}
for state, data in SERVER_NEXT.items():
    write("server_stream", f"state{state}", state, data)

HDR = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='im.example.com' id='s1' version='1.0'>"
CLIENT_NEXT = {
    0: HDR + b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    1: b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    2: b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    3: b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    4: b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    5: b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>",
    6: b"<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@im.example.com/balcony</jid></bind></iq>",
    7: b"<message from='romeo@example.net/orchard' type='chat'><body>Neither, fair saint</body></message><stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example:5222</see-other-host></stream:error>",
}
for state, data in CLIENT_NEXT.items():
    write("client_stream", f"state{state}", state, data)

# jid_parse: a few addresses, valid and invalid (RFC 7622 examples).
for i, jid in enumerate([b"juliet@example.com/balcony", b"example.com", b"\xe2\x99\x9a@example.com/foo@bar",
                         b"juliet@[::1]/r", b"@example.com", b"a@b@c/d"]):
    os.makedirs("corpus/jid_parse", exist_ok=True)
    open(f"corpus/jid_parse/seed{i}", "wb").write(jid)

# xml_stream: the RFC 6120 §9.1 client stream, with and without the built-in header.
body = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='set' id='tn281v37'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><message to='romeo@example.net' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message></stream:stream>"
os.makedirs("corpus/xml_stream", exist_ok=True)
open("corpus/xml_stream/with-header", "wb").write(b"\x00" + body)
open("corpus/xml_stream/own-header", "wb").write(b"\x01" + SERVER_NEXT[0] + body)

# sasl_*: a selector byte, then messages (RFC 5802 §5 SCRAM-SHA-1 exchange, PLAIN).
os.makedirs("corpus/sasl_server", exist_ok=True)
os.makedirs("corpus/sasl_client", exist_ok=True)
for sel in range(4):
    open(f"corpus/sasl_server/scram{sel}", "wb").write(bytes([sel]) + b"n,,n=juliet,r=fyko+d2lbbFgONRv9qkxdawL")
    open(f"corpus/sasl_client/scram{sel}", "wb").write(bytes([sel]) + b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
open("corpus/sasl_server/plain", "wb").write(b"\x07\x00juliet\x00pencil")

# im_server: a short program of arbitrary operations.
os.makedirs("corpus/im_server", exist_ok=True)
for i in range(3):
    open(f"corpus/im_server/seed{i}", "wb").write(bytes(range(i, 64 + i)))
