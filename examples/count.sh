#!/bin/sh
# Counts to 10, one number a second, then exits: the client gets close 1000.
for i in 1 2 3 4 5 6 7 8 9 10; do
  echo "$i"
  sleep 1
done
