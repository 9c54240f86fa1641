package controlapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/limits"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/tokens"
)

// --- fakes ---

// fakeUsage stands in for the store's usage methods: it keeps events and
// derives the rollups from them, and records what it was asked. The real
// implementations are covered by the store's conformance suite.
type fakeUsage struct {
	mu      sync.Mutex
	events  []store.UsageEvent
	totals  []store.UsageTotal // of requests left out of the request log
	queries []store.UsageQuery
	filters []store.RequestFilter
	pageCap int   // like the SQLite store, never return more rows than this; 0: no cap
	err     error // returned by every call when set
}

func (f *fakeUsage) add(events ...store.UsageEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, events...)
}

func (f *fakeUsage) addTotals(totals ...store.UsageTotal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.totals = append(f.totals, totals...)
}

func (f *fakeUsage) matches(e store.UsageEvent, org, app, cred string) bool {
	return e.OrgID == org && (app == "" || e.AppID == app) && (cred == "" || e.CredentialID == cred)
}

func (f *fakeUsage) UsageSeries(_ context.Context, q store.UsageQuery) ([]store.UsagePoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.err != nil {
		return nil, f.err
	}
	sums := map[time.Time]store.UsagePoint{}
	for _, e := range f.events {
		start := store.BucketStart(q.Granularity, e.Time)
		if !f.matches(e, q.OrgID, q.AppID, q.CredentialID) || start.Before(q.From) || !start.Before(q.To) {
			continue
		}
		p := sums[start]
		p.Start = start
		p.Units += e.Units
		p.Requests++
		if e.Status >= 400 {
			p.Errors++
		}
		sums[start] = p
	}
	for _, t := range f.totals {
		start := store.BucketStart(q.Granularity, t.Hour)
		e := store.UsageEvent{OrgID: t.OrgID, AppID: t.AppID, CredentialID: t.CredentialID}
		if !f.matches(e, q.OrgID, q.AppID, q.CredentialID) || start.Before(q.From) || !start.Before(q.To) {
			continue
		}
		p := sums[start]
		p.Start = start
		p.Units += t.Units
		p.Requests += t.Requests
		p.Errors += t.Errors
		p.Omitted += t.Requests
		sums[start] = p
	}
	out := make([]store.UsagePoint, 0, len(sums))
	for _, p := range sums {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b store.UsagePoint) int { return a.Start.Compare(b.Start) })
	return out, nil
}

func (f *fakeUsage) ListRequests(_ context.Context, r store.RequestFilter) ([]store.UsageEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, r)
	if f.err != nil {
		return nil, f.err
	}
	var out []store.UsageEvent
	for _, e := range f.events {
		switch {
		case !f.matches(e, r.OrgID, r.AppID, r.CredentialID),
			r.StatusMin != 0 && e.Status < r.StatusMin,
			r.StatusMax != 0 && e.Status > r.StatusMax,
			!r.From.IsZero() && e.Time.Before(r.From),
			!r.To.IsZero() && !e.Time.Before(r.To),
			!r.AfterTime.IsZero() && !listedAfter(e, r.AfterTime, r.AfterID):
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b store.UsageEvent) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	limit := r.Limit
	if limit <= 0 {
		limit = 100
	}
	if f.pageCap > 0 {
		limit = min(limit, f.pageCap)
	}
	return out[:min(limit, len(out))], nil
}

// listedAfter reports whether e comes after (at, id) in the list order: time
// descending, then ID descending.
func listedAfter(e store.UsageEvent, at time.Time, id string) bool {
	if e.Time.Equal(at) {
		return e.ID < id
	}
	return e.Time.Before(at)
}

func (f *fakeUsage) lastQuery(t *testing.T, i int) store.UsageQuery {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) <= i {
		t.Fatalf("store asked %d usage queries, want more than %d", len(f.queries), i)
	}
	return f.queries[i]
}

func (f *fakeUsage) lastFilter(t *testing.T) store.RequestFilter {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.filters) == 0 {
		t.Fatal("the request log was not read")
	}
	return f.filters[len(f.filters)-1]
}

type fakeAllowance struct {
	mu     sync.Mutex
	status limits.Status
	asked  []string
}

func (f *fakeAllowance) Status(_ context.Context, orgID string) (limits.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, orgID)
	return f.status, nil
}

// memKeys is an in-memory tokens.KeyStore.
type memKeys struct {
	mu   sync.Mutex
	keys []store.SigningKey
}

func (m *memKeys) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys), nil
}

func (m *memKeys) RetireSigningKey(context.Context, string, time.Time) error { return nil }
func (m *memKeys) DeleteSigningKey(context.Context, string) error            { return nil }

// plainSealer keeps private keys in clear: enough for a test keyring.
type plainSealer struct{}

func (plainSealer) Seal(p, _ []byte) ([]byte, error) { return slices.Clone(p), nil }
func (plainSealer) Open(s, _ []byte) ([]byte, error) { return slices.Clone(s), nil }

// testKeyring is shared by the tests: generating an RSA key is slow.
var testKeyring = sync.OnceValues(func() (*tokens.Keyring, error) {
	return tokens.LoadKeyring(context.Background(), &memKeys{}, plainSealer{}, clock.System{})
})

// userStore serves the users of a test, and their organizations, to
// accounts.Service.Authenticate; the other methods of accounts.Store are not
// used.
type userStore struct {
	accounts.Store
	users map[string]store.User
}

func (u userStore) GetUser(_ context.Context, id string) (store.User, error) {
	if usr, ok := u.users[id]; ok {
		return usr, nil
	}
	return store.User{}, store.ErrNotFound
}

// GetRefreshFamily answers that the session "fam_" + user ID is live.
func (u userStore) GetRefreshFamily(_ context.Context, id string) (store.RefreshFamily, error) {
	if usr, ok := u.users[strings.TrimPrefix(id, "fam_")]; ok {
		return store.RefreshFamily{ID: id, UserID: usr.ID}, nil
	}
	return store.RefreshFamily{}, store.ErrNotFound
}

// GetOrganization: every organization of the test is enabled.
func (u userStore) GetOrganization(_ context.Context, id string) (store.Organization, error) {
	return store.Organization{ID: id}, nil
}

// --- harness ---

const testIssuer = "https://tollgate.test"

var (
	// 2026-03-01 10:17:42.5 UTC, a Sunday: the first day of a month.
	usageNow = time.Date(2026, 3, 1, 10, 17, 42, 500_000_000, time.UTC)

	alice = store.User{ID: "usr_alice", OrgID: "org_a", Email: "alice@a.test", Role: store.RoleMember, Status: store.UserActive}
	bob   = store.User{ID: "usr_bob", OrgID: "org_b", Email: "bob@b.test", Role: store.RoleOwner, Status: store.UserActive}
)

