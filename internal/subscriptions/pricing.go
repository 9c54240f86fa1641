package subscriptions

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/siwx"
)

// Paths Tollgate serves for x402.
const (
	PricingPath  = "/x402/pricing"
	PurchasePath = "/x402/purchase"
)

// HeaderPaymentRequired carries the base64 JSON PaymentRequired of x402
// protocol version 2 in a 402 response.
const HeaderPaymentRequired = "PAYMENT-REQUIRED"

// requirements is x402 v2 PaymentRequirements for the "exact" scheme.
type requirements struct {
	Scheme            string            `json:"scheme"`
	Network           string            `json:"network"`
	Amount            string            `json:"amount"`
	Asset             string            `json:"asset"`
	PayTo             string            `json:"payTo"`
	MaxTimeoutSeconds int64             `json:"maxTimeoutSeconds"`
	Extra             map[string]string `json:"extra,omitempty"`
}

// resource is x402 v2 ResourceInfo.
type resource struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// paymentRequired is x402 v2 PaymentRequired, sent base64-encoded in the
// PAYMENT-REQUIRED header.
type paymentRequired struct {
	X402Version int            `json:"x402Version"`
	Error       string         `json:"error,omitempty"`
	Resource    resource       `json:"resource"`
	Accepts     []requirements `json:"accepts"`
	Extensions  *extensions    `json:"extensions,omitempty"`
}

// extensions are the x402 extensions a 402 advertises.
type extensions struct {
	SignInWithX *signInWithX `json:"sign-in-with-x,omitempty"`
}

// signInWithX advertises x402's sign-in-with-x extension: the message
// fields to sign, the chains and signature types accepted, and the JSON
// Schema of the proof.
type signInWithX struct {
	Info            signInInfo       `json:"info"`
	SupportedChains []supportedChain `json:"supportedChains"`
	Schema          json.RawMessage  `json:"schema"`
}

type signInInfo struct {
	Domain         string   `json:"domain"`
	URI            string   `json:"uri"`
	Version        string   `json:"version"`
	Nonce          string   `json:"nonce"`
	IssuedAt       string   `json:"issuedAt"`
	ExpirationTime string   `json:"expirationTime"`
	Statement      string   `json:"statement"`
	Resources      []string `json:"resources"`
}

type supportedChain struct {
	ChainID         string `json:"chainId"`
	Type            string `json:"type"`
	SignatureScheme string `json:"signatureScheme"`
}

// proofSchema is the JSON Schema of a SIGN-IN-WITH-X proof, as the
// extension publishes it.
var proofSchema = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
	`"properties":{"domain":{"type":"string"},"address":{"type":"string"},"statement":{"type":"string"},` +
	`"uri":{"type":"string","format":"uri"},"version":{"type":"string"},"chainId":{"type":"string"},` +
	`"type":{"type":"string"},"nonce":{"type":"string"},"issuedAt":{"type":"string","format":"date-time"},` +
	`"expirationTime":{"type":"string","format":"date-time"},"notBefore":{"type":"string","format":"date-time"},` +
	`"requestId":{"type":"string"},"resources":{"type":"array","items":{"type":"string","format":"uri"}},` +
	`"signatureScheme":{"type":"string"},"signature":{"type":"string"}},` +
	`"required":["domain","address","uri","version","chainId","type","nonce","issuedAt","signature"]}`)

// requirementsV1 is the PaymentRequirements shape of x402 version 1, which
// v1 clients read from the body of a 402.
type requirementsV1 struct {
	Scheme            string            `json:"scheme"`
	Network           string            `json:"network"`
	MaxAmountRequired string            `json:"maxAmountRequired"`
	Resource          string            `json:"resource"`
	Description       string            `json:"description"`
	MimeType          string            `json:"mimeType"`
	PayTo             string            `json:"payTo"`
	MaxTimeoutSeconds int64             `json:"maxTimeoutSeconds"`
	Asset             string            `json:"asset"`
	Extra             map[string]string `json:"extra,omitempty"`
}

