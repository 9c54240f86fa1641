package respsign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/tokens"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// memKeys is a minimal in-memory KeyStore.
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
	return append([]store.SigningKey(nil), m.keys...), nil
}

func (m *memKeys) RetireSigningKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			if m.keys[i].RetiredAt.IsZero() {
				m.keys[i].RetiredAt = at
			}
			return nil
		}
	}
	return store.ErrNotFound
}

func (m *memKeys) DeleteSigningKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			m.keys = append(m.keys[:i], m.keys[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

// plainSealer stores keys in clear behind their associated data: enough to
// check that the keyring binds a key to its ID, and to plant known keys.
type plainSealer struct{}

func (plainSealer) Seal(p, ad []byte) ([]byte, error) {
	return append(append(append([]byte{}, ad...), '|'), p...), nil
}

func (plainSealer) Open(s, ad []byte) ([]byte, error) {
	prefix := append(append([]byte{}, ad...), '|')
	if !bytes.HasPrefix(s, prefix) {
		return nil, errors.New("wrong associated data")
	}
	return bytes.Clone(s[len(prefix):]), nil
}

func box(t testing.TB, seed byte, previous ...byte) *secretbox.Box {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, secretbox.KeySize))
	}
	b, err := secretbox.New(bytes.Repeat([]byte{seed}, secretbox.KeySize), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openDB opens a SQLite store on path; another call on the same path is
// another node sharing the database.
func openDB(t testing.TB, path string, clk clock.Clock) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, sqlite.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func sqliteRing(t testing.TB) (*Keyring, *sqlite.Store, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	st := openDB(t, filepath.Join(t.TempDir(), "tollgate.db"), clk)
	k, err := LoadKeyring(context.Background(), st, box(t, 7), clk)
	if err != nil {
		t.Fatal(err)
	}
	return k, st, clk
}

// fixedKey returns a private key derived from name, for golden files.
func fixedKey(name string) *secp256k1.PrivateKey {
	sum := sha256.Sum256([]byte(name))
	return secp256k1.PrivKeyFromBytes(sum[:])
}

// plantedRing returns a keyring over a memory store holding the given keys,
// sealed with plainSealer.
func plantedRing(t testing.TB, clk clock.Clock, keys ...store.SigningKey) (*Keyring, *memKeys) {
	t.Helper()
	ks := &memKeys{keys: keys}
	k, err := LoadKeyring(context.Background(), ks, plainSealer{}, clk)
	if err != nil {
		t.Fatal(err)
	}
	return k, ks
}

func planted(id string, priv *secp256k1.PrivateKey, created, retired time.Time) store.SigningKey {
	sealed, _ := plainSealer{}.Seal(priv.Serialize(), associatedData(id))
	return store.SigningKey{ID: id, Algorithm: Algorithm, PrivateKey: sealed, CreatedAt: created, RetiredAt: retired}
}

func keyIDs(keys []KeyInfo) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func document(t testing.TB, k *Keyring) Document {
	t.Helper()
	var d Document
	if err := json.Unmarshal(k.Document(), &d); err != nil {
		t.Fatalf("document: %v\n%s", err, k.Document())
	}
	return d
}

// mustVerify checks a signature against the key the Document publishes
// under kid, by PEM and by JWK.
func mustVerify(t testing.TB, d Document, body []byte, kid, sig string) {
	t.Helper()
	pub, err := d.PublicKey(kid)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, body, sig); err != nil {
		t.Fatalf("verify with %s: %v", kid, err)
	}
	for _, j := range d.JWKS.Keys {
		if j.Kid == kid {
			jpub, err := j.PublicKey()
			if err != nil || !jpub.IsEqual(pub) {
				t.Fatalf("JWK of %s: %v", kid, err)
			}
			return
		}
	}
	t.Fatalf("%s not in the JWKS", kid)
}

