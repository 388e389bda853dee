package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// errWrongPassword and errUnknownUser say why a Basic credential was
// refused, for the log: the client is told neither.
var (
	errWrongPassword = errors.New("wrong password")
	errUnknownUser   = errors.New("no such user")
)

// maxTurnWait bounds how long a check waits for its turn at bcrypt: behind
// a flood of guesses, a request gets 503 rather than waiting without end.
const maxTurnWait = 10 * time.Second

// errBcryptBusy is the answer of a check that did not get its turn.
var errBcryptBusy = fmt.Errorf("every bcrypt slot busy for %v (a flood of guesses? see --ratelimit)", maxTurnWait)

// Basic checks user names and passwords against an htpasswd file of bcrypt
// entries. A credential bcrypt verified is remembered for a few minutes, so
// that a client that reconnects does not pay bcrypt again; Reload reads the
// file again and forgets every credential it no longer vouches for. Its
// methods are safe for concurrent use.
type Basic struct {
	path string
	// verifying bounds the bcrypt comparisons under way to the CPUs: a
	// flood of wrong passwords waits its turn rather than starving
	// everything else.
	verifying chan struct{}
	cache     *credentialCache
	flights   flights      // the credentials bcrypt is checking now
	compares  atomic.Int64 // bcrypt comparisons run: what the cache and the flights did not save

	mu    sync.RWMutex
	users map[string][]byte
	// decoy is compared against for a user the file does not name, so that
	// the answer takes as long as for one it does.
	decoy []byte
}

// LoadBasic reads the htpasswd file at path. An error names the line
// that cannot be used and says how to write it.
func LoadBasic(path string) (*Basic, error) {
	users, err := readHtpasswd(path)
	if err != nil {
		return nil, err
	}
	decoy, err := decoyFor(users, nil)
	if err != nil {
		return nil, err
	}
	return &Basic{
		path:      path,
		verifying: make(chan struct{}, runtime.GOMAXPROCS(0)),
		decoy:     decoy,
		cache:     newCredentialCache(),
		flights:   flights{calls: map[credentialKey]*flight{}},
		users:     users,
	}, nil
}

// decoyFor returns a hash to compare unknown users' passwords against, as
// costly as the costliest entry of users: old, when it is already that.
func decoyFor(users map[string][]byte, old []byte) ([]byte, error) {
	cost := bcrypt.MinCost
	for _, hash := range users {
		if c, err := bcrypt.Cost(hash); err == nil && c > cost {
			cost = c
		}
	}
	if c, err := bcrypt.Cost(old); err == nil && c == cost {
		return old, nil
	}
	return bcrypt.GenerateFromPassword([]byte("decoy"), cost)
}

func readHtpasswd(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users, err := ParseHtpasswd(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}

// Path is the file's path.
func (b *Basic) Path() string { return b.path }

// Users returns how many users the file names.
func (b *Basic) Users() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.users)
}

// Reload reads the file again. On an error the users loaded before stay;
// else they are replaced, and every remembered credential whose user is
// gone or has another hash now is forgotten.
func (b *Basic) Reload() error {
	users, err := readHtpasswd(b.path)
	if err != nil {
		return err
	}
	b.mu.RLock()
	decoy, err := decoyFor(users, b.decoy)
	b.mu.RUnlock()
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.users, b.decoy = users, decoy
	b.cache.keepVouched(users)
	return nil
}

// Verify checks user's password. It returns nil when the file vouches for
// them, errWrongPassword or errUnknownUser when it does not, or ctx's error
// if ctx ends while it waits for its turn at bcrypt (errBcryptBusy when no
// turn comes within maxTurnWait). Clients that present
// the same credential at once (a page's reconnecting tabs) wait for one
// bcrypt rather than each paying their own.
func (b *Basic) Verify(ctx context.Context, user, password string) error {
	key := b.cache.key(user, password)
	for {
		b.mu.RLock()
		hash, known := b.users[user]
		decoy := b.decoy
		b.mu.RUnlock()
		if known && b.cache.has(key, hash) {
			return nil
		}
		c, first := b.flights.join(key)
		if !first {
			select {
			case <-c.done:
				if !errors.Is(c.err, context.Canceled) && !errors.Is(c.err, context.DeadlineExceeded) {
					return c.err
				}
				continue // the first one's client went away before bcrypt said: ask again
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := b.check(ctx, key, user, password, hash, known, decoy)
		b.flights.land(key, c, err)
		return err
	}
}

// check runs bcrypt for a credential and remembers it if it is right.
func (b *Basic) check(ctx context.Context, key credentialKey, user, password string, hash []byte, known bool, decoy []byte) error {
	compared := hash
	if !known {
		compared = decoy
	}
	err := b.compare(ctx, compared, password)
	switch {
	case err != nil && !errors.Is(err, errWrongPassword):
		return err // ctx ended, or no turn came
	case !known:
		return errUnknownUser // even for the decoy's password
	case err != nil:
		return err
	}
	b.remember(key, user, hash)
	return nil
}

// compare runs bcrypt when its turn comes.
func (b *Basic) compare(ctx context.Context, hash []byte, password string) error {
	turn := time.NewTimer(maxTurnWait)
	defer turn.Stop()
	select {
	case b.verifying <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-turn.C:
		return errBcryptBusy
	}
	defer func() { <-b.verifying }()
	b.compares.Add(1)
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return errWrongPassword
	}
	return nil
}

// remember caches a verified credential, unless a reload meanwhile changed
// or removed the entry it was verified against.
func (b *Basic) remember(key credentialKey, user string, hash []byte) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if current, ok := b.users[user]; ok && sameHash(current, hash) {
		b.cache.add(key, user, hash)
	}
}

// flights are the checks under way, one per credential, for the clients
// that present the same credential meanwhile to wait for.
type flights struct {
	mu    sync.Mutex
	calls map[credentialKey]*flight
}

// flight is one check under way; err is its answer once done is closed.
type flight struct {
	done chan struct{}
	err  error
}

// join returns the check of key under way, or a new one and true when the
// caller is to make it.
func (f *flights) join(key credentialKey) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c, false
	}
	c := &flight{done: make(chan struct{})}
	f.calls[key] = c
	return c, true
}

// land gives the check's answer to those waiting for it.
func (f *flights) land(key credentialKey, c *flight, err error) {
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	c.err = err
	close(c.done)
}
