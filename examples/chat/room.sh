#!/bin/sh
# A chat room's one shared process: every line anyone in the room sends goes
# back out to everyone in it. The page next to it (index.html) builds the
# lines (JSON: id, name, text, t) and shows them as text. Run it shared, with
# the recent history for newcomers and an empty room kept for ten minutes:
#
#   wsgate --port=8080 --broadcast --replay=50 --lingerms=600000 --staticdir=examples/chat examples/chat/room.sh
#
# Each query string is its own room, with its own process: /?room=ops.
exec cat
