package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

var reRequestID = regexp.MustCompile(`req_[0-9a-z]+-[0-9a-z]+`)

// The dashboard's webhook pages answer another organization's endpoint and
// delivery IDs, in every combination with the user's own, exactly as IDs
// that exist nowhere: the same status (404) and page; and nothing of the
// other organization changes.
func TestDashboardWebhooksOfAnotherOrganization(t *testing.T) {
	rc := newReceiver(t)
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL)+"webhooks: {allow_private_networks: true, allow_http: true}\n", nil)
	mine := dashLogin(t, n, "mine-hooks@example.com", "Mine Co")
	theirs := dashLogin(t, n, "their-hooks@example.com", "Their Co")
	ctx := context.Background()
	st := n.srv.Store()
	// create makes an endpoint with a test delivery.
	create := func(c *dashClient) (endpoint, delivery string) {
		t.Helper()
		p := c.post("/dashboard/webhooks", url.Values{"url": {rc.URL + "/hook"}, "event_types": {"*"}, "description": {"theirs"}})
		m := reEndpointLink.FindStringSubmatch(p.Body)
		if p.Status != http.StatusCreated || m == nil {
			t.Fatalf("create: %d", p.Status)
		}
		if p := c.post("/dashboard/webhooks/"+m[1]+"/test", nil); p.Status != http.StatusSeeOther {
			t.Fatalf("test: %d %s", p.Status, p.Body)
		}
		e, err := st.GetWebhookEndpoint(ctx, m[1])
		if err != nil {
			t.Fatal(err)
		}
		ds, err := st.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{OrgID: e.OrgID, EndpointID: e.ID})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries: %v, %v", ds, err)
		}
		return e.ID, ds[0].ID
	}
	myEP, myDL := create(mine)
	theirEP, theirDL := create(theirs)
	noEP, noDL := ids.New(ids.WebhookEndpoint), ids.New(ids.WebhookDelivery)
	before, err := st.GetWebhookEndpoint(ctx, theirEP)
	if err != nil {
		t.Fatal(err)
	}

	routes := []struct {
		method, path string // {ep} and {dl} are replaced
		form         url.Values
	}{
		{"GET", "/dashboard/webhooks/{ep}", nil},
		{"GET", "/dashboard/webhooks/{ep}?before={dl}", nil},
		{"POST", "/dashboard/webhooks/{ep}/edit", url.Values{"url": {rc.URL + "/mine"}, "event_types": {"*"}, "description": {"mine now"}}},
		{"POST", "/dashboard/webhooks/{ep}/rotate-secret", nil},
		{"POST", "/dashboard/webhooks/{ep}/test", nil},
		{"POST", "/dashboard/webhooks/{ep}/delete", nil},
		{"POST", "/dashboard/webhooks/{ep}/deliveries/{dl}/redeliver", nil},
	}
	cases := []struct {
		name           string
		ep, dl         string
		likeEP, likeDL string
		mineOnly       bool // the user's own endpoint: only routes with a delivery ID
	}{
		{"their endpoint, their delivery", theirEP, theirDL, noEP, noDL, false},
		{"their endpoint, my delivery", theirEP, myDL, noEP, myDL, false},
		{"my endpoint, their delivery", myEP, theirDL, myEP, noDL, true},
	}
	fill := func(s, ep, dl string) string { return strings.NewReplacer("{ep}", ep, "{dl}", dl).Replace(s) }
	send := func(method, path string, form url.Values) page {
		t.Helper()
		if method == "GET" {
			return mine.get(path)
		}
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		return mine.post(path, f)
	}
	for _, r := range routes {
		for _, c := range cases {
			if c.mineOnly && !strings.Contains(r.path, "{dl}") {
				continue
			}
			got := send(r.method, fill(r.path, c.ep, c.dl), r.form)
			want := send(r.method, fill(r.path, c.likeEP, c.likeDL), r.form)
			// Each page names its own request.
			got.Body = reRequestID.ReplaceAllString(got.Body, "req_…")
			want.Body = reRequestID.ReplaceAllString(want.Body, "req_…")
			if got.Status != want.Status || got.Body != want.Body || got.Location != want.Location {
				t.Errorf("%s %s, %s: %d %s\nas IDs of nowhere: %d %s\n%s", r.method, r.path, c.name, got.Status, got.Location, want.Status, want.Location, diffLines(got.Body, want.Body))
				continue
			}
			// The user's own endpoint page with ?before= of another
			// organization's delivery: the newest page, as for an unknown
			// cursor.
			if wantStatus := http.StatusNotFound; got.Status != wantStatus && !(c.ep == myEP && strings.Contains(r.path, "before=")) {
				t.Errorf("%s %s, %s: %d, want %d", r.method, r.path, c.name, got.Status, wantStatus)
			}
		}
	}

	after, err := st.GetWebhookEndpoint(ctx, theirEP)
	if err != nil {
		t.Fatalf("their endpoint: %v", err)
	}
	if after.Description != before.Description || after.URL != before.URL || !after.UpdatedAt.Equal(before.UpdatedAt) ||
		len(after.PreviousSecret) != 0 || string(after.Secret) != string(before.Secret) {
		t.Errorf("their endpoint changed: %+v", after)
	}
	if ds, err := st.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{EndpointID: theirEP}); err != nil || len(ds) != 1 || ds[0].ID != theirDL {
		t.Errorf("their deliveries: %v, %v", ds, err)
	}
}

// diffLines returns the lines of a and b that differ.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}
