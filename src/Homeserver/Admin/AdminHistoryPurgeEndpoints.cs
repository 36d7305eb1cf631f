using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}]</c> (answers a purge ID, purges in the
/// background) and <c>GET /_synapse/admin/v1/purge_history_status/{purgeId}</c>: the room's timeline events before an
/// event or a time are deleted, other servers' only unless <c>delete_local_events</c> is set (as Synapse).
/// </summary>
public sealed class AdminHistoryPurgeEndpoints(
    AdminAuth auth, AdminTasks tasks, HistoryPurgeStore store, EventSpine spine, RoomStore rooms, Database db, JsonBody json, HomeserverConfig config,
    IHostApplicationLifetime lifetime, ILogger<AdminHistoryPurgeEndpoints> logger) : IEndpoints
{
    private const string Kind = "purge_history";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPost(AdminAuth.Prefix + "/v1/purge_history/{roomId}", PurgeAsync);
        app.MapPost(AdminAuth.Prefix + "/v1/purge_history/{roomId}/{eventId}", PurgeAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/purge_history_status/{purgeId}", StatusAsync);
    }

    private async Task PurgeAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var body = await json.ReadObjectAsync(context, optional: true);
        var deleteLocal = body.OptionalBool("delete_local_events") ?? false;
        var ct = context.RequestAborted;
        if (await spine.GetRoomAsync(roomId, ct) is null)
            throw MatrixException.NotFound("Room not found.");
        var before = await PurgePointAsync(context, roomId, body.OptionalString("purge_up_to_event_id"), body.OptionalInteger("purge_up_to_ts"), ct);

        var purge = tasks.TryStart(Kind, roomId, "active") ?? throw new MatrixException(400, "M_UNKNOWN", $"History purge already in progress for {roomId}");
        var stopping = lifetime.ApplicationStopping;
        tasks.Run(purge, async _ =>
        {
            var deleted = await spine.DeleteEventsAsync(roomId, async s =>
            {
                var doomed = (await store.CandidatesAsync(s, roomId, before))
                    .Where(e => deleteLocal || EventSigning.ServerOf(e.Sender) != config.ServerName).Select(e => e.EventId).ToList();
                await store.DeleteAsync(s, doomed);
                return doomed;
            }, stopping);
            logger.LogWarning("{Admin} purged {Count} events of {RoomId} before position {Before}", admin.UserId.Value, deleted.Count, roomId, before);
        }, logger);
        await context.WriteJsonAsync(new JsonObject { ["purge_id"] = purge.Id });
    }

    /// <summary>The stream position before which events go: the given event's, or that of the first event at or after the time.</summary>
    private async Task<long> PurgePointAsync(HttpContext context, string roomId, string? bodyEventId, long? ts, CancellationToken ct)
    {
        var eventId = context.Request.RouteValues.ContainsKey("eventId") ? context.Route("eventId") : bodyEventId;
        if (eventId is not null)
        {
            var row = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), ct) ?? throw MatrixException.NotFound($"Event {eventId} not found.");
            return row.RoomId == roomId ? row.StreamOrdering : throw MatrixException.InvalidParam("Event is for wrong room.");
        }
        if (ts is not { } time)
            throw MatrixException.MissingParam("purge_up_to_event_id or purge_up_to_ts");
        return await db.ReadAsync(s => store.FirstPositionFromAsync(s, roomId, time), ct) ?? long.MaxValue;
    }

    private async Task StatusAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var purge = tasks.Find(Kind, context.Route("purgeId")) ?? throw MatrixException.NotFound("Purge not found.");
        var body = new JsonObject { ["status"] = purge.Status };
        if (purge.Error is { } error)
            body["error"] = error;
        await context.WriteJsonAsync(body);
    }
}
