package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchauth/latch/webhook"
)

// Webhook is one entry of the webhooks: list, a receiver of security
// events (package webhook). Errors name its settings as webhooks[N].url
// (N counted from 0), and the environment variable LATCH_WEBHOOKS_N_URL
// sets one of them (LATCH_WEBHOOKS_0_SECRET keeps a secret out of the
// file).
type Webhook struct {
	ID         string   `yaml:"id" doc:"names the hook in logs, metrics and message keys; default derived from url"`
	URL        string   `yaml:"url" doc:"receives the events: https, or http on a loopback host"`
	Secret     string   `yaml:"secret" doc:"HMAC key of the signatures, at least 32 characters; whsec_<base64> for Standard Webhooks libraries (use LATCH_WEBHOOKS_N_SECRET or secret_file)" secret:"true"`
	SecretFile string   `yaml:"secret_file" doc:"file holding the secret"`
	Events     []string `yaml:"events" doc:"event types sent (login_failed, refresh_token_reused…); empty: all"`
}

// Hooks returns the configured webhooks as package webhook takes them.
// Call it after Validate, which fills the IDs and reads secret files.
func (c *Config) Hooks() []webhook.Hook {
	var hooks []webhook.Hook
	for _, w := range c.Webhooks {
		hooks = append(hooks, webhook.Hook{ID: w.ID, URL: w.URL, Secret: w.Secret, Events: w.Events})
	}
	return hooks
}

// records reports whether the leaf v is a list of records (webhooks),
// set from a YAML sequence of mappings rather than from a string.
func records(v reflect.Value) bool {
	return v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct
}

// recordField returns the field of the record value r whose yaml tag is
// name, and the tags of all its fields.
func recordField(r reflect.Value, name string) (reflect.Value, []string) {
	var tags []string
	var found reflect.Value
	for i := range r.NumField() {
		tag, _, _ := strings.Cut(r.Type().Field(i).Tag.Get("yaml"), ",")
		tags = append(tags, tag)
		if tag == name {
			found = r.Field(i)
		}
	}
	return found, tags
}

// decodeRecords sets the list of records f (the setting key) from the
// YAML sequence n, each item a mapping of the record's settings; from
// names where a node came from. It records each setting's origin as
// key[N].field.
func decodeRecords(key string, n *yaml.Node, f reflect.Value, from func(*yaml.Node) string, origins map[string]origin) []error {
	var errs []error
	if n.Kind != yaml.SequenceNode {
		return []error{fmt.Errorf("invalid setting %s (from %s): must be a list of mappings (- url: …)", key, from(n))}
	}
	list := reflect.MakeSlice(f.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		at := fmt.Sprintf("%s[%d]", key, i)
		if item.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("invalid setting %s (from %s): must be a mapping of settings (url: …, secret: …)", at, from(item)))
			continue
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			sub := at + "." + k.Value
			field, tags := recordField(list.Index(i), k.Value)
			if !field.IsValid() {
				var cands []string
				for _, t := range tags {
					cands = append(cands, at+"."+t)
				}
				errs = append(errs, fmt.Errorf("unknown setting %s in %s%s", sub, from(k), Suggest(sub, cands)))
				continue
			}
			var raw string
			switch {
			case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
				continue
			case v.Kind == yaml.ScalarNode:
				raw = v.Value
			case v.Kind == yaml.SequenceNode && field.Kind() == reflect.Slice:
				var items []string
				for _, it := range v.Content {
					if it.Kind != yaml.ScalarNode {
						errs = append(errs, fmt.Errorf("invalid setting %s (from %s): list items must be plain values", sub, from(it)))
						continue
					}
					items = append(items, it.Value)
				}
				raw = strings.Join(items, ",")
			default:
				errs = append(errs, fmt.Errorf("invalid setting %s (from %s): must be a single value or a list of values", sub, from(k)))
				continue
			}
			if err := setValue(field, raw); err != nil {
				errs = append(errs, fmt.Errorf("invalid setting %s (from %s): %w", sub, from(k), err))
				continue
			}
			origins[sub] = origin{from: from(k), raw: raw}
		}
	}
	f.Set(list)
	return errs
}

