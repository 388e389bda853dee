package main

// The admission benchmark (scripts/bench admission): what identity and
// fairness cost. The spawn and echo scenarios and a run of first
// handshakes, each on wsgate with no admission flag, with --basicauth (one
// user, bcrypt cost 10, every client reconnecting with the same password),
// with --jwtkey (an RS256 public key, the same token every time), and with
// --ratelimit and --maxconnsperip set high enough that nothing is refused:
// side by side in one table, each against no flag.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/crypto/bcrypt"
)

func init() { subcommands["admission"] = admissionMain }

// Sizes of the admission benchmark.
const (
	// admissionCost is the bcrypt cost of the password file: htpasswd -B's
	// own default is 5; 10 is what the issue measures, and Go's default.
	admissionCost = 10
	// newCredentials is how many clients each present a credential the
	// server has not seen, one after another, in the first-handshake run.
	newCredentials = 20
	// Far above what one address does in the spawn scenario, so that the
	// fairness set-up measures its bookkeeping, never a refusal.
	admissionRateLimit = "1000000"
	admissionPerIP     = "100000"
)

// admissionSetup is one column: wsgate's flags, and the handshake headers
// of client i, i < 0 being the credential every client of spawn and echo
// shares.
type admissionSetup struct {
	name   string
	flags  []string
	header func(i int) http.Header
}

// admissionRows are the table's rows: spawn's, echo's, then the first
// handshakes'.
var admissionRows = append(append(append([]metric{}, scenarioMetrics("spawn")...), scenarioMetrics("echo")...),
	metric{"first handshake of a new credential, p50 (ms)", false, 2})

// scenarioMetrics returns the metrics of the named scenario.
func scenarioMetrics(name string) []metric {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc.metrics
		}
	}
	panic("no scenario " + name)
}

// admissionMain runs the admission benchmark from its command line and
// returns the exit code.
func admissionMain(args []string) int {
	fs := flag.NewFlagSet("runner admission", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "repetitions per set-up; the table shows medians")
	smoke := fs.Bool("smoke", false, "tiny counts and 1 repetition: checks correctness, not speed")
	wsgate := fs.String("wsgate", "", "path to the wsgate binary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sz := fullSizes
	if *smoke {
		sz = smokeSizes
		if !flagSet(fs, "reps") {
			*reps = 1
		}
	}
	kind := serverKind{name: "wsgate", path: *wsgate, frameFlag: true}
	if err := checkExecutable(kind); err != nil {
		fmt.Fprintln(os.Stderr, "runner admission:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "wsgate-admission-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner admission:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "admission: writing %d bcrypt entries of cost %d and an RSA key\n", newCredentials+1, admissionCost)
	setups, err := admissionSetups(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner admission:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cells := make([]*cell, len(setups))
	for i := range cells {
		cells[i] = &cell{}
	}
	for rep := range *reps {
		for _, su := range rotateSetups(setups, rep) {
			if ctx.Err() != nil {
				return 130
			}
			c := cells[indexOf(setups, su.name)]
			fmt.Fprintf(os.Stderr, "rep %d/%d  admission %-22s ", rep+1, *reps, su.name)
			start := time.Now()
			vals, err := admissionOnce(ctx, kind, su, sz)
			took := time.Since(start).Round(100 * time.Millisecond)
			if err != nil {
				c.failures = append(c.failures, fmt.Sprintf("rep %d: %v", rep+1, err))
				fmt.Fprintf(os.Stderr, "FAIL (%v): %v\n", took, err)
				continue
			}
			c.values = append(c.values, vals)
			fmt.Fprintf(os.Stderr, "ok (%v)  spawn=%.0f/s echo=%.0f/s first=%.2fms\n", took, vals[0], vals[4], vals[len(vals)-1])
		}
	}
	writeAdmissionTable(os.Stdout, sz, *reps, setups, cells)
	for _, c := range cells {
		if len(c.failures) > 0 {
			return 1
		}
	}
	return 0
}

// rotateSetups starts the list at index by, so that no set-up always runs
// first.
func rotateSetups(list []admissionSetup, by int) []admissionSetup {
	by %= len(list)
	return append(append([]admissionSetup{}, list[by:]...), list[:by]...)
}

func indexOf(list []admissionSetup, name string) int {
	for i, su := range list {
		if su.name == name {
			return i
		}
	}
	return -1
}

// admissionSetups writes the password file and the key into dir and
// returns the set-ups, the one without flags first.
func admissionSetups(dir string) ([]admissionSetup, error) {
	users, passwords, err := writePasswords(dir)
	if err != nil {
		return nil, err
	}
	keyFile, tokens, err := writeRSAKey(dir)
	if err != nil {
		return nil, err
	}
	none := func(int) http.Header { return nil }
	return []admissionSetup{
		{name: "no flag", header: none},
		{name: "--basicauth (cost 10)", flags: []string{"--basicauth=" + users}, header: func(i int) http.Header {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.SetBasicAuth(passwords[i+1][0], passwords[i+1][1])
			return r.Header
		}},
		{name: "--jwtkey (RS256)", flags: []string{"--jwtkey=" + keyFile}, header: func(i int) http.Header {
			return http.Header{"Authorization": {"Bearer " + tokens[i+1]}}
		}},
		{name: "--ratelimit --maxconnsperip", flags: []string{"--ratelimit=" + admissionRateLimit, "--maxconnsperip=" + admissionPerIP}, header: none},
	}, nil
}

// writePasswords writes an htpasswd file of newCredentials+1 users and
// returns its path and each user's name and password, the shared one
// first.
func writePasswords(dir string) (string, [][2]string, error) {
	var file strings.Builder
	var passwords [][2]string
	for i := range newCredentials + 1 {
		user, password := fmt.Sprintf("user%d", i), fmt.Sprintf("password-%d", i)
		hash, err := bcrypt.GenerateFromPassword([]byte(password), admissionCost)
		if err != nil {
			return "", nil, err
		}
		fmt.Fprintf(&file, "%s:%s\n", user, hash)
		passwords = append(passwords, [2]string{user, password})
	}
	path := filepath.Join(dir, "users")
	return path, passwords, os.WriteFile(path, []byte(file.String()), 0o600)
}

// writeRSAKey writes an RSA public key and returns its path and
// newCredentials+1 tokens it verifies, each for another user.
func writeRSAKey(dir string) (string, []string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "jwt.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return "", nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, nil)
	if err != nil {
		return "", nil, err
	}
	var tokens []string
	for i := range newCredentials + 1 {
		claims := jwt.Claims{Subject: fmt.Sprintf("user%d", i), Expiry: jwt.NewNumericDate(time.Now().Add(24 * time.Hour))}
		token, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			return "", nil, err
		}
		tokens = append(tokens, token)
	}
	return path, tokens, nil
}

// admissionOnce runs spawn, echo and the first handshakes once on a set-up,
// each on a fresh wsgate, and returns the figures in admissionRows order.
func admissionOnce(ctx context.Context, kind serverKind, su admissionSetup, sz sizes) ([]float64, error) {
	var vals []float64
	for _, run := range []func(context.Context, *server, sizes) ([]float64, error){runSpawn, runEcho, runFirstHandshakes(su)} {
		v, err := admissionRun(ctx, kind, su, sz, run)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v...)
	}
	return vals, nil
}

// admissionRun runs one scenario on a fresh wsgate with the set-up's flags,
// its clients presenting the shared credential.
func admissionRun(ctx context.Context, kind serverKind, su admissionSetup, sz sizes, run func(context.Context, *server, sizes) ([]float64, error)) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := startServer(ctx, kind, false, append(append([]string{}, su.flags...), catCommand(config{})...))
	if err != nil {
		return nil, err
	}
	defer s.stop()
	s.header = su.header(-1)
	vals, err := run(ctx, s, sz)
	return vals, errors.Join(err, s.exitedEarly())
}

