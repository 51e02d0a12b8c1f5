package riverqueue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// maintErrEvery is how often a failing maintenance task logs its error.
const maintErrEvery = 30 * time.Second

// maintWarn logs a maintenance failure, at most once per maintErrEvery per
// task, so that a database that is down does not flood the log. Called from
// the maintenance goroutine only.
func (q *Queue[TTx]) maintWarn(ctx context.Context, task string, err error) {
	if ctx.Err() != nil {
		return // stopping
	}
	now := time.Now()
	if last, ok := q.maintLogged[task]; ok && now.Sub(last) < maintErrEvery {
		return
	}
	q.maintLogged[task] = now
	q.log.Warn("riverqueue: "+task, "error", err)
}

// maintain runs the node's periodic work until ctx ends: refreshing its
// broadcast queues, deleting the broadcast jobs of nodes gone silent, and,
// with Config.RescueInterval, taking back jobs whose lease has expired.
func (q *Queue[TTx]) maintain(ctx context.Context) {
	defer q.maintWG.Done()
	beat := time.NewTicker(q.cfg.NodeTimeout / 3)
	defer beat.Stop()
	var rescue <-chan time.Time
	if q.cfg.RescueInterval > 0 {
		t := time.NewTicker(q.cfg.RescueInterval)
		defer t.Stop()
		rescue = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			q.heartbeat(ctx)
			q.sweepBroadcast(ctx)
		case <-rescue:
			q.rescue(ctx)
		}
	}
}

// heartbeat refreshes the updated_at of this node's broadcast queues, by
// which other nodes know it is alive. River's QueueUpdate sets it to now even
// when nothing else changes.
func (q *Queue[TTx]) heartbeat(ctx context.Context) {
	for _, g := range *q.groups.Load() {
		if !g.opts.Broadcast {
			continue
		}
		_, err := q.client.QueueUpdate(ctx, g.queue, &river.QueueUpdateParams{})
		if err != nil && !errors.Is(err, rivertype.ErrNotFound) {
			q.maintWarn(ctx, "refresh broadcast queue "+g.queue, err)
		}
	}
}

// sweepBroadcast deletes the waiting broadcast jobs addressed to nodes that
// have not refreshed their queues within NodeTimeout: those nodes are gone,
// and their jobs would otherwise wait forever (and keep WaitIdle waiting).
// Running ones are left to the rescuer, and swept on a later round.
func (q *Queue[TTx]) sweepBroadcast(ctx context.Context) {
	waiting := []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateRetryable, rivertype.JobStateScheduled}
	res, err := q.client.JobList(ctx, river.NewJobListParams().
		Kinds(jobKind).
		States(waiting...).
		Where("queue LIKE @prefix", river.NamedArgs{"prefix": broadcastQueuePrefix + "%"}).
		First(1000))
	if err != nil {
		q.maintWarn(ctx, "list broadcast jobs", err)
		return
	}
	if len(res.Jobs) == 0 {
		return
	}
	queues, err := q.listQueues(ctx)
	if err != nil {
		q.maintWarn(ctx, "list River queues", err)
		return
	}
	horizon := time.Now().Add(-q.cfg.NodeTimeout)
	live := map[string]bool{}
	for _, rq := range queues {
		if rq.UpdatedAt.After(horizon) {
			live[rq.Name] = true
		}
	}
	for _, g := range *q.groups.Load() {
		live[g.queue] = true
	}
	var stale []string
	seen := map[string]bool{}
	for _, row := range res.Jobs {
		if !strings.HasPrefix(row.Queue, broadcastQueuePrefix) || live[row.Queue] || seen[row.Queue] {
			continue
		}
		seen[row.Queue] = true
		stale = append(stale, row.Queue)
	}
	if len(stale) == 0 {
		return
	}
	del, err := q.client.JobDeleteMany(ctx, river.NewJobDeleteManyParams().
		Kinds(jobKind).Queues(stale...).States(waiting...).First(10_000))
	if err != nil {
		q.maintWarn(ctx, "delete broadcast jobs of silent nodes", err)
		return
	}
	q.log.Info("riverqueue: deleted broadcast jobs of silent nodes", "queues", stale, "jobs", len(del.Jobs))
}

// rescueText is the error recorded for a run whose lease expired.
const rescueText = "riverqueue: lease expired: the node running the job went silent"

// rescue takes back the running outhook jobs whose lease has expired, as
// River's rescuer does (same driver operations: JobGetStuck, then
// JobRescueMany, which only touches rows still running since before the
// horizon), but on every node and every RescueInterval, and straight to
// available. The crashed run keeps its attempt number and gets an error.
func (q *Queue[TTx]) rescue(ctx context.Context) {
	exec := q.be.Driver.GetExecutor()
	now := time.Now()
	// No lease is shorter than two margins: fetch from there, then check
	// each job's own lease.
	horizon := now.Add(-2 * q.cfg.LeaseMargin)
	var afterID int64
	for {
		rows, err := exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{
			AfterID: afterID, Max: 500, Schema: q.cfg.Schema, StuckHorizon: horizon,
		})
		if err != nil {
			q.maintWarn(ctx, "list jobs to rescue", err)
			return
		}
		p := &riverdriver.JobRescueManyParams{Schema: q.cfg.Schema, StuckHorizon: horizon}
		for _, row := range rows {
			afterID = row.ID
			if row.Kind != jobKind || row.AttemptedAt == nil {
				continue
			}
			lease := q.lease(&jobArgs{})
			if args, err := decodeArgs(row); err == nil {
				lease = q.lease(args)
			}
			if now.Sub(*row.AttemptedAt) < lease {
				continue
			}
			e, _ := json.Marshal(rivertype.AttemptError{At: now, Attempt: max(row.Attempt, 0), Error: rescueText})
			p.ID = append(p.ID, row.ID)
			p.Error = append(p.Error, e)
			p.FinalizedAt = append(p.FinalizedAt, nil)
			p.ScheduledAt = append(p.ScheduledAt, now)
			p.State = append(p.State, string(rivertype.JobStateAvailable))
		}
		if len(p.ID) > 0 {
			if _, err := exec.JobRescueMany(ctx, p); err != nil {
				q.maintWarn(ctx, "rescue jobs", err)
				return
			}
			q.log.Info("riverqueue: rescued jobs whose lease expired", "jobs", len(p.ID))
		}
		if len(rows) < 500 {
			return
		}
	}
}