// recordEnv matches the variable of one setting of one record:
// LATCH_WEBHOOKS_0_SECRET.
var recordEnv = regexp.MustCompile(`^(LATCH_[A-Z0-9_]+?)_([0-9]+)_([A-Z0-9_]+)$`)

// applyRecordEnv applies the variables of env that set a whole list of
// records (LATCH_WEBHOOKS, a YAML or JSON list) or one setting of one
// record (LATCH_WEBHOOKS_0_SECRET) to the records leaves, and returns the
// variables it used.
func applyRecordEnv(leaves map[string]reflect.Value, env map[string]string, origins map[string]origin) (map[string]bool, []error) {
	used := map[string]bool{}
	var errs []error
	for key, f := range leaves {
		if !records(f) {
			continue
		}
		name := EnvName(key)
		if raw, ok := env[name]; ok {
			used[name] = true
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(raw), &doc); err != nil || len(doc.Content) == 0 {
				errs = append(errs, fmt.Errorf("invalid setting %s (from %s): must be a YAML or JSON list of mappings", key, name))
			} else {
				errs = append(errs, decodeRecords(key, doc.Content[0], f, func(*yaml.Node) string { return name }, origins)...)
			}
		}
	}
	for name, raw := range env {
		m := recordEnv.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		for key, f := range leaves {
			if !records(f) || EnvName(key) != m[1] {
				continue
			}
			used[name] = true
			i, _ := strconv.Atoi(m[2])
			sub := fmt.Sprintf("%s[%d].%s", key, i, strings.ToLower(m[3]))
			if i >= f.Len() {
				errs = append(errs, fmt.Errorf("invalid setting %s (from %s): there is no %s[%d]; %s lists %d", sub, name, key, i, key, f.Len()))
				continue
			}
			field, tags := recordField(f.Index(i), strings.ToLower(m[3]))
			if !field.IsValid() {
				var cands []string
				for _, t := range tags {
					cands = append(cands, fmt.Sprintf("%s_%d_%s", m[1], i, strings.ToUpper(t)))
				}
				errs = append(errs, fmt.Errorf("unknown setting %s in the environment%s", name, Suggest(name, cands)))
				continue
			}
			if err := setValue(field, raw); err != nil {
				errs = append(errs, fmt.Errorf("invalid setting %s (from %s): %w", sub, name, err))
				continue
			}
			origins[sub] = origin{from: name, raw: raw}
		}
	}
	return used, errs
}

// eventType is what an event type looks like: login_failed.
var eventType = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// validateWebhooks checks the webhooks, reads their secret files and
// fills their default IDs. No error echoes a secret or a URL's query.
func (c *Config) validateWebhooks(bad func(key, format string, a ...any)) {
	ids := map[string]int{}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		at := func(field string) string { return fmt.Sprintf("webhooks[%d].%s", i, field) }
		if err := webhook.CheckURL(w.URL); err != nil {
			bad(at("url"), "%s", err)
		}
		if w.SecretFile != "" {
			if w.Secret != "" {
				bad(at("secret_file"), "set either secret (LATCH_WEBHOOKS_%d_SECRET) or secret_file, not both", i)
			} else if b, err := os.ReadFile(w.SecretFile); err != nil {
				bad(at("secret_file"), "%s", errors.Unwrap(err))
			} else if w.Secret = strings.TrimSpace(string(b)); w.Secret == "" {
				bad(at("secret_file"), "%s is empty", w.SecretFile)
			}
		}
		if w.Secret == "" && w.SecretFile == "" {
			bad(at("secret"), "is required: the receiver checks the signatures with it (set secret, LATCH_WEBHOOKS_%d_SECRET or secret_file)", i)
		} else if w.Secret != "" {
			if err := webhook.CheckSecret(w.Secret); err != nil {
				bad(at("secret"), "%s", err)
			}
		}
		if w.ID == "" {
			w.ID = webhook.DefaultID(w.URL)
		} else if err := webhook.CheckID(w.ID); err != nil {
			bad(at("id"), "%q %s", w.ID, err)
		}
		if j, dup := ids[w.ID]; dup {
			bad(at("id"), "%q is the id of webhooks[%d] too; give each webhook its own", w.ID, j)
		}
		ids[w.ID] = i
		for _, e := range w.Events {
			if !eventType.MatchString(e) {
				bad(at("events"), "%q is not an event type such as login_failed", e)
			}
		}
	}
}
