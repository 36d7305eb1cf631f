using System.Text.RegularExpressions;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// The requests a worker answers: a sync worker serves <c>/sync</c> and the reads beside it (the load balancer sends it
/// these, README "Scaling out"), a media worker the client media API, a sender or a pusher only its health and
/// metrics; anything else reaching a worker was routed wrongly and gets 404 <c>M_UNRECOGNIZED</c> saying so, as a
/// Synapse worker does.
/// </summary>
public static partial class WorkerRoutes
{
    [GeneratedRegex(@"^/_matrix/client/(?:v3|r0)/(?:sync|events|account/whoami|rooms/[^/]+/messages)$|^/_matrix/client/versions$")]
    private static partial Regex SyncReads();

    public static bool Serves(string role, string method, PathString path) =>
        path == "/health" || Observability.MetricsEndpoints.Paths.Any(metrics => path == metrics)
        || (role == WorkerConfig.SyncRole && (HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method))
            && SyncReads().IsMatch(path.Value ?? ""))
        || (role == WorkerConfig.MediaRole && (path.StartsWithSegments("/_matrix/media") || path.StartsWithSegments("/_matrix/client/v1/media")));

    public static void UseWorkerRoutes(this WebApplication app, HomeserverConfig config)
    {
        if (config.Worker.IsMain)
            return;
        app.Use(async (context, next) =>
        {
            if (!Serves(config.Worker.Role, context.Request.Method, context.Request.Path))
                throw new MatrixException(404, "M_UNRECOGNIZED",
                    $"This is a {config.Worker.Role} worker ({config.Worker.InstanceName}); this request belongs to the main process.");
            await next();
        });
    }
}
