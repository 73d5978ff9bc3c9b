package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/users"
)

// cliActor is the actor of audit records written by admin subcommands.
const cliActor = "idmd (command line)"

// userCmd runs `idmd user add|list|delete|passwd`.
func userCmd(ctx context.Context, args []string, std stdio) int {
	usage := "usage: idmd user add <email> [--admin] [--password-stdin] | list [--check] | delete <email> | passwd <email> [--password-stdin]"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	sub, args := args[0], args[1:]
	var admin, pwStdin, check bool
	cfg, pos, code := parse("user "+sub, args, std, func(fs *flag.FlagSet) {
		switch sub {
		case "list":
			fs.BoolVar(&check, "check", false, "list only the usernames that break the current username rule, and why")
		case "add":
			fs.BoolVar(&admin, "admin", false, "make the user an admin")
			fallthrough
		case "passwd":
			fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
		}
	})
	if code >= 0 {
		return code
	}
	want := map[string]int{"add": 1, "list": 0, "delete": 1, "passwd": 1}
	n, ok := want[sub]
	if !ok || len(pos) != n {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	defer store.Close()
	a := &admin_{store: store, std: std, now: time.Now, rule: cfg.Usernames, audits: idm.NewAuditWriter(store, time.Now, nil)}
	switch sub {
	case "add":
		err = a.add(ctx, pos[0], admin, pwStdin)
	case "list":
		if check {
			err = a.check(ctx)
		} else {
			err = a.list(ctx)
		}
	case "delete":
		err = a.delete(ctx, pos[0])
	case "passwd":
		err = a.passwd(ctx, pos[0], pwStdin)
	}
	if err != nil {
		fmt.Fprintf(std.err, "idmd: user %s: %s\n", sub, idm.MessageOf(err))
		if idm.StatusOf(err) >= 500 {
			fmt.Fprintf(std.err, "  cause: %v\n", err)
		}
		return exitFail
	}
	return exitOK
}

// admin_ carries out user administration directly on the store, with the
// same rules and audit records as the /user API.
type admin_ struct {
	store  idm.Store
	std    stdio
	now    func() time.Time
	rule   idm.UsernameRule // for new usernames
	audits *idm.AuditWriter // the records of the subcommands, as the /user API writes them
}

func (a *admin_) passwords() (*auth.Passwords, error) {
	return auth.NewPasswords(auth.PasswordConfig{})
}

// readPassword reads a new password: from the first line of standard input,
// or twice from the terminal without echo.
func (a *admin_) readPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(a.std.in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := a.std.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", idm.E(idm.ErrInvalid, "standard input is not a terminal: pass the password with --password-stdin")
	}
	fmt.Fprint(a.std.err, "New password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.std.err)
	if err != nil {
		return "", err
	}
	fmt.Fprint(a.std.err, "Repeat it: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.std.err)
	if err != nil {
		return "", err
	}
	if string(p1) != string(p2) {
		return "", idm.E(idm.ErrInvalid, "the passwords do not match")
	}
	return string(p1), nil
}

func (a *admin_) newHash(ctx context.Context, fromStdin bool) (string, error) {
	pw, err := a.readPassword(fromStdin)
	if err != nil {
		return "", err
	}
	p, err := a.passwords()
	if err != nil {
		return "", err
	}
	if err := p.Check(pw); err != nil {
		return "", err
	}
	return p.Hash(ctx, pw)
}

// audit writes the record of a change of u, before the change, and returns
// it for settle.
func (a *admin_) audit(ctx context.Context, u idm.User, action string, old, new any) (idm.AuditEvent, error) {
	enc := func(v any) json.RawMessage {
		if v == nil {
			return nil
		}
		b, _ := json.Marshal(v)
		return b
	}
	return a.audits.Append(ctx, idm.AuditEvent{
		Time: idm.Timestamp(a.now()), Document: u.ID, DocType: idm.DocUser,
		Actor: cliActor, Action: action, Old: enc(old), New: enc(new),
	})
}

// settle writes what is true of the change recorded by rec after its write
// returned err (see idm.AuditWriter.Settle) and returns the error to report:
// nil when a write of unknown outcome turns out to have been made.
func (a *admin_) settle(ctx context.Context, rec idm.AuditEvent, err error, applied func(ctx context.Context) (bool, error)) error {
	return a.audits.Settle(ctx, []idm.AuditEvent{rec}, err, applied)
}

// userExists reads back whether the user with the given ID exists.
func (a *admin_) userExists(ctx context.Context, id string) (bool, error) {
	_, err := a.store.FindUserByID(ctx, id)
	if errors.Is(err, idm.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (a *admin_) add(ctx context.Context, email string, admin, pwStdin bool) error {
	username, err := a.rule.Normalize(email)
	if err != nil {
		return err
	}
	if _, err := idm.FindUserByUsername(ctx, a.store, email); err == nil {
		return idm.E(idm.ErrConflict, "this username has already been taken")
	}
	hash, err := a.newHash(ctx, pwStdin)
	if err != nil {
		return err
	}
	now := idm.Timestamp(a.now())
	u := idm.User{ID: idm.NewID(), Username: username, PasswordHash: hash, Admin: admin, Created: now, Changed: now}
	rec, err := a.audit(ctx, u, users.ActionCreate, nil, map[string]any{"username": username, "admin": admin})
	if err != nil {
		return err
	}
	err = a.settle(ctx, rec, a.store.CreateUser(ctx, u), func(ctx context.Context) (bool, error) {
		return a.userExists(ctx, u.ID)
	})
	if err != nil {
		if errors.Is(err, idm.ErrConflict) {
			return idm.E(idm.ErrConflict, "this username has already been taken")
		}
		return err
	}
	if admin {
		// An admin exists now: /init stays closed for good.
		if err := a.store.MarkBootstrapped(ctx, now); err != nil && !errors.Is(err, idm.ErrConflict) {
			return err
		}
	}
	fmt.Fprintf(a.std.out, "created %s%s (id %s)\n", username, map[bool]string{true: " as admin"}[admin], u.ID)
	return nil
}

func (a *admin_) list(ctx context.Context) error {
	us, _, err := a.store.ListUsers(ctx, idm.UserFilter{})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.std.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tADMIN\tDISABLED\tCREATED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\n", u.ID, u.Username, u.Admin, u.Disabled, u.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

// check prints the users whose usernames break the current rule (see
// idm.UsernameRule.Check), one problem a line, or a line saying that there
// are none. Such users can still log in; nothing is changed.
func (a *admin_) check(ctx context.Context) error {
	us, _, err := a.store.ListUsers(ctx, idm.UserFilter{})
	if err != nil {
		return err
	}
	problems := a.rule.Check(us)
	for _, p := range problems {
		fmt.Fprintln(a.std.out, p)
	}
	fmt.Fprintf(a.std.out, "%d users checked, %d problems\n", len(us), len(problems))
	return nil
}

// find returns the user that email names, in any spelling a login accepts
// (also a user whose stored name the current rule refuses).
func (a *admin_) find(ctx context.Context, email string) (idm.User, error) {
	if strings.TrimSpace(email) == "" {
		return idm.User{}, idm.E(idm.ErrInvalid, "username is required")
	}
	u, err := idm.FindUserByUsername(ctx, a.store, email)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.E(idm.ErrNotFound, "no user "+idm.UsernameKey(email))
	}
	return u, err
}

func (a *admin_) delete(ctx context.Context, email string) error {
	u, err := a.find(ctx, email)
	if err != nil {
		return err
	}
	if u.Admin && !u.Disabled {
		n, err := a.store.CountAdmins(ctx)
		if err != nil {
			return err
		}
		if n <= 1 {
			return idm.E(idm.ErrConflict, "cannot delete the last admin")
		}
	}
	rec, err := a.audit(ctx, u, users.ActionDelete, map[string]any{"username": u.Username, "admin": u.Admin}, nil)
	if err != nil {
		return err
	}
	// Revoke the user's tokens first, so that they stay revoked even if a
	// backup taken before the deletion is restored later.
	err = idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error {
		cur, err := a.store.FindUserByID(ctx, u.ID)
		if err != nil {
			return err
		}
		cur.TokenVersion++
		cur.Changed = idm.Timestamp(a.now())
		return a.store.UpdateUser(ctx, cur)
	})
	if err == nil {
		err = a.store.DeleteUser(ctx, u.ID)
	}
	err = a.settle(ctx, rec, err, func(ctx context.Context) (bool, error) {
		ok, err := a.userExists(ctx, u.ID)
		return !ok, err
	})
	if err != nil {
		return err
	}
	// Reset links of a deleted user must not outlive it.
	if err := a.store.DeleteResetTokens(ctx, u.ID); err != nil {
		return err
	}
	fmt.Fprintf(a.std.out, "deleted %s\n", u.Username)
	return nil
}

func (a *admin_) passwd(ctx context.Context, email string, pwStdin bool) error {
	u, err := a.find(ctx, email)
	if err != nil {
		return err
	}
	hash, err := a.newHash(ctx, pwStdin)
	if err != nil {
		return err
	}
	rec, err := a.audit(ctx, u, users.ActionChangePassword, nil, nil)
	if err != nil {
		return err
	}
	now := idm.Timestamp(a.now())
	err = idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error {
		cur, err := a.store.FindUserByID(ctx, u.ID)
		if err != nil {
			return err
		}
		cur.PasswordHash, cur.PasswordChanged, cur.Changed = hash, now, now
		cur.TokenVersion++ // earlier tokens stop working
		return a.store.UpdateUser(ctx, cur)
	})
	err = a.settle(ctx, rec, err, func(ctx context.Context) (bool, error) {
		cur, err := a.store.FindUserByID(ctx, u.ID)
		if errors.Is(err, idm.ErrNotFound) {
			return false, nil
		}
		return err == nil && cur.PasswordHash == hash, err
	})
	if err != nil {
		return err
	}
	if err := a.store.DeleteResetTokens(ctx, u.ID); err != nil {
		return err
	}
	// A throttled account is usable again with its new password.
	if err := a.store.ResetLoginFailures(ctx, idm.UsernameKey(u.Username)); err != nil {
		return err
	}
	fmt.Fprintf(a.std.out, "changed the password of %s\n", u.Username)
	return nil
}
