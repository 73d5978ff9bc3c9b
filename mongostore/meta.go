package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/idm"
)

// MarkBootstrapped implements [idm.MetaStore] by inserting the one marker
// document: a second insert fails on its _id, so exactly one caller wins.
func (s *Store) MarkBootstrapped(ctx context.Context, at time.Time) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.meta.InsertOne(ctx, markerRecord{ID: bootstrapID, At: idm.Timestamp(at)})
	return translate("mark bootstrapped", err)
}

// Bootstrapped implements [idm.MetaStore].
func (s *Store) Bootstrapped(ctx context.Context) (bool, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.meta.CountDocuments(ctx, bson.M{"_id": bootstrapID})
	if err != nil {
		return false, translate("bootstrapped", err)
	}
	return n > 0, nil
}

// The login-failure counters are written only by inserts and the purge's
// deletes; the package documentation, "Login failures", explains how.

// Window states (loginWindowRecord.State).
const (
	windowOpen    = ""        // counting failures
	windowCleared = "cleared" // reset: the key has no counter
	windowPurging = "purging" // a purge is removing the key's windows
)

// purgeGrace is how long a purge's tombstone makes callers wait for the
// purge to finish removing a key's windows; an older one was left by a purge
// that failed, and counts as a cleared window.
const purgeGrace = 30 * time.Second

// maxWindowRaces bounds how often one call starts over because another
// caller started the key's next window first.
const maxWindowRaces = 8

// loginWindowRecord is one window of a key's login-failure counter.
type loginWindowRecord struct {
	ID  bson.ObjectID `bson:"_id"`
	Key string        `bson:"key"`
	N   int64         `bson:"n"`
	// Since is when the window started; for a tombstone, the purge's wall
	// clock time; zero for a cleared window.
	Since time.Time `bson:"since"`
	State string    `bson:"state,omitempty"`
}

// loginAttemptRecord is one failure (or reserved attempt), at place I of
// its window.
type loginAttemptRecord struct {
	Window bson.ObjectID `bson:"window"`
	I      int64         `bson:"i"`
	At     time.Time     `bson:"at"`
}

// currentWindow returns key's window with the highest number; found is
// false when the key has none.
func (s *Store) currentWindow(ctx context.Context, key string) (w loginWindowRecord, found bool, err error) {
	err = s.windows.FindOne(ctx, bson.M{"key": key},
		options.FindOne().SetSort(bson.D{{Key: "n", Value: -1}})).Decode(&w)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return w, false, nil
	}
	return w, err == nil, err
}

// lastAttempt returns how many places of window id are taken and the time
// of the latest one (zero when none is).
func (s *Store) lastAttempt(ctx context.Context, id bson.ObjectID) (count int64, last time.Time, err error) {
	var a loginAttemptRecord
	err = s.attempts.FindOne(ctx, bson.M{"window": id},
		options.FindOne().SetSort(bson.D{{Key: "i", Value: -1}})).Decode(&a)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	return a.I + 1, a.At, nil
}

