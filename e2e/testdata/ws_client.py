"""An independent WebSocket client for wsgate's end-to-end tests.

usage: ws_client.py [--protocol=NAME]... [--header=NAME:VALUE]... [--deflate=PARAM[=N],...] URL [MESSAGE...]

Connects to URL with the python3-websockets library, offering each
--protocol as a subprotocol and, as the library does by default,
permessage-deflate ("permessage-deflate; client_max_window_bits"), or with
--deflate, an offer of the permessage-deflate parameters listed: such as
--deflate=server_max_window_bits=8,client_no_context_takeover; sending each
--header with the handshake (credentials in the URL, ws://user:password@host/,
go as Basic authorization). It sends each MESSAGE and receives one reply for each.
With messages it then closes the connection itself (1000); without, it reads
until the server closes. It prints one JSON object: {"received": [...],
"close_code": N, "close_reason": "...", "subprotocol": "..." or null,
"extensions": ["permessage-deflate", ...]}, or {"status": N, "headers": {...}}
when the server refuses the handshake with HTTP status N.
"""

import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


def deflate_offer(spec):
    """The factory's arguments for --deflate's list: a parameter alone is
    offered without a value (client_max_window_bits) or as a flag."""
    params = {}
    for item in filter(None, spec.split(",")):
        name, _, value = item.partition("=")
        params[name] = int(value) if value else True
    return params


async def main(url, messages, protocols, headers, deflate):
    options = {}
    if deflate is not None:
        options = {"compression": None,
                   "extensions": [ClientPerMessageDeflateFactory(**deflate)]}
    try:
        async with websockets.connect(url, open_timeout=5, close_timeout=5,
                                      subprotocols=protocols or None,
                                      extra_headers=headers or None,
                                      **options) as ws:
            await converse(ws, messages)
    except websockets.InvalidStatusCode as e:
        print(json.dumps({"status": e.status_code, "headers": dict(e.headers.raw_items())}))


async def converse(ws, messages):
    received = []
    for message in messages:
        await ws.send(message)
        received.append(await asyncio.wait_for(ws.recv(), 5))
    if messages:
        await ws.close(1000)
    else:
        try:
            while True:
                received.append(await asyncio.wait_for(ws.recv(), 5))
        except websockets.ConnectionClosed:
            pass
    await ws.wait_closed()
    print(json.dumps({
        "received": received,
        "close_code": ws.close_code,
        "close_reason": ws.close_reason,
        "subprotocol": ws.subprotocol,
        "extensions": [e.name for e in ws.extensions],
    }))


if __name__ == "__main__":
    args = sys.argv[1:]
    protocols = [a.split("=", 1)[1] for a in args if a.startswith("--protocol=")]
    headers = [tuple(part.strip() for part in a.split("=", 1)[1].split(":", 1))
               for a in args if a.startswith("--header=")]
    deflate = None
    for a in args:
        if a.startswith("--deflate="):
            deflate = deflate_offer(a.split("=", 1)[1])
    rest = [a for a in args if not a.startswith(("--protocol=", "--header=", "--deflate="))]
    asyncio.run(main(rest[0], rest[1:], protocols, headers, deflate))
