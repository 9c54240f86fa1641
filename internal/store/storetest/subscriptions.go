package storetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Subscriptions: wallets' x402 purchases.

// paymentValue returns a payment of wallet for plan at the given time, with a
// fresh authorization.
func paymentValue(wallet, plan string, at time.Time) store.Payment {
	nonce := ids.New("nonce")
	return store.Payment{
		Authorization: "eip155:8453:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913:" + wallet + ":" + nonce,
		Wallet:        wallet,
		Plan:          plan,
		Network:       "eip155:8453",
		Asset:         "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
		Amount:        "1000000",
		PayTo:         "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		Transaction:   "0x" + nonce,
		Facilitator:   "local",
		Time:          at,
	}
}

// errOf returns the error of a call's results.
func errOf[T any](_ T, err error) error { return err }

// purchaseAudit is the audit entry a purchase is recorded with.
func purchaseAudit(wallet string) store.AuditEntry {
	return store.AuditEntry{
		ActorType: store.ActorAnon, ActorID: wallet, Action: "subscription.purchase",
		TargetType: "subscription", IP: "198.51.100.7", Details: map[string]string{"plan": "pro"},
	}
}

// testPurchase: a wallet's first purchase creates its organization and
// subscription; one while it is active extends it from its expiry and moves
// the organization to the plan bought; one after it has lapsed starts anew;
// an authorization used already buys nothing.
func testPurchase(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const wallet = "eip155:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	wantErr(t, "GetSubscription of a new wallet", errOf(s.GetSubscription(ctx, wallet)), store.ErrNotFound)

	before := f.allAudit()
	at := f.now()
	first := paymentValue(wallet, "starter", at)
	sub := must(s.Purchase(ctx, first, 30*24*time.Hour, purchaseAudit(wallet)))(t)
	if sub.OrgID == "" {
		t.Fatal("first purchase: no organization")
	}
	want := normalize(store.Subscription{Wallet: wallet, OrgID: sub.OrgID, Plan: "starter", StartedAt: at,
		ExpiresAt: at.Add(30 * 24 * time.Hour), CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt})
	wantEqual(t, "first purchase", sub, want)
	wantEqual(t, "GetSubscription", must(s.GetSubscription(ctx, wallet))(t), want)
	org := must(s.GetOrganization(ctx, sub.OrgID))(t)
	if org.Name != wallet || org.Plan != "starter" || org.Slug == "" {
		t.Errorf("the wallet's organization: %+v, want named after the wallet, on plan starter, with a slug", org)
	}
	audit := purchaseAudit(wallet)
	audit.OrgID, audit.TargetID = sub.OrgID, sub.OrgID
	f.wantNewAudit("first purchase", before, audit)

	// Bought again while active: extended from the expiry, on the new plan.
	later := at.Add(10 * 24 * time.Hour)
	second := paymentValue(wallet, "pro", later)
	sub2 := must(s.Purchase(ctx, second, 7*24*time.Hour, purchaseAudit(wallet)))(t)
	want.Plan, want.ExpiresAt, want.UpdatedAt = "pro", want.ExpiresAt.Add(7*24*time.Hour), sub2.UpdatedAt
	wantEqual(t, "purchase while active", sub2, want)
	if org := must(s.GetOrganization(ctx, sub.OrgID))(t); org.Plan != "pro" {
		t.Errorf("organization plan after buying pro: %q", org.Plan)
	}

	// The same authorization again, even for another wallet: nothing bought.
	before = f.allAudit()
	again := second
	again.ID, again.Wallet = "", "eip155:0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
	_, err := s.Purchase(ctx, again, time.Hour, purchaseAudit(again.Wallet))
	wantErr(t, "a used authorization", err, store.ErrAlreadyExists)
	wantEqual(t, "after a used authorization", must(s.GetSubscription(ctx, wallet))(t), want)
	wantErr(t, "the other wallet", errOf(s.GetSubscription(ctx, again.Wallet)), store.ErrNotFound)
	f.wantNewAudit("a used authorization", before)

	// Bought after lapsing: a new run from the payment's time.
	lapsed := want.ExpiresAt.Add(time.Hour)
	third := paymentValue(wallet, "starter", lapsed)
	sub3 := must(s.Purchase(ctx, third, 24*time.Hour, purchaseAudit(wallet)))(t)
	want.Plan, want.StartedAt, want.ExpiresAt, want.UpdatedAt = "starter", normalize(lapsed), normalize(lapsed.Add(24*time.Hour)), sub3.UpdatedAt
	wantEqual(t, "purchase after lapsing", sub3, want)
	if !sub3.Active(lapsed) || sub3.Active(want.ExpiresAt) {
		t.Errorf("Active: %+v at %v and at its expiry", sub3, lapsed)
	}

	payments := must(s.ListPayments(ctx, wallet))(t)
	if len(payments) != 3 || payments[0].Authorization != third.Authorization || payments[2].Authorization != first.Authorization {
		t.Fatalf("ListPayments: %+v, want the three payments newest first", payments)
	}
	third.ID = payments[0].ID
	wantEqual(t, "a payment read back", payments[0], normalize(third))
	wantEqual(t, "ListPayments of a wallet without any", must(s.ListPayments(ctx, again.Wallet))(t), []store.Payment{})

	for _, bad := range []store.Payment{
		{Authorization: "x", Plan: "pro"},
		{Wallet: wallet, Plan: "pro"},
		{Wallet: wallet, Authorization: "y"},
	} {
		if _, err := s.Purchase(ctx, bad, time.Hour, purchaseAudit(wallet)); err == nil {
			t.Errorf("Purchase(%+v): no error", bad)
		}
	}
	if _, err := s.Purchase(ctx, paymentValue(wallet, "pro", lapsed), 0, purchaseAudit(wallet)); err == nil {
		t.Error("Purchase of no duration: no error")
	}
}