// v1Networks names CAIP-2 chains as x402 version 1 does.
var v1Networks = map[string]string{
	"eip155:8453":  "base",
	"eip155:84532": "base-sepolia",
	"eip155:1":     "ethereum",
	"eip155:137":   "polygon",
	"eip155:80002": "polygon-amoy",
	"eip155:43114": "avalanche",
	"eip155:43113": "avalanche-fuji",
	"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp": "solana",
	"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1": "solana-devnet",
}

// Offer is a plan for sale, as GET /x402/pricing lists it.
type Offer struct {
	Plan            string `json:"plan"`
	Description     string `json:"description,omitempty"`
	Price           string `json:"price"` // atomic units of the asset
	DurationSeconds int64  `json:"duration_seconds"`
	// The plan's allowance; zero values are unlimited.
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int     `json:"burst"`
	QuotaUnits        int64   `json:"quota_units"`
	QuotaPeriod       string  `json:"quota_period,omitempty"`
	// PurchaseURL is where to send the payment for this offer.
	PurchaseURL string `json:"purchase_url"`
}

// Pricing is the body of GET /x402/pricing.
type Pricing struct {
	X402Version int     `json:"x402Version"`
	Scheme      string  `json:"scheme"`
	Network     string  `json:"network"`
	Asset       string  `json:"asset"`
	PayTo       string  `json:"pay_to"`
	Offers      []Offer `json:"offers"`
}

// Catalog is what an x402 configuration sells, and the answers derived from
// it: the pricing list and the 402 Payment Required response. It is built
// once and read-only.
type Catalog struct {
	pricing  Pricing
	required *apierror.Error // without the sign-in-with-x extension
	clock    clock.Clock

	// For the sign-in-with-x extension, when advertised: the 402 without
	// it, and the nonces of the challenges.
	pr     paymentRequired
	v1     []requirementsV1
	signIn *signInWithX
	nonces *siwx.Nonces // nil: random nonces no one checks
	// The 402 with a challenge, but for the challenge's nonce and times:
	// the answer without them, and the JSON of PAYMENT-REQUIRED and of
	// the body's extensions, cut where they go.
	base        *apierror.Error
	header, ext template

	byPlan  map[string]config.Offer
	reqs    map[string]Requirement
	perPlan map[string]*apierror.Error // the 402 of POST /x402/purchase?plan=
	answer  func(paymentRequired, []requirementsV1) (*apierror.Error, error)
}