type usageHarness struct {
	api   *API
	clock *clock.Fake
	usage *fakeUsage
	allow *fakeAllowance
	kr    *tokens.Keyring
}

func newUsageHarness(t *testing.T) *usageHarness {
	t.Helper()
	kr, err := testKeyring()
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(usageNow)
	users := userStore{users: map[string]store.User{alice.ID: alice, bob.ID: bob}}
	acc := accounts.New(users, accounts.Options{Clock: clk, Keyring: kr, Issuer: testIssuer, SessionTTL: time.Hour})
	h := &usageHarness{clock: clk, usage: &fakeUsage{}, allow: &fakeAllowance{}, kr: kr}
	h.allow.status = limits.Status{Period: "month"}
	h.api = New(Options{Accounts: acc, Usage: h.usage, Allowance: h.allow, Clock: clk})
	return h
}

// token signs a dashboard session of u.
func (h *usageHarness) token(t *testing.T, u store.User) string {
	t.Helper()
	now := h.clock.Now()
	tok, err := h.kr.Sign(accounts.SessionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: u.ID, Audience: jwt.ClaimStrings{accounts.Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: "jti_" + u.ID,
		},
		OrgID: u.OrgID, Role: string(u.Role), SessionID: "fam_" + u.ID,
	}, accounts.TokenType)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (h *usageHarness) get(t *testing.T, u *store.User, target string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if u != nil {
		r.Header.Set("Authorization", "Bearer "+h.token(t, *u))
	}
	w := httptest.NewRecorder()
	h.api.ServeHTTP(w, r)
	return w
}

func decodeBody[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	return v
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
		Reason  string `json:"reason"`
	} `json:"error"`
}

func wantJSON(t *testing.T, w *httptest.ResponseRecorder, want string) {
	t.Helper()
	var got, exp any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("expected JSON: %v", err)
	}
	g, _ := json.Marshal(got)
	e, _ := json.Marshal(exp)
	if string(g) != string(e) {
		t.Errorf("body\n got %s\nwant %s", g, e)
	}
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// --- parsing and series ---

func TestUsageQueryDefaults(t *testing.T) {
	for _, tc := range []struct {
		query    string
		g        string
		from, to string
		buckets  int
	}{
		// The last 24 hours, this one included.
		{"granularity=hour", "hour", "2026-02-28T11:00:00Z", "2026-03-01T11:00:00Z", 24},
		// The last 30 days, today included: 30 days back from March 2 in
		// a February of 28 days.
		{"granularity=day", "day", "2026-01-31T00:00:00Z", "2026-03-02T00:00:00Z", 30},
		{"", "day", "2026-01-31T00:00:00Z", "2026-03-02T00:00:00Z", 30},
		// The last 12 months, this one included.
		{"granularity=month", "month", "2025-04-01T00:00:00Z", "2026-04-01T00:00:00Z", 12},
		// from alone: up to the current bucket, included.
		{"granularity=hour&from=2026-03-01", "hour", "2026-03-01T00:00:00Z", "2026-03-01T11:00:00Z", 11},
		{"from=2026-02-27T23:59:59Z", "day", "2026-02-27T00:00:00Z", "2026-03-02T00:00:00Z", 3},
		// to alone: the default number of buckets before it.
		{"granularity=hour&to=2026-01-01", "hour", "2025-12-31T00:00:00Z", "2026-01-01T00:00:00Z", 24},
		{"to=2024-03-15T12:00:00Z", "day", "2024-02-15T00:00:00Z", "2024-03-16T00:00:00Z", 30},
		{"granularity=month&to=2026-01-31", "month", "2025-02-01T00:00:00Z", "2026-02-01T00:00:00Z", 12},
		// Empty values count as absent.
		{"granularity=&from=&to=&app=&credential=", "day", "2026-01-31T00:00:00Z", "2026-03-02T00:00:00Z", 30},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			q, err := parseUsageQuery(v, usageNow)
			if err != nil {
				t.Fatal(err)
			}
			if q.Granularity != tc.g || !q.From.Equal(date(tc.from)) || !q.To.Equal(date(tc.to)) {
				t.Errorf("got %s [%s, %s), want %s [%s, %s)", q.Granularity, q.From, q.To, tc.g, tc.from, tc.to)
			}
			if n := bucketCount(q.Granularity, q.From, q.To); n != tc.buckets {
				t.Errorf("%d buckets, want %d", n, tc.buckets)
			}
			if q.OrgID != "" || q.AppID != "" || q.CredentialID != "" {
				t.Errorf("filters set from nothing: %+v", q)
			}
		})
	}
}

func TestUsageQueryTruncation(t *testing.T) {
	for _, tc := range []struct {
		query    string
		from, to string
	}{
		// to not on a boundary is rounded up: the partial bucket is in.
		{"granularity=day&from=2024-02-28T13:30:00Z&to=2024-03-01T00:00:01Z", "2024-02-28T00:00:00Z", "2024-03-02T00:00:00Z"},
		// to on a boundary stays: it is exclusive.
		{"granularity=day&from=2024-02-28&to=2024-03-01", "2024-02-28T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"granularity=hour&from=2026-02-28T22:59:59.999Z&to=2026-02-28T23:00:00.001Z", "2026-02-28T22:00:00Z", "2026-03-01T00:00:00Z"},
		// Offsets are converted to UTC before truncating.
		{"granularity=hour&from=2026-01-01T01:30:00%2B02:00&to=2026-01-01T03:00:00%2B02:00", "2025-12-31T23:00:00Z", "2026-01-01T01:00:00Z"},
		{"granularity=day&from=2026-01-01T01:30:00%2B02:00&to=2026-01-01T12:00:00-12:00", "2025-12-31T00:00:00Z", "2026-01-02T00:00:00Z"},
		// An unencoded "+" arrives as a space.
		{"granularity=hour&from=2026-01-01T01:30:00+02:00&to=2026-01-01T03:00:00+02:00", "2025-12-31T23:00:00Z", "2026-01-01T01:00:00Z"},
		// Months across a year boundary.
		{"granularity=month&from=2025-11-15&to=2026-01-01T00:00:00.000001Z", "2025-11-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{"granularity=month&from=2024-02-29T23:00:00Z&to=2024-03-01", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			q, err := parseUsageQuery(v, usageNow)
			if err != nil {
				t.Fatal(err)
			}
			if !q.From.Equal(date(tc.from)) || !q.To.Equal(date(tc.to)) {
				t.Errorf("got [%s, %s), want [%s, %s)", q.From, q.To, tc.from, tc.to)
			}
			if q.From.Location() != time.UTC || q.To.Location() != time.UTC {
				t.Error("times not in UTC")
			}
		})
	}
}

