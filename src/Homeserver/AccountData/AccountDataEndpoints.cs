using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.AccountData;

/// <summary>Spec: Client config (account data, global and per room).</summary>
public sealed class AccountDataEndpoints(
    Database db, AccountDataStore store, StreamPositions streams, Authenticator authenticator, JsonBody json, Sync.SyncNotifier notifier,
    IgnoredUsers ignoredUsers) : IEndpoints
{
    // These types have their own endpoints and semantics; the spec forbids setting them here.
    private static readonly HashSet<string> ServerManagedTypes = ["m.fully_read", "m.push_rules"];

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "user/{userId}/account_data/{type}", GetAsync);
        app.MapV3("PUT", "user/{userId}/account_data/{type}", SetAsync);
        app.MapV3("GET", "user/{userId}/rooms/{roomId}/account_data/{type}", GetAsync);
        app.MapV3("PUT", "user/{userId}/rooms/{roomId}/account_data/{type}", SetAsync);
    }

    private async Task GetAsync(HttpContext context)
    {
        var (requester, roomId, type) = await ResolveAsync(context);
        var content = await db.ReadAsync(s => store.GetAsync(s, requester.UserId.Value, roomId, type), context.RequestAborted)
            ?? throw MatrixException.NotFound("Account data not found.");
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(content, context.RequestAborted);
    }

    private async Task SetAsync(HttpContext context)
    {
        var (requester, roomId, type) = await ResolveAsync(context);
        if (ServerManagedTypes.Contains(type))
            throw new MatrixException(405, "M_BAD_JSON", $"Cannot set {type} through this API.");
        var body = await json.ReadObjectAsync(context);
        await db.WriteAsync(async s => await store.SetAsync(s, requester.UserId.Value, roomId, type, body.GetRawText(),
            await streams.NextAsync(s, "account_data")), context.RequestAborted);
        if (type == IgnoredUsers.AccountDataType)
            ignoredUsers.Forget(requester.UserId.Value);
        notifier.Notify([requester.UserId.Value]);
        await context.WriteJsonAsync(new System.Text.Json.Nodes.JsonObject());
    }

    private async Task<(Requester Requester, string RoomId, string Type)> ResolveAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (context.Route("userId") != requester.UserId.Value)
            throw MatrixException.Forbidden("You may only access your own account data.");
        var roomId = AccountDataStore.Global;
        if (context.Request.RouteValues.ContainsKey("roomId"))
        {
            roomId = context.Route("roomId");
            if (!RoomId.TryParse(roomId, out _))
                throw MatrixException.InvalidParam("Invalid room ID.");
        }
        var type = context.Route("type");
        if (type.Length is 0 or > 255)
            throw MatrixException.InvalidParam("Account data type must be between 1 and 255 characters.");
        return (requester, roomId, type);
    }
}
