using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Hosting;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.ServerServer;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's federation admin API: the servers this one federates with (those of users in its rooms, and those with
/// queued traffic), how sending to each fares, the rooms shared with one, and resetting a failing one's retry timing.
/// Retry timings live in memory: after a restart every destination starts healthy, as its queue is retried at once.
/// </summary>
public sealed class AdminFederationEndpoints(
    AdminAuth auth, AdminFederationStore store, FederationSender sender, Database db, HomeserverConfig config) : IEndpoints
{
    private const string Destinations = AdminAuth.Prefix + "/v1/federation/destinations";

    private static readonly Dictionary<string, Func<JsonObject, IComparable?>> Orders = new()
    {
        ["destination"] = d => d["destination"]!.GetValue<string>(),
        ["retry_last_ts"] = d => d["retry_last_ts"]!.GetValue<long>(),
        ["retry_interval"] = d => d["retry_interval"]!.GetValue<long>(),
        ["failure_ts"] = d => d["failure_ts"]?.GetValue<long>(),
        ["last_successful_stream_ordering"] = d => d["last_successful_stream_ordering"]?.GetValue<long>(),
    };

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Destinations, ListAsync);
        app.MapGet(Destinations + "/{destination}", DestinationAsync);
        app.MapGet(Destinations + "/{destination}/rooms", RoomsAsync);
        app.MapPost(Destinations + "/{destination}/reset_connection", ResetAsync);
    }

    private async Task ListAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var (from, limit) = AdminQuery.Page(context);
        var orderBy = AdminQuery.OneOf(context, "order_by", "destination", Orders.Keys.ToList());
        var backwards = AdminQuery.Backwards(context);
        var search = context.Query("destination");
        var all = (await KnownAsync(context.RequestAborted))
            .Where(d => search.Length == 0 || d.Contains(search, StringComparison.OrdinalIgnoreCase)).Select(Describe).ToList();
        var key = Orders[orderBy];
        all.Sort((a, b) =>
        {
            var byKey = Comparer<IComparable?>.Default.Compare(key(a), key(b));
            return byKey != 0 ? byKey : string.CompareOrdinal(a["destination"]!.GetValue<string>(), b["destination"]!.GetValue<string>());
        });
        if (backwards)
            all.Reverse();
        await context.WriteJsonAsync(PageOf("destinations", all, from, limit));
    }

    /// <summary>One page of a list with Synapse's <c>total</c> and (string) <c>next_token</c>.</summary>
    private static JsonObject PageOf(string name, IReadOnlyList<JsonObject> items, int from, int limit)
    {
        var body = new JsonObject
        {
            [name] = new JsonArray(items.Skip(from).Take(limit).Select(item => (JsonNode)item).ToArray()),
            ["total"] = items.Count,
        };
        if ((long)from + limit < items.Count)
            body["next_token"] = (from + limit).ToString();
        return body;
    }

    private async Task DestinationAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        await context.WriteJsonAsync(Describe(await KnownDestinationAsync(context)));
    }

    private async Task RoomsAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var destination = await KnownDestinationAsync(context);
        var (from, limit) = AdminQuery.Page(context);
        var rooms = await db.ReadAsync(s => store.RoomsOfAsync(s, destination), context.RequestAborted);
        if (AdminQuery.Backwards(context))
            rooms.Reverse();
        await context.WriteJsonAsync(PageOf("rooms",
            rooms.Select(r => new JsonObject { ["room_id"] = r.RoomId, ["stream_ordering"] = r.StreamOrdering }).ToList(), from, limit));
    }

    private async Task ResetAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var destination = await KnownDestinationAsync(context);
        if (sender.HealthOf(destination) is not { LastFailure: not null })
            throw new MatrixException(400, "M_UNKNOWN", "The retry timing does not need to be reset for this destination.");
        sender.DestinationIsUp(destination);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task<SortedSet<string>> KnownAsync(CancellationToken ct)
    {
        var (joined, queued) = await db.ReadAsync(store.DestinationSourcesAsync, ct);
        var known = new SortedSet<string>(queued, StringComparer.Ordinal);
        foreach (var user in joined)
            if (EventSigning.ServerOf(user) is { } server)
                known.Add(server);
        known.Remove(config.ServerName);
        return known;
    }

    private async Task<string> KnownDestinationAsync(HttpContext context)
    {
        var destination = context.Route("destination");
        return (await KnownAsync(context.RequestAborted)).Contains(destination) ? destination : throw MatrixException.NotFound("Unknown destination");
    }

    /// <summary>Synapse's shape: times in milliseconds, zero when not failing; no stream position of the last success is kept here.</summary>
    private JsonObject Describe(string destination)
    {
        var health = sender.HealthOf(destination);
        return new JsonObject
        {
            ["destination"] = destination,
            ["retry_last_ts"] = health?.LastFailure?.ToUnixTimeMilliseconds() ?? 0,
            ["retry_interval"] = (long)(health?.Backoff.TotalMilliseconds ?? 0),
            ["failure_ts"] = health?.FailingSince?.ToUnixTimeMilliseconds(),
            ["last_successful_stream_ordering"] = null,
        };
    }
}
