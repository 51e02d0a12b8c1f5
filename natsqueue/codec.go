package natsqueue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outhook/outhook/queue"
)

// Message headers of a job. Values that come from the caller (ID, group,
// kind) are percent-encoded with url.PathEscape: NATS headers are MIME
// headers, which cannot carry line breaks and lose surrounding spaces.
const (
	hdrFormat  = "Outhook-Job" // format version; "1"
	hdrID      = "Outhook-Id"
	hdrGroup   = "Outhook-Group"
	hdrKind    = "Outhook-Kind"
	hdrCreated = "Outhook-Created-At" // RFC 3339, nanoseconds, UTC
	hdrRunAt   = "Outhook-Run-At"     // likewise; absent when zero
	hdrTrace   = "Outhook-Trace"      // Job.Trace, form-encoded (k=v&k=v); absent when empty

	formatV1 = "1"
)

// groupToken maps a worker group name, which may hold any character, to a
// subject token of 32 hex digits: NATS subject tokens cannot contain '.',
// '*', '>' or white space
// (https://docs.nats.io/nats-concepts/subjects).
// 128 bits of SHA-256 make a collision between two groups of one stream
// practically impossible.
func groupToken(group string) string {
	sum := sha256.Sum256([]byte(group))
	return hex.EncodeToString(sum[:16])
}

func workSubject(stream, token string) string  { return stream + ".work." + token }
func bcastSubject(stream, token string) string { return stream + ".bcast." + token }
func deadSubject(stream, token string) string  { return stream + ".dead." + token }

// msgID is the Nats-Msg-Id of a job: the stream drops a second publish of
// the same value within its duplicate window
// (https://docs.nats.io/jetstream/model_deep_dive#message-deduplication).
func msgID(token, id string) string { return token + ":" + url.PathEscape(id) }

// encodeJob builds the message of a job for subject.
func encodeJob(subject, token string, j *queue.Job) *nats.Msg {
	h := nats.Header{
		hdrFormat:  {formatV1},
		hdrID:      {url.PathEscape(j.ID)},
		hdrGroup:   {url.PathEscape(j.Group)},
		hdrCreated: {j.CreatedAt.UTC().Format(time.RFC3339Nano)},
	}
	if j.Kind != "" {
		h[hdrKind] = []string{url.PathEscape(j.Kind)}
	}
	if !j.RunAt.IsZero() {
		h[hdrRunAt] = []string{j.RunAt.UTC().Format(time.RFC3339Nano)}
	}
	if len(j.Trace) > 0 {
		h[hdrTrace] = []string{encodeTrace(j.Trace)}
	}
	if j.ID != "" {
		h[jetstream.MsgIDHeader] = []string{msgID(token, j.ID)}
	}
	return &nats.Msg{Subject: subject, Header: h, Data: j.Payload}
}

// encodeTrace encodes a job's trace context as one header value:
// application/x-www-form-urlencoded, which escapes everything a MIME
// header cannot carry, and keeps the job's headers to one of ours however
// many entries the application's propagator writes.
func encodeTrace(tr map[string]string) string {
	v := make(url.Values, len(tr))
	for k, x := range tr {
		v[k] = []string{x}
	}
	return v.Encode()
}

// decodeTrace decodes the value of an Outhook-Trace header; nil when there
// is none. The trace context is telemetry, not part of the job's work: a
// value that does not decode is dropped rather than poisoning the job.
func decodeTrace(s string) map[string]string {
	if s == "" {
		return nil
	}
	v, err := url.ParseQuery(s)
	if err != nil || len(v) == 0 {
		return nil
	}
	tr := make(map[string]string, len(v))
	for k, xs := range v {
		tr[k] = xs[0]
	}
	return tr
}

// errPoison marks messages that are not jobs of this queue.
var errPoison = errors.New("natsqueue: undecodable message")

