// Package webhooks delivers an organization's events to the HTTPS endpoints
// it registers, signed so that receivers can tell them from forgeries, and
// serves the /api/v1/webhooks API that manages those endpoints and shows
// their delivery log.
//
// The Service is the domain: endpoints (Create, List, Get, Update, Delete,
// RotateSecret, Test), events (Emit) and the delivery log (Deliveries,
// Delivery, Redeliver), all scoped to an organization; an ID that belongs to
// another organization is not found, so that no organization learns of
// another's objects. Its dispatcher (Run, or DeliverDue for one round)
// sends the deliveries. The API is the HTTP face of the Service; who may call
// it is decided by an authorize function the server supplies.
//
// # Events and payloads
//
// Emit stores an event and, in the same transaction, one pending delivery
// for every enabled endpoint of the organization subscribed to its type (or
// to "*"). The body delivered is the event's payload, fixed at Emit, byte for
// byte on every attempt and redelivery:
//
//	{"id":"msg_…","type":"apikey.created","timestamp":"2026-03-01T12:00:00.123456Z","organization_id":"org_…","data":{…}}
//
// timestamp is when the event happened, RFC 3339 in UTC at microsecond
// precision (trailing zeros dropped). The event types are the Event*
// constants; EventTypes lists those an endpoint may subscribe to.
//
// # Delivery semantics
//
// Delivery is at least once. The outbox is in the store, so an event emitted
// before a crash or a restart is delivered after it; a delivery is claimed
// for a lease (Options.Lease) before it is attempted, and a node that stops
// before recording the attempt leaves it to be claimed again when the lease
// ends, by itself or another node sharing the store. A receiver may thus
// see the same event twice, and must de-duplicate on the webhook-id header,
// which is the event ID ("msg_…"): the same for every attempt, every
// redelivery and every endpoint.
//
// An attempt is a POST of the payload with Content-Type application/json,
// User-Agent Tollgate-Webhooks/1.0 and the signature headers below, bounded
// by Options.AttemptTimeout. It succeeds when the endpoint answers 2xx
// within that time; redirects are not followed (a 3xx is a failure). At most
// 4 KiB of the answer is read; its status and a short error text are kept in
// the delivery log.
//
// A failed attempt is retried after the next delay of Options.Schedule, by
// default 5s, 5m, 30m, 2h, 5h, 10h and 10h (as Svix: eight attempts over
// about 27 hours), each delay varied at random by up to ±Options.Jitter (20%)
// so that endpoints recovering from an outage are not hit by every retry at
// once. After the last delay's attempt fails, the delivery is failed for
// good; it can still be redelivered by hand (Redeliver), which queues a new
// delivery of the same event with its own schedule.
//
// # Failing and disabled endpoints
//
// An endpoint is failing from its first failed attempt after its last
// success, and healthy again at its next success. A failing run is decided
// by time, not by a count of attempts: a burst of events to an endpoint
// that is down fails every delivery's attempts at once, and counting them
// would disable an endpoint after a short outage. The dispatcher disables an
// endpoint (disabled_reason "failures") at a failed attempt once it has been
// failing for Options.DisableAfter (72 hours by default: longer than a
// weekend, and than two full retry schedules of one delivery), with at least
// MinFailuresToDisable (5) failed attempts. A failure that comes more than a
// quarter of DisableAfter after the previous one (or, when longer, the
// longest retry delay with its jitter) starts a new run: nothing was tried
// in between, so nothing says that the endpoint kept failing. A run that
// disables an endpoint thus has failures spread over all of it, and an
// endpoint whose pending deliveries keep being retried stays in one run.
// Health is recorded with each attempt, in the store's transaction (see
// store.Store.RecordWebhookAttempt), so that attempts recorded at once by
// several workers or nodes all count.
//
// Disabling emits a webhook.endpoint.disabled event to the organization's
// other endpoints ({"endpoint_id","url","reason","disabled_at",
// "failing_since","consecutive_failures","last_error","last_status_code"})
// and is logged and audited. An operator may disable an endpoint too
// (reason "operator"). A disabled endpoint gets no deliveries of new events,
// and its pending ones wait unattempted; enabling it again (Update with
// Enabled true) makes it healthy and resumes them. Test deliveries (Test) go
// to an endpoint even while it is disabled, so that it can be checked before
// being enabled again.
//
// The views (Endpoint.Status and Endpoint.Health) say whether an endpoint is
// healthy, failing (since when, how many attempts, when it will be
// disabled) or disabled (why, since when), with its last success, its last
// failure and its error, and its pending deliveries and their next attempt.
//
// # Signatures
//
// Every attempt is signed at the time it is made with package whsig, under
// the endpoint's secret ("whsec_" + base64 of 32 random bytes, shown once at
// creation and at each rotation), in two formats carried side by side:
//
//	webhook-id: msg_…                               (the event ID)
//	webhook-timestamp: 1614265330                   (Unix seconds of the attempt)
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)> [v1,<…>]
//	X-Webhook-Signature: t=1614265330,v1=<hex HMAC-SHA256(key, t + "." + body)>[,v1=<hex>]
//
// where key is the base64-decoded part of the secret after "whsec_". The
// first three are Standard Webhooks, verifiable with that ecosystem's
// libraries; X-Webhook-Signature is the header of Tollgate's documentation.
// Receivers verify over the raw body as received, before parsing it, and
// refuse a timestamp more than a few minutes from their clock.
//
// RotateSecret gives an endpoint a new secret; the one it replaces keeps
// signing beside it for Options.SecretGrace (24 hours), so that deliveries
// carry one signature per live secret in each header (new first) and the
// receiver can switch secrets without dropping any. Rotating again during a
// grace keeps only the most recent former secret: the one before it stops
// signing at once.
//
// Secrets are sealed in the store (see package secretbox) with associated
// data "webhook_secret:" + the endpoint ID, and never logged, nor shown by
// List or Get. Payloads are never logged either.
//
// # SSRF policy
//
// Endpoints are checked against an operator's netguard.Policy twice. At
// Create and Update, the URL must be https (http only with AllowHTTP),
// absolute, without user information or fragment, and a literal IP or
// "localhost" host must be a public address unless AllowPrivate or
// AllowedCIDRs allow it; a refusal is a 400 on the field "url" saying why.
// At delivery, the scheme is checked again and every address the host
// resolves to is checked when it is dialed (so a name that resolves, or
// comes to resolve, to a loopback, private or link-local address such as a
// cloud metadata service is refused and no connection is made); the attempt
// fails with the reason in its error.
package webhooks
