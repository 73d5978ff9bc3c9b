package resetflow

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed templates
var embedded embed.FS

// Names of the templates a host may replace through [Config.Templates] (its
// comment lists them for embedders). Page templates are html/template files
// that define "content" (and may redefine "layout"); they get a [PageData].
// Mail templates get a [MailData]: the subject and text bodies are
// text/template files, the HTML bodies html/template files. A file the
// host's fs.FS lacks keeps its embedded default.
const (
	pageLayout  = "pages/layout.html"  // defines "layout", which runs "content"
	pageIforgot = "pages/iforgot.html" // GET /iforgot: the form asking for the username
	pageSent    = "pages/sent.html"    // POST /iforgot: the uniform answer
	pageReset   = "pages/reset.html"   // GET /reset: the form with two password fields
	pageDone    = "pages/done.html"    // POST /reset: success
	pageError   = "pages/error.html"   // invalid links, refused requests
	stylesheet  = "pages/style.css"    // inlined into every page (allowed by a CSP hash)

	mailResetSubject   = "mail/reset.subject.txt"
	mailResetText      = "mail/reset.txt"
	mailResetHTML      = "mail/reset.html"
	mailInviteSubject  = "mail/invite.subject.txt"
	mailInviteText     = "mail/invite.txt"
	mailInviteHTML     = "mail/invite.html"
	mailChangedSubject = "mail/changed.subject.txt"
	mailChangedText    = "mail/changed.txt"
	mailChangedHTML    = "mail/changed.html"
)

// PageData is what page templates get.
type PageData struct {
	Service     string           // Config.ServiceName
	Title       string           // the page's heading
	Error       string           // a message for the visitor; "" when none
	CSS         htmltemplate.CSS // the stylesheet, to be placed in <style>
	Username    string           // the entered username (iforgot) or the link's user (reset)
	Key         string           // the token of the link being used (reset form)
	Purpose     string           // purposeReset or purposeInvite (reset form)
	ValidFor    string           // how long links are valid, e.g. "2 hours"
	LoginURL    string           // Config.LoginURL; "" when not set
	MinLength   int              // the policy's minimum length when known; 0 otherwise
	LinkProblem bool             // the error page is about an invalid or expired link
}

// MailData is what mail templates get.
type MailData struct {
	Service  string    // Config.ServiceName
	Username string    // the recipient's username (their address)
	Link     string    // the one-time link; "" in the password-changed notice
	ValidFor string    // how long the link is valid, e.g. "2 hours"
	Expires  time.Time // when the link expires (UTC)
	Time     time.Time // when the mail was made (UTC); the change time for the notice
	ResetURL string    // <PublicURL>/iforgot, for the notice
}

// mailKind names one of the three emails.
type mailKind int

const (
	mailReset mailKind = iota
	mailInvite
	mailChanged
)

// mailTemplates holds the parsed templates of one email.
type mailTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// templates holds every parsed page and mail template.
type templates struct {
	pages map[string]*htmltemplate.Template // by page name (pageIforgot, ...)
	css   htmltemplate.CSS
	csp   string
	mails [3]mailTemplates
}

// overlay reads name from host when it has it, else from the embedded
// defaults.
type overlay struct{ host fs.FS }

func (o overlay) read(name string) ([]byte, error) {
	if o.host != nil {
		b, err := fs.ReadFile(o.host, name)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("resetflow: template %s: %w", name, err)
		}
	}
	return fs.ReadFile(embedded, "templates/"+name)
}

// loadTemplates parses all templates, taking each file from host when it
// has one.
func loadTemplates(host fs.FS) (*templates, error) {
	o := overlay{host: host}
	t := &templates{pages: map[string]*htmltemplate.Template{}}

	css, err := o.read(stylesheet)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(bytes.ToLower(css), []byte("</style")) {
		return nil, errors.New("resetflow: the stylesheet must not contain </style")
	}
	t.css = htmltemplate.CSS(css)
	sum := sha256.Sum256(css)
	t.csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

	layout, err := o.read(pageLayout)
	if err != nil {
		return nil, err
	}
	base, err := htmltemplate.New("layout").Option("missingkey=error").Parse(string(layout))
	if err != nil {
		return nil, fmt.Errorf("resetflow: template %s: %w", pageLayout, err)
	}
	for _, name := range []string{pageIforgot, pageSent, pageReset, pageDone, pageError} {
		src, err := o.read(name)
		if err != nil {
			return nil, err
		}
		clone, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("resetflow: template %s: %w", name, err)
		}
		p, err := clone.New(name).Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("resetflow: template %s: %w", name, err)
		}
		if p.Lookup("content") == nil {
			return nil, fmt.Errorf("resetflow: template %s does not define \"content\"", name)
		}
		t.pages[name] = p
	}

	for kind, names := range [3][3]string{
		mailReset:   {mailResetSubject, mailResetText, mailResetHTML},
		mailInvite:  {mailInviteSubject, mailInviteText, mailInviteHTML},
		mailChanged: {mailChangedSubject, mailChangedText, mailChangedHTML},
	} {
		var mt mailTemplates
		for i, name := range names {
			src, err := o.read(name)
			if err != nil {
				return nil, err
			}
			switch i {
			case 0:
				mt.subject, err = texttemplate.New(name).Option("missingkey=error").Parse(string(src))
			case 1:
				mt.text, err = texttemplate.New(name).Option("missingkey=error").Parse(string(src))
			case 2:
				mt.html, err = htmltemplate.New(name).Option("missingkey=error").Parse(string(src))
			}
			if err != nil {
				return nil, fmt.Errorf("resetflow: template %s: %w", name, err)
			}
		}
		t.mails[kind] = mt
	}
	return t, nil
}

// renderPage executes the page template name with d.
func (t *templates) renderPage(name string, d PageData) ([]byte, error) {
	p, ok := t.pages[name]
	if !ok {
		return nil, fmt.Errorf("resetflow: no page %s", name)
	}
	d.CSS = t.css
	var buf bytes.Buffer
	if err := p.ExecuteTemplate(&buf, "layout", d); err != nil {
		return nil, fmt.Errorf("resetflow: page %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// renderMail executes the templates of one email for d and returns the
// message for to.
func (t *templates) renderMail(kind mailKind, to string, d MailData) (Message, error) {
	mt := t.mails[kind]
	var subj, text, html bytes.Buffer
	if err := mt.subject.Execute(&subj, d); err != nil {
		return Message{}, fmt.Errorf("resetflow: mail subject: %w", err)
	}
	if err := mt.text.Execute(&text, d); err != nil {
		return Message{}, fmt.Errorf("resetflow: mail text: %w", err)
	}
	if err := mt.html.Execute(&html, d); err != nil {
		return Message{}, fmt.Errorf("resetflow: mail HTML: %w", err)
	}
	return Message{
		To:      to,
		Subject: strings.Join(strings.Fields(subj.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}

// humanDuration writes d for people: "2 hours", "72 hours", "30 minutes".
func humanDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return unit(int64((d+time.Minute-1)/time.Minute), "minute")
	default:
		return unit(int64((d+time.Second-1)/time.Second), "second")
	}
}
