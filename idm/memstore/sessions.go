package memstore

import (
	"context"
	"maps"
	"time"

	"github.com/c3-pro/idm/idm"
)

// Console sessions.

func normSession(x idm.Session) idm.Session {
	x.Created = idm.Timestamp(x.Created)
	x.LastSeen = idm.Timestamp(x.LastSeen)
	x.Expires = idm.Timestamp(x.Expires)
	return x
}

// CreateSession implements [idm.SessionStore].
func (s *Store) CreateSession(_ context.Context, x idm.Session) error {
	x = normSession(x)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.sessions[x.IDHash]; ok {
		return conflict("session", "")
	}
	s.sessions[x.IDHash] = x
	return nil
}

// FindSession implements [idm.SessionStore].
func (s *Store) FindSession(_ context.Context, idHash string) (idm.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.Session{}, errClosed
	}
	x, ok := s.sessions[idHash]
	if !ok || idHash == "" {
		return idm.Session{}, notFound("session", "")
	}
	return x, nil
}

// TouchSession implements [idm.SessionStore].
func (s *Store) TouchSession(_ context.Context, idHash string, at time.Time) error {
	at = idm.Timestamp(at)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	x, ok := s.sessions[idHash]
	if !ok || idHash == "" {
		return notFound("session", "")
	}
	if at.After(x.LastSeen) {
		x.LastSeen = at
		s.sessions[idHash] = x
	}
	return nil
}

// DeleteSession implements [idm.SessionStore].
func (s *Store) DeleteSession(_ context.Context, idHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	delete(s.sessions, idHash)
	return nil
}

// DeleteUserSessions implements [idm.SessionStore].
func (s *Store) DeleteUserSessions(_ context.Context, userID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	before := len(s.sessions)
	maps.DeleteFunc(s.sessions, func(_ string, x idm.Session) bool { return x.UserID == userID })
	return before - len(s.sessions), nil
}

// PurgeSessions implements [idm.SessionStore].
func (s *Store) PurgeSessions(_ context.Context, idleBefore, now time.Time) (int, error) {
	idleBefore, now = idm.Timestamp(idleBefore), idm.Timestamp(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	before := len(s.sessions)
	maps.DeleteFunc(s.sessions, func(_ string, x idm.Session) bool {
		return x.LastSeen.Before(idleBefore) || !x.Expires.After(now)
	})
	return before - len(s.sessions), nil
}
