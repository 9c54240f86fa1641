package webhooks_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/webhooks"
)

// recordingStore records which store methods a request calls, in order.
type recordingStore struct {
	webhooks.Store
	mu    sync.Mutex
	calls []string
}

func (s *recordingStore) record(name string) {
	s.mu.Lock()
	s.calls = append(s.calls, name)
	s.mu.Unlock()
}

func (s *recordingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func (s *recordingStore) GetWebhookEndpoint(ctx context.Context, id string) (store.WebhookEndpoint, error) {
	s.record("GetWebhookEndpoint")
	return s.Store.GetWebhookEndpoint(ctx, id)
}

func (s *recordingStore) UpdateWebhookEndpoint(ctx context.Context, id string, f func(store.WebhookEndpoint) (store.WebhookEndpoint, error), a store.AuditEntry) (store.WebhookEndpoint, error) {
	s.record("UpdateWebhookEndpoint")
	return s.Store.UpdateWebhookEndpoint(ctx, id, f, a)
}

func (s *recordingStore) DeleteWebhookEndpoint(ctx context.Context, id string, at time.Time, a store.AuditEntry) error {
	s.record("DeleteWebhookEndpoint")
	return s.Store.DeleteWebhookEndpoint(ctx, id, at, a)
}

func (s *recordingStore) EnqueueWebhookEvent(ctx context.Context, ev store.WebhookEvent) (int, error) {
	s.record("EnqueueWebhookEvent")
	return s.Store.EnqueueWebhookEvent(ctx, ev)
}

func (s *recordingStore) GetWebhookDelivery(ctx context.Context, id string) (store.WebhookDelivery, error) {
	s.record("GetWebhookDelivery")
	return s.Store.GetWebhookDelivery(ctx, id)
}

func (s *recordingStore) ListWebhookDeliveries(ctx context.Context, f store.WebhookDeliveryFilter) ([]store.WebhookDelivery, error) {
	if f.OrgID == "" {
		s.record("ListWebhookDeliveries of every organization")
	} else {
		s.record("ListWebhookDeliveries")
	}
	return s.Store.ListWebhookDeliveries(ctx, f)
}

func (s *recordingStore) ListWebhookAttempts(ctx context.Context, id string) ([]store.WebhookAttempt, error) {
	s.record("ListWebhookAttempts")
	return s.Store.ListWebhookAttempts(ctx, id)
}

func (s *recordingStore) RedeliverWebhook(ctx context.Context, id string, at time.Time, a store.AuditEntry) (store.WebhookDelivery, error) {
	s.record("RedeliverWebhook")
	return s.Store.RedeliverWebhook(ctx, id, at, a)
}

// TestAnotherOrganizationsIDs calls every route that takes an ID from the
// URL with another organization's endpoint and delivery IDs, in every
// combination with the caller's own, and with IDs that exist nowhere: the
// answers are the same, status and body, 404 NOT_FOUND (400 for a
// cursor), after the same store calls; and nothing of the other
// organization changes.
func TestAnotherOrganizationsIDs(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	rec := &recordingStore{Store: e.store}
	svc := e.service(func(o *webhooks.Options) { o.Store = rec })
	api := webhooks.NewAPI(svc, (&fakeAuth{}).authorize, 64<<10)
	mine := client{t: t, api: api, org: e.org}
	theirs := client{t: t, api: api, org: e.newOrg()}

	// Each organization has an endpoint with a delivered test event, and
	// a deleted endpoint whose delivery log remains.
	setup := func(c client) (endpoint, delivery, deleted string) {
		t.Helper()
		var ep webhooks.Endpoint
		c.do("POST", "/api/v1/webhooks", `{"url":"`+rcv.url("/hook")+`","event_types":["*"]}`).decode(t, http.StatusCreated, &ep)
		var d webhooks.Delivery
		c.do("POST", "/api/v1/webhooks/"+ep.ID+"/test", "").decode(t, http.StatusAccepted, &d)
		var gone webhooks.Endpoint
		c.do("POST", "/api/v1/webhooks", `{"url":"`+rcv.url("/gone")+`","event_types":["*"]}`).decode(t, http.StatusCreated, &gone)
		c.do("POST", "/api/v1/webhooks/"+gone.ID+"/test", "").decode(t, http.StatusAccepted, nil)
		e.deliverDue(2)
		c.do("DELETE", "/api/v1/webhooks/"+gone.ID, "").decode(t, http.StatusOK, nil)
		return ep.ID, d.ID, gone.ID
	}
	myEP, myDL, myGone := setup(mine)
	theirEP, theirDL, theirGone := setup(theirs)
	noEP, noDL := ids.New(ids.WebhookEndpoint), ids.New(ids.WebhookDelivery)

	routes := []struct {
		method, path, body string // {ep} and {dl} are replaced
	}{
		{"GET", "/api/v1/webhooks/{ep}", ""},
		{"PATCH", "/api/v1/webhooks/{ep}", `{"description":"mine now"}`},
		{"DELETE", "/api/v1/webhooks/{ep}", ""},
		{"POST", "/api/v1/webhooks/{ep}/rotate-secret", ""},
		{"POST", "/api/v1/webhooks/{ep}/test", ""},
		{"GET", "/api/v1/webhooks/{ep}/deliveries", ""},
		{"GET", "/api/v1/webhooks/{ep}/deliveries?status=succeeded&limit=5", ""},
		{"GET", "/api/v1/webhooks/{ep}/deliveries?before={dl}", ""},
		{"GET", "/api/v1/webhooks/{ep}/deliveries/{dl}", ""},
		{"POST", "/api/v1/webhooks/{ep}/deliveries/{dl}/redeliver", ""},
	}
	// Each combination of the other organization's IDs, and the IDs of
	// nowhere it must answer like. A deleted endpoint of theirs is as
	// unknown as any.
	cases := []struct {
		name           string
		ep, dl         string
		likeEP, likeDL string
		mineOnly       bool
	}{
		{"their endpoint, their delivery", theirEP, theirDL, noEP, noDL, false},
		{"their endpoint, my delivery", theirEP, myDL, noEP, myDL, false},
		{"their deleted endpoint, their delivery", theirGone, theirDL, noEP, noDL, false},
		{"my endpoint, their delivery", myEP, theirDL, myEP, noDL, true},
		{"my deleted endpoint, their delivery", myGone, theirDL, myGone, noDL, true},
	}
	fill := func(s, ep, dl string) string {
		return strings.NewReplacer("{ep}", ep, "{dl}", dl).Replace(s)
	}
	for _, r := range routes {
		for _, c := range cases {
			if c.mineOnly && !strings.Contains(r.path, "{dl}") {
				continue // the caller's own endpoint, no foreign ID in the URL
			}
			t.Run(r.method+" "+r.path+": "+c.name, func(t *testing.T) {
				rec.take()
				got := mine.do(r.method, fill(r.path, c.ep, c.dl), r.body)
				gotCalls := rec.take()
				want := mine.do(r.method, fill(r.path, c.likeEP, c.likeDL), r.body)
				wantCalls := rec.take()
				if got.status != want.status || got.body != want.body {
					t.Fatalf("another organization's IDs: %d %s\nIDs of nowhere: %d %s", got.status, got.body, want.status, want.body)
				}
				if got.status != http.StatusNotFound && !(strings.Contains(r.path, "before=") && got.status == http.StatusBadRequest) {
					t.Fatalf("status %d: %s", got.status, got.body)
				}
				if !slices.Equal(gotCalls, wantCalls) {
					t.Fatalf("store calls differ:\nanother organization's IDs: %v\nIDs of nowhere: %v", gotCalls, wantCalls)
				}
				// (UpdateWebhookEndpoint may be called: its read-modify-write
				// refuses another organization's endpoint before writing.)
				for _, call := range gotCalls {
					if strings.Contains(call, "every organization") || strings.Contains(call, "Delete") ||
						strings.Contains(call, "Enqueue") || strings.Contains(call, "Redeliver") {
						t.Fatalf("a refused request called %s", call)
					}
				}
			})
		}
	}

	// Nothing of theirs changed: the endpoint is as it was, with no new
	// secret, delivery or description, and their deleted endpoint's log is
	// theirs alone.
	var ep webhooks.Endpoint
	theirs.do("GET", "/api/v1/webhooks/"+theirEP, "").decode(t, http.StatusOK, &ep)
	if ep.Description != "" || ep.SecretRotatingUntil != nil {
		t.Errorf("their endpoint changed: %+v", ep)
	}
	var page webhooks.DeliveryPage
	theirs.do("GET", "/api/v1/webhooks/"+theirEP+"/deliveries", "").decode(t, http.StatusOK, &page)
	if len(page.Data) != 1 || page.Data[0].ID != theirDL {
		t.Errorf("their deliveries: %+v", page.Data)
	}
	theirs.do("GET", "/api/v1/webhooks/"+theirGone+"/deliveries", "").decode(t, http.StatusOK, &page)
	if len(page.Data) != 1 {
		t.Errorf("their deleted endpoint's log: %+v", page.Data)
	}
	// And mine still works, the deleted endpoint's log included.
	mine.do("GET", "/api/v1/webhooks/"+myGone+"/deliveries", "").decode(t, http.StatusOK, &page)
	if len(page.Data) != 1 {
		t.Errorf("my deleted endpoint's log: %+v", page.Data)
	}
	mine.do("GET", "/api/v1/webhooks/"+myEP+"/deliveries/"+myDL, "").decode(t, http.StatusOK, nil)
}
