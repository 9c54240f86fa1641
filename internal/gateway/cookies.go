package gateway

import (
	"net/http"
	"strings"
)

// dropCookies returns the Cookie header values without the cookies whose
// name private reports, and whether any is left; the values are returned as
// they are, without allocating, when none is private. A value's cookies are
// "name=value" pairs separated by ";" (RFC 6265 section 4.2.1).
func dropCookies(values []string, private func(name string) bool) ([]string, bool) {
	dirty := false
	for _, v := range values {
		for pair := range strings.SplitSeq(v, ";") {
			if name, _, _ := strings.Cut(pair, "="); private(strings.TrimSpace(name)) {
				dirty = true
				break
			}
		}
	}
	if !dirty {
		return values, len(values) > 0
	}
	var kept []string
	for _, v := range values {
		for pair := range strings.SplitSeq(v, ";") {
			pair = strings.TrimSpace(pair)
			if name, _, _ := strings.Cut(pair, "="); pair != "" && !private(strings.TrimSpace(name)) {
				kept = append(kept, pair)
			}
		}
	}
	if len(kept) == 0 {
		return nil, false
	}
	return []string{strings.Join(kept, "; ")}, true
}

// dropSetCookies removes from an upstream's response the Set-Cookie fields
// (RFC 6265 section 4.1) of private cookies: no backend may plant one.
func dropSetCookies(h http.Header, private func(name string) bool) {
	values, ok := h["Set-Cookie"]
	if !ok {
		return
	}
	kept := values[:0:0]
	for _, v := range values {
		if name, _, _ := strings.Cut(v, "="); !private(strings.TrimSpace(name)) {
			kept = append(kept, v)
		}
	}
	if len(kept) == len(values) {
		return
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}
