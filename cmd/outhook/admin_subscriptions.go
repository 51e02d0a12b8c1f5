package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/outhook/outhook"
	"github.com/spf13/cobra"
)

func newAdminSubscriptionsCmd(o *adminOptions) *cobra.Command {
	return groupCmd("subscriptions", "List, show, enable and disable subscriptions",
		`subscriptions reads subscriptions and turns them on and off. Tables show each
subscription's ID, name, deliverer, events, state (enabled, or disabled with
the reason outhook gave) and its consecutive failed deliveries.`,
		`  outhook admin subscriptions list
  outhook admin subscriptions get sub_7k1...
  outhook admin subscriptions disable sub_7k1...`,
		newSubscriptionsListCmd(o),
		newSubscriptionCmd(o, "get", "Show a subscription",
			`get shows one subscription (GET /subscriptions/{id}); -o json includes its
config, secrets masked, and its health.`, http.MethodGet, ""),
		newSubscriptionCmd(o, "enable", "Enable a subscription",
			`enable turns a subscription on (POST /subscriptions/{id}/enable), clearing the
reason outhook gave if it disabled it, and its failure count.`, http.MethodPost, "enable"),
		newSubscriptionCmd(o, "disable", "Disable a subscription",
			`disable turns a subscription off (POST /subscriptions/{id}/disable): it keeps
its configuration and receives nothing until enabled.`, http.MethodPost, "disable"),
	)
}

func newSubscriptionsListCmd(o *adminOptions) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--limit N]",
		Short: "List subscriptions",
		Long: `list lists subscriptions, oldest first (GET /subscriptions), following the
pages to the end, or until --limit subscriptions.`,
		Example: `  outhook admin subscriptions list
  outhook admin subscriptions list --limit 10 -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErrorf("--limit %d: want 0 (all) or more", limit)
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			defer c.close()
			items, next, _, err := c.list(cmd.Context(), "subscriptions", nil, limit, 500)
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return writeList(cmd.OutOrStdout(), items, next)
			}
			subs := make([]outhook.Subscription, len(items))
			for i, raw := range items {
				if err := json.Unmarshal(raw, &subs[i]); err != nil {
					return fmt.Errorf("decoding subscription %d: %w", i+1, err)
				}
			}
			return writeSubscriptions(cmd.OutOrStdout(), subs...)
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many subscriptions; 0 lists all")
	return cmd
}

// newSubscriptionCmd returns a command that sends method to
// /subscriptions/{id}/action (no action: /subscriptions/{id}) and shows the
// subscription answered.
func newSubscriptionCmd(o *adminOptions, name, short, long, method, action string) *cobra.Command {
	return &cobra.Command{
		Use:     name + " SUBSCRIPTION_ID",
		Short:   short,
		Long:    long,
		Example: fmt.Sprintf("  outhook admin subscriptions %s sub_7k1...\n  outhook admin subscriptions %[1]s sub_7k1... -o json", name),
		Args:    idArg("SUBSCRIPTION_ID"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			route := []string{"subscriptions", args[0]}
			if action != "" {
				route = append(route, action)
			}
			raw, done, err := o.fetch(cmd, method, route, http.StatusOK)
			if err != nil || done {
				return err
			}
			var s outhook.Subscription
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("decoding the subscription: %w", err)
			}
			return writeSubscriptions(cmd.OutOrStdout(), s)
		}),
	}
}

func writeSubscriptions(out io.Writer, subs ...outhook.Subscription) error {
	t := newTable(out, "ID", "NAME", "DELIVERER", "EVENTS", "STATE", "FAILURES")
	for _, s := range subs {
		state := "enabled"
		if s.Disabled {
			state = "disabled"
			if s.DisabledReason != "" {
				state += ": " + truncate(s.DisabledReason, maxCell)
			}
		}
		t.row(s.ID, s.Name, s.DelivererID, strings.Join(s.Events, ","), state, strconv.Itoa(s.Health.ConsecutiveFailures))
	}
	return t.flush()
}
