package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// bcryptLine returns an htpasswd line for user and password, at the lowest
// cost, so that the tests run fast.
func bcryptLine(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(hash) + "\n"
}

// writeHtpasswd writes lines to a file in a temporary directory.
func writeHtpasswd(t testing.TB, path string, lines ...string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "htpasswd")
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseHtpasswd_NamesTheLineThatIsNotBcrypt(t *testing.T) {
	t.Parallel()
	good := bcryptLine(t, "alice", "pw")
	cases := []struct {
		name, line, want string
	}{
		{"md5", "bob:$apr1$abcdefgh$0123456789abcdefghijkl\n", `line 3: user "bob": an MD5 hash ($apr1$), not bcrypt: write the entry with htpasswd -B`},
		{"sha1", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", `line 3: user "bob": a SHA-1 hash ({SHA}), not bcrypt`},
		{"crypt", "bob:rqXexS6ZhobKA\n", `line 3: user "bob": a crypt(3) hash, not bcrypt`},
		{"plain", "bob:secret\n", `line 3: user "bob": not a hash (plain text?), not bcrypt`},
		{"sha512-crypt", "bob:$6$salt$hash\n", `line 3: user "bob": a SHA-crypt hash`},
		{"broken-bcrypt", "bob:$2y$10$short\n", `line 3: user "bob": not a valid bcrypt hash`},
		{"no-colon", "bob\n", "line 3: want user:hash"},
		{"no-user", ":" + strings.TrimPrefix(good, "alice:"), "line 3: no user name"},
		{"twice", good, `line 3: user "alice" is given twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseHtpasswd(strings.NewReader(good + "# a comment\n" + c.line))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestParseHtpasswd_ReadsEveryBcryptVariant(t *testing.T) {
	t.Parallel()
	line := bcryptLine(t, "alice", "pw") // $2a$
	hash := strings.TrimSpace(strings.TrimPrefix(line, "alice:"))
	text := "\n# users\n" + line + "bob:$2y$" + hash[4:] + "\r\n" + "carol:$2b$" + hash[4:] + "\n"
	users, err := ParseHtpasswd(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 {
		t.Fatalf("read %d users, want 3", len(users))
	}
}

func loadBasic(t *testing.T, lines ...string) (*Basic, string) {
	t.Helper()
	path := writeHtpasswd(t, "", lines...)
	b, err := LoadBasic(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, path
}

func TestBasic_VerifiesAndTellsUnknownUsersFromWrongPasswords(t *testing.T) {
	t.Parallel()
	b, _ := loadBasic(t, bcryptLine(t, "alice", "right"))
	ctx := context.Background()
	if err := b.Verify(ctx, "alice", "right"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := b.Verify(ctx, "alice", "wrong"); !errors.Is(err, errWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := b.Verify(ctx, "mallory", "right"); !errors.Is(err, errUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := b.Verify(ctx, "mallory", "decoy"); !errors.Is(err, errUnknownUser) {
		t.Fatalf("unknown user with the decoy's password: %v", err)
	}
}

// The cache is keyed by the credential: once alice's right password is
// remembered, a wrong one is still checked, and refused.
func TestBasic_CacheIsKeyedByTheCredentialNotTheUser(t *testing.T) {
	t.Parallel()
	b, _ := loadBasic(t, bcryptLine(t, "alice", "right"))
	ctx := context.Background()
	if err := b.Verify(ctx, "alice", "right"); err != nil {
		t.Fatal(err)
	}
	if n := b.cache.len(); n != 1 {
		t.Fatalf("cache holds %d after a verified credential, want 1", n)
	}
	if err := b.Verify(ctx, "alice", "wrong"); !errors.Is(err, errWrongPassword) {
		t.Fatalf("a wrong password after the right one was cached: %v", err)
	}
	if n := b.cache.len(); n != 1 {
		t.Fatalf("cache holds %d; a refused credential must not be remembered", n)
	}
}

// A remembered credential skips bcrypt: with a cost that takes a while,
// the second check is much quicker than the first.
func TestBasic_ARememberedCredentialSkipsBcrypt(t *testing.T) {
	t.Parallel()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), 8)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := loadBasic(t, "alice:"+string(hash)+"\n")
	ctx := context.Background()
	start := time.Now()
	if err := b.Verify(ctx, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	start = time.Now()
	for range 10 {
		if err := b.Verify(ctx, "alice", "pw"); err != nil {
			t.Fatal(err)
		}
	}
	if tenMore := time.Since(start); tenMore > first {
		t.Fatalf("10 checks of a remembered credential took %v, one bcrypt %v: the cache is not used", tenMore, first)
	}
}

func TestBasic_ReloadForgetsWhatTheNewFileNoLongerVouchesFor(t *testing.T) {
	t.Parallel()
	alice, bob := bcryptLine(t, "alice", "a-pw"), bcryptLine(t, "bob", "b-pw")
	b, path := loadBasic(t, alice, bob, bcryptLine(t, "carol", "c-pw"))
	ctx := context.Background()
	for _, c := range [][2]string{{"alice", "a-pw"}, {"bob", "b-pw"}, {"carol", "c-pw"}} {
		if err := b.Verify(ctx, c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	// alice stays as she was, bob gets a new password, carol is removed.
	writeHtpasswd(t, path, alice, bcryptLine(t, "bob", "new-b-pw"))
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := b.cache.len(); n != 1 {
		t.Fatalf("after the reload the cache holds %d credentials, want alice's alone", n)
	}
	if err := b.Verify(ctx, "bob", "b-pw"); !errors.Is(err, errWrongPassword) {
		t.Errorf("bob's old password after the reload: %v", err)
	}
	if err := b.Verify(ctx, "carol", "c-pw"); !errors.Is(err, errUnknownUser) {
		t.Errorf("carol after the reload: %v", err)
	}
	if err := b.Verify(ctx, "bob", "new-b-pw"); err != nil {
		t.Errorf("bob's new password: %v", err)
	}

	// A file that cannot be used leaves the users as they were.
	writeHtpasswd(t, path, "alice:plain\n")
	if err := b.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("reload of a bad file: %v, want an error naming line 1", err)
	}
	if err := b.Verify(ctx, "alice", "a-pw"); err != nil {
		t.Errorf("after a failed reload alice is refused: %v", err)
	}
}

func TestCredentialCache_ExpiresAndIsBounded(t *testing.T) {
	t.Parallel()
	c := newCredentialCache()
	now := time.Unix(1_000_000, 0)
	c.clock = func() time.Time { return now }
	hash := []byte("$2y$hash")
	k := c.key("alice", "pw")
	c.add(k, "alice", hash)
	if !c.has(k, hash) {
		t.Fatal("a credential just added is not remembered")
	}
	if c.has(k, []byte("$2y$other")) {
		t.Fatal("remembered against another hash")
	}
	c.add(k, "alice", hash)
	now = now.Add(cacheTTL + time.Second)
	if c.has(k, hash) {
		t.Fatal("remembered past its time")
	}
	for i := range cacheSize + 100 {
		c.add(c.key(fmt.Sprint("user", i), "pw"), "u", hash)
	}
	if n := c.len(); n != cacheSize {
		t.Fatalf("cache holds %d, bound %d", n, cacheSize)
	}
	if c.has(c.key("user0", "pw"), hash) || !c.has(c.key(fmt.Sprint("user", cacheSize+99), "pw"), hash) {
		t.Fatal("the oldest credential was not the one forgotten")
	}
}

func TestBasic_VerifyGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	b, _ := loadBasic(t, bcryptLine(t, "alice", "pw"))
	for range cap(b.verifying) { // every bcrypt slot busy
		b.verifying <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Verify(ctx, "alice", "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with every slot busy: %v, want the context's deadline", err)
	}
}

// Clients that present the same credential at once wait for one bcrypt:
// a page's tabs reconnecting together after a restart pay it once.
func TestBasic_ClientsPresentingOneCredentialAtOnceShareOneBcrypt(t *testing.T) {
	t.Parallel()
	b, _ := loadBasic(t, bcryptLine(t, "alice", "pw"))
	for range cap(b.verifying) { // hold bcrypt back while the clients come
		b.verifying <- struct{}{}
	}
	const clients = 8
	errs := make(chan error, clients)
	for range clients {
		go func() { errs <- b.Verify(context.Background(), "alice", "pw") }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.flights.mu.Lock()
		waiting := len(b.flights.calls)
		b.flights.mu.Unlock()
		if waiting == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for range cap(b.verifying) {
		<-b.verifying
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatalf("a client was refused: %v", err)
		}
	}
	if n := b.compares.Load(); n != 1 {
		t.Fatalf("%d bcrypt comparisons for %d clients with one credential, want 1", n, clients)
	}
	// Clients that share a wrong password all get it refused.
	for range clients {
		go func() { errs <- b.Verify(context.Background(), "alice", "wrong") }()
	}
	for range clients {
		if err := <-errs; !errors.Is(err, errWrongPassword) {
			t.Fatalf("a wrong password: %v", err)
		}
	}
}
