using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Presence;

/// <summary>Spec: presence (<c>GET/PUT /presence/{userId}/status</c>).</summary>
public sealed class PresenceEndpoints(
    Authenticator authenticator, JsonBody json, PresenceService presence, Rooms.RoomReader reader, Database db, UserStore users,
    HomeserverConfig config) : IEndpoints
{
    public const int MaxStatusMsgLength = 1024;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "presence/{userId}/status", GetAsync);
        app.MapV3("PUT", "presence/{userId}/status", SetAsync);
    }

    private async Task GetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var target = context.Route("userId");
        if (!UserId.TryParse(target, out var targetId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        // A remote user is known here through the rooms shared with them, which the check below asks.
        if (targetId.Server.Value == config.ServerName && await db.ReadAsync(s => users.GetAsync(s, target), context.RequestAborted) is null)
            throw MatrixException.NotFound("Unknown user.");
        if (target != requester.UserId.Value && !(await reader.UsersSharingRoomsAsync(requester.UserId.Value, context.RequestAborted)).Contains(target))
            throw MatrixException.Forbidden("You do not share a room with this user.");
        await context.WriteJsonAsync(await presence.GetStatusAsync(target, context.RequestAborted));
    }

    private async Task SetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (context.Route("userId") != requester.UserId.Value)
            throw MatrixException.Forbidden("You may only set your own presence.");
        var body = await json.ReadObjectAsync(context);
        var state = body.RequiredString("presence");
        if (!PresenceService.States.Contains(state))
            throw MatrixException.InvalidParam("presence must be online, unavailable or offline.");
        var statusMsg = body.OptionalString("status_msg");
        if (statusMsg?.Length > MaxStatusMsgLength)
            throw MatrixException.InvalidParam($"status_msg is longer than {MaxStatusMsgLength} characters.");
        await presence.SetAsync(requester.UserId.Value, state, statusMsg, keepStatusMsg: false, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }
}
