using System.Text.RegularExpressions;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// The requests a worker answers: a sync worker serves <c>/sync</c> and the reads beside it (the load balancer sends it
/// these, README "Scaling out"), a media worker the client media API, a federation reader what other servers read
/// (events, state, backfill, membership templates, queries, device keys, this server's signing keys), an event writer
/// the sends of its rooms (messages, state, redactions) and other servers' transactions, a sender or a
/// pusher only its health and metrics; anything else reaching a worker was routed wrongly and gets 404 <c>M_UNRECOGNIZED</c> saying so, as a
/// Synapse worker does.
/// </summary>
public static partial class WorkerRoutes
{
    [GeneratedRegex(@"^/_matrix/client/(?:v3|r0)/(?:sync|events|account/whoami|rooms/[^/]+/messages)$|^/_matrix/client/versions$")]
    private static partial Regex SyncReads();

    // The federation API's reads; writes (transactions, send_join and the like, invites, one-time key claims) and the
    // notary's key queries (which store what they fetch) stay with the main process.
    [GeneratedRegex(@"^/_matrix/federation/v1/(?:event/[^/]+|state(?:_ids)?/[^/]+|event_auth/[^/]+/[^/]+|backfill/[^/]+|version"
        + @"|query/(?:profile|directory)|publicRooms|user/devices/[^/]+|make_(?:join|leave|knock)/[^/]+/[^/]+|hierarchy/[^/]+|openid/userinfo)$"
        + @"|^/_matrix/key/v2/server(?:/[^/]+)?$")]
    private static partial Regex FederationGets();

    [GeneratedRegex(@"^/_matrix/federation/v1/(?:get_missing_events/[^/]+|publicRooms|user/keys/query)$")]
    private static partial Regex FederationPosts();

    // A room's sends: the load balancer routes them to the event writer of its share of the rooms. Membership changes
    // (joins, invites and the like, m.room.member state) stay with the main process.
    [GeneratedRegex(@"^/_matrix/client/(?:v3|r0)/rooms/[^/]+/(?:send/[^/]+/[^/]+|state/(?!m\.room\.member(?:/|$))[^/]+(?:/[^/]*)?|redact/[^/]+/[^/]+)$")]
    private static partial Regex RoomSends();

    // Other servers' transactions: their events are written where they are received, their EDUs queued for the main process.
    [GeneratedRegex(@"^/_matrix/federation/v1/send/[^/]+$")]
    private static partial Regex FederationTransactions();

    public static bool Serves(string role, string method, PathString path) =>
        path == "/health" || Observability.MetricsEndpoints.Paths.Any(metrics => path == metrics)
        || (role == WorkerConfig.SyncRole && IsRead(method) && SyncReads().IsMatch(path.Value ?? ""))
        || (role == WorkerConfig.EventWriterRole && HttpMethods.IsPut(method)
            && (RoomSends().IsMatch(path.Value ?? "") || FederationTransactions().IsMatch(path.Value ?? "")))
        || (role == WorkerConfig.MediaRole && (path.StartsWithSegments("/_matrix/media") || path.StartsWithSegments("/_matrix/client/v1/media")))
        || (role == WorkerConfig.FederationReaderRole
            && ((IsRead(method) && FederationGets().IsMatch(path.Value ?? "")) || (HttpMethods.IsPost(method) && FederationPosts().IsMatch(path.Value ?? ""))));

    private static bool IsRead(string method) => HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method);

    public static void UseWorkerRoutes(this WebApplication app, HomeserverConfig config)
    {
        if (config.Worker.IsMain)
            return;
        app.Use((context, next) =>
        {
            if (!Serves(config.Worker.Role, context.Request.Method, context.Request.Path))
                throw new MatrixException(404, "M_UNRECOGNIZED",
                    $"This is a {config.Worker.Role} worker ({config.Worker.InstanceName}); this request belongs to the main process.");
            return next(context);
        });
    }
}