// decodeJob reads the job a message of group carries. Attempt and Errors
// are left for the caller.
func decodeJob(groupName, token string, subject string, h nats.Header, data []byte) (*queue.Job, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w on %s: %s", errPoison, subject, fmt.Sprintf(format, args...))
	}
	if v := h.Get(hdrFormat); v != formatV1 {
		if v == "" {
			return nil, bad("no %s header: not published by natsqueue", hdrFormat)
		}
		return nil, bad("unknown format %s %q", hdrFormat, v)
	}
	text := func(name string, required bool) (string, error) {
		vs := h.Values(name)
		if len(vs) == 0 {
			if required {
				return "", bad("no %s header", name)
			}
			return "", nil
		}
		if len(vs) > 1 {
			return "", bad("%d %s headers", len(vs), name)
		}
		s, err := url.PathUnescape(vs[0])
		if err != nil {
			return "", bad("header %s: %v", name, err)
		}
		return s, nil
	}
	stamp := func(name string, required bool) (time.Time, error) {
		v := h.Get(name)
		if v == "" {
			if required {
				return time.Time{}, bad("no %s header", name)
			}
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, bad("header %s: %v", name, err)
		}
		return t, nil
	}
	var (
		j   queue.Job
		err error
	)
	if j.ID, err = text(hdrID, true); err != nil {
		return nil, err
	}
	if j.Group, err = text(hdrGroup, true); err != nil {
		return nil, err
	}
	if j.Group != groupName || !strings.HasSuffix(subject, "."+token) {
		return nil, bad("header %s names group %q, not the subject's group %q", hdrGroup, j.Group, groupName)
	}
	if j.Kind, err = text(hdrKind, false); err != nil {
		return nil, err
	}
	if j.CreatedAt, err = stamp(hdrCreated, true); err != nil {
		return nil, err
	}
	if j.RunAt, err = stamp(hdrRunAt, false); err != nil {
		return nil, err
	}
	j.Trace = decodeTrace(h.Get(hdrTrace))
	j.Payload = data
	return &j, nil
}

// deadRecord is the body of a message in the dead-letter stream.
type deadRecord struct {
	ID        string               `json:"id"`
	Group     string               `json:"group"`
	Kind      string               `json:"kind,omitempty"`
	Payload   []byte               `json:"payload,omitempty"`
	Attempt   int                  `json:"attempt"`
	RunAt     time.Time            `json:"run_at,omitzero"`
	CreatedAt time.Time            `json:"created_at,omitzero"`
	Errors    []queue.AttemptError `json:"errors,omitempty"`
	Trace     map[string]string    `json:"trace,omitempty"`
	DeadAt    time.Time            `json:"dead_at"`
	// Sequence is the job's sequence number in the work or broadcast
	// stream, for operators.
	Sequence uint64 `json:"sequence"`
}

func (r *deadRecord) job() *queue.Job {
	return &queue.Job{
		ID: r.ID, Group: r.Group, Kind: r.Kind, Payload: r.Payload, Attempt: r.Attempt,
		RunAt: r.RunAt, CreatedAt: r.CreatedAt, Errors: r.Errors, Trace: r.Trace,
	}
}

// encodeDead builds the dead-letter message of job, whose message had
// stream sequence seq in its stream (so that a second dead-lettering of the
// same message, after a crash between the two steps, is dropped as a
// duplicate).
func encodeDead(stream, token, source string, seq uint64, j *queue.Job, at time.Time) (*nats.Msg, error) {
	body, err := json.Marshal(&deadRecord{
		ID: j.ID, Group: j.Group, Kind: j.Kind, Payload: j.Payload, Attempt: j.Attempt,
		RunAt: j.RunAt, CreatedAt: j.CreatedAt, Errors: j.Errors, Trace: j.Trace, DeadAt: at, Sequence: seq,
	})
	if err != nil {
		return nil, fmt.Errorf("natsqueue: encode dead job %q: %w", j.ID, err)
	}
	h := nats.Header{
		hdrFormat:             {formatV1},
		hdrID:                 {url.PathEscape(j.ID)},
		hdrGroup:              {url.PathEscape(j.Group)},
		jetstream.MsgIDHeader: {fmt.Sprintf("%s:%s:%d", source, token, seq)},
	}
	return &nats.Msg{Subject: deadSubject(stream, token), Header: h, Data: body}, nil
}