func TestFirstLoadGeneratesAndReloadKeeps(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "tollgate.db")
	st := openDB(t, path, clk)
	k, err := LoadKeyring(ctx, st, box(t, 7), clk)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.ListSigningKeys(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	s := stored[0]
	if s.ID != k.ActiveKeyID() || s.Algorithm != Algorithm || !strings.HasPrefix(s.ID, "sig_") ||
		!s.CreatedAt.Equal(t0) || !s.RetiredAt.IsZero() {
		t.Fatalf("stored key = %+v, active %q", s, k.ActiveKeyID())
	}
	if len(s.PrivateKey) != scalarSize+secretbox.Overhead {
		t.Fatalf("sealed key is %d bytes", len(s.PrivateKey))
	}
	if want := k.snap.Load().active.private.Serialize(); bytes.Contains(s.PrivateKey, want) {
		t.Fatal("private key stored in clear")
	}

	// A restart, and another node on the same database, reuse the key.
	kid, sig := k.Sign([]byte("hello"))
	for range 2 {
		k2, err := LoadKeyring(ctx, openDB(t, path, clk), box(t, 7), clk)
		if err != nil {
			t.Fatal(err)
		}
		kid2, sig2 := k2.Sign([]byte("hello"))
		if kid2 != kid || sig2 != sig {
			t.Fatalf("after reload signs %s %s, want %s %s (RFC 6979 is deterministic)", kid2, sig2, kid, sig)
		}
	}
	if err := k.Reload(ctx); err != nil || k.ActiveKeyID() != kid {
		t.Fatalf("reload: %v, active %q", err, k.ActiveKeyID())
	}
	if stored, _ := st.ListSigningKeys(ctx); len(stored) != 1 {
		t.Fatalf("reloads generated keys: %+v", stored)
	}
	d := document(t, k)
	if d.CurrentKeyID != kid || len(d.Keys) != 1 || len(d.JWKS.Keys) != 1 {
		t.Fatalf("document = %s", k.Document())
	}
	mustVerify(t, d, []byte("hello"), kid, sig)
	if !bytes.Equal(k.PublicKeyPEM(), []byte(d.Keys[0].PEM)) {
		t.Fatal("PublicKeyPEM differs from the document's")
	}
	want := []KeyInfo{{ID: kid, Algorithm: Algorithm, CreatedAt: t0, Signing: true}}
	if got := k.Keys(); !slices.Equal(got, want) {
		t.Fatalf("keys = %+v", got)
	}
}