// takePlace counts one failure of key at now in its current window, starting
// a new window when there is none, or when it has ended or was cleared. With
// max > 0 only places 0..max-1 exist: when they are all taken, ok is false
// and nothing changes. It returns the counter after the call.
func (s *Store) takePlace(ctx context.Context, op, key string, now time.Time, window time.Duration, max int64) (idm.LoginFailures, bool, error) {
	now = idm.Timestamp(now)
	cutoff := now.Add(-window) // a window has ended when Since <= cutoff
	ctx, cancel := s.op(ctx)
	defer cancel()
	for races := 0; ; {
		w, found, err := s.currentWindow(ctx, key)
		if err != nil {
			return idm.LoginFailures{}, false, translate(op, err)
		}
		var next int64 // the first place to try
		switch {
		case found && w.State == windowPurging && time.Since(w.Since) < purgeGrace:
			// A purge is removing the key's windows; starting one on top
			// of its tombstone could race a caller that finds none left.
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return idm.LoginFailures{}, false, translate(op, err)
			}
			continue
		case !found || w.State != windowOpen || !w.Since.After(cutoff):
			nw := loginWindowRecord{ID: bson.NewObjectID(), Key: key, Since: now}
			if found {
				nw.N = w.N + 1
			}
			if _, err := s.windows.InsertOne(ctx, nw); err != nil {
				err = translate(op, err)
				if !errors.Is(err, idm.ErrConflict) {
					return idm.LoginFailures{}, false, err
				}
				// Someone else started window N first: use theirs.
				if races++; races >= maxWindowRaces {
					return idm.LoginFailures{}, false, fmt.Errorf("mongostore: %s: the counter keeps changing: %w", op, idm.ErrConflict)
				}
				continue
			}
			w = nw
		default:
			if next, _, err = s.lastAttempt(ctx, w.ID); err != nil {
				return idm.LoginFailures{}, false, translate(op, err)
			}
		}
		for i := next; max <= 0 || i < max; i++ {
			_, err := s.attempts.InsertOne(ctx, loginAttemptRecord{Window: w.ID, I: i, At: now})
			if err == nil {
				return idm.LoginFailures{Key: key, Count: int(i + 1), Since: fromDate(w.Since), Last: now}, true, nil
			}
			if err = translate(op, err); !errors.Is(err, idm.ErrConflict) {
				return idm.LoginFailures{}, false, err
			}
			// Place i is taken: try the next one.
		}
		count, last, err := s.lastAttempt(ctx, w.ID)
		if err != nil {
			return idm.LoginFailures{}, false, translate(op, err)
		}
		return idm.LoginFailures{Key: key, Count: int(count), Since: fromDate(w.Since), Last: fromDate(last)}, false, nil
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RecordLoginFailure implements [idm.MetaStore] by inserting the failure at
// the next free place of the key's current window (see the package
// documentation, "Login failures").
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (idm.LoginFailures, error) {
	f, _, err := s.takePlace(ctx, "record login failure", key, now, window, 0)
	return f, err
}

// ReserveLoginAttempt implements [idm.MetaStore] by inserting the attempt
// at a free place 0..max-1 of the key's current window: a unique index on
// the place bounds the count across every process that shares the
// database, on MongoDB and on FerretDB (see the package documentation,
// "Login failures").
func (s *Store) ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error) {
	if max < 1 {
		return idm.LoginFailures{}, false, fmt.Errorf("mongostore: reserve login attempt with max %d: %w", max, idm.ErrInvalid)
	}
	return s.takePlace(ctx, "reserve login attempt", key, now, window, int64(max))
}

// LoginFailures implements [idm.MetaStore]: the counter is the key's current
// window, if it is open and has a failure.
func (s *Store) LoginFailures(ctx context.Context, key string) (idm.LoginFailures, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	w, found, err := s.currentWindow(ctx, key)
	if err != nil {
		return idm.LoginFailures{}, translate("login failures", err)
	}
	if !found || w.State != windowOpen {
		return idm.LoginFailures{Key: key}, nil
	}
	count, last, err := s.lastAttempt(ctx, w.ID)
	if err != nil {
		return idm.LoginFailures{}, translate("login failures", err)
	}
	if count == 0 {
		return idm.LoginFailures{Key: key}, nil
	}
	return idm.LoginFailures{Key: key, Count: int(count), Since: fromDate(w.Since), Last: fromDate(last)}, nil
}

// ResetLoginFailures implements [idm.MetaStore] by inserting a cleared window
// on top of the key's current one. Deleting the counter instead could let
// callers that have read the current window take its freed places again.
func (s *Store) ResetLoginFailures(ctx context.Context, key string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	w, found, err := s.currentWindow(ctx, key)
	if err != nil {
		return translate("reset login failures", err)
	}
	if !found || w.State != windowOpen {
		return nil // no counter, or being purged
	}
	_, err = s.windows.InsertOne(ctx, loginWindowRecord{ID: bson.NewObjectID(), Key: key, N: w.N + 1, State: windowCleared})
	if err = translate("reset login failures", err); errors.Is(err, idm.ErrConflict) {
		// A new window was started (or cleared, or purged) since the
		// read: the window that was read is no longer counted either.
		return nil
	}
	return err
}

