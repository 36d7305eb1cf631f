using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Observability;

/// <summary>
/// Prometheus' scrape endpoint at Synapse's <c>/_synapse/metrics</c> and the usual <c>/metrics</c>, served only on
/// listeners whose <c>resources</c> include <c>metrics</c> (none by default; <see cref="ListenerResources"/> keeps it off
/// the others), without an access token, as Synapse: bind such a listener to an address only the scraper reaches.
/// </summary>
public sealed class MetricsEndpoints(HomeserverConfig config, ScrapeTimeMetrics scrape) : IEndpoints
{
    public static readonly string[] Paths = ["/_synapse/metrics", "/metrics"];

    public void Map(IEndpointRouteBuilder app)
    {
        if (!config.Listeners.Any(listener => listener.Resources.Contains(ListenerResources.Metrics)))
            return;
        foreach (var path in Paths)
            app.MapGet(path, ScrapeAsync);
    }

    private async Task ScrapeAsync(HttpContext context)
    {
        var text = await scrape.ScrapeAsync(context.RequestAborted);
        context.Response.ContentType = PrometheusTextWriter.ContentType;
        await context.Response.WriteAsync(text, context.RequestAborted);
    }
}
