package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, documented in the root command's help and in doc.go.
const (
	exitOK      = 0 // the command did what it was asked
	exitFailure = 1 // the operation ran and failed
	exitUsage   = 2 // the command line is wrong
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx and gives the signals back to their
	// default handlers: a second Ctrl-C ends the process at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process's exit code.
// Errors are printed to stderr as one "outhook: ..." line (an API error
// adds a line per field at fault), their control characters escaped.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	root := newRootCmd(stdin, stdout, stderr, env)
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage // an error cobra made itself: flags, arguments, unknown command
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	msg := err.Error()
	if code == exitUsage && cmd != nil {
		msg += fmt.Sprintf(" (see %q)", cmd.CommandPath()+" --help")
	}
	fmt.Fprintln(stderr, "outhook: "+printable(msg, true))
	return code
}

// exitError carries the exit code of an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns an error that exits with exitUsage.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// runE adapts a command's function: an error it returns exits with
// exitFailure unless it says otherwise (usageErrorf). Errors that reach run
// without an exit code are cobra's own, which are all usage errors.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		if err == nil {
			return nil
		}
		if _, ok := errors.AsType[*exitError](err); ok {
			return err
		}
		return &exitError{code: exitFailure, err: err}
	}
}

// idArg takes exactly one argument, the ID called name: not empty, not
// "." or ".." (which a URL path would resolve to another route), and
// without control characters.
func idArg(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("%s takes 1 argument, %s; got %d", cmd.CommandPath(), name, len(args))
		}
		switch id := args[0]; {
		case id == "":
			return usageErrorf("%s is empty", name)
		case id == "." || id == "..":
			return usageErrorf("%s %q is not an ID", name, id)
		case printable(id, false) != id:
			return usageErrorf("%s %q contains control characters", name, id)
		}
		return nil
	}
}

// groupCmd returns a command that only holds subcommands: alone it prints
// its help; with an unknown subcommand it is a usage error.
func groupCmd(use, short, long, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.AddCommand(subs...)
	return c
}

const rootLong = `outhook is the companion tool of the outhook library: it receives and checks
Standard Webhooks locally, makes signing secrets and keys, and drives a running
application's outhook admin API.

Commands:
  listen      receive webhooks on a local port, print them and check their signatures
  verify      check the signature of one saved HTTP request
  secret      make signing secrets and keys
  admin       list events, subscriptions and deliveries; redeliver and recover
  completion  print a shell completion script for bash, zsh, fish or powershell
              ("outhook completion bash --help" tells where to put it)
  help        print the help of a command: "outhook help admin recover"

Environment:
  OUTHOOK_ADMIN_URL  default of admin --url
  OUTHOOK_TOKEN      default of admin --token (sent as a bearer token)

Exit codes:
  0  success
  1  the operation ran and failed (signature not verified, the API answered
     an error, the API could not be reached, ...)
  2  usage error (unknown command, bad flag or argument, missing required flag)`

// newRootCmd returns the outhook command tree, reading and writing the
// given streams and reading the environment through env.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer, env func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "outhook",
		Short: "Receive, verify and manage outhook webhooks",
		Long:  rootLong,
		Example: `  outhook listen --secret whsec_... --script 500,200
  outhook secret new --type v1a
  outhook verify --secret whsec_... < saved/0001-dlv_2x.http
  OUTHOOK_ADMIN_URL=http://127.0.0.1:8080/admin/outhook/api outhook admin deliveries list --status failed`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.SetHelpCommand(newHelpCmd())
	root.AddCommand(
		newListenCmd(),
		newVerifyCmd(),
		newSecretCmd(),
		newAdminCmd(env),
	)
	return root
}

// newHelpCmd replaces cobra's help command, which prints "Unknown help
// topic" and exits 0: an unknown topic is a usage error.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long: `help prints the help of a command, as its --help flag does: "outhook help
admin recover" is "outhook admin recover --help". Alone, it prints outhook's.`,
		Example: `  outhook help listen
  outhook help admin deliveries list`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var subs []cobra.Completion
			if parent, rest, err := cmd.Root().Find(args); err == nil && len(rest) == 0 {
				for _, c := range parent.Commands() {
					if c.IsAvailableCommand() && strings.HasPrefix(c.Name(), toComplete) {
						subs = append(subs, cobra.CompletionWithDesc(c.Name(), c.Short))
					}
				}
			}
			return subs, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageErrorf("unknown help topic %q: no such command", strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag() // so that its help lists --help
			return target.Help()
		},
	}
}
