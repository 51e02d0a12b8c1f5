package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/outhook/outhook"
	"github.com/spf13/cobra"
)

// deliverySummary is an item of GET /deliveries: a delivery without its
// attempts, with their number.
type deliverySummary struct {
	outhook.Delivery
	AttemptCount int `json:"attemptCount"`
}

func newAdminDeliveriesCmd(o *adminOptions) *cobra.Command {
	return groupCmd("deliveries", "List and show deliveries",
		`deliveries reads deliveries: one event on its way to one subscription, with
its attempts.`,
		`  outhook admin deliveries list --status failed --since 2h
  outhook admin deliveries get dlv_2x9...`,
		newDeliveriesListCmd(o),
		newDeliveriesGetCmd(o),
	)
}

type deliveryFilter struct {
	subscription, event, status, since, until string
	limit                                     int
}

// query returns the query of GET /deliveries, times relative to now.
func (f *deliveryFilter) query(now time.Time) (url.Values, error) {
	if f.limit < 1 {
		return nil, usageErrorf("--limit %d: want 1 or more", f.limit)
	}
	switch outhook.DeliveryStatus(f.status) {
	case "", outhook.DeliveryPending, outhook.DeliverySucceeded, outhook.DeliveryFailed:
	default:
		return nil, usageErrorf("--status %q: want pending, succeeded or failed", f.status)
	}
	q := url.Values{}
	for name, v := range map[string]string{"subscriptionId": f.subscription, "eventId": f.event, "status": f.status} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for _, tf := range []struct{ flag, value string }{{"since", f.since}, {"until", f.until}} {
		if tf.value == "" {
			continue
		}
		t, err := parseTimeFlag(tf.flag, tf.value, now)
		if err != nil {
			return nil, err
		}
		q.Set(tf.flag, t.UTC().Format(time.RFC3339Nano))
	}
	return q, nil
}