func TestUsageQueryFilters(t *testing.T) {
	v := url.Values{"app": {"app_1"}, "credential": {"key_9~x"}, "org": {"org_b"}, "org_id": {"org_b"}}
	q, err := parseUsageQuery(v, usageNow)
	if err != nil {
		t.Fatal(err)
	}
	if q.AppID != "app_1" || q.CredentialID != "key_9~x" || q.OrgID != "" {
		t.Errorf("filters %+v", q)
	}
}

func TestUsageQueryErrors(t *testing.T) {
	long := strings.Repeat("a", maxIDParam+1)
	for _, tc := range []struct{ query, field string }{
		{"granularity=week", "granularity"},
		{"granularity=Day", "granularity"},
		{"granularity=day&granularity=hour", "granularity"},
		{"from=yesterday", "from"},
		{"to=2026-13-01", "to"},
		{"from=2026-02-30", "from"},
		{"from=2026-01-01T00:00:00", "from"}, // no offset
		{"from=1600000000", "from"},
		{"from=2026-01-01T00:00:00Z" + strings.Repeat("0", 60), "from"},
		{"from=1969-12-31T23:59:59Z", "from"},
		{"to=9999-01-01", "to"},
		{"from=0001-01-01", "from"},
		// from >= to, as given and after truncation.
		{"from=2026-02-01&to=2026-01-01", "from"},
		{"from=2026-02-01&to=2026-02-01", "from"},
		{"from=2026-02-01T10:00:00Z&to=2026-02-01T09:00:00Z", "from"},
		{"from=2026-03-02", "from"},                            // after today's bucket
		{"granularity=hour&from=2026-03-01T11:00:00Z", "from"}, // after the current hour
		// More than 1000 buckets.
		{"granularity=hour&from=2026-01-01&to=2026-03-01", "from"},
		{"granularity=hour&from=2026-01-01T00:00:00Z&to=2026-02-11T17:00:00Z", "from"}, // 1001 hours
		{"granularity=day&from=2020-01-01&to=2026-01-01", "from"},
		{"granularity=month&from=1970-01-01&to=2060-01-01", "from"},
		{"granularity=hour&from=1970-01-01&to=9998-12-31", "from"}, // longer than a time.Duration
		// Filters.
		{"app=a%20b", "app"},
		{"app=" + long, "app"},
		{"credential=key%00", "credential"},
		{"credential=cl%C3%A9", "credential"},
		{"app=a&app=b", "app"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			q, err := parseUsageQuery(v, usageNow)
			var e *apierror.Error
			if !errors.As(err, &e) {
				t.Fatalf("accepted: %+v (%v)", q, err)
			}
			if e.Status != http.StatusBadRequest || e.Code != apierror.BadRequest || e.Field != tc.field {
				t.Errorf("got %d %s on %q, want 400 BAD_REQUEST on %q: %s", e.Status, e.Code, e.Field, tc.field, e.Message)
			}
		})
	}
}

func TestUsageQueryBucketLimit(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		g    string
		to   time.Time
		okay bool
	}{
		{"hour", from.Add(1000 * time.Hour), true},
		{"hour", from.Add(1000*time.Hour + time.Nanosecond), false}, // rounded up to 1001
		{"day", from.AddDate(0, 0, 1000), true},
		{"day", from.AddDate(0, 0, 1001), false},
		{"month", from.AddDate(0, 1000, 0), true},
		{"month", from.AddDate(0, 1001, 0), false},
	} {
		v := url.Values{"granularity": {tc.g}, "from": {from.Format(time.RFC3339)}, "to": {tc.to.Format(time.RFC3339Nano)}}
		q, err := parseUsageQuery(v, usageNow)
		if (err == nil) != tc.okay {
			t.Errorf("%s to %s: err %v, want ok %v", tc.g, tc.to, err, tc.okay)
		}
		if err == nil && len(fillSeries(q, nil)) != maxBuckets {
			t.Errorf("%s: series of %d buckets", tc.g, len(fillSeries(q, nil)))
		}
	}
}

func TestFillSeries(t *testing.T) {
	t.Run("days across a leap day and a month boundary", func(t *testing.T) {
		q := store.UsageQuery{Granularity: "day", From: date("2024-02-27T00:00:00Z"), To: date("2024-03-03T00:00:00Z")}
		got := fillSeries(q, []store.UsagePoint{
			{Start: date("2024-02-26T00:00:00Z"), Units: 1000, Requests: 1000}, // before the window
			{Start: date("2024-02-29T00:00:00Z"), Units: 5, Requests: 2, Errors: 1},
			{Start: date("2024-02-29T00:00:00Z"), Units: 1, Requests: 1}, // same bucket twice: summed
			{Start: date("2024-03-01T00:00:00Z"), Units: 7, Requests: 3},
			{Start: date("2024-03-01T12:00:00Z"), Units: 1000, Requests: 1000}, // not a bucket start
			{Start: date("2024-03-03T00:00:00Z"), Units: 1000, Requests: 1000}, // to is exclusive
		})
		want := []UsageBucket{
			{Start: date("2024-02-27T00:00:00Z")},
			{Start: date("2024-02-28T00:00:00Z")},
			{Start: date("2024-02-29T00:00:00Z"), UsageCounts: UsageCounts{Units: 6, Requests: 3, Errors: 1}},
			{Start: date("2024-03-01T00:00:00Z"), UsageCounts: UsageCounts{Units: 7, Requests: 3}},
			{Start: date("2024-03-02T00:00:00Z")},
		}
		if !slices.Equal(got, want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
	})
	t.Run("months across a year boundary", func(t *testing.T) {
		q := store.UsageQuery{Granularity: "month", From: date("2023-11-01T00:00:00Z"), To: date("2024-04-01T00:00:00Z")}
		got := fillSeries(q, []store.UsagePoint{{Start: date("2024-02-01T00:00:00Z"), Units: 29, Requests: 29}})
		var starts []string
		for _, b := range got {
			starts = append(starts, b.Start.Format(time.DateOnly))
		}
		if want := []string{"2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01"}; !slices.Equal(starts, want) {
			t.Errorf("starts %v, want %v", starts, want)
		}
		if got[3].Units != 29 || got[2].Units != 0 || got[4].Units != 0 {
			t.Errorf("series %v", got)
		}
	})
	t.Run("hours across midnight at the end of February", func(t *testing.T) {
		q := store.UsageQuery{Granularity: "hour", From: date("2026-02-28T22:00:00Z"), To: date("2026-03-01T02:00:00Z")}
		got := fillSeries(q, []store.UsagePoint{{Start: date("2026-03-01T00:00:00Z"), Requests: 1}})
		if len(got) != 4 || !got[2].Start.Equal(date("2026-03-01T00:00:00Z")) || got[2].Requests != 1 || got[1].Requests != 0 {
			t.Errorf("series %v", got)
		}
	})
	t.Run("empty window", func(t *testing.T) {
		q := store.UsageQuery{Granularity: "day", From: date("2026-01-01T00:00:00Z"), To: date("2026-01-01T00:00:00Z")}
		if got := fillSeries(q, nil); got == nil || len(got) != 0 {
			t.Errorf("series %v, want empty and not nil", got)
		}
	})
}

func TestStatusParam(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"", 0, 0, true},
		{"429", 429, 429, true},
		{"200", 200, 200, true},
		{"101", 101, 101, true},
		{"599", 599, 599, true},
		{"4xx", 400, 499, true},
		{"5XX", 500, 599, true},
		{"1xx", 100, 199, true},
		{"2xX", 200, 299, true},
		{"600", 0, 0, false},
		{"099", 0, 0, false},
		{"6xx", 0, 0, false},
		{"0xx", 0, 0, false},
		{"4x", 0, 0, false},
		{"4xxx", 0, 0, false},
		{"40x", 0, 0, false},
		{"4x9", 0, 0, false},
		{"42", 0, 0, false},
		{"4290", 0, 0, false},
		{"+42", 0, 0, false},
		{" 42", 0, 0, false},
		{"error", 0, 0, false},
	} {
		v := url.Values{}
		if tc.in != "" {
			v.Set("status", tc.in)
		}
		lo, hi, err := statusParam(v)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("%q: %d..%d, %v; want %d..%d ok %v", tc.in, lo, hi, err, tc.lo, tc.hi, tc.ok)
		}
	}
	if _, _, err := statusParam(url.Values{"status": {"4xx", "5xx"}}); err == nil {
		t.Error("repeated status accepted")
	}
}

