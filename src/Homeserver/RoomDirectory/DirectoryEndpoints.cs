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
    AliasResolver aliases) : IEndpoints
{
    public const int MaxPublicRoomsLimit = 500;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("PUT", "directory/room/{roomAlias}", CreateAliasAsync);
        app.MapV3("GET", "directory/room/{roomAlias}", ResolveAliasAsync);
        app.MapV3("DELETE", "directory/room/{roomAlias}", DeleteAliasAsync);
        app.MapV3("GET", "rooms/{roomId}/aliases", RoomAliasesAsync);
        app.MapV3("GET", "directory/list/room/{roomId}", GetVisibilityAsync);
        app.MapV3("PUT", "directory/list/room/{roomId}", SetVisibilityAsync);
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
        var roomId = (await json.ReadObjectAsync(context)).RequiredString("room_id");
        var room = await spine.GetRoomAsync(roomId, context.RequestAborted) ?? throw MatrixException.NotFound("Unknown room.");
        if (await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) != "join")
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
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task RoomAliasesAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
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

    private async Task<bool> MaySendStateAsync(string roomId, string userId, string type, CancellationToken ct)
    {
        var room = await spine.GetRoomAsync(roomId, ct);
        if (room is null || await reader.MembershipAsync(room, userId, ct) != "join")
            return false;
        var powers = new RoomPowers((await spine.GetStateEventAsync(room, StateKey.Create, ct))!, await spine.GetStateEventAsync(room, StateKey.PowerLevels, ct));
        return powers.UserLevel(userId) >= powers.Levels.RequiredFor(type, isState: true);
    }

    /// <summary>GET (query parameters) and POST (body with filter) list the rooms published in the directory.</summary>
    private async Task PublicRoomsAsync(HttpContext context)
    {
        int? limit;
        string? since, search = null;
        if (HttpMethods.IsPost(context.Request.Method))
        {
            await authenticator.AuthenticateAsync(context);
            var body = await json.ReadObjectAsync(context, optional: true);
            limit = (int?)body.OptionalInteger("limit");
            since = body.OptionalString("since");
            search = body.OptionalObject("filter")?.OptionalString("generic_search_term");
        }
        else
        {
            limit = context.Query("limit") is { Length: > 0 } l ? int.TryParse(l, out var n) ? n : throw MatrixException.InvalidParam("Invalid limit.") : null;
            since = context.Query("since") is { Length: > 0 } s ? s : null;
        }
        var offset = since is null ? 0 : since.StartsWith('p') && int.TryParse(since[1..], out var o) && o >= 0 ? o : throw MatrixException.InvalidParam("Invalid since token.");
        var take = Math.Clamp(limit ?? 100, 0, MaxPublicRoomsLimit);

        var entries = new List<JsonObject>();
        foreach (var roomId in await db.ReadAsync(s => rooms.PublicRoomsAsync(s), context.RequestAborted))
            if (await reader.RoomAsync(roomId, context.RequestAborted) is { } room && await PublicRoomEntryAsync(room, context.RequestAborted) is { } entry
                && Matches(entry, search))
                entries.Add(entry);
        entries = entries.OrderByDescending(e => e["num_joined_members"]!.GetValue<int>()).ThenBy(e => e["room_id"]!.GetValue<string>(), StringComparer.Ordinal).ToList();

        var response = new JsonObject
        {
            ["chunk"] = new JsonArray(entries.Skip(offset).Take(take).Select(e => (JsonNode)e).ToArray()),
            ["total_room_count_estimate"] = entries.Count,
        };
        if (offset + take < entries.Count)
            response["next_batch"] = $"p{offset + take}";
        if (offset > 0)
            response["prev_batch"] = $"p{Math.Max(0, offset - take)}";
        await context.WriteJsonAsync(response);
    }

    private static bool Matches(JsonObject entry, string? search) =>
        string.IsNullOrEmpty(search) || new[] { "name", "topic", "canonical_alias" }.Any(field =>
            entry[field]?.GetValue<string>().Contains(search, StringComparison.OrdinalIgnoreCase) == true);

    private async Task<JsonObject?> PublicRoomEntryAsync(RoomSnapshot room, CancellationToken ct)
    {
        async Task<string?> Content(string type, string field) =>
            (await spine.GetStateEventAsync(room, new StateKey(type, ""), ct))?.ContentString(field);
        var joined = 0;
        foreach (var key in room.State.Keys.Where(k => k.Type == "m.room.member"))
            if ((await spine.GetStateEventAsync(room, key, ct))?.Membership == "join")
                joined++;
        var entry = new JsonObject
        {
            ["room_id"] = room.RoomId,
            ["num_joined_members"] = joined,
            ["world_readable"] = await Content("m.room.history_visibility", "history_visibility") == "world_readable",
            ["guest_can_join"] = await Content("m.room.guest_access", "guest_access") == "can_join",
            ["join_rule"] = await Content("m.room.join_rules", "join_rule") ?? "invite",
        };
        foreach (var (type, field, name) in new[]
                 {
                     ("m.room.name", "name", "name"), ("m.room.topic", "topic", "topic"), ("m.room.canonical_alias", "alias", "canonical_alias"),
                     ("m.room.avatar", "url", "avatar_url"), ("m.room.create", "type", "room_type"),
                 })
            if (await Content(type, field) is { } value)
                entry[name] = value;
        return entry;
    }
}
