package auth

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// Bounds of the credential cache.
const (
	// cacheTTL is how long a verified credential is believed without bcrypt:
	// long enough that a page reconnecting pays bcrypt once, short enough
	// that a password changed without a SIGHUP stops working soon.
	cacheTTL = 5 * time.Minute
	// cacheSize is the most credentials remembered; the oldest goes first.
	cacheSize = 4096
)

// credentialKey is a keyed hash of a user and password: the cache holds no
// password, nor a plain hash of one that could be looked up in a table.
type credentialKey [sha256.Size]byte

// credentialCache remembers credentials that bcrypt verified, for cacheTTL,
// keyed by the credential (never the user alone), with the hash each was
// verified against, so that a reload can forget what the new file no longer
// vouches for. Safe for concurrent use.
type credentialCache struct {
	secret []byte // the key of credentialKey's HMAC, random per process
	clock  func() time.Time

	mu      sync.Mutex
	entries map[credentialKey]*list.Element // of *cached
	order   *list.List                      // oldest first
}

// cached is one remembered credential.
type cached struct {
	key     credentialKey
	user    string
	hash    []byte // the file's entry it was verified against
	expires time.Time
}

func newCredentialCache() *credentialCache {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read does not fail
	return &credentialCache{secret: secret, clock: time.Now, entries: map[credentialKey]*list.Element{}, order: list.New()}
}

// key returns the cache key of a credential.
func (c *credentialCache) key(user, password string) credentialKey {
	mac := hmac.New(sha256.New, c.secret)
	mac.Write([]byte(user))
	mac.Write([]byte{0}) // user names hold no NUL: the split is unambiguous
	mac.Write([]byte(password))
	var k credentialKey
	mac.Sum(k[:0])
	return k
}

// has reports whether the credential was verified against hash, within
// cacheTTL.
func (c *credentialCache) has(k credentialKey, hash []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return false
	}
	entry := e.Value.(*cached)
	if c.clock().After(entry.expires) || !sameHash(entry.hash, hash) {
		c.remove(e)
		return false
	}
	return true
}

// add remembers a credential verified against hash.
func (c *credentialCache) add(k credentialKey, user string, hash []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		c.remove(e)
	}
	for c.order.Len() >= cacheSize {
		c.remove(c.order.Front())
	}
	c.entries[k] = c.order.PushBack(&cached{key: k, user: user, hash: hash, expires: c.clock().Add(cacheTTL)})
}

// keepVouched forgets every credential whose user's entry in users is gone
// or changed.
func (c *credentialCache) keepVouched(users map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.order.Front(); e != nil; {
		next := e.Next()
		entry := e.Value.(*cached)
		if hash, ok := users[entry.user]; !ok || !sameHash(hash, entry.hash) {
			c.remove(e)
		}
		e = next
	}
}

func (c *credentialCache) remove(e *list.Element) {
	delete(c.entries, e.Value.(*cached).key)
	c.order.Remove(e)
}

// len returns how many credentials are remembered.
func (c *credentialCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