func TestRequestQuery(t *testing.T) {
	v, _ := url.ParseQuery("status=4xx&credential=key_1&app=app_1&from=2026-02-01&to=2026-02-02T12:00:00%2B01:00&limit=20&org_id=org_b")
	f, err := parseRequestQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	want := store.RequestFilter{
		AppID: "app_1", CredentialID: "key_1", StatusMin: 400, StatusMax: 499,
		From: date("2026-02-01T00:00:00Z"), To: date("2026-02-02T11:00:00Z"), Limit: 20,
	}
	if f != want {
		t.Errorf("filter %+v\nwant   %+v", f, want)
	}
	if f, err := parseRequestQuery(url.Values{}); err != nil || f != (store.RequestFilter{Limit: 100}) {
		t.Errorf("defaults %+v, %v", f, err)
	}
	for _, q := range []string{
		"limit=0", "limit=1001", "limit=-1", "limit=ten", "limit=1&limit=2", "limit=1e3",
		"from=2026-02-02&to=2026-02-01", "from=2026-02-02&to=2026-02-02", "to=tomorrow",
		"status=42", "app=%7F", "credential=a%20b", "cursor=!!!", "cursor=AAAA", "cursor=AAAAAAAAAAA%0A",
	} {
		v, _ := url.ParseQuery(q)
		_, err := parseRequestQuery(v)
		var e *apierror.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
			t.Errorf("%s: %v, want a 400", q, err)
		}
	}
	for _, l := range []string{"1", "1000"} {
		if f, err := parseRequestQuery(url.Values{"limit": {l}}); err != nil || strconv.Itoa(f.Limit) != l {
			t.Errorf("limit %s: %+v, %v", l, f, err)
		}
	}
}

func TestCursor(t *testing.T) {
	at := date("2026-02-28T23:59:59.123456Z")
	c := encodeCursor(at, "req_abc-1z")
	if strings.ContainsAny(c, "+/=") {
		t.Errorf("cursor %q is not unpadded base64url", c)
	}
	got, id, ok := decodeCursor(c)
	if !ok || !got.Equal(at) || id != "req_abc-1z" || got.Location() != time.UTC {
		t.Fatalf("round trip: %v %q %v", got, id, ok)
	}
	v := url.Values{"cursor": {c}}
	f, err := parseRequestQuery(v)
	if err != nil || !f.AfterTime.Equal(at) || f.AfterID != "req_abc-1z" {
		t.Errorf("filter %+v, %v", f, err)
	}

	raw := func(us int64, id string) string {
		b := binary.BigEndian.AppendUint64(nil, uint64(us))
		return base64.RawURLEncoding.EncodeToString(append(b, id...))
	}
	short := encodeCursor(at, "req_1") // 13 bytes: the last character has 4 unused bits
	if raw(at.UnixMicro(), "req_1") != short {
		t.Error("cursor layout changed")
	}
	if _, _, ok := decodeCursor(short); !ok {
		t.Fatal("short cursor refused")
	}
	for name, garbage := range map[string]string{
		"empty":              "",
		"not base64":         "!!!!",
		"standard alphabet":  strings.ReplaceAll(strings.ReplaceAll(raw(at.UnixMicro(), "req_??>"), "-", "+"), "_", "/"),
		"padded":             raw(at.UnixMicro(), "req_1") + "==",
		"time only":          raw(at.UnixMicro(), ""),
		"too short":          base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3}),
		"id with a space":    raw(at.UnixMicro(), "req 1"),
		"id with a NUL":      raw(at.UnixMicro(), "req\x001"),
		"id not ASCII":       raw(at.UnixMicro(), "réq"),
		"id too long":        raw(at.UnixMicro(), strings.Repeat("r", maxIDParam+1)),
		"before 1970":        raw(-1, "req_1"),
		"far future":         raw(1<<62, "req_1"),
		"zero time":          raw(time.Time{}.UnixMicro(), "req_1"),
		"non-canonical bits": short[:len(short)-1] + string(flipLowBits(short[len(short)-1])),
		"line break":         short[:4] + "\n" + short[4:],
		"carriage return":    short[:4] + "\r" + short[4:],
		"too long":           strings.Repeat("A", 400),
	} {
		if _, _, ok := decodeCursor(garbage); ok {
			t.Errorf("%s: %q accepted", name, garbage)
		}
		_, err := parseRequestQuery(url.Values{"cursor": {garbage}})
		if garbage == "" {
			continue // absent
		}
		var e *apierror.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Field != "cursor" || e.Message != "invalid cursor" {
			t.Errorf("%s: %v, want a reason-free 400 on cursor", name, err)
		}
	}
}

