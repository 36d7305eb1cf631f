using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>POST /_synapse/admin/v1/join/{roomIdOrAlias}</c>: joins a local user to a room. A room that is not
/// public is joined on an invite from the admin, who must be able to invite there (as in Synapse).
/// </summary>
public sealed class AdminRoomJoinEndpoints(
    AdminAuth auth, RoomDirectory.AliasResolver aliases, EventSpine spine, MembershipService memberships, UserStore users, Database db, JsonBody json,
    HomeserverConfig config, ILogger<AdminRoomJoinEndpoints> logger) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapPost(AdminAuth.Prefix + "/v1/join/{roomIdOrAlias}", JoinAsync);

    private async Task JoinAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var body = await json.ReadObjectAsync(context);
        if (!UserId.TryParse(body.RequiredString("user_id"), out var userId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        if (userId.Server.Value != config.ServerName)
            throw MatrixException.InvalidParam("This endpoint can only be used with local users.");
        if (await db.ReadAsync(s => users.GetAsync(s, userId.Value), context.RequestAborted) is null)
            throw MatrixException.NotFound("User not found.");
        var (roomId, servers) = await aliases.ResolveIdOrAliasAsync(context.Route("roomIdOrAlias"), context.RequestAborted);

        if (await spine.GetRoomAsync(roomId, context.RequestAborted) is { } room
            && (await spine.GetStateEventAsync(room, new StateKey("m.room.join_rules", ""), context.RequestAborted))?.ContentString("join_rule") != "public")
            await memberships.ChangeAsync(roomId, admin.UserId.Value, userId.Value, "invite", reason: null, extraContent: null, context.RequestAborted);
        await memberships.JoinAsync(roomId, userId.Value, reason: null, new JsonObject(), servers.Concat(RoomEndpoints.ViaServers(context)), asGuest: false,
            context.RequestAborted);
        logger.LogWarning("{Admin} joined {UserId} to {RoomId}", admin.UserId.Value, userId.Value, roomId);
        await context.WriteJsonAsync(new JsonObject { ["room_id"] = roomId });
    }
}
