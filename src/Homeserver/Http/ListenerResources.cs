using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Http;

/// <summary>
/// Keeps each listener to the APIs its <c>resources</c> name: a federation-only listener answers client paths with
/// 404 M_UNRECOGNIZED and the other way round, and only a <c>metrics</c> listener serves the metrics paths (which serve
/// nothing else). The key server and federation paths count as "federation"; with
/// <c>media.legacy_unauthenticated_access</c>, the legacy media download and thumbnail paths count as both, as servers
/// before the authenticated federation media endpoints (Synapse before 1.111) fetch remote media there, on the
/// federation port. <c>/health</c> answers on every listener, as Synapse's does.
/// </summary>
public static class ListenerResources
{
    public const string Metrics = "metrics";

    public static void UseListenerResources(this WebApplication app, HomeserverConfig config)
    {
        var byPort = config.Listeners.Where(l => l.Port != 0).GroupBy(l => l.Port)
            .ToDictionary(g => g.Key, g => g.SelectMany(l => l.Resources).ToHashSet());
        var used = config.Listeners.SelectMany(l => l.Resources).ToHashSet();
        if (byPort.Values.All(resources => resources.IsSupersetOf(used)))
            return;
        app.Use((context, next) =>
        {
            var path = context.Request.Path;
            if (byPort.TryGetValue(context.Connection.LocalPort, out var resources) && ResourceOf(path) is { } resource
                && !resources.Contains(resource)
                && !(config.Media.LegacyUnauthenticatedAccess && resources.Contains("federation") && IsLegacyMediaRead(path)))
                throw MatrixException.Unrecognized();
            return next(context);
        });
    }

    /// <summary>The resource a path belongs to; null for <c>/health</c>, which every listener serves.</summary>
    private static string? ResourceOf(PathString path) =>
        path == "/health" ? null
        : Observability.MetricsEndpoints.Paths.Any(metrics => path == metrics) ? Metrics
        : path.StartsWithSegments("/_matrix/federation") || path.StartsWithSegments("/_matrix/key") ? "federation"
        : "client";

    private static bool IsLegacyMediaRead(PathString path) =>
        new[] { "r0", "v3" }.Any(version => path.StartsWithSegments($"/_matrix/media/{version}/download")
            || path.StartsWithSegments($"/_matrix/media/{version}/thumbnail"));
}
