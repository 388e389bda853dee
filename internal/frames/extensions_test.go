package frames

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOffers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		values []string
		want   []Offer
		bad    bool
	}{
		{name: "none"},
		{name: "bare", values: []string{"permessage-deflate"}, want: []Offer{{Name: "permessage-deflate"}}},
		{
			name:   "params-and-space",
			values: []string{"permessage-deflate ;client_max_window_bits ; server_max_window_bits = 10\t"},
			want: []Offer{{Name: "permessage-deflate", Params: []Param{
				{Name: "client_max_window_bits"},
				{Name: "server_max_window_bits", Value: "10", HasValue: true},
			}}},
		},
		{
			name:   "quoted-value",
			values: []string{`permessage-deflate; client_max_window_bits="1\0"`},
			want:   []Offer{{Name: "permessage-deflate", Params: []Param{{Name: "client_max_window_bits", Value: "10", HasValue: true}}}},
		},
		{
			name:   "several-offers-and-headers-with-empty-elements",
			values: []string{"x-foo, ,permessage-deflate; a", ",permessage-deflate,"},
			want: []Offer{
				{Name: "x-foo"},
				{Name: "permessage-deflate", Params: []Param{{Name: "a"}}},
				{Name: "permessage-deflate"},
			},
		},
		{name: "missing-name", values: []string{"; a"}, bad: true},
		{name: "missing-param", values: []string{"permessage-deflate;"}, bad: true},
		{name: "missing-value", values: []string{"permessage-deflate; a="}, bad: true},
		{name: "junk-after-offer", values: []string{"permessage-deflate x"}, bad: true},
		{name: "unterminated-quote", values: []string{`permessage-deflate; a="10`}, bad: true},
		{name: "quoted-non-token", values: []string{`permessage-deflate; a="1 0"`}, bad: true},
		{name: "empty-quote", values: []string{`permessage-deflate; a=""`}, bad: true},
		{name: "non-token-char", values: []string{"permessage-deflate; a=b@c"}, bad: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseOffers(c.values)
			if c.bad {
				if err == nil {
					t.Fatalf("ParseOffers(%q) = %+v, want an error", c.values, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("ParseOffers(%q) = %+v, %v; want %+v", c.values, got, err, c.want)
			}
		})
	}
}

func TestDeflateOffered(t *testing.T) {
	t.Parallel()
	cases := []struct {
		offer  string
		accept bool
		why    string // in the error when declined; "" for no error
	}{
		{"", false, ""},
		{"x-webkit-deflate-frame", false, ""},
		{"permessage-deflate", true, ""},
		{"permessage-deflate; client_max_window_bits", true, ""},
		{"permessage-deflate; client_max_window_bits=8", true, ""},
		{"permessage-deflate; client_max_window_bits=15", true, ""},
		{`permessage-deflate; client_max_window_bits="12"`, true, ""},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, ""},
		{"permessage-deflate; client_max_window_bits=7", false, "not 8 to 15"},
		{"permessage-deflate; client_max_window_bits=16", false, "not 8 to 15"},
		{"permessage-deflate; client_max_window_bits=08", false, "not 8 to 15"},
		{"permessage-deflate; client_max_window_bits=junk", false, "not 8 to 15"},
		{"permessage-deflate; server_max_window_bits=8", false, "server_max_window_bits"},
		{"permessage-deflate; server_max_window_bits", false, "server_max_window_bits"},
		{"permessage-deflate; server_no_context_takeover=1", false, "takes no value"},
		{"permessage-deflate; client_no_context_takeover=1", false, "takes no value"},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", false, "twice"},
		{"permessage-deflate; client_max_window_bits; client_max_window_bits=10", false, "twice"},
		{"permessage-deflate; mystery", false, "unknown parameter mystery"},
		{"Permessage-Deflate", false, ""},
		// The first acceptable offer wins over one declined before it.
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits", true, ""},
		// A header that does not parse declines everything in it.
		{"permessage-deflate, permessage-deflate; =", false, "extensions:"},
	}
	for _, c := range cases {
		var values []string
		if c.offer != "" {
			values = []string{c.offer}
		}
		accept, err := DeflateOffered(values)
		switch {
		case accept != c.accept:
			t.Errorf("DeflateOffered(%q) = %v (%v), want %v", c.offer, accept, err, c.accept)
		case c.why == "" && err != nil:
			t.Errorf("DeflateOffered(%q): unexpected error %v", c.offer, err)
		case c.why != "" && (err == nil || !strings.Contains(err.Error(), c.why)):
			t.Errorf("DeflateOffered(%q) error %v, want one that says %q", c.offer, err, c.why)
		}
	}
}
