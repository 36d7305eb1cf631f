using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
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
/// public is joined on an invite from the admin, who must be able to invite there (as in Synapse). And
/// <c>POST /_synapse/admin/v1/rooms/{roomIdOrAlias}/make_room_admin</c>: the most powerful local member gives a local
/// user their own power level (and an invite, in a room that is not public).
/// </summary>
public sealed class AdminRoomJoinEndpoints(
    AdminAuth auth, RoomDirectory.AliasResolver aliases, EventSpine spine, MembershipService memberships, UserStore users, Database db, JsonBody json,
    HomeserverConfig config, ILogger<AdminRoomJoinEndpoints> logger) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPost(AdminAuth.Prefix + "/v1/join/{roomIdOrAlias}", JoinAsync);
        app.MapPost(AdminAuth.Prefix + "/v1/rooms/{roomIdOrAlias}/make_room_admin", MakeRoomAdminAsync);
    }

    private async Task JoinAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var body = await json.ReadObjectAsync(context);
        var userId = await ExistingLocalUserAsync(body.RequiredString("user_id"), context.RequestAborted);
        var (roomId, servers) = await aliases.ResolveIdOrAliasAsync(context.Route("roomIdOrAlias"), context.RequestAborted);

        if (await spine.GetRoomAsync(roomId, context.RequestAborted) is { } room
            && (await spine.GetStateEventAsync(room, new StateKey("m.room.join_rules", ""), context.RequestAborted))?.ContentString("join_rule") != "public")
            await memberships.ChangeAsync(roomId, admin.UserId.Value, userId.Value, "invite", reason: null, extraContent: null, context.RequestAborted);
        await memberships.JoinAsync(roomId, userId.Value, reason: null, new JsonObject(), servers.Concat(RoomEndpoints.ViaServers(context)), asGuest: false,
            context.RequestAborted);
        logger.LogWarning("{Admin} joined {UserId} to {RoomId}", admin.UserId.Value, userId.Value, roomId);
        await context.WriteJsonAsync(new JsonObject { ["room_id"] = roomId });
    }

    private async Task MakeRoomAdminAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var body = await json.ReadObjectAsync(context, optional: true);
        var target = (await ExistingLocalUserAsync(body.OptionalString("user_id") ?? admin.UserId.Value, context.RequestAborted)).Value;
        var ct = context.RequestAborted;
        var (roomId, _) = await aliases.ResolveIdOrAliasAsync(context.Route("roomIdOrAlias"), ct);
        var room = await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.InvalidParam("Server not in room.");
        var powerLevelsEvent = await spine.GetStateEventAsync(room, StateKey.PowerLevels, ct);
        var powers = new RoomPowers((await spine.GetStateEventAsync(room, StateKey.Create, ct))!, powerLevelsEvent);
        var actor = room.JoinedMembers.Where(u => EventSigning.ServerOf(u) == config.ServerName)
            .OrderByDescending(powers.UserLevel).ThenBy(u => u, StringComparer.Ordinal).FirstOrDefault()
            ?? throw MatrixException.InvalidParam("No local admin user in room.");
        var actorLevel = powers.UserLevel(actor);
        // A creator of a version-12 room has unbounded power, which no entry can grant: the highest granted level then.
        var level = actorLevel == PowerLevels.Infinite ? Math.Max(100, powers.Levels.Users.Values.DefaultIfEmpty(0).Max()) : actorLevel;
        if (powers.UserLevel(target) < level)
        {
            var content = powerLevelsEvent is null ? new JsonObject() : (JsonObject)powerLevelsEvent.Content.DeepClone();
            var usersLevels = content["users"] as JsonObject ?? new JsonObject();
            usersLevels[target] = level;
            content["users"] = usersLevels;
            await spine.SendAsync(roomId, new NewEvent("m.room.power_levels", "", actor, content), ct);
        }
        var membership = (await spine.GetStateEventAsync(room, StateKey.Member(target), ct))?.Membership;
        var joinRule = (await spine.GetStateEventAsync(room, new StateKey("m.room.join_rules", ""), ct))?.ContentString("join_rule");
        if (membership is not ("join" or "invite") && joinRule != "public")
            await memberships.ChangeAsync(roomId, actor, target, "invite", reason: null, extraContent: null, ct);
        logger.LogWarning("{Admin} made {UserId} an admin of {RoomId} through {Actor}", admin.UserId.Value, target, roomId, actor);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task<UserId> ExistingLocalUserAsync(string value, CancellationToken ct)
    {
        if (!UserId.TryParse(value, out var userId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        if (userId.Server.Value != config.ServerName)
            throw MatrixException.InvalidParam("This endpoint can only be used with local users.");
        if (await db.ReadAsync(s => users.GetAsync(s, userId.Value), ct) is null)
            throw MatrixException.NotFound("User not found.");
        return userId;
    }
}
