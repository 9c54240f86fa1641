package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
)

// Routes match the canonical path exactly, case-sensitively, as RFC 3986
// defines paths. Some upstreams read paths more loosely: Express and ASP.NET
// Core route case-insensitively by default, and Windows file systems and IIS
// also drop the trailing dots of a segment. To such an upstream, "/v1/KYT/x"
// and "/v1/kyt./x" are "/v1/kyt/x": a request that matches a route only
// because of its case or trailing dots, while a stricter route matches it as
// they read it, is refused as ambiguous rather than let through the laxer
// route. The loose reading is checked only against routes the exact one
// passed over, so a request pays for it only when it is close to one.

// foldPath returns p as a case-folding, dot-trimming server reads it:
// ASCII letters in lower case, the trailing dots of each segment dropped
// (a segment of dots alone is kept).
func foldPath(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); {
		c := p[i]
		if c == '.' {
			j := i
			for j < len(p) && p[j] == '.' {
				j++
			}
			if (j == len(p) || p[j] == '/') && i > 0 && p[i-1] != '/' {
				i = j // trailing dots of a segment that has more
				continue
			}
			b.WriteString(p[i:j])
			i = j
			continue
		}
		b.WriteByte(lower(c))
		i++
	}
	return b.String()
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldedHasPrefix reports whether foldPath(path) starts with folded, a
// foldPath result, without building foldPath(path).
func foldedHasPrefix(path, folded string) bool {
	i, j := 0, 0
	for j < len(folded) {
		if i >= len(path) {
			return false
		}
		if c := path[i]; c == '.' && i > 0 && path[i-1] != '/' {
			k := i
			for k < len(path) && path[k] == '.' {
				k++
			}
			if k == len(path) || path[k] == '/' {
				i = k
				continue
			}
		}
		if lower(path[i]) != folded[j] {
			return false
		}
		i++
		j++
	}
	return true
}

// looser reports whether a request admitted by route m gets less scrutiny
// than route s would give it: m is public and s is not, or s requires a
// scope m does not.
func looser(m, s *route) bool {
	if m.public && !s.public {
		return true
	}
	for _, sc := range s.scopes {
		if !slices.Contains(m.scopes, sc) {
			return true
		}
	}
	return false
}

// errShadowed refuses a request that a case-folding upstream would route to
// a stricter route than the one it matched.
func errShadowed(matched, shadow *route) *apierror.Error {
	return apierror.New(http.StatusBadRequest, apierror.BadRequest,
		"the path matches the route "+matched.prefix+" only by its case or trailing dots; an upstream that folds them reads it under "+shadow.prefix).
		WithReason(apierror.ReasonAmbiguousPath)
}
