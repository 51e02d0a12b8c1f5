package faultserver

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
)

// Plan decides the faults of the requests to one endpoint: the Script
// first, one fault per request in order; then a fault drawn at random from
// Mix by weight; or Default when Mix is empty.
type Plan struct {
	// Script lists the faults of the first requests, in order.
	Script []Fault
	// Mix is drawn from, by weight, once the script is used up.
	Mix []Weighted
	// Default is the fault once the script is used up, when Mix is empty.
	// The zero Fault answers 200 OK.
	Default Fault
}

// Weighted is a fault of a Mix and its weight: it is drawn with
// probability Weight / (the sum of the mix's weights).
type Weighted struct {
	Weight int
	Fault  Fault
}

// Weigh returns f with weight w, for a Mix.
func Weigh(w int, f Fault) Weighted { return Weighted{Weight: w, Fault: f} }

// validate names what is wrong with p, the plan at field.
func (p *Plan) validate(field string) error {
	for i, f := range p.Script {
		if err := f.validate(fmt.Sprintf("%s.Script[%d]", field, i)); err != nil {
			return err
		}
	}
	total := 0
	for i, w := range p.Mix {
		if w.Weight < 0 {
			return fmt.Errorf("faultserver: %s.Mix[%d].Weight is negative (%d)", field, i, w.Weight)
		}
		if err := w.Fault.validate(fmt.Sprintf("%s.Mix[%d].Fault", field, i)); err != nil {
			return err
		}
		total += w.Weight
	}
	if len(p.Mix) > 0 && total == 0 {
		return fmt.Errorf("faultserver: %s.Mix has no positive weight", field)
	}
	return p.Default.validate(field + ".Default")
}

// planState is a plan in use: where its script stands and its random
// stream.
type planState struct {
	plan  Plan
	next  int // index of the next script entry
	total int // sum of the mix's weights
	rng   *rand.Rand
}

// newPlanState starts p. Each plan draws from a PCG stream of its own,
// seeded with seed and the plan's key (the path, "" for the server's
// plan), so that a plan's draws depend only on the seed and the order of
// its own requests, not on how requests to other paths interleave.
func newPlanState(p Plan, seed uint64, key string) *planState {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key)) // never fails
	// Copies: the caller may change its slices afterwards.
	p.Script, p.Mix = slices.Clone(p.Script), slices.Clone(p.Mix)
	ps := &planState{plan: p, rng: rand.New(rand.NewPCG(seed, h.Sum64()))}
	for _, w := range p.Mix {
		ps.total += w.Weight
	}
	return ps
}

// pick returns the fault of the next request.
func (ps *planState) pick() Fault {
	if ps.next < len(ps.plan.Script) {
		f := ps.plan.Script[ps.next]
		ps.next++
		return f
	}
	if ps.total == 0 {
		return ps.plan.Default
	}
	n := ps.rng.IntN(ps.total)
	for _, w := range ps.plan.Mix {
		if n < w.Weight {
			return w.Fault
		}
		n -= w.Weight
	}
	panic("unreachable: weights sum to total")
}