// NewCatalog builds the catalog of an enabled, validated x402
// configuration. Its 402 answer advertises x402's sign-in-with-x extension
// for the configured SIWX domain, URI and chains, with a challenge of its
// own in every answer: a nonce issued by nonces at clk's time (nil: the
// system clock), which a SIGN-IN-WITH-X proof must carry. Nil nonces give
// random nonces, for a Verifier that checks none.
func NewCatalog(cfg config.Config, clk clock.Clock, nonces *siwx.Nonces) (*Catalog, error) {
	x := cfg.X402
	if !x.Enabled {
		return nil, fmt.Errorf("subscriptions: x402 is not enabled")
	}
	base := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	plans := make(map[string]config.Plan, len(cfg.Plans))
	for _, p := range cfg.Plans {
		plans[p.Name] = p
	}
	c := &Catalog{
		pricing:  Pricing{X402Version: 2, Scheme: "exact", Network: x.Network, Asset: x.Asset, PayTo: x.PayTo},
		byPlan:   make(map[string]config.Offer, len(x.Offers)),
		reqs:     make(map[string]Requirement, len(x.Offers)),
		perPlan:  make(map[string]*apierror.Error, len(x.Offers)),
		required: apierror.New(http.StatusPaymentRequired, apierror.PaymentRequired, "payment required: buy a subscription at "+base+PurchasePath),
		clock:    clk,
		nonces:   nonces,
	}
	if c.clock == nil {
		c.clock = clock.System{}
	}
	extra := map[string]string{}
	if x.AssetName != "" {
		extra["name"], extra["version"] = x.AssetName, x.AssetVersion
	}
	pr := paymentRequired{
		X402Version: 2,
		Error:       "payment required",
		Resource:    resource{URL: base + PurchasePath, Description: "a subscription to this API", MimeType: "application/json"},
	}
	var v1 []requirementsV1
	for _, o := range x.Offers {
		p, ok := plans[o.Plan]
		if !ok {
			return nil, fmt.Errorf("subscriptions: offer of unknown plan %q", o.Plan)
		}
		c.byPlan[o.Plan] = o
		purchase := base + PurchasePath + "?plan=" + o.Plan
		c.pricing.Offers = append(c.pricing.Offers, Offer{
			Plan: o.Plan, Description: o.Description, Price: o.Price, DurationSeconds: int64(o.Duration / time.Second),
			RequestsPerSecond: p.Rate.RequestsPerSecond, Burst: p.Rate.Burst,
			QuotaUnits: p.Quota.Units, QuotaPeriod: p.Quota.Period, PurchaseURL: purchase,
		})
		req := requirements{
			Scheme: "exact", Network: x.Network, Amount: o.Price, Asset: x.Asset, PayTo: x.PayTo,
			MaxTimeoutSeconds: int64(x.MaxTimeout / time.Second), Extra: extra,
		}
		pr.Accepts = append(pr.Accepts, req)
		desc := o.Description
		if desc == "" {
			desc = "plan " + o.Plan
		}
		c.reqs[o.Plan] = Requirement{
			Network: x.Network, Asset: x.Asset, PayTo: x.PayTo, Amount: o.Price,
			MaxTimeoutSeconds: req.MaxTimeoutSeconds, AssetName: x.AssetName, AssetVersion: x.AssetVersion,
			Resource: purchase, Description: desc,
		}
		if name, ok := v1Networks[x.Network]; ok {
			v1 = append(v1, requirementsV1{
				Scheme: "exact", Network: name, MaxAmountRequired: o.Price, Resource: purchase,
				Description: desc, MimeType: "application/json", PayTo: x.PayTo,
				MaxTimeoutSeconds: req.MaxTimeoutSeconds, Asset: x.Asset, Extra: extra,
			})
		}
	}
	answer := func(pr paymentRequired, v1 []requirementsV1) (*apierror.Error, error) {
		header, err := json.Marshal(pr)
		if err != nil {
			return nil, err
		}
		return c.required.
			WithHeader(HeaderPaymentRequired, base64.StdEncoding.EncodeToString(header)).
			WithExtra("x402Version", 1).
			WithExtra("accepts", v1).
			WithExtra("purchase", base+PurchasePath).
			WithExtra("pricing", base+PricingPath), nil
	}
	// POST /x402/purchase?plan=NAME asks for that offer alone, so that a
	// plain x402 client pays it by retrying with the first requirements.
	for i, o := range x.Offers {
		one := pr
		one.Resource.URL = base + PurchasePath + "?plan=" + o.Plan
		one.Accepts = pr.Accepts[i : i+1]
		var oneV1 []requirementsV1
		if len(v1) > 0 {
			oneV1 = v1[i : i+1]
		}
		e, err := answer(one, oneV1)
		if err != nil {
			return nil, err
		}
		c.perPlan[o.Plan] = e
	}
	var err error
	if c.required, err = answer(pr, v1); err != nil {
		return nil, err
	}
	c.answer, c.pr, c.v1 = answer, pr, v1
	if sx := x.SIWX; sx.Domain != "" && sx.URI != "" && len(sx.Chains) > 0 {
		c.signIn = &signInWithX{
			Info: signInInfo{
				Domain: sx.Domain, URI: sx.URI, Version: "1",
				Statement: "Sign in to " + sx.Domain, Resources: []string{sx.URI},
			},
			Schema: proofSchema,
		}
		for _, ch := range sx.Chains {
			sc := supportedChain{ChainID: ch, Type: siwx.TypeEIP191, SignatureScheme: siwx.TypeEIP191}
			if strings.HasPrefix(ch, "solana:") {
				sc.Type, sc.SignatureScheme = siwx.TypeEd25519, siwx.SchemeSIWS
			}
			c.signIn.SupportedChains = append(c.signIn.SupportedChains, sc)
		}
		if err := c.buildChallenge(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// buildChallenge prepares what PaymentRequired fills in for each answer:
// the 402 without its PAYMENT-REQUIRED header and extensions, and the JSON
// of both, cut where the nonce and times go.
func (c *Catalog) buildChallenge() error {
	var holes [3]string // random, so that no configured text can contain one
	for i := range holes {
		var b [16]byte
		_, _ = rand.Read(b[:])
		holes[i] = "hole" + hex.EncodeToString(b[:])
	}
	sx := *c.signIn
	sx.Info.Nonce, sx.Info.IssuedAt, sx.Info.ExpirationTime = holes[0], holes[1], holes[2]
	pr := c.pr
	pr.Extensions = &extensions{SignInWithX: &sx}
	header, err := json.Marshal(pr)
	if err != nil {
		return err
	}
	ext, err := json.Marshal(pr.Extensions)
	if err != nil {
		return err
	}
	if c.header, err = cut(header, holes); err != nil {
		return err
	}
	if c.ext, err = cut(ext, holes); err != nil {
		return err
	}
	c.base, err = c.answer(c.pr, c.v1)
	return err
}

// template is a JSON text cut at three holes, filled in that order.
type template [4][]byte

// cut returns b as a template with holes, each of which it holds once, in
// that order.
func cut(b []byte, holes [3]string) (template, error) {
	var t template
	for i, h := range holes {
		before, after, ok := bytes.Cut(b, []byte(h))
		if !ok || bytes.Contains(after, []byte(h)) {
			return t, fmt.Errorf("subscriptions: challenge template: hole %d not found once", i)
		}
		t[i], b = before, after
	}
	t[3] = b
	return t, nil
}

// fill returns t with v in its holes; v needs no JSON escaping.
func (t *template) fill(v [3]string) []byte {
	n := len(t[3])
	for i := range v {
		n += len(t[i]) + len(v[i])
	}
	out := make([]byte, 0, n)
	for i := range v {
		out = append(append(out, t[i]...), v[i]...)
	}
	return append(out, t[3]...)
}

// PaymentRequired is the 402 answer to a request without a valid credential
// or subscription: the x402 v2 PAYMENT-REQUIRED header, and a body with the
// error, the v1 "accepts" list, the purchase and pricing links, and, when
// wallet sign-in is configured, the sign-in-with-x extension (in both): a
// challenge of this answer's own, with a nonce issued now, that an x402
// client signs and sends back in a SIGN-IN-WITH-X header, once. It is safe
// for concurrent use.
func (c *Catalog) PaymentRequired() *apierror.Error {
	if c.signIn == nil {
		return c.required
	}
	e, err := c.challenge(c.clock.Now())
	if err != nil {
		return c.required // cannot happen: encoding fixed types, reading crypto/rand
	}
	return e
}

// challenge builds the 402 answer with a sign-in-with-x challenge issued
// at now.
func (c *Catalog) challenge(now time.Time) (*apierror.Error, error) {
	var v [3]string // nonce, issuedAt, expirationTime: hex digits and times, nothing to escape
	lifetime := siwx.DefaultHeaderMaxAge
	if c.nonces != nil {
		v[0], lifetime = c.nonces.Issue(now), c.nonces.MaxAge()
	} else {
		var nonce [16]byte
		if _, err := rand.Read(nonce[:]); err != nil {
			return nil, err
		}
		v[0] = hex.EncodeToString(nonce[:])
	}
	v[1] = now.UTC().Format(isoMillis)
	v[2] = now.Add(lifetime).UTC().Format(isoMillis)
	return c.base.
		WithHeader(HeaderPaymentRequired, base64.StdEncoding.EncodeToString(c.header.fill(v))).
		WithExtra("extensions", json.RawMessage(c.ext.fill(v))), nil
}

// isoMillis is JavaScript's Date.prototype.toISOString form, which x402
// clients write.
const isoMillis = "2006-01-02T15:04:05.000Z"

// PaymentRequiredFor is the 402 answer of a purchase of plan without a
// payment: the requirements of that offer alone.
func (c *Catalog) PaymentRequiredFor(plan string) *apierror.Error { return c.perPlan[plan] }

// Offer returns the offer of plan.
func (c *Catalog) Offer(plan string) (config.Offer, bool) {
	o, ok := c.byPlan[plan]
	return o, ok
}

// Requirement returns what the offer of plan asks a payment to be.
func (c *Catalog) Requirement(plan string) (Requirement, bool) {
	r, ok := c.reqs[plan]
	return r, ok
}

// ServePricing answers GET /x402/pricing.
func (c *Catalog) ServePricing(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(c.pricing)
}