// testListSubscriptions: every subscription, oldest first.
func testListSubscriptions(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	wantEqual(t, "no subscriptions", must(s.ListSubscriptions(ctx))(t), []store.Subscription{})
	var want []store.Subscription
	for i := range 3 {
		f.clk.Advance(time.Second) // creation times in order
		wallet := fmt.Sprintf("solana:%044d", i)
		want = append(want, must(s.Purchase(ctx, paymentValue(wallet, "pro", f.now()), time.Hour, purchaseAudit(wallet)))(t))
	}
	wantEqual(t, "ListSubscriptions", must(s.ListSubscriptions(ctx))(t), want)
}

// testConcurrentPurchase: the same authorization sent many times at once buys
// once; different authorizations of one wallet at once all add up.
func testConcurrentPurchase(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const goroutines = 8
	at := f.now()
	const wallet = "eip155:0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"
	same := paymentValue(wallet, "pro", at)
	var won atomic.Int32
	errs := runAll(goroutines, func(int) error {
		_, err := s.Purchase(ctx, same, time.Hour, purchaseAudit(wallet))
		if err == nil {
			won.Add(1)
			return nil
		}
		if errors.Is(err, store.ErrAlreadyExists) {
			return nil
		}
		return err
	})
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
	if won.Load() != 1 {
		t.Fatalf("%d purchases with one authorization succeeded, want 1", won.Load())
	}
	payments := make([]store.Payment, goroutines)
	for g := range payments {
		payments[g] = paymentValue(wallet, "pro", at)
	}
	errs = runAll(goroutines, func(g int) error {
		_, err := s.Purchase(ctx, payments[g], time.Hour, purchaseAudit(wallet))
		return err
	})
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
	sub := must(s.GetSubscription(ctx, wallet))(t)
	if want := normalize(at.Add((goroutines + 1) * time.Hour)); !sub.ExpiresAt.Equal(want) {
		t.Errorf("expiry after %d purchases of an hour: %v, want %v", goroutines+1, sub.ExpiresAt, want)
	}
}
