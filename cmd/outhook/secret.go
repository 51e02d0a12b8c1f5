package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/outhook/outhook/webhook"
	"github.com/spf13/cobra"
)

func newSecretCmd() *cobra.Command {
	return groupCmd("secret", "Make signing secrets and keys",
		`secret makes the keys that sign webhooks: "secret new" prints a new one.`,
		`  outhook secret new
  outhook secret new --type v1a --json`,
		newSecretNewCmd())
}

func newSecretNewCmd() *cobra.Command {
	var (
		typ    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "new [--type v1|v1a] [--json]",
		Short: "Print a new signing secret or key pair",
		Long: `new prints a new signing secret or key pair, from the system's secure random
source.

--type v1 (the default) prints a whsec_ secret: 32 random bytes for
HMAC-SHA256 signatures. The sender (the subscription's config) and the receiver
both hold it.

--type v1a prints an ed25519 key pair: the whsk_ signing key, which only the
sender (outhook) holds, and the whpk_ public key, which receivers verify with.

--json prints {"secret": "whsec_..."} or {"signingKey": "whsk_...",
"publicKey": "whpk_..."}.`,
		Example: `  outhook secret new
  outhook secret new --type v1a
  outhook secret new --json | jq -r .secret`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return newSecret(cmd.OutOrStdout(), typ, asJSON)
		}),
	}
	cmd.Flags().StringVar(&typ, "type", "v1", "v1 (whsec_ secret, HMAC) or v1a (whsk_/whpk_ ed25519 key pair)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newSecret(out io.Writer, typ string, asJSON bool) error {
	var (
		fields map[string]string
		text   string
	)
	switch typ {
	case "v1":
		secret, err := webhook.NewSecret()
		if err != nil {
			return err
		}
		fields = map[string]string{"secret": secret}
		text = secret + "\n"
	case "v1a":
		signingKey, publicKey, err := webhook.NewSigningKey()
		if err != nil {
			return err
		}
		fields = map[string]string{"signingKey": signingKey, "publicKey": publicKey}
		text = fmt.Sprintf("signing key (give to outhook): %s\npublic key (give to receivers): %s\n", signingKey, publicKey)
	default:
		return usageErrorf("--type %q: want v1 or v1a", typ)
	}
	if asJSON {
		b, err := json.MarshalIndent(fields, "", "  ")
		if err != nil {
			return err
		}
		text = string(b) + "\n"
	}
	_, err := io.WriteString(out, text)
	return err
}
