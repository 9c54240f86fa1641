// Package reqtargettest holds, for tests, the ways other servers read a
// request path: what an upstream behind Tollgate may make of the path it is
// forwarded. Tests check that every one of them reads the path Tollgate
// matched.
package reqtargettest

import (
	"net/url"
	"path"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// A Resolver turns a request path as sent (percent-encoded, without the
// query) into the decoded path a server routes on; false when that server
// would refuse it.
type Resolver func(raw string) (string, bool)

// Resolvers are the servers' ways, by name.
var Resolvers = map[string]Resolver{
	// Go's net/http with ServeMux-like cleaning.
	"go": func(raw string) (string, bool) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return "", false
		}
		return cleanKeepSlash(u.Path), true
	},
	// A WHATWG URL parser (browsers, Node's URL, Deno, undici): dot
	// segments may be percent-encoded; nothing else is decoded before.
	"whatwg": func(raw string) (string, bool) {
		return unescape(WHATWG(raw))
	},
	// A servlet container: path parameters stripped, then decoded, then
	// normalized.
	"servlet": func(raw string) (string, bool) {
		segs := strings.Split(raw, "/")
		for i, s := range segs {
			s, _, _ = strings.Cut(s, ";")
			segs[i] = s
		}
		dec, ok := unescape(strings.Join(segs, "/"))
		if !ok {
			return "", false
		}
		return cleanKeepSlash(dec), true
	},
	// A server that treats a backslash as a separator and merges slashes.
	"windows": func(raw string) (string, bool) {
		dec, ok := unescape(raw)
		if !ok {
			return "", false
		}
		return cleanKeepSlash(strings.ReplaceAll(dec, `\`, "/")), true
	},
	// A server (or a second proxy) that decodes twice.
	"double": func(raw string) (string, bool) {
		once, ok := unescape(raw)
		if !ok {
			return "", false
		}
		twice, err := url.PathUnescape(once)
		if err != nil {
			return once, true // a lone "%": kept as is
		}
		return cleanKeepSlash(twice), true
	},
	// A server that applies Unicode compatibility normalization (UAX #15)
	// before it resolves dot segments.
	"nfkc": func(raw string) (string, bool) {
		dec, ok := unescape(raw)
		if !ok {
			return "", false
		}
		return cleanKeepSlash(norm.NFKC.String(dec)), true
	},
}

func unescape(s string) (string, bool) {
	d, err := url.PathUnescape(s)
	return d, err == nil
}

// cleanKeepSlash is path.Clean keeping a trailing slash, as routers do.
func cleanKeepSlash(p string) string {
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// WHATWG removes dot segments from the rooted raw path as the URL
// Standard's path parser does ("." and ".." and their percent-encoded
// spellings, any case) and returns the still-encoded result.
func WHATWG(raw string) string {
	in := strings.Split(strings.TrimPrefix(raw, "/"), "/")
	var out []string
	for i, s := range in {
		last := i == len(in)-1
		switch strings.ToLower(s) {
		case "..", ".%2e", "%2e.", "%2e%2e":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		case ".", "%2e":
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// Folding are servers that read a path more loosely than RFC 3986: they
// are not expected to agree with Tollgate's reading of every path, but a
// route's scope must hold against them too (the gateway refuses a path that
// matches a laxer route only by its case or trailing dots).
var Folding = map[string]Resolver{
	// Express and ASP.NET Core route case-insensitively by default.
	"case-insensitive": func(raw string) (string, bool) {
		dec, ok := unescape(raw)
		if !ok {
			return "", false
		}
		return strings.ToLower(cleanKeepSlash(dec)), true
	},
	// Windows file systems and IIS also drop a segment's trailing dots.
	"windows-names": func(raw string) (string, bool) {
		dec, ok := unescape(raw)
		if !ok {
			return "", false
		}
		segs := strings.Split(strings.ToLower(cleanKeepSlash(dec)), "/")
		for i, s := range segs {
			if t := strings.TrimRight(s, "."); t != "" {
				segs[i] = t
			}
		}
		return strings.Join(segs, "/"), true
	},
}

// Under reports the names of the resolvers, strict and folding, that read
// raw (a request target, query allowed) as a path under prefix.
func Under(raw, prefix string) []string {
	p, _, _ := strings.Cut(raw, "?")
	var names []string
	for _, set := range []map[string]Resolver{Resolvers, Folding} {
		for name, resolve := range set {
			if seen, ok := resolve(p); ok && strings.HasPrefix(seen, prefix) {
				names = append(names, name)
			}
		}
	}
	return names
}
