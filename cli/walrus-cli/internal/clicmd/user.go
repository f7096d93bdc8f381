package clicmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/walrus-go/walrus/node/auth"
)

// passwordEnv is where --user and `user hash` read a password from first.
const passwordEnv = "WALRUS_PASSWORD"

// errNoPassword is returned when no password source is available.
var errNoPassword = errors.New("no password: set " + passwordEnv + " or run from a terminal to be prompted")

func newUserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage user credentials for the node config",
		Args:  noArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "hash",
		Short: "Print the SCRAM-SHA-256 password_hash for a users entry",
		Long: `hash reads a password from WALRUS_PASSWORD, or else from standard input
(without echo when it is a terminal; otherwise the first line), and prints
the salted SCRAM-SHA-256 credential alone on one line, for the
password_hash of a users entry in the node config (docs/security.md).`,
		Example: `  WALRUS_PASSWORD='s3cret' walrus-cli user hash
  walrus-cli user hash            # prompts without echo`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := a.readPassword("Password to hash: ", true)
			if err != nil {
				return usagef("%v", err)
			}
			h, err := auth.HashPassword(pw)
			if err != nil {
				return usagef("%v", err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), h)
			return err
		},
	})
	return cmd
}

// resolvePassword fills a.password for --user before a command runs.
func (a *app) resolvePassword(cmd *cobra.Command) error {
	if a.user == "" || strings.HasPrefix(cmd.CommandPath(), "walrus-cli user") {
		return nil
	}
	pw, err := a.readPassword(fmt.Sprintf("Password for %s: ", a.user), false)
	if err != nil {
		return usagef("--user %s: %v", a.user, err)
	}
	a.password = pw
	return nil
}

// readPassword takes WALRUS_PASSWORD, else prompts without echo on a
// terminal stdin; a non-terminal stdin is read (first line) only when
// fromPipe is set, since other commands read their own data from it.
func (a *app) readPassword(prompt string, fromPipe bool) (string, error) {
	if pw := a.io.Getenv(passwordEnv); pw != "" {
		return pw, nil
	}
	if f, ok := a.io.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.io.Err, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.io.Err)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("empty password")
		}
		return string(b), nil
	}
	if !fromPipe || a.io.In == nil {
		return "", errNoPassword
	}
	line, err := bufio.NewReader(a.io.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty password on standard input: pipe the password or set " + passwordEnv)
	}
	return line, nil
}
