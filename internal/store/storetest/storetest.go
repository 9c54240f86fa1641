// Package storetest is the conformance suite for store.Store: every backend
// runs RunTests, unchanged, against the real database it stores into.
//
// The suite checks the behaviour the store package documents and nothing
// specific to one backend: round trips (times in UTC at microsecond
// precision, slices and maps never nil), the sentinel errors, update
// closures (abort, immutable fields), the audit entry that goes with every
// change, list orders and filters, refresh-token rotation, usage (the
// request log, its calendar rollups and paging, the totals of requests left
// out of the log, quota counts), the webhook outbox (fan-out, claim leases,
// attempts, endpoints' health and backlog, redelivery, purge), the cluster
// settings, and the races (concurrent updates of one key, concurrent
// rotations of one token, concurrent usage batches and purchases, concurrent
// claims of webhook deliveries and attempts of one endpoint, concurrent pins
// of a cluster setting) that are meant to be run with -race.
//
// It is an ordinary package, not a _test one, so that backends in other
// packages can import it; nothing outside tests should.
package storetest

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// RunTests runs the conformance suite. newStore must return a fresh, empty
// store for each call and register its cleanup (t.Cleanup) itself; every
// subtest gets its own store.
func RunTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(f *fixture)
	}{
		{"EmptyStore", testEmptyStore},
		{"Organizations", testOrganizations},
		{"OrganizationErrors", testOrganizationErrors},
		{"UpdateOrganization", testUpdateOrganization},
		{"DisableOrganization", testDisableOrganization},
		{"Users", testUsers},
		{"UserErrors", testUserErrors},
		{"ListUsers", testListUsers},
		{"UpdateUser", testUpdateUser},
		{"RecordLogin", testRecordLogin},
		{"Apps", testApps},
		{"AppErrors", testAppErrors},
		{"UpdateApp", testUpdateApp},
		{"DeleteApp", testDeleteApp},
		{"APIKeys", testAPIKeys},
		{"APIKeyErrors", testAPIKeyErrors},
		{"ListAPIKeys", testListAPIKeys},
		{"UpdateAPIKey", testUpdateAPIKey},
		{"TouchAPIKeys", testTouchAPIKeys},
		{"Plans", testPlans},
		{"SigningKeys", testSigningKeys},
		{"RefreshTokens", testRefreshTokens},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"RevokeRefreshTokens", testRevokeRefreshTokens},
		{"RefreshFamilies", testRefreshFamilies},
		{"RevokedTokens", testRevokedTokens},
		{"AppendAudit", testAppendAudit},
		{"ListAudit", testListAudit},
		{"ListAuditLimit", testListAuditLimit},
		{"AuditAtomicity", testAuditAtomicity},
		{"ConcurrentUpdateAPIKey", testConcurrentUpdateAPIKey},
		{"ConcurrentRotateRefreshToken", testConcurrentRotateRefreshToken},
		{"RecordUsage", testRecordUsage},
		{"RecordUsageDuplicates", testRecordUsageDuplicates},
		{"UsageRollups", testUsageRollups},
		{"UsageFilters", testUsageFilters},
		{"UsageTotals", testUsageTotals},
		{"UsageTotalsDuplicates", testUsageTotalsDuplicates},
		{"UsageTotalsRefused", testUsageTotalsRefused},
		{"ListRequests", testListRequests},
		{"ListRequestsLimit", testListRequestsLimit},
		{"ListRequestsAcrossBatches", testListRequestsAcrossBatches},
		{"PurgeRequests", testPurgeRequests},
		{"QuotaCounts", testQuotaCounts},
		{"ConcurrentRecordUsage", testConcurrentRecordUsage},
		{"ConcurrentRecordUsageTotals", testConcurrentRecordUsageTotals},
		{"Purchase", testPurchase},
		{"ListSubscriptions", testListSubscriptions},
		{"ConcurrentPurchase", testConcurrentPurchase},
		{"WebhookEndpoints", testWebhookEndpoints},
		{"UpdateWebhookEndpoint", testUpdateWebhookEndpoint},
		{"DeleteWebhookEndpoint", testDeleteWebhookEndpoint},
		{"EnqueueWebhookEvent", testEnqueueWebhookEvent},
		{"WebhookTestEvent", testWebhookTestEvent},
		{"ClaimWebhookDeliveries", testClaimWebhookDeliveries},
		{"ConcurrentClaimWebhookDeliveries", testConcurrentClaimWebhookDeliveries},
		{"RecordWebhookAttempt", testRecordWebhookAttempt},
		{"ConcurrentWebhookHealth", testConcurrentWebhookHealth},
		{"WebhookBacklog", testWebhookBacklog},
		{"ClusterSettings", testClusterSettings},
		{"ConcurrentPinClusterSetting", testConcurrentPinClusterSetting},
		{"RedeliverWebhook", testRedeliverWebhook},
		{"ListWebhookDeliveries", testListWebhookDeliveries},
		{"ListWebhookDeliveriesLimit", testListWebhookDeliveriesLimit},
		{"PurgeWebhookDeliveries", testPurgeWebhookDeliveries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(newFixture(t, newStore(t)))
		})
	}
}

