package redisbus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/testrun"
)

func TestSentinelURLTable(t *testing.T) {
	t.Parallel()
	const secret = "s3nt-pw"
	o, err := parseSentinelURL("redis+sentinel://ops:" + secret + "@10.0.0.1,10.0.0.2:26380,[::1]:26381/mymaster/3?sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.SentinelAddrs, " "); got != "10.0.0.1:26379 10.0.0.2:26380 [::1]:26381" {
		t.Errorf("sentinels %q", got)
	}
	if o.MasterName != "mymaster" || o.DB != 3 || o.Username != "ops" || o.Password != secret || o.SentinelPassword != "sp" || o.TLSConfig != nil {
		t.Errorf("options %+v", o)
	}
	o, err = parseSentinelURL("rediss+sentinel://s1.example:26379/m")
	if err != nil || o.TLSConfig == nil || o.DB != 0 || o.MasterName != "m" || o.TLSConfig.ServerName != "s1.example" {
		t.Errorf("rediss+sentinel: %+v, %v", o, err)
	}
	for url, want := range map[string]string{
		"redis+sentinel://:" + secret + "@10.0.0.1/":                     "no master name",
		"redis+sentinel://:" + secret + "@10.0.0.1":                      "no master name",
		"redis+sentinel://:" + secret + "@10.0.0.1/m/x":                  "is not a number",
		"redis+sentinel://:" + secret + "@10.0.0.1/m/0/1":                "want /MASTER or /MASTER/DB",
		"redis+sentinel://:" + secret + "@10.0.0.1:0/m":                  "port must be a number",
		"redis+sentinel://:" + secret + "@,10.0.0.1/m":                   "no host",
		"redis+sentinel://:" + secret + "@10.0.0.1/m?password=" + secret: "unknown parameter",
	} {
		_, err := New(Options{URL: url})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", Redact(url), err, want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the password: %v", Redact(url), err)
		}
	}
	if got := Redact("redis+sentinel://:" + secret + "@a:1,b:2/m/0?sentinel_password=" + secret); strings.Contains(got, secret) {
		t.Errorf("Redact shows a password: %q", got)
	}
}

func TestSentinelAFailoverUnderLoadLosesNoLineThatWasDelivered(t *testing.T) {
	t.Parallel()
	s := testrun.StartSentinels(t, 1, "sentinel-pw")
	url := s.URL(2)
	a, at := attachWith(t, url, "/feed", 1000)
	b, _ := attachWith(t, url, "/feed", 1000)
	if !at.Lead {
		t.Fatal("the first instance does not lead")
	}
	if err := a.bus.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Publish until the master dies; every batch that Publish took was
	// delivered here, so each must survive the failover.
	old := s.MasterAddr()
	var published []*broadcast.Message
	killed := false
	for next := 1; ; next += 10 {
		msgs := numbered(next, next+9)
		if err := a.link.Publish(msgs); err != nil {
			break
		}
		published = append(published, msgs...)
		if next > 200 && !killed {
			s.Master.Kill()
			killed = true
		}
		if next > 100000 {
			t.Fatal("publishing goes on after the master was killed")
		}
	}
	for _, p := range []*party{a, b} {
		waitFor(t, 10*time.Second, "the link fails", func() bool { return p.rec.failure() != nil })
	}
	s.WaitFailover(old, 30*time.Second)
	waitFor(t, 10*time.Second, "the bus up on the new master", a.bus.BusUp)

	// On the new master the stream goes on: the same history, every line
	// published (and so delivered) before the death in its replay.
	c, ct := attachWith(t, url, "/feed", 1000)
	last := published[len(published)-1].Seq
	if ct.Epoch != at.Epoch || ct.Seq != last {
		t.Fatalf("after the failover: epoch %q at %d, want %q at %d (%d lines published)", ct.Epoch, ct.Seq, at.Epoch, last, len(published))
	}
	assertRun(t, "the replay after the failover", numbers(t, ct.Replay), 1, int(last))
	// The dead leader's lease came over with the data: it expires, and the
	// new instance takes the lead.
	waitFor(t, leaseTTL+3*tickInterval, "the new instance leads", c.leads)
	if err := c.link.Publish(numbered(int(last)+1, int(last)+1)); err != nil {
		t.Fatalf("publish on the new master: %v", err)
	}
	t.Logf("%d lines published before the master died; the stream went on at %d", len(published), last+1)
}

func TestSentinelLinesAreDeliveredOnlyOnceAReplicaHasThem(t *testing.T) {
	t.Parallel()
	s := testrun.StartSentinels(t, 1, "")
	url := s.URL(0)
	a, at := attachWith(t, url, "/feed", 100)
	a.bus.replicaWait = 10 * time.Second // this test is about waiting, not about giving up
	if !at.Lead {
		t.Fatal("the instance does not lead")
	}
	if err := a.link.Publish(numbered(1, 10)); err != nil {
		t.Fatal(err)
	}
	// A write of 64 MB keeps the replica busy: lines published just after
	// reach it later, and the master dies as soon as Publish returns.
	raw := rawClient(t, "redis://"+s.MasterAddr()+"/0")
	if err := raw.Set(context.Background(), "bulk", strings.Repeat("x", 64<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	old := s.MasterAddr()
	if err := a.link.Publish(numbered(11, 20)); err != nil {
		t.Fatal(err)
	}
	s.Master.Kill()
	s.WaitFailover(old, 30*time.Second)
	probe, _ := newBus(t, url, 0)
	if err := probe.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the bus up on the new master", probe.BusUp)
	_, ct := attachWith(t, url, "/feed", 100)
	if ct.Seq != 20 || ct.Epoch != at.Epoch {
		t.Fatalf("after the failover the stream is at %s:%d, want %s:20: lines delivered before the master died were lost", ct.Epoch, ct.Seq, at.Epoch)
	}
}
