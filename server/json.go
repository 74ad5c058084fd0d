package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode"
)

// apiError is the body of every error answer (RFC 6749 §5.2 style).
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, errCode, description string) {
	writeJSON(w, code, apiError{Error: errCode, Description: description})
}

// errBadRequest carries a description for a 400 invalid_request.
type errBadRequest struct{ msg string }

func (e *errBadRequest) Error() string { return e.msg }

// decode reads a JSON object body into v: application/json only, at most
// MaxBodyBytes, one object, no trailing data. It writes the 4xx itself and
// reports false when the body is unacceptable.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := decodeBody(w, r, v)
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	var bad *errBadRequest
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, "invalid_request", bad.msg)
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", "request body could not be read")
	}
	return false
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return &errBadRequest{"Content-Type must be application/json"}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return &errBadRequest{"request body could not be read"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return &errBadRequest{"request body is empty"}
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return &errBadRequest{fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type.Kind())}
		}
		return &errBadRequest{"request body must be a JSON object"}
	}
	// Exactly one value: anything but white space after it is an error.
	if _, err := dec.Token(); err != io.EOF {
		return &errBadRequest{"request body must hold a single JSON object"}
	}
	return members(data, fieldNames(v))
}

// members refuses what encoding/json would silently resolve one way while
// another parser (a proxy, a WAF, a log pipeline) resolves it another: a
// member name twice in one object (encoding/json keeps the last, many
// parsers the first), and names that differ only in case, where
// encoding/json matches a field case-insensitively ({"EMAIL": …} fills
// Email). Names of known fields must be spelled exactly. data is one valid
// JSON value.
func members(data []byte, known map[string]string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type object struct {
		seen map[string]string // fold key → name as sent
		key  bool              // the next token is a member name
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &errBadRequest{"request body must be a JSON object"}
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if name, ok := tok.(string); ok && top != nil && top.key {
			top.key = false
			k := foldKey(name)
			if prev, ok := top.seen[k]; ok {
				if prev == name {
					return &errBadRequest{fmt.Sprintf("member %q appears more than once", name)}
				}
				return &errBadRequest{fmt.Sprintf("members %q and %q differ only in case", prev, name)}
			}
			top.seen[k] = name
			if want, ok := known[k]; ok && len(stack) == 1 && want != name {
				return &errBadRequest{fmt.Sprintf("member %q must be spelled %q (names are case-sensitive)", name, want)}
			}
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{seen: map[string]string{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a name comes next.
		if len(stack) > 0 && stack[len(stack)-1] != nil {
			stack[len(stack)-1].key = true
		}
	}
}

// fieldNames maps the fold keys of the JSON member names of the struct v
// points to onto the names as declared.
func fieldNames(v any) map[string]string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]string{}
	if t == nil || t.Kind() != reflect.Struct {
		return names
	}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[foldKey(name)] = name
	}
	return names
}

// foldKey maps s to a key that is equal for two strings exactly when
// strings.EqualFold holds: each rune becomes the smallest of its simple
// case-folding orbit (so "K", "k" and the Kelvin sign share one).
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// required returns a 400 description naming the first empty field, or "".
func required(fields ...string) string {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return fmt.Sprintf("field %q is required", fields[i])
		}
	}
	return ""
}