// testEmptyStore: every getter says ErrNotFound, every list is empty and not
// nil, on a store with nothing in it.
func testEmptyStore(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	mustDo(t, s.Ping(ctx))

	notFound := []struct {
		name string
		err  error
	}{
		{"GetOrganization", second(s.GetOrganization(ctx, "org_missing"))},
		{"GetOrganizationBySlug", second(s.GetOrganizationBySlug(ctx, "missing"))},
		{"GetUser", second(s.GetUser(ctx, "usr_missing"))},
		{"GetUserByEmail", second(s.GetUserByEmail(ctx, "missing@example.com"))},
		{"GetApp", second(s.GetApp(ctx, "app_missing"))},
		{"GetAppByClientID", second(s.GetAppByClientID(ctx, "missing"))},
		{"GetAPIKey", second(s.GetAPIKey(ctx, "key_missing"))},
		{"GetAPIKeyByHash", second(s.GetAPIKeyByHash(ctx, hash("missing")))},
		{"GetPlan", second(s.GetPlan(ctx, "missing"))},
		{"GetRefreshTokenByHash", second(s.GetRefreshTokenByHash(ctx, hash("missing")))},
		{"GetRefreshFamily", second(s.GetRefreshFamily(ctx, "fam_missing"))},
		{"GetWebhookEndpoint", second(s.GetWebhookEndpoint(ctx, "wh_missing"))},
		{"GetWebhookDelivery", second(s.GetWebhookDelivery(ctx, "dlv_missing"))},
		{"GetClusterSetting", second(s.GetClusterSetting(ctx, "auth.issuer"))},
	}
	for _, tt := range notFound {
		wantErr(t, tt.name, tt.err, store.ErrNotFound)
	}

	lists := []struct {
		name string
		listCheck
	}{
		{"ListOrganizations", listResult(s.ListOrganizations(ctx))},
		{"ListUsers", listResult(s.ListUsers(ctx, store.UserFilter{}))},
		{"ListApps", listResult(s.ListApps(ctx, "org_missing"))},
		{"ListAPIKeys", listResult(s.ListAPIKeys(ctx, "org_missing"))},
		{"ListPlans", listResult(s.ListPlans(ctx))},
		{"ListSigningKeys", listResult(s.ListSigningKeys(ctx))},
		{"ListAudit", listResult(s.ListAudit(ctx, store.AuditFilter{}))},
		{"ListRequests", listResult(s.ListRequests(ctx, store.RequestFilter{OrgID: "org_missing"}))},
		{"UsageSeries", listResult(s.UsageSeries(ctx, store.UsageQuery{OrgID: "org_missing", Granularity: store.GranularityDay,
			From: start.AddDate(0, 0, -1), To: start.AddDate(0, 0, 1)}))},
		{"ListWebhookEndpoints", listResult(s.ListWebhookEndpoints(ctx, ""))},
		{"ListWebhookDeliveries", listResult(s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{}))},
		{"ListWebhookAttempts", listResult(s.ListWebhookAttempts(ctx, "dlv_missing"))},
		{"ClaimWebhookDeliveries", listResult(s.ClaimWebhookDeliveries(ctx, start, time.Minute, 10))},
	}
	for _, l := range lists {
		mustDo(t, l.err)
		if l.n != 0 || l.isNil {
			t.Errorf("%s on an empty store: %d items, nil = %v; want 0 items, not nil", l.name, l.n, l.isNil)
		}
	}

	wantEqual(t, "GetQuotaCount", must(s.GetQuotaCount(ctx, "missing"))(t), int64(0))
	wantEqual(t, "PurgeRequests", must(s.PurgeRequests(ctx, start, start))(t), int64(0))
	wantEqual(t, "PurgeWebhookDeliveries", must(s.PurgeWebhookDeliveries(ctx, start))(t), int64(0))
	mustDo(t, s.PurgeQuotaCounts(ctx, start))
}

func second[T any](_ T, err error) error { return err }

// listCheck is what testEmptyStore checks of a list.
type listCheck struct {
	n     int
	isNil bool
	err   error
}

func listResult[T any](v []T, err error) listCheck {
	return listCheck{len(v), v == nil, err}
}
