package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/gust-dev/gust/tenants/sigv4"
)

const (
	akid      = "AKIAIOSFODNN7EXAMPLE"
	secret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	tempAKID  = "ASIAIOSFODNN7EXAMPLE"
	tempSec   = "tempSecretKeyTEMPsecretKEYtempSECRETkey12"
	tempToken = "FwoGZXIvYXdzEJr//////////wEaDOqS+session/token=="
	region    = "us-east-1"
	service   = "lambda"
)

var signTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

type memKeys map[string]sigv4.Key

func (m memKeys) SigningKey(id string) (sigv4.Key, error) {
	k, ok := m[id]
	if !ok {
		return sigv4.Key{}, sigv4.UnknownKeyError()
	}
	return k, nil
}

var keys = memKeys{
	akid:     {Secret: secret},
	tempAKID: {Secret: tempSec, SessionToken: tempToken},
}

func verifier(now time.Time) *sigv4.Verifier {
	return &sigv4.Verifier{Keys: keys, Now: func() time.Time { return now }}
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// req is a request under construction, signed by the SDK and then turned
// into what a server reads off the wire.
type req struct {
	method, url string
	body        []byte
	header      map[string]string
}

func invokeReq() req {
	return req{
		method: "POST",
		url:    "http://localhost:4567/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations?Qualifier=%24LATEST",
		body:   []byte(`{"hello":"world"}`),
		header: map[string]string{
			"Content-Type":          "application/json",
			"X-Amz-Tenant-Id":       "customer-7",
			"X-Amz-Invocation-Type": "RequestResponse",
		},
	}
}

func (q req) build(t testing.TB) *http.Request {
	t.Helper()
	r, err := http.NewRequest(q.method, q.url, bytes.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	return r
}

// wire writes r as a client would and reads it back as a server does, so
// the verifier sees RequestURI, Host and Content-Length as in production.
func wire(t testing.TB, r *http.Request) (*http.Request, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sr, body
}

type signOpts struct {
	akid, secret, token string
	at                  time.Time
	payloadHash         string // "" = sha256 of body
}

func defaultOpts() signOpts { return signOpts{akid: akid, secret: secret, at: signTime} }

func sign(t testing.TB, q req, o signOpts) *http.Request {
	t.Helper()
	r := q.build(t)
	ph := o.payloadHash
	if ph == "" {
		ph = hashHex(q.body)
	}
	creds := aws.Credentials{AccessKeyID: o.akid, SecretAccessKey: o.secret, SessionToken: o.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, ph, service, region, o.at); err != nil {
		t.Fatal(err)
	}
	return r
}

func presign(t testing.TB, q req, o signOpts, expires time.Duration) *http.Request {
	t.Helper()
	r := q.build(t)
	if expires != 0 {
		u := r.URL.Query()
		u.Set("X-Amz-Expires", fmt.Sprint(int(expires/time.Second)))
		r.URL.RawQuery = u.Encode()
	}
	creds := aws.Credentials{AccessKeyID: o.akid, SecretAccessKey: o.secret, SessionToken: o.token}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, hashHex(q.body), service, region, o.at)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := http.NewRequest(q.method, signed, bytes.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range q.header {
		if pr.Header.Get(k) == "" && !strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			pr.Header.Set(k, v)
		}
	}
	return pr
}

func TestVerify(t *testing.T) {
	type check func(error) bool
	ok := check(func(err error) bool { return err == nil })
	tests := []struct {
		name string
		// make returns the client's request; the test puts it on the wire.
		make func(t *testing.T) *http.Request
		// tamper changes the request as the server reads it.
		tamper func(r *http.Request, body []byte) []byte
		now    time.Time
		want   check
	}{
		{name: "valid header form", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) }, want: ok},
		{name: "valid with empty body and GET", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://127.0.0.1:8080/2015-03-31/functions/?MaxItems=10&Marker=a%20b"}
			return sign(t, q, defaultOpts())
		}, want: ok},
		{name: "valid 4 minutes later (within skew)", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			now: signTime.Add(4 * time.Minute), want: ok},
		{name: "valid 4 minutes early (within skew)", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			now: signTime.Add(-4 * time.Minute), want: ok},
		{name: "unsigned header added", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Header.Set("X-Forwarded-For", "10.0.0.1"); return b }, want: ok},
		{name: "wrong secret", make: func(t *testing.T) *http.Request {
			o := defaultOpts()
			o.secret = "x" + secret[1:]
			return sign(t, invokeReq(), o)
		}, want: sigv4.IsBadSignature},
		{name: "replayed outside skew", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			now: signTime.Add(5*time.Minute + time.Second), want: sigv4.IsExpired},
		{name: "signed in the future beyond skew", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			now: signTime.Add(-6 * time.Minute), want: sigv4.IsExpired},
		{name: "date header changed", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				r.Header.Set("X-Amz-Date", signTime.Add(time.Minute).Format(sigv4.TimeFormat))
				return b
			}, want: sigv4.IsBadSignature},
		{name: "date disagrees with credential scope", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				r.Header.Set("X-Amz-Date", signTime.Add(24*time.Hour).Format(sigv4.TimeFormat))
				return b
			}, now: signTime.Add(24 * time.Hour), want: sigv4.IsBadSignature},
		{name: "date unparsable", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Header.Set("X-Amz-Date", "2026-03-14T15:09:26Z"); return b },
			want:   sigv4.IsMalformed},
		{name: "body tampered", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { return []byte(`{"hello":"World"}`) }, want: sigv4.IsBadSignature},
		{name: "body truncated", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { return b[:len(b)-1] }, want: sigv4.IsBadSignature},
		{name: "signed header tampered", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Header.Set("X-Amz-Tenant-Id", "customer-8"); return b },
			want:   sigv4.IsBadSignature},
		{name: "signed header removed", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Header.Del("X-Amz-Invocation-Type"); return b },
			want:   sigv4.IsBadSignature},
		{name: "signed header duplicated", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Header.Add("X-Amz-Tenant-Id", "customer-8"); return b },
			want:   sigv4.IsBadSignature},
		{name: "host tampered", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Host = "evil.example:4567"; return b }, want: sigv4.IsBadSignature},
		{name: "method tampered", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Method = "PUT"; return b }, want: sigv4.IsBadSignature},
		{name: "path tampered", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				r.URL.Path = "/2015-03-31/functions/other-fn/invocations"
				r.URL.RawPath = ""
				return b
			}, want: sigv4.IsBadSignature},
		{name: "query tampered", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "Qualifier=2"; return b }, want: sigv4.IsBadSignature},
		{name: "query parameter added", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.URL.RawQuery += "&Extra=1"; return b }, want: sigv4.IsBadSignature},
		{name: "content sha256 header lies", make: func(t *testing.T) *http.Request {
			q := invokeReq()
			q.header["X-Amz-Content-Sha256"] = hashHex([]byte("other"))
			o := defaultOpts()
			o.payloadHash = hashHex([]byte("other"))
			return sign(t, q, o)
		}, want: sigv4.IsBadSignature},
		{name: "unsigned payload refused", make: func(t *testing.T) *http.Request {
			q := invokeReq()
			q.header["X-Amz-Content-Sha256"] = "UNSIGNED-PAYLOAD"
			o := defaultOpts()
			o.payloadHash = "UNSIGNED-PAYLOAD"
			return sign(t, q, o)
		}, want: sigv4.IsBadSignature},
		{name: "content sha256 header that matches", make: func(t *testing.T) *http.Request {
			q := invokeReq()
			q.header["X-Amz-Content-Sha256"] = hashHex(q.body)
			return sign(t, q, defaultOpts())
		}, want: ok},
		{name: "unknown key", make: func(t *testing.T) *http.Request {
			o := defaultOpts()
			o.akid = "AKIAUNKNOWNUNKNOWN00"
			return sign(t, invokeReq(), o)
		}, want: sigv4.IsUnknownKey},
		{name: "tenant name as key id (the old local cloud)", make: func(t *testing.T) *http.Request {
			r := invokeReq().build(t)
			r.Header.Set("X-Amz-Date", signTime.Format(sigv4.TimeFormat))
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=acme/20260314/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("de", 32))
			return r
		}, want: sigv4.IsUnknownKey},
		{name: "no auth", make: func(t *testing.T) *http.Request { return invokeReq().build(t) }, want: sigv4.IsMissingAuth},
		{name: "malformed authorization", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=acme/..., Signature=deadbeef")
				return b
			}, want: sigv4.IsMalformed},
		{name: "other algorithm", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", 1))
				return b
			}, want: sigv4.IsMalformed},
		{name: "two authorization headers", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				r.Header.Add("Authorization", r.Header.Get("Authorization"))
				return b
			},
			want: sigv4.IsMalformed},
		{name: "date not signed", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				a, err := sigv4.ParseAuthorization(r.Header.Get("Authorization"))
				if err != nil {
					panic(err)
				}
				var sh []string
				for _, h := range a.SignedHeaders {
					if h != "x-amz-date" {
						sh = append(sh, h)
					}
				}
				a.SignedHeaders = sh
				r.Header.Set("Authorization", a.String())
				return b
			}, want: sigv4.IsMalformed},
		{name: "no date", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte { r.Header.Del("X-Amz-Date"); return b }, want: sigv4.IsMalformed},
		{name: "header and presigned at once", make: func(t *testing.T) *http.Request { return sign(t, invokeReq(), defaultOpts()) },
			tamper: func(r *http.Request, b []byte) []byte {
				r.URL.RawQuery += "&X-Amz-Signature=" + strings.Repeat("0", 64)
				return b
			},
			want: sigv4.IsMalformed},

		// Temporary credentials.
		{name: "session token valid", make: func(t *testing.T) *http.Request {
			return sign(t, invokeReq(), signOpts{akid: tempAKID, secret: tempSec, token: tempToken, at: signTime})
		}, want: ok},
		{name: "session token missing", make: func(t *testing.T) *http.Request {
			return sign(t, invokeReq(), signOpts{akid: tempAKID, secret: tempSec, at: signTime})
		}, want: sigv4.IsUnknownKey},
		{name: "session token wrong", make: func(t *testing.T) *http.Request {
			return sign(t, invokeReq(), signOpts{akid: tempAKID, secret: tempSec, token: tempToken + "x", at: signTime})
		}, want: sigv4.IsUnknownKey},
		{name: "session token for a long-term key", make: func(t *testing.T) *http.Request {
			o := defaultOpts()
			o.token = tempToken
			return sign(t, invokeReq(), o)
		}, want: sigv4.IsUnknownKey},

		// Presigned form.
		{name: "presigned valid", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn?Qualifier=1"}
			return presign(t, q, defaultOpts(), 15*time.Minute)
		}, now: signTime.Add(10 * time.Minute), want: ok},
		{name: "presigned without X-Amz-Expires, within skew", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 0)
		}, now: signTime.Add(4 * time.Minute), want: ok},
		{name: "presigned without X-Amz-Expires, past skew", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 0)
		}, now: signTime.Add(6 * time.Minute), want: sigv4.IsExpired},
		{name: "presigned expires zero", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 0)
		}, tamper: func(r *http.Request, b []byte) []byte { r.URL.RawQuery += "&X-Amz-Expires=0"; return b }, want: sigv4.IsMalformed},
		{name: "presigned POST with body", make: func(t *testing.T) *http.Request { return presign(t, invokeReq(), defaultOpts(), time.Hour) },
			now: signTime.Add(59 * time.Minute), want: ok},
		{name: "presigned with session token", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/"}
			return presign(t, q, signOpts{akid: tempAKID, secret: tempSec, token: tempToken, at: signTime}, 0)
		}, want: ok},
		{name: "presigned session token swapped", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/"}
			return presign(t, q, signOpts{akid: tempAKID, secret: tempSec, token: tempToken, at: signTime}, 0)
		}, tamper: func(r *http.Request, b []byte) []byte {
			u := r.URL.Query()
			u.Set("X-Amz-Security-Token", "other")
			r.URL.RawQuery = u.Encode()
			return b
		}, want: sigv4.IsUnknownKey},
		{name: "presigned expired", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 60*time.Second)
		}, now: signTime.Add(61 * time.Second), want: sigv4.IsExpired},
		{name: "presigned from the future", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 0)
		}, now: signTime.Add(-10 * time.Minute), want: sigv4.IsExpired},
		{name: "presigned query tampered", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn?Qualifier=1"}
			return presign(t, q, defaultOpts(), 0)
		}, tamper: func(r *http.Request, b []byte) []byte {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "Qualifier=1", "Qualifier=2", 1)
			return b
		}, want: sigv4.IsBadSignature},
		{name: "presigned expiry extended", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 60*time.Second)
		}, tamper: func(r *http.Request, b []byte) []byte {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Expires=60", "X-Amz-Expires=3600", 1)
			return b
		}, now: signTime.Add(10 * time.Minute), want: sigv4.IsBadSignature},
		{name: "presigned expires out of range", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 0)
		}, tamper: func(r *http.Request, b []byte) []byte {
			u := r.URL.Query()
			u.Set("X-Amz-Expires", "604801")
			r.URL.RawQuery = u.Encode()
			return b
		}, want: sigv4.IsMalformed},
		{name: "presigned without signature", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			return presign(t, q, defaultOpts(), 0)
		}, tamper: func(r *http.Request, b []byte) []byte {
			u := r.URL.Query()
			u.Del("X-Amz-Signature")
			r.URL.RawQuery = u.Encode()
			return b
		}, want: sigv4.IsMalformed},
		{name: "presigned wrong secret", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			o := defaultOpts()
			o.secret = "y" + secret[1:]
			return presign(t, q, o, 0)
		}, want: sigv4.IsBadSignature},
		{name: "presigned unknown key", make: func(t *testing.T) *http.Request {
			q := req{method: "GET", url: "http://localhost:4566/2015-03-31/functions/my-fn"}
			o := defaultOpts()
			o.akid = "AKIANOBODY"
			return presign(t, q, o, 0)
		}, want: sigv4.IsUnknownKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, body := wire(t, tc.make(t))
			if tc.tamper != nil {
				body = tc.tamper(r, body)
			}
			now := tc.now
			if now.IsZero() {
				now = signTime
			}
			signed, err := verifier(now).Verify(r, body)
			if !tc.want(err) {
				t.Fatalf("Verify: err = %v (%T), not what the case wants", err, err)
			}
			if err != nil {
				var e *sigv4.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %T is not *sigv4.Error", err)
				}
				for _, s := range []string{secret, tempSec, tempToken} {
					if strings.Contains(e.Message, s) {
						t.Fatalf("error message leaks a secret: %q", e.Message)
					}
				}
				return
			}
			if signed.Region != region || signed.Service != service || signed.Date != "20260314" || !signed.Time.Equal(signTime) {
				t.Fatalf("Signed = %+v", signed)
			}
			if signed.AccessKeyID != akid && signed.AccessKeyID != tempAKID {
				t.Fatalf("Signed.AccessKeyID = %q", signed.AccessKeyID)
			}
			if want := r.URL.Query().Has("X-Amz-Signature"); signed.Presigned != want {
				t.Fatalf("Signed.Presigned = %v, want %v", signed.Presigned, want)
			}
		})
	}
}

