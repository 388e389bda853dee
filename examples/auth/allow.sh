#!/bin/sh
# An --authcmd for wsgate: lets a user in to the paths the file "allowed"
# (next to this script) names for them. Another method says who the user
# is, for example:
#
#   wsgate --basicauth=users.htpasswd --authcmd=examples/auth/allow.sh --dir=scripts
#
# Each line of "allowed" is a user name and the paths they may reach; a
# path lets them in to itself and everything under it ("/" to all):
#
#   alice /dashboard /chat
#
# wsgate runs this with the request's CGI environment: REMOTE_USER is the
# user another method found, REQUEST_URI what the client asked for. Exit 0
# lets the request in (a line AUTH_<NAME>=value reaches the program as a
# variable), 1 asks for credentials (401), 2 refuses (403).

set -f # the paths are words, not patterns
allowed="$(dirname "$0")/allowed"
path=${REQUEST_URI%%\?*}

[ -n "$REMOTE_USER" ] || exit 1

# Only plain paths: ".." or an escape could name, once resolved, a path
# this script did not allow.
case "$path" in
*..* | *//* | *%* | */./* | "")
	echo "refused an unusual path: $path" >&2
	exit 2
	;;
esac

while read -r name paths || [ -n "$name" ]; do
	case "$name" in "" | \#*) continue ;; esac
	[ "$name" = "$REMOTE_USER" ] || continue
	for p in $paths; do
		case "$path" in
		"$p" | "${p%/}"/*)
			echo "AUTH_ALLOWED=$p"
			exit 0
			;;
		esac
	done
done <"$allowed"

echo "$REMOTE_USER may not reach $path" >&2
exit 2
