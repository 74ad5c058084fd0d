package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"slices"
	"strings"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

//go:embed templates
var templateFS embed.FS

// ErrUnknownTemplate is returned by Render for a template name that is not
// embedded.
var ErrUnknownTemplate = errors.New("mail: unknown template")

// ErrBadData is returned by Render when the data lack a value the template
// needs or hold a link that is not the issuer's.
var ErrBadData = errors.New("mail: bad template data")

// required names, per template, the Data keys it cannot do without. Each
// template is NAME.txt (defining "subject" and the plain-text body) and
// NAME.html (defining "content", shown in layout.html).
var required = map[string][]string{
	"verify_email":     {"link", "expires_in"},
	"reset_password":   {"link", "expires_in"},
	"password_changed": {"when"},
	// already_registered answers a registration with an address that
	// has an account, to its owner (the registrant learns nothing).
	"already_registered": {"when"},
	"challenge_code":     {"code", "expires_in", "when", "reset_link"},
	"unlock_sign_in":     {"link", "expires_in"},
	"new_device":         {"when", "where", "me_link", "not_me_link", "expires_in"},
}

// maxValue is the longest data value shown, in runes; longer ones (a user
// agent chosen by an attacker) are cut.
const maxValue = 300

// Templates renders the embedded email templates for one issuer.
//
// Values of the data are shown as text: HTML-escaped in the HTML body
// (html/template), with control and format characters (line breaks, bidi
// overrides) replaced by spaces in both bodies, and cut at 300 runes. The
// values of "link" and of keys ending in "_link" are links: a path
// ("/reset?token=…") is made absolute from the issuer, and an absolute
// link must be on the issuer's origin, so that no email ever points
// elsewhere. Besides the data, every template sees to (the recipient),
// issuer, issuer_host and signin_link (the issuer's sign-in page).
type Templates struct {
	issuer *url.URL
	text   map[string]*texttemplate.Template
	html   map[string]*htmltemplate.Template
}

// NewTemplates parses the embedded templates for the issuer (an absolute
// http or https URL).
func NewTemplates(issuer string) (*Templates, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("mail: issuer %q is not an absolute http(s) URL", issuer)
	}
	t := &Templates{issuer: u, text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	layout, err := htmltemplate.New("layout.html").Option("missingkey=zero").ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("mail: layout: %w", err)
	}
	for name := range required {
		tt, err := texttemplate.New(name+".txt").Option("missingkey=zero").ParseFS(templateFS, "templates/"+name+".txt")
		if err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", name, err)
		}
		if tt.Lookup("subject") == nil {
			return nil, fmt.Errorf("mail: template %s.txt defines no subject", name)
		}
		ht, err := htmltemplate.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", name, err)
		}
		t.text[name], t.html[name] = tt, ht
	}
	return t, nil
}

// Names returns the names of the templates, sorted.
func (t *Templates) Names() []string {
	var names []string
	for name := range t.text {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Rendered is a rendered email.
type Rendered struct {
	Subject, Text, HTML string
}

// Render renders the template name for the recipient to with data.
// ErrUnknownTemplate if there is no such template; ErrBadData if a value it
// needs is missing or a link is not the issuer's.
func (t *Templates) Render(name, to string, data map[string]string) (Rendered, error) {
	tt, ok := t.text[name]
	if !ok {
		return Rendered{}, fmt.Errorf("%w %q", ErrUnknownTemplate, name)
	}
	view := map[string]string{}
	for k, v := range data {
		if k == "link" || strings.HasSuffix(k, "_link") {
			abs, err := t.Link(v)
			if err != nil {
				return Rendered{}, fmt.Errorf("%w: %s: %v", ErrBadData, k, err)
			}
			view[k] = abs
			continue
		}
		view[k] = clean(v)
	}
	// Facts that may be unknown (a change made from the command line
	// has no address or browser) are said to be unknown, not refused.
	for _, k := range []string{"ip", "user_agent"} {
		if strings.TrimSpace(view[k]) == "" {
			view[k] = "unknown"
		}
	}
	for _, k := range required[name] {
		if strings.TrimSpace(view[k]) == "" {
			return Rendered{}, fmt.Errorf("%w: template %s needs %q", ErrBadData, name, k)
		}
	}
	view["to"] = clean(to)
	view["issuer"] = t.issuer.String()
	view["issuer_host"] = t.issuer.Host
	view["signin_link"] = t.issuer.ResolveReference(&url.URL{Path: "/login"}).String()

	var subject, text, html bytes.Buffer
	if err := tt.ExecuteTemplate(&subject, "subject", view); err != nil {
		return Rendered{}, fmt.Errorf("mail: render %s subject: %w", name, err)
	}
	if err := tt.Execute(&text, view); err != nil {
		return Rendered{}, fmt.Errorf("mail: render %s text: %w", name, err)
	}
	view["subject"] = subject.String()
	if err := t.html[name].ExecuteTemplate(&html, "layout", view); err != nil {
		return Rendered{}, fmt.Errorf("mail: render %s HTML: %w", name, err)
	}
	return Rendered{Subject: strings.TrimSpace(subject.String()), Text: text.String(), HTML: html.String()}, nil
}

// Link returns s as an absolute link on the issuer: a path is resolved
// against the issuer; an absolute URL must have the issuer's scheme and
// host. Anything else (another host, a scheme-relative "//host" link, a
// javascript: URL) is refused.
func (t *Templates) Link(s string) (string, error) {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return "", errors.New("link is empty or contains white space or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("link is not a URL")
	}
	switch {
	case u.IsAbs():
		if u.Scheme != t.issuer.Scheme || u.Host != t.issuer.Host || u.User != nil {
			return "", errors.New("link is not on the issuer's origin")
		}
		return u.String(), nil
	case u.Host != "" || u.User != nil || strings.HasPrefix(s, "//") || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, `/\`):
		return "", errors.New("link is neither a path on the issuer nor an absolute link to it")
	}
	return t.issuer.ResolveReference(u).String(), nil
}

// clean makes a data value safe to show as one piece of text: control and
// format characters (line breaks, bidi overrides, zero-width characters)
// become spaces, invalid UTF-8 the replacement character, and the value is
// cut at maxValue runes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > maxValue {
		s = string([]rune(s)[:maxValue]) + "…"
	}
	return strings.TrimSpace(s)
}
