package notification

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrConfig is wrapped by the errors of Provider.Validate and New.
var ErrConfig = errors.New("notification: invalid configuration")

// ErrDelivery is wrapped by the errors of a failed delivery, which the
// Dispatcher logs.
var ErrDelivery = errors.New("notification: delivery failed")

// ProviderType names the kind of endpoint a provider delivers to.
type ProviderType string

// The provider types.
const (
	// Webhook POSTs the event as JSON to Provider.Address.
	Webhook ProviderType = "webhook"
	// Slack POSTs a one-line text to a Slack-compatible incoming webhook.
	Slack ProviderType = "slack"
	// GitHub sets a commit status on the synced commit.
	GitHub ProviderType = "github"
	// GitLab sets a commit status on the synced commit.
	GitLab ProviderType = "gitlab"
)

// Default API base URLs of the commit-status providers.
const (
	// DefaultGitHubAddress is GitHub's API; GitHub Enterprise's is
	// https://<host>/api/v3.
	DefaultGitHubAddress = "https://api.github.com"
	// DefaultGitLabAddress is gitlab.com's API; a self-managed GitLab's is
	// https://<host>/api/v4.
	DefaultGitLabAddress = "https://gitlab.com/api/v4"
)

// Provider is the configuration of one provider, an item of the server
// config file's notifications.providers list. Files named here are read at
// each delivery, so that secrets rotate without a restart; their content is
// trimmed of surrounding white space.
type Provider struct {
	// Name is required and unique among providers; logs name it.
	Name string
	// Type is required.
	Type ProviderType
	// Address is where to deliver: for a webhook the URL to POST to
	// (required unless AddressFile); for Slack the incoming-webhook URL
	// (required unless AddressFile); for GitHub the API base URL, default
	// DefaultGitHubAddress; for GitLab the API base URL, default
	// DefaultGitLabAddress.
	Address string
	// AddressFile is a file whose content is the Address, for addresses
	// that are secrets (Slack webhook URLs are). Not with Address.
	AddressFile string
	// SecretFile, for a webhook only, holds an HMAC-SHA256 key: each body is
	// signed in header X-Keelson-Signature-256 as sha256=<hex>, like
	// GitHub's X-Hub-Signature-256.
	SecretFile string
	// TokenFile, required for GitHub and GitLab and used by them only,
	// holds the API token: sent to GitHub as "Authorization: Bearer
	// <token>", to GitLab as "PRIVATE-TOKEN: <token>".
	TokenFile string
	// Repository, for GitHub "owner/repo", for GitLab
	// "group/subgroup/project". When empty it is derived from each event's
	// URL; an event whose repository cannot be told is dropped with a log
	// line.
	Repository string
	// Context is the commit status's context (GitHub) or name (GitLab);
	// default "keelson/<source>".
	Context string
	// Sources, when not empty, limits the provider to events of these
	// sources.
	Sources []string
	// Severity is the least severity sent: SeverityInfo (the default) sends
	// everything, SeverityError failures only.
	Severity Severity
}

// commitStatus reports whether p sets commit statuses.
func (p Provider) commitStatus() bool { return p.Type == GitHub || p.Type == GitLab }

// Validate reports what is wrong with p, each problem naming the field
// ("address: required for a webhook provider"). Errors wrap ErrConfig.
func (p Provider) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p.Name == "" {
		add("name: required")
	}
	switch p.Type {
	case Webhook, Slack, GitHub, GitLab:
	case "":
		add("type: required: one of webhook, slack, github, gitlab")
	default:
		add("type: %q is not a provider type: one of webhook, slack, github, gitlab", p.Type)
	}
	problems = append(problems, p.addressProblems()...)
	problems = append(problems, p.typeFieldProblems()...)
	for i, s := range p.Sources {
		if s == "" {
			add("sources[%d]: empty", i)
		}
	}
	switch p.Severity {
	case "", SeverityInfo, SeverityError:
	default:
		add("severity: %q is not a severity: info or error", p.Severity)
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrConfig, p.label(), strings.Join(problems, "; "))
}

// label names p in errors.
func (p Provider) label() string {
	if p.Name == "" {
		return "provider without a name"
	}
	return fmt.Sprintf("provider %q", p.Name)
}

// addressProblems checks Address and AddressFile. Their values stay out of
// the messages: a Slack address is a secret.
func (p Provider) addressProblems() []string {
	switch {
	case p.Address != "" && p.AddressFile != "":
		return []string{"address, addressFile: set one, not both"}
	case p.Address != "":
		if err := checkHTTPURL(p.Address); err != nil {
			return []string{"address: " + err.Error()}
		}
	case p.AddressFile == "" && (p.Type == Webhook || p.Type == Slack):
		return []string{fmt.Sprintf("address: required for a %s provider (or addressFile)", p.Type)}
	}
	return nil
}

// typeFieldProblems checks the fields that only some types use.
func (p Provider) typeFieldProblems() []string {
	var problems []string
	if p.SecretFile != "" && p.Type != Webhook {
		problems = append(problems, "secretFile: only a webhook provider signs its requests")
	}
	if !p.commitStatus() {
		for _, f := range []struct{ name, value string }{{"tokenFile", p.TokenFile}, {"repository", p.Repository}, {"context", p.Context}} {
			if f.value != "" {
				problems = append(problems, f.name+": only github and gitlab providers use it")
			}
		}
		return problems
	}
	if p.TokenFile == "" {
		problems = append(problems, fmt.Sprintf("tokenFile: required for a %s provider", p.Type))
	}
	if p.Repository != "" {
		if err := checkRepository(p.Type, p.Repository); err != nil {
			problems = append(problems, "repository: "+err.Error())
		}
	}
	return problems
}

// checkHTTPURL accepts an absolute http or https URL with a host, and says
// what is wrong otherwise without quoting it.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http:// or https:// URL")
	}
	return nil
}

// checkRepository checks a repository's form: "owner/repo" on GitHub,
// "group/.../project" on GitLab.
func checkRepository(t ProviderType, repo string) error {
	parts := strings.Split(repo, "/")
	for _, part := range parts {
		if part == "" || strings.TrimSpace(part) != part {
			return fmt.Errorf("%q: empty or spaced path segment", repo)
		}
	}
	if t == GitHub && len(parts) != 2 {
		return fmt.Errorf("%q: must be owner/repo", repo)
	}
	if len(parts) < 2 {
		return fmt.Errorf("%q: must be group/project (subgroups allowed)", repo)
	}
	return nil
}
