// Command spiffe-client is an independent SPIFFE mTLS peer for zt-audit's integration tests: an
// HTTPS client built on the reference library (github.com/spiffe/go-spiffe/v2, pinned in go.mod),
// so the Rust tests can check that the control plane interoperates with it, each side authorizing
// the other by SPIFFE ID.
//
//	spiffe-client --url URL --svid CERT.pem --key KEY.pem \
//	    --bundle spiffe://TD=FILE [--bundle spiffe://TD2=FILE2 ...] --server-id SPIFFE_ID \
//	    [--method POST] [--body JSON] [--header 'Name: value' ...]
//
// It sends one HTTP/1.1 request (10 s timeout, no redirects followed, no proxy). On an answer, of
// any status, it prints one JSON line {"status": N, "body": "..."} to stdout and exits 0. On any
// failure before an answer it prints "spiffe-client: <error>" to stderr and exits 2. It never
// prints key material.
package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

const (
	timeout = 10 * time.Second
	// A test peer reads whole answers; past this something is wrong, so fail rather than swap.
	maxBody = 32 << 20
)

const usage = `usage: spiffe-client --url URL --svid CERT.pem --key KEY.pem
           --bundle spiffe://TD=FILE [--bundle spiffe://TD2=FILE2 ...] --server-id SPIFFE_ID
           [--method POST] [--body JSON] [--header 'Name: value' ...]`

// multi collects a repeatable flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ", ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// optional is a string flag that remembers whether it was given: an empty --body still sends an
// (empty) JSON body with its Content-Type.
type optional struct {
	value string
	set   bool
}

func (o *optional) String() string     { return o.value }
func (o *optional) Set(v string) error { o.value, o.set = v, true; return nil }

type options struct {
	url, svid, key, serverID, method string
	bundles, headers                 multi
	body                             optional
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stdout, usage)
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "spiffe-client: %v\n", err)
		os.Exit(2)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("spiffe-client", flag.ContinueOnError)
	// The flag package's own messages would go to stderr without our prefix; run() reports the error.
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.url, "url", "", "https URL to request")
	fs.StringVar(&o.svid, "svid", "", "client X.509-SVID, PEM chain, leaf first")
	fs.StringVar(&o.key, "key", "", "client private key, PKCS#8 PEM")
	fs.Var(&o.bundles, "bundle", "spiffe://TD=FILE, FILE PEM CA certificates or a SPIFFE bundle (JWKS); repeatable")
	fs.StringVar(&o.serverID, "server-id", "", "SPIFFE ID the server must present")
	fs.StringVar(&o.method, "method", http.MethodGet, "HTTP method")
	fs.Var(&o.body, "body", "request body, sent as application/json")
	fs.Var(&o.headers, "header", "extra request header 'Name: value'; repeatable")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%v\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), usage)
	}
	for name, v := range map[string]string{"--url": o.url, "--svid": o.svid, "--key": o.key, "--server-id": o.serverID} {
		if v == "" {
			return nil, fmt.Errorf("%s is required\n%s", name, usage)
		}
	}
	if len(o.bundles) == 0 {
		return nil, fmt.Errorf("at least one --bundle spiffe://TD=FILE is required\n%s", usage)
	}
	return o, nil
}

