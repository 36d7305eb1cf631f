using Matrix.Homeserver.Observability;

namespace Matrix.Homeserver.Tests;

/// <summary>Label values find their series whether passed as arguments (a span, no array) or as an array.</summary>
public sealed class MetricFamiliesTests
{
    [Fact]
    public void The_same_label_values_count_into_one_series_and_others_into_their_own()
    {
        var requests = new Counter("requests_total", "Requests.", "method", "status");
        var duration = new Histogram("duration_seconds", "Durations.", [0.1, 1], "method");
        requests.Inc("GET", "200");
        requests.Inc(["GET", "200"]);
        requests.Add(3, new[] { "GET", "404" });
        duration.Observe(0.05, "GET");
        duration.Observe(0.5, ["GET"]);

        var text = PrometheusTextWriter.Write([requests, duration]);
        Assert.Contains("requests_total{method=\"GET\",status=\"200\"} 2\n", text);
        Assert.Contains("requests_total{method=\"GET\",status=\"404\"} 3\n", text);
        Assert.Contains("duration_seconds_count{method=\"GET\"} 2\n", text);
        Assert.Throws<ArgumentException>(() => requests.Inc("GET"));
    }
}
