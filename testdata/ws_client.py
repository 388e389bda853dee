"""An independent WebSocket client for wsgate's end-to-end tests.

usage: ws_client.py URL [MESSAGE...]

Connects to URL with the python3-websockets library, sends each MESSAGE and
receives one reply for each. With messages it then closes the connection
itself (1000); without, it reads until the server closes. It prints one JSON
object: {"received": [...], "close_code": N, "close_reason": "..."}.
"""

import asyncio
import json
import sys

import websockets


async def main(url, messages):
    received = []
    async with websockets.connect(url, open_timeout=5, close_timeout=5) as ws:
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
        }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
