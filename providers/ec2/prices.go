package ec2

// onDemandPrices are hourly on-demand prices in USD (Linux, us-east-1, as
// AWS published them), a static fallback in the way Karpenter ships static
// prices for when it cannot reach the Pricing API: EC2 itself has no call
// that prices on-demand capacity, and gust does not call the Pricing API.
// They only rank offerings (the lowest-price strategy, price per unit), so
// the region's markup and later price changes, which move every type
// alike, matter little. The table covers the general purpose (t3, m5, m6i,
// m7i), compute (c5, c6i, c7i) and memory (r5, r6i) families in their
// common sizes; any other type is priced 0, "unknown".
var onDemandPrices = map[string]float64{
	"t3.nano":    0.0052,
	"t3.micro":   0.0104,
	"t3.small":   0.0208,
	"t3.medium":  0.0416,
	"t3.large":   0.0832,
	"t3.xlarge":  0.1664,
	"t3.2xlarge": 0.3328,

	"m5.large":    0.096,
	"m5.xlarge":   0.192,
	"m5.2xlarge":  0.384,
	"m5.4xlarge":  0.768,
	"m6i.large":   0.096,
	"m6i.xlarge":  0.192,
	"m6i.2xlarge": 0.384,
	"m6i.4xlarge": 0.768,
	"m7i.large":   0.1008,
	"m7i.xlarge":  0.2016,
	"m7i.2xlarge": 0.4032,

	"c5.large":    0.085,
	"c5.xlarge":   0.17,
	"c5.2xlarge":  0.34,
	"c5.4xlarge":  0.68,
	"c6i.large":   0.085,
	"c6i.xlarge":  0.17,
	"c6i.2xlarge": 0.34,
	"c7i.large":   0.08925,
	"c7i.xlarge":  0.1785,
	"c7i.2xlarge": 0.357,

	"r5.large":    0.126,
	"r5.xlarge":   0.252,
	"r5.2xlarge":  0.504,
	"r6i.large":   0.126,
	"r6i.xlarge":  0.252,
	"r6i.2xlarge": 0.504,
}

// onDemandPrice is the table's price of instanceType, 0 if it has none.
func onDemandPrice(instanceType string) float64 { return onDemandPrices[instanceType] }