// flipLowBits returns another base64url character whose top bits are the
// same as c's, so that only bits past the end of the data differ (when the
// encoding leaves any).
func flipLowBits(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

// --- endpoints ---

func seedUsage(h *usageHarness) {
	ev := func(id, at, org, app, cred string, status int, units int64) store.UsageEvent {
		return store.UsageEvent{
			ID: id, Time: date(at), OrgID: org, AppID: app, CredentialID: cred, AuthMethod: "apikey",
			Method: "GET", Route: "/v1/", Path: "/v1/prices", Status: status, Latency: 1234 * time.Microsecond,
			RequestBytes: 10, ResponseBytes: 200, Units: units, ClientIP: "203.0.113.50", UserAgent: "curl/8",
		}
	}
	h.usage.add(
		ev("req_1", "2026-02-28T09:00:00Z", "org_a", "app_1", "key_1", 200, 2),
		ev("req_2", "2026-02-28T23:59:59.999999Z", "org_a", "app_1", "key_1", 429, 0),
		ev("req_3", "2026-03-01T00:00:00Z", "org_a", "app_2", "key_2", 200, 3),
		ev("req_4", "2026-03-01T10:00:00Z", "org_a", "app_1", "key_1", 503, 1),
		ev("req_5", "2026-01-15T10:00:00Z", "org_a", "app_1", "key_1", 200, 100),
		// Another organization, with the same app and credential IDs so
		// that only the organization tells them apart.
		ev("req_b1", "2026-03-01T09:00:00Z", "org_b", "app_1", "key_1", 200, 1000),
		ev("req_b2", "2026-02-28T09:00:00Z", "org_b", "app_1", "key_1", 500, 1000),
	)
}

func TestUsageEndpoint(t *testing.T) {
	h := newUsageHarness(t)
	seedUsage(h)
	h.allow.status = limits.Status{
		Plan: "free", Rate: 5, Burst: 10, QuotaUnits: 10000, Period: "day",
		PeriodStart: date("2026-03-01T00:00:00Z"), PeriodEnd: date("2026-03-02T00:00:00Z"), Used: 42, Remaining: 9958,
	}
	// A member reads usage; org_id in the query changes nothing.
	w := h.get(t, &alice, "/api/v1/usage?granularity=day&from=2026-02-27&to=2026-03-01T10:00:00Z&app=app_1&org_id=org_b")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	wantJSON(t, w, `{
		"granularity":"day","from":"2026-02-27T00:00:00Z","to":"2026-03-02T00:00:00Z","app":"app_1","credential":null,
		"series":[
			{"start":"2026-02-27T00:00:00Z","units":0,"requests":0,"errors":0},
			{"start":"2026-02-28T00:00:00Z","units":2,"requests":2,"errors":1},
			{"start":"2026-03-01T00:00:00Z","units":1,"requests":1,"errors":1}
		],
		"totals":{"units":3,"requests":3,"errors":2},
		"current_period":{"period":"day","start":"2026-03-01T00:00:00Z","end":"2026-03-02T00:00:00Z","units":1,"requests":1,"errors":1},
		"plan":{"name":"free","requests_per_second":5,"burst":10,"quota_units":10000,"quota_used":42,"quota_remaining":9958},
		"request_log":{"sampled":false,"omitted":0}
	}`)
	q := h.usage.lastQuery(t, 0)
	want := store.UsageQuery{OrgID: "org_a", Granularity: "day", From: date("2026-02-27T00:00:00Z"), To: date("2026-03-02T00:00:00Z"), AppID: "app_1"}
	if q != want {
		t.Errorf("series query %+v\nwant         %+v", q, want)
	}
	want = store.UsageQuery{OrgID: "org_a", Granularity: "day", From: date("2026-03-01T00:00:00Z"), To: date("2026-03-02T00:00:00Z"), AppID: "app_1"}
	if q := h.usage.lastQuery(t, 1); q != want {
		t.Errorf("period query %+v\nwant         %+v", q, want)
	}
	if !slices.Equal(h.allow.asked, []string{"org_a"}) {
		t.Errorf("allowance asked for %v", h.allow.asked)
	}
}

func TestUsageEndpointDefaultsAndNoQuota(t *testing.T) {
	h := newUsageHarness(t)
	seedUsage(h)
	h.allow.status = limits.Status{
		Plan: "unmetered", Rate: 50, Burst: 100, Period: "month",
		PeriodStart: date("2026-03-01T00:00:00Z"), PeriodEnd: date("2026-04-01T00:00:00Z"),
	}
	w := h.get(t, &alice, "/api/v1/usage?granularity=hour&credential=key_1")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	u := decodeBody[Usage](t, w)
	if len(u.Series) != 24 || !u.From.Equal(date("2026-02-28T11:00:00Z")) || !u.To.Equal(date("2026-03-01T11:00:00Z")) {
		t.Fatalf("window [%s, %s) of %d buckets", u.From, u.To, len(u.Series))
	}
	// In the last 24 hours, key_1 of org_a made req_2 (23:00) and req_4 (10:00).
	if b := u.Series[12]; !b.Start.Equal(date("2026-02-28T23:00:00Z")) || b.Requests != 1 || b.Errors != 1 {
		t.Errorf("bucket 12: %+v", b)
	}
	if b := u.Series[23]; !b.Start.Equal(date("2026-03-01T10:00:00Z")) || b.Requests != 1 || b.Units != 1 {
		t.Errorf("bucket 23: %+v", b)
	}
	if u.Totals != (UsageCounts{Units: 1, Requests: 2, Errors: 2}) {
		t.Errorf("totals %+v", u.Totals)
	}
	// The month so far, from the monthly rollups: req_4 only (req_3 is key_2).
	if u.CurrentPeriod != (UsagePeriod{Period: "month", Start: date("2026-03-01T00:00:00Z"), End: date("2026-04-01T00:00:00Z"), UsageCounts: UsageCounts{Units: 1, Requests: 1, Errors: 1}}) {
		t.Errorf("current period %+v", u.CurrentPeriod)
	}
	if q := h.usage.lastQuery(t, 1); q.Granularity != "month" || q.CredentialID != "key_1" || q.OrgID != "org_a" {
		t.Errorf("period query %+v", q)
	}
	var raw struct {
		Plan map[string]any `json:"plan"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"quota_units", "quota_used", "quota_remaining"} {
		if v, ok := raw.Plan[k]; !ok || v != nil {
			t.Errorf("plan.%s = %v, present %v; want null", k, v, ok)
		}
	}
	if raw.Plan["name"] != "unmetered" || raw.Plan["requests_per_second"] != 50.0 {
		t.Errorf("plan %v", raw.Plan)
	}
}

func TestUsageEndpointNoAllowance(t *testing.T) {
	h := newUsageHarness(t)
	h.api.allowance = nil
	w := h.get(t, &alice, "/api/v1/usage?granularity=month")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got struct {
		Series        []UsageBucket  `json:"series"`
		CurrentPeriod UsagePeriod    `json:"current_period"`
		Plan          map[string]any `json:"plan"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Series) != 12 || got.CurrentPeriod.Period != "month" || !got.CurrentPeriod.Start.Equal(date("2026-03-01T00:00:00Z")) {
		t.Errorf("series of %d, period %+v", len(got.Series), got.CurrentPeriod)
	}
	if got.Plan["name"] != nil || got.Plan["quota_units"] != nil {
		t.Errorf("plan %v", got.Plan)
	}
}

// TestUsageNoCrossOrgLeak asks as each organization for everything, and with
// the other's filters: the store is only ever asked for the session's own
// organization, and answers never carry the other's data.
func TestUsageNoCrossOrgLeak(t *testing.T) {
	h := newUsageHarness(t)
	seedUsage(h)
	for _, target := range []string{
		"/api/v1/usage?granularity=month&org=org_b&org_id=org_b&organization_id=org_b",
		"/api/v1/usage?granularity=day&app=app_1&credential=key_1",
		"/api/v1/usage/requests?org_id=org_b&limit=1000",
		"/api/v1/usage/requests?app=app_1&credential=key_1&status=5xx",
	} {
		h.usage.queries, h.usage.filters = nil, nil
		w := h.get(t, &alice, target)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", target, w.Code, w.Body)
		}
		for _, q := range h.usage.queries {
			if q.OrgID != "org_a" {
				t.Errorf("%s: usage query for %q", target, q.OrgID)
			}
		}
		for _, f := range h.usage.filters {
			if f.OrgID != "org_a" {
				t.Errorf("%s: request filter for %q", target, f.OrgID)
			}
		}
		if strings.Contains(w.Body.String(), "req_b") || strings.Contains(w.Body.String(), "1000") {
			t.Errorf("%s: org_b's data in %s", target, w.Body)
		}
	}
	// And org_b sees its own.
	w := h.get(t, &bob, "/api/v1/usage/requests")
	p := decodeBody[RequestPage](t, w)
	if len(p.Data) != 2 || p.Data[0].ID != "req_b1" || p.Data[1].ID != "req_b2" {
		t.Errorf("org_b's page %+v", p.Data)
	}
}

