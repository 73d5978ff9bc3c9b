package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/resetflow"
	"github.com/c3-pro/idm/users"
)

// userCmd runs `idmd user add|list|delete|passwd|totp-reset`.
func userCmd(ctx context.Context, args []string, std stdio) int {
	usage := "usage: idmd user add <email> [--admin] [--password-stdin] | list [--check] [--format table|csv] | delete <email> | passwd <email> [--password-stdin] | totp-reset <email>"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	sub, args := args[0], args[1:]
	var admin, pwStdin, check bool
	format := "table"
	cfg, pos, code := parse("user "+sub, args, std, func(fs *flag.FlagSet) {
		switch sub {
		case "list":
			fs.BoolVar(&check, "check", false, "list only the usernames that break the current username rule, and why")
			fs.StringVar(&format, "format", "table", "output format: table, or csv for a periodic access review")
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
	if format != "table" && format != "csv" {
		fmt.Fprintln(std.err, "idmd: --format must be table or csv")
		return exitConfig
	}
	want := map[string]int{"add": 1, "list": 0, "delete": 1, "passwd": 1, "totp-reset": 1}
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
	a, err := newAdmin(cfg, store, std)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	// Let the notices being mailed go out before the command ends.
	defer a.close()
	switch sub {
	case "add":
		err = a.add(ctx, pos[0], admin, pwStdin)
	case "list":
		if check {
			err = a.check(ctx)
		} else {
			err = a.list(ctx, format == "csv")
		}
	case "delete":
		err = a.delete(ctx, pos[0])
	case "passwd":
		err = a.passwd(ctx, pos[0], pwStdin)
	case "totp-reset":
		err = a.totpReset(ctx, pos[0])
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

// cliActor is the actor of audit records written by admin subcommands.
const cliActor = "idmd (command line)"

// cliUser is who the user subcommands act as: an actor without an ID, which
// users.Service trusts as an admin.
var cliUser = idm.User{Username: cliActor, Admin: true}

// admin_ carries out user administration through the same user-lifecycle
// service as the /user API, so with the same rules, audit records and side
// effects (the password-changed notice too, when mail is configured).
type admin_ struct {
	store    idm.Store
	accounts *users.Service
	reset    *resetflow.Handler // nil without mail
	std      stdio
	rule     idm.UsernameRule // for `list --check`
}

// newAdmin wires the user-lifecycle service over store as idmd serve does.
func newAdmin(cfg *config, store idm.Store, std stdio) (*admin_, error) {
	passwords, err := newPasswords()
	if err != nil {
		return nil, err
	}
	accounts, reset, _, err := newAccounts(cfg, store, passwords, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return &admin_{store: store, accounts: accounts, reset: reset, std: std, rule: cfg.Usernames}, nil
}

// close waits for the mails being sent.
func (a *admin_) close() {
	if a.reset != nil {
		_ = a.reset.Close()
	}
}

// readPassword reads a new password: from the first line of standard input,
// or twice from the terminal without echo. An empty one is refused.
func (a *admin_) readPassword(fromStdin bool) (string, error) {
	pw, err := a.readLine(fromStdin)
	if err == nil && pw == "" {
		err = idm.E(idm.ErrInvalid, "password is required")
	}
	return pw, err
}

func (a *admin_) readLine(fromStdin bool) (string, error) {
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

func (a *admin_) add(ctx context.Context, email string, admin, pwStdin bool) error {
	pw, err := a.readPassword(pwStdin)
	if err != nil {
		return err
	}
	u, err := a.accounts.Create(ctx, cliUser, users.NewUser{Username: email, Password: pw, Admin: admin})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.std.out, "created %s%s (id %s)\n", u.Username, map[bool]string{true: " as admin"}[admin], u.ID)
	return nil
}

func (a *admin_) list(ctx context.Context, asCSV bool) error {
	us, _, err := a.store.ListUsers(ctx, idm.UserFilter{})
	if err != nil {
		return err
	}
	header := []string{"ID", "USERNAME", "ROLE", "SITES", "ADMIN", "TOTP", "DISABLED", "CREATED", "LAST_LOGIN"}
	row := func(u idm.User) []string {
		role, sites := u.Access()
		last := "never"
		if !u.LastLogin.IsZero() {
			last = u.LastLogin.Format(time.RFC3339)
		}
		return []string{u.ID, u.Username, string(role), strings.Join(sites, " "), fmt.Sprint(u.Admin),
			fmt.Sprint(u.TOTP.Active), fmt.Sprint(u.Disabled), u.Created.Format(time.RFC3339), last}
	}
	if asCSV {
		w := csv.NewWriter(a.std.out)
		for i := range header {
			header[i] = strings.ToLower(header[i])
		}
		_ = w.Write(header)
		for _, u := range us {
			_ = w.Write(row(u))
		}
		w.Flush()
		return w.Error()
	}
	tw := tabwriter.NewWriter(a.std.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, u := range us {
		fmt.Fprintln(tw, strings.Join(row(u), "\t"))
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
	if err := a.accounts.Delete(ctx, cliUser, u.ID); err != nil {
		return err
	}
	fmt.Fprintf(a.std.out, "deleted %s\n", u.Username)
	return nil
}

// totpReset removes a user's second factor (for a locked-out admin) and
// revokes their tokens, as an admin's PUT /user/{id} {"reset_totp": true}
// does.
func (a *admin_) totpReset(ctx context.Context, email string) error {
	u, err := a.find(ctx, email)
	if err != nil {
		return err
	}
	if _, err := a.accounts.Update(ctx, cliUser, u.ID, users.Changes{ResetTOTP: true}); err != nil {
		return err
	}
	fmt.Fprintf(a.std.out, "reset the second factor of %s\n", u.Username)
	return nil
}

func (a *admin_) passwd(ctx context.Context, email string, pwStdin bool) error {
	u, err := a.find(ctx, email)
	if err != nil {
		return err
	}
	pw, err := a.readPassword(pwStdin)
	if err != nil {
		return err
	}
	if _, err := a.accounts.Update(ctx, cliUser, u.ID, users.Changes{Password: &pw}); err != nil {
		return err
	}
	fmt.Fprintf(a.std.out, "changed the password of %s\n", u.Username)
	return nil
}