func run(args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}

	target, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("--url: %v", err)
	}
	if target.Scheme != "https" || target.Host == "" {
		return fmt.Errorf("--url %q: must be an https:// URL", o.url)
	}
	serverID, err := spiffeid.FromString(o.serverID)
	if err != nil {
		return fmt.Errorf("--server-id %q: %v", o.serverID, err)
	}
	// Checks the chain's shape, the leaf's SPIFFE ID and key usage, and that the key matches it.
	svid, err := x509svid.Load(o.svid, o.key)
	if err != nil {
		return fmt.Errorf("--svid/--key: %v", err)
	}
	bundles, err := loadBundles(o.bundles)
	if err != nil {
		return err
	}

	// go-spiffe verifies the server's chain against the bundle of the trust domain in its leaf's
	// SPIFFE ID and then the authorizer checks that ID; there is no DNS name check, by design.
	authorizeID := tlsconfig.AuthorizeID(serverID)
	authorize := func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if err := authorizeID(id, chains); err != nil {
			return fmt.Errorf("server not authorized: %w; want --server-id %s", err, serverID)
		}
		return nil
	}
	tlsConf := tlsconfig.MTLSClientConfig(svid, bundles, authorize)
	// Offer only HTTP/1.1 in ALPN, so a server that also speaks h2 does not pick it.
	tlsConf.NextProtos = []string{"http/1.1"}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			// Straight to the test server: an HTTPS_PROXY in the environment must not apply.
			Proxy:             nil,
			TLSClientConfig:   tlsConf,
			Protocols:         &protocols,
			DisableKeepAlives: true,
		},
		// One request: a redirect is an answer like any other.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	var body io.Reader
	if o.body.set {
		body = strings.NewReader(o.body.value)
	}
	req, err := http.NewRequest(o.method, o.url, body)
	if err != nil {
		return fmt.Errorf("request: %v", err)
	}
	if o.body.set {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := addHeaders(req, o.headers, o.body.set); err != nil {
		return err
	}

	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading the answer (status %d): %v", resp.StatusCode, err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("answer body over %d bytes (status %d)", maxBody, resp.StatusCode)
	}

	// A body that is not UTF-8 comes out with U+FFFD in place of the bad bytes (encoding/json).
	out := struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}{resp.StatusCode, string(data)}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// addHeaders applies the --header flags. A --header Content-Type replaces the JSON default, and
// --header 'Host: x' sets the request's Host (Go keeps it outside req.Header).
func addHeaders(req *http.Request, headers []string, defaultContentType bool) error {
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		value = strings.TrimSpace(value)
		switch key := http.CanonicalHeaderKey(name); {
		case key == "Host":
			req.Host = value
		case key == "Content-Type" && defaultContentType:
			req.Header.Set(key, value)
			defaultContentType = false
		default:
			req.Header.Add(key, value)
		}
	}
	return nil
}

// loadBundles reads each --bundle spiffe://TD=FILE into one X.509 bundle set. FILE is a SPIFFE
// bundle (JWKS, told by its first non-space byte being '{') or PEM CA certificates.
func loadBundles(specs []string) (*x509bundle.Set, error) {
	set := x509bundle.NewSet()
	for _, spec := range specs {
		// Trust domain names never contain '=', so the first one ends it; the path may have more.
		name, path, ok := strings.Cut(spec, "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("--bundle %q: want spiffe://TD=FILE", spec)
		}
		td, err := spiffeid.TrustDomainFromString(name)
		// TrustDomainFromString also takes a full SPIFFE ID (with a path); only the trust domain
		// itself is meant here.
		if err == nil && name != td.IDString() && name != td.Name() {
			err = errors.New("want spiffe://TD, without a path")
		}
		if err != nil {
			return nil, fmt.Errorf("--bundle %q: trust domain: %v", spec, err)
		}
		if set.Has(td) {
			return nil, fmt.Errorf("--bundle %q: a second bundle for trust domain %s", spec, td)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--bundle %q: %v", spec, err)
		}
		var b *x509bundle.Bundle
		if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
			sb, err := spiffebundle.Parse(td, data)
			if err != nil {
				return nil, fmt.Errorf("--bundle %q: %v", spec, err)
			}
			b = sb.X509Bundle()
		} else {
			b, err = x509bundle.Parse(td, data)
			if err != nil {
				return nil, fmt.Errorf("--bundle %q: %v", spec, err)
			}
		}
		// An empty bundle would only fail later, as an unverifiable server; say what is wrong now.
		if len(b.X509Authorities()) == 0 {
			return nil, fmt.Errorf("--bundle %q: no X.509 authorities in %s (PEM CERTIFICATE blocks, or JWKS keys with \"use\": \"x509-svid\")", spec, path)
		}
		set.Add(b)
	}
	return set, nil
}