func TestUsageEndpointErrors(t *testing.T) {
	h := newUsageHarness(t)
	for _, tc := range []struct {
		name   string
		user   *store.User
		target string
		status int
		code   string
		field  string
	}{
		{"no token", nil, "/api/v1/usage", 401, "UNAUTHORIZED", ""},
		{"no token, log", nil, "/api/v1/usage/requests", 401, "UNAUTHORIZED", ""},
		{"granularity", &alice, "/api/v1/usage?granularity=week", 400, "BAD_REQUEST", "granularity"},
		{"buckets", &alice, "/api/v1/usage?granularity=hour&from=2025-01-01", 400, "BAD_REQUEST", "from"},
		{"from after to", &alice, "/api/v1/usage?from=2026-02-02&to=2026-02-01", 400, "BAD_REQUEST", "from"},
		{"cursor", &alice, "/api/v1/usage/requests?cursor=garbage!", 400, "BAD_REQUEST", "cursor"},
		{"status", &alice, "/api/v1/usage/requests?status=4xy", 400, "BAD_REQUEST", "status"},
		{"limit", &alice, "/api/v1/usage/requests?limit=5000", 400, "BAD_REQUEST", "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := h.get(t, tc.user, tc.target)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			e := decodeBody[errorBody](t, w)
			if e.Error.Code != tc.code || e.Error.Field != tc.field {
				t.Errorf("error %+v, want %s on %q", e.Error, tc.code, tc.field)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
	r := httptest.NewRequest(http.MethodPost, "/api/v1/usage", nil)
	r.Header.Set("Authorization", "Bearer "+h.token(t, alice))
	w := httptest.NewRecorder()
	h.api.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", w.Code)
	}
	if len(h.usage.queries)+len(h.usage.filters) != 0 {
		t.Errorf("the store was read for refused requests: %v %v", h.usage.queries, h.usage.filters)
	}

	h.usage.err = errors.New("disk on fire")
	for _, target := range []string{"/api/v1/usage", "/api/v1/usage/requests"} {
		w := h.get(t, &alice, target)
		if e := decodeBody[errorBody](t, w); w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "fire") {
			t.Errorf("%s: store failure answered %d %+v", target, w.Code, e)
		}
	}
}

func TestUsageNotServedWithoutReader(t *testing.T) {
	h := newUsageHarness(t)
	h.api = New(Options{Accounts: h.api.accounts, Clock: h.clock})
	if w := h.get(t, &alice, "/api/v1/usage"); w.Code != http.StatusNotFound {
		t.Errorf("status %d: %s", w.Code, w.Body)
	}
}

func TestRequestsEndpoint(t *testing.T) {
	h := newUsageHarness(t)
	seedUsage(h)
	h.usage.add(store.UsageEvent{
		ID: "req_ws", Time: date("2026-03-01T10:00:00Z"), OrgID: "org_a", Method: "GET", Path: "/ws",
		Status: 101, Latency: 90*time.Second + 1500*time.Microsecond + 999*time.Nanosecond, RequestBytes: 1 << 20,
		ResponseBytes: 5 << 20, Units: 7, ClientIP: "2001:db8::1", UserAgent: "ws-client", AuthMethod: "bearer", WebSocket: true,
	})
	w := h.get(t, &alice, "/api/v1/usage/requests?limit=2")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	// Newest first; at the same time, the greater ID first.
	c := encodeCursor(date("2026-03-01T10:00:00Z"), "req_4")
	wantJSON(t, w, `{"data":[
		{"id":"req_ws","time":"2026-03-01T10:00:00Z","method":"GET","path":"/ws","route":"","status":101,"error_code":null,
		 "latency_ms":90001.5,"request_bytes":1048576,"response_bytes":5242880,"units":7,"client_ip":"2001:db8::1",
		 "user_agent":"ws-client","auth_method":"bearer","app_id":null,"credential_id":null,"websocket":true},
		{"id":"req_4","time":"2026-03-01T10:00:00Z","method":"GET","path":"/v1/prices","route":"/v1/","status":503,"error_code":null,
		 "latency_ms":1.234,"request_bytes":10,"response_bytes":200,"units":1,"client_ip":"203.0.113.50",
		 "user_agent":"curl/8","auth_method":"apikey","app_id":"app_1","credential_id":"key_1","websocket":false}
	],"next_cursor":"`+c+`","request_log":{"sampled":false,"omitted":0}}`)
	if f := h.usage.lastFilter(t); f.Limit != 3 || f.OrgID != "org_a" || !f.AfterTime.IsZero() {
		t.Errorf("filter %+v", f)
	}

	// Follow the cursors to the end.
	var ids []string
	target := "/api/v1/usage/requests?limit=2"
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("cursor does not advance")
		}
		p := decodeBody[RequestPage](t, h.get(t, &alice, target))
		for _, e := range p.Data {
			ids = append(ids, e.ID)
		}
		if p.NextCursor == nil {
			if len(p.Data) == 0 {
				t.Error("an empty last page")
			}
			break
		}
		target = "/api/v1/usage/requests?limit=2&cursor=" + *p.NextCursor
	}
	if want := []string{"req_ws", "req_4", "req_3", "req_2", "req_1", "req_5"}; !slices.Equal(ids, want) {
		t.Errorf("pages %v, want %v", ids, want)
	}
	if f := h.usage.lastFilter(t); !f.AfterTime.Equal(date("2026-02-28T23:59:59.999999Z")) || f.AfterID != "req_2" {
		t.Errorf("last filter %+v", f)
	}

	// Filters reach the store.
	w = h.get(t, &alice, "/api/v1/usage/requests?status=4xx&app=app_1&credential=key_1&from=2026-02-28&to=2026-03-01")
	p := decodeBody[RequestPage](t, w)
	if len(p.Data) != 1 || p.Data[0].ID != "req_2" || p.Data[0].ErrorCode != nil || p.NextCursor != nil {
		t.Errorf("filtered page %s", w.Body)
	}
	want := store.RequestFilter{
		OrgID: "org_a", AppID: "app_1", CredentialID: "key_1", StatusMin: 400, StatusMax: 499,
		From: date("2026-02-28T00:00:00Z"), To: date("2026-03-01T00:00:00Z"), Limit: 101,
	}
	if f := h.usage.lastFilter(t); f != want {
		t.Errorf("filter %+v\nwant   %+v", f, want)
	}
	h.get(t, &alice, "/api/v1/usage/requests?status=503")
	if f := h.usage.lastFilter(t); f.StatusMin != 503 || f.StatusMax != 503 {
		t.Errorf("exact status: %+v", f)
	}

	// An empty log: an empty array, not null.
	wantJSON(t, h.get(t, &alice, "/api/v1/usage/requests?status=1xx&credential=none"), `{"data":[],"next_cursor":null,"request_log":{"sampled":false,"omitted":0}}`)
}