// PurgeLoginFailures implements [idm.MetaStore]. It removes the windows
// started before before whose latest failure is before before, with their
// places. It removes a key's last windows only behind a tombstone: a window
// inserted on top of them, which makes callers wait until the purge is
// done, so that no caller can start a window on top of a removed one while
// another starts the key afresh at window 0.
func (s *Store) PurgeLoginFailures(ctx context.Context, before time.Time) (int, error) {
	before = idm.Timestamp(before)
	ctx, cancel := s.op(ctx)
	defer cancel()
	cur, err := s.windows.Find(ctx, bson.M{"since": bson.M{"$lt": before}},
		options.Find().SetSort(bson.D{{Key: "key", Value: 1}, {Key: "n", Value: -1}}))
	if err != nil {
		return 0, translate("purge login failures", err)
	}
	var old []loginWindowRecord
	if err := cur.All(ctx, &old); err != nil {
		return 0, translate("purge login failures", err)
	}
	removed := 0
	for len(old) > 0 {
		j := 1
		for j < len(old) && old[j].Key == old[0].Key {
			j++
		}
		n, err := s.purgeKey(ctx, old[:j], before)
		if err != nil {
			return removed, translate("purge login failures", err)
		}
		removed += n
		old = old[j:]
	}
	return removed, nil
}

// purgeKey removes those of ws (windows of one key started before before,
// highest first) whose latest failure is before before, with their places.
// It returns 1 when it removed the key's counter, else 0.
func (s *Store) purgeKey(ctx context.Context, ws []loginWindowRecord, before time.Time) (int, error) {
	key := ws[0].Key
	var idle []loginWindowRecord
	for _, w := range ws {
		if w.State == windowPurging && time.Since(w.Since) < purgeGrace {
			return 0, nil // another purge is at work on this key
		}
		_, last, err := s.lastAttempt(ctx, w.ID)
		if err != nil {
			return 0, err
		}
		if last.Before(before) {
			idle = append(idle, w)
		}
	}
	if len(idle) == 0 {
		return 0, nil
	}
	top, _, err := s.currentWindow(ctx, key)
	if err != nil {
		return 0, err
	}
	all, err := s.windows.CountDocuments(ctx, bson.M{"key": key})
	if err != nil {
		return 0, err
	}
	if top.ID != idle[0].ID || int(all) != len(idle) {
		// A later window stays: the idle ones below it no longer count,
		// and every caller starts windows on top of the one that stays.
		if top.ID == idle[0].ID {
			idle = idle[1:]
		}
		_, err := s.removeWindows(ctx, idle)
		return 0, err
	}

	// Every window of the key goes. Put a tombstone on top first: a caller
	// that has read the top window and would start the next one conflicts
	// with it, and later callers wait until it is gone.
	tomb := loginWindowRecord{ID: bson.NewObjectID(), Key: key, N: top.N + 1, Since: time.Now(), State: windowPurging}
	if _, err := s.windows.InsertOne(ctx, tomb); err != nil {
		if errors.Is(translate("", err), idm.ErrConflict) {
			return 0, nil // a new window has started: the next purge sees to the old ones
		}
		return 0, err
	}
	defer func() {
		// Remove the tombstone even when the purge failed or its context
		// ended; if this fails too, callers count it as a cleared window
		// after purgeGrace and the next purge removes it.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = s.windows.DeleteOne(dctx, bson.M{"_id": tomb.ID})
	}()
	n, err := s.removeWindows(ctx, idle)
	if err != nil || top.State != windowOpen || n == 0 {
		return 0, err
	}
	return 1, nil
}

// removeWindows deletes the places of ws and then ws. It returns how many
// places ws[0] had.
func (s *Store) removeWindows(ctx context.Context, ws []loginWindowRecord) (int64, error) {
	if len(ws) == 0 {
		return 0, nil
	}
	res, err := s.attempts.DeleteMany(ctx, bson.M{"window": ws[0].ID})
	if err != nil {
		return 0, err
	}
	ids := make([]bson.ObjectID, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	if len(ids) > 1 {
		if _, err := s.attempts.DeleteMany(ctx, bson.M{"window": bson.M{"$in": ids[1:]}}); err != nil {
			return 0, err
		}
	}
	if _, err := s.windows.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}}); err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}
