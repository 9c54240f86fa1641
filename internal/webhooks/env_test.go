package webhooks_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/netguard"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/webhooks"
	"github.com/tollgate/tollgate/internal/whsig"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var actor = store.Actor{Type: store.ActorUser, ID: "usr_test", IP: "203.0.113.7"}

// env is a service on a real SQLite store in a temporary file, with a fake
// clock, a master key and an organization.
type env struct {
	t     *testing.T
	path  string
	store *sqlite.Store
	box   *secretbox.Box
	clock *clock.Fake
	pool  *x509.CertPool
	org   string
	svc   *webhooks.Service
	mod   func(*webhooks.Options)
}

// newEnv builds an env whose service allows private addresses (the
// receivers are on 127.0.0.1) and trusts httptest's certificate; mod, if
// not nil, changes the options.
func newEnv(t *testing.T, mod func(*webhooks.Options)) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "tollgate.db"), clock: clock.NewFake(t0), mod: mod}
	var err error
	if e.box, err = secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize)); err != nil {
		t.Fatal(err)
	}
	e.pool = testPool(t)
	e.open()
	e.org = e.newOrg()
	e.svc = e.service(nil)
	return e
}

// open opens the store file.
func (e *env) open() {
	e.t.Helper()
	st, err := sqlite.Open(e.t.Context(), e.path, sqlite.WithClock(e.clock))
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = st
	e.t.Cleanup(func() { _ = st.Close() })
}

// service builds another service on the env's store: the env's options,
// then mod.
func (e *env) service(mod func(*webhooks.Options)) *webhooks.Service {
	e.t.Helper()
	o := webhooks.Options{
		Store: e.store, Sealer: e.box, Clock: e.clock,
		Policy: netguard.Policy{AllowPrivate: true}, RootCAs: e.pool,
	}
	if e.mod != nil {
		e.mod(&o)
	}
	if mod != nil {
		mod(&o)
	}
	svc, err := webhooks.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// newOrg creates an organization and returns its ID.
func (e *env) newOrg() string {
	e.t.Helper()
	org := store.Organization{ID: ids.New(ids.Organization), Name: "Acme", Slug: "acme-" + ids.New("x")[2:12], CreatedAt: t0}
	owner := store.User{ID: ids.New(ids.User), OrgID: org.ID, Email: ids.New("u") + "@example.com",
		Role: store.RoleOwner, Status: store.UserActive, CreatedAt: t0}
	if err := e.store.CreateOrganizationWithOwner(e.t.Context(), org, owner,
		store.AuditEntry{ActorType: store.ActorCLI, Action: "org.create"}); err != nil {
		e.t.Fatal(err)
	}
	return org.ID
}

// create creates an endpoint of the env's organization.
func (e *env) create(url string, types ...string) (webhooks.Endpoint, string) {
	e.t.Helper()
	ep, secret, err := e.svc.Create(e.t.Context(), e.org, webhooks.Input{URL: url, EventTypes: types}, actor)
	if err != nil {
		e.t.Fatalf("Create(%s): %v", url, err)
	}
	return ep, secret
}

// emit emits an event to the env's organization.
func (e *env) emit(typ string, data any) string {
	e.t.Helper()
	id, err := e.svc.Emit(e.t.Context(), e.org, typ, data)
	if err != nil {
		e.t.Fatalf("Emit(%s): %v", typ, err)
	}
	return id
}

// deliverDue runs one round and checks how many deliveries it claimed.
func (e *env) deliverDue(want int) {
	e.t.Helper()
	n, err := e.svc.DeliverDue(e.t.Context())
	if err != nil || n != want {
		e.t.Fatalf("DeliverDue = %d, %v; want %d", n, err, want)
	}
}

// drain runs rounds until one claims nothing, and returns how many
// deliveries they claimed in all.
func (e *env) drain() int {
	e.t.Helper()
	total := 0
	for {
		n, err := e.svc.DeliverDue(e.t.Context())
		if err != nil {
			e.t.Fatalf("DeliverDue: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// endpoint reads one of the env's organization's endpoints.
func (e *env) endpoint(id string) webhooks.Endpoint {
	e.t.Helper()
	ep, err := e.svc.Get(e.t.Context(), e.org, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// deliveries lists an endpoint's deliveries, newest first.
func (e *env) deliveries(endpointID string) []store.WebhookDelivery {
	e.t.Helper()
	ds, err := e.svc.Deliveries(e.t.Context(), e.org, store.WebhookDeliveryFilter{EndpointID: endpointID})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

// only returns an endpoint's one delivery.
func (e *env) only(endpointID string) store.WebhookDelivery {
	e.t.Helper()
	ds := e.deliveries(endpointID)
	if len(ds) != 1 {
		e.t.Fatalf("endpoint %s has %d deliveries, want 1", endpointID, len(ds))
	}
	return ds[0]
}

// testPool trusts the certificate every httptest TLS server uses.
func testPool(t *testing.T) *x509.CertPool {
	t.Helper()
	s := httptest.NewTLSServer(http.NotFoundHandler())
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

// received is a request a receiver got.
type received struct {
	header http.Header
	body   []byte
	status int // the status answered
}

// receiver is an HTTPS webhook receiver that records what it gets.
type receiver struct {
	srv    *httptest.Server
	status atomic.Value // func(n int) int: the status of the nth request
	conns  atomic.Int32 // connections accepted
	mu     sync.Mutex
	got    []received
}

func ok(int) int      { return http.StatusOK }
func failing(int) int { return http.StatusInternalServerError }

// newReceiver starts a receiver answering status(n) to its nth request.
func newReceiver(t *testing.T, status func(n int) int) *receiver {
	return newReceiverAt(t, "127.0.0.1:0", status)
}

// newReceiverAt starts a receiver on addr.
func newReceiverAt(t *testing.T, addr string, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{}
	r.status.Store(status)
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.srv.Listener.Close()
	r.srv.Listener = l
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS refusals are expected
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status := r.status.Load().(func(int) int)(len(r.got) + 1)
	r.got = append(r.got, received{header: req.Header.Clone(), body: body, status: status})
	r.mu.Unlock()
	w.WriteHeader(status)
}

// setStatus changes the receiver's answers.
func (r *receiver) setStatus(status func(n int) int) { r.status.Store(status) }

// url is the receiver's URL with path.
func (r *receiver) url(path string) string { return r.srv.URL + path }

// requests returns what the receiver got so far.
func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// key parses a webhook secret.
func key(t *testing.T, secret string) []byte {
	t.Helper()
	k, err := whsig.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signatures counts the signatures of each format in h.
func signatures(h http.Header) (standard, seed int) {
	return len(strings.Fields(h.Get(whsig.HeaderStandardSignature))), strings.Count(h.Get(whsig.HeaderSignature), ",v1=")
}

// apiError returns err as an *apierror.Error, failing the test otherwise.
func apiError(t *testing.T, err error) *apierror.Error {
	t.Helper()
	var e *apierror.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *apierror.Error", err)
	}
	return e
}

// wantInvalid checks that err is a 400 on field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want a 400 on %q", field)
	}
	e := apiError(t, err)
	if e.Status != http.StatusBadRequest || e.Code != apierror.BadRequest || e.Field != field {
		t.Fatalf("error %v (status %d, field %q); want a 400 on %q", err, e.Status, e.Field, field)
	}
}
