package worker

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/events"
)

// TestEventRouterMetricsHaveHelp: the router's counters, recorded through
// the handler the worker gives it, are served with their HELP texts.
func TestEventRouterMetricsHaveHelp(t *testing.T) {
	m := NewMetrics()
	defer m.Close()
	for _, name := range []string{events.MetricReceived, events.MetricDelivered, events.MetricIgnored, events.MetricLookupMisses} {
		m.Handler.WithTags(map[string]string{"tenant": "acme"}).Counter(name).Inc(2)
	}
	require.NoError(t, m.Close()) // flush the reporter
	body := scrape(t, m)
	for _, name := range []string{events.MetricReceived, events.MetricDelivered, events.MetricIgnored, events.MetricLookupMisses} {
		require.Equal(t, "2", sample(body, name+"_total", `tenant="acme"`), body)
		require.Contains(t, body, "# HELP "+name+"_total "+HelpTexts[name])
	}
}
