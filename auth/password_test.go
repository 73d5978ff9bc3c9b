package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// Legacy hashes made by the original service's library, Python's bcrypt
// (3.2.2, Debian's python3-bcrypt): bcrypt.hashpw(pw.encode("utf-8"),
// bcrypt.gensalt(12)). Real output of that library, not rewritten Go hashes.
const (
	legacyPassword     = "correct horse battery staple"
	legacyHash         = "$2b$12$vwuGX.5zS204Eyez0DnBa../DZU/f67Bdg2.vONsIffmloPRwhPva"
	legacyUTF8Password = "Pässwörd-ÜTF8-legacy"
	legacyUTF8Hash     = "$2b$12$DhrExO3VH.ADXHRxve.2ButN3i3Z6TmnnPiNLEh0p8/OHS9kMKko2"
	// Python's bcrypt reads only the first 72 bytes of this 80-byte password.
	legacyLongHash = "$2b$12$GKmFpqeYjRd2iORI6kgfG.uL77MCfc4RlhQk4tY1Ne8zUEd.R2sZi"
)

func TestPasswordsHashVerify(t *testing.T) {
	p := fastPasswords(t)
	ctx := t.Context()
	const pw = "a perfectly fine passphrase"
	hash, err := p.Hash(ctx, pw)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hash, auth.SchemePrefix), hash)
	assert.NotContains(t, hash, pw)
	other, err := p.Hash(ctx, pw)
	require.NoError(t, err)
	assert.NotEqual(t, hash, other, "every hash has its own salt")

	tests := []struct {
		name    string
		encoded string
		pw      string
		ok      bool
		rehash  bool
		err     error
	}{
		{"right password", hash, pw, true, false, nil},
		{"wrong password", hash, pw + "!", false, false, nil},
		{"empty password", hash, "", false, false, nil},
		{"no hash (invited user)", "", pw, false, false, nil},
		{"unknown format", "plaintext", pw, false, false, auth.ErrHashFormat},
		{"broken current-scheme hash", auth.SchemePrefix + "$2a$04$short", pw, false, false, auth.ErrHashFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := p.Verify(ctx, tt.encoded, tt.pw)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.rehash, rehash)
		})
	}
}

func TestPasswordsNFC(t *testing.T) {
	p := fastPasswords(t)
	composed := "caf\u00e9 au lait, s'il vous pla\u00eet"
	decomposed := "cafe\u0301 au lait, s'il vous plai\u0302t"
	hash, err := p.Hash(t.Context(), decomposed)
	require.NoError(t, err)
	ok, _, err := p.Verify(t.Context(), hash, composed)
	require.NoError(t, err)
	assert.True(t, ok, "NFC-equivalent passwords verify against each other")
}

func TestPasswordsLowCostNeedsRehash(t *testing.T) {
	p, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost + 1})
	require.NoError(t, err)
	low := fastPasswords(t)
	hash, err := low.Hash(t.Context(), "some password here")
	require.NoError(t, err)
	ok, rehash, err := p.Verify(t.Context(), hash, "some password here")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, rehash, "a hash below the configured cost needs a rehash")
	assert.True(t, p.NeedsRehash(hash))
	assert.True(t, p.NeedsRehash(legacyHash))
	fresh, err := p.Hash(t.Context(), "some password here")
	require.NoError(t, err)
	assert.False(t, p.NeedsRehash(fresh))
}

func TestNewPasswordsConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  auth.PasswordConfig
		ok   bool
	}{
		{"min cost", auth.PasswordConfig{Cost: bcrypt.MinCost}, true},
		{"cost too low", auth.PasswordConfig{Cost: 3}, false},
		{"cost too high", auth.PasswordConfig{Cost: 32}, false},
		{"min length above max", auth.PasswordConfig{Cost: bcrypt.MinCost, MinLength: 129}, false},
		{"negative min length", auth.PasswordConfig{Cost: bcrypt.MinCost, MinLength: -1}, false},
		{"negative workers", auth.PasswordConfig{Cost: bcrypt.MinCost, Workers: -1}, false},
		{"negative queue", auth.PasswordConfig{Cost: bcrypt.MinCost, MaxQueue: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewPasswords(tt.cfg)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// TestPasswordsQueue checks the worker pool: callers wait for a worker
// rather than being refused while the queue is short, a waiting caller
// gives up when its context ends, and a full queue refuses with
// idm.ErrUnavailable.
func TestPasswordsQueue(t *testing.T) {
	t.Run("queued callers all succeed", func(t *testing.T) {
		p, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost, Workers: 1, MaxQueue: 32})
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make([]error, 24)
		for i := range errs {
			wg.Go(func() { _, errs[i] = p.Hash(t.Context(), "queued password") })
		}
		wg.Wait()
		for i, err := range errs {
			assert.NoError(t, err, "caller %d", i)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		p := fastPasswords(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := p.Hash(ctx, "whatever password")
		require.ErrorIs(t, err, context.Canceled)
		err = p.DummyVerify(ctx, "whatever password")
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("full queue sheds, waiting caller times out", func(t *testing.T) {
		// Cost 10 keeps the single worker busy long enough to fill the queue.
		p, err := auth.NewPasswords(auth.PasswordConfig{Cost: 10, Workers: 1, MaxQueue: 1})
		require.NoError(t, err)
		busy := make(chan struct{})
		go func() {
			defer close(busy)
			_ = p.DummyVerify(context.Background(), "x")
		}()
		// Wait until the worker is taken: a caller with a short deadline
		// then times out while queued.
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()
			return errors.Is(p.DummyVerify(ctx, "y"), context.DeadlineExceeded)
		}, 5*time.Second, time.Millisecond)
		// Four callers arrive while the worker is busy: one may wait, the
		// others find the queue full.
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = p.DummyVerify(t.Context(), "z") })
		}
		wg.Wait()
		<-busy
		var shed, served int
		for _, err := range errs {
			switch {
			case err == nil:
				served++
			case errors.Is(err, idm.ErrUnavailable):
				shed++
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
		assert.GreaterOrEqual(t, served, 1, "the queued caller is served")
		assert.GreaterOrEqual(t, shed, 1, "callers beyond the queue limit are refused")
	})
}

func TestPasswordsCheck(t *testing.T) {
	p := fastPasswords(t)
	long := strings.Repeat("ü", auth.MaxPasswordLength)
	tests := []struct {
		name string
		pw   string
		want string // "" for accepted
	}{
		{"8 characters", "k7#vQ2!z", ""},
		{"7 characters", "k7#vQ2!", "password must be at least 8 characters long"},
		{"empty", "", "password must be at least 8 characters long"},
		{"128 characters, 256 bytes", long, ""},
		{"129 characters", long + "x", "password must be at most 128 characters long"},
		{"8 runes of 4 bytes", "🦊🦊🐻🐻🦉🦉🐝🐝", ""},
		{"7 runes of CJK", "患者研究同意書", "password must be at least 8 characters long"},
		{"decomposed counts after NFC", "e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301", "password must be at least 8 characters long"},
		{"spaces are characters", "        ", ""},
		{"common", "password", "password is too common; choose one that is harder to guess"},
		{"common in other case", "BaseBall1", "password is too common; choose one that is harder to guess"},
		{"common from the middle of the list", "trustno1", "password is too common; choose one that is harder to guess"},
		{"invalid UTF-8", "abcdefgh\xff", "password is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.pw)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, idm.ErrInvalid)
			assert.Equal(t, tt.want, idm.MessageOf(err))
		})
	}
	t.Run("configurable minimum", func(t *testing.T) {
		p12, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost, MinLength: 12})
		require.NoError(t, err)
		assert.Equal(t, "password must be at least 12 characters long", idm.MessageOf(p12.Check("k7#vQ2!zk7#")))
		assert.NoError(t, p12.Check("k7#vQ2!zk7#v"))
	})
}

// TestIsCommon checks the edges of the list lookup: its first and last
// entries, and strings that are in the list's text without being entries.
func TestIsCommon(t *testing.T) {
	p := fastPasswords(t)
	tests := []struct {
		pw   string
		want bool
	}{
		{"123456", true},    // the first entry
		{"159753456", true}, // the last entry
		{"PassWord", true},
		{"", false},
		{"ustno", false},                            // inside an entry
		{"rustno1", false},                          // the end of an entry
		{"123456\npassword", false},                 // two entries
		{"123456\n", false},                         // an entry and its line end
		{"# Lines starting with", false},            // in the comment header
		{"licence: mit, copyright (c) 2018", false}, // the start of a comment line
		{"k7#vQ2!z", false},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			assert.Equal(t, tt.want, p.IsCommon(tt.pw))
		})
	}
}
