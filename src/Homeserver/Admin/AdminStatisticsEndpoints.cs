using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's activity figures: <c>GET /_synapse/admin/v1/users/{userId}/sent_invite_count</c> and
/// <c>.../cumulative_joined_room_count</c> (since <c>from_ts</c>), and <c>GET /_synapse/admin/v1/statistics/database/rooms</c>
/// (the ten largest rooms, estimated by the size of their events' JSON: this server keeps rooms in shared tables).
/// </summary>
public sealed class AdminStatisticsEndpoints(AdminAuth auth, Database db) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(AdminAuth.Prefix + "/v1/users/{userId}/sent_invite_count", SentInvitesAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/users/{userId}/cumulative_joined_room_count", JoinedRoomsAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/statistics/database/rooms", LargestRoomsAsync);
    }

    private async Task SentInvitesAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var fromTs = AdminQuery.NonNegativeLong(context, "from_ts", 0);
        var count = await db.ReadAsync(s => s.ExecuteScalarAsync<long>("""
            SELECT COUNT(*) FROM events WHERE sender = @userId AND type = 'm.room.member' AND state_key <> @userId
            AND origin_server_ts >= @fromTs AND json LIKE '%"membership":"invite"%'
            """, new { userId, fromTs }), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["invite_count"] = count });
    }

    private async Task JoinedRoomsAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var fromTs = AdminQuery.NonNegativeLong(context, "from_ts", 0);
        var count = await db.ReadAsync(s => s.ExecuteScalarAsync<long>("""
            SELECT COUNT(DISTINCT room_id) FROM events WHERE type = 'm.room.member' AND state_key = @userId
            AND origin_server_ts >= @fromTs AND json LIKE '%"membership":"join"%'
            """, new { userId, fromTs }), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["cumulative_joined_room_count"] = count });
    }

    private async Task LargestRoomsAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var rooms = await db.ReadAsync(s => s.QueryAsync<(string RoomId, long Size)>(
            "SELECT room_id, CAST(SUM(LENGTH(json)) AS BIGINT) AS size FROM events GROUP BY room_id ORDER BY size DESC, room_id LIMIT 10"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["rooms"] = new JsonArray(rooms.Select(r => (JsonNode)new JsonObject { ["room_id"] = r.RoomId, ["estimated_size"] = r.Size }).ToArray()),
        });
    }
}
