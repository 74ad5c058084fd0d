package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/latchauth/latch"
)

// deviceColumns lists the columns that scanDevice reads, in order.
const deviceColumns = `id, user_id, cookie_id, family, name, browser, os, created_at, last_seen_at,
	last_ip, last_country, last_city, last_lat, last_lon, last_accuracy_km, last_located, last_asn, confirmed_at`

func scanDevice(row interface{ Scan(...any) error }) (*latch.Device, error) {
	var d latch.Device
	var asn int64
	err := row.Scan(&d.ID, &d.UserID, &d.CookieID, &d.Family, &d.Name, &d.Browser, &d.OS,
		scanTime(&d.CreatedAt), scanTime(&d.LastSeenAt), &d.LastIP, &d.LastPlace.Country, &d.LastPlace.City,
		&d.LastPlace.Lat, &d.LastPlace.Lon, &d.LastPlace.AccuracyKm, &d.LastPlace.Located, &asn, scanTime(&d.ConfirmedAt))
	if err != nil {
		return nil, err
	}
	d.LastPlace.ASN = uint(asn)
	return &d, nil
}

// Devices returns the user's devices, most recently seen first. See
// latch.DeviceStore.
func (s *Store) Devices(ctx context.Context, userID string) ([]*latch.Device, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+deviceColumns+
		" FROM devices WHERE user_id = ? ORDER BY last_seen_at DESC, id", userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []*latch.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: devices of %s: %w", userID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: devices of %s: %w", userID, err)
	}
	return out, nil
}

// Places returns the countries and networks the user signed in from. See
// latch.DeviceStore.
func (s *Store) Places(ctx context.Context, userID string) (*latch.Places, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT kind, value FROM account_places WHERE user_id = ? ORDER BY kind, value", userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: places of %s: %w", userID, err)
	}
	defer rows.Close()
	p := &latch.Places{}
	for rows.Next() {
		var kind, value string
		if err := rows.Scan(&kind, &value); err != nil {
			return nil, fmt.Errorf("sqlite: places of %s: %w", userID, err)
		}
		switch kind {
		case "country":
			p.Countries = append(p.Countries, value)
		case "asn":
			if n, err := strconv.ParseUint(value, 10, 64); err == nil {
				p.ASNs = append(p.ASNs, uint(n))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: places of %s: %w", userID, err)
	}
	return p, nil
}

// DeviceKnown reports whether the user has a device with the cookie id.
// See latch.DeviceStore.
func (s *Store) DeviceKnown(ctx context.Context, userID, cookieID string) (bool, error) {
	if cookieID == "" {
		return false, nil
	}
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM devices WHERE user_id = ? AND cookie_id = ?", userID, cookieID).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: device of %s: %w", userID, err)
	}
	return true, nil
}

// RecordDeviceUse upserts d and adds its place to the user's places, in
// one transaction. See latch.DeviceStore.
func (s *Store) RecordDeviceUse(ctx context.Context, d *latch.Device) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE id = ?", d.UserID).Scan(&one); err != nil {
			return translate(err)
		}
		p := d.LastPlace
		_, err := tx.ExecContext(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				cookie_id = CASE WHEN devices.cookie_id = '' THEN excluded.cookie_id ELSE devices.cookie_id END,
				last_seen_at = excluded.last_seen_at, last_ip = excluded.last_ip,
				last_country = excluded.last_country, last_city = excluded.last_city,
				last_lat = excluded.last_lat, last_lon = excluded.last_lon,
				last_accuracy_km = excluded.last_accuracy_km, last_located = excluded.last_located,
				last_asn = excluded.last_asn,
				browser = excluded.browser, os = excluded.os
			WHERE devices.user_id = excluded.user_id`,
			d.ID, d.UserID, d.CookieID, d.Family, d.Name, d.Browser, d.OS, micros(d.CreatedAt), micros(d.LastSeenAt),
			d.LastIP, p.Country, p.City, p.Lat, p.Lon, p.AccuracyKm, p.Located, int64(p.ASN), micros(d.ConfirmedAt))
		if err != nil {
			return translate(err)
		}
		add := func(kind, value string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO account_places (user_id, kind, value, first_seen_at, last_seen_at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, kind, value) DO UPDATE SET last_seen_at = excluded.last_seen_at`,
				d.UserID, kind, value, micros(d.LastSeenAt), micros(d.LastSeenAt))
			return err
		}
		if p.Country != "" {
			if err := add("country", p.Country); err != nil {
				return err
			}
		}
		if p.ASN != 0 {
			if err := add("asn", strconv.FormatUint(uint64(p.ASN), 10)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: record device %s of %s: %w", d.ID, d.UserID, err)
	}
	return nil
}

