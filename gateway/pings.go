package gateway

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// pinger pings the client every interval. It holds no goroutine between
// pings: each ping runs on a timer.
type pinger struct {
	mu      sync.Mutex
	stopped bool
	timer   *time.Timer
}

// startPings starts pinging the session's client, unless pings are off.
func (s *session) startPings() *pinger {
	p := &pinger{}
	interval := s.gw.cfg.PingInterval
	if interval <= 0 {
		return p
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = time.AfterFunc(interval, func() {
		_ = s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(controlWriteWait))
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.stopped {
			p.timer.Reset(interval)
		}
	})
	return p
}

// stop ends the pings; a ping being sent may still finish.
func (p *pinger) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.timer != nil {
		p.timer.Stop()
	}
}
