package rawquery

import (
	"net/http/httptest"
	"slices"
	"testing"
)

func TestWithoutKeepsTheOtherParametersAsWritten(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw, rest string
		values    []string
	}{
		{"", "", nil},
		{"a=1&b=2", "a=1&b=2", nil},
		{"last_event_id=e:4", "", []string{"e:4"}},
		{"a=%20x&last_event_id=e%3A4&b", "a=%20x&b", []string{"e:4"}},
		{"last%5Fevent%5Fid=1&last_event_id=2&z=3", "z=3", []string{"1", "2"}},
		{"last_event_id", "", []string{""}},
		{"last_event_id=%zz&a=1", "a=1", []string{"%zz"}}, // kept as written: it fails to parse later
		{"a=%zz", "a=%zz", nil},
	} {
		rest, values := Without(c.raw, "last_event_id")
		if rest != c.rest || !slices.Equal(values, c.values) {
			t.Errorf("Without(%q) = %q, %q; want %q, %q", c.raw, rest, values, c.rest, c.values)
		}
		if Has(c.raw, "last_event_id") != (len(c.values) > 0) {
			t.Errorf("Has(%q) disagrees with Without", c.raw)
		}
	}
}

func TestValueIsTheFirstUnescaped(t *testing.T) {
	t.Parallel()
	if got := Value("x=1&access_token=a%2Bb&access_token=c", "access_token"); got != "a+b" {
		t.Errorf("Value = %q, want a+b", got)
	}
	if got := Value("x=1", "access_token"); got != "" {
		t.Errorf("Value of an absent parameter = %q", got)
	}
}

func TestWithQueryLeavesTheRequestAsItWas(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/s?a=1&last_event_id=x", nil)
	r2 := WithQuery(r, "a=1")
	if r2.URL.RawQuery != "a=1" || r2.RequestURI != "/s?a=1" {
		t.Errorf("copy has %q, %q", r2.URL.RawQuery, r2.RequestURI)
	}
	if r.URL.RawQuery != "a=1&last_event_id=x" || r.RequestURI != "/s?a=1&last_event_id=x" {
		t.Errorf("original changed: %q, %q", r.URL.RawQuery, r.RequestURI)
	}
}
