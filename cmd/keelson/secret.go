package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/gitsync/sops"
)

func newSecretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Encrypt Secrets for Git with sops and age",
		Long: `Secrets live in Git encrypted with sops for the cluster's age keys: the
server decrypts them at sync with its --decryption-key-file, and nothing
but the key holders can read them in the repository.`,
	}
	cmd.AddCommand(newSecretRecipientsCmd(), newSecretEncryptCmd())
	return cmd
}

func newSecretRecipientsCmd() *cobra.Command {
	var keyFiles []string
	var c clientFlags
	cmd := &cobra.Command{
		Use:   "recipients [--key-file FILE]",
		Short: "Print the public age recipients of the cluster's decryption keys",
		Long: `Print the public age recipients (age1…) of the keys the cluster decrypts with,
one per line: what authors encrypt for (keelson secret encrypt, or sops
encrypt --age). The leading server publishes them in the ConfigMap
kube-system/keelson-sops-recipients; with --key-file they are read from key
files instead, without a cluster. They are public; the key files are not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var recipients []string
			if len(keyFiles) > 0 {
				keys, err := sops.LoadKeyFiles(keyFiles...)
				if err != nil {
					return err
				}
				recipients = keys.Recipients()
			} else {
				var err error
				if recipients, err = clusterRecipients(cmd.Context(), &c); err != nil {
					return err
				}
			}
			for _, r := range recipients {
				fmt.Fprintln(cmd.OutOrStdout(), r)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "key-file", nil, "read the recipients of this age key file (as given to keelson server --decryption-key-file) instead of the cluster's; repeat for more")
	c.add(cmd)
	return cmd
}

// clusterRecipients reads the age recipients the leading server publishes.
func clusterRecipients(ctx context.Context, c *clientFlags) ([]string, error) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cm, err := cs.CoreV1().ConfigMaps(gitsync.RecipientsNamespace).Get(ctx, gitsync.RecipientsName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("the cluster publishes no age recipients (no ConfigMap %s/%s): its servers have no --decryption-key-file", gitsync.RecipientsNamespace, gitsync.RecipientsName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's age recipients: %w", err)
	}
	where := fmt.Sprintf("ConfigMap %s/%s", gitsync.RecipientsNamespace, gitsync.RecipientsName)
	return parseRecipients(where, cm.Data[gitsync.RecipientsKey])
}

func newSecretEncryptCmd() *cobra.Command {
	var recipients []string
	var recipientsFile, output string
	var inPlace bool
	var c clientFlags
	cmd := &cobra.Command{
		Use:   "encrypt FILE",
		Short: "Encrypt a Secret manifest's values for the cluster's age recipients",
		Long: `Encrypt the data and stringData values of a Secret manifest (YAML, or JSON
by its .json name) for age recipients, as sops encrypt --age R
--encrypted-regex '^(data|stringData)$' does: kind, names and keys stay
readable for review, values do not. The file is then committed; the sops
command line reads and edits it too. No sops binary is needed. Without
--recipient or --recipients-file, the cluster's recipients are used
(keelson secret recipients).`,
		Example: `  keelson secret encrypt --in-place deploy/db-secret.yaml
  keelson secret recipients > .keelson-recipients    # then, without a cluster at hand:
  keelson secret encrypt --recipients-file .keelson-recipients --in-place deploy/db-secret.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if recipientsFile != "" {
				more, err := readRecipients(recipientsFile)
				if err != nil {
					return err
				}
				recipients = append(recipients, more...)
			}
			if len(recipients) == 0 {
				var err error
				if recipients, err = clusterRecipients(cmd.Context(), &c); err != nil {
					return fmt.Errorf("%w; or give --recipient age1… or --recipients-file", err)
				}
			}
			file := args[0]
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			enc, err := sops.EncryptSecret(file, data, recipients)
			if err != nil {
				return err
			}
			switch {
			case inPlace:
				return writeFileAtomic(file, enc, 0o644)
			case output != "":
				return writeFileAtomic(output, enc, 0o644)
			}
			_, err = cmd.OutOrStdout().Write(enc)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "an age recipient (age1…) to encrypt for; repeat for more")
	cmd.Flags().StringVar(&recipientsFile, "recipients-file", "", "a file of age recipients, one per line (# comments allowed)")
	cmd.Flags().BoolVarP(&inPlace, "in-place", "i", false, "replace FILE with its encrypted form")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the encrypted file here instead of standard output")
	cmd.MarkFlagsMutuallyExclusive("in-place", "output")
	c.add(cmd)
	return cmd
}

// readRecipients reads a file of age recipients.
func readRecipients(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--recipients-file: %w", err)
	}
	return parseRecipients(file, string(b))
}

// parseRecipients reads age recipients, one per line, skipping empty lines
// and # comments; where names their origin in errors.
func parseRecipients(where, text string) ([]string, error) {
	var out []string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "age1") {
			return nil, fmt.Errorf("%s:%d: not an age recipient (age1…)", where, n+1)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no age recipient", where)
	}
	return out, nil
}

// writeFileAtomic replaces file with data through a temporary file in its
// folder, so that no reader ever sees half a file and a failure leaves the
// old one.
func writeFileAtomic(file string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
