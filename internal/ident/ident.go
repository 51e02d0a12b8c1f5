// Package ident checks outhook identifiers and makes new ones.
package ident

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Check reports why id is not a dot-separated list of segments made of
// [a-zA-Z0-9_-], or "" when it is well formed.
func Check(id string) string {
	if id == "" {
		return "is empty"
	}
	if len(id) > 255 {
		return "is longer than 255 characters"
	}
	segStart := 0
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c == '.':
			if i == segStart {
				return fmt.Sprintf("has an empty segment at byte %d", i)
			}
			segStart = i + 1
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return fmt.Sprintf("has invalid character %q at byte %d (allowed: letters, digits, '_', '-' and '.' between segments)", rune(c), i)
		}
	}
	if segStart == len(id) {
		return "ends with '.'"
	}
	return ""
}

// CheckPattern is Check for subscription event patterns, which may use "*"
// for exactly one segment and a final "**" for one or more segments.
func CheckPattern(p string) string {
	if p == "" {
		return "is empty"
	}
	segs := strings.Split(p, ".")
	for i, s := range segs {
		switch s {
		case "*":
			continue
		case "**":
			if i != len(segs)-1 {
				return `uses "**" before the last segment`
			}
			continue
		}
		if strings.Contains(s, "*") {
			return fmt.Sprintf("segment %q mixes '*' with other characters", s)
		}
		if why := Check(s); why != "" {
			return fmt.Sprintf("segment %q %s", s, why)
		}
	}
	return ""
}

// IsPattern reports whether p contains a wildcard.
func IsPattern(p string) bool { return strings.Contains(p, "*") }

// Match reports whether the event ID id matches pattern p (see CheckPattern).
// Both are assumed well formed.
func Match(p, id string) bool {
	for {
		pseg, prest, pmore := strings.Cut(p, ".")
		if pseg == "**" {
			return id != ""
		}
		iseg, irest, imore := strings.Cut(id, ".")
		if iseg == "" || (pseg != "*" && pseg != iseg) {
			return false
		}
		if !pmore || !imore {
			return pmore == imore
		}
		p, id = prest, irest
	}
}

// crockford is Crockford's base32 alphabet, as ULIDs use it.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// New returns prefix followed by a 26-character, time-ordered, random
// identifier: 48 bits of Unix milliseconds and 80 random bits, in the ULID
// layout (https://github.com/ulid/spec), so IDs sort by creation time.
func New(prefix string, now time.Time) string {
	var raw [16]byte
	ms := uint64(now.UnixMilli())
	raw[0], raw[1], raw[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	raw[3], raw[4], raw[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	binary.BigEndian.PutUint64(raw[6:14], rand.Uint64())
	binary.BigEndian.PutUint16(raw[14:16], uint16(rand.Uint32()))
	return encode(prefix, raw)
}

// Derive returns prefix followed by a 26-character identifier that is a
// function of parts alone, so the same inputs always name the same thing.
func Derive(prefix string, parts ...string) string {
	// Hash from a stack buffer: IDs are short, so this allocates nothing
	// but the result.
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	sum := sha256.Sum256(b)
	var raw [16]byte
	copy(raw[:], sum[:16])
	return encode(prefix, raw)
}

func encode(prefix string, raw [16]byte) string {
	buf := make([]byte, len(prefix)+26)
	n := copy(buf, prefix)
	// 128 bits in 26 base32 characters: the first character carries 3 bits.
	hi := binary.BigEndian.Uint64(raw[0:8])
	lo := binary.BigEndian.Uint64(raw[8:16])
	for i := 25; i >= 0; i-- {
		buf[n+i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(buf)
}
