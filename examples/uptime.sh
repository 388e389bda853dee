#!/bin/sh
# Streams the load average every two seconds, for a live dashboard.
while :; do
  printf '%s %s\n' "$(date +%T)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  sleep 2
done
