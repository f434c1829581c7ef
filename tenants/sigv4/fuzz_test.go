package sigv4_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gust-dev/gust/tenants/sigv4"
)

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("0a", 32)
	good := "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig
	a, err := sigv4.ParseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	want := sigv4.Authorization{AccessKeyID: "AKID", Date: "20260101", Region: "us-east-1", Service: "lambda",
		SignedHeaders: []string{"host", "x-amz-date"}, Signature: sig}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("got %+v, want %+v", a, want)
	}
	if a.String() != good {
		t.Fatalf("String() = %q", a.String())
	}
	// Without spaces after the commas, as some clients send it.
	if _, err := sigv4.ParseAuthorization(strings.ReplaceAll(good, ", ", ",")); err != nil {
		t.Fatalf("no spaces: %v", err)
	}
	bad := map[string]string{
		"empty":                "",
		"other algorithm":      strings.Replace(good, "HMAC-SHA256", "HMAC-SHA1", 1),
		"lowercase algorithm":  strings.Replace(good, "AWS4-HMAC-SHA256", "aws4-hmac-sha256", 1),
		"the issue's example":  "AWS4-HMAC-SHA256 Credential=acme/..., Signature=deadbeef",
		"short signature":      strings.TrimSuffix(good, "0a"),
		"uppercase signature":  strings.Replace(good, sig, strings.ToUpper(sig), 1),
		"long signature":       good + "00",
		"duplicate signature":  good + ", Signature=" + sig,
		"duplicate credential": good + ", Credential=AKID/20260101/us-east-1/lambda/aws4_request",
		"unknown part":         good + ", Foo=bar",
		"trailing comma":       good + ",",
		"missing headers":      "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, Signature=" + sig,
		"scope of 4":           strings.Replace(good, "/lambda/aws4_request", "/aws4_request", 1),
		"scope terminal":       strings.Replace(good, "aws4_request", "aws4_requesT", 1),
		"bad date":             strings.Replace(good, "20260101", "20261301", 1),
		"empty key":            strings.Replace(good, "AKID/", "/", 1),
		"key with space":       strings.Replace(good, "AKID/", "AK ID/", 1),
		"unsorted headers":     strings.Replace(good, "host;x-amz-date", "x-amz-date;host", 1),
		"duplicate headers":    strings.Replace(good, "host;x-amz-date", "host;host;x-amz-date", 1),
		"uppercase header":     strings.Replace(good, "host;x-amz-date", "host;X-Amz-Date", 1),
		"no host":              strings.Replace(good, "host;x-amz-date", "x-amz-date", 1),
		"empty header name":    strings.Replace(good, "host;x-amz-date", "host;;x-amz-date", 1),
		"no space after alg":   strings.Replace(good, "SHA256 ", "SHA256", 1),
	}
	for name, h := range bad {
		a, err := sigv4.ParseAuthorization(h)
		var e *sigv4.Error
		if err == nil || !errors.As(err, &e) || (e.Kind != sigv4.KindMalformed && e.Kind != sigv4.KindMissingAuth) {
			t.Errorf("%s: ParseAuthorization(%q) = %+v, %v; want a malformed error", name, h, a, err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("ab", 32)
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260314/us-east-1/lambda/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request,SignedHeaders=host;x-amz-date,Signature=" + sig,
		"AWS4-HMAC-SHA256 Signature=" + sig + ", SignedHeaders=host, Credential=A/20260101/r/s/aws4_request",
		"AWS4-HMAC-SHA256 Credential=acme/..., Signature=deadbeef",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=, Signature=",
		"AWS4-HMAC-SHA256 ",
		"AWS4-HMAC-SHA256 ,,,",
		"AWS4-HMAC-SHA256 Credential==, Credential==",
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
		"",
		"\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := sigv4.ParseAuthorization(h)
		if err != nil {
			var e *sigv4.Error
			if !errors.As(err, &e) || (e.Kind != sigv4.KindMalformed && e.Kind != sigv4.KindMissingAuth) {
				t.Fatalf("error %v (%T) is not a malformed *sigv4.Error", err, err)
			}
			if !reflect.DeepEqual(a, sigv4.Authorization{}) {
				t.Fatalf("error with a non-empty result %+v", a)
			}
			return
		}
		// Accepted: the invariants hold and the fields round-trip.
		if len(a.Signature) != 64 || a.AccessKeyID == "" || len(a.Date) != 8 || a.Region == "" || a.Service == "" {
			t.Fatalf("accepted with bad fields: %+v", a)
		}
		host := false
		for i, n := range a.SignedHeaders {
			if n != strings.ToLower(n) || (i > 0 && a.SignedHeaders[i-1] >= n) {
				t.Fatalf("accepted bad signed headers %q", a.SignedHeaders)
			}
			host = host || n == "host"
		}
		if !host {
			t.Fatalf("accepted signed headers without host: %q", a.SignedHeaders)
		}
		b, err := sigv4.ParseAuthorization(a.String())
		if err != nil {
			t.Fatalf("String() of an accepted header does not parse: %q: %v", a.String(), err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed fields: %+v != %+v", a, b)
		}
	})
}
