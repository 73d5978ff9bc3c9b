package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Audit counts. GET /audit pages through the records of a time range (of
// one actor, or of all) and shows how many there are in all: walking the
// keys of the range to count them, and to skip to a deep offset, would cost
// time in proportion to the records. Bucket audit_counts therefore holds,
// for every hour that has records, how many it has: under str("") hour for
// all records and under str(actor) hour for the records of an actor (its ID
// and its username, as audits_by_actor indexes them), kept in the
// transaction of every write of audit records. A range is then counted from
// the counts of its hours, with only the records of the two hours at its
// ends walked, and an offset skips whole hours by their counts.
//
// Files written before the counts existed get them when they are opened
// (see initAuditCounts); so do files whose counts do not add up to the
// number of records, such as one that an older version of this package
// appended to after a newer one had counted.

// hourMillis is the length of the hours that audit_counts counts by.
const hourMillis = 3_600_000

// countKey returns the key of the count of actor's records ("" for all) in
// the hour that starts at the time key hour.
func countKey(actor string, hour []byte) []byte {
	return append(appendStr(nil, actor), hour...)
}

// hourOf returns the time key of the start of the hour of the time key k
// (its first 8 bytes).
func hourOf(k []byte) []byte {
	ms := int64(binary.BigEndian.Uint64(k[:timeKeyLen]) ^ (1 << 63))
	ms -= ((ms % hourMillis) + hourMillis) % hourMillis
	return binary.BigEndian.AppendUint64(nil, uint64(ms)^(1<<63))
}

// nextHour returns the time key of the hour after the hour key h.
func nextHour(h []byte) []byte {
	return binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(h)+hourMillis)
}

