package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTenantRoles(t *testing.T) {
	roles, err := parseTenantRoles([]string{
		"acme=arn:aws:iam::123456789012:role/gust-tenant",
		"globex=arn:aws-us-gov:iam::210987654321:role/path/to/Role+With=Odd,Chars.@-_",
		"default=arn:aws-cn:iam::000000000001:role/r",
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"acme":    "arn:aws:iam::123456789012:role/gust-tenant",
		"globex":  "arn:aws-us-gov:iam::210987654321:role/path/to/Role+With=Odd,Chars.@-_",
		"default": "arn:aws-cn:iam::000000000001:role/r",
	}, roles)

	for v, want := range map[string]string{
		"acme":                                                           "want TENANT=ROLE_ARN",
		"=arn:aws:iam::123456789012:role/r":                              "want TENANT=ROLE_ARN",
		"acme=":                                                          "want TENANT=ROLE_ARN",
		"../x=arn:aws:iam::123456789012:role/r":                          "tenant id",
		"-a=arn:aws:iam::123456789012:role/r":                            "tenant id",
		"acme=arn:aws:iam::12345678901:role/r":                           "not an IAM role ARN",
		"acme=arn:aws:iam::123456789012:user/r":                          "not an IAM role ARN",
		"acme=arn:aws:iam:us-east-1:123456789012:role/r":                 "not an IAM role ARN",
		"acme=arn:aws:sts::123456789012:role/r":                          "not an IAM role ARN",
		"acme=arn:aws:iam::123456789012:role/":                           "not an IAM role ARN",
		"acme=arn:aws:iam::123456789012:role/a b":                        "not an IAM role ARN",
		"acme=arn:aws:iam::123456789012:role/r\n":                        "not an IAM role ARN",
		"acme=arn:AWS:iam::123456789012:role/r":                          "not an IAM role ARN",
		"acme=arn:aws:iam::123456789012:role/" + strings.Repeat("r", 65): "not an IAM role ARN",
	} {
		_, err := parseTenantRoles([]string{v})
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), want, v)
		assert.NotContains(t, err.Error(), "\n", "one line")
		var ue *usageError
		assert.ErrorAs(t, err, &ue, "a usage error exits 2")
	}

	_, err = parseTenantRoles([]string{"acme=arn:aws:iam::123456789012:role/a", "acme=arn:aws:iam::123456789012:role/b"})
	assert.ErrorContains(t, err, "tenant acme is given twice")
}

// TestWorkerRefusesBadTenantRoles runs the command line: a bad --tenant-role
// exits 2 before anything connects.
func TestWorkerRefusesBadTenantRoles(t *testing.T) {
	for _, args := range [][]string{
		{"--tenant-role", "acme"},
		{"--tenant-role", "acme=arn:aws:iam::123456789012:role/a", "--tenant-role", "acme=arn:aws:iam::123456789012:role/b"},
		{"--tenant", "acme", "--tenant-role", "acme=arn:aws:iam::123456789012:role/a"},
		{"--endpoint", "http://127.0.0.1:4566", "--tenant", "acme"},
	} {
		code := run(append([]string{"gust", "worker", "--metrics-port", "0", "--address", "127.0.0.1:1"}, args...))
		assert.Equal(t, exitUsage, code, "%v", args)
	}
}

func TestRawListKeepsCommas(t *testing.T) {
	var l rawList
	require.NoError(t, l.Set("acme=arn:aws:iam::123456789012:role/a,b"))
	require.NoError(t, l.Set("x=y"))
	assert.Equal(t, rawList{"acme=arn:aws:iam::123456789012:role/a,b", "x=y"}, l)
}
