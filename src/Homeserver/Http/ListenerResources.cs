using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Http;

/// <summary>
/// Keeps each listener to the APIs its <c>resources</c> name: a federation-only listener answers client paths with
/// 404 M_UNRECOGNIZED and the other way round. The key server and federation paths count as "federation".
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
            if (byPort.TryGetValue(context.Connection.LocalPort, out var resources) && !resources.Contains(federation ? "federation" : "client"))
                throw MatrixException.Unrecognized();
            await next();
        });
    }
}