// addCount adds delta to the count of actor's records in the hour of the
// record key k.
func addCount(counts *bolt.Bucket, actor string, k []byte, delta int64) error {
	key := countKey(actor, hourOf(k))
	var n int64
	if v := counts.Get(key); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n += delta
	if n <= 0 {
		return counts.Delete(key)
	}
	return counts.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// initAuditCounts (re)builds the counts when they do not add up to the
// number of records appended; it runs in the write transaction of Open.
func initAuditCounts(tx *bolt.Tx) error {
	counts := bucket(tx, bAuditCounts)
	var sum uint64
	c := counts.Cursor()
	all := appendStr(nil, "")
	for k, v := c.Seek(all); k != nil && bytes.HasPrefix(k, all) && len(k) == len(all)+timeKeyLen; k, v = c.Next() {
		sum += binary.BigEndian.Uint64(v)
	}
	if sum == bucket(tx, bAuditsBySeq).Sequence() {
		return nil
	}
	if err := tx.DeleteBucket([]byte(bAuditCounts)); err != nil {
		return err
	}
	counts, err := tx.CreateBucket([]byte(bAuditCounts))
	if err != nil {
		return err
	}
	// Counted in memory first: one write per counter, not per record.
	hours := map[string]int64{}
	w := readWindow{tx: tx}
	err = bucket(tx, bAudits).ForEach(func(k, v []byte) error {
		w.release(len(k) + len(v))
		hours[string(countKey("", hourOf(k)))]++
		return nil
	})
	if err != nil {
		return err
	}
	err = bucket(tx, bAuditsByActor).ForEach(func(k, _ []byte) error {
		w.release(len(k))
		n, l := binary.Uvarint(k)
		if l <= 0 || len(k) < l+int(n)+timeKeyLen {
			return fmt.Errorf("bad key in %s: %q", bAuditsByActor, k)
		}
		hours[string(countKey(string(k[l:l+int(n)]), hourOf(k[l+int(n):])))]++
		return nil
	})
	if err != nil {
		return err
	}
	for k, n := range hours {
		if err := counts.Put([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
	}
	return nil
}

// auditRange pages through the record keys of one actor ("" for all) in
// [since, until) (nil for no bound), with their counts.
type auditRange struct {
	counts       *bolt.Bucket
	keys         *bolt.Cursor // over audits (actor "") or audits_by_actor
	prefix       []byte       // of the keys in keys: str(actor), or none
	actor        string
	since, until []byte
}

// inRange reports whether the record key k (without prefix) is in the range.
func (r *auditRange) inRange(k []byte) bool {
	return (r.since == nil || bytes.Compare(k[:timeKeyLen], r.since) >= 0) &&
		(r.until == nil || bytes.Compare(k[:timeKeyLen], r.until) < 0)
}

// walk yields the record keys (without prefix) from the first at or after
// from, in order, while they are before the hour key end (nil: no end) and
// in the range; fn returns false to stop.
func (r *auditRange) walk(from, end []byte, fn func(k []byte) bool) {
	if r.since != nil && bytes.Compare(from, r.since) < 0 {
		from = r.since
	}
	for k, _ := r.keys.Seek(append(bytes.Clone(r.prefix), from...)); k != nil && bytes.HasPrefix(k, r.prefix); k, _ = r.keys.Next() {
		key := k[len(r.prefix):]
		if len(key) < timeKeyLen || end != nil && bytes.Compare(key[:timeKeyLen], end) >= 0 || !r.inRange(key) {
			return
		}
		if !fn(key) {
			return
		}
	}
}

// hour is one hour of the range with records: its key and how many of its
// records are in the range.
type hour struct {
	key []byte
	n   int
}

// hours returns the hours of the range that hold records, with the number
// in the range of each: the counts, corrected at the two ends by walking.
func (r *auditRange) hours() []hour {
	prefix := appendStr(nil, r.actor)
	c := r.counts.Cursor()
	var first []byte
	if r.since != nil {
		first = hourOf(r.since)
	}
	var out []hour
	for k, v := c.Seek(append(bytes.Clone(prefix), first...)); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+timeKeyLen; k, v = c.Next() {
		h := bytes.Clone(k[len(prefix):])
		if r.until != nil && bytes.Compare(h, r.until) >= 0 {
			break
		}
		out = append(out, hour{key: h, n: int(binary.BigEndian.Uint64(v))})
	}
	for i := range out {
		if i > 0 && i < len(out)-1 {
			continue
		}
		h := &out[i]
		next := nextHour(h.key)
		if r.since != nil && bytes.Compare(h.key, r.since) < 0 || r.until != nil && bytes.Compare(next, r.until) > 0 {
			// The range cuts this hour: count what of it is in the range.
			h.n = 0
			r.walk(h.key, next, func([]byte) bool { h.n++; return true })
		}
	}
	return out
}

// page returns the keys (without prefix) of the records at positions lo to
// hi-1 of the range, and how many records the range holds.
func (r *auditRange) page(lo, hi int) ([][]byte, int) {
	hours := r.hours()
	total := 0
	for _, h := range hours {
		total += h.n
	}
	var keys [][]byte
	skip := lo
	for i := 0; i < len(hours) && lo < hi && lo < total; i++ {
		if skip >= hours[i].n {
			skip -= hours[i].n
			continue
		}
		r.walk(hours[i].key, nil, func(k []byte) bool {
			if skip > 0 {
				skip--
				return true
			}
			keys = append(keys, bytes.Clone(k))
			return len(keys) < hi-lo
		})
		break
	}
	return keys, total
}

// CountAuditRecords returns how many audit records the file holds, counted
// from the records themselves (every page of the audits bucket), not from
// audit_counts: [auditlog.Verify] uses it to find a record written around
// the log and its counts. It implements auditlog.RecordCounter.
func (s *Store) CountAuditRecords(ctx context.Context) (int64, error) {
	var n int64
	err := s.view(ctx, "count audit records", func(tx *bolt.Tx) error {
		n = int64(bucket(tx, bAudits).Stats().KeyN)
		return nil
	})
	return n, err
}
