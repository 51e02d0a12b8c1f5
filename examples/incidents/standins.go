package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outhook/outhook/webhook"
)

// ---- local stand-ins for the outside world ----

// standIns are the loopback servers the demo delivers to. Each prints what
// it receives, and the Slack stand-in remembers it by channel.
type standIns struct {
	out      io.Writer
	verifier *webhook.Verifier
	requests atomic.Int32 // to the ops receiver

	// partnerDown makes the partner's endpoint answer 500 until the demo
	// "fixes" it.
	partnerDown atomic.Bool

	mu    sync.Mutex
	slack map[string][]string // messages by channel
}

// hookMessage is the body of a Standard Webhooks request: {type, timestamp,
// data}.
type hookMessage struct {
	Type string `json:"type"`
	Data struct {
		IncidentID string `json:"incidentId"`
	} `json:"data"`
}

// verify reads a webhook request, and checks its signature as any receiver
// should (webhook.Verifier, or any Standard Webhooks library).
func (s *standIns) verify(r *http.Request) (hookMessage, string) {
	body, _ := io.ReadAll(r.Body)
	var msg hookMessage
	_ = json.Unmarshal(body, &msg)
	if err := s.verifier.Verify(body, r.Header); err != nil {
		return msg, "SIGNATURE REJECTED: " + err.Error()
	}
	return msg, "signature verified"
}

// receiver is the ops team's webhook endpoint: it verifies the Standard
// Webhooks signature of every request and fails the first one on purpose.
func (s *standIns) receiver(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	msg, verified := s.verify(r)
	if n == 1 {
		fmt.Fprintf(s.out, "  webhook   #%d %-27s %s -> 503 (failing once on purpose)\n", n, msg.Type, verified)
		http.Error(w, "warming up", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(s.out, "  webhook   #%d %-27s %s -> 204  id=%s\n", n, msg.Type, verified, r.Header.Get("webhook-id"))
	w.WriteHeader(http.StatusNoContent)
}

// partner is a partner's webhook endpoint, which is down (answers 500)
// until partnerDown is cleared.
func (s *standIns) partner(w http.ResponseWriter, r *http.Request) {
	msg, verified := s.verify(r)
	if s.partnerDown.Load() {
		fmt.Fprintf(s.out, "  partner   %s %s %s -> 500 (down)  id=%s\n", msg.Type, msg.Data.IncidentID, verified, r.Header.Get("webhook-id"))
		http.Error(w, "upstream unavailable", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(s.out, "  partner   %s %s %s -> 204  id=%s\n", msg.Type, msg.Data.IncidentID, verified, r.Header.Get("webhook-id"))
	w.WriteHeader(http.StatusNoContent)
}

// slackAPI stands in for https://hooks.slack.com/services/...: the last
// segment of the path names the channel.
func (s *standIns) slackAPI(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Text string `json:"text"`
	}
	_ = json.NewDecoder(r.Body).Decode(&msg)
	channel := "#" + path.Base(r.URL.Path)
	s.mu.Lock()
	if s.slack == nil {
		s.slack = map[string][]string{}
	}
	s.slack[channel] = append(s.slack[channel], msg.Text)
	s.mu.Unlock()
	fmt.Fprintf(s.out, "  slack     %-12s %s\n", channel, msg.Text)
	_, _ = io.WriteString(w, "ok")
}

// slackMessages returns the messages a channel has received.
func (s *standIns) slackMessages(channel string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.slack[channel])
}

// pagerDuty stands in for https://events.pagerduty.com/v2/enqueue.
func (s *standIns) pagerDuty(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		Action   string `json:"event_action"`
		DedupKey string `json:"dedup_key"`
		Payload  *struct {
			Summary  string `json:"summary"`
			Severity string `json:"severity"`
		} `json:"payload"`
	}
	_ = json.NewDecoder(r.Body).Decode(&ev)
	line := fmt.Sprintf("  pagerduty %s %s dedup_key=%s", r.URL.Path, ev.Action, ev.DedupKey)
	if ev.Payload != nil {
		line += fmt.Sprintf(" severity=%s summary=%q", ev.Payload.Severity, ev.Payload.Summary)
	}
	fmt.Fprintln(s.out, line)
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, ev.DedupKey)
}

// serve starts handler on a loopback port and returns its URL.
func serve(handler http.HandlerFunc) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

// lockedWriter lets the stand-ins' goroutines and the main one print to one
// writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
