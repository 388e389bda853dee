#!/bin/sh
# Greets each line the client sends, until the client leaves.
echo "Hello! What is your name?"
while read -r name; do
  echo "Nice to meet you, $name."
done
