package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outhook/outhook"
)

// BenchEvent is the payload every row sends. Its numbers travel as
// fixed-width strings, so every payload of a run has the same size: the
// -payload flag sets it, padding included. EmitNs comes before the padding,
// so the receiver finds it near the start of even a 100 KB body.
type BenchEvent struct {
	Seq    string `json:"seq" validate:"required" description:"Sequence number of the event in its phase"`
	EmitNs string `json:"emitNs" validate:"required,len=19" description:"Emit time: nanoseconds since the run started, 19 digits"`
	Pad    string `json:"pad" description:"Padding up to the payload size"`
}

// benchHook is the hook every outhook row emits; the event is
// "bench.bench.event".
var benchHook = outhook.MustNewHook[BenchEvent]("bench.event")

const (
	benchPlugin = "bench"
	benchEvent  = benchPlugin + ".bench.event"
	seqWidth    = 12
	emitWidth   = 19
)

// event is one event of a phase: its number and its emit time.
type event struct {
	seq    int64
	emitNs int64
}

// payloadShape makes payloads of one size.
type payloadShape struct {
	size int    // bytes of the encoded payload
	pad  string // shared by every payload of the size
}

// newPayloadShape returns the shape of payloads of size bytes; sizes below
// the smallest payload get the smallest.
func newPayloadShape(size int) payloadShape {
	empty, err := json.Marshal(BenchEvent{Seq: strings.Repeat("0", seqWidth), EmitNs: strings.Repeat("0", emitWidth)})
	if err != nil {
		panic(err)
	}
	n := max(size-len(empty), 0)
	var b strings.Builder
	b.Grow(n)
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range n {
		b.WriteByte(letters[i%len(letters)])
	}
	return payloadShape{size: len(empty) + n, pad: b.String()}
}

// event returns the payload of ev, as outhook and the hand-rolled sender
// take it.
func (s payloadShape) event(ev event) BenchEvent {
	return BenchEvent{Seq: fixed(ev.seq, seqWidth), EmitNs: fixed(ev.emitNs, emitWidth), Pad: s.pad}
}

// fixed formats v in width digits, zero-padded.
func fixed(v int64, width int) string {
	var buf [24]byte
	return string(appendFixed(buf[:0], v, width))
}

func appendFixed(dst []byte, v int64, width int) []byte {
	s := strconv.AppendInt(make([]byte, 0, 20), v, 10)
	for range width - len(s) {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// appendEnvelope appends the body outhook's webhook deliverer sends, the
// Standard Webhooks envelope, around an encoded payload: the ceiling and the
// hand-rolled sender send the same bytes.
func appendEnvelope(dst []byte, eventID string, at time.Time, payload []byte) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, eventID...)
	dst = append(dst, `","timestamp":"`...)
	dst = at.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","data":`...)
	dst = append(dst, payload...)
	return append(dst, '}')
}

// appendPayload appends the encoded payload of ev by hand: the same bytes
// json.Marshal makes of s.event(ev), without the encoder.
func (s payloadShape) appendPayload(dst []byte, ev event) []byte {
	dst = append(dst, `{"seq":"`...)
	dst = appendFixed(dst, ev.seq, seqWidth)
	dst = append(dst, `","emitNs":"`...)
	dst = appendFixed(dst, ev.emitNs, emitWidth)
	dst = append(dst, `","pad":"`...)
	dst = append(dst, s.pad...)
	return append(dst, `"}`...)
}

// sizeLabel names a payload size: "300 B", "10 KB".
func sizeLabel(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
