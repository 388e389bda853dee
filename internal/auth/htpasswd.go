package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxHtpasswdLine bounds one line of an htpasswd file: a user name and a
// bcrypt hash (60 bytes) fit many times over.
const maxHtpasswdLine = 4096

// ParseHtpasswd reads an htpasswd file whose entries are all bcrypt, as
// `htpasswd -B` writes them ("user:$2y$10$..."), and returns each user's
// hash. Blank lines and lines starting with '#' are skipped. Any other
// line is an error naming its number: a hash of another kind (MD5, SHA-1,
// crypt, plain text), a malformed line, a user given twice.
func ParseHtpasswd(r io.Reader) (map[string][]byte, error) {
	users := map[string][]byte{}
	lines := bufio.NewScanner(r)
	lines.Buffer(make([]byte, 0, 256), maxHtpasswdLine)
	for n := 1; lines.Scan(); n++ {
		line := strings.TrimRight(lines.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, twice := users[user]; twice {
			return nil, fmt.Errorf("line %d: user %q is given twice", n, user)
		}
		users[user] = hash
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("line longer than %d bytes: %w", maxHtpasswdLine, err)
	}
	return users, nil
}

// parseEntry parses "user:hash", where hash must be bcrypt.
func parseEntry(line string) (string, []byte, error) {
	user, hash, ok := strings.Cut(line, ":")
	switch {
	case !ok:
		return "", nil, fmt.Errorf("want user:hash, as htpasswd -B writes")
	case user == "":
		return "", nil, fmt.Errorf("no user name before the ':'")
	case strings.ContainsAny(user, " \t"):
		return "", nil, fmt.Errorf("user %q holds a blank", user)
	}
	if kind := hashKind(hash); kind != "" {
		return "", nil, fmt.Errorf("user %q: %s, not bcrypt: write the entry with htpasswd -B", user, kind)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return "", nil, fmt.Errorf("user %q: not a valid bcrypt hash (%v): write the entry with htpasswd -B", user, err)
	}
	return user, []byte(hash), nil
}

// hashKind names a hash that is not bcrypt, or returns "" for one that
// may be.
func hashKind(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return ""
	case strings.HasPrefix(hash, "$apr1$"):
		return "an MD5 hash ($apr1$)"
	case strings.HasPrefix(hash, "{SHA}"):
		return "a SHA-1 hash ({SHA})"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return "a SHA-crypt hash"
	case strings.HasPrefix(hash, "$"):
		return "a hash of an unknown kind"
	case len(hash) == 13:
		return "a crypt(3) hash"
	}
	return "not a hash (plain text?)"
}

// sameHash reports whether two stored hashes are the same entry.
func sameHash(a, b []byte) bool { return bytes.Equal(a, b) }
