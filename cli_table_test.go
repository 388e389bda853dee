package main

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseHeadersTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		list    []string
		want    http.Header
		wantErr string // when want is nil: the entry the error names
	}{
		{name: "no entries", list: nil, want: http.Header{}},
		{name: "name and value", list: []string{"X-Frame-Options: DENY"}, want: http.Header{"X-Frame-Options": {"DENY"}}},
		{name: "name canonicalized", list: []string{"x-frame-options: DENY"}, want: http.Header{"X-Frame-Options": {"DENY"}}},
		{name: "no space after the colon", list: []string{"X-A:b"}, want: http.Header{"X-A": {"b"}}},
		{name: "spaces around name and value trimmed", list: []string{"  X-A  :   b c  "}, want: http.Header{"X-A": {"b c"}}},
		{name: "tab around the value trimmed, inside kept", list: []string{"X-A:\tb\tc\t"}, want: http.Header{"X-A": {"b\tc"}}},
		{name: "empty value", list: []string{"X-A:"}, want: http.Header{"X-A": {""}}},
		{name: "value split at the first colon only", list: []string{"Link: <http://a.example/>; rel=x"}, want: http.Header{"Link": {"<http://a.example/>; rel=x"}}},
		{
			name: "value with spaces and quotes",
			list: []string{"Content-Security-Policy: default-src 'self'; img-src *"},
			want: http.Header{"Content-Security-Policy": {"default-src 'self'; img-src *"}},
		},
		{name: "repeated name gives several values", list: []string{"X-A: 1", "x-a: 2"}, want: http.Header{"X-A": {"1", "2"}}},
		{
			name: "several names",
			list: []string{"X-A: 1", "X-B: 2"},
			want: http.Header{"X-A": {"1"}, "X-B": {"2"}},
		},
		{name: "CR LF around the name trimmed", list: []string{"\r\nX-A\r\n: b"}, want: http.Header{"X-A": {"b"}}},

		{name: "missing colon", list: []string{"X-Frame-Options"}, wantErr: "X-Frame-Options"},
		{name: "missing colon, space instead", list: []string{"X-A b"}, wantErr: "X-A b"},
		{name: "empty entry", list: []string{""}, wantErr: ""},
		{name: "empty name", list: []string{": b"}, wantErr: ": b"},
		{name: "blank name", list: []string{"   : b"}, wantErr: "   : b"},
		{name: "space inside the name", list: []string{"X A: b"}, wantErr: "X A: b"},
		{name: "tab inside the name", list: []string{"X\tA: b"}, wantErr: "X\tA: b"},
		{name: "CR inside the name", list: []string{"X\rA: b"}, wantErr: "X\rA: b"},
		{name: "LF inside the name", list: []string{"X\nA: b"}, wantErr: "X\nA: b"},
		{name: "CR LF inside the value (header injection)", list: []string{"X-A: b\r\nSet-Cookie: x=1"}, wantErr: "X-A: b\r\nSet-Cookie: x=1"},
		{name: "LF inside the value", list: []string{"X-A: b\nc"}, wantErr: "X-A: b\nc"},
		{name: "trailing CR in the value", list: []string{"X-A: b\r"}, wantErr: "X-A: b\r"},
		{name: "trailing LF in the value", list: []string{"X-A: b\n"}, wantErr: "X-A: b\n"},
		{name: "bad entry after good ones", list: []string{"X-A: 1", "bad"}, wantErr: "bad"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseHeaders(c.list)
			wantErr := c.want == nil
			if wantErr {
				if err == nil || got != nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.wantErr)) {
					t.Errorf("parseHeaders(%q) = %v, %v; want nil and an error naming %q", c.list, got, err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("parseHeaders(%q) = %v, %v; want %v", c.list, got, err, c.want)
			}
		})
	}
}

func TestWebsocketdArgsTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no arguments", nil, []string{}},
		{"command alone untouched", []string{"cat", "-n"}, []string{"cat", "-n"}},
		{"single-dash flag with = becomes double-dash", []string{"-port=8080", "cat"}, []string{"--port=8080", "cat"}},
		{"single-dash flag takes the next argument as its value", []string{"-port", "8080", "cat"}, []string{"--port", "8080", "cat"}},
		{"double-dash flag with separate value kept", []string{"--port", "8080", "cat"}, []string{"--port", "8080", "cat"}},
		{"double-dash flag with = kept", []string{"--port=8080", "cat"}, []string{"--port=8080", "cat"}},
		{"extra dashes collapse to two", []string{"---port=8080", "cat"}, []string{"--port=8080", "cat"}},
		{"value that looks like a flag is still the value", []string{"-port", "-1", "cat"}, []string{"--port", "-1", "cat"}},
		{"value with spaces taken whole", []string{"-header", "X-A: b", "cat"}, []string{"--header", "X-A: b", "cat"}},
		{"repeated flag each rewritten", []string{"-address", "127.0.0.1", "-address=::1", "cat"}, []string{"--address", "127.0.0.1", "--address=::1", "cat"}},
		{"value-taking flag last keeps no value", []string{"-port"}, []string{"--port"}},

		{"--binary=true becomes --binary", []string{"--binary=true", "cat"}, []string{"--binary", "cat"}},
		{"-binary=1 becomes --binary", []string{"-binary=1", "cat"}, []string{"--binary", "cat"}},
		{"--binary=false dropped", []string{"--binary=false", "cat"}, []string{"cat"}},
		{"-binary=0 dropped", []string{"-binary=0", "cat"}, []string{"cat"}},
		{"bare bool flag does not swallow the command", []string{"-binary", "cat"}, []string{"--binary", "cat"}},
		{"every bool flag known", []string{"-ssl", "-devconsole", "-sameorigin", "-reverselookup", "-passstderr", "-license", "cat"}, []string{"--ssl", "--devconsole", "--sameorigin", "--reverselookup", "--passstderr", "--license", "cat"}},
		{"-version=true becomes --version", []string{"-version=true"}, []string{"--version"}},
		{"-help becomes --help", []string{"-help"}, []string{"--help"}},
		{"bool value other than true/false/1/0 passed on", []string{"--binary=yes", "cat"}, []string{"--binary=yes", "cat"}},
		{"Go-style -binary=t passed on as is", []string{"-binary=t", "cat"}, []string{"--binary=t", "cat"}},
		{"upper-case TRUE passed on as is", []string{"-binary=TRUE", "cat"}, []string{"--binary=TRUE", "cat"}},
		{"non-bool flag =false kept", []string{"-dir=false"}, []string{"--dir=false"}},

		{"short flag kept", []string{"-h"}, []string{"-h"}},
		{"short flag before the command kept", []string{"-h", "cat"}, []string{"-h", "cat"}},
		{"short flag does not take the next argument", []string{"-p", "8080", "-port=1"}, []string{"-p", "8080", "-port=1"}},
		{"short flag with = kept", []string{"-x=1", "-port=1"}, []string{"-x=1", "--port=1"}},
		{"double-dash single letter is long", []string{"--x", "1", "cat"}, []string{"--x", "1", "cat"}},
		{"double-dash single letter takes the next argument", []string{"--x", "-port=1"}, []string{"--x", "-port=1"}},

		{"-- stops rewriting and is kept", []string{"--", "-port=1", "cat"}, []string{"--", "-port=1", "cat"}},
		{"-- after flags", []string{"-port=1", "--", "cat", "-binary=false"}, []string{"--port=1", "--", "cat", "-binary=false"}},
		{"command's own flags untouched", []string{"-port=1", "cat", "-n", "--binary=false", "-port", "2"}, []string{"--port=1", "cat", "-n", "--binary=false", "-port", "2"}},
		{"flag value is not taken for the command", []string{"-loglevel", "debug", "cat"}, []string{"--loglevel", "debug", "cat"}},
		{"lone dash starts the command", []string{"-port=1", "-", "-binary=false"}, []string{"--port=1", "-", "-binary=false"}},
		{"lone dash alone", []string{"-"}, []string{"-"}},
		{"empty argument starts the command", []string{"", "-port=1"}, []string{"", "-port=1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := slices.Clone(c.args)
			got := websocketdArgs(args)
			if got == nil || !slices.Equal(got, c.want) {
				t.Errorf("websocketdArgs(%q) = %q, want %q", c.args, got, c.want)
			}
			if !slices.Equal(args, c.args) {
				t.Errorf("websocketdArgs changed its argument to %q", args)
			}
		})
	}
}
