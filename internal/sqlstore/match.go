package sqlstore

import (
	"context"
	"slices"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/ident"
)

// MatchSubscriptions implements outhook.Store: every subscription, enabled
// or not, whose Events select eventID, oldest first.
//
// It reads the subscription version (unless MaxSubscriptionStaleness lets
// it skip the read), answers from the cache when the version is the one the
// cache was built at, and otherwise loads the subscriptions that name
// eventID exactly (an indexed lookup) and those with patterns (loaded once
// per version and matched here), and caches the answer. The slices and
// subscriptions it returns are shared between callers, as outhook.Store
// allows: they must not be modified.
func (s *Store) MatchSubscriptions(ctx context.Context, eventID string) ([]*outhook.Subscription, error) {
	const op = "match subscriptions"
	version, err := s.subscriptionVersion(ctx, false)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	s.mu.RLock()
	if s.version == version {
		if cached, ok := s.matches[eventID]; ok {
			s.mu.RUnlock()
			return cached, nil
		}
	}
	patterns, havePatterns := s.patterns, s.patternsOK && s.version == version
	s.mu.RUnlock()

	if !havePatterns {
		if patterns, err = s.loadPatterns(ctx); err != nil {
			return nil, s.fail(ctx, op, err)
		}
	}
	exact, err := s.loadExact(ctx, eventID)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	out := exact
	var seen map[string]bool
	for _, p := range patterns {
		if !ident.Match(p.pattern, eventID) {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(out)+1)
			for _, sub := range out {
				seen[sub.ID] = true
			}
		}
		if !seen[p.sub.ID] {
			seen[p.sub.ID] = true
			out = append(out, p.sub)
		}
	}
	if out == nil {
		out = []*outhook.Subscription{}
	}
	slices.SortFunc(out, bySubscriptionAge)

	// Everything above was read after the version: it is at least as new as
	// the version it is cached under. A change committed meanwhile has
	// bumped the version, so the next call reloads.
	s.mu.Lock()
	if s.version == version {
		if !havePatterns {
			s.patterns, s.patternsOK = patterns, true
		}
		if len(s.matches) >= maxCachedEvents {
			clear(s.matches)
		}
		s.matches[eventID] = out
	}
	s.mu.Unlock()
	return out, nil
}

// subscriptionVersion returns the subscription version, read from the
// database unless the cache was checked within the staleness window (and
// strict is false), and drops the cache when the version moved. The read
// is shared by concurrent calls, and made after they all began.
func (s *Store) subscriptionVersion(ctx context.Context, strict bool) (int64, error) {
	now := time.Now()
	if s.staleness > 0 && !strict {
		s.mu.RLock()
		v, fresh := s.version, s.version >= 0 && now.Sub(s.checkedAt) < s.staleness
		s.mu.RUnlock()
		if fresh {
			return v, nil
		}
	}
	var v int64
	if err := s.versions.Do(ctx, &v); err != nil {
		return 0, err
	}
	if s.staleness == 0 {
		s.mu.RLock()
		same := s.version == v
		s.mu.RUnlock()
		if same {
			return v, nil
		}
	}
	s.mu.Lock()
	if s.version != v {
		s.resetLocked()
		s.version = v
	}
	s.checkedAt = now
	s.mu.Unlock()
	return v, nil
}

// invalidate drops the routing cache after a change made through this
// store, so that the next call reads the version again.
func (s *Store) invalidate() {
	s.mu.Lock()
	s.resetLocked()
	s.mu.Unlock()
}

func (s *Store) resetLocked() {
	s.version = -1
	s.checkedAt = time.Time{}
	clear(s.matches)
	clear(s.subs)
	s.patterns, s.patternsOK = nil, false
}

func (s *Store) loadExact(ctx context.Context, eventID string) ([]*outhook.Subscription, error) {
	if !storable(eventID) {
		return nil, nil // no stored selector names it (patterns may match it)
	}
	rows, err := s.db.QueryContext(ctx, s.q.exactMatches, eventID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*outhook.Subscription
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

func (s *Store) loadPatterns(ctx context.Context) ([]patternSub, error) {
	rows, err := s.db.QueryContext(ctx, s.q.patternMatches)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []patternSub{}
	subs := map[string]*outhook.Subscription{} // one value per subscription
	for rows.Next() {
		var pattern string
		sub, err := scanSubscription(rows, &pattern)
		if err != nil {
			return nil, err
		}
		if prev, ok := subs[sub.ID]; ok {
			sub = prev
		} else {
			subs[sub.ID] = sub
		}
		out = append(out, patternSub{pattern: pattern, sub: sub})
	}
	return out, rows.Err()
}