// Requests left out of a request log sampled under overload count in the
// series, the totals and the current period like the others; both endpoints
// say how many of the window asked the log lacks, by whole hours, for the
// app and credential asked, whatever the status filter.
func TestUsageReportsASampledRequestLog(t *testing.T) {
	h := newUsageHarness(t)
	seedUsage(h)
	h.usage.addTotals(
		store.UsageTotal{Hour: date("2026-03-01T10:00:00Z"), OrgID: "org_a", AppID: "app_1", CredentialID: "key_1", Requests: 90, Errors: 9, Units: 81},
		store.UsageTotal{Hour: date("2026-03-01T08:00:00Z"), OrgID: "org_a", AppID: "app_2", CredentialID: "key_2", Requests: 5, Units: 5},
		store.UsageTotal{Hour: date("2026-02-28T09:00:00Z"), OrgID: "org_b", AppID: "app_1", CredentialID: "key_1", Requests: 1000, Units: 1000},
	)
	h.allow.status = limits.Status{Period: "day", PeriodStart: date("2026-03-01T00:00:00Z"), PeriodEnd: date("2026-03-02T00:00:00Z")}

	u := decodeBody[Usage](t, h.get(t, &alice, "/api/v1/usage?granularity=day&from=2026-02-28&to=2026-03-02"))
	if u.RequestLog != (RequestLogSampling{Sampled: true, Omitted: 95}) {
		t.Errorf("usage request_log %+v, want sampled, 95 omitted", u.RequestLog)
	}
	// req_3 (3 units) and req_4 (1) logged, 86 units left out of the log.
	if want := (UsageCounts{Units: 90, Requests: 97, Errors: 10}); u.CurrentPeriod.UsageCounts != want {
		t.Errorf("current period %+v, want %+v", u.CurrentPeriod.UsageCounts, want)
	}
	if want := (UsageCounts{Units: 92, Requests: 99, Errors: 11}); u.Totals != want {
		t.Errorf("totals %+v, want %+v", u.Totals, want)
	}
	u = decodeBody[Usage](t, h.get(t, &alice, "/api/v1/usage?granularity=day&from=2026-02-28&to=2026-03-01"))
	if u.RequestLog != (RequestLogSampling{}) {
		t.Errorf("a window of no omission: request_log %+v", u.RequestLog)
	}

	tests := []struct {
		query   string
		omitted int64
	}{
		{"", 95},
		{"from=2026-03-01T10:59:59Z", 90}, // the hour the window starts in counts whole
		{"to=2026-03-01T08:00:01Z", 5},
		{"to=2026-03-01T08:00:00Z", 0}, // to is exclusive
		{"from=2026-03-01T09:00:00Z&to=2026-03-01T10:00:00Z", 0},
		{"app=app_1", 90},
		{"credential=key_2", 5},
		{"status=200", 95},
		{"credential=key_9", 0},
	}
	for _, tt := range tests {
		p := decodeBody[RequestPage](t, h.get(t, &alice, "/api/v1/usage/requests?"+tt.query))
		if want := (RequestLogSampling{Sampled: tt.omitted > 0, Omitted: tt.omitted}); p.RequestLog != want {
			t.Errorf("%q: request_log %+v, want %+v", tt.query, p.RequestLog, want)
		}
	}
}

func TestRequestsEndpointStoreCap(t *testing.T) {
	h := newUsageHarness(t)
	h.usage.pageCap = maxRequestPage // like the SQLite store
	base := date("2026-02-01T00:00:00Z")
	for i := range 1500 {
		h.usage.add(store.UsageEvent{ID: "req_" + strconv.Itoa(100000+i), Time: base.Add(time.Duration(i) * time.Second), OrgID: "org_a", Status: 200})
	}
	p := decodeBody[RequestPage](t, h.get(t, &alice, "/api/v1/usage/requests?limit=1000"))
	if len(p.Data) != 1000 || p.NextCursor == nil {
		t.Fatalf("first page: %d entries, cursor %v", len(p.Data), p.NextCursor)
	}
	p = decodeBody[RequestPage](t, h.get(t, &alice, "/api/v1/usage/requests?limit=1000&cursor="+*p.NextCursor))
	if len(p.Data) != 500 || p.NextCursor != nil || p.Data[499].ID != "req_100000" {
		t.Fatalf("second page: %d entries, cursor %v", len(p.Data), p.NextCursor)
	}
}

