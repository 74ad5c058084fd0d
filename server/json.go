package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
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
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return &errBadRequest{"request body must hold a single JSON object"}
	}
	return nil
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
