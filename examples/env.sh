#!/bin/sh
# Prints the CGI environment the gateway gives each connection.
env | sort
