using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.ServerServer;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>Spec: jumping to a date, <c>timestamp_to_event</c> for clients (v1) and for other servers (federation v1).</summary>
public sealed class TimestampEndpoints(Authenticator authenticator, FederationRequestAuth federationAuth, ServerRoomAccess serverAccess,
    RoomReader reader, EventSpine spine, Database db, RoomStore rooms) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV1("GET", "rooms/{roomId}/timestamp_to_event", ClientAsync);
        app.MapGet($"{FederationQueryEndpoints.FederationPrefix}/v1/timestamp_to_event/{{roomId}}", FederationAsync);
    }

    private async Task ClientAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var room = await reader.RoomAsync(roomId, context.RequestAborted);
        var joined = await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) == "join";
        var row = await FindAsync(context, roomId);
        if (row is null || !await reader.CanSeeAsync(room, row, requester.UserId.Value, joined, context.RequestAborted))
            throw MatrixException.NotFound("No event found for that time.");
        await context.WriteJsonAsync(new JsonObject { ["event_id"] = row.EventId, ["origin_server_ts"] = row.OriginServerTs });
    }

    private async Task FederationAsync(HttpContext context)
    {
        var (origin, _) = await federationAuth.AuthenticateAsync(context);
        var roomId = context.Route("roomId");
        var room = await spine.GetRoomAsync(roomId, context.RequestAborted) ?? throw MatrixException.NotFound("This server does not know the room.");
        await serverAccess.EnsureInRoomAsync(room, origin, context.RequestAborted);
        var row = await FindAsync(context, roomId);
        if (row is null || !await serverAccess.CanSeeAsync(room, row, origin, context.RequestAborted))
            throw MatrixException.NotFound("No event found for that time.");
        await context.WriteJsonAsync(new JsonObject { ["event_id"] = row.EventId, ["origin_server_ts"] = row.OriginServerTs });
    }

    private async Task<EventRow?> FindAsync(HttpContext context, string roomId)
    {
        if (!long.TryParse(context.Query("ts"), out var ts))
            throw MatrixException.InvalidParam("ts must be a timestamp in milliseconds.");
        var dir = context.Query("dir");
        if (dir is not ("f" or "b"))
            throw MatrixException.InvalidParam("dir must be 'f' or 'b'.");
        return await db.ReadAsync(s => rooms.EventNearTimeAsync(s, roomId, ts, dir == "f"), context.RequestAborted);
    }
}
