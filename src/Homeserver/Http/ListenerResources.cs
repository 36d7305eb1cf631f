using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Http;

/// <summary>
/// Keeps each listener to the APIs its <c>resources</c> name: a federation-only listener answers client paths with
/// 404 M_UNRECOGNIZED and the other way round. The key server and federation paths count as "federation"; with
/// <c>media.legacy_unauthenticated_access</c>, the legacy media download and thumbnail paths count as both, as servers
/// before the authenticated federation media endpoints (Synapse before 1.111) fetch remote media there, on the
/// federation port.
/// </summary>
public static class ListenerResources
{
    public static void UseListenerResources(this WebApplication app, HomeserverConfig config)
    {
        var byPort = config.Listeners.Where(l => l.Port != 0).GroupBy(l => l.Port)
            .ToDictionary(g => g.Key, g => g.SelectMany(l => l.Resources).ToHashSet());
        if (byPort.Values.All(r => r.Contains("client") && r.Contains("federation")))
            return;
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path;
            var federation = path.StartsWithSegments("/_matrix/federation") || path.StartsWithSegments("/_matrix/key");
            if (byPort.TryGetValue(context.Connection.LocalPort, out var resources) && !resources.Contains(federation ? "federation" : "client")
                && !(config.Media.LegacyUnauthenticatedAccess && resources.Contains("federation") && IsLegacyMediaRead(path)))
                throw MatrixException.Unrecognized();
            await next();
        });
    }

    private static bool IsLegacyMediaRead(PathString path) =>
        new[] { "r0", "v3" }.Any(version => path.StartsWithSegments($"/_matrix/media/{version}/download")
            || path.StartsWithSegments($"/_matrix/media/{version}/thumbnail"));
}