func newDeliveriesListCmd(o *adminOptions) *cobra.Command {
	var f deliveryFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, newest first",
		Long: `list lists deliveries, newest first (GET /deliveries), at most --limit (50),
following the pages as needed. --since and --until take an RFC 3339 time or a
duration before now (30m, 2h, 7d); since is included, until excluded. The
table's LAST ERROR is the error of the latest failed attempt, cut short; see
"deliveries get" for every attempt.`,
		Example: `  outhook admin deliveries list
  outhook admin deliveries list --status failed --since 2h
  outhook admin deliveries list --subscription sub_7k1... --event incident.incident.created --limit 200 -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			q, err := f.query(time.Now())
			if err != nil {
				return err
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			defer c.close()
			items, next, more, err := c.list(cmd.Context(), "deliveries", q, f.limit, 500)
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return writeList(cmd.OutOrStdout(), items, next)
			}
			if err := writeDeliveries(cmd.OutOrStdout(), items); err != nil {
				return err
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "(more deliveries match: raise --limit to see them)\n")
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.subscription, "subscription", "", "only deliveries to this subscription ID")
	fl.StringVar(&f.event, "event", "", "only deliveries of this event ID")
	fl.StringVar(&f.status, "status", "", "only deliveries in this status: pending, succeeded or failed")
	fl.StringVar(&f.since, "since", "", "only deliveries created at or after this time (RFC 3339, or a duration before now: 2h)")
	fl.StringVar(&f.until, "until", "", "only deliveries created before this time (RFC 3339, or a duration before now)")
	fl.IntVar(&f.limit, "limit", 50, "list at most this many deliveries")
	return cmd
}

func writeDeliveries(out io.Writer, items []json.RawMessage) error {
	t := newTable(out, "ID", "CREATED", "EVENT", "SUBSCRIPTION", "STATUS", "ATTEMPTS", "LAST ERROR")
	for i, raw := range items {
		var d deliverySummary
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decoding delivery %d: %w", i+1, err)
		}
		t.row(d.ID, formatTime(d.CreatedAt), d.EventID, d.SubscriptionID, string(d.Status),
			strconv.Itoa(d.AttemptCount), truncate(d.LastError, maxCell))
	}
	return t.flush()
}

func newDeliveriesGetCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get DELIVERY_ID",
		Short: "Show a delivery and its attempts",
		Long: `get shows one delivery (GET /deliveries/{id}) and a table of its attempts:
number, trigger (scheduled, manual, test), start, duration, outcome
(succeeded, retryable, permanent), HTTP status, error class and error. -o json
adds the payload and the headers sent and received.`,
		Example: `  outhook admin deliveries get dlv_2x9...
  outhook admin deliveries get dlv_2x9... -o json | jq .attempts`,
		Args: idArg("DELIVERY_ID"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			raw, done, err := o.fetch(cmd, http.MethodGet, []string{"deliveries", args[0]}, http.StatusOK)
			if err != nil || done {
				return err
			}
			var d outhook.Delivery
			if err := json.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("decoding the delivery: %w", err)
			}
			return writeDelivery(cmd.OutOrStdout(), &d)
		}),
	}
}

func writeDelivery(out io.Writer, d *outhook.Delivery) error {
	kv := newTable(out)
	for _, f := range [][2]string{
		{"ID:", d.ID},
		{"Status:", string(d.Status)},
		{"Event:", d.EventID},
		{"Subscription:", d.SubscriptionID},
		{"Deliverer:", d.DelivererID},
		{"Message:", d.MessageID},
		{"Occurred:", formatTime(d.OccurredAt)},
		{"Created:", formatTime(d.CreatedAt)},
		{"Updated:", formatTime(d.UpdatedAt)},
		{"Next attempt:", formatTime(d.NextAttemptAt)},
		{"External ID:", d.ExternalID},
		{"Last error:", d.LastError},
	} {
		kv.row(f[0], f[1])
	}
	if err := kv.flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	t := newTable(out, "ATTEMPT", "TRIGGER", "STARTED", "DURATION", "OUTCOME", "STATUS", "CLASS", "ERROR")
	for _, a := range d.Attempts {
		status := ""
		if a.StatusCode != 0 {
			status = strconv.Itoa(a.StatusCode)
		}
		t.row(strconv.Itoa(a.Number), string(a.Trigger), formatTime(a.StartedAt), formatDuration(a.Duration),
			string(a.Outcome), status, a.ErrorClass, truncate(a.Error, 2*maxCell))
	}
	return t.flush()
}

// formatDuration rounds an attempt's duration for people.
func formatDuration(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func newAdminRedeliverCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "redeliver DELIVERY_ID",
		Short: "Send a finished delivery again",
		Long: `redeliver sends a failed or succeeded delivery again (POST
/deliveries/{id}/redeliver). It keeps its ID, so receivers recognise it, and
its next attempt is recorded as manual. A delivery still pending is refused
(409).`,
		Example: `  outhook admin redeliver dlv_2x9...
  outhook admin deliveries list --status failed -o json | jq -r '.items[].id' | xargs -n1 outhook admin redeliver`,
		Args: idArg("DELIVERY_ID"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			raw, done, err := o.fetch(cmd, http.MethodPost, []string{"deliveries", args[0], "redeliver"}, http.StatusAccepted)
			if err != nil || done {
				return err
			}
			var d outhook.Delivery
			if err := json.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("decoding the delivery: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "redelivery of %s queued: status %s, %d attempt(s) so far\n",
				printable(d.ID, false), printable(string(d.Status), false), len(d.Attempts))
			return err
		}),
	}
}

func newAdminRecoverCmd(o *adminOptions) *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use:   "recover SUBSCRIPTION_ID --since T [--until T]",
		Short: "Redeliver a subscription's failed deliveries of a time range",
		Long: `recover redelivers the failed deliveries of a subscription created from
--since (included) to --until (excluded; default now), keeping their IDs (POST
/subscriptions/{id}/recover). The API works through at most 1,000 per request;
recover repeats the request until the range is done and prints the total.
Running it again sends nothing twice: redelivered deliveries are pending until
their new attempts end. The times are RFC 3339, or a duration before now (2h,
7d). -o json prints {"redelivered": N}, the sum over the requests.`,
		Example: `  # After fixing an endpoint that was down all morning:
  outhook admin recover sub_7k1... --since 2026-01-02T06:00:00Z --until 2026-01-02T12:00:00Z
  outhook admin recover sub_7k1... --since 24h`,
		Args: idArg("SUBSCRIPTION_ID"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			body := map[string]any{}
			for _, tf := range []struct{ flag, value string }{{"since", since}, {"until", until}} {
				if tf.value == "" {
					continue
				}
				t, err := parseTimeFlag(tf.flag, tf.value, now)
				if err != nil {
					return err
				}
				body[tf.flag] = t.UTC().Format(time.RFC3339Nano)
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			defer c.close()
			total, err := recoverAll(cmd.Context(), c, args[0], body)
			if err != nil {
				if total > 0 {
					return fmt.Errorf("%w (after redelivering %d)", err, total)
				}
				return err
			}
			if o.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), fmt.Appendf(nil, `{"redelivered":%d}`, total))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "redelivered %d failed deliveries of subscription %s\n", total, args[0])
			return err
		}),
	}
	cmd.Flags().StringVar(&since, "since", "", "start of the range, included (RFC 3339, or a duration before now: 24h)")
	cmd.Flags().StringVar(&until, "until", "", "end of the range, excluded (RFC 3339, or a duration before now); default now")
	_ = cmd.MarkFlagRequired("since")
	return cmd
}

// recoverAll repeats the recover request of subscription id, body its
// range, until the API answers no nextCursor, and returns the number of
// deliveries redelivered. A nextCursor that does not move on (one answered
// before, including the cursor just sent) is an error, as are more than
// maxPages requests.
func recoverAll(ctx context.Context, c *apiClient, id string, body map[string]any) (total int, err error) {
	var rounds pager
	for {
		raw, err := c.do(ctx, http.MethodPost, []string{"subscriptions", id, "recover"}, nil, body, http.StatusOK)
		if err != nil {
			return total, err
		}
		var res struct {
			Redelivered int    `json:"redelivered"`
			NextCursor  string `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return total, fmt.Errorf("decoding the recover answer: %w", err)
		}
		total += res.Redelivered
		if res.NextCursor == "" {
			return total, nil
		}
		if err := rounds.next("recovering", res.NextCursor); err != nil {
			return total, err
		}
		body["cursor"] = res.NextCursor
	}
}
