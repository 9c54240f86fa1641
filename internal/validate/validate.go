// Package validate holds the input rules shared by the control-plane services:
// names, scopes and e-mail addresses. Errors are *apierror.Error values of
// code BAD_REQUEST naming the offending field.
package validate

import (
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/config"
)

// MaxScopes bounds the scopes of one credential.
const MaxScopes = 32

// Name trims s and checks it is 1..maxLen characters of printable text without
// control characters.
func Name(field, s string, maxLen int) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", apierror.Invalid(field, "%s is required", field)
	}
	if !utf8.ValidString(s) {
		return "", apierror.Invalid(field, "%s must be valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return "", apierror.Invalid(field, "%s must be at most %d characters", field, maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "", apierror.Invalid(field, "%s must not contain control characters", field)
		}
	}
	return s, nil
}

// Scopes checks every scope's syntax and returns them sorted without
// duplicates (never nil).
func Scopes(field string, scopes []string) ([]string, error) {
	if len(scopes) > MaxScopes {
		return nil, apierror.Invalid(field, "at most %d scopes", MaxScopes)
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if !config.ValidScope(s) {
			return nil, apierror.Invalid(field, "%q is not a valid scope (lowercase letters, digits and . _ : -, such as webhook.read)", s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Email checks that s is a bare e-mail address (no display name) of at most
// 254 bytes and returns it in lower case.
func Email(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", apierror.Invalid(field, "%s is required", field)
	}
	if len(s) > 254 {
		return "", apierror.Invalid(field, "%s is too long", field)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", apierror.Invalid(field, "%s is not a valid e-mail address", field)
	}
	return strings.ToLower(s), nil
}
