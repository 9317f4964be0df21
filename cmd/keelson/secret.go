package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

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
	cmd := &cobra.Command{
		Use:   "recipients --key-file FILE",
		Short: "Print the public age recipients of decryption keys",
		Long: `Print the public age recipients (age1…) of the keys a server decrypts with,
one per line: what authors encrypt for (keelson secret encrypt
--recipients-file, or sops encrypt --age). They are public; the key files are not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(keyFiles) == 0 {
				return errors.New("--key-file: name the server's --decryption-key-file")
			}
			keys, err := sops.LoadKeyFiles(keyFiles...)
			if err != nil {
				return err
			}
			for _, r := range keys.Recipients() {
				fmt.Fprintln(cmd.OutOrStdout(), r)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "key-file", nil, "an age key file, as given to keelson server --decryption-key-file; repeat for more")
	return cmd
}

func newSecretEncryptCmd() *cobra.Command {
	var recipients []string
	var recipientsFile, output string
	var inPlace bool
	cmd := &cobra.Command{
		Use:   "encrypt FILE",
		Short: "Encrypt a Secret manifest's values for the cluster's age recipients",
		Long: `Encrypt the data and stringData values of a Secret manifest (YAML, or JSON
by its .json name) for age recipients, as sops encrypt --age R
--encrypted-regex '^(data|stringData)$' does: kind, names and keys stay
readable for review, values do not. The file is then committed; the sops
command line reads and edits it too. No sops binary is needed.`,
		Example: `  keelson secret recipients --key-file /etc/keelson/age.key > .keelson-recipients
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
				return errors.New("no recipients: give --recipient age1… or --recipients-file (keelson secret recipients prints them)")
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
	return cmd
}

// readRecipients reads age recipients, one per line, skipping empty lines
// and # comments.
func readRecipients(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--recipients-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "age1") {
			return nil, fmt.Errorf("%s:%d: not an age recipient (age1…)", file, n)
		}
		out = append(out, line)
	}
	return out, sc.Err()
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
