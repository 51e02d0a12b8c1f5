package riverqueue

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

func TestPayloadRoundTrip(t *testing.T) {
	for name, p := range map[string][]byte{
		"nil":          nil,
		"empty":        {},
		"json":         []byte(`{"b":1,  "a":[2, 3]}`),
		"text":         []byte("dlv_123"),
		"nul":          []byte("a\x00b"),
		"invalid utf8": {0xff, 0xfe, 'x'},
	} {
		t.Run(name, func(t *testing.T) {
			var a jobArgs
			a.Group, a.ID = "g", "id"
			a.setPayload(p)
			enc, err := json.Marshal(&a)
			require.NoError(t, err)
			row := &rivertype.JobRow{EncodedArgs: enc}
			got, err := decodeArgs(row)
			require.NoError(t, err)
			if p == nil {
				require.Nil(t, got.payload())
				return
			}
			require.NotNil(t, got.payload())
			require.Equal(t, p, got.payload())
		})
	}
}

func TestTraceArgs(t *testing.T) {
	// No trace: no bytes in the args, as before the field existed.
	enc, err := json.Marshal(&jobArgs{Group: "g", ID: "id"})
	require.NoError(t, err)
	require.NotContains(t, string(enc), "trace")

	// Rows written before the field existed decode with a nil Trace.
	old := `{"group":"g","id":"id","kind":"hook","payload":"{}","created_at":"2025-01-02T03:04:05Z","timeout_ms":60000}`
	a, err := decodeArgs(&rivertype.JobRow{EncodedArgs: []byte(old)})
	require.NoError(t, err)
	require.Nil(t, a.Trace)
	require.Nil(t, toJob(&rivertype.JobRow{}, a).Trace)

	// A trace context round-trips, and reaches the job.
	tr := map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
	}
	enc, err = json.Marshal(&jobArgs{Group: "g", ID: "id", Trace: tr})
	require.NoError(t, err)
	a, err = decodeArgs(&rivertype.JobRow{EncodedArgs: enc})
	require.NoError(t, err)
	require.Equal(t, tr, toJob(&rivertype.JobRow{}, a).Trace)
}

func TestDecodeArgsPoisoned(t *testing.T) {
	for name, args := range map[string]string{
		"not an object":  `[1, 2]`,
		"group a number": `{"group": 5, "id": "x"}`,
		"no group":       `{"id": "x"}`,
		"two payloads":   `{"group": "g", "payload": "a", "payload_b64": "YQ=="}`,
	} {
		_, err := decodeArgs(&rivertype.JobRow{EncodedArgs: []byte(args)})
		require.ErrorContains(t, err, "poisoned job", name)
	}
}

func TestAttemptErrors(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	row := &rivertype.JobRow{
		State: rivertype.JobStateCancelled,
		Errors: []rivertype.AttemptError{
			{Attempt: 1, At: at, Error: "fail 1"},
			{Attempt: 2, At: at.Add(time.Second), Error: noErrorText},
			{Attempt: 3, At: at.Add(2 * time.Second), Error: "Stuck job rescued by JobRescuer"},
			{Attempt: 4, At: at.Add(3 * time.Second), Error: cancelPrefix + "gave up"},
		},
	}
	require.Equal(t, []queue.AttemptError{
		{Attempt: 1, At: at, Error: "fail 1"},
		{Attempt: 3, At: at.Add(2 * time.Second), Error: "Stuck job rescued by JobRescuer"},
		{Attempt: 4, At: at.Add(3 * time.Second), Error: "gave up"},
	}, attemptErrors(row))

	row.Errors = []rivertype.AttemptError{{Attempt: 1, At: at, Error: cancelPrefix + noErrorText}}
	require.Nil(t, attemptErrors(row), "Dead without an error")

	row.State = rivertype.JobStateRetryable
	row.Errors = []rivertype.AttemptError{{Attempt: 1, At: at, Error: cancelPrefix + "x"}}
	require.Equal(t, cancelPrefix+"x", attemptErrors(row)[0].Error, "the prefix is River's only on a cancelled job")
}

func TestCheckJob(t *testing.T) {
	require.ErrorContains(t, checkJob(0, nil), "job 0 is nil")
	require.ErrorContains(t, checkJob(1, &queue.Job{ID: "x"}), "has no group")
	require.ErrorContains(t, checkJob(2, &queue.Job{Group: "g", ID: "a\x00b"}), "id")
	require.ErrorContains(t, checkJob(3, &queue.Job{Group: "g\xff"}), "group")
	require.ErrorContains(t, checkJob(5, &queue.Job{Group: "g", Trace: map[string]string{"traceparent": "a\x00"}}), "trace entry")
	require.ErrorContains(t, checkJob(6, &queue.Job{Group: "g", Trace: map[string]string{"\xff": "x"}}), "trace entry")
	require.NoError(t, checkJob(4, &queue.Job{Group: "g"}))
	require.NoError(t, checkJob(7, &queue.Job{Group: "g", Trace: map[string]string{"traceparent": "00-ab-cd-01"}}))
}

func TestConfigResolve(t *testing.T) {
	c, err := Config{}.resolve()
	require.NoError(t, err)
	require.Equal(t, DefaultMaxWorkers, c.MaxWorkers)
	require.Equal(t, DefaultLeaseMargin, c.LeaseMargin)
	require.Equal(t, DefaultFetchCooldown, c.FetchCooldown)
	require.NotEmpty(t, c.NodeID)
	require.NotNil(t, c.Logger)

	for name, bad := range map[string]Config{
		"MaxWorkers":         {MaxWorkers: -1},
		"10000":              {MaxWorkers: 10_001},
		"GroupMaxWorkers":    {GroupMaxWorkers: map[string]int{"g": 0}},
		"LeaseMargin":        {LeaseMargin: -time.Second},
		"FetchCooldown":      {FetchCooldown: time.Microsecond},
		"FetchPollInterval":  {FetchCooldown: time.Second, FetchPollInterval: time.Millisecond},
		"DeadRetention":      {DeadRetention: -2},
		"NodeID":             {NodeID: "a\x00"},
		"EnqueueMaxBatch":    {EnqueueMaxBatch: -5},
		"CompletedRetention": {CompletedRetention: -time.Hour},
	} {
		_, err := bad.resolve()
		require.ErrorContains(t, err, name, name)
	}
	c, err = Config{DeadRetention: -1, CompletedRetention: -1}.resolve()
	require.NoError(t, err, "-1 keeps jobs forever")
	require.Equal(t, time.Duration(-1), c.DeadRetention)
}

func TestClientID(t *testing.T) {
	require.Equal(t, "outhook-n1", clientID("n1"))
	long := clientID(string(make([]byte, 300)))
	require.Len(t, long, 100)
}