// --- fuzz ---

// fuzzAPI is an API with empty fakes, to run handlers without a session.
func fuzzAPI() *API {
	return New(Options{Usage: &fakeUsage{}, Allowance: &fakeAllowance{status: limits.Status{Period: "month"}}, Clock: clock.NewFake(usageNow)})
}

// FuzzUsageQuery feeds untrusted query strings to GET /api/v1/usage: every
// input is either a valid query (a window of 1 to 1000 aligned buckets,
// printable filters) answered 200 with every bucket, or a 400, never a
// panic or a 5xx.
func FuzzUsageQuery(f *testing.F) {
	for _, seed := range []string{
		"", "granularity=hour", "granularity=month&from=2025-01-01", "from=2024-02-29&to=2024-03-01T00:00:00.5Z",
		"granularity=hour&from=2026-01-01T01:30:00+02:00", "to=9998-12-31T23:59:59Z&granularity=month",
		"from=1970-01-01&granularity=day", "app=app_1&credential=key_1", "app=%ff", "granularity=hour&granularity=day",
		"from=2026-01-01T00:00:00.123456789-23:59&to=2026-01-02T00:00:00%2B23:59", "%zz=1&from=2026-02-28",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a := fuzzAPI()
		v, _ := url.ParseQuery(raw) // like r.URL.Query(): a bad pair is dropped
		q, err := parseUsageQuery(v, usageNow)
		if err != nil {
			var e *apierror.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
				t.Fatalf("%q: %v is not a 400", raw, err)
			}
		} else {
			n := bucketCount(q.Granularity, q.From, q.To)
			switch {
			case defaultBuckets[q.Granularity] == 0:
				t.Fatalf("%q: granularity %q", raw, q.Granularity)
			case !q.From.Before(q.To) || n < 1 || n > maxBuckets:
				t.Fatalf("%q: window [%s, %s) of %d buckets", raw, q.From, q.To, n)
			case !store.BucketStart(q.Granularity, q.From).Equal(q.From) || !store.BucketStart(q.Granularity, q.To).Equal(q.To):
				t.Fatalf("%q: window [%s, %s) not aligned", raw, q.From, q.To)
			case q.OrgID != "":
				t.Fatalf("%q: organization %q from the query", raw, q.OrgID)
			case q.AppID != "" && !validID(q.AppID), q.CredentialID != "" && !validID(q.CredentialID):
				t.Fatalf("%q: filters %q %q", raw, q.AppID, q.CredentialID)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/usage", nil)
		r.URL.RawQuery = raw
		w := httptest.NewRecorder()
		apierror.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			return a.getUsage(w, r, accounts.Session{User: alice})
		}).ServeHTTP(w, r)
		switch {
		case err == nil && w.Code == http.StatusOK:
			var u Usage
			if err := json.Unmarshal(w.Body.Bytes(), &u); err != nil || len(u.Series) != bucketCount(q.Granularity, q.From, q.To) {
				t.Fatalf("%q: body %s: %v", raw, w.Body, err)
			}
		case err != nil && w.Code == http.StatusBadRequest:
		default:
			t.Fatalf("%q: parsed with %v, answered %d %s", raw, err, w.Code, w.Body)
		}
	})
}

// FuzzRequestQuery does the same for GET /api/v1/usage/requests.
func FuzzRequestQuery(f *testing.F) {
	for _, seed := range []string{
		"", "status=4xx&limit=10", "status=429", "cursor=" + encodeCursor(usageNow, "req_1"), "limit=1000&from=2026-01-01",
		"status=6xx", "cursor=AAAAAAAAAAA", "from=2026-01-02&to=2026-01-01", "credential=a+b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a := fuzzAPI()
		v, _ := url.ParseQuery(raw)
		fl, err := parseRequestQuery(v)
		if err != nil {
			var e *apierror.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
				t.Fatalf("%q: %v is not a 400", raw, err)
			}
		} else {
			switch {
			case fl.Limit < 1 || fl.Limit > maxRequestPage:
				t.Fatalf("%q: limit %d", raw, fl.Limit)
			case fl.StatusMin > fl.StatusMax, fl.StatusMin != 0 && (fl.StatusMin < 100 || fl.StatusMax > 599):
				t.Fatalf("%q: status %d..%d", raw, fl.StatusMin, fl.StatusMax)
			case fl.OrgID != "":
				t.Fatalf("%q: organization %q from the query", raw, fl.OrgID)
			case (fl.AfterID == "") != fl.AfterTime.IsZero():
				t.Fatalf("%q: half a cursor %+v", raw, fl)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/usage/requests", nil)
		r.URL.RawQuery = raw
		w := httptest.NewRecorder()
		apierror.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			return a.listRequests(w, r, accounts.Session{User: alice})
		}).ServeHTTP(w, r)
		if (err == nil) != (w.Code == http.StatusOK) || (err != nil && w.Code != http.StatusBadRequest) {
			t.Fatalf("%q: parsed with %v, answered %d %s", raw, err, w.Code, w.Body)
		}
	})
}

// FuzzRequestCursor checks that cursors are canonical: a cursor is accepted
// only if it is what encodeCursor makes of the entry it names, and every
// entry with a valid ID and time round-trips.
func FuzzRequestCursor(f *testing.F) {
	f.Add(encodeCursor(usageNow, "req_abc-1"), int64(0), "")
	f.Add("", usageNow.UnixMicro(), "req_1")
	f.Add("AAAAAAAAAAA", int64(-1), "req 1")
	f.Add("_____________w", int64(1)<<62, "r")
	f.Fuzz(func(t *testing.T, c string, us int64, id string) {
		if at, got, ok := decodeCursor(c); ok {
			if again := encodeCursor(at, got); again != c {
				t.Fatalf("%q decodes to (%s, %q), which encodes as %q", c, at, got, again)
			}
			if !validID(got) || at.Before(minQueryTime) || !at.Before(maxQueryTime) {
				t.Fatalf("%q: accepted (%s, %q)", c, at, got)
			}
		}
		at := time.UnixMicro(us)
		at2, id2, ok := decodeCursor(encodeCursor(at, id))
		valid := validID(id) && !at.Before(minQueryTime) && at.Before(maxQueryTime)
		if ok != valid || ok && (!at2.Equal(at) || id2 != id) {
			t.Fatalf("(%s, %q): round trip gave (%s, %q, %v)", at, id, at2, id2, ok)
		}
	})
}
