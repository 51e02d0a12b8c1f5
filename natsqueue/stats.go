package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/outhook/outhook/queue"
)

var _ queue.StatsReporter = (*Queue)(nil)

// Stats implements [queue.StatsReporter] from what JetStream counts, with
// a few requests whatever the number of jobs: one stream info of the work
// stream (with its per-subject counts, one subject per worker group), one
// consumer info per group that has jobs, up to two direct gets and one
// ledger read per group for the oldest times, one consumer info per
// broadcast group of this node, and one stream info of the dead-letter
// stream. Ask it at metric intervals, not per job.
//
// What it counts, and how exactly:
//
//   - Work jobs of every group, subscribed on this node or not (the work
//     stream holds every node's unfinished jobs), and the broadcast jobs
//     of this node's broadcast groups once their consumers exist (after
//     Start).
//   - Ready: the messages a group's consumer has not delivered yet
//     (NumPending), and every message of a group without a consumer. A job
//     enqueued with a future RunAt counts as ready until a node first
//     receives it: JetStream cannot delay a first delivery (see RunAt
//     above), and telling it apart would mean reading every undelivered
//     message. Once received it is handed back until its RunAt, and counts
//     as delayed.
//   - Running: the delivered, unacknowledged messages (NumAckPending) that
//     this node's handlers hold.
//   - Delayed: the other unacknowledged messages: jobs waiting for a
//     retry's or a RunAt's NakWithDelay, but also, with several nodes, the
//     runs under way on the other nodes, which the server does not tell
//     from a delay (a message handed back at once is counted here too
//     until it is delivered again, a moment later).
//   - Dead: the messages of the dead-letter stream, every node's.
//   - OldestReady: the earliest CreatedAt of each group's first
//     undelivered message (the stream's order is that of Enqueue, so this
//     is the group's oldest ready job unless a caller set CreatedAt
//     itself).
//   - OldestDelayed: the CreatedAt of a group's oldest unacknowledged
//     message when the run ledger says it waits for a later RunAt. When
//     that message is running instead, the group's delayed jobs behind it
//     are not looked at: OldestDelayed may then be later than the truth, or
//     zero.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	if err := ctx.Err(); err != nil {
		return queue.Stats{}, err
	}
	ctx, cancel := q.withTimeout(ctx)
	defer cancel()
	now := time.Now()

	q.mu.Lock()
	byToken := make(map[string]*group, len(q.groups))
	var bcast []*group
	for _, g := range q.groups {
		if g.broadcast {
			bcast = append(bcast, g)
		} else {
			byToken[g.token] = g
		}
	}
	q.mu.Unlock()
	var lg ledger
	if q.infraDone.Load() {
		lg = q.ledger
	}

	var st queue.Stats
	s, err := q.js.Stream(ctx, q.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		// Nothing was ever enqueued.
	case err != nil:
		return queue.Stats{}, fmt.Errorf("natsqueue: stats: %w", err)
	default:
		prefix := q.cfg.Stream + ".work."
		si, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+"*"))
		if err != nil {
			return queue.Stats{}, fmt.Errorf("natsqueue: stats: %w", err)
		}
		for subject, n := range si.State.Subjects {
			if n == 0 {
				continue
			}
			token := strings.TrimPrefix(subject, prefix)
			var running int64
			if g := byToken[token]; g != nil {
				running = g.running.Load()
			}
			c := groupCounter{
				s: s, subject: subject, consumer: "w_" + token, key: token,
				n: int(n), first: si.State.FirstSeq, running: running, ledger: lg,
			}
			if err := c.count(ctx, &st, now); err != nil {
				return queue.Stats{}, fmt.Errorf("natsqueue: stats: %w", err)
			}
		}
	}

	if len(bcast) > 0 {
		bs, err := q.js.Stream(ctx, bcastStreamName(q.cfg.Stream))
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
		case err != nil:
			return queue.Stats{}, fmt.Errorf("natsqueue: stats: %w", err)
		default:
			for _, g := range bcast {
				c := groupCounter{
					s: bs, subject: g.subject, consumer: g.consumer, key: g.token,
					broadcast: true, running: g.running.Load(), ledger: g.mem,
				}
				if err := c.count(ctx, &st, now); err != nil {
					return queue.Stats{}, fmt.Errorf("natsqueue: stats: %w", err)
				}
			}
		}
	}

	ds, err := q.js.Stream(ctx, deadStreamName(q.cfg.Stream))
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return queue.Stats{}, fmt.Errorf("natsqueue: stats: dead jobs: %w", err)
	default:
		st.Dead = int(ds.CachedInfo().State.Msgs)
	}
	return st, nil
}

// groupCounter counts the jobs of one worker group for Stats.
type groupCounter struct {
	s        jetstream.Stream
	subject  string
	consumer string
	key      string // the group's token, which prefixes its ledger keys
	// n is how many messages the stream holds on subject and first its
	// first sequence: used when the consumer does not exist (work groups).
	n         int
	first     uint64
	broadcast bool
	running   int64  // this node's runs of the group
	ledger    ledger // nil when unknown
}

func (c *groupCounter) count(ctx context.Context, st *queue.Stats, now time.Time) error {
	cons, err := c.s.Consumer(ctx, c.consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if c.broadcast {
			return nil // not started: nothing is delivered to this node yet
		}
		// No node has subscribed the group since the stream was made:
		// every message waits for its first delivery.
		st.Ready += c.n
		return c.oldest(ctx, &st.OldestReady, c.first, false, now)
	}
	if err != nil {
		return err
	}
	ci := cons.CachedInfo()
	pending, acks := int(ci.NumPending), ci.NumAckPending
	running := min(int(c.running), acks)
	st.Ready += pending
	st.Running += running
	st.Delayed += acks - running
	if pending > 0 {
		if err := c.oldest(ctx, &st.OldestReady, ci.Delivered.Stream+1, false, now); err != nil {
			return err
		}
	}
	if acks > running && c.ledger != nil {
		if err := c.oldest(ctx, &st.OldestDelayed, ci.AckFloor.Stream+1, true, now); err != nil {
			return err
		}
	}
	return nil
}

// oldest lowers *t to the CreatedAt of the group's first message from
// sequence from on, if there is one (and, when delayed is set, if the
// ledger says it waits for a later RunAt).
func (c *groupCounter) oldest(ctx context.Context, t *time.Time, from uint64, delayed bool, now time.Time) error {
	m, err := c.s.GetMsg(ctx, max(from, 1), jetstream.WithGetMsgSubject(c.subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // finished meanwhile
	}
	if err != nil {
		return err
	}
	if delayed {
		e, err := c.ledger.get(ctx, ledgerKey(c.key, m.Sequence))
		if err != nil {
			return err
		}
		if e == nil || !e.RunAt.After(now) {
			return nil // running, or due: not known to be delayed
		}
	}
	created, err := time.Parse(time.RFC3339Nano, m.Header.Get(hdrCreated))
	if err != nil {
		return nil // not a job: it will be dead-lettered
	}
	if t.IsZero() || created.Before(*t) {
		*t = created
	}
	return nil
}
