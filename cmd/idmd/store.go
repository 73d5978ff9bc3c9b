package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/mongostore"
)

// storeOpenTimeout bounds how long opening the store may take: the bbolt
// file lock, or reaching MongoDB.
const storeOpenTimeout = 5 * time.Second

// openStore opens the store the configuration names: MongoDB when a URI is
// set, otherwise the bbolt file. Its errors are one clear line.
func openStore(ctx context.Context, cfg *config) (idm.Store, error) {
	if cfg.MongoURI != "" {
		ctx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
		defer cancel()
		s, err := mongostore.Open(ctx, cfg.MongoURI, cfg.MongoDB)
		if err != nil {
			if errors.Is(err, idm.ErrUnavailable) {
				return nil, fmt.Errorf("cannot reach MongoDB (IDM_MONGO_URI): %w", err)
			}
			return nil, fmt.Errorf("opening MongoDB database %q: %w", cfg.MongoDB, err)
		}
		return s, nil
	}
	s, err := boltstore.Open(cfg.DB, boltstore.WithTimeout(storeOpenTimeout/2))
	if errors.Is(err, boltstore.ErrLocked) {
		return nil, fmt.Errorf("%w: %s (is idmd running? stop it first, or use the HTTP API)", boltstore.ErrLocked, cfg.DB)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", cfg.DB, err)
	}
	return s, nil
}
