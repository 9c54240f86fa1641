package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/sdk"
)

// webhookSecretEnv is the environment variable `tollgate verify webhook`
// reads the webhook secret from by default. The secret is never a flag:
// flags end up in the shell history and in ps.
const webhookSecretEnv = "TOLLGATE_WEBHOOK_SECRET" //nolint:gosec // G101: a variable's name, not a credential

// maxVerifyInput bounds the files `tollgate verify` reads, in bytes.
const maxVerifyInput = 64 << 20

// keysFetchTimeout bounds the fetch of the published keys by
// `tollgate verify response --url`.
const keysFetchTimeout = 30 * time.Second

// verifyWebhookOptions are the flags of `tollgate verify webhook`.
type verifyWebhookOptions struct {
	secretEnv, secretFile string
	headers, body, now    string
	tolerance             time.Duration
}

// verifyResponseOptions are the flags of `tollgate verify response`.
type verifyResponseOptions struct {
	key, url, signature, keyID, headers, body string
}

func verifyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the signature of a webhook delivery or of a gateway response",
		Long: `Check, as a receiver or a client would, the signature of a webhook delivery
(verify webhook) or of a response of the gateway (verify response). Each
prints "valid (…)" and exits 0, or exits 1 saying why not.`,
	}
	cmd.AddCommand(verifyWebhookCmd(e), verifyResponseCmd(e))
	return cmd
}

// webhookCmd is the webhook command group: "tollgate webhook verify" is
// "tollgate verify webhook".
func webhookCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Webhook tools (verify a saved delivery)",
	}
	v := verifyWebhookCmd(e)
	v.Use = strings.Replace(v.Use, "webhook", "verify", 1)
	v.Long = strings.ReplaceAll(v.Long, "tollgate verify webhook", "tollgate webhook verify")
	cmd.AddCommand(v)
	return cmd
}

