using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.AccountData;

/// <summary>Spec: room tagging. Tags live in the room's <c>m.tag</c> account data, so they reach clients through sync.</summary>
public sealed class TagEndpoints(Database db, AccountDataStore store, StreamPositions streams, Authenticator authenticator, JsonBody json,
    SyncNotifier notifier) : IEndpoints
{
    public const int MaxTagLength = 255;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "user/{userId}/rooms/{roomId}/tags", GetAsync);
        app.MapV3("PUT", "user/{userId}/rooms/{roomId}/tags/{tag}", PutAsync);
        app.MapV3("DELETE", "user/{userId}/rooms/{roomId}/tags/{tag}", DeleteAsync);
    }

    private async Task GetAsync(HttpContext context)
    {
        var (requester, roomId) = await ResolveAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["tags"] = await LoadTagsAsync(requester.UserId.Value, roomId, context.RequestAborted) });
    }

    private async Task PutAsync(HttpContext context)
    {
        var (requester, roomId) = await ResolveAsync(context);
        var tag = Tag(context);
        var body = await json.ReadObjectAsync(context);
        var entry = new JsonObject();
        if (body.TryGetProperty("order", out var order))
        {
            if (order.ValueKind != System.Text.Json.JsonValueKind.Number || !order.TryGetDouble(out var position) || position is < 0 or > 1)
                throw MatrixException.BadJson("order must be a number between 0 and 1.");
            entry["order"] = position;
        }
        await UpdateAsync(requester.UserId.Value, roomId, tags => tags[tag] = entry, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteAsync(HttpContext context)
    {
        var (requester, roomId) = await ResolveAsync(context);
        var tag = Tag(context);
        await UpdateAsync(requester.UserId.Value, roomId, tags => tags.Remove(tag), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task<JsonObject> LoadTagsAsync(string userId, string roomId, CancellationToken ct)
    {
        var content = await db.ReadAsync(s => store.GetAsync(s, userId, roomId, "m.tag"), ct);
        return content is not null && JsonNode.Parse(content)?["tags"] is JsonObject tags ? (JsonObject)tags.DeepClone() : [];
    }

    private async Task UpdateAsync(string userId, string roomId, Action<JsonObject> change, CancellationToken ct)
    {
        await db.WriteAsync(async s =>
        {
            var current = await store.GetAsync(s, userId, roomId, "m.tag");
            var tags = current is not null && JsonNode.Parse(current)?["tags"] is JsonObject existing ? (JsonObject)existing.DeepClone() : [];
            change(tags);
            var content = new JsonObject { ["tags"] = tags }.ToJsonString();
            await store.SetAsync(s, userId, roomId, "m.tag", content, await streams.NextAsync(s, "account_data"));
        }, ct);
        notifier.Notify([userId]);
    }

    private static string Tag(HttpContext context)
    {
        var tag = context.Route("tag");
        if (tag.Length is 0 or > MaxTagLength)
            throw MatrixException.InvalidParam($"A tag is 1 to {MaxTagLength} characters.");
        return tag;
    }

    private async Task<(Requester Requester, string RoomId)> ResolveAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (context.Route("userId") != requester.UserId.Value)
            throw MatrixException.Forbidden("You may only access your own tags.");
        return (requester, Rooms.RoomEndpoints.RoomIdFromRoute(context));
    }
}
