package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// jsonFeed is a stream of JSON lines, each like the one before with a few
// fields changed, as a feed's are. awk prints them; the client checks them.
type jsonFeed struct {
	// awk is an awk program that prints lines 1 to n, a variable.
	awk string
	// line appends line i to buf.
	line func(buf []byte, i int) []byte
}

// command returns the feed's program for n lines.
func (f jsonFeed) command(n int) []string {
	return []string{"awk", "-v", "n=" + strconv.Itoa(n), f.awk}
}

// tradeFormat is a trade of about 160 bytes, as printf formats it.
const tradeFormat = `{"seq":%d,"type":"trade","symbol":"ACME","price":%d.%02d,"size":%d,"venue":"XNYS",` +
	`"conditions":["regular","odd-lot"],"ts":"2026-11-21T10:%02d:%02d.%06dZ"}`

// trades is the deflate scenario's feed.
var trades = jsonFeed{
	awk: `BEGIN { for (i = 1; i <= n; i++) printf "` + awkQuote(tradeFormat) + `\n", ` +
		`i, 100 + i % 50, i % 100, 100 * (1 + i % 7), int(i / 60000) % 60, int(i / 1000) % 60, (i % 1000) * 1000 }`,
	line: func(buf []byte, i int) []byte {
		return fmt.Appendf(buf[:0], tradeFormat, i, 100+i%50, i%100, 100*(1+i%7), (i/60000)%60, (i/1000)%60, (i%1000)*1000)
	},
}

// bookLevel is one price level of a book snapshot, as printf formats it.
const bookLevel = `{"price":%d.%02d,"size":%d,"orders":%d}`

// books is the deflate-book scenario's feed: snapshots of ten price levels
// a side, about 1 KB each.
var books = jsonFeed{
	awk: `BEGIN { for (i = 1; i <= n; i++) { ` +
		`s = sprintf("{\"seq\":%d,\"type\":\"book\",\"symbol\":\"ACME\",\"bids\":[", i); ` +
		`for (k = 0; k < 10; k++) s = s (k ? "," : "") sprintf("` + awkQuote(bookLevel) + `", 99 - k, (i + k) % 100, 100 * (1 + (i + k) % 7), 1 + (i * k) % 9); ` +
		`s = s "],\"asks\":["; ` +
		`for (k = 0; k < 10; k++) s = s (k ? "," : "") sprintf("` + awkQuote(bookLevel) + `", 100 + k, (i + 3 * k) % 100, 100 * (1 + (i + 2 * k) % 5), 1 + (i + k) % 8); ` +
		`print s "]}" } }`,
	line: func(buf []byte, i int) []byte {
		buf = fmt.Appendf(buf[:0], `{"seq":%d,"type":"book","symbol":"ACME","bids":[`, i)
		for k := range 10 {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = fmt.Appendf(buf, bookLevel, 99-k, (i+k)%100, 100*(1+(i+k)%7), 1+(i*k)%9)
		}
		buf = append(buf, `],"asks":[`...)
		for k := range 10 {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = fmt.Appendf(buf, bookLevel, 100+k, (i+3*k)%100, 100*(1+(i+2*k)%5), 1+(i+k)%8)
		}
		return append(buf, "]}"...)
	},
}

// awkQuote escapes the double quotes of s for an awk string literal.
func awkQuote(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// deflateMetrics are the figures of both deflate scenarios.
var deflateMetrics = []metric{
	{"wire bytes per line, plain", false, 1},
	{"wire bytes per line, client offers deflate", false, 1},
	{"gateway CPU per line, plain (µs)", false, 2},
	{"gateway CPU per line, client offers deflate (µs)", false, 2},
	{"lines/s, plain", true, 0},
	{"lines/s, client offers deflate", true, 0},
}

// deflateScenario measures feed through servers, wsgate with --compress.
func deflateScenario(name string, feed jsonFeed, lines func(sizes) int) scenario {
	return scenario{
		name:    name,
		command: func(cfg config) []string { return feed.command(lines(cfg.sizes)) },
		metrics: deflateMetrics,
		timeout: 3 * time.Minute,
		run: func(ctx context.Context, s *server, sz sizes) ([]float64, error) {
			return runDeflate(ctx, s, feed, lines(sz))
		},
		wsgateFlags: []string{"--compress"},
	}
}

// runDeflate reads n lines of feed twice from one server, each time from a
// fresh child: first as a client that does not offer permessage-deflate,
// then as one that does (what a browser sends). It reports the bytes read
// off the wire and the gateway's CPU per line, each way, and the lines per
// second of the compressed read. A server that does not compress shows the
// same figures both ways.
func runDeflate(ctx context.Context, s *server, feed jsonFeed, n int) ([]float64, error) {
	var vals [2]struct {
		wire, cpu, rate float64
	}
	for i, offer := range []bool{false, true} {
		cpu0, err := cpuTime(s.pid())
		if err != nil {
			return nil, err
		}
		start := time.Now()
		wire, err := readFeed(ctx, s.url, feed, n, offer)
		elapsed := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("client offering deflate %v: %w", offer, err)
		}
		cpu1, err := cpuTime(s.pid())
		if err != nil {
			return nil, err
		}
		vals[i].wire = float64(wire) / float64(n)
		vals[i].cpu = perItemMicros(cpu1-cpu0, n)
		vals[i].rate = perSecond(n, elapsed)
	}
	return []float64{vals[0].wire, vals[1].wire, vals[0].cpu, vals[1].cpu, vals[0].rate, vals[1].rate}, nil
}

// readFeed connects, offering permessage-deflate if offer is set, reads n
// lines of feed, checking each, waits for the end, and returns the bytes
// read off the wire, handshake and close included.
func readFeed(ctx context.Context, url string, feed jsonFeed, n int, offer bool) (int64, error) {
	var read atomic.Int64
	d := &websocket.Dialer{
		HandshakeTimeout:  handshakeTimeout,
		EnableCompression: offer,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return countingConn{c, &read}, err
		},
	}
	c, err := dialWith(ctx, d, url)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 0, 2048)
	want := make([]byte, 0, 2048)
	for i := 1; i <= n; i++ {
		if buf, err = readText(c, buf); err != nil {
			return 0, fmt.Errorf("read line %d of %d: %w", i, n, err)
		}
		want = feed.line(want, i)
		if err := mismatch(buf, want); err != nil {
			return 0, fmt.Errorf("line %d: %w", i, err)
		}
	}
	if err := expectEnd(c); err != nil {
		return 0, err
	}
	return read.Load(), nil
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
