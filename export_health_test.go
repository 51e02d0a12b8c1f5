package outhook

import "time"

// SetHealthClock replaces the clock of a client's endpoint health, for
// tests that move time forward by days. Call it before any delivery ends.
func SetHealthClock(c *Client, now func() time.Time) { c.health.now = now }