// runFirstHandshakes returns a run in which newCredentials clients, one
// after another, each present a credential the server has not seen, and
// reports the median time from dial to the first echo.
func runFirstHandshakes(su admissionSetup) func(context.Context, *server, sizes) ([]float64, error) {
	return func(ctx context.Context, s *server, _ sizes) ([]float64, error) {
		lat := make([]time.Duration, newCredentials)
		for i := range newCredentials {
			t0 := time.Now()
			c, err := dialHeader(ctx, dialer, s.url, su.header(i))
			if err != nil {
				return nil, fmt.Errorf("client %d: %w", i, err)
			}
			_, err = roundTrip(c, connMessage(i, 0), nil)
			lat[i] = time.Since(t0)
			closeGracefully(c)
			if err != nil {
				return nil, fmt.Errorf("client %d: %w", i, err)
			}
		}
		return []float64{millis(percentile(lat, 50))}, nil
	}
}

// writeAdmissionTable prints the markdown table of medians, each set-up
// against the one without flags.
func writeAdmissionTable(w io.Writer, sz sizes, reps int, setups []admissionSetup, cells []*cell) {
	fmt.Fprintf(w, "wsgate alone, median of %d repetition(s): spawn %s connections from %d workers, echo %s x %d B with %d in flight, "+
		"then %d clients one after another each with a credential not seen before. Each set-up against no flag.\n\n",
		reps, formatNumber(float64(sz.spawnConns), 0), sz.spawnWorkers, formatNumber(float64(sz.echoMsgs), 0), echoSize,
		sz.echoInflight, newCredentials)
	header, rule := "| metric |", "|---|"
	for _, su := range setups {
		header += " " + su.name + " |"
		rule += "--:|"
	}
	for _, su := range setups[1:] {
		header += " " + strings.Fields(su.name)[0] + " / no flag |"
		rule += "--:|"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, rule)
	for i, m := range admissionRows {
		cols := []string{m.name + arrow(m)}
		for _, c := range cells {
			cols = append(cols, c.text(i, m))
		}
		for _, c := range cells[1:] {
			cols = append(cols, ratio(c, cells[0], i))
		}
		fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better. Ratios divide the set-up's median by no flag's.")
	for i, c := range cells {
		for _, f := range c.failures {
			fmt.Fprintf(w, "\n- FAIL: %s: %s", setups[i].name, f)
		}
	}
	fmt.Fprintln(w)
}