func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "tollgate.db")
	if _, err := LoadKeyring(ctx, openDB(t, path, clk), box(t, 7), clk); err != nil {
		t.Fatal(err)
	}
	st := openDB(t, path, clk)
	_, err := LoadKeyring(ctx, st, box(t, 8), clk)
	if !errors.Is(err, secretbox.ErrUnknownKey) || !strings.Contains(err.Error(), "wrong master key") {
		t.Fatalf("err = %v", err)
	}
	// Nothing was generated in its place.
	if stored, _ := st.ListSigningKeys(ctx); len(stored) != 1 {
		t.Fatalf("stored = %+v", stored)
	}
	// A key copied into another row does not open there either.
	ks := &memKeys{}
	k, err := LoadKeyring(ctx, ks, plainSealer{}, clk)
	if err != nil {
		t.Fatal(err)
	}
	ks.keys[0].ID = "sig_other"
	if err := k.Reload(ctx); err == nil || k.ActiveKeyID() == "sig_other" {
		t.Fatalf("moved key opened: %v", err)
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	oldID := k.ActiveKeyID()
	body := []byte(`{"data":"before"}`)
	_, oldSig := k.Sign(body)

	clk.Advance(time.Minute)
	newID, retired, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newID == oldID || k.ActiveKeyID() != newID || !slices.Equal(retired, []string{oldID}) {
		t.Fatalf("rotate: new %q (was %q), active %q, retired %v", newID, oldID, k.ActiveKeyID(), retired)
	}
	kid, newSig := k.Sign(body)
	if kid != newID {
		t.Fatalf("signs with %q, want %q", kid, newID)
	}
	d := document(t, k)
	if d.CurrentKeyID != newID || len(d.Keys) != 2 || len(d.JWKS.Keys) != 2 {
		t.Fatalf("document after rotation = %s", k.Document())
	}
	if d.Keys[0].KID != oldID || !d.Keys[0].RetiredAt.Equal(t0.Add(time.Minute)) ||
		d.Keys[1].KID != newID || !d.Keys[1].RetiredAt.IsZero() {
		t.Fatalf("published keys = %+v", d.Keys)
	}
	mustVerify(t, d, body, oldID, oldSig)
	mustVerify(t, d, body, newID, newSig)
	if old, _ := d.PublicKey(oldID); Verify(old, body, newSig) == nil {
		t.Fatal("the new signature verifies with the old key")
	}
	if !bytes.Equal(k.PublicKeyPEM(), []byte(d.Keys[1].PEM)) {
		t.Fatal("PEM is not the new key's")
	}
	want := []KeyInfo{
		{ID: oldID, Algorithm: Algorithm, CreatedAt: t0, RetiredAt: t0.Add(time.Minute)},
		{ID: newID, Algorithm: Algorithm, CreatedAt: t0.Add(time.Minute), Signing: true},
	}
	if got := k.Keys(); !slices.Equal(got, want) {
		t.Fatalf("keys = %+v\nwant %+v", got, want)
	}

	// Another node sees the rotation when it reloads.
	other, err := LoadKeyring(ctx, st, box(t, 7), clk)
	if err != nil || other.ActiveKeyID() != newID {
		t.Fatalf("other node: %v, active %q", err, other.ActiveKeyID())
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	k0 := k.ActiveKeyID()
	clk.Advance(time.Minute) // k0 retired at t0+1m
	k1, _, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // k1 retired at t0+61m
	k2, _, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const grace = time.Hour

	// Within the grace period the retired keys stay published.
	if deleted, err := k.Prune(ctx, grace); err != nil || len(deleted) != 0 {
		t.Fatalf("prune at once: %v %v", deleted, err)
	}
	if ids := keyIDs(k.Keys()); !slices.Equal(ids, []string{k0, k1, k2}) {
		t.Fatalf("keys = %v", ids)
	}
	clk.Advance(time.Minute) // t0+62m: k0 retired 61m ago, k1 1m ago
	deleted, err := k.Prune(ctx, grace)
	if err != nil || !slices.Equal(deleted, []string{k0}) {
		t.Fatalf("prune = %v, %v; want [%s]", deleted, err, k0)
	}
	if ids := keyIDs(k.Keys()); !slices.Equal(ids, []string{k1, k2}) {
		t.Fatalf("keys after prune = %v", ids)
	}
	if d := document(t, k); len(d.Keys) != 2 || len(d.JWKS.Keys) != 2 || strings.Contains(string(k.Document()), k0) {
		t.Fatalf("pruned key still published: %s", k.Document())
	}

	// Keeping nothing deletes every retired key but never the signing one,
	// not even when it was retired behind the keyring's back.
	clk.Advance(time.Second)
	deleted, err = k.Prune(ctx, 0)
	if err != nil || !slices.Equal(deleted, []string{k1}) || k.ActiveKeyID() != k2 {
		t.Fatalf("prune(0) = %v, %v; active %q", deleted, err, k.ActiveKeyID())
	}
	if err := st.RetireSigningKey(ctx, k2, clk.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if deleted, err := k.Prune(ctx, 0); err != nil || len(deleted) != 0 {
		t.Fatalf("pruned the signing key: %v %v", deleted, err)
	}
	if _, err := k.Prune(ctx, -time.Second); err == nil {
		t.Fatal("negative grace accepted")
	}
}

// A keyring whose keys were all retired elsewhere signs nothing, and says so.
func TestNoSigningKey(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	if err := st.RetireSigningKey(ctx, k.ActiveKeyID(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := k.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, sig := k.Sign([]byte("x")); kid != "" || sig != "" || k.ActiveKeyID() != "" || k.PublicKeyPEM() != nil {
		t.Fatalf("signed with %q: %q", kid, sig)
	}
	if d := document(t, k); d.CurrentKeyID != "" || len(d.Keys) != 1 {
		t.Fatalf("document = %s", k.Document())
	}
	// A new load generates a key again.
	k2, err := LoadKeyring(ctx, st, box(t, 7), clk)
	if err != nil || k2.ActiveKeyID() == "" {
		t.Fatalf("load: %v", err)
	}
}

// The signing key table holds the token keys too: each keyring rotates and
// prunes only its own, and ignores the other's.
func TestSharesTableWithTokenKeys(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	tk, err := tokens.LoadKeyring(ctx, st, box(t, 7), clk)
	if err != nil {
		t.Fatal(err)
	}
	e0, r0 := k.ActiveKeyID(), tk.ActiveKeyID()

	clk.Advance(time.Minute)
	e1, retired, err := k.Rotate(ctx)
	if err != nil || !slices.Equal(retired, []string{e0}) {
		t.Fatalf("rotate retired %v, %v; want only %s", retired, err, e0)
	}
	clk.Advance(time.Minute)
	r1, retired, err := tk.Rotate(ctx)
	if err != nil || !slices.Equal(retired, []string{r0}) {
		t.Fatalf("token rotate retired %v, %v; want only %s", retired, err, r0)
	}
	if k.ActiveKeyID() != e1 {
		t.Fatal("token rotation changed the response signing key")
	}
	if err := k.Reload(ctx); err != nil || k.ActiveKeyID() != e1 || !slices.Equal(keyIDs(k.Keys()), []string{e0, e1}) {
		t.Fatalf("reload: %v, keys %+v", err, k.Keys())
	}

	clk.Advance(time.Hour)
	deleted, err := k.Prune(ctx, 0)
	if err != nil || !slices.Equal(deleted, []string{e0}) {
		t.Fatalf("prune = %v, %v; want [%s]", deleted, err, e0)
	}
	deleted, err = tk.Prune(ctx, 0)
	if err != nil || !slices.Equal(deleted, []string{r0}) {
		t.Fatalf("token prune = %v, %v; want [%s]", deleted, err, r0)
	}
	stored, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range stored {
		got = append(got, s.Algorithm+" "+s.ID)
		if !s.RetiredAt.IsZero() {
			t.Errorf("%s retired", s.ID)
		}
	}
	if want := []string{"ES256K " + e1, "RS256 " + r1}; !slices.Equal(got, want) {
		t.Fatalf("stored = %v, want %v", got, want)
	}
}

// tokens.ResealKeys reseals every key of the table, these included, after a
// master key rotation: the keyring then opens them under the new key alone.
func TestResealedByTokens(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := openDB(t, filepath.Join(t.TempDir(), "tollgate.db"), clk)
	k, err := LoadKeyring(ctx, st, box(t, 7), clk)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, _, err := k.Rotate(ctx); err != nil { // a retired key, too
		t.Fatal(err)
	}
	if _, err := tokens.LoadKeyring(ctx, st, box(t, 7), clk); err != nil {
		t.Fatal(err)
	}
	body := []byte("resealed")
	kid, sig := k.Sign(body)

	n, err := tokens.ResealKeys(ctx, st, box(t, 9, 7))
	if err != nil || n != 3 {
		t.Fatalf("resealed %d, %v; want 3", n, err)
	}
	if _, err := LoadKeyring(ctx, st, box(t, 7), clk); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("old master key alone: %v", err)
	}
	k2, err := LoadKeyring(ctx, st, box(t, 9), clk)
	if err != nil {
		t.Fatal(err)
	}
	if kid2, sig2 := k2.Sign(body); kid2 != kid || sig2 != sig || len(k2.Keys()) != 2 {
		t.Fatalf("after reseal: %s %s, %d keys", kid2, sig2, len(k2.Keys()))
	}
	if n, err := tokens.ResealKeys(ctx, st, box(t, 9)); err != nil || n != 0 {
		t.Fatalf("second reseal: %d, %v", n, err)
	}
}

func TestConcurrentSignRotateReload(t *testing.T) {
	ctx := context.Background()
	k, _, clk := sqliteRing(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	type signed struct{ body, kid, sig string }
	results := make(chan signed, 1024)
	for i := range 8 {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				body := strings.Repeat("x", i*j%300)
				kid, sig := k.Sign([]byte(body))
				select {
				case results <- signed{body, kid, sig}:
				default:
				}
			}
		})
	}
	for range 5 {
		clk.Advance(time.Minute)
		if _, _, err := k.Rotate(ctx); err != nil {
			t.Error(err)
		}
		if err := k.Reload(ctx); err != nil {
			t.Error(err)
		}
		_ = k.Document()
		_ = k.Keys()
	}
	close(stop)
	wg.Wait()
	close(results)
	d := document(t, k)
	n := 0
	for r := range results {
		mustVerify(t, d, []byte(r.body), r.kid, r.sig)
		n++
	}
	if n == 0 {
		t.Fatal("nothing signed")
	}
}

// The wire formats, pinned: a Document and signatures of fixed keys (RFC
// 6979 makes them deterministic). Run with -update to rewrite.
func TestGolden(t *testing.T) {
	clk := clock.NewFake(t0)
	k, _ := plantedRing(t, clk,
		planted("sig_golden0000000000000000000a", fixedKey("respsign golden 0"), t0, t0.Add(24*time.Hour)),
		planted("sig_golden0000000000000000000b", fixedKey("respsign golden 1"), t0.Add(24*time.Hour), time.Time{}),
	)
	var doc bytes.Buffer
	if err := json.Indent(&doc, k.Document(), "", "  "); err != nil {
		t.Fatal(err)
	}
	doc.WriteByte('\n')
	golden(t, "document.golden.json", doc.Bytes())

	var sigs bytes.Buffer
	for _, v := range goldenBodies {
		kid, sig := k.Sign([]byte(v))
		sigs.WriteString(kid + " " + sig + "\n")
	}
	golden(t, "signatures.golden.txt", sigs.Bytes())
}

var goldenBodies = []string{"", `{"data":"Example payload"}`, "caf\u00e9 \u2603 \U0001F600\n"}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if intended):\n got: %s\nwant: %s", name, got, want)
	}
}

