package lambda

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// GetFunction's Code.Location: a URL the function's code zip can be
// downloaded from for CodeURLTTL, served by the local cloud itself, like
// the presigned S3 URL Lambda returns.
//
// The URL is a bearer credential, as a presigned URL is: whoever holds it
// may download that code until it expires, and nothing else. It names the
// tenant, the function and the code's sha256 and carries an HMAC-SHA256 of
// them and the expiry under a key only this process knows (Cloud.codeKey),
// so no one can make one for another tenant's function or code, or change
// what one names, without the signature failing. The code is served only
// while the function (its $LATEST or a published version) still runs it,
// so a URL outlives neither a delete nor the code's garbage collection.
// Its host is the one the GetFunction request was sent to: an address the
// client reached the cloud at.

// CodePathPrefix is where the local cloud serves code downloads; requests
// there are authenticated by their URL's signature, not SigV4.
const CodePathPrefix = "/_gust/lambda-code/"

// CodeURLTTL is how long a Code.Location URL is valid (Lambda's presigned
// URLs last 10 minutes).
const CodeURLTTL = 10 * time.Minute

func newCodeKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func (c *Cloud) codeSignature(tenant, name, sha, expires string) string {
	m := hmac.New(sha256.New, c.codeKey)
	io.WriteString(m, tenant+"\n"+name+"\n"+sha+"\n"+expires)
	return hex.EncodeToString(m.Sum(nil))
}

// codeLocation is a signed URL for f's code, on the host r was sent to.
func (c *Cloud) codeLocation(r *http.Request, f *function) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	expires := strconv.FormatInt(c.cfg.Now().Add(CodeURLTTL).Unix(), 10)
	q := url.Values{}
	q.Set("tenant", f.Tenant)
	q.Set("function", f.Name)
	q.Set("expires", expires)
	q.Set("signature", c.codeSignature(f.Tenant, f.Name, f.CodeSHA256, expires))
	return scheme + "://" + r.Host + CodePathPrefix + f.CodeSHA256 + ".zip?" + q.Encode()
}

// ServeCode serves a Code.Location URL: the code zip, when the signature
// is right, the URL has not expired and the function still runs that
// code; 403 AccessDenied otherwise, the same answer for every failure.
func (c *Cloud) ServeCode(w http.ResponseWriter, r *http.Request) {
	w.Header()[HeaderLocalCloud] = localCloudHeader
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		codeDenied(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	sha := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, CodePathPrefix), ".zip")
	q := r.URL.Query()
	tenant, name, expires, sig := q.Get("tenant"), q.Get("function"), q.Get("expires"), q.Get("signature")
	exp, err := strconv.ParseInt(expires, 10, 64)
	want := c.codeSignature(tenant, name, sha, expires)
	switch {
	case !isSHA256Hex(sha) || err != nil || !hmac.Equal([]byte(sig), []byte(want)):
		codeDenied(w, http.StatusForbidden, "AccessDenied", "Request has an invalid signature")
		return
	case c.cfg.Now().Unix() > exp:
		codeDenied(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	case !c.runsCode(tenant, name, sha):
		codeDenied(w, http.StatusForbidden, "AccessDenied", "The function no longer runs this code")
		return
	}
	fh, err := os.Open(filepath.Join(c.store.codeDir, sha+".zip"))
	if err != nil {
		codeDenied(w, http.StatusForbidden, "AccessDenied", "The function no longer runs this code")
		return
	}
	defer fh.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, name+".zip", time.Time{}, fh)
}

// runsCode reports whether the tenant's function runs sha at $LATEST or
// a published version.
func (c *Cloud) runsCode(tenant, name, sha string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k := fnKey{tenant, name}
	if f := c.fns[k]; f != nil && f.CodeSHA256 == sha {
		return true
	}
	for _, v := range c.versions[k] {
		if v.CodeSHA256 == sha {
			return true
		}
	}
	return false
}

func codeDenied(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Error><Code>"+code+"</Code><Message>"+msg+"</Message></Error>")
}
