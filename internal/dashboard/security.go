package dashboard

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/store"
)

// securityRoutes registers the security pages.
func (d *Dashboard) securityRoutes() {
	d.mux.Handle("GET /dashboard/security", d.page(d.security))
}

// The security alerts are the audit entries of these actions. Failed logins
// and their lockouts are not in the audit log (only in the server's log),
// so they are not among them.
const (
	actionRefreshReuse = "session.refresh_reuse" // accounts: a refresh token used twice
	actionUserDisable  = "user.disable"          // the operator disabled a user
	actionPasswordSet  = "user.password_set"     // the operator set a user's password
)

// alertKind says what an alert's action means, in plain words.
type alertKind struct {
	What string
	// Severity is "high" or "medium"; the page shows it as a badge.
	Severity string
	Details  string
}

var alertKinds = map[string]alertKind{
	actionRefreshReuse: {
		What: "Session token reused", Severity: "high",
		Details: "A dashboard session's refresh token was used a second time, as happens when someone copied it. " +
			"The session was ended: its user must log in again. If this was not a double click or a restored browser tab, " +
			"the user's device or browser may be compromised.",
	},
	actionUserDisable: {
		What: "User disabled", Severity: "medium",
		Details: "The operator disabled this account and ended its sessions; it cannot log in until activated again.",
	},
	actionPasswordSet: {
		What: "Password reset by the operator", Severity: "medium",
		Details: "The operator set a new password for this account and ended its sessions.",
	},
}

// alertActions are the actions of alertKinds, for the store's filter.
var alertActions = func() []string {
	out := make([]string, 0, len(alertKinds))
	for a := range alertKinds {
		out = append(out, a)
	}
	return out
}()

// alertPageSize is the number of alerts a page shows.
const alertPageSize = 50

// pageAlerts returns the organization's alerts strictly before before
// (zero: the newest), newest first: want of them, and all those of the
// last one's instant, so that a page never ends between alerts of the same
// instant. more is the next page's cursor, zero when no older alert is left.
func (d *Dashboard) pageAlerts(ctx context.Context, orgID string, before time.Time, want int) (alerts []store.AuditEntry, more time.Time, err error) {
	if orgID == "" {
		return nil, time.Time{}, errors.New("dashboard: no organization for the security alerts")
	}
	f := store.AuditFilter{OrgID: orgID, Actions: alertActions, Before: before, Limit: want + 1}
	if alerts, err = d.o.Audit.ListAudit(ctx, f); err != nil || len(alerts) <= want {
		return alerts, time.Time{}, err
	}
	last := alerts[want-1].Time
	if alerts[want].Time.Equal(last) {
		// The rest of that instant, on this page too.
		tie, err := d.o.Audit.ListAudit(ctx, store.AuditFilter{
			OrgID: orgID, Actions: alertActions, Before: last.Add(time.Microsecond), Limit: 1000,
		})
		if err != nil {
			return nil, time.Time{}, err
		}
		alerts = alerts[:want]
		for _, e := range tie {
			if e.Time.Equal(last) && !slices.ContainsFunc(alerts, func(a store.AuditEntry) bool { return a.ID == e.ID }) {
				alerts = append(alerts, e)
			}
		}
		return alerts, last, nil
	}
	return alerts[:want], last, nil
}

// recentAlerts counts the organization's security alerts (refresh-token
// reuse, users disabled or given a new password by the operator) recorded
// at or after since, for a summary such as the overview's: one query, of at
// most 1,000 alerts (beyond, the count is a lower bound). The caller decides
// who may see it: the security page itself is for owners and admins only.
func (d *Dashboard) recentAlerts(ctx context.Context, orgID string, since time.Time) (int, error) {
	alerts, err := d.o.Audit.ListAudit(ctx, store.AuditFilter{OrgID: orgID, Actions: alertActions, Limit: 1000})
	n := 0
	for _, e := range alerts {
		if !e.Time.Before(since) {
			n++
		}
	}
	return n, err
}

// securityAlert is a row of the alerts table.
type securityAlert struct {
	Time     time.Time
	What     string
	Severity string
	ClientIP string
	// User is the e-mail address of the user the alert is about, or its
	// ID when it is gone.
	User    string
	Details string
	// By says who acted, when it was not the user: "the operator".
	By string
	// Session is the dashboard session a token reuse ended.
	Session string
}

// securityData is the security page's.
type securityData struct {
	CanView bool
	Alerts  []securityAlert
	// Before is this page's cursor ("" for the newest alerts), NextBefore
	// the next page's ("" when there are no older alerts).
	Before, NextBefore string
	// Recent counts the alerts of the last recentDays days (first page
	// only).
	Recent, RecentDays int
}

// recentDays is the span of the count at the top of the security page.
const recentDays = 7

var errBadBefore = apierror.Invalid("before", "before must be an RFC 3339 timestamp, from the link to older alerts")

func (d *Dashboard) security(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	v := view{Title: "Security", Nav: "security", Session: s, Org: s.Org, CSRF: s.CSRF}
	data := securityData{CanView: s.CanManage()}
	if !data.CanView {
		// As GET /api/v1/audit: the audit log is the owners' and
		// admins'.
		v.Data = data
		d.render(w, r, http.StatusOK, "security", v)
		return nil
	}
	var before time.Time
	if b := r.URL.Query().Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			return errBadBefore
		}
		before, data.Before = t, b
	}
	entries, more, err := d.pageAlerts(ctx, s.Org.ID, before, alertPageSize)
	if err != nil {
		return err
	}
	if before.IsZero() {
		data.RecentDays = recentDays
		if data.Recent, err = d.recentAlerts(ctx, s.Org.ID, d.o.Clock.Now().AddDate(0, 0, -recentDays)); err != nil {
			return err
		}
	}
	if !more.IsZero() {
		data.NextBefore = more.UTC().Format(time.RFC3339Nano)
	}
	users := map[string]string{} // user ID → e-mail
	for _, e := range entries {
		k := alertKinds[e.Action]
		a := securityAlert{Time: e.Time, What: k.What, Severity: k.Severity, ClientIP: e.IP, Details: k.Details, Session: e.Details["session"]}
		switch e.ActorType {
		case store.ActorAdmin:
			a.By = "the operator, through the admin API"
		case store.ActorCLI:
			a.By = "the operator, with the tollgate command"
		default: // the user, or nobody known (a token reuse)
		}
		if e.TargetType == "user" && e.TargetID != "" {
			if a.User, err = d.alertUser(ctx, s.Org.ID, e.TargetID, users); err != nil {
				return err
			}
		}
		data.Alerts = append(data.Alerts, a)
	}
	v.Data = data
	d.render(w, r, http.StatusOK, "security", v)
	return nil
}

// alertUser returns the e-mail address of user id of the organization, or
// the ID when the user is gone, caching it in users.
func (d *Dashboard) alertUser(ctx context.Context, orgID, id string, users map[string]string) (string, error) {
	if u, ok := users[id]; ok {
		return u, nil
	}
	name := id
	u, err := d.o.Accounts.FindUser(ctx, id)
	switch {
	case err == nil && u.OrgID == orgID:
		name = u.Email
	case err != nil && apierror.From(err).Status >= 500:
		return "", err
	}
	users[id] = name
	return name, nil
}
