using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>Spec: room creation, joining by ID or alias, membership changes, forget, joined_rooms.</summary>
public sealed class RoomEndpoints(
    Authenticator authenticator, JsonBody json, RoomCreation creation, MembershipService memberships, Database db, RoomStore rooms,
    HomeserverConfig config, RoomDirectory.AliasResolver aliases, EventSpine spine, ApplicationServices.AppServiceRegistry appServices,
    ThirdPartyInvites thirdPartyInvites) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "createRoom", CreateRoomAsync);
        app.MapV3("GET", "joined_rooms", JoinedRoomsAsync);
        app.MapV3("POST", "join/{roomIdOrAlias}", JoinAsync);
        app.MapV3("POST", "rooms/{roomId}/join", JoinAsync);
        app.MapV3("POST", "knock/{roomIdOrAlias}", KnockAsync);
        app.MapV3("POST", "rooms/{roomId}/invite", InviteAsync);
        app.MapV3("POST", "rooms/{roomId}/kick", (ctx) => TargetedAsync(ctx, "kick"));
        app.MapV3("POST", "rooms/{roomId}/ban", (ctx) => TargetedAsync(ctx, "ban"));
        app.MapV3("POST", "rooms/{roomId}/unban", UnbanAsync);
        app.MapV3("POST", "rooms/{roomId}/leave", LeaveAsync);
        app.MapV3("POST", "rooms/{roomId}/forget", ForgetAsync);
    }

    private async Task CreateRoomAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var body = await json.ReadObjectAsync(context, optional: true);
        var request = RoomCreation.ParseRequest(body, config.ServerName, config.EffectiveDefaultRoomVersion);
        RoomCreation.CheckCreatorKeepsPower(request, requester.UserId.Value);
        if (request.AliasName is not null)
            appServices.CheckAliasFree(request.AliasName, requester.AppService);
        var thirdPartyInvitees = body.TryGetProperty("invite_3pid", out var invite3pid) && invite3pid.ValueKind == System.Text.Json.JsonValueKind.Array
            ? invite3pid.EnumerateArray().Select(ThirdPartyInvitee).ToList()
            : [];
        // A shadow-banned user's room is made, but nobody they invite hears of it (as Synapse).
        if (requester.IsShadowBanned)
            (request, thirdPartyInvitees) = (request with { Invite = [] }, []);
        var roomId = await creation.CreateAsync(requester.UserId.Value, request, context.RequestAborted);
        foreach (var (idServer, idAccessToken, medium, address) in thirdPartyInvitees)
            await thirdPartyInvites.InviteAsync(roomId, requester.UserId.Value, idServer, idAccessToken, medium, address, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["room_id"] = roomId });
    }

    private async Task JoinedRoomsAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var joined = (await db.ReadAsync(s => rooms.MembershipsAsync(s, requester.UserId.Value), context.RequestAborted))
            .Where(m => m.Membership == "join").Select(m => (JsonNode)m.RoomId).ToArray();
        await context.WriteJsonAsync(new JsonObject { ["joined_rooms"] = new JsonArray(joined) });
    }

    private async Task JoinAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var body = await json.ReadObjectAsync(context, optional: true);
        var (roomId, servers) = await ResolveRoomAsync(context, context.Request.RouteValues.ContainsKey("roomId") ? "roomId" : "roomIdOrAlias");
        var user = requester.UserId.Value;
        // A signed third-party invite (spec: third-party invites) first becomes the invite it proves, then the user joins.
        if (body.OptionalObject("third_party_signed") is { } thirdPartySigned
            && JsonNode.Parse(thirdPartySigned.GetRawText()) is JsonObject signed && thirdPartySigned.OptionalString("mxid") == user)
            await thirdPartyInvites.ExchangeAsync(roomId, thirdPartySigned.RequiredString("sender"), user, signed, context.RequestAborted);
        await memberships.JoinAsync(roomId, user, body.OptionalString("reason"), JoinContent(body), servers.Concat(ViaServers(context)),
            requester.IsGuest, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["room_id"] = roomId });
    }

    /// <summary>
    /// The join body's other fields go into the member event's content (as in Synapse), but for the ones the server
    /// sets: the membership, the reason (passed on its own), a restricted join's authoriser and third-party signatures.
    /// </summary>
    private static JsonObject JoinContent(System.Text.Json.JsonElement body)
    {
        var content = RoomCreation.ToCanonicalObject(body);
        foreach (var reserved in new[] { "membership", "reason", "join_authorised_via_users_server", "third_party_signed" })
            content.Remove(reserved);
        return content;
    }

    /// <summary>The <c>via</c> (v1.12) and older <c>server_name</c> query parameters.</summary>
    /// <summary>The servers a client names to join through (<c>via</c>, and the older <c>server_name</c>).</summary>
    public static IEnumerable<string> ViaServers(HttpContext context) =>
        context.Request.Query["via"].Concat(context.Request.Query["server_name"]).OfType<string>()
            .Where(s => Matrix.Federation.Identifiers.ServerName.TryParse(s, out _));

    private async Task KnockAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var body = await json.ReadObjectAsync(context, optional: true);
        var (roomId, servers) = await ResolveRoomAsync(context, "roomIdOrAlias");
        var user = requester.UserId.Value;
        if (await spine.GetRoomAsync(roomId, context.RequestAborted) is null)
            await memberships.KnockRemoteAsync(roomId, user, body.OptionalString("reason"), servers.Concat(ViaServers(context)), context.RequestAborted);
        else
            await memberships.ChangeAsync(roomId, user, user, "knock", body.OptionalString("reason"), null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["room_id"] = roomId });
    }

    private async Task TargetedAsync(HttpContext context, string membership)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var roomId = RoomIdFromRoute(context);
        var body = await json.ReadObjectAsync(context);
        var target = TargetUser(body);
        var reason = body.OptionalString("reason");
        await (membership == "kick"
            ? memberships.KickAsync(roomId, requester.UserId.Value, target, reason, context.RequestAborted)
            : memberships.ChangeAsync(roomId, requester.UserId.Value, target, membership, reason, null, context.RequestAborted));
        await context.WriteJsonAsync(new JsonObject());
    }

    /// <summary>An invite by user ID, or (spec: third-party invites) by 3PID through the identity server the client names.</summary>
    private async Task InviteAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var roomId = RoomIdFromRoute(context);
        var body = await json.ReadObjectAsync(context);
        if (requester.IsShadowBanned)
        {
            await context.WriteJsonAsync(new JsonObject());
            return;
        }
        if (body.OptionalString("user_id") is null && body.OptionalString("medium") is not null)
        {
            var (idServer, idAccessToken, medium, address) = ThirdPartyInvitee(body);
            await thirdPartyInvites.InviteAsync(roomId, requester.UserId.Value, idServer, idAccessToken, medium, address, context.RequestAborted);
        }
        else
            await memberships.ChangeAsync(roomId, requester.UserId.Value, TargetUser(body), "invite", body.OptionalString("reason"), null,
                context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private static (string IdServer, string IdAccessToken, string Medium, string Address) ThirdPartyInvitee(System.Text.Json.JsonElement body) =>
        (body.RequiredString("id_server"), body.RequiredString("id_access_token"), body.RequiredString("medium"), body.RequiredString("address"));

    private async Task UnbanAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomIdFromRoute(context);
        var body = await json.ReadObjectAsync(context);
        await memberships.UnbanAsync(roomId, requester.UserId.Value, TargetUser(body), body.OptionalString("reason"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task LeaveAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomIdFromRoute(context);
        var body = await json.ReadObjectAsync(context, optional: true);
        var user = requester.UserId.Value;
        await memberships.ChangeAsync(roomId, user, user, "leave", body.OptionalString("reason"), null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task ForgetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await memberships.ForgetAsync(RoomIdFromRoute(context), requester.UserId.Value, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private static string TargetUser(System.Text.Json.JsonElement body)
    {
        var target = body.RequiredString("user_id");
        if (!UserId.TryParse(target, out _))
            throw MatrixException.InvalidParam("user_id is not a valid user ID.");
        return target;
    }

    public static string RoomIdFromRoute(HttpContext context)
    {
        var roomId = context.Route("roomId");
        if (!RoomId.TryParse(roomId, out _))
            throw MatrixException.InvalidParam("Invalid room ID.");
        return roomId;
    }

    private Task<(string RoomId, IReadOnlyList<string> Servers)> ResolveRoomAsync(HttpContext context, string routeName) =>
        aliases.ResolveIdOrAliasAsync(context.Route(routeName), context.RequestAborted);
}
