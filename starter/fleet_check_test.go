package main

import (
	"context"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	ec2provider "github.com/gust-dev/gust/providers/ec2"
)

// TestUnreachableCloudIsRecognised: the launch's instance type check stays
// quiet when nothing listens at the default endpoint, which it can only do
// if the provider's error still says the dial failed.
func TestUnreachableCloudIsRecognised(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		RetryMaxAttempts: 1}
	api := awsec2.NewFromConfig(cfg, func(o *awsec2.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
	_, err = ec2provider.New(api).InstanceTypes(context.Background())
	if err == nil {
		t.Fatal("listing instance types at a closed port succeeded")
	}
	if !isUnreachable(err) {
		t.Errorf("a refused connection is not recognised as unreachable: %v", err)
	}
}
