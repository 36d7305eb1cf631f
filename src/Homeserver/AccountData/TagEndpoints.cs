using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.AccountData;

/// <summary>Spec: room tagging. Tags live in the room's <c>m.tag</c> account data, so they reach clients through sync.</summary>
public sealed class TagEndpoints(RoomTags roomTags, Authenticator authenticator, JsonBody json) : IEndpoints
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
        await context.WriteJsonAsync(new JsonObject { ["tags"] = await roomTags.LoadAsync(requester.UserId.Value, roomId, context.RequestAborted) });
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
        await roomTags.UpdateAsync(requester.UserId.Value, roomId, tags => tags[tag] = entry, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteAsync(HttpContext context)
    {
        var (requester, roomId) = await ResolveAsync(context);
        var tag = Tag(context);
        await roomTags.UpdateAsync(requester.UserId.Value, roomId, tags => tags.Remove(tag), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
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