// RenameDevice sets the name of the user's device. See latch.DeviceStore.
func (s *Store) RenameDevice(ctx context.Context, userID, id, name string) error {
	res, err := s.w.ExecContext(ctx, "UPDATE devices SET name = ? WHERE id = ? AND user_id = ?", name, id, userID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: rename device %s: %w", id, err)
	}
	return nil
}

// ForgetDevice deletes the user's device. See latch.DeviceStore.
func (s *Store) ForgetDevice(ctx context.Context, userID, id string) error {
	res, err := s.w.ExecContext(ctx, "DELETE FROM devices WHERE id = ? AND user_id = ?", id, userID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: forget device %s: %w", id, err)
	}
	return nil
}

// alertColumns lists the columns that scanAlert reads, in order.
const alertColumns = `id, user_id, device_id, me_hash, not_me_hash, created_at, expires_at,
	ip, country, city, browser, os, answer, answered_at`

func scanAlert(row interface{ Scan(...any) error }) (*latch.SignInAlert, error) {
	var a latch.SignInAlert
	err := row.Scan(&a.ID, &a.UserID, &a.DeviceID, &a.MeHash, &a.NotMeHash, scanTime(&a.CreatedAt), scanTime(&a.ExpiresAt),
		&a.IP, &a.Country, &a.City, &a.Browser, &a.OS, &a.Answer, scanTime(&a.AnsweredAt))
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// CreateSignInAlert stores a. See latch.DeviceStore.
func (s *Store) CreateSignInAlert(ctx context.Context, a *latch.SignInAlert) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sign_in_alerts (`+alertColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.UserID, a.DeviceID, a.MeHash, a.NotMeHash, micros(a.CreatedAt), micros(a.ExpiresAt),
		a.IP, a.Country, a.City, a.Browser, a.OS, a.Answer, micros(a.AnsweredAt))
	if err != nil {
		return fmt.Errorf("sqlite: create sign-in alert %s: %w", a.ID, translate(err))
	}
	return nil
}

// answerFor is the answer a link hash gives for an alert.
func answerFor(a *latch.SignInAlert, hash []byte) string {
	if string(a.NotMeHash) == string(hash) {
		return latch.AlertAnswerNotMe
	}
	return latch.AlertAnswerMe
}

// SignInAlert returns the usable alert with the link hash, unspent. See
// latch.DeviceStore.
func (s *Store) SignInAlert(ctx context.Context, hash []byte, at time.Time) (*latch.SignInAlert, string, error) {
	a, err := scanAlert(s.db.QueryRowContext(ctx, "SELECT "+alertColumns+` FROM sign_in_alerts
		WHERE (me_hash = ? OR not_me_hash = ?) AND answered_at = 0 AND expires_at > ?`, hash, hash, micros(at)))
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: sign-in alert: %w", translate(err))
	}
	return a, answerFor(a, hash), nil
}

// AnswerSignInAlert answers the usable alert with the link hash in one
// conditional UPDATE, confirming its device for "yes, it was me" in the
// same transaction. See latch.DeviceStore.
func (s *Store) AnswerSignInAlert(ctx context.Context, hash []byte, at time.Time) (*latch.SignInAlert, error) {
	var a *latch.SignInAlert
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = scanAlert(tx.QueryRowContext(ctx, `UPDATE sign_in_alerts
			SET answer = CASE WHEN not_me_hash = ? THEN ? ELSE ? END, answered_at = ?
			WHERE (me_hash = ? OR not_me_hash = ?) AND answered_at = 0 AND expires_at > ?
			RETURNING `+alertColumns,
			hash, latch.AlertAnswerNotMe, latch.AlertAnswerMe, micros(at), hash, hash, micros(at)))
		if err != nil {
			return translate(err)
		}
		if a.Answer == latch.AlertAnswerMe {
			_, err = tx.ExecContext(ctx, `UPDATE devices SET confirmed_at = ?
				WHERE id = ? AND user_id = ? AND confirmed_at = 0`, micros(at), a.DeviceID, a.UserID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: answer sign-in alert: %w", err)
	}
	return a, nil
}

// SignInAlerts returns the user's latest alerts. See latch.DeviceStore.
func (s *Store) SignInAlerts(ctx context.Context, userID string, limit int) ([]*latch.SignInAlert, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+alertColumns+
		" FROM sign_in_alerts WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?", userID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sign-in alerts of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []*latch.SignInAlert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: sign-in alerts of %s: %w", userID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: sign-in alerts of %s: %w", userID, err)
	}
	return out, nil
}
