package natsqueue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

func TestTraceHeader(t *testing.T) {
	const group = "g.1"
	token := groupToken(group)
	subject := workSubject("S", token)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

	// No trace: no header, and a nil Trace back.
	m := encodeJob(subject, token, &queue.Job{ID: "a", Group: group, CreatedAt: created})
	require.NotContains(t, m.Header, hdrTrace)
	j, err := decodeJob(group, token, subject, m.Header, m.Data)
	require.NoError(t, err)
	require.Nil(t, j.Trace)

	// Values a MIME header cannot carry as they are survive the trip.
	tr := map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
		"baggage":     "k=v%20w;p=1 & more\r\nInjected: yes",
		"Odd Key:":    "",
	}
	m = encodeJob(subject, token, &queue.Job{ID: "a", Group: group, CreatedAt: created, Trace: tr})
	require.Len(t, m.Header.Values(hdrTrace), 1)
	require.NotContains(t, m.Header.Get(hdrTrace), "\n")
	require.NotContains(t, m.Header, "Injected")
	j, err = decodeJob(group, token, subject, m.Header, m.Data)
	require.NoError(t, err)
	require.Equal(t, tr, j.Trace)

	// A header that does not decode is dropped, not the job.
	m.Header.Set(hdrTrace, "traceparent=%zz")
	j, err = decodeJob(group, token, subject, m.Header, m.Data)
	require.NoError(t, err)
	require.Nil(t, j.Trace)
	require.Equal(t, "a", j.ID)

	// Dead records keep it.
	dm, err := encodeDead("S", token, "S", 7, &queue.Job{ID: "a", Group: group, Trace: tr}, created)
	require.NoError(t, err)
	require.Contains(t, string(dm.Data), `"trace"`)
	dm, err = encodeDead("S", token, "S", 8, &queue.Job{ID: "a", Group: group}, created)
	require.NoError(t, err)
	require.NotContains(t, string(dm.Data), `"trace"`)
}
