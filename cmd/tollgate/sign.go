package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/sdk"
)

// signingSecretEnv names the environment variable `tollgate sign` takes the
// signing secret from. It is never a flag: flags end up in the shell history
// and in ps.
const signingSecretEnv = "TOLLGATE_SIGNING_SECRET" //nolint:gosec // G101: a variable's name, not a credential

// signOptions are the flags of `tollgate sign`.
type signOptions struct {
	method, url, data, dataFile string
	key, keyID, scheme          string
	nonce, curl                 bool
	timestamp                   int64
	timestampSet                bool
}

func signCmd(e *env) *cobra.Command {
	var o signOptions
	cmd := &cobra.Command{
		Use:   "sign --url URL --key tgk_… [flags]",
		Short: "Print the headers that sign one request with an API key's signing secret",
		Long: `Print the headers that sign one request with an API key's HMAC signing secret,
or with --curl a curl command that sends it. The secret is read from the
environment variable ` + signingSecretEnv + `, never from a flag (flags end up in the
shell history and in ps).

The signature covers the method, the URL's path and query exactly as given
(percent-encoding included) and the body byte for byte: send the request
exactly as signed. The rfc9421 scheme also covers the host; the seed scheme
does not, so prefer rfc9421 where the gateway and the client allow it.
The gateway accepts a signature once, within its window (±5 minutes by
default) of the signing time: sign every request anew, just before sending it.

  read -rs ` + signingSecretEnv + ` && export ` + signingSecretEnv + `   # tgs_…
  tollgate sign --method POST --url 'https://api.example.com/v1/orders?dry=1' \
    --data '{"symbol":"ETH","qty":2}' --key tgk_… --curl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.timestampSet = cmd.Flags().Changed("timestamp")
			return e.sign(&o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.method, "method", http.MethodGet, "request method")
	f.StringVar(&o.url, "url", "", "request URL (http or https), path and query exactly as they will be sent")
	f.StringVar(&o.data, "data", "", "request body")
	f.StringVar(&o.dataFile, "data-file", "", "file holding the request body, sent byte for byte")
	f.StringVar(&o.key, "key", "", "API key (tgk_…), sent as X-API-KEY")
	f.StringVar(&o.keyID, "key-id", "", "the API key's ID (key_…), required by --scheme rfc9421")
	f.StringVar(&o.scheme, "scheme", "seed", "signing scheme: seed (X-Signature) or rfc9421 (Signature-Input, Signature)")
	f.BoolVar(&o.nonce, "nonce", false, "seed scheme: send and sign a random X-Nonce too (rfc9421 always does)")
	f.Int64Var(&o.timestamp, "timestamp", 0, "signing time in Unix seconds (default now)")
	f.BoolVar(&o.curl, "curl", false, "print a curl command line instead of the headers")
	cmd.MarkFlagsMutuallyExclusive("data", "data-file")
	_ = cmd.MarkFlagRequired("url")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// signedHeaders are the headers `tollgate sign` prints, by scheme, in order,
// as the README spells them.
var signedHeaders = map[sdk.Scheme][]string{
	sdk.SchemeSeed:    {"X-API-KEY", "X-Timestamp", "X-Nonce", "X-Signature"},
	sdk.SchemeRFC9421: {"X-API-KEY", "Signature-Input", "Signature", "Content-Digest"},
}

func (e *env) sign(o *signOptions) error {
	secret := getenv(e.environ, signingSecretEnv)
	if secret == "" {
		return fmt.Errorf("%s is not set: put the API key's signing secret (tgs_…) in it", signingSecretEnv)
	}
	var scheme sdk.Scheme
	switch strings.ToLower(o.scheme) {
	case "seed":
		scheme = sdk.SchemeSeed
	case "rfc9421":
		scheme = sdk.SchemeRFC9421
		if o.keyID == "" {
			return errors.New("--scheme rfc9421 needs --key-id, the API key's ID (key_…)")
		}
	default:
		return fmt.Errorf("--scheme %q: want seed or rfc9421", o.scheme)
	}
	if o.key == "" {
		return errors.New("--key is empty")
	}
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want an absolute http or https URL", o.url)
	}
	u.Fragment, u.RawFragment = "", "" // not sent

	body := []byte(o.data)
	if o.dataFile != "" {
		if body, err = os.ReadFile(o.dataFile); err != nil {
			return err
		}
	}
	req, err := http.NewRequest(o.method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}

	now := time.Now
	if o.timestampSet {
		t := time.Unix(o.timestamp, 0)
		now = func() time.Time { return t }
	}
	var signed *http.Request
	signer := &sdk.Signer{
		APIKey: o.key, KeyID: o.keyID, SigningSecret: secret, Scheme: scheme, Nonce: o.nonce, Now: now,
		Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			signed = r
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		}),
	}
	resp, err := signer.RoundTrip(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()

	var headers [][2]string
	for _, name := range signedHeaders[scheme] {
		if v := signed.Header.Get(name); v != "" {
			headers = append(headers, [2]string{name, v})
		}
	}
	if !o.curl {
		for _, h := range headers {
			fmt.Fprintf(e.out, "%s: %s\n", h[0], h[1])
		}
		return nil
	}
	fmt.Fprintln(e.out, curlCommand(o.method, u, headers, body, o.data, o.dataFile))
	return nil
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// curlCommand returns a curl command line for sh that sends the request as
// it was signed: method, headers, the body (data, or the file dataFile) and
// u, with the options that stop curl from rewriting the URL.
func curlCommand(method string, u *url.URL, headers [][2]string, body []byte, data, dataFile string) string {
	args := []string{"curl -X " + shellQuote(method)}
	if method == http.MethodHead {
		args[0] = "curl --head" // curl -X HEAD would wait for a body
	}
	target := u.String()
	if strings.ContainsAny(target, "[]{}") {
		args = append(args, "--globoff") // no URL globbing
	}
	if hasDotSegment(u.EscapedPath()) {
		args = append(args, "--path-as-is") // keep /./ and /../
	}
	for _, h := range headers {
		args = append(args, "-H "+shellQuote(h[0]+": "+h[1]))
	}
	switch {
	case dataFile != "":
		args = append(args, "--data-binary "+shellQuote("@"+dataFile))
	case len(body) == 0:
	case strings.HasPrefix(data, "@"):
		args = append(args, "--data-raw "+shellQuote(data)) // not a file name
	default:
		args = append(args, "--data-binary "+shellQuote(data))
	}
	args = append(args, shellQuote(target))
	return strings.Join(args, " \\\n  ")
}

// hasDotSegment reports whether the escaped path p has a segment that is
// "." or "..", percent-encoded or not, which curl would resolve.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		s, err := url.PathUnescape(seg)
		if err != nil {
			s = seg
		}
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// shellQuote returns s as one word for sh: as is if it holds only characters
// that are never special, else in single quotes.
func shellQuote(s string) string {
	safe := s != ""
	for i := 0; i < len(s) && safe; i++ {
		c := s[i]
		safe = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_./:,+=@%", c) >= 0
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// getenv returns the value of the variable name in environ (NAME=value
// entries), "" if there is none; the first entry wins, as with os.Getenv.
func getenv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
