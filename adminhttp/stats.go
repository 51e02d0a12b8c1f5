package adminhttp

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/outhook/outhook"
)

// The range of GET /stats, in hours back from now.
const (
	defaultStatsHours = 24
	maxStatsHours     = 720 // 30 days
)

// getDeliveryStats counts the deliveries created in the last hours
// (outhook.Client.DeliveryStats), for one subscription when
// subscriptionId is given.
func (h *Handler) getDeliveryStats(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "hours", "subscriptionId"); err != nil {
		return err
	}
	q := r.URL.Query()
	hours := defaultStatsHours
	if v := q.Get("hours"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || strconv.Itoa(n) != v || n < 1 || n > maxStatsHours {
			return badRequest("hours", fmt.Sprintf("must be an integer from 1 to %d", maxStatsHours))
		}
		hours = n
	}
	now := time.Now().UTC()
	st, err := h.client.DeliveryStats(r.Context(), outhook.DeliveryStatsQuery{
		SubscriptionID: q.Get("subscriptionId"),
		Since:          now.Add(-time.Duration(hours) * time.Hour),
		Until:          now,
	})
	if err != nil {
		return err
	}
	return h.writeJSON(w, http.StatusOK, st)
}
