using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>Spec: room aliases (<c>directory/room</c>, <c>rooms/{roomId}/aliases</c>), room directory visibility and <c>publicRooms</c>.</summary>
public sealed class DirectoryEndpoints(
    Authenticator authenticator, JsonBody json, Database db, RoomStore rooms, EventSpine spine, RoomReader reader, HomeserverConfig config,
    AliasResolver aliases, PublicRoomList publicRooms, ApplicationServices.AppServiceRegistry appServices, ILogger<DirectoryEndpoints> logger)
    : IEndpoints
{

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("PUT", "directory/room/{roomAlias}", CreateAliasAsync);
        app.MapV3("GET", "directory/room/{roomAlias}", ResolveAliasAsync);
        app.MapV3("DELETE", "directory/room/{roomAlias}", DeleteAliasAsync);
        app.MapV3("GET", "rooms/{roomId}/aliases", RoomAliasesAsync);
        app.MapV3("GET", "directory/list/room/{roomId}", GetVisibilityAsync);
        app.MapV3("PUT", "directory/list/room/{roomId}", SetVisibilityAsync);
        app.MapV3("PUT", "directory/list/appservice/{networkId}/{roomId}", SetAppServiceVisibilityAsync);
        app.MapV3("DELETE", "directory/list/appservice/{networkId}/{roomId}", SetAppServiceVisibilityAsync);
        app.MapV3("GET", "publicRooms", PublicRoomsAsync);
        app.MapV3("POST", "publicRooms", PublicRoomsAsync);
    }

    private string LocalAlias(HttpContext context)
    {
        var alias = context.Route("roomAlias");
        if (!RoomAlias.IsValid(alias))
            throw MatrixException.InvalidParam("Invalid room alias.");
        return alias;
    }

    private async Task CreateAliasAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var alias = LocalAlias(context);
        if (RoomAlias.ServerOf(alias) != config.ServerName)
            throw MatrixException.InvalidParam("Aliases can only be created on this server.");
        // As Synapse: an application service gives aliases of its namespaces, and only those, to rooms it need not be in.
        if (requester.AppService is { } service)
        {
            if (!service.IsInterestedInAlias(alias))
                throw new MatrixException(400, "M_EXCLUSIVE", "This application service has not reserved this kind of alias.");
        }
        else
            appServices.CheckAliasFree(alias, null);
        var roomId = (await json.ReadObjectAsync(context)).RequiredString("room_id");
        var room = await spine.GetRoomAsync(roomId, context.RequestAborted) ?? throw MatrixException.NotFound("Unknown room.");
        if (requester.AppService is null && await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) != "join")
            throw MatrixException.Forbidden("You must be in the room to give it an alias.");
        if (!await db.WriteAsync(s => rooms.TryCreateAliasAsync(s, alias, roomId, requester.UserId.Value), context.RequestAborted))
            throw new MatrixException(409, "M_UNKNOWN", "Room alias already exists.");
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task ResolveAliasAsync(HttpContext context)
    {
        var (roomId, servers) = await aliases.ResolveAsync(LocalAlias(context), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["room_id"] = roomId, ["servers"] = new JsonArray(servers.Select(s => (JsonNode)s).ToArray()) });
    }

    private async Task DeleteAliasAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var alias = LocalAlias(context);
        var row = await db.ReadAsync(s => rooms.GetAliasAsync(s, alias), context.RequestAborted)
            ?? throw MatrixException.NotFound("Room alias not found.");
        // As Synapse: the alias's creator, a server admin, or whoever may set the room's canonical alias.
        if (row.Creator != requester.UserId.Value && !requester.IsAdmin
            && !await MaySendStateAsync(row.RoomId, requester.UserId.Value, "m.room.canonical_alias", context.RequestAborted))
            throw MatrixException.Forbidden("You may not delete this alias.");
        await db.WriteAsync(s => rooms.DeleteAliasAsync(s, alias), context.RequestAborted);
        await RemoveFromCanonicalAliasAsync(row.RoomId, alias, requester.UserId.Value, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    /// <summary>
    /// A deleted alias leaves the room's canonical alias event too (as Synapse does), sent by whoever deleted it; one
    /// who may not change that event (an alias's creator without the power) leaves it as it is.
    /// </summary>
    private async Task RemoveFromCanonicalAliasAsync(string roomId, string alias, string sender, CancellationToken ct)
    {
        if (await spine.GetRoomAsync(roomId, ct) is not { } room
            || await spine.GetStateEventAsync(room, new Federation.Events.StateKey("m.room.canonical_alias", ""), ct) is not { } current)
            return;
        var content = (JsonObject)current.Content.DeepClone();
        var changed = false;
        if (content["alias"] is JsonValue main && main.TryGetValue<string>(out var mainAlias) && mainAlias == alias)
            changed = content.Remove("alias");
        if (content["alt_aliases"] is JsonArray alternatives && alternatives.FirstOrDefault(a => a is JsonValue v && v.TryGetValue<string>(out var text) && text == alias) is { } entry)
            changed |= alternatives.Remove(entry);
        if (!changed)
            return;
        try
        {
            await spine.SendAsync(roomId, new NewEvent("m.room.canonical_alias", "", sender, content), ct);
        }
        catch (MatrixException e) when (e.Status == 403)
        {
            logger.LogInformation("Alias {Alias} deleted, but {User} may not update the canonical alias of {Room}", alias, sender, roomId);
        }
    }

    private async Task RoomAliasesAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        // Server admins may list any room's aliases, as in Synapse (synadm names a user's rooms by alias this way).
        if (!requester.IsAdmin)
            await reader.VisibleStateAsync(roomId, requester.UserId.Value, context.RequestAborted);
        var aliases = await db.ReadAsync(s => rooms.AliasesOfAsync(s, roomId), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["aliases"] = new JsonArray(aliases.Select(a => (JsonNode)a).ToArray()) });
    }

    private async Task GetVisibilityAsync(HttpContext context)
    {
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var room = await db.ReadAsync(s => rooms.GetRoomAsync(s, roomId), context.RequestAborted) ?? throw MatrixException.NotFound("Unknown room.");
        await context.WriteJsonAsync(new JsonObject { ["visibility"] = room.IsPublic == 1 ? "public" : "private" });
    }

    private async Task SetVisibilityAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var visibility = (await json.ReadObjectAsync(context)).OptionalString("visibility") ?? "public";
        if (visibility is not ("public" or "private"))
            throw MatrixException.InvalidParam("visibility must be 'public' or 'private'.");
        if (await spine.GetRoomAsync(roomId, context.RequestAborted) is null)
            throw MatrixException.NotFound("Unknown room.");
        if (!requester.IsAdmin && !await MaySendStateAsync(roomId, requester.UserId.Value, "m.room.canonical_alias", context.RequestAborted))
            throw MatrixException.Forbidden("You may not change this room's directory visibility.");
        await db.WriteAsync(s => rooms.SetPublicAsync(s, roomId, visibility == "public"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    /// <summary>
    /// Spec: application services, <c>PUT /directory/list/appservice/{networkId}/{roomId}</c>: a bridge publishes rooms
    /// of one of its networks in that network's own list, apart from the main directory (as Synapse keeps them); DELETE
    /// unpublishes, as in Synapse.
    /// </summary>
    private async Task SetAppServiceVisibilityAsync(HttpContext context)
    {
        var service = (await authenticator.AuthenticateAsync(context)).AppService
            ?? throw MatrixException.Forbidden("Only application services can publish rooms in a network's list.");
        var visibility = HttpMethods.IsDelete(context.Request.Method) ? "private"
            : (await json.ReadObjectAsync(context)).OptionalString("visibility") ?? throw MatrixException.MissingParam("visibility");
        if (visibility is not ("public" or "private"))
            throw MatrixException.InvalidParam("visibility must be 'public' or 'private'.");
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var network = new AppServiceNetwork(service.Id, context.Route("networkId"));
        if (network.NetworkId.Length == 0)
            throw MatrixException.InvalidParam("networkId must not be empty.");
        if (await spine.GetRoomAsync(roomId, context.RequestAborted) is null)
            throw MatrixException.NotFound("Unknown room.");
        await db.WriteAsync(s => rooms.SetPublishedInNetworkAsync(s, network, roomId, visibility == "public"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task<bool> MaySendStateAsync(string roomId, string userId, string type, CancellationToken ct)
    {
        var room = await spine.GetRoomAsync(roomId, ct);
        if (room is null || await reader.MembershipAsync(room, userId, ct) != "join")
            return false;
        var powers = new RoomPowers((await spine.GetStateEventAsync(room, StateKey.Create, ct))!, await spine.GetStateEventAsync(room, StateKey.PowerLevels, ct));
        return powers.UserLevel(userId) >= powers.Levels.RequiredFor(type, isState: true);
    }

    /// <summary>
    /// GET (query parameters) and POST (body with filter) list the rooms published in the directory: this server's, or
    /// with <c>server</c> another server's over federation.
    /// </summary>
    private async Task PublicRoomsAsync(HttpContext context)
    {
        var query = HttpMethods.IsPost(context.Request.Method)
            ? await PublicRoomQuery.FromBodyAsync(context, authenticator, json)
            : PublicRoomQuery.FromQuery(context);
        var server = context.Query("server");
        if (server.Length > 0 && server != config.ServerName)
        {
            await context.WriteJsonAsync(await publicRooms.RemoteAsync(server, query, context.RequestAborted));
            return;
        }
        await context.WriteJsonAsync(await publicRooms.ListAsync(query, context.RequestAborted));
    }
}
