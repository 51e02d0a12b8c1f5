package riverqueue

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// River restricts queue names to at most 64 characters of lower-case letters
// and digits, in runs separated by single underscores or hyphens (River's
// validateQueueName). Outhook's worker group names are freer ("hook/group",
// dots, upper case), so each group gets a derived name: a readable, sanitized
// prefix of the group name followed by a hash of the whole name. The hash
// keeps two groups that sanitize alike apart; being a pure function of the
// group name, the derived name is the same on every node.

// Prefixes of derived River queue names.
const (
	// workQueuePrefix starts the queue of a work-queue group, shared by all
	// nodes.
	workQueuePrefix = "oh_"
	// broadcastQueuePrefix starts the per-node queues of a broadcast group.
	broadcastQueuePrefix = "ohb_"
	// homeQueue is a queue no job is ever put in. River needs one queue to
	// build a client that works jobs; the groups' queues are added to it
	// as they are subscribed.
	homeQueue = "oh_home"
)

// workQueueName returns the River queue of a work-queue group:
// "oh_<sanitized group, ≤40>_<10 hex digits>", at most 54 characters.
func workQueueName(group string) string {
	return workQueuePrefix + sanitize(group, 40) + "_" + shortHash(group, 10)
}

// broadcastPrefix returns the common prefix of the per-node queues of a
// broadcast group: "ohb_<sanitized group, ≤28>_<10 hex digits>_".
func broadcastPrefix(group string) string {
	return broadcastQueuePrefix + sanitize(group, 28) + "_" + shortHash(group, 10) + "_"
}

// broadcastQueueName returns the queue of a broadcast group on one node: the
// group's prefix and 12 hex digits of the node ID, at most 56 characters.
func broadcastQueueName(group, node string) string {
	return broadcastPrefix(group) + shortHash(node, 12)
}

// shortHash returns the first n hex digits of the SHA-256 of s.
func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// sanitize lower-cases s, keeps its ASCII letters and digits, turns every
// run of other bytes into one underscore, trims underscores at both ends and
// cuts the result to at most max bytes. It returns "g" when nothing is left.
func sanitize(s string, max int) string {
	var b strings.Builder
	b.Grow(min(len(s), max))
	pendingSep := false
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			pendingSep = b.Len() > 0
			continue
		}
		if pendingSep {
			if b.Len()+2 > max {
				break
			}
			b.WriteByte('_')
			pendingSep = false
		}
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "g"
	}
	return b.String()
}