func TestServeHTTP(t *testing.T) {
	k, _, _ := sqliteRing(t)
	do := func(method, target string, header ...string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, target, nil)
		for i := 0; i < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		k.ServeHTTP(w, r)
		return w
	}
	check := func(w *httptest.ResponseRecorder, ctype string, body []byte) {
		t.Helper()
		h := w.Result().Header
		if w.Code != http.StatusOK || h.Get("Content-Type") != ctype || h.Get("Cache-Control") != "public, max-age=300" ||
			h.Get("Vary") != "Accept" || !bytes.Equal(w.Body.Bytes(), body) {
			t.Fatalf("%d %v\n%s", w.Code, h, w.Body)
		}
	}
	check(do("GET", WellKnownPath), "application/json", k.Document())
	check(do("GET", WellKnownPath, "Accept", "application/json, */*;q=0.1"), "application/json", k.Document())
	check(do("GET", WellKnownPath+"?format=pem"), PEMContentType, k.PublicKeyPEM())
	check(do("GET", WellKnownPath, "Accept", "text/plain, application/x-pem-file;q=0.9"), PEMContentType, k.PublicKeyPEM())
	check(do("GET", WellKnownPath, "Accept", "application/x-pem-file;q=0"), "application/json", k.Document())
	check(do("HEAD", WellKnownPath), "application/json", nil)

	if w := do("POST", WellKnownPath); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", w.Code, w.Header())
	}

	d := document(t, k)
	if d.Algorithm != "ecdsa-secp256k1-sha256" || d.Header != "X-Signature" || d.KeyIDHeader != "X-Signature-Key-Id" {
		t.Fatalf("document = %s", k.Document())
	}
	var raw map[string]any
	if err := json.Unmarshal(k.Document(), &raw); err != nil {
		t.Fatal(err)
	}
	key := raw["keys"].([]any)[0].(map[string]any)
	if _, ok := key["retired_at"]; ok {
		t.Fatalf("retired_at of a signing key: %v", key)
	}
	jwk := key["jwk"].(map[string]any)
	if len(jwk) != 7 || jwk["kty"] != "EC" || jwk["crv"] != "secp256k1" || jwk["alg"] != "ES256K" || jwk["use"] != "sig" {
		t.Fatalf("jwk = %v", jwk)
	}
}

func TestSign(t *testing.T) {
	k, _, _ := sqliteRing(t)
	d := document(t, k)
	for _, body := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte{0xff}, 1<<16)} {
		kid, sig := k.Sign(body)
		mustVerify(t, d, body, kid, sig)
		if len(sig) > maxSignatureB64 || strings.ContainsAny(sig, "-_\n") {
			t.Fatalf("signature %q", sig)
		}
	}
	allocs := testing.AllocsPerRun(50, func() { k.Sign(make([]byte, 1024)) })
	t.Logf("%v allocations per Sign", allocs)
}

func BenchmarkSign(b *testing.B) {
	k, _ := plantedRing(b, clock.NewFake(t0), planted("sig_bench", fixedKey("bench"), t0, time.Time{}))
	body := bytes.Repeat([]byte("a"), 1024)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		k.Sign(body)
	}
}
