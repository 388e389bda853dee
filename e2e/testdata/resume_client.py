"""A client that follows positions, for wsgate's end-to-end tests.

usage: resume_client.py URL LAST_EVENT_ID COUNT

Connects to URL with ?last_event_id=LAST_EVENT_ID (the python3-websockets
library), reads the greeting and COUNT lines, each "id: EPOCH:SEQ", a blank
line and the line, then closes (1000). It prints one JSON object:
{"greeting": {"id": "E:S", "event": "joined" or "reset"},
 "ids": ["E:S", ...], "lines": [...]}.
"""

import asyncio
import json
import sys
import urllib.parse

import websockets


def parse(message):
    head, _, line = message.partition("\n\n")
    fields = dict(f.split(": ", 1) for f in head.split("\n"))
    return fields, line


async def main(url, last_event_id, count):
    sep = "&" if "?" in url else "?"
    url += sep + "last_event_id=" + urllib.parse.quote(last_event_id)
    out = {"ids": [], "lines": []}
    async with websockets.connect(url, open_timeout=5, close_timeout=5) as ws:
        fields, _ = parse(await asyncio.wait_for(ws.recv(), 5))
        out["greeting"] = fields
        while len(out["lines"]) < count:
            fields, line = parse(await asyncio.wait_for(ws.recv(), 5))
            out["ids"].append(fields["id"])
            out["lines"].append(line)
        await ws.close(1000)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
