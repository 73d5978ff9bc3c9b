package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/c3-pro/idm/auth"
)

// bcryptInput returns the bcrypt hash and input that verifying pw against
// an encoded hash of auth's current scheme compares: the bcrypt part of the
// encoding, and the standard base64 of the SHA-256 of NFC(pw).
func bcryptInput(encoded, pw string) (hash, input []byte, err error) {
	h, ok := strings.CutPrefix(encoded, auth.SchemePrefix)
	if !ok {
		return nil, nil, errors.New("the seeded hash is not of auth's current scheme")
	}
	sum := sha256.Sum256([]byte(norm.NFC.String(pw)))
	return []byte(h), []byte(base64.StdEncoding.EncodeToString(sum[:])), nil
}

// span is one comparison, in time since the slice started.
type span struct{ start, end time.Duration }

// bcryptSlice runs raw bcrypt comparisons on n goroutines, without HTTP,
// for warm+d. Its rate is the work done in the measured time: each
// comparison counts with the part of it that fell into that time, which is
// exact where counting whole comparisons would be off by up to one per
// goroutine. The latencies are the durations of the comparisons that ended
// in it.
func bcryptSlice(ctx context.Context, hash, input []byte, n int, warm, d time.Duration) (result, error) {
	var stop atomic.Bool
	spans := make([][]span, n)
	errs := make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				t := time.Since(start)
				if err := bcrypt.CompareHashAndPassword(hash, input); err != nil {
					errs[g] = err
					return
				}
				spans[g] = append(spans[g], span{t, time.Since(start)})
			}
		})
	}
	sleepCtx(ctx, warm)
	t0 := time.Since(start)
	sleepCtx(ctx, d)
	t1 := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return result{}, fmt.Errorf("raw bcrypt: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r := result{elapsed: t1 - t0, cpu: -1}
	for _, ss := range spans {
		for _, s := range ss {
			r.work += overlap(s, t0, t1)
			if s.end >= t0 && s.end < t1 {
				r.ok++
				r.lat = append(r.lat, s.end-s.start)
			}
		}
	}
	return r, nil
}

// overlap returns the fraction of s that lies within [t0, t1).
func overlap(s span, t0, t1 time.Duration) float64 {
	if s.end <= s.start {
		return 0
	}
	lo, hi := max(s.start, t0), min(s.end, t1)
	if hi <= lo {
		return 0
	}
	return float64(hi-lo) / float64(s.end-s.start)
}
