// Command echo is the sample function built as a Lambda custom-runtime
// bootstrap. Tests build it with `go build -o <dir>/bootstrap`.
package main

import (
	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/gust-dev/gust/localcloud/lambda/sample"
)

func main() { awslambda.Start(sample.Handle) }
