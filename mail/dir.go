package mail

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Dir is the development outbox: a Sender that writes each message as an
// .eml file (RFC 5322, which mail clients open) into a directory instead
// of sending it. The file is named after the Message-ID, so that a
// duplicate delivery replaces the first copy; it is readable by its owner
// only (0600), for it holds one-time links. The path is logged, never the
// body.
type Dir struct {
	dir string
	log *slog.Logger
}

// NewDir returns a development outbox writing into dir, which the first
// message creates (0700) if needed. log receives one line per message;
// nil means slog.Default().
func NewDir(dir string, log *slog.Logger) *Dir {
	if log == nil {
		log = slog.Default()
	}
	return &Dir{dir: dir, log: log}
}

// Path is the directory written to.
func (d *Dir) Path() string { return d.dir }

// Send writes m to DIR/ID.eml (ID the Message-ID with any character other
// than letters, digits, '.', '-' and '_' replaced by '_'), atomically.
func (d *Dir) Send(ctx context.Context, m Message) error {
	if m.ID == "" {
		m.ID = rand.Text() + "@latch.invalid"
	}
	b, err := Encode(m)
	if err != nil {
		return err
	}
	name := fileName(m.ID)
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("mail: outbox directory: %w", err)
	}
	tmp, err := os.CreateTemp(d.dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("mail: outbox directory: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: write %s: %w", tmp.Name(), err)
	}
	path := filepath.Join(d.dir, name)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mail: write %s: %w", path, err)
	}
	d.log.InfoContext(ctx, "mail: written to the development outbox (no mail.smtp_url); open the file with a mail client",
		"path", path, "message_id", m.ID)
	return nil
}

// fileName is the file name of the message with Message-ID id.
func fileName(id string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id) + ".eml"
}