// TestVerifyMessages pins the messages SDKs and scripts match on.
func TestVerifyMessages(t *testing.T) {
	r, body := wire(t, sign(t, invokeReq(), defaultOpts()))
	_, err := verifier(signTime.Add(10*time.Minute)).Verify(r, body)
	if want := "Signature expired: 20260314T150926Z is now earlier than 20260314T151426Z (20260314T151926Z - 5 min.)"; err == nil || err.Error() != want {
		t.Errorf("expired: %v, want %q", err, want)
	}
	r, body = wire(t, sign(t, invokeReq(), signOpts{akid: "AKIANOBODY", secret: secret, at: signTime}))
	if _, err := verifier(signTime).Verify(r, body); err == nil || err.Error() != "The security token included in the request is invalid." {
		t.Errorf("unknown key: %v", err)
	}
	r, body = wire(t, sign(t, invokeReq(), signOpts{akid: akid, secret: "bad", at: signTime}))
	_, err = verifier(signTime).Verify(r, body)
	if err == nil || !strings.HasPrefix(err.Error(), "The request signature we calculated does not match") {
		t.Errorf("bad signature: %v", err)
	}
	// The expected signature must never be disclosed.
	good, _ := wire(t, sign(t, invokeReq(), defaultOpts()))
	a, _ := sigv4.ParseAuthorization(good.Header.Get("Authorization"))
	if strings.Contains(err.Error(), a.Signature) {
		t.Errorf("bad-signature message discloses the expected signature")
	}
}

