package notification

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	valid := map[string]Provider{
		"webhook":              {Name: "w", Type: Webhook, Address: "https://hooks.example/keelson"},
		"webhook address file": {Name: "w", Type: Webhook, AddressFile: "/etc/hook", SecretFile: "/etc/key"},
		"slack":                {Name: "s", Type: Slack, AddressFile: "/etc/slack", Severity: SeverityError, Sources: []string{"apps"}},
		"github":               {Name: "g", Type: GitHub, TokenFile: "/etc/token"},
		"github enterprise":    {Name: "g", Type: GitHub, Address: "https://ghe.example/api/v3", TokenFile: "/t", Repository: "owner/repo", Context: "ci/keelson"},
		"gitlab subgroups":     {Name: "l", Type: GitLab, TokenFile: "/t", Repository: "group/sub/project", Severity: SeverityInfo},
	}
	for name, p := range valid {
		t.Run("valid "+name, func(t *testing.T) {
			if err := p.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	invalid := []struct {
		name string
		p    Provider
		want []string
	}{
		{"no name", Provider{Type: Webhook, Address: "https://h/x"}, []string{"name: required"}},
		{"no type", Provider{Name: "x"}, []string{"type: required"}},
		{"unknown type", Provider{Name: "x", Type: "teams"}, []string{`type: "teams" is not a provider type`}},
		{"webhook without address", Provider{Name: "x", Type: Webhook}, []string{"address: required for a webhook provider"}},
		{"slack without address", Provider{Name: "x", Type: Slack}, []string{"address: required for a slack provider"}},
		{"address and file", Provider{Name: "x", Type: Slack, Address: "https://h/x", AddressFile: "/f"}, []string{"address, addressFile: set one, not both"}},
		{"address not a URL", Provider{Name: "x", Type: Webhook, Address: "hooks.example/x"}, []string{"address: must be an absolute http:// or https:// URL"}},
		{"address not http", Provider{Name: "x", Type: Webhook, Address: "ftp://h/x"}, []string{"address: must be an absolute"}},
		{"github without token", Provider{Name: "x", Type: GitHub}, []string{"tokenFile: required for a github provider"}},
		{"gitlab without token", Provider{Name: "x", Type: GitLab}, []string{"tokenFile: required for a gitlab provider"}},
		{"github repository of three", Provider{Name: "x", Type: GitHub, TokenFile: "/t", Repository: "a/b/c"}, []string{`repository: "a/b/c": must be owner/repo`}},
		{"gitlab repository of one", Provider{Name: "x", Type: GitLab, TokenFile: "/t", Repository: "project"}, []string{`repository: "project": must be group/project`}},
		{"repository with empty segment", Provider{Name: "x", Type: GitLab, TokenFile: "/t", Repository: "group//project"}, []string{"repository:", "empty or spaced"}},
		{"secret on slack", Provider{Name: "x", Type: Slack, Address: "https://h/x", SecretFile: "/k"}, []string{"secretFile: only a webhook provider"}},
		{"token on webhook", Provider{Name: "x", Type: Webhook, Address: "https://h/x", TokenFile: "/t"}, []string{"tokenFile: only github and gitlab"}},
		{"repository on slack", Provider{Name: "x", Type: Slack, Address: "https://h/x", Repository: "o/r"}, []string{"repository: only github and gitlab"}},
		{"context on webhook", Provider{Name: "x", Type: Webhook, Address: "https://h/x", Context: "c"}, []string{"context: only github and gitlab"}},
		{"empty source", Provider{Name: "x", Type: Webhook, Address: "https://h/x", Sources: []string{"apps", ""}}, []string{"sources[1]: empty"}},
		{"unknown severity", Provider{Name: "x", Type: Webhook, Address: "https://h/x", Severity: "warning"}, []string{`severity: "warning" is not a severity`}},
		{"several problems", Provider{Type: GitHub, Severity: "x"}, []string{"name: required", "tokenFile: required", "severity:"}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want an error wrapping ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateKeepsAddressesOutOfErrors(t *testing.T) {
	secret := "T000/B000/XXXXsecretXXXX"
	p := Provider{Name: "x", Type: Slack, Address: "hooks.slack.com/services/" + secret}
	err := p.Validate()
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Validate = %v, want an error that does not quote the address", err)
	}
}

func TestNew(t *testing.T) {
	ok := Provider{Name: "a", Type: Webhook, Address: "https://h/x"}
	tests := []struct {
		name      string
		providers []Provider
		want      string
	}{
		{"valid", []Provider{ok, {Name: "b", Type: GitHub, TokenFile: "/t"}}, ""},
		{"none", nil, ""},
		{"duplicate names", []Provider{ok, ok}, `providers[1]: name: "a" is used by an earlier provider`},
		{"invalid provider", []Provider{ok, {Name: "b", Type: GitHub}}, `providers[1]: notification: invalid configuration: provider "b": tokenFile: required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.providers, Options{})
			if tc.want == "" {
				if err != nil || d == nil {
					t.Fatalf("New = %v, %v", d, err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want one wrapping ErrConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Client == nil || o.Client.Timeout != DefaultTimeout || o.Log == nil {
		t.Errorf("client or log not defaulted: %+v", o)
	}
	if o.MaxAttempts != 5 || o.Backoff != DefaultBackoff || o.MaxBackoff != DefaultMaxBackoff || o.QueueSize != 256 {
		t.Errorf("withDefaults = %+v", o)
	}
}