func verifyWebhookCmd(e *env) *cobra.Command {
	var o verifyWebhookOptions
	cmd := &cobra.Command{
		Use:   "webhook --headers FILE|- --body FILE|- [flags]",
		Short: "Check the signature of a saved webhook delivery",
		Long: `Check the signature of a webhook delivery, saved as two files: its headers, one
"Name: value" a line (a request line first, as in a raw HTTP request, is
skipped), and its body, byte for byte (an editor that adds a final newline
changes it). Give - to read one of them from standard input.

Every signature header present must verify: X-Webhook-Signature
(t=…,v1=<hex>) and the Standard Webhooks webhook-id, webhook-timestamp and
webhook-signature (v1,<base64>); Tollgate sends both. The timestamp must be
within --tolerance of --now.

The endpoint's webhook secret (whsec_…) is read from the environment variable
named by --secret-env (default ` + webhookSecretEnv + `), or from --secret-file;
never from a flag, and it is never printed.

  read -rs ` + webhookSecretEnv + ` && export ` + webhookSecretEnv + `   # whsec_…
  tollgate verify webhook --headers delivery.headers --body delivery.json
  tollgate verify webhook --headers - --body delivery.json --now 2026-11-22T12:00:00Z < delivery.headers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.verifyWebhook(cmd.InOrStdin(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.secretEnv, "secret-env", webhookSecretEnv, "environment variable holding the webhook secret (whsec_…)")
	f.StringVar(&o.secretFile, "secret-file", "", "file holding the webhook secret (whsec_…), instead of --secret-env")
	f.StringVar(&o.headers, "headers", "", `file of the delivery's headers, "Name: value" lines, or - for standard input`)
	f.StringVar(&o.body, "body", "", "file of the delivery's raw body, or - for standard input")
	f.StringVar(&o.now, "now", "", "the time to check the timestamp against, RFC 3339 (default now)")
	f.DurationVar(&o.tolerance, "tolerance", sdk.DefaultWebhookTolerance, "how far the signed timestamp may be from --now, either way")
	cmd.MarkFlagsMutuallyExclusive("secret-env", "secret-file")
	_ = cmd.MarkFlagRequired("headers")
	_ = cmd.MarkFlagRequired("body")
	return cmd
}

func (e *env) verifyWebhook(stdin io.Reader, o *verifyWebhookOptions) error {
	if err := oneStdin(map[string]string{"--headers": o.headers, "--body": o.body, "--secret-file": o.secretFile}); err != nil {
		return err
	}
	if o.tolerance <= 0 {
		return fmt.Errorf("--tolerance %v: want a positive duration", o.tolerance)
	}
	now := time.Now()
	if o.now != "" {
		t, err := time.Parse(time.RFC3339, o.now)
		if err != nil {
			return fmt.Errorf("--now %q: want an RFC 3339 time such as 2026-11-22T12:00:00Z", o.now)
		}
		now = t
	}

	var secret, from string
	if o.secretFile != "" {
		b, err := readInput(stdin, o.secretFile)
		if err != nil {
			return fmt.Errorf("--secret-file: %w", err)
		}
		secret, from = strings.TrimSpace(string(b)), "file "+o.secretFile
	} else {
		if o.secretEnv == "" {
			return errors.New("--secret-env is empty")
		}
		secret, from = getenv(e.environ, o.secretEnv), "$"+o.secretEnv
		if secret == "" {
			return fmt.Errorf("%s is not set: put the endpoint's webhook secret (whsec_…) in it", o.secretEnv)
		}
	}

	raw, err := readInput(stdin, o.headers)
	if err != nil {
		return fmt.Errorf("--headers: %w", err)
	}
	h, err := parseHeaderLines(raw)
	if err != nil {
		return fmt.Errorf("--headers %s: %w", o.headers, err)
	}
	body, err := readInput(stdin, o.body)
	if err != nil {
		return fmt.Errorf("--body: %w", err)
	}

	err = sdk.VerifyWebhookTolerance(secret, h, body, now, o.tolerance)
	switch {
	case errors.Is(err, sdk.ErrInvalidWebhookSecret):
		return fmt.Errorf("the secret in %s: %w", from, err)
	case errors.Is(err, sdk.ErrWebhookMissingSignature):
		return fmt.Errorf("invalid: MISSING_SIGNATURE: %w", err)
	case errors.Is(err, sdk.ErrWebhookTimestamp):
		return fmt.Errorf("invalid: INVALID_SIGNATURE: %w (give --now to check an old delivery)", err)
	case errors.Is(err, sdk.ErrWebhookMalformedSignature):
		return fmt.Errorf("invalid: INVALID_SIGNATURE: %w", err)
	case errors.Is(err, sdk.ErrWebhookInvalidSignature):
		return fmt.Errorf("invalid: INVALID_SIGNATURE: %w (check the secret, and that the body file holds the raw body byte for byte)", err)
	case err != nil:
		return err
	}
	var checked []string
	for _, name := range []string{sdk.HeaderWebhookSignature, sdk.HeaderWebhookStandardSignature} {
		if h.Get(name) != "" {
			checked = append(checked, name)
		}
	}
	fmt.Fprintf(e.out, "valid (signed by the secret in %s; %s)\n", from, strings.Join(checked, " and "))
	return nil
}

func verifyResponseCmd(e *env) *cobra.Command {
	var o verifyResponseOptions
	cmd := &cobra.Command{
		Use:   "response (--key FILE | --url BASE) (--signature SIG | --headers FILE) --body FILE|- [flags]",
		Short: "Check the signature of a saved response of the gateway",
		Long: `Check the X-Signature of a response of the gateway: the ECDSA secp256k1
signature of the SHA-256 of its body, byte for byte as received (before any
decompression), in standard base64.

The public key is a PEM file (--key), or the gateway's publication at
BASE/.well-known/response-signing-key (--url BASE), where the key named by
--key-id (X-Signature-Key-Id) is used, or the current key without it. The
signature and key ID are given as flags, or read from a file of the
response's headers (--headers), as curl -D writes it.

  curl -sD resp.headers -o resp.body https://api.example.com/v1/prices
  tollgate verify response --url https://api.example.com --headers resp.headers --body resp.body
  tollgate verify response --key signing-key.pem --signature 'MEQCI…' --body resp.body`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.verifyResponse(cmd.Context(), cmd.InOrStdin(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "PEM file of the public key")
	f.StringVar(&o.url, "url", "", "base URL of the gateway, whose published keys are used")
	f.StringVar(&o.signature, "signature", "", "the X-Signature value")
	f.StringVar(&o.keyID, "key-id", "", "the X-Signature-Key-Id value, with --url (default: the current key)")
	f.StringVar(&o.headers, "headers", "", `file of the response's headers ("Name: value" lines, as curl -D writes), or - for standard input`)
	f.StringVar(&o.body, "body", "", "file of the response's raw body, or - for standard input")
	cmd.MarkFlagsMutuallyExclusive("key", "url")
	cmd.MarkFlagsOneRequired("key", "url")
	cmd.MarkFlagsMutuallyExclusive("key", "key-id")
	_ = cmd.MarkFlagRequired("body")
	return cmd
}

func (e *env) verifyResponse(ctx context.Context, stdin io.Reader, o *verifyResponseOptions) error {
	if err := oneStdin(map[string]string{"--headers": o.headers, "--body": o.body, "--key": o.key}); err != nil {
		return err
	}
	sig, kid := o.signature, o.keyID
	if o.headers != "" {
		raw, err := readInput(stdin, o.headers)
		if err != nil {
			return fmt.Errorf("--headers: %w", err)
		}
		h, err := parseHeaderLines(raw)
		if err != nil {
			return fmt.Errorf("--headers %s: %w", o.headers, err)
		}
		if sig == "" {
			if sig = h.Get(sdk.HeaderResponseSignature); sig == "" {
				return unsignedResponse(h)
			}
		}
		if kid == "" && o.url != "" {
			kid = h.Get(sdk.HeaderResponseKeyID)
		}
	}
	if sig == "" {
		return errors.New("give the X-Signature value with --signature, or the response's headers with --headers")
	}
	body, err := readInput(stdin, o.body)
	if err != nil {
		return fmt.Errorf("--body: %w", err)
	}

	if o.key != "" {
		pemKey, err := readInput(stdin, o.key)
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		if err := sdk.VerifyResponseSignature(pemKey, body, sig); err != nil {
			if errors.Is(err, sdk.ErrInvalidResponseKey) {
				return fmt.Errorf("--key %s: %w", o.key, err)
			}
			return fmt.Errorf("invalid: %w", err)
		}
		fmt.Fprintf(e.out, "valid (signed by the key in %s)\n", o.key)
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, keysFetchTimeout)
	defer cancel()
	v, err := sdk.NewResponseVerifier(ctx, o.url, &http.Client{Timeout: keysFetchTimeout}, sdk.WithKeyRefetchInterval(time.Hour))
	if err != nil {
		return err
	}
	if err := v.VerifySignature(ctx, kid, body, sig); err != nil {
		return fmt.Errorf("invalid: %w", err)
	}
	if kid == "" {
		_, kid = v.KeyIDs()
		fmt.Fprintf(e.out, "valid (signed by the current key %s published at %s)\n", kid, v.KeysURL())
		return nil
	}
	fmt.Fprintf(e.out, "valid (signed by key %s published at %s)\n", kid, v.KeysURL())
	return nil
}

// unsignedResponse is the error for a response without X-Signature, quoting
// its X-Signature-Status.
func unsignedResponse(h http.Header) error {
	st := h.Get(sdk.HeaderResponseStatus)
	if st == "" {
		return fmt.Errorf("invalid: the response is not signed: no %s header", sdk.HeaderResponseSignature)
	}
	quoted := strconv.QuoteToASCII(st)
	if quoted[1:len(quoted)-1] != strings.ReplaceAll(st, `"`, `\"`) {
		st = quoted // control or non-ASCII characters: show them escaped
	}
	return fmt.Errorf("invalid: the response is not signed: %s: %s", sdk.HeaderResponseStatus, st)
}

// oneStdin returns an error if more than one of the file flags (name to
// value) is "-", standard input.
func oneStdin(files map[string]string) error {
	var names []string
	for name, v := range files {
		if v == "-" {
			names = append(names, name)
		}
	}
	if len(names) > 1 {
		slices.Sort(names)
		return fmt.Errorf("%s cannot all be - (standard input)", strings.Join(names, " and "))
	}
	return nil
}

// readInput returns the contents of the file name, or of stdin if name is
// "-", at most maxVerifyInput bytes.
func readInput(stdin io.Reader, name string) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxVerifyInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxVerifyInput {
		return nil, fmt.Errorf("%s: more than %d bytes", name, maxVerifyInput)
	}
	return b, nil
}

// startLine matches the first line of a raw HTTP request or response.
var startLine = regexp.MustCompile(`^(HTTP/\S+ \d{3}|[A-Z]+ \S+ HTTP/\d)`)

// parseHeaderLines parses the header section of a raw HTTP message: "Name:
// value" lines up to the first empty line or the end, after an optional
// request or status line, with LF or CRLF line ends.
func parseHeaderLines(raw []byte) (http.Header, error) {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a byte order mark some editors write
	if first, rest, _ := bytes.Cut(raw, []byte("\n")); startLine.Match(first) {
		raw = rest
	}
	raw = bytes.TrimLeft(raw, "\r\n")
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n\r\n"))))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	return http.Header(h), nil
}