func TestVerifySkew(t *testing.T) {
	r, body := wire(t, sign(t, invokeReq(), defaultOpts()))
	v := verifier(signTime.Add(90 * time.Second))
	v.MaxSkew = time.Minute
	if _, err := v.Verify(r, body); !sigv4.IsExpired(err) {
		t.Fatalf("MaxSkew 1m, 90s late: %v", err)
	}
	v.Now = nil // time.Now: years away from signTime
	v.MaxSkew = 0
	if _, err := v.Verify(r, body); !sigv4.IsExpired(err) {
		t.Fatalf("real clock: %v", err)
	}
}

func TestVerifyKeyStoreFailure(t *testing.T) {
	boom := errors.New("disk on fire")
	v := &sigv4.Verifier{
		Keys: sigv4.KeyStoreFunc(func(string) (sigv4.Key, error) { return sigv4.Key{}, boom }),
		Now:  func() time.Time { return signTime },
	}
	r, body := wire(t, sign(t, invokeReq(), defaultOpts()))
	_, err := v.Verify(r, body)
	if !sigv4.IsInternal(err) || !errors.Is(err, boom) || strings.Contains(err.Error(), "fire") {
		t.Fatalf("KeyStore failure: %v", err)
	}
}

func TestKeyRedacted(t *testing.T) {
	k := sigv4.Key{Secret: secret, SessionToken: tempToken}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%s", k)} {
		if strings.Contains(s, secret) || strings.Contains(s, tempToken) {
			t.Fatalf("formatted key leaks: %s", s)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r, body := wire(b, sign(b, invokeReq(), defaultOpts()))
	v := verifier(signTime)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

var _ = url.Values{}

// TestKeyCache: a Key from WithCache verifies as a plain one, and a copy
// with another secret never uses the cached derivation.
func TestKeyCache(t *testing.T) {
	cached := sigv4.Key{Secret: secret}.WithCache()
	var current sigv4.Key
	v := &sigv4.Verifier{
		Keys: sigv4.KeyStoreFunc(func(string) (sigv4.Key, error) { return current, nil }),
		Now:  func() time.Time { return signTime },
	}
	r, body := wire(t, sign(t, invokeReq(), defaultOpts()))
	current = cached
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(r, body); err != nil {
			t.Fatalf("cached key, round %d: %v", i, err)
		}
	}
	current = cached
	current.Secret = "other"
	if _, err := v.Verify(r, body); !sigv4.IsBadSignature(err) {
		t.Fatalf("copy with another secret: %v", err)
	}
	// Another scope (next day) through the same cache.
	o := defaultOpts()
	o.at = signTime.Add(24 * time.Hour)
	r2, body2 := wire(t, sign(t, invokeReq(), o))
	current = cached
	v.Now = func() time.Time { return o.at }
	if _, err := v.Verify(r2, body2); err != nil {
		t.Fatalf("next day: %v", err)
	}
}
